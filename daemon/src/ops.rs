//! Operator endpoints: `/healthz` (the process answers), `/readyz` (and Redis takes writes),
//! `/metrics` (Prometheus text format). They need no API key.

use calmony_actors::Store;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::edge::{Body, json_response, set};
use hyper::Response;

pub fn healthz() -> Response<Body> {
    json_response(200, r#"{"status":"ok"}"#.into())
}

/// Ready when Redis takes a write: a Redis out of memory, loading or read-only answers reads
/// but no payment can be taken, so the load balancer should send traffic elsewhere.
pub async fn readyz(store: &Store) -> Response<Body> {
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
