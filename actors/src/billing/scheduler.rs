//! The SubscriptionScheduler: on its cron schedule (hourly by default) one daemon at a time,
//! holding a lease, takes every subscription due and moves it on: trial notices and trial
//! ends, renewals (one invoice per period, charged as a merchant-initiated recurring payment),
//! dunning retries, cancellation at period end, and expiry of incomplete subscriptions.
//! Advancing a test clock runs the same work over that clock's subscriptions at once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use calmony_protocol::ApiError;
use calmony_protocol::billing::Subscription;
use calmony_protocol::customer::Customer;
use calmony_protocol::event::EventRequest;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use redis::AsyncCommands;

use super::catalog::load;
use super::collection::on_payment;
use super::invoice_records::{KnownInvoice, load_invoice, write_invoice};
use super::invoices;
use super::keys::{DUE, LEASE, RUN, clock_due, parse_due_member};
use super::settings::Billing;
use super::status::{BillingReason, InvoiceStatus, SubscriptionStatus};
use super::subscriptions::{self, load_sub, sub_events, write_sub};
use super::transitions::{
    DueSubscription, OpenInvoice, Step, charges_period, next_step, status_at_period_start,
};
use crate::clock;
use crate::resource::{commit, commit_numbered, event};
use crate::store::{Commit, Lease, Scope, Tx};

/// Most times one run moves one subscription on (each period it catches up takes one or two:
/// its invoice, then its charge's result); a test clock advanced 40 years on a monthly plan
/// stays well within it.
const MAX_PASSES: u32 = 1_000;

/// Automatic work has no request (events say `request.id: null`).
fn automatic() -> EventRequest {
    EventRequest::default()
}

/// The scheduler's place in its cron schedule: the next run's time, and when unfinished runs
/// were last looked for.
#[derive(Debug, Clone)]
pub struct SchedulePosition {
    schedule: cron::Schedule,
    next: i64,
    checked: Instant,
}

fn next_after(schedule: &cron::Schedule, t: i64) -> i64 {
    chrono::DateTime::from_timestamp(t, 0)
        .and_then(|d| schedule.after(&d).next())
        .map_or(t + 3600, |d| d.timestamp())
}

impl Billing {
    /// Where the cron schedule stands (the SubscriptionScheduler actor keeps it between
    /// ticks); `None` when `billing.schedule` is not a cron expression (the scheduler is off).
    /// Time is the daemon's clock (so a controllable clock moves the schedule too).
    pub fn schedule_position(&self) -> Option<SchedulePosition> {
        let schedule: cron::Schedule = match self.schedule.parse() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "billing.schedule is not a cron expression; the scheduler is off");
                return None;
            }
        };
        let next = next_after(&schedule, clock::now());
        Some(SchedulePosition {
            schedule,
            next,
            checked: Instant::now(),
        })
    }

    /// One tick of the scheduler (every half second): the run when the schedule says it is
    /// due, else now and then the continuation of a run another daemon began and did not
    /// finish (it died), once its lease has lapsed, with the run's own cutoff time.
    pub async fn schedule_tick(&self, at: &mut SchedulePosition) {
        let now = clock::now();
        if now >= at.next {
            at.next = next_after(&at.schedule, now);
            self.run_logged(now).await;
        } else if at.checked.elapsed() > Duration::from_secs(2) {
            at.checked = Instant::now();
            if let Ok(Some(cutoff)) = self.unfinished_run().await {
                self.run_logged(cutoff).await;
            }
        }
    }

    async fn run_logged(&self, now: i64) {
        match self.run_due(now).await {
            Ok(n) if n > 0 => tracing::info!(subscriptions = n, "billing run finished"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e.message, "billing run failed; it will be continued")
            }
        }
    }

    /// The cutoff of a run that was begun and not finished, if its lease is free.
    async fn unfinished_run(&self) -> Result<Option<i64>, ApiError> {
        let mut c = self.store.conn();
        let (run, lease): (Option<i64>, Option<String>) = self
            .store
            .run(async { redis::pipe().get(RUN).get(LEASE).query_async(&mut c).await })
            .await?;
        Ok(if lease.is_none() { run } else { None })
    }

    /// One run over real-time subscriptions due by `now`, under the lease. Returns how many
    /// were moved on; 0 if another daemon holds the lease. While it runs, `cp:billing:run`
    /// holds its cutoff, so a daemon that outlives this one can finish it.
    pub async fn run_due(&self, now: i64) -> Result<usize, ApiError> {
        let lease = self.run_lease();
        if self
            .store
            .take_lease(&lease.key, lease.token.clone(), lease.ttl)
            .await?
            .is_none()
        {
            return Ok(0);
        }
        let mut c = self.store.conn();
        let _: Result<(), _> = self.store.run(c.set(RUN, now)).await;
        let result = self.run_set(DUE, now, true).await;
        // Finished (not interrupted by losing the lease): the run is over.
        if let Ok((_, true)) = result {
            let _: Result<(), _> = self.store.run(c.del(RUN)).await;
        }
        let _ = self.store.release_lease(&lease).await;
        result.map(|(n, _)| n)
    }

    /// The scheduler's lease as this daemon holds it (its consumer name is its token).
    fn run_lease(&self) -> Lease {
        Lease {
            key: LEASE.into(),
            token: self.consumer.clone(),
            ttl: self.lease,
        }
    }

    /// Renew the lease; `false` if it was lost (another daemon took over: stop).
    async fn keep_lease(&self) -> bool {
        self.store
            .keep_lease(&self.run_lease())
            .await
            .is_ok_and(|kept| kept)
    }

    /// Move on everything in `set` due by `now`, `concurrency` at a time, until nothing is.
    /// Answers how many moved on, and whether the run finished (rather than lost its lease).
    ///
    /// The work is one continuous stream: more due members are fetched while fewer than
    /// `concurrency` wait, so the run never idles its slots waiting for a batch's slowest
    /// subscription (fixed batches did, at the end of each). A member in flight is still due
    /// (a renewal reschedules it only when its charge ends), so fetches skip those; one that
    /// failed is left to the next run rather than retried at once.
    async fn run_set(&self, set: &str, now: i64, leased: bool) -> Result<(usize, bool), ApiError> {
        let mut done = 0;
        let mut renewed = Instant::now();
        // Fetched and not yet finished (waiting in `queue` or running in `work`): still due.
        let mut in_flight: HashSet<String> = HashSet::new();
        let mut failed: HashSet<String> = HashSet::new();
        let mut passes: HashMap<String, u32> = HashMap::new();
        let mut queue: VecDeque<String> = VecDeque::new();
        let mut work = FuturesUnordered::new();
        // The last fetch saw everything due (it found less than it had room for).
        let mut exhausted = false;
        loop {
            let idle = queue.is_empty() && work.is_empty();
            if (queue.len() < self.concurrency && !exhausted) || idle {
                let limit = self.concurrency * 4 + in_flight.len() + failed.len();
                let mut c = self.store.conn();
                let due: Vec<String> = self
                    .store
                    .run(c.zrangebyscore_limit(set, "-inf", now, 0, limit as isize))
                    .await?;
                exhausted = due.len() < limit;
                for m in due {
                    if failed.contains(&m) || in_flight.contains(&m) {
                        continue;
                    }
                    // A subscription still due after this many passes is not catching up
                    // period by period: it is stuck, and the run must end without it.
                    let seen = passes.entry(m.clone()).or_insert(0);
                    *seen += 1;
                    if *seen > MAX_PASSES {
                        tracing::warn!(subscription = %m, "still due after {MAX_PASSES} passes in one run; left for the next run");
                        failed.insert(m);
                        continue;
                    }
                    in_flight.insert(m.clone());
                    queue.push_back(m);
                }
                if idle && queue.is_empty() {
                    return Ok((done, true));
                }
            }
            while work.len() < self.concurrency
                && let Some(m) = queue.pop_front()
            {
                let (me, set) = (self.clone(), set.to_string());
                work.push(async move {
                    let r = me.process(&set, &m, now).await;
                    (m, r)
                });
            }
            let Some((m, r)) = work.next().await else {
                continue;
            };
            in_flight.remove(&m);
            match r {
                Ok(()) => done += 1,
                Err(e) => {
                    tracing::warn!(error = %e.message, "a subscription could not be moved on; next run retries");
                    failed.insert(m);
                }
            }
            if leased && renewed.elapsed() > self.lease / 3 {
                if !self.keep_lease().await {
                    tracing::warn!("billing lease lost; another daemon continues the run");
                    return Ok((done, false));
                }
                renewed = Instant::now();
            }
        }
    }

    /// Move one subscription on at `now`, and leave it scheduled for its next due time.
    async fn process(&self, set: &str, member: &str, now: i64) -> Result<(), ApiError> {
        let Some((scope, id)) = parse_due_member(member) else {
            let mut c = self.store.conn();
            let _: i64 = self.store.run(c.zrem(set, member)).await?;
            return Ok(());
        };
        let (v, mut s, mut internal) = match load_sub(self, &scope, &id).await {
            Ok(x) => x,
            Err(e) if e.status == 404 => {
                let mut c = self.store.conn();
                let _: i64 = self.store.run(c.zrem(set, member)).await?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let status = SubscriptionStatus::of(&s.status);
        // Its latest invoice, when that is open and may be charged again.
        let mut open = None;
        if matches!(
            status,
            SubscriptionStatus::Active | SubscriptionStatus::PastDue
        ) && let Some(inv_id) = s.latest_invoice.clone()
            && let Ok((_, inv, inv_internal)) = load_invoice(&self.store, &scope, &inv_id).await
            && InvoiceStatus::of(&inv.status) == InvoiceStatus::Open
        {
            open = Some(OpenInvoice {
                paying: inv_internal.paying.is_some(),
                next_payment_attempt: inv.next_payment_attempt,
            });
        }
        let due = DueSubscription {
            status,
            created: s.created,
            trial_end: s.trial_end,
            current_period_end: s.current_period_end,
            cancel_at_period_end: s.cancel_at_period_end,
            trial_will_end_sent: internal.trial_will_end_sent,
        };
        let request = automatic();
        let mut tx = Tx::new();
        tx.expect_version(&scope.record(&id), v);
        match next_step(&due, open, now) {
            Step::Unschedule => {
                tx.unindex(set, member);
            }
            Step::WaitUntil(at) => {
                tx.schedule(set, at, member);
            }
            Step::Expire => {
                s.status = SubscriptionStatus::IncompleteExpired.as_str().into();
                s.ended_at = Some(now);
                if let Some(inv) = &s.latest_invoice {
                    void_open(self, &mut tx, &scope, inv, now).await?;
                }
                write_sub(&mut tx, &scope, v + 1, &s, &internal)?;
                sub_events(&mut tx, &scope, "updated", &s, &request, now);
                tx.unindex(set, member);
            }
            Step::NoticeTrialEnd { trial_end } => {
                internal.trial_will_end_sent = true;
                write_sub(&mut tx, &scope, v + 1, &s, &internal)?;
                sub_events(&mut tx, &scope, "trial_will_end", &s, &request, now);
                tx.schedule(set, trial_end, member);
            }
            Step::StartPeriod { start } => {
                return self
                    .start_period(&scope, set, member, v, s, internal, start, now)
                    .await;
            }
            Step::Retry => {
                if let Some(inv_id) = s.latest_invoice.clone() {
                    self.charge_or_fail(&scope, &inv_id).await;
                }
                return Ok(());
            }
            Step::CancelAtPeriodEnd => {
                s.status = SubscriptionStatus::Canceled.as_str().into();
                s.canceled_at = Some(s.current_period_end);
                s.ended_at = Some(s.current_period_end);
                write_sub(&mut tx, &scope, v + 1, &s, &internal)?;
                sub_events(&mut tx, &scope, "deleted", &s, &request, now);
                tx.unindex(set, member);
            }
        }
        match commit(&self.store, &tx).await? {
            Commit::Done(_) => Ok(()),
            // Changed meanwhile (an API update): the next pass sees the new version.
            _ => Ok(()),
        }
    }

    /// A new period from `start`: its invoice (once per period), then the charge.
    #[allow(clippy::too_many_arguments)]
    async fn start_period(
        &self,
        scope: &Scope,
        set: &str,
        member: &str,
        v: u64,
        mut s: Subscription,
        internal: subscriptions::SubInternal,
        start: i64,
        now: i64,
    ) -> Result<(), ApiError> {
        let (_, customer): (u64, Customer) = load(
            &self.store,
            scope,
            "cus",
            "customer",
            &s.customer,
            "customer",
        )
        .await?;
        let end = subscriptions::next_period_end(&s, start);
        let request = automatic();
        let mut tx = Tx::new();
        tx.expect_version(&scope.record(&s.id), v);
        let (inv, inv_internal) = subscriptions::period_invoice(
            self,
            &mut tx,
            scope,
            &s,
            &customer,
            start,
            end,
            BillingReason::SubscriptionCycle,
            now,
            &request,
        )
        .await?;
        s.current_period_start = start;
        s.current_period_end = end;
        for i in &mut s.items.data {
            i.current_period_start = start;
            i.current_period_end = end;
        }
        s.latest_invoice = Some(inv.id.clone());
        let status = status_at_period_start(SubscriptionStatus::of(&s.status));
        s.status = status.as_str().into();
        write_sub(&mut tx, scope, v + 1, &s, &internal)?;
        sub_events(&mut tx, scope, "updated", &s, &request, now);
        let charging = charges_period(status, inv.amount_due);
        // Due again at once until the charge's result reschedules it: a crash before the charge
        // leaves the invoice to be charged by the next pass.
        tx.schedule(set, if charging { now } else { end }, member);
        let id = inv.id.clone();
        let begun = if charging {
            let k = KnownInvoice {
                version: 1,
                invoice: inv,
                internal: inv_internal,
                subscription: Some((v + 1, s)),
            };
            invoices::begin_charge_in(self, scope, &mut tx, k).await
        } else {
            None
        };
        let (cmd_id, numbers) = match commit_numbered(&self.store, &tx).await? {
            (Commit::Done(cmd_id), numbers) => (cmd_id, numbers),
            // Another run invoiced this period already (or the subscription changed).
            _ => return Ok(()),
        };
        match (begun, cmd_id) {
            (Some(begun), Some(cmd_id)) => {
                if let Err(e) = invoices::run_begun(self, begun, &cmd_id, &numbers).await {
                    tracing::warn!(invoice = %id, error = %e.message, "renewal charge failed");
                }
            }
            _ if charging => self.charge_or_fail(scope, &id).await,
            _ => {}
        }
        Ok(())
    }

    /// Charge an invoice; without a payment method it can charge, count a failed attempt.
    async fn charge_or_fail(&self, scope: &Scope, invoice: &str) {
        match invoices::charge(self, scope, invoice, None, None).await {
            Ok(_) => {}
            // Nothing to charge with (none set, or the one set is gone or detached): a failed
            // attempt, retried on the dunning schedule. Anything else (a payment already in
            // flight, Redis unavailable) is left for the next pass.
            Err(e) if matches!(e.status, 400 | 404) => {
                let mut tx = Tx::new();
                let r = on_payment(
                    &self.store,
                    &mut tx,
                    scope,
                    invoice,
                    None,
                    false,
                    self.dunning_secs(),
                    self.final_action().as_str(),
                    &automatic(),
                    None,
                )
                .await;
                if r.is_ok() {
                    let _ = self.store.commit(&tx).await;
                }
            }
            Err(e) => tracing::warn!(invoice, error = %e.message, "renewal charge failed to start"),
        }
    }
}

async fn void_open(
    b: &Billing,
    tx: &mut Tx,
    scope: &Scope,
    inv_id: &str,
    now: i64,
) -> Result<(), ApiError> {
    let (iv, mut inv, internal) = load_invoice(&b.store, scope, inv_id).await?;
    if InvoiceStatus::of(&inv.status) == InvoiceStatus::Open {
        inv.status = InvoiceStatus::Void.as_str().into();
        inv.status_transitions.voided_at = Some(now);
        inv.next_payment_attempt = None;
        tx.expect_version(&scope.record(inv_id), iv);
        write_invoice(tx, scope, iv + 1, &inv, &internal)?;
        tx.event(
            scope,
            &event("invoice.voided", &inv, scope, &automatic(), now),
        );
    }
    Ok(())
}

/// Everything a test clock's subscriptions need done by `frozen_time` (called by advance).
pub async fn run_clock(
    b: &Billing,
    scope: &Scope,
    clock: &str,
    frozen_time: i64,
) -> Result<usize, ApiError> {
    let _ = scope;
    b.run_set(&clock_due(clock), frozen_time, false)
        .await
        .map(|(n, _)| n)
}
