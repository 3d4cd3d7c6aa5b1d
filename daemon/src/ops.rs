//! Operator endpoints: `/healthz` (the process answers), `/readyz` (every critical actor is
//! up and Redis takes writes), `/metrics` (Prometheus text format). They need no API key.
//! Also the test-only actor fault hook, `POST /sandbox/actors/faults`, for the operator.

use std::time::Duration;

use calmony_actors::Store;
use calmony_actors::system::{faults, health};
use http_body_util::BodyExt;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::response::{Body, json_response, set};
use hyper::Response;

pub fn healthz() -> Response<Body> {
    json_response(200, r#"{"status":"ok"}"#.into())
}

/// Ready when every critical actor is up and Redis takes a write. An actor down (between its
/// panic and its restart, or while its restarts keep failing) means payments, renewals,
/// webhooks or expiries are not being done; a Redis out of memory, loading or read-only
/// answers reads but no payment can be taken. Either way the load balancer should send
/// traffic elsewhere.
pub async fn readyz(store: &Store) -> Response<Body> {
    let down = health::critical_down();
    if !down.is_empty() {
        let actors: Vec<_> = down
            .iter()
            .map(|(name, for_)| serde_json::json!({"actor": name, "down_ms": for_.as_millis() as u64}))
            .collect();
        return json_response(
            503,
            serde_json::json!({"status": "unavailable", "actors_down": actors}).to_string(),
        );
    }
    match store.accepts_writes().await {
        Ok(()) => json_response(200, r#"{"status":"ready","redis":"ok"}"#.into()),
        Err(e) => json_response(
            503,
            serde_json::json!({"status": "unavailable", "redis": e.to_string()}).to_string(),
        ),
    }
}

pub fn metrics(handle: &PrometheusHandle) -> Response<Body> {
    let mut resp = json_response(200, handle.render());
    set(&mut resp, "content-type", "text/plain; version=0.0.4");
    resp
}

/// The longest hold (refused restarts) the fault hook takes.
const MAX_HOLD: Duration = Duration::from_secs(60);

/// `POST /sandbox/actors/faults` (operator only): `actor=<name>`, `panics=<n>` (the actor's next
/// n messages panic; default 1), `hold_ms=<ms>` (its restarts fail for that long; default 0).
/// For the e2e tests of the actors' supervision; with no operator token set it is a 404.
pub async fn actor_faults(
    sandbox: &calmony_sandbox::Sandbox,
    req: hyper::Request<hyper::body::Incoming>,
) -> Response<Body> {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    if !sandbox.is_operator(&token) {
        return json_response(
            404,
            r#"{"error":"no such sandbox route (the actor faults need the operator's token)"}"#
                .into(),
        );
    }
    if req.method() != hyper::Method::POST {
        return json_response(
            405,
            r#"{"error":"POST actor=<name>&panics=<n>&hold_ms=<ms>"}"#.into(),
        );
    }
    let body = match http_body_util::Limited::new(req.into_body(), 4096)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return json_response(
                400,
                serde_json::json!({"error": format!("unreadable body: {e}")}).to_string(),
            );
        }
    };
    let (mut actor, mut panics, mut hold_ms) = (String::new(), 1u32, 0u64);
    for (k, v) in form_urlencoded::parse(&body) {
        let bad = |what: &str| {
            json_response(
                400,
                serde_json::json!({"error": format!("{k} must be {what}, not {v:?}")}).to_string(),
            )
        };
        match k.as_ref() {
            "actor" => actor = v.to_string(),
            "panics" => match v.parse() {
                Ok(n) => panics = n,
                Err(_) => return bad("a count"),
            },
            "hold_ms" => match v.parse::<u64>() {
                Ok(n) if Duration::from_millis(n) <= MAX_HOLD => hold_ms = n,
                _ => return bad("milliseconds up to 60000"),
            },
            _ => return bad("one of actor, panics, hold_ms"),
        }
    }
    match faults::arm(&actor, panics, Duration::from_millis(hold_ms)) {
        Ok(()) => {
            tracing::warn!(actor, panics, hold_ms, "actor fault armed");
            json_response(
                200,
                serde_json::json!({"actor": actor, "panics": panics, "hold_ms": hold_ms})
                    .to_string(),
            )
        }
        Err(e) => json_response(400, serde_json::json!({"error": e.to_string()}).to_string()),
    }
}
