//! A payment's create whose key and named objects the daemon remembers skips the key check's
//! round trip and checks the key in its own commit (`edge::remembered`). These tests hold it to
//! the answers a fresh key check gives: revocation and the rate limit at once, a card changed
//! since it was remembered, bad parameters after revocation, and the walls between projects.

use crate::harness::{Api, World};

/// The count of deferred key checks with `outcome` in the daemon's `/metrics`.
async fn deferred(api: &Api, outcome: &str) -> u64 {
    let m = api.get("/metrics").await;
    let line = format!("calmony_deferred_key_checks_total{{outcome=\"{outcome}\"}} ");
    m.text
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

async fn intents(api: &Api) -> usize {
    let r = api.get("/v1/payment_intents?limit=100").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["data"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn a_remembered_key_is_still_refused_at_once_when_revoked() {
    let w = World::new();
    let key = w.daemon.key("acme", "test");
    let api = w.daemon.api(&key);
    let watcher = w.daemon.api(&w.daemon.key("acme", "test"));
    let pm = api.card("4242424242424242", 12, 2030, None).await;
    for _ in 0..3 {
        let paid = api.pay(1000, &pm, "").await;
        assert_eq!(paid.status, 200, "{}", paid.text);
        assert_eq!(paid.json["status"], "succeeded");
    }
    assert!(
        deferred(&watcher, "passed").await >= 2,
        "after the first payment the key and card are remembered"
    );

    let (status, _, stderr) = w.daemon.cli(&["keys", "revoke", &key]);
    assert!(status.success(), "{stderr}");
    let r = api.pay(1000, &pm, "").await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.err("type"), "authentication_error");
    assert!(r.err("message").contains("revoked"), "{}", r.text);
    assert!(!r.text.contains(&key), "the key is never echoed whole");
    assert_eq!(deferred(&watcher, "refused").await, 1);
    // A bad parameter from a revoked key is still a 401: the create ended without its commit
    // and ran again behind a fresh key check.
    let bad = api
        .post_form("/v1/payment_intents", "amount=-5&currency=gbp")
        .await;
    assert_eq!(bad.status, 401, "{}", bad.text);
    assert_eq!(
        intents(&watcher).await,
        3,
        "the refused create wrote nothing"
    );
    let ledger = crate::harness::ledger(&w.daemon.base(), None).await;
    let sales = ledger.iter().filter(|e| e["action"] == "SALE").count();
    assert_eq!(sales, 3, "and charged nothing: {ledger:?}");
}

#[tokio::test]
async fn the_rate_limit_holds_when_the_check_rides_in_the_commit() {
    let w = World::with(&[("CALMONY_API_RATE_LIMIT_PER_SECOND", "10")]);
    let warm = w
        .api
        .post_form("/v1/payment_intents", "amount=100&currency=gbp")
        .await;
    assert_eq!(warm.status, 200, "{}", warm.text);
    // Let the bucket refill before the burst.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let api = w.api.clone();
            tokio::spawn(async move {
                api.post_form("/v1/payment_intents", "amount=100&currency=gbp")
                    .await
            })
        })
        .collect();
    let (ok, limited) = crate::harness::passed_and_limited(tasks).await;
    let elapsed = started.elapsed().as_secs_f64();
    let allowed = 10.0 + 10.0 * elapsed + 1.0;
    assert!(limited > 0, "40 creates at once must hit a 10/s limit");
    assert!(f64::from(ok) <= allowed, "{ok} passed in {elapsed:.2}s");
    assert!(
        deferred(&w.api, "refused").await > 0,
        "refused in the commit"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(
        intents(&w.api).await,
        ok as usize + 1,
        "a limited create wrote nothing"
    );
}

/// A card attached to a customer after it was remembered: the commit finds its version moved
/// and the create runs again on what Redis holds now.
#[tokio::test]
async fn a_card_changed_since_it_was_remembered_is_read_afresh() {
    let w = World::new();
    let api = &w.api;
    let bob = api.customer().await;
    let alice = api.customer().await;
    let pm = api.card("4242424242424242", 12, 2030, None).await;
    // Remembers Alice and the card (attached to nobody, so anyone's payment may use it).
    let paid = api.pay(1000, &pm, &format!("&customer={alice}")).await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    let attached = api
        .post_form(
            &format!("/v1/payment_methods/{pm}/attach"),
            &format!("customer={bob}"),
        )
        .await;
    assert_eq!(attached.status, 200, "{}", attached.text);
    let before = deferred(api, "rerun").await;
    // Named in the docs' camelCase (read with the key check too): the same answer.
    let theirs = api
        .post_form(
            "/v1/payment_intents",
            &format!(
                "amount=1000&currency=gbp&customerId={alice}&paymentMethodId={pm}&confirm=true"
            ),
        )
        .await;
    assert_eq!(theirs.status, 400, "{}", theirs.text);
    assert_eq!(theirs.err("param"), "payment_method");
    assert_eq!(deferred(api, "rerun").await, before + 1);
    let his = api.pay(1000, &pm, &format!("&customer={bob}")).await;
    assert_eq!(his.status, 200, "{}", his.text);
    assert_eq!(his.json["customer"], bob.as_str());
    assert_eq!(intents(api).await, 2);
}

/// Remembered objects are keyed by project and mode: another project's key, remembered too,
/// never pays with this project's card.
#[tokio::test]
async fn remembered_objects_stay_in_their_project_and_mode() {
    let w = World::new();
    let pm = w.api.card("4242424242424242", 12, 2030, None).await;
    assert_eq!(w.api.pay(1000, &pm, "").await.status, 200);
    for key in [w.daemon.key("globex", "test"), w.daemon.key("acme", "live")] {
        let other = w.daemon.api(&key);
        // The first request remembers the key, the later ones could take the short way.
        let open = other
            .post_form("/v1/payment_intents", "amount=100&currency=gbp")
            .await;
        assert_eq!(open.status, 200, "{}", open.text);
        for _ in 0..2 {
            let r = other.pay(1000, &pm, "").await;
            assert_eq!(r.status, 400, "{}", r.text);
            assert_eq!(r.err("code"), "resource_missing");
            assert_eq!(r.err("param"), "payment_method");
        }
    }
    assert_eq!(intents(&w.api).await, 1);
}

/// A create with an `Idempotency-Key` whose key check is deferred claims the key in its own
/// commit. A repeat finds the key claimed, writes nothing and runs again behind the key
/// check, which replays the stored answer (or refuses other parameters): one payment, one
/// charge, whichever way each request went.
#[tokio::test]
async fn an_idempotency_key_is_claimed_in_the_commit_and_replayed_after() {
    let w = World::new();
    let api = &w.api;
    let pm = api.card("4242424242424242", 12, 2030, None).await;
    let body = format!("amount=1500&currency=gbp&payment_method={pm}&confirm=true");
    // The first create checks the key the usual way and remembers the key and the card.
    let first = api.post_idem("/v1/payment_intents", &body, "k-first").await;
    assert_eq!(first.status, 200, "{}", first.text);
    let passed = deferred(api, "passed").await;

    let paid = api.post_idem("/v1/payment_intents", &body, "k-paid").await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    assert_eq!(paid.json["status"], "succeeded");
    assert_eq!(paid.header("idempotency-key"), Some("k-paid"));
    assert_eq!(
        deferred(api, "passed").await,
        passed + 1,
        "claimed in the create's own commit"
    );

    let rerun = deferred(api, "rerun").await;
    let again = api.post_idem("/v1/payment_intents", &body, "k-paid").await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(
        again.json["id"], paid.json["id"],
        "the same payment, replayed"
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.header("original-request"), paid.header("request-id"));
    assert_eq!(
        deferred(api, "rerun").await,
        rerun + 1,
        "the claimed key sent it round again"
    );
    let other = api
        .post_idem(
            "/v1/payment_intents",
            &format!("amount=999&currency=gbp&payment_method={pm}&confirm=true"),
            "k-paid",
        )
        .await;
    assert_eq!(other.status, 400, "{}", other.text);
    assert_eq!(other.err("type"), "idempotency_error");

    // A create that is answered at once (not confirmed) stores its answer under the claim it
    // made in the same commit.
    let draft_body = format!("amount=700&currency=gbp&payment_method={pm}");
    let draft = api
        .post_idem("/v1/payment_intents", &draft_body, "k-draft")
        .await;
    assert_eq!(draft.status, 200, "{}", draft.text);
    assert_eq!(draft.json["status"], "requires_confirmation");
    let replayed = api
        .post_idem("/v1/payment_intents", &draft_body, "k-draft")
        .await;
    assert_eq!(replayed.json["id"], draft.json["id"], "{}", replayed.text);
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));

    assert_eq!(intents(api).await, 3, "first, paid and draft, once each");
    let ledger = crate::harness::ledger(&w.daemon.base(), None).await;
    let sales = ledger.iter().filter(|e| e["action"] == "SALE").count();
    assert_eq!(sales, 2, "two payments charged once each: {ledger:?}");
}
