//! The transaction record as stored: its states, its fields, the answer QUERY replays, and the
//! bytes it was read as.

use calmony_actors::Store;
use calmony_actors::store::packed;
use calmony_protocol::cardstream::{FieldValue, Fields};
use serde::{Deserialize, Serialize};

use super::ids::{IdBlock, new_xref};
use crate::cards::CardProfile;
use crate::clock::UtcTime;
use crate::error::SandboxError;
use crate::keys;

/// Cardstream's transaction states (§6.1). `canceled` is spelt the gateway's way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Received,
    Approved,
    Verified,
    Declined,
    Referred,
    Captured,
    Accepted,
    Rejected,
    Canceled,
    Finished,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Received => "received",
            State::Approved => "approved",
            State::Verified => "verified",
            State::Declined => "declined",
            State::Referred => "referred",
            State::Captured => "captured",
            State::Accepted => "accepted",
            State::Rejected => "rejected",
            State::Canceled => "canceled",
            State::Finished => "finished",
        }
    }
}

/// A 3-D Secure challenge waiting for the cardholder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChallenge {
    /// Where the ACS page sends the cardholder's browser with the `cres`.
    pub redirect_url: String,
    /// The `authorisationCode` the SALE carried, for its authorisation afterwards.
    pub authorisation_code: Option<String>,
}

/// One transaction at the simulated gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub xref: String,
    pub transaction_id: u64,
    pub merchant_id: String,
    /// `SALE`, `VERIFY` or `REFUND_SALE`.
    pub action: String,
    /// The wire `type`: 1, 2 or 9.
    pub kind: String,
    pub state: State,
    /// The amount asked for, in minor units.
    pub amount: u64,
    pub amount_authorised: u64,
    pub amount_captured: u64,
    /// For a SALE: the total refunded by REFUND_SALEs so far.
    pub amount_refunded: u64,
    pub currency_code: String,
    pub transaction_unique: Option<String>,
    pub order_ref: Option<String>,
    pub card: CardProfile,
    /// Sent with `captureDelay` -1 or `never`: approved only, captured by CAPTURE.
    pub manual_capture: bool,
    pub authorisation_code: Option<String>,
    /// For a REFUND_SALE: the SALE it refunds.
    pub original_xref: Option<String>,
    /// Set while the transaction waits in `received` for a 3-D Secure challenge.
    pub challenge: Option<PendingChallenge>,
    /// `YYYY-MM-DD HH:MM:SS` UTC.
    pub created: String,
    /// When a manual-capture sale was first captured (`YYYY-MM-DD HH:MM:SS` UTC): the day's
    /// batch it settles in follows it, not `created`.
    #[serde(default)]
    pub captured_at: Option<String>,
    /// The latest answer about this transaction, unsigned, as `(name, value)` pairs with
    /// records flattened to `root[sub]`: what QUERY replays. Never holds card data.
    pub response: Vec<(String, String)>,
}

impl Transaction {
    /// A new transaction with a fresh `xref` and `transactionID`, in state `received`.
    pub(crate) async fn begin(
        ids: &IdBlock,
        store: &Store,
        merchant_id: &str,
        action: &str,
        card: CardProfile,
    ) -> Result<Self, SandboxError> {
        let now = UtcTime::now();
        Ok(Transaction {
            xref: new_xref(&now),
            transaction_id: ids.next(store).await?,
            merchant_id: merchant_id.to_owned(),
            action: action.to_owned(),
            kind: "1".to_owned(),
            state: State::Received,
            amount: 0,
            amount_authorised: 0,
            amount_captured: 0,
            amount_refunded: 0,
            currency_code: "826".to_owned(),
            transaction_unique: None,
            order_ref: None,
            card,
            manual_capture: false,
            authorisation_code: None,
            original_xref: None,
            challenge: None,
            created: now.timestamp(),
            captured_at: None,
            response: Vec::new(),
        })
    }

    /// The amount the card has been charged: what was captured, else what was authorised.
    pub fn amount_received(&self) -> u64 {
        if self.amount_captured > 0 {
            self.amount_captured
        } else {
            self.amount_authorised
        }
    }

    /// The fields every answer about this transaction carries: its identity, state, card and,
    /// once authorised, the amount received and authorisation code.
    pub fn describe(&self, fields: &mut Fields) {
        fields
            .insert("xref", self.xref.as_str())
            .insert("transactionID", self.transaction_id.to_string())
            .insert("state", self.state.as_str())
            .insert("timestamp", UtcTime::now().timestamp());
        self.card.describe(fields);
        if self.amount_authorised > 0 {
            fields.insert("amountReceived", self.amount_received().to_string());
        }
        if let Some(code) = self.authorisation_code.as_deref() {
            fields.insert("authorisationCode", code);
        }
    }

    /// Keep `fields` as the answer QUERY replays.
    pub fn remember(&mut self, fields: &Fields) {
        self.response = flatten(fields);
    }

    /// The remembered answer.
    pub fn remembered(&self) -> Fields {
        self.response
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    /// The record as stored: its JSON, packed.
    pub(super) fn to_stored(&self) -> Result<Vec<u8>, SandboxError> {
        let json = serde_json::to_string(self).map_err(|e| SandboxError::Corrupt {
            key: keys::transaction(&self.xref),
            reason: e.to_string(),
        })?;
        Ok(packed::pack(&json))
    }
}

/// A transaction as read, with the exact bytes it was read as (what a `cas` compares against).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub txn: Transaction,
    pub raw: Vec<u8>,
}

/// Flatten a message to `(name, value)` pairs, records as `root[sub]` in their order.
pub fn flatten(fields: &Fields) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(fields.len());
    for (root, value) in fields.iter() {
        match value {
            FieldValue::Scalar(v) => out.push((root.to_owned(), v.clone())),
            FieldValue::Record(items) => {
                for (sub, v) in items {
                    out.push((format!("{root}[{sub}]"), v.clone()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_keeps_record_order() {
        let fields: Fields = [
            ("a", "1"),
            ("threeDSRequest[creq]", "x"),
            ("threeDSRequest[b]", "y"),
        ]
        .into_iter()
        .collect();
        let flat = flatten(&fields);
        assert_eq!(
            flat,
            [
                ("a".to_owned(), "1".to_owned()),
                ("threeDSRequest[creq]".to_owned(), "x".to_owned()),
                ("threeDSRequest[b]".to_owned(), "y".to_owned()),
            ]
        );
        let back: Fields = flat.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(back, fields);
    }
}
