//! Cardstream's fields for each flow, and its answers read back into gateway-neutral terms.

use calmony_protocol::cardstream::Fields;
use calmony_protocol::cardstream::codes::{self, Outcome};

use crate::gateway::outcomes::{
    AuthOutcome, CardReport, GatewayError, ManageOutcome, TxnRef, TxnState, TxnStatus,
};
use crate::gateway::requests::{CardToTokenise, Sale};

/// ISO 4217 / 3166 numeric codes: GBP, United Kingdom.
const GBP: &str = "826";
const UK: &str = "826";

pub fn verify_request(t: &CardToTokenise) -> Fields {
    let mut f = Fields::new();
    f.insert("action", "VERIFY")
        .insert("type", "1")
        .insert("amount", "0")
        .insert("currencyCode", GBP)
        .insert("countryCode", UK)
        .insert("transactionUnique", t.attempt.as_str())
        .insert("cardNumber", t.card.number.as_str())
        .insert("cardExpiryMonth", format!("{:02}", t.card.exp_month))
        .insert("cardExpiryYear", format!("{:02}", t.card.exp_year % 100))
        .insert("rtAgreementType", "cardonfile");
    if let Some(cvc) = &t.card.cvc {
        f.insert("cardCVV", cvc.as_str());
    }
    f
}

pub fn sale_request(s: &Sale) -> Fields {
    let mut f = Fields::new();
    f.insert("action", "SALE")
        .insert("type", if s.recurring { "9" } else { "1" })
        .insert("amount", s.amount.to_string())
        .insert("currencyCode", GBP)
        .insert("countryCode", UK)
        .insert("transactionUnique", s.attempt.as_str())
        .insert("orderRef", s.order_ref.as_str())
        .insert("xref", s.card_xref.as_str())
        .insert("captureDelay", if s.capture { "0" } else { "-1" })
        .insert(
            "rtAgreementType",
            if s.recurring {
                "recurring"
            } else {
                "cardonfile"
            },
        );
    if let Some(url) = &s.three_ds_return {
        f.insert("threeDSRedirectURL", url.as_str())
            .insert("remoteAddress", "127.0.0.1");
    }
    f
}

pub fn continuation_request(reference: &str, posted: &[(String, String)]) -> Fields {
    let mut f = Fields::new();
    f.insert("action", "SALE").insert("threeDSRef", reference);
    for (k, v) in posted {
        f.insert(&format!("threeDSResponse[{k}]"), v.as_str());
    }
    f
}

pub fn manage_request(action: &str, xref: &str, amount: Option<i64>) -> Fields {
    let mut f = Fields::new();
    f.insert("action", action).insert("xref", xref);
    if let Some(a) = amount {
        f.insert("amount", a.to_string());
    }
    f
}

pub fn refund_request(xref: &str, amount: i64, attempt: &str) -> Fields {
    let mut f = Fields::new();
    f.insert("action", "REFUND_SALE")
        .insert("xref", xref)
        .insert("amount", amount.to_string())
        .insert("transactionUnique", attempt);
    f
}

pub fn query_request(attempt: Option<&str>, xref: Option<&str>) -> Fields {
    let mut f = Fields::new();
    f.insert("action", "QUERY");
    if let Some(x) = xref {
        f.insert("xref", x);
    }
    if let Some(a) = attempt {
        f.insert("transactionUnique", a);
    }
    f
}

/// A genuine answer for another payment must not be applied to this one.
pub fn check_echo(f: &Fields, attempt: &str, amount: Option<i64>) -> Result<(), GatewayError> {
    if let Some(t) = f.get("transactionUnique")
        && t != attempt
    {
        return Err(GatewayError::Unverified(format!(
            "answer is for transactionUnique {t:?}, not {attempt:?}"
        )));
    }
    if let (Some(a), Some(expected)) = (f.get("amount"), amount)
        && a.parse::<i64>().ok() != Some(expected)
    {
        return Err(GatewayError::Unverified(format!(
            "answer is for amount {a}, not {expected}"
        )));
    }
    Ok(())
}

fn txn(f: &Fields) -> Option<TxnRef> {
    f.get("xref").filter(|x| !x.is_empty()).map(|x| TxnRef {
        xref: x.to_string(),
        transaction_id: f.get("transactionID").map(str::to_string),
    })
}

fn message(f: &Fields) -> String {
    f.get("responseMessage").unwrap_or("").to_string()
}

pub fn auth_outcome(f: &Fields) -> Result<AuthOutcome, GatewayError> {
    let outcome = Outcome::from_response(f).map_err(|e| GatewayError::Malformed(e.to_string()))?;
    let code: u32 = f
        .get("responseCode")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok(match outcome {
        Outcome::Approved => {
            let Some(txn) = txn(f) else {
                return Err(GatewayError::Malformed(
                    "an approval without an xref".into(),
                ));
            };
            let amount = f
                .get("amountReceived")
                .or_else(|| f.get("amount"))
                .and_then(|a| a.parse().ok())
                .unwrap_or(0);
            AuthOutcome::Approved {
                txn,
                amount,
                auth_code: f.get("authorisationCode").map(str::to_string),
            }
        }
        Outcome::ThreeDSecureRequired => AuthOutcome::Challenge {
            txn: txn(f),
            url: f.get("threeDSURL").unwrap_or("").to_string(),
            fields: f
                .record("threeDSRequest")
                .map(<[_]>::to_vec)
                .unwrap_or_default(),
            reference: f.get("threeDSRef").unwrap_or("").to_string(),
        },
        Outcome::AuthenticationFailed => AuthOutcome::Declined {
            txn: txn(f),
            code,
            decline_code: "authentication_required".into(),
            message: "The cardholder did not complete 3-D Secure authentication.".into(),
        },
        Outcome::Declined { .. } | Outcome::Referred => AuthOutcome::Declined {
            txn: txn(f),
            code,
            decline_code: outcome
                .decline_code()
                .unwrap_or("generic_decline")
                .to_string(),
            message: message(f),
        },
        Outcome::Unknown { .. } => {
            return Err(GatewayError::Unknown {
                code,
                message: message(f),
            });
        }
        Outcome::Duplicate | Outcome::GatewayError { .. } => AuthOutcome::Failed {
            code,
            message: message(f),
        },
    })
}

/// An answer's `responseCode`, which every answer carries.
fn response_code(f: &Fields) -> Result<u32, GatewayError> {
    f.get("responseCode")
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| GatewayError::Malformed("no responseCode".into()))
}

/// An error for a code that leaves what the gateway did unknown ([`Outcome::Unknown`]).
fn unknown(code: u32, f: &Fields) -> Result<(), GatewayError> {
    if codes::outcome_unknown(code) {
        return Err(GatewayError::Unknown {
            code,
            message: message(f),
        });
    }
    Ok(())
}

pub fn manage_outcome(f: &Fields) -> Result<ManageOutcome, GatewayError> {
    let code = response_code(f)?;
    unknown(code, f)?;
    Ok(if code == 0 {
        match txn(f) {
            Some(txn) => ManageOutcome::Done { txn },
            None => return Err(GatewayError::Malformed("no xref".into())),
        }
    } else {
        ManageOutcome::Refused {
            code,
            message: message(f),
        }
    })
}

pub fn card_report(f: &Fields) -> CardReport {
    let funding = match f.get("cardTypeCode").or_else(|| f.get("cardType")) {
        Some(t) if t.ends_with('D') || t.to_lowercase().contains("debit") => "debit",
        Some(t) if t.to_lowercase().contains("prepaid") => "prepaid",
        Some(_) => "credit",
        None => "unknown",
    };
    CardReport {
        funding: funding.to_string(),
        country: f
            .get("cardIssuerCountryCode")
            .filter(|c| c.len() == 2)
            .map(str::to_string)
            .or(Some("GB".into())),
    }
}

/// A QUERY's answer when it describes a transaction; `None` when the gateway has none (it
/// never created it); an error when the gateway could not say.
pub fn queried(f: Fields) -> Result<Option<Fields>, GatewayError> {
    let code = response_code(&f)?;
    unknown(code, &f)?;
    if f.get("xref").is_none_or(str::is_empty) && code != 0 {
        return Ok(None);
    }
    Ok(Some(f))
}

/// The state of the transaction a QUERY found ([`queried`]).
pub fn txn_status(f: &Fields) -> Result<TxnStatus, GatewayError> {
    Ok(TxnStatus {
        outcome: auth_outcome(f)?,
        state: txn_state(f.get("state").unwrap_or("")),
        amount_received: f
            .get("amountReceived")
            .and_then(|a| a.parse().ok())
            .unwrap_or(0),
        amount_refunded: f
            .get("amountRefunded")
            .and_then(|a| a.parse().ok())
            .unwrap_or(0),
    })
}

/// Cardstream's transaction state (§6.1), in the gateway's terms.
pub fn txn_state(state: &str) -> TxnState {
    match state {
        "received" => TxnState::Received,
        "approved" => TxnState::Approved,
        "verified" => TxnState::Verified,
        "declined" => TxnState::Declined,
        "referred" => TxnState::Referred,
        "captured" => TxnState::Captured,
        "tendered" | "deferred" | "accepted" => TxnState::Settled,
        "rejected" => TxnState::Rejected,
        "canceled" => TxnState::Canceled,
        "finished" => TxnState::Finished,
        other => TxnState::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cardstream_states_read_as_typed_states() {
        for (state, typed, settled, captured) in [
            ("approved", TxnState::Approved, false, false),
            ("captured", TxnState::Captured, false, true),
            ("tendered", TxnState::Settled, true, true),
            ("deferred", TxnState::Settled, true, true),
            ("accepted", TxnState::Settled, true, true),
            ("rejected", TxnState::Rejected, true, false),
            ("canceled", TxnState::Canceled, false, false),
            ("", TxnState::Other(String::new()), false, false),
        ] {
            let read = txn_state(state);
            assert_eq!(read, typed, "{state}");
            assert_eq!(read.settled(), settled, "{state}");
            assert_eq!(read.captured(), captured, "{state}");
        }
    }
}
