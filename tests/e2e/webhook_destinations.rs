//! Where webhooks may go: a live endpoint is refused for every spelling of a local address,
//! and a public-only endpoint whose name resolves to loopback (or whose literal became
//! forbidden) fails its attempts without ever connecting, while test mode still reaches a
//! developer's machine by default.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::harness::{Daemon, Redis, World, eventually};

/// Every spelling from the SSRF report, and the other kinds of address a live endpoint may
/// not name.
const LOCAL_SPELLINGS: &[&str] = &[
    "https://2130706433/",
    "https://0x7f000001/",
    "https://127.1/",
    "https://0177.0.0.1/",
    "https://[::ffff:127.0.0.1]/",
    "https://[64:ff9b::7f00:1]/",
    "https://[2002:7f00:1::]/",
    "https://[fe80::1%25eth0]/",
    "https://localhost./",
    "https://127.0.0.1\\@example.com/",
    "https://example.com#@127.0.0.1",
    "https://10.0.0.5/",
    "https://172.16.0.1/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",
    "https://198.18.0.1/",
    "https://192.0.0.1/",
    "https://240.0.0.1/",
    "https://224.0.0.1/",
    "https://169.254.169.254/",
    "https://[fd00::1]/",
    "https://[::127.0.0.1]/",
    "https://[::1]/",
    "https://0.0.0.0/",
];

fn form_url(url: &str) -> String {
    form_urlencoded::byte_serialize(url.as_bytes()).collect()
}

#[tokio::test]
async fn every_spelling_of_a_local_address_is_refused_for_a_live_endpoint() {
    let w = World::new();
    let live = w.daemon.api(&w.daemon.key("acme", "live"));
    let ok = live
        .post_form(
            "/v1/webhook_endpoints",
            "url=https%3A%2F%2Fhooks.example.com%2Fx&enabled_events[]=*",
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let id = ok.json["id"].as_str().expect("id").to_string();
    for url in LOCAL_SPELLINGS {
        let body = format!("url={}&enabled_events[]=*", form_url(url));
        let r = live.post_form("/v1/webhook_endpoints", &body).await;
        assert_eq!(
            (r.status, r.err("param")),
            (400, "url"),
            "create {url}: {}",
            r.text
        );
        let r = live
            .post_form(
                &format!("/v1/webhook_endpoints/{id}"),
                &format!("url={}", form_url(url)),
            )
            .await;
        assert_eq!(
            (r.status, r.err("param")),
            (400, "url"),
            "update {url}: {}",
            r.text
        );
    }
    let listed = live.get("/v1/webhook_endpoints").await;
    assert_eq!(listed.json["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed.json["data"][0]["url"], "https://hooks.example.com/x");
}

/// A TCP listener that only counts the connections it is offered.
async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, count)
}

#[tokio::test]
async fn a_public_only_endpoint_resolving_to_loopback_fails_without_connecting() {
    let (port, connections) = counting_listener().await;
    let redis = Redis::start();
    let keys = tempfile::tempdir().expect("key dir");
    let key_dir = keys.path().display().to_string();
    // Made while test mode may reach any local address...
    let first = Daemon::start_with(
        &redis.url(),
        &[
            ("CALMONY_WEBHOOKS_LOCAL_TARGETS", "test"),
            ("CALMONY_SECRETS_KEY_DIR", key_dir.as_str()),
        ],
    );
    let key = first.key("acme", "test");
    let api = first.api(&key);
    let mut endpoints = Vec::new();
    for url in [
        format!("http://localhost:{port}/hooks"),
        format!("http://127.0.0.1:{port}/hooks"),
        format!("http://[::ffff:127.0.0.1]:{port}/hooks"),
    ] {
        let r = api
            .post_form(
                "/v1/webhook_endpoints",
                &format!("url={}&enabled_events[]=customer.created", form_url(&url)),
            )
            .await;
        assert_eq!(r.status, 200, "{url}: {}", r.text);
        endpoints.push(r.json["id"].as_str().expect("id").to_string());
    }
    drop(first);
    // ...then delivered by a daemon that holds test mode to public servers.
    let d = Daemon::start_with(
        &redis.url(),
        &[
            ("CALMONY_WEBHOOKS_LOCAL_TARGETS", "none"),
            ("CALMONY_SECRETS_KEY_DIR", key_dir.as_str()),
        ],
    );
    let api = d.api(&key);
    let r = api
        .post_form(
            "/v1/webhook_endpoints",
            &format!(
                "url={}&enabled_events[]=*",
                form_url(&format!("http://127.0.0.1:{port}/x"))
            ),
        )
        .await;
    assert_eq!((r.status, r.err("param")), (400, "url"), "{}", r.text);
    api.customer().await;
    for we in &endpoints {
        let path = &format!("/v1/webhook_endpoints/{we}/attempts");
        let api = &api;
        let failed = eventually(Duration::from_secs(15), || async move {
            let r = api.get(path).await;
            r.json["data"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
        assert!(failed, "an attempt to {we} is recorded");
        let a = api.get(path).await.json["data"][0].clone();
        assert_eq!(a["status"], "failed", "{a}");
        assert!(a["http_status"].is_null(), "{a}");
        let said = a["response"].as_str().unwrap_or_default();
        assert!(said.contains("loopback"), "the attempt says why: {said}");
        assert!(a["next_attempt_at"].is_i64(), "retried as any failure: {a}");
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "nothing connected to the local receiver"
    );
}

#[tokio::test]
async fn test_mode_reaches_the_loopback_but_not_a_private_network_by_default() {
    let w = World::new();
    for (url, ok) in [
        ("http://127.0.0.1:9/hooks", true),
        ("http://localhost:9/hooks", true),
        ("http://10.0.0.7:9200/hooks", false),
        ("http://169.254.169.254/latest/meta-data/", false),
        ("http://[::ffff:127.0.0.1]:9/hooks", false),
    ] {
        let r = w
            .api
            .post_form(
                "/v1/webhook_endpoints",
                &format!("url={}&enabled_events[]=customer.created", form_url(url)),
            )
            .await;
        assert_eq!(r.status == 200, ok, "{url}: {}", r.text);
        if !ok {
            assert_eq!(r.json["error"]["param"], "url", "{}", r.text);
        }
    }
}
