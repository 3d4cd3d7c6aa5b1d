//! VERIFY: check a card without charging it, so it can be saved and charged later by `xref`.
//!
//! The amount must be 0. Only an unknown test card (5) or an expired one (54) is refused:
//! Stripe's declining cards verify fine, as they attach fine at Stripe, and fail when charged.
//! The verified transaction keeps the card profile that later SALEs clone.

use calmony_protocol::cardstream::Fields;

use super::answer::{duplicate, echo, invalid, missing, refusal, set_outcome};
use super::request::{non_empty, origin, parse_amount};
use super::retry::retried;
use crate::cards;
use crate::clock::UtcTime;
use crate::error::SandboxError;
use crate::gateway::Gateway;
use crate::issuer::{self, Decision, TxnType};
use crate::transactions::{Applied, Change, State, Transaction};

/// Answer a VERIFY. Creates a transaction that ends `verified` (never settled) or `declined`;
/// no money moves.
pub(crate) async fn verify(gw: &Gateway, request: &Fields) -> Result<Fields, SandboxError> {
    retried(request, || attempt(gw, request)).await
}

async fn attempt(gw: &Gateway, request: &Fields) -> Result<Option<Fields>, SandboxError> {
    let merchant = gw.config.merchant_id.as_str();
    match non_empty(request, "amount").map(parse_amount) {
        None | Some(Some(0)) => {}
        Some(_) => return Ok(Some(invalid(request, "amount"))),
    }
    let kind = match non_empty(request, "type") {
        None => TxnType::Ecom,
        Some(text) => match TxnType::parse(text) {
            Some(kind) => kind,
            None => return Ok(Some(invalid(request, "type"))),
        },
    };
    let origin = match origin(gw, request).await? {
        Ok(origin) => origin,
        Err(answer) => return Ok(Some(answer)),
    };
    let card = match cards::from_request(request) {
        Err(e) => return Ok(Some(refusal(request, e.response_code(), &e.to_string()))),
        Ok(Some(card)) => card,
        Ok(None) => match origin.as_ref() {
            None => return Ok(Some(missing(request, "cardNumber"))),
            Some(origin) => {
                let mut card = origin.card.clone();
                match cards::expiry(request) {
                    Ok(Some((month, year))) => (card.exp_month, card.exp_year) = (month, year),
                    Ok(None) => {}
                    Err(e) => return Ok(Some(refusal(request, e.response_code(), &e.to_string()))),
                }
                card
            }
        },
    };

    let mut txn = Transaction::begin(&gw.ids, &gw.store, merchant, "VERIFY", card).await?;
    txn.kind = kind.as_str().to_owned();
    if let Some(currency) = non_empty(request, "currencyCode") {
        currency.clone_into(&mut txn.currency_code);
    }
    txn.transaction_unique = non_empty(request, "transactionUnique").map(str::to_owned);
    txn.order_ref = non_empty(request, "orderRef").map(str::to_owned);
    let mut answer = echo(request);
    match issuer::verify(&txn.card, txn.card.expired(&UtcTime::now())) {
        Decision::Approve { .. } => {
            txn.state = State::Verified;
            set_outcome(&mut answer, 0, "CARD OK");
        }
        Decision::Refuse { code, message, .. } => {
            txn.state = State::Declined;
            set_outcome(&mut answer, code, message);
        }
        Decision::ProcessorError => {
            txn.state = State::Finished;
            set_outcome(
                &mut answer,
                super::answer::PROCESSOR_ERROR,
                "Processor error",
            );
        }
    }
    txn.describe(&mut answer);
    txn.remember(&answer);
    let mut change = Change::new();
    change.create(&txn)?;
    if let Some(unique) = &txn.transaction_unique {
        change.claim_unique(merchant, unique, &txn.xref);
    }
    Ok(match change.apply(&gw.store).await? {
        Applied::Done => Some(answer),
        Applied::Duplicate => Some(duplicate(request)),
        Applied::Conflict | Applied::Gone => None,
    })
}
