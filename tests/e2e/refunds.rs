//! Refunds: full and partial, before and after settlement, never more than received.

use crate::harness::{World, ledger, sandbox_post};

async fn paid(w: &World, amount: i64) -> String {
    let pm = w.api.card("4242424242424242", 12, 2030, None).await;
    let r = w.api.pay(amount, &pm, "").await;
    assert_eq!(r.json["status"], "succeeded", "{}", r.text);
    r.json["id"].as_str().expect("id").to_string()
}

fn actions(entries: &[serde_json::Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["action"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn before_settlement_full_is_a_cancel_and_partial_a_lower_capture() {
    let w = World::new();
    let base = w.daemon.base();
    let pi = paid(&w, 3000).await;
    let r = w
        .api
        .post_form(
            "/v1/refunds",
            &format!("payment_intent={pi}&amount=1000&reason=requested_by_customer"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.json["status"].as_str(), r.json["amount"].as_i64()),
        (Some("succeeded"), Some(1000))
    );
    assert_eq!(
        actions(&ledger(&base, None).await)
            .last()
            .map(String::as_str),
        Some("CAPTURE")
    );
    let rest = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}"))
        .await;
    assert_eq!(
        (rest.status, rest.json["amount"].as_i64()),
        (200, Some(2000)),
        "{}",
        rest.text
    );
    assert_eq!(
        actions(&ledger(&base, None).await)
            .last()
            .map(String::as_str),
        Some("CANCEL")
    );
    let ch = rest.json["charge"].as_str().expect("charge");
    let charge = w.api.get(&format!("/v1/charges/{ch}")).await;
    assert_eq!(
        (
            charge.json["amount_refunded"].as_i64(),
            charge.json["refunded"].as_bool()
        ),
        (Some(3000), Some(true))
    );
    let again = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}&amount=1"))
        .await;
    assert_eq!(
        (again.status, again.err("code")),
        (400, "charge_already_refunded")
    );
    let list = w.api.get(&format!("/v1/refunds?payment_intent={pi}")).await;
    assert_eq!(list.json["data"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn after_settlement_refunds_are_refund_sales_and_never_exceed_the_payment() {
    let w = World::new();
    let base = w.daemon.base();
    let pi = paid(&w, 5000).await;
    let settled = sandbox_post(&base, "/sandbox/settle", "").await;
    assert!(settled["settled"].as_u64().unwrap_or(0) >= 1, "{settled}");
    let over = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}&amount=5001"))
        .await;
    assert_eq!(
        (over.status, over.err("code"), over.err("param")),
        (400, "amount_too_large", "amount")
    );
    let part = w
        .api
        .post_form(
            "/v1/refunds",
            &format!("payment_intent={pi}&amount=2000&metadata[ticket]=T1"),
        )
        .await;
    assert_eq!(part.status, 200, "{}", part.text);
    assert_eq!(part.json["metadata"]["ticket"], "T1");
    assert_eq!(
        actions(&ledger(&base, None).await)
            .last()
            .map(String::as_str),
        Some("REFUND_SALE")
    );
    let over = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}&amount=3001"))
        .await;
    assert_eq!((over.status, over.err("code")), (400, "amount_too_large"));
    let rest = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}&amount=3000"))
        .await;
    assert_eq!(rest.status, 200, "{}", rest.text);
    let got = w
        .api
        .get(&format!(
            "/v1/refunds/{}",
            rest.json["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(got.json["status"], "succeeded");
    let refund_sales = actions(&ledger(&base, None).await)
        .iter()
        .filter(|a| *a == "REFUND_SALE")
        .count();
    assert_eq!(refund_sales, 2);
    // By charge id too; and unpaid intents cannot be refunded.
    let fresh = w
        .api
        .post_form("/v1/payment_intents", "amount=100&currency=gbp")
        .await;
    let fid = fresh.json["id"].as_str().expect("id");
    let r = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={fid}"))
        .await;
    assert_eq!(
        (r.status, r.err("code")),
        (400, "payment_intent_unexpected_state")
    );
    let r = w.api.post_form("/v1/refunds", "amount=5").await;
    assert_eq!((r.status, r.err("param")), (400, "payment_intent"));
}

#[tokio::test]
async fn concurrent_refunds_cannot_exceed_the_payment() {
    let w = World::new();
    let pi = paid(&w, 1000).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let api = w.api.clone();
        let pi = pi.clone();
        tasks.push(tokio::spawn(async move {
            api.post_form("/v1/refunds", &format!("payment_intent={pi}&amount=300"))
                .await
        }));
    }
    let mut refunded = 0;
    for t in tasks {
        let r = t.await.expect("task");
        match r.status {
            200 => refunded += r.json["amount"].as_i64().unwrap_or(0),
            400 => assert_eq!(r.err("code"), "amount_too_large", "{}", r.text),
            429 => assert_eq!(r.err("code"), "lock_timeout", "{}", r.text),
            s => panic!("unexpected {s}: {}", r.text),
        }
    }
    assert!(
        (300..=900).contains(&refunded),
        "at most three refunds of 300 fit in 1000: {refunded}"
    );
    let intent = w.api.get(&format!("/v1/payment_intents/{pi}")).await;
    let ch = intent.json["latest_charge"].as_str().expect("charge");
    let charge = w.api.get(&format!("/v1/charges/{ch}")).await;
    assert_eq!(charge.json["amount_refunded"].as_i64(), Some(refunded));
}
