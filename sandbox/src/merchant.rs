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
    let fresh = crate::transactions::random_alnum(SECRET_LEN);
    let mut c = store.conn();
    // SET NX then GET, not `SET NX GET` (Redis 7): the first writer wins either way.
    let kept: Option<String> = store
        .run(async move {
            redis::pipe()
                .cmd("SET")
                .arg(keys::MERCHANT_SECRET)
                .arg(&fresh)
                .arg("NX")
                .ignore()
                .cmd("GET")
                .arg(keys::MERCHANT_SECRET)
                .query_async::<(Option<String>,)>(&mut c)
                .await
                .map(|(kept,)| kept)
        })
        .await?;
    match kept.filter(|s| s.len() >= SECRET_LEN) {
        Some(secret) => Ok(secret),
        None => Err(SandboxError::Corrupt {
            key: keys::MERCHANT_SECRET.to_owned(),
            reason: "the kept merchant secret is too short".into(),
        }),
    }
}
