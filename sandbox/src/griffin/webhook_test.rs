//! The webhook's test action (`/v0/webhooks/{wh}/actions/test`): `POST` sends one
//! `test-event` in the background (201; 422 when inactive; 409 while one is in flight), `GET`
//! reports `webhook-request-status` and, once `complete`, the HTTP status or Griffin's error
//! code ([`super::decide::test_outcome`]).

use calmony_protocol::griffin::{WebhookRequestStatus, WebhookTest};
use hyper::StatusCode;

use super::ctx::Ctx;
use super::{delivery, store, webhooks, wire};
use crate::error::SandboxError;
use crate::keys;
use crate::reply::Reply;

/// `POST /v0/webhooks/{wh}/actions/test` → 201 and a `test-event` sent once in the
/// background; 422 when the webhook is inactive, 409 while a test is in flight.
pub async fn start(ctx: &Ctx<'_>, id: &str) -> Result<Reply, SandboxError> {
    let Some(record) = webhooks::named(ctx, id).await? else {
        return Ok(wire::not_found());
    };
    if !record.active {
        return Ok(wire::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Webhook inactive",
            "activate the webhook before testing it",
            None,
        ));
    }
    if !store::first_use(&ctx.gw.store, keys::GRIFFIN_WEBHOOK_TEST_RUNNING, 30_000).await? {
        return Ok(wire::error(
            StatusCode::CONFLICT,
            "Conflict",
            "a test delivery is in flight",
            None,
        ));
    }
    let pending = WebhookTest {
        webhook_request_status: WebhookRequestStatus::Default,
        webhook_http_status: None,
        webhook_error_code: None,
    };
    webhooks::save_test(&ctx.gw.store, &pending).await?;
    delivery::spawn_test(ctx.gw.store.clone(), record.destination.clone());
    Ok(wire::ok(StatusCode::CREATED, &pending))
}

/// `GET /v0/webhooks/{wh}/actions/test`: how the last test went (`default` until it ends).
pub async fn status(ctx: &Ctx<'_>, id: &str) -> Result<Reply, SandboxError> {
    if webhooks::named(ctx, id).await?.is_none() {
        return Ok(wire::not_found());
    }
    let last: Option<WebhookTest> = store::load(&ctx.gw.store, keys::GRIFFIN_WEBHOOK_TEST).await?;
    Ok(wire::ok(
        StatusCode::OK,
        &last.unwrap_or(WebhookTest {
            webhook_request_status: WebhookRequestStatus::Default,
            webhook_http_status: None,
            webhook_error_code: None,
        }),
    ))
}
