//! The payment method resource: a card tokenised at the gateway. Only the gateway's `xref`
//! (kept beside the record, never answered), brand, last4, expiry, funding and a fingerprint
//! are kept.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::metadata::Metadata;

pub const PREFIX: &str = "pm";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CardChecks {
    pub address_line1_check: Option<String>,
    pub address_postal_code_check: Option<String>,
    pub cvc_check: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CardDetails {
    pub brand: String,
    pub checks: CardChecks,
    pub country: Option<String>,
    pub display_brand: String,
    pub exp_month: u32,
    pub exp_year: u32,
    pub fingerprint: String,
    pub funding: String,
    pub last4: String,
    pub networks: Value,
    pub three_d_secure_usage: Value,
    pub wallet: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BillingDetails {
    pub address: Option<Value>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PaymentMethod {
    pub id: String,
    pub object: String,
    pub allow_redisplay: String,
    pub billing_details: BillingDetails,
    /// A card's details (`type: card`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardDetails>,
    /// Pay by Bank's (`type: pay_by_bank`): empty, as Stripe's is; the bank is chosen by the
    /// payer at each payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_by_bank: Option<Value>,
    pub created: i64,
    pub customer: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    #[serde(rename = "type")]
    pub kind: String,
    /// The Calmony docs' spelling of `customer`.
    #[serde(rename = "customerId")]
    pub customer_id: Option<String>,
}

impl PaymentMethod {
    /// A `pay_by_bank` payment method: nothing to tokenise, the payer approves each payment
    /// at their bank.
    pub fn pay_by_bank(id: String, created: i64, livemode: bool) -> Self {
        Self {
            id,
            object: "payment_method".into(),
            allow_redisplay: "unspecified".into(),
            billing_details: BillingDetails {
                address: None,
                email: None,
                name: None,
                phone: None,
            },
            card: None,
            pay_by_bank: Some(Value::Object(Default::default())),
            created,
            customer: None,
            livemode,
            metadata: Metadata::default(),
            kind: crate::payment_intent::PAY_BY_BANK.into(),
            customer_id: None,
        }
    }

    pub fn set_customer(&mut self, customer: Option<String>) {
        self.customer_id = customer.clone();
        self.customer = customer;
    }
}
