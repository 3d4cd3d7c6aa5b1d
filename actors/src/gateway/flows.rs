//! The gateway's flows as a trait: what the payments code needs from whoever moves the
//! money, one method per flow.
//!
//! Object-safe (boxed futures rather than `async fn`) so the processor holds an
//! `Arc<dyn PaymentGateway>`: Cardstream today ([`crate::gateway::cardstream`]), an actor that
//! forwards each call as a message, or Pay by Bank next, without the payments code changing.
//! Requests are owned values and outcomes are `Send`, so a call can cross to another task.
//!
//! Every method takes the [`Mode`]: each mode has its own merchant account, and the mode comes
//! from the API key, so a test payment can never reach the live account.

use std::time::Duration;

use calmony_protocol::Mode;
use futures_util::future::BoxFuture;

use super::outcomes::{AuthOutcome, GatewayError, ManageOutcome, Tokenised, TxnStatus};
use super::requests::{
    Cancel, Capture, CardToTokenise, Refund, Sale, ThreeDsContinuation, TxnLookup,
};

/// A gateway call's answer, to await.
pub type Answer<'a, T> = BoxFuture<'a, Result<T, GatewayError>>;

/// One method per payment flow. An `Err` never means "nothing happened": the caller asks
/// ([`PaymentGateway::query`]) before deciding anything.
pub trait PaymentGateway: Send + Sync + 'static {
    /// The longest one request in `mode` may take, answer included: a request sent is over,
    /// answered or abandoned, within it (what leases on a sale are sized by).
    /// [`GatewayError::NotConfigured`] when `mode` takes no payments (no merchant account).
    fn request_timeout(&self, mode: Mode) -> Result<Duration, GatewayError>;

    /// Verify a card (no money) to obtain its token, the approval's xref.
    fn tokenise(&self, mode: Mode, card: CardToTokenise) -> Answer<'_, Tokenised>;

    /// Authorise (and unless manual, capture) an amount on a tokenised card. A duplicate of a
    /// sale the gateway has already is an [`GatewayError::Unknown`], not a refusal.
    fn sale(&self, mode: Mode, sale: Sale) -> Answer<'_, AuthOutcome>;

    /// Continue a 3-D Secure challenge with what the issuer's page posted back.
    fn continue_three_ds(&self, mode: Mode, step: ThreeDsContinuation) -> Answer<'_, AuthOutcome>;

    /// Capture an authorised sale, optionally for less.
    fn capture(&self, mode: Mode, capture: Capture) -> Answer<'_, ManageOutcome>;

    /// Cancel (void) an unsettled sale.
    fn cancel(&self, mode: Mode, cancel: Cancel) -> Answer<'_, ManageOutcome>;

    /// Refund part or all of a settled sale.
    fn refund(&self, mode: Mode, refund: Refund) -> Answer<'_, ManageOutcome>;

    /// Where a transaction stands. `None`: the gateway never saw it.
    fn query(&self, mode: Mode, lookup: TxnLookup) -> Answer<'_, Option<TxnStatus>>;
}

/// A gateway bound to one mode, for code that makes several calls for one payment.
#[derive(Clone, Copy)]
pub struct ModeGateway<'a> {
    gateway: &'a dyn PaymentGateway,
    mode: Mode,
    timeout: Duration,
}

impl<'a> ModeGateway<'a> {
    /// `mode`'s gateway; [`GatewayError::NotConfigured`] when that mode takes no payments.
    pub fn new(gateway: &'a dyn PaymentGateway, mode: Mode) -> Result<Self, GatewayError> {
        let timeout = gateway.request_timeout(mode)?;
        Ok(Self {
            gateway,
            mode,
            timeout,
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// See [`PaymentGateway::request_timeout`].
    pub fn request_timeout(&self) -> Duration {
        self.timeout
    }

    pub async fn tokenise(&self, card: CardToTokenise) -> Result<Tokenised, GatewayError> {
        self.gateway.tokenise(self.mode, card).await
    }

    pub async fn sale(&self, sale: Sale) -> Result<AuthOutcome, GatewayError> {
        self.gateway.sale(self.mode, sale).await
    }

    pub async fn continue_three_ds(
        &self,
        step: ThreeDsContinuation,
    ) -> Result<AuthOutcome, GatewayError> {
        self.gateway.continue_three_ds(self.mode, step).await
    }

    pub async fn capture(&self, xref: &str, amount: i64) -> Result<ManageOutcome, GatewayError> {
        let capture = Capture {
            xref: xref.to_string(),
            amount,
        };
        self.gateway.capture(self.mode, capture).await
    }

    pub async fn cancel(&self, xref: &str) -> Result<ManageOutcome, GatewayError> {
        let cancel = Cancel {
            xref: xref.to_string(),
        };
        self.gateway.cancel(self.mode, cancel).await
    }

    pub async fn refund(
        &self,
        xref: &str,
        amount: i64,
        attempt: &str,
    ) -> Result<ManageOutcome, GatewayError> {
        let refund = Refund {
            xref: xref.to_string(),
            amount,
            attempt: attempt.to_string(),
        };
        self.gateway.refund(self.mode, refund).await
    }

    /// What became of the request sent as `attempt`.
    pub async fn query_attempt(&self, attempt: &str) -> Result<Option<TxnStatus>, GatewayError> {
        let lookup = TxnLookup::Attempt(attempt.to_string());
        self.gateway.query(self.mode, lookup).await
    }

    /// Where the sale `xref` stands now.
    pub async fn query_sale(&self, xref: &str) -> Result<Option<TxnStatus>, GatewayError> {
        let lookup = TxnLookup::Xref(xref.to_string());
        self.gateway.query(self.mode, lookup).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trait stays usable as `Arc<dyn PaymentGateway>` shared across tasks, and its
    /// answers can be awaited on another task: an actor forwarding calls relies on both.
    #[test]
    fn the_gateway_is_an_object_shared_across_tasks() {
        fn shared<T: ?Sized + Send + Sync + 'static>() {}
        fn sendable<T: Send>() {}
        shared::<dyn PaymentGateway>();
        sendable::<Answer<'static, AuthOutcome>>();
        sendable::<Answer<'static, Option<TxnStatus>>>();
    }
}
