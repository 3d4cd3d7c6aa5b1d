//! Operator endpoints and the request id on every answer.

use crate::harness::World;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let w = World::with(&[("CALMONY_API_RATE_LIMIT_PER_SECOND", "2")]);
    assert_eq!(w.api.get("/healthz").await.status, 200);
    let ready = w.api.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json["redis"], "ok");
    for _ in 0..5 {
        w.api.get("/v1/customers").await;
    }
    let m = w.api.get("/metrics").await;
    assert_eq!(m.status, 200);
    assert!(
        m.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    assert!(
        m.text.contains(
            r#"calmony_http_requests_total{route="/v1/customers",method="GET",status="200"}"#
        ),
        "{}",
        m.text
    );
    assert!(
        m.text.contains(r#"status="429""#),
        "rate-limited requests are counted by status"
    );
    assert!(
        m.text
            .contains("calmony_http_request_duration_seconds_bucket")
    );
    assert!(m.text.contains("calmony_rate_limited_total"));
    assert!(m.text.contains("calmony_redis_errors_total"));
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_json() {
    let w = World::new();
    for path in [
        "/v1/customers",
        "/v1/customers/cus_missing",
        "/v1/unknown",
        "/nowhere",
        "/healthz",
    ] {
        let r = w.api.get(path).await;
        assert!(
            r.header("request-id")
                .is_some_and(|id| id.starts_with("req_")),
            "{path}"
        );
        assert!(r.json.is_object(), "{path}: {}", r.text);
        if r.status >= 400 {
            assert!(r.json["error"]["type"].is_string(), "{path}");
        }
    }
}

/// `calmony-payd record` prints a packed record's JSON: a payment intent's, an event's, and
/// the sandbox gateway's transaction for it (a string key, packed too).
#[tokio::test]
async fn record_prints_packed_records_and_sandbox_transactions() {
    let w = World::new();
    let pm = w.api.card("4242424242424242", 12, 2030, None).await;
    let paid = w.api.pay(2500, &pm, "").await;
    let pi = paid.json["id"].as_str().expect("id").to_owned();
    let mut c = w.redis.conn();
    let keys = |pattern: &str, c: &mut redis::Connection| -> Vec<String> {
        redis::cmd("KEYS").arg(pattern).query(c).expect("KEYS")
    };
    let intent = keys(&format!("cp:*:test:obj:{pi}"), &mut c);
    assert_eq!(intent.len(), 1, "{intent:?}");
    let (status, stdout, stderr) = w.daemon.cli(&["record", &intent[0]]);
    assert!(status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(json["status"], "succeeded");
    // An event has no record key of its own (it is an entry of the log); its would-be key
    // still prints it, with its id.
    let listed = w.api.get("/v1/events?type=payment_intent.succeeded").await;
    let event = listed.json["data"][0]["id"]
        .as_str()
        .expect("event")
        .to_owned();
    let key = intent[0].replace(&format!("obj:{pi}"), &format!("obj:{event}"));
    let (status, stdout, stderr) = w.daemon.cli(&["record", &key]);
    assert!(status.success(), "{key}: {stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(json["id"], event.as_str());
    assert_eq!(json["data"]["object"]["id"], pi.as_str());

    let txns = keys("cp:sandbox:txn:*", &mut c);
    assert!(!txns.is_empty());
    for key in &txns {
        let (status, stdout, stderr) = w.daemon.cli(&["record", key]);
        assert!(status.success(), "{key}: {stderr}");
        let txn: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
        assert_eq!(
            Some(txn["xref"].as_str().unwrap_or_default()),
            key.strip_prefix("cp:sandbox:txn:")
        );
    }
    let sale = txns.iter().any(|key| {
        let (_, stdout, _) = w.daemon.cli(&["record", key]);
        stdout.contains(&pi)
    });
    assert!(sale, "the sale names the payment intent as its orderRef");
}
