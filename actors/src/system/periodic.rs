//! The shape of the actors that do one thing again and again (the subscription scheduler, the
//! checkout expiry sweeper, event retention, payment recovery's tick): an interval on the
//! actor's arbiter starts a pass, the pass runs on the daemon's runtime inside the panic
//! boundary, and the next tick starts the next pass only once this one is over.
//!
//! A pass takes its state by value and hands it back: a pass that panics leaves the state it
//! started from, so a restarted actor does the same work again (a renewal run that was due is
//! still due) rather than skipping it.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix::prelude::*;
use tokio::runtime::Handle;

use super::restarts::{self, Crashed, Supervision, Watched};

/// One pass of a periodic actor's work.
pub trait Pass: Clone + Send + Unpin + 'static {
    /// The actor's name (logs, metrics, health, the fault hook).
    const NAME: &'static str;
    /// How long after one pass's start the next may start.
    const EVERY: Duration;
    /// Do the work once; answer the state to carry to the next pass.
    fn run(self) -> Pin<Box<dyn Future<Output = Self> + Send>>;
}

/// A periodic actor to start with the others: how the daemon adds passes defined where the
/// actors cannot reach (the sandbox's settlement), under the same supervision. It answers the
/// Supervisor's address, to be held for as long as the actor should be restarted.
pub type Starter = Box<dyn FnOnce(Handle) -> Box<dyn Any + Send> + Send>;

/// The [`Starter`] of a supervised [`Periodic`] running `pass`.
pub fn starter<P: Pass>(pass: P) -> Starter {
    Box::new(move |runtime| Box::new(Supervisor::start(move |_| Periodic::new(pass, runtime))))
}

/// A supervised actor running `P` every [`Pass::EVERY`].
pub struct Periodic<P: Pass> {
    pass: P,
    busy: bool,
    policy: Supervision,
    runtime: Handle,
}

impl<P: Pass> Periodic<P> {
    pub fn new(pass: P, runtime: Handle) -> Self {
        Self {
            pass,
            busy: false,
            policy: Supervision::new(P::NAME),
            runtime,
        }
    }

    fn begin(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(P::EVERY, |act, ctx| act.tick(ctx));
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        self.busy = true;
        let work = restarts::guarded(P::NAME, ctx.address().recipient(), self.pass.clone().run());
        let pass = self.runtime.spawn(work);
        ctx.spawn(actix::fut::wrap_future::<_, Self>(pass).map(|ran, act, _| {
            act.busy = false;
            if let Ok(Ok(next)) = ran {
                act.pass = next;
            }
        }));
    }
}

impl<P: Pass> Actor for Periodic<P> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        restarts::begin(self, ctx, Self::begin);
    }
}

impl<P: Pass> Supervised for Periodic<P> {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // The pass that panicked is over; its completion callback went with the old context.
        self.busy = false;
    }
}

impl<P: Pass> Watched for Periodic<P> {
    fn policy(&mut self) -> &mut Supervision {
        &mut self.policy
    }
}

impl<P: Pass> Handler<Crashed> for Periodic<P> {
    type Result = ();

    fn handle(&mut self, msg: Crashed, ctx: &mut Context<Self>) {
        restarts::on_crash(self, &msg.0, ctx);
    }
}
