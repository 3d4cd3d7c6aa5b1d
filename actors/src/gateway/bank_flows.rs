//! Pay by Bank's flows as a trait: what the payments code needs from a payer's bank (an Open
//! Banking payment initiation), one method per flow, in our terms rather than the wire's.
//!
//! Object-safe like [`super::PaymentGateway`], so the processor holds an
//! `Arc<dyn BankGateway>`. Every method takes the [`Mode`] (each mode has its own banks and
//! creditor account) and the bank's id. An `Err` of [`BankError::Unavailable`] never means
//! "nothing happened": the caller asks the bank (consent, payment) before sending again, and
//! sends again only with the same idempotency key.

use calmony_protocol::Mode;
use futures_util::future::BoxFuture;

/// A bank call's answer, to await.
pub type BankAnswer<'a, T> = BoxFuture<'a, Result<T, BankError>>;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BankError {
    /// The mode (or the bank in it) is not configured.
    #[error("Pay by Bank is not configured: {0}")]
    NotConfigured(String),
    /// The bank answered with an error: it did not act.
    #[error("the bank refused the request: {code}: {message}")]
    Refused { code: String, message: String },
    /// No answer, a server error or an unreadable one: the bank may have acted.
    #[error("the bank did not answer clearly: {0}")]
    Unavailable(String),
    /// The bank's answer did not carry a good signature: never acted on.
    #[error("the bank's answer failed signature verification: {0}")]
    BadSignature(String),
}

/// A bank the payer can pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankSummary {
    pub id: String,
    pub name: String,
}

/// The merchant's account the money goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creditor {
    pub sort_code: String,
    pub account_number: String,
    pub name: String,
}

/// A domestic payment consent to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentOrder {
    /// `x-idempotency-key`: the same for every send of this consent.
    pub idempotency_key: String,
    pub instruction_id: String,
    pub end_to_end_id: String,
    /// In pence.
    pub amount: i64,
    pub currency: String,
    pub creditor: Creditor,
    /// What the payee's statement shows: at most 18 characters.
    pub reference: String,
    pub merchant_customer_id: Option<String>,
}

/// Where a consent stands at the bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentState {
    AwaitingAuthorisation,
    Authorised,
    Rejected,
    Consumed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub id: String,
    pub status: ConsentState,
}

/// The access token a payer's approval gives, bound to one consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankToken {
    pub access_token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The payment to submit under an authorised consent: the consent's own order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// `x-idempotency-key`: the same for every send of this payment.
    pub idempotency_key: String,
    pub consent_id: String,
    pub order: ConsentOrder,
}

/// Where a payment stands, as we act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BankPaymentState {
    InProgress,
    Settled,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankPayment {
    pub id: String,
    pub consent_id: String,
    pub status: BankPaymentState,
    /// The bank's own status name, for the record.
    pub bank_status: String,
    pub payer_name: Option<String>,
    pub payer_account_last4: Option<String>,
    pub end_to_end_id: Option<String>,
}

/// One method per flow of a domestic single immediate payment.
pub trait BankGateway: Send + Sync + 'static {
    /// The banks a payer in `mode` can pick (none: Pay by Bank is off in that mode).
    fn banks(&self, mode: Mode) -> Vec<BankSummary>;

    /// The merchant's account payments in `mode` go to.
    fn creditor(&self, mode: Mode) -> Result<Creditor, BankError>;

    /// Create a consent (idempotent under the order's key).
    fn create_consent(
        &self,
        mode: Mode,
        bank: &str,
        order: ConsentOrder,
    ) -> BankAnswer<'_, Consent>;

    /// A consent's status; `None`: the bank does not know it.
    fn consent(&self, mode: Mode, bank: &str, consent_id: &str) -> BankAnswer<'_, Option<Consent>>;

    /// Where to send the payer to approve the consent (a signed request object).
    fn authorize_url(
        &self,
        mode: Mode,
        bank: &str,
        consent_id: &str,
        state: &str,
        nonce: &str,
        redirect_uri: &str,
    ) -> BankAnswer<'_, String>;

    /// Exchange the code the bank sent back for the consent's access token.
    fn exchange_code(
        &self,
        mode: Mode,
        bank: &str,
        code: &str,
        redirect_uri: &str,
    ) -> BankAnswer<'_, BankToken>;

    /// Submit the payment (idempotent under the submission's key).
    fn submit_payment(
        &self,
        mode: Mode,
        bank: &str,
        token: &BankToken,
        submission: Submission,
    ) -> BankAnswer<'_, BankPayment>;

    /// A payment's status; `None`: the bank does not know it.
    fn payment(
        &self,
        mode: Mode,
        bank: &str,
        payment_id: &str,
    ) -> BankAnswer<'_, Option<BankPayment>>;
}
