//! What the daemon's 3-D Secure pages need from a payment intent: the pending challenge (to
//! send the browser to the issuer's page), and the continuation when the issuer posts back.

use calmony_protocol::payment_intent::{PaymentIntent, status};
use calmony_protocol::{ApiError, Mode};
use subtle::ConstantTimeEq;

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

/// The issuer posted back: continue with the gateway, then say where the browser goes.
pub async fn complete(
    p: &Payments,
    scope: &Scope,
    id: &str,
    posted: Vec<(String, String)>,
) -> Result<Next, ApiError> {
    let intent = super::intents::continue_challenge(p, scope, id, posted).await?;
    let challenge = p.load(scope, None, id).await?.internal.challenge;
    Ok(next(intent, challenge))
}

fn next(intent: PaymentIntent, challenge: Option<Challenge>) -> Next {
    match (intent.status.as_str(), challenge) {
        (status::REQUIRES_ACTION, Some(c)) => Next::Challenge(c),
        (status::PROCESSING, _) => Next::Processing(intent),
        _ => Next::Done(intent),
    }
}
