//! `/v1/webhook_endpoints`: create (the `whsec_` secret is answered once), retrieve, update,
//! delete, list, roll the secret (the old one keeps signing for the overlap), and each
//! endpoint's delivery attempts.

use calmony_protocol::list::ListParams;
use calmony_protocol::params::{Field, Params};
use calmony_protocol::webhook::{
    ATTEMPT_PREFIX, ENDPOINT_PREFIX, EndpointParams, MAX_ENDPOINTS, WebhookEndpoint,
};
use calmony_protocol::{ApiError, ids};
use redis::AsyncCommands;

pub use super::signing::{Loaded, SigningSecret};

use super::Webhooks;
use crate::clock;
use crate::context::{Reply, RequestContext};
use crate::resource::{commit, commit_answer, committed, page_body, to_json};
use crate::sealing;
use crate::store::retry::until_committed;
use crate::store::{Scope, StoreError, Tx};

pub(super) fn index(scope: &Scope) -> String {
    scope.key("webhook_endpoints")
}

pub(super) fn attempts_index(scope: &Scope, endpoint: &str) -> String {
    scope.key(&format!("webhook_endpoint:{endpoint}:attempts"))
}

fn new_secret() -> String {
    format!("whsec_{}", ids::random_alnum(32))
}

pub(super) async fn load(
    w: &Webhooks,
    scope: &Scope,
    id: &str,
) -> Result<Option<Loaded>, ApiError> {
    if !ids::is_valid(ENDPOINT_PREFIX, id) {
        return Ok(None);
    }
    let key = scope.record(id);
    let Some((rec, internal)) = w
        .store
        .get_with(&key, &["secrets", "failing_since"])
        .await?
    else {
        return Ok(None);
    };
    if rec.json.contains("\"deleted\":true") {
        return Ok(None);
    }
    let mut it = internal.into_iter();
    let secrets = match it.next().flatten() {
        Some(stored) => open_secrets(&key, &stored)?,
        None => Vec::new(),
    };
    let failing_since = it.next().flatten().and_then(|s| s.parse().ok());
    Ok(Some(Loaded {
        version: rec.version,
        endpoint: rec.parse(&key)?,
        secrets,
        failing_since,
    }))
}

async fn must_load(w: &Webhooks, scope: &Scope, id: &str) -> Result<Loaded, ApiError> {
    load(w, scope, id)
        .await?
        .ok_or_else(|| ApiError::no_such("webhook_endpoint", id, "id"))
}

/// Every endpoint of a scope (at most 16).
pub(super) async fn all(w: &Webhooks, scope: &Scope) -> Result<Vec<Loaded>, ApiError> {
    let mut c = w.store.conn();
    let ids: Vec<String> = w
        .store
        .run(c.zrange(index(scope), 0, (MAX_ENDPOINTS * 2) as isize))
        .await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(l) = load(w, scope, &id).await? {
            out.push(l);
        }
    }
    Ok(out)
}

/// An endpoint's signing secrets as stored: sealed (see [`crate::sealing`]), or the clear JSON
/// an older version wrote, read as it was until the next write or start re-seals it.
fn open_secrets(record: &str, stored: &str) -> Result<Vec<SigningSecret>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: record.to_string(),
        reason,
    };
    let clear = if sealing::is_sealed(stored) {
        sealing::keyring()
            .and_then(|ring| ring.open(stored, record))
            .map_err(|e| corrupt(format!("signing secrets: {e}")))?
    } else {
        stored.as_bytes().to_vec()
    };
    serde_json::from_slice(&clear).map_err(|e| corrupt(format!("signing secrets: {e}")))
}

/// Secrets sealed for the endpoint record `record`.
fn seal_secrets(record: &str, secrets: &[SigningSecret]) -> Result<String, StoreError> {
    let clear = serde_json::to_vec(secrets).map_err(|e| StoreError::Corrupt {
        key: record.to_string(),
        reason: e.to_string(),
    })?;
    let ring = sealing::keyring().map_err(|e| StoreError::Corrupt {
        key: record.to_string(),
        reason: e.to_string(),
    })?;
    Ok(ring.seal(&clear, record))
}

fn write(tx: &mut Tx, scope: &Scope, version: u64, l: &Loaded) -> Result<String, ApiError> {
    let mut public = l.endpoint.clone();
    public.secret = None;
    let body = to_json(&public)?;
    let record = scope.record(&l.endpoint.id);
    let secrets = seal_secrets(&record, &l.secrets)?;
    tx.put_with(&record, version, &body, &[("secrets", &secrets)]);
    Ok(body)
}

/// Store an answer that shows a signing secret under the request's idempotency key sealed, so
/// a replay shows the same secret and Redis never holds it in clear.
fn respond_sealed(tx: &mut Tx, ctx: &RequestContext, body: &str) -> Result<(), ApiError> {
    if let Some(claim) = &ctx.idempotency {
        let ring = sealing::keyring().map_err(|e| StoreError::Corrupt {
            key: claim.redis_key.clone(),
            reason: e.to_string(),
        })?;
        tx.respond(ctx, 200, &ring.seal(body.as_bytes(), &claim.redis_key));
    }
    Ok(())
}

/// Replace an endpoint's stored secrets only if they are still what was read.
static RESEAL: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('HGET', KEYS[1], 'secrets') == ARGV[1] then \
         redis.call('HSET', KEYS[1], 'secrets', ARGV[2]) return 1 end return 0",
    )
});

/// Re-seal every endpoint's secrets that are in clear (an older version's) or under a key
/// older than the current one, each only if unchanged since read. Run at start; answers how
/// many were re-sealed.
pub async fn reseal_all(store: &crate::store::Store) -> Result<usize, StoreError> {
    let ring = sealing::keyring().map_err(|e| StoreError::Corrupt {
        key: "secrets".into(),
        reason: e.to_string(),
    })?;
    let current = ring.current();
    let mut c = store.conn();
    let indexes: Vec<String> = {
        let mut out = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = store
                .run(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg("cp:{*}:*:webhook_endpoints")
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut c),
                )
                .await?;
            out.extend(keys);
            if next == 0 {
                break out;
            }
            cursor = next;
        }
    };
    let mut resealed = 0;
    for index in indexes {
        let Some((scope, _)) = Scope::of_key(&index) else {
            continue;
        };
        let ids: Vec<String> = store.run(c.zrange(&index, 0, -1)).await?;
        for id in ids {
            let record = scope.record(&id);
            let stored: Option<String> = store.run(c.hget(&record, "secrets")).await?;
            let Some(stored) = stored else { continue };
            if sealing::key_id(&stored) == Some(current.as_str()) {
                continue;
            }
            let secrets = open_secrets(&record, &stored)?;
            let sealed = seal_secrets(&record, &secrets)?;
            let swapped: i64 = store
                .run(
                    RESEAL
                        .key(&record)
                        .arg(&stored)
                        .arg(&sealed)
                        .invoke_async(&mut c),
                )
                .await?;
            resealed += swapped as usize;
        }
    }
    Ok(resealed)
}

/// `POST /v1/webhook_endpoints`.
pub async fn create(w: &Webhooks, ctx: &RequestContext, params: Params) -> Result<Reply, ApiError> {
    let scope = &ctx.scope;
    let p = EndpointParams::take_create(params, scope.livemode(), w.reach(scope.livemode()))?;
    let mut c = w.store.conn();
    let count: usize = w.store.run(c.zcard(index(scope))).await?;
    if count >= MAX_ENDPOINTS {
        return Err(ApiError::invalid_param(
            "webhook_endpoints_limit",
            "url",
            format!("A project can have at most {MAX_ENDPOINTS} webhook endpoints per mode."),
        ));
    }
    let events = p.enabled_events.clone().unwrap_or_default();
    let mut endpoint = WebhookEndpoint {
        id: ids::new_id(ENDPOINT_PREFIX),
        object: "webhook_endpoint".into(),
        api_version: Some(calmony_protocol::API_VERSION.into()),
        application: None,
        created: clock::now(),
        description: p.description.clone().into_option(),
        enabled_events: events.clone(),
        livemode: scope.livemode(),
        metadata: Default::default(),
        secret: None,
        status: "enabled".into(),
        url: p.url.clone().unwrap_or_default(),
        enabled_events_camel: events,
    };
    if let Some(m) = &p.metadata {
        m.apply(&mut endpoint.metadata, "metadata")?;
    }
    let secret = new_secret();
    let loaded = Loaded {
        version: 0,
        endpoint: endpoint.clone(),
        secrets: vec![SigningSecret {
            secret: secret.clone(),
            expires_at: 0,
        }],
        failing_since: None,
    };
    let mut tx = Tx::new();
    let key = scope.record(&endpoint.id);
    tx.expect_version(&key, 0);
    write(&mut tx, scope, 1, &loaded)?;
    tx.index(&index(scope), &endpoint.id);
    // The secret is answered once, here; the stored answer under an idempotency key holds it
    // too (sealed), so a retried create shows the same secret rather than minting another.
    endpoint.secret = Some(secret);
    let body = to_json(&endpoint)?;
    respond_sealed(&mut tx, ctx, &body)?;
    commit_answer(&w.store, &tx, body).await
}

/// `GET /v1/webhook_endpoints/:id`.
pub async fn retrieve(
    w: &Webhooks,
    ctx: &RequestContext,
    id: &str,
    mut params: Params,
) -> Result<Reply, ApiError> {
    params.expand()?;
    params.finish()?;
    let l = must_load(w, &ctx.scope, id).await?;
    Ok(Reply::ok(to_json(&l.endpoint)?))
}

/// `POST /v1/webhook_endpoints/:id`: url, enabled_events, description, metadata, `disabled`.
pub async fn update(
    w: &Webhooks,
    ctx: &RequestContext,
    id: &str,
    params: Params,
) -> Result<Reply, ApiError> {
    let scope = &ctx.scope;
    let p = EndpointParams::take_update(params, scope.livemode(), w.reach(scope.livemode()))?;
    let p = &p;
    until_committed(
        || async move {
            let mut l = must_load(w, scope, id).await?;
            let e = &mut l.endpoint;
            if let Some(u) = &p.url {
                e.url = u.clone();
            }
            if let Some(ev) = &p.enabled_events {
                e.enabled_events = ev.clone();
                e.enabled_events_camel = ev.clone();
            }
            match &p.description {
                Field::Set(d) => e.description = Some(d.clone()),
                Field::Unset => e.description = None,
                Field::Absent => {}
            }
            if let Some(m) = &p.metadata {
                m.apply(&mut e.metadata, "metadata")?;
            }
            if let Some(d) = p.disabled {
                e.status = if d {
                    "disabled".into()
                } else {
                    "enabled".into()
                };
            }
            let mut tx = Tx::new();
            tx.expect_version(&scope.record(id), l.version);
            let body = write(&mut tx, scope, l.version + 1, &l)?;
            if p.disabled == Some(false) {
                // Re-enabled: the failure clock starts again.
                tx.hdel(&scope.record(id), "failing_since");
            }
            tx.respond(ctx, 200, &body);
            Ok(committed(commit(&w.store, &tx).await?, body))
        },
        ApiError::lock_timeout,
    )
    .await
}

/// `POST /v1/webhook_endpoints/:id/roll_secret`: a new secret, answered once; the current one
/// keeps signing for `expires_in` hours (default `webhooks.secret_overlap_hours`, 0 = now).
pub async fn roll_secret(
    w: &Webhooks,
    ctx: &RequestContext,
    id: &str,
    mut params: Params,
) -> Result<Reply, ApiError> {
    let overlap = params
        .integer(&["expires_in", "expiresIn"], 0, 24 * 7)?
        .into_option()
        .map_or(w.secret_overlap_secs, |h| h * 3600);
    params.expand()?;
    params.finish()?;
    let scope = &ctx.scope;
    until_committed(
        || async move {
            let mut l = must_load(w, scope, id).await?;
            let now = clock::now();
            for s in &mut l.secrets {
                if s.expires_at == 0 || s.expires_at > now + overlap {
                    s.expires_at = now + overlap;
                }
            }
            l.secrets.retain(|s| s.expires_at > now);
            let secret = new_secret();
            l.secrets.push(SigningSecret {
                secret: secret.clone(),
                expires_at: 0,
            });
            let mut tx = Tx::new();
            tx.expect_version(&scope.record(id), l.version);
            write(&mut tx, scope, l.version + 1, &l)?;
            let mut answer = l.endpoint.clone();
            answer.secret = Some(secret);
            let body = to_json(&answer)?;
            respond_sealed(&mut tx, ctx, &body)?;
            Ok(committed(commit(&w.store, &tx).await?, body))
        },
        ApiError::lock_timeout,
    )
    .await
}

/// `DELETE /v1/webhook_endpoints/:id`: pending retries to it are dropped when they come due.
pub async fn delete(
    w: &Webhooks,
    ctx: &RequestContext,
    id: &str,
    params: Params,
) -> Result<Reply, ApiError> {
    params.finish()?;
    let scope = &ctx.scope;
    let l = must_load(w, scope, id).await?;
    let body =
        serde_json::json!({"id": id, "object": "webhook_endpoint", "deleted": true}).to_string();
    let mut tx = Tx::new();
    tx.expect_version(&scope.record(id), l.version)
        .put(&scope.record(id), l.version + 1, &body)
        .unindex(&index(scope), id)
        .respond(ctx, 200, &body);
    commit_answer(&w.store, &tx, body).await
}

/// `GET /v1/webhook_endpoints`.
pub async fn list(
    w: &Webhooks,
    ctx: &RequestContext,
    mut params: Params,
) -> Result<Reply, ApiError> {
    let list = ListParams::take(&mut params, ENDPOINT_PREFIX)?;
    params.expand()?;
    params.finish()?;
    let (items, has_more) = w.store.page(&ctx.scope, &index(&ctx.scope), &list).await?;
    page_body("/v1/webhook_endpoints", &items, has_more).map(Reply::ok)
}

/// `GET /v1/webhook_endpoints/:id/attempts`: every delivery attempt to it, newest first.
pub async fn attempts(
    w: &Webhooks,
    ctx: &RequestContext,
    id: &str,
    mut params: Params,
) -> Result<Reply, ApiError> {
    let list = ListParams::take(&mut params, ATTEMPT_PREFIX)?;
    params.finish()?;
    if !ids::is_valid(ENDPOINT_PREFIX, id) || w.store.get(&ctx.scope.record(id)).await?.is_none() {
        return Err(ApiError::no_such("webhook_endpoint", id, "id"));
    }
    let (items, has_more) = w
        .store
        .page(&ctx.scope, &attempts_index(&ctx.scope, id), &list)
        .await?;
    page_body(
        &format!("/v1/webhook_endpoints/{id}/attempts"),
        &items,
        has_more,
    )
    .map(Reply::ok)
}
