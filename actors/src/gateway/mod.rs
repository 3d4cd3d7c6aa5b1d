//! The gateway layer: how the daemon moves money, one method per flow (tokenise, sale,
//! continue 3-D Secure, capture, cancel, refund, query), in gateway-neutral terms.
//!
//! - [`flows`]: the [`PaymentGateway`] trait the payments code holds (`Arc<dyn …>`).
//! - [`requests`] and [`outcomes`]: what each flow sends and the typed answers it gets back.
//! - [`cardstream`]: the first implementation, Cardstream's Direct API; the mapping of its
//!   fields lives in `cardstream::transformers`. A second gateway (Pay by Bank) is a sibling
//!   module implementing the same trait, not a rewrite.
//!
//! - [`bank_flows`]: Pay by Bank's [`BankGateway`] trait (consent, authorise, code, submit,
//!   status), and [`open_banking`], its implementation over UK Open Banking v3.1.
//! - [`griffin`]: the client of Griffin, the bank holding the merchant's settlement account.
//!
//! Each mode has its own merchant account: a test key's payment is built from the test
//! account's settings and can never reach the live one. An answer whose signature does not
//! verify is an error ([`GatewayError::Unverified`]), never an outcome.

pub mod bank_flows;
pub mod cardstream;
pub mod flows;
pub mod griffin;
pub mod open_banking;
pub mod outcomes;
pub mod requests;

pub use bank_flows::{
    BankAnswer, BankError, BankGateway, BankPayment, BankPaymentState, BankSummary, BankToken,
    Consent, ConsentOrder, ConsentState, Creditor, PayerAccount, Submission,
};
pub use cardstream::{Cardstream, MerchantAccounts};
pub use flows::{Answer, ModeGateway, PaymentGateway};
pub use open_banking::OpenBanking;
pub use outcomes::{
    AuthOutcome, CardReport, GatewayError, ManageOutcome, Tokenised, TxnRef, TxnState, TxnStatus,
};
pub use requests::{Cancel, Capture, CardToTokenise, Refund, Sale, ThreeDsContinuation, TxnLookup};

/// Cardstream's merchant accounts, the gateway the daemon is built with today.
pub type Gateway = MerchantAccounts;

/// Install the process-wide TLS provider (ring) once, before any HTTPS client is built.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
