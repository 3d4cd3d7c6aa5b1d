//! Test clocks (`/v1/test_helpers/test_clocks`, test mode only): a frozen time that customers
//! created with it live at. Advancing it runs the SubscriptionScheduler over its subscriptions
//! at once, so renewals, trials and dunning over months play out in one request.

use calmony_protocol::billing::{TEST_CLOCK_PREFIX, TestClock};
use calmony_protocol::list::ListParams;
use calmony_protocol::params::Params;
use calmony_protocol::{ApiError, ids};

use super::catalog;
use super::scheduler;
use super::settings::Billing;
use crate::context::{Reply, RequestContext};
use crate::resource::{commit, commit_answer, page_body, to_json};
use crate::store::{Commit, Scope, Tx};

fn test_mode_only(ctx: &RequestContext) -> Result<(), ApiError> {
    if ctx.scope.livemode() {
        return Err(ApiError::new(
            400,
            calmony_protocol::ErrorType::InvalidRequestError,
            "Test clocks exist in test mode only: use a sk_test_ key.",
        )
        .with_code("test_mode_only"));
    }
    Ok(())
}

async fn load(b: &Billing, scope: &Scope, id: &str) -> Result<(u64, TestClock), ApiError> {
    catalog::load(
        &b.store,
        scope,
        TEST_CLOCK_PREFIX,
        "test_clock",
        id,
        "test_clock",
    )
    .await
}

pub async fn create(b: &Billing, ctx: &RequestContext, mut p: Params) -> Result<Reply, ApiError> {
    test_mode_only(ctx)?;
    let frozen = p
        .integer(&["frozen_time", "frozenTime"], 0, 10_000_000_000)?
        .into_option()
        .ok_or_else(|| ApiError::missing_param("frozen_time"))?;
    let clock = TestClock {
        id: ids::new_id(TEST_CLOCK_PREFIX),
        object: "test_helpers.test_clock".into(),
        created: crate::clock::now(),
        deletes_after: frozen + 30 * 86_400,
        frozen_time: frozen,
        livemode: false,
        name: p.string_max(&["name"], 300)?.into_option(),
        status: "ready".into(),
    };
    p.expand()?;
    p.finish()?;
    let body = to_json(&clock)?;
    let mut tx = Tx::new();
    tx.expect_version(&ctx.scope.record(&clock.id), 0)
        .put(&ctx.scope.record(&clock.id), 1, &body)
        .index(&ctx.scope.key("test_clocks"), &clock.id)
        .respond(ctx, 200, &body);
    commit_answer(&b.store, &tx, body).await
}

pub async fn retrieve(
    b: &Billing,
    ctx: &RequestContext,
    id: &str,
    mut p: Params,
) -> Result<Reply, ApiError> {
    test_mode_only(ctx)?;
    p.expand()?;
    p.finish()?;
    let (_, c) = load(b, &ctx.scope, id).await?;
    Ok(Reply::ok(to_json(&c)?))
}

pub async fn list(b: &Billing, ctx: &RequestContext, mut p: Params) -> Result<Reply, ApiError> {
    test_mode_only(ctx)?;
    let list = ListParams::take(&mut p, TEST_CLOCK_PREFIX)?;
    p.finish()?;
    let (items, more) = b
        .store
        .page(&ctx.scope, &ctx.scope.key("test_clocks"), &list)
        .await?;
    page_body("/v1/test_helpers/test_clocks", &items, more).map(Reply::ok)
}

pub async fn delete(
    b: &Billing,
    ctx: &RequestContext,
    id: &str,
    p: Params,
) -> Result<Reply, ApiError> {
    test_mode_only(ctx)?;
    p.finish()?;
    let (v, _) = load(b, &ctx.scope, id).await?;
    let body = serde_json::json!({"id": id, "object": "test_helpers.test_clock", "deleted": true})
        .to_string();
    let mut tx = Tx::new();
    tx.expect_version(&ctx.scope.record(id), v)
        .put(&ctx.scope.record(id), v + 1, &body)
        .unindex(&ctx.scope.key("test_clocks"), id)
        .respond(ctx, 200, &body);
    commit_answer(&b.store, &tx, body).await
}

/// `POST /v1/test_helpers/test_clocks/:id/advance`: move the frozen time forward and run
/// everything that came due, before answering (the clock is `ready` in the answer).
pub async fn advance(
    b: &Billing,
    ctx: &RequestContext,
    id: &str,
    mut p: Params,
) -> Result<Reply, ApiError> {
    test_mode_only(ctx)?;
    let to = p
        .integer(&["frozen_time", "frozenTime"], 0, 10_000_000_000)?
        .into_option()
        .ok_or_else(|| ApiError::missing_param("frozen_time"))?;
    p.expand()?;
    p.finish()?;
    let scope = &ctx.scope;
    let (v, mut clock) = load(b, scope, id).await?;
    if to < clock.frozen_time {
        return Err(ApiError::invalid_param(
            "parameter_invalid_integer",
            "frozen_time",
            "A test clock only moves forward: frozen_time must be after its current time.",
        ));
    }
    clock.frozen_time = to;
    clock.deletes_after = to + 30 * 86_400;
    let body = to_json(&clock)?;
    let mut tx = Tx::new();
    tx.expect_version(&scope.record(id), v)
        .put(&scope.record(id), v + 1, &body);
    if !matches!(commit(&b.store, &tx).await?, Commit::Done(_)) {
        return Err(ApiError::lock_timeout());
    }
    scheduler::run_clock(b, scope, id, to).await?;
    Ok(Reply::ok(body))
}
