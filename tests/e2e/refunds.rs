//! Refunds: full and partial, before and after settlement, never more than received.

use crate::harness::{World, ledger, sandbox_post};

async fn paid(api: &crate::harness::Api, amount: i64) -> String {
    let pm = api.card("4242424242424242", 12, 2030, None).await;
    let r = api.pay(amount, &pm, "").await;
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
    let pi = paid(&w.api, 3000).await;
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
    let pi = paid(&w.api, 5000).await;
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
    let pi = paid(&w.api, 1000).await;
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

/// What the sandbox gateway holds of a payment's sale, from its ledger alone: the sale's
/// amount, then each CAPTURE's amount, nothing after a CANCEL. Also every amount captured, in
/// the ledger's order.
async fn held_at_gateway(base: &str, pi: &str) -> (i64, Vec<i64>) {
    let mut held = 0;
    let mut captures = Vec::new();
    for e in ledger(base, Some(pi)).await {
        let amount = e["amount"].as_i64().unwrap_or(0);
        match e["action"].as_str() {
            Some("SALE") => held = amount,
            Some("CAPTURE") => {
                held = amount;
                captures.push(amount);
            }
            Some("CANCEL") => held = 0,
            _ => {}
        }
    }
    (held, captures)
}

/// The records' side: the payment's amount less its charge's `amount_refunded`, once no refund
/// of it is pending.
async fn kept_in_records(api: &crate::harness::Api, pi: &str) -> Option<i64> {
    let refunds = api
        .get(&format!("/v1/refunds?payment_intent={pi}&limit=100"))
        .await;
    let data = refunds.json["data"].as_array().cloned().unwrap_or_default();
    if data.iter().any(|r| r["status"] == "pending") {
        return None;
    }
    let succeeded: i64 = data
        .iter()
        .filter(|r| r["status"] == "succeeded")
        .map(|r| r["amount"].as_i64().unwrap_or(0))
        .sum();
    let intent = api.get(&format!("/v1/payment_intents/{pi}")).await;
    let ch = intent.json["latest_charge"].as_str()?.to_string();
    let charge = api.get(&format!("/v1/charges/{ch}")).await;
    let refunded = charge.json["amount_refunded"].as_i64()?;
    assert_eq!(
        refunded, succeeded,
        "the charge counts every succeeded refund"
    );
    Some(intent.json["amount_received"].as_i64()? - refunded)
}

/// Send `n` refunds of `each` at once; their answers.
async fn burst(api: &crate::harness::Api, pi: &str, n: usize, each: i64) -> Vec<(u16, String)> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let api = api.clone();
        let body = format!("payment_intent={pi}&amount={each}");
        tasks.push(tokio::spawn(async move {
            let r = api
                .http
                .post(format!("{}/v1/refunds", api.base))
                .bearer_auth(&api.key)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await;
            match r {
                Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                // The connection died with the daemon.
                Err(_) => (0, String::new()),
            }
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn concurrent_partial_refunds_keep_the_gateway_equal_to_the_records() {
    let w = World::with(&[("CALMONY_API_RATE_LIMIT_PER_SECOND", "100000")]);
    let base = w.daemon.base();
    for (run, amount) in [1000, 1000, 1000, 2550].into_iter().enumerate() {
        let pi = paid(&w.api, amount).await;
        let answers = burst(&w.api, &pi, 20, 100).await;
        let fit = (amount / 100) as usize;
        let mut succeeded = 0;
        for (status, text) in &answers {
            let json: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
            match status {
                200 => {
                    assert_eq!(json["status"], "succeeded", "run {run}: {text}");
                    succeeded += 1;
                }
                400 => assert!(
                    matches!(
                        json["error"]["code"].as_str(),
                        Some("charge_already_refunded" | "amount_too_large")
                    ),
                    "run {run}: refused before anything is sent, not failed: {text}"
                ),
                s => panic!("run {run}: unexpected {s}: {text}"),
            }
        }
        assert_eq!(succeeded, fit.min(20), "run {run}: {answers:?}");
        let kept = kept_in_records(&w.api, &pi).await.expect("nothing pending");
        let (held, captures) = held_at_gateway(&base, &pi).await;
        assert_eq!(
            held, kept,
            "run {run}: gateway holds {held}, records keep {kept}"
        );
        assert_eq!(kept, amount - 100 * fit.min(20) as i64, "run {run}");
        assert!(
            captures.windows(2).all(|w| w[0] > w[1]) && !captures.contains(&0),
            "run {run}: each CAPTURE lowers the amount, none is 0: {captures:?}"
        );
    }
}

#[tokio::test]
async fn a_kill_9_among_concurrent_refunds_leaves_the_gateway_equal_to_the_records() {
    // The killed daemon's lease on the sale lapses after the gateway timeout and a margin
    // (a request it sent may still be in flight until then): a short timeout keeps the wait
    // short.
    let mut w = World::with(&[
        ("CALMONY_API_RATE_LIMIT_PER_SECOND", "100000"),
        ("CALMONY_GATEWAY_TIMEOUT_SECONDS", "5"),
    ]);
    let base = w.daemon.base();
    let pi = paid(&w.api, 1000).await;
    // A slow gateway, so the kill lands with refunds queued and one at the gateway.
    sandbox_post(&base, "/sandbox/faults", "delay_ms=150").await;
    let api = w.api.clone();
    let pi2 = pi.clone();
    let sent = tokio::spawn(async move { burst(&api, &pi2, 20, 100).await });
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    w.daemon.kill9();
    let answers = sent.await.expect("burst");
    let cut_off = answers.iter().filter(|(s, _)| *s == 0).count();
    w.daemon.restart();
    sandbox_post(&base, "/sandbox/faults", "reset=true").await;
    let api = w.api.clone();
    let pi2 = pi.clone();
    let finished = crate::harness::eventually(std::time::Duration::from_secs(60), || {
        let api = api.clone();
        let pi = pi2.clone();
        async move { kept_in_records(&api, &pi).await.is_some() }
    })
    .await;
    assert!(
        finished,
        "recovery finishes every refund:\n{}",
        w.daemon.logs()
    );
    let kept = kept_in_records(&w.api, &pi).await.expect("nothing pending");
    let (held, captures) = held_at_gateway(&base, &pi).await;
    assert_eq!(held, kept, "gateway holds {held}, records keep {kept}");
    assert!(
        captures.windows(2).all(|w| w[0] > w[1]) && !captures.contains(&0),
        "{captures:?}"
    );
    assert!(cut_off > 0, "the kill must land mid-burst: {answers:?}");
    let refunds = w
        .api
        .get(&format!("/v1/refunds?payment_intent={pi}&limit=100"))
        .await;
    assert!(
        refunds.json["data"]
            .as_array()
            .is_some_and(|d| d.iter().all(|r| r["status"] != "failed")),
        "no refund failed: {}",
        refunds.text
    );
}

#[tokio::test]
async fn a_refund_whose_answer_was_lost_is_recorded_from_the_gateway_not_sent_again() {
    let w = World::new();
    let base = w.daemon.base();
    for (amount, refund, action) in [(1000, 300, "CAPTURE"), (1000, 1000, "CANCEL")] {
        let pi = paid(&w.api, amount).await;
        // The gateway applies the next request, then answers 65548 (its database failed).
        sandbox_post(&base, "/sandbox/faults", "fail_next=1").await;
        let r = w
            .api
            .post_form(
                "/v1/refunds",
                &format!("payment_intent={pi}&amount={refund}"),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let id = r.json["id"].as_str().expect("id").to_string();
        let api = w.api.clone();
        let done = crate::harness::eventually(std::time::Duration::from_secs(20), || {
            let api = api.clone();
            let id = id.clone();
            async move { api.get(&format!("/v1/refunds/{id}")).await.json["status"] == "succeeded" }
        })
        .await;
        assert!(done, "recovery records it:\n{}", w.daemon.logs());
        let sent = actions(&ledger(&base, Some(&pi)).await)
            .iter()
            .filter(|a| *a == action)
            .count();
        assert_eq!(sent, 1, "{action} sent once");
        let (held, _) = held_at_gateway(&base, &pi).await;
        assert_eq!(
            Some(held),
            kept_in_records(&w.api, &pi).await,
            "{action}: the gateway and the records agree"
        );
    }
}

/// Two daemons share one Redis and each takes half of a burst of refunds of one payment. A
/// request waiting its turn in one daemon is taken over by the other's recovery once idle
/// (`gateway.recovery_after_seconds`), so both come to act on the same head refund: only the
/// one holding the sale's lease may send its request.
#[tokio::test]
async fn two_daemons_refunding_one_sale_at_once_send_each_refund_once_and_in_order() {
    use crate::harness::{Daemon, Redis, eventually};
    use std::time::Duration;

    let redis = Redis::start();
    // Both open what either sealed: they share the keys (and the sandbox, through Redis).
    let keys = tempfile::tempdir().expect("key dir");
    let key_dir = keys.path().display().to_string();
    let settings = [
        ("CALMONY_API_RATE_LIMIT_PER_SECOND", "100000"),
        ("CALMONY_SECRETS_KEY_DIR", key_dir.as_str()),
        ("CALMONY_GATEWAY_TIMEOUT_SECONDS", "2"),
        ("CALMONY_GATEWAY_RECOVERY_AFTER_SECONDS", "3"),
    ];
    let d1 = Daemon::start_with(&redis.url(), &settings);
    let d2 = Daemon::start_with(&redis.url(), &settings);
    let key = d1.key("acme", "test");
    let (a1, a2) = (d1.api(&key), d2.api(&key));
    let base = d1.base();
    let pi = paid(&a1, 1000).await;
    // A slow gateway: the queue takes long enough for waiting refunds to be taken over.
    sandbox_post(&base, "/sandbox/faults", "delay_ms=200").await;
    let (b1, b2) = tokio::join!(burst(&a1, &pi, 10, 40), burst(&a2, &pi, 10, 40));
    sandbox_post(&base, "/sandbox/faults", "reset=true").await;
    for (status, text) in b1.iter().chain(&b2) {
        assert_eq!(*status, 200, "{text}");
    }
    let finished = eventually(Duration::from_secs(60), || {
        let api = a1.clone();
        let pi = pi.clone();
        async move { kept_in_records(&api, &pi).await.is_some() }
    })
    .await;
    assert!(finished, "every refund finishes:\n{}", d1.logs());
    let kept = kept_in_records(&a2, &pi).await.expect("nothing pending");
    assert_eq!(kept, 200, "every refund of 40 fits in 1000");
    let (held, captures) = held_at_gateway(&base, &pi).await;
    assert_eq!(held, kept, "gateway holds {held}, records keep {kept}");
    assert!(
        captures.windows(2).all(|w| w[0] > w[1]) && !captures.contains(&0),
        "each CAPTURE lowers the amount, none is sent twice: {captures:?}"
    );
    assert_eq!(captures.len(), 20, "one CAPTURE per refund: {captures:?}");
}

/// The head refund's command is delivered past the limit (its gateway answers never verify) and
/// parked as poison: the refund fails, its amount is given back, and the next refund of the
/// sale goes on at once instead of waiting behind it for ever.
#[tokio::test]
async fn a_refund_parked_as_poison_fails_and_the_next_refund_of_the_sale_goes_on() {
    use crate::harness::eventually;
    use std::time::Duration;

    let w = World::new();
    let base = w.daemon.base();
    let pi = paid(&w.api, 1000).await;
    // Every answer of the gateway fails its signature check: the refund stays pending.
    sandbox_post(&base, "/sandbox/faults", "tamper_signatures=true").await;
    let first = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}&amount=300"))
        .await;
    assert_eq!(
        (first.status, first.json["status"].as_str()),
        (200, Some("pending")),
        "{}",
        first.text
    );
    let first_id = first.json["id"].as_str().expect("id").to_string();
    // Its command, delivered (as recovery sees it) past the limit.
    let mut conn = w.redis.conn();
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg("cp:payments:commands")
        .arg("processors")
        .arg("-")
        .arg("+")
        .arg(10)
        .query(&mut conn)
        .expect("XPENDING");
    assert_eq!(pending.len(), 1, "{pending:?}");
    let (entry, consumer, _, _) = &pending[0];
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg("cp:payments:commands")
        .arg("processors")
        .arg(consumer)
        .arg(0)
        .arg(entry)
        .arg("RETRYCOUNT")
        .arg(100)
        .query(&mut conn)
        .expect("XCLAIM");
    let api = w.api.clone();
    let id = first_id.clone();
    let failed = eventually(Duration::from_secs(20), || {
        let api = api.clone();
        let id = id.clone();
        async move { api.get(&format!("/v1/refunds/{id}")).await.json["status"] == "failed" }
    })
    .await;
    assert!(failed, "the parked refund fails:\n{}", w.daemon.logs());
    let got = w.api.get(&format!("/v1/refunds/{first_id}")).await;
    assert_eq!(
        got.json["failure_reason"], "processing_abandoned",
        "{}",
        got.text
    );
    let dead: Vec<String> = redis::cmd("LRANGE")
        .arg("cp:payments:dead")
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .expect("LRANGE");
    assert!(
        dead.len() == 1 && dead[0].contains(&first_id),
        "the command is parked: {dead:?}"
    );
    let events = w.api.get("/v1/events?type=refund.failed").await;
    assert_eq!(
        crate::harness::event_objects(&events.json),
        vec![first_id.clone()],
        "{}",
        events.text
    );
    // The next refund goes on, and the whole amount is refundable again.
    sandbox_post(&base, "/sandbox/faults", "reset=true").await;
    let next = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}&amount=400"))
        .await;
    assert_eq!(
        (next.status, next.json["status"].as_str()),
        (200, Some("succeeded")),
        "{}",
        next.text
    );
    let kept = kept_in_records(&w.api, &pi).await.expect("nothing pending");
    let (held, captures) = held_at_gateway(&base, &pi).await;
    assert_eq!((held, kept), (600, 600), "{captures:?}");
    let rest = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}&amount=600"))
        .await;
    assert_eq!(rest.json["status"], "succeeded", "{}", rest.text);
    let (held, _) = held_at_gateway(&base, &pi).await;
    assert_eq!((held, kept_in_records(&w.api, &pi).await), (0, Some(0)));
}

/// The sale is lowered at the gateway outside the daemon (a back-office CAPTURE): the head
/// refund finds a sale no refund of the queue explains, fails without sending anything, and
/// the next refund goes on, planned from what the sale holds.
#[tokio::test]
async fn a_refund_finding_the_sale_changed_outside_fails_and_the_next_goes_on() {
    let w = World::new();
    let base = w.daemon.base();
    let pi = paid(&w.api, 1000).await;
    let xref = ledger(&base, Some(&pi)).await[0]["xref"]
        .as_str()
        .expect("xref")
        .to_string();
    // The back office, signing as the merchant with the installation's sandbox secret.
    let secret: String = redis::cmd("GET")
        .arg("cp:sandbox:merchant_secret")
        .query(&mut w.redis.conn())
        .expect("secret");
    let office = calmony_actors::gateway::Cardstream::new(
        format!("{base}/sandbox/direct/"),
        "100001",
        &secret,
        std::time::Duration::from_secs(10),
    );
    let lowered = office
        .capture(&xref, 700)
        .await
        .expect("back-office capture");
    assert!(
        matches!(lowered, calmony_actors::gateway::ManageOutcome::Done { .. }),
        "{lowered:?}"
    );
    let first = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}&amount=100"))
        .await;
    assert_eq!(
        (
            first.status,
            first.json["status"].as_str(),
            first.json["failure_reason"].as_str()
        ),
        (200, Some("failed"), Some("gateway_state_diverged")),
        "{}",
        first.text
    );
    assert_eq!(
        actions(&ledger(&base, Some(&pi)).await),
        ["SALE", "CAPTURE"],
        "nothing sent for it"
    );
    let next = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}&amount=100"))
        .await;
    assert_eq!(next.json["status"], "succeeded", "{}", next.text);
    let (held, captures) = held_at_gateway(&base, &pi).await;
    assert_eq!((held, captures), (600, vec![700, 600]));
    // Only the refund that succeeded counts: the failed one's amount was given back.
    let intent = w.api.get(&format!("/v1/payment_intents/{pi}")).await;
    let ch = intent.json["latest_charge"].as_str().expect("charge");
    let charge = w.api.get(&format!("/v1/charges/{ch}")).await;
    assert_eq!(charge.json["amount_refunded"].as_i64(), Some(100));
    let over = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}&amount=901"))
        .await;
    assert_eq!(over.err("code"), "amount_too_large", "{}", over.text);
}
