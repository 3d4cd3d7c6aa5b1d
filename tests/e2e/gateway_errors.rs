//! Gateway answers that do not say what happened: a 65548 (the gateway's database failed,
//! perhaps after the change was made) is never taken as a refusal. The daemon asks the gateway
//! (QUERY) and records what really happened, so a charge is neither lost nor made twice, and
//! a refund is neither reported failed nor given back to be refunded again.

use std::time::Duration;

use crate::harness::{World, eventually, ledger, sales_per_order, sandbox_post};

#[tokio::test]
async fn a_sale_answered_database_error_after_the_charge_succeeds_once() {
    let w = World::new();
    let base = w.daemon.base();
    let pm = w.api.card("4242424242424242", 12, 2030, None).await;
    let faults = sandbox_post(&base, "/sandbox/faults", "fail_next=1").await;
    assert_eq!(faults["fail_next"], 1, "{faults}");

    let r = w.api.pay(4200, &pm, "").await;
    assert_eq!(
        (r.status, r.json["status"].as_str()),
        (200, Some("succeeded")),
        "{}",
        r.text
    );
    let pi = r.json["id"].as_str().expect("id");
    let faults = sandbox_post(&base, "/sandbox/faults", "").await;
    assert_eq!(
        faults["fail_next"], 0,
        "the sale was answered 65548: {faults}"
    );
    assert_eq!(
        sales_per_order(&ledger(&base, None).await).get(pi),
        Some(&1)
    );
    let charge = r.json["latest_charge"].as_str().expect("latest_charge");
    let charge = w.api.get(&format!("/v1/charges/{charge}")).await;
    assert_eq!(
        (
            charge.json["paid"].as_bool(),
            charge.json["amount"].as_i64()
        ),
        (Some(true), Some(4200)),
        "{}",
        charge.text
    );
}

#[tokio::test]
async fn a_refund_answered_database_error_after_it_was_made_succeeds_once() {
    let w = World::new();
    let base = w.daemon.base();
    let pm = w.api.card("4242424242424242", 12, 2030, None).await;
    let paid = w.api.pay(3000, &pm, "").await;
    assert_eq!(paid.json["status"], "succeeded", "{}", paid.text);
    let pi = paid.json["id"].as_str().expect("id");
    // Settled: the refund is a REFUND_SALE, a transaction of its own.
    let settled = sandbox_post(&base, "/sandbox/settle", "").await;
    assert!(settled["settled"].as_u64().unwrap_or(0) >= 1, "{settled}");
    sandbox_post(&base, "/sandbox/faults", "fail_next=1").await;

    let r = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}&amount=1000"))
        .await;
    // Not a refusal: the outcome is unknown until the gateway is asked, so the refund is
    // pending, and recovery settles it.
    assert_eq!(r.status, 200, "{}", r.text);
    assert_ne!(r.json["status"], "failed", "{}", r.text);
    let id = r.json["id"].as_str().expect("id").to_string();
    let api = w.api.clone();
    let done = eventually(Duration::from_secs(20), || {
        let (api, id) = (api.clone(), id.clone());
        async move { api.get(&format!("/v1/refunds/{id}")).await.json["status"] == "succeeded" }
    })
    .await;
    assert!(done, "the refund was recovered as succeeded");
    let refund_sales = ledger(&base, None)
        .await
        .iter()
        .filter(|e| e["action"] == "REFUND_SALE")
        .count();
    assert_eq!(refund_sales, 1, "refunded once at the gateway");
    let charge = paid.json["latest_charge"].as_str().expect("latest_charge");
    let charge = w.api.get(&format!("/v1/charges/{charge}")).await;
    assert_eq!(charge.json["amount_refunded"].as_i64(), Some(1000));
    // Nothing was given back to refund again: 2,000 is what is left, not 3,000.
    let over = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}&amount=2001"))
        .await;
    assert_eq!((over.status, over.err("code")), (400, "amount_too_large"));
}
