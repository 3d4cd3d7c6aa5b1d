//! The WebhookDispatcher: fan-out of events into deliveries, the senders, and the retry mover,
//! each a loop of `webhooks` run on the daemon's runtime inside this actor's panic boundary.
//!
//! The loops resume from their streams: fan-out from the `webhooks` group on each project's
//! event stream, the senders from the `senders` group on `cp:webhooks:deliveries` (own pending
//! entries first, other daemons' stale ones by XAUTOCLAIM), the mover from the sorted set
//! `cp:webhooks:retries`. So when one loop panics, the actor stops the others, and its
//! restart starts all three again from where Redis says the work stands. Deliveries already
//! being sent are their own tasks and finish (each one commit: recorded and acknowledged
//! together), so none is sent twice by the restart.
//!
//! Each delivery runs in this actor's panic boundary too: a panicking delivery restarts the
//! actor, and its in-hand mark drops with it, so the restarted senders take it over like any
//! orphan. That is also where the fault hook reaches the dispatcher: in a real delivery.
//!
//! A watch tick every half second notices a loop that ended without a panic, and restarts the
//! actor as if it had.

use std::time::Duration;

use actix::prelude::*;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::webhooks::{Boundary, Webhooks, endpoints};

use super::restarts::{self, Crashed, Supervision, Watched};

pub const NAME: &str = "webhook_dispatcher";
const WATCH: Duration = Duration::from_millis(500);

/// The running loops; dropping this aborts them (a restart, or the system stopping).
#[derive(Default)]
struct Loops(Vec<(&'static str, JoinHandle<Result<(), String>>)>);

impl Drop for Loops {
    fn drop(&mut self) {
        for (_, l) in &self.0 {
            l.abort();
        }
    }
}

pub struct WebhookDispatcher {
    webhooks: Webhooks,
    runtime: Handle,
    loops: Loops,
    policy: Supervision,
}

impl WebhookDispatcher {
    pub fn new(webhooks: Webhooks, runtime: Handle) -> Self {
        Self {
            webhooks,
            runtime,
            loops: Loops::default(),
            policy: Supervision::new(NAME),
        }
    }

    fn begin(&mut self, ctx: &mut Context<Self>) {
        let crashed = ctx.address().recipient::<Crashed>();
        let w = &self.webhooks;
        // Each delivery is its own task inside this actor's panic boundary.
        let boundary = Boundary {
            actor: NAME,
            crashed: crashed.clone(),
        };
        let loops: [(&'static str, futures_util::future::BoxFuture<'static, ()>); 3] = [
            ("fan-out", Box::pin(w.clone().fan_out_loop())),
            ("sender", Box::pin(w.clone().send_loop(boundary.clone()))),
            ("retry mover", Box::pin(w.clone().retry_loop(boundary))),
        ];
        self.loops = Loops(
            loops
                .into_iter()
                .map(|(name, l)| {
                    // The fault hook is for the watch tick, not the loops' first poll.
                    let run = restarts::guarded("", crashed.clone(), l);
                    (name, self.runtime.spawn(run))
                })
                .collect(),
        );
        ctx.run_interval(WATCH, |act, ctx| act.watch(ctx));
    }

    fn watch(&mut self, ctx: &mut Context<Self>) {
        if self.webhooks.is_stopping() {
            return;
        }
        if let Some((name, _)) = self.loops.0.iter().find(|(_, l)| l.is_finished()) {
            let why = format!("the webhook {name} loop ended");
            restarts::on_crash(self, &why, ctx);
        }
    }
}

/// Re-seal, once per start of the daemon, secrets an older version kept in clear or sealed
/// under a key since replaced.
pub fn reseal_secrets(webhooks: &Webhooks, runtime: &Handle) {
    let store = webhooks.store.clone();
    runtime.spawn(async move {
        match endpoints::reseal_all(&store).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(endpoints = n, "re-sealed webhook signing secrets"),
            Err(e) => tracing::warn!(error = %e, "re-sealing webhook signing secrets failed"),
        }
    });
}

impl Actor for WebhookDispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        restarts::begin(self, ctx, Self::begin);
    }
}

impl Supervised for WebhookDispatcher {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // The other loops go too: the restart starts all three from their streams.
        self.loops = Loops::default();
    }
}

impl Watched for WebhookDispatcher {
    fn policy(&mut self) -> &mut Supervision {
        &mut self.policy
    }
}

impl Handler<Crashed> for WebhookDispatcher {
    type Result = ();

    fn handle(&mut self, msg: Crashed, ctx: &mut Context<Self>) {
        restarts::on_crash(self, &msg.0, ctx);
    }
}
