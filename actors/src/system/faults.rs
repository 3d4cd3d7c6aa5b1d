//! The test-only fault hook: make a named actor panic on its next message, or refuse its
//! restarts for a while. Armed through the sandbox's operator route
//! (`POST /sandbox/actors/faults`), which exists only with the sandbox on and an operator
//! token set; nothing in production arms it, and an unarmed check is one relaxed atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// What is armed for one actor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Armed {
    /// Panics still to cause, one per message.
    panics: u32,
    /// Until when each start is refused (the actor stays down).
    refuse_until: Option<Instant>,
}

/// Whether anything is armed at all: the fast path of [`trip`].
static ANY: AtomicBool = AtomicBool::new(false);
static ARMED: LazyLock<Mutex<HashMap<String, Armed>>> = LazyLock::new(Default::default);

fn armed() -> std::sync::MutexGuard<'static, HashMap<String, Armed>> {
    ARMED.lock().unwrap_or_else(|p| p.into_inner())
}

/// A fault request that names no actor of this daemon.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no actor {0:?}: expected one of {names}", names = actor_names())]
pub struct UnknownActor(pub String);

fn actor_names() -> String {
    format!("{}, {BEFORE_SALE}", ACTORS.join(", "))
}

/// Every actor the hook can reach: every actor (the restart counter is registered for each).
pub const ACTORS: &[&str] = &[
    "intent_processor",
    "cardstream_gateway",
    "webhook_dispatcher",
    "subscription_scheduler",
    "checkout_expiry",
    "bank_tracker",
    "invoice_generator",
    "event_retention",
    "clock_follower",
    "sandbox_settlement",
    "griffin_sandbox_delivery",
];

/// A fault point inside a payment's work rather than at an actor's message: just before the
/// sale goes to the gateway, after the payment's begin commit. The panic unwinds the work of
/// the actor that runs the payment (the IntentProcessor, for an API request), which must then
/// resume the begun payment by recovery, charging it once.
pub const BEFORE_SALE: &str = "payment_before_sale";

/// Make `actor` (or the [`BEFORE_SALE`] point) panic on its next `panics` messages, and
/// refuse its starts for `hold`.
pub fn arm(actor: &str, panics: u32, hold: Duration) -> Result<(), UnknownActor> {
    if !ACTORS.contains(&actor) && actor != BEFORE_SALE {
        return Err(UnknownActor(actor.to_string()));
    }
    let refuse_until = (!hold.is_zero()).then(|| Instant::now() + hold);
    armed().insert(
        actor.to_string(),
        Armed {
            panics,
            refuse_until,
        },
    );
    ANY.store(true, Ordering::Release);
    Ok(())
}

/// Panic here if `actor` is armed to (called at the start of each message's work, inside the
/// actor's panic boundary).
pub fn trip(actor: &str) {
    if !ANY.load(Ordering::Acquire) {
        return;
    }
    let fire = {
        let mut all = armed();
        match all.get_mut(actor) {
            Some(a) if a.panics > 0 => {
                a.panics -= 1;
                true
            }
            _ => false,
        }
    };
    if fire {
        panic!("test fault: {actor} panics on this message");
    }
}

/// Whether `actor`'s start is to fail now.
pub fn refuses_start(actor: &str) -> bool {
    if !ANY.load(Ordering::Acquire) {
        return false;
    }
    armed()
        .get(actor)
        .and_then(|a| a.refuse_until)
        .is_some_and(|until| Instant::now() < until)
}

/// The steps of a Pay by Bank payment where a crash drill may kill the daemon: after the
/// attempt is committed and before the bank hears of it, after the bank created the consent
/// and before it is recorded, after the approval's token is committed and before the payment
/// is submitted, and after the bank accepted the payment and before it is recorded. And the
/// steps of a refund of one paid from Griffin: before and after its payment is created, and
/// before and after it is submitted (each "after" before the step is recorded).
pub const KILL_POINTS: &[&str] = &[
    "bank_before_consent",
    "bank_after_consent",
    "bank_before_submit",
    "bank_after_submit",
    "bank_refund_before_create",
    "bank_refund_after_create",
    "bank_refund_before_submit",
    "bank_refund_after_submit",
];

/// The kill point named by `CALMONY_TEST_KILL_AT`, read once at start: how a crash drill
/// kills the process at an exact step (a test sets it; nothing else does).
static KILL_AT: std::sync::LazyLock<Option<String>> = std::sync::LazyLock::new(|| {
    std::env::var("CALMONY_TEST_KILL_AT")
        .ok()
        .filter(|p| KILL_POINTS.contains(&p.as_str()))
});

/// End the process at once, as SIGKILL would (no destructor, no flush, no answer), if the
/// drill named this `point`.
pub fn kill_point(point: &str) {
    if KILL_AT.as_deref() == Some(point) {
        tracing::error!(point, "crash drill: the process dies here");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_armed_actor_panics_once_per_armed_message_and_others_do_not() {
        arm("event_retention", 1, Duration::ZERO).expect("known actor");
        trip("checkout_expiry");
        let first = std::panic::catch_unwind(|| trip("event_retention"));
        assert!(first.is_err());
        trip("event_retention");
        assert!(!refuses_start("event_retention"));
        assert!(arm("nobody", 1, Duration::ZERO).is_err());
    }
}
