//! The settlement keyspace. Batches span projects (one acquirer credit pays every project's
//! card takings of a day), so their keys are per mode: `cp:settlement:<mode>:…`. Balance
//! transactions, the balance and payouts are per project and mode, under the scope.

use calmony_protocol::Mode;

use crate::store::Scope;

fn base(mode: Mode, rest: &str) -> String {
    format!("cp:settlement:{}:{rest}", mode.as_str())
}

/// A batch's running figures (hash): `expected` (net, pence), `share:<project>`, `kind`,
/// `closes_at` (Unix seconds), `currency`: the first two incremented by each payment's
/// commit, the others written by the first to join.
pub fn batch(mode: Mode, reference: &str) -> String {
    base(mode, &format!("batch:{reference}"))
}

/// A batch's settlement state: a record only the follower writes, version-checked.
pub fn batch_state(mode: Mode, reference: &str) -> String {
    base(mode, &format!("batch:{reference}:state"))
}

/// A batch's balance transactions, `<project>|<txn>`.
pub fn batch_members(mode: Mode, reference: &str) -> String {
    base(mode, &format!("batch:{reference}:members"))
}

/// Open batches by when they close (ms).
pub fn due(mode: Mode) -> String {
    base(mode, "due")
}

/// Every batch by when it closes (ms), for the report.
pub fn batches(mode: Mode) -> String {
    base(mode, "batches")
}

/// Batches in transit by their deadline (ms).
pub fn in_transit(mode: Mode) -> String {
    base(mode, "in_transit")
}

/// One credit seen on the account (a record: written once, which is what counts it once).
pub fn credit(mode: Mode, transaction_url: &str) -> String {
    base(mode, &format!("credit:{transaction_url}"))
}

/// Every credit seen, by when it was processed (ms).
pub fn credits(mode: Mode) -> String {
    base(mode, "credits")
}

/// Credits that matched no batch, by when they were processed (ms).
pub fn unexpected(mode: Mode) -> String {
    base(mode, "unexpected")
}

/// Where the poller goes on reading the account's ledger.
pub fn cursor(mode: Mode) -> String {
    base(mode, "cursor")
}

/// The scope's balance (hash): `available:<cur>`, `pending:<cur>`.
pub fn balance(scope: &Scope) -> String {
    scope.key("balance")
}

pub fn balance_transactions(scope: &Scope) -> String {
    scope.key("balance_transactions")
}

pub fn payouts(scope: &Scope) -> String {
    scope.key("payouts")
}

/// The scope's balance transactions of one type.
pub fn balance_transactions_of(scope: &Scope, kind: &str) -> String {
    scope.key(&format!("balance_transactions:{kind}"))
}

/// Unexpected credits under one reference, which a batch made later under it adopts.
pub fn unmatched(mode: Mode, reference: &str) -> String {
    base(mode, &format!("unmatched:{reference}"))
}

/// The last webhook event (`cp:griffin:<mode>:events` entry ID) the follower handled.
pub fn inbox_cursor(mode: Mode) -> String {
    base(mode, "inbox_cursor")
}

/// An operator's adjustment made under an idempotency key (its transaction's id).
pub fn adjustment(scope: &Scope, idempotency_key: &str) -> String {
    scope.key(&format!("adjustment:{idempotency_key}"))
}
