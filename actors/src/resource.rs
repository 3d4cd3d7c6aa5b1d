//! Helpers every resource's operations share: encoding answers, committing with the common
//! outcomes, and list pages built from stored JSON.

use calmony_protocol::list::ListPage;
use calmony_protocol::{ApiError, ErrorType};
use serde_json::value::RawValue;

use calmony_protocol::ids;
use calmony_protocol::params::Params;

use crate::context::{Reply, RequestContext};
use crate::store::retry::Attempt;
use crate::store::{Commit, Store, Tx};

/// Encode an answer; a failure here is a bug, answered as a bare 500.
pub fn to_json<T: serde::Serialize>(v: &T) -> Result<String, ApiError> {
    serde_json::to_string(v).map_err(|e| {
        let mut err = ApiError::internal("");
        err.message = format!("cannot encode response: {e}");
        err
    })
}

/// Commit; a lost idempotency claim is a 409 for the caller to retry.
pub async fn commit(store: &Store, tx: &Tx) -> Result<Commit, ApiError> {
    commit_numbered(store, tx).await.map(|(c, _)| c)
}

/// [`commit`], with the numbers the commit took (see [`Store::commit_numbered`]).
pub async fn commit_numbered(store: &Store, tx: &Tx) -> Result<(Commit, Vec<String>), ApiError> {
    match store.commit_numbered(tx).await? {
        (Commit::LostClaim, _) => Err(ApiError::new(
            409,
            ErrorType::IdempotencyError,
            "The idempotency key expired while this request ran and another request took it.",
        )
        .with_code("idempotency_key_in_use")),
        other => Ok(other),
    }
}

/// [`commit`] for the change that answers `ctx`'s request, carrying the request's key check
/// if the edge deferred it (see [`crate::context::DeferredKeyCheck`]).
pub async fn commit_for(
    store: &Store,
    ctx: &RequestContext,
    tx: &mut Tx,
) -> Result<Commit, ApiError> {
    ctx.vouch(tx);
    let outcome = commit(store, tx).await;
    ctx.settle(&outcome);
    outcome
}

/// For a retried change ([`crate::store::retry::until_committed`]): the 200 reply `body` when
/// its commit was applied, or [`Attempt::Conflict`] to read again.
pub fn committed(outcome: Commit, body: String) -> Attempt<Reply> {
    match outcome {
        Commit::Done(_) => Attempt::Done(Reply {
            status: 200,
            body,
            stored: true,
        }),
        _ => Attempt::Conflict,
    }
}

/// Commit a change whose answer is `body` (already stored under the request's idempotency key
/// by `tx.respond`): 200 when it landed; a record that moved meanwhile is a lock timeout (the
/// caller made no version checks it could retry on).
pub async fn commit_answer(store: &Store, tx: &Tx, body: String) -> Result<Reply, ApiError> {
    answered(commit(store, tx).await?, body)
}

/// The answer `body` of a change that was committed as `landed` (see [`commit_answer`]).
pub fn answered(landed: Commit, body: String) -> Result<Reply, ApiError> {
    match landed {
        Commit::Done(_) => Ok(Reply {
            status: 200,
            body,
            stored: true,
        }),
        _ => Err(ApiError::lock_timeout()),
    }
}

/// Serialize a list page from stored JSON without re-parsing the objects.
pub fn page_body(url: &str, items: &[String], has_more: bool) -> Result<String, ApiError> {
    let raws: Vec<Box<RawValue>> = items
        .iter()
        .filter_map(|s| RawValue::from_string(s.clone()).ok())
        .collect();
    let page = ListPage {
        object: "list",
        data: raws.iter().map(AsRef::as_ref).collect(),
        has_more,
        url,
    };
    to_json(&page)
}

/// `GET /v1/<objects>/:id` for an object answered exactly as stored (charges, refunds): 404
/// unless an id of this kind exists in the caller's project and mode.
pub async fn retrieve_stored(
    store: &Store,
    ctx: &RequestContext,
    prefix: &str,
    object: &str,
    id: &str,
    mut params: Params,
) -> Result<Reply, ApiError> {
    params.expand()?;
    params.finish()?;
    if !ids::is_valid(prefix, id) {
        return Err(ApiError::no_such(object, id, "id"));
    }
    // Usually read with the key check, in the same round trip.
    ctx.read(store, id)
        .await?
        .map(|f| Reply::ok(f.record.json))
        .ok_or_else(|| ApiError::no_such(object, id, "id"))
}

/// An event carrying a snapshot of `object` (its `data.object`), at `created` (a test clock's
/// time for billing, the wall clock elsewhere).
pub fn event(
    kind: &str,
    object: &impl serde::Serialize,
    scope: &crate::store::Scope,
    request: &calmony_protocol::event::EventRequest,
    created: i64,
) -> calmony_protocol::event::Event {
    calmony_protocol::event::Event::new(
        kind,
        object,
        None,
        created,
        scope.livemode(),
        request.clone(),
    )
}

/// Write an object at `version` with its `internal` field (what the API never shows);
/// answers the object's JSON, the body of the reply.
pub fn write_with_internal(
    tx: &mut Tx,
    scope: &crate::store::Scope,
    id: &str,
    version: u64,
    object: &impl serde::Serialize,
    internal: &impl serde::Serialize,
) -> Result<String, ApiError> {
    let body = to_json(object)?;
    tx.put_with(
        &scope.record(id),
        version,
        &body,
        &[("internal", &to_json(internal)?)],
    );
    Ok(body)
}

/// A stored object with its `internal` field (JSON; the default when absent), by id. An id of
/// the wrong shape, an absent record and (for invoices) a deleted draft are all `no_such`,
/// naming `param`.
pub async fn load_with_internal<T, I>(
    store: &Store,
    scope: &crate::store::Scope,
    (prefix, object, param): (&str, &str, &str),
    id: &str,
) -> Result<(u64, T, I), ApiError>
where
    T: serde::de::DeserializeOwned,
    I: serde::de::DeserializeOwned + Default,
{
    if !ids::is_valid(prefix, id) {
        return Err(ApiError::no_such(object, id, param));
    }
    let key = scope.record(id);
    let (rec, internal) = store
        .get_with(&key, &["internal"])
        .await?
        .filter(|(rec, _)| !rec.json.contains("\"deleted\":true"))
        .ok_or_else(|| ApiError::no_such(object, id, param))?;
    let internal = internal
        .into_iter()
        .next()
        .flatten()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    Ok((rec.version, rec.parse(&key)?, internal))
}

/// Commit a finish step, whose change must land even if its idempotency claim was lost
/// meanwhile (the answer is then not stored; the change still is).
pub async fn commit_finish(store: &Store, tx: &Tx) -> Result<Commit, ApiError> {
    Ok(match store.commit(tx).await? {
        Commit::LostClaim => store.commit(&tx.without_answers()).await?,
        other => other,
    })
}
