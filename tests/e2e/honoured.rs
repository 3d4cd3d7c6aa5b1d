//! Every accepted parameter is honoured or refused with a 400 naming it (issue 23, items
//! 12 to 15): a checkout's customer is found by email; a live checkout without a live
//! gateway is refused.

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
