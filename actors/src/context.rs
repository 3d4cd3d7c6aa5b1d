//! The context of one API request and the answer handed back to the edge.

use calmony_protocol::event::EventRequest;

use crate::idempotency::Claim;
use crate::store::Scope;

/// Who is asking and under which idempotency key.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub scope: Scope,
    /// The claimed `Idempotency-Key`, if the request is a POST that carried one. A handler that
    /// commits a change stores its answer under this key in the same atomic write.
    pub idempotency: Option<Claim>,
    /// How long an idempotent answer is kept, in seconds.
    pub idempotency_ttl_secs: u64,
    /// The object a `GET /v1/<objects>/<id>` names, read with the key check: `(id, JSON if it
    /// exists)`. Handlers that answer an object as stored use it instead of a second read.
    pub prefetched: Option<(String, Option<String>)>,
}

impl RequestContext {
    /// What an event caused by this request records about it.
    pub fn event_request(&self) -> EventRequest {
        EventRequest {
            id: Some(self.request_id.clone()),
            idempotency_key: self.idempotency.as_ref().map(|c| c.key.clone()),
        }
    }
}

/// A successful answer: status and JSON body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// The edge must not store this answer under the idempotency key: it is stored already
    /// (atomically with the change it reports), or the work continues elsewhere (a payment
    /// left to recovery) and whoever finishes it stores the final answer.
    pub stored: bool,
}

impl Reply {
    pub fn ok(body: String) -> Self {
        Self {
            status: 200,
            body,
            stored: false,
        }
    }
}
