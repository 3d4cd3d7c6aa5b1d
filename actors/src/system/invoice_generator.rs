//! The InvoiceGenerator: invoice PDFs rendered on a `SyncArbiter`, threads of their own, so a
//! PDF's layout and compression (milliseconds of CPU) never stall the async work of payments
//! on the runtime's threads.
//!
//! The SyncArbiter is this actor's supervisor: a worker that stops is replaced from the
//! factory. A panic in a render is caught in the worker (a bare one would end its thread),
//! logged, counted like any actor's restart, and answered as an error; the worker then stops
//! and the arbiter starts a fresh one.

use actix::prelude::*;
use calmony_pdf::InvoiceDocument;
use futures_util::future::BoxFuture;

use crate::billing::PdfRenderer;

use super::faults;
use super::restarts::{Supervision, panic_message};

pub const NAME: &str = "invoice_generator";
/// Renderer threads: two keep one PDF from queueing behind another without taking the cores
/// payments need.
pub const THREADS: usize = 2;

/// Render one invoice document; answers the PDF's bytes.
#[derive(Message)]
#[rtype(result = "Result<Vec<u8>, String>")]
pub struct Render(pub InvoiceDocument);

/// One renderer thread's actor.
pub struct InvoiceGenerator {
    policy: Supervision,
}

impl Default for InvoiceGenerator {
    fn default() -> Self {
        Self {
            policy: Supervision::new(NAME),
        }
    }
}

impl Actor for InvoiceGenerator {
    type Context = SyncContext<Self>;
}

impl Handler<Render> for InvoiceGenerator {
    type Result = Result<Vec<u8>, String>;

    fn handle(&mut self, msg: Render, ctx: &mut SyncContext<Self>) -> Self::Result {
        let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            faults::trip(NAME);
            calmony_pdf::render_invoice(&msg.0).map_err(|e| e.to_string())
        }));
        match rendered {
            Ok(answer) => answer,
            Err(payload) => {
                let why = panic_message(payload.as_ref());
                self.policy.crashed(&why);
                // The arbiter replaces this worker with a fresh one from its factory.
                ctx.stop();
                super::health::up(NAME);
                Err(format!("the invoice renderer crashed: {why}"))
            }
        }
    }
}

/// The renderer threads' address, as billing's [`PdfRenderer`] (the daemon hands it to
/// billing's `PdfSlot`).
#[derive(Clone)]
pub struct Renderer(pub Addr<InvoiceGenerator>);

impl PdfRenderer for Renderer {
    fn render(&self, doc: InvoiceDocument) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let sent = self.0.send(Render(doc));
        Box::pin(async move {
            sent.await
                .map_err(|e| format!("the invoice renderer is not running: {e}"))?
        })
    }
}

/// Start the renderer threads.
pub fn start() -> Renderer {
    Renderer(SyncArbiter::start(THREADS, InvoiceGenerator::default))
}
