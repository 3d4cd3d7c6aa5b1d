//! The Gateway: how the daemon moves money, one method per flow (tokenise, authorise,
//! continue 3-D Secure, capture, void, refund, sync), in gateway-neutral terms.
//!
//! [`cardstream`] is the only implementation: the HTTP client for Cardstream's Direct API and,
//! in `cardstream::transformers`, the mapping between these flows and Cardstream's fields. A
//! second gateway would be a sibling module, not a rewrite.
//!
//! Each mode has its own merchant account ([`Gateway::account`]): a test key's payment is
//! built from the test account's settings and can never reach the live one. An answer whose
//! signature does not verify is an error ([`GatewayError::Unverified`]), never an outcome.

pub mod cardstream;

use std::time::Duration;

use calmony_config::Config;
use calmony_protocol::Mode;

pub use cardstream::Cardstream;

/// Card details as the gateway reports them after tokenising.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardReport {
    pub funding: String,
    pub country: Option<String>,
}

/// The gateway's reference for a transaction and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRef {
    pub xref: String,
    pub transaction_id: Option<String>,
}

/// What an authorisation (or a 3-D Secure continuation) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Authorised for `amount`; captured already unless the sale asked for manual capture.
    Approved {
        txn: TxnRef,
        amount: i64,
        auth_code: Option<String>,
    },
    /// The card was refused. Nothing was charged.
    Declined {
        txn: Option<TxnRef>,
        code: u32,
        decline_code: String,
        message: String,
    },
    /// The cardholder must authenticate: send the browser to `url` with `fields`, then
    /// continue with `reference`.
    Challenge {
        txn: Option<TxnRef>,
        url: String,
        fields: Vec<(String, String)>,
        reference: String,
    },
    /// The gateway refused the request itself (bad data, unsupported): nothing was charged.
    Failed { code: u32, message: String },
}

/// What a management request (capture, void, refund) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManageOutcome {
    Done { txn: TxnRef },
    Refused { code: u32, message: String },
}

/// The state of a transaction, as a QUERY reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnStatus {
    /// The original answer's outcome (for a SALE: approved, declined or a pending challenge).
    pub outcome: AuthOutcome,
    /// Cardstream's state now: approved, captured, accepted (settled), canceled, …
    pub state: String,
    /// What the sale holds now: captured (after a lower CAPTURE, the lower amount), else
    /// authorised (`amountReceived`).
    pub amount_received: i64,
    pub amount_refunded: i64,
}

impl TxnStatus {
    /// Settled: a refund must be a REFUND_SALE rather than a cancel or lower capture.
    pub fn settled(&self) -> bool {
        matches!(
            self.state.as_str(),
            "tendered" | "deferred" | "accepted" | "rejected"
        )
    }
}

/// Why a gateway call has no outcome. None of these may be taken to mean "not charged":
/// the caller asks the gateway (sync) before deciding anything.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum GatewayError {
    #[error("the {0} merchant account is not configured")]
    NotConfigured(Mode),
    #[error("the gateway did not answer: {0}")]
    Unreachable(String),
    #[error("the gateway's answer failed signature verification: {0}")]
    Unverified(String),
    #[error("the gateway's answer could not be read: {0}")]
    Malformed(String),
    /// The gateway answered, but with a code that says it cannot tell what became of the
    /// request (65536 in progress, 65548 its database): it may have acted.
    #[error("the gateway could not say what became of the request: {code} {message}")]
    Unknown { code: u32, message: String },
}

/// One sale to authorise.
#[derive(Debug, Clone)]
pub struct Sale {
    /// Our attempt id: Cardstream's `transactionUnique`, the key of its duplicate check and of
    /// our recovery QUERY.
    pub attempt: String,
    /// The payment intent (Cardstream's `orderRef`).
    pub order_ref: String,
    pub amount: i64,
    /// The card, as the token of its tokenising transaction.
    pub card_xref: String,
    pub capture: bool,
    /// Where the issuer's 3-D Secure page posts back; `None` for merchant-initiated payments.
    pub three_ds_return: Option<String>,
    /// A merchant-initiated recurring payment (no cardholder, no 3-D Secure).
    pub recurring: bool,
}

/// A card to tokenise. The number and CVC live only in this value, for one request.
pub struct CardToTokenise<'a> {
    pub card: &'a calmony_protocol::card::CardInput,
    pub attempt: String,
}

/// Both modes' merchant accounts.
#[derive(Clone)]
pub struct Gateway {
    test: Option<Cardstream>,
    live: Option<Cardstream>,
}

impl Gateway {
    pub fn from_config(config: &Config) -> Self {
        let timeout = Duration::from_secs(config.gateway.timeout_seconds);
        let test = Cardstream::new(
            config.test_gateway_url(),
            &config.gateway.test.merchant_id,
            &config.gateway.test.secret,
            timeout,
        );
        let live = (!config.gateway.live.merchant_id.is_empty()).then(|| {
            Cardstream::new(
                config.gateway.live.url.clone(),
                &config.gateway.live.merchant_id,
                &config.gateway.live.secret,
                timeout,
            )
        });
        Self {
            test: Some(test),
            live,
        }
    }

    /// The merchant account of a mode. The mode comes from the API key, so this is the one
    /// place that decides which account money moves through.
    pub fn account(&self, mode: Mode) -> Result<&Cardstream, GatewayError> {
        match mode {
            Mode::Test => self.test.as_ref(),
            Mode::Live => self.live.as_ref(),
        }
        .ok_or(GatewayError::NotConfigured(mode))
    }
}

/// Install the process-wide TLS provider (ring) once, before any HTTPS client is built.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
