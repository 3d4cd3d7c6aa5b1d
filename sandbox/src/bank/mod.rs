//! The sandbox bank: five simulated UK banks (ASPSPs) speaking Open Banking v3.1 payment
//! initiation under `/sandbox/bank/<bank_id>/`, reached by the daemon over HTTP exactly as it
//! reaches a real bank.
//!
//! Each bank is an authorisation server (discovery, JWKS, `token`, the `authorize` page) and
//! a resource server (`open-banking/v3.1/pisp/domestic-payment-consents` and
//! `.../domestic-payments`). Requests are checked as a bank checks them (bearer tokens by
//! grant, `x-idempotency-key`, the TPP's `x-jws-signature`, schema, consent status, consent
//! equality) and every answer is signed with the bank's key. The banks differ only in what
//! happens to a payment after submission ([`behaviour::TestBank`]).
//!
//! - [`behaviour`]: the test banks and their status engine (pure, table-tested).
//! - [`store`]: the records in Redis and their one atomic change.
//! - [`api`]: consents and payments. [`auth`]: token endpoint and the authorise page.
//! - [`validate`]: schema checks. [`wire`]: signed answers and OBIE errors.
//! - [`page`]: the payer's HTML. [`setup`]: configuration and keys. [`ctx`]: what the
//!   handlers share.
//!
//! Settlement: a payment read as `AcceptedSettlementCompleted` credits the Griffin sandbox's
//! account once ([`api::settled`]), as the payee's bank would.

pub mod api;
pub mod auth;
pub mod behaviour;
pub mod ctx;
pub mod notify;
pub mod page;
pub mod setup;
pub mod store;
pub mod validate;
pub mod wire;

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::{Method, StatusCode};
use serde_json::json;

use crate::gateway::Gateway;
use crate::reply::Reply;
use behaviour::TestBank;
use ctx::{Ctx, iso};

pub use setup::BankSandboxConfig;

/// Answer a request under `/sandbox/bank/`; `rest` is the path after it.
pub async fn handle(
    gw: &Gateway,
    method: &Method,
    rest: &str,
    query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Reply {
    let interaction = wire::interaction_id(headers);
    if rest == "ledger" {
        return match method {
            &Method::GET => ledger(gw, &interaction).await,
            _ => wire::oauth_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "GET only",
                &interaction,
            ),
        };
    }
    let (bank_id, route) = rest.split_once('/').unwrap_or((rest, ""));
    let Some(bank) = TestBank::of(bank_id) else {
        return wire::ob_error(
            StatusCode::NOT_FOUND,
            "UK.OBIE.NotFound",
            "no such sandbox bank",
            None,
            None,
            &interaction,
        );
    };
    let keys = match &gw.bank.keys {
        Ok(keys) => keys,
        Err(reason) => {
            return wire::ob_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UK.OBIE.UnexpectedError",
                reason,
                None,
                None,
                &interaction,
            );
        }
    };
    let ctx = Ctx {
        gw,
        bank,
        keys,
        headers,
        interaction,
        now_ms: calmony_actors::clock::now_ms(),
    };
    const CONSENTS: &str = "open-banking/v3.1/pisp/domestic-payment-consents";
    const PAYMENTS: &str = "open-banking/v3.1/pisp/domestic-payments";
    match (method, route) {
        (&Method::GET, ".well-known/openid-configuration") => auth::discovery(&ctx),
        (&Method::GET, "jwks") => ctx.ok(StatusCode::OK, &json!({ "keys": [keys.bank.jwk()] })),
        (&Method::POST, "token") => auth::token(&ctx, &body).await,
        (&Method::GET, "authorize") => auth::authorize_page(&ctx, query).await,
        (&Method::POST, "authorize") => auth::decide(&ctx, &body).await,
        (&Method::POST, CONSENTS) => api::create_consent(&ctx, &body).await,
        (&Method::POST, PAYMENTS) => api::submit_payment(&ctx, &body).await,
        (&Method::GET, r) if resource_id(r, CONSENTS).is_some() => {
            api::get_consent(&ctx, resource_id(r, CONSENTS).unwrap_or_default()).await
        }
        (&Method::GET, r) if resource_id(r, PAYMENTS).is_some() => {
            api::get_payment(&ctx, resource_id(r, PAYMENTS).unwrap_or_default()).await
        }
        (
            _,
            ".well-known/openid-configuration"
            | "jwks"
            | "token"
            | "authorize"
            | CONSENTS
            | PAYMENTS,
        ) => ctx.error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UK.OBIE.NotFound",
            "method not allowed",
            None,
        ),
        _ => ctx.error(
            StatusCode::NOT_FOUND,
            "UK.OBIE.NotFound",
            "no such endpoint",
            None,
        ),
    }
}

/// The id in `<collection>/<id>`, when `route` is one (a single, non-empty segment).
fn resource_id<'a>(route: &'a str, collection: &str) -> Option<&'a str> {
    route
        .strip_prefix(collection)?
        .strip_prefix('/')
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// The control route: every payment the banks accepted, with its status now.
async fn ledger(gw: &Gateway, interaction: &str) -> Reply {
    let lines = match store::ledger(&gw.store).await {
        Ok(lines) => lines,
        Err(error) => {
            tracing::error!(%error, "sandbox bank ledger unreadable");
            return wire::oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the sandbox store is unavailable",
                interaction,
            );
        }
    };
    let now = calmony_actors::clock::now_ms();
    let delay = gw.bank.settle_delay_ms();
    let entries: Vec<_> = lines
        .iter()
        .map(|l| {
            let status =
                TestBank::of(&l.bank).map(|b| b.payment_status(now - l.submitted_ms, delay));
            json!({
                "id": l.id,
                "bank": l.bank,
                "consent_id": l.consent_id,
                "amount": l.amount,
                "status": status.map(|s| s.as_str()),
                "end_to_end_id": l.end_to_end_id,
                "reference": l.reference,
                "submitted": iso(l.submitted_ms),
            })
        })
        .collect();
    wire::signed(
        StatusCode::OK,
        &json!({ "entries": entries }),
        None,
        interaction,
    )
}
