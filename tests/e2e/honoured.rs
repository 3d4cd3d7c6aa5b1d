//! Every accepted parameter is honoured or refused with a 400 naming it (issue 23, items
//! 12 to 15): different parameters are never "the same parameter"; embedded lists page;
//! a checkout's customer is found by email; a live checkout without a live gateway is refused.

use serde_json::Value;

use crate::checkout::{pay, session, to_card_page};
use crate::harness::World;

const SESSION: &str = "/v1/checkout/sessions";

fn base_session() -> String {
    "mode=payment&success_url=https%3A%2F%2Fshop.example%2Fok&cancel_url=https%3A%2F%2Fshop.example%2Fno\
     &line_items[0][price_data][currency]=gbp&line_items[0][price_data][unit_amount]=2500\
     &line_items[0][price_data][product_data][name]=Holding+deposit&line_items[0][quantity]=1"
        .to_string()
}

/// Pay a session's page with a card and follow the result back; returns the session after.
async fn pay_session(w: &World, s: &Value) -> Value {
    let (card, _) = to_card_page(w, s["url"].as_str().expect("url")).await;
    let result = pay(w, card, "4242424242424242").await;
    let (status, _, _) = result.submit(&w.daemon.base()).await;
    assert_eq!(status, 303);
    let id = s["id"].as_str().expect("id");
    w.api.get(&format!("{SESSION}/{id}")).await.json
}

#[tokio::test]
async fn a_live_checkout_is_refused_at_creation_while_no_live_gateway_is_configured() {
    let w = World::new();
    let live = w.daemon.api(&w.daemon.key("acme", "live"));
    let r = live.post_form(SESSION, &base_session()).await;
    assert_eq!(
        (r.status, r.err("code")),
        (400, "live_mode_not_configured"),
        "{}",
        r.text
    );
    let list = live.get(SESSION).await;
    assert_eq!(list.json["data"], serde_json::json!([]), "nothing written: {}", list.text);
}

#[tokio::test]
async fn a_customer_a_checkout_made_is_found_by_its_email() {
    let w = World::new();
    let s = session(&w, "&customer_email=jo%40tenant.example").await;
    let done = pay_session(&w, &s).await;
    assert_eq!(done["status"], "complete", "{done}");
    let found = w.api.get("/v1/customers?email=jo%40tenant.example").await;
    assert_eq!(
        found.json["data"].as_array().map(Vec::len),
        Some(1),
        "{}",
        found.text
    );
    assert_eq!(found.json["data"][0]["id"], done["customer"]);
}

#[tokio::test]
async fn different_parameters_sent_together_are_each_honoured_never_the_same_parameter() {
    let w = World::new();
    let api = &w.api;
    let checkout_pairs = [
        "&payment_method_types[]=card&locale=en",
        "&payment_intent_data[description]=Deposit&payment_intent_data[capture_method]=manual",
        "&line_items[0][price_data][product_data][description]=Two+weeks\
         &line_items[0][price_data][product_data][metadata][unit]=4B",
    ];
    for extra in checkout_pairs {
        let r = api
            .post_form(SESSION, &format!("{}{extra}", base_session()))
            .await;
        assert_eq!(r.status, 200, "{extra}: {}", r.text);
    }
    let r = api
        .post_form(
            "/v1/products",
            "name=Widget&images[]=https%3A%2F%2Fshop.example%2Fw.png&tax_code=txcd_99999999",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // An invoice paid with off_session and forgive, and its lines paged ten at a time.
    let customer = api.customer().await;
    let pm = api
        .card("4242424242424242", 12, 2030, Some(&customer))
        .await;
    for i in 0..12 {
        let r = api
            .post_form(
                "/v1/invoiceitems",
                &format!(
                    "customer={customer}&amount={}&description=Item+{i}",
                    100 + i
                ),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let inv = api
        .post_form("/v1/invoices", &format!("customer={customer}"))
        .await;
    let id = inv.json["id"].as_str().expect("invoice").to_string();
    let fin = api
        .post_form(&format!("/v1/invoices/{id}/finalize"), "")
        .await;
    assert_eq!(fin.json["status"], "open", "{}", fin.text);
    let paid = api
        .post_form(
            &format!("/v1/invoices/{id}/pay"),
            &format!("payment_method={pm}&off_session=true&forgive=true"),
        )
        .await;
    assert_eq!(
        (paid.status, paid.json["status"].as_str()),
        (200, Some("paid")),
        "{}",
        paid.text
    );
    let first = api.get(&format!("/v1/invoices/{id}/lines?limit=10")).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let data = first.json["data"].as_array().expect("lines");
    assert_eq!(
        (data.len(), first.json["has_more"].as_bool()),
        (10, Some(true))
    );
    let last = data[9]["id"].as_str().expect("line id");
    let second = api
        .get(&format!(
            "/v1/invoices/{id}/lines?limit=10&starting_after={last}"
        ))
        .await;
    assert_eq!(second.status, 200, "{}", second.text);
    let rest = second.json["data"].as_array().expect("lines");
    assert_eq!(
        (rest.len(), second.json["has_more"].as_bool()),
        (2, Some(false))
    );
    let mut seen: Vec<&str> = data
        .iter()
        .chain(rest)
        .filter_map(|l| l["id"].as_str())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 12, "every line once");
    let back = api
        .get(&format!(
            "/v1/invoices/{id}/lines?limit=3&ending_before={}",
            rest[0]["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(
        back.json["data"][2]["id"], data[9]["id"],
        "ending_before pages back: {}",
        back.text
    );

    // A session's line items page the same way.
    let mut lines = base_session();
    for i in 1..3 {
        lines.push_str(&format!(
            "&line_items[{i}][price_data][currency]=gbp&line_items[{i}][price_data][unit_amount]=100\
             &line_items[{i}][price_data][product_data][name]=Extra+{i}&line_items[{i}][quantity]=1"
        ));
    }
    let s = api.post_form(SESSION, &lines).await;
    let sid = s.json["id"].as_str().expect("session");
    let page = api
        .get(&format!("{SESSION}/{sid}/line_items?limit=2"))
        .await;
    assert_eq!(
        (
            page.json["data"].as_array().map(Vec::len),
            page.json["has_more"].as_bool()
        ),
        (Some(2), Some(true)),
        "{}",
        page.text
    );
    let after = page.json["data"][1]["id"].as_str().expect("id");
    let page = api
        .get(&format!(
            "{SESSION}/{sid}/line_items?limit=2&starting_after={after}"
        ))
        .await;
    assert_eq!(
        page.json["data"][0]["description"], "Extra 2",
        "{}",
        page.text
    );
    assert_eq!(page.json["has_more"], false);
}
