//! The Hosted Payment Page, driven as a browser drives it: the merchant's signed form in, the
//! card page, the card (or Cancel), the 3-D Secure pages, and the signed result posted back to
//! `redirectURL` and to `callbackURL`.

use std::time::Duration;

use calmony_protocol::cardstream::{Coverage, Fields, SignatureError, verify};
use hyper::{Method, StatusCode};

use crate::harness::*;

const REDIRECT: &str = "https://shop.example/return?pi=pi_1&x=<y>";
const REDIRECT_ESCAPED: &str = "https://shop.example/return?pi=pi_1&amp;x=&lt;y&gt;";

/// A hosted request for `amount` pence, plus `extra`.
fn request<'a>(
    action: &'a str,
    amount: &'a str,
    unique: &'a str,
    order: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut pairs = vec![
        ("merchantID", MERCHANT),
        ("action", action),
        ("type", "1"),
        ("amount", amount),
        ("currencyCode", "826"),
        ("countryCode", "826"),
        ("transactionUnique", unique),
        ("orderRef", order),
        ("redirectURL", REDIRECT),
        ("merchantName", "Tea & <Cake>"),
        ("customerEmail", "jo@example.com"),
        ("customerName", "Jo Bloggs"),
        ("formResponsive", "Y"),
    ];
    pairs.extend_from_slice(extra);
    pairs
}

/// Post a signed hosted request; the card page and its session token.
async fn open(sim: &Sim, pairs: &[(&str, &str)]) -> (String, String) {
    let (status, page) = sim
        .call(Method::POST, "/sandbox/hosted/", "", &signed(pairs))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let session = input_value(&page, "session");
    assert_eq!(session.len(), 40);
    (page, session)
}

/// The card form as the browser posts it.
fn card_form(session: &str, number: &str, month: &str, year: &str) -> String {
    let fields: Fields = [
        ("session", session),
        ("cardNumber", number),
        ("cardExpiryMonth", month),
        ("cardExpiryYear", year),
        ("cardCVV", "123"),
        ("cardholderName", "Jo Bloggs"),
    ]
    .into_iter()
    .collect();
    fields.encode()
}

async fn pay(sim: &Sim, session: &str, number: &str, month: &str) -> (StatusCode, String) {
    sim.call(
        Method::POST,
        "/sandbox/hosted/pay",
        "",
        &card_form(session, number, month, FUTURE),
    )
    .await
}

/// The result form of a hand-back page: it posts to the merchant's redirect URL.
fn posted_result(page: &str) -> Fields {
    assert_eq!(form_action(page, "hosted-result"), REDIRECT_ESCAPED);
    assert!(page.contains("<noscript><button type=\"submit\" id=\"continue\">"));
    assert!(page.contains("document.getElementById('hosted-result').submit();"));
    let result = hidden_fields(page, "hosted-result");
    assert!(result.get("cardNumber").is_none() && result.get("cardCVV").is_none());
    for plumbing in [
        "threeDSRedirectURL",
        "threeDSRef",
        "session",
        "threeDSResponse",
    ] {
        assert!(result.value(plumbing).is_none(), "{plumbing} leaked");
    }
    result
}

/// A verified result: signed in full with the merchant's secret.
fn verified(page: &str) -> Fields {
    let result = posted_result(page);
    assert_eq!(
        verify(&result, Some(SECRET)),
        Ok(Coverage::All),
        "{result:?}"
    );
    result
}

/// How many transactions the simulator has stored (one record each, by `xref`; the numeric
/// `transactionID` counter moves a block at a time, so it cannot count them).
async fn transactions_created(sim: &Sim) -> u64 {
    let mut c = sim.store.conn();
    let mut cursor = 0u64;
    let mut count = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("cp:sandbox:txn:*")
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut c)
            .await
            .expect("SCAN");
        count += keys.len() as u64;
        if next == 0 {
            return count;
        }
        cursor = next;
    }
}

async fn hosted_sessions(sim: &Sim) -> Vec<String> {
    let mut c = sim.store.conn();
    redis::cmd("KEYS")
        .arg("cp:sandbox:hosted:*")
        .query_async(&mut c)
        .await
        .expect("KEYS")
}

#[tokio::test]
async fn a_signed_request_shows_the_card_form() {
    let sim = Sim::start().await;
    let (page, session) = open(&sim, &request("SALE", "2500", "pi_form", "form", &[])).await;
    assert!(page.contains("<form id=\"card-form\" method=\"post\" action=\"/sandbox/hosted/pay\""));
    assert!(page.contains(&format!(
        "<input type=\"hidden\" name=\"session\" value=\"{session}\">"
    )));
    for (name, autocomplete) in [
        ("cardNumber", "cc-number"),
        ("cardExpiryMonth", "cc-exp-month"),
        ("cardExpiryYear", "cc-exp-year"),
        ("cardCVV", "cc-csc"),
        ("cardholderName", "cc-name"),
    ] {
        assert!(page.contains(&format!("<label for=\"{name}\">")), "{name}");
        assert!(
            page.contains(&format!(
                "<input id=\"{name}\" name=\"{name}\" type=\"text\" autocomplete=\"{autocomplete}\""
            )),
            "{name}"
        );
    }
    assert!(page.contains("inputmode=\"numeric\""));
    assert!(page.contains("<button type=\"submit\" id=\"pay\">Pay £25.00</button>"));
    assert!(page.contains(
        "<button type=\"submit\" id=\"cancel\" name=\"cancel\" value=\"1\" formnovalidate>Cancel</button>"
    ));
    assert!(
        page.contains("Pay Tea &amp; &lt;Cake&gt;"),
        "merchant escaped"
    );
    assert!(page.contains("Sandbox — test cards only"));
    assert!(page.contains("name=\"viewport\""));
    assert!(page.contains("value=\"Jo Bloggs\""), "name pre-filled");

    // The session is kept for an hour; nothing is charged or created yet.
    let mut c = sim.store.conn();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("cp:sandbox:hosted:{session}"))
        .query_async(&mut c)
        .await
        .expect("PTTL");
    assert!(ttl > 3_500_000 && ttl <= 3_600_000, "{ttl}");
    assert_eq!(transactions_created(&sim).await, 0);

    // Without the trailing slash too.
    let (status, _) = sim
        .call(
            Method::POST,
            "/sandbox/hosted",
            "",
            &signed(&request("SALE", "2500", "pi_form2", "form", &[])),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    sim.finish().await;
}

#[tokio::test]
async fn bad_requests_are_error_pages_and_create_nothing() {
    let sim = Sim::start().await;
    let pairs = request("SALE", "2500", "pi_bad", "bad", &[]);
    let refused = |body: String, code: &'static str| {
        let sim = &sim;
        async move {
            let (status, page) = sim.call(Method::POST, "/sandbox/hosted/", "", &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
            assert!(
                page.contains(&format!("<span id=\"error-code\">{code}</span>")),
                "{code}: {page}"
            );
            assert!(!page.contains("card-form"));
            page
        }
    };

    let unsigned: Fields = pairs.iter().copied().collect();
    let page = refused(unsigned.encode(), "66087").await;
    assert!(page.contains("Missing signature"));
    let mut wrong: Fields = pairs.iter().copied().collect();
    wrong.add_signature("not the secret", None);
    let page = refused(wrong.encode(), "66343").await;
    assert!(page.contains("Invalid signature"));
    let mut altered = Fields::parse(signed(&pairs).as_bytes()).expect("form");
    altered.insert("amount", "1");
    refused(altered.encode(), "66343").await;

    refused(
        signed(&request(
            "SALE",
            "2500",
            "u",
            "o",
            &[("merchantID", "999999")],
        )),
        "65539",
    )
    .await;
    refused(
        signed(&request("REFUND_SALE", "2500", "u", "o", &[])),
        "66311",
    )
    .await;
    refused(signed(&request("SALE", "0", "u", "o", &[])), "66312").await;
    refused(signed(&request("VERIFY", "100", "u", "o", &[])), "66312").await;
    refused(
        signed(&request(
            "SALE",
            "2500",
            "u",
            "o",
            &[("currencyCode", "840")],
        )),
        "65546",
    )
    .await;
    refused(
        signed(&request(
            "SALE",
            "2500",
            "u",
            "o",
            &[("captureDelay", "99")],
        )),
        "66358",
    )
    .await;
    let no_redirect: Vec<_> = pairs
        .iter()
        .copied()
        .filter(|(n, _)| *n != "redirectURL")
        .collect();
    let page = refused(signed(&no_redirect), "65537").await;
    assert!(page.contains("Missing redirectURL"));
    refused(
        signed(&request(
            "SALE",
            "2500",
            "u",
            "o",
            &[("callbackURL", "javascript:alert(1)")],
        )),
        "65537",
    )
    .await;
    refused(String::new(), "66048").await;

    assert!(hosted_sessions(&sim).await.is_empty());
    assert_eq!(transactions_created(&sim).await, 0);
    assert!(sim.ledger("bad").await.is_empty());
    sim.finish().await;
}

#[tokio::test]
async fn an_approved_card_posts_a_signed_result_and_calls_back() {
    let sim = Sim::start().await;
    let mut callback = CallbackReceiver::start(&[]).await;
    let (_, session) = open(
        &sim,
        &request(
            "SALE",
            "2500",
            "pi_paid",
            "paid",
            &[("callbackURL", &callback.url)],
        ),
    )
    .await;
    let (status, page) = pay(&sim, &session, "4242424242424242", "12").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Payment complete"));
    let result = verified(&page);
    assert_eq!(code(&result), 0);
    assert_eq!(field(&result, "responseStatus"), "0");
    let auth = field(&result, "authorisationCode");
    assert_eq!(
        field(&result, "responseMessage"),
        format!("AUTHCODE:{auth}")
    );
    assert_eq!(field(&result, "state"), "captured");
    assert_eq!(field(&result, "amount"), "2500");
    assert_eq!(field(&result, "amountReceived"), "2500");
    assert_eq!(field(&result, "currencyCode"), "826");
    assert_eq!(field(&result, "transactionUnique"), "pi_paid");
    assert_eq!(field(&result, "orderRef"), "paid");
    assert_eq!(field(&result, "action"), "SALE");
    assert_eq!(field(&result, "redirectURL"), REDIRECT);
    assert_eq!(field(&result, "callbackURL"), callback.url);
    assert_eq!(field(&result, "merchantName"), "Tea & <Cake>");
    assert_eq!(field(&result, "customerEmail"), "jo@example.com");
    assert_eq!(field(&result, "cardNumberMask"), "424242******4242");
    assert_eq!(field(&result, "cardType"), "Visa Credit");
    assert_eq!(field(&result, "cardExpiryMonth"), "12");
    assert_eq!(field(&result, "cardExpiryYear"), FUTURE);
    assert_eq!(field(&result, "cardholderName"), "Jo Bloggs");
    assert_eq!(field(&result, "xref").len(), 23);
    assert!(field(&result, "transactionID").parse::<u64>().is_ok());
    assert_eq!(field(&result, "timestamp").len(), 19);
    assert!(
        result.get("threeDSAuthenticated").is_none(),
        "4242 skips 3DS"
    );

    let ledger = sim.ledger("paid").await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["action"], "SALE");
    assert_eq!(ledger[0]["amount"], 2500);
    assert_eq!(ledger[0]["xref"], field(&result, "xref"));
    assert_eq!(ledger[0]["transactionUnique"], "pi_paid");

    // The callback carries the very same signed result.
    let called = callback.next().await;
    assert_eq!(called, result);
    assert_eq!(verify(&called, Some(SECRET)), Ok(Coverage::All));
    assert!(!callback.more_within(Duration::from_millis(200)).await);

    // The Direct API knows the transaction the page made.
    let query = sim.query_unique("pi_paid").await;
    assert_eq!(code(&query), 0);
    assert_eq!(field(&query, "xref"), field(&result, "xref"));
    sim.finish().await;
}

#[tokio::test]
async fn a_refused_callback_is_retried_until_accepted() {
    let sim = Sim::start().await;
    let mut callback = CallbackReceiver::start(&[500, 503]).await;
    let (_, session) = open(
        &sim,
        &request(
            "SALE",
            "1000",
            "pi_retry",
            "retry",
            &[("callbackURL", &callback.url)],
        ),
    )
    .await;
    let (_, page) = pay(&sim, &session, "5555555555554444", "12").await;
    let result = verified(&page);
    for _ in 0..3 {
        assert_eq!(callback.next().await, result);
    }
    assert!(
        !callback.more_within(Duration::from_millis(300)).await,
        "accepted: no more attempts"
    );

    // A callback nobody ever accepts is tried once plus once per backoff delay, then dropped.
    let mut deaf = CallbackReceiver::start(&[500; 10]).await;
    let (_, session) = open(
        &sim,
        &request(
            "SALE",
            "1000",
            "pi_deaf",
            "deaf",
            &[("callbackURL", &deaf.url)],
        ),
    )
    .await;
    pay(&sim, &session, "5555555555554444", "12").await;
    for _ in 0..=CALLBACK_BACKOFF.len() {
        deaf.next().await;
    }
    assert!(!deaf.more_within(Duration::from_millis(300)).await);
    sim.finish().await;
}

#[tokio::test]
async fn a_declined_card_ends_the_payment_and_a_second_submit_charges_nothing() {
    let sim = Sim::start().await;
    let (_, session) = open(&sim, &request("SALE", "2500", "pi_decl", "decl", &[])).await;
    let (status, page) = pay(&sim, &session, "4000000000000002", "12").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Payment not completed"));
    let result = verified(&page);
    assert_eq!(code(&result), 79);
    assert_eq!(field(&result, "responseMessage"), "CARD DECLINED");
    assert_eq!(field(&result, "responseStatus"), "1");
    assert_eq!(field(&result, "state"), "declined");
    assert_eq!(field(&result, "amountReceived"), "0");
    assert!(!field(&result, "xref").is_empty());
    assert!(sim.ledger("decl").await.is_empty());

    // The session is over: another card on it re-posts the same result and charges nothing.
    let (status, again) = pay(&sim, &session, "4242424242424242", "12").await;
    assert_eq!(status, StatusCode::OK);
    assert!(again.contains("This payment is already complete"));
    assert_eq!(verified(&again), result);
    assert_eq!(transactions_created(&sim).await, 1);
    assert!(sim.ledger("decl").await.is_empty());
    sim.finish().await;
}

#[tokio::test]
async fn a_double_submit_after_success_charges_once() {
    let sim = Sim::start().await;
    let (_, session) = open(&sim, &request("SALE", "2500", "pi_twice", "twice", &[])).await;
    let body = card_form(&session, "4242424242424242", "12", FUTURE);
    let (_, first) = sim
        .call(Method::POST, "/sandbox/hosted/pay", "", &body)
        .await;
    let result = verified(&first);
    assert_eq!(code(&result), 0);
    let (status, second) = sim
        .call(Method::POST, "/sandbox/hosted/pay", "", &body)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(second.contains("<h1>This payment is already complete</h1>"));
    assert_eq!(verified(&second), result, "the same result, same signature");
    // Cancel after paying changes nothing either.
    let (_, cancel) = sim
        .call(
            Method::POST,
            "/sandbox/hosted/pay",
            "",
            &format!("session={session}&cancel=1"),
        )
        .await;
    assert_eq!(verified(&cancel), result);
    assert_eq!(sim.ledger("twice").await.len(), 1);
    assert_eq!(transactions_created(&sim).await, 1);

    // A new page for the same transactionUnique is the Direct API's duplicate.
    let (_, session) = open(&sim, &request("SALE", "2500", "pi_twice", "twice", &[])).await;
    let (_, page) = pay(&sim, &session, "4242424242424242", "12").await;
    let duplicate = verified(&page);
    assert_eq!(code(&duplicate), 65554);
    assert!(duplicate.get("xref").is_none());
    assert_eq!(sim.ledger("twice").await.len(), 1);

    // An unknown session is an error page.
    let (status, page) = pay(&sim, "no-such-session", "4242424242424242", "12").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Payment session not found"));
    sim.finish().await;
}

#[tokio::test]
async fn cancel_posts_65576_and_charges_nothing() {
    let sim = Sim::start().await;
    let mut callback = CallbackReceiver::start(&[]).await;
    let (_, session) = open(
        &sim,
        &request(
            "SALE",
            "2500",
            "pi_cancel",
            "cancel",
            &[("callbackURL", &callback.url)],
        ),
    )
    .await;
    // The browser posts the whole form, empty inputs included, with the cancel button.
    let (status, page) = sim
        .call(
            Method::POST,
            "/sandbox/hosted/pay",
            "",
            &format!(
                "session={session}&cardNumber=&cardExpiryMonth=&cardExpiryYear=&cardCVV=\
                 &cardholderName=Jo+Bloggs&cancel=1"
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Payment cancelled"));
    let result = verified(&page);
    assert_eq!(code(&result), 65576);
    assert_eq!(field(&result, "responseMessage"), "Request cancelled");
    assert_eq!(field(&result, "responseStatus"), "2");
    assert_eq!(field(&result, "state"), "finished");
    assert_eq!(field(&result, "transactionUnique"), "pi_cancel");
    assert_eq!(field(&result, "amount"), "2500");
    assert_eq!(field(&result, "amountReceived"), "0");
    assert!(result.get("xref").is_none(), "no transaction was created");
    assert_eq!(callback.next().await, result);
    assert!(sim.ledger("cancel").await.is_empty());
    assert_eq!(transactions_created(&sim).await, 0);
    sim.finish().await;
}

#[tokio::test]
async fn an_invalid_card_shows_the_form_again_and_creates_nothing() {
    let sim = Sim::start().await;
    let (_, session) = open(&sim, &request("SALE", "2500", "pi_typo", "typo", &[])).await;
    let (status, page) = pay(&sim, &session, "4242424242424241", "12").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains(
        "<p class=\"error\" id=\"card-error\" role=\"alert\">Card number is invalid</p>"
    ));
    assert!(page.contains("<form id=\"card-form\""));
    assert_eq!(input_value(&page, "session"), session);
    assert!(page.contains("aria-invalid=\"true\""));
    assert!(page.contains("<button type=\"submit\" id=\"pay\">Pay £25.00</button>"));
    assert!(
        !page.contains("4242424242424241"),
        "the number is not echoed"
    );

    let (status, page) = sim
        .call(
            Method::POST,
            "/sandbox/hosted/pay",
            "",
            &card_form(&session, "4242424242424242", "12", PAST),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("The card has expired"));
    assert_eq!(transactions_created(&sim).await, 0);
    assert!(sim.ledger("typo").await.is_empty());

    // The session is still open: the corrected card pays.
    let (_, page) = pay(&sim, &session, "4242 4242 4242 4242", "12").await;
    assert_eq!(code(&verified(&page)), 0);
    assert_eq!(sim.ledger("typo").await.len(), 1);
    sim.finish().await;
}

/// Pay with the challenge card and walk the ACS pages; the hand-back page.
async fn challenge(sim: &Sim, unique: &str, order: &str, outcome: &str) -> String {
    let (_, session) = open(sim, &request("SALE", "1999", unique, order, &[])).await;
    let (status, page) = pay(sim, &session, "4000002500003155", "12").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Sandbox 3-D Secure challenge"), "{page}");
    assert!(page.contains("£19.99"));
    assert!(page.contains("Tea &amp; &lt;Cake&gt;"));
    assert_eq!(form_action(&page, "challenge"), "/sandbox/acs/complete");
    assert!(sim.ledger(order).await.is_empty(), "nothing charged yet");

    // Submitting the card form again while the challenge waits shows the challenge again.
    let (_, again) = pay(sim, &session, "4000002500003155", "12").await;
    assert!(again.contains("Sandbox 3-D Secure challenge"));
    assert_eq!(input_value(&again, "creq"), input_value(&page, "creq"));
    assert_eq!(transactions_created(sim).await, 1);

    let creq = input_value(&page, "creq");
    let (status, acs) = sim
        .call(
            Method::POST,
            "/sandbox/acs/complete",
            "",
            &format!("creq={creq}&outcome={outcome}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{acs}");
    let back = form_action(&acs, "acs-result");
    let back = back.strip_prefix(BASE).expect("back into the simulator");
    let (path, query) = back.split_once('?').expect("query");
    assert_eq!(path, "/sandbox/hosted/3ds");
    assert_eq!(query, format!("session={session}"));
    let cres = input_value(&acs, "cres");

    // A cres that is not this payment's is refused without ending it.
    let (status, forged) = sim.call(Method::POST, path, query, "cres=forged").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(forged.contains("3-D Secure result not recognised"));

    let (status, done) = sim
        .call(Method::POST, path, query, &format!("cres={cres}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    // The ACS posting twice re-posts the same result.
    let (_, replay) = sim
        .call(Method::POST, path, query, &format!("cres={cres}"))
        .await;
    assert!(replay.contains("This payment is already complete"));
    assert_eq!(verified(&replay), verified(&done));
    done
}

#[tokio::test]
async fn a_challenge_runs_inside_the_page_and_authenticated_pays() {
    let sim = Sim::start().await;
    let page = challenge(&sim, "pi_3ds_y", "3ds-y", "Y").await;
    let result = verified(&page);
    assert_eq!(code(&result), 0, "{result:?}");
    assert_eq!(field(&result, "state"), "captured");
    assert_eq!(field(&result, "threeDSAuthenticated"), "Y");
    assert_eq!(field(&result, "threeDSECI"), "05");
    assert_eq!(field(&result, "amountReceived"), "1999");
    assert_eq!(field(&result, "transactionUnique"), "pi_3ds_y");
    assert!(result.get("threeDSURL").is_none() && result.value("threeDSRequest").is_none());
    let ledger = sim.ledger("3ds-y").await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["amount"], 1999);
    assert_eq!(transactions_created(&sim).await, 1);
    sim.finish().await;
}

#[tokio::test]
async fn a_failed_challenge_posts_65803_and_charges_nothing() {
    let sim = Sim::start().await;
    let page = challenge(&sim, "pi_3ds_n", "3ds-n", "N").await;
    let result = verified(&page);
    assert_eq!(code(&result), 65803);
    assert_eq!(
        field(&result, "responseMessage"),
        "3DS AUTHENTICATION FAILED"
    );
    assert_eq!(field(&result, "threeDSAuthenticated"), "N");
    assert_eq!(field(&result, "state"), "declined");
    assert!(sim.ledger("3ds-n").await.is_empty());
    sim.finish().await;
}

#[tokio::test]
async fn frictionless_three_ds_follows_the_guide_cards_expiry_month() {
    let sim = Sim::start().await;
    let (_, session) = open(&sim, &request("SALE", "1000", "pi_fy", "fy", &[])).await;
    let (_, page) = pay(&sim, &session, "4929421234600821", "01").await;
    let result = verified(&page);
    assert_eq!(code(&result), 0);
    assert_eq!(field(&result, "threeDSAuthenticated"), "Y");

    let (_, session) = open(&sim, &request("SALE", "1000", "pi_fn", "fn", &[])).await;
    let (_, page) = pay(&sim, &session, "4929421234600821", "02").await;
    let result = verified(&page);
    assert_eq!(code(&result), 65803);
    assert_eq!(field(&result, "threeDSAuthenticated"), "N");
    assert!(sim.ledger("fn").await.is_empty());

    // The guide's amount bands apply as on /direct/.
    let (_, session) = open(&sim, &request("SALE", "10000", "pi_band", "band", &[])).await;
    let (_, page) = pay(&sim, &session, "4929421234600821", "07").await;
    assert_eq!(code(&verified(&page)), 5);
    sim.finish().await;
}

#[tokio::test]
async fn a_tamper_fault_signs_the_result_wrongly() {
    let sim = Sim::start().await;
    let mut callback = CallbackReceiver::start(&[]).await;
    sim.json(
        Method::POST,
        "/sandbox/faults",
        "",
        "tamper_signatures=true",
    )
    .await;
    let (_, session) = open(
        &sim,
        &request(
            "SALE",
            "2500",
            "pi_tamper",
            "tamper",
            &[("callbackURL", &callback.url)],
        ),
    )
    .await;
    let (_, page) = pay(&sim, &session, "4242424242424242", "12").await;
    let result = posted_result(&page);
    assert_eq!(code(&result), 0, "the payment itself went through");
    assert_eq!(verify(&result, Some(SECRET)), Err(SignatureError::Mismatch));
    let called = callback.next().await;
    assert_eq!(verify(&called, Some(SECRET)), Err(SignatureError::Mismatch));
    sim.finish().await;
}

#[tokio::test]
async fn verify_saves_a_card_without_charging_it() {
    let sim = Sim::start().await;
    let (page, session) = open(&sim, &request("VERIFY", "0", "seti_hpp", "save", &[])).await;
    assert!(page.contains("<button type=\"submit\" id=\"pay\">Save card</button>"));
    let (_, page) = pay(&sim, &session, "4242424242424242", "12").await;
    let result = verified(&page);
    assert_eq!(code(&result), 0);
    assert_eq!(field(&result, "state"), "verified");
    assert_eq!(field(&result, "action"), "VERIFY");
    assert_eq!(field(&result, "amountReceived"), "0");
    let xref = field(&result, "xref").to_owned();
    assert_eq!(xref.len(), 23);
    assert!(sim.ledger("save").await.is_empty());

    // The saved card can be charged later by xref, merchant-initiated.
    let sale = sim
        .direct(&[
            ("merchantID", MERCHANT),
            ("action", "SALE"),
            ("type", "9"),
            ("xref", &xref),
            ("amount", "700"),
            ("currencyCode", "826"),
            ("orderRef", "save-later"),
        ])
        .await;
    assert_eq!(code(&sale), 0);
    assert_eq!(field(&sale, "cardNumberMask"), "424242******4242");
    assert_eq!(sim.ledger("save-later").await.len(), 1);
    sim.finish().await;
}
