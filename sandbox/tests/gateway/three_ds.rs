//! The 3-D Secure challenge, end to end: 65802, the ACS pages, the continuation.

use calmony_protocol::cardstream::Fields;
use hyper::{Method, StatusCode};

use crate::harness::*;

const REDIRECT: &str = "https://shop.example/3ds?pi=pi_3ds&x=<y>";

/// SALE a challenge card and check the 65802 answer.
async fn challenged(sim: &Sim, unique: &str, order: &str) -> Fields {
    let answer = sim
        .direct(&with_card(
            "SALE",
            "4000000000003220",
            "12",
            FUTURE,
            &[
                ("amount", "1999"),
                ("transactionUnique", unique),
                ("orderRef", order),
                ("threeDSRedirectURL", REDIRECT),
                ("merchantName", "Tea & <Cake>"),
                ("remoteAddress", "192.0.2.1"),
            ],
        ))
        .await;
    assert_eq!(code(&answer), 65802, "{answer:?}");
    assert_eq!(field(&answer, "responseStatus"), "2");
    assert_eq!(
        field(&answer, "responseMessage"),
        "3DS AUTHENTICATION REQUIRED"
    );
    assert_eq!(field(&answer, "state"), "received");
    assert_eq!(field(&answer, "threeDSURL"), format!("{BASE}/sandbox/acs"));
    assert!(!field(&answer, "threeDSRequest[creq]").is_empty());
    assert!(!field(&answer, "threeDSRef").is_empty());
    assert!(answer.get("authorisationCode").is_none());
    assert!(sim.ledger(order).await.is_empty(), "nothing is charged yet");
    answer
}

/// Walk the ACS pages as a browser would and return the `cres` posted to the merchant.
async fn answer_challenge(sim: &Sim, creq: &str, outcome: &str) -> String {
    // The merchant's page auto-posts the creq to the ACS.
    let (status, page) = sim
        .call(Method::POST, "/sandbox/acs", "", &format!("creq={creq}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Sandbox 3-D Secure challenge"));
    assert!(page.contains("£19.99"));
    assert!(page.contains("3220"));
    assert!(
        page.contains("Tea &amp; &lt;Cake&gt;"),
        "the merchant name is escaped"
    );
    assert_eq!(form_action(&page, "challenge"), "/sandbox/acs/complete");
    for (value, label) in [
        ("Y", "Authenticate"),
        ("N", "Fail authentication"),
        ("R", "Reject"),
    ] {
        assert!(page.contains(&format!(
            "<button type=\"submit\" name=\"outcome\" value=\"{value}\">{label}</button>"
        )));
    }
    let posted_creq = input_value(&page, "creq");
    let (status, result) = sim
        .call(
            Method::POST,
            "/sandbox/acs/complete",
            "",
            &format!("creq={posted_creq}&outcome={outcome}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(
        form_action(&result, "acs-result"),
        "https://shop.example/3ds?pi=pi_3ds&amp;x=&lt;y&gt;"
    );
    assert!(result.contains("<noscript><button type=\"submit\">Continue</button></noscript>"));
    input_value(&result, "cres")
}

fn continuation<'a>(reference: &'a str, cres: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("merchantID", MERCHANT),
        ("action", "SALE"),
        ("threeDSRef", reference),
        ("threeDSResponse[cres]", cres),
    ]
}

#[tokio::test]
async fn an_authenticated_challenge_charges_once() {
    let sim = Sim::start().await;
    let pending = challenged(&sim, "pi_3ds", "3ds-yes").await;
    let creq = field(&pending, "threeDSRequest[creq]");
    let reference = field(&pending, "threeDSRef");

    // While pending, QUERY shows the 65802 and state received.
    let query = sim.query_unique("pi_3ds").await;
    assert_eq!(code(&query), 65802);
    assert_eq!(field(&query, "state"), "received");

    let cres = answer_challenge(&sim, creq, "Y").await;
    let done = sim.direct(&continuation(reference, &cres)).await;
    assert_eq!(code(&done), 0, "{done:?}");
    assert_eq!(field(&done, "state"), "captured");
    assert_eq!(field(&done, "threeDSAuthenticated"), "Y");
    assert_eq!(field(&done, "threeDSECI"), "05");
    assert!(!field(&done, "threeDSCAVV").is_empty());
    assert_eq!(field(&done, "amountReceived"), "1999");
    assert_eq!(
        field(&done, "amount"),
        "1999",
        "the original request is echoed"
    );
    assert_eq!(field(&done, "transactionUnique"), "pi_3ds");
    assert_eq!(field(&done, "xref"), field(&pending, "xref"));
    assert_eq!(field(&done, "threeDSRef"), reference);
    assert!(done.get("threeDSURL").is_none() && done.get("threeDSRequest[creq]").is_none());

    // The same continuation again (a retry after a lost answer) charges nothing.
    let again = sim.direct(&continuation(reference, &cres)).await;
    assert_eq!(code(&again), 65537);
    let ledger = sim.ledger("3ds-yes").await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["action"], "SALE");
    assert_eq!(ledger[0]["amount"], 1999);

    let query = sim.query_unique("pi_3ds").await;
    assert_eq!(code(&query), 0);
    assert_eq!(field(&query, "state"), "captured");

    // The creq was single-use: the ACS page is gone.
    let (status, page) = sim
        .call(Method::GET, "/sandbox/acs", &format!("creq={creq}"), "")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Challenge not found"));
    sim.finish().await;
}

#[tokio::test]
async fn a_failed_challenge_charges_nothing() {
    let sim = Sim::start().await;
    let pending = challenged(&sim, "pi_3ds_no", "3ds-no").await;
    let creq = field(&pending, "threeDSRequest[creq]");
    let reference = field(&pending, "threeDSRef");
    // GET works as well as POST for the ACS page.
    let (status, _) = sim
        .call(Method::GET, "/sandbox/acs", &format!("creq={creq}"), "")
        .await;
    assert_eq!(status, StatusCode::OK);
    let cres = answer_challenge(&sim, creq, "N").await;

    // A cres from nowhere, or none, does not finish the challenge.
    let forged = sim.direct(&continuation(reference, "forged")).await;
    assert_eq!(code(&forged), 65542);
    let bare = sim
        .direct(&[
            ("merchantID", MERCHANT),
            ("action", "SALE"),
            ("threeDSRef", reference),
        ])
        .await;
    assert_eq!(code(&bare), 65542);

    let done = sim.direct(&continuation(reference, &cres)).await;
    assert_eq!(code(&done), 65803);
    assert_eq!(field(&done, "responseMessage"), "3DS AUTHENTICATION FAILED");
    assert_eq!(field(&done, "threeDSAuthenticated"), "N");
    assert_eq!(field(&done, "state"), "declined");
    assert!(done.get("authorisationCode").is_none());
    assert!(sim.ledger("3ds-no").await.is_empty());

    let unknown = sim.direct(&continuation("no-such-ref", &cres)).await;
    assert_eq!(code(&unknown), 65537);
    sim.finish().await;
}

#[tokio::test]
async fn a_rejected_challenge_and_a_recurring_payment_without_3ds() {
    let sim = Sim::start().await;
    let pending = challenged(&sim, "pi_3ds_r", "3ds-r").await;
    let cres = answer_challenge(&sim, field(&pending, "threeDSRequest[creq]"), "R").await;
    let done = sim
        .direct(&continuation(field(&pending, "threeDSRef"), &cres))
        .await;
    assert_eq!(code(&done), 65803);
    assert_eq!(field(&done, "threeDSAuthenticated"), "R");

    // Without a redirect URL an ECOM payment on this card is a soft decline; a
    // merchant-initiated one (type 9) never does 3-D Secure.
    let no_redirect = sim
        .direct(&with_card(
            "SALE",
            "4000002500003155",
            "12",
            FUTURE,
            &[("amount", "500")],
        ))
        .await;
    assert_eq!(code(&no_redirect), 65);
    let saved = sim
        .direct(&with_card("VERIFY", "4000002500003155", "12", FUTURE, &[]))
        .await;
    let mit = sim
        .direct(&[
            ("merchantID", MERCHANT),
            ("action", "SALE"),
            ("type", "9"),
            ("xref", field(&saved, "xref")),
            ("amount", "500"),
            ("currencyCode", "826"),
            ("threeDSRedirectURL", REDIRECT),
        ])
        .await;
    assert_eq!(code(&mit), 0);
    assert!(mit.get("threeDSAuthenticated").is_none());

    let (status, page) = sim
        .call(
            Method::POST,
            "/sandbox/acs/complete",
            "",
            "creq=nope&outcome=Y",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("<h1>"));
    let (status, _) = sim.call(Method::GET, "/sandbox/acs", "", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    sim.finish().await;
}
