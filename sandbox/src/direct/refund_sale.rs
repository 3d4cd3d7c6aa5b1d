//! REFUND_SALE: give back some or all of a settled SALE.
//!
//! Only a settled (`accepted`) sale can be refunded; before settlement the merchant must CANCEL
//! or re-CAPTURE for less, so an unsettled sale gets 65541. Each refund is a new transaction
//! with its own `xref`, which settles at the next run; the sale keeps the running total, and a
//! refund that would take the total past what was received is 65573 "Amounts do not tally".
//! The sale and the refund are written in one change, so two concurrent refunds cannot both
//! spend the same remainder.

use calmony_protocol::cardstream::Fields;

use super::answer::{
    AMOUNTS_DO_NOT_TALLY, MISMATCH, NOT_ALLOWED, duplicate, echo, invalid, missing, refusal_about,
    set_outcome,
};
use super::request::{is_sale, non_empty, parse_amount};
use super::retry::retried;
use crate::cards;
use crate::error::SandboxError;
use crate::gateway::Gateway;
use crate::ledger::LedgerEntry;
use crate::transactions::{self, Applied, Change, State, Transaction};

/// Answer a REFUND_SALE. Moves money back: creates a REFUND_SALE transaction in `captured`
/// (to be `accepted` at settlement) and adds to the sale's refunded total.
pub(super) async fn refund_sale(gw: &Gateway, request: &Fields) -> Result<Fields, SandboxError> {
    retried(request, || attempt(gw, request)).await
}

async fn attempt(gw: &Gateway, request: &Fields) -> Result<Option<Fields>, SandboxError> {
    let merchant = gw.config.merchant_id.as_str();
    let Some(xref) = non_empty(request, "xref") else {
        return Ok(Some(missing(request, "xref")));
    };
    let Some(loaded) = transactions::load_for(&gw.store, merchant, xref).await? else {
        return Ok(Some(invalid(request, "xref")));
    };
    let mut sale = loaded.txn.clone();
    if !is_sale(&sale) || sale.state != State::Accepted {
        return Ok(Some(refusal_about(
            request,
            &sale,
            NOT_ALLOWED,
            "Action not allowed",
        )));
    }
    if let Some(number) = non_empty(request, "cardNumber")
        && cards::fingerprint(number) != sale.card.fingerprint
    {
        return Ok(Some(refusal_about(
            request,
            &sale,
            MISMATCH,
            "Request mismatch",
        )));
    }
    let remaining = sale.amount_captured.saturating_sub(sale.amount_refunded);
    let amount = match non_empty(request, "amount") {
        None => remaining,
        Some(text) => match parse_amount(text) {
            Some(amount) if amount > 0 => amount,
            _ => return Ok(Some(invalid(request, "amount"))),
        },
    };
    if amount == 0 || amount > remaining {
        return Ok(Some(refusal_about(
            request,
            &sale,
            AMOUNTS_DO_NOT_TALLY,
            "Amounts do not tally",
        )));
    }

    let mut refund = Transaction::begin(
        &gw.ids,
        &gw.store,
        merchant,
        "REFUND_SALE",
        sale.card.clone(),
    )
    .await?;
    refund.kind.clone_from(&sale.kind);
    refund.state = State::Captured;
    refund.amount = amount;
    refund.amount_authorised = amount;
    refund.amount_captured = amount;
    refund.currency_code.clone_from(&sale.currency_code);
    refund.transaction_unique = non_empty(request, "transactionUnique").map(str::to_owned);
    refund.order_ref = non_empty(request, "orderRef")
        .map(str::to_owned)
        .or_else(|| sale.order_ref.clone());
    refund.original_xref = Some(sale.xref.clone());
    sale.amount_refunded += amount;

    let mut answer = echo(request);
    set_outcome(&mut answer, 0, "REFUNDACCEPTED");
    refund.describe(&mut answer);
    answer.insert("amountRefunded", sale.amount_refunded.to_string());
    refund.remember(&answer);

    let mut change = Change::new();
    change
        .update(&loaded, &sale)?
        .create(&refund)?
        .settle_later(&refund.xref, true)
        .ledger(&LedgerEntry::of("REFUND_SALE", &refund, amount))?;
    if let Some(unique) = &refund.transaction_unique {
        change.claim_unique(merchant, unique, &refund.xref);
    }
    Ok(match change.apply(&gw.store).await? {
        Applied::Done => Some(answer),
        Applied::Duplicate => Some(duplicate(request)),
        Applied::Conflict | Applied::Gone => None,
    })
}
