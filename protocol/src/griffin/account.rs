//! Discovery (`/v0/index` → organization → bank accounts) and the bank account itself.
//!
//! A client starts at the index and follows links; only the index's path is fixed.

use serde::{Deserialize, Serialize};

use super::Money;

/// `GET /v0/index`: where the caller's organization is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Index {
    pub organization_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles_url: Option<String>,
}

/// Whether the organization is Griffin's sandbox or real money: a live daemon must refuse a
/// test organization's account, and the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrganizationMode {
    TestMode,
    LiveMode,
}

/// `GET /v0/organizations/{og}`: the links to everything the organization owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Organization {
    pub organization_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub organization_mode: OrganizationMode,
    pub organization_bank_accounts_url: String,
    pub organization_payments_url: String,
    pub organization_payments_search_url: String,
    pub organization_events_url: String,
    pub organization_webhooks_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_legal_persons_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_legal_person_url: Option<String>,
}

/// Where an account can be paid: a UK sort code (`bank-id`, 6 digits, `gbdsc`) and account
/// number (8 digits, `bban`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BankAddress {
    pub account_holder: String,
    pub bank_id: String,
    pub bank_id_code: String,
    pub account_number: String,
    pub account_number_code: String,
}

impl BankAddress {
    /// A UK domestic address in Griffin's codes.
    pub fn uk(holder: &str, sort_code: &str, account_number: &str) -> Self {
        Self {
            account_holder: holder.to_owned(),
            bank_id: sort_code.to_owned(),
            bank_id_code: "gbdsc".to_owned(),
            account_number: account_number.to_owned(),
            account_number_code: "bban".to_owned(),
        }
    }
}

/// An account's lifecycle; only `open` is fully usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccountStatus {
    Opening,
    Open,
    Closing,
    Closed,
}

/// `GET /v0/bank/accounts/{ba}`. `account-balance` is the ledger balance; `available-balance`
/// is what can be spent now (the ledger less holds), which is what a payout may draw on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BankAccount {
    pub account_url: String,
    pub display_name: String,
    pub account_status: AccountStatus,
    pub bank_product_type: String,
    pub pooled_funds: bool,
    pub account_restricted: bool,
    pub primary_account: bool,
    #[serde(default)]
    pub bank_addresses: Vec<BankAddress>,
    pub account_balance: Money,
    pub available_balance: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accrued_interest: Option<Money>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<String>,
    pub account_transactions_url: String,
    pub account_payments_url: String,
    pub account_admissions_url: String,
    pub account_submissions_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_briefs_account_reads() {
        let body = serde_json::json!({
          "account-url": "/v0/bank/accounts/ba.Mk4hSettleGbp01",
          "display-name": "Settlement GBP",
          "account-status": "open",
          "bank-product-type": "operational-account",
          "pooled-funds": false,
          "account-restricted": false,
          "primary-account": true,
          "bank-addresses": [{
            "account-holder": "Example Trading Ltd",
            "bank-id": "040512", "bank-id-code": "gbdsc",
            "account-number": "70031942", "account-number-code": "bban"
          }],
          "account-balance":   {"currency": "GBP", "value": "48210.55"},
          "available-balance": {"currency": "GBP", "value": "47960.55"},
          "accrued-interest":  {"currency": "GBP", "value": "0.00"},
          "created-at": "2025-03-02T09:14:11.201Z",
          "account-transactions-url": "/v0/bank/accounts/ba.Mk4hSettleGbp01/transactions",
          "account-payments-url": "/v0/bank/accounts/ba.Mk4hSettleGbp01/payments",
          "account-admissions-url": "/v0/bank/accounts/ba.Mk4hSettleGbp01/admissions",
          "account-submissions-url": "/v0/bank/accounts/ba.Mk4hSettleGbp01/submissions",
          "owner-url": "/v0/legal-persons/lp.Own3rXa", "controller-url": "/v0/legal-persons/lp.Own3rXa"
        });
        let account: BankAccount = serde_json::from_value(body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(account.account_status, AccountStatus::Open);
        assert_eq!(account.bank_addresses[0].bank_id, "040512");
        assert_eq!(account.available_balance.pence(), Ok(4_796_055));
        let mode: OrganizationMode =
            serde_json::from_str("\"test-mode\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mode, OrganizationMode::TestMode);
    }
}
