//! Hosted checkout over HTTP: the session API, the page's hand-off to the sandbox's hosted card
//! page, completion from the redirect and the callback in either order and replayed, declines,
//! cancel, expiry (and a late payment refused and voided), a second payment for a paid session
//! voided, setup and subscription modes, and the lettings client's flow (metadata on the
//! `payment_intent.succeeded` webhook).

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::receiver::Receiver;
use crate::harness::{
    Form, World, eventually, form, get_page, ledger, sales_per_order, sandbox_post,
};

pub(crate) async fn session(w: &World, extra: &str) -> Value {
    let r = w
        .api
        .post_form(
            "/v1/checkout/sessions",
            &format!(
                "mode=payment&success_url=https%3A%2F%2Fagency.example%2Fpaid%3Fsession%3D%7BCHECKOUT_SESSION_ID%7D&cancel_url=https%3A%2F%2Fagency.example%2Fcancelled\
                 &line_items[0][price_data][currency]=gbp&line_items[0][price_data][unit_amount]=2500&line_items[0][price_data][product_data][name]=Holding+deposit\
                 &line_items[0][quantity]=1{extra}"
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json
}

/// From the session's page to the hosted card page (the signed hand-off, as the browser posts it).
pub(crate) async fn to_card_page(w: &World, url: &str) -> (Form, String) {
    let (status, html) = get_page(url).await;
    assert_eq!(status, 200, "{html}");
    let hand_off = form(&html, "checkout-hand-off");
    assert!(hand_off.fields.iter().any(|(k, _)| k == "signature"));
    let (status, _, card_page) = hand_off.submit(&w.daemon.base()).await;
    assert_eq!(status, 200, "{card_page}");
    (form(&card_page, "card-form"), card_page)
}

/// Pay on the hosted card page; returns the signed result form the gateway hands back.
pub(crate) async fn pay(w: &World, card_form: Form, number: &str) -> Form {
    let (status, _, result) = card_form
        .with("cardNumber", number)
        .with("cardExpiryMonth", "12")
        .with("cardExpiryYear", "2030")
        .with("cardCVV", "123")
        .with("cardholderName", "Jo Tenant")
        .submit(&w.daemon.base())
        .await;
    assert_eq!(status, 200, "{result}");
    form(&result, "hosted-result")
}

#[tokio::test]
async fn the_seed_flow_pays_and_lands_on_success_url_with_metadata_on_the_webhook() {
    let w = World::new();
    let rx = Receiver::start().await;
    w.api.post_form("/v1/webhook_endpoints", &format!("url={}&enabled_events[]=payment_intent.succeeded&enabled_events[]=checkout.session.completed", urlenc(&rx.url))).await;
    let s = session(&w, "&customer_email=jo%40tenant.example&metadata[ledger_id]=LED-4471&client_reference_id=tenancy-9&payment_intent_data[metadata][agency]=Hart+%26+Co").await;
    // The seed's shape.
    assert!(s["id"].as_str().is_some_and(|i| i.starts_with("cs_test_")));
    assert_eq!(s["object"], "checkout.session");
    assert_eq!(
        (s["status"].as_str(), s["payment_status"].as_str()),
        (Some("open"), Some("unpaid"))
    );
    assert_eq!(
        (
            s["amount_subtotal"].as_i64(),
            s["amount_total"].as_i64(),
            s["currency"].as_str()
        ),
        (Some(2500), Some(2500), Some("gbp"))
    );
    assert_eq!(s["payment_intent"], Value::Null);
    assert!(
        s["expires_at"]
            .as_i64()
            .zip(s["created"].as_i64())
            .is_some_and(|(e, c)| e - c == 86_400)
    );
    let id = s["id"].as_str().expect("id").to_string();
    let items = w
        .api
        .get(&format!("/v1/checkout/sessions/{id}/line_items"))
        .await;
    assert_eq!(items.json["data"][0]["description"], "Holding deposit");

    let (card, _) = to_card_page(&w, s["url"].as_str().expect("url")).await;
    let result = pay(&w, card, "4242424242424242").await;
    assert!(
        result
            .action
            .ends_with(&format!("/pay/checkout/{}/test/{id}/return", w_project(&s)))
    );
    let (status, location, _) = result.submit(&w.daemon.base()).await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some(format!("https://agency.example/paid?session={id}").as_str())
    );

    let done = w.api.get(&format!("/v1/checkout/sessions/{id}")).await;
    assert_eq!(
        (
            done.json["status"].as_str(),
            done.json["payment_status"].as_str()
        ),
        (Some("complete"), Some("paid")),
        "{}",
        done.text
    );
    assert_eq!(done.json["url"], Value::Null);
    let pi = done.json["payment_intent"]
        .as_str()
        .expect("intent")
        .to_string();
    let intent = w.api.get(&format!("/v1/payment_intents/{pi}")).await;
    assert_eq!(intent.json["status"], "succeeded");
    assert_eq!(intent.json["metadata"]["ledger_id"], "LED-4471");
    assert_eq!(intent.json["metadata"]["agency"], "Hart & Co");
    assert!(
        intent.json["cardstreamTransactionId"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    let cus = done.json["customer"].as_str().expect("customer");
    assert_eq!(
        w.api.get(&format!("/v1/customers/{cus}")).await.json["email"],
        "jo@tenant.example"
    );
    let pm = done.json["payment_method"].as_str().expect("pm");
    let card = w.api.get(&format!("/v1/payment_methods/{pm}")).await;
    assert_eq!(
        (
            card.json["customer"].as_str(),
            card.json["card"]["last4"].as_str()
        ),
        (Some(cus), Some("4242"))
    );
    let invoices = w.api.get(&format!("/v1/invoices?customer={cus}")).await;
    assert_eq!(invoices.json["data"][0]["status"], "paid");
    assert_eq!(
        done.json["invoice"], invoices.json["data"][0]["id"],
        "the session names its invoice"
    );
    // The list filters: by status and by payment intent.
    let ids = |r: &crate::harness::Resp| -> Vec<String> {
        r.json["data"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect()
    };
    let complete = w.api.get("/v1/checkout/sessions?status=complete").await;
    assert!(ids(&complete).contains(&id), "{}", complete.text);
    assert!(!ids(&w.api.get("/v1/checkout/sessions?status=open").await).contains(&id));
    let by_pi = w
        .api
        .get(&format!(
            "/v1/checkout/sessions?payment_intent={}",
            done.json["payment_intent"].as_str().expect("pi")
        ))
        .await;
    assert_eq!(ids(&by_pi), vec![id.clone()]);
    assert_eq!(
        w.api.get("/v1/checkout/sessions?status=paid").await.status,
        400
    );
    let expanded = w
        .api
        .get(&format!(
            "/v1/checkout/sessions/{id}?expand[]=customer&expand[]=invoice"
        ))
        .await;
    assert_eq!(
        (
            expanded.json["customer"]["object"].as_str(),
            expanded.json["invoice"]["status"].as_str()
        ),
        (Some("customer"), Some("paid")),
        "{}",
        expanded.text
    );
    let bad = w
        .api
        .get(&format!(
            "/v1/checkout/sessions/{id}?expand[]=line_items.data"
        ))
        .await;
    assert_eq!(
        (bad.status, bad.json["error"]["param"].as_str()),
        (400, Some("expand")),
        "{}",
        bad.text
    );
    assert_eq!(
        sales_per_order(&ledger(&w.daemon.base(), Some(&reference(&id))).await)
            .get(&reference(&id)),
        Some(&1)
    );

    // The lettings client's webhook: payment_intent.succeeded carrying the ledger id.
    assert!(
        rx.wait(Duration::from_secs(10), |r| r
            .iter()
            .any(|x| x.event_type() == "payment_intent.succeeded"))
            .await
    );
    let hook = rx
        .received()
        .into_iter()
        .find(|x| x.event_type() == "payment_intent.succeeded")
        .expect("webhook");
    let body: Value = serde_json::from_str(&hook.body).expect("json");
    assert_eq!(body["data"]["object"]["metadata"]["ledger_id"], "LED-4471");
    assert!(
        rx.wait(Duration::from_secs(10), |r| r
            .iter()
            .any(|x| x.event_type() == "checkout.session.completed"))
            .await
    );
}

fn w_project(s: &Value) -> String {
    // The page URL is /pay/checkout/<project>/<mode>/<id>.
    s["url"]
        .as_str()
        .unwrap_or("")
        .split("/pay/checkout/")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or("")
        .to_string()
}

fn urlenc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn callback_and_redirect_in_either_order_and_replayed_complete_once() {
    let w = World::new();
    for callback_first in [true, false] {
        let s = session(&w, "").await;
        let id = s["id"].as_str().expect("id").to_string();
        let (card, _) = to_card_page(&w, s["url"].as_str().expect("url")).await;
        let result = pay(&w, card, "4242424242424242").await;
        let callback = Form {
            action: result.action.replace("/return", "/callback"),
            fields: result.fields.clone(),
        };
        let order = if callback_first {
            [&callback, &result, &callback, &result]
        } else {
            [&result, &callback, &result, &callback]
        };
        for f in order {
            let (status, _, body) = f.submit(&w.daemon.base()).await;
            assert!(status == 200 || status == 303, "{status}: {body}");
        }
        let done = w.api.get(&format!("/v1/checkout/sessions/{id}")).await;
        assert_eq!(done.json["status"], "complete");
        let intents = w.api.get("/v1/payment_intents?limit=100").await;
        let mine = intents.json["data"]
            .as_array()
            .expect("list")
            .iter()
            .filter(|i| i["id"] == done.json["payment_intent"])
            .count();
        assert_eq!(mine, 1);
        assert_eq!(
            sales_per_order(&ledger(&w.daemon.base(), Some(&reference(&id))).await)
                .get(&reference(&id)),
            Some(&1)
        );
        let events = w
            .api
            .get("/v1/events?type=checkout.session.completed&limit=100")
            .await;
        let completions = events.json["data"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["data"]["object"]["id"] == id.as_str())
            .count();
        assert_eq!(
            completions, 1,
            "completed once, however often the result arrives"
        );
    }
    // A forged result (tampered amount) is refused and changes nothing.
    let s = session(&w, "").await;
    let id = s["id"].as_str().expect("id").to_string();
    let (card, _) = to_card_page(&w, s["url"].as_str().expect("url")).await;
    let mut result = pay(&w, card, "4242424242424242").await;
    // (The sandbox's own callback may already have completed it; then tampering must not undo it.)
    for (k, v) in result.fields.iter_mut() {
        if k == "amount" {
            *v = "1".into();
        }
    }
    let (status, _, _) = result.submit(&w.daemon.base()).await;
    assert_eq!(status, 400);
    let after = w.api.get(&format!("/v1/checkout/sessions/{id}")).await;
    assert_eq!(
        after.json["amount_total"], s["amount_total"],
        "a forged result never changes the amount"
    );
}

#[tokio::test]
async fn a_declined_card_shows_the_reason_and_another_card_can_pay_cancel_keeps_it_open() {
    let w = World::new();
    let s = session(&w, "").await;
    let id = s["id"].as_str().expect("id").to_string();
    let url = s["url"].as_str().expect("url").to_string();
    let (card, _) = to_card_page(&w, &url).await;
    let result = pay(&w, card, "4000000000009995").await;
    let (status, _, page) = result.submit(&w.daemon.base()).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("id=\"declined\"") && page.contains("insufficient funds"),
        "{page}"
    );
    assert_eq!(
        w.api.get(&format!("/v1/checkout/sessions/{id}")).await.json["status"],
        "open"
    );
    // Another card, from the page the decline showed (a new attempt).
    let again = form(&page, "checkout-hand-off");
    let (_, _, card_page) = again.submit(&w.daemon.base()).await;
    let result = pay(&w, form(&card_page, "card-form"), "5555555555554444").await;
    let (status, location, _) = result.submit(&w.daemon.base()).await;
    assert_eq!(status, 303, "{location:?}");
    assert_eq!(
        w.api.get(&format!("/v1/checkout/sessions/{id}")).await.json["status"],
        "complete"
    );

    // Cancel on the hosted page: back to cancel_url, and the session stays open.
    let s = session(&w, "").await;
    let (card, _) = to_card_page(&w, s["url"].as_str().expect("url")).await;
    let (_, _, result) = card.with("cancel", "1").submit(&w.daemon.base()).await;
    let (status, location, _) = form(&result, "hosted-result")
        .submit(&w.daemon.base())
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("https://agency.example/cancelled"))
    );
    let still = w
        .api
        .get(&format!(
            "/v1/checkout/sessions/{}",
            s["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(still.json["status"], "open");
}

/// How many events of `kind` are about object `id`.
async fn events_about(w: &World, kind: &str, id: &str) -> usize {
    let events = w
        .api
        .get(&format!("/v1/events?type={kind}&limit=100"))
        .await;
    events.json["data"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter(|e| {
                    e["data"]["object"]["id"] == id || e["data"]["object"]["payment_intent"] == id
                })
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn every_declined_attempt_on_the_hosted_page_emits_the_decline_events() {
    let w = World::new();
    let s = session(&w, "").await;
    let id = s["id"].as_str().expect("id").to_string();
    let (mut card, _) = to_card_page(&w, s["url"].as_str().expect("url")).await;
    for number in ["4000000000000002", "4000000000009995"] {
        let result = pay(&w, card, number).await;
        // The redirect, then the callback, then the redirect again: one decline.
        let callback = Form {
            action: result.action.replace("/return", "/callback"),
            fields: result.fields.clone(),
        };
        let mut page = String::new();
        for f in [&result, &callback, &result] {
            let (status, _, body) = f.submit(&w.daemon.base()).await;
            assert_eq!(status, 200, "{body}");
            if body.contains("checkout-hand-off") {
                page = body;
            }
        }
        let (_, _, card_page) = form(&page, "checkout-hand-off")
            .submit(&w.daemon.base())
            .await;
        card = form(&card_page, "card-form");
    }
    let open = w.api.get(&format!("/v1/checkout/sessions/{id}")).await;
    assert_eq!(open.json["status"], "open");
    let pi = open.json["payment_intent"]
        .as_str()
        .unwrap_or_else(|| {
            panic!(
                "a declined attempt makes the session's intent: {}",
                open.text
            )
        })
        .to_string();
    let intent = w.api.get(&format!("/v1/payment_intents/{pi}")).await;
    assert_eq!(intent.json["status"], "requires_payment_method");
    assert_eq!(
        intent.json["last_payment_error"]["decline_code"],
        "insufficient_funds"
    );
    for kind in [
        "payment_intent.payment_failed",
        "payment_intent.failed",
        "charge.failed",
    ] {
        assert_eq!(
            events_about(&w, kind, &pi).await,
            2,
            "{kind}: one per declined attempt"
        );
    }
    // Then a card that pays completes the same intent.
    let result = pay(&w, card, "4242424242424242").await;
    let (status, _, body) = result.submit(&w.daemon.base()).await;
    assert_eq!(status, 303, "{body}");
    let done = w.api.get(&format!("/v1/checkout/sessions/{id}")).await;
    assert_eq!(done.json["status"], "complete");
    assert_eq!(done.json["payment_intent"], pi.as_str());
    let intent = w.api.get(&format!("/v1/payment_intents/{pi}")).await;
    assert_eq!(intent.json["status"], "succeeded", "{}", intent.text);
    assert_eq!(events_about(&w, "payment_intent.succeeded", &pi).await, 1);
    assert_eq!(events_about(&w, "payment_intent.created", &pi).await, 1);
}

/// A late retry of an earlier attempt's callback, arriving after a later attempt's result, is
/// a replay: each declined attempt is recorded once, whatever the order results arrive in.
#[tokio::test]
async fn a_declined_attempts_result_replayed_after_a_later_attempt_is_recorded_once() {
    let w = World::new();
    let s = session(&w, "").await;
    let id = s["id"].as_str().expect("id").to_string();
    let url = s["url"].as_str().expect("url").to_string();
    let (card_a, _) = to_card_page(&w, &url).await;
    let (card_b, _) = to_card_page(&w, &url).await;
    let a = pay(&w, card_a, "4000000000000002").await;
    let b = pay(&w, card_b, "4000000000009995").await;
    assert_ne!(a.field("transactionUnique"), b.field("transactionUnique"));
    let callback = |f: &Form| Form {
        action: f.action.replace("/return", "/callback"),
        fields: f.fields.clone(),
    };
    // A, then B, then A's callback retried late, then A's redirect again.
    for f in [&a, &b, &callback(&a), &a] {
        let (status, _, body) = f.submit(&w.daemon.base()).await;
        assert_eq!(status, 200, "{body}");
    }
    let open = w.api.get(&format!("/v1/checkout/sessions/{id}")).await;
    assert_eq!(open.json["status"], "open", "{}", open.text);
    let pi = open.json["payment_intent"]
        .as_str()
        .expect("the session's intent")
        .to_string();
    for kind in [
        "payment_intent.payment_failed",
        "payment_intent.failed",
        "charge.failed",
    ] {
        assert_eq!(
            events_about(&w, kind, &pi).await,
            2,
            "{kind}: one per declined attempt"
        );
    }
    let charges = w.api.get("/v1/charges?limit=100").await;
    let of_intent = charges.json["data"].as_array().map(|all| {
        all.iter()
            .filter(|c| c["payment_intent"] == pi.as_str())
            .count()
    });
    assert_eq!(of_intent, Some(2), "{}", charges.text);
}

#[tokio::test]
async fn a_result_answered_database_error_after_the_charge_completes_the_session_once() {
    let w = World::new();
    let s = session(&w, "").await;
    let id = s["id"].as_str().expect("id").to_string();
    let (card, _) = to_card_page(&w, s["url"].as_str().expect("url")).await;
    let faults = sandbox_post(&w.daemon.base(), "/sandbox/faults", "fail_next=1").await;
    assert_eq!(faults["fail_next"], 1, "{faults}");
    let result = pay(&w, card, "4242424242424242").await;
    assert_eq!(
        result.field("responseCode"),
        Some("65548"),
        "the gateway's result says 65548: {:?}",
        result.fields
    );
    // Not a decline: the daemon asks the gateway, which made the sale.
    let (status, location, page) = result.submit(&w.daemon.base()).await;
    assert_eq!(status, 303, "{location:?} {page}");
    assert_eq!(
        location
            .as_deref()
            .map(|l| l.starts_with("https://agency.example/paid")),
        Some(true),
        "{location:?}"
    );
    let got = w.api.get(&format!("/v1/checkout/sessions/{id}")).await;
    assert_eq!(
        (
            got.json["status"].as_str(),
            got.json["payment_status"].as_str()
        ),
        (Some("complete"), Some("paid")),
        "{}",
        got.text
    );
    assert_eq!(
        sales_per_order(&ledger(&w.daemon.base(), Some(&reference(&id))).await)
            .get(&reference(&id)),
        Some(&1)
    );
}

/// The customer pays on a second card page while the first payment's result has not reached
/// the daemon (or both results race): the session keeps the payment that completed it and
/// the other is voided at the gateway, whichever order the results arrive in.
#[tokio::test]
async fn a_second_payment_for_a_paid_session_is_voided() {
    let w = World::new();
    let s = session(&w, "").await;
    let id = s["id"].as_str().expect("id").to_string();
    let url = s["url"].as_str().expect("url").to_string();
    let (first_card, _) = to_card_page(&w, &url).await;
    let (second_card, _) = to_card_page(&w, &url).await;
    let first = pay(&w, first_card, "4242424242424242").await;
    let second = pay(&w, second_card, "5555555555554444").await;
    let (first_xref, second_xref) = (
        first.field("xref").expect("xref"),
        second.field("xref").expect("xref"),
    );
    assert_ne!(first_xref, second_xref);
    for result in [&first, &second] {
        let (status, location, page) = result.submit(&w.daemon.base()).await;
        assert_eq!(status, 303, "{location:?} {page}");
    }
    let got = w.api.get(&format!("/v1/checkout/sessions/{id}")).await;
    assert_eq!(got.json["status"], "complete", "{}", got.text);
    let pi = got.json["payment_intent"]
        .as_str()
        .expect("intent")
        .to_string();
    let intents = w.api.get("/v1/payment_intents?limit=10").await;
    assert_eq!(
        intents.json["data"].as_array().map(Vec::len),
        Some(1),
        "one payment for the session: {}",
        intents.text
    );
    assert_eq!(intents.json["data"][0]["id"], pi.as_str());
    let voided: Vec<Value> = ledger(&w.daemon.base(), None)
        .await
        .into_iter()
        // The gateway's orderRef is the session's short reference (the payer reads it).
        .filter(|e| e["action"] == "CANCEL" && e["orderRef"] == reference(&id).as_str())
        .collect();
    assert_eq!(voided.len(), 1, "exactly one payment voided: {voided:?}");
    let target = [&voided[0]["xref"], &voided[0]["originalXref"]];
    assert!(
        target.iter().any(|x| *x == first_xref || *x == second_xref),
        "the void names one of the two sales: {voided:?}"
    );
    let sale = w.api.get(&format!("/v1/payment_intents/{pi}")).await;
    assert_eq!(sale.json["status"], "succeeded");
    assert!(w.daemon.logs().contains("a second payment arrived"));
}

#[tokio::test]
async fn sessions_expire_and_a_late_payment_is_refused_and_voided() {
    let w = World::with(&[("CALMONY_CLOCK_CONTROLLABLE", "true")]);
    let now = w.api.get("/v1/customers").await; // warm up
    let _ = now;
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let s = session(&w, &format!("&expires_at={}", t + 1800 + 5)).await;
    let id = s["id"].as_str().expect("id").to_string();
    w.daemon.cli(&["clock", "advance", "--seconds", "1900"]);
    let api = w.api.clone();
    let sid = id.clone();
    assert!(
        eventually(Duration::from_secs(10), || {
            let (api, sid) = (api.clone(), sid.clone());
            async move {
                api.get(&format!("/v1/checkout/sessions/{sid}")).await.json["status"] == "expired"
            }
        })
        .await
    );
    let ev = w.api.get("/v1/events?type=checkout.session.expired").await;
    assert_eq!(ev.json["data"][0]["data"]["object"]["id"], id.as_str());
    assert_eq!(get_page(s["url"].as_str().expect("url")).await.0, 410);

    // A payment that reaches the gateway after the session expired: refused, logged, voided.
    let s = session(&w, "").await;
    let id = s["id"].as_str().expect("id").to_string();
    let (card, _) = to_card_page(&w, s["url"].as_str().expect("url")).await;
    let ex = w
        .api
        .post_form(&format!("/v1/checkout/sessions/{id}/expire"), "")
        .await;
    assert_eq!(ex.json["status"], "expired", "{}", ex.text);
    let result = pay(&w, card, "4242424242424242").await;
    let (status, _, _) = result.submit(&w.daemon.base()).await;
    assert_eq!(status, 400);
    assert_eq!(
        w.api.get(&format!("/v1/checkout/sessions/{id}")).await.json["status"],
        "expired"
    );
    let entries = ledger(&w.daemon.base(), None).await;
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "CANCEL" && e["orderRef"] == reference(&id).as_str()),
        "voided: {entries:?}"
    );
    assert!(w.daemon.logs().contains("no longer open"));
    // Bad input.
    for (body, param) in [
        (
            "mode=payment&line_items[0][price_data][currency]=gbp&line_items[0][price_data][unit_amount]=100&line_items[0][price_data][product_data][name]=x",
            "success_url",
        ),
        (
            "success_url=https%3A%2F%2Fa.example&mode=payment",
            "line_items",
        ),
        (
            "success_url=ftp%3A%2F%2Fa&line_items[0][price]=price_x",
            "success_url",
        ),
        (
            &format!(
                "success_url=https%3A%2F%2Fa.example&expires_at={}&line_items[0][price_data][currency]=gbp&line_items[0][price_data][unit_amount]=100&line_items[0][price_data][product_data][name]=x",
                t + 60
            ),
            "expires_at",
        ),
        (
            "success_url=https%3A%2F%2Fa.example&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100&line_items[0][price_data][product_data][name]=x",
            "line_items[0][price_data][currency]",
        ),
        (
            "success_url=https%3A%2F%2Fa.example&mode=rental&line_items[0][price]=price_x",
            "mode",
        ),
    ] {
        let r = w.api.post_form("/v1/checkout/sessions", body).await;
        assert_eq!(
            (r.status, r.err("param")),
            (400, param),
            "{body}: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn setup_mode_saves_a_card_and_subscription_mode_starts_a_subscription() {
    let w = World::new();
    let cus = w.api.customer().await;
    let r = w
        .api
        .post_json(
            "/v1/checkout/sessions",
            &json!({"mode": "setup", "customer": cus, "successUrl": "https://a.example/ok"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["payment_status"], "no_payment_required");
    let (card, _) = to_card_page(&w, r.json["url"].as_str().expect("url")).await;
    let result = pay(&w, card, "4242424242424242").await;
    assert_eq!(result.submit(&w.daemon.base()).await.0, 303);
    let done = w
        .api
        .get(&format!(
            "/v1/checkout/sessions/{}",
            r.json["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(
        (
            done.json["status"].as_str(),
            done.json["payment_intent"].clone()
        ),
        (Some("complete"), Value::Null)
    );
    let cards = w
        .api
        .get(&format!("/v1/customers/{cus}/payment_methods"))
        .await;
    assert_eq!(cards.json["data"].as_array().map(Vec::len), Some(1));

    let r = w
        .api
        .post_form(
            "/v1/checkout/sessions",
            "mode=subscription&success_url=https%3A%2F%2Fa.example%2Fok&customer_email=sub%40a.example\
             &line_items[0][price_data][currency]=gbp&line_items[0][price_data][unit_amount]=1500&line_items[0][price_data][recurring][interval]=month&line_items[0][price_data][product_data][name]=Landlord+plan",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (card, html) = to_card_page(&w, r.json["url"].as_str().expect("url")).await;
    let _ = html;
    let result = pay(&w, card, "4242424242424242").await;
    assert_eq!(result.submit(&w.daemon.base()).await.0, 303);
    let done = w
        .api
        .get(&format!(
            "/v1/checkout/sessions/{}",
            r.json["id"].as_str().expect("id")
        ))
        .await;
    let sub = done.json["subscription"].as_str().expect("subscription");
    let s = w.api.get(&format!("/v1/subscriptions/{sub}")).await;
    assert_eq!(s.json["status"], "active", "{}", s.text);
    assert_eq!(done.json["payment_status"], "paid");
    // The redirect and the gateway callback both arrived: still one subscription, one charge.
    let customer = s.json["customer"].as_str().expect("customer");
    let subs = w
        .api
        .get(&format!("/v1/subscriptions?customer={customer}&status=all"))
        .await;
    assert_eq!(
        subs.json["data"].as_array().map(Vec::len),
        Some(1),
        "{}",
        subs.text
    );
    let paid = w
        .api
        .get(&format!("/v1/invoices?customer={customer}"))
        .await;
    assert_eq!(
        paid.json["data"].as_array().map(Vec::len),
        Some(1),
        "{}",
        paid.text
    );
}

/// A session's `orderRef` at the gateway: its short reference, which the payer reads.
pub(crate) fn reference(session: &str) -> String {
    calmony_actors::checkout::short_reference(session)
}

/// A subscription checkout's lines obey a subscription's rules, checked when the session is
/// made: a monthly and a yearly price together are refused then, not after the payer has paid
/// (when the subscription itself was refused and the paid session had none).
#[tokio::test]
async fn a_subscription_checkout_with_two_intervals_is_refused_when_made() {
    let w = World::new();
    let month = "line_items[0][price_data][currency]=gbp&line_items[0][price_data][unit_amount]=1500\
                 &line_items[0][price_data][recurring][interval]=month&line_items[0][price_data][product_data][name]=Monthly";
    let year = "line_items[1][price_data][currency]=gbp&line_items[1][price_data][unit_amount]=15000\
                &line_items[1][price_data][recurring][interval]=year&line_items[1][price_data][product_data][name]=Yearly";
    let r = w
        .api
        .post_form(
            "/v1/checkout/sessions",
            &format!("mode=subscription&success_url=https%3A%2F%2Fa.example%2Fok&{month}&{year}"),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.json["error"]["code"], "price_interval_mismatch",
        "{}",
        r.text
    );
    assert_eq!(
        r.json["error"]["param"], "line_items[1][price]",
        "{}",
        r.text
    );
    let listed = w.api.get("/v1/checkout/sessions").await;
    assert_eq!(
        listed.json["data"].as_array().map(Vec::len),
        Some(0),
        "nothing written"
    );
}
