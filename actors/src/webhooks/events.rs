//! `/v1/events`: the event log, 30 days of it, newest first; each event's delivery attempts;
//! and resending an event to its endpoints.

use calmony_protocol::event::PREFIX;
use calmony_protocol::list::ListParams;
use calmony_protocol::params::{Field, Params};
use calmony_protocol::payment_intent::CreatedRange;
use calmony_protocol::webhook::ATTEMPT_PREFIX;
use calmony_protocol::{ApiError, ids};
use serde_json::Value;

use super::delivery::Delivery;
use super::{DELIVERIES, Webhooks, endpoints};
use crate::context::{Reply, RequestContext};
use crate::resource::page_body;
use crate::store::event_log::{Place, entry_bound};
use crate::store::{Direction, Scope, Tx, lex_range};

pub(super) fn attempts_index(scope: &Scope, event: &str) -> String {
    scope.key(&format!("event:{event}:attempts"))
}

fn valid_type(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 100
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
}

/// `GET /v1/events`: filter by `type`, `types[]` and `created`.
pub async fn list(
    w: &Webhooks,
    ctx: &RequestContext,
    mut params: Params,
) -> Result<Reply, ApiError> {
    let list = ListParams::take(&mut params, PREFIX)?;
    let created = CreatedRange::take(&mut params)?;
    let one = params.string_max(&["type"], 100)?.into_option();
    let many = match params.string_array(&["types"])? {
        Field::Set(t) => t,
        _ => Vec::new(),
    };
    if !params.boolean(&["delivery_success"])?.is_absent() {
        // Deliveries are per endpoint: see GET /v1/events/:id/attempts.
        return Err(ApiError::invalid_param(
            "parameter_unsupported",
            "delivery_success",
            "Filtering events by delivery_success is not supported; each event's deliveries \
             are at GET /v1/events/:id/attempts.",
        ));
    }
    params.expand()?;
    params.finish()?;
    let scope = &ctx.scope;
    let (lo, hi) = ids::time_bounds(PREFIX, created.gte, created.lte);
    let types: Vec<String> = one.into_iter().chain(many).collect();
    for (i, t) in types.iter().enumerate() {
        if !valid_type(t) {
            return Err(ApiError::invalid_param(
                "parameter_invalid_value",
                &format!("types[{i}]"),
                format!("Invalid event type {t:?}."),
            ));
        }
    }
    let (dir, min, max) = lex_range(&list, lo.as_deref(), hi.as_deref());
    let count = list.limit + 1;
    // Each source is read the same way (limit + 1 from the cursor, within `created`) and the
    // page merged by id (ids sort by creation): for all events, the log and the list of events
    // written before it; for types, each type's list in the log and its list from before.
    let (lmin, lmax) = (
        entry_bound(scope, &min, false),
        entry_bound(scope, &max, true),
    );
    let sources: Vec<(Option<&str>, String)> = if types.is_empty() {
        vec![(None, scope.event_index_before_log())]
    } else {
        types
            .iter()
            .map(|t| (Some(t.as_str()), scope.event_type_index_before_log(t)))
            .collect()
    };
    let mut merged: Vec<(String, String)> = Vec::new();
    for (kind, before) in &sources {
        let store = &w.store;
        merged.extend(
            store
                .log_page(scope, *kind, dir, &lmin, &lmax, count)
                .await?,
        );
        merged.extend(
            store
                .event_index_page(scope, before, dir, &min, &max, count)
                .await?,
        );
    }
    merged.sort_by(|a, b| b.0.cmp(&a.0));
    merged.dedup_by(|a, b| a.0 == b.0);
    let has_more = merged.len() > list.limit;
    let page: Vec<String> = if dir == Direction::Asc {
        let skip = merged.len().saturating_sub(list.limit);
        merged.into_iter().skip(skip).map(|(_, j)| j).collect()
    } else {
        merged
            .into_iter()
            .take(list.limit)
            .map(|(_, j)| j)
            .collect()
    };
    page_body("/v1/events", &page, has_more).map(Reply::ok)
}

/// `GET /v1/events/:id`, with `pending_webhooks` as it is now.
pub async fn retrieve(
    w: &Webhooks,
    ctx: &RequestContext,
    id: &str,
    mut params: Params,
) -> Result<Reply, ApiError> {
    params.expand()?;
    params.finish()?;
    if !ids::is_valid(PREFIX, id) {
        return Err(ApiError::no_such("event", id, "id"));
    }
    let (json, pending) = w
        .store
        .event(&ctx.scope, id)
        .await?
        .ok_or_else(|| ApiError::no_such("event", id, "id"))?;
    let mut event: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
    event["pending_webhooks"] = Value::from(pending);
    Ok(Reply::ok(event.to_string()))
}

/// `GET /v1/events/:id/attempts`.
pub async fn attempts(
    w: &Webhooks,
    ctx: &RequestContext,
    id: &str,
    mut params: Params,
) -> Result<Reply, ApiError> {
    let list = ListParams::take(&mut params, ATTEMPT_PREFIX)?;
    params.finish()?;
    if !ids::is_valid(PREFIX, id) || w.store.event(&ctx.scope, id).await?.is_none() {
        return Err(ApiError::no_such("event", id, "id"));
    }
    let (items, has_more) = w
        .store
        .page(&ctx.scope, &attempts_index(&ctx.scope, id), &list)
        .await?;
    page_body(&format!("/v1/events/{id}/attempts"), &items, has_more).map(Reply::ok)
}

/// `POST /v1/events/:id/resend`: deliver again now, to one endpoint (`webhook_endpoint`) or to
/// every enabled endpoint that wants the event. Works for failed and delivered events alike.
pub async fn resend(
    w: &Webhooks,
    ctx: &RequestContext,
    id: &str,
    mut params: Params,
) -> Result<Reply, ApiError> {
    let only = params
        .string_max(&["webhook_endpoint", "webhookEndpoint"], 100)?
        .into_option();
    params.finish()?;
    let scope = &ctx.scope;
    if !ids::is_valid(PREFIX, id) {
        return Err(ApiError::no_such("event", id, "id"));
    }
    let (json, _) = w
        .store
        .event(scope, id)
        .await?
        .ok_or_else(|| ApiError::no_such("event", id, "id"))?;
    let kind = serde_json::from_str::<Value>(&json)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_string))
        .unwrap_or_default();
    let targets: Vec<String> = match &only {
        Some(we) => {
            let l = endpoints::load(w, scope, we)
                .await?
                .ok_or_else(|| ApiError::no_such("webhook_endpoint", we, "webhook_endpoint"))?;
            if l.endpoint.status != "enabled" {
                return Err(ApiError::invalid_param(
                    "webhook_endpoint_disabled",
                    "webhook_endpoint",
                    "The webhook endpoint is disabled; enable it first.",
                ));
            }
            vec![l.endpoint.id]
        }
        None => endpoints::all(w, scope)
            .await?
            .into_iter()
            .filter(|l| l.endpoint.wants(&kind))
            .map(|l| l.endpoint.id)
            .collect(),
    };
    let (counter, field) = Place::of(scope, id).pending(scope);
    let mut tx = Tx::new();
    for we in &targets {
        let d = Delivery::first(scope, id, we);
        tx.append(DELIVERIES, &[("d", &d.encode())]);
        tx.hincrby(&counter, &field, 1);
    }
    w.store.commit(&tx).await?;
    Ok(Reply::ok(json))
}
