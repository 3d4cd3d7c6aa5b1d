//! Settlement: the evening run that turns captured transactions into settled ones.
//!
//! Cardstream settles once a day (§6.1). Until then a SALE can be cancelled or re-captured for
//! less; after it, only REFUND_SALE can give money back, which is the branch the daemon's
//! refund code must get right. The run reads the `cp:sandbox:unsettled` set (every `captured`
//! transaction), and moves each one with its own compare-and-set: a captured SALE to
//! `accepted`, or `rejected` when a guide card's captured amount is in a rejected band
//! (§10.2); a REFUND_SALE to `accepted`. Manual-capture sales still `approved` are not in the
//! set and stay as they are.
//!
//! Several daemons may run the daily timer against one Redis at the same minute; each
//! transaction still moves once, because the loser of the compare-and-set finds it settled.

use std::sync::Arc;

use calmony_actors::Store;

use crate::clock;
use crate::error::SandboxError;
use crate::gateway::Gateway;
use crate::transactions::{self, Applied, Change, State};
use crate::{issuer, keys};

/// Settle every captured transaction now. Moves money: `captured` to `accepted` or
/// `rejected`. Returns how many transactions this run moved.
pub async fn settle(store: &Store) -> Result<usize, SandboxError> {
    let mut c = store.conn();
    let xrefs: Vec<String> = store
        .run(async move {
            redis::cmd("SMEMBERS")
                .arg(keys::UNSETTLED)
                .query_async(&mut c)
                .await
        })
        .await?;
    let mut moved = 0;
    for xref in xrefs {
        if settle_one(store, &xref).await? {
            moved += 1;
        }
    }
    if moved > 0 {
        tracing::info!(moved, "sandbox settlement run");
    }
    Ok(moved)
}

/// Settle one transaction; `false` if it was no longer captured (someone else settled or
/// cancelled it).
async fn settle_one(store: &Store, xref: &str) -> Result<bool, SandboxError> {
    for _ in 0..5 {
        let Some(loaded) = transactions::load(store, xref).await? else {
            forget(store, xref).await?;
            return Ok(false);
        };
        if loaded.txn.state != State::Captured {
            forget(store, xref).await?;
            return Ok(false);
        }
        let mut txn = loaded.txn.clone();
        txn.state = if txn.action == "SALE"
            && issuer::settlement_rejected(&txn.card, txn.amount_captured)
        {
            State::Rejected
        } else {
            State::Accepted
        };
        let mut change = Change::new();
        change.update(&loaded, &txn)?.settle_later(xref, false);
        if change.apply(store).await? == Applied::Done {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Drop an `xref` that no longer needs settling from the set.
async fn forget(store: &Store, xref: &str) -> Result<(), SandboxError> {
    let mut c = store.conn();
    let xref = xref.to_owned();
    store
        .run(async move {
            redis::cmd("SREM")
                .arg(keys::UNSETTLED)
                .arg(xref)
                .query_async::<()>(&mut c)
                .await
        })
        .await?;
    Ok(())
}

/// The daily settlement, pass by pass, for a supervisor to run (the daemon runs it as a
/// supervised periodic actor; this crate stays free of the actor framework). A pass settles
/// once the day's `hour:minute` UTC has come (measured in real time from when it was first
/// scheduled, as a timer would), then schedules the next day's. A pass that panics hands
/// nothing back, so its caller keeps the state from before it: the settlement is still due
/// and the next pass runs it.
#[derive(Clone)]
pub struct DailySettlement {
    gateway: Arc<Gateway>,
    hour: u8,
    minute: u8,
    due: Option<tokio::time::Instant>,
}

impl DailySettlement {
    /// Out-of-range values wrap (hour 24 is midnight) rather than panic.
    pub(crate) fn new(gateway: Arc<Gateway>, hour: u8, minute: u8) -> Self {
        Self {
            gateway,
            hour: hour % 24,
            minute: minute % 60,
            due: None,
        }
    }

    /// Settle if the time has come; answer the state for the next pass.
    pub async fn pass(mut self) -> Self {
        let now = tokio::time::Instant::now();
        let (hour, minute) = (self.hour, self.minute);
        let due = *self.due.get_or_insert_with(|| {
            now + clock::until_next(calmony_actors::clock::now(), hour, minute)
        });
        if now < due {
            return self;
        }
        match settle(&self.gateway.store).await {
            Ok(moved) => tracing::info!(moved, "sandbox daily settlement done"),
            Err(error) => tracing::error!(%error, "sandbox daily settlement failed"),
        }
        self.due = None;
        self
    }
}
