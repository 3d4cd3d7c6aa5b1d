//! The ledger: every movement of money at the simulated gateway, in order.
//!
//! It exists for tests. A daemon that retries, recovers and re-queries must still charge a card
//! once; the ledger is the gateway's own account of what it did (one `SALE` entry per approved
//! authorisation, one `CAPTURE` per capture with the amount that will settle, one `CANCEL` per
//! cancelled sale, one `REFUND_SALE` per refund), so an end-to-end test can prove "charged
//! exactly once" from outside the daemon. Entries are written
//! in the same atomic change as the transaction they describe (see
//! [`crate::transactions::Change`]).

use std::collections::BTreeSet;

use calmony_actors::Store;
use calmony_actors::store::Scope;
use calmony_protocol::{Mode, ids};
use serde::{Deserialize, Serialize};

use crate::access::View;
use crate::clock::UtcTime;
use crate::error::SandboxError;
use crate::keys;
use crate::transactions::Transaction;

/// One ledger line. Field names are the wire's, so tests read them as they read responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    pub action: String,
    pub xref: String,
    pub transaction_unique: Option<String>,
    pub order_ref: Option<String>,
    pub amount: u64,
    pub state: String,
    pub response_code: u32,
    /// `YYYY-MM-DD HH:MM:SS` UTC.
    pub time: String,
    /// For a REFUND_SALE: the sale refunded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_xref: Option<String>,
}

impl LedgerEntry {
    /// An entry for `action` on `txn`, moving `amount`, after the change.
    pub fn of(action: &str, txn: &Transaction, amount: u64) -> Self {
        LedgerEntry {
            action: action.to_owned(),
            xref: txn.xref.clone(),
            transaction_unique: txn.transaction_unique.clone(),
            order_ref: txn.order_ref.clone(),
            amount,
            state: txn.state.as_str().to_owned(),
            response_code: 0,
            time: UtcTime::now().timestamp(),
            original_xref: txn.original_xref.clone(),
        }
    }
}

/// Every entry `view` may see, oldest first, optionally only those for one `orderRef`.
///
/// A project sees the entries whose `orderRef` is one of its test-mode objects (a payment
/// intent, an invoice, a checkout session: what the daemon sends as `orderRef`). Only the
/// daemon can sign requests to the simulator, and ids are unique across projects, so the
/// `orderRef` is as good as a project tag, without one on the wire.
pub async fn entries(
    store: &Store,
    order_ref: Option<&str>,
    view: &View,
) -> Result<Vec<LedgerEntry>, SandboxError> {
    let mut c = store.conn();
    let raw: Vec<String> = store
        .run(async move {
            redis::cmd("LRANGE")
                .arg(keys::LEDGER)
                .arg(0)
                .arg(-1)
                .query_async(&mut c)
                .await
        })
        .await?;
    let mut out = Vec::with_capacity(raw.len());
    for line in raw {
        let entry: LedgerEntry =
            serde_json::from_str(&line).map_err(|e| SandboxError::Corrupt {
                key: keys::LEDGER.to_owned(),
                reason: e.to_string(),
            })?;
        if order_ref.is_none_or(|wanted| entry.order_ref.as_deref() == Some(wanted)) {
            out.push(entry);
        }
    }
    match view {
        View::All => Ok(out),
        View::Project(project) => own_entries(store, project, out).await,
    }
}

/// The entries of `entries` whose `orderRef` names an object of `project`'s test mode.
async fn own_entries(
    store: &Store,
    project: &str,
    entries: Vec<LedgerEntry>,
) -> Result<Vec<LedgerEntry>, SandboxError> {
    let scope = Scope::new(project, Mode::Test);
    let refs: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e.order_ref.as_deref())
        .filter(|r| ids::is_any(r))
        .collect();
    let refs: Vec<&str> = refs.into_iter().collect();
    let mut owned = BTreeSet::new();
    for chunk in refs.chunks(1000) {
        let mut pipe = redis::pipe();
        for r in chunk {
            pipe.exists(scope.record(r));
        }
        let mut c = store.conn();
        let found: Vec<bool> = store
            .run(async move { pipe.query_async(&mut c).await })
            .await?;
        owned.extend(
            chunk
                .iter()
                .zip(found)
                .filter(|(_, exists)| *exists)
                .map(|(r, _)| (*r).to_owned()),
        );
    }
    Ok(entries
        .into_iter()
        .filter(|e| e.order_ref.as_ref().is_some_and(|r| owned.contains(r)))
        .collect())
}
