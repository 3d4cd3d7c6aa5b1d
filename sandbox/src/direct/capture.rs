//! CAPTURE: take an authorised SALE's money, all of it or less.
//!
//! Allowed while the SALE is `approved` (manual capture) or `captured` and not yet settled; a
//! second, lower CAPTURE on a captured sale lowers the amount that will settle, which is how a
//! partial refund is made before settlement (§3).

use calmony_protocol::cardstream::Fields;

use super::answer::{NOT_ALLOWED, echo, invalid, missing, refusal_about, set_outcome};
use super::request::{is_sale, non_empty, parse_amount};
use super::retry::retried;
use crate::error::SandboxError;
use crate::gateway::Gateway;
use crate::ledger::LedgerEntry;
use crate::transactions::{self, Applied, Change, State};

/// Answer a CAPTURE. Moves money: `approved` or `captured` to `captured`, with the amount
/// that will settle.
pub(super) async fn capture(gw: &Gateway, request: &Fields) -> Result<Fields, SandboxError> {
    retried(request, || attempt(gw, request)).await
}

async fn attempt(gw: &Gateway, request: &Fields) -> Result<Option<Fields>, SandboxError> {
    let Some(xref) = non_empty(request, "xref") else {
        return Ok(Some(missing(request, "xref")));
    };
    let Some(loaded) = transactions::load_for(&gw.store, &gw.config.merchant_id, xref).await?
    else {
        return Ok(Some(invalid(request, "xref")));
    };
    let mut txn = loaded.txn.clone();
    if !is_sale(&txn) || !matches!(txn.state, State::Approved | State::Captured) {
        return Ok(Some(refusal_about(
            request,
            &txn,
            NOT_ALLOWED,
            "Action not allowed",
        )));
    }
    let amount = match non_empty(request, "amount") {
        None => txn.amount_authorised,
        Some(text) => match parse_amount(text) {
            Some(amount) if amount > 0 && amount <= txn.amount_authorised => amount,
            _ => return Ok(Some(invalid(request, "amount"))),
        },
    };
    txn.state = State::Captured;
    txn.amount_captured = amount;
    if txn.captured_at.is_none() {
        txn.captured_at = Some(crate::clock::UtcTime::now().timestamp());
    }
    let mut answer = echo(request);
    set_outcome(&mut answer, 0, "CAPTURED");
    txn.describe(&mut answer);
    let mut change = Change::new();
    change
        .update(&loaded, &txn)?
        .settle_later(&txn.xref, true)
        .ledger(&LedgerEntry::of("CAPTURE", &txn, amount))?;
    Ok(match change.apply(&gw.store).await? {
        Applied::Done => Some(answer),
        _ => None,
    })
}
