//! Card payments end to end: the API reference's SDK example, declines, capture, cancel,
//! state errors, idempotency, and card data never kept.

use std::collections::HashSet;

use serde_json::json;

use crate::harness::{World, ledger, redis_dump_text, sales_per_order};

#[tokio::test]
async fn the_sdk_example_step_by_step() {
    let w = World::new();
    let api = &w.api;
    // const customer = await pay.customers.create({ email, name })
    let customer = api
        .post_json(
            "/v1/customers",
            &json!({"email": "user@example.com", "name": "Alice Smith"}),
        )
        .await;
    assert_eq!(customer.status, 200, "{}", customer.text);
    let cus = customer.json["id"].as_str().expect("id").to_string();
    // const paymentMethod = await pay.paymentMethods.create({ customerId, card: {...} })
    let pm = api
        .post_json(
            "/v1/payment_methods",
            &json!({"customerId": cus, "card": {"number": "4111111111111111", "expMonth": 12, "expYear": 2030, "cvc": "123"}}),
        )
        .await;
    assert_eq!(pm.status, 200, "{}", pm.text);
    assert_eq!(pm.json["object"], "payment_method");
    assert_eq!(pm.json["card"]["last4"], "1111");
    assert_eq!(pm.json["card"]["brand"], "visa");
    assert_eq!(pm.json["customer"], cus.as_str());
    assert!(
        pm.json["card"]["fingerprint"]
            .as_str()
            .is_some_and(|f| f.len() == 16)
    );
    let pm_id = pm.json["id"].as_str().expect("id").to_string();
    // await pay.paymentMethods.attach(paymentMethod.id, { customerId })
    let attached = api
        .post_json(
            &format!("/v1/payment_methods/{pm_id}/attach"),
            &json!({"customerId": cus}),
        )
        .await;
    assert_eq!(attached.status, 200, "{}", attached.text);
    // const intent = await pay.paymentIntents.create({ amount: 2500, currency: "gbp", ..., confirm: true })
    let intent = api
        .post_json(
            "/v1/payment_intents",
            &json!({"amount": 2500, "currency": "gbp", "customerId": cus, "paymentMethodId": pm_id, "confirm": true}),
        )
        .await;
    assert_eq!(intent.status, 200, "{}", intent.text);
    // console.log(intent.status) // "succeeded"
    assert_eq!(intent.json["status"], "succeeded");
    assert_eq!(intent.json["amount_received"], 2500);
    assert_eq!(intent.json["customerId"], cus.as_str());
    assert_eq!(intent.json["paymentMethodId"], pm_id.as_str());
    assert!(
        intent.json["cardstreamTransactionId"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    let pi = intent.json["id"].as_str().expect("id");
    assert!(
        intent.json["client_secret"]
            .as_str()
            .is_some_and(|s| s.starts_with(&format!("{pi}_secret_")))
    );

    // The charge, the customer's cards, and the sandbox ledger: one sale.
    let ch = intent.json["latest_charge"].as_str().expect("charge");
    let charge = api.get(&format!("/v1/charges/{ch}")).await;
    assert_eq!(
        (
            charge.json["status"].as_str(),
            charge.json["captured"].as_bool()
        ),
        (Some("succeeded"), Some(true))
    );
    let cards = api
        .get(&format!("/v1/payment_methods?customer={cus}"))
        .await;
    assert_eq!(cards.json["data"][0]["id"], pm_id.as_str());
    let entries = ledger(&w.daemon.base(), Some(pi)).await;
    assert_eq!(sales_per_order(&entries).get(pi), Some(&1), "{entries:?}");
    let listed = api
        .get(&format!("/v1/payment_intents?customer={cus}"))
        .await;
    assert_eq!(listed.json["data"][0]["id"], pi);
}

#[tokio::test]
async fn declines_answer_402_with_the_intent_embedded() {
    let w = World::new();
    let api = &w.api;
    let cases = [
        // Stripe's test numbers answer what Stripe's testing documentation says.
        ("4000000000000002", 2500, "card_declined", "generic_decline"),
        (
            "4000000000009995",
            2500,
            "card_declined",
            "insufficient_funds",
        ),
        ("4000000000009987", 2500, "card_declined", "lost_card"),
        ("4000000000009979", 2500, "card_declined", "stolen_card"),
        (
            "4000000000006975",
            2500,
            "card_declined",
            "card_velocity_exceeded",
        ),
        ("4100000000000019", 2500, "card_declined", "fraudulent"),
        ("4000000000000069", 2500, "expired_card", "expired_card"),
        ("4000000000000127", 2500, "incorrect_cvc", "incorrect_cvc"),
        (
            "4000000000000119",
            2500,
            "processing_error",
            "processing_error",
        ),
        ("4000000000000341", 2500, "card_declined", "generic_decline"),
        // The guide's test card: 5000–7499 is a referral.
        ("4929421234600821", 5000, "card_declined", "call_issuer"),
        ("4929421234600821", 12000, "card_declined", "do_not_honor"),
    ];
    for (number, amount, code, decline_code) in cases {
        // The guide's cards pick 3-D Secure by expiry month; 11 means "not enrolled".
        let month = if number.starts_with("4929") { 11 } else { 12 };
        let pm = api.card(number, month, 2030, None).await;
        let r = api.pay(amount, &pm, "").await;
        assert_eq!(r.status, 402, "{number}: {}", r.text);
        assert_eq!(r.err("type"), "card_error", "{number}");
        assert_eq!(r.err("code"), code, "{number}: {}", r.text);
        assert_eq!(r.err("decline_code"), decline_code, "{number}");
        let embedded = &r.json["error"]["payment_intent"];
        assert_eq!(embedded["status"], "requires_payment_method", "{number}");
        assert_eq!(embedded["last_payment_error"]["decline_code"], decline_code);
        let pi = embedded["id"].as_str().expect("id");
        let got = api.get(&format!("/v1/payment_intents/{pi}")).await;
        assert_eq!(got.json["status"], "requires_payment_method");
        assert!(
            !sales_per_order(&ledger(&w.daemon.base(), Some(pi)).await).contains_key(pi),
            "declines charge nothing"
        );
    }
    // A declined intent can be retried with another card.
    let bad = api.card("4000000000000002", 12, 2030, None).await;
    let r = api.pay(2500, &bad, "").await;
    let pi = r.json["error"]["payment_intent"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let good = api.card("4242424242424242", 12, 2030, None).await;
    let ok = api
        .post_form(
            &format!("/v1/payment_intents/{pi}/confirm"),
            &format!("payment_method={good}"),
        )
        .await;
    assert_eq!(
        (ok.status, ok.json["status"].as_str()),
        (200, Some("succeeded")),
        "{}",
        ok.text
    );
    // Events: payment_failed and the docs' payment_intent.failed, then succeeded.
    let mut conn = w.redis.conn();
    let dump = redis_dump_text(&mut conn);
    for t in [
        "payment_intent.payment_failed",
        "payment_intent.failed",
        "charge.failed",
        "payment_intent.succeeded",
    ] {
        assert!(dump.contains(t), "{t} missing");
    }
}

#[tokio::test]
async fn manual_capture_partial_capture_cancel_and_state_errors() {
    let w = World::new();
    let api = &w.api;
    let pm = api.card("4242424242424242", 12, 2030, None).await;
    let r = api.pay(2500, &pm, "&capture_method=manual").await;
    assert_eq!(r.json["status"], "requires_capture", "{}", r.text);
    assert_eq!(r.json["amount_capturable"], 2500);
    assert_eq!(r.json["amount_received"], 0);
    let pi = r.json["id"].as_str().expect("id").to_string();
    let too_much = api
        .post_form(
            &format!("/v1/payment_intents/{pi}/capture"),
            "amount_to_capture=3000",
        )
        .await;
    assert_eq!(
        (too_much.status, too_much.err("param")),
        (400, "amount_to_capture")
    );
    let cap = api
        .post_form(
            &format!("/v1/payment_intents/{pi}/capture"),
            "amount_to_capture=1500",
        )
        .await;
    assert_eq!(cap.status, 200, "{}", cap.text);
    assert_eq!(
        (
            cap.json["status"].as_str(),
            cap.json["amount_received"].as_i64()
        ),
        (Some("succeeded"), Some(1500))
    );
    let again = api
        .post_form(&format!("/v1/payment_intents/{pi}/capture"), "")
        .await;
    assert_eq!(
        (again.status, again.err("code")),
        (400, "payment_intent_unexpected_state")
    );
    let confirm = api
        .post_form(&format!("/v1/payment_intents/{pi}/confirm"), "")
        .await;
    assert_eq!(
        (confirm.status, confirm.err("code")),
        (400, "payment_intent_unexpected_state"),
        "double confirm"
    );
    let cancel = api
        .post_form(&format!("/v1/payment_intents/{pi}/cancel"), "")
        .await;
    assert_eq!(cancel.status, 400, "a succeeded payment cannot be canceled");

    // Cancel an authorisation: voided at the gateway.
    let r = api.pay(2000, &pm, "&capture_method=manual").await;
    let pi2 = r.json["id"].as_str().expect("id").to_string();
    let c = api
        .post_form(
            &format!("/v1/payment_intents/{pi2}/cancel"),
            "cancellation_reason=requested_by_customer",
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(
        (
            c.json["status"].as_str(),
            c.json["amount_capturable"].as_i64()
        ),
        (Some("canceled"), Some(0))
    );
    let entries = ledger(&w.daemon.base(), None).await;
    assert!(
        entries.iter().any(|e| e["action"] == "CANCEL"),
        "the authorisation was voided: {entries:?}"
    );

    // Cancel before confirming: no gateway involved.
    let fresh = api
        .post_form(
            "/v1/payment_intents",
            &format!("amount=500&currency=gbp&payment_method={pm}"),
        )
        .await;
    assert_eq!(fresh.json["status"], "requires_confirmation");
    let fid = fresh.json["id"].as_str().expect("id");
    let c = api
        .post_form(&format!("/v1/payment_intents/{fid}/cancel"), "")
        .await;
    assert_eq!(c.json["status"], "canceled");
    let confirm = api
        .post_form(&format!("/v1/payment_intents/{fid}/confirm"), "")
        .await;
    assert_eq!(
        (confirm.status, confirm.err("code")),
        (400, "payment_intent_unexpected_state")
    );
}

#[tokio::test]
async fn a_cancel_without_a_reason_answers_a_null_reason_as_stripe_does() {
    let w = World::new();
    let api = &w.api;
    let pm = api.card("4242424242424242", 12, 2030, None).await;
    // Before confirming (no gateway), and an authorisation voided at the gateway.
    let fresh = api
        .post_form(
            "/v1/payment_intents",
            &format!("amount=500&currency=gbp&payment_method={pm}"),
        )
        .await;
    let held = api.pay(700, &pm, "&capture_method=manual").await;
    for r in [fresh, held] {
        let id = r.json["id"].as_str().expect("id").to_string();
        let c = api
            .post_form(&format!("/v1/payment_intents/{id}/cancel"), "")
            .await;
        assert_eq!(c.json["status"], "canceled", "{}", c.text);
        assert_eq!(
            c.json["cancellation_reason"],
            serde_json::Value::Null,
            "{}",
            c.text
        );
    }
    let given = api
        .post_form(
            "/v1/payment_intents",
            &format!("amount=500&currency=gbp&payment_method={pm}"),
        )
        .await;
    let id = given.json["id"].as_str().expect("id");
    let c = api
        .post_form(
            &format!("/v1/payment_intents/{id}/cancel"),
            "cancellation_reason=duplicate",
        )
        .await;
    assert_eq!(c.json["cancellation_reason"], "duplicate", "{}", c.text);
}

#[tokio::test]
async fn one_idempotency_key_retried_concurrently_charges_once() {
    let w = World::new();
    let pm = w.api.card("4242424242424242", 12, 2030, None).await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let api = w.api.clone();
        let body = format!("amount=4200&currency=gbp&payment_method={pm}&confirm=true");
        tasks.push(tokio::spawn(async move {
            api.post_idem("/v1/payment_intents", &body, "pay-once")
                .await
        }));
    }
    let mut ids = HashSet::new();
    for t in tasks {
        let r = t.await.expect("task");
        assert!(
            r.status == 200 || r.status == 409,
            "{} {}",
            r.status,
            r.text
        );
        if r.status == 200 {
            ids.insert(r.json["id"].as_str().expect("id").to_string());
            assert_eq!(r.json["status"], "succeeded");
        }
    }
    assert_eq!(ids.len(), 1);
    let list = w.api.get("/v1/payment_intents?limit=100").await;
    assert_eq!(list.json["data"].as_array().map(Vec::len), Some(1));
    let pi = ids.into_iter().next().expect("one");
    assert_eq!(
        sales_per_order(&ledger(&w.daemon.base(), Some(&pi)).await).get(&pi),
        Some(&1)
    );
}

#[tokio::test]
async fn form_and_json_payments_agree_and_bad_input_is_named() {
    let w = World::new();
    let api = &w.api;
    let pm = api.card("4242424242424242", 12, 2030, None).await;
    let form = api
        .post_form(
            "/v1/payment_intents",
            &format!(
                "amount=1234&currency=GBP&payment_method={pm}&metadata[order]=7&description=Tea"
            ),
        )
        .await;
    let json = api
        .post_json("/v1/payment_intents", &json!({"amount": 1234, "currency": "gbp", "paymentMethodId": pm, "metadata": {"order": "7"}, "description": "Tea"}))
        .await;
    let strip = |mut v: serde_json::Value| {
        for k in ["id", "created", "client_secret"] {
            v.as_object_mut().map(|o| o.remove(k));
        }
        v
    };
    assert_eq!(strip(form.json.clone()), strip(json.json.clone()));
    for (body, param) in [
        ("currency=gbp", "amount"),
        ("amount=100", "currency"),
        ("amount=0&currency=gbp", "amount"),
        ("amount=-5&currency=gbp", "amount"),
        ("amount=12.5&currency=gbp", "amount"),
        ("amount=100&currency=usd", "currency"),
        (
            "amount=100&currency=gbp&capture_method=later",
            "capture_method",
        ),
        (
            "amount=100&currency=gbp&payment_method=pm_nope",
            "payment_method",
        ),
        ("amount=100&currency=gbp&customer=cus_nope", "customer"),
        ("amount=100&currency=gbp&confirm=maybe", "confirm"),
        ("amount=100&currency=gbp&confirm=true", "payment_method"),
    ] {
        let r = api.post_form("/v1/payment_intents", body).await;
        assert_eq!(
            (r.status, r.err("param")),
            (400, param),
            "{body}: {}",
            r.text
        );
    }
    for (body, param) in [
        (
            "card[number]=4242424242424241&card[exp_month]=12&card[exp_year]=2030",
            "card[number]",
        ),
        (
            "card[number]=4242424242424242&card[exp_month]=0&card[exp_year]=2030",
            "card[exp_month]",
        ),
        (
            "card[number]=4242424242424242&card[exp_month]=1&card[exp_year]=2020",
            "card[exp_year]",
        ),
        (
            "card[number]=4242424242424242&card[exp_month]=1&card[exp_year]=2030&card[cvc]=1",
            "card[cvc]",
        ),
        ("type=card", "card"),
    ] {
        let r = api.post_form("/v1/payment_methods", body).await;
        assert_eq!(r.err("param"), param, "{body}: {}", r.text);
        assert!(r.status == 402 || r.status == 400, "{body}");
    }
}

#[tokio::test]
async fn card_numbers_never_reach_redis_logs_or_answers() {
    let w = World::new();
    let cus = w.api.customer().await;
    let numbers = ["4242424242424242", "4000002500003155", "4929421234600821"];
    for n in numbers {
        let r = w
            .api
            .post_form(
                "/v1/payment_methods",
                &format!("card[number]={n}&card[exp_month]=12&card[exp_year]=2031&card[cvc]=987&customer={cus}"),
            )
            .await;
        assert!(!r.text.contains(n));
        let pm = r.json["id"].as_str().expect("id").to_string();
        let p = w.api.pay(1000, &pm, &format!("&customer={cus}")).await;
        assert!(!p.text.contains(n));
    }
    // A bad number is not echoed either.
    let bad = w
        .api
        .post_form(
            "/v1/payment_methods",
            "card[number]=4242424242424241&card[exp_month]=1&card[exp_year]=2030",
        )
        .await;
    assert!(!bad.text.contains("4242424242424241"));
    let mut conn = w.redis.conn();
    let dump = redis_dump_text(&mut conn);
    // The dump holds the records' JSON (decoded from their packed form): the cards are there
    // by their last four digits only.
    assert!(
        dump.contains("\"last4\":\"3155\""),
        "payment method records are in the dump"
    );
    let logs = w.daemon.logs();
    for n in numbers.iter().chain(["4242424242424241"].iter()) {
        assert!(!dump.contains(n), "{n} found in Redis");
        assert!(!logs.contains(n), "{n} found in the log");
    }
    // As a value of its own, a form field or a JSON string; not "ends in 987", which a
    // timestamp (a rate limit's µs, an event's second) does one time in a thousand.
    let cvc_stored = dump
        .lines()
        .any(|l| l == "987" || l.ends_with("=987") || l.contains("=987&") || l.contains("\"987\""));
    assert!(!cvc_stored, "the CVC is not stored");
}

#[tokio::test]
async fn live_keys_never_reach_the_test_merchant() {
    let w = World::new();
    let live = w.daemon.api(&w.daemon.key("acme", "live"));
    let r = live
        .post_form(
            "/v1/payment_methods",
            "card[number]=4242424242424242&card[exp_month]=12&card[exp_year]=2030",
        )
        .await;
    assert_eq!(
        (r.status, r.err("code")),
        (400, "live_mode_not_configured"),
        "{}",
        r.text
    );
    assert!(
        ledger(&w.daemon.base(), None).await.is_empty(),
        "nothing reached the sandbox"
    );
}

#[tokio::test]
async fn lists_filter_by_customer_and_created_and_cards_attach_and_detach() {
    let w = World::new();
    let api = &w.api;
    let (a, b) = (api.customer().await, api.customer().await);
    let pm = api.card("4242424242424242", 12, 2030, Some(&a)).await;
    let other = api.card("5555555555554444", 12, 2030, None).await;
    let r = api
        .post_form(
            &format!("/v1/payment_methods/{other}/attach"),
            &format!("customer={b}"),
        )
        .await;
    assert_eq!(r.json["customer"], b.as_str(), "{}", r.text);
    let taken = api
        .post_form(
            &format!("/v1/payment_methods/{other}/attach"),
            &format!("customer={a}"),
        )
        .await;
    assert_eq!(taken.status, 400, "attached to someone else");
    let mismatch = api.pay(100, &other, &format!("&customer={a}")).await;
    assert_eq!(
        (mismatch.status, mismatch.err("param")),
        (400, "payment_method")
    );
    for _ in 0..3 {
        assert_eq!(
            api.pay(100, &pm, &format!("&customer={a}")).await.status,
            200
        );
    }
    assert_eq!(
        api.pay(100, &other, &format!("&customer={b}")).await.status,
        200
    );
    let of_a = api.get(&format!("/v1/payment_intents?customer={a}")).await;
    assert_eq!(of_a.json["data"].as_array().map(Vec::len), Some(3));
    let created = of_a.json["data"][0]["created"].as_i64().expect("created");
    let window = api
        .get(&format!(
            "/v1/payment_intents?created[gte]={created}&created[lte]={created}"
        ))
        .await;
    assert!(
        window.json["data"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    );
    let future = api
        .get(&format!("/v1/payment_intents?created[gt]={}", created + 10))
        .await;
    assert_eq!(future.json["data"].as_array().map(Vec::len), Some(0));
    let past = api
        .get(&format!(
            "/v1/payment_intents?created[lt]={}",
            created - 100
        ))
        .await;
    assert_eq!(past.json["data"].as_array().map(Vec::len), Some(0));
    let bad = api.get("/v1/payment_intents?created[soon]=1").await;
    assert_eq!((bad.status, bad.err("param")), (400, "created[soon]"));

    let d = api
        .post_form(&format!("/v1/payment_methods/{other}/detach"), "")
        .await;
    assert_eq!(
        (d.status, d.json["customer"].clone()),
        (200, serde_json::Value::Null)
    );
    let cards_b = api.get(&format!("/v1/customers/{b}/payment_methods")).await;
    assert_eq!(cards_b.json["data"].as_array().map(Vec::len), Some(0));
    let mut conn = w.redis.conn();
    let dump = redis_dump_text(&mut conn);
    assert!(dump.contains("payment_method.attached") && dump.contains("payment_method.detached"));
    let m = api.get("/metrics").await;
    assert!(
        m.text
            .contains("calmony_payments_total{outcome=\"succeeded\"}"),
        "{}",
        m.text
    );
    assert!(
        m.text
            .contains("calmony_gateway_request_duration_seconds_bucket{action=\"SALE\"")
    );
}
