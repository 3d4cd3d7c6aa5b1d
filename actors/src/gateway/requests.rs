//! What each flow sends, in gateway-neutral terms. Owned values, so a request can travel in
//! a message to whatever runs the gateway (an actor, another task).

use calmony_protocol::card::CardInput;

/// A card to tokenise (a zero-amount verification). The number and CVC live only in this
/// value, for one request.
pub struct CardToTokenise {
    pub card: CardInput,
    /// Our attempt id (Cardstream's `transactionUnique`).
    pub attempt: String,
}

impl std::fmt::Debug for CardToTokenise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardToTokenise")
            .field("card", &self.card)
            .field("attempt", &self.attempt)
            .finish()
    }
}

/// One sale to authorise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    /// Our attempt id: Cardstream's `transactionUnique`, the key of its duplicate check and of
    /// our recovery query.
    pub attempt: String,
    /// The payment intent, or the invoice it pays (Cardstream's `orderRef`).
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

/// A 3-D Secure challenge to continue with what the issuer's page posted back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreeDsContinuation {
    /// The challenge's reference, as the sale's answer gave it.
    pub reference: String,
    pub posted: Vec<(String, String)>,
}

/// Capture an authorised sale, for `amount` (at most what was authorised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub xref: String,
    pub amount: i64,
}

/// Cancel (void) an unsettled sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancel {
    pub xref: String,
}

/// Refund part or all of a settled sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub xref: String,
    pub amount: i64,
    /// Our attempt id, the key of the gateway's duplicate check and of our recovery query.
    pub attempt: String,
}

/// Which transaction a query asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnLookup {
    /// By our attempt id (`transactionUnique`): what became of a request we sent.
    Attempt(String),
    /// By the gateway's reference: where a sale stands now.
    Xref(String),
}
