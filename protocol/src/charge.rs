//! The charge resource: one attempt to move money for a payment intent, as Stripe models it
//! (`latest_charge` on the intent). It carries the gateway's transaction id.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::metadata::Metadata;

pub const PREFIX: &str = "ch";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Charge {
    pub id: String,
    pub object: String,
    pub amount: i64,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    pub balance_transaction: Option<String>,
    pub captured: bool,
    pub created: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub description: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    pub outcome: Value,
    pub paid: bool,
    pub payment_intent: String,
    pub payment_method: Option<String>,
    pub payment_method_details: Value,
    pub refunded: bool,
    pub status: String,
    #[serde(rename = "cardstreamTransactionId")]
    pub cardstream_transaction_id: Option<String>,
}
