//! A ledger entry: the source of truth for reconciliation.
//!
//! `balance-change` is never negative; the sign is `balance-change-direction`. Each entry
//! carries the ledger balance *after* it, so a reader can check continuity (previous balance
//! ± change = this balance) and detect a missed entry. Dedupe on `account-transaction-url`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Money;

/// Money in or out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Credit,
    Debit,
}

impl Direction {
    /// The change in pence with its sign: a credit adds, a debit takes away.
    pub fn signed(self, pence: i64) -> i64 {
        match self {
            Self::Credit => pence,
            Self::Debit => -pence,
        }
    }
}

/// What made the entry. `deposit` is the sandbox's opening credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OriginType {
    Payment,
    Fee,
    Interest,
    Commission,
    Transfer,
    ManualPayment,
    Deposit,
    CardTransaction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Transaction {
    pub account_transaction_url: String,
    pub account_url: String,
    pub balance_change: Money,
    pub balance_change_direction: Direction,
    /// The running ledger balance after this entry.
    pub account_balance: Money,
    pub transaction_origin_type: OriginType,
    /// When it entered the ledger: the field windows and cursors use.
    pub processed_at: String,
    pub effective_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_url: Option<String>,
    /// What the payer typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_metadata: Option<BTreeMap<String, String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credit_reads_with_its_running_balance() {
        let body = serde_json::json!({
            "account-transaction-url": "/v0/bank/transactions/tr.Hq2mIncoming77",
            "account-url": "/v0/bank/accounts/ba.Mk4hSettleGbp01",
            "balance-change": {"currency": "GBP", "value": "125.40"},
            "balance-change-direction": "credit",
            "account-balance": {"currency": "GBP", "value": "48210.55"},
            "transaction-origin-type": "payment",
            "payment-url": "/v0/payments/pm.Rx7InboundA1",
            "reference": "ORD-20250411-0042",
            "processed-at": "2025-04-11T10:02:17.530Z",
            "effective-at": "2025-04-11T10:02:17.530Z"
        });
        let tr: Transaction =
            serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tr.balance_change_direction, Direction::Credit);
        assert_eq!(serde_json::to_value(&tr).ok(), Some(body));
    }

    #[test]
    fn direction_gives_the_sign() {
        for (direction, pence, expected) in [
            (Direction::Credit, 100, 100),
            (Direction::Debit, 100, -100),
            (Direction::Debit, 0, 0),
        ] {
            assert_eq!(direction.signed(pence), expected);
        }
    }
}
