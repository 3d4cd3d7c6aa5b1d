//! One delivery as it travels through `cp:webhooks:deliveries`: made by the fan-out and by an
//! event's resend, read by the senders. A leaf, so the files that make deliveries and the one
//! that sends them need not name each other.

use calmony_protocol::{Mode, ids};
use serde::{Deserialize, Serialize};

use crate::store::Scope;

/// One event to one endpoint, on its `n`th try.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub p: String,
    pub m: Mode,
    pub e: String,
    pub w: String,
    pub n: u32,
}

impl Delivery {
    pub fn first(scope: &Scope, event: &str, endpoint: &str) -> Self {
        Self {
            id: ids::new_id("whd"),
            p: scope.project.clone(),
            m: scope.mode,
            e: event.to_string(),
            w: endpoint.to_string(),
            n: 1,
        }
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub(super) fn scope(&self) -> Scope {
        Scope::new(self.p.clone(), self.m)
    }
}
