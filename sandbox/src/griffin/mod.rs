//! The Griffin sandbox: one organization with one operational GBP account, served under
//! `/sandbox/griffin/v0/...` and reached by the daemon over HTTP exactly as it reaches
//! `https://api.griffin.com/v0/...` (the base URL is `<public>/sandbox/griffin`).
//!
//! Requests carry `Authorization: GriffinAPIKey <key>` (401 with `www-authenticate`
//! otherwise) and, when a client public key is configured, an RFC 9421 signature checked as
//! Griffin checks it. The account keeps a real ledger ([`store`]): the £1,000,000 sandbox
//! deposit, every credit and debit an entry with its running balance. Outbound payments are
//! created (201), submitted (200, `processing`, the amount held) and `delivered` after the
//! configured delay, computed when read; the debit is posted then, once. A creditor account
//! number of [`setup::FAILING_ACCOUNT_NUMBER`] makes the payment `failed` instead.
//!
//! Incoming money arrives through [`credit`], in-process (what the Cardstream sandbox's
//! settlement and the sandbox bank's settled payments will call) or over the operator-only
//! `POST /sandbox/griffin/credit`, which is not Griffin's: Griffin has no such call.
//!
//! Webhooks ([`webhooks`], [`delivery`]): the organization's one webhook is registered,
//! read, activated, deactivated, tested and deleted as on Griffin; in the daemon's test mode
//! its own `<public_url>/webhooks/griffin/test` is registered at start. Every event is
//! POSTed to it signed as Griffin signs (ES512 over P-521, RFC 9421 with `content-digest`,
//! `created`/`expires`/`nonce`, the key id as label), at least once, retried with backoff
//! until answered 2xx, each attempt recorded. The signing key is made on first use and
//! kept in Redis; `GET /sandbox/griffin/v0/security/public-keys` publishes it (no API key
//! needed). Unlike Griffin, the sandbox delivers to `http://` destinations, loopback included.
//!
//! Operator routes (`Authorization: Bearer <sandbox.operator_token>`; not Griffin's):
//!
//! | Route | What it does |
//! |---|---|
//! | `POST /sandbox/griffin/credit` | an incoming Faster Payment (`amount` pence, `reference`, `debtor-name`, optional `end-to-end-id`, `once-key`) |
//! | `GET\|POST /sandbox/griffin/faults` | show or set the faults of [`faults`]: `drop-webhooks` (N), `duplicate-webhooks` (bool), `reorder-webhooks` (bool), `delay-next-credit-ms`, `hold-next-credit`, `next-credit-delta` (±pence) |
//! | `POST /sandbox/griffin/credit/release` | post every held credit now |
//! | `POST /sandbox/griffin/rotate-key` | retire the webhook signing key and sign with a new one (a new `kid`) |
//! | `GET /sandbox/griffin/deliveries` | every webhook delivery attempt, newest first (`delivered`, `refused`, `failed`, `dropped`) |
//!
//! A failing submission needs no fault route: pay the creditor account `99999999`.
//!
//! - [`decide`]: submission status, fate, paging, and the webhook decisions (pure,
//!   table-tested).
//! - [`store`]: the records and the one atomic posting. [`api`]: the `/v0` handlers.
//! - [`wire`]: records as Griffin's resources, errors. [`setup`]: configuration.
//!   [`ctx`]: what the handlers share.
//! - [`events`]: events, derived from the records; [`delivery`] sends each once claimed.
//! - [`webhooks`]: the webhook resource and the signing keys; [`webhook_test`]: its test
//!   action. [`faults`]: injected faults. [`credit`]: money in, and the credit faults.
//!
//! Not yet: payees, returns.

pub mod api;
pub mod credit;
pub mod ctx;
pub mod decide;
pub mod delivery;
pub mod events;
pub mod faults;
pub mod setup;
pub mod store;
pub mod webhook_test;
pub mod webhooks;
pub mod wire;

use bytes::Bytes;
use calmony_protocol::griffin::AUTH_SCHEME;
use calmony_protocol::griffin::signature::{self, Message, Policy};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderMap};
use hyper::{Method, StatusCode};

use crate::error::SandboxError;
use crate::gateway::Gateway;
use crate::keys;
use crate::reply::Reply;
use credit::{CreditError, post_held_credits};
use ctx::Ctx;
use setup::{ACCOUNT_ID, ORGANIZATION_ID, Setup};

pub use credit::{Credit, Credited, credit};

pub use setup::GriffinSandboxConfig;

/// How old a request signature may be, and how long its nonce is remembered (longer).
const SIGNATURE_MAX_AGE_SECS: i64 = 300;
const NONCE_TTL_MS: u64 = 600_000;

/// Answer a request under `/sandbox/griffin/`; `path` is the full path, `rest` what follows
/// the prefix (`v0/...` or `credit`). The edge has admitted the caller to control routes.
pub async fn handle(
    gw: &Gateway,
    setup: &Setup,
    method: &Method,
    path: &str,
    rest: &str,
    query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Reply {
    let ctx = Ctx {
        gw,
        setup,
        now_ms: calmony_actors::clock::now_ms(),
    };
    let answer = if rest == "credit" {
        control_credit(&ctx, method, &body).await
    } else if let Some(control) = control_route(&ctx, method, rest, &body).await {
        control
    } else if rest == "v0/security/public-keys" && method == Method::GET {
        // Published for anyone, as Griffin's are: a receiver needs no API key to verify.
        webhooks::public_keys(&gw.store).await
    } else if let Some(route) = rest.strip_prefix("v0/") {
        match authenticate(&ctx, method, path, query, headers, &body).await {
            Ok(None) => route_v0(&ctx, method, route, query, headers, &body).await,
            Ok(Some(refused)) => Ok(refused),
            Err(e) => Err(e),
        }
    } else {
        Ok(wire::not_found())
    };
    answer.unwrap_or_else(|error| {
        tracing::error!(%error, "Griffin sandbox request failed");
        wire::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable",
            "the sandbox store is unavailable",
            None,
        )
    })
}

/// The operator's other routes: faults, releasing held credits, rotating the signing key,
/// the delivery attempts. `None` when `rest` is none of them.
async fn control_route(
    ctx: &Ctx<'_>,
    method: &Method,
    rest: &str,
    body: &[u8],
) -> Option<Result<Reply, SandboxError>> {
    let store = &ctx.gw.store;
    let only = |allowed: Method| {
        (method != allowed).then(|| {
            Ok(wire::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                &format!("{allowed} only"),
                None,
            ))
        })
    };
    Some(match rest {
        "faults" => faults::handle(store, method, body).await,
        "credit/release" => match only(Method::POST) {
            Some(refused) => refused,
            None => post_held_credits(store, ctx.now_ms, true)
                .await
                .map(|posted| wire::ok(StatusCode::OK, &serde_json::json!({"posted": posted}))),
        },
        "rotate-key" => match only(Method::POST) {
            Some(refused) => refused,
            None => webhooks::rotate_key(store)
                .await
                .map(|kid| wire::ok(StatusCode::OK, &serde_json::json!({"kid": kid}))),
        },
        "deliveries" => match only(Method::GET) {
            Some(refused) => refused,
            None => delivery::attempts(store).await.map(|attempts| {
                wire::ok(StatusCode::OK, &serde_json::json!({"attempts": attempts}))
            }),
        },
        _ => return None,
    })
}

async fn control_credit(
    ctx: &Ctx<'_>,
    method: &Method,
    body: &[u8],
) -> Result<Reply, SandboxError> {
    if method != Method::POST {
        return Ok(wire::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "POST only",
            None,
        ));
    }
    let request: Credit = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) => {
            return Ok(wire::error(
                StatusCode::BAD_REQUEST,
                "Invalid body",
                &e.to_string(),
                None,
            ));
        }
    };
    match credit(&ctx.gw.store, ctx.now_ms, request).await {
        Ok(done) => Ok(wire::ok(
            if done.replayed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            },
            &done,
        )),
        Err(CreditError::Store(e)) => Err(e),
        Err(e) => Ok(wire::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid credit",
            &e.to_string(),
            None,
        )),
    }
}

/// `None` when the request may proceed; else the 401 (or 500 for an unusable configured key).
async fn authenticate(
    ctx: &Ctx<'_>,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<Reply>, SandboxError> {
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(AUTH_SCHEME))
        .map(str::trim);
    if !presented
        .is_some_and(|key| crate::access::is_operator(Some(&ctx.setup.config.api_key), key))
    {
        return Ok(Some(wire::unauthorized(
            "an Authorization: GriffinAPIKey <key> header with the sandbox's API key is required",
        )));
    }
    let key = match &ctx.setup.client_key {
        Ok(None) => return Ok(None),
        Ok(Some(key)) => key.clone(),
        Err(reason) => {
            return Ok(Some(wire::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
                reason,
                None,
            )));
        }
    };
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)))
        .collect();
    let authority = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let message = Message {
        method: method.as_str(),
        authority,
        path,
        query,
        headers: &pairs,
    };
    let keyid = ctx.setup.config.client_keyid.clone();
    let policy = Policy {
        required: &["@method", "@authority", "@path"],
        max_age_secs: SIGNATURE_MAX_AGE_SECS,
    };
    let lookup = move |kid: &str| (kid == keyid).then(|| key.clone());
    match signature::verify(
        &message,
        body,
        &lookup,
        &policy,
        ctx.now_ms.div_euclid(1000),
    ) {
        Err(e) => Ok(Some(wire::unauthorized(&format!("message signature: {e}")))),
        Ok(v) => {
            let nonce = v.nonce.unwrap_or_default();
            if nonce.is_empty()
                || !store::first_use(
                    &ctx.gw.store,
                    &keys::griffin_nonce(&v.keyid, &nonce),
                    NONCE_TTL_MS,
                )
                .await?
            {
                return Ok(Some(wire::unauthorized(
                    "message signature: the nonce was used before",
                )));
            }
            Ok(None)
        }
    }
}

/// The single id after `prefix/`, when `route` is exactly that.
fn id_after<'a>(route: &'a str, prefix: &str) -> Option<&'a str> {
    route
        .strip_prefix(prefix)?
        .strip_prefix('/')
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// The id between `prefix/` and `/suffix`.
fn id_between<'a>(route: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    route
        .strip_prefix(prefix)?
        .strip_prefix('/')?
        .strip_suffix(suffix)?
        .strip_suffix('/')
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

async fn route_v0(
    ctx: &Ctx<'_>,
    method: &Method,
    route: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, SandboxError> {
    if (method == Method::POST || method == Method::PATCH)
        && !body.is_empty()
        && !headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
    {
        return Ok(wire::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            "send Content-Type: application/json",
            None,
        ));
    }
    api::mature(ctx).await?;
    let org = format!("organizations/{ORGANIZATION_ID}");
    let account = format!("bank/accounts/{ACCOUNT_ID}");
    let get = method == Method::GET;
    let post = method == Method::POST;
    if route == "index" && get {
        return Ok(wire::ok(StatusCode::OK, &wire::index()));
    }
    if route == org && get {
        return Ok(wire::ok(StatusCode::OK, &wire::organization()));
    }
    if route == format!("{org}/bank/accounts") && get {
        let (balance, holds) = store::balances(&ctx.gw.store, ctx.now_ms).await?;
        let ledger = store::ledger(&ctx.gw.store).await?;
        let opened = ledger.first().map_or(ctx.now_ms, |e| e.processed_ms);
        let body = serde_json::json!({
            "bank-accounts": [wire::account(&ctx.setup.config, balance, holds, opened)],
            "links": {"prev": null, "next": null},
        });
        return Ok(wire::ok(StatusCode::OK, &body));
    }
    if route == account && get {
        return api::get_account(ctx).await;
    }
    if route == format!("{account}/transactions") && get {
        // Links are relative to the API root, as Griffin writes them.
        return api::list_transactions(ctx, &format!("/v0/{route}"), query).await;
    }
    if (route == format!("{account}/payments") || route == format!("{org}/payments")) && get {
        return api::list_payments(ctx, query).await;
    }
    if route == format!("{account}/payments") && post {
        return api::create_payment(ctx, body).await;
    }
    if route == format!("{org}/payments/search") && post {
        return api::search_payments(ctx, body).await;
    }
    if route == format!("{org}/webhooks") {
        return if post {
            webhooks::create(ctx, body).await
        } else if get {
            webhooks::list(ctx).await
        } else {
            Ok(method_not_allowed())
        };
    }
    if let Some(id) = id_between(route, "webhooks", "actions/test") {
        return if post {
            webhook_test::start(ctx, id).await
        } else if get {
            webhook_test::status(ctx, id).await
        } else {
            Ok(method_not_allowed())
        };
    }
    for (action, active) in [("actions/activate", true), ("actions/deactivate", false)] {
        if let Some(id) = id_between(route, "webhooks", action) {
            return if post {
                webhooks::set_active(ctx, id, active).await
            } else {
                Ok(method_not_allowed())
            };
        }
    }
    if let Some(id) = id_after(route, "webhooks") {
        return if get {
            webhooks::get(ctx, id).await
        } else if method == Method::PATCH {
            webhooks::update(ctx, id, body).await
        } else if method == Method::DELETE {
            webhooks::delete(ctx, id).await
        } else {
            Ok(method_not_allowed())
        };
    }
    if (route == format!("{org}/events") || route.starts_with("events/")) && get {
        return api::events(ctx, route.strip_prefix("events/"), query).await;
    }
    if let Some(id) = id_after(route, "bank/transactions").filter(|_| get) {
        return api::get_transaction(ctx, id).await;
    }
    if let Some(id) = id_between(route, "payments", "submissions") {
        return if post {
            api::submit(ctx, id, body).await
        } else if get {
            api::payment_submissions(ctx, id).await
        } else {
            Ok(method_not_allowed())
        };
    }
    if let Some(id) = id_between(route, "payments", "admissions").filter(|_| get) {
        return api::payment_admissions(ctx, id).await;
    }
    if let Some(id) = id_after(route, "payments").filter(|_| get) {
        return api::get_payment(ctx, id).await;
    }
    if let Some(id) = id_after(route, "submissions").filter(|_| get) {
        return api::get_submission(ctx, id).await;
    }
    if let Some(id) = id_after(route, "admissions").filter(|_| get) {
        return api::get_admission(ctx, id).await;
    }
    Ok(wire::not_found())
}

fn method_not_allowed() -> Reply {
    wire::error(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        "method not allowed",
        None,
    )
}
