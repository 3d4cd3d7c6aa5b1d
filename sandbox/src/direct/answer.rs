//! How every /direct/ answer is built: the gateway's response codes, the echo of the request
//! (without card data), the outcome fields, and the refusals every action gives.

use calmony_protocol::cardstream::{Fields, codes};

use crate::clock::UtcTime;
use crate::transactions::Transaction;

// The codes a daemon must answer with a QUERY, defined with their meaning in the protocol.
pub(crate) use codes::{DATABASE_ERROR as DB_ERROR, IN_PROGRESS};

pub(crate) const GENERAL_ERROR: u32 = 65537;
pub(crate) const NOT_ALLOWED: u32 = 65541;
pub(crate) const MISMATCH: u32 = 65542;
pub(crate) const MALFORMED: u32 = 65544;
pub(crate) const CURRENCY_NOT_SUPPORTED: u32 = 65546;
pub(crate) const PROCESSOR_ERROR: u32 = 65550;
pub(crate) const AMOUNTS_DO_NOT_TALLY: u32 = 65573;
pub(crate) const MISSING_REQUEST: u32 = 66048;

/// The gateway's code for a missing field; the invalid-field code is this plus 256.
pub(crate) fn missing_code(field: &str) -> u32 {
    match field {
        "merchantID" => 66049,
        "action" => 66055,
        "amount" => 66056,
        "currencyCode" => 66057,
        "cardNumber" => 66058,
        "xref" => 66085,
        "type" => 66086,
        "signature" => codes::MISSING_SIGNATURE,
        "captureDelay" => 66102,
        _ => GENERAL_ERROR - 256,
    }
}

/// The request fields an answer echoes: everything but card data, password and signature.
pub(crate) fn echo(request: &Fields) -> Fields {
    let mut fields = request.clone();
    for secret in ["cardNumber", "cardCVV", "merchantPwd", "signature"] {
        fields.remove(secret);
    }
    fields
}

/// Set `responseCode`, `responseMessage` and `responseStatus` (0 approved, 1 declined,
/// 2 error or more to do).
pub(crate) fn set_outcome(fields: &mut Fields, code: u32, message: &str) {
    let status = match code {
        0 => 0,
        1..65536 | codes::THREE_DS_NOT_ACCEPTED => 1,
        _ => 2,
    };
    fields
        .insert("responseCode", code.to_string())
        .insert("responseMessage", message)
        .insert("responseStatus", status.to_string());
}

/// An answer that concerns no stored transaction.
pub(crate) fn refusal(request: &Fields, code: u32, message: &str) -> Fields {
    let mut fields = echo(request);
    set_outcome(&mut fields, code, message);
    fields
        .insert("state", "finished")
        .insert("timestamp", UtcTime::now().timestamp());
    fields
}

/// An answer refusing an action on `txn`, which is described as it stands.
pub(crate) fn refusal_about(
    request: &Fields,
    txn: &Transaction,
    code: u32,
    message: &str,
) -> Fields {
    let mut fields = echo(request);
    set_outcome(&mut fields, code, message);
    txn.describe(&mut fields);
    fields
}

pub(crate) fn missing(request: &Fields, field: &str) -> Fields {
    refusal(request, missing_code(field), &format!("Missing {field}"))
}

pub(crate) fn invalid(request: &Fields, field: &str) -> Fields {
    refusal(
        request,
        missing_code(field) + 256,
        &format!("Invalid {field}"),
    )
}

pub(crate) fn duplicate(request: &Fields) -> Fields {
    refusal(request, codes::DUPLICATE, "Duplicate request")
}

/// Every attempt lost a race: the transaction is busy.
pub(crate) fn contended(request: &Fields) -> Fields {
    refusal(request, IN_PROGRESS, "Transaction in progress")
}
