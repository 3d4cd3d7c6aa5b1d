//! The supervised actors: each one made to panic (the test-only hook
//! `POST /sandbox/actors/faults`) while its work is in flight is restarted, counted in
//! `calmony_actor_restarts_total{actor}`, and its work still completes exactly once; and
//! `/readyz` answers 503 naming a critical actor while its restarts keep failing.

use std::time::Duration;

use serde_json::Value;

use crate::harness::receiver::{Answer, Receiver};
use crate::harness::{World, eventually, ledger, sales_per_order, sandbox_post};

/// Arm the fault hook: `form` is `actor=<name>&panics=<n>&hold_ms=<ms>`.
async fn arm(w: &World, form: &str) {
    let armed = sandbox_post(&w.daemon.base(), "/sandbox/actors/faults", form).await;
    assert!(
        armed["actor"].is_string(),
        "the fault was not armed: {armed}"
    );
}

/// `calmony_actor_restarts_total{actor}` as /metrics shows it (0 before the first).
async fn restarts(w: &World, actor: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", w.daemon.base()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let series = format!("calmony_actor_restarts_total{{actor=\"{actor}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

async fn readyz(w: &World) -> (u16, Value) {
    let r = reqwest::get(format!("{}/readyz", w.daemon.base()))
        .await
        .expect("readyz");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Wait until the actor's restart is counted and the daemon is ready again.
async fn restarted_once(w: &World, actor: &str) {
    let counted = eventually(Duration::from_secs(10), || async {
        restarts(w, actor).await >= 1 && readyz(w).await.0 == 200
    })
    .await;
    assert!(counted, "{actor} was not restarted:\n{}", w.daemon.logs());
    assert_eq!(restarts(w, actor).await, 1, "{actor} restarted once");
    assert!(
        w.daemon.logs().contains("actor crashed; restarting")
            && w.daemon.logs().contains("test fault"),
        "the restart is logged with the panic's message"
    );
}

/// The intent's status, as the API reads it.
async fn status_of(w: &World, intent: &str) -> String {
    let r = w.api.get(&format!("/v1/payment_intents/{intent}")).await;
    r.json["status"].as_str().unwrap_or_default().to_string()
}

/// A payment is at the gateway, whose answers are lost (the sandbox processes the sale and
/// never answers it, nor the QUERY after); the IntentProcessor panics meanwhile. Its restart's recovery resumes the command
/// from `cp:payments:commands`, asks the gateway, and records the sale: charged once.
#[tokio::test]
async fn a_panicking_intent_processor_resumes_the_payment_in_flight_and_charges_it_once() {
    let w = World::with(&[("CALMONY_GATEWAY_TIMEOUT_SECONDS", "2")]);
    let pm = w.api.card("4242424242424242", 12, 2035, None).await;
    let created = w
        .api
        .post_form(
            "/v1/payment_intents",
            &format!("amount=4200&currency=gbp&payment_method={pm}"),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let intent = created.json["id"].as_str().expect("id").to_string();
    // The sale's answer and the QUERY that follows it are both lost: the request can only
    // leave the payment to recovery.
    sandbox_post(&w.daemon.base(), "/sandbox/faults", "drop_next=2").await;
    let api = w.api.clone();
    let path = format!("/v1/payment_intents/{intent}/confirm");
    let confirming =
        tokio::spawn(async move { api.post_idem(&path, "", "actors-confirm-1").await });
    let in_flight = eventually(Duration::from_secs(10), || async {
        status_of(&w, &intent).await == "processing"
    })
    .await;
    assert!(in_flight, "the payment never reached the gateway");
    arm(&w, "actor=intent_processor&panics=1").await;
    let answered = confirming.await.expect("confirm task");
    assert_eq!(answered.status, 200, "{}", answered.text);
    assert_eq!(answered.json["status"], "processing", "{}", answered.text);
    let settled = eventually(Duration::from_secs(20), || async {
        status_of(&w, &intent).await == "succeeded"
    })
    .await;
    assert!(settled, "recovery did not finish it:\n{}", w.daemon.logs());
    let sales = sales_per_order(&ledger(&w.daemon.base(), Some(&intent)).await);
    assert_eq!(
        sales.get(intent.as_str()),
        Some(&1),
        "one charge: {sales:?}"
    );
    restarted_once(&w, "intent_processor").await;
    // The client's retry gets the payment's final answer, and nothing more is charged.
    let again = w
        .api
        .post_idem(
            &format!("/v1/payment_intents/{intent}/confirm"),
            "",
            "actors-confirm-1",
        )
        .await;
    assert_eq!(again.json["status"], "succeeded", "{}", again.text);
    let sales = sales_per_order(&ledger(&w.daemon.base(), Some(&intent)).await);
    assert_eq!(sales.get(intent.as_str()), Some(&1));
}

/// A payment's work panics after its begin commit, just before the sale goes to the gateway
/// (the `payment_before_sale` fault point): the request answers 500, the IntentProcessor's
/// restart is counted, and recovery resumes the begun payment from `cp:payments:commands`,
/// charging it exactly once.
#[tokio::test]
async fn a_payment_panicking_after_its_begin_is_completed_once_by_recovery() {
    let w = World::new();
    let pm = w.api.card("4242424242424242", 12, 2035, None).await;
    let created = w
        .api
        .post_form(
            "/v1/payment_intents",
            &format!("amount=3100&currency=gbp&payment_method={pm}"),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let intent = created.json["id"].as_str().expect("id").to_string();
    arm(&w, "actor=payment_before_sale&panics=1").await;
    let confirmed = w
        .api
        .post_idem(
            &format!("/v1/payment_intents/{intent}/confirm"),
            "",
            "actors-before-sale-1",
        )
        .await;
    assert_eq!(confirmed.status, 500, "{}", confirmed.text);
    assert!(
        w.daemon.logs().contains("payment_before_sale panics"),
        "the panic came from the fault point inside the payment's work:\n{}",
        w.daemon.logs()
    );
    let settled = eventually(Duration::from_secs(20), || async {
        status_of(&w, &intent).await == "succeeded"
    })
    .await;
    assert!(settled, "recovery did not finish it:\n{}", w.daemon.logs());
    let sales = sales_per_order(&ledger(&w.daemon.base(), Some(&intent)).await);
    assert_eq!(
        sales.get(intent.as_str()),
        Some(&1),
        "one charge: {sales:?}"
    );
    restarted_once(&w, "intent_processor").await;
    // The client's retry gets the final answer, and nothing more is charged.
    let again = w
        .api
        .post_idem(
            &format!("/v1/payment_intents/{intent}/confirm"),
            "",
            "actors-before-sale-1",
        )
        .await;
    assert_eq!(again.json["status"], "succeeded", "{}", again.text);
    let sales = sales_per_order(&ledger(&w.daemon.base(), Some(&intent)).await);
    assert_eq!(sales.get(intent.as_str()), Some(&1));
}

/// A payment command whose own work panics answers a 500 and charges nothing; the payments
/// already in flight beside it are not held up or lost, and a retry pays once.
#[tokio::test]
async fn a_payment_command_that_panics_answers_500_and_payments_beside_it_complete_once() {
    let w = World::new();
    let pm = w.api.card("4242424242424242", 12, 2035, None).await;
    sandbox_post(&w.daemon.base(), "/sandbox/faults", "delay_ms=800").await;
    let api = w.api.clone();
    let pm2 = pm.clone();
    let beside = tokio::spawn(async move { api.pay(1111, &pm2, "").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    arm(&w, "actor=intent_processor&panics=1").await;
    // The next message is this request's (or a recovery tick's, a second later at most).
    let panicked = w
        .api
        .post_idem(
            "/v1/payment_intents",
            &format!("amount=2222&currency=gbp&payment_method={pm}&confirm=true"),
            "actors-pay-2",
        )
        .await;
    let first = beside.await.expect("task");
    assert_eq!(first.json["status"], "succeeded", "{}", first.text);
    let retried = w
        .api
        .post_idem(
            "/v1/payment_intents",
            &format!("amount=2222&currency=gbp&payment_method={pm}&confirm=true"),
            "actors-pay-2",
        )
        .await;
    let retried = if panicked.status == 200 {
        panicked
    } else {
        assert_eq!(panicked.status, 500, "{}", panicked.text);
        // A 500 is not kept under the key: the retry runs the payment.
        eventually(Duration::from_secs(5), || async {
            readyz(&w).await.0 == 200
        })
        .await;
        if retried.status == 200 {
            retried
        } else {
            w.api
                .post_idem(
                    "/v1/payment_intents",
                    &format!("amount=2222&currency=gbp&payment_method={pm}&confirm=true"),
                    "actors-pay-2",
                )
                .await
        }
    };
    assert_eq!(retried.json["status"], "succeeded", "{}", retried.text);
    let sales = sales_per_order(&ledger(&w.daemon.base(), None).await);
    assert_eq!(sales.len(), 2, "two payments: {sales:?}");
    assert!(
        sales.values().all(|n| *n == 1),
        "each charged once: {sales:?}"
    );
    restarted_once(&w, "intent_processor").await;
}

/// Two payments are at the gateway through the CardstreamGateway when it panics on one call:
/// that call answers "no outcome" (never a decline), the payment is settled by asking the
/// gateway once the actor is back, and each payment is charged once.
#[tokio::test]
async fn a_panicking_cardstream_gateway_leaves_no_payment_lost_or_doubled() {
    let w = World::new();
    let pm = w.api.card("4242424242424242", 12, 2035, None).await;
    sandbox_post(&w.daemon.base(), "/sandbox/faults", "delay_ms=800").await;
    let api = w.api.clone();
    let pm2 = pm.clone();
    let first = tokio::spawn(async move { api.pay(1234, &pm2, "").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    arm(&w, "actor=cardstream_gateway&panics=1").await;
    let second = w.api.pay(5678, &pm, "").await;
    assert_eq!(second.status, 200, "{}", second.text);
    let second = second.json["id"].as_str().expect("id").to_string();
    let first = first.await.expect("task");
    assert_eq!(first.json["status"], "succeeded", "{}", first.text);
    let settled = eventually(Duration::from_secs(20), || async {
        status_of(&w, &second).await == "succeeded"
    })
    .await;
    assert!(
        settled,
        "the second payment was not settled:\n{}",
        w.daemon.logs()
    );
    let sales = sales_per_order(&ledger(&w.daemon.base(), None).await);
    assert_eq!(sales.len(), 2, "two payments: {sales:?}");
    assert!(
        sales.values().all(|n| *n == 1),
        "each charged once: {sales:?}"
    );
    restarted_once(&w, "cardstream_gateway").await;
}

/// A renewal comes due while the SubscriptionScheduler panics: the restarted scheduler runs it,
/// once: one renewal invoice, paid, one charge.
#[tokio::test]
async fn a_panicking_subscription_scheduler_still_renews_once() {
    let w = World::with(&[("CALMONY_CLOCK_CONTROLLABLE", "true")]);
    let api = &w.api;
    let cus = api.customer().await;
    let card = api.card("4242424242424242", 12, 2035, Some(&cus)).await;
    let price = api
        .post_form(
            "/v1/prices",
            "currency=gbp&unit_amount=900&recurring[interval]=month&product_data[name]=Plan",
        )
        .await;
    let price = price.json["id"].as_str().expect("price").to_string();
    let sub = api
        .post_form(
            "/v1/subscriptions",
            &format!("customer={cus}&items[0][price]={price}&default_payment_method={card}"),
        )
        .await;
    assert_eq!(sub.status, 200, "{}", sub.text);
    let sub = sub.json["id"].as_str().expect("sub").to_string();
    let invoices = |api: crate::harness::Api, sub: String| async move {
        api.get(&format!("/v1/invoices?subscription={sub}&limit=10"))
            .await
            .json["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(invoices(api.clone(), sub.clone()).await.len(), 1);
    arm(&w, "actor=subscription_scheduler&panics=1").await;
    // A month and two hours on: the renewal is due, and the hourly schedule fires.
    w.daemon.cli(&[
        "clock",
        "advance",
        "--seconds",
        &(32 * 86_400 + 7200).to_string(),
    ]);
    let renewed = eventually(Duration::from_secs(30), || {
        let (api, sub) = (api.clone(), sub.clone());
        async move {
            let all = invoices(api, sub).await;
            all.len() == 2 && all.iter().all(|i| i["status"] == "paid")
        }
    })
    .await;
    assert!(renewed, "the renewal was not run:\n{}", w.daemon.logs());
    // Some more ticks: nothing is renewed twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(invoices(api.clone(), sub.clone()).await.len(), 2);
    let sales: usize = sales_per_order(&ledger(&w.daemon.base(), None).await)
        .values()
        .sum();
    assert_eq!(
        sales, 2,
        "the first period and the renewal, each charged once"
    );
    restarted_once(&w, "subscription_scheduler").await;
}

/// The WebhookDispatcher panics inside a real delivery, the event's delivery claimed and
/// pending: the dispatcher restarts, its loops resume from their streams, the delivery is
/// taken over (its in-hand mark went with the panic), and the event is delivered once.
#[tokio::test]
async fn a_panicking_webhook_dispatcher_delivers_the_event_in_flight_once() {
    let w = World::new();
    let receiver = Receiver::start().await;
    receiver.set(Answer::Hang(Duration::from_millis(1500)));
    let endpoint = w
        .api
        .post_form(
            "/v1/webhook_endpoints",
            &format!(
                "url={}&enabled_events[]=payment_intent.succeeded",
                urlencode(&receiver.url)
            ),
        )
        .await;
    assert_eq!(endpoint.status, 200, "{}", endpoint.text);
    // Armed before the event exists: the fault trips at the start of its delivery.
    arm(&w, "actor=webhook_dispatcher&panics=1").await;
    let pm = w.api.card("4242424242424242", 12, 2035, None).await;
    let paid = w.api.pay(3300, &pm, "").await;
    assert_eq!(paid.json["status"], "succeeded", "{}", paid.text);
    let mut conn = w.redis.conn();
    let sending = eventually(Duration::from_secs(10), || {
        let pending: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
            .arg("cp:webhooks:deliveries")
            .arg("senders")
            .query(&mut conn)
            .unwrap_or(redis::streams::StreamPendingReply::Empty);
        std::future::ready(pending.count() > 0)
    })
    .await;
    assert!(sending, "the delivery never started");
    let delivered = receiver
        .wait(Duration::from_secs(15), |r| !r.is_empty())
        .await;
    assert!(delivered, "not delivered:\n{}", w.daemon.logs());
    restarted_once(&w, "webhook_dispatcher").await;
    // Past the senders' takeover of orphans (idle 1 s): still one delivery of the event.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let got = receiver.received();
    assert_eq!(got.len(), 1, "delivered once: {got:?}");
    assert_eq!(got[0].event_type(), "payment_intent.succeeded");
}

/// A checkout session comes to expire while CheckoutExpiry panics: the restarted actor
/// expires it, with one `checkout.session.expired` event.
#[tokio::test]
async fn a_panicking_checkout_expiry_still_expires_the_session_once() {
    let w = World::with(&[("CALMONY_CLOCK_CONTROLLABLE", "true")]);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let s = crate::checkout::session(&w, &format!("&expires_at={}", t + 1800 + 5)).await;
    let id = s["id"].as_str().expect("id").to_string();
    arm(&w, "actor=checkout_expiry&panics=1").await;
    w.daemon.cli(&["clock", "advance", "--seconds", "1900"]);
    let expired =
        eventually(Duration::from_secs(15), || {
            let (api, id) = (w.api.clone(), id.clone());
            async move {
                api.get(&format!("/v1/checkout/sessions/{id}")).await.json["status"] == "expired"
            }
        })
        .await;
    assert!(expired, "not expired:\n{}", w.daemon.logs());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ev = w.api.get("/v1/events?type=checkout.session.expired").await;
    let events = ev.json["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 1, "{}", ev.text);
    assert_eq!(events[0]["data"]["object"]["id"], id.as_str());
    restarted_once(&w, "checkout_expiry").await;
}

/// Two invoice PDFs are rendered at once and the InvoiceGenerator panics on one: that request
/// answers a 500, the other its PDF, and the retry renders the first.
#[tokio::test]
async fn a_panicking_invoice_generator_fails_one_render_and_the_retry_renders_it() {
    let w = World::new();
    let api = &w.api;
    let cus = api.customer().await;
    let mut invoices = Vec::new();
    for amount in [1500, 2500] {
        let item = api
            .post_form(
                "/v1/invoiceitems",
                &format!("customer={cus}&amount={amount}&currency=gbp&description=Service"),
            )
            .await;
        assert_eq!(item.status, 200, "{}", item.text);
        let inv = api
            .post_form("/v1/invoices", &format!("customer={cus}"))
            .await;
        assert_eq!(inv.status, 200, "{}", inv.text);
        invoices.push(inv.json["id"].as_str().expect("invoice").to_string());
    }
    arm(&w, "actor=invoice_generator&panics=1").await;
    let pdf = |id: String| {
        let api = api.clone();
        async move {
            let r = api
                .http
                .get(format!("{}/v1/invoices/{id}/pdf", api.base))
                .bearer_auth(&api.key)
                .send()
                .await
                .expect("pdf");
            let status = r.status().as_u16();
            (status, r.bytes().await.unwrap_or_default())
        }
    };
    let (a, b) = tokio::join!(pdf(invoices[0].clone()), pdf(invoices[1].clone()));
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 500], "one render panicked, one did not");
    for id in &invoices {
        let (status, bytes) = pdf(id.clone()).await;
        assert_eq!(status, 200);
        assert!(bytes.starts_with(b"%PDF"));
    }
    assert_eq!(restarts(&w, "invoice_generator").await, 1);
}

/// While a critical actor's restarts keep failing, `/readyz` answers 503 naming it; once one
/// succeeds, 200 again.
#[tokio::test]
async fn readyz_answers_503_naming_an_actor_held_down_and_200_once_it_is_back() {
    let w = World::new();
    assert_eq!(readyz(&w).await.0, 200);
    arm(&w, "actor=checkout_expiry&panics=1&hold_ms=3000").await;
    let down = eventually(Duration::from_secs(5), || async {
        let (status, body) = readyz(&w).await;
        status == 503 && body["actors_down"][0]["actor"] == "checkout_expiry"
    })
    .await;
    assert!(down, "readyz did not name the actor:\n{}", w.daemon.logs());
    // Still down a second later: its restarts are refused for three seconds.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (status, body) = readyz(&w).await;
    assert_eq!(status, 503, "{body}");
    let back = eventually(Duration::from_secs(15), || async {
        readyz(&w).await.0 == 200
    })
    .await;
    assert!(back, "the actor never came back:\n{}", w.daemon.logs());
    assert!(
        restarts(&w, "checkout_expiry").await >= 2,
        "the refused starts count too"
    );
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
