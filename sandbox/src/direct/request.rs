//! Reading a /direct/ request: a field's value, an amount, and the earlier transaction a SALE or
//! VERIFY names by `xref`.

use std::sync::Arc;

use calmony_protocol::cardstream::Fields;

use super::answer::invalid;
use crate::error::SandboxError;
use crate::gateway::Gateway;
use crate::transactions::{self, Transaction};

/// The transaction a SALE or VERIFY names by `xref`, whose card (and, for a SALE, type, amount
/// and currency) it clones: `Ok(None)` when none is named, `Err(answer)` when the one named is
/// not this merchant's (or does not exist). A VERIFY (a saved card) is remembered once read.
pub(crate) async fn origin(
    gw: &Gateway,
    request: &Fields,
) -> Result<Result<Option<Arc<Transaction>>, Fields>, SandboxError> {
    let Some(xref) = non_empty(request, "xref") else {
        return Ok(Ok(None));
    };
    // Only this merchant's VERIFYs are ever remembered.
    if let Some(verify) = gw.memory.verify(xref) {
        return Ok(Ok(Some(verify)));
    }
    let loaded = transactions::load_for(&gw.store, &gw.config.merchant_id, xref).await?;
    Ok(match loaded {
        Some(loaded) => {
            let txn = Arc::new(loaded.txn);
            gw.memory.keep_verify(&txn);
            Ok(Some(txn))
        }
        None => Err(invalid(request, "xref")),
    })
}

/// A field's value, if sent and not empty.
pub(crate) fn non_empty<'a>(request: &'a Fields, name: &str) -> Option<&'a str> {
    request.get(name).filter(|v| !v.is_empty())
}

/// An amount in minor units: digits only.
pub(crate) fn parse_amount(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Whether a transaction is the merchant's own `action` transaction (a REFUND_SALE is never
/// captured, cancelled or refunded again).
pub(crate) fn is_sale(txn: &Transaction) -> bool {
    txn.action == "SALE"
}
