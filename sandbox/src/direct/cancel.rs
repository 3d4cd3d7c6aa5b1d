//! CANCEL: stop an authorised SALE from settling (a full refund on the day, §3).
//!
//! Allowed while the SALE is `approved` or `captured`; once settled it is too late, and the
//! merchant must REFUND_SALE instead. Irreversible.

use calmony_protocol::cardstream::Fields;

use super::answer::{NOT_ALLOWED, echo, invalid, missing, refusal_about, set_outcome};
use super::request::{is_sale, non_empty};
use super::retry::retried;
use crate::error::SandboxError;
use crate::gateway::Gateway;
use crate::ledger::LedgerEntry;
use crate::transactions::{self, Applied, Change, State};

/// Answer a CANCEL. Moves money back: `approved` or `captured` to `canceled`, out of the next
/// settlement run.
pub(super) async fn cancel(gw: &Gateway, request: &Fields) -> Result<Fields, SandboxError> {
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
    let released = txn.amount_received();
    txn.state = State::Canceled;
    let mut answer = echo(request);
    set_outcome(&mut answer, 0, "Transaction cancelled.");
    txn.describe(&mut answer);
    let mut change = Change::new();
    change
        .update(&loaded, &txn)?
        .settle_later(&txn.xref, false)
        .ledger(&LedgerEntry::of("CANCEL", &txn, released))?;
    Ok(match change.apply(&gw.store).await? {
        Applied::Done => Some(answer),
        _ => None,
    })
}
