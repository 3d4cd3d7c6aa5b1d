//! The HTTP edge: a thin hyper 1 server in front of the store and the actors.
//!
//! Every `/v1` request goes through the same steps, answering errors in Stripe's order:
//! 1. authentication and the per-key rate limit, in one Redis round trip ([`api_keys`]) that
//!    also claims a POST's `Idempotency-Key` and reads the objects the request names (for a
//!    payment's create whose key and objects are [`remembered`], in the create's own commit
//!    instead); the key is known good before any of the body is read (remembered from an
//!    earlier check, or looked up), so a made-up key never makes the daemon wait for a body;
//! 2. the route (unknown paths answer a JSON 404 only after authentication, as Stripe does);
//! 3. the body (read before the key check's round trip, answered after it), refused with 413
//!    past `api.max_body_bytes` and 408 past `http.body_read_timeout_seconds`, parsed as JSON
//!    or bracketed form into [`Params`] (query string for GET and DELETE);
//! 4. for a POST with `Idempotency-Key`: the claim's answer, a replay, or a conflict
//!    ([`idempotency`]);
//! 5. the handler, caught if it panics, so any failure is a JSON error and never a dropped
//!    connection;
//! 6. the answer stored under the idempotency key if it should be, and sent with `Request-Id`.
//!
//! Errors of status 500 are logged with their detail and sent as a bare `api_error` carrying the
//! request id. Shutdown is graceful: the listener closes, in-flight requests complete. Slow and
//! idle clients are bounded by [`connections`]: a header timeout, and a cap on open
//! connections with a 503 beyond it.

mod auth;
mod body;
mod client_address;
mod connections;
mod idempotency;
pub mod remembered;
pub mod routes;
mod sandbox_caller;

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use calmony_actors::RequestContext;
use calmony_actors::api_keys::{self, Auth};
use calmony_actors::context::KeyCheck;
use calmony_actors::store::KeyRefusal;
use calmony_protocol::{ApiError, ids};
use futures_util::FutureExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::response::{error_response, pdf_response, reply_response, set};
use routes::{Route, route};

pub use crate::response::Body;
pub use crate::state::AppState;

/// Serve until `shutdown` resolves, then finish in-flight requests (up to the grace period).
pub async fn run(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let cap = connections::Cap::new(state.config.http.max_connections as usize);
    let header_timeout = Duration::from_secs(state.config.http.header_read_timeout_seconds);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: back off rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Some(permit) = cap.admit() else {
                    cap.refuse(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let svc = service_fn(move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(Peer(peer));
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handle(state, req).await) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(permit);
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    let grace = Duration::from_secs(state.config.shutdown.grace_seconds);
    tracing::info!(
        grace_seconds = grace.as_secs(),
        "listener closed; finishing in-flight requests"
    );
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; closing remaining connections");
    }
}

/// The client's address, as the connection was accepted (the dashboard's sign-in throttle
/// and audit log read it).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

/// Answer one request. Never fails: every outcome is an HTTP response.
async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let request_id = ids::request_id();
    let method = req.method().clone();
    let path = routes::normalize(req.uri().path());
    let route = route(&method, &path);
    let span = tracing::info_span!("request", id = %request_id, method = %method, path = %path);
    let label = route.label();
    let fut = dispatch(state, req, route, path, request_id.clone());
    let mut resp = match AssertUnwindSafe(fut)
        .catch_unwind()
        .instrument(span.clone())
        .await
    {
        Ok(resp) => resp,
        Err(_) => {
            span.in_scope(|| tracing::error!("handler panicked"));
            error_response(&ApiError::internal(&request_id), &request_id)
        }
    };
    set(&mut resp, "request-id", &request_id);
    let status = resp.status().as_u16();
    if status == 408 {
        // The body was not read to its end: the connection cannot carry another request.
        set(&mut resp, "connection", "close");
    }
    let elapsed = started.elapsed();
    metrics::counter!("calmony_http_requests_total", "route" => label, "method" => crate::telemetry::method_label(&method), "status" => status.to_string()).increment(1);
    metrics::histogram!("calmony_http_request_duration_seconds", "route" => label)
        .record(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::debug!(status, elapsed_us = elapsed.as_micros() as u64, "answered");
    });
    resp
}

async fn dispatch(
    state: Arc<AppState>,
    req: Request<Incoming>,
    route: Route,
    path: String,
    request_id: String,
) -> Response<Body> {
    match route {
        Route::Healthz => crate::ops::healthz(),
        Route::Readyz => crate::ops::readyz(&state.store).await,
        Route::Metrics => crate::ops::metrics(&state.metrics),
        Route::OpenApi => crate::openapi::serve(),
        Route::Docs { page } => {
            let query = req.uri().query().unwrap_or("").to_string();
            crate::pages::docs::serve(&page, &query)
        }
        Route::NotFound => error_response(
            &ApiError::unknown_route(req.method().as_str(), &path),
            &request_id,
        ),
        Route::Sandbox => match &state.sandbox {
            Some(sandbox) if path == "/sandbox/actors/faults" => {
                crate::ops::actor_faults(sandbox, req).await
            }
            Some(sandbox) => {
                let method = req.method().clone();
                let query = req.uri().query().unwrap_or("").to_string();
                // The sandbox bank reads its token, idempotency key and signature here.
                let headers = req.headers().clone();
                // A control route's caller is checked before its body is read.
                let caller =
                    match sandbox_caller::caller(&state, sandbox, &path, req.headers()).await {
                        Ok(caller) => caller,
                        Err(e) => return error_response(&e, &request_id),
                    };
                if let Some(refused) = sandbox.refusal(&path, &caller) {
                    return refused;
                }
                match body::read_bytes(req, body::Limits::of(&state.config)).await {
                    Ok(bytes) => {
                        sandbox
                            .handle(&caller, &method, &path, &query, &headers, bytes)
                            .await
                    }
                    Err(e) => error_response(&e, &request_id),
                }
            }
            None => error_response(
                &ApiError::unknown_route(req.method().as_str(), &path),
                &request_id,
            ),
        },
        Route::Checkout {
            project,
            mode,
            session,
            step,
        } => {
            let body = if step == routes::CheckoutStep::Page {
                Ok(Bytes::new())
            } else {
                body::read_bytes(req, body::Limits::of(&state.config)).await
            };
            match body {
                Ok(bytes) => {
                    crate::pages::checkout::handle(&state, &project, &mode, &session, step, &bytes)
                        .await
                }
                Err(e) => error_response(&e, &request_id),
            }
        }
        Route::Portal {
            project,
            mode,
            session,
            step,
        } => {
            let query = req.uri().query().unwrap_or("").to_string();
            let cookie = crate::pages::portal::cookie_of(req.headers(), &session);
            let body = if step.posts() {
                body::read_bytes(req, body::Limits::of(&state.config)).await
            } else {
                Ok(Bytes::new())
            };
            match body {
                Ok(bytes) => {
                    crate::pages::portal::handle(
                        &state,
                        crate::pages::portal::Request {
                            project: &project,
                            mode: &mode,
                            session: &session,
                            step,
                            query: &query,
                            cookie: cookie.as_deref(),
                            body: &bytes,
                        },
                    )
                    .await
                }
                Err(e) => error_response(&e, &request_id),
            }
        }
        Route::Dashboard { post } => {
            let query = req.uri().query().unwrap_or("").to_string();
            let headers = req.headers().clone();
            let trusted: Vec<std::net::IpAddr> = state
                .config
                .http
                .trusted_proxy_list()
                .into_iter()
                .filter_map(Result::ok)
                .collect();
            let forwarded = req
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok());
            let from = req
                .extensions()
                .get::<Peer>()
                .map(|p| client_address::client_address(p.0.ip(), forwarded, &trusted).to_string())
                .unwrap_or_else(|| "unknown".into());
            let body = if post {
                body::read_bytes(req, body::Limits::of(&state.config)).await
            } else {
                Ok(Bytes::new())
            };
            match body {
                Ok(bytes) => {
                    let rest: Vec<&str> = path
                        .trim_start_matches('/')
                        .split('/')
                        .skip(1)
                        .filter(|s| !s.is_empty())
                        .collect();
                    crate::pages::dashboard::handle(
                        &state,
                        crate::pages::dashboard::Request {
                            post,
                            rest,
                            query: &query,
                            headers: &headers,
                            body: &bytes,
                            from,
                        },
                    )
                    .await
                }
                Err(e) => error_response(&e, &request_id),
            }
        }
        Route::InvoicePublicPdf {
            project,
            mode,
            invoice,
            token,
        } => match calmony_actors::payments::three_ds::scope(&project, &mode) {
            Some(scope) => {
                match calmony_actors::billing::public_pdf(&state.billing, &scope, &invoice, &token)
                    .await
                {
                    Ok((bytes, name)) => pdf_response(bytes, &name),
                    Err(e) => error_response(&e, &request_id),
                }
            }
            None => error_response(
                &ApiError::no_such("invoice", &invoice, "invoice"),
                &request_id,
            ),
        },
        Route::ThreeDsPage {
            project,
            mode,
            intent,
        } => {
            let query = req.uri().query().unwrap_or("").to_string();
            crate::pages::three_ds::page_for(&state.payments, &project, &mode, &intent, &query)
                .await
        }
        Route::BankPage {
            project,
            mode,
            intent,
            choose: false,
        } => {
            let query = req.uri().query().unwrap_or("").to_string();
            crate::pages::bank::page_for(&state.payments, &project, &mode, &intent, &query).await
        }
        Route::BankPage {
            project,
            mode,
            intent,
            choose: true,
        } => match body::read_bytes(req, body::Limits::of(&state.config)).await {
            Ok(bytes) => {
                crate::pages::bank::choose(&state.payments, &project, &mode, &intent, &bytes).await
            }
            Err(e) => error_response(&e, &request_id),
        },
        Route::BankNotification { mode, bank } => {
            let interaction = req
                .headers()
                .get("x-fapi-interaction-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.len() <= 128)
                .map(str::to_string)
                .unwrap_or_else(|| request_id.clone());
            let mut answer = match body::read_bytes(req, body::Limits::of(&state.config)).await {
                Ok(bytes) => {
                    crate::pages::bank::notification(&state.payments, &mode, &bank, &bytes).await
                }
                Err(e) => error_response(&e, &request_id),
            };
            if let Ok(v) = hyper::header::HeaderValue::from_str(&interaction) {
                answer.headers_mut().insert("x-fapi-interaction-id", v);
            }
            answer
        }
        Route::GriffinWebhook { mode } => {
            // The signature covers the path and headers as sent, so neither is normalised.
            let raw_path = req.uri().path().to_string();
            let query = req.uri().query().unwrap_or("").to_string();
            let headers = req.headers().clone();
            match body::read_bytes(req, body::Limits::of(&state.config)).await {
                Ok(bytes) => {
                    crate::pages::griffin::webhook(
                        &state, &mode, &raw_path, &query, &headers, &bytes,
                    )
                    .await
                }
                Err(e) => error_response(&e, &request_id),
            }
        }
        Route::BankReturn => {
            let query = req.uri().query().unwrap_or("").to_string();
            crate::pages::bank::returned(&state.payments, &query).await
        }
        Route::ThreeDsComplete {
            project,
            mode,
            intent,
        } => match body::read_bytes(req, body::Limits::of(&state.config)).await {
            Ok(bytes) => {
                crate::pages::three_ds::complete(
                    &state.payments,
                    &state.intents,
                    &project,
                    &mode,
                    &intent,
                    &bytes,
                )
                .await
            }
            Err(e) => error_response(&e, &request_id),
        },
        Route::Api(_) | Route::ApiUnknown | Route::ApiMethodNotAllowed => {
            match api(&state, req, route, &path, &request_id).await {
                Ok(resp) => resp,
                Err(e) => error_response(&e, &request_id),
            }
        }
    }
}

/// The `/v1` pipeline described in the module documentation.
async fn api(
    state: &AppState,
    req: Request<Incoming>,
    route: Route,
    path: &str,
    request_id: &str,
) -> Result<Response<Body>, ApiError> {
    let raw_key =
        match auth::key_from_header(req.headers().get("authorization").map(|v| v.as_bytes())) {
            Ok(key) => key,
            Err(e) => {
                body::discard(req, body::Limits::of(&state.config)).await;
                return Err(e);
            }
        };
    let method = req.method().clone();
    let idem_key = idempotency::key_of(&req);
    let sha = api_keys::lookup_hash(&raw_key);
    // No body is read for a key not known good: a made-up key is refused before its client
    // can make the daemon wait for a body (what it is still uploading is dropped for at most
    // a second first, so that it reads the refusal rather than a reset). A key that passed a check before is known good
    // (`remembered`); another is looked up, reading and writing nothing else.
    match &sha {
        Some(sha) if state.remembered.recognises(sha) => {}
        // Nothing to wait for: the key check below refuses a bad key as before.
        _ if !body::may_have_body(&req) => {}
        _ => match api_keys::recognise(&state.store, sha.as_deref()).await? {
            None => {
                if let Some(sha) = &sha {
                    state.remembered.recognise(sha);
                }
            }
            Some(refusal) => {
                body::discard(req, body::Limits::of(&state.config)).await;
                return refused(refusal, &raw_key, request_id);
            }
        },
    }
    // Read before the key check, which claims the idempotency key (its fingerprint is of the
    // parameters) and reads the objects the request names in its round trip; a body's errors
    // are still answered after the key's.
    let params = body::read_params(req, body::Limits::of(&state.config)).await;
    let api_route = match &route {
        Route::Api(r) => Some(r),
        _ => None,
    };
    let ask = match (&idem_key, &params, api_route) {
        (Some(Ok(key)), Ok(params), Some(_)) => {
            Some(idempotency::ask(state, key, path, params, request_id))
        }
        _ => None,
    };
    let named = named_objects(&method, api_route, params.as_ref().ok());
    let per_second = state.config.api.rate_limit_per_second;
    // A payment's create whose key and objects are remembered leaves its key check, and the
    // claim of its idempotency key, to its commit (see `remembered`); if it ends without one
    // it wrote nothing, and runs below.
    let deferrable = api_route.is_some_and(|r| r.endpoint == routes::Endpoint::IntentCreate)
        && !matches!(idem_key, Some(Err(_)));
    if deferrable
        && let (Some(sha), Ok(params), Some(r)) = (&sha, &params, api_route)
        && let Some(d) = state
            .remembered
            .deferral(sha, &named, per_second, ask.clone())
    {
        let ctx = RequestContext {
            request_id: request_id.to_string(),
            idempotency: ask
                .as_ref()
                .map(|a| calmony_actors::idempotency::claim_for(&d.scope, &a.key, request_id)),
            scope: d.scope,
            idempotency_ttl_secs: state.config.api.idempotency_ttl_hours * 3600,
            prefetched: calmony_actors::context::Prefetched::new(d.read),
            deferred: Some(d.check.clone()),
        };
        let answer = crate::api::dispatch(state, &ctx, r.clone(), params.clone()).await;
        let check = d.check.state();
        let outcome = match check {
            KeyCheck::Passed => "passed",
            KeyCheck::Sent => "unanswered",
            KeyCheck::Refused(_) => "refused",
            KeyCheck::NotDone => "rerun",
        };
        metrics::counter!("calmony_deferred_key_checks_total", "outcome" => outcome).increment(1);
        match (check, &ctx.idempotency) {
            (KeyCheck::Passed | KeyCheck::Sent, Some(claim)) => {
                return Ok(idempotency::settled(state, &ctx, claim, answer).await);
            }
            (KeyCheck::Passed | KeyCheck::Sent, None) => return answer.map(reply_response),
            (KeyCheck::Refused(refusal), _) => {
                forget_if_gone(state, sha, refusal);
                return refused(refusal, &raw_key, request_id);
            }
            (KeyCheck::NotDone, _) => {}
        }
    }
    let alongside = api_keys::Alongside {
        claim: ask.as_ref(),
        read: named,
    };
    let (scope, claimed, read) =
        match api_keys::authenticate(&state.store, sha.as_deref(), per_second, &alongside).await? {
            Auth::Ok {
                scope, claim, read, ..
            } => (scope, claim, read),
            Auth::Refused(refusal) => {
                if let Some(sha) = &sha {
                    forget_if_gone(state, sha, refusal);
                }
                return refused(refusal, &raw_key, request_id);
            }
        };
    if deferrable && let Some(sha) = &sha {
        state.remembered.keep(sha, &scope, &read);
    }
    let api_route = match route {
        Route::Api(r) => r,
        Route::ApiMethodNotAllowed => {
            return Err(ApiError::method_not_allowed(method.as_str(), path));
        }
        _ => return Err(ApiError::unknown_route(method.as_str(), path)),
    };
    let params = params?;
    let mut ctx = RequestContext {
        request_id: request_id.to_string(),
        scope,
        idempotency: None,
        idempotency_ttl_secs: state.config.api.idempotency_ttl_hours * 3600,
        prefetched: calmony_actors::context::Prefetched::new(read),
        deferred: None,
    };
    if api_route.endpoint == routes::Endpoint::InvoicePdf {
        let (bytes, name) =
            calmony_actors::billing::invoice_pdf(&state.billing, &ctx, &api_route.id).await?;
        return Ok(pdf_response(bytes, &name));
    }
    let Some(key) = idem_key else {
        let reply = crate::api::dispatch(state, &ctx, api_route, params).await?;
        return Ok(reply_response(reply));
    };
    // A valid key on a routed request with good parameters was always claimed.
    let (key, Some(begin)) = (key?, claimed) else {
        return Err(idempotency::invalid_key());
    };
    idempotency::run(state, &mut ctx, &key, path, api_route, params, begin).await
}

/// A key refused as unknown or revoked is no longer known good (one only rate-limited is).
fn forget_if_gone(state: &AppState, sha: &str, refusal: KeyRefusal) {
    if matches!(refusal, KeyRefusal::Unknown | KeyRefusal::Revoked) {
        state.remembered.forget(sha);
    }
}

/// The answer to a request whose key check refused it.
fn refused(
    refusal: KeyRefusal,
    raw_key: &str,
    request_id: &str,
) -> Result<Response<Body>, ApiError> {
    let message = match refusal {
        KeyRefusal::Unknown => "Invalid API Key provided",
        KeyRefusal::Revoked => "This API key has been revoked",
        KeyRefusal::Limited { retry_after_ms } => {
            metrics::counter!("calmony_rate_limited_total").increment(1);
            let mut resp = error_response(&ApiError::rate_limited(), request_id);
            let secs = retry_after_ms.div_ceil(1000).max(1);
            set(&mut resp, "retry-after", &secs.to_string());
            return Ok(resp);
        }
    };
    Err(ApiError::authentication(format!(
        "{message}: {}",
        auth::redact(raw_key)
    )))
}

/// The objects a request names, read with the key check so the handler need not read them:
/// the path's id (`GET` and `POST`), and a `POST`'s `customer` and `payment_method` (or
/// `customerId` and `paymentMethodId`; a payment's create and confirm use all three). An id a handler does not read costs one
/// `HMGET` inside the same script.
fn named_objects<'a>(
    method: &Method,
    route: Option<&'a routes::ApiRoute>,
    params: Option<&'a calmony_protocol::Params>,
) -> Vec<&'a str> {
    let mut read = Vec::new();
    let Some(route) = route else { return read };
    if *method != Method::GET && *method != Method::POST {
        return read;
    }
    if !route.id.is_empty() && route.endpoint != routes::Endpoint::InvoicePdf {
        read.push(route.id.as_str());
    }
    if *method == Method::POST
        && let Some(params) = params
    {
        // Either spelling: the Calmony docs' camelCase is accepted wherever snake_case is.
        for name in [
            "customer",
            "customerId",
            "payment_method",
            "paymentMethodId",
        ] {
            read.extend(params.peek_str(name));
        }
    }
    read
}
