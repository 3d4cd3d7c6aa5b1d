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

/// Sends `method` on `path` over a raw connection (any token, any length) and answers the
/// status line.
async fn raw_request(base: &str, method: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        s.read_to_end(&mut answer),
    )
    .await;
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn request_series(metrics: &str) -> Vec<String> {
    metrics
        .lines()
        .filter(|l| l.starts_with("calmony_http_requests_total{"))
        .map(|l| {
            l.rsplit_once(' ')
                .map_or(l, |(series, _)| series)
                .to_string()
        })
        .collect()
}

/// Invented methods (and one of 20,000 characters) from an unauthenticated client are counted
/// under `other`: they mint no series and no label carries them.
#[tokio::test]
async fn invented_methods_mint_no_metric_series() {
    let w = World::new();
    // Every route kind, with a known method, so their series exist before.
    for path in ["/v1/customers", "/nowhere", "/healthz"] {
        raw_request(&w.daemon.base(), "GET", path).await;
    }
    let before = request_series(&w.api.get("/metrics").await.text);
    let long = "Q".repeat(20_000);
    let mut methods: Vec<String> = (0..50).map(|i| format!("INVENTED{i}")).collect();
    methods.push(long.clone());
    for (i, method) in methods.iter().enumerate() {
        let path = ["/v1/customers", "/nowhere", "/healthz"][i % 3];
        let status = raw_request(&w.daemon.base(), method, path).await;
        assert!(status.starts_with("HTTP/1.1 "), "{status}");
    }
    let text = w.api.get("/metrics").await.text;
    assert!(!text.contains("INVENTED"), "{text}");
    assert!(!text.contains("QQQQQQQQ"), "the long method is no label");
    let after = request_series(&text);
    let new: Vec<&String> = after.iter().filter(|s| !before.contains(s)).collect();
    // At most the `other` method on each route and status seen (and /metrics itself).
    assert!(
        new.iter()
            .all(|s| s.contains(r#"method="other""#) || s.contains("/metrics")),
        "{new:?}"
    );
    assert!(new.len() <= 8, "{new:?}");
}
