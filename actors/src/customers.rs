//! Customers: create, retrieve, update, delete, list. Each change is one atomic commit that
//! also appends its event (`customer.created`, `.updated`, `.deleted`) and, when the request
//! carried an idempotency key, stores the answer.

use calmony_protocol::customer::{self, Customer, CustomerChanges};
use calmony_protocol::event::Event;
use calmony_protocol::list::ListParams;
use calmony_protocol::params::Params;
use calmony_protocol::{ApiError, ids};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::clock;
use crate::context::{Reply, RequestContext};
use crate::resource::{commit, commit_answer, committed, page_body, to_json};
use crate::store::retry::until_committed;
use crate::store::{Scope, Store, Tx};

fn index(scope: &Scope) -> String {
    scope.key("customers")
}

/// The per-email index; the address is hashed so client text never becomes a key name.
fn email_index(scope: &Scope, email: &str) -> String {
    let digest = hex::encode(Sha256::digest(email.to_lowercase().as_bytes()));
    scope.key(&format!("customers:email:{}", &digest[..32]))
}

fn not_found(id: &str) -> ApiError {
    ApiError::no_such("customer", id, "id")
}

/// The customer's record, or 404 when absent, deleted, or not this project's and mode's.
async fn load(store: &Store, ctx: &RequestContext, id: &str) -> Result<(u64, Customer), ApiError> {
    if !ids::is_valid(customer::PREFIX, id) {
        return Err(not_found(id));
    }
    let key = ctx.scope.record(id);
    let rec = store.get(&key).await?.ok_or_else(|| not_found(id))?;
    if is_deleted(&rec.json) {
        return Err(not_found(id));
    }
    Ok((rec.version, rec.parse(&key)?))
}

fn is_deleted(json: &str) -> bool {
    serde_json::from_str::<Value>(json)
        .ok()
        .and_then(|v| v.get("deleted").and_then(Value::as_bool))
        .unwrap_or(false)
}

/// Create a customer (`customer.created`).
pub async fn create(
    store: &Store,
    ctx: &RequestContext,
    params: Params,
) -> Result<Reply, ApiError> {
    let changes = CustomerChanges::take(params)?;
    let mut created = clock::now();
    if let Some(c) = &changes.test_clock {
        if ctx.scope.livemode() {
            return Err(ApiError::invalid_param(
                "test_mode_only",
                "test_clock",
                "Test clocks exist in test mode only.",
            ));
        }
        created = crate::billing::customer_time::frozen_time(store, &ctx.scope, c)
            .await?
            .ok_or_else(|| {
                ApiError::invalid_param(
                    "resource_missing",
                    "test_clock",
                    format!("No such test clock: '{c}'"),
                )
            })?;
    }
    let c = changes.create(ids::new_id(customer::PREFIX), created, ctx.scope.livemode())?;
    let body = to_json(&c)?;
    let event = Event::new(
        "customer.created",
        &c,
        None,
        created,
        ctx.scope.livemode(),
        ctx.event_request(),
    );
    let mut tx = Tx::new();
    stage_new(&mut tx, &ctx.scope, &c, &body, &event);
    tx.respond(ctx, 200, &body);
    commit_answer(store, &tx, body).await
}

/// Stage a new customer in `tx`: its record (`body`, its JSON), the list, the email index and
/// `customer.created`. Every path that makes a customer (the API, a checkout session) goes
/// through here, so each lookup (`GET /v1/customers?email=`) finds it whichever made it.
pub fn stage_new(tx: &mut Tx, scope: &Scope, c: &Customer, body: &str, event: &Event) {
    let key = scope.record(&c.id);
    tx.expect_version(&key, 0)
        .put(&key, 1, body)
        .index(&index(scope), &c.id);
    if let Some(email) = &c.email {
        tx.index(&email_index(scope, email), &c.id);
    }
    tx.event(scope, event);
}

/// Retrieve a customer. A deleted one answers `{id, object, deleted: true}`, as Stripe's does.
pub async fn retrieve(
    store: &Store,
    ctx: &RequestContext,
    id: &str,
    params: Params,
) -> Result<Reply, ApiError> {
    let mut params = params;
    params.expand()?;
    params.finish()?;
    if !ids::is_valid(customer::PREFIX, id) {
        return Err(not_found(id));
    }
    let rec = store
        .get(&ctx.scope.record(id))
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(Reply::ok(rec.json))
}

/// Update a customer (`customer.updated` with `previous_attributes`). Metadata is merged.
pub async fn update(
    store: &Store,
    ctx: &RequestContext,
    id: &str,
    params: Params,
) -> Result<Reply, ApiError> {
    let changes = CustomerChanges::take(params)?;
    if changes.test_clock.is_some() {
        return Err(ApiError::invalid_param(
            "parameter_invalid",
            "test_clock",
            "A customer's test clock is set when the customer is created.",
        ));
    }
    let changes = &changes;
    until_committed(
        || async move {
            let (version, mut c) = load(store, ctx, id).await?;
            let old_email = c.email.clone();
            let previous = changes.clone().apply(&mut c)?;
            let body = to_json(&c)?;
            let key = ctx.scope.record(id);
            let mut tx = Tx::new();
            tx.expect_version(&key, version)
                .put(&key, version + 1, &body);
            if old_email != c.email {
                if let Some(e) = &old_email {
                    tx.unindex(&email_index(&ctx.scope, e), id);
                }
                if let Some(e) = &c.email {
                    tx.index(&email_index(&ctx.scope, e), id);
                }
            }
            if !previous.is_empty() {
                let event = Event::new(
                    "customer.updated",
                    &c,
                    Some(Value::Object(previous)),
                    clock::now(),
                    ctx.scope.livemode(),
                    ctx.event_request(),
                );
                tx.event(&ctx.scope, &event);
            }
            tx.respond(ctx, 200, &body);
            Ok(committed(commit(store, &tx).await?, body))
        },
        ApiError::lock_timeout,
    )
    .await
}

/// Delete a customer (`customer.deleted`): the record becomes a tombstone and leaves the lists.
pub async fn delete(
    store: &Store,
    ctx: &RequestContext,
    id: &str,
    params: Params,
) -> Result<Reply, ApiError> {
    params.finish()?;
    until_committed(
        || async move {
            let (version, c) = load(store, ctx, id).await?;
            let tombstone = serde_json::json!({"id": id, "object": "customer", "deleted": true});
            let body = tombstone.to_string();
            let key = ctx.scope.record(id);
            let mut tx = Tx::new();
            tx.expect_version(&key, version)
                .put(&key, version + 1, &body)
                .unindex(&index(&ctx.scope), id);
            if let Some(e) = &c.email {
                tx.unindex(&email_index(&ctx.scope, e), id);
            }
            let event = Event::new(
                "customer.deleted",
                &c,
                None,
                clock::now(),
                ctx.scope.livemode(),
                ctx.event_request(),
            );
            tx.event(&ctx.scope, &event).respond(ctx, 200, &body);
            Ok(committed(commit(store, &tx).await?, body))
        },
        ApiError::lock_timeout,
    )
    .await
}

/// List customers, newest first, optionally only those with an email address.
pub async fn list(store: &Store, ctx: &RequestContext, params: Params) -> Result<Reply, ApiError> {
    let mut params = params;
    let list = ListParams::take(&mut params, customer::PREFIX)?;
    let email = params.string_max(&["email"], 512)?.into_option();
    params.expand()?;
    params.finish()?;
    let index = match &email {
        Some(e) => email_index(&ctx.scope, e),
        None => index(&ctx.scope),
    };
    let (items, has_more) = store.page(&ctx.scope, &index, &list).await?;
    page_body("/v1/customers", &items, has_more).map(Reply::ok)
}
