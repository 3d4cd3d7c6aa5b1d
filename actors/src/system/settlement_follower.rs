//! SettlementFollower: every second, move the settlement batches that are due (close into
//! payouts, pay, fail: see [`crate::money::follower`]), and read the Griffin account's new
//! credits every `settlement.poll_seconds`, or at once when a Griffin webhook says something
//! changed ([`Nudge`]). Its queues are sorted sets in Redis, so a pass cut short by a panic or
//! a crash leaves its work for the next one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::money::follower::Follower;

use super::periodic::Pass;

pub const NAME: &str = "settlement_follower";

/// Set by whoever learns the account changed (the Griffin webhook receiver): the next pass
/// reads the ledger without waiting for its poll interval.
#[derive(Debug, Clone, Default)]
pub struct Nudge(Arc<AtomicBool>);

impl Nudge {
    pub fn nudge(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

#[derive(Clone)]
pub struct SettlementFollower {
    pub follower: Follower,
    pub nudge: Nudge,
    pub last_poll: Option<Instant>,
}

impl Pass for SettlementFollower {
    const NAME: &'static str = NAME;
    const EVERY: Duration = Duration::from_secs(1);

    fn run(mut self) -> Pin<Box<dyn Future<Output = Self> + Send>> {
        Box::pin(async move {
            let every = Duration::from_secs(self.follower.settlement.poll_secs.max(1));
            let poll = self.nudge.take() || self.last_poll.is_none_or(|t| t.elapsed() >= every);
            if poll {
                self.last_poll = Some(Instant::now());
            }
            if let Err(e) = self.follower.pass(poll).await {
                tracing::warn!(error = %e, "settlement pass failed; retried next tick");
            }
            self
        })
    }
}
