//! Griffin's webhooks end to end, both sides in one daemon: the built-in Griffin sandbox
//! signs every event (ES512, RFC 9421) and delivers it to the daemon's own
//! `/webhooks/griffin/test`, registered at start; the daemon verifies it against the keys it
//! fetches from the sandbox and commits it once to `cp:griffin:test:events`. Forged,
//! tampered and replayed deliveries are refused with nothing written; the sandbox's faults
//! (duplicate, reordered and dropped webhooks, delayed, held and wrong-amount credits, a
//! rotated key) show as
//! injected.

use std::collections::HashSet;
use std::time::Duration;

use calmony_protocol::griffin::SigningKey;
use calmony_protocol::griffin::signature::sign_webhook;
use serde_json::{Value, json};

use crate::harness::receiver::{Answer, Receiver};
use crate::harness::{OPERATOR_TOKEN, World, eventually};

const STREAM: &str = "cp:griffin:test:events";
const SEEN: &str = "cp:griffin:test:seen";
/// The built-in sandbox's key, as the tests' daemons are configured with it; without one each
/// installation makes its own (the last test).
const API_KEY: &str = crate::harness::GRIFFIN_SANDBOX_KEY;

/// POST JSON to an operator route of the Griffin sandbox: (status, body).
async fn operator(base: &str, route: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/sandbox/griffin/{route}"))
        .bearer_auth(OPERATOR_TOKEN)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("operator route");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn credit(base: &str, pence: i64, reference: &str) -> Value {
    let (status, body) = operator(
        base,
        "credit",
        json!({"amount": pence, "reference": reference, "debtor-name": "Cardstream"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn faults(base: &str, set: Value) -> Value {
    let (status, body) = operator(base, "faults", set).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn attempts(base: &str) -> Vec<Value> {
    let r = reqwest::Client::new()
        .get(format!("{base}/sandbox/griffin/deliveries"))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .expect("deliveries");
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = serde_json::from_str(&r.text().await.unwrap_or_default()).expect("json");
    body["attempts"].as_array().cloned().unwrap_or_default()
}

/// A GET of the sandbox's `/v0` API with its key.
async fn v0(base: &str, path: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{base}/sandbox/griffin{path}"))
        .header("authorization", format!("GriffinAPIKey {API_KEY}"))
        .send()
        .await
        .expect("v0");
    assert_eq!(r.status().as_u16(), 200, "{path}");
    serde_json::from_str(&r.text().await.unwrap_or_default()).expect("json")
}

/// The stream's entries as (event-url, event-type, keyid, event JSON).
fn stream(w: &World) -> Vec<(String, String, String, Value)> {
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(STREAM)
        .arg("-")
        .arg("+")
        .query(&mut w.redis.conn())
        .expect("XRANGE");
    entries
        .into_iter()
        .map(|(_, fields)| {
            let get = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            (
                get("event-url"),
                get("event-type"),
                get("keyid"),
                serde_json::from_str(&get("event")).unwrap_or(Value::Null),
            )
        })
        .collect()
}

fn seen_count(w: &World) -> usize {
    redis::cmd("HLEN")
        .arg(SEEN)
        .query(&mut w.redis.conn())
        .expect("HLEN")
}

/// The stream entries about the payment of a credit with `reference`: the payment and the
/// transaction carry the reference, and every event of the payment its `payment-url`.
fn about(w: &World, reference: &str) -> Vec<(String, String, String, Value)> {
    let all = stream(w);
    let payments: HashSet<String> = all
        .iter()
        .filter(|(_, _, _, e)| {
            let p = &e["event-payload"];
            p["reference"] == reference || p["payment-reference"] == reference
        })
        .filter_map(|(_, _, _, e)| {
            e["event-payload"]["payment-url"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    all.into_iter()
        .filter(|(_, _, _, e)| {
            e["event-payload"]["payment-url"]
                .as_str()
                .is_some_and(|u| payments.contains(u))
        })
        .collect()
}

fn key_fetches(w: &World) -> i64 {
    redis::cmd("GET")
        .arg("cp:sandbox:griffin:key-fetches")
        .query::<Option<i64>>(&mut w.redis.conn())
        .expect("GET")
        .unwrap_or_default()
}

/// The sandbox's current signing key, read from its keyspace (test only: to sign as it does).
fn sandbox_key(w: &World) -> SigningKey {
    let mut c = w.redis.conn();
    let kid: String = redis::cmd("GET")
        .arg("cp:sandbox:griffin:signing-key")
        .query(&mut c)
        .expect("the sandbox has a key");
    let secret: String = redis::cmd("HGET")
        .arg("cp:sandbox:griffin:signing-keys")
        .arg(&kid)
        .query(&mut c)
        .expect("its secret");
    SigningKey::es512_from_bytes(&kid, &hex::decode(secret).expect("hex")).expect("a P-521 key")
}

/// POST a delivery to the daemon's receiver with exactly these headers: its status.
async fn deliver(base: &str, headers: &[(&'static str, String)], body: &[u8]) -> u16 {
    let mut req = reqwest::Client::new().post(format!("{base}/webhooks/griffin/test"));
    for (name, value) in headers {
        // reqwest writes the body's length itself (the same value).
        if *name != "content-length" {
            req = req.header(*name, value);
        }
    }
    req.body(body.to_vec())
        .send()
        .await
        .expect("delivery")
        .status()
        .as_u16()
}

fn sign(key: &SigningKey, base: &str, body: &[u8], nonce: &str) -> Vec<(&'static str, String)> {
    let url = reqwest::Url::parse(&format!("{base}/webhooks/griffin/test")).expect("url");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    sign_webhook(key, &url, body, now, nonce).expect("signed")
}

#[tokio::test]
async fn a_credit_becomes_signed_webhooks_the_daemon_commits_once_each() {
    let w = World::new();
    let base = w.daemon.base();
    credit(&base, 12_540, "CS-HOOK-1").await;
    let arrived = eventually(Duration::from_secs(10), || async {
        let types: HashSet<String> = about(&w, "CS-HOOK-1")
            .into_iter()
            .map(|(_, t, _, _)| t)
            .collect();
        [
            "payment-created",
            "admission-created",
            "admission-updated",
            "transaction-created",
        ]
        .iter()
        .all(|t| types.contains(*t))
    })
    .await;
    assert!(
        arrived,
        "the credit's events reached the stream: {:?}",
        stream(&w)
    );
    // The ledger entry's event carries the credit as Griffin's transaction does.
    let tx = about(&w, "CS-HOOK-1")
        .into_iter()
        .find(|(_, t, _, _)| t == "transaction-created")
        .map(|(_, _, _, e)| e)
        .expect("transaction-created");
    assert_eq!(tx["event-payload"]["balance-change"]["value"], "125.40");
    assert_eq!(tx["event-payload"]["balance-change-direction"], "credit");
    // Each event once, each signed by the published key.
    let all = stream(&w);
    let urls: HashSet<&String> = all.iter().map(|(u, _, _, _)| u).collect();
    assert_eq!(urls.len(), all.len(), "no event twice");
    assert_eq!(seen_count(&w), all.len());
    let published = v0(&base, "/v0/security/public-keys").await;
    let kid = published["keys"][0]["kid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(published["keys"][0]["alg"], "ES512");
    assert!(all.iter().all(|(_, _, k, _)| *k == kid), "{all:?}");
    // The webhook the daemon's test mode registered at start, and its attempts.
    let hooks = v0(&base, "/v0/organizations/og.CalmonySandbox/webhooks").await;
    assert_eq!(
        hooks["webhooks"][0]["webhook-destination-url"],
        format!("{base}/webhooks/griffin/test")
    );
    assert_eq!(hooks["webhooks"][0]["webhook-state"], "active");
    // Each attempt is recorded once its answer is in.
    let recorded = eventually(Duration::from_secs(5), || async {
        attempts(&base)
            .await
            .iter()
            .any(|a| a["outcome"] == "delivered" && a["http-status"] == 200 && a["keyid"] == kid)
    })
    .await;
    assert!(recorded, "{:?}", attempts(&base).await);
}

#[tokio::test]
async fn a_forged_tampered_or_replayed_delivery_is_refused_and_writes_nothing() {
    let w = World::new();
    let base = w.daemon.base();
    // Publishing the keys makes the sandbox's first key.
    v0(&base, "/v0/security/public-keys").await;
    let key = sandbox_key(&w);
    let body = json!({
        "event-url": "/v0/events/ev.TestForgery1",
        "event-type": "transaction-created",
        "event-payload": {"reference": "FORGE"},
        "created-at": "2026-01-01T00:00:00.000Z",
    })
    .to_string();
    let signed = sign(&key, &base, body.as_bytes(), "nonce-1");
    assert_eq!(
        deliver(&base, &signed, body.as_bytes()).await,
        200,
        "as Griffin signs"
    );
    assert_eq!((stream(&w).len(), seen_count(&w)), (1, 1));

    let tampered = body.replace("FORGE", "FORGED");
    let mut forger = [7_u8; 66];
    forger[0] = 0;
    let forged_key = SigningKey::es512_from_bytes(&key.keyid, &forger).expect("key");
    let other_kid = SigningKey::es512_from_bytes("griffin-unknown-kid", &forger).expect("key");
    let mut no_digest = sign(&key, &base, body.as_bytes(), "nonce-5");
    no_digest.retain(|(n, _)| *n != "content-digest");
    type Case<'a> = (&'a str, Vec<(&'static str, String)>, &'a [u8]);
    // The very request again (its 200 lost): a duplicate event, answered 200, nothing new.
    assert_eq!(deliver(&base, &signed, body.as_bytes()).await, 200);
    assert_eq!((stream(&w).len(), seen_count(&w)), (1, 1));
    // A nonce already used, on another event: a replay, refused.
    let other = body.replace("ev.TestForgery1", "ev.TestForgery2");
    let replayed = sign(&key, &base, other.as_bytes(), "nonce-1");
    let cases: Vec<Case<'_>> = vec![
        (
            "the same nonce on another event",
            replayed,
            other.as_bytes(),
        ),
        (
            "a tampered body",
            sign(&key, &base, body.as_bytes(), "nonce-2"),
            tampered.as_bytes(),
        ),
        (
            "another key under the kid",
            sign(&forged_key, &base, body.as_bytes(), "nonce-3"),
            body.as_bytes(),
        ),
        (
            "a kid Griffin never published",
            sign(&other_kid, &base, body.as_bytes(), "nonce-4"),
            body.as_bytes(),
        ),
        ("no content-digest", no_digest, body.as_bytes()),
        (
            "no signature at all",
            vec![("content-type", "application/json".into())],
            body.as_bytes(),
        ),
    ];
    for (name, headers, sent) in cases {
        assert_eq!(deliver(&base, &headers, sent).await, 401, "{name}");
        assert_eq!(
            (stream(&w).len(), seen_count(&w)),
            (1, 1),
            "{name} wrote nothing"
        );
    }
    // Live mode has no Griffin here, and there is no third mode: 404, nothing written.
    for mode in ["live", "staging"] {
        let r = reqwest::Client::new()
            .post(format!("{base}/webhooks/griffin/{mode}"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("delivery");
        assert_eq!(r.status().as_u16(), 404, "{mode}");
    }
    assert_eq!((stream(&w).len(), seen_count(&w)), (1, 1));
    // The same event signed afresh: a duplicate, answered 200, still nothing new.
    let again = sign(&key, &base, body.as_bytes(), "nonce-6");
    assert_eq!(deliver(&base, &again, body.as_bytes()).await, 200);
    assert_eq!((stream(&w).len(), seen_count(&w)), (1, 1));
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap_or_default();
    assert!(
        metrics.contains("calmony_griffin_webhook_duplicates_total{mode=\"test\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn duplicate_mode_delivers_each_event_twice_and_the_daemon_records_it_once() {
    let w = World::new();
    let base = w.daemon.base();
    assert_eq!(
        faults(&base, json!({"duplicate-webhooks": true})).await["duplicate-webhooks"],
        true
    );
    credit(&base, 500, "DUP-1").await;
    let twice = eventually(Duration::from_secs(10), || async {
        let a = attempts(&base).await;
        let delivered = |copy: i64| {
            a.iter()
                .filter(|x| {
                    x["outcome"] == "delivered"
                        && x["copy"] == copy
                        && x["event-type"] == "admission-updated"
                })
                .count()
        };
        delivered(1) >= 1 && delivered(2) >= 1
    })
    .await;
    assert!(twice, "both copies delivered: {:?}", attempts(&base).await);
    let all = stream(&w);
    let urls: HashSet<&String> = all.iter().map(|(u, _, _, _)| u).collect();
    assert_eq!(urls.len(), all.len(), "each event once in the stream");
    assert_eq!(
        about(&w, "DUP-1")
            .iter()
            .filter(|(_, t, _, _)| t == "admission-updated")
            .count(),
        1
    );
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap_or_default();
    let duplicates: f64 = metrics
        .lines()
        .find(|l| l.starts_with("calmony_griffin_webhook_duplicates_total{mode=\"test\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    assert!(duplicates >= 1.0, "{metrics}");
}

#[tokio::test]
async fn reorder_mode_delivers_the_newest_event_first() {
    let w = World::new();
    let base = w.daemon.base();
    faults(&base, json!({"reorder-webhooks": true})).await;
    credit(&base, 300, "ORDER-1").await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            about(&w, "ORDER-1").len() == 4
        })
        .await,
        "{:?}",
        stream(&w)
    );
    let received: Vec<String> = about(&w, "ORDER-1")
        .into_iter()
        .map(|(u, _, _, _)| u)
        .collect();
    // Griffin's events list is newest first: reorder mode delivers in that order, the
    // reverse of the order they happened in.
    let listed = v0(&base, "/v0/organizations/og.CalmonySandbox/events").await;
    let newest_first: Vec<String> = listed["events"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|e| e["event-url"].as_str())
                .filter(|u| received.iter().any(|r| r == u))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(received, newest_first);
    let mut oldest_first = newest_first.clone();
    oldest_first.reverse();
    assert_ne!(received, oldest_first, "not the order they happened in");
}

#[tokio::test]
async fn dropped_webhooks_never_arrive_though_the_ledger_has_the_credit() {
    let w = World::new();
    let base = w.daemon.base();
    // The account's opening deposit first, so every event of the credit below is new.
    v0(&base, "/v0/bank/accounts/ba.CalmonySettlement").await;
    assert!(
        eventually(Duration::from_secs(10), || async { !stream(&w).is_empty() }).await,
        "the deposit's event arrived"
    );
    faults(&base, json!({"drop-webhooks": 4})).await;
    credit(&base, 777, "DROP-1").await;
    let dropped = eventually(Duration::from_secs(10), || async {
        attempts(&base)
            .await
            .iter()
            .filter(|a| a["outcome"] == "dropped")
            .count()
            == 4
    })
    .await;
    assert!(dropped, "{:?}", attempts(&base).await);
    assert_eq!(faults(&base, json!({})).await["drop-webhooks"], 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(about(&w, "DROP-1").is_empty(), "{:?}", about(&w, "DROP-1"));
    let ledger = v0(&base, "/v0/bank/accounts/ba.CalmonySettlement/transactions").await;
    assert!(
        ledger["account-transactions"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["reference"] == "DROP-1")),
        "{ledger}"
    );
    // The next credit is delivered again.
    credit(&base, 778, "DROP-2").await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            !about(&w, "DROP-2").is_empty()
        })
        .await
    );
}

fn ledger_has(ledger: &Value, reference: &str) -> Option<Value> {
    ledger["account-transactions"]
        .as_array()?
        .iter()
        .find(|t| t["reference"] == reference)
        .cloned()
}

#[tokio::test]
async fn delayed_held_and_wrong_amount_credits_post_as_injected() {
    let w = World::new();
    let base = w.daemon.base();
    let tx_path = "/v0/bank/accounts/ba.CalmonySettlement/transactions";
    faults(
        &base,
        json!({"delay-next-credit-ms": 1500, "next-credit-delta": 7}),
    )
    .await;
    let late = credit(&base, 1000, "LATE-1").await;
    assert_eq!(
        (late["held"].clone(), late["amount"].clone()),
        (json!(true), json!(1007))
    );
    assert_eq!(
        ledger_has(&v0(&base, tx_path).await, "LATE-1"),
        None,
        "not posted yet"
    );
    let posted = eventually(Duration::from_secs(10), || async {
        ledger_has(&v0(&base, tx_path).await, "LATE-1").is_some()
    })
    .await;
    assert!(posted, "the delayed credit posted");
    let entry = ledger_has(&v0(&base, tx_path).await, "LATE-1").expect("entry");
    assert_eq!(
        entry["balance-change"]["value"], "10.07",
        "the wrong amount"
    );
    assert_eq!(
        entry["account-transaction-url"], late["account-transaction-url"],
        "under the URL answered when it was held"
    );
    // The faults were the next credit's only.
    let plain = credit(&base, 1000, "PLAIN-1").await;
    assert_eq!(
        (plain["held"].clone(), plain["amount"].clone()),
        (json!(false), json!(1000))
    );

    faults(&base, json!({"hold-next-credit": true})).await;
    let held = credit(&base, 2500, "HELD-1").await;
    assert_eq!(held["held"], true);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        ledger_has(&v0(&base, tx_path).await, "HELD-1"),
        None,
        "held until released"
    );
    let (status, released) = operator(&base, "credit/release", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(
        released["posted"].as_array().map(Vec::len),
        Some(1),
        "{released}"
    );
    let entry = ledger_has(&v0(&base, tx_path).await, "HELD-1").expect("released");
    assert_eq!(entry["balance-change"]["value"], "25.00");
    // Its webhooks follow the posting.
    assert!(
        eventually(Duration::from_secs(10), || async {
            !about(&w, "HELD-1").is_empty()
        })
        .await
    );
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_on_its_unknown_kid() {
    let w = World::new();
    let base = w.daemon.base();
    credit(&base, 100, "ROT-1").await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            about(&w, "ROT-1").len() >= 4
        })
        .await,
        "{:?}",
        stream(&w)
    );
    let first_kid = about(&w, "ROT-1")[0].2.clone();
    let before = key_fetches(&w);
    assert_eq!(before, 1, "one fetch for all the first deliveries");
    // Past the refetch spacing, then a new key.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, rotated) = operator(&base, "rotate-key", json!({})).await;
    assert_eq!(status, 200);
    let new_kid = rotated["kid"].as_str().unwrap_or_default().to_owned();
    assert_ne!(new_kid, first_kid);
    credit(&base, 200, "ROT-2").await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            about(&w, "ROT-2").len() >= 4
        })
        .await,
        "{:?} {:?}",
        stream(&w),
        attempts(&base).await
    );
    assert!(about(&w, "ROT-2").iter().all(|(_, _, k, _)| *k == new_kid));
    assert_eq!(
        key_fetches(&w),
        before + 1,
        "the unknown kid refetched the keys once"
    );
    let published = v0(&base, "/v0/security/public-keys").await;
    let kids: Vec<&str> = published["keys"]
        .as_array()
        .map(|k| k.iter().filter_map(|k| k["kid"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kids, [new_kid.as_str()], "the retired key left the list");
}

#[tokio::test]
async fn the_test_action_sends_a_test_event_and_reports_how_it_went() {
    let w = World::new();
    let base = w.daemon.base();
    let list = "/v0/organizations/og.CalmonySandbox/webhooks";
    // Registered by the daemon's first delivery pass, just after it starts.
    assert!(
        eventually(Duration::from_secs(10), || async {
            v0(&base, list).await["webhooks"][0].is_object()
        })
        .await
    );
    let hooks = v0(&base, list).await;
    let test_url = hooks["webhooks"][0]["test-webhook-url"]
        .as_str()
        .expect("the registered webhook")
        .to_owned();
    let client = reqwest::Client::new();
    let started = client
        .post(format!("{base}/sandbox/griffin{test_url}"))
        .header("authorization", format!("GriffinAPIKey {API_KEY}"))
        .send()
        .await
        .expect("test");
    assert_eq!(started.status().as_u16(), 201);
    let done = eventually(Duration::from_secs(10), || async {
        v0(&base, &test_url).await["webhook-request-status"] == "complete"
    })
    .await;
    assert!(done);
    assert_eq!(v0(&base, &test_url).await["webhook-http-status"], 200);
    assert!(stream(&w).iter().any(|(_, t, _, _)| t == "test-event"));
    // An inactive webhook cannot be tested.
    let hook_url = hooks["webhooks"][0]["webhook-url"]
        .as_str()
        .unwrap_or_default();
    let off = client
        .post(format!(
            "{base}/sandbox/griffin{hook_url}/actions/deactivate"
        ))
        .header("authorization", format!("GriffinAPIKey {API_KEY}"))
        .send()
        .await
        .expect("deactivate");
    assert_eq!(off.status().as_u16(), 200);
    let refused = client
        .post(format!("{base}/sandbox/griffin{test_url}"))
        .header("authorization", format!("GriffinAPIKey {API_KEY}"))
        .send()
        .await
        .expect("test");
    assert_eq!(refused.status().as_u16(), 422);
}

/// A `/v0` call with the sandbox's key and a JSON body: (status, body).
async fn v0_send(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{base}/sandbox/griffin{path}"))
        .header("authorization", format!("GriffinAPIKey {API_KEY}"));
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let r = req.send().await.expect("v0");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_refused_delivery_is_retried_until_a_registered_receiver_takes_it() {
    let w = World::new();
    let base = w.daemon.base();
    let list = "/v0/organizations/og.CalmonySandbox/webhooks";
    assert!(
        eventually(Duration::from_secs(10), || async {
            v0(&base, list).await["webhooks"][0].is_object()
        })
        .await
    );
    let own = v0(&base, list).await["webhooks"][0]["webhook-url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let receiver = Receiver::start().await;
    receiver.set(Answer::Fail);
    let new = json!({"webhook-destination-url": receiver.url, "webhook-description": "e2e"});
    // One webhook per organization: the daemon's own is there.
    let (status, _) = v0_send(&base, reqwest::Method::POST, list, Some(new.clone())).await;
    assert_eq!(status, 409);
    let (status, _) = v0_send(&base, reqwest::Method::DELETE, &own, None).await;
    assert_eq!(status, 204);
    let (status, refused) = v0_send(
        &base,
        reqwest::Method::POST,
        list,
        Some(json!({"webhook-destination-url": "https://merchant.example/hooks"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        refused["errors"][0]["source"]["pointer"],
        "/webhook-destination-url"
    );
    let (status, unknown) = v0_send(
        &base,
        reqwest::Method::POST,
        list,
        Some(json!({"webhook-destination-url": receiver.url, "colour": "red"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(unknown.to_string().contains("colour"), "{unknown}");
    let (status, hook) = v0_send(&base, reqwest::Method::POST, list, Some(new)).await;
    assert_eq!(status, 201, "{hook}");
    assert_eq!(hook["webhook-state"], "active");
    let hook_url = hook["webhook-url"].as_str().unwrap_or_default().to_owned();
    let (status, patched) = v0_send(
        &base,
        reqwest::Method::PATCH,
        &hook_url,
        Some(json!({"webhook-description": "the e2e receiver"})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["webhook-description"], "the e2e receiver");
    assert_eq!(patched["webhook-destination-url"], receiver.url.as_str());
    let (status, _) = v0_send(
        &base,
        reqwest::Method::PATCH,
        &hook_url,
        Some(json!({"webhook-destination-url": "ftp://x/"})),
    )
    .await;
    assert_eq!(status, 400);

    credit(&base, 4200, "RETRY-1").await;
    let event_of = |r: &crate::harness::receiver::Received| {
        serde_json::from_str::<Value>(&r.body).unwrap_or(Value::Null)
    };
    let refused_once = receiver
        .wait(Duration::from_secs(10), |got| {
            got.iter()
                .any(|r| r.answered == 500 && event_of(r)["event-type"] == "transaction-created")
        })
        .await;
    assert!(refused_once, "the first attempt was refused");
    let refused_url = receiver
        .received()
        .iter()
        .find(|r| r.answered == 500 && event_of(r)["event-type"] == "transaction-created")
        .map(|r| event_of(r)["event-url"].clone())
        .expect("the refused event");
    receiver.set(Answer::Ok);
    let retried = receiver
        .wait(Duration::from_secs(10), |got| {
            got.iter()
                .any(|r| r.answered == 200 && event_of(r)["event-url"] == refused_url)
        })
        .await;
    assert!(retried, "the retry after a second was taken");
    // Each attempt is recorded once its answer is in.
    let recorded = eventually(Duration::from_secs(5), || async {
        let tried = attempts(&base).await;
        let of_it: Vec<&Value> = tried
            .iter()
            .filter(|a| a["event-url"] == refused_url && a["copy"] == 1)
            .collect();
        of_it
            .iter()
            .any(|a| a["attempt"] == 1 && a["outcome"] == "refused" && a["http-status"] == 500)
            && of_it
                .iter()
                .any(|a| a["attempt"].as_i64() >= Some(2) && a["outcome"] == "delivered")
    })
    .await;
    assert!(recorded, "{:?}", attempts(&base).await);
    // The daemon's own receiver no longer hears of anything.
    assert!(about(&w, "RETRY-1").is_empty());
}

#[tokio::test]
async fn two_daemons_on_one_redis_send_each_event_once() {
    let w = World::new();
    let other = crate::harness::Daemon::start(&w.redis.url());
    // Credits through both daemons' sandboxes; both run a delivery pass on the same records.
    credit(&w.daemon.base(), 101, "TWO-1").await;
    credit(&other.base(), 102, "TWO-2").await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            about(&w, "TWO-1").len() == 4 && about(&w, "TWO-2").len() == 4
        })
        .await,
        "{:?}",
        stream(&w)
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let first_attempts: Vec<String> = attempts(&w.daemon.base())
        .await
        .iter()
        .filter(|a| a["attempt"] == 1)
        .filter_map(|a| a["event-url"].as_str().map(str::to_owned))
        .collect();
    let distinct: HashSet<&String> = first_attempts.iter().collect();
    assert_eq!(
        distinct.len(),
        first_attempts.len(),
        "no event was sent by both daemons: {first_attempts:?}"
    );
    let all = stream(&w);
    let urls: HashSet<&String> = all.iter().map(|(u, _, _, _)| u).collect();
    assert_eq!(urls.len(), all.len());
}

#[tokio::test]
async fn the_sandbox_answers_only_to_this_installation_s_own_key() {
    // No key configured: the daemon makes one at first start, keeps it in Redis, and its own
    // Griffin client uses it; the key earlier versions had in their source opens nothing.
    let w = World::with(&[
        ("CALMONY_GRIFFIN_TEST_API_KEY", ""),
        ("CALMONY_SETTLEMENT_POLL_SECONDS", "1"),
    ]);
    let base = w.daemon.base();
    let kept: String = redis::cmd("GET")
        .arg("cp:sandbox:griffin:api_key")
        .query(&mut w.redis.conn())
        .expect("the installation's key");
    assert!(kept.starts_with("g-test-") && kept.len() > 40, "{kept}");
    let index = |key: String| {
        let base = base.clone();
        async move {
            reqwest::Client::new()
                .get(format!("{base}/sandbox/griffin/v0/index"))
                .header("authorization", format!("GriffinAPIKey {key}"))
                .send()
                .await
                .expect("index")
                .status()
                .as_u16()
        }
    };
    assert_eq!(index("g-test-calmony-sandbox-api-key".into()).await, 401);
    assert_eq!(index(kept.clone()).await, 200);
    // The daemon's own client reads the account with it: a credit nobody expected is seen
    // and kept aside for the report.
    credit(&base, 500, "NOBODY-EXPECTS").await;
    assert!(
        eventually(Duration::from_secs(15), || async {
            let n: u64 = redis::cmd("ZCARD")
                .arg("cp:settlement:test:unexpected")
                .query(&mut w.redis.conn())
                .unwrap_or(0);
            n == 1
        })
        .await,
        "the follower read the sandbox's ledger with the installation's key"
    );
}
