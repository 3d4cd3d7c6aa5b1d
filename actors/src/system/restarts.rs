//! The restart policy every actor shares: the panic boundary around its work, the log line and
//! metric of each restart, the backoff before it begins again, and its entry in [`health`].
//!
//! actix's `Supervisor` restarts an actor when it *stops*; a panic inside a handler would
//! instead unwind the arbiter's task. So no actor's work runs bare: [`guarded`] catches a
//! panic at the work's boundary, tells the actor ([`Crashed`]), and the actor logs it, counts
//! it in `calmony_actor_restarts_total{actor}` and stops itself; the Supervisor then restarts
//! it on the same mailbox (messages sent meanwhile wait there), and [`Supervision::begin`]
//! holds the restarted actor back for the backoff before its work resumes.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::FutureExt;

use super::faults;
use super::health;

/// The first restart's pause; each consecutive one doubles it.
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest pause between restarts.
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// Without a crash for this long, the next one counts as the first again.
pub const QUIET: Duration = Duration::from_secs(30);
/// Messages an actor's mailbox holds before senders wait: well above the connections the
/// edge serves at once, so a burst of payments never waits on the mailbox itself.
pub const MAILBOX: usize = 16_384;

/// The pause before the `consecutive`-th restart in a row (0: a first start, no pause).
pub fn delay(consecutive: u32) -> Duration {
    if consecutive == 0 {
        return Duration::ZERO;
    }
    let doublings = (consecutive - 1).min(16);
    FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

/// How many crashes in a row a new one makes, given the count so far and how long ago the last
/// was (`None`: never).
pub fn consecutive(so_far: u32, since_last: Option<Duration>) -> u32 {
    match since_last {
        Some(d) if d < QUIET => so_far.saturating_add(1),
        _ => 1,
    }
}

/// A panic caught at an actor's boundary, sent to the actor so it restarts.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Crashed(pub String);

/// One actor's restart state. It lives in the actor value, which the Supervisor keeps across
/// restarts.
#[derive(Debug, Clone)]
pub struct Supervision {
    pub name: &'static str,
    crashes: u32,
    last_crash: Option<Instant>,
}

impl Supervision {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            crashes: 0,
            last_crash: None,
        }
    }

    /// The actor stopped on a panic (or a failed start): log it, count the restart, mark the
    /// actor down until it begins again.
    pub fn crashed(&mut self, why: &str) {
        self.crashes = consecutive(self.crashes, self.last_crash.map(|t| t.elapsed()));
        self.last_crash = Some(Instant::now());
        health::down(self.name);
        metrics::counter!("calmony_actor_restarts_total", "actor" => self.name).increment(1);
        tracing::error!(
            actor = self.name,
            panic = why,
            restart_in_ms = delay(self.crashes).as_millis() as u64,
            "actor crashed; restarting"
        );
    }

    /// The pause before the actor's work begins (again).
    fn pause(&self) -> Duration {
        if self.last_crash.is_some() {
            delay(self.crashes)
        } else {
            Duration::ZERO
        }
    }
}

/// From an actor's `started`: after the backoff (none on the first start), begin its work with
/// `begin`; a start the fault hook refuses counts as another crash. The wait holds the
/// mailbox: messages sent meanwhile are handled once the actor has begun.
pub fn begin<A>(act: &mut A, ctx: &mut Context<A>, begin: fn(&mut A, &mut Context<A>))
where
    A: Actor<Context = Context<A>> + Watched,
{
    ctx.set_mailbox_capacity(MAILBOX);
    let pause = act.policy().pause();
    {
        let go = move |act: &mut A, ctx: &mut Context<A>| {
            let name = act.policy().name;
            if faults::refuses_start(name) {
                act.policy().crashed("test fault: the start is refused");
                ctx.stop();
                return;
            }
            health::up(name);
            begin(act, ctx);
        };
        ctx.wait(ActorFutureExt::map(
            actix::fut::wrap_future::<_, A>(actix::clock::sleep(pause)),
            move |(), act, ctx| go(act, ctx),
        ));
    }
}

/// An actor with a [`Supervision`].
pub trait Watched {
    fn policy(&mut self) -> &mut Supervision;
}

/// Handle a [`Crashed`]: record it and stop, so the Supervisor restarts the actor.
pub fn on_crash<A>(act: &mut A, why: &str, ctx: &mut Context<A>)
where
    A: Actor<Context = Context<A>> + Watched,
{
    act.policy().crashed(why);
    ctx.stop();
}

/// `work` inside the actor's panic boundary: the fault hook is checked first; a panic is
/// reported to `actor` and answered as `Err` with its message.
pub fn guarded<F, T>(
    name: &'static str,
    actor: Recipient<Crashed>,
    work: F,
) -> impl Future<Output = Result<T, String>> + Send + 'static
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    AssertUnwindSafe(async move {
        faults::trip(name);
        work.await
    })
    .catch_unwind()
    .map(move |caught| {
        caught.map_err(|payload| {
            let why = panic_message(payload.as_ref());
            actor.do_send(Crashed(why.clone()));
            why
        })
    })
}

/// The text a panic was raised with.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_from_100_ms_doubling_to_5_s() {
        for (n, ms) in [
            (0, 0),
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1600),
            (6, 3200),
            (7, 5000),
            (8, 5000),
            (40, 5000),
        ] {
            assert_eq!(delay(n), Duration::from_millis(ms), "restart {n}");
        }
    }

    #[test]
    fn a_quiet_period_makes_the_next_crash_a_first_one_again() {
        let s = Duration::from_secs;
        for (so_far, since, expected) in [
            (0, None, 1),
            (3, None, 1),
            (1, Some(s(1)), 2),
            (6, Some(s(29)), 7),
            (6, Some(s(30)), 1),
            (6, Some(s(3600)), 1),
            (u32::MAX, Some(s(1)), u32::MAX),
        ] {
            assert_eq!(consecutive(so_far, since), expected, "{so_far} {since:?}");
        }
    }

    #[test]
    fn a_panic_message_is_read_whether_static_or_formatted() {
        let caught = std::panic::catch_unwind(|| panic!("static")).expect_err("panicked");
        assert_eq!(panic_message(caught.as_ref()), "static");
        let n = 7;
        let caught = std::panic::catch_unwind(|| panic!("formatted {n}")).expect_err("panicked");
        assert_eq!(panic_message(caught.as_ref()), "formatted 7");
    }
}
