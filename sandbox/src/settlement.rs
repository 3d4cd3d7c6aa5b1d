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
/// `rejected`, then pays each day's batch of what this run accepted to the merchant's Griffin
/// (sandbox) account as one credit, net of the acquirer's fees (see [`batch_credits`]).
/// Returns how many transactions this run moved.
pub async fn settle(gw: &Gateway) -> Result<usize, SandboxError> {
    let store = &gw.store;
    let mut c = store.conn();
    let xrefs: Vec<String> = store
        .run(async move {
            redis::cmd("SMEMBERS")
                .arg(keys::UNSETTLED)
                .query_async(&mut c)
                .await
        })
        .await?;
    let mut moved = Vec::new();
    for xref in xrefs {
        if let Some(txn) = settle_one(store, &xref).await? {
            moved.push(txn);
        }
    }
    if !moved.is_empty() {
        tracing::info!(moved = moved.len(), "sandbox settlement run");
    }
    let run = calmony_protocol::ids::new_id("run");
    for ((merchant, day), amount) in batch_credits(&moved, &gw.config.cutoff, &gw.config.card_fees)
    {
        let reference = calmony_protocol::settlement::card_batch_reference(&merchant, day);
        if amount <= 0 {
            tracing::warn!(%reference, amount, "sandbox acquirer batch nets to nothing: no credit");
            continue;
        }
        let credit = crate::griffin::Credit {
            amount,
            reference: reference.clone(),
            end_to_end_id: Some(reference.clone()),
            debtor_name: "Cardstream Acquiring (sandbox)".into(),
            debtor_sort_code: Some("60-83-71".into()),
            debtor_account_number: Some("20000001".into()),
            once_key: Some(format!("cardstream:{merchant}:{day}:{run}")),
        };
        match crate::griffin::credit(store, calmony_actors::clock::now_ms(), credit).await {
            Ok(_) => tracing::info!(%reference, amount, "sandbox acquirer paid a batch to Griffin"),
            Err(error) => {
                tracing::error!(%reference, %error, "sandbox acquirer could not credit Griffin")
            }
        }
    }
    Ok(moved.len())
}

/// Each (merchant, batch day)'s credit from the transactions a run settled: accepted sales'
/// captured amounts less the fee by scheme, less accepted refunds. A rejected sale pays
/// nothing (the acquirer refused it), so the daemon's expectation shows the gap.
pub fn batch_credits(
    settled: &[transactions::Transaction],
    cutoff: &calmony_protocol::settlement::Cutoff,
    fees: &calmony_protocol::settlement::CardFees,
) -> std::collections::BTreeMap<(String, i64), i64> {
    let mut out = std::collections::BTreeMap::new();
    for t in settled {
        if t.state != State::Accepted {
            continue;
        }
        let at = t.captured_at.as_deref().unwrap_or(&t.created);
        let Some(at) = unix_of(at) else { continue };
        let amount = t.amount_captured as i64;
        let net = match t.action.as_str() {
            // The scheme as the daemon names it (`amex`, not "American Express"), from the
            // card's leading digits, so both sides look up the same fee.
            "SALE" => amount - fees.fee(calmony_protocol::card::brand(&t.card.mask), amount),
            "REFUND_SALE" => -amount,
            _ => continue,
        };
        *out.entry((t.merchant_id.clone(), cutoff.batch_day(at)))
            .or_insert(0) += net;
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) as Unix seconds.
fn unix_of(text: &str) -> Option<i64> {
    let (date, time) = text.split_once(' ')?;
    let mut d = date.splitn(3, '-').map(str::parse::<i64>);
    let (y, m, dd) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.splitn(3, ':').map(str::parse::<i64>);
    let (h, mi, se) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    Some(calmony_protocol::billing::days_from_civil(y, m, dd) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Settle one transaction: the transaction as settled, or `None` if it was no longer
/// captured (someone else settled or cancelled it).
async fn settle_one(
    store: &Store,
    xref: &str,
) -> Result<Option<transactions::Transaction>, SandboxError> {
    for _ in 0..5 {
        let Some(loaded) = transactions::load(store, xref).await? else {
            forget(store, xref).await?;
            return Ok(None);
        };
        if loaded.txn.state != State::Captured {
            forget(store, xref).await?;
            return Ok(None);
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
            return Ok(Some(txn));
        }
    }
    Ok(None)
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
        match settle(&self.gateway).await {
            Ok(moved) => tracing::info!(moved, "sandbox daily settlement done"),
            Err(error) => tracing::error!(%error, "sandbox daily settlement failed"),
        }
        self.due = None;
        self
    }
}
