//! The authorisation server: discovery, the token endpoint, and the page where the payer
//! approves or refuses a consent.
//!
//! The authorise request is trusted only through its request object: a JWT signed by the TPP
//! (PS256) that repeats `client_id`, `redirect_uri`, `state`, `nonce` and names the consent
//! (`claims.id_token.openbanking_intent_id.value`). Until that verifies, the bank does not
//! redirect anywhere: an error is shown on the page instead, as OIDC requires for a redirect
//! it cannot trust. The page's form carries a CSRF token that is a MAC, under a secret of the
//! consent, of the redirect, state and nonce it will use: the form can decide only the consent
//! it was rendered for, and only towards the verified redirect.

use std::collections::HashMap;

use calmony_protocol::open_banking::{ConsentStatus, Discovery, TokenResponse, jws};
use hmac::{Hmac, Mac};
use hyper::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::api::load_consent;
use super::behaviour::consent_status;
use super::ctx::{CODE_TTL_MS, Ctx, TEST_ACCOUNTS, TOKEN_TTL_MS, random_hex, sha256_hex};
use super::store::{self, CodeRecord, Commit, Committed, ConsentRecord, Grant, TokenRecord};
use super::{page, wire};
use crate::keys;
use crate::reply::{self, Reply};

fn form(bytes: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub fn discovery(ctx: &Ctx<'_>) -> Reply {
    let base = ctx.base();
    ctx.ok(
        StatusCode::OK,
        &Discovery {
            issuer: base.clone(),
            authorization_endpoint: format!("{base}/authorize"),
            token_endpoint: format!("{base}/token"),
            jwks_uri: format!("{base}/jwks"),
            open_banking_pisp_base: format!("{base}/open-banking/v3.1/pisp"),
        },
    )
}

/// `POST token`: `client_credentials` (scope `payments`) or `authorization_code` (single use,
/// with the redirect it was issued to). The client authenticates with its id and secret.
pub async fn token(ctx: &Ctx<'_>, body: &[u8]) -> Reply {
    let fields = form(body);
    let get = |name: &str| fields.get(name).map(String::as_str).unwrap_or("");
    let config = &ctx.setup().config;
    if !same(get("client_id"), &config.client_id)
        || !same(get("client_secret"), &config.client_secret)
    {
        return wire::oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
            &ctx.interaction,
        );
    }
    let (record, id_token) = match get("grant_type") {
        "client_credentials" => {
            let scope = get("scope");
            if !scope.is_empty() && !scope.split(' ').any(|s| s == "payments") {
                return wire::oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "scope must include payments",
                    &ctx.interaction,
                );
            }
            (
                TokenRecord {
                    bank: ctx.bank.id().to_owned(),
                    grant: Grant::ClientCredentials,
                    consent_id: None,
                },
                None,
            )
        }
        "authorization_code" => {
            let code_key = keys::bank_code(&sha256_hex(get("code").as_bytes()));
            let code: CodeRecord = match store::take(&ctx.gw.store, &code_key).await {
                Ok(Some(raw)) => match store::parse(&code_key, &raw) {
                    Ok(code) => code,
                    Err(e) => return ctx.unavailable(&e),
                },
                Ok(None) => {
                    return wire::oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "unknown, used or expired code",
                        &ctx.interaction,
                    );
                }
                Err(e) => return ctx.unavailable(&e),
            };
            if code.bank != ctx.bank.id() || code.redirect_uri != get("redirect_uri") {
                return wire::oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the code was issued to another redirect_uri",
                    &ctx.interaction,
                );
            }
            let now = ctx.now_ms / 1000;
            let id_token = jws::sign_jwt(
                &json!({
                    "iss": ctx.base(),
                    "sub": code.consent_id,
                    "aud": config.client_id,
                    "iat": now,
                    "exp": now + 300,
                    "nonce": code.nonce,
                    "openbanking_intent_id": code.consent_id,
                }),
                &ctx.keys.bank,
            );
            (
                TokenRecord {
                    bank: ctx.bank.id().to_owned(),
                    grant: Grant::AuthorizationCode,
                    consent_id: Some(code.consent_id),
                },
                Some(id_token),
            )
        }
        _ => {
            return wire::oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "client_credentials or authorization_code",
                &ctx.interaction,
            );
        }
    };
    let token = random_hex(24);
    let key = keys::bank_token(&sha256_hex(token.as_bytes()));
    let stored = match store::to_json(&key, &record) {
        Ok(json) => json,
        Err(e) => return ctx.unavailable(&e),
    };
    if let Err(e) = store::set_px(&ctx.gw.store, &key, &stored, TOKEN_TTL_MS).await {
        return ctx.unavailable(&e);
    }
    ctx.ok(
        StatusCode::OK,
        &TokenResponse {
            access_token: token,
            token_type: "Bearer".to_owned(),
            expires_in: TOKEN_TTL_MS / 1000,
            scope: Some(
                if id_token.is_some() {
                    "openid payments"
                } else {
                    "payments"
                }
                .to_owned(),
            ),
            id_token,
        },
    )
}

/// The CSRF token of the page for `consent` that will redirect to `redirect_uri`.
fn csrf(consent: &ConsentRecord, redirect_uri: &str, state: &str, nonce: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(consent.csrf_secret.as_bytes()) else {
        return String::new();
    };
    for part in [consent.id.as_str(), redirect_uri, state, nonce] {
        mac.update(part.as_bytes());
        mac.update(&[0]);
    }
    hex::encode(mac.finalize().into_bytes())
}

fn error_page(status: StatusCode, message: &str) -> Reply {
    reply::html(
        status,
        page::problem("This payment cannot continue", message),
    )
}

/// The request object's claims, checked against the query, or why not.
fn request_object(
    ctx: &Ctx<'_>,
    q: &HashMap<String, String>,
) -> Result<(String, String, String, String), String> {
    let get = |name: &str| q.get(name).map(String::as_str).unwrap_or("");
    let client_id = &ctx.setup().config.client_id;
    if get("client_id") != client_id {
        return Err("unknown client_id".into());
    }
    if !get("response_type").split(' ').any(|t| t == "code") {
        return Err("response_type must be code".into());
    }
    let scope: Vec<&str> = get("scope").split(' ').collect();
    if !scope.contains(&"openid") || !scope.contains(&"payments") {
        return Err("scope must be openid payments".into());
    }
    let claims = jws::verify_jwt(get("request"), &ctx.keys.tpp)
        .map_err(|e| format!("the request object: {e}"))?;
    let claim = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or("");
    for (name, expected) in [
        ("redirect_uri", get("redirect_uri")),
        ("state", get("state")),
        ("nonce", get("nonce")),
        ("client_id", client_id.as_str()),
    ] {
        if claim(name) != expected {
            return Err(format!(
                "the request object's {name} differs from the request's"
            ));
        }
    }
    if get("redirect_uri").is_empty() {
        return Err("redirect_uri is required".into());
    }
    let intent = claims
        .get("claims")
        .and_then(|c| c.pointer("/id_token/openbanking_intent_id/value"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if intent.is_empty() {
        return Err("the request object names no openbanking_intent_id".into());
    }
    Ok((
        intent.to_owned(),
        get("redirect_uri").to_owned(),
        get("state").to_owned(),
        get("nonce").to_owned(),
    ))
}

/// `GET authorize`: the payer's page for the consent the request object names.
pub async fn authorize_page(ctx: &Ctx<'_>, query: &str) -> Reply {
    let q = form(query.as_bytes());
    let (consent_id, redirect_uri, state, nonce) = match request_object(ctx, &q) {
        Ok(parts) => parts,
        Err(message) => return error_page(StatusCode::BAD_REQUEST, &message),
    };
    let consent = match load_consent(ctx, &consent_id).await {
        Ok(Some((consent, _))) => consent,
        Ok(None) => return error_page(StatusCode::BAD_REQUEST, "The bank knows no such payment."),
        Err(e) => {
            tracing::error!(error = %e, "sandbox bank: consent unreadable");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The bank is unavailable; try again.",
            );
        }
    };
    let status = consent_status(
        consent.status,
        ctx.now_ms - consent.created_ms,
        ctx.setup().consent_timeout_ms(),
    );
    if status != ConsentStatus::AwaitingAuthorisation {
        return reply::html(StatusCode::OK, page::decided(ctx.bank.name(), status));
    }
    let token = csrf(&consent, &redirect_uri, &state, &nonce);
    reply::html(
        StatusCode::OK,
        page::authorise(&page::Authorise {
            bank_id: ctx.bank.id(),
            bank_name: ctx.bank.name(),
            consent: &consent,
            redirect_uri: &redirect_uri,
            state: &state,
            nonce: &nonce,
            csrf: &token,
        }),
    )
}

/// The payer's decision on the page, posted back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    Cancel,
}

/// `POST authorize`: decide the consent and send the payer back to the TPP. Moves the consent
/// `AwaitingAuthorisation` → `Authorised` (with a single-use code) or → `Rejected`.
pub async fn decide(ctx: &Ctx<'_>, body: &[u8]) -> Reply {
    let f = form(body);
    let get = |name: &str| f.get(name).map(String::as_str).unwrap_or("");
    let decision = match get("decision") {
        "approve" => Decision::Approve,
        "reject" => Decision::Reject,
        "cancel" => Decision::Cancel,
        _ => return error_page(StatusCode::BAD_REQUEST, "Choose Approve, Reject or Cancel."),
    };
    let (redirect_uri, state, nonce) = (get("redirect_uri"), get("state"), get("nonce"));
    let (consent, raw) = match load_consent(ctx, get("consent_id")).await {
        Ok(Some(found)) => found,
        Ok(None) => return error_page(StatusCode::BAD_REQUEST, "The bank knows no such payment."),
        Err(e) => {
            tracing::error!(error = %e, "sandbox bank: consent unreadable");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The bank is unavailable; try again.",
            );
        }
    };
    if !same(get("csrf"), &csrf(&consent, redirect_uri, state, nonce)) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This form is out of date or was not made by the bank.",
        );
    }
    let status = consent_status(
        consent.status,
        ctx.now_ms - consent.created_ms,
        ctx.setup().consent_timeout_ms(),
    );
    if status != ConsentStatus::AwaitingAuthorisation {
        return reply::html(StatusCode::OK, page::decided(ctx.bank.name(), status));
    }
    let consent_key = keys::bank_consent(&consent.id);
    let mut sets = Vec::new();
    let (next, location) = match decision {
        Decision::Approve => {
            let Some(account) = get("account")
                .parse::<usize>()
                .ok()
                .filter(|i| *i < TEST_ACCOUNTS.len())
            else {
                return error_page(StatusCode::BAD_REQUEST, "Choose an account to pay from.");
            };
            let code = random_hex(24);
            let code_key = keys::bank_code(&sha256_hex(code.as_bytes()));
            let record = CodeRecord {
                bank: ctx.bank.id().to_owned(),
                consent_id: consent.id.clone(),
                redirect_uri: redirect_uri.to_owned(),
                nonce: nonce.to_owned(),
            };
            match store::to_json(&code_key, &record) {
                Ok(json) => sets.push((code_key, json, CODE_TTL_MS)),
                Err(e) => return ctx.unavailable(&e),
            }
            let next = ConsentRecord {
                status: ConsentStatus::Authorised,
                updated_ms: ctx.now_ms,
                debtor: Some(account),
                ..consent.clone()
            };
            (
                next,
                with_query(redirect_uri, &[("code", &code), ("state", state)]),
            )
        }
        Decision::Reject | Decision::Cancel => {
            let description = if decision == Decision::Reject {
                "The payer rejected the payment at the bank"
            } else {
                "The payer cancelled at the bank"
            };
            let next = ConsentRecord {
                status: ConsentStatus::Rejected,
                updated_ms: ctx.now_ms,
                ..consent.clone()
            };
            (
                next,
                with_query(
                    redirect_uri,
                    &[
                        ("error", "access_denied"),
                        ("error_description", description),
                        ("state", state),
                    ],
                ),
            )
        }
    };
    match store::to_json(&consent_key, &next) {
        Ok(json) => sets.push((consent_key.clone(), json, 0)),
        Err(e) => return ctx.unavailable(&e),
    }
    let change = Commit {
        idem: None,
        guard: (consent_key, Some(raw)),
        sets,
        ledger: None,
    };
    match store::commit(&ctx.gw.store, change).await {
        Ok(Committed::Done) => wire::see_other(&location),
        Ok(_) => error_page(
            StatusCode::CONFLICT,
            "This payment was decided meanwhile; go back to the shop.",
        ),
        Err(e) => {
            tracing::error!(error = %e, "sandbox bank: decision not stored");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The bank is unavailable; try again.",
            )
        }
    }
}

/// `base` with `params` appended to its query.
fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    let mut encoded = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        encoded.append_pair(k, v);
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", encoded.finish())
}
