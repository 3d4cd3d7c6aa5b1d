//! HTTP answers. Built without `Response::builder`, whose `Result` would be one more thing that
//! could fail on the way out: every header here is a static, valid value.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

pub type Reply = Response<Full<Bytes>>;

fn with(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut reply = Response::new(Full::new(body.into()));
    *reply.status_mut() = status;
    let headers = reply.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Every answer is about live state: a proxy must never replay one.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    reply
}

/// A gateway answer: a form-encoded body, as Cardstream's Direct API sends.
pub fn form(body: String) -> Reply {
    with(StatusCode::OK, "application/x-www-form-urlencoded", body)
}

pub fn html(status: StatusCode, body: String) -> Reply {
    with(status, "text/html; charset=utf-8", body)
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> Reply {
    with(status, "application/json", value.to_string())
}

/// `{"error": {"message": …}}` with `status`.
pub fn json_error(status: StatusCode, message: &str) -> Reply {
    json(
        status,
        &serde_json::json!({ "error": { "message": message } }),
    )
}

/// An empty 200: what a dropped /direct/ answer finally gets, long after the client gave up.
pub fn empty() -> Reply {
    with(StatusCode::OK, "text/plain", Bytes::new())
}
