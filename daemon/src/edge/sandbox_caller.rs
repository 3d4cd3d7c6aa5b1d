//! Who calls the sandbox's control routes (see `calmony_sandbox::access`): the operator's
//! bearer token, a project's test secret key (Bearer or Basic, as `/v1` takes it), or nobody.
//! Only the control routes ask, so the simulated gateway's own routes cost nothing more.

use calmony_actors::api_keys::{self, Alongside, Auth};
use calmony_actors::store::KeyRefusal;
use calmony_protocol::{ApiError, Mode};
use calmony_sandbox::{Caller, Sandbox};
use hyper::HeaderMap;

use super::auth;
use crate::state::AppState;

/// The caller of `path`: [`Caller::Anonymous`] for the gateway routes and for a credential
/// that proves nothing; an error when the key store cannot be asked.
pub async fn caller(
    state: &AppState,
    sandbox: &Sandbox,
    path: &str,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    if calmony_sandbox::access::Control::of(path).is_none() {
        return Ok(Caller::Anonymous);
    }
    let Ok(credential) = auth::key_from_header(headers.get("authorization").map(|v| v.as_bytes()))
    else {
        return Ok(Caller::Anonymous);
    };
    if sandbox.is_operator(&credential) {
        return Ok(Caller::Operator);
    }
    let Some(sha) = api_keys::lookup_hash(&credential) else {
        return Ok(Caller::Anonymous);
    };
    let checked = api_keys::authenticate(
        &state.store,
        Some(&sha),
        state.config.api.rate_limit_per_second,
        &Alongside::default(),
    )
    .await
    .map_err(|e| {
        tracing::warn!(error = %e, "cannot check a sandbox caller's key");
        ApiError::from(e)
    })?;
    match checked {
        Auth::Ok { scope, .. } if scope.mode == Mode::Test => Ok(Caller::Project(scope.project)),
        Auth::Refused(KeyRefusal::Limited { .. }) => Err(ApiError::rate_limited()),
        _ => Ok(Caller::Anonymous),
    }
}
