//! Slow and idle clients: a body that stalls, headers that never end, a made-up key with a
//! body it never sends, and more connections than allowed. Each is cut off or refused while
//! other clients are served as usual.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::World;

/// A connection that sent `head` (a request line and headers) and then stalls.
async fn stall(base: &str, head: &str) -> TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("write");
    s
}

/// What the server sends before it closes the connection (`None`: still open after `limit`),
/// and when it closed.
async fn until_closed(mut s: TcpStream, limit: Duration) -> Option<(String, Duration)> {
    let started = Instant::now();
    let mut answer = Vec::new();
    match tokio::time::timeout(limit, s.read_to_end(&mut answer)).await {
        Ok(_) => Some((
            String::from_utf8_lossy(&answer).into_owned(),
            started.elapsed(),
        )),
        Err(_) => None,
    }
}

/// Headers announcing a 100,000-byte form body, and ten bytes of it.
fn announcing(path: &str, key: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: calmony\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nname=Alice"
    )
}

#[tokio::test]
async fn a_stalled_body_is_cut_off_while_other_clients_are_served() {
    let w = World::with(&[
        ("CALMONY_HTTP_BODY_READ_TIMEOUT_SECONDS", "4"),
        ("CALMONY_HTTP_HEADER_READ_TIMEOUT_SECONDS", "30"),
    ]);
    let base = w.daemon.base();
    // Known good before the stall, so the body is waited for.
    w.api.customer().await;
    let mut stalled = Vec::new();
    let stalled_at = Instant::now();
    for path in [
        "/v1/customers",
        "/pay/checkout/prj_x/test/cs_x/return",
        "/pay/3ds/prj_x/test/pi_x/complete",
        "/sandbox/direct",
    ] {
        stalled.push((path, stall(&base, &announcing(path, &w.api.key)).await));
    }
    // Meanwhile, everyone else is served at once.
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(w.api.get("/v1/customers").await.status, 200);
    }
    let created = w.api.post_form("/v1/customers", "name=Bob").await;
    assert_eq!(created.status, 200, "{}", created.text);
    // Served while the stalled ones wait for their bodies (four seconds).
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    for (path, s) in stalled {
        let (answer, _) = until_closed(s, Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("{path}: still open"));
        let after = stalled_at.elapsed();
        assert!(answer.starts_with("HTTP/1.1 408 "), "{path}: {answer}");
        assert!(answer.to_ascii_lowercase().contains("connection: close"));
        assert!(
            answer.contains(r#""type":"invalid_request_error""#),
            "{answer}"
        );
        assert!(
            after >= Duration::from_millis(3500) && after < Duration::from_secs(12),
            "{path}: cut off by the timeout, after {after:?}"
        );
    }
    assert_eq!(w.api.get("/v1/customers").await.status, 200);
}

#[tokio::test]
async fn a_made_up_key_is_refused_before_its_body_is_read() {
    // The default body timeout (30 s): the refusal must not wait for it.
    let w = World::new();
    let base = w.daemon.base();
    for path in ["/v1/customers", "/v1/payment_intents", "/v1/nowhere"] {
        let s = stall(
            &base,
            &announcing(path, "sk_test_madeupmadeupmadeupmadeup1234"),
        )
        .await;
        let (answer, after) = until_closed(s, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("{path}: no answer while the body is awaited"));
        assert!(answer.starts_with("HTTP/1.1 401 "), "{path}: {answer}");
        assert!(answer.contains("authentication_error"), "{answer}");
        assert!(after < Duration::from_secs(5));
    }
}

#[tokio::test]
async fn headers_that_never_end_are_cut_off() {
    let w = World::with(&[("CALMONY_HTTP_HEADER_READ_TIMEOUT_SECONDS", "2")]);
    let base = w.daemon.base();
    let s = stall(&base, "POST /v1/customers HTTP/1.1\r\nHost: calmony\r\n").await;
    assert_eq!(w.api.get("/v1/customers").await.status, 200);
    let (_, after) = until_closed(s, Duration::from_secs(10))
        .await
        .expect("closed after the header timeout");
    assert!(after >= Duration::from_millis(1500), "{after:?}");
    // An idle kept-alive connection too.
    let s = stall(&base, "").await;
    assert!(until_closed(s, Duration::from_secs(10)).await.is_some());
}

#[tokio::test]
async fn connections_beyond_the_cap_are_answered_503_and_closed() {
    let w = World::with(&[
        ("CALMONY_HTTP_MAX_CONNECTIONS", "3"),
        ("CALMONY_HTTP_HEADER_READ_TIMEOUT_SECONDS", "30"),
    ]);
    let base = w.daemon.base();
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(stall(&base, "").await);
    }
    // Accepted in order: the three hold every place before the next one comes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = w.api.get("/v1/customers").await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.header("stripe-should-retry"), Some("true"));
    assert_eq!(refused.header("connection"), Some("close"));
    assert_eq!(refused.err("type"), "api_error");
    drop(idle.pop());
    let mut served = false;
    for _ in 0..40 {
        if w.api.get("/v1/customers").await.status == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        served,
        "a place freed by a closed connection is taken again"
    );
    // The last request's connection may hold its place a moment after its answer.
    let mut m = w.api.get("/metrics").await;
    for _ in 0..40 {
        if m.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        m = w.api.get("/metrics").await;
    }
    assert!(
        m.text
            .contains(r#"calmony_connections_refused_total{answered="true"}"#),
        "{}",
        m.text
    );
}
