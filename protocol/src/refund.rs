//! The refund resource and its parameters.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::metadata::{self, Metadata, MetadataUpdate};
use crate::params::Params;

pub const PREFIX: &str = "re";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Refund {
    pub id: String,
    pub object: String,
    pub amount: i64,
    pub balance_transaction: Option<String>,
    pub charge: Option<String>,
    pub created: i64,
    pub currency: String,
    pub failure_reason: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    pub payment_intent: String,
    pub reason: Option<String>,
    pub status: String,
    #[serde(rename = "cardstreamTransactionId")]
    pub cardstream_transaction_id: Option<String>,
}

/// `POST /v1/refunds`.
#[derive(Debug, Clone)]
pub struct RefundParams {
    pub payment_intent: Option<String>,
    pub charge: Option<String>,
    pub amount: Option<i64>,
    pub reason: Option<String>,
    pub metadata: Option<MetadataUpdate>,
}

impl RefundParams {
    pub fn take(mut p: Params) -> Result<Self, ApiError> {
        let r = Self {
            payment_intent: p
                .string_max(&["payment_intent", "paymentIntent", "paymentIntentId"], 100)?
                .into_option(),
            charge: p.string_max(&["charge"], 100)?.into_option(),
            amount: p.integer(&["amount"], 1, 99_999_999)?.into_option(),
            reason: p
                .one_of(
                    &["reason"],
                    &["duplicate", "fraudulent", "requested_by_customer"],
                )?
                .into_option(),
            metadata: metadata::take(&mut p)?,
        };
        p.expand()?;
        p.finish()?;
        if r.payment_intent.is_none() && r.charge.is_none() {
            return Err(ApiError::missing_param("payment_intent"));
        }
        Ok(r)
    }
}
