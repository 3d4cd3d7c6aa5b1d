//! Leases: one holder at a time for a piece of work that several daemons sharing one Redis could
//! otherwise do at once (a sale's refunds at the gateway, say).
//!
//! A lease is a key set only if absent (`SET NX PX`) to a token that names this holding alone,
//! with a time to live, so a holder that dies frees it by expiry. It is kept (its time to live
//! set again) and released only while it still holds the holder's token (compare-and-pexpire,
//! compare-and-delete), so a holder that was too slow can never extend or free the lease another
//! has taken since. A successful [`Store::keep_lease`] therefore proves the lease was held
//! without a break since it was taken: the check to make before an action that must not overlap
//! another holder's.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::client::Store;
use super::error::StoreError;

/// Set the time to live again, only while the lease holds the token.
static KEEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then \
           return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0",
    )
});

/// Delete the lease, only while it holds the token.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then \
           return redis.call('DEL', KEYS[1]) end return 0",
    )
});

/// A lease held: its key, this holding's token, and how long each taking or keeping lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub key: String,
    pub token: String,
    pub ttl: Duration,
}

impl Lease {
    /// A token naming `holder` (a daemon) and this holding alone: the same daemon taking the
    /// lease twice holds it under two tokens.
    pub fn token_for(holder: &str) -> String {
        format!("{holder}/{:016x}", rand::random::<u64>())
    }
}

impl Store {
    /// Take the lease `key` for `ttl` under `token`; `None` while another holds it.
    pub async fn take_lease(
        &self,
        key: &str,
        token: String,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let mut c = self.conn();
        let ms = ttl.as_millis().max(1) as u64;
        let got: Option<String> = self
            .run(async {
                redis::cmd("SET")
                    .arg(key)
                    .arg(&token)
                    .arg("NX")
                    .arg("PX")
                    .arg(ms)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(got.map(|_| Lease {
            key: key.to_string(),
            token,
            ttl,
        }))
    }

    /// Give `lease` its full time to live again; `false` if it was lost meanwhile (expired,
    /// perhaps taken by another holder): the holder must then stop.
    pub async fn keep_lease(&self, lease: &Lease) -> Result<bool, StoreError> {
        let mut c = self.conn();
        let ms = lease.ttl.as_millis().max(1) as u64;
        let kept: i64 = self
            .run(async {
                KEEP.key(&lease.key)
                    .arg(&lease.token)
                    .arg(ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(kept == 1)
    }

    /// Free `lease` if it is still this holder's (another's is left alone).
    pub async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let mut c = self.conn();
        let _: i64 = self
            .run(async {
                RELEASE
                    .key(&lease.key)
                    .arg(&lease.token)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::ManagedRedis;

    /// Against a real `redis-server` of its own (a unix socket in a temporary directory).
    #[tokio::test]
    async fn one_holder_at_a_time_and_only_the_holder_keeps_or_frees_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let redis = ManagedRedis::start(dir.path(), "redis-server", "everysec")
            .await
            .expect("redis-server");
        let store = Store::connect(&redis.url(), Duration::from_secs(2))
            .await
            .expect("connect");
        let ttl = Duration::from_secs(30);
        let take = |key: &'static str, holder: &'static str, ttl| {
            let store = store.clone();
            async move {
                store
                    .take_lease(key, Lease::token_for(holder), ttl)
                    .await
                    .expect("take")
            }
        };
        let a = take("cp:t:lease", "a", ttl).await.expect("free");
        assert_eq!(take("cp:t:lease", "b", ttl).await, None, "held");
        assert_eq!(take("cp:t:lease", "a", ttl).await, None, "held, by a too");
        // Another holding of the same daemon neither keeps nor frees it.
        let other = Lease {
            token: Lease::token_for("a"),
            ..a.clone()
        };
        assert!(!store.keep_lease(&other).await.expect("keep"));
        store.release_lease(&other).await.expect("release");
        assert!(store.keep_lease(&a).await.expect("keep"), "still a's");
        store.release_lease(&a).await.expect("release");
        assert!(!store.keep_lease(&a).await.expect("keep"), "freed");
        let b = take("cp:t:lease", "b", ttl).await.expect("free again");
        // A lease that lapsed is lost to its holder, and free to take.
        let short = take("cp:t:short", "a", Duration::from_millis(50))
            .await
            .expect("free");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!store.keep_lease(&short).await.expect("keep"), "lapsed");
        assert!(take("cp:t:short", "b", ttl).await.is_some());
        // A lapsed holder's release leaves the new holder's lease alone.
        store.release_lease(&short).await.expect("release");
        assert!(take("cp:t:short", "c", ttl).await.is_none());
        assert!(store.keep_lease(&b).await.expect("keep"));
        redis.stop().await;
    }

    #[test]
    fn each_holding_has_its_own_token_naming_its_holder() {
        let (a, b) = (Lease::token_for("host:1"), Lease::token_for("host:1"));
        assert_ne!(a, b, "two holdings of one daemon are told apart");
        assert!(a.starts_with("host:1/"), "{a}");
    }
}
