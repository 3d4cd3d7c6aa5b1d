//! VERIFY and SALE: test cards, decline codes, the guide's test amounts, duplicates.

use crate::harness::*;

/// Two simulators sharing one Redis (two daemons) never hand out the same `transactionID`:
/// each reserves its own block of the counter, and within a simulator the numbers rise.
#[tokio::test]
async fn transaction_ids_stay_unique_across_simulators_sharing_redis() {
    let sim = Sim::start().await;
    let twin = sim.twin();
    let mut seen = std::collections::HashSet::new();
    let mut last = [0u64; 2];
    for i in 0..250 {
        let unique = format!("seti_ids_{i}");
        let body = signed(&with_card(
            "VERIFY",
            "4242424242424242",
            "12",
            FUTURE,
            &[("transactionUnique", unique.as_str())],
        ));
        let which = i % 2;
        let answer = if which == 0 {
            sim.direct_body(&body).await
        } else {
            direct_on(&twin, &body).await
        };
        assert_eq!(code(&answer), 0);
        let id: u64 = field(&answer, "transactionID").parse().expect("numeric id");
        assert!(seen.insert(id), "transactionID {id} issued twice");
        assert!(id > last[which], "ids rise within one simulator");
        last[which] = id;
    }
    sim.finish().await;
}

#[tokio::test]
async fn verify_then_sale_by_xref_charges_once() {
    let sim = Sim::start().await;
    let verified = sim
        .direct(&with_card(
            "VERIFY",
            "4242424242424242",
            "12",
            FUTURE,
            &[("transactionUnique", "seti_1"), ("orderRef", "setup")],
        ))
        .await;
    assert_eq!(code(&verified), 0);
    assert_eq!(field(&verified, "responseMessage"), "CARD OK");
    assert_eq!(field(&verified, "responseStatus"), "0");
    assert_eq!(field(&verified, "state"), "verified");
    assert_eq!(field(&verified, "cardNumberMask"), "424242******4242");
    assert_eq!(field(&verified, "cardType"), "Visa Credit");
    assert_eq!(field(&verified, "cardTypeCode"), "VC");
    assert_eq!(field(&verified, "cardScheme"), "Visa");
    assert_eq!(field(&verified, "cardExpiryMonth"), "12");
    assert_eq!(field(&verified, "cardExpiryYear"), FUTURE);
    assert_eq!(field(&verified, "transactionUnique"), "seti_1");
    let xref = field(&verified, "xref").to_owned();
    assert_eq!(xref.len(), 23);
    assert!(
        xref.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    );
    assert!(field(&verified, "transactionID").parse::<u64>().is_ok());
    let timestamp = field(&verified, "timestamp");
    assert_eq!(timestamp.len(), 19, "{timestamp}");

    // A merchant-initiated repeat payment: type 9, no card data, no CVV.
    let sale = sim
        .direct(&[
            ("merchantID", MERCHANT),
            ("action", "SALE"),
            ("type", "9"),
            ("xref", &xref),
            ("amount", "1500"),
            ("currencyCode", "GBP"),
            ("transactionUnique", "pi_1"),
            ("orderRef", "order-1"),
            ("rtAgreementType", "recurring"),
        ])
        .await;
    assert_eq!(code(&sale), 0, "{sale:?}");
    assert_eq!(field(&sale, "state"), "captured");
    assert_eq!(field(&sale, "amountReceived"), "1500");
    let auth = field(&sale, "authorisationCode");
    assert_eq!(field(&sale, "responseMessage"), format!("AUTHCODE:{auth}"));
    assert_ne!(field(&sale, "xref"), xref, "a SALE is a new transaction");
    assert_eq!(field(&sale, "cardNumberMask"), "424242******4242");
    assert_eq!(
        field(&sale, "rtAgreementType"),
        "recurring",
        "request fields are echoed"
    );

    let ledger = sim.ledger("order-1").await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["action"], "SALE");
    assert_eq!(ledger[0]["amount"], 1500);
    assert_eq!(ledger[0]["xref"], field(&sale, "xref"));
    assert_eq!(ledger[0]["transactionUnique"], "pi_1");
    assert_eq!(ledger[0]["state"], "captured");
    assert_eq!(ledger[0]["responseCode"], 0);
    assert!(
        sim.ledger("setup").await.is_empty(),
        "a VERIFY charges nothing"
    );
    sim.finish().await;
}

#[tokio::test]
async fn stripe_cards_decline_by_number() {
    let sim = Sim::start().await;
    for (number, expected, message) in [
        // Stripe's generic decline: a code no Stripe decline code names (not 5, do not honour).
        ("4000000000000002", 79, "CARD DECLINED"),
        ("4000000000009995", 51, "INSUFFICIENT FUNDS"),
        ("4000000000009987", 41, "LOST CARD"),
        ("4000000000009979", 43, "STOLEN CARD"),
        ("4000000000006975", 61, "EXCEEDS WITHDRAWAL LIMIT"),
        ("4100000000000019", 59, "SUSPECTED FRAUD"),
        ("4000000000000069", 54, "EXPIRED CARD"),
        ("4000000000000341", 79, "CARD DECLINED"),
        (UNKNOWN_CARD, 5, "UNKNOWN TEST CARD"),
    ] {
        let answer = sim
            .direct(&with_card(
                "SALE",
                number,
                "12",
                FUTURE,
                &[("amount", "1000"), ("orderRef", "declines")],
            ))
            .await;
        assert_eq!(code(&answer), expected, "{number}");
        assert_eq!(field(&answer, "responseMessage"), message, "{number}");
        assert_eq!(field(&answer, "responseStatus"), "1", "{number}");
        assert_eq!(field(&answer, "state"), "declined", "{number}");
        assert!(answer.get("authorisationCode").is_none());
        assert!(answer.get("amountReceived").is_none());
        assert_eq!(
            field(&answer, "xref").len(),
            23,
            "a decline is a transaction"
        );
    }

    let cvc = sim
        .direct(&with_card(
            "SALE",
            "4000000000000127",
            "12",
            FUTURE,
            &[("amount", "1000")],
        ))
        .await;
    assert_eq!(code(&cvc), 5);
    assert_eq!(field(&cvc, "cv2Check"), "not matched");
    assert!(cvc.get("avscv2ResponseCode").is_some());
    assert_eq!(
        calmony_protocol::cardstream::Outcome::from_response(&cvc),
        Ok(calmony_protocol::cardstream::Outcome::Declined {
            decline_code: "incorrect_cvc"
        })
    );

    let processor = sim
        .direct(&with_card(
            "SALE",
            "4000000000000119",
            "12",
            FUTURE,
            &[("amount", "1000")],
        ))
        .await;
    assert_eq!(code(&processor), 65550);
    assert_eq!(field(&processor, "responseStatus"), "2");
    assert_eq!(field(&processor, "state"), "finished");

    // Every one of them can still be saved: VERIFY succeeds.
    for number in [
        "4000000000000002",
        "4000000000009995",
        "4000000000000069",
        "4000000000000119",
    ] {
        let answer = sim
            .direct(&with_card("VERIFY", number, "12", FUTURE, &[]))
            .await;
        assert_eq!(code(&answer), 0, "{number}");
    }
    // 0341 attaches, then fails when charged by xref.
    let attached = sim
        .direct(&with_card("VERIFY", "4000000000000341", "12", FUTURE, &[]))
        .await;
    assert_eq!(code(&attached), 0);
    let charged = sim
        .direct(&[
            ("merchantID", MERCHANT),
            ("action", "SALE"),
            ("type", "9"),
            ("xref", field(&attached, "xref")),
            ("amount", "500"),
            ("currencyCode", "826"),
        ])
        .await;
    assert_eq!(code(&charged), 79);

    assert!(
        sim.ledger("declines").await.is_empty(),
        "no decline is a charge"
    );
    sim.finish().await;
}

#[tokio::test]
async fn invalid_requests_name_the_field() {
    let sim = Sim::start().await;
    let cases: Vec<(Vec<(&str, &str)>, u32)> = vec![
        (
            with_card("VERIFY", "4242424242424241", "12", FUTURE, &[]),
            66314,
        ),
        (with_card("VERIFY", "4242424242424242", "12", PAST, &[]), 54),
        (with_card("VERIFY", UNKNOWN_CARD, "12", FUTURE, &[]), 5),
        (
            with_card(
                "VERIFY",
                "4242424242424242",
                "12",
                FUTURE,
                &[("amount", "100")],
            ),
            66312,
        ),
        (
            with_card("VERIFY", "4242424242424242", "13", FUTURE, &[]),
            66315,
        ),
        (
            with_card("SALE", "4242424242424242", "12", FUTURE, &[]),
            66056,
        ),
        (
            with_card("SALE", "4242424242424242", "12", FUTURE, &[("amount", "0")]),
            66312,
        ),
        (
            with_card(
                "SALE",
                "4242424242424242",
                "12",
                FUTURE,
                &[("amount", "1x")],
            ),
            66312,
        ),
        (
            with_card(
                "SALE",
                "4242424242424242",
                "12",
                FUTURE,
                &[("amount", "100"), ("currencyCode", "USD")],
            ),
            65546,
        ),
        (
            with_card(
                "SALE",
                "4242424242424242",
                "12",
                FUTURE,
                &[("amount", "100"), ("type", "7")],
            ),
            66342,
        ),
        (
            with_card(
                "SALE",
                "4242424242424242",
                "12",
                FUTURE,
                &[("amount", "100"), ("captureDelay", "99")],
            ),
            66358,
        ),
        (
            with_card("SALE", "4242424242424242", "12", PAST, &[("amount", "100")]),
            54,
        ),
        (
            vec![
                ("merchantID", MERCHANT),
                ("action", "SALE"),
                ("type", "1"),
                ("amount", "100"),
                ("currencyCode", "826"),
            ],
            66058,
        ),
        (
            vec![
                ("merchantID", MERCHANT),
                ("action", "SALE"),
                ("type", "9"),
                ("xref", "26010112NOSUCHXREF00000"),
                ("amount", "100"),
                ("currencyCode", "826"),
            ],
            66341,
        ),
        (
            vec![("merchantID", MERCHANT), ("action", "PREAUTHORISE")],
            66311,
        ),
        (vec![("merchantID", MERCHANT)], 66055),
    ];
    for (pairs, expected) in cases {
        let answer = sim.direct(&pairs).await;
        assert_eq!(code(&answer), expected, "{pairs:?} -> {answer:?}");
    }
    sim.finish().await;
}

#[tokio::test]
async fn a_repeated_transaction_unique_is_a_duplicate_not_a_second_charge() {
    let sim = Sim::start().await;
    let sale = with_card(
        "SALE",
        "5555555555554444",
        "12",
        FUTURE,
        &[
            ("amount", "2500"),
            ("transactionUnique", "pi_dup"),
            ("orderRef", "dup"),
        ],
    );
    let first = sim.direct(&sale).await;
    assert_eq!(code(&first), 0);
    assert_eq!(field(&first, "cardType"), "Mastercard Credit");
    let again = sim.direct(&sale).await;
    assert_eq!(code(&again), 65554);
    assert_eq!(field(&again, "responseMessage"), "Duplicate request");
    assert_eq!(field(&again, "responseStatus"), "2");
    assert_eq!(sim.ledger("dup").await.len(), 1);

    // Two at once: one wins, one is the duplicate.
    let racing = with_card(
        "SALE",
        "4242424242424242",
        "12",
        FUTURE,
        &[
            ("amount", "700"),
            ("transactionUnique", "pi_race"),
            ("orderRef", "race"),
        ],
    );
    let (a, b) = tokio::join!(sim.direct(&racing), sim.direct(&racing));
    let mut codes = [code(&a), code(&b)];
    codes.sort_unstable();
    assert_eq!(codes, [0, 65554]);
    assert_eq!(sim.ledger("race").await.len(), 1);
    sim.finish().await;
}

#[tokio::test]
async fn guide_cards_follow_the_test_amount_table() {
    let sim = Sim::start().await;
    let card = "4929421234600821";
    let sale = |amount: &'static str, extra: &[(&'static str, &'static str)]| {
        let mut pairs = with_card("SALE", card, "07", FUTURE, &[("amount", amount)]);
        pairs.extend_from_slice(extra);
        pairs
    };
    for (amount, extra, expected, state) in [
        ("1000", &[][..], 0, "captured"),
        ("6000", &[][..], 2, "referred"),
        (
            "6000",
            &[("authorisationCode", "VOICE1")][..],
            0,
            "captured",
        ),
        ("12000", &[][..], 5, "declined"),
        ("16000", &[][..], 4, "declined"),
        ("21000", &[][..], 65, "declined"),
        ("21000", &[("type", "2")][..], 0, "captured"),
        ("26000", &[("type", "2")][..], 5, "declined"),
        ("26000", &[][..], 65, "declined"),
    ] {
        let mut pairs = sale(amount, &[]);
        for (name, value) in extra {
            match pairs.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = value,
                None => pairs.push((name, value)),
            }
        }
        let answer = sim.direct(&pairs).await;
        assert_eq!(code(&answer), expected, "{amount} {extra:?}");
        assert_eq!(field(&answer, "state"), state, "{amount} {extra:?}");
    }
    let referred = sim
        .direct(&sale("6000", &[("authorisationCode", "VOICE2")]))
        .await;
    assert_eq!(field(&referred, "authorisationCode"), "VOICE2");
    let invalid = sim.direct(&sale("99", &[])).await;
    assert_eq!(code(&invalid), 66312);
    assert_eq!(field(&invalid, "responseMessage"), "Invalid Test Amount");
    assert!(invalid.get("xref").is_none(), "nothing was created");

    // 2500–4999 authorises but is rejected at settlement; 100–2499 is accepted.
    let rejected = sim.direct(&sale("3000", &[])).await;
    let accepted = sim.direct(&sale("2000", &[])).await;
    assert!(sim.settle().await >= 2);
    for (answer, state) in [(&rejected, "rejected"), (&accepted, "accepted")] {
        let query = sim
            .direct(&on_xref("QUERY", field(answer, "xref"), &[]))
            .await;
        assert_eq!(field(&query, "state"), state);
    }

    // With 3-D Secure, the expiry month decides (§10.4).
    let redirect = ("threeDSRedirectURL", "https://shop.example/3ds");
    for (month, expected, authenticated) in [
        ("01", 0, "Y"),
        ("04", 0, "A"),
        ("02", 65803, "N"),
        ("06", 65803, "R"),
        ("03", 0, "U"),
        ("10", 0, "I"),
    ] {
        let answer = sim
            .direct(&with_card(
                "SALE",
                card,
                month,
                FUTURE,
                &[("amount", "1000"), redirect],
            ))
            .await;
        assert_eq!(code(&answer), expected, "month {month}");
        assert_eq!(
            field(&answer, "threeDSAuthenticated"),
            authenticated,
            "month {month}"
        );
        assert_eq!(
            answer.get("threeDSECI").is_some(),
            matches!(authenticated, "Y" | "A"),
            "month {month}"
        );
    }
    // Authenticated, an SCA band authorises; unauthenticated, it is a soft decline.
    let sca = sim
        .direct(&with_card(
            "SALE",
            card,
            "01",
            FUTURE,
            &[("amount", "21000"), redirect],
        ))
        .await;
    assert_eq!(code(&sca), 0);
    let sca = sim
        .direct(&with_card(
            "SALE",
            card,
            "03",
            FUTURE,
            &[("amount", "21000"), redirect],
        ))
        .await;
    assert_eq!(code(&sca), 65);
    let challenge = sim
        .direct(&with_card(
            "SALE",
            card,
            "12",
            FUTURE,
            &[("amount", "1000"), redirect],
        ))
        .await;
    assert_eq!(code(&challenge), 65802);
    sim.finish().await;
}
