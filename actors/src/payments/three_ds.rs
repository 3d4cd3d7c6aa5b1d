//! What the daemon's 3-D Secure pages need from a payment intent: the pending challenge (to
//! send the browser to the issuer's page), and the continuation when the issuer posts back.
//!
//! The continuation URL (`/pay/3ds/{project}/{mode}/{intent}/complete`) is built from ids
//! alone, so it cannot be the proof that the cardholder went through the issuer's page:
//! whoever posts there decides the outcome of a payment in progress and is sent on with the
//! client secret. Real 3-D Secure carries the proof through the browser (the CRes, and the
//! merchant's own `threeDSSessionData`, which the ACS posts back unchanged). So each
//! challenge gets a [`Session`]: a random secret added to the fields posted to the issuer's
//! page as `threeDSSessionData`, of which the intent keeps the SHA-256 and the attempt it
//! belongs to. A completion without the secret of the intent's current attempt is a 404 and
//! changes nothing.

use calmony_protocol::payment_intent::PaymentIntent;
use calmony_protocol::{ApiError, Mode, ids};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::transitions::IntentStatus;
use super::{Challenge, Payments};
use crate::store::Scope;

/// Where the browser should go next.
pub enum Next {
    /// Post these fields to the issuer's page.
    Challenge(Challenge),
    /// Finished (or never needed): go back to the merchant with this intent.
    Done(PaymentIntent),
    /// Still with the gateway: show a wait page that refreshes.
    Processing(PaymentIntent),
}

pub fn scope(project: &str, mode: &str) -> Option<Scope> {
    Mode::parse(mode).map(|m| Scope::new(project.to_string(), m))
}

/// The challenge of an intent in `requires_action`, if the client secret matches.
pub async fn page(
    p: &Payments,
    scope: &Scope,
    id: &str,
    client_secret: &str,
) -> Result<Next, ApiError> {
    let loaded = p.load(scope, None, id).await?;
    let expected = loaded.intent.client_secret.as_bytes();
    if !bool::from(expected.ct_eq(client_secret.as_bytes())) {
        return Err(ApiError::no_such("payment_intent", id, "intent"));
    }
    Ok(next(loaded.intent, loaded.internal.challenge))
}

/// The issuer posted back: continue with the gateway, then say where the browser goes. A post
/// without the challenge's session secret is a 404 (see the module documentation).
pub async fn complete(
    p: &Payments,
    scope: &Scope,
    id: &str,
    mut posted: Vec<(String, String)>,
) -> Result<Next, ApiError> {
    let presented = take_session(&mut posted);
    let intent =
        super::intents::continue_challenge(p, scope, id, presented.as_deref(), posted).await?;
    let challenge = p.load(scope, None, id).await?.internal.challenge;
    Ok(next(intent, challenge))
}

fn next(intent: PaymentIntent, challenge: Option<Challenge>) -> Next {
    match (IntentStatus::of(&intent), challenge) {
        (Some(IntentStatus::RequiresAction), Some(c)) => Next::Challenge(c),
        (Some(IntentStatus::Processing), _) => Next::Processing(intent),
        _ => Next::Done(intent),
    }
}

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
