//! Events: the immutable record of a state change, in Stripe's shape.
//!
//! An event is written in the same atomic step as the change it describes (never after), so a
//! merchant's webhook endpoint can rely on seeing every change. `data.object` is a snapshot of
//! the object as it was right after the change.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

pub const PREFIX: &str = "evt";

/// Events are kept, and listable, for this long (Stripe keeps 30 days).
pub const RETENTION_SECS: i64 = 30 * 24 * 3600;

/// `object` is kept as the snapshot's JSON text: it is written once, when the event is made,
/// and copied as it is into the stored event and every webhook body.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventData {
    /// The object the event is about, as it was then.
    #[schemars(with = "serde_json::Map<String, Value>")]
    pub object: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_attributes: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventRequest {
    /// The API request that caused the event; `None` for automatic events (renewals, expiry).
    pub id: Option<String>,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Event {
    pub id: String,
    pub object: String,
    pub api_version: String,
    pub created: i64,
    pub data: EventData,
    pub livemode: bool,
    pub pending_webhooks: i64,
    pub request: EventRequest,
    #[serde(rename = "type")]
    pub kind: String,
}

impl Event {
    /// An event whose `data.object` is a snapshot of `object` as it is now.
    pub fn new(
        kind: &str,
        object: &impl Serialize,
        previous_attributes: Option<Value>,
        created: i64,
        livemode: bool,
        request: EventRequest,
    ) -> Self {
        Self {
            id: crate::ids::new_id(PREFIX),
            object: "event".into(),
            api_version: crate::API_VERSION.into(),
            created,
            data: EventData {
                object: serde_json::value::to_raw_value(object)
                    .unwrap_or_else(|_| RawValue::NULL.to_owned()),
                previous_attributes,
            },
            livemode,
            pending_webhooks: 0,
            request,
            kind: kind.into(),
        }
    }
}
