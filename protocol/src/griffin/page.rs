//! A list page: `{<items>: [...], "links": {"prev": <url|null>, "next": <url|null>}}`.
//!
//! The items' key differs per list (`account-transactions`, `payments`, ...), so the page is
//! generic over a struct that names it; the links keep the caller's filters and carry opaque
//! `page[before]`/`page[after]` cursors, null at either end.

use serde::{Deserialize, Serialize};

/// Where the neighbouring pages are, as relative URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Links {
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// A page of items under their list's key, flattened beside `links`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Page<T> {
    #[serde(flatten)]
    pub items: T,
    #[serde(default)]
    pub links: Links,
}

/// The items of a transactions page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TransactionItems {
    pub account_transactions: Vec<super::Transaction>,
}

/// The items of a payments page (and of a search's answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PaymentItems {
    pub payments: Vec<super::Payment>,
}

/// The items of a submissions page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SubmissionItems {
    pub submissions: Vec<super::Submission>,
}

/// The items of an admissions page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AdmissionItems {
    pub admissions: Vec<super::Admission>,
}

/// The items of a bank accounts page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BankAccountItems {
    pub bank_accounts: Vec<super::BankAccount>,
}

/// The items of an events page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EventItems {
    pub events: Vec<super::Event>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_reads_its_items_and_null_links() {
        let body = serde_json::json!({
            "account-transactions": [],
            "links": {"prev": null, "next": "/v0/bank/accounts/ba.1/transactions?page[after]=YQ"}
        });
        let page: Page<TransactionItems> =
            serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert!(page.items.account_transactions.is_empty());
        assert_eq!(page.links.prev, None);
        assert_eq!(serde_json::to_value(&page).ok(), Some(body));
    }
}
