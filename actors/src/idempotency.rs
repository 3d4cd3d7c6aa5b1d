//! Idempotency keys, as Stripe defines them.
//!
//! A POST with `Idempotency-Key` first *claims* the key (scoped to project and mode): a hash
//! holding the request's fingerprint (method, path and canonical parameters), its endpoint and
//! an owner (the request id), with a short lifetime. What happens next:
//!
//! - The handler changes state: its answer is written under the key **in the same atomic
//!   commit** as the change ([`crate::store::Tx::respond`]), and the key then lives 24 h. A crash
//!   can never leave a change without its stored answer, so a retry can never repeat it.
//! - The handler answers without a change (a 404, a decline): the edge stores the answer.
//! - Validation failed, or the daemon could not reach Redis: the claim is released
//!   (compare-and-delete) and the client may retry with the same key, as Stripe allows.
//! - The daemon died mid-request: the claim expires after `idempotency_lock_seconds`; until
//!   then retries get 409, and nothing was committed, so running afresh is safe.
//!
//! A second request with the key sees the claim: the stored answer is replayed with
//! `Idempotent-Replayed: true`; a running one answers 409 `idempotency_key_in_use`; other
//! parameters or another endpoint answer 400 `idempotency_error`.

use sha2::{Digest, Sha256};

use crate::store::{ClaimRef, FreshClaim, Scope, Store, StoreError, scripts};

/// Longest key accepted (Stripe's limit).
pub const MAX_KEY_LEN: usize = 255;

/// A claimed key: the owner must present it to store or release the answer.
#[derive(Debug, Clone)]
pub struct Claim {
    pub key: String,
    pub redis_key: String,
    pub owner: String,
}

impl<'a> From<&'a Claim> for ClaimRef<'a> {
    fn from(claim: &'a Claim) -> Self {
        ClaimRef {
            redis_key: &claim.redis_key,
            owner: &claim.owner,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The key is ours: run the request.
    Proceed,
    /// The first request with this key is still running.
    Running,
    /// The key was used with other parameters.
    Mismatch,
    /// The key was used on another endpoint (named).
    OtherEndpoint(String),
    /// Replay this answer.
    Replay {
        status: u16,
        body: String,
        original_request: String,
    },
}

/// Whether a header value is acceptable as a key: 1 to 255 printable ASCII characters.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// The fingerprint of a request: what must match for a replay.
pub fn fingerprint(method: &str, path: &str, canonical_params: &str) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b" ");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(canonical_params.as_bytes());
    hex::encode(h.finalize())
}

/// The Redis key of a claim: the client's key is hashed into it, so it never becomes part of
/// a key name verbatim. The key check's script builds the same name from the digest.
fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

pub fn claim_for(scope: &Scope, key: &str, owner: &str) -> Claim {
    Claim {
        key: key.to_string(),
        redis_key: scope.key(&format!("idem:{}", digest(key))),
        owner: owner.to_string(),
    }
}

/// A claim asked for with the key check ([`crate::api_keys::authenticate`]), before the
/// request's project and mode are known: the script claims it in the key's own scope.
#[derive(Debug, Clone)]
pub struct Ask {
    pub key: String,
    pub owner: String,
    pub fingerprint: String,
    pub endpoint: String,
    pub lock_ms: u64,
}

impl Ask {
    /// The claim as a commit makes it when the key check that would have made it was
    /// deferred to the commit ([`crate::store::Tx::claim_fresh`]).
    pub fn fresh<'a>(&'a self, claim: &'a Claim) -> FreshClaim<'a> {
        FreshClaim {
            claim: claim.into(),
            fingerprint: &self.fingerprint,
            endpoint: &self.endpoint,
            lock_ms: self.lock_ms,
        }
    }

    /// The script's arguments for the claim, in its order.
    pub(crate) fn args(&self) -> [String; 5] {
        [
            digest(&self.key),
            self.owner.clone(),
            self.fingerprint.clone(),
            self.endpoint.clone(),
            self.lock_ms.to_string(),
        ]
    }
}

impl Begin {
    /// The script's answer to a claim.
    pub(crate) fn from_answer(out: &[String]) -> Self {
        match out.first().map(String::as_str) {
            Some("new") => Begin::Proceed,
            Some("running") => Begin::Running,
            Some("other_endpoint") => Begin::OtherEndpoint(out.get(1).cloned().unwrap_or_default()),
            Some("done") if out.len() == 4 => Begin::Replay {
                status: out[1].parse().unwrap_or(500),
                body: out[2].clone(),
                original_request: out[3].clone(),
            },
            _ => Begin::Mismatch,
        }
    }
}

/// Store an answer that did not come with a commit (errors worth replaying), packed as a
/// commit stores one.
pub async fn finish(
    store: &Store,
    claim: &Claim,
    status: u16,
    body: &str,
    ttl_secs: u64,
) -> Result<(), StoreError> {
    let mut c = store.conn();
    store
        .run(async move {
            scripts::IDEMPOTENCY_FINISH
                .key(&claim.redis_key)
                .arg(&claim.owner)
                .arg(status)
                .arg(crate::store::packed::pack(body))
                .arg(ttl_secs * 1000)
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await
        .map(|_| ())
}

/// Release a claim whose answer is not kept, unless a committed change holds it (a claim
/// living longer than its lock, `lock_ms`; see `scripts::IDEMPOTENCY_RELEASE`).
pub async fn release(store: &Store, claim: &Claim, lock_ms: u64) -> Result<(), StoreError> {
    let mut c = store.conn();
    store
        .run(async move {
            scripts::IDEMPOTENCY_RELEASE
                .key(&claim.redis_key)
                .arg(&claim.owner)
                .arg(lock_ms)
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_fingerprints() {
        assert!(valid_key("a4e2c8f0-1234-5678-abcd-ef0123456789"));
        assert!(!valid_key(""));
        assert!(!valid_key(&"k".repeat(256)));
        assert!(!valid_key("bad\nkey"));
        assert_ne!(
            fingerprint("POST", "/v1/a", "{}"),
            fingerprint("POST", "/v1/b", "{}")
        );
        assert_eq!(
            fingerprint("POST", "/v1/a", "{}"),
            fingerprint("POST", "/v1/a", "{}")
        );
    }
}
