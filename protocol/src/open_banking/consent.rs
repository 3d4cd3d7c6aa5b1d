//! `POST/GET /domestic-payment-consents`: the payment the payer is asked to approve.

use serde::{Deserialize, Serialize};

use super::common::{Account, Initiation, Links, Meta, Risk, YesNo};

/// OBWriteDomesticConsent4: `Risk` is a sibling of `Data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsentRequest {
    pub data: ConsentRequestData,
    pub risk: Risk,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsentRequestData {
    /// `Yes` asks the bank for the payer's account with the payment, to refund to (OBIE has
    /// no refund call: a refund is a new credit to that account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_refund_account: Option<YesNo>,
    pub initiation: Initiation,
}

/// OBWriteDomesticConsentResponse5: the request echoed, with the bank's id and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsentResponse {
    pub data: ConsentResponseData,
    pub risk: Risk,
    pub links: Links,
    #[serde(default)]
    pub meta: Meta,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsentResponseData {
    /// ≤128, the bank's.
    pub consent_id: String,
    pub status: ConsentStatus,
    /// ISO 8601 with offset.
    pub creation_date_time: String,
    pub status_update_date_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_refund_account: Option<YesNo>,
    pub initiation: Initiation,
    /// The payer's account, once they chose one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debtor: Option<Account>,
}

/// A consent's life: created, then decided by the payer, then used once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConsentStatus {
    /// Created; the payer has not decided (or an expired one reads as `Rejected`).
    AwaitingAuthorisation,
    /// Approved: one payment may now be made from it.
    Authorised,
    /// Refused by the payer, failed authentication, or expired undecided.
    Rejected,
    /// A payment was made from it (says nothing of that payment's outcome).
    Consumed,
}

impl ConsentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingAuthorisation => "AwaitingAuthorisation",
            Self::Authorised => "Authorised",
            Self::Rejected => "Rejected",
            Self::Consumed => "Consumed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The brief's v3.1.10 example reads into our types and writes back the same JSON.
    #[test]
    fn the_spec_example_round_trips() {
        let text = r#"{"Data":{"ReadRefundAccount":"Yes","Initiation":{
            "InstructionIdentification":"PBB-20250411-000731","EndToEndIdentification":"ORD42-E2E-7731",
            "LocalInstrument":"UK.OBIE.FPS","InstructedAmount":{"Amount":"125.40","Currency":"GBP"},
            "CreditorAccount":{"SchemeName":"UK.OBIE.SortCodeAccountNumber","Identification":"04051270031942","Name":"Example Trading Ltd"},
            "RemittanceInformation":{"Reference":"ORD-0042","Unstructured":"Order 42 checkout"}}},
            "Risk":{"PaymentContextCode":"EcommerceMerchantInitiatedPayment","MerchantCategoryCode":"5732",
            "MerchantCustomerIdentification":"cust_8812","ContractPresentIndicator":false,"BeneficiaryPrepopulatedIndicator":true}}"#;
        let parsed: ConsentRequest = serde_json::from_str(text).expect("parses");
        assert_eq!(parsed.data.read_refund_account, Some(YesNo::Yes));
        assert_eq!(parsed.data.initiation.instructed_amount.amount, "125.40");
        let again: serde_json::Value = serde_json::to_value(&parsed).expect("serialises");
        let original: serde_json::Value = serde_json::from_str(text).expect("json");
        assert_eq!(again, original);
        let status: ConsentStatus =
            serde_json::from_str("\"AwaitingAuthorisation\"").expect("status");
        assert_eq!(status.as_str(), "AwaitingAuthorisation");
    }
}
