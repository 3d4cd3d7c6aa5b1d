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
//! - [`decide`]: submission status, fate, paging (pure, table-tested).
//! - [`store`]: the records and the one atomic posting. [`api`]: the `/v0` handlers.
//! - [`wire`]: records as Griffin's resources, errors. [`setup`]: configuration.
//!   [`ctx`]: what the handlers share.
//!
//! Events are listed ([`events`]), derived from the records. Not yet: webhook delivery,
//! payees, returns.

pub mod api;
pub mod ctx;
pub mod decide;
pub mod events;
pub mod setup;
pub mod store;
pub mod wire;

use bytes::Bytes;
use calmony_actors::Store;
use calmony_protocol::griffin::signature::{self, Message, Policy};
use calmony_protocol::griffin::{AUTH_SCHEME, Debtor, Direction, OriginType, PaymentDirection};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderMap};
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::error::SandboxError;
use crate::gateway::Gateway;
use crate::keys;
use crate::reply::Reply;
use ctx::{Ctx, new_id};
use setup::{ACCOUNT_ID, ORGANIZATION_ID, Setup};
use store::{AdmissionRecord, Entry, PaymentRecord, Posted, Posting};

pub use setup::GriffinSandboxConfig;

/// How old a request signature may be, and how long its nonce is remembered (longer).
const SIGNATURE_MAX_AGE_SECS: i64 = 300;
const NONCE_TTL_MS: u64 = 600_000;

/// An incoming Faster Payment to the sandbox account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Credit {
    /// Pence, positive.
    pub amount: i64,
    pub reference: String,
    #[serde(default)]
    pub end_to_end_id: Option<String>,
    pub debtor_name: String,
    #[serde(default)]
    pub debtor_sort_code: Option<String>,
    #[serde(default)]
    pub debtor_account_number: Option<String>,
    /// The caller's key for this credit: a second credit under it changes nothing and answers
    /// as the first did (a settlement is credited once, however often it is retried).
    #[serde(default)]
    pub once_key: Option<String>,
}

/// What a credit made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Credited {
    pub payment_url: String,
    pub admission_url: String,
    pub account_transaction_url: String,
    /// True when `once_key` had been used: nothing new was written.
    #[serde(default)]
    pub replayed: bool,
}

/// Why a credit was refused.
#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    #[error("a credit's amount must be positive")]
    NotPositive,
    #[error("a credit's reference is 1 to 35 characters")]
    Reference,
    #[error(transparent)]
    Store(#[from] SandboxError),
}

/// Credit the sandbox account by Faster Payment: an inbound payment, its admission
/// (`delivered`) and a `credit` ledger entry, in one atomic posting. Moves money: the balance
/// rises by `credit.amount`. Under a `once_key` already used, nothing moves and the first
/// answer is returned with `replayed`.
pub async fn credit(store: &Store, now_ms: i64, credit: Credit) -> Result<Credited, CreditError> {
    if credit.amount <= 0 {
        return Err(CreditError::NotPositive);
    }
    if credit.reference.is_empty()
        || credit.reference.chars().count() > calmony_protocol::griffin::payment::REFERENCE_MAX
    {
        return Err(CreditError::Reference);
    }
    let id = new_id("pm");
    let suffix = id.trim_start_matches("pm.").to_owned();
    let record = PaymentRecord {
        id: id.clone(),
        direction: PaymentDirection::InboundPayment,
        amount: credit.amount,
        reference: Some(credit.reference.clone()),
        creditor: None,
        debtor: Some(Debtor {
            account_holder: credit.debtor_name.clone(),
            bank_id: credit.debtor_sort_code.clone(),
            account_number: credit.debtor_account_number.clone(),
        }),
        created_ms: now_ms,
        submission: None,
        admission: Some(AdmissionRecord {
            id: format!("pa.{suffix}"),
            end_to_end_id: credit.end_to_end_id.clone(),
            scheme_id: format!("CALMONYSBXIN{}", suffix.to_ascii_uppercase()),
            created_ms: now_ms,
        }),
    };
    let entry = Entry {
        id: new_id("tr"),
        processed_ms: now_ms,
        amount: credit.amount,
        direction: Direction::Credit,
        balance_after: 0,
        origin: OriginType::Payment,
        payment_id: Some(id.clone()),
        reference: Some(credit.reference.clone()),
        description: Some(format!("Faster Payment from {}", credit.debtor_name)),
    };
    let credited = Credited {
        payment_url: wire::payment_url(&id),
        admission_url: format!("/v0/admissions/pa.{suffix}"),
        account_transaction_url: format!("/v0/bank/transactions/{}", entry.id),
        replayed: false,
    };
    let key = keys::griffin_payment(&id);
    let once = match &credit.once_key {
        Some(k) => Some((
            keys::griffin_once(&format!("credit:{k}")),
            store::to_json(&key, &credited)?,
        )),
        None => None,
    };
    let posted = store::post(
        store,
        now_ms,
        Posting {
            once,
            entry: Some(entry),
            sets: vec![(key.clone(), store::to_json(&key, &record)?)],
            new_payment: Some(id),
            ..Posting::default()
        },
    )
    .await?;
    match posted {
        Posted::Replay(first) => {
            let mut first: Credited = store::parse(&key, &first)?;
            first.replayed = true;
            Ok(first)
        }
        _ => Ok(credited),
    }
}

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
    if method == Method::POST
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
