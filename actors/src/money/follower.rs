//! The settlement follower's I/O: read the Griffin account's credits (from the poller's cursor,
//! or one transaction a webhook named), match them to batches, close due batches into payouts,
//! and pay or fail the payouts in transit. Every step is one commit under version checks:
//! a credit is counted by the commit that creates its record, so a credit seen by both the
//! webhook and the poller, or by two daemons, counts once.

use std::collections::BTreeMap;
use std::sync::Arc;

use calmony_protocol::Mode;
use calmony_protocol::balance::{Balance, Funds, PAYOUT_PREFIX, Payout, TxnType};
use calmony_protocol::event::EventRequest;
use calmony_protocol::griffin::{Direction, OriginType, Transaction};
use calmony_protocol::ids;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::batches::{self, BatchState, Figures, Phase, Step};
use super::ledger::{self, BatchKind, NewEntry};
use super::{Settlement, keys};
use crate::clock;
use crate::gateway::griffin::{Griffin, GriffinClient, GriffinError};
use crate::resource::to_json;
use crate::store::{Commit, Scope, Store, StoreError, Tx};

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("settlement store: {0}")]
    Store(#[from] StoreError),
    #[error("settlement record: {0}")]
    Api(String),
    #[error("Griffin: {0}")]
    Griffin(#[from] GriffinError),
}

impl From<calmony_protocol::ApiError> for FollowError {
    fn from(e: calmony_protocol::ApiError) -> Self {
        FollowError::Api(e.message)
    }
}

/// A credit as recorded when seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenCredit {
    pub transaction_url: String,
    pub reference: Option<String>,
    pub amount: i64,
    pub processed_at: String,
    /// The batch it was counted in; `None`: nobody expected it.
    pub batch: Option<String>,
    /// Set when an operator turned it into an adjustment.
    #[serde(default)]
    pub adjusted: Option<String>,
    /// Why it could not be any batch's, when that is not just its reference.
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Clone)]
pub struct Follower {
    pub store: Store,
    pub settlement: Arc<Settlement>,
    pub griffin: Arc<Griffin>,
}

const RETRIES: usize = 8;

impl Follower {
    /// Read each mode's webhook inbox and (when `poll`) its ledger, then move its due
    /// batches. A mode's failure (Griffin down, a record that will not parse) is logged and
    /// leaves the other mode, and the batches' deadlines, to go on.
    pub async fn pass(&self, poll: bool) -> Result<(), FollowError> {
        let mut first: Option<FollowError> = None;
        for mode in [Mode::Test, Mode::Live] {
            if let Some(client) = self.griffin.client(mode) {
                if let Err(e) = self.inbox(mode, &client).await {
                    tracing::warn!(mode = mode.as_str(), error = %e, "reading Griffin's webhook events failed; retried next pass");
                }
                if poll && let Err(e) = self.poll(mode, &client).await {
                    tracing::warn!(mode = mode.as_str(), error = %e, "reading the settlement account failed; retried next pass");
                }
            }
            if let Err(e) = self.tick(mode).await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The webhook receiver's events since the last read: a `transaction-created` names a
    /// ledger entry, read from Griffin (never taken on the event's word) and counted as the
    /// poller counts it. The inbox cursor moves past an event only once it is handled.
    pub async fn inbox(&self, mode: Mode, client: &GriffinClient) -> Result<usize, FollowError> {
        let cursor_key = keys::inbox_cursor(mode);
        let cursor = self
            .redis_get(&cursor_key)
            .await?
            .unwrap_or_else(|| "0-0".to_owned());
        let (mut c, stream, from) = (
            self.store.conn(),
            crate::gateway::griffin::inbox::events_stream(mode),
            format!("({cursor}"),
        );
        let entries: Vec<(String, Vec<String>)> = self
            .store
            .run(async move {
                redis::cmd("XRANGE")
                    .arg(stream)
                    .arg(from)
                    .arg("+")
                    .arg("COUNT")
                    .arg(100)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let mut counted = 0;
        for (id, flat) in entries {
            let fields: BTreeMap<&str, &str> = flat
                .chunks(2)
                .filter_map(|kv| Some((kv.first()?.as_str(), kv.get(1)?.as_str())))
                .collect();
            if fields.get("event-type") == Some(&"transaction-created")
                && let Some(url) = fields
                    .get("event")
                    .and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok())
                    .and_then(|e| {
                        e["event-payload"]["account-transaction-url"]
                            .as_str()
                            .map(str::to_owned)
                    })
            {
                match client.transaction(&url).await {
                    // Only the settlement account's money counts: an event about another
                    // account of the same organisation is passed over.
                    Ok(t) if t.account_url != client.account_url().await? => {
                        metrics::counter!("calmony_griffin_events_skipped_total").increment(1);
                        tracing::warn!(mode = mode.as_str(), %url, account = %t.account_url, "a Griffin event about another account; passed over");
                    }
                    Ok(t) => {
                        if self.credit(mode, &t).await? {
                            counted += 1;
                        }
                    }
                    // Griffin will never answer this one (a 4xx, or a link we will not
                    // follow): passed over, so it does not hold up every later event. A real
                    // transaction is still found by the ledger poller.
                    Err(e @ (GriffinError::Refused { .. } | GriffinError::Invalid(_))) => {
                        metrics::counter!("calmony_griffin_events_skipped_total").increment(1);
                        tracing::warn!(mode = mode.as_str(), %url, error = %e, "a Griffin event's transaction could not be read; passed over");
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            self.redis_set(&cursor_key, &id).await?;
        }
        Ok(counted)
    }

    /// Read the ledger from the cursor on and count every credit in it. The cursor moves only
    /// as far as the credits counted (it is inclusive: the last ones are read again, and
    /// found counted).
    pub async fn poll(&self, mode: Mode, client: &GriffinClient) -> Result<usize, FollowError> {
        let cursor: Option<String> = self.redis_get(&keys::cursor(mode)).await?;
        let mut next: Option<String> = None;
        let mut latest = cursor.clone();
        let mut counted = 0;
        let mut stopped = None;
        'pages: loop {
            let page = client
                .transactions(next.as_deref(), cursor.as_deref(), 100)
                .await?;
            for t in &page.items.account_transactions {
                match self.credit(mode, t).await {
                    Ok(true) => counted += 1,
                    Ok(false) => {}
                    Err(e) => {
                        stopped = Some(e);
                        break 'pages;
                    }
                }
                if latest
                    .as_deref()
                    .is_none_or(|l| t.processed_at.as_str() > l)
                {
                    latest = Some(t.processed_at.clone());
                }
            }
            match page.links.next {
                Some(n) if !page.items.account_transactions.is_empty() => next = Some(n),
                _ => break,
            }
        }
        if latest != cursor
            && let Some(l) = latest
        {
            self.redis_set(&keys::cursor(mode), &l).await?;
        }
        match stopped {
            Some(e) => Err(e),
            None => Ok(counted),
        }
    }

    /// Count one ledger entry if it is a credit not seen before; `true` if this call counted it.
    pub async fn credit(&self, mode: Mode, t: &Transaction) -> Result<bool, FollowError> {
        // Settlement arrives as payments; the sandbox's opening deposit, interest and the
        // like are not anybody's settlement.
        if t.balance_change_direction != Direction::Credit
            || t.transaction_origin_type != OriginType::Payment
        {
            return Ok(false);
        }
        // An amount that is not pence of GBP cannot be any batch's: it is kept aside as
        // unexpected, with why, rather than stopping the reading of everything after it.
        let (amount, unreadable) = match t.balance_change.pence() {
            Ok(a) if t.balance_change.currency.eq_ignore_ascii_case("GBP") => (a, None),
            Ok(_) => (0, Some(format!("a {} credit", t.balance_change.currency))),
            Err(e) => (0, Some(format!("an unreadable amount: {e}"))),
        };
        let credit_key = keys::credit(mode, &t.account_transaction_url);
        for _ in 0..RETRIES {
            if self.store.get(&credit_key).await?.is_some() {
                return Ok(false);
            }
            let now = clock::now();
            let batch = match (&t.reference, &unreadable) {
                (Some(r), None) => self.figures(mode, r).await?.map(|f| (r.clone(), f)),
                _ => None,
            };
            let seen = SeenCredit {
                transaction_url: t.account_transaction_url.clone(),
                reference: t.reference.clone(),
                amount,
                processed_at: t.processed_at.clone(),
                batch: batch.as_ref().map(|(r, _)| r.clone()),
                adjusted: None,
                note: unreadable.clone(),
            };
            let mut tx = Tx::new();
            tx.expect_version(&credit_key, 0)
                .put(&credit_key, 1, &to_json(&seen)?)
                .schedule(&keys::credits(mode), now * 1000, &t.account_transaction_url);
            match batch {
                Some((reference, f)) => {
                    let (mut state, version) = self.state(mode, &reference).await?;
                    let (received, step) = batches::on_credit(&f, &state, amount);
                    state.received = received;
                    state.credits.push(t.account_transaction_url.clone());
                    if step == Step::Pay {
                        self.pay(&mut tx, mode, &reference, &mut state).await?;
                    }
                    put_state(&mut tx, mode, &reference, version, &state)?;
                }
                None => {
                    tx.schedule(
                        &keys::unexpected(mode),
                        now * 1000,
                        &t.account_transaction_url,
                    );
                    // A batch may yet be made under this reference (a payment by bank whose
                    // money arrived before its success was committed): it adopts it then.
                    if let (Some(r), None) = (&t.reference, &unreadable) {
                        tx.index(&keys::unmatched(mode, r), &t.account_transaction_url);
                    }
                }
            }
            match self.store.commit(&tx).await? {
                Commit::Done(_) => {
                    if seen.batch.is_none() {
                        metrics::counter!("calmony_reconciliation_discrepancies_total", "kind" => "unexpected_credit").increment(1);
                        tracing::warn!(mode = mode.as_str(), reference = ?seen.reference, amount, "a credit nobody expected reached the settlement account");
                    }
                    return Ok(true);
                }
                _ => continue,
            }
        }
        Err(FollowError::Api(format!(
            "credit {} kept meeting concurrent changes",
            t.account_transaction_url
        )))
    }

    /// Move every batch that is due or in transit.
    pub async fn tick(&self, mode: Mode) -> Result<(), FollowError> {
        let now = clock::now();
        let mut refs = self
            .scored(&keys::due(mode), "-inf", &(now * 1000).to_string())
            .await?;
        refs.extend(self.scored(&keys::in_transit(mode), "-inf", "+inf").await?);
        refs.sort();
        refs.dedup();
        for reference in refs {
            self.step(mode, &reference, now).await?;
        }
        Ok(())
    }

    async fn step(&self, mode: Mode, reference: &str, now: i64) -> Result<(), FollowError> {
        let st = self.settlement.mode(mode);
        self.adopt(mode, reference).await?;
        for _ in 0..RETRIES {
            let Some(f) = self.figures(mode, reference).await? else {
                return Ok(());
            };
            let (mut state, version) = self.state(mode, reference).await?;
            let mut tx = Tx::new();
            let watched = self.griffin.client(mode).is_some();
            match batches::on_tick(st, &f, &state, now, watched) {
                Step::Nothing => {
                    if state.phase != Phase::Open {
                        // Nothing more to do from the due set (a late addition re-added it):
                        // a balance transaction that joined after the close is available at
                        // once, and the report names the batch `changed_after_close`.
                        let freed = self.free_pending(&mut tx, mode, reference).await?;
                        if !freed.is_empty() {
                            tracing::warn!(
                                mode = mode.as_str(),
                                reference,
                                "balance transactions joined a batch after it closed"
                            );
                        }
                        tx.unindex(&keys::due(mode), reference);
                        if state.phase != Phase::InTransit {
                            tx.unindex(&keys::in_transit(mode), reference);
                        }
                        self.store.commit(&tx).await?;
                    }
                    return Ok(());
                }
                Step::Close { paid } => {
                    self.close(&mut tx, mode, reference, &f, &mut state, now, paid)
                        .await?;
                    if !paid {
                        let deadline = match f.kind {
                            BatchKind::Card => st.card_deadline_secs,
                            BatchKind::Bank => st.bank_deadline_secs,
                        };
                        tx.schedule(&keys::in_transit(mode), (now + deadline) * 1000, reference);
                    }
                }
                Step::Pay => self.pay(&mut tx, mode, reference, &mut state).await?,
                Step::Fail { code } => {
                    self.fail(&mut tx, mode, reference, &f, &mut state, code)
                        .await?;
                }
            }
            put_state(&mut tx, mode, reference, version, &state)?;
            if let Commit::Done(_) = self.store.commit(&tx).await? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Close a batch: its balance transactions become available, and each project with a
    /// positive share gets a payout on its way, or already paid when its credits have come.
    #[allow(clippy::too_many_arguments)]
    async fn close(
        &self,
        tx: &mut Tx,
        mode: Mode,
        reference: &str,
        f: &Figures,
        state: &mut BatchState,
        now: i64,
        paid: bool,
    ) -> Result<(), FollowError> {
        let st = self.settlement.mode(mode);
        let deadline = match f.kind {
            BatchKind::Card => st.card_deadline_secs,
            BatchKind::Bank => st.bank_deadline_secs,
        };
        // Pending to available, per project.
        let freed = self.free_pending(tx, mode, reference).await?;
        let request = EventRequest::default();
        for (project, net) in &freed {
            let scope = Scope::new(project.clone(), mode);
            let balance = self.balance_after(&scope, &f.currency, -net, *net).await?;
            tx.event(
                &scope,
                &crate::resource::event("balance.available", &balance, &scope, &request, now),
            );
        }
        // A batch whose refunds outweigh its takings pays nothing out: every project keeps
        // its share (positive or negative) in its available balance.
        let payouts = if f.expected > 0 {
            batches::payouts(f)
        } else {
            Vec::new()
        };
        for (project, amount) in payouts {
            let scope = Scope::new(project.clone(), mode);
            let mut po = Payout {
                id: ids::new_id(PAYOUT_PREFIX),
                object: "payout".into(),
                amount,
                arrival_date: now + deadline,
                automatic: true,
                balance_transaction: None,
                created: now,
                currency: f.currency.clone(),
                description: Some(match f.kind {
                    BatchKind::Card => "Card settlement from the acquirer".into(),
                    BatchKind::Bank => "Pay by Bank payment".into(),
                }),
                destination: None,
                failure_balance_transaction: None,
                failure_code: None,
                failure_message: None,
                livemode: mode.livemode(),
                metadata: json!({}),
                method: "standard".into(),
                source_type: match f.kind {
                    BatchKind::Card => "card".into(),
                    BatchKind::Bank => "bank_account".into(),
                },
                statement_descriptor: Some(reference.to_owned()),
                status: "in_transit".into(),
                kind: "bank_account".into(),
            };
            let bt = ledger::write(
                tx,
                &scope,
                &NewEntry {
                    kind: TxnType::Payout,
                    amount: -amount,
                    fee: 0,
                    currency: &f.currency,
                    source: Some(&po.id),
                    description: Some(format!("Payout {reference}")),
                    created: now,
                    batch: None,
                    scheme: None,
                },
            )?;
            po.balance_transaction = Some(bt.id);
            tx.event(
                &scope,
                &crate::resource::event("payout.created", &po, &scope, &request, now),
            );
            if paid {
                po.status = "paid".into();
                po.arrival_date = now;
                tx.event(
                    &scope,
                    &crate::resource::event("payout.paid", &po, &scope, &request, now),
                );
            }
            tx.put(&scope.record(&po.id), 1, &to_json(&po)?)
                .index(&keys::payouts(&scope), &po.id);
            state.payouts.insert(project, po.id);
        }
        state.phase = if paid { Phase::Paid } else { Phase::InTransit };
        state.closed_at = Some(now);
        state.expected_at_close = Some(f.expected);
        tx.unindex(&keys::due(mode), reference);
        Ok(())
    }

    /// The batch's credits add up: its payouts are paid.
    async fn pay(
        &self,
        tx: &mut Tx,
        mode: Mode,
        reference: &str,
        state: &mut BatchState,
    ) -> Result<(), FollowError> {
        let now = clock::now();
        for (project, po_id) in &state.payouts {
            let scope = Scope::new(project.clone(), mode);
            let key = scope.record(po_id);
            let Some(rec) = self.store.get(&key).await? else {
                continue;
            };
            let mut po: Payout = rec.parse(&key)?;
            if po.status != "in_transit" {
                continue;
            }
            po.status = "paid".into();
            po.arrival_date = now;
            tx.expect_version(&key, rec.version)
                .put(&key, rec.version + 1, &to_json(&po)?);
            tx.event(
                &scope,
                &crate::resource::event("payout.paid", &po, &scope, &EventRequest::default(), now),
            );
        }
        state.phase = Phase::Paid;
        tx.unindex(&keys::in_transit(mode), reference);
        Ok(())
    }

    /// The deadline passed without the batch's credit: its payouts fail and their amounts go
    /// back to the balance.
    async fn fail(
        &self,
        tx: &mut Tx,
        mode: Mode,
        reference: &str,
        f: &Figures,
        state: &mut BatchState,
        code: &'static str,
    ) -> Result<(), FollowError> {
        let now = clock::now();
        let message = match code {
            "credit_not_received" => format!(
                "No credit with reference {reference} reached the settlement account by the deadline."
            ),
            _ => format!(
                "The credits with reference {reference} came to {} pence, not the {} expected.",
                state.received, f.expected
            ),
        };
        for (project, po_id) in &state.payouts {
            let scope = Scope::new(project.clone(), mode);
            let key = scope.record(po_id);
            let Some(rec) = self.store.get(&key).await? else {
                continue;
            };
            let mut po: Payout = rec.parse(&key)?;
            if po.status != "in_transit" {
                continue;
            }
            let bt = ledger::write(
                tx,
                &scope,
                &NewEntry {
                    kind: TxnType::PayoutFailure,
                    amount: po.amount,
                    fee: 0,
                    currency: &po.currency,
                    source: Some(&po.id),
                    description: Some(format!("Payout failure {reference}")),
                    created: now,
                    batch: None,
                    scheme: None,
                },
            )?;
            po.status = "failed".into();
            po.failure_code = Some(code.into());
            po.failure_message = Some(message.clone());
            po.failure_balance_transaction = Some(bt.id);
            tx.expect_version(&key, rec.version)
                .put(&key, rec.version + 1, &to_json(&po)?);
            tx.event(
                &scope,
                &crate::resource::event(
                    "payout.failed",
                    &po,
                    &scope,
                    &EventRequest::default(),
                    now,
                ),
            );
        }
        metrics::counter!("calmony_reconciliation_discrepancies_total", "kind" => code)
            .increment(1);
        tracing::warn!(
            mode = mode.as_str(),
            reference,
            code,
            received = state.received,
            expected = f.expected,
            "a settlement payout failed"
        );
        state.phase = Phase::Failed;
        state.failure_code = Some(code.into());
        tx.unindex(&keys::in_transit(mode), reference);
        Ok(())
    }

    /// Make a batch's pending balance transactions available, in `tx`: what each project
    /// gained.
    async fn free_pending(
        &self,
        tx: &mut Tx,
        mode: Mode,
        reference: &str,
    ) -> Result<BTreeMap<String, i64>, FollowError> {
        let mut freed: BTreeMap<String, i64> = BTreeMap::new();
        for (project, txn) in self.members(mode, reference).await? {
            let scope = Scope::new(project.clone(), mode);
            let key = scope.record(&txn);
            let Some(rec) = self.store.get(&key).await? else {
                continue;
            };
            let mut bt: calmony_protocol::balance::BalanceTransaction = rec.parse(&key)?;
            if bt.status != "pending" {
                continue;
            }
            bt.status = "available".into();
            tx.expect_version(&key, rec.version)
                .put(&key, rec.version + 1, &to_json(&bt)?);
            let b = keys::balance(&scope);
            tx.hincrby(&b, &format!("pending:{}", bt.currency), -bt.net)
                .hincrby(&b, &format!("available:{}", bt.currency), bt.net);
            *freed.entry(project).or_default() += bt.net;
        }
        Ok(freed)
    }

    /// Count, in the batch under `reference`, the credits that came under that reference
    /// before the batch existed (kept aside as unexpected until now), each in one commit.
    async fn adopt(&self, mode: Mode, reference: &str) -> Result<(), FollowError> {
        let index = keys::unmatched(mode, reference);
        for url in self.scored(&index, "-inf", "+inf").await? {
            let key = keys::credit(mode, &url);
            for _ in 0..RETRIES {
                let Some(rec) = self.store.get(&key).await? else {
                    break;
                };
                let mut seen: SeenCredit = rec.parse(&key)?;
                let mut tx = Tx::new();
                tx.unindex(&index, &url);
                if seen.batch.is_none() && seen.adjusted.is_none() {
                    let (mut state, version) = self.state(mode, reference).await?;
                    state.received += seen.amount;
                    state.credits.push(url.clone());
                    seen.batch = Some(reference.to_owned());
                    tx.expect_version(&key, rec.version)
                        .put(&key, rec.version + 1, &to_json(&seen)?)
                        .unindex(&keys::unexpected(mode), &url);
                    put_state(&mut tx, mode, reference, version, &state)?;
                }
                if let Commit::Done(_) = self.store.commit(&tx).await? {
                    tracing::info!(mode = mode.as_str(), reference, credit = %url, "a credit seen before its batch was counted in it");
                    break;
                }
            }
        }
        Ok(())
    }

    /// A batch's figures; `None` when no balance transaction named it.
    pub async fn figures(
        &self,
        mode: Mode,
        reference: &str,
    ) -> Result<Option<Figures>, FollowError> {
        let (mut c, k) = (self.store.conn(), keys::batch(mode, reference));
        let fields: BTreeMap<String, String> = self
            .store
            .run(async move { redis::cmd("HGETALL").arg(k).query_async(&mut c).await })
            .await?;
        Ok(Figures::from_fields(&fields))
    }

    /// A batch's state and its version (0: never written).
    pub async fn state(
        &self,
        mode: Mode,
        reference: &str,
    ) -> Result<(BatchState, u64), FollowError> {
        let key = keys::batch_state(mode, reference);
        Ok(match self.store.get(&key).await? {
            Some(rec) => (rec.parse(&key)?, rec.version),
            None => (BatchState::default(), 0),
        })
    }

    async fn members(
        &self,
        mode: Mode,
        reference: &str,
    ) -> Result<Vec<(String, String)>, FollowError> {
        let all = self
            .scored(&keys::batch_members(mode, reference), "-inf", "+inf")
            .await?;
        Ok(all
            .into_iter()
            .filter_map(|m| m.split_once('|').map(|(p, t)| (p.to_owned(), t.to_owned())))
            .collect())
    }

    /// A sorted set's members scored from `min` to `max` (`-inf`, `+inf` or a number),
    /// lowest first.
    pub(super) async fn scored(
        &self,
        set: &str,
        min: &str,
        max: &str,
    ) -> Result<Vec<String>, FollowError> {
        let (mut c, k, min, max) = (
            self.store.conn(),
            set.to_owned(),
            min.to_owned(),
            max.to_owned(),
        );
        Ok(self
            .store
            .run(async move {
                redis::cmd("ZRANGEBYSCORE")
                    .arg(k)
                    .arg(min)
                    .arg(max)
                    .query_async(&mut c)
                    .await
            })
            .await?)
    }

    /// A cursor moved on (a plain string key).
    async fn redis_set(&self, key: &str, value: &str) -> Result<(), FollowError> {
        let (mut c, k, v) = (self.store.conn(), key.to_owned(), value.to_owned());
        Ok(self
            .store
            .run(async move {
                redis::cmd("SET")
                    .arg(k)
                    .arg(v)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await?)
    }

    async fn redis_get(&self, key: &str) -> Result<Option<String>, FollowError> {
        let (mut c, k) = (self.store.conn(), key.to_owned());
        Ok(self
            .store
            .run(async move { redis::cmd("GET").arg(k).query_async(&mut c).await })
            .await?)
    }

    /// The scope's balance as it will be once this commit moves `pending` and `available`.
    async fn balance_after(
        &self,
        scope: &Scope,
        currency: &str,
        pending: i64,
        available: i64,
    ) -> Result<Balance, FollowError> {
        let mut b = super::api::balance(&self.store, scope).await?;
        for (list, delta) in [(&mut b.pending, pending), (&mut b.available, available)] {
            match list.iter_mut().find(|f| f.currency == currency) {
                Some(f) => f.amount += delta,
                None => list.push(Funds {
                    amount: delta,
                    currency: currency.to_owned(),
                    source_types: json!({}),
                }),
            }
        }
        Ok(b)
    }
}

fn put_state(
    tx: &mut Tx,
    mode: Mode,
    reference: &str,
    version: u64,
    state: &BatchState,
) -> Result<(), FollowError> {
    let key = keys::batch_state(mode, reference);
    tx.expect_version(&key, version)
        .put(&key, version + 1, &to_json(state)?);
    Ok(())
}
