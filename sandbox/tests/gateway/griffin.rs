//! The Griffin sandbox over its real interface: `/sandbox/griffin/v0/...` with the API key
//! (and, when configured, RFC 9421 signatures), a real Redis underneath.

use std::time::Duration;

use bytes::Bytes;
use calmony_protocol::griffin::SigningKey;
use calmony_protocol::griffin::signature::{self, Message, Params, REQUEST_COMPONENTS};
use calmony_sandbox::{
    Caller, GRIFFIN_TEST_API_KEY, GRIFFIN_TEST_CLIENT_KEYID, GRIFFIN_TEST_CLIENT_PRIVATE_PEM,
    GriffinSandboxConfig, Sandbox,
};
use http_body_util::BodyExt;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::Sim;

const BASE: &str = "/sandbox/griffin";

fn quick() -> GriffinSandboxConfig {
    GriffinSandboxConfig {
        payment_delay: Duration::from_millis(300),
        ..GriffinSandboxConfig::default()
    }
}

/// One request: `path` relative to the API root (`/v0/...`, with any query after `?`).
async fn call(
    sandbox: &Sandbox,
    method: Method,
    path: &str,
    body: Option<Value>,
    extra: &[(&str, String)],
) -> (StatusCode, HeaderMap, Value) {
    let full = format!("{BASE}{path}");
    let (full_path, query) = full.split_once('?').unwrap_or((&full, ""));
    let mut headers = HeaderMap::new();
    let mut put = |name: &str, value: &str| {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(value).expect("value"),
        );
    };
    put("host", "127.0.0.1:4242");
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    if !bytes.is_empty() {
        put("content-type", "application/json");
    }
    for (n, v) in extra {
        put(n, v);
    }
    let response = sandbox
        .handle(
            &Caller::Operator,
            &method,
            full_path,
            query,
            &headers,
            Bytes::from(bytes),
        )
        .await;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, headers, value)
}

fn key() -> (&'static str, String) {
    (
        "authorization",
        format!("GriffinAPIKey {GRIFFIN_TEST_API_KEY}"),
    )
}

async fn get(sandbox: &Sandbox, path: &str) -> Value {
    let (status, _, body) = call(sandbox, Method::GET, path, None, &[key()]).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

async fn post(sandbox: &Sandbox, path: &str, body: Value) -> (StatusCode, Value) {
    let (status, _, body) = call(sandbox, Method::POST, path, Some(body), &[key()]).await;
    (status, body)
}

/// The account, found by following links from the index.
async fn account(sandbox: &Sandbox) -> Value {
    let index = get(sandbox, "/v0/index").await;
    let org = get(
        sandbox,
        index["organization-url"].as_str().expect("org url"),
    )
    .await;
    assert_eq!(org["organization-mode"], "test-mode");
    let accounts = get(
        sandbox,
        org["organization-bank-accounts-url"]
            .as_str()
            .expect("accounts url"),
    )
    .await;
    let url = accounts["bank-accounts"][0]["account-url"]
        .as_str()
        .expect("account url");
    get(sandbox, url).await
}

async fn credit(sandbox: &Sandbox, pence: i64, reference: &str, once: Option<&str>) -> Value {
    let (status, _, body) = call(
        sandbox,
        Method::POST,
        "/credit",
        Some(json!({
            "amount": pence, "reference": reference, "end-to-end-id": format!("E2E-{reference}"),
            "debtor-name": "Cardstream Settlement", "once-key": once,
        })),
        &[],
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    body
}

async fn transactions(sandbox: &Sandbox, query: &str) -> Value {
    get(
        sandbox,
        &format!(
            "/v0/bank/accounts/{}/transactions{query}",
            calmony_sandbox::GRIFFIN_ACCOUNT_ID
        ),
    )
    .await
}

#[tokio::test]
async fn a_request_without_the_api_key_is_refused_with_www_authenticate() {
    let sim = Sim::start().await;
    let sandbox = sim.with_griffin(quick());
    for extra in [
        vec![],
        vec![("authorization", "GriffinAPIKey g-test-wrong".to_owned())],
    ] {
        let (status, headers, body) = call(&sandbox, Method::GET, "/v0/index", None, &extra).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(headers.get("www-authenticate").is_some());
        assert_eq!(body["errors"][0]["title"], "Unauthorized");
    }
    sim.finish().await;
}

#[tokio::test]
async fn a_new_account_opens_with_the_sandbox_deposit_and_credits_keep_a_running_balance() {
    let sim = Sim::start().await;
    let sandbox = sim.with_griffin(quick());
    let opened = account(&sandbox).await;
    assert_eq!(opened["account-balance"]["value"], "1000000.00");
    assert_eq!(opened["available-balance"]["value"], "1000000.00");
    assert_eq!(opened["bank-addresses"][0]["bank-id-code"], "gbdsc");

    let first = credit(&sandbox, 12540, "CS-SETTLE-0001", Some("settle-2025-04-11")).await;
    let again = credit(&sandbox, 12540, "CS-SETTLE-0001", Some("settle-2025-04-11")).await;
    assert_eq!(again["replayed"], true);
    assert_eq!(
        again["account-transaction-url"],
        first["account-transaction-url"]
    );
    credit(&sandbox, 100, "PBB-42", None).await;

    let page = transactions(&sandbox, "").await;
    let entries = page["account-transactions"].as_array().expect("entries");
    assert_eq!(entries.len(), 3, "{page}");
    assert_eq!(entries[0]["reference"], "PBB-42");
    assert_eq!(entries[0]["account-balance"]["value"], "1000126.40");
    assert_eq!(
        entries[1]["account-transaction-url"],
        first["account-transaction-url"]
    );
    assert_eq!(entries[1]["balance-change-direction"], "credit");
    assert_eq!(entries[1]["account-balance"]["value"], "1000125.40");
    assert_eq!(entries[2]["transaction-origin-type"], "deposit");
    assert_eq!(page["links"], json!({"prev": null, "next": null}));

    let payment = get(&sandbox, first["payment-url"].as_str().expect("payment")).await;
    assert_eq!(payment["payment-direction"], "inbound-payment");
    let admission = get(
        &sandbox,
        first["admission-url"].as_str().expect("admission"),
    )
    .await;
    assert_eq!(admission["admission-status"], "delivered");
    assert_eq!(
        admission["admission-scheme-information"]["end-to-end-identification"],
        "E2E-CS-SETTLE-0001"
    );
    assert_eq!(
        account(&sandbox).await["account-balance"]["value"],
        "1000126.40"
    );
    sim.finish().await;
}

#[tokio::test]
async fn the_ledger_pages_both_ways_by_opaque_cursors() {
    let sim = Sim::start().await;
    let sandbox = sim.with_griffin(quick());
    for i in 1..=4 {
        credit(&sandbox, i, &format!("R{i}"), None).await;
    }
    let mut seen = Vec::new();
    let mut page = transactions(&sandbox, "?page[size]=2").await;
    assert_eq!(page["links"]["prev"], Value::Null);
    loop {
        for e in page["account-transactions"].as_array().expect("entries") {
            seen.push(e["reference"].as_str().unwrap_or("deposit").to_owned());
        }
        let Some(next) = page["links"]["next"].as_str() else {
            break;
        };
        assert!(
            next.starts_with("/v0/"),
            "links are relative to the API root: {next}"
        );
        let next = next.to_owned();
        page = get(&sandbox, &next).await;
    }
    assert_eq!(seen, ["R4", "R3", "R2", "R1", "deposit"]);
    let prev = page["links"]["prev"].as_str().expect("a prev link");
    let back = get(&sandbox, prev).await;
    assert_eq!(back["account-transactions"][0]["reference"], "R2");
    let oldest_first = transactions(&sandbox, "?sort=processed-at&page[size]=1").await;
    assert_eq!(
        oldest_first["account-transactions"][0]["transaction-origin-type"],
        "deposit"
    );
    let (status, _, _) = call(
        &sandbox,
        Method::GET,
        &format!(
            "/v0/bank/accounts/{}/transactions?page[size]=201",
            calmony_sandbox::GRIFFIN_ACCOUNT_ID
        ),
        None,
        &[key()],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    sim.finish().await;
}

#[tokio::test]
async fn a_payout_is_held_while_processing_then_delivered_and_debited_once() {
    let sim = Sim::start().await;
    let sandbox = sim.with_griffin(quick());
    let opened = account(&sandbox).await;
    let payments_url = opened["account-payments-url"]
        .as_str()
        .expect("payments url");
    let (status, payment) = post(
        &sandbox,
        payments_url,
        json!({
            "payment-amount": {"currency": "GBP", "value": "250.00"},
            "creditor": {"creditor-type": "uk-domestic", "account-holder": "Merchant Ltd",
                         "bank-id": "040512", "bank-id-code": "gbdsc",
                         "account-number": "70031942", "account-number-code": "bban"},
            "payment-reference": "PAYOUT-0007"
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    let submissions = payment["payment-submissions-url"]
        .as_str()
        .expect("submissions");
    let (status, submission) = post(&sandbox, submissions, json!({"payment-scheme": "fps"})).await;
    assert_eq!(status, StatusCode::OK, "{submission}");
    assert_eq!(submission["submission-status"], "processing");
    let (status, _) = post(&sandbox, submissions, json!({"payment-scheme": "fps"})).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let held = account(&sandbox).await;
    assert_eq!(held["account-balance"]["value"], "1000000.00");
    assert_eq!(held["available-balance"]["value"], "999750.00");

    let (status, found) = post(
        &sandbox,
        "/v0/organizations/og.CalmonySandbox/payments/search",
        json!({"search-query": "PAYOUT-0007"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["payments"][0]["payment-url"], payment["payment-url"]);

    tokio::time::sleep(Duration::from_millis(400)).await;
    let url = submission["submission-url"]
        .as_str()
        .expect("submission url");
    assert_eq!(get(&sandbox, url).await["submission-status"], "delivered");
    let paid = account(&sandbox).await;
    assert_eq!(paid["account-balance"]["value"], "999750.00");
    assert_eq!(paid["available-balance"]["value"], "999750.00");
    let page = transactions(&sandbox, "").await;
    let entries = page["account-transactions"].as_array().expect("entries");
    assert_eq!(entries.len(), 2, "one debit, once: {page}");
    assert_eq!(entries[0]["balance-change-direction"], "debit");
    assert_eq!(entries[0]["payment-url"], payment["payment-url"]);
    assert_eq!(entries[0]["account-balance"]["value"], "999750.00");

    let events = get(&sandbox, "/v0/organizations/og.CalmonySandbox/events").await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event-type"].as_str())
        .collect();
    for kind in [
        "payment-created",
        "submission-created",
        "submission-updated",
        "transaction-created",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let updated = get(
        &sandbox,
        "/v0/organizations/og.CalmonySandbox/events?filter[event-type][eq]=submission-updated",
    )
    .await;
    let event = &updated["events"][0];
    assert_eq!(event["event-payload"]["submission-status"], "delivered");
    let again = get(&sandbox, event["event-url"].as_str().expect("event url")).await;
    assert_eq!(&again, event, "an event reads the same by its url");
    sim.finish().await;
}

#[tokio::test]
async fn a_payout_to_the_failing_account_fails_and_releases_its_hold() {
    let sim = Sim::start().await;
    let sandbox = sim.with_griffin(quick());
    let opened = account(&sandbox).await;
    let (_, payment) = post(
        &sandbox,
        opened["account-payments-url"]
            .as_str()
            .expect("payments url"),
        json!({
            "payment-amount": {"currency": "GBP", "value": "10.00"},
            "creditor": {"creditor-type": "uk-domestic", "account-holder": "Closed Ltd",
                         "bank-id": "040512", "bank-id-code": "gbdsc",
                         "account-number": calmony_sandbox::GRIFFIN_FAILING_ACCOUNT_NUMBER,
                         "account-number-code": "bban"}
        }),
    )
    .await;
    let submissions = payment["payment-submissions-url"]
        .as_str()
        .expect("submissions");
    post(&sandbox, submissions, json!({"payment-scheme": "fps"})).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let listed = get(&sandbox, submissions).await;
    assert_eq!(listed["submissions"][0]["submission-status"], "failed");
    let after = account(&sandbox).await;
    assert_eq!(after["available-balance"]["value"], "1000000.00");
    assert_eq!(
        transactions(&sandbox, "").await["account-transactions"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let (status, refused) = post(
        &sandbox,
        opened["account-payments-url"]
            .as_str()
            .expect("payments url"),
        json!({
            "payment-amount": {"currency": "GBP", "value": "2000000.00"},
            "creditor": {"creditor-type": "uk-domestic", "account-holder": "Big Ltd",
                         "bank-id": "040512", "bank-id-code": "gbdsc",
                         "account-number": "70031942", "account-number-code": "bban"}
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{refused}");
    let (status, body) = post(
        &sandbox,
        refused["payment-submissions-url"]
            .as_str()
            .expect("submissions"),
        json!({"payment-scheme": "fps"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["title"], "Insufficient funds");
    sim.finish().await;
}

#[tokio::test]
async fn with_a_client_key_configured_only_signed_requests_pass_and_a_nonce_once() {
    let sim = Sim::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let public = dir.path().join("client-public.pem");
    std::fs::write(&public, calmony_sandbox::GRIFFIN_TEST_CLIENT_PUBLIC_PEM).expect("write");
    let sandbox = sim.with_griffin(GriffinSandboxConfig {
        client_public_key_path: Some(public),
        ..quick()
    });
    let (status, _, body) = call(&sandbox, Method::GET, "/v0/index", None, &[key()]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let signer =
        SigningKey::ed25519_from_pem(GRIFFIN_TEST_CLIENT_KEYID, GRIFFIN_TEST_CLIENT_PRIVATE_PEM)
            .expect("key");
    let payment = json!({
        "payment-amount": {"currency": "GBP", "value": "1.00"},
        "creditor": {"creditor-type": "uk-domestic", "account-holder": "A",
                     "bank-id": "040512", "bank-id-code": "gbdsc",
                     "account-number": "70031942", "account-number-code": "bban"}
    });
    let bytes = payment.to_string();
    let path = format!(
        "{BASE}/v0/bank/accounts/{}/payments",
        calmony_sandbox::GRIFFIN_ACCOUNT_ID
    );
    let now = calmony_actors::clock::now_ms() / 1000;
    let digest = signature::content_digest(bytes.as_bytes());
    let length = bytes.len().to_string();
    let date = "Sat, 06 Dec 2025 10:00:00 GMT".to_owned();
    let covered: Vec<(&str, &str)> = vec![
        ("content-type", "application/json"),
        ("content-length", &length),
        ("date", &date),
        ("content-digest", &digest),
    ];
    let message = Message {
        method: "POST",
        authority: "127.0.0.1:4242",
        path: &path,
        query: "",
        headers: &covered,
    };
    let signed = signature::sign(
        &signer,
        &message,
        &Params {
            label: "sig1".into(),
            components: REQUEST_COMPONENTS.iter().map(|c| (*c).to_owned()).collect(),
            created: now,
            expires: None,
            nonce: "nonce-1".into(),
            keyid: GRIFFIN_TEST_CLIENT_KEYID.into(),
        },
    )
    .expect("sign");
    let extra = vec![
        key(),
        ("content-length", length.clone()),
        ("date", date.clone()),
        ("content-digest", digest.clone()),
        ("signature-input", signed.signature_input.clone()),
        ("signature", signed.signature.clone()),
    ];
    let api_path = path.strip_prefix(BASE).expect("base");
    let (status, _, body) = call(
        &sandbox,
        Method::POST,
        api_path,
        Some(payment.clone()),
        &extra,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _, body) = call(
        &sandbox,
        Method::POST,
        api_path,
        Some(payment.clone()),
        &extra,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the nonce again: {body}");
    let tampered = json!({"payment-amount": {"currency": "GBP", "value": "999.00"}, "creditor": payment["creditor"]});
    let (status, _, body) = call(&sandbox, Method::POST, api_path, Some(tampered), &extra).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    sim.finish().await;
}
