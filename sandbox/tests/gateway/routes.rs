//! The routes around /direct/: unknown paths, wrong methods, the ledger filter.

use hyper::{Method, StatusCode};
use serde_json::Value;

use crate::harness::*;

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let sim = Sim::start().await;
    for (method, path, expected) in [
        (Method::GET, "/sandbox/nope", StatusCode::NOT_FOUND),
        (Method::GET, "/sandbox/", StatusCode::NOT_FOUND),
        (Method::GET, "/elsewhere", StatusCode::NOT_FOUND),
        (
            Method::GET,
            "/sandbox/direct/",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::GET,
            "/sandbox/settle",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::DELETE,
            "/sandbox/ledger",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ] {
        let (status, body) = sim.call(method.clone(), path, "", "").await;
        assert_eq!(status, expected, "{method} {path}");
        let json: Value = serde_json::from_str(&body).expect("json");
        assert!(json["error"]["message"].is_string());
    }
    // Without the trailing slash /direct answers too.
    let (status, body) = sim.call(Method::POST, "/sandbox/direct", "", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("responseCode=66048"));
    sim.finish().await;
}

#[tokio::test]
async fn the_ledger_lists_in_order_and_filters_by_order_ref() {
    let sim = Sim::start().await;
    for (order, amount) in [("a", "100"), ("b", "200"), ("a", "300")] {
        let answer = sim
            .direct(&with_card(
                "SALE",
                "4242424242424242",
                "12",
                FUTURE,
                &[("amount", amount), ("orderRef", order)],
            ))
            .await;
        assert_eq!(code(&answer), 0);
    }
    let all = sim.json(Method::GET, "/sandbox/ledger", "", "").await;
    let amounts: Vec<_> = all["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["amount"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(amounts, [100, 200, 300]);
    let a = sim.ledger("a").await;
    assert_eq!(a.len(), 2);
    for key in [
        "action",
        "xref",
        "transactionUnique",
        "orderRef",
        "amount",
        "state",
        "responseCode",
        "time",
    ] {
        assert!(a[0].get(key).is_some(), "{key}");
    }
    sim.finish().await;
}
