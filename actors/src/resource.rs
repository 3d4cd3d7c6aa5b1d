//! Helpers every resource's operations share: encoding answers, committing with the common
//! outcomes, and list pages built from stored JSON.

use calmony_protocol::list::ListPage;
use calmony_protocol::{ApiError, ErrorType};
use serde_json::value::RawValue;

use crate::store::{Commit, Store, Tx};

/// Encode an answer; a failure here is a bug, answered as a bare 500.
pub fn to_json<T: serde::Serialize>(v: &T) -> Result<String, ApiError> {
    serde_json::to_string(v).map_err(|e| {
        let mut err = ApiError::internal("");
        err.message = format!("cannot encode response: {e}");
        err
    })
}

/// Commit; a lost idempotency claim is a 409 for the caller to retry.
pub async fn commit(store: &Store, tx: &Tx) -> Result<Commit, ApiError> {
    match store.commit(tx).await? {
        Commit::LostClaim => Err(ApiError::new(
            409,
            ErrorType::IdempotencyError,
            "The idempotency key expired while this request ran and another request took it.",
        )
        .with_code("idempotency_key_in_use")),
        other => Ok(other),
    }
}

/// Serialize a list page from stored JSON without re-parsing the objects.
pub fn page_body(url: &str, items: &[String], has_more: bool) -> Result<String, ApiError> {
    let raws: Vec<Box<RawValue>> = items
        .iter()
        .filter_map(|s| RawValue::from_string(s.clone()).ok())
        .collect();
    let page = ListPage {
        object: "list",
        data: raws.iter().map(AsRef::as_ref).collect(),
        has_more,
        url,
    };
    to_json(&page)
}
