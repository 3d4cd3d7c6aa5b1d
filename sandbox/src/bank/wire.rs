//! How the sandbox bank answers: JSON signed with the bank's key (`x-jws-signature` over the
//! exact body bytes), an `x-fapi-interaction-id` on every answer (the caller's, echoed, or a
//! new one), and OBErrorResponse1 bodies for refusals.

use bytes::Bytes;
use calmony_protocol::open_banking::{ErrorResponse, headers, jws, uuid_v4};
use http_body_util::Full;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::setup::Keys;
use crate::reply::Reply;

/// The caller's interaction id when it sent a sane one, else a new UUID.
pub fn interaction_id(request: &HeaderMap) -> String {
    request
        .get(headers::INTERACTION_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .map_or_else(uuid_v4, str::to_owned)
}

fn base(status: StatusCode, content_type: &'static str, body: Bytes, interaction: &str) -> Reply {
    let mut reply = Response::new(Full::new(body));
    *reply.status_mut() = status;
    let h = reply.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(interaction) {
        h.insert(headers::INTERACTION_ID, v);
    }
    reply
}

/// `value` as JSON, signed by the bank when its keys loaded.
pub fn signed<T: Serialize>(
    status: StatusCode,
    value: &T,
    keys: Option<&Keys>,
    interaction: &str,
) -> Reply {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let signature = keys.map(|k| jws::sign_detached(&body, &k.bank));
    let mut reply = base(status, "application/json", Bytes::from(body), interaction);
    if let Some(sig) = signature.and_then(|s| HeaderValue::from_str(&s).ok()) {
        reply.headers_mut().insert(headers::JWS_SIGNATURE, sig);
    }
    reply
}

/// An OBErrorResponse1 with one error.
pub fn ob_error(
    status: StatusCode,
    error_code: &str,
    message: &str,
    path: Option<&str>,
    keys: Option<&Keys>,
    interaction: &str,
) -> Reply {
    let code = format!(
        "{} {}",
        status.as_u16(),
        status
            .canonical_reason()
            .unwrap_or("Error")
            .replace(' ', "")
    );
    let mut body = ErrorResponse::one(&code, error_code, message, path);
    body.id = Some(uuid_v4());
    signed(status, &body, keys, interaction)
}

/// A 401 with no body: a missing, unknown or expired token.
pub fn unauthorized(interaction: &str) -> Reply {
    let mut reply = base(
        StatusCode::UNAUTHORIZED,
        "application/json",
        Bytes::new(),
        interaction,
    );
    reply.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"calmony-sandbox-bank\""),
    );
    reply
}

/// An OAuth error from the token endpoint (`invalid_client`, `invalid_grant`, ...).
pub fn oauth_error(status: StatusCode, error: &str, description: &str, interaction: &str) -> Reply {
    let body = serde_json::json!({ "error": error, "error_description": description });
    base(
        status,
        "application/json",
        Bytes::from(body.to_string()),
        interaction,
    )
}

/// A 303 to `location` (the browser's way back to the TPP).
pub fn see_other(location: &str) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::new()));
    *reply.status_mut() = StatusCode::SEE_OTHER;
    reply
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(location) {
        reply.headers_mut().insert(LOCATION, v);
    }
    reply
}
