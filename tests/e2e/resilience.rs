//! Redis lost under a running daemon, and SIGTERM with requests in flight.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{World, eventually};

#[tokio::test]
async fn redis_down_gives_503_and_service_resumes_by_itself() {
    let mut w = World::new();
    let c = w.api.post_form("/v1/customers", "name=Before").await;
    assert_eq!(c.status, 200);
    let id = c.json["id"].as_str().expect("id").to_string();

    w.redis.kill();
    let down = w.api.get(&format!("/v1/customers/{id}")).await;
    assert_eq!(down.status, 503, "{}", down.text);
    assert_eq!(down.err("type"), "api_error");
    assert_eq!(down.header("stripe-should-retry"), Some("true"));
    let post = w.api.post_form("/v1/customers", "name=During").await;
    assert_eq!(post.status, 503);
    let ready = w.api.get("/readyz").await;
    assert_eq!(ready.status, 503);
    let health = w.api.get("/healthz").await;
    assert_eq!(health.status, 200, "the process itself is alive");

    w.redis.restart();
    let api = w.api.clone();
    let back = eventually(Duration::from_secs(15), || {
        let api = api.clone();
        async move { api.get("/v1/customers").await.status == 200 }
    })
    .await;
    assert!(back, "service resumed after Redis came back");
    let got = w.api.get(&format!("/v1/customers/{id}")).await;
    assert_eq!(
        got.json["name"], "Before",
        "data written before the outage survived"
    );
    let list = w.api.get("/v1/customers").await;
    assert_eq!(
        list.json["data"].as_array().map(Vec::len),
        Some(1),
        "the 503 wrote nothing"
    );
    assert!(
        w.daemon.logs().contains("unavailable"),
        "the outage is logged"
    );
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_and_exits_zero() {
    let mut w = World::new();
    let addr = format!("127.0.0.1:{}", w.daemon.port);
    let key = w.api.key.clone();
    let mut conns = Vec::new();
    for i in 0..20 {
        let body = format!("name=InFlight{i}&description=sent+half+before+SIGTERM");
        let head = format!(
            "POST /v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        );
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        s.write_all(head.as_bytes()).await.expect("head");
        s.write_all(&body.as_bytes()[..10])
            .await
            .expect("half the body");
        conns.push((s, body));
    }
    // Let the daemon parse every request's headers, so they are all in flight.
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.daemon.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tokio::net::TcpStream::connect(&addr).await.is_err(),
        "no new connections after SIGTERM"
    );
    let mut statuses = Vec::new();
    for (mut s, body) in conns {
        s.write_all(&body.as_bytes()[10..])
            .await
            .expect("rest of the body");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("response");
        statuses.push(out.lines().next().unwrap_or("").to_string());
    }
    assert!(statuses.iter().all(|l| l.contains(" 200 ")), "{statuses:?}");
    let status = w.daemon.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit status {status}");
    assert!(w.daemon.logs().contains("SIGTERM"));

    let mut conn = w.redis.conn();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("cp:*:test:customers")
        .query(&mut conn)
        .expect("keys");
    let count: usize = redis::cmd("ZCARD")
        .arg(&keys[0])
        .query(&mut conn)
        .expect("zcard");
    assert_eq!(count, 20, "every in-flight request was committed");
}
