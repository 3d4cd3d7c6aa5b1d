//! The simulated merchant account's signature secret.
//!
//! Every request to the simulator and every answer and hosted-page result it sends is signed
//! with the merchant's secret; whoever knows it can forge a "paid" result. The Cardstream
//! guide publishes its test merchant's secret, so the built-in sandbox never uses it: each
//! installation makes its own random secret the first time it starts and keeps it in Redis,
//! where every daemon sharing the Redis (and so the simulated gateway) finds the same one.

use calmony_actors::Store;

use crate::error::SandboxError;
use crate::keys;

/// Letters and digits in a new secret: about 285 bits.
const SECRET_LEN: usize = 48;

/// This installation's secret: the one kept in Redis, made now (once, whoever asks first) if
/// there is none yet.
pub async fn installation_secret(store: &Store) -> Result<String, SandboxError> {
    kept_or_made(store, keys::MERCHANT_SECRET, "").await
}

/// This installation's API key for the built-in Griffin sandbox, made and kept the same way:
/// a key written in the source would let anyone reach the sandbox's `/v0` API (its webhooks
/// among it) on every installation. Griffin's sandbox prefix, so it is never taken for live.
pub async fn installation_griffin_key(store: &Store) -> Result<String, SandboxError> {
    kept_or_made(store, keys::GRIFFIN_API_KEY, "g-test-").await
}

/// The value kept under `key`, or `prefix` and a fresh random one, set once by whoever asks
/// first.
async fn kept_or_made(
    store: &Store,
    key: &'static str,
    prefix: &str,
) -> Result<String, SandboxError> {
    let fresh = format!("{prefix}{}", crate::transactions::random_alnum(SECRET_LEN));
    let mut c = store.conn();
    // SET NX then GET, not `SET NX GET` (Redis 7): the first writer wins either way.
    let kept: Option<String> = store
        .run(async move {
            redis::pipe()
                .cmd("SET")
                .arg(key)
                .arg(&fresh)
                .arg("NX")
                .ignore()
                .cmd("GET")
                .arg(key)
                .query_async::<(Option<String>,)>(&mut c)
                .await
                .map(|(kept,)| kept)
        })
        .await?;
    match kept.filter(|s| s.len() >= SECRET_LEN) {
        Some(secret) => Ok(secret),
        None => Err(SandboxError::Corrupt {
            key: key.to_owned(),
            reason: "the kept secret is too short".into(),
        }),
    }
}
