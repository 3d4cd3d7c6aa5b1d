//! What the gateway answers, in gateway-neutral terms: the typed outcome of each flow.
//!
//! Every answer a caller may act on is one of these enums; a gateway's own codes and states
//! are read into them by that gateway's transformers and never leave its module. An answer
//! that does not say what the gateway did is a [`GatewayError`], never an outcome.

use calmony_protocol::Mode;

/// Card details as the gateway reports them after tokenising.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardReport {
    pub funding: String,
    pub country: Option<String>,
}

/// A tokenised card: the verification's outcome (its xref is the card's token) and the card's
/// details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokenised {
    pub outcome: AuthOutcome,
    pub card: CardReport,
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

/// What a management request (capture, cancel, refund) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManageOutcome {
    Done { txn: TxnRef },
    Refused { code: u32, message: String },
}

/// Where a transaction stands at the gateway, as a query reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnState {
    /// Received, not yet decided.
    Received,
    /// Authorised, not captured (a manual-capture sale, or one waiting for its capture).
    Approved,
    /// A card verification (no money).
    Verified,
    Declined,
    Referred,
    /// Captured, waiting for settlement: a lower capture or a cancel can still change it.
    Captured,
    /// In settlement or settled (`tendered`, `deferred`, `accepted`): only a refund gives
    /// money back.
    Settled,
    /// Settlement refused it: past cancelling, and not counted as captured.
    Rejected,
    /// Voided: it holds nothing.
    Canceled,
    Finished,
    /// A state this code does not know (kept for the log).
    Other(String),
}

impl TxnState {
    /// Settled: a refund must be a refund of the sale rather than a cancel or lower capture.
    pub fn settled(&self) -> bool {
        matches!(self, TxnState::Settled | TxnState::Rejected)
    }

    /// The sale's money is taken: captured, or settled since.
    pub fn captured(&self) -> bool {
        matches!(self, TxnState::Captured | TxnState::Settled)
    }

    pub fn canceled(&self) -> bool {
        matches!(self, TxnState::Canceled)
    }
}

/// The state of a transaction, as a query reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnStatus {
    /// The original answer's outcome (for a sale: approved, declined or a pending challenge).
    pub outcome: AuthOutcome,
    /// Where it stands now.
    pub state: TxnState,
    /// What the sale holds now: captured (after a lower capture, the lower amount), else
    /// authorised.
    pub amount_received: i64,
    pub amount_refunded: i64,
}

impl TxnStatus {
    /// Settled: a refund must be a refund of the sale rather than a cancel or lower capture.
    pub fn settled(&self) -> bool {
        self.state.settled()
    }
}

/// Why a gateway call has no outcome. None of these may be taken to mean "not charged":
/// the caller asks the gateway (query) before deciding anything.
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
    /// request (Cardstream: 65536 in progress, 65548 its database, 65554 a duplicate of a
    /// request it has): it may have acted.
    #[error("the gateway could not say what became of the request: {code} {message}")]
    Unknown { code: u32, message: String },
}
