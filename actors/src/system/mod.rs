//! The supervised actors, on actix, beside the tokio runtime that serves the edge.
//!
//! | actor | its work | how it is reached |
//! | --- | --- | --- |
//! | [`intent_processor`] | payment commands, 3-D Secure completions; payment recovery from `cp:payments:commands` | [`PaymentCommand`], [`ThreeDsCompletion`] from the edge; its own tick |
//! | [`cardstream_gateway`] | the gateway's flows over both modes' merchant accounts | [`GatewayClient`] |
//! | [`webhook_dispatcher`] | fan-out, senders, retry mover | its loops; a watch tick |
//! | [`subscription_scheduler`] | the billing run on its cron schedule | its tick |
//! | [`checkout_expiry`] | checkout sessions past `expires_at` | its tick |
//! | [`bank_tracker`] | Pay by Bank attempts and their refunds at Griffin: recovery, status polling with backoff | its tick |
//! | [`settlement_follower`] | settlement batches: payouts, Griffin credits, deadlines | its tick; a webhook's nudge |
//! | [`event_retention`] | events past the retention period | its tick |
//! | [`clock_follower`] | the shared clock offset (`clock.controllable`) | its tick |
//! | the daemon's `sandbox_settlement` | the sandbox's daily settlement | its tick |
//! | the daemon's `griffin_sandbox_delivery` | the Griffin sandbox's webhooks and held credits | its tick |
//! | [`invoice_generator`] | invoice PDFs, on a `SyncArbiter` | billing's `PdfSlot`, given [`ActorSystem::invoices`] |
//!
//! The actors live on one actix arbiter, a thread of its own; each is started under an actix
//! `Supervisor` (the InvoiceGenerator under its `SyncArbiter`, which replaces a stopped
//! worker). Their handlers only start work: the work itself runs on the daemon's tokio runtime
//! (all its cores), inside the panic boundary of [`restarts`], so no mailbox serialises
//! unrelated payments and no handler holds the arbiter. The restart policy (log, count, back
//! off, health) is [`restarts`]; which critical actor is down is [`health`]; the test-only
//! fault hook is [`faults`].

pub mod bank_tracker;
pub mod cardstream_gateway;
pub mod checkout_expiry;
pub mod clock_follower;
pub mod event_retention;
pub mod faults;
pub mod health;
pub mod intent_processor;
pub mod invoice_generator;
pub mod periodic;
pub mod restarts;
pub mod settlement_follower;
pub mod subscription_scheduler;
pub mod webhook_dispatcher;

pub use cardstream_gateway::GatewayClient;
pub use intent_processor::{IntentProcessorHandle, PaymentCommand, PaymentOp, ThreeDsCompletion};

use std::sync::Arc;
use std::time::Instant;

use actix::Supervisor;
use tokio::runtime::Handle;

use crate::billing::Billing;
use crate::checkout::Checkout;
use crate::gateway::PaymentGateway;
use crate::payments::Payments;
use crate::webhooks::Webhooks;

/// What the actors are given to own.
pub struct Parts {
    /// Built with `gateway_client` as its gateway, so its calls go through the actor.
    pub payments: Payments,
    /// What the CardstreamGateway actor owns (both modes' Cardstream accounts).
    pub gateway: Arc<dyn PaymentGateway>,
    /// The client the payments code was handed; bound to the actor once it starts.
    pub gateway_client: GatewayClient,
    pub billing: Billing,
    pub checkout: Checkout,
    pub webhooks: Webhooks,
    /// More periodic actors to supervise: the clock follower, and passes of crates the actors
    /// cannot depend on (the sandbox's daily settlement).
    pub periodic: Vec<periodic::Starter>,
}

/// The running actor system: the addresses the edge sends to, and how to stop it.
pub struct ActorSystem {
    pub intents: IntentProcessorHandle,
    pub gateway: GatewayClient,
    /// The InvoiceGenerator, for the daemon to hand billing as its PDF renderer.
    pub invoices: invoice_generator::Renderer,
    /// The other actors' addresses: a Supervisor restarts its actor only while an address
    /// of it is held.
    _held: Vec<Box<dyn std::any::Any + Send>>,
    system: actix::System,
    thread: std::thread::JoinHandle<()>,
}

/// The actor system could not start.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error("cannot start the actors' thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("the actors' thread ended before its actors started")]
    NotStarted,
}

impl ActorSystem {
    /// Start every actor on an arbiter thread of its own; their work runs on `runtime`.
    pub fn start(parts: Parts, runtime: Handle) -> Result<ActorSystem, SystemError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("actors".into())
            .spawn(move || {
                let runner = actix::System::new();
                runner.block_on(async move {
                    let started = start_actors(parts, runtime);
                    let _ = tx.send((actix::System::current(), started));
                });
                if let Err(e) = runner.run() {
                    tracing::error!(error = %e, "the actor system ended with an error");
                }
            })?;
        let (system, (intents, gateway, invoices, held)) =
            rx.recv().map_err(|_| SystemError::NotStarted)?;
        Ok(ActorSystem {
            intents,
            gateway,
            invoices,
            _held: held,
            system,
            thread,
        })
    }

    /// Stop every actor (their loops are aborted; work in flight on the runtime finishes or
    /// is resumed from its stream at the next start) and wait for the arbiter to end.
    pub async fn stop(self) {
        let began = Instant::now();
        self.system.stop();
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        tracing::info!(
            elapsed_ms = began.elapsed().as_millis() as u64,
            "actors stopped"
        );
    }
}

/// The addresses [`start_actors`] answers: the edge's two, the PDF renderer, and the rest
/// to hold.
type Started = (
    IntentProcessorHandle,
    GatewayClient,
    invoice_generator::Renderer,
    Vec<Box<dyn std::any::Any + Send>>,
);

/// Start the actors (on the current arbiter).
fn start_actors(parts: Parts, runtime: Handle) -> Started {
    use periodic::Periodic;

    let Parts {
        payments,
        gateway,
        gateway_client,
        billing,
        checkout,
        webhooks,
        periodic,
    } = parts;
    let mut held: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
    let invoices = invoice_generator::start();
    let rt = runtime.clone();
    gateway_client.bind(Supervisor::start(move |_| {
        cardstream_gateway::CardstreamGateway::new(gateway, rt)
    }));
    let rt = runtime.clone();
    let tracker = bank_tracker::BankTracker {
        payments: payments.clone(),
    };
    held.push(Box::new(Supervisor::start(move |_| {
        Periodic::new(tracker, rt)
    })));
    let rt = runtime.clone();
    let intents = Supervisor::start(move |_| intent_processor::IntentProcessor::new(payments, rt));
    webhook_dispatcher::reseal_secrets(&webhooks, &runtime);
    let rt = runtime.clone();
    let w = webhooks.clone();
    held.push(Box::new(Supervisor::start(move |_| {
        webhook_dispatcher::WebhookDispatcher::new(w, rt)
    })));
    let rt = runtime.clone();
    let retention = event_retention::EventRetention {
        webhooks,
        last: None,
    };
    held.push(Box::new(Supervisor::start(move |_| {
        Periodic::new(retention, rt)
    })));
    let rt = runtime.clone();
    let expiry = checkout_expiry::CheckoutExpiry { checkout };
    held.push(Box::new(Supervisor::start(move |_| {
        Periodic::new(expiry, rt)
    })));
    for start in periodic {
        held.push(start(runtime.clone()));
    }
    // `None`: `billing.schedule` is not a cron expression (logged; the configuration check
    // refuses one at start, so only a library caller sees this).
    if let Some(scheduler) = subscription_scheduler::SubscriptionScheduler::new(billing) {
        held.push(Box::new(Supervisor::start(move |_| {
            Periodic::new(scheduler, runtime)
        })));
    }
    (
        IntentProcessorHandle { addr: intents },
        gateway_client,
        invoices,
        held,
    )
}
