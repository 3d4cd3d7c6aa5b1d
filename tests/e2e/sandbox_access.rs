//! The sandbox's control routes (faults, settlement, the ledger) and its merchant secret:
//! off without an operator token, refused to anyone but the operator with one, the ledger
//! shown to a project's test key for that project's charges only, and an installation secret
//! of its own so a result signed with the Cardstream guide's published one is refused.

use calmony_protocol::cardstream::Fields;
use serde_json::Value;

use crate::harness::{Api, OPERATOR_TOKEN, World, ledger, ledger_as, sales_per_order};

/// A POST to a sandbox route with `credential` as bearer token (or none): status and body.
async fn post_as(base: &str, path: &str, form: &str, credential: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_string());
    if let Some(c) = credential {
        req = req.bearer_auth(c);
    }
    let r = req.send().await.expect("sandbox");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn get_as(base: &str, path: &str, credential: Option<&str>) -> u16 {
    let mut req = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(c) = credential {
        req = req.bearer_auth(c);
    }
    req.send().await.expect("sandbox").status().as_u16()
}

/// A captured payment of `api`'s project: its intent id.
async fn paid(api: &Api) -> String {
    let pm = api.card("4242424242424242", 12, 2030, None).await;
    let r = api.pay(1500, &pm, "").await;
    assert_eq!(r.json["status"], "succeeded", "{}", r.text);
    r.json["id"].as_str().expect("id").to_string()
}

/// The faults as the operator reads them.
async fn faults(base: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{base}/sandbox/faults"))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .expect("faults");
    assert_eq!(r.status().as_u16(), 200);
    serde_json::from_str(&r.text().await.unwrap_or_default()).unwrap_or(Value::Null)
}

fn unsettled(w: &World) -> u64 {
    redis::cmd("SCARD")
        .arg("cp:sandbox:unsettled")
        .query(&mut w.redis.conn())
        .expect("SCARD")
}

#[tokio::test]
async fn without_an_operator_token_faults_and_settlement_are_off_and_the_ledger_needs_a_key() {
    let w = World::with(&[("CALMONY_SANDBOX_OPERATOR_TOKEN", "")]);
    let base = w.daemon.base();
    let pi = paid(&w.api).await;
    assert_eq!(unsettled(&w), 1);
    for credential in [None, Some(OPERATOR_TOKEN), Some(w.api.key.as_str())] {
        let (status, _) = post_as(&base, "/sandbox/faults", "fail_next=5", credential).await;
        assert_eq!(status, 404, "{credential:?}");
        assert_eq!(get_as(&base, "/sandbox/faults", credential).await, 404);
        let (status, _) = post_as(&base, "/sandbox/settle", "", credential).await;
        assert_eq!(status, 404, "{credential:?}");
    }
    assert_eq!(get_as(&base, "/sandbox/ledger", None).await, 401);
    assert_eq!(
        get_as(&base, "/sandbox/ledger", Some(OPERATOR_TOKEN)).await,
        401
    );
    // Nothing was set or settled: the next payment goes through, the first is unsettled.
    paid(&w.api).await;
    assert_eq!(unsettled(&w), 2);
    // The developer still sees their own charges with their test key.
    let own = ledger_as(&base, None, &w.api.key).await;
    assert_eq!(sales_per_order(&own).get(&pi), Some(&1), "{own:?}");
}

#[tokio::test]
async fn with_an_operator_token_only_the_operator_sets_faults_and_settles() {
    let w = World::new();
    let base = w.daemon.base();
    paid(&w.api).await;
    let wrong = "x".repeat(OPERATOR_TOKEN.len());
    for credential in [None, Some(wrong.as_str()), Some(w.api.key.as_str())] {
        let (status, body) = post_as(&base, "/sandbox/faults", "fail_next=5", credential).await;
        assert_eq!(status, 401, "{credential:?}: {body}");
        assert_eq!(get_as(&base, "/sandbox/faults", credential).await, 401);
        let (status, _) = post_as(&base, "/sandbox/settle", "", credential).await;
        assert_eq!(status, 401, "{credential:?}");
    }
    assert_eq!(get_as(&base, "/sandbox/ledger", None).await, 401);
    assert_eq!(get_as(&base, "/sandbox/ledger", Some(&wrong)).await, 401);
    // Refused means not done.
    paid(&w.api).await;
    assert_eq!(unsettled(&w), 2);

    let (status, settled) = post_as(&base, "/sandbox/settle", "", Some(OPERATOR_TOKEN)).await;
    assert_eq!((status, settled["settled"].as_u64()), (200, Some(2)));
    assert_eq!(
        faults(&base).await["fail_next"],
        0,
        "the refused posts set nothing"
    );
    let (status, _) = post_as(
        &base,
        "/sandbox/faults",
        "fail_next=5",
        Some(OPERATOR_TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(faults(&base).await["fail_next"], 5);
}

#[tokio::test]
async fn a_projects_test_key_sees_only_its_own_ledger_entries() {
    let w = World::new();
    let base = w.daemon.base();
    let other = w.daemon.api(&w.daemon.key("globex", "test"));
    let ours = paid(&w.api).await;
    let theirs = paid(&other).await;
    let refund = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={ours}&amount=500"))
        .await;
    assert_eq!(refund.status, 200, "{}", refund.text);

    let refs = |entries: &[Value]| -> Vec<String> {
        entries
            .iter()
            .map(|e| e["orderRef"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let acme = ledger_as(&base, None, &w.api.key).await;
    assert!(!acme.is_empty());
    assert!(refs(&acme).iter().all(|r| *r == ours), "{acme:?}");
    let globex = ledger_as(&base, None, &other.key).await;
    assert!(!globex.is_empty());
    assert!(refs(&globex).iter().all(|r| *r == theirs), "{globex:?}");
    // Asking for the other project's order by name finds nothing.
    assert!(ledger_as(&base, Some(&theirs), &w.api.key).await.is_empty());
    // The operator sees both.
    let all = sales_per_order(&ledger(&base, None).await);
    assert_eq!((all.get(&ours), all.get(&theirs)), (Some(&1), Some(&1)));
    // A live key is not a test project's key.
    let live = w.daemon.key("acme", "live");
    assert_eq!(get_as(&base, "/sandbox/ledger", Some(&live)).await, 401);
}

#[tokio::test]
async fn a_hosted_page_result_signed_with_the_guides_published_secret_is_refused() {
    let w = World::new();
    let base = w.daemon.base();
    // The installation made its own secret, and it is not the published one.
    let kept: String = redis::cmd("GET")
        .arg("cp:sandbox:merchant_secret")
        .query(&mut w.redis.conn())
        .expect("the installation's secret");
    assert!(kept.len() >= 32);
    assert_ne!(kept, calmony_config::PUBLISHED_DEMO_SECRET);

    let r = w
        .api
        .post_form(
            "/v1/checkout/sessions",
            "mode=payment&success_url=https%3A%2F%2Fshop.example%2Fpaid&cancel_url=https%3A%2F%2Fshop.example%2Fno\
             &line_items[0][price_data][currency]=gbp&line_items[0][price_data][unit_amount]=2500\
             &line_items[0][price_data][product_data][name]=Deposit&line_items[0][quantity]=1",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json["id"].as_str().expect("id").to_string();
    let page = r.json["url"].as_str().expect("url").to_string();
    // What the hosted page would post back had the card been charged, forged.
    let mut result: Fields = [
        ("merchantID", "100001"),
        ("action", "SALE"),
        ("type", "1"),
        ("amount", "2500"),
        ("currencyCode", "826"),
        ("countryCode", "826"),
        ("orderRef", id.as_str()),
        ("transactionUnique", &format!("{id}.forged0001")),
        ("responseCode", "0"),
        ("responseMessage", "AUTHCODE:123456"),
        ("state", "captured"),
        ("xref", "26120612FA54ZZ44XX12345"),
        ("transactionID", "999999"),
    ]
    .into_iter()
    .collect();
    result.add_signature(calmony_config::PUBLISHED_DEMO_SECRET, None);
    let callback = format!("{}/callback", page.trim_end_matches('/'));
    let r = reqwest::Client::new()
        .post(&callback)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(result.encode())
        .send()
        .await
        .expect("callback");
    assert!(r.status().is_client_error(), "{}", r.status());
    let after = w.api.get(&format!("/v1/checkout/sessions/{id}")).await;
    assert_eq!(
        (
            after.json["status"].as_str(),
            after.json["payment_status"].as_str()
        ),
        (Some("open"), Some("unpaid")),
        "{}",
        after.text
    );
    assert!(base.starts_with("http://"));
}
