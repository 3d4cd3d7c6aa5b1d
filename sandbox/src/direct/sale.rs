//! SALE: authorise (and, unless `captureDelay` says otherwise, capture) a payment.
//!
//! The card comes from the request or is cloned from `xref`, and so do `type`, `amount` and
//! `currencyCode` when they are not sent (§7). Then, in order: a guide card's amount must be
//! in the test table (66312, nothing created); 3-D Secure may intervene (a challenge puts the
//! transaction on hold with 65802; a failed frictionless result refuses it with 65803); and the
//! simulated issuer decides. Whatever the outcome a transaction is created, and its
//! `transactionUnique` claimed in the same change, so a retried SALE is a 65554 duplicate and
//! never a second charge.

use calmony_protocol::cardstream::Fields;

use super::answer::{
    CURRENCY_NOT_SUPPORTED, PROCESSOR_ERROR, duplicate, echo, invalid, missing, refusal,
    set_outcome,
};
use super::request::{non_empty, origin, parse_amount};
use super::retry::retried;
use crate::cards::{self, Behaviour};
use crate::clock::UtcTime;
use crate::error::SandboxError;
use crate::gateway::Gateway;
use crate::issuer::{self, Decision, Sale, ThreeDsPlan, TxnType};
use crate::ledger::LedgerEntry;
use crate::three_ds;
use crate::transactions::{Applied, Change, PendingChallenge, State, Transaction};

/// Answer a SALE. Moves money: a new transaction ends `captured` (or `approved` with manual
/// capture) when authorised, else `declined`, `referred`, `finished`, or `received` while a
/// 3-D Secure challenge is pending.
pub(crate) async fn sale(gw: &Gateway, request: &Fields) -> Result<Fields, SandboxError> {
    retried(request, || attempt(gw, request)).await
}

async fn attempt(gw: &Gateway, request: &Fields) -> Result<Option<Fields>, SandboxError> {
    let merchant = gw.config.merchant_id.as_str();
    let origin = match origin(gw, request).await? {
        Ok(origin) => origin,
        Err(answer) => return Ok(Some(answer)),
    };
    let kind = match non_empty(request, "type").or(origin.as_ref().map(|o| o.kind.as_str())) {
        None => return Ok(Some(missing(request, "type"))),
        Some(text) => match TxnType::parse(text) {
            Some(kind) => kind,
            None => return Ok(Some(invalid(request, "type"))),
        },
    };
    let amount = match non_empty(request, "amount") {
        Some(text) => match parse_amount(text) {
            Some(amount) if amount > 0 => amount,
            _ => return Ok(Some(invalid(request, "amount"))),
        },
        None => match origin.as_ref().map(|o| o.amount).filter(|a| *a > 0) {
            Some(amount) => amount,
            None => return Ok(Some(missing(request, "amount"))),
        },
    };
    let currency = match non_empty(request, "currencyCode")
        .or(origin.as_ref().map(|o| o.currency_code.as_str()))
    {
        None => return Ok(Some(missing(request, "currencyCode"))),
        Some(code) if supported_currency(code) => code.to_owned(),
        Some(_) => {
            return Ok(Some(refusal(
                request,
                CURRENCY_NOT_SUPPORTED,
                "Currency not supported",
            )));
        }
    };
    let Some(manual_capture) = manual_capture(request) else {
        return Ok(Some(invalid(request, "captureDelay")));
    };
    let card = match cards::from_request(request) {
        Err(e) => return Ok(Some(refusal(request, e.response_code(), &e.to_string()))),
        Ok(Some(card)) => card,
        Ok(None) => match &origin {
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
    if issuer::invalid_test_amount(&card, amount) {
        return Ok(Some(refusal(request, 66312, "Invalid Test Amount")));
    }

    let mut txn = Transaction::begin(&gw.ids, &gw.store, merchant, "SALE", card).await?;
    txn.kind = kind.as_str().to_owned();
    txn.amount = amount;
    txn.currency_code = currency;
    txn.manual_capture = manual_capture;
    txn.transaction_unique = non_empty(request, "transactionUnique").map(str::to_owned);
    txn.order_ref = non_empty(request, "orderRef")
        .map(str::to_owned)
        .or_else(|| origin.as_ref().and_then(|o| o.order_ref.clone()));
    let expired = txn.card.expired(&UtcTime::now());
    let authorisation_code = non_empty(request, "authorisationCode");
    let redirect = non_empty(request, "threeDSRedirectURL");
    let plan = if expired || txn.card.behaviour == Behaviour::Unknown {
        ThreeDsPlan::Skip
    } else {
        issuer::three_ds_plan(&txn.card, kind, redirect.is_some())
    };

    let mut answer = echo(request);
    let mut change = Change::new();
    match plan {
        ThreeDsPlan::Challenge => three_ds::start_challenge(
            &mut txn,
            &mut answer,
            &mut change,
            &gw.config.public_base,
            PendingChallenge {
                redirect_url: redirect.unwrap_or_default().to_owned(),
                authorisation_code: authorisation_code.map(str::to_owned),
            },
        ),
        ThreeDsPlan::Frictionless(status) if issuer::refused(status) => {
            refuse_after_three_ds(&mut txn, &mut answer, status);
        }
        ThreeDsPlan::Frictionless(_) | ThreeDsPlan::Skip => {
            let three_ds = match plan {
                ThreeDsPlan::Frictionless(status) => Some(status),
                _ => None,
            };
            let decision = issuer::authorise(&Sale {
                card: &txn.card,
                expired,
                amount,
                kind,
                authorisation_code,
                three_ds,
            });
            conclude(&mut txn, decision, &mut answer);
            if let Some(status) = three_ds {
                three_ds::report(&mut answer, &txn.card, status);
            }
            book(&txn, &mut change)?;
        }
    }
    txn.remember(&answer);
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

/// GBP, by ISO number or letters: the simulated account settles nothing else.
pub(crate) fn supported_currency(code: &str) -> bool {
    code == "826" || code.eq_ignore_ascii_case("GBP")
}

/// `captureDelay`: absent or 0–30 days is automatic capture; -1 or `never` is manual.
/// `None` for anything else.
pub(crate) fn manual_capture(request: &Fields) -> Option<bool> {
    match request.get("captureDelay").map(str::trim) {
        None | Some("") => Some(false),
        Some("-1") | Some("never") => Some(true),
        Some(days) => days.parse::<u8>().ok().filter(|d| *d <= 30).map(|_| false),
    }
}

/// Apply the issuer's decision to a SALE: its state, amounts and the answer's fields.
/// Moves money on approval: `received` to `captured` (or `approved` for manual capture).
pub(super) fn conclude(txn: &mut Transaction, decision: Decision, answer: &mut Fields) {
    match decision {
        Decision::Approve { authorisation_code } => {
            txn.state = if txn.manual_capture {
                State::Approved
            } else {
                State::Captured
            };
            txn.amount_authorised = txn.amount;
            txn.amount_captured = if txn.manual_capture { 0 } else { txn.amount };
            if !txn.manual_capture {
                // Captured now (after any 3-D Secure challenge): the day's batch follows this.
                txn.captured_at = Some(crate::clock::UtcTime::now().timestamp());
            }
            set_outcome(answer, 0, &format!("AUTHCODE:{authorisation_code}"));
            txn.authorisation_code = Some(authorisation_code);
        }
        Decision::Refuse {
            code,
            message,
            referred,
            cv2_not_matched,
        } => {
            txn.state = if referred {
                State::Referred
            } else {
                State::Declined
            };
            set_outcome(answer, code, message);
            if cv2_not_matched {
                answer
                    .insert("cv2Check", "not matched")
                    .insert("addressCheck", "not checked")
                    .insert("postcodeCheck", "not checked")
                    .insert("avscv2ResponseCode", "041100")
                    .insert("avscv2ResponseMessage", "SECURITY CODE MISMATCH")
                    .insert("avscv2AuthEntity", "issuer");
            }
        }
        Decision::ProcessorError => {
            txn.state = State::Finished;
            set_outcome(answer, PROCESSOR_ERROR, "Processor error");
        }
    }
    txn.describe(answer);
}

/// 3-D Secure said no (N or R): 65803, nothing authorised.
pub(super) fn refuse_after_three_ds(txn: &mut Transaction, answer: &mut Fields, status: char) {
    txn.state = State::Declined;
    set_outcome(
        answer,
        calmony_protocol::cardstream::codes::THREE_DS_NOT_ACCEPTED,
        "3DS AUTHENTICATION FAILED",
    );
    txn.describe(answer);
    three_ds::report(answer, &txn.card, status);
}

/// Record an authorised SALE: its ledger line and, once captured, its place in the next
/// settlement run.
pub(super) fn book(txn: &Transaction, change: &mut Change) -> Result<(), SandboxError> {
    if matches!(txn.state, State::Approved | State::Captured) {
        change.ledger(&LedgerEntry::of("SALE", txn, txn.amount_authorised))?;
    }
    if txn.state == State::Captured {
        change.settle_later(&txn.xref, true);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_delay_values() {
        let with = |v: &str| manual_capture(&[("captureDelay", v)].into_iter().collect());
        assert_eq!(manual_capture(&Fields::new()), Some(false));
        assert_eq!(with("0"), Some(false));
        assert_eq!(with("30"), Some(false));
        assert_eq!(with("-1"), Some(true));
        assert_eq!(with("never"), Some(true));
        assert_eq!(with("31"), None);
        assert_eq!(with("soon"), None);
    }
}
