//! `POST/GET /domestic-payments`: the payment made from an authorised consent, and its status.

use serde::{Deserialize, Serialize};

use super::common::{Account, Initiation, Links, Meta, Risk};

/// OBWriteDomestic2: the consent's Initiation and Risk, repeated unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentRequest {
    pub data: PaymentRequestData,
    pub risk: Risk,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentRequestData {
    pub consent_id: String,
    pub initiation: Initiation,
}

/// OBWriteDomesticResponse5.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentResponse {
    pub data: PaymentResponseData,
    pub links: Links,
    #[serde(default)]
    pub meta: Meta,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentResponseData {
    /// ≤40, the bank's.
    pub domestic_payment_id: String,
    pub consent_id: String,
    pub status: PaymentStatus,
    pub creation_date_time: String,
    pub status_update_date_time: String,
    pub initiation: Initiation,
    /// The account the payer paid from, when the bank says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debtor: Option<Account>,
    /// Present when the consent asked `ReadRefundAccount: Yes` and the bank supports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<Refund>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Refund {
    pub account: Account,
}

/// The six v3.1 statuses of a domestic payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaymentStatus {
    Pending,
    Rejected,
    AcceptedSettlementInProcess,
    AcceptedSettlementCompleted,
    AcceptedWithoutPosting,
    AcceptedCreditSettlementCompleted,
    /// A status this version does not name (a v4 ISO code, a bank's own): never final, so
    /// the payment is asked about again rather than its answer thrown away.
    #[serde(other)]
    Unrecognised,
}

/// What a payment status means for the merchant's payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentProgress {
    /// Not final yet: keep asking.
    InProgress,
    /// The payer's account is debited (or the payee credited): the payment succeeded.
    Settled,
    /// The bank refused it: no money moved.
    Rejected,
}

impl PaymentStatus {
    /// Whether the payment succeeded, failed or is still going. `AcceptedSettlementInProcess`
    /// stays in progress though many FPS banks stop there: only a completed debit (or credit)
    /// is money we can count, and our own account's receipt confirms the rest.
    pub fn outcome(&self) -> PaymentProgress {
        match self {
            Self::Pending
            | Self::AcceptedSettlementInProcess
            | Self::AcceptedWithoutPosting
            | Self::Unrecognised => PaymentProgress::InProgress,
            Self::AcceptedSettlementCompleted | Self::AcceptedCreditSettlementCompleted => {
                PaymentProgress::Settled
            }
            Self::Rejected => PaymentProgress::Rejected,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Rejected => "Rejected",
            Self::AcceptedSettlementInProcess => "AcceptedSettlementInProcess",
            Self::AcceptedSettlementCompleted => "AcceptedSettlementCompleted",
            Self::AcceptedWithoutPosting => "AcceptedWithoutPosting",
            Self::Unrecognised => "Unrecognised",
            Self::AcceptedCreditSettlementCompleted => "AcceptedCreditSettlementCompleted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_means_in_progress_settled_or_rejected() {
        use PaymentProgress::*;
        for (status, expected) in [
            (PaymentStatus::Pending, InProgress),
            (PaymentStatus::AcceptedSettlementInProcess, InProgress),
            (PaymentStatus::AcceptedWithoutPosting, InProgress),
            (PaymentStatus::AcceptedSettlementCompleted, Settled),
            (PaymentStatus::AcceptedCreditSettlementCompleted, Settled),
            (PaymentStatus::Rejected, Rejected),
            (PaymentStatus::Unrecognised, InProgress),
        ] {
            assert_eq!(status.outcome(), expected, "{status:?}");
            let wire = serde_json::to_string(&status).unwrap_or_default();
            assert_eq!(wire, format!("\"{}\"", status.as_str()));
        }
    }
}
