//! systemd integration: `READY=1` once serving, `STOPPING=1` on shutdown, and watchdog pings
//! from a runtime task (so a wedged runtime stops pinging and systemd restarts the daemon).
//! The pings stop too while a critical actor stays down past [`ACTOR_GRACE`]: an actor whose
//! restarts keep failing is a daemon systemd should restart. Outside systemd these are no-ops.

use std::time::Duration;

use calmony_actors::system::health;

/// How long a critical actor may be down (a restart's backoff is at most 5 s) before the
/// watchdog stops being fed.
pub const ACTOR_GRACE: Duration = Duration::from_secs(10);

use sd_notify::NotifyState;

pub fn ready() {
    if let Err(e) = sd_notify::notify(false, &[NotifyState::Ready]) {
        tracing::debug!(error = %e, "sd_notify READY failed");
    }
}

pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}

pub fn spawn_watchdog() {
    let mut usec = 0u64;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let every = Duration::from_micros(usec / 2);
    tracing::info!(
        interval_ms = every.as_millis() as u64,
        "systemd watchdog enabled"
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if !feeds_watchdog(health::stuck(ACTOR_GRACE)) {
                tracing::error!(down = ?health::critical_down(), "a critical actor stays down; not feeding the systemd watchdog");
                continue;
            }
            let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
        }
    });
}

/// Whether this tick pings the watchdog: not while a critical actor is stuck down.
fn feeds_watchdog(actor_stuck: bool) -> bool {
    !actor_stuck
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_is_fed_only_while_no_critical_actor_stays_down() {
        assert!(feeds_watchdog(false));
        assert!(!feeds_watchdog(true));
        // A down actor within the grace still feeds it: a restart takes at most its backoff.
        health::down("checkout_expiry");
        assert!(feeds_watchdog(health::stuck(ACTOR_GRACE)));
        std::thread::sleep(Duration::from_millis(2));
        assert!(!feeds_watchdog(health::stuck(Duration::from_millis(1))));
        health::up("checkout_expiry");
        assert!(feeds_watchdog(health::stuck(Duration::ZERO)));
    }
}
