//! Forgetting events after the retention period (30 days, as Stripe).
//!
//! An event record carries no expiry of its own: one sweep a minute removes, for every
//! project and mode, the events older than the period together with their places in the event
//! lists, in batches. That keeps the lists from growing without end (an expiring record would
//! leave its list entries behind) and keeps an expiry command off every event of every
//! payment.

use std::time::{Duration, Instant};

use calmony_protocol::event::RETENTION_SECS;
use redis::AsyncCommands;

use super::Webhooks;
use super::dispatch::scope_of;
use crate::api_keys::EVENT_STREAMS;
use crate::clock;
use crate::store::{StoreError, scripts};

/// How often the sweep runs.
const EVERY: Duration = Duration::from_secs(60);
/// Events removed per script call (a call is one atomic step, so it is kept short).
const BATCH: usize = 500;

impl Webhooks {
    /// Sweep every [`EVERY`], and at once when a controllable clock is moved (a rehearsal of
    /// a month then sees the month's events go).
    pub(super) async fn retention_loop(self) {
        let mut last: Option<(Instant, i64)> = None;
        loop {
            let due = last
                .is_none_or(|(at, offset)| at.elapsed() >= EVERY || offset != clock::offset_ms());
            if due {
                match self.forget_expired_events(clock::now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(events = n, "forgot events past the retention period"),
                    Err(e) => {
                        tracing::warn!(error = %e, "event retention sweep failed; next run retries")
                    }
                }
                last = Some((Instant::now(), clock::offset_ms()));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Remove every event created before `now` minus the retention period; answers how many.
    pub async fn forget_expired_events(&self, now: i64) -> Result<usize, StoreError> {
        let cutoff = now - RETENTION_SECS;
        let mut c = self.store.conn();
        let streams: Vec<String> = self.store.run(c.smembers(EVENT_STREAMS)).await?;
        let mut forgotten = 0;
        for scope in streams.iter().filter_map(|s| scope_of(s)) {
            loop {
                let mut c = self.store.conn();
                let mut inv = scripts::TRIM_EVENTS.prepare_invoke();
                inv.key(scope.key("events:index"))
                    .arg(scope.record_prefix())
                    .arg(scope.key("events:type:"))
                    .arg(cutoff)
                    .arg(BATCH);
                let (n, reached_newer): (usize, u8) = self
                    .store
                    .run(async move { inv.invoke_async(&mut c).await })
                    .await?;
                forgotten += n;
                if reached_newer == 1 || n < BATCH {
                    break;
                }
            }
        }
        Ok(forgotten)
    }
}
