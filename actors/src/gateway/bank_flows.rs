//! Pay by Bank's flows as a trait: what the payments code needs from the payer's bank, one
//! method per step of an Open Banking payment (consent, the payer's authorisation, the code
//! exchange, submission, status).
//!
//! Object-safe with boxed futures, like [`super::flows::PaymentGateway`], so the payment-intent
//! flow holds an `Arc<dyn BankGateway>` and a test can stand in for the banks. Every method
//! takes the [`Mode`] (the API key's: a test payment never reaches a live bank) and the bank's
//! id from [`BankGateway::banks`]. The types here are ours, not the wire's: the OBIE shapes stay
//! in `calmony_protocol::open_banking` and in [`super::open_banking`].
//!
//! An [`BankError::Unavailable`] on a POST means the outcome is unknown: the caller replays the
//! same idempotency key (the bank answers the original) or asks by id before deciding anything.

use std::fmt;

use calmony_protocol::Mode;
use futures_util::future::BoxFuture;
use url::Url;

/// A bank call's answer, to await.
pub type BankAnswer<'a, T> = BoxFuture<'a, Result<T, BankError>>;

/// One method per step of a payment by bank.
pub trait BankGateway: Send + Sync + 'static {
    /// The banks a payer of `mode` may choose, in the configured order.
    fn banks(&self, mode: Mode) -> Vec<BankSummary>;

    /// Ask `bank` for a consent to pay `order` (client credentials). Replaying the same
    /// `order.idempotency_key` answers the consent first made.
    fn create_consent<'a>(
        &'a self,
        mode: Mode,
        bank: &'a str,
        order: ConsentOrder,
    ) -> BankAnswer<'a, Consent>;

    /// Where consent `consent_id` stands. `None`: the bank does not know it.
    fn consent<'a>(
        &'a self,
        mode: Mode,
        bank: &'a str,
        consent_id: &'a str,
    ) -> BankAnswer<'a, Option<Consent>>;

    /// The URL to send the payer's browser to, carrying a request object signed with our key
    /// that names the consent, `state`, `nonce` and `redirect_uri`.
    fn authorize_url<'a>(
        &'a self,
        mode: Mode,
        bank: &'a str,
        consent_id: &'a str,
        state: &'a str,
        nonce: &'a str,
        redirect_uri: &'a str,
    ) -> BankAnswer<'a, Url>;

    /// Exchange the code the payer came back with for a token bound to the consent.
    fn exchange_code<'a>(
        &'a self,
        mode: Mode,
        bank: &'a str,
        code: &'a str,
        redirect_uri: &'a str,
    ) -> BankAnswer<'a, BankToken>;

    /// Make the payment of an authorised consent: moves money. The consent becomes
    /// `Consumed`; the payment starts in progress, settled or rejected, per the bank.
    fn submit_payment<'a>(
        &'a self,
        mode: Mode,
        bank: &'a str,
        token: &'a BankToken,
        submission: Submission,
    ) -> BankAnswer<'a, BankPayment>;

    /// An event notification the bank posted (a signed Security Event Token,
    /// `application/jwt`): verified against the bank's keys and addressed to us; answers the
    /// id of the resource it says changed. The caller then asks the bank (it never acts on
    /// the notification's word alone).
    fn notification<'a>(
        &'a self,
        mode: Mode,
        bank: &'a str,
        token: &'a str,
    ) -> BankAnswer<'a, String>;

    /// Where payment `payment_id` stands (client credentials). `None`: the bank does not know it.
    fn payment<'a>(
        &'a self,
        mode: Mode,
        bank: &'a str,
        payment_id: &'a str,
    ) -> BankAnswer<'a, Option<BankPayment>>;
}

/// A bank a payer may choose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankSummary {
    pub id: String,
    pub name: String,
}

/// The account payments are made to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creditor {
    /// `04-00-04` or `040004`.
    pub sort_code: String,
    /// 8 digits.
    pub account_number: String,
    pub name: String,
}

/// What the payer is asked to pay. The payment repeats it exactly (banks compare), so the same
/// order is given to [`BankGateway::create_consent`] and, in the [`Submission`], to
/// [`BankGateway::submit_payment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentOrder {
    /// ≤40: the consent POST's `x-idempotency-key`.
    pub idempotency_key: String,
    /// ≤35, unique forever.
    pub instruction_id: String,
    /// ≤31 (what FPS carries): reaches our account with the money.
    pub end_to_end_id: String,
    /// Pence.
    pub amount: i64,
    /// `GBP`.
    pub currency: String,
    pub creditor: Creditor,
    /// ≤18 (what FPS carries): the text on both statements.
    pub reference: String,
    /// ≤70: our id for the payer, for the bank's risk scoring.
    pub merchant_customer_id: Option<String>,
}

/// A payment to make from an authorised consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// ≤40: the payment POST's `x-idempotency-key` (not the consent's).
    pub idempotency_key: String,
    pub consent_id: String,
    /// The order the consent was made for, unchanged.
    pub order: ConsentOrder,
}

/// Where a consent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentState {
    /// The payer has not decided yet.
    AwaitingAuthorisation,
    Authorised,
    /// Refused, failed, cancelled or expired.
    Rejected,
    /// Its payment was made.
    Consumed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub id: String,
    pub status: ConsentState,
}

/// An access token bound to one consent: what submitting its payment needs.
#[derive(Clone)]
pub struct BankToken {
    pub access_token: String,
    /// The consent the bank's id_token names, when it sent one.
    pub consent_id: Option<String>,
    /// The id_token's `nonce`: the one our authorise request sent, or the token is another
    /// authorisation's.
    pub nonce: Option<String>,
}

impl fmt::Debug for BankToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BankToken")
            .field("access_token", &"****")
            .field("consent_id", &self.consent_id)
            .field("nonce", &self.nonce)
            .finish()
    }
}

/// Where a payment stands, in our terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BankPaymentState {
    /// Not final: ask again later.
    InProgress,
    /// The payer's account was debited: the payment succeeded.
    Settled,
    /// The bank refused it: no money moved.
    Rejected,
}

/// The payer's account as the bank reported it, to refund to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayerAccount {
    pub name: Option<String>,
    pub sort_code: String,
    pub account_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankPayment {
    pub id: String,
    pub consent_id: String,
    pub status: BankPaymentState,
    /// The bank's own word for it (`AcceptedSettlementInProcess`), for logs and support.
    pub bank_status: String,
    pub payer_name: Option<String>,
    pub payer_account_last4: Option<String>,
    pub end_to_end_id: String,
    /// Present when the bank returned the payer's account (`ReadRefundAccount`).
    pub refund_account: Option<PayerAccount>,
}

/// What can go wrong talking to a bank.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    /// The mode has no such bank (or no Pay by Bank at all).
    #[error("Pay by Bank is not configured for this mode and bank")]
    NotConfigured,
    /// Our order cannot be sent (amount, account or reference out of the wire's bounds).
    #[error("the order cannot be sent: {0}")]
    Invalid(String),
    /// The bank refused the request (a 4xx with its error): nothing was done.
    #[error("the bank refused: {code}: {message}")]
    Refused { code: String, message: String },
    /// 5xx, timeout or connection failure: the outcome is unknown.
    #[error("the bank is unavailable: {0}")]
    Unavailable(String),
    /// The bank's answer was unsigned or its signature did not verify: not believed.
    #[error("the bank's answer is not signed by it: {0}")]
    BadSignature(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bank_gateway_is_an_object_shared_across_tasks() {
        fn shared<T: ?Sized + Send + Sync + 'static>() {}
        fn sendable<T: Send>() {}
        shared::<dyn BankGateway>();
        sendable::<BankAnswer<'static, BankPayment>>();
        assert!(
            !format!(
                "{:?}",
                BankToken {
                    access_token: "secret".into(),
                    consent_id: None,
                    nonce: None
                }
            )
            .contains("secret")
        );
    }
}
