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
//! changes nothing. The secret itself lives in [`super::three_ds_session`].

use calmony_protocol::payment_intent::PaymentIntent;
use calmony_protocol::{ApiError, Mode};
use subtle::ConstantTimeEq;

pub use super::three_ds_session::{
    SESSION_FIELD, Session, session_matches, take_session, with_session,
};
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
