//! The time a customer lives at. A customer created with a test clock lives at that clock's
//! `frozen_time`, and everything billed to them (periods, invoice dates, dunning) uses it;
//! everyone else lives at the daemon's clock. A leaf, so invoices, subscriptions and the
//! scheduler read time without reaching into the test clocks' API.

use calmony_protocol::billing::{Invoice, TEST_CLOCK_PREFIX, TestClock};
use calmony_protocol::{ApiError, ids};

use crate::store::{Scope, Store};

/// A clock's frozen time, if it exists in this scope.
pub async fn frozen_time(store: &Store, scope: &Scope, id: &str) -> Result<Option<i64>, ApiError> {
    if !ids::is_valid(TEST_CLOCK_PREFIX, id) {
        return Ok(None);
    }
    let key = scope.record(id);
    Ok(match store.get(&key).await? {
        Some(r) if !r.json.contains("\"deleted\":true") => {
            Some(r.parse::<TestClock>(&key)?.frozen_time)
        }
        _ => None,
    })
}

/// The time a customer with `test_clock` (or none) lives at.
pub async fn now_for(
    store: &Store,
    scope: &Scope,
    test_clock: Option<&str>,
) -> Result<i64, ApiError> {
    match test_clock {
        Some(c) => Ok(frozen_time(store, scope, c)
            .await?
            .unwrap_or_else(crate::clock::now)),
        None => Ok(crate::clock::now()),
    }
}

/// The time an invoice's customer lives at.
pub async fn now_for_invoice(store: &Store, scope: &Scope, inv: &Invoice) -> i64 {
    match &inv.test_clock {
        Some(c) => frozen_time(store, scope, c)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(crate::clock::now),
        None => crate::clock::now(),
    }
}
