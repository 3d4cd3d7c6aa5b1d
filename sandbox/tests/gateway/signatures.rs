//! Request signatures are checked before anything else; every answer is signed.

use calmony_protocol::cardstream::{Fields, SignatureError, verify};

use crate::harness::*;

#[tokio::test]
async fn unsigned_and_badly_signed_requests_are_refused_with_signed_answers() {
    let sim = Sim::start().await;
    let pairs = with_card(
        "SALE",
        "4242424242424242",
        "12",
        FUTURE,
        &[("amount", "1000"), ("orderRef", "unsigned")],
    );

    let unsigned: Fields = pairs.iter().copied().collect();
    let answer = sim.direct_body(&unsigned.encode()).await;
    assert_eq!(code(&answer), 66087);
    assert_eq!(field(&answer, "state"), "finished");
    assert!(answer.get("xref").is_none(), "nothing was created");

    let mut wrong: Fields = pairs.iter().copied().collect();
    wrong.add_signature("not the secret", None);
    let answer = sim.direct_body(&wrong.encode()).await;
    assert_eq!(code(&answer), 66343);

    // Signed, then altered on the way.
    let mut altered = Fields::parse(signed(&pairs).as_bytes()).expect("form");
    altered.insert("amount", "1");
    let answer = sim.direct_body(&altered.encode()).await;
    assert_eq!(code(&answer), 66343);

    // A partial signature covers too little for the Direct API.
    let mut partial: Fields = pairs.iter().copied().collect();
    partial.add_signature(SECRET, Some(&["merchantID", "action"]));
    let answer = sim.direct_body(&partial.encode()).await;
    assert_eq!(code(&answer), 66343);

    let answer = sim
        .direct(&with_card(
            "SALE",
            "4242424242424242",
            "12",
            FUTURE,
            &[("merchantID", "999999"), ("amount", "1000")],
        ))
        .await;
    assert_eq!(code(&answer), 65539);

    let answer = sim.direct_body("").await;
    assert_eq!(code(&answer), 66048);

    assert!(sim.ledger("unsigned").await.is_empty());

    // Answers are signed with the merchant's secret and nothing else.
    let good = sim
        .direct(&with_card("VERIFY", "4242424242424242", "12", FUTURE, &[]))
        .await;
    assert_eq!(
        verify(&good, Some("another secret")),
        Err(SignatureError::Mismatch)
    );
    sim.finish().await;
}

#[tokio::test]
async fn record_fields_and_php_encoding_survive_the_round_trip() {
    let sim = Sim::start().await;
    let answer = sim
        .direct(&with_card(
            "VERIFY",
            "4242 4242 4242 4242",
            "1",
            "2040",
            &[
                ("orderRef", "Tea ~ £5 *(a+b)!'\r\nline"),
                ("threeDSOptions[challengeWindowSize]", "05"),
                ("threeDSOptions[browserJavaEnabled]", "false"),
            ],
        ))
        .await;
    assert_eq!(code(&answer), 0);
    assert_eq!(field(&answer, "orderRef"), "Tea ~ £5 *(a+b)!'\r\nline");
    assert_eq!(
        answer.record("threeDSOptions").expect("record"),
        [
            ("challengeWindowSize".to_owned(), "05".to_owned()),
            ("browserJavaEnabled".to_owned(), "false".to_owned()),
        ]
    );
    assert_eq!(field(&answer, "cardExpiryMonth"), "01");
    assert_eq!(field(&answer, "cardExpiryYear"), "40");
    sim.finish().await;
}
