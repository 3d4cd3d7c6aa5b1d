//! The identities a transaction and its tokens get: `transactionID`s reserved from Redis a block
//! at a time, `xref`s shaped like the gateway's, and single-use tokens.

use calmony_actors::Store;
use rand::Rng;

use crate::clock::{UtcTime, xref_prefix};
use crate::error::SandboxError;
use crate::keys;

/// How many `transactionID`s one `INCRBY` reserves.
const ID_BLOCK: u64 = 100;

/// Numeric `transactionID`s, unique across every simulator sharing the Redis: each takes a
/// block of [`ID_BLOCK`] from the counter and hands them out in order, so a transaction costs
/// no round trip of its own for its number. Like Cardstream's, the numbers rise but are not
/// gap-free: a restart forgets the rest of its block, and simulators interleave blocks.
#[derive(Debug, Default)]
pub(crate) struct IdBlock {
    /// `(next, end)`: the ids not yet handed out, `next..end`.
    range: tokio::sync::Mutex<(u64, u64)>,
}

impl IdBlock {
    pub(crate) async fn next(&self, store: &Store) -> Result<u64, SandboxError> {
        let mut range = self.range.lock().await;
        if range.0 >= range.1 {
            let mut c = store.conn();
            let end: u64 = store
                .run(async move {
                    redis::cmd("INCRBY")
                        .arg(keys::TRANSACTION_ID)
                        .arg(ID_BLOCK)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            *range = (end + 1 - ID_BLOCK, end + 1);
        }
        let id = range.0;
        range.0 += 1;
        Ok(id)
    }
}

/// `YYMMDDHH` and 15 uppercase letters and digits, as the gateway's are.
pub(super) fn new_xref(now: &UtcTime) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..15)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect();
    format!("{}{tail}", xref_prefix(now))
}

/// An opaque single-use token (`threeDSRef`, `creq`, `cres`): 40 letters and digits.
pub fn new_token() -> String {
    random_alnum(40)
}

/// `len` random letters and digits.
pub fn random_alnum(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xrefs_look_like_the_gateways() {
        let now = UtcTime::from_unix(1_575_376_496);
        let xref = new_xref(&now);
        assert_eq!(xref.len(), 23);
        assert!(xref.starts_with("19120312"));
        assert!(
            xref.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
        assert_ne!(new_xref(&now), xref);
        assert_eq!(new_token().len(), 40);
    }
}
