//! The secret that proves a 3-D Secure completion came through the issuer's page (see
//! [`super::three_ds`] for why): made for each challenge, kept as a digest on the intent, taken
//! back out of what the issuer posts. Pure; the intent's finish and continuation use it, and
//! the pages module only looks down at it.

use calmony_protocol::ids;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The field the issuer's page is given the session secret in and posts it back in (EMV
/// 3-D Secure's merchant data, echoed unchanged by the ACS).
pub const SESSION_FIELD: &str = "threeDSSessionData";

/// The secret of one attempt's challenge, as kept: its SHA-256 (the secret itself travels
/// only in the challenge's fields and the browser) and the attempt it belongs to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    pub attempt: String,
    pub sha256: String,
}

impl Session {
    /// A new secret (32 letters and digits, about 190 bits) for `attempt`'s challenge, and
    /// what the intent keeps of it.
    pub fn new(attempt: &str) -> (String, Session) {
        let secret = ids::random_alnum(32);
        let kept = Session {
            attempt: attempt.to_string(),
            sha256: digest(&secret),
        };
        (secret, kept)
    }
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `presented` is the secret of the session kept for the intent's current
/// `attempt`. Compared in constant time; no session, no attempt or no secret never matches.
pub fn session_matches(
    kept: Option<&Session>,
    attempt: Option<&str>,
    presented: Option<&str>,
) -> bool {
    let (Some(kept), Some(attempt), Some(presented)) = (kept, attempt, presented) else {
        return false;
    };
    let same = digest(presented).as_bytes().ct_eq(kept.sha256.as_bytes());
    bool::from(same) && kept.attempt == attempt && !kept.sha256.is_empty()
}

/// Take the session secret out of what the issuer posted: it is ours, not the ACS's, so it is
/// not forwarded to the gateway. Several copies: none is taken (never a match).
pub fn take_session(posted: &mut Vec<(String, String)>) -> Option<String> {
    let mut found: Vec<String> = Vec::new();
    posted.retain(|(name, value)| {
        if name == SESSION_FIELD {
            found.push(value.clone());
            false
        } else {
            true
        }
    });
    match found.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// The challenge's fields for the issuer's page, with the session secret in them.
pub fn with_session(mut fields: Vec<(String, String)>, secret: String) -> Vec<(String, String)> {
    fields.retain(|(name, _)| name != SESSION_FIELD);
    fields.push((SESSION_FIELD.to_string(), secret));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_current_attempts_secret_matches() {
        let (secret, kept) = Session::new("att_1");
        let (other, _) = Session::new("att_1");
        for (kept, attempt, presented, expected) in [
            (Some(&kept), Some("att_1"), Some(secret.as_str()), true),
            (Some(&kept), Some("att_1"), None, false),
            (Some(&kept), Some("att_1"), Some(""), false),
            (Some(&kept), Some("att_1"), Some(other.as_str()), false),
            (Some(&kept), Some("att_2"), Some(secret.as_str()), false),
            (Some(&kept), None, Some(secret.as_str()), false),
            (None, Some("att_1"), Some(secret.as_str()), false),
        ] {
            assert_eq!(
                session_matches(kept, attempt, presented),
                expected,
                "{attempt:?} {presented:?}"
            );
        }
        assert!(
            secret.len() >= 22,
            "at least 128 bits of letters and digits"
        );
        assert_ne!(kept.sha256, secret, "only the digest is kept");
    }

    #[test]
    fn the_secret_is_taken_out_of_what_is_forwarded() {
        let mut posted = vec![
            ("cres".to_string(), "c".to_string()),
            (SESSION_FIELD.to_string(), "s".to_string()),
        ];
        assert_eq!(take_session(&mut posted).as_deref(), Some("s"));
        assert_eq!(posted, vec![("cres".to_string(), "c".to_string())]);
        let mut twice = vec![
            (SESSION_FIELD.to_string(), "s".to_string()),
            (SESSION_FIELD.to_string(), "t".to_string()),
        ];
        assert_eq!(take_session(&mut twice), None);
        assert!(twice.is_empty());
    }
}
