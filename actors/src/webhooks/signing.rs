//! An endpoint as the dispatcher holds it: its record's version, the endpoint, and the secrets
//! that sign its deliveries. A leaf shared by the endpoints' API and the senders.

use calmony_protocol::webhook::WebhookEndpoint;
use serde::{Deserialize, Serialize};

/// A signing secret and when it stops signing (0: never).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SigningSecret {
    pub secret: String,
    pub expires_at: i64,
}

/// An endpoint with what is kept beside it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub version: u64,
    pub endpoint: WebhookEndpoint,
    pub secrets: Vec<SigningSecret>,
    pub failing_since: Option<i64>,
}

impl Loaded {
    /// The secrets that sign a delivery now.
    pub fn active_secrets(&self, now: i64) -> Vec<&str> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at == 0 || s.expires_at > now)
            .map(|s| s.secret.as_str())
            .collect()
    }
}
