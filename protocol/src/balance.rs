//! The money view in Stripe's shapes: the balance, its balance transactions and payouts.
//!
//! Money reaches the merchant's own (Griffin) account straight from the acquirer or the
//! payer's bank, so a payout here records a settlement credit on its way to that account:
//! `in_transit` when its batch closes, `paid` when the credit is seen on the account,
//! `failed` when it was not seen by the deadline. Amounts are integers in pence.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const TXN_PREFIX: &str = "txn";
pub const PAYOUT_PREFIX: &str = "po";

/// What moved a balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TxnType {
    Charge,
    Refund,
    Payout,
    /// A payout that failed gives its amount back.
    PayoutFailure,
    /// Money from the merchant's own account that paid a bank refund.
    Topup,
    /// An operator's correction after reconciliation.
    Adjustment,
}

impl TxnType {
    pub fn as_str(self) -> &'static str {
        match self {
            TxnType::Charge => "charge",
            TxnType::Refund => "refund",
            TxnType::Payout => "payout",
            TxnType::PayoutFailure => "payout_failure",
            TxnType::Topup => "topup",
            TxnType::Adjustment => "adjustment",
        }
    }

    pub const ALL: [TxnType; 6] = [
        TxnType::Charge,
        TxnType::Refund,
        TxnType::Payout,
        TxnType::PayoutFailure,
        TxnType::Topup,
        TxnType::Adjustment,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FeeDetail {
    pub amount: i64,
    pub application: Option<String>,
    pub currency: String,
    pub description: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BalanceTransaction {
    pub id: String,
    pub object: String,
    pub amount: i64,
    /// When it is expected to become available (Unix seconds): its batch's close.
    pub available_on: i64,
    pub created: i64,
    pub currency: String,
    pub description: Option<String>,
    pub exchange_rate: Option<f64>,
    pub fee: i64,
    pub fee_details: Vec<FeeDetail>,
    pub net: i64,
    pub reporting_category: String,
    pub source: Option<String>,
    /// `pending` or `available`.
    pub status: String,
    #[serde(rename = "type")]
    pub kind: TxnType,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Payout {
    pub id: String,
    pub object: String,
    pub amount: i64,
    /// When the credit is expected on the account (Unix seconds).
    pub arrival_date: i64,
    pub automatic: bool,
    pub balance_transaction: Option<String>,
    pub created: i64,
    pub currency: String,
    pub description: Option<String>,
    /// The settlement account, as Griffin names it (`/v0/bank/accounts/...`), when known.
    pub destination: Option<String>,
    pub failure_balance_transaction: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub livemode: bool,
    pub metadata: Value,
    pub method: String,
    /// `card` (an acquirer's batch) or `bank_account` (a Pay by Bank payment).
    pub source_type: String,
    /// The credit's reference on the merchant's statement.
    pub statement_descriptor: Option<String>,
    /// `in_transit`, `paid` or `failed`.
    pub status: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// One currency's figure in the balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Funds {
    pub amount: i64,
    pub currency: String,
    pub source_types: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Balance {
    pub object: String,
    pub available: Vec<Funds>,
    pub pending: Vec<Funds>,
    pub livemode: bool,
}
