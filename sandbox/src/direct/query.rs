//! QUERY: what happened to a transaction, answered with its original response as it stands now.
//!
//! By `xref`, as the gateway documents, or (a simulator extension) by `transactionUnique`: a
//! daemon whose SALE timed out knows only its own id, and this is how it learns whether the
//! card was charged before deciding anything. The answer replays the transaction's last
//! response (its code, message, amounts, card, `transactionUnique`) with the current `state`
//! and amounts, `action=QUERY`, and any other QUERY field the original lacks.

use calmony_protocol::cardstream::Fields;

use super::answer::{GENERAL_ERROR, echo, invalid, missing, refusal};
use super::request::non_empty;
use crate::error::SandboxError;
use crate::gateway::Gateway;
use crate::keys;
use crate::transactions::{self, Loaded};

/// Answer a QUERY. Changes nothing.
pub(super) async fn query(gw: &Gateway, request: &Fields) -> Result<Fields, SandboxError> {
    let merchant = gw.config.merchant_id.as_str();
    let found: Option<Loaded> = if let Some(xref) = non_empty(request, "xref") {
        match transactions::load_for(&gw.store, merchant, xref).await? {
            Some(loaded) => Some(loaded),
            None => return Ok(invalid(request, "xref")),
        }
    } else if let Some(unique) = non_empty(request, "transactionUnique") {
        match transactions::get_string(&gw.store, &keys::unique(merchant, unique)).await? {
            Some(xref) => transactions::load_for(&gw.store, merchant, &xref).await?,
            None => None,
        }
    } else {
        return Ok(missing(request, "xref"));
    };
    let Some(Loaded { txn, .. }) = found else {
        return Ok(refusal(request, GENERAL_ERROR, "Transaction not found"));
    };
    // The original's fields win (its transactionUnique, amount, orderRef), so a caller that
    // checks the echo against its own order checks the transaction, not its own question.
    let mut answer = txn.remembered();
    for (name, value) in transactions::flatten(&echo(request)) {
        if answer.get(&name).is_none() {
            answer.insert(&name, value);
        }
    }
    answer
        .insert("action", "QUERY")
        .insert("xref", txn.xref.as_str())
        .insert("state", txn.state.as_str());
    if txn.amount_authorised > 0 {
        answer.insert("amountReceived", txn.amount_received().to_string());
    }
    if txn.amount_refunded > 0 {
        answer.insert("amountRefunded", txn.amount_refunded.to_string());
    }
    Ok(answer)
}
