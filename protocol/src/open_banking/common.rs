//! The members consent and payment share: the Initiation (OBDomestic2), Risk (OBRisk1), an
//! account (OBCashAccount), `Links` and `Meta`.

use serde::{Deserialize, Serialize};

/// The scheme of a UK sort code and account number: 14 digits, no dashes.
pub const SCHEME_SCAN: &str = "UK.OBIE.SortCodeAccountNumber";

/// What the payer's bank is asked to pay, fixed at consent and repeated unchanged at payment:
/// the bank compares the two (a difference is `UK.OBIE.Resource.ConsentMismatch`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Initiation {
    /// ≤35, ours, unique forever: the bank's handle on this instruction.
    pub instruction_identification: String,
    /// ≤35 (FPS carries 31): travels to the payee's bank, so reconciliation matches on it.
    pub end_to_end_identification: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_instrument: Option<String>,
    pub instructed_amount: InstructedAmount,
    /// Usually absent: the payer picks the account at the bank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debtor_account: Option<Account>,
    pub creditor_account: Account,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remittance_information: Option<RemittanceInformation>,
}

/// An amount as the wire carries it: a decimal string (see [`super::amount`]) and a currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstructedAmount {
    pub amount: String,
    pub currency: String,
}

/// An account: for us always a SCAN (`UK.OBIE.SortCodeAccountNumber`, 14 digits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Account {
    pub scheme_name: String,
    pub identification: String,
    /// Required for the creditor (≤350); the payee's name, which the bank may check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A building society's roll number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_identification: Option<String>,
}

/// What the payee sees on their statement. FPS carries only 18 characters of `Reference`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemittanceInformation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unstructured: Option<String>,
}

/// OBRisk1: all optional, but banks score the payment on it. Sent with the consent and repeated
/// unchanged with the payment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Risk {
    /// v3.1.10+: `EcommerceMerchantInitiatedPayment` for a checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_context_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_category_code: Option<String>,
    /// ≤70: the merchant's own id for the payer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_customer_identification: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_present_indicator: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beneficiary_prepopulated_indicator: Option<bool>,
}

/// `Yes` / `No`, as `ReadRefundAccount` spells a boolean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum YesNo {
    Yes,
    No,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    #[serde(rename = "Self")]
    pub self_: String,
}

/// Always `{}` here: paging members are for lists, which PIS has none of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {}
