//! 3-D Secure: the simulated ACS and the tokens that tie a challenge together.
//!
//! A challenge is three hops, each carried by an opaque token the simulator can resolve:
//! 1. The SALE is answered 65802 with `threeDSURL` (this ACS), `threeDSRequest[creq]` and a
//!    `threeDSRef`. The transaction waits in `received`; nothing is charged.
//! 2. The merchant's page posts the `creq` to the ACS page, where the "cardholder" picks an
//!    outcome. The `creq` is consumed and a `cres` recording the outcome is posted to the
//!    merchant's `threeDSRedirectURL`, with the merchant's `threeDSSessionData` (if it posted
//!    one with the `creq`) unchanged beside it, as an EMV 3-D Secure ACS does.
//! 3. The merchant continues at /direct/ with `threeDSRef` and `threeDSResponse[cres]`. The
//!    `threeDSRef` is consumed in the same atomic change that authorises (or refuses) the
//!    payment, so a continuation can complete once, however often it is retried.
//!
//! Tokens are random, expire after an hour ([`keys::THREE_DS_TTL_MS`]) and point at the
//! transaction by `xref`; the `cres` also carries the outcome, so a forged or swapped one is
//! caught by comparing `xref`s.

use calmony_protocol::cardstream::{Fields, codes};
use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use crate::cards::CardProfile;
use crate::direct::answer::set_outcome;
use crate::error::SandboxError;
use crate::gateway::Gateway;
use crate::reply::{self, Reply};
use crate::transactions::{self, Applied, Change, Loaded, PendingChallenge, State, Transaction};
use crate::{issuer, keys, pages};

/// The 65802 answer's `responseMessage`.
pub const REQUIRED_MESSAGE: &str = "3DS AUTHENTICATION REQUIRED";

/// What the ACS recorded for a `cres`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeResult {
    pub xref: String,
    /// `Y`, `N` or `R`.
    pub outcome: char,
}

/// Put `txn` on hold for a challenge: state `received`, the 65802 answer, and the `creq` and
/// `threeDSRef` tokens written with it.
pub fn start_challenge(
    txn: &mut Transaction,
    answer: &mut Fields,
    change: &mut Change,
    public_base: &str,
    challenge: PendingChallenge,
) {
    txn.state = State::Received;
    txn.challenge = Some(challenge);
    set_outcome(answer, codes::THREE_DS_REQUIRED, REQUIRED_MESSAGE);
    txn.describe(answer);
    let creq = transactions::new_token();
    let reference = transactions::new_token();
    answer
        .insert("threeDSEnrolled", "Y")
        .insert(
            "threeDSURL",
            format!("{}/sandbox/acs", public_base.trim_end_matches('/')),
        )
        .insert("threeDSRequest[creq]", creq.as_str())
        .insert("threeDSRef", reference.as_str());
    change
        .token(&keys::creq(&creq), &txn.xref, keys::THREE_DS_TTL_MS)
        .token(
            &keys::three_ds_ref(&reference),
            &txn.xref,
            keys::THREE_DS_TTL_MS,
        );
}

/// The 3-D Secure result fields of a final answer.
pub fn report(answer: &mut Fields, card: &CardProfile, status: char) {
    let enrolled = if status == 'U' && card.exp_month == 11 {
        "N"
    } else {
        "Y"
    };
    answer
        .insert("threeDSEnrolled", enrolled)
        .insert("threeDSAuthenticated", status.to_string());
    if issuer::authenticated(status) {
        answer
            .insert("threeDSECI", issuer::eci(card, status))
            .insert(
                "threeDSCAVV",
                format!("AAAB{}", transactions::random_alnum(24)),
            );
    }
}

/// The pending transaction a token points at, if it still waits for its challenge.
async fn pending(gw: &Gateway, token_key: &str) -> Result<Option<Loaded>, SandboxError> {
    let Some(xref) = transactions::get_string(&gw.store, token_key).await? else {
        return Ok(None);
    };
    Ok(transactions::load(&gw.store, &xref)
        .await?
        .filter(|l| l.txn.state == State::Received && l.txn.challenge.is_some()))
}

/// Resolve a `cres` to the outcome the ACS recorded.
pub async fn resolve_cres(
    gw: &Gateway,
    cres: &str,
) -> Result<Option<ChallengeResult>, SandboxError> {
    let Some(raw) = transactions::get_string(&gw.store, &keys::cres(cres)).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_str(&raw).ok())
}

/// EMV 3-D Secure's cap on `threeDSSessionData`.
const MAX_SESSION_DATA: usize = 1024;

/// The merchant's `threeDSSessionData`: opaque to the ACS, carried through the challenge and
/// posted back with the `cres` unchanged, so the merchant can tell its own cardholder's
/// return from a forged one. Missing, empty or too long: none.
fn session_data(form: &Fields) -> Option<&str> {
    form.get("threeDSSessionData")
        .filter(|d| !d.is_empty() && d.len() <= MAX_SESSION_DATA)
}

fn bad_request(title: &str, detail: &str) -> Reply {
    reply::html(StatusCode::BAD_REQUEST, pages::problem(title, detail))
}

fn unavailable(error: &SandboxError) -> Reply {
    tracing::error!(%error, "sandbox ACS could not reach its store");
    reply::html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::problem(
            "Sandbox unavailable",
            "The sandbox issuer cannot reach its store; try again shortly.",
        ),
    )
}

/// `GET|POST /sandbox/acs`: the challenge page for a `creq`.
pub async fn challenge_page(gw: &Gateway, form: &Fields) -> Reply {
    let Some(creq) = form.get("creq").filter(|c| !c.is_empty()) else {
        return bad_request(
            "No 3-D Secure challenge",
            "This page needs the creq the merchant's page posts to it.",
        );
    };
    let loaded = match pending(gw, &keys::creq(creq)).await {
        Ok(Some(loaded)) => loaded,
        Ok(None) => {
            return bad_request(
                "Challenge not found",
                "This 3-D Secure challenge is unknown, has expired or was already answered.",
            );
        }
        Err(e) => return unavailable(&e),
    };
    let txn = &loaded.txn;
    let request = txn.remembered();
    let merchant = request
        .get("merchantName")
        .filter(|m| !m.is_empty())
        .unwrap_or(&txn.merchant_id);
    let amount = pages::money(txn.amount, &txn.currency_code);
    reply::html(
        StatusCode::OK,
        pages::challenge(&pages::ChallengeDetails {
            merchant,
            amount: &amount,
            last4: &txn.card.last4,
            creq,
            session_data: session_data(form),
        }),
    )
}

/// `POST /sandbox/acs/complete`: record the cardholder's choice and send the browser back to
/// the merchant with a `cres`.
pub async fn complete(gw: &Gateway, form: &Fields) -> Reply {
    let outcome = match form.get("outcome") {
        Some("Y") => 'Y',
        Some("N") => 'N',
        Some("R") => 'R',
        _ => {
            return bad_request(
                "No outcome chosen",
                "Choose Authenticate, Fail authentication or Reject.",
            );
        }
    };
    let Some(creq) = form.get("creq").filter(|c| !c.is_empty()) else {
        return bad_request("No 3-D Secure challenge", "The form carried no creq.");
    };
    let creq_key = keys::creq(creq);
    let loaded = match pending(gw, &creq_key).await {
        Ok(Some(loaded)) => loaded,
        Ok(None) => {
            return bad_request(
                "Challenge not found",
                "This 3-D Secure challenge is unknown, has expired or was already answered.",
            );
        }
        Err(e) => return unavailable(&e),
    };
    let Some(challenge) = loaded.txn.challenge.as_ref() else {
        return bad_request("Challenge not found", "The transaction is not waiting.");
    };
    let redirect = challenge.redirect_url.as_str();
    if !(redirect.starts_with("https://") || redirect.starts_with("http://")) {
        return bad_request(
            "Cannot return to the merchant",
            "The payment's threeDSRedirectURL is not an http or https URL.",
        );
    }
    let result = ChallengeResult {
        xref: loaded.txn.xref.clone(),
        outcome,
    };
    let Ok(result_json) = serde_json::to_string(&result) else {
        return bad_request(
            "Challenge not recorded",
            "The outcome could not be recorded.",
        );
    };
    let cres = transactions::new_token();
    let mut change = Change::new();
    change
        .take(&creq_key)
        .token(&keys::cres(&cres), &result_json, keys::THREE_DS_TTL_MS);
    match change.apply(&gw.store).await {
        Ok(Applied::Done) => {
            tracing::info!(xref = %result.xref, outcome = %outcome, "sandbox 3-D Secure challenge answered");
            reply::html(
                StatusCode::OK,
                pages::acs_result(redirect, &cres, session_data(form)),
            )
        }
        Ok(_) => bad_request(
            "Challenge not found",
            "This 3-D Secure challenge was already answered.",
        ),
        Err(e) => unavailable(&e),
    }
}
