//! Events (`{event-url, event-type, event-payload, created-at}`) and the one webhook an
//! organization has. Delivery is at least once and unordered: consumers dedupe on
//! `event-url` and re-read the resource before acting, so the payload is kept as JSON.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Event {
    pub event_url: String,
    /// `{resource}-{change}`: `transaction-created`, `submission-updated`, ...
    pub event_type: String,
    pub event_payload: serde_json::Value,
    pub created_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookState {
    Active,
    Inactive,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Webhook {
    pub webhook_url: String,
    pub webhook_destination_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_description: Option<String>,
    pub webhook_state: WebhookState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activate_webhook_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivate_webhook_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_webhook_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// `POST /v0/organizations/{org}/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NewWebhook {
    pub webhook_destination_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_description: Option<String>,
}

/// `PATCH /v0/webhooks/{wh}`: what may change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WebhookChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_destination_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_description: Option<String>,
}

/// Whether the last test delivery (`POST .../actions/test`) has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookRequestStatus {
    Default,
    Complete,
}

/// `GET /v0/webhooks/{wh}/actions/test`: how the last test delivery went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct WebhookTest {
    pub webhook_request_status: WebhookRequestStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_http_status: Option<u16>,
    /// `webhook-timeout`, `webhook-unknown-host`, `webhook-unknown-error`,
    /// `webhook-internal-error`, `webhook-invalid-response`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_error_code: Option<String>,
}
