//! Forgetting events after the retention period (30 days, as Stripe).
//!
//! An event carries no expiry of its own: one sweep a minute removes, for every project and
//! mode, the events older than the period from the head of the log together with their
//! entries in the type lists and their pending counts, in batches (and the events written
//! before the log from their records and lists). That keeps the lists from growing without
//! end (an expiring key would leave its list entries behind) and keeps an expiry command off
//! every event of every payment.

use std::time::{Duration, Instant};

use calmony_protocol::event::RETENTION_SECS;
use redis::AsyncCommands;

use super::Webhooks;
use super::dispatch::scope_of;
use crate::api_keys::EVENT_STREAMS;
use crate::clock;
use crate::store::{Scope, StoreError, scripts};

/// How often the sweep runs.
const EVERY: Duration = Duration::from_secs(60);
/// Events removed per script call (a call is one atomic step, so it is kept short).
const BATCH: usize = 500;

impl Webhooks {
    /// One tick of the EventRetention actor (once a second): sweep when [`EVERY`] has passed
    /// since `last`, and at once when a controllable clock is moved (a rehearsal of a month
    /// then sees the month's events go).
    pub async fn retention_pass(&self, last: &mut Option<(Instant, i64)>) {
        let due =
            last.is_none_or(|(at, offset)| at.elapsed() >= EVERY || offset != clock::offset_ms());
        if !due {
            return;
        }
        match self.forget_expired_events(clock::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "forgot events past the retention period"),
            Err(e) => tracing::warn!(error = %e, "event retention sweep failed; next run retries"),
        }
        *last = Some((Instant::now(), clock::offset_ms()));
    }

    /// Remove every event created before `now` minus the retention period; answers how many.
    pub async fn forget_expired_events(&self, now: i64) -> Result<usize, StoreError> {
        let cutoff = now - RETENTION_SECS;
        let mut c = self.store.conn();
        let streams: Vec<String> = self.store.run(c.smembers(EVENT_STREAMS)).await?;
        let mut forgotten = 0;
        for scope in streams.iter().filter_map(|s| scope_of(s)) {
            forgotten += self.forget_in_log(&scope, cutoff).await?;
            forgotten += self.forget_before_log(&scope, cutoff).await?;
        }
        Ok(forgotten)
    }

    /// The log's events created before `cutoff`.
    async fn forget_in_log(&self, scope: &Scope, cutoff: i64) -> Result<usize, StoreError> {
        self.in_batches(|| {
            let mut inv = scripts::TRIM_LOG.prepare_invoke();
            inv.key(scope.event_log())
                .key(scope.event_pending())
                .arg(scope.key("events:bytype:"))
                .arg(cutoff)
                .arg(BATCH);
            inv
        })
        .await
    }

    /// Events written before the log (records listed in `events:index`), as they were swept.
    async fn forget_before_log(&self, scope: &Scope, cutoff: i64) -> Result<usize, StoreError> {
        self.in_batches(|| {
            let mut inv = scripts::TRIM_EVENTS.prepare_invoke();
            inv.key(scope.event_index_before_log())
                .arg(scope.record_prefix())
                .arg(scope.key("events:type:"))
                .arg(cutoff)
                .arg(BATCH);
            inv
        })
        .await
    }

    /// Run a trimming script (answering how many it forgot and whether it reached an event
    /// inside the period) until it reaches one or forgets less than a batch; answers the total.
    async fn in_batches(
        &self,
        invocation: impl Fn() -> redis::ScriptInvocation<'static>,
    ) -> Result<usize, StoreError> {
        let mut forgotten = 0;
        loop {
            let (inv, mut c) = (invocation(), self.store.conn());
            let (n, reached_newer): (usize, u8) = self
                .store
                .run(async move { inv.invoke_async(&mut c).await })
                .await?;
            forgotten += n;
            if reached_newer == 1 || n < BATCH {
                return Ok(forgotten);
            }
        }
    }
}
