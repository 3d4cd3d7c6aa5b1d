//! Verifying Griffin's webhook deliveries (brief §8.1): an RFC 9421 signature by one of
//! Griffin's ES512 keys over the date, method, path, authority, content type, length and
//! digest, with `created`/`expires` inside the window and a nonce; the `content-digest`
//! recomputed over the raw body; the body an event.
//!
//! The keys come from `<base>/v0/security/public-keys` and are cached in memory ([`KeyCache`]):
//! a `kid` always names the same key, so a cached key is good until Griffin retires it; a
//! delivery under a `kid` not in the cache makes one refetch (retired keys leave, new ones
//! come), at most one per [`MIN_REFETCH`] whatever the deliveries say, so forged key ids
//! cannot make the daemon hammer Griffin. The time and digest are checked before any key is
//! looked up: a stale or tampered delivery never causes a fetch.
//!
//! Refusing a reused nonce needs memory; it is checked in the same Redis commit that records
//! the event (see [`super::inbox`]).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use calmony_protocol::griffin::signature::{self, Message, Policy, WEBHOOK_COMPONENTS};
use calmony_protocol::griffin::{Event, PublicKeys, SignatureError, VerifyingKey};

use super::GriffinError;

/// How old a delivery's `created` may be.
pub const MAX_AGE_SECS: i64 = 300;
/// How long a nonce is remembered: past the age window and the clock skew allowed, so a
/// replay is refused for as long as its signature would otherwise pass.
pub const NONCE_TTL_MS: u64 = 600_000;
/// The least time between two fetches of the keys.
pub const MIN_REFETCH: Duration = Duration::from_secs(1);

/// Why a delivery is refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("message signature: {0}")]
    Signature(#[from] SignatureError),
    #[error("message signature: the nonce was used before")]
    NonceReused,
    #[error("Griffin's signing keys could not be fetched: {0}")]
    Keys(GriffinError),
    #[error("not a Griffin event: {0}")]
    NotAnEvent(String),
}

impl WebhookError {
    /// The HTTP status to answer: 401 for a delivery that does not prove it is Griffin's, 400
    /// for a proven one we cannot read, 503 when the keys could not be had (Griffin retries).
    pub fn status(&self) -> u16 {
        match self {
            Self::Signature(_) | Self::NonceReused => 401,
            Self::NotAnEvent(_) => 400,
            Self::Keys(_) => 503,
        }
    }
}

/// One delivery as received: the request's parts and its raw body.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub method: &'a str,
    /// The `Host` header as received.
    pub authority: &'a str,
    /// The path as received (not normalised: the signature covers it as sent).
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// A delivery whose signature verified, and its event.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedEvent {
    pub event: Event,
    pub keyid: String,
    pub nonce: String,
    pub created: i64,
}

/// Verify `delivery` at `now` (Unix seconds) against the keys `key_for` knows. Pure.
pub fn verify_with(
    delivery: &Delivery<'_>,
    key_for: &dyn Fn(&str) -> Option<VerifyingKey>,
    now: i64,
) -> Result<VerifiedEvent, WebhookError> {
    let message = Message {
        method: delivery.method,
        authority: delivery.authority,
        path: delivery.path,
        query: delivery.query,
        headers: delivery.headers,
    };
    let policy = Policy {
        required: WEBHOOK_COMPONENTS,
        max_age_secs: MAX_AGE_SECS,
    };
    let verified = signature::verify(&message, delivery.body, key_for, &policy, now)?;
    let nonce = verified
        .nonce
        .filter(|n| !n.is_empty())
        .ok_or(SignatureError::Malformed("Signature-Input: no nonce"))?;
    let event: Event = serde_json::from_slice(delivery.body)
        .map_err(|e| WebhookError::NotAnEvent(e.to_string()))?;
    if !event.event_url.starts_with("/v0/events/") {
        return Err(WebhookError::NotAnEvent(format!(
            "event-url {:?} is not an event's",
            event.event_url
        )));
    }
    Ok(VerifiedEvent {
        event,
        keyid: verified.keyid,
        nonce,
        created: verified.created,
    })
}

/// Whether the keys may be fetched again, last fetched at `last`.
pub fn may_refetch(last: Option<Instant>, now: Instant, min: Duration) -> bool {
    last.is_none_or(|at| now.saturating_duration_since(at) >= min)
}

/// Griffin's webhook keys as last fetched, by `kid`.
#[derive(Debug)]
pub struct KeyCache {
    keys: RwLock<HashMap<String, VerifyingKey>>,
    /// When the keys were last fetched; held across a fetch, so concurrent deliveries under
    /// a new `kid` cause one fetch, not one each.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    min_interval: Duration,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new(MIN_REFETCH)
    }
}

impl KeyCache {
    pub fn new(min_interval: Duration) -> Self {
        Self {
            keys: RwLock::new(HashMap::new()),
            last_fetch: tokio::sync::Mutex::new(None),
            min_interval,
        }
    }

    pub fn lookup(&self, kid: &str) -> Option<VerifyingKey> {
        self.keys.read().ok()?.get(kid).cloned()
    }

    /// Replace the cache with the usable keys of `published` (a key that is not EC P-521 is
    /// skipped and logged): how many were kept.
    pub fn install(&self, published: &PublicKeys) -> usize {
        let mut fresh = HashMap::new();
        for k in &published.keys {
            match k.verifying_key() {
                Ok(v) => {
                    fresh.insert(k.kid.clone(), v);
                }
                Err(error) => tracing::warn!(kid = %k.kid, %error, "skipped a Griffin key"),
            }
        }
        let n = fresh.len();
        if let Ok(mut keys) = self.keys.write() {
            *keys = fresh;
        }
        n
    }

    /// Fetch the keys again because `kid` is unknown, unless another delivery just did (then
    /// only look again) or the last fetch was under [`MIN_REFETCH`] ago: whether `kid` is
    /// known now.
    pub async fn refetch<F, Fut>(&self, kid: &str, fetch: F) -> Result<bool, GriffinError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<PublicKeys, GriffinError>>,
    {
        let mut last = self.last_fetch.lock().await;
        if self.lookup(kid).is_some() {
            return Ok(true);
        }
        let now = Instant::now();
        if !may_refetch(*last, now, self.min_interval) {
            return Ok(false);
        }
        *last = Some(now);
        let published = fetch().await?;
        let kept = self.install(&published);
        metrics::counter!("calmony_griffin_key_fetches_total").increment(1);
        tracing::info!(kid, kept, "fetched Griffin's webhook keys");
        Ok(self.lookup(kid).is_some())
    }
}

/// Verify `delivery` at `now` (Unix seconds), fetching the keys through `fetch` when its
/// `kid` is not cached (see [`KeyCache::refetch`]).
pub async fn verify_delivery<F, Fut>(
    cache: &KeyCache,
    delivery: &Delivery<'_>,
    now: i64,
    fetch: F,
) -> Result<VerifiedEvent, WebhookError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<PublicKeys, GriffinError>>,
{
    let lookup = |kid: &str| cache.lookup(kid);
    match verify_with(delivery, &lookup, now) {
        Err(WebhookError::Signature(SignatureError::UnknownKey(kid))) => {
            if cache
                .refetch(&kid, fetch)
                .await
                .map_err(WebhookError::Keys)?
            {
                verify_with(delivery, &lookup, now)
            } else {
                Err(SignatureError::UnknownKey(kid).into())
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calmony_protocol::griffin::signature::sign_webhook;
    use calmony_protocol::griffin::{PublicKey, SigningKey};
    use std::sync::atomic::{AtomicUsize, Ordering};

    const NOW: i64 = 1_765_000_000;
    const BODY: &[u8] = br#"{"event-url":"/v0/events/ev.1","event-type":"transaction-created","event-payload":{},"created-at":"2025-12-06T10:00:00.000Z"}"#;

    fn key(kid: &str, fill: u8) -> SigningKey {
        let mut secret = [fill; 66];
        secret[0] = 0;
        SigningKey::es512_from_bytes(kid, &secret).unwrap_or_else(|e| panic!("{e}"))
    }

    fn published(keys: &[&SigningKey]) -> PublicKeys {
        PublicKeys {
            keys: keys
                .iter()
                .filter_map(|k| PublicKey::of(&k.keyid, &k.verifying_key()))
                .collect(),
            links: Default::default(),
        }
    }

    fn signed(key: &SigningKey, body: &[u8], now: i64, nonce: &str) -> Vec<(String, String)> {
        let url = url::Url::parse("http://127.0.0.1:4242/webhooks/griffin/test")
            .unwrap_or_else(|e| panic!("{e}"));
        sign_webhook(key, &url, body, now, nonce)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect()
    }

    fn check(
        headers: &[(String, String)],
        body: &[u8],
        path: &str,
        cache: &KeyCache,
        now: i64,
    ) -> Result<VerifiedEvent, WebhookError> {
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let delivery = Delivery {
            method: "POST",
            authority: "127.0.0.1:4242",
            path,
            query: "",
            headers: &pairs,
            body,
        };
        verify_with(&delivery, &|kid| cache.lookup(kid), now)
    }

    #[test]
    fn what_a_receiver_accepts_and_refuses() {
        let k1 = key("kid-1", 3);
        let cache = KeyCache::default();
        cache.install(&published(&[&k1]));
        let good = signed(&k1, BODY, NOW, "n-1");
        let path = "/webhooks/griffin/test";
        let stranger = signed(&key("kid-1", 9), BODY, NOW, "n-2");
        let unknown = signed(&key("kid-9", 3), BODY, NOW, "n-3");
        let not_event = signed(&k1, br#"{"hello":1}"#, NOW, "n-4");
        let no_nonce = signed(&k1, BODY, NOW, "");
        type Case<'a> = (
            &'a str,
            &'a [(String, String)],
            &'a [u8],
            &'a str,
            i64,
            &'a str,
        );
        let cases: Vec<Case<'_>> = vec![
            ("as signed", &good, BODY, path, NOW, "ok"),
            ("a tampered body", &good, b"{}", path, NOW, "401"),
            (
                "another path",
                &good,
                BODY,
                "/webhooks/griffin/live",
                NOW,
                "401",
            ),
            ("too old", &good, BODY, path, NOW + 301, "401"),
            ("from the future", &good, BODY, path, NOW - 61, "401"),
            (
                "another key under the kid",
                &stranger,
                BODY,
                path,
                NOW,
                "401",
            ),
            ("an unknown kid", &unknown, BODY, path, NOW, "unknown"),
            (
                "signed, but no event",
                &not_event,
                br#"{"hello":1}"#,
                path,
                NOW,
                "400",
            ),
            ("no nonce", &no_nonce, BODY, path, NOW, "401"),
            ("no signature", &[], BODY, path, NOW, "401"),
        ];
        for (name, headers, body, path, now, expected) in cases {
            let got = match check(headers, body, path, &cache, now) {
                Ok(v) => {
                    assert_eq!(v.event.event_url, "/v0/events/ev.1", "{name}");
                    assert_eq!((v.keyid.as_str(), v.nonce.as_str()), ("kid-1", "n-1"));
                    "ok".to_owned()
                }
                Err(WebhookError::Signature(SignatureError::UnknownKey(_))) => "unknown".to_owned(),
                Err(e) => e.status().to_string(),
            };
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn refetches_are_spaced() {
        let t0 = Instant::now();
        let min = Duration::from_secs(1);
        for (last, after, ok) in [
            (None, 0, true),
            (Some(t0), 0, false),
            (Some(t0), 999, false),
            (Some(t0), 1000, true),
            (Some(t0), 5000, true),
        ] {
            assert_eq!(
                may_refetch(last, t0 + Duration::from_millis(after), min),
                ok,
                "{last:?} +{after}ms"
            );
        }
    }

    #[tokio::test]
    async fn an_unknown_kid_fetches_once_and_a_rotated_key_then_verifies() {
        let old = key("kid-old", 3);
        let new = key("kid-new", 4);
        let cache = KeyCache::new(Duration::from_secs(3600));
        cache.install(&published(&[&old]));
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(published(&[&new]))
        };
        let headers = signed(&new, BODY, NOW, "n-1");
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let delivery = Delivery {
            method: "POST",
            authority: "127.0.0.1:4242",
            path: "/webhooks/griffin/test",
            query: "",
            headers: &pairs,
            body: BODY,
        };
        let v = verify_delivery(&cache, &delivery, NOW, fetch)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.keyid, "kid-new");
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(cache.lookup("kid-old").is_none(), "a retired key leaves");
        // Known now: no fetch.
        verify_delivery(&cache, &delivery, NOW, fetch)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // A forged kid inside the interval: refused without a fetch.
        let forged = signed(&key("kid-forged", 5), BODY, NOW, "n-2");
        let pairs: Vec<(&str, &str)> = forged
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let delivery = Delivery {
            headers: &pairs,
            ..delivery
        };
        let refused = verify_delivery(&cache, &delivery, NOW, fetch).await;
        assert!(
            matches!(
                refused,
                Err(WebhookError::Signature(SignatureError::UnknownKey(_)))
            ),
            "{refused:?}"
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }
}
