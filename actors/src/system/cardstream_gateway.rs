//! The CardstreamGateway: owns the gateway (both modes' merchant accounts, their signing
//! keys, the HTTP client pool) and answers one message per flow of
//! [`PaymentGateway`]: tokenise, sale, continue 3-D Secure, capture, cancel, refund, query.
//!
//! Like the IntentProcessor, a message's handler spawns the call on the daemon's runtime inside
//! the panic boundary and answers with it running, so calls never queue behind one another.
//! A call cut short by a panic answers [`GatewayError::Unreachable`]: to the payment code that
//! is "no outcome", after which it asks the gateway (query) before deciding anything, never
//! "declined".
//!
//! [`GatewayClient`] is what payment code is handed to reach it: it implements
//! [`PaymentGateway`] itself, each call one mailbox send, so the payments code does not know
//! whether it talks to the actor or to Cardstream directly.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::prelude::*;
use calmony_protocol::Mode;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::gateway::{
    Answer, AuthOutcome, Cancel, Capture, CardToTokenise, GatewayError, ManageOutcome,
    PaymentGateway, Refund, Sale, ThreeDsContinuation, Tokenised, TxnLookup, TxnStatus,
};

use super::faults;
use super::restarts::{self, Crashed, Supervision, Watched};

pub const NAME: &str = "cardstream_gateway";

/// A gateway call running on the daemon's runtime.
pub struct Call<T>(pub JoinHandle<Result<Result<T, GatewayError>, String>>);

impl<A: Actor, M: Message<Result = Call<T>>, T: 'static> actix::dev::MessageResponse<A, M>
    for Call<T>
{
    fn handle(self, _: &mut A::Context, tx: Option<actix::dev::OneshotSender<M::Result>>) {
        if let Some(tx) = tx {
            let _ = tx.send(self);
        }
    }
}

/// Verify a card (no money) to obtain its token.
#[derive(Message)]
#[rtype(result = "Call<Tokenised>")]
pub struct Tokenise {
    pub mode: Mode,
    pub card: CardToTokenise,
}

/// SALE: authorise (and unless manual, capture).
#[derive(Message)]
#[rtype(result = "Call<AuthOutcome>")]
pub struct Authorise {
    pub mode: Mode,
    pub sale: Sale,
}

/// Continue a 3-D Secure challenge with what the issuer's page posted back.
#[derive(Message)]
#[rtype(result = "Call<AuthOutcome>")]
pub struct ContinueChallenge {
    pub mode: Mode,
    pub step: ThreeDsContinuation,
}

/// CAPTURE an authorised sale, optionally for less.
#[derive(Message)]
#[rtype(result = "Call<ManageOutcome>")]
pub struct CaptureSale {
    pub mode: Mode,
    pub capture: Capture,
}

/// CANCEL (void) an unsettled sale.
#[derive(Message)]
#[rtype(result = "Call<ManageOutcome>")]
pub struct CancelSale {
    pub mode: Mode,
    pub cancel: Cancel,
}

/// REFUND_SALE part or all of a settled sale.
#[derive(Message)]
#[rtype(result = "Call<ManageOutcome>")]
pub struct RefundSale {
    pub mode: Mode,
    pub refund: Refund,
}

/// QUERY a transaction by our attempt id or its xref.
#[derive(Message)]
#[rtype(result = "Call<Option<TxnStatus>>")]
pub struct Query {
    pub mode: Mode,
    pub lookup: TxnLookup,
}

pub struct CardstreamGateway {
    /// Shared with the calls in flight (no copy of the accounts per call).
    gateway: Arc<dyn PaymentGateway>,
    runtime: Handle,
    policy: Supervision,
}

impl CardstreamGateway {
    pub fn new(gateway: Arc<dyn PaymentGateway>, runtime: Handle) -> Self {
        Self {
            gateway,
            runtime,
            policy: Supervision::new(NAME),
        }
    }

    /// Run `call` on the runtime, inside the panic boundary.
    fn call<T, F, Fut>(&self, ctx: &mut Context<Self>, call: F) -> Call<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn PaymentGateway>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, GatewayError>> + Send + 'static,
    {
        let gateway = self.gateway.clone();
        let work = restarts::guarded(NAME, ctx.address().recipient(), async move {
            call(gateway).await
        });
        Call(self.runtime.spawn(work))
    }
}

impl Actor for CardstreamGateway {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        restarts::begin(self, ctx, |_, _| {});
    }
}

impl Supervised for CardstreamGateway {}

impl Watched for CardstreamGateway {
    fn policy(&mut self) -> &mut Supervision {
        &mut self.policy
    }
}

impl Handler<Crashed> for CardstreamGateway {
    type Result = ();

    fn handle(&mut self, msg: Crashed, ctx: &mut Context<Self>) {
        restarts::on_crash(self, &msg.0, ctx);
    }
}

impl Handler<Tokenise> for CardstreamGateway {
    type Result = Call<Tokenised>;

    fn handle(&mut self, m: Tokenise, ctx: &mut Context<Self>) -> Self::Result {
        self.call(
            ctx,
            move |g| async move { g.tokenise(m.mode, m.card).await },
        )
    }
}

impl Handler<Authorise> for CardstreamGateway {
    type Result = Call<AuthOutcome>;

    fn handle(&mut self, m: Authorise, ctx: &mut Context<Self>) -> Self::Result {
        self.call(ctx, move |g| async move { g.sale(m.mode, m.sale).await })
    }
}

impl Handler<ContinueChallenge> for CardstreamGateway {
    type Result = Call<AuthOutcome>;

    fn handle(&mut self, m: ContinueChallenge, ctx: &mut Context<Self>) -> Self::Result {
        self.call(ctx, move |g| async move {
            g.continue_three_ds(m.mode, m.step).await
        })
    }
}

impl Handler<CaptureSale> for CardstreamGateway {
    type Result = Call<ManageOutcome>;

    fn handle(&mut self, m: CaptureSale, ctx: &mut Context<Self>) -> Self::Result {
        self.call(
            ctx,
            move |g| async move { g.capture(m.mode, m.capture).await },
        )
    }
}

impl Handler<CancelSale> for CardstreamGateway {
    type Result = Call<ManageOutcome>;

    fn handle(&mut self, m: CancelSale, ctx: &mut Context<Self>) -> Self::Result {
        self.call(
            ctx,
            move |g| async move { g.cancel(m.mode, m.cancel).await },
        )
    }
}

impl Handler<RefundSale> for CardstreamGateway {
    type Result = Call<ManageOutcome>;

    fn handle(&mut self, m: RefundSale, ctx: &mut Context<Self>) -> Self::Result {
        self.call(
            ctx,
            move |g| async move { g.refund(m.mode, m.refund).await },
        )
    }
}

impl Handler<Query> for CardstreamGateway {
    type Result = Call<Option<TxnStatus>>;

    fn handle(&mut self, m: Query, ctx: &mut Context<Self>) -> Self::Result {
        self.call(ctx, move |g| async move { g.query(m.mode, m.lookup).await })
    }
}

/// What payment code is handed to reach the CardstreamGateway: a [`PaymentGateway`] whose
/// every call is one message. Made before the actor starts (the payments code is built
/// first) and bound to its address when it does; a call before that is "no outcome".
#[derive(Clone)]
pub struct GatewayClient {
    addr: Arc<OnceLock<Addr<CardstreamGateway>>>,
    /// Each mode's request timeout, read once from the gateway the actor owns (a setting,
    /// not worth a message); `None`: that mode takes no payments.
    timeouts: [Option<Duration>; 2],
}

impl GatewayClient {
    /// A client for the actor that will own `gateway`, not yet started.
    pub fn unstarted(gateway: &dyn PaymentGateway) -> Self {
        let timeout = |mode| gateway.request_timeout(mode).ok();
        Self {
            addr: Arc::new(OnceLock::new()),
            timeouts: [timeout(Mode::Test), timeout(Mode::Live)],
        }
    }

    /// Bind the client to the started actor (the first binding wins).
    pub fn bind(&self, addr: Addr<CardstreamGateway>) {
        let _ = self.addr.set(addr);
    }

    async fn ask<M, T>(&self, msg: M) -> Result<T, GatewayError>
    where
        M: Message<Result = Call<T>> + Send + 'static,
        M::Result: Send,
        T: Send + 'static,
        CardstreamGateway: Handler<M>,
    {
        let addr = self
            .addr
            .get()
            .ok_or_else(|| GatewayError::Unreachable("the gateway actor has not started".into()))?;
        let Call(call) = addr
            .send(msg)
            .await
            .map_err(|e| GatewayError::Unreachable(format!("the gateway actor: {e}")))?;
        match call.await {
            Ok(Ok(answer)) => answer,
            Ok(Err(panic)) => Err(GatewayError::Unreachable(format!(
                "the gateway call panicked: {panic}"
            ))),
            Err(e) => Err(GatewayError::Unreachable(format!(
                "the gateway call did not finish: {e}"
            ))),
        }
    }
}

impl PaymentGateway for GatewayClient {
    fn request_timeout(&self, mode: Mode) -> Result<Duration, GatewayError> {
        let at = match mode {
            Mode::Test => 0,
            Mode::Live => 1,
        };
        self.timeouts[at].ok_or(GatewayError::NotConfigured(mode))
    }

    fn tokenise(&self, mode: Mode, card: CardToTokenise) -> Answer<'_, Tokenised> {
        Box::pin(self.ask(Tokenise { mode, card }))
    }

    fn sale(&self, mode: Mode, sale: Sale) -> Answer<'_, AuthOutcome> {
        Box::pin(async move {
            // In the caller's work (the payment's, past its begin commit): the test-only
            // fault point of a payment that panics in flight.
            faults::trip(faults::BEFORE_SALE);
            self.ask(Authorise { mode, sale }).await
        })
    }

    fn continue_three_ds(&self, mode: Mode, step: ThreeDsContinuation) -> Answer<'_, AuthOutcome> {
        Box::pin(self.ask(ContinueChallenge { mode, step }))
    }

    fn capture(&self, mode: Mode, capture: Capture) -> Answer<'_, ManageOutcome> {
        Box::pin(self.ask(CaptureSale { mode, capture }))
    }

    fn cancel(&self, mode: Mode, cancel: Cancel) -> Answer<'_, ManageOutcome> {
        Box::pin(self.ask(CancelSale { mode, cancel }))
    }

    fn refund(&self, mode: Mode, refund: Refund) -> Answer<'_, ManageOutcome> {
        Box::pin(self.ask(RefundSale { mode, refund }))
    }

    fn query(&self, mode: Mode, lookup: TxnLookup) -> Answer<'_, Option<TxnStatus>> {
        Box::pin(self.ask(Query { mode, lookup }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::{faults, health};

    fn sale() -> Sale {
        Sale {
            attempt: "att_1".into(),
            order_ref: "pi_1".into(),
            amount: 100,
            card_xref: "x".into(),
            capture: true,
            three_ds_return: None,
            recurring: false,
        }
    }

    /// A call that panics answers "no outcome" (never a refusal), the actor is down until its
    /// restart, and the restarted actor answers the next call as the gateway value would.
    #[actix::test]
    async fn a_call_that_panics_answers_no_outcome_and_the_restarted_actor_answers_the_next() {
        crate::gateway::install_tls_provider();
        let gateway: Arc<dyn PaymentGateway> = Arc::new(crate::gateway::Gateway::from_config(
            &calmony_config::Config::default(),
        ));
        let client = GatewayClient::unstarted(gateway.as_ref());
        let runtime = Handle::current();
        client.bind(Supervisor::start(move |_| {
            CardstreamGateway::new(gateway, runtime)
        }));
        faults::arm(NAME, 1, Duration::ZERO).expect("known actor");
        let first = client.sale(Mode::Live, sale()).await;
        assert!(
            matches!(&first, Err(GatewayError::Unreachable(m)) if m.contains("panicked")),
            "{first:?}"
        );
        let mut back = false;
        for _ in 0..50 {
            actix::clock::sleep(Duration::from_millis(20)).await;
            if health::critical_down().iter().all(|(n, _)| *n != NAME) {
                back = true;
                break;
            }
        }
        assert!(back, "the gateway actor is up again after its backoff");
        let next = client.sale(Mode::Live, sale()).await;
        assert_eq!(next, Err(GatewayError::NotConfigured(Mode::Live)));
    }
}
