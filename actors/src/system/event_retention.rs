//! Event retention: once a second, forget events past the retention period when it is due (a
//! minute after the last sweep, or at once when the controllable clock moved). What is forgotten
//! is decided from the event logs in Redis, so a restarted actor simply sweeps again.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use crate::webhooks::Webhooks;

use super::periodic::Pass;

pub const NAME: &str = "event_retention";

#[derive(Clone)]
pub struct EventRetention {
    pub webhooks: Webhooks,
    /// When the last sweep ran, and the clock offset it ran at.
    pub last: Option<(Instant, i64)>,
}

impl Pass for EventRetention {
    const NAME: &'static str = NAME;
    const EVERY: Duration = Duration::from_secs(1);

    fn run(mut self) -> Pin<Box<dyn Future<Output = Self> + Send>> {
        Box::pin(async move {
            self.webhooks.retention_pass(&mut self.last).await;
            self
        })
    }
}
