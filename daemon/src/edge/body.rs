//! Request bodies: size- and time-limited, then parsed as JSON or bracketed form into [`Params`].
//!
//! The limit is checked against `Content-Length` before reading anything, and enforced while
//! reading for chunked bodies, so an oversized body costs nothing and always answers 413. The
//! whole body must arrive within `http.body_read_timeout_seconds`, or the request answers 408
//! and its connection is closed: a client that announces a body and stalls holds a connection
//! and a task for that long at most.

use calmony_protocol::params::{parse_form, parse_json};
use calmony_protocol::{ApiError, Params};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request};
use std::time::Duration;

/// How much of a body is read, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

impl Limits {
    pub fn of(config: &calmony_config::Config) -> Limits {
        Limits {
            max_bytes: config.api.max_body_bytes as usize,
            timeout: Duration::from_secs(config.http.body_read_timeout_seconds),
        }
    }
}

/// Oversized bodies up to this size are read and dropped before the 413 is sent.
const DRAIN_LIMIT: u64 = 8 * 1024 * 1024;

/// How long a refused request's upload is read and dropped before its answer.
const DISCARD_WINDOW: Duration = Duration::from_secs(1);

/// Read and drop what a client is still uploading before its refusal is answered (a lingering
/// close, as nginx does): answered and closed mid-upload, the client meets a reset instead of
/// the answer. Bounded in bytes and in time, so a refused client cannot hold the connection or
/// make the daemon keep anything; whatever is left then is cut off with the connection.
pub async fn discard(req: Request<Incoming>, limits: Limits) {
    let _ = tokio::time::timeout(limits.timeout.min(DISCARD_WINDOW), drain(req.into_body())).await;
}

/// Read at most [`DRAIN_LIMIT`] bytes of `body`, dropping each chunk as it comes.
async fn drain(mut body: Incoming) {
    let mut seen = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        seen += frame.data_ref().map_or(0, |d| d.len() as u64);
        if seen > DRAIN_LIMIT {
            break;
        }
    }
}

/// Whether the request can carry a body at all: a GET, HEAD or DELETE (their parameters are
/// in the query string), or one that declares none, makes nobody wait for an upload.
pub fn may_have_body(req: &Request<Incoming>) -> bool {
    !matches!(*req.method(), Method::GET | Method::HEAD | Method::DELETE)
        && declared_len(req) != Some(0)
}

/// The raw body, size- and time-limited (for pages and the sandbox, which parse their own
/// forms).
pub async fn read_bytes(req: Request<Incoming>, limits: Limits) -> Result<bytes::Bytes, ApiError> {
    tokio::time::timeout(limits.timeout, read_within(req, limits.max_bytes))
        .await
        .unwrap_or_else(|_| Err(ApiError::body_timeout(limits.timeout.as_secs())))
}

async fn read_within(req: Request<Incoming>, limit: usize) -> Result<bytes::Bytes, ApiError> {
    if let Some(len) = declared_len(&req).filter(|len| *len > limit as u64) {
        // Read (and drop) a moderately oversized body before answering, so the client is not
        // cut off mid-upload and reliably reads the 413; a huge one is refused unread.
        if len <= DRAIN_LIMIT {
            drain(req.into_body()).await;
        }
        return Err(ApiError::body_too_large(limit));
    }
    collect(req.into_body(), limit).await
}

fn declared_len(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

async fn collect(body: Incoming, limit: usize) -> Result<bytes::Bytes, ApiError> {
    Ok(Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ApiError::body_too_large(limit)
            } else {
                ApiError::malformed("The request body could not be read.")
            }
        })?
        .to_bytes())
}

pub async fn read_params(req: Request<Incoming>, limits: Limits) -> Result<Params, ApiError> {
    let is_json = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_string();
    let bytes = read_bytes(req, limits).await?;
    let mut map = if method == Method::GET || method == Method::DELETE || bytes.is_empty() {
        serde_json::Map::new()
    } else if is_json {
        parse_json(&bytes)?
    } else {
        parse_form(&bytes)?
    };
    if !query.is_empty() {
        // The query string adds parameters the body does not already carry.
        for (k, v) in parse_form(query.as_bytes())? {
            map.entry(k).or_insert(v);
        }
    }
    Ok(Params::new(map))
}
