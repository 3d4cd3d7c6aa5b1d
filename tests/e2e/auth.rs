//! Authentication: every way a key can be wrong is a 401 `authentication_error`.

use crate::harness::{Api, World, redis_dump_text};

#[tokio::test]
async fn missing_malformed_unknown_and_revoked_keys_are_401() {
    let w = World::new();
    let base = w.daemon.base();
    let http = reqwest::Client::new();

    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("wrong scheme", Some("Token abc".into())),
        ("empty bearer", Some("Bearer ".into())),
        ("bad basic", Some("Basic !!!notbase64".into())),
        (
            "unknown key",
            Some("Bearer sk_test_0000000000000000000000000000000".into()),
        ),
        ("not a key at all", Some("Bearer hello".into())),
    ];
    for (what, header) in cases {
        let mut rb = http.get(format!("{base}/v1/customers"));
        if let Some(h) = header {
            rb = rb.header("authorization", h);
        }
        let r = w.api.send(rb).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text);
        assert_eq!(r.err("type"), "authentication_error", "{what}");
        assert!(
            r.header("request-id")
                .is_some_and(|id| id.starts_with("req_")),
            "{what}"
        );
    }

    // A revoked key stops working at once.
    let key = w.daemon.key("acme", "test");
    let api = Api::new(&base, &key);
    assert_eq!(api.get("/v1/customers").await.status, 200);
    let (status, _, stderr) = w.daemon.cli(&["keys", "revoke", &key]);
    assert!(status.success(), "{stderr}");
    let r = api.get("/v1/customers").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.err("type"), "authentication_error");
    assert!(r.err("message").contains("revoked"), "{}", r.text);
    // The raw key never appears in full in an error.
    assert!(!r.text.contains(&key));
}

/// The body is read before the key check (which claims the idempotency key in its round trip),
/// but a bad key is still the answer to a request whose body is bad too, and it claims nothing.
#[tokio::test]
async fn a_bad_key_is_answered_before_a_bad_body_and_claims_nothing() {
    let w = World::new();
    let base = w.daemon.base();
    let http = reqwest::Client::new();
    let unknown = "Bearer sk_test_0000000000000000000000000000000";
    for (what, body) in [
        ("malformed json", "{\"amount\":".to_string()),
        ("oversized", "x".repeat(2 * 1024 * 1024)),
    ] {
        let rb = http
            .post(format!("{base}/v1/customers"))
            .header("authorization", unknown)
            .header("content-type", "application/json")
            .header("idempotency-key", "k-bad-key")
            .body(body.clone());
        let r = w.api.send(rb).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text);
        assert_eq!(r.err("type"), "authentication_error", "{what}");
        // With a good key the body's own error is the answer, and the key stays free.
        let rb = http
            .post(format!("{base}/v1/customers"))
            .bearer_auth(&w.api.key)
            .header("content-type", "application/json")
            .header("idempotency-key", "k-bad-key")
            .body(body);
        let r = w.api.send(rb).await;
        assert!(r.status == 400 || r.status == 413, "{what}: {}", r.text);
    }
    let ok = w
        .api
        .post_idem("/v1/customers", "name=After", "k-bad-key")
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(ok.header("idempotent-replayed").is_none());
}

#[tokio::test]
async fn bearer_and_basic_auth_both_work_and_keys_list_shows_use() {
    let w = World::new();
    let basic = w
        .api
        .send(
            reqwest::Client::new()
                .get(format!("{}/v1/customers", w.daemon.base()))
                .basic_auth(&w.api.key, Some("")),
        )
        .await;
    assert_eq!(basic.status, 200, "{}", basic.text);
    assert_eq!(w.api.get("/v1/customers").await.status, 200);

    let (status, stdout, _) = w.daemon.cli(&["keys", "list"]);
    assert!(status.success());
    let line = stdout
        .lines()
        .find(|l| l.contains(&w.api.key[..12]))
        .expect("the key is listed by its prefix");
    assert!(
        line.contains("acme") && line.contains("test") && line.contains("active"),
        "{line}"
    );
    assert!(!line.contains("never"), "last used is recorded: {line}");
    assert!(!stdout.contains(&w.api.key), "the raw key is never listed");

    // Keys are stored only as hashes: the raw key is nowhere in Redis (every key and value,
    // records decoded).
    let mut c = w.redis.conn();
    let dump = redis_dump_text(&mut c);
    assert!(
        dump.contains("cp:apikey:"),
        "the key's record is in the dump"
    );
    assert!(!dump.contains(&w.api.key), "raw key stored in Redis");
}
