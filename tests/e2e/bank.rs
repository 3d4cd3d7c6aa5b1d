//! Pay by Bank's lower half end to end: the daemon's Open Banking client driving the built-in
//! sandbox banks over real HTTP (consent, the payer's page, code, token, payment, status), the
//! flaky bank's lost answer replayed once, and signatures refused both ways.

use std::io::{Read, Write};
use std::net::TcpListener;

use calmony_actors::gateway::{
    BankError, BankGateway, BankPaymentState, BankToken, ConsentOrder, ConsentState, Creditor,
    OpenBanking, Submission,
};
use calmony_config::Config;
use calmony_protocol::Mode;
use calmony_protocol::open_banking::{SigningKey, headers, jws};
use serde_json::Value;

use crate::harness::{OPERATOR_TOKEN, World};

const REDIRECT: &str = "https://shop.example/pay/return";
const TPP_PEM: &str = include_str!("../../config/sandbox/open-banking/tpp-private.pem");

/// The client as the daemon builds it for test mode, pointed at `base`'s sandbox banks.
fn client(base: &str) -> OpenBanking {
    let config = Config {
        public_url: base.to_owned(),
        ..Config::default()
    };
    OpenBanking::from_config(&config).expect("the sandbox banks")
}

fn order(tag: &str, amount: i64) -> ConsentOrder {
    ConsentOrder {
        idempotency_key: format!("consent-{tag}"),
        instruction_id: format!("PBB-{tag}"),
        end_to_end_id: format!("E2E-{tag}"),
        amount,
        currency: "GBP".into(),
        creditor: Creditor {
            sort_code: "04-00-04".into(),
            account_number: "10000001".into(),
            name: "Acme Shop Ltd".into(),
        },
        reference: format!("ORD-{tag}"),
        merchant_customer_id: Some("cus_e2e".into()),
    }
}

/// Pairs as a form body.
fn encode<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        form.append_pair(k.as_ref(), v.as_ref());
    }
    form.finish()
}

/// The hidden inputs of the page's form.
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .filter_map(|rest| {
            let name = rest.split("name=\"").nth(1)?.split('"').next()?;
            let value = rest.split("value=\"").nth(1)?.split('"').next()?;
            Some((
                name.to_owned(),
                value.replace("&amp;", "&").replace("&quot;", "\""),
            ))
        })
        .collect()
}

/// Open the bank's page for `consent_id` as the payer's browser, press `decision`: the
/// query of the redirect back.
async fn decide_at_bank(
    banks: &OpenBanking,
    bank: &str,
    consent_id: &str,
    decision: &str,
) -> Vec<(String, String)> {
    let url = banks
        .authorize_url(Mode::Test, bank, consent_id, "st-1", "n-1", REDIRECT)
        .await
        .expect("authorise URL");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("browser");
    let page = browser.get(url.clone()).send().await.expect("page");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("£24.50"), "{html}");
    assert!(
        html.contains("Acme Shop Ltd") && html.contains("Approve"),
        "{html}"
    );
    let mut form = hidden_inputs(&html);
    form.push(("account".into(), "1".into()));
    form.push(("decision".into(), decision.into()));
    let action = url.join("authorize").expect("action");
    let answer = browser
        .post(action)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&form))
        .send()
        .await
        .expect("decide");
    assert_eq!(
        answer.status().as_u16(),
        303,
        "{}",
        answer.text().await.unwrap_or_default()
    );
    let location = answer.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    reqwest::Url::parse(&location)
        .expect("redirect")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An authorised consent on `bank` and the token to pay it.
async fn authorised(banks: &OpenBanking, bank: &str, tag: &str) -> (String, BankToken) {
    let consent = banks
        .create_consent(Mode::Test, bank, order(tag, 2450))
        .await
        .expect("consent");
    assert_eq!(consent.status, ConsentState::AwaitingAuthorisation);
    let back = decide_at_bank(banks, bank, &consent.id, "approve").await;
    assert_eq!(param(&back, "state"), Some("st-1"));
    let code = param(&back, "code").expect("a code");
    let token = banks
        .exchange_code(Mode::Test, bank, code, REDIRECT)
        .await
        .expect("token");
    assert_eq!(token.consent_id.as_deref(), Some(consent.id.as_str()));
    let again = banks.exchange_code(Mode::Test, bank, code, REDIRECT).await;
    assert!(
        matches!(again, Err(BankError::Refused { .. })),
        "a code is single-use: {again:?}"
    );
    (consent.id, token)
}

async fn bank_ledger(base: &str) -> Vec<Value> {
    let r = reqwest::Client::new()
        .get(format!("{base}/sandbox/bank/ledger"))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .expect("ledger");
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r
        .text()
        .await
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .expect("json");
    v["entries"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_payer_approves_at_the_instant_bank_and_the_payment_settles_once() {
    let w = World::new();
    let base = w.daemon.base();
    let banks = client(&base);
    assert_eq!(banks.banks(Mode::Test).len(), 5);
    assert!(banks.banks(Mode::Live).is_empty());
    let bank = "calmony-instant";
    let (consent_id, token) = authorised(&banks, bank, "inst1").await;
    let got = banks
        .consent(Mode::Test, bank, &consent_id)
        .await
        .expect("consent");
    assert_eq!(got.map(|c| c.status), Some(ConsentState::Authorised));
    let submission = Submission {
        idempotency_key: "pay-inst1".into(),
        consent_id: consent_id.clone(),
        order: order("inst1", 2450),
    };
    let paid = banks
        .submit_payment(Mode::Test, bank, &token, submission.clone())
        .await
        .expect("paid");
    assert_eq!(paid.status, BankPaymentState::Settled);
    assert_eq!(paid.payer_name.as_deref(), Some("Sam Customer"));
    assert_eq!(paid.payer_account_last4.as_deref(), Some("4321"));
    assert_eq!(paid.end_to_end_id, "E2E-inst1");
    assert!(paid.refund_account.is_some(), "ReadRefundAccount was asked");
    let seen = banks
        .payment(Mode::Test, bank, &paid.id)
        .await
        .expect("status");
    assert_eq!(seen.map(|p| p.status), Some(BankPaymentState::Settled));
    let consumed = banks
        .consent(Mode::Test, bank, &consent_id)
        .await
        .expect("consent");
    assert_eq!(consumed.map(|c| c.status), Some(ConsentState::Consumed));
    assert_eq!(
        banks.payment(Mode::Test, bank, "dp-unknown").await,
        Ok(None)
    );

    // A second payment from the consumed consent is refused; the ledger holds one.
    let second = Submission {
        idempotency_key: "pay-inst1-b".into(),
        ..submission
    };
    let refused = banks.submit_payment(Mode::Test, bank, &token, second).await;
    assert!(
        matches!(&refused, Err(BankError::Refused { code, .. }) if code == "UK.OBIE.Resource.InvalidConsentStatus"),
        "{refused:?}"
    );
    let ledger = bank_ledger(&base).await;
    let mine: Vec<_> = ledger
        .iter()
        .filter(|e| e["consent_id"] == consent_id.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{ledger:?}");
    assert_eq!(mine[0]["amount"], 2450);
    assert_eq!(mine[0]["status"], "AcceptedSettlementCompleted");
}

#[tokio::test]
async fn the_page_cannot_be_redirected_elsewhere_by_editing_its_form() {
    let w = World::new();
    let banks = client(&w.daemon.base());
    let bank = "calmony-instant";
    let consent = banks
        .create_consent(Mode::Test, bank, order("csrf1", 2450))
        .await
        .expect("consent");
    let url = banks
        .authorize_url(Mode::Test, bank, &consent.id, "st-1", "n-1", REDIRECT)
        .await
        .expect("url");
    let html = reqwest::get(url.clone())
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let mut form: Vec<(String, String)> = hidden_inputs(&html)
        .into_iter()
        .map(|(k, v)| {
            if k == "redirect_uri" {
                (k, "https://evil.example/".into())
            } else {
                (k, v)
            }
        })
        .collect();
    form.push(("account".into(), "0".into()));
    form.push(("decision".into(), "approve".into()));
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("browser");
    let answer = browser
        .post(url.join("authorize").expect("action"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&form))
        .send()
        .await
        .expect("decide");
    assert_eq!(answer.status().as_u16(), 400);
    let still = banks
        .consent(Mode::Test, bank, &consent.id)
        .await
        .expect("consent");
    assert_eq!(
        still.map(|c| c.status),
        Some(ConsentState::AwaitingAuthorisation)
    );
}

#[tokio::test]
async fn a_payer_who_rejects_at_the_bank_comes_back_with_access_denied() {
    let w = World::new();
    let banks = client(&w.daemon.base());
    let consent = banks
        .create_consent(Mode::Test, "calmony-delayed", order("rej1", 2450))
        .await
        .expect("consent");
    let back = decide_at_bank(&banks, "calmony-delayed", &consent.id, "reject").await;
    assert_eq!(param(&back, "error"), Some("access_denied"));
    assert_eq!(param(&back, "state"), Some("st-1"));
    assert!(param(&back, "code").is_none());
    let got = banks
        .consent(Mode::Test, "calmony-delayed", &consent.id)
        .await
        .expect("consent");
    assert_eq!(got.map(|c| c.status), Some(ConsentState::Rejected));
    // Replaying the consent's key answers the same consent.
    let replay = banks
        .create_consent(Mode::Test, "calmony-delayed", order("rej1", 2450))
        .await
        .expect("replay");
    assert_eq!(replay.id, consent.id);
}

#[tokio::test]
async fn the_flaky_bank_loses_its_answer_and_the_replay_gets_the_one_payment() {
    let w = World::new();
    let base = w.daemon.base();
    let banks = client(&base);
    let bank = "calmony-flaky";
    let (consent_id, token) = authorised(&banks, bank, "flaky1").await;
    let submission = Submission {
        idempotency_key: "pay-flaky1".into(),
        consent_id: consent_id.clone(),
        order: order("flaky1", 2450),
    };
    let first = banks
        .submit_payment(Mode::Test, bank, &token, submission.clone())
        .await;
    assert!(matches!(first, Err(BankError::Unavailable(_))), "{first:?}");
    let replay = banks
        .submit_payment(Mode::Test, bank, &token, submission.clone())
        .await
        .expect("the replay answers the original");
    assert_eq!(replay.status, BankPaymentState::Settled);
    let again = banks
        .submit_payment(Mode::Test, bank, &token, submission)
        .await
        .expect("and again");
    assert_eq!(again.id, replay.id);
    let ledger = bank_ledger(&base).await;
    let mine = ledger
        .iter()
        .filter(|e| e["consent_id"] == consent_id.as_str())
        .count();
    assert_eq!(mine, 1, "paid once: {ledger:?}");
}

#[tokio::test]
async fn a_request_with_a_tampered_signature_is_refused_by_the_bank() {
    let w = World::new();
    let base = w.daemon.base();
    let bank = format!("{base}/sandbox/bank/calmony-instant");
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{bank}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[
            ("grant_type", "client_credentials"),
            ("scope", "payments"),
            ("client_id", "calmony-sandbox-tpp"),
            ("client_secret", "sandbox-client-secret-not-for-live"),
        ]))
        .send()
        .await
        .expect("token")
        .text()
        .await
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .expect("json");
    let token = token["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    let key = SigningKey::from_pkcs8_pem(TPP_PEM, "calmony-sandbox-tpp", "calmony").expect("key");
    let body = serde_json::to_vec(&serde_json::json!({
        "Data": {"Initiation": {
            "InstructionIdentification": "I1", "EndToEndIdentification": "E1",
            "InstructedAmount": {"Amount": "10.00", "Currency": "GBP"},
            "CreditorAccount": {"SchemeName": "UK.OBIE.SortCodeAccountNumber",
                "Identification": "04000410000001", "Name": "Acme"}}},
        "Risk": {}
    }))
    .expect("body");
    let signature = jws::sign_detached(&body, &key);
    let tampered = String::from_utf8(body.clone())
        .expect("utf-8")
        .replace("10.00", "99.00");
    let url = format!("{bank}/open-banking/v3.1/pisp/domestic-payment-consents");
    for (sig, sent, key_name, expected) in [
        (
            Some(signature.as_str()),
            tampered.into_bytes(),
            "k1",
            "UK.OBIE.Signature.Invalid",
        ),
        (None, body.clone(), "k2", "UK.OBIE.Signature.Missing"),
    ] {
        let mut req = http
            .post(&url)
            .bearer_auth(&token)
            .header(headers::IDEMPOTENCY_KEY, key_name)
            .header("content-type", "application/json")
            .body(sent);
        if let Some(sig) = sig {
            req = req.header(headers::JWS_SIGNATURE, sig);
        }
        let r = req.send().await.expect("consent");
        assert_eq!(r.status().as_u16(), 400);
        assert!(r.headers().contains_key(headers::INTERACTION_ID));
        let v: Value = r
            .text()
            .await
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .expect("OBErrorResponse1");
        assert_eq!(v["Errors"][0]["ErrorCode"], expected, "{v}");
    }
    let ok = http
        .post(&url)
        .bearer_auth(&token)
        .header(headers::IDEMPOTENCY_KEY, "k3")
        .header(headers::JWS_SIGNATURE, signature)
        .header(headers::INTERACTION_ID, "e2e-interaction-1")
        .body(body)
        .send()
        .await
        .expect("consent");
    assert_eq!(ok.status().as_u16(), 201);
    assert_eq!(ok.headers()[headers::INTERACTION_ID], "e2e-interaction-1");
    assert!(ok.headers().contains_key(headers::JWS_SIGNATURE));

    // The same idempotency key with another (correctly signed) body is refused.
    let other = br#"{"Data":{},"Risk":{}}"#.to_vec();
    let reused = http
        .post(&url)
        .bearer_auth(&token)
        .header(headers::IDEMPOTENCY_KEY, "k3")
        .header(headers::JWS_SIGNATURE, jws::sign_detached(&other, &key))
        .body(other)
        .send()
        .await
        .expect("consent");
    assert_eq!(reused.status().as_u16(), 400);
}

/// A one-request-per-connection bank that serves the sandbox's discovery (pointing at itself),
/// the real JWKS, a token, and `consent_answer` (body, signature) to every consent POST.
fn fake_bank(jwks: String, consent_answer: (String, Option<String>)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let me = base.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = vec![0u8; 65536];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = head.split(' ').nth(1).unwrap_or("").to_owned();
            let (body, signature) = if path.ends_with("openid-configuration") {
                (
                    serde_json::json!({
                        "issuer": me, "authorization_endpoint": format!("{me}/authorize"),
                        "token_endpoint": format!("{me}/token"), "jwks_uri": format!("{me}/jwks"),
                        "open_banking_pisp_base": format!("{me}/open-banking/v3.1/pisp"),
                    })
                    .to_string(),
                    None,
                )
            } else if path.ends_with("jwks") {
                (jwks.clone(), None)
            } else if path.ends_with("token") {
                (
                    r#"{"access_token":"t","token_type":"Bearer","expires_in":300}"#.to_owned(),
                    None,
                )
            } else {
                consent_answer.clone()
            };
            let sig = signature
                .map(|s| format!("x-jws-signature: {s}\r\n"))
                .unwrap_or_default();
            let status = if path.contains("domestic-payment-consents") {
                "201 Created"
            } else {
                "200 OK"
            };
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{sig}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    base
}

#[tokio::test]
async fn a_tampered_or_unsigned_bank_answer_is_refused_by_the_client() {
    let w = World::new();
    let base = w.daemon.base();
    let bank = format!("{base}/sandbox/bank/calmony-instant");
    let jwks = reqwest::get(format!("{bank}/jwks"))
        .await
        .expect("jwks")
        .text()
        .await
        .expect("text");
    // A real, signed consent answer from the sandbox bank, to tamper with.
    let banks = client(&base);
    banks
        .create_consent(Mode::Test, "calmony-instant", order("tamp1", 2450))
        .await
        .expect("consent");
    let real = reqwest::Client::new();
    let token: Value = real
        .post(format!("{bank}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[
            ("grant_type", "client_credentials"),
            ("client_id", "calmony-sandbox-tpp"),
            ("client_secret", "sandbox-client-secret-not-for-live"),
        ]))
        .send()
        .await
        .expect("token")
        .text()
        .await
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .expect("json");
    let key = SigningKey::from_pkcs8_pem(TPP_PEM, "calmony-sandbox-tpp", "calmony").expect("key");
    let body = serde_json::to_vec(&serde_json::json!({
        "Data": {"Initiation": {
            "InstructionIdentification": "I2", "EndToEndIdentification": "E2",
            "InstructedAmount": {"Amount": "24.50", "Currency": "GBP"},
            "CreditorAccount": {"SchemeName": "UK.OBIE.SortCodeAccountNumber",
                "Identification": "04000410000001", "Name": "Acme"}}},
        "Risk": {}
    }))
    .expect("body");
    let answer = real
        .post(format!(
            "{bank}/open-banking/v3.1/pisp/domestic-payment-consents"
        ))
        .bearer_auth(token["access_token"].as_str().expect("token"))
        .header(headers::IDEMPOTENCY_KEY, "tamper-source")
        .header(headers::JWS_SIGNATURE, jws::sign_detached(&body, &key))
        .body(body)
        .send()
        .await
        .expect("consent");
    assert_eq!(answer.status().as_u16(), 201);
    let signature = answer.headers()[headers::JWS_SIGNATURE]
        .to_str()
        .expect("sig")
        .to_owned();
    let text = answer.text().await.expect("text");
    assert!(text.contains("AwaitingAuthorisation"));
    let tampered = text.replace("AwaitingAuthorisation", "Authorised");

    for (served, what) in [
        ((tampered, Some(signature.clone())), "tampered"),
        ((text.clone(), None), "unsigned"),
    ] {
        let fake = fake_bank(jwks.clone(), served);
        let mut config = Config::default();
        config.pay_by_bank.test.banks = vec![calmony_config::BankConnection {
            id: "fake".into(),
            name: "Fake".into(),
            discovery_url: format!("{fake}/.well-known/openid-configuration"),
            client_id: "calmony-sandbox-tpp".into(),
            client_secret: "x".into(),
            ..Default::default()
        }];
        let banks = OpenBanking::from_config(&config).expect("fake bank");
        let got = banks
            .create_consent(Mode::Test, "fake", order("tamp2", 2450))
            .await;
        assert!(
            matches!(got, Err(BankError::BadSignature(_))),
            "{what}: {got:?}"
        );
    }
    // The untouched answer, served the same way, is believed.
    let fake = fake_bank(jwks, (text, Some(signature)));
    let mut config = Config::default();
    config.pay_by_bank.test.banks = vec![calmony_config::BankConnection {
        id: "fake".into(),
        discovery_url: format!("{fake}/.well-known/openid-configuration"),
        client_id: "calmony-sandbox-tpp".into(),
        ..Default::default()
    }];
    let banks = OpenBanking::from_config(&config).expect("fake bank");
    let got = banks
        .create_consent(Mode::Test, "fake", order("tamp3", 2450))
        .await
        .expect("believed");
    assert_eq!(got.status, ConsentState::AwaitingAuthorisation);
}

/// A submitted payment on `bank`, with the sandbox's delay as `w` configured it.
async fn submitted(
    banks: &OpenBanking,
    bank: &str,
    tag: &str,
) -> calmony_actors::gateway::BankPayment {
    let (consent_id, token) = authorised(banks, bank, tag).await;
    let submission = Submission {
        idempotency_key: format!("pay-{tag}"),
        consent_id,
        order: order(tag, 2450),
    };
    banks
        .submit_payment(Mode::Test, bank, &token, submission)
        .await
        .expect("submitted")
}

#[tokio::test]
async fn the_delayed_rejecting_and_late_rejecting_banks_move_payments_with_time() {
    let w = World::with(&[("CALMONY_SANDBOX_BANK_SETTLE_DELAY_MS", "800")]);
    let banks = client(&w.daemon.base());
    let delayed = submitted(&banks, "calmony-delayed", "del1").await;
    assert_eq!(delayed.status, BankPaymentState::InProgress);
    assert_eq!(delayed.bank_status, "Pending");
    let late = submitted(&banks, "calmony-late-reject", "late1").await;
    assert_eq!(late.bank_status, "AcceptedSettlementInProcess");
    let rejected = submitted(&banks, "calmony-rejects", "rej2").await;
    assert_eq!(rejected.status, BankPaymentState::Rejected);
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    let status = |id: String, bank: &'static str| {
        let banks = &banks;
        async move {
            banks
                .payment(Mode::Test, bank, &id)
                .await
                .expect("status")
                .map(|p| p.status)
        }
    };
    assert_eq!(
        status(delayed.id, "calmony-delayed").await,
        Some(BankPaymentState::Settled)
    );
    assert_eq!(
        status(late.id, "calmony-late-reject").await,
        Some(BankPaymentState::Rejected)
    );
}

#[tokio::test]
async fn an_undecided_consent_expires_and_its_page_says_so() {
    let w = World::with(&[("CALMONY_SANDBOX_BANK_CONSENT_TIMEOUT_SECONDS", "1")]);
    let banks = client(&w.daemon.base());
    let bank = "calmony-instant";
    let consent = banks
        .create_consent(Mode::Test, bank, order("exp1", 2450))
        .await
        .expect("consent");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let got = banks
        .consent(Mode::Test, bank, &consent.id)
        .await
        .expect("consent");
    assert_eq!(got.map(|c| c.status), Some(ConsentState::Rejected));
    let url = banks
        .authorize_url(Mode::Test, bank, &consent.id, "st", "n", REDIRECT)
        .await
        .expect("url");
    let html = reqwest::get(url)
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        html.contains("expired") && !html.contains("Approve"),
        "{html}"
    );
}

#[tokio::test]
async fn two_racing_submissions_of_one_consent_pay_once() {
    let w = World::new();
    let base = w.daemon.base();
    let banks = client(&base);
    let bank = "calmony-instant";
    let (consent_id, token) = authorised(&banks, bank, "race1").await;
    let submission = |key: &str| Submission {
        idempotency_key: key.into(),
        consent_id: consent_id.clone(),
        order: order("race1", 2450),
    };
    let (a, b) = tokio::join!(
        banks.submit_payment(Mode::Test, bank, &token, submission("race-a")),
        banks.submit_payment(Mode::Test, bank, &token, submission("race-b")),
    );
    assert_eq!(
        [&a, &b].iter().filter(|r| r.is_ok()).count(),
        1,
        "exactly one pays: {a:?} {b:?}"
    );
    let ledger = bank_ledger(&base).await;
    let mine = ledger
        .iter()
        .filter(|e| e["consent_id"] == consent_id.as_str())
        .count();
    assert_eq!(mine, 1, "{ledger:?}");
}
