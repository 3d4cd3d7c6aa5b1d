//! Which critical actors are down right now: what `/readyz` and the systemd watchdog read.
//!
//! An actor is down from the moment its panic is caught until its restart has begun its work
//! again (after the backoff, and past any start that failed). The registry is process-wide
//! and behind a plain mutex: it changes only on a crash or a start, and is read by `/readyz`
//! and a watchdog tick, never on a payment's path.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Actors whose absence stops the daemon doing its job: money, renewals, webhooks, expiries.
pub const CRITICAL: &[&str] = &[
    "intent_processor",
    "cardstream_gateway",
    "webhook_dispatcher",
    "subscription_scheduler",
    "checkout_expiry",
    "bank_tracker",
];

/// Down actors, by name, with when they went down.
static DOWN: LazyLock<Mutex<BTreeMap<&'static str, Instant>>> = LazyLock::new(Default::default);

fn down_map() -> std::sync::MutexGuard<'static, BTreeMap<&'static str, Instant>> {
    DOWN.lock().unwrap_or_else(|p| p.into_inner())
}

/// `actor` stopped (a panic was caught, or its start failed); the first time counts.
pub fn down(actor: &'static str) {
    down_map().entry(actor).or_insert_with(Instant::now);
}

/// `actor` is doing its work again.
pub fn up(actor: &'static str) {
    down_map().remove(actor);
}

/// The critical actors down now, with how long each has been, in name order.
pub fn critical_down() -> Vec<(&'static str, Duration)> {
    down_map()
        .iter()
        .filter(|(name, _)| CRITICAL.contains(name))
        .map(|(name, since)| (*name, since.elapsed()))
        .collect()
}

/// Whether a critical actor has stayed down longer than `grace` (the watchdog stops pinging:
/// a restart that keeps failing is systemd's to fix by restarting the whole daemon).
pub fn stuck(grace: Duration) -> bool {
    critical_down().iter().any(|(_, d)| *d > grace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_critical_actor_is_down_from_its_crash_until_it_is_up_again() {
        up("intent_processor");
        down("intent_processor");
        down("not_critical_here");
        let names: Vec<_> = critical_down().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["intent_processor"]);
        assert!(!stuck(Duration::from_secs(60)));
        assert!(stuck(Duration::ZERO) || critical_down()[0].1 == Duration::ZERO);
        up("intent_processor");
        up("not_critical_here");
        assert!(critical_down().is_empty());
    }
}
