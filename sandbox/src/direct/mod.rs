//! The Direct API, `POST /sandbox/direct/`: Cardstream's server-to-server endpoint, simulated.
//!
//! A request is read the way the gateway reads it (PHP form rules, via the protocol codec),
//! its signature is checked before anything else, and it is dispatched on `action`, one module
//! per action as the gateway documents them. Every answer, errors included, echoes the request
//! minus `cardNumber` and `cardCVV`, adds `responseCode`, `responseMessage` and
//! `responseStatus`, and is signed in full, so the daemon's client exercises exactly the code
//! it runs against Cardstream.
//!
//! Errors that concern no transaction (a bad signature, a missing field) are answered with
//! state `finished` and no `xref`: nothing was created, so there is nothing to query. An action
//! that loses a race with a concurrent change to the same transaction reads again and decides
//! again (up to [`retry::ATTEMPTS`] times), so every answer reflects one consistent state.
//!
//! Simulator extensions, beyond the real gateway: QUERY by `transactionUnique` (for a daemon
//! that lost a SALE's answer and knows only its own id), and the fault injection of
//! [`crate::faults`].
//!
//! - [`answer`]: response codes, the echo and the refusals every action answers with.
//! - [`request`]: reading fields and amounts, and the transaction a request names by `xref`.
//! - [`retry`]: reading and deciding again after losing a race.
//! - one module per action: `verify`, `sale`, `capture`, `cancel`, `refund_sale`, `query`,
//!   and `continuation` (the 3-D Secure continuation of a SALE).

pub(crate) mod answer;
mod cancel;
mod capture;
pub(crate) mod continuation;
mod query;
mod refund_sale;
pub(crate) mod request;
mod retry;
pub(crate) mod sale;
pub(crate) mod verify;

use std::time::Duration;

use calmony_protocol::cardstream::{
    Coverage, Fields, FormError, SignatureError, codes, verify as verify_signature,
};

use crate::error::SandboxError;
use crate::faults::{self, Counted, Faults};
use crate::gateway::Gateway;
use crate::memory::{AS_OF, AsOf};
use crate::reply::{self, Reply};
use answer::{DB_ERROR, MALFORMED, MISSING_REQUEST, invalid, missing, refusal};

/// Serve one Direct API request, faults included.
///
/// While the faults this simulator last read were none, a request is served without reading
/// them again, as of their generation ([`crate::memory`]); if they have changed it is served
/// again below, on the faults read first.
pub(crate) async fn handle(gw: &Gateway, body: &[u8]) -> Reply {
    if let Some(generation) = gw.memory.no_faults_at()
        && let Some(answer) = as_of(gw, body, generation).await
    {
        return reply::form(signed(gw, answer, false).encode());
    }
    let parsed = Fields::parse(body);
    let faults = match faults::read(&gw.store).await {
        Ok(seen) => {
            gw.memory.saw(seen);
            seen.faults
        }
        Err(error) => {
            tracing::warn!(%error, "sandbox faults unreadable; serving without them");
            Faults::default()
        }
    };
    if faults.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.delay_ms)).await;
    }
    // Kept for the `fail_next` fault's answer, which echoes the request like any refusal.
    let failing = parsed
        .as_ref()
        .ok()
        .filter(|_| faults.fail_next > 0)
        .cloned();
    // Only a request served as of remembered faults can find them changed.
    let mut answer = answer(gw, body, parsed)
        .await
        .unwrap_or_else(|| refusal(&Fields::new(), DB_ERROR, "DB ERROR"));
    if let Some(request) = failing {
        answer = failed_by_fault(gw, &request, answer).await;
    }
    let answer = signed(gw, answer, faults.tamper_signatures);
    if faults.drop_next > 0
        && faults::claim(&gw.store, Counted::Drop)
            .await
            .unwrap_or(false)
    {
        tracing::info!("sandbox fault: dropping a processed /direct/ answer");
        tokio::time::sleep(gw.drop_hold).await;
        return reply::empty();
    }
    reply::form(answer.encode())
}

/// The answer to a request served as of faults generation `generation`, when none were set:
/// `None` if they have changed since (the request wrote nothing; serve it on the faults as
/// they are). A request that changed nothing checks the generation before it answers.
async fn as_of(gw: &Gateway, body: &[u8], generation: u64) -> Option<Fields> {
    let as_of = AsOf::new(generation);
    let answer = AS_OF
        .scope(as_of.clone(), answer(gw, body, Fields::parse(body)))
        .await?;
    if as_of.applied() {
        return Some(answer);
    }
    match faults::read(&gw.store).await {
        Ok(seen) if seen.generation == generation => Some(answer),
        Ok(seen) => {
            gw.memory.saw(seen);
            None
        }
        Err(_) => None,
    }
}

/// `answer` signed with the account's secret (or, under the `tamper_signatures` fault, the
/// wrong one), unless the simulator has no secret.
fn signed(gw: &Gateway, mut answer: Fields, tampered: bool) -> Fields {
    let secret = gw.config.secret.as_str();
    if !secret.is_empty() {
        if tampered {
            answer.add_signature(&format!("{secret}-tampered"), None);
        } else {
            answer.add_signature(secret, None);
        }
    }
    answer
}

/// Under the `fail_next` fault, a processed request's answer replaced by 65548 (`DB ERROR`),
/// when one of the N is left to claim. A QUERY is never failed: it changes nothing.
pub(crate) async fn failed_by_fault(gw: &Gateway, request: &Fields, answer: Fields) -> Fields {
    if request.get("action") == Some("QUERY")
        || !faults::claim(&gw.store, Counted::Fail)
            .await
            .unwrap_or(false)
    {
        return answer;
    }
    tracing::info!("sandbox fault: a processed request answered 65548");
    refusal(request, DB_ERROR, "DB ERROR")
}

/// The unsigned answer to a request body (`parsed`: the body parsed, once, by [`handle`]);
/// `None` if it was served as of remembered faults that have changed ([`as_of`]).
async fn answer(gw: &Gateway, body: &[u8], parsed: Result<Fields, FormError>) -> Option<Fields> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Some(refusal(&Fields::new(), MISSING_REQUEST, "Missing request"));
    }
    let request = match parsed {
        Ok(fields) => fields,
        Err(_) => return Some(refusal(&Fields::new(), MALFORMED, "Request malformed")),
    };
    if !gw.config.secret.is_empty() {
        match verify_signature(&request, Some(&gw.config.secret)) {
            Ok(Coverage::All) => {}
            Err(SignatureError::MissingSignature) => {
                return Some(refusal(
                    &request,
                    codes::MISSING_SIGNATURE,
                    "Missing signature",
                ));
            }
            // A partial signature leaves fields anyone could have changed: not on /direct/.
            Ok(_) | Err(_) => {
                return Some(refusal(
                    &request,
                    codes::INVALID_SIGNATURE,
                    "Invalid signature",
                ));
            }
        }
    }
    match request.get("merchantID").filter(|m| !m.is_empty()) {
        None => return Some(missing(&request, "merchantID")),
        Some(id) if id != gw.config.merchant_id => {
            return Some(refusal(
                &request,
                codes::INVALID_CREDENTIALS,
                "Invalid credentials",
            ));
        }
        Some(_) => {}
    }
    let action = request.get("action").unwrap_or_default().to_owned();
    let result = if request.get("threeDSRef").is_some() {
        continuation::continue_sale(gw, &request).await
    } else {
        match action.as_str() {
            "" => Ok(missing(&request, "action")),
            "VERIFY" => verify::verify(gw, &request).await,
            "SALE" => sale::sale(gw, &request).await,
            "CAPTURE" => capture::capture(gw, &request).await,
            "CANCEL" => cancel::cancel(gw, &request).await,
            "REFUND_SALE" => refund_sale::refund_sale(gw, &request).await,
            "QUERY" => query::query(gw, &request).await,
            _ => Ok(invalid(&request, "action")),
        }
    };
    let answer = match result {
        Ok(answer) => answer,
        Err(SandboxError::FaultsChanged) => return None,
        Err(error) => {
            tracing::error!(%error, action, "sandbox /direct/ request failed");
            refusal(&request, DB_ERROR, "DB ERROR")
        }
    };
    tracing::info!(
        action,
        response_code = answer.get("responseCode").unwrap_or_default(),
        xref = answer.get("xref").unwrap_or_default(),
        state = answer.get("state").unwrap_or_default(),
        "sandbox /direct/ answered"
    );
    Some(answer)
}
