//! Idempotency keys: replay, mismatch, endpoint reuse, concurrency, and what is not kept.

use std::collections::HashSet;

use crate::harness::World;

#[tokio::test]
async fn replay_returns_the_first_answer_with_stripes_headers() {
    let w = World::new();
    let first = w
        .api
        .post_idem("/v1/customers", "name=Once&email=o%40x.co", "key-1")
        .await;
    assert_eq!(first.status, 200);
    let again = w
        .api
        .post_idem("/v1/customers", "name=Once&email=o%40x.co", "key-1")
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.text, first.text, "the same body, byte for byte");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.header("original-request"), first.header("request-id"));
    assert_ne!(again.header("request-id"), first.header("request-id"));
    assert_eq!(again.header("idempotency-key"), Some("key-1"));
    let list = w.api.get("/v1/customers").await;
    assert_eq!(list.json["data"].as_array().map(Vec::len), Some(1));

    // Same key, other parameters: 400 idempotency_error.
    let other = w
        .api
        .post_idem("/v1/customers", "name=Twice", "key-1")
        .await;
    assert_eq!(other.status, 400, "{}", other.text);
    assert_eq!(other.err("type"), "idempotency_error");
    assert!(other.err("message").contains("same parameters"));

    // Same key, other endpoint: 400 idempotency_error naming both.
    let id = first.json["id"].as_str().expect("id");
    let ep = w
        .api
        .post_idem(
            &format!("/v1/customers/{id}"),
            "name=Once&email=o%40x.co",
            "key-1",
        )
        .await;
    assert_eq!(ep.status, 400);
    assert_eq!(ep.err("type"), "idempotency_error");
    assert!(ep.err("message").contains("same endpoint"), "{}", ep.text);

    // Keys are scoped to the project and mode: another project's identical key is independent.
    let other_project = w.daemon.api(&w.daemon.key("globex", "test"));
    let theirs = other_project
        .post_idem("/v1/customers", "name=Once&email=o%40x.co", "key-1")
        .await;
    assert_eq!(theirs.status, 200);
    assert_ne!(theirs.json["id"], first.json["id"]);
    assert!(theirs.header("idempotent-replayed").is_none());
}

#[tokio::test]
async fn errors_are_replayed_but_validation_failures_are_not_kept() {
    let w = World::new();
    // A validation failure keeps nothing: the fixed request may reuse the key.
    let bad = w
        .api
        .post_idem("/v1/customers", "email=nope", "key-v")
        .await;
    assert_eq!(bad.status, 400);
    let fixed = w
        .api
        .post_idem("/v1/customers", "email=yes%40x.co", "key-v")
        .await;
    assert_eq!(fixed.status, 200, "{}", fixed.text);
    assert!(fixed.header("idempotent-replayed").is_none());

    // A 404 ran the endpoint, so it is kept and replayed.
    let missing = w
        .api
        .post_idem(
            "/v1/customers/cus_01ZZZZZZZZZZZZZZZZZZZZZZZZ",
            "name=x",
            "key-404",
        )
        .await;
    assert_eq!(missing.status, 404);
    let replay = w
        .api
        .post_idem(
            "/v1/customers/cus_01ZZZZZZZZZZZZZZZZZZZZZZZZ",
            "name=x",
            "key-404",
        )
        .await;
    assert_eq!(replay.status, 404);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));

    // A bad key is refused.
    let long = "k".repeat(256);
    let r = w.api.post_idem("/v1/customers", "name=x", &long).await;
    assert_eq!(r.status, 400);
    // An unauthenticated request keeps nothing.
    let anon = w
        .api
        .send(
            reqwest::Client::new()
                .post(format!("{}/v1/customers", w.daemon.base()))
                .header("idempotency-key", "key-anon")
                .body("name=x"),
        )
        .await;
    assert_eq!(anon.status, 401);
    let real = w.api.post_idem("/v1/customers", "name=x", "key-anon").await;
    assert_eq!(real.status, 200);
    assert!(real.header("idempotent-replayed").is_none());
}

#[tokio::test]
async fn concurrent_requests_with_one_key_execute_exactly_once() {
    let w = World::new();
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let api = w.api.clone();
        tasks.push(tokio::spawn(async move {
            api.post_idem("/v1/customers", "name=Racer&email=r%40x.co", "race-key")
                .await
        }));
    }
    let mut ids = HashSet::new();
    let (mut ok, mut conflicts) = (0, 0);
    for t in tasks {
        let r = t.await.expect("task");
        match r.status {
            200 => {
                ok += 1;
                ids.insert(r.json["id"].as_str().expect("id").to_string());
            }
            409 => {
                conflicts += 1;
                assert_eq!(r.err("code"), "idempotency_key_in_use");
                assert_eq!(r.header("stripe-should-retry"), Some("true"));
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert!(ok >= 1);
    assert_eq!(ok + conflicts, 24);
    assert_eq!(ids.len(), 1, "every 200 carries the same customer");
    let list = w.api.get("/v1/customers?limit=100").await;
    assert_eq!(
        list.json["data"].as_array().map(Vec::len),
        Some(1),
        "executed exactly once"
    );
}

#[tokio::test]
async fn idempotency_holds_across_two_daemons() {
    let w = World::new();
    let second = crate::harness::Daemon::start(&w.redis.url());
    let api2 = second.api(&w.api.key);
    let a = w
        .api
        .post_idem("/v1/customers", "name=Shared", "shared-key")
        .await;
    let b = api2
        .post_idem("/v1/customers", "name=Shared", "shared-key")
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(b.status, 200);
    assert_eq!(a.json["id"], b.json["id"]);
    assert_eq!(b.header("idempotent-replayed"), Some("true"));
}

/// An answer that carries a number the commit took inside Redis (an invoice's, on finalize)
/// is stored packed with the number in place, and replays byte for byte.
#[tokio::test]
async fn a_replayed_finalize_carries_the_number_the_commit_took() {
    let w = World::new();
    let api = &w.api;
    let customer = api.customer().await;
    let item = api
        .post_form(
            "/v1/invoiceitems",
            &format!("customer={customer}&amount=1200&description=Service"),
        )
        .await;
    assert_eq!(item.status, 200, "{}", item.text);
    let draft = api
        .post_form("/v1/invoices", &format!("customer={customer}"))
        .await;
    assert_eq!(draft.status, 200, "{}", draft.text);
    let path = format!(
        "/v1/invoices/{}/finalize",
        draft.json["id"].as_str().expect("id")
    );
    let first = api.post_idem(&path, "", "finalize-once").await;
    assert_eq!(first.status, 200, "{}", first.text);
    let number = first.json["number"].as_str().expect("a number");
    assert!(number.len() > 6, "{number}");
    let again = api.post_idem(&path, "", "finalize-once").await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.text, first.text, "the stored answer, number and all");
}

/// A claim held by a committed change (a payment under way, whose command stores the answer)
/// is never released, whatever its request then saw: had the begin's reply timed out after
/// the begin was applied, releasing the claim would let a retry start a second payment.
#[tokio::test]
async fn a_claim_held_by_a_committed_change_is_never_released() {
    use calmony_actors::store::{Commit, Store, Tx};
    use calmony_actors::{Scope, idempotency};
    let w = World::new();
    let store = Store::connect(&w.redis.url(), std::time::Duration::from_secs(2))
        .await
        .expect("store");
    let scope = Scope::new("prj_held", calmony_protocol::Mode::Test);
    let mut conn = w.redis.conn();
    let lock_ms = 60_000;
    for (key, held) in [("held", true), ("free", false)] {
        let claim = idempotency::claim_for(&scope, key, "req_1");
        // Claimed, as the key check claims: running, locked for a minute.
        let _: () = redis::pipe()
            .cmd("HSET")
            .arg(&claim.redis_key)
            .arg(&["state", "running", "owner", "req_1"])
            .ignore()
            .cmd("PEXPIRE")
            .arg(&claim.redis_key)
            .arg(lock_ms)
            .ignore()
            .query(&mut conn)
            .expect("claim");
        if held {
            // Held as a payment's begin holds it (a day).
            let mut tx = Tx::new();
            tx.hold_claim(&claim, 24 * 3600 * 1000);
            let landed = store.commit(&tx).await.expect("commit");
            assert!(matches!(landed, Commit::Done(_)), "{landed:?}");
        }
        idempotency::release(&store, &claim, lock_ms)
            .await
            .expect("release");
        let exists: bool = redis::cmd("EXISTS")
            .arg(&claim.redis_key)
            .query(&mut conn)
            .expect("exists");
        assert_eq!(exists, held, "the {key} claim");
    }
}
