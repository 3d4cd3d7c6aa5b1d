//! The edge side of `Idempotency-Key` (the design is in `calmony_actors::idempotency`).

use calmony_actors::RequestContext;
use calmony_actors::idempotency::{self, Ask, Begin};
use calmony_protocol::{ApiError, ErrorType, Params};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use super::routes::ApiRoute;
use crate::response::{Body, error_response, json_response, reply_response, set};
use crate::state::AppState;

pub fn invalid_key() -> ApiError {
    let mut e = ApiError::new(
        400,
        ErrorType::InvalidRequestError,
        format!(
            "Idempotency-Key must be 1 to {} printable ASCII characters.",
            idempotency::MAX_KEY_LEN
        ),
    )
    .with_code("idempotency_key_invalid");
    e.validation = true;
    e
}

/// A POST's `Idempotency-Key`: `None` without one (and on GET and DELETE, idempotent by
/// definition, where it has no effect), an error unless it is 1 to 255 printable ASCII
/// characters.
pub fn key_of(req: &Request<Incoming>) -> Option<Result<String, ApiError>> {
    if req.method() != Method::POST {
        return None;
    }
    let header = req.headers().get("idempotency-key")?;
    Some(
        header
            .to_str()
            .ok()
            .filter(|k| idempotency::valid_key(k))
            .map(str::to_string)
            .ok_or_else(invalid_key),
    )
}

/// The claim of `key` the key check makes for this request.
pub fn ask(state: &AppState, key: &str, path: &str, params: &Params, request_id: &str) -> Ask {
    Ask {
        key: key.to_string(),
        owner: request_id.to_string(),
        fingerprint: idempotency::fingerprint("POST", path, &params.canonical()),
        endpoint: path.to_string(),
        lock_ms: state.config.api.idempotency_lock_seconds * 1000,
    }
}

/// Run a POST under its idempotency key, as the key check's claim of it answered (`begin`):
/// run, replay or refuse, then keep or release.
pub async fn run(
    state: &AppState,
    ctx: &mut RequestContext,
    key: &str,
    path: &str,
    route: ApiRoute,
    params: Params,
    begin: Begin,
) -> Result<Response<Body>, ApiError> {
    let resp = match begin {
        Begin::Proceed => {
            let claim = idempotency::claim_for(&ctx.scope, key, &ctx.request_id);
            ctx.idempotency = Some(claim.clone());
            let result = crate::api::dispatch(state, ctx, route, params).await;
            return Ok(settled(state, ctx, &claim, result).await);
        }
        Begin::Running => {
            let e = ApiError::new(
                409,
                ErrorType::IdempotencyError,
                format!(
                    "There is currently another in-progress request using this Idempotent Key \
                     (that probably means you submitted twice, and the other request is still \
                     going through): {key}. Please try again later."
                ),
            )
            .with_code("idempotency_key_in_use");
            error_response(&e, &ctx.request_id)
        }
        Begin::Mismatch => error_response(
            &ApiError::new(
                400,
                ErrorType::IdempotencyError,
                format!(
                    "Keys for idempotent requests can only be used with the same parameters \
                     they were first used with. Try using a key other than '{key}' if you meant \
                     to execute a different request."
                ),
            ),
            &ctx.request_id,
        ),
        Begin::OtherEndpoint(first) => error_response(
            &ApiError::new(
                400,
                ErrorType::IdempotencyError,
                format!(
                    "Keys for idempotent requests can only be used for the same endpoint they \
                     were first used for ('{path}' vs '{first}'). Try using a key other than \
                     '{key}' if you meant to execute a different request."
                ),
            ),
            &ctx.request_id,
        ),
        Begin::Replay {
            status,
            body,
            original_request,
        } => {
            metrics::counter!("calmony_idempotent_replays_total").increment(1);
            let mut resp = json_response(status, body);
            set(&mut resp, "idempotent-replayed", "true");
            set(&mut resp, "original-request", &original_request);
            if status >= 400 {
                set(&mut resp, "stripe-should-retry", "false");
            }
            resp
        }
    };
    Ok(with_key(resp, key, &ctx.request_id))
}

/// The answer of a request that ran holding `claim` (made by its key check, or by its own
/// commit when the key check was deferred to it), kept or released.
pub async fn settled(
    state: &AppState,
    ctx: &RequestContext,
    claim: &idempotency::Claim,
    result: Result<calmony_actors::Reply, ApiError>,
) -> Response<Body> {
    let resp = settle(state, ctx, claim, result).await;
    with_key(resp, &claim.key, &ctx.request_id)
}

/// An idempotent answer's headers: the key, and the request that first answered it.
fn with_key(mut resp: Response<Body>, key: &str, request_id: &str) -> Response<Body> {
    set(&mut resp, "idempotency-key", key);
    if resp.headers().get("original-request").is_none() {
        set(&mut resp, "original-request", request_id);
    }
    resp
}

/// Keep the answer under the key, or release the key so a fixed request may reuse it.
async fn settle(
    state: &AppState,
    ctx: &RequestContext,
    claim: &idempotency::Claim,
    result: Result<calmony_actors::Reply, ApiError>,
) -> Response<Body> {
    let ttl = ctx.idempotency_ttl_secs;
    match result {
        Ok(reply) if reply.stored => reply_response(reply),
        Ok(reply) => {
            if let Err(e) =
                idempotency::finish(&state.store, claim, reply.status, &reply.body, ttl).await
            {
                tracing::warn!(error = %e, "could not store the idempotent answer");
            }
            reply_response(reply)
        }
        Err(e) if e.validation || e.status >= 500 || e.status == 409 || e.status == 429 => {
            let lock_ms = state.config.api.idempotency_lock_seconds * 1000;
            if let Err(err) = idempotency::release(&state.store, claim, lock_ms).await {
                tracing::warn!(error = %err, "could not release the idempotency key");
            }
            error_response(&e, &ctx.request_id)
        }
        Err(e) => {
            let resp = error_response(&e, &ctx.request_id);
            if let Err(err) =
                idempotency::finish(&state.store, claim, e.status, &e.body().to_string(), ttl).await
            {
                tracing::warn!(error = %err, "could not store the idempotent answer");
            }
            resp
        }
    }
}
