//! The SubscriptionScheduler: the billing run on its cron schedule (`billing.schedule`), and
//! the continuation of a run another daemon began and did not finish. The run itself is
//! `billing::scheduler`'s; this actor keeps the schedule's position between ticks and restarts
//! the work when it panics. A run's progress lives in Redis (its cutoff, its lease, each
//! subscription's due time), so a restarted scheduler continues where the run stopped, and a
//! tick that panicked before its run leaves the run due.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::billing::{Billing, SchedulePosition};

use super::periodic::Pass;

pub const NAME: &str = "subscription_scheduler";

/// The scheduler's state between ticks.
#[derive(Clone)]
pub struct SubscriptionScheduler {
    billing: Billing,
    position: SchedulePosition,
}

impl SubscriptionScheduler {
    /// `None` when `billing.schedule` is not a cron expression (logged; no scheduler runs).
    pub fn new(billing: Billing) -> Option<Self> {
        let position = billing.schedule_position()?;
        Some(Self { billing, position })
    }
}

impl Pass for SubscriptionScheduler {
    const NAME: &'static str = NAME;
    const EVERY: Duration = Duration::from_millis(500);

    fn run(mut self) -> Pin<Box<dyn Future<Output = Self> + Send>> {
        Box::pin(async move {
            self.billing.schedule_tick(&mut self.position).await;
            self
        })
    }
}
