//! After authorisation: capture, cancel, settlement, refunds and QUERY.

use crate::harness::*;

#[tokio::test]
async fn manual_capture_then_cancel() {
    let sim = Sim::start().await;
    let sale = sim
        .direct(&with_card(
            "SALE",
            "4242424242424242",
            "12",
            FUTURE,
            &[
                ("amount", "1000"),
                ("captureDelay", "-1"),
                ("orderRef", "manual"),
            ],
        ))
        .await;
    assert_eq!(code(&sale), 0);
    assert_eq!(field(&sale, "state"), "approved");
    let xref = field(&sale, "xref").to_owned();

    let over = sim
        .direct(&on_xref("CAPTURE", &xref, &[("amount", "1001")]))
        .await;
    assert_eq!(code(&over), 66312);
    let captured = sim
        .direct(&on_xref("CAPTURE", &xref, &[("amount", "800")]))
        .await;
    assert_eq!(code(&captured), 0);
    assert_eq!(field(&captured, "state"), "captured");
    assert_eq!(field(&captured, "amountReceived"), "800");
    assert_eq!(field(&captured, "xref"), xref);
    // A lower capture on a captured sale is allowed (a same-day partial refund).
    let lower = sim
        .direct(&on_xref("CAPTURE", &xref, &[("amount", "700")]))
        .await;
    assert_eq!(code(&lower), 0);
    assert_eq!(field(&lower, "amountReceived"), "700");

    let cancelled = sim.direct(&on_xref("CANCEL", &xref, &[])).await;
    assert_eq!(code(&cancelled), 0);
    assert_eq!(field(&cancelled, "state"), "canceled");
    for action in ["CANCEL", "CAPTURE"] {
        let refused = sim.direct(&on_xref(action, &xref, &[])).await;
        assert_eq!(code(&refused), 65541, "{action}");
        assert_eq!(field(&refused, "state"), "canceled", "{action}");
    }
    assert_eq!(sim.settle().await, 0, "a cancelled sale never settles");
    let query = sim.direct(&on_xref("QUERY", &xref, &[])).await;
    assert_eq!(field(&query, "state"), "canceled");
    assert_eq!(field(&query, "action"), "QUERY");

    let ledger = sim.ledger("manual").await;
    let actions: Vec<_> = ledger
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(actions, ["SALE", "CAPTURE", "CAPTURE", "CANCEL"]);
    assert_eq!(ledger[1]["amount"], 800);
    assert_eq!(ledger[2]["amount"], 700);
    assert_eq!(ledger[3]["amount"], 700);
    assert_eq!(ledger[3]["state"], "canceled");

    // Capturing an approved manual sale with no amount takes all of it.
    let manual = sim
        .direct(&with_card(
            "SALE",
            "4242424242424242",
            "12",
            FUTURE,
            &[("amount", "1234"), ("captureDelay", "never")],
        ))
        .await;
    let uncaptured = field(&manual, "xref").to_owned();
    assert_eq!(sim.settle().await, 0, "an uncaptured sale does not settle");
    let all = sim.direct(&on_xref("CAPTURE", &uncaptured, &[])).await;
    assert_eq!(field(&all, "amountReceived"), "1234");
    assert_eq!(sim.settle().await, 1);
    let late = sim.direct(&on_xref("CANCEL", &uncaptured, &[])).await;
    assert_eq!(code(&late), 65541, "too late to cancel once settled");
    sim.finish().await;
}

#[tokio::test]
async fn refunds_need_settlement_and_must_tally() {
    let sim = Sim::start().await;
    let sale = sim
        .direct(&with_card(
            "SALE",
            "378282246310005",
            "12",
            FUTURE,
            &[
                ("amount", "2000"),
                ("orderRef", "refunds"),
                ("transactionUnique", "pi_r"),
            ],
        ))
        .await;
    assert_eq!(code(&sale), 0);
    assert_eq!(field(&sale, "cardTypeCode"), "AM");
    let xref = field(&sale, "xref").to_owned();

    let early = sim
        .direct(&on_xref("REFUND_SALE", &xref, &[("amount", "500")]))
        .await;
    assert_eq!(code(&early), 65541, "not settled yet");

    assert_eq!(sim.settle().await, 1);
    assert_eq!(
        sim.settle().await,
        0,
        "settlement moves each transaction once"
    );
    let settled = sim.direct(&on_xref("QUERY", &xref, &[])).await;
    assert_eq!(field(&settled, "state"), "accepted");

    let first = sim
        .direct(&on_xref("REFUND_SALE", &xref, &[("amount", "500")]))
        .await;
    assert_eq!(code(&first), 0);
    assert_eq!(field(&first, "responseMessage"), "REFUNDACCEPTED");
    assert_eq!(field(&first, "amountRefunded"), "500");
    let refund_xref = field(&first, "xref").to_owned();
    assert_ne!(refund_xref, xref, "a refund is its own transaction");

    let too_much = sim
        .direct(&on_xref("REFUND_SALE", &xref, &[("amount", "1501")]))
        .await;
    assert_eq!(code(&too_much), 65573);
    assert_eq!(field(&too_much, "responseMessage"), "Amounts do not tally");

    // No amount: the remainder.
    let rest = sim.direct(&on_xref("REFUND_SALE", &xref, &[])).await;
    assert_eq!(code(&rest), 0);
    assert_eq!(field(&rest, "amountRefunded"), "2000");
    let nothing_left = sim
        .direct(&on_xref("REFUND_SALE", &xref, &[("amount", "1")]))
        .await;
    assert_eq!(code(&nothing_left), 65573);

    let refunds = [refund_xref.as_str(), field(&rest, "xref")];
    for refund in refunds {
        let query = sim.direct(&on_xref("QUERY", refund, &[])).await;
        assert_eq!(field(&query, "state"), "captured");
    }
    assert_eq!(sim.settle().await, 2);
    for refund in refunds {
        let query = sim.direct(&on_xref("QUERY", refund, &[])).await;
        assert_eq!(field(&query, "state"), "accepted");
        assert_eq!(field(&query, "responseMessage"), "REFUNDACCEPTED");
    }
    let original = sim.direct(&on_xref("QUERY", &xref, &[])).await;
    assert_eq!(field(&original, "amountRefunded"), "2000");

    let ledger = sim.ledger("refunds").await;
    let actions: Vec<_> = ledger
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(actions, ["SALE", "REFUND_SALE", "REFUND_SALE"]);
    assert_eq!(ledger[1]["amount"], 500);
    assert_eq!(ledger[1]["originalXref"], xref.as_str());
    assert_eq!(ledger[2]["amount"], 1500);
    sim.finish().await;
}

#[tokio::test]
async fn query_by_xref_or_transaction_unique() {
    let sim = Sim::start().await;
    let sale = sim
        .direct(&with_card(
            "SALE",
            "4000056655665556",
            "12",
            FUTURE,
            &[
                ("amount", "4321"),
                ("transactionUnique", "pi_q"),
                ("orderRef", "query me"),
            ],
        ))
        .await;
    assert_eq!(code(&sale), 0);
    assert_eq!(field(&sale, "cardType"), "Visa Debit");
    let xref = field(&sale, "xref");

    let by_xref = sim.direct(&on_xref("QUERY", xref, &[])).await;
    let by_unique = sim.query_unique("pi_q").await;
    for answer in [&by_xref, &by_unique] {
        assert_eq!(code(answer), 0);
        assert_eq!(field(answer, "action"), "QUERY");
        assert_eq!(field(answer, "xref"), xref);
        assert_eq!(
            field(answer, "transactionID"),
            field(&sale, "transactionID")
        );
        assert_eq!(field(answer, "amountReceived"), "4321");
        assert_eq!(field(answer, "amount"), "4321");
        assert_eq!(field(answer, "currencyCode"), "826");
        assert_eq!(field(answer, "state"), "captured");
        assert_eq!(field(answer, "transactionUnique"), "pi_q");
        assert_eq!(field(answer, "orderRef"), "query me");
        assert_eq!(field(answer, "cardNumberMask"), "400005******5556");
        assert_eq!(
            field(answer, "authorisationCode"),
            field(&sale, "authorisationCode")
        );
    }

    // By xref with someone else's transactionUnique: the answer names the transaction's own,
    // so a caller checking the echo sees the mismatch.
    let crossed = sim
        .direct(&on_xref(
            "QUERY",
            xref,
            &[("transactionUnique", "pi_other")],
        ))
        .await;
    assert_eq!(field(&crossed, "transactionUnique"), "pi_q");
    assert_eq!(field(&crossed, "action"), "QUERY");

    // A declined SALE is found too, with its decline.
    let declined = sim
        .direct(&with_card(
            "SALE",
            "4000000000009995",
            "12",
            FUTURE,
            &[("amount", "100"), ("transactionUnique", "pi_poor")],
        ))
        .await;
    assert_eq!(code(&declined), 51);
    let query = sim.query_unique("pi_poor").await;
    assert_eq!(code(&query), 51);
    assert_eq!(field(&query, "state"), "declined");

    let unknown_xref = sim
        .direct(&on_xref("QUERY", "26010112AAAAAAAAAAAAAAA", &[]))
        .await;
    assert_eq!(code(&unknown_xref), 66341);
    let unknown_unique = sim.query_unique("pi_never").await;
    assert_eq!(code(&unknown_unique), 65537);
    let neither = sim
        .direct(&[("merchantID", MERCHANT), ("action", "QUERY")])
        .await;
    assert_eq!(code(&neither), 66085);
    sim.finish().await;
}

/// Refunds of one sale racing each other: each reads the sale, and all but one find it changed
/// when they write (the change's compare-and-set) and decide again, so together they refund
/// exactly the amount and a fifth finds nothing left.
#[tokio::test]
async fn racing_refunds_of_one_sale_tally() {
    let sim = Sim::start().await;
    let xref = visa_sale(&sim, "2000", "racing").await;
    assert_eq!(sim.settle().await, 1);

    let quarter = on_xref("REFUND_SALE", &xref, &[("amount", "500")]);
    let (a, b, c, d) = tokio::join!(
        sim.direct(&quarter),
        sim.direct(&quarter),
        sim.direct(&quarter),
        sim.direct(&quarter)
    );
    for refund in [&a, &b, &c, &d] {
        assert_eq!(code(refund), 0, "{refund:?}");
    }
    let original = sim.direct(&on_xref("QUERY", &xref, &[])).await;
    assert_eq!(field(&original, "amountRefunded"), "2000");
    let fifth = sim.direct(&quarter).await;
    assert_eq!(code(&fifth), 65573, "nothing is left to refund");
    let refunds = sim
        .ledger("racing")
        .await
        .iter()
        .filter(|e| e["action"] == "REFUND_SALE")
        .count();
    assert_eq!(refunds, 4);
    sim.finish().await;
}

/// Transactions are stored packed, and one stored plain (before packing) still reads and
/// still changes: its refund compares against the plain bytes it was read as.
#[tokio::test]
async fn transactions_are_stored_packed_and_plain_ones_still_read() {
    let sim = Sim::start().await;
    let xref = visa_sale(&sim, "1200", "packed").await;
    let key = calmony_sandbox::keys::transaction(&xref);
    let mut c = sim.store.conn();
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut c)
        .await
        .expect("GET");
    assert_eq!(stored.first(), Some(&calmony_actors::store::packed::MARK));
    let json = calmony_actors::store::packed::text(stored.clone()).expect("decodes");
    assert!(json.contains(&xref), "{json}");
    assert!(
        stored.len() < json.len(),
        "{} of {}",
        stored.len(),
        json.len()
    );

    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(&json)
        .query_async(&mut c)
        .await
        .expect("SET");
    let query = sim.direct(&on_xref("QUERY", &xref, &[])).await;
    assert_eq!(field(&query, "state"), "captured");
    assert_eq!(sim.settle().await, 1);
    let refund = sim
        .direct(&on_xref("REFUND_SALE", &xref, &[("amount", "200")]))
        .await;
    assert_eq!(code(&refund), 0, "{refund:?}");
    let original = sim.direct(&on_xref("QUERY", &xref, &[])).await;
    assert_eq!(field(&original, "amountRefunded"), "200");
    sim.finish().await;
}

/// An approved Visa sale of `amount` for order `order` (its `transactionUnique` derived from
/// it); its `xref`.
async fn visa_sale(sim: &Sim, amount: &str, order: &str) -> String {
    let unique = format!("pi_{order}");
    let sale = sim
        .direct(&with_card(
            "SALE",
            "4242424242424242",
            "12",
            FUTURE,
            &[
                ("amount", amount),
                ("orderRef", order),
                ("transactionUnique", &unique),
            ],
        ))
        .await;
    assert_eq!(code(&sale), 0, "{sale:?}");
    field(&sale, "xref").to_owned()
}
