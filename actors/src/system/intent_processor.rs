//! The IntentProcessor: the payment commands the edge sends (create, confirm, capture and
//! cancel of payment intents, refunds, and the 3-D Secure completion), and payment recovery.
//!
//! A command is one [`PaymentCommand`] message (the 3-D Secure completion, which answers
//! where the browser goes next rather than an API reply, is one [`ThreeDsCompletion`]). The handler does not run the payment itself:
//! it spawns it on the daemon's runtime, inside the panic boundary, and answers with the
//! running work, so unrelated payments never wait for each other behind this mailbox (the
//! mailbox only ever holds the microseconds of a spawn), and a payment once begun is not
//! cancelled when its client disconnects.
//!
//! Recovery is this actor's tick: every half second, one pass over the command stream
//! `cp:payments:commands` (this daemon's own pending entries, then other daemons' stale ones),
//! never two passes at once. Durability is the stream's: a command begun before a crash (of
//! this actor or of the daemon) stays pending in the consumer group, and the next pass, in
//! this life or the restarted actor's, resumes it, asking the gateway before re-sending.

use std::time::Duration;

use actix::prelude::*;
use calmony_protocol::{ApiError, Params};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::payments::three_ds::{self, Next};
use crate::payments::{self, Payments};
use crate::store::Scope;
use crate::{Reply, RequestContext};

use super::restarts::{self, Crashed, Supervision, Watched};

pub const NAME: &str = "intent_processor";
/// How often recovery looks for pending commands.
const RECOVERY_TICK: Duration = Duration::from_millis(500);

/// Which payment command a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOp {
    /// `POST /v1/payment_intents` (with `confirm`, straight on to the gateway).
    Create,
    /// `POST /v1/payment_intents/:id/confirm`.
    Confirm,
    /// `POST /v1/payment_intents/:id/capture`.
    Capture,
    /// `POST /v1/payment_intents/:id/cancel`.
    Cancel,
    /// `POST /v1/refunds`.
    Refund,
}

/// A request's payment command: what to do, for whom, on which intent (empty for a create or
/// a refund), with the request's parameters.
#[derive(Message)]
#[rtype(result = "Running")]
pub struct PaymentCommand {
    pub op: PaymentOp,
    pub ctx: RequestContext,
    pub id: String,
    pub params: Params,
}

/// The issuer posted back to the 3-D Secure page: continue the challenge of intent `id` with
/// the posted fields (the session secret among them) and finish the payment. Money moves only
/// through this actor, so the page sends this rather than calling the payments code.
#[derive(Message)]
#[rtype(result = "Running<Next>")]
pub struct ThreeDsCompletion {
    pub scope: Scope,
    pub id: String,
    pub posted: Vec<(String, String)>,
}

/// A command's work, running on the daemon's runtime; `Err` carries a panic's message.
pub struct Running<T = Reply>(pub JoinHandle<Result<Result<T, ApiError>, String>>);

impl<A: Actor, M: Message<Result = Running<T>>, T: 'static> actix::dev::MessageResponse<A, M>
    for Running<T>
{
    fn handle(self, _: &mut A::Context, tx: Option<actix::dev::OneshotSender<M::Result>>) {
        if let Some(tx) = tx {
            let _ = tx.send(self);
        }
    }
}

/// The actor.
pub struct IntentProcessor {
    payments: Payments,
    runtime: Handle,
    recovering: bool,
    policy: Supervision,
}

impl IntentProcessor {
    pub fn new(payments: Payments, runtime: Handle) -> Self {
        Self {
            payments,
            runtime,
            recovering: false,
            policy: Supervision::new(NAME),
        }
    }

    fn begin(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(RECOVERY_TICK, |act, ctx| act.recover(ctx));
    }

    /// One recovery pass, unless one is running.
    fn recover(&mut self, ctx: &mut Context<Self>) {
        if self.recovering {
            return;
        }
        self.recovering = true;
        let p = self.payments.clone();
        let pass = restarts::guarded(NAME, ctx.address().recipient(), async move {
            match p.recover_once().await {
                Ok(n) if n > 0 => tracing::info!(recovered = n, "resumed pending payments"),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "payment recovery pass failed"),
            }
        });
        let pass = self.runtime.spawn(pass);
        ctx.spawn(actix::fut::wrap_future::<_, Self>(pass).map(|_, act, _| {
            act.recovering = false;
        }));
    }
}

impl Actor for IntentProcessor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        restarts::begin(self, ctx, Self::begin);
    }
}

impl Supervised for IntentProcessor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.recovering = false;
    }
}

impl Watched for IntentProcessor {
    fn policy(&mut self) -> &mut Supervision {
        &mut self.policy
    }
}

impl Handler<Crashed> for IntentProcessor {
    type Result = ();

    fn handle(&mut self, msg: Crashed, ctx: &mut Context<Self>) {
        restarts::on_crash(self, &msg.0, ctx);
    }
}

impl Handler<PaymentCommand> for IntentProcessor {
    type Result = Running;

    fn handle(&mut self, msg: PaymentCommand, ctx: &mut Context<Self>) -> Running {
        let p = self.payments.clone();
        let work = restarts::guarded(NAME, ctx.address().recipient(), async move {
            let PaymentCommand {
                op,
                ctx,
                id,
                params,
            } = msg;
            match op {
                PaymentOp::Create => payments::create(&p, &ctx, params).await,
                PaymentOp::Confirm => payments::confirm(&p, &ctx, &id, params).await,
                PaymentOp::Capture => payments::capture(&p, &ctx, &id, params).await,
                PaymentOp::Cancel => payments::cancel(&p, &ctx, &id, params).await,
                PaymentOp::Refund => payments::create_refund(&p, &ctx, params).await,
            }
        });
        Running(self.runtime.spawn(work))
    }
}

impl Handler<ThreeDsCompletion> for IntentProcessor {
    type Result = Running<Next>;

    fn handle(&mut self, msg: ThreeDsCompletion, ctx: &mut Context<Self>) -> Running<Next> {
        let p = self.payments.clone();
        let work = restarts::guarded(NAME, ctx.address().recipient(), async move {
            let ThreeDsCompletion { scope, id, posted } = msg;
            three_ds::complete(&p, &scope, &id, posted).await
        });
        Running(self.runtime.spawn(work))
    }
}

/// What the edge holds: sends each payment command to the IntentProcessor and waits for its
/// answer. One mailbox send per request.
#[derive(Clone)]
pub struct IntentProcessorHandle {
    pub addr: Addr<IntentProcessor>,
}

impl IntentProcessorHandle {
    /// Run `op` through the IntentProcessor. A panic in its work answers a 500 (the command,
    /// if it had begun, is resumed by recovery); an actor that cannot take messages, a 503.
    pub async fn run(
        &self,
        op: PaymentOp,
        ctx: RequestContext,
        id: &str,
        params: Params,
    ) -> Result<Reply, ApiError> {
        let cmd = PaymentCommand {
            op,
            ctx,
            id: id.to_string(),
            params,
        };
        answer(self.addr.send(cmd).await).await
    }

    /// Continue a 3-D Secure challenge through the IntentProcessor (see
    /// [`ThreeDsCompletion`]); failures are answered as for [`Self::run`].
    pub async fn complete_three_ds(
        &self,
        scope: Scope,
        id: &str,
        posted: Vec<(String, String)>,
    ) -> Result<Next, ApiError> {
        let msg = ThreeDsCompletion {
            scope,
            id: id.to_string(),
            posted,
        };
        answer(self.addr.send(msg).await).await
    }
}

/// Wait for the work the IntentProcessor started: a panic in it answers a 500 (the command,
/// if it had begun, is resumed by recovery); an actor that cannot take messages, a 503.
async fn answer<T>(sent: Result<Running<T>, MailboxError>) -> Result<T, ApiError> {
    let Running(work) = sent.map_err(|e| {
        tracing::error!(error = %e, "the IntentProcessor did not take a payment command");
        ApiError::new(
            503,
            calmony_protocol::ErrorType::ApiError,
            "The payment processor is restarting; try again with the same Idempotency-Key."
                .to_string(),
        )
    })?;
    match work.await {
        Ok(Ok(answer)) => answer,
        Ok(Err(panic)) => {
            let mut e = ApiError::internal("");
            e.message = format!("the payment command panicked: {panic}");
            Err(e)
        }
        Err(join) => {
            let mut e = ApiError::internal("");
            e.message = format!("the payment command did not finish: {join}");
            Err(e)
        }
    }
}
