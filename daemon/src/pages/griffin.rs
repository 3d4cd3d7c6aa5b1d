//! `POST /webhooks/griffin/{mode}`: Griffin's webhook deliveries. The mode is in the path, so
//! each mode's Griffin organization registers its own URL (test mode's built-in sandbox
//! registers `<public_url>/webhooks/griffin/test` by itself at start).
//!
//! The delivery is verified and recorded by [`calmony_actors::gateway::griffin::inbox`]; the
//! answer is 200 only after the commit: a new event or one seen before alike (Griffin
//! delivers at least once). A delivery that does not prove it is Griffin's is 401 and
//! writes nothing; a mode without Griffin is 404; a store that cannot commit is 503, so
//! Griffin retries.

use calmony_actors::gateway::griffin::inbox::Received;
use calmony_actors::gateway::griffin::webhook::Delivery;
use hyper::Response;
use hyper::header::{HOST, HeaderMap};
use serde_json::json;

use crate::response::{Body, json_response};
use crate::state::AppState;

pub async fn webhook(
    state: &AppState,
    mode: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<Body> {
    let Some(mode) = calmony_protocol::Mode::parse(mode) else {
        return json_response(404, json!({"error": "no such mode"}).to_string());
    };
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)))
        .collect();
    let authority = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let delivery = Delivery {
        method: "POST",
        authority,
        path,
        query,
        headers: &pairs,
        body,
    };
    match state
        .griffin_inbox
        .receive(&state.store, mode, &delivery)
        .await
    {
        Ok(Received::New(_)) => json_response(200, json!({"received": true}).to_string()),
        Ok(Received::Duplicate) => json_response(
            200,
            json!({"received": true, "duplicate": true}).to_string(),
        ),
        Err(e) => json_response(e.status(), json!({"error": e.to_string()}).to_string()),
    }
}
