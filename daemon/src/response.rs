//! The HTTP answers every layer builds: the body type, JSON (Stripe's headers included), the
//! JSON error, a PDF, and header setting. A leaf: the edge, the `/v1` handlers, the pages and
//! the operator endpoints all answer through it, so it names none of them.

use bytes::Bytes;
use calmony_actors::Reply;
use calmony_protocol::{API_VERSION, ApiError};
use http_body_util::Full;
use hyper::Response;
use hyper::header::{HeaderName, HeaderValue};

pub type Body = Full<Bytes>;

/// A PDF answer (an invoice), named for download.
pub fn pdf_response(bytes: Vec<u8>, name: &str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
    set(&mut resp, "content-type", "application/pdf");
    let safe: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    set(
        &mut resp,
        "content-disposition",
        &format!("inline; filename=\"invoice-{safe}.pdf\""),
    );
    resp
}

pub fn reply_response(reply: Reply) -> Response<Body> {
    json_response(reply.status, reply.body)
}

pub fn json_response(status: u16, body: String) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    set(&mut resp, "content-type", "application/json");
    set(&mut resp, "stripe-version", API_VERSION);
    resp
}

/// The JSON error answer. Internal errors are logged here with their detail and answered bare.
pub fn error_response(e: &ApiError, request_id: &str) -> Response<Body> {
    let public = if e.status >= 500 && e.status != 503 {
        tracing::error!(detail = %e.message, "internal error");
        ApiError::internal(request_id)
    } else {
        if e.status == 503 {
            tracing::warn!(detail = %e.message, "store unavailable");
        }
        e.clone()
    };
    let mut resp = json_response(public.status, public.body().to_string());
    set(
        &mut resp,
        "stripe-should-retry",
        if public.should_retry() {
            "true"
        } else {
            "false"
        },
    );
    resp
}

pub fn set(resp: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(HeaderName::from_static(name), v);
    }
}
