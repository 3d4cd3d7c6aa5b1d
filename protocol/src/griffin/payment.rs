//! Payments and their execution: a payment is the intent (amount, creditor, reference); a
//! submission sends it out, an admission brings one in. There is no status on the payment:
//! it lives on the submission or admission.
//!
//! Griffin takes no idempotency key: the create/submit split is the safety net. A client
//! keeps its reference before creating, searches by it before creating again, and looks at
//! a payment's submissions before submitting again.

use serde::{Deserialize, Serialize};

use super::Money;

/// Who is paid by an outbound payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "creditor-type", rename_all = "kebab-case")]
pub enum Creditor {
    #[serde(rename_all = "kebab-case")]
    UkDomestic {
        account_holder: String,
        /// Sort code, 6 digits without dashes.
        bank_id: String,
        bank_id_code: String,
        account_number: String,
        account_number_code: String,
    },
    #[serde(rename_all = "kebab-case")]
    Payee { payee_url: String },
    #[serde(rename_all = "kebab-case")]
    GriffinBankAccount { account_url: String },
}

impl Creditor {
    /// A UK account by sort code (6 digits) and account number (8 digits).
    pub fn uk(holder: &str, sort_code: &str, account_number: &str) -> Self {
        Self::UkDomestic {
            account_holder: holder.to_owned(),
            bank_id: sort_code.to_owned(),
            bank_id_code: "gbdsc".to_owned(),
            account_number: account_number.to_owned(),
            account_number_code: "bban".to_owned(),
        }
    }
}

/// Who paid an inbound payment, as the sending bank described them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Debtor {
    pub account_holder: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_number: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaymentDirection {
    OutboundPayment,
    InboundPayment,
}

/// `POST /v0/bank/accounts/{ba}/payments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NewPayment {
    pub payment_amount: Money,
    pub creditor: Creditor,
    /// 1–35 characters; what the creditor sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_reference: Option<String>,
}

/// The longest `payment-reference` the schemes carry.
pub const REFERENCE_MAX: usize = 35;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Payment {
    pub payment_url: String,
    pub payment_direction: PaymentDirection,
    pub payment_amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creditor: Option<Creditor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debtor: Option<Debtor>,
    pub account_url: String,
    pub created_at: String,
    pub payment_submissions_url: String,
    pub payment_admissions_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_submission_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
}

/// The scheme a submission goes by: Faster Payments, or Griffin-to-Griffin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaymentScheme {
    Fps,
    BookTransfer,
    Chaps,
    Bacs,
}

/// `POST /v0/payments/{pm}/submissions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NewSubmission {
    pub payment_scheme: PaymentScheme,
}

/// `processing` → `delivered` (money left) or `failed`; a delivered payment can later be
/// `returned`; `scheduled` when execution is deferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubmissionStatus {
    Scheduled,
    Processing,
    Delivered,
    Failed,
    Returned,
}

impl SubmissionStatus {
    /// Whether nothing more will happen but a possible return.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Failed | Self::Returned)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SubmissionSchemeInformation {
    pub payment_scheme: PaymentScheme,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_to_end_identification: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme_status_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme_status_code_description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Submission {
    pub submission_url: String,
    pub payment_url: String,
    pub account_url: String,
    pub submission_status: SubmissionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_status_reason: Option<String>,
    pub submission_scheme_information: SubmissionSchemeInformation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_scheme_identifier: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdmissionStatus {
    Processing,
    Delivered,
    Returned,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AdmissionSchemeInformation {
    pub payment_scheme: PaymentScheme,
    /// The sender's end-to-end id (FPS and book transfers only): a reconciliation key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_to_end_identification: Option<String>,
}

/// An inbound payment's arrival.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Admission {
    pub admission_url: String,
    pub payment_url: String,
    pub account_url: String,
    pub admission_status: AdmissionStatus,
    pub admission_scheme_information: AdmissionSchemeInformation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_scheme_identifier: Option<String>,
    pub created_at: String,
}

/// `POST /v0/organizations/{og}/payments/search`: matches a reference or scheme id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SearchQuery {
    pub search_query: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_creditor_is_tagged_by_its_type() {
        let c = Creditor::uk("Example Ltd", "040512", "70031942");
        assert_eq!(
            serde_json::to_value(&c).ok(),
            Some(serde_json::json!({
                "creditor-type": "uk-domestic", "account-holder": "Example Ltd",
                "bank-id": "040512", "bank-id-code": "gbdsc",
                "account-number": "70031942", "account-number-code": "bban"
            }))
        );
        let g: Creditor = serde_json::from_value(serde_json::json!({
            "creditor-type": "griffin-bank-account", "account-url": "/v0/bank/accounts/ba.1"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            g,
            Creditor::GriffinBankAccount {
                account_url: "/v0/bank/accounts/ba.1".into()
            }
        );
    }

    #[test]
    fn the_briefs_submission_reads() {
        let body = serde_json::json!({
          "submission-url": "/v0/submissions/ps.Wd3OutFps9",
          "payment-url": "/v0/payments/pm.Tn5OutRefund3",
          "account-url": "/v0/bank/accounts/ba.Mk4hSettleGbp01",
          "submission-status": "processing",
          "submission-scheme-information": {
            "payment-scheme": "fps", "end-to-end-identification": "RFD0042X7",
            "scheme-status-code": "0000", "scheme-status-code-description": "Accepted by scheme"
          },
          "unique-scheme-identifier": "GFNB25041110031500000000000042",
          "created-at": "2025-04-11T10:31:50.004Z"
        });
        let s: Submission = serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.submission_status, SubmissionStatus::Processing);
        assert_eq!(serde_json::to_value(&s).ok(), Some(body));
    }

    #[test]
    fn which_submission_statuses_are_final() {
        for (status, expected) in [
            (SubmissionStatus::Scheduled, false),
            (SubmissionStatus::Processing, false),
            (SubmissionStatus::Delivered, true),
            (SubmissionStatus::Failed, true),
            (SubmissionStatus::Returned, true),
        ] {
            assert_eq!(status.is_final(), expected, "{status:?}");
        }
    }
}
