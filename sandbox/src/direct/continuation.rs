//! The 3-D Secure continuation: `threeDSRef` and `threeDSResponse[cres]` finish a SALE that
//! was answered 65802.
//!
//! The `threeDSRef` must still be live (else 65537: unknown, expired or already used), the
//! `cres` must be the one the ACS issued for the same transaction (else 65542, as for any
//! continuation whose details do not match the original), and re-sent card details or amount
//! must match too. Then Y or A authorises exactly as the SALE would have with that result; N or
//! R refuses with 65803. The `threeDSRef` is consumed in the same change, so a retried
//! continuation is 65537 and never a second charge; the outcome can then be read by QUERY.

use calmony_protocol::cardstream::Fields;

use super::answer::{GENERAL_ERROR, MISMATCH, echo, refusal};
use super::request::{non_empty, parse_amount};
use super::retry::retried;
use super::sale::{book, conclude, refuse_after_three_ds};
use crate::cards;
use crate::clock::UtcTime;
use crate::error::SandboxError;
use crate::gateway::Gateway;
use crate::issuer::{self, Sale, TxnType};
use crate::transactions::{self, Applied, Change, State};
use crate::{keys, three_ds};

/// Fields of the 65802 answer that belong to the challenge, not to the final answer.
const CHALLENGE_FIELDS: [&str; 3] = ["threeDSURL", "threeDSRequest", "threeDSRef"];

/// Answer a continuation. Moves money on Y or A: the pending SALE goes from `received` to
/// `captured` (or `approved`), else to `declined`.
pub(crate) async fn continue_sale(gw: &Gateway, request: &Fields) -> Result<Fields, SandboxError> {
    retried(request, || attempt(gw, request)).await
}

fn unknown_ref(request: &Fields) -> Fields {
    refusal(
        request,
        GENERAL_ERROR,
        "3DS reference unknown, expired or already used",
    )
}

async fn attempt(gw: &Gateway, request: &Fields) -> Result<Option<Fields>, SandboxError> {
    let Some(reference) = non_empty(request, "threeDSRef") else {
        return Ok(Some(unknown_ref(request)));
    };
    let ref_key = keys::three_ds_ref(reference);
    let Some(xref) = transactions::get_string(&gw.store, &ref_key).await? else {
        return Ok(Some(unknown_ref(request)));
    };
    let Some(loaded) = transactions::load_for(&gw.store, &gw.config.merchant_id, &xref).await?
    else {
        return Ok(Some(unknown_ref(request)));
    };
    let mut txn = loaded.txn.clone();
    let Some(challenge) = txn.challenge.take() else {
        return Ok(Some(unknown_ref(request)));
    };
    if txn.state != State::Received {
        return Ok(Some(unknown_ref(request)));
    }
    let mismatch = || refusal(request, MISMATCH, "Request mismatch");
    let Some(cres) = non_empty(request, "threeDSResponse[cres]") else {
        return Ok(Some(mismatch()));
    };
    let Some(result) = three_ds::resolve_cres(gw, cres).await? else {
        return Ok(Some(mismatch()));
    };
    if result.xref != txn.xref {
        return Ok(Some(mismatch()));
    }
    if non_empty(request, "cardNumber")
        .is_some_and(|n| cards::fingerprint(n) != txn.card.fingerprint)
        || non_empty(request, "amount").is_some_and(|a| parse_amount(a) != Some(txn.amount))
    {
        return Ok(Some(mismatch()));
    }

    // The final answer: the original request's echo, the continuation's fields over it.
    let mut answer = txn.remembered();
    for name in CHALLENGE_FIELDS {
        answer.remove(name);
    }
    for (name, value) in transactions::flatten(&echo(request)) {
        answer.insert(&name, value);
    }
    let mut change = Change::new();
    if issuer::refused(result.outcome) {
        refuse_after_three_ds(&mut txn, &mut answer, result.outcome);
    } else {
        let decision = issuer::authorise(&Sale {
            card: &txn.card,
            expired: txn.card.expired(&UtcTime::now()),
            amount: txn.amount,
            kind: TxnType::parse(&txn.kind).unwrap_or(TxnType::Ecom),
            authorisation_code: challenge.authorisation_code.as_deref(),
            three_ds: Some(result.outcome),
        });
        conclude(&mut txn, decision, &mut answer);
        three_ds::report(&mut answer, &txn.card, result.outcome);
        book(&txn, &mut change)?;
    }
    txn.remember(&answer);
    change
        .take(&ref_key)
        .take(&keys::cres(cres))
        .update(&loaded, &txn)?;
    Ok(match change.apply(&gw.store).await? {
        Applied::Done => Some(answer),
        Applied::Gone => Some(unknown_ref(request)),
        Applied::Conflict | Applied::Duplicate => None,
    })
}
