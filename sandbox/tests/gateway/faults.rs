//! Fault injection: tampered signatures, slow answers, dropped answers, database errors.

use std::time::{Duration, Instant};

use calmony_protocol::cardstream::{Fields, SignatureError, verify};
use hyper::{Method, StatusCode};

use crate::harness::*;

#[tokio::test]
async fn tampered_signatures_fail_verification_until_reset() {
    let sim = Sim::start().await;
    let faults = sim
        .json(
            Method::POST,
            "/sandbox/faults",
            "",
            "tamper_signatures=true",
        )
        .await;
    assert_eq!(faults["tamper_signatures"], true);
    let current = sim.json(Method::GET, "/sandbox/faults", "", "").await;
    assert_eq!(current, faults);

    let body = signed(&with_card("VERIFY", "4242424242424242", "12", FUTURE, &[]));
    let (status, text) = sim.call(Method::POST, "/sandbox/direct/", "", &body).await;
    assert_eq!(status, StatusCode::OK);
    let answer = Fields::parse(text.as_bytes()).expect("form");
    assert_eq!(code(&answer), 0, "the request itself was processed");
    assert_eq!(verify(&answer, Some(SECRET)), Err(SignatureError::Mismatch));

    let reset = sim
        .json(Method::POST, "/sandbox/faults", "", "reset=true")
        .await;
    assert_eq!(reset["tamper_signatures"], false);
    assert_eq!(reset["delay_ms"], 0);
    assert_eq!(reset["drop_next"], 0);
    assert_eq!(reset["fail_next"], 0);
    // `direct` checks the signature.
    sim.direct(&with_card("VERIFY", "4242424242424242", "12", FUTURE, &[]))
        .await;

    let (status, text) = sim
        .call(Method::POST, "/sandbox/faults", "", "delay_ms=soon")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    let (status, _) = sim
        .call(Method::POST, "/sandbox/faults", "", "explode=true")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    sim.finish().await;
}

#[tokio::test]
async fn a_dropped_answer_still_charged_and_query_finds_it() {
    let sim = Sim::start().await;
    sim.json(
        Method::POST,
        "/sandbox/faults",
        "",
        "drop_next=1&delay_ms=50",
    )
    .await;
    let sale = with_card(
        "SALE",
        "4242424242424242",
        "12",
        FUTURE,
        &[
            ("amount", "990"),
            ("transactionUnique", "pi_lost"),
            ("orderRef", "lost"),
        ],
    );
    let started = Instant::now();
    let (status, text) = sim
        .call(Method::POST, "/sandbox/direct/", "", &signed(&sale))
        .await;
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "delayed, then held"
    );
    assert_eq!(status, StatusCode::OK);
    assert!(text.is_empty(), "no answer: {text}");
    let faults = sim.json(Method::GET, "/sandbox/faults", "", "").await;
    assert_eq!(faults["drop_next"], 0);

    // The charge happened; the retry is a duplicate; QUERY tells the truth.
    let retry = sim.direct(&sale).await;
    assert_eq!(code(&retry), 65554);
    let query = sim.query_unique("pi_lost").await;
    assert_eq!(code(&query), 0);
    assert_eq!(field(&query, "state"), "captured");
    assert_eq!(field(&query, "amountReceived"), "990");
    assert_eq!(sim.ledger("lost").await.len(), 1);
    sim.finish().await;
}

#[tokio::test]
async fn a_database_error_answer_after_the_charge_is_signed_and_query_finds_the_charge() {
    let sim = Sim::start().await;
    sim.json(Method::POST, "/sandbox/faults", "", "fail_next=1")
        .await;
    let sale = with_card(
        "SALE",
        "4242424242424242",
        "12",
        FUTURE,
        &[
            ("amount", "1250"),
            ("transactionUnique", "pi_db_error"),
            ("orderRef", "db-error"),
        ],
    );
    // `direct` checks the answer's signature.
    let answer = sim.direct(&sale).await;
    assert_eq!(code(&answer), 65548, "{answer:?}");
    assert_eq!(field(&answer, "transactionUnique"), "pi_db_error");
    let faults = sim.json(Method::GET, "/sandbox/faults", "", "").await;
    assert_eq!(faults["fail_next"], 0, "one answer spent");

    // The sale was made all the same: QUERY tells the truth, the ledger holds one charge.
    let query = sim.query_unique("pi_db_error").await;
    assert_eq!(code(&query), 0);
    assert_eq!(field(&query, "amountReceived"), "1250");
    assert_eq!(sim.ledger("db-error").await.len(), 1);
    sim.finish().await;
}

/// Set faults through `sandbox` (another simulator than the one under test).
async fn set_faults(sandbox: &calmony_sandbox::Sandbox, form: &str) {
    let (status, text) = call_on(sandbox, Method::POST, "/sandbox/faults", "", form).await;
    assert_eq!(status, StatusCode::OK, "{text}");
}

/// A simulator that last found no faults serves without reading them (`memory`); a fault set
/// through another simulator sharing the Redis still applies to its very next request, a
/// charge (which checks the faults' generation in its change) or a QUERY (which writes
/// nothing and reads them before answering), and each charge is made once.
#[tokio::test]
async fn a_fault_set_through_another_simulator_applies_to_the_next_request() {
    let sim = Sim::start().await;
    let twin = sim.twin();
    let saved = sim
        .direct(&with_card("VERIFY", "4242424242424242", "12", FUTURE, &[]))
        .await;
    let xref = field(&saved, "xref").to_owned();
    let sale = |unique: &'static str| {
        let mut pairs = on_xref("SALE", &xref, &[("amount", "700"), ("orderRef", unique)]);
        pairs.push(("transactionUnique", unique));
        signed(&pairs)
    };
    assert_eq!(code(&sim.direct_body(&sale("before")).await), 0);

    // Each fault is set while `sim` last read none, so its next request is served from
    // memory and must find the change.
    set_faults(&twin, "tamper_signatures=true").await;
    let (_, text) = sim
        .call(Method::POST, "/sandbox/direct/", "", &sale("tampered"))
        .await;
    let answer = Fields::parse(text.as_bytes()).expect("form");
    assert_eq!(code(&answer), 0, "processed: {answer:?}");
    assert_eq!(verify(&answer, Some(SECRET)), Err(SignatureError::Mismatch));
    let tampered_xref = field(&answer, "xref").to_owned();

    set_faults(&twin, "reset=true").await;
    assert_eq!(
        code(&sim.direct_body(&sale("after")).await),
        0,
        "signed well"
    );
    set_faults(&twin, "tamper_signatures=true").await;
    let query = signed(&on_xref("QUERY", &tampered_xref, &[]));
    let (_, text) = sim.call(Method::POST, "/sandbox/direct/", "", &query).await;
    let queried = Fields::parse(text.as_bytes()).expect("form");
    assert_eq!(code(&queried), 0, "{queried:?}");
    assert_eq!(
        verify(&queried, Some(SECRET)),
        Err(SignatureError::Mismatch),
        "a QUERY, which writes nothing, sees the fault too"
    );

    set_faults(&twin, "reset=true").await;
    assert_eq!(
        code(&sim.direct_body(&sale("again")).await),
        0,
        "signed well"
    );
    set_faults(&twin, "delay_ms=300").await;
    let started = Instant::now();
    assert_eq!(code(&sim.direct_body(&sale("delayed")).await), 0);
    assert!(started.elapsed() >= Duration::from_millis(300), "delayed");
    set_faults(&twin, "reset=true").await;

    for order in ["before", "tampered", "after", "again", "delayed"] {
        assert_eq!(sim.ledger(order).await.len(), 1, "{order} charged once");
    }
    sim.finish().await;
}
