//! Pay by Bank end to end: a payment intent (and a checkout session) paid through the sandbox
//! bank over HTTP, the payer's steps driven by posting the pages' forms as a browser would
//! (our bank page -> the bank's authorisation page -> back to the daemon -> the merchant), and
//! the sandbox bank's ledger as the proof of "paid once".

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Api, Daemon, Redis, World, eventually, form, get_page};

const RETURN_URL: &str = "https%3A%2F%2Flettings.example%2Fdeposit%2Fdone";

/// The sandbox bank's accepted payments, by statement reference (one per intent).
pub async fn bank_ledger(base: &str) -> Vec<Value> {
    let r = reqwest::Client::new()
        .get(format!("{base}/sandbox/bank/ledger"))
        .bearer_auth(crate::harness::OPERATOR_TOKEN)
        .send()
        .await
        .expect("bank ledger");
    assert_eq!(r.status().as_u16(), 200, "the bank ledger");
    let body: Value = serde_json::from_str(&r.text().await.unwrap_or_default()).unwrap_or_default();
    body["entries"].as_array().cloned().unwrap_or_default()
}

pub fn payments_per_reference(entries: &[Value]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for e in entries {
        *m.entry(e["reference"].as_str().unwrap_or("").to_string())
            .or_insert(0) += 1;
    }
    m
}

/// The statement reference the daemon gives an intent (see `bank_attempt::reference_for`).
pub fn reference_of(intent: &str) -> String {
    let alnum: Vec<char> = intent.chars().filter(char::is_ascii_alphanumeric).collect();
    let tail: String = alnum[alnum.len().saturating_sub(16)..].iter().collect();
    format!("CP{}", tail.to_ascii_uppercase())
}

/// A confirmed bank payment intent: its id and the page its `next_action` points at.
pub async fn bank_intent(api: &Api, amount: i64) -> (String, String) {
    let r = api
        .post_form(
            "/v1/payment_intents",
            &format!(
                "amount={amount}&currency=gbp&payment_method_types[]=pay_by_bank&confirm=true\
                 &payment_method_data[type]=pay_by_bank&return_url={RETURN_URL}\
                 &description=Holding+deposit"
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "requires_action", "{}", r.text);
    assert_eq!(r.json["next_action"]["type"], "redirect_to_url");
    assert_eq!(r.json["payment_method_types"][0], "pay_by_bank");
    let url = r.json["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .expect("url")
        .to_string();
    (r.json["id"].as_str().expect("id").to_string(), url)
}

/// Pick `bank` on our page: answers where the browser is sent (the bank's authorisation).
pub async fn choose(base: &str, page_url: &str, bank: &str) -> String {
    let (status, html) = get_page(page_url).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Continue to your bank"), "{html}");
    let mut choice = form(&html, "bank-choice");
    // The page's radio buttons read as fields; the payer's pick replaces them.
    choice.fields.retain(|(k, _)| k != "bank");
    let (status, location, body) = choice.with("bank", bank).submit(base).await;
    assert_eq!(status, 303, "{body}");
    let to_bank = location.expect("a redirect to the bank");
    assert!(
        to_bank.contains(&format!("/sandbox/bank/{bank}/authorize")),
        "{to_bank}"
    );
    to_bank
}

/// Decide at the bank (`approve`, `reject`, `cancel`): answers where the bank sends the payer.
pub async fn decide(base: &str, authorise_url: &str, decision: &str) -> String {
    let (status, html) = get_page(authorise_url).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Approve"), "{html}");
    let mut at_bank = form(&html, "authorise");
    // The page's radio buttons read as fields: the payer's decision replaces them, and the
    // first (pre-selected) account is the one paid from.
    let mut first_account = true;
    at_bank.fields.retain(|(k, _)| match k.as_str() {
        "decision" => false,
        "account" => std::mem::replace(&mut first_account, false),
        _ => true,
    });
    let (status, location, body) = at_bank.with("decision", decision).submit(base).await;
    assert!(status == 302 || status == 303, "{status}: {body}");
    let back = location.expect("a redirect back to the daemon");
    assert!(back.contains("/pay/bank/return?"), "{back}");
    back
}

/// Follow the bank's redirect back: answers where the daemon sends the payer (or its page).
pub async fn come_back(return_url: &str) -> (u16, Option<String>, String) {
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(return_url)
        .send()
        .await
        .expect("return");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, location, r.text().await.unwrap_or_default())
}

/// From the "Waiting for your bank" page (`body`), follow its check-again link as the page's
/// refresh does until the daemon sends the payer on: where to.
async fn sent_on_from_waiting(base: &str, body: &str) -> String {
    let again = format!(
        "{base}/pay/bank/{}",
        body.split("/pay/bank/")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("the check-again link")
            .replace("&amp;", "&")
    );
    for _ in 0..40 {
        let (status, location, _) = come_back(&again).await;
        if status == 303 {
            return location.expect("a Location");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("never sent on from the waiting page");
}

async fn status_of(w: &World, pi: &str) -> Value {
    w.api.get(&format!("/v1/payment_intents/{pi}")).await.json
}

async fn event_types(w: &World, pi: &str) -> Vec<String> {
    let r = w.api.get("/v1/events?limit=100").await;
    r.json["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| {
            let o = &e["data"]["object"];
            o["id"] == pi || o["payment_intent"] == pi
        })
        .map(|e| e["type"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn approved_at_the_bank_then_settled_succeeds_once_with_its_events() {
    let w = World::new();
    let base = w.daemon.base();
    let (pi, page) = bank_intent(&w.api, 245_000).await;
    let (_, html) = get_page(&page).await;
    assert!(html.contains("£2,450.00"), "{html}");
    let to_bank = choose(&base, &page, "calmony-delayed").await;
    let back = decide(&base, &to_bank, "approve").await;
    let (status, location, body) = come_back(&back).await;
    // The delayed bank has not settled yet: a page that says so and looks again, until the
    // payer is sent on to the merchant.
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Waiting for your bank"), "{body}");
    assert!(location.is_none());
    let landed = sent_on_from_waiting(&base, &body).await;
    assert!(
        landed.starts_with("https://lettings.example/deposit/done?")
            && landed.contains(&format!("payment_intent={pi}"))
            && landed.contains("redirect_status="),
        "{landed}"
    );
    let now = status_of(&w, &pi).await;
    assert!(
        now["status"] == "processing" || now["status"] == "succeeded",
        "{now}"
    );
    assert!(
        eventually(Duration::from_secs(20), || async {
            status_of(&w, &pi).await["status"] == "succeeded"
        })
        .await,
        "settled: {}",
        status_of(&w, &pi).await
    );
    let intent = status_of(&w, &pi).await;
    assert_eq!(intent["amount_received"], 245_000);
    let charge_id = intent["latest_charge"].as_str().expect("a charge");
    let charge = w.api.get(&format!("/v1/charges/{charge_id}")).await.json;
    assert_eq!(charge["status"], "succeeded", "{charge}");
    let details = &charge["payment_method_details"];
    assert_eq!(details["type"], "pay_by_bank", "{charge}");
    assert_eq!(details["pay_by_bank"]["bank"], "calmony-delayed");
    assert!(details["pay_by_bank"]["end_to_end_identification"].is_string());
    let types = event_types(&w, &pi).await;
    for t in [
        "payment_intent.created",
        "payment_intent.requires_action",
        "payment_intent.processing",
        "payment_intent.succeeded",
        "charge.succeeded",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} in {types:?}");
    }
    let paid = payments_per_reference(&bank_ledger(&base).await);
    assert_eq!(paid.get(&reference_of(&pi)), Some(&1), "{paid:?}");
    // The delayed bank notified its settlement (a signed SET), which the daemon verified.
    assert!(
        eventually(Duration::from_secs(10), || async {
            w.daemon.logs().contains("bank notification: looked at now")
        })
        .await,
        "{}",
        w.daemon.logs()
    );
    // The payee's bank credited the merchant's Griffin account once, under the reference.
    let mut config = calmony_config::Config {
        public_url: base.clone(),
        ..calmony_config::Config::default()
    };
    config.griffin.test.api_key = crate::harness::GRIFFIN_SANDBOX_KEY.to_owned();
    let griffin = calmony_actors::gateway::griffin::Griffin::from_config(&config)
        .expect("the Griffin sandbox")
        .client(calmony_protocol::Mode::Test)
        .expect("test mode has Griffin");
    let credits = || async {
        let page = griffin.transactions(None, None, 100).await.expect("ledger");
        page.items
            .account_transactions
            .iter()
            .filter(|t| t.reference.as_deref() == Some(reference_of(&pi).as_str()))
            .map(|t| t.balance_change.pence().expect("pence"))
            .collect::<Vec<i64>>()
    };
    assert_eq!(credits().await, vec![245_000], "credited once");
    // A replay of the bank's redirect changes nothing and pays nothing more.
    let (status, _, _) = come_back(&back).await;
    assert!(status == 303 || status == 200, "{status}");
    let paid = payments_per_reference(&bank_ledger(&base).await);
    assert_eq!(paid.get(&reference_of(&pi)), Some(&1), "{paid:?}");
    // Read again and again, the settled payment is still credited once.
    assert_eq!(credits().await, vec![245_000]);
    // Its refund is paid from the merchant's Griffin account (followed in bank_refunds.rs).
    let r = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "pending", "{}", r.text);
    assert_eq!(r.json["amount"], 245_000, "{}", r.text);
    assert_eq!(status_of(&w, &pi).await["amount_received"], 245_000);
}

#[tokio::test]
async fn rejected_or_cancelled_at_the_bank_pays_nothing_and_says_why() {
    let w = World::new();
    let base = w.daemon.base();
    for decision in ["reject", "cancel"] {
        let (pi, page) = bank_intent(&w.api, 50_000).await;
        let to_bank = choose(&base, &page, "calmony-instant").await;
        let back = decide(&base, &to_bank, decision).await;
        let (status, location, body) = come_back(&back).await;
        assert_eq!(status, 303, "{body}");
        assert!(
            location
                .as_deref()
                .is_some_and(|l| l.contains("redirect_status=failed")),
            "{location:?}"
        );
        let intent = status_of(&w, &pi).await;
        assert_eq!(intent["status"], "requires_payment_method", "{intent}");
        assert!(
            intent["last_payment_error"]["message"].is_string(),
            "{intent}"
        );
        assert!(
            event_types(&w, &pi)
                .await
                .contains(&"payment_intent.payment_failed".to_string())
        );
        let paid = payments_per_reference(&bank_ledger(&base).await);
        assert_eq!(paid.get(&reference_of(&pi)), None, "{paid:?}");
    }
}

#[tokio::test]
async fn a_payment_the_bank_rejects_after_submission_fails_its_charge() {
    let w = World::new();
    let base = w.daemon.base();
    let (pi, page) = bank_intent(&w.api, 120_000).await;
    let to_bank = choose(&base, &page, "calmony-late-reject").await;
    let back = decide(&base, &to_bank, "approve").await;
    come_back(&back).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            status_of(&w, &pi).await["status"] == "requires_payment_method"
        })
        .await,
        "{}",
        status_of(&w, &pi).await
    );
    let intent = status_of(&w, &pi).await;
    let charge_id = intent["latest_charge"].as_str().expect("the charge");
    let charge = w.api.get(&format!("/v1/charges/{charge_id}")).await.json;
    assert_eq!(charge["status"], "failed", "{charge}");
    let types = event_types(&w, &pi).await;
    assert!(types.contains(&"charge.failed".to_string()), "{types:?}");
    assert!(
        types.contains(&"payment_intent.payment_failed".to_string()),
        "{types:?}"
    );
}

#[tokio::test]
async fn a_bank_server_error_on_submission_is_recovered_under_the_same_key() {
    let w = World::new();
    let base = w.daemon.base();
    let (pi, page) = bank_intent(&w.api, 99_900).await;
    let to_bank = choose(&base, &page, "calmony-flaky").await;
    let back = decide(&base, &to_bank, "approve").await;
    come_back(&back).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            status_of(&w, &pi).await["status"] == "succeeded"
        })
        .await,
        "{}",
        status_of(&w, &pi).await
    );
    let paid = payments_per_reference(&bank_ledger(&base).await);
    assert_eq!(paid.get(&reference_of(&pi)), Some(&1), "{paid:?}");
}

#[tokio::test]
async fn bad_input_is_refused_by_name_and_changes_nothing() {
    let w = World::new();
    let cases = [
        (
            "amount=1000&currency=eur&payment_method_types[]=pay_by_bank",
            "currency",
        ),
        (
            "amount=2000000&currency=gbp&payment_method_types[]=pay_by_bank",
            "amount",
        ),
        (
            "amount=1000&currency=gbp&payment_method_types[]=pay_by_bank&confirm=true\
             &payment_method_data[type]=pay_by_bank",
            "return_url",
        ),
        (
            "amount=1000&currency=gbp&payment_method_types[]=sepa_debit",
            "payment_method_types",
        ),
        (
            "amount=1000&currency=gbp&payment_method_data[type]=pay_by_bank",
            "payment_method_data",
        ),
        (
            "amount=1000&currency=gbp&payment_method_types[]=card&confirm=true\
             &payment_method_data[type]=pay_by_bank&return_url=https%3A%2F%2Fx.example",
            "payment_method_data[type]",
        ),
    ];
    for (body, param) in cases {
        let r = w.api.post_form("/v1/payment_intents", body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.err("param"), param, "{body}: {}", r.text);
    }
    let listed = w.api.get("/v1/payment_intents").await;
    assert_eq!(listed.json["data"].as_array().map(Vec::len), Some(0));

    // A tampered state or code: the payer is told, nothing moves.
    let base = w.daemon.base();
    let (pi, page) = bank_intent(&w.api, 10_000).await;
    let to_bank = choose(&base, &page, "calmony-instant").await;
    let back = decide(&base, &to_bank, "approve").await;
    let tampered_state = back.replacen("state=", "state=x", 1);
    let (status, _, body) = come_back(&tampered_state).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Nothing more was paid"), "{body}");
    let tampered_code = back.replacen("code=", "code=x", 1);
    let (status, _, body) = come_back(&tampered_code).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Nothing was paid"), "{body}");
    assert_eq!(status_of(&w, &pi).await["status"], "requires_action");
    assert_eq!(
        payments_per_reference(&bank_ledger(&base).await).get(&reference_of(&pi)),
        None
    );
    // A form posted without its CSRF token is refused.
    let (_, page) = bank_intent(&w.api, 10_000).await;
    let (_, html) = get_page(&page).await;
    let mut choice = form(&html, "bank-choice");
    choice.fields.retain(|(k, _)| k != "csrf" && k != "bank");
    let (status, _, _) = choice.with("bank", "calmony-instant").submit(&base).await;
    assert_eq!(status, 400);
}

/// Whether checkout session `id` reads `payment_status: paid` within 20 seconds.
async fn session_paid(w: &World, id: &str) -> bool {
    eventually(Duration::from_secs(20), || async {
        w.api.get(&format!("/v1/checkout/sessions/{id}")).await.json["payment_status"] == "paid"
    })
    .await
}

/// A checkout session for a holding deposit of `amount` pence, by card or by bank: its id and
/// its page's address.
async fn deposit_checkout(w: &World, amount: i64) -> (String, String) {
    let r = w
        .api
        .post_form(
            "/v1/checkout/sessions",
            &format!(
                "mode=payment&success_url=https%3A%2F%2Flettings.example%2Fok%3Fs%3D%7BCHECKOUT_SESSION_ID%7D\
                 &line_items[0][price_data][currency]=gbp\
                 &line_items[0][price_data][product_data][name]=Holding+deposit\
                 &line_items[0][price_data][unit_amount]={amount}&line_items[0][quantity]=1\
                 &payment_method_types[]=card&payment_method_types[]=pay_by_bank"
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json["id"].as_str().expect("id").to_string();
    (id, r.json["url"].as_str().expect("url").to_string())
}

#[tokio::test]
async fn checkout_with_pay_by_bank_completes_unpaid_then_async_succeeds() {
    let w = World::new();
    let base = w.daemon.base();
    let (session, url) = deposit_checkout(&w, 245_000).await;
    let (status, html) = get_page(&url).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("by bank transfer"), "{html}");
    let (status, location, body) = form(&html, "bank-hand-off").submit(&base).await;
    assert_eq!(status, 303, "{body:.2000}");
    let bank_page = location.expect("to the bank page");
    let to_bank = choose(&base, &bank_page, "calmony-delayed").await;
    let back = decide(&base, &to_bank, "approve").await;
    let (status, location, body) = come_back(&back).await;
    let checkout_page = match location {
        Some(l) => l,
        // Waiting for the delayed bank: the page looks again until it can send the payer on.
        None => {
            assert_eq!(status, 200, "{body}");
            sent_on_from_waiting(&base, &body).await
        }
    };
    // Back to the session's page, which sends the payer to success_url once it completes.
    assert!(checkout_page.contains("/pay/checkout/"), "{checkout_page}");
    let (status, _) = get_page(&checkout_page).await;
    assert!(status == 303 || status == 200, "{status}");
    assert!(session_paid(&w, &session).await, "the session was paid");
    let s = w
        .api
        .get(&format!("/v1/checkout/sessions/{session}"))
        .await
        .json;
    assert_eq!(s["status"], "complete", "{s}");
    let events = w.api.get("/v1/events?limit=100").await.json;
    let types: Vec<String> = events["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["data"]["object"]["id"] == session.as_str())
        .map(|e| e["type"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        types.contains(&"checkout.session.completed".to_string())
            && types.contains(&"checkout.session.async_payment_succeeded".to_string()),
        "{types:?}"
    );
}

/// SIGKILL at each step of the flow (before and after consent creation, after the redirect
/// back, after submission), a restart, and the counts: every payment succeeds, once.
#[tokio::test]
async fn kill_at_every_step_loses_nothing_and_pays_once() {
    let redis = Redis::start();
    let mut lost = 0;
    let mut doubled = 0;
    for point in [
        "bank_before_consent",
        "bank_after_consent",
        "bank_before_submit",
        "bank_after_submit",
    ] {
        let mut daemon = Daemon::start_with(&redis.url(), &[("CALMONY_TEST_KILL_AT", point)]);
        let key = daemon.key("acme", "test");
        let api = daemon.api(&key);
        let base = daemon.base();
        let (pi, page) = bank_intent(&api, 180_000).await;
        // The step the daemon dies at: the request that reaches it gets no answer.
        let dies_on_choice = matches!(point, "bank_before_consent" | "bank_after_consent");
        let (_, html) = get_page(&page).await;
        let mut choice = form(&html, "bank-choice");
        choice.fields.retain(|(k, _)| k != "bank");
        let choice = choice.with("bank", "calmony-instant");
        let mut to_bank = None;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let sent = client
            .post(format!("{base}{}", choice.action))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(choice.encoded())
            .send()
            .await;
        if !dies_on_choice {
            let r = sent.expect("answered");
            to_bank = r
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
        }
        if let Some(to_bank) = &to_bank {
            let back = decide(&base, to_bank, "approve").await;
            // Dies before or after submitting: no answer.
            let _ = client.get(&back).send().await;
        }
        daemon.wait_exit(Duration::from_secs(10));
        // Restarted without the kill point: recovery from the tracking set.
        daemon.restart_without("CALMONY_TEST_KILL_AT");
        if dies_on_choice {
            // The payer comes back to the page and is sent to the bank again.
            let (status, _) = get_page(&page).await;
            assert!(status == 303 || status == 200, "{status}");
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client");
            let mut location = None;
            for _ in 0..40 {
                let r = client.get(&page).send().await.expect("page");
                if r.status().as_u16() == 303 {
                    location = r
                        .headers()
                        .get("location")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let to_bank = location.expect("sent to the bank again after recovery");
            let back = decide(&base, &to_bank, "approve").await;
            come_back(&back).await;
        }
        let succeeded = eventually(Duration::from_secs(30), || async {
            api.get(&format!("/v1/payment_intents/{pi}")).await.json["status"] == "succeeded"
        })
        .await;
        if !succeeded {
            lost += 1;
        }
        let paid = payments_per_reference(&bank_ledger(&base).await);
        let n = paid.get(&reference_of(&pi)).copied().unwrap_or(0);
        if n > 1 {
            doubled += 1;
        }
        println!("kill point {point}: succeeded={succeeded}, bank payments={n}");
        assert_eq!(n, 1, "{point}: {paid:?}");
        daemon.kill9();
    }
    println!("bank kill drill: 4 kill points, {lost} lost, {doubled} paid twice");
    assert_eq!((lost, doubled), (0, 0));
}

#[tokio::test]
async fn a_canceled_intent_is_never_paid_by_a_late_approval() {
    let w = World::new();
    let base = w.daemon.base();
    let (pi, page) = bank_intent(&w.api, 70_000).await;
    let to_bank = choose(&base, &page, "calmony-instant").await;
    // The merchant cancels while the payer is at the bank.
    let r = w
        .api
        .post_form(&format!("/v1/payment_intents/{pi}/cancel"), "")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "canceled");
    let back = decide(&base, &to_bank, "approve").await;
    come_back(&back).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status_of(&w, &pi).await["status"], "canceled");
    assert_eq!(
        payments_per_reference(&bank_ledger(&base).await).get(&reference_of(&pi)),
        None,
        "nothing paid"
    );
}

#[tokio::test]
async fn a_payment_the_bank_rejects_at_submission_has_a_failed_bank_charge() {
    let w = World::new();
    let base = w.daemon.base();
    // A declined card first: its charge must stay the card's.
    let pm = w.api.card("4000000000009995", 12, 2030, None).await;
    let r = w
        .api
        .post_form(
            "/v1/payment_intents",
            &format!(
                "amount=30000&currency=gbp&payment_method_types[]=card\
                 &payment_method_types[]=pay_by_bank&payment_method={pm}&confirm=true"
            ),
        )
        .await;
    assert_eq!(r.status, 402, "{}", r.text);
    let pi = r.json["error"]["payment_intent"]["id"]
        .as_str()
        .expect("the intent")
        .to_string();
    let card_charge = status_of(&w, &pi).await["latest_charge"]
        .as_str()
        .expect("the card's charge")
        .to_string();
    let r = w
        .api
        .post_form(
            &format!("/v1/payment_intents/{pi}/confirm"),
            &format!("payment_method_data[type]=pay_by_bank&return_url={RETURN_URL}"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let page = r.json["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .expect("url")
        .to_string();
    let to_bank = choose(&base, &page, "calmony-rejects").await;
    let back = decide(&base, &to_bank, "approve").await;
    come_back(&back).await;
    let intent = status_of(&w, &pi).await;
    assert_eq!(intent["status"], "requires_payment_method", "{intent}");
    let bank_charge = intent["latest_charge"].as_str().expect("a bank charge");
    assert_ne!(bank_charge, card_charge);
    let charge = w.api.get(&format!("/v1/charges/{bank_charge}")).await.json;
    assert_eq!(charge["status"], "failed", "{charge}");
    assert_eq!(charge["payment_method_details"]["type"], "pay_by_bank");
    let card = w.api.get(&format!("/v1/charges/{card_charge}")).await.json;
    assert_eq!(card["payment_method_details"]["type"], "card", "{card}");
    assert_eq!(card["status"], "failed");
}

#[tokio::test]
async fn a_checkout_clicked_twice_makes_one_bank_payment() {
    let w = World::new();
    let base = w.daemon.base();
    let r = w
        .api
        .post_form(
            "/v1/checkout/sessions",
            "mode=payment&success_url=https%3A%2F%2Flettings.example%2Fok\
             &line_items[0][price_data][currency]=gbp\
             &line_items[0][price_data][product_data][name]=Deposit\
             &line_items[0][price_data][unit_amount]=150000&line_items[0][quantity]=1\
             &payment_method_types[]=pay_by_bank",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let url = r.json["url"].as_str().expect("url").to_string();
    let (_, html) = get_page(&url).await;
    let (s1, first, _) = form(&html, "bank-hand-off").submit(&base).await;
    let (s2, second, _) = form(&html, "bank-hand-off").submit(&base).await;
    assert_eq!((s1, s2), (303, 303));
    assert_eq!(first, second, "the same bank payment carried on");
    // Over the limit: refused when the session is made.
    let r = w
        .api
        .post_form(
            "/v1/checkout/sessions",
            "mode=payment&success_url=https%3A%2F%2Flettings.example%2Fok\
             &line_items[0][price_data][currency]=gbp\
             &line_items[0][price_data][product_data][name]=Deposit\
             &line_items[0][price_data][unit_amount]=2000000&line_items[0][quantity]=1\
             &payment_method_types[]=pay_by_bank",
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.err("code"), "amount_too_large");
}

#[tokio::test]
async fn pay_by_bank_is_a_payment_method_type() {
    let w = World::new();
    let base = w.daemon.base();
    let cus = w.api.customer().await;
    let r = w
        .api
        .post_form(
            "/v1/payment_methods",
            &format!("type=pay_by_bank&customer={cus}&billing_details[name]=Jo+Tenant"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["type"], "pay_by_bank");
    assert!(r.json["pay_by_bank"].is_object(), "{}", r.text);
    assert!(r.json.get("card").is_none(), "{}", r.text);
    let pm = r.json["id"].as_str().expect("id").to_string();
    let r = w
        .api
        .post_form(
            "/v1/payment_intents",
            &format!(
                "amount=80000&currency=gbp&customer={cus}&payment_method={pm}\
                 &payment_method_types[]=pay_by_bank&confirm=true&return_url={RETURN_URL}"
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "requires_action");
    assert_eq!(r.json["payment_method"], pm.as_str());
    // Inline, the confirmation makes one.
    let (pi, page) = bank_intent(&w.api, 5_000).await;
    let intent = status_of(&w, &pi).await;
    let made = intent["payment_method"]
        .as_str()
        .expect("a payment method")
        .to_string();
    let m = w.api.get(&format!("/v1/payment_methods/{made}")).await;
    assert_eq!(m.json["type"], "pay_by_bank", "{}", m.text);
    let to_bank = choose(&base, &page, "calmony-instant").await;
    let back = decide(&base, &to_bank, "approve").await;
    come_back(&back).await;
    let charge_id = status_of(&w, &pi).await["latest_charge"]
        .as_str()
        .expect("charge")
        .to_string();
    let charge = w.api.get(&format!("/v1/charges/{charge_id}")).await.json;
    assert_eq!(charge["payment_method"], made.as_str(), "{charge}");
    // Unknown fields inside pay_by_bank are refused by name.
    let r = w
        .api
        .post_form(
            "/v1/payment_methods",
            "type=pay_by_bank&pay_by_bank[bank]=x",
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.err("param"), "pay_by_bank[bank]");
}

#[tokio::test]
async fn a_notification_that_is_not_the_banks_is_refused() {
    let w = World::new();
    let base = w.daemon.base();
    let client = reqwest::Client::new();
    let post = |path: &str, body: &str| {
        client
            .post(format!("{base}{path}"))
            .header("content-type", "application/jwt")
            .header(
                "x-fapi-interaction-id",
                "93bac548-d2de-4546-b106-880a5018460d",
            )
            .body(body.to_string())
            .send()
    };
    // Unsigned (alg none), garbage, and signed by a key that is not the bank's.
    let unsigned = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.";
    for body in [unsigned, "not-a-jwt", ""] {
        let r = post("/pay/bank/notifications/test/calmony-delayed", body)
            .await
            .expect("answer");
        assert_eq!(r.status().as_u16(), 400, "{body}");
        assert_eq!(
            r.headers()
                .get("x-fapi-interaction-id")
                .and_then(|v| v.to_str().ok()),
            Some("93bac548-d2de-4546-b106-880a5018460d")
        );
    }
    let r = post("/pay/bank/notifications/test/no-such-bank", "x")
        .await
        .expect("answer");
    assert_eq!(r.status().as_u16(), 404);
    let r = post("/pay/bank/notifications/sideways/calmony-delayed", "x")
        .await
        .expect("answer");
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn a_live_key_without_banks_is_refused_with_live_mode_not_configured() {
    let w = World::new();
    let live = w.daemon.api(&w.daemon.key("acme", "live"));
    let r = live
        .post_form(
            "/v1/payment_intents",
            &format!(
                "amount=5000&currency=gbp&payment_method_types[]=pay_by_bank&confirm=true\
                 &payment_method_data[type]=pay_by_bank&return_url={RETURN_URL}"
            ),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.err("code"), "live_mode_not_configured");
    let listed = live.get("/v1/payment_intents").await;
    assert_eq!(listed.json["data"].as_array().map(Vec::len), Some(0));
}

/// A checkout offering both rails, paid by bank; then a card form from the page the payer
/// opened before is paid too. The session keeps the bank payment and the card sale is voided
/// at the gateway (it used to stand, recorded nowhere: nothing to compare its xref with).
#[tokio::test]
async fn a_card_paid_from_a_stale_page_after_the_bank_paid_is_voided() {
    let w = World::new();
    let base = w.daemon.base();
    let (session, url) = deposit_checkout(&w, 150_000).await;
    let (status, html) = get_page(&url).await;
    assert_eq!(status, 200, "{html}");
    // The card page, opened first and left there.
    let (status, _, card_page) = form(&html, "checkout-hand-off").submit(&base).await;
    assert_eq!(status, 200, "{card_page}");
    let card_form = form(&card_page, "card-form");

    // Paid by bank in another tab.
    let (status, location, body) = form(&html, "bank-hand-off").submit(&base).await;
    assert_eq!(status, 303, "{body:.2000}");
    let to_bank = choose(
        &base,
        &location.expect("to the bank page"),
        "calmony-instant",
    )
    .await;
    let back = decide(&base, &to_bank, "approve").await;
    let _ = come_back(&back).await;
    assert!(session_paid(&w, &session).await, "the session was paid");

    // The stale card form is paid and its result comes back.
    let (status, _, result) = card_form
        .with("cardNumber", "4242424242424242")
        .with("cardExpiryMonth", "12")
        .with("cardExpiryYear", "2030")
        .with("cardCVV", "123")
        .with("cardholderName", "Jo Tenant")
        .submit(&base)
        .await;
    assert_eq!(status, 200, "{result}");
    let result = form(&result, "hosted-result");
    let xref = result.field("xref").expect("xref");
    let _ = result.submit(&base).await;

    let s = w.api.get(&format!("/v1/checkout/sessions/{session}")).await;
    assert_eq!(s.json["status"], "complete", "{}", s.text);
    let pi = s.json["payment_intent"].as_str().expect("intent");
    let kept = w.api.get(&format!("/v1/payment_intents/{pi}")).await;
    assert_eq!(
        kept.json["payment_method_types"][0], "pay_by_bank",
        "the bank payment is the one kept: {}",
        kept.text
    );
    let voided = crate::harness::ledger(&base, None)
        .await
        .into_iter()
        .filter(|e| e["action"] == "CANCEL" && (e["xref"] == xref || e["originalXref"] == xref))
        .count();
    assert_eq!(voided, 1, "the card sale is voided");
    assert!(w.daemon.logs().contains("a second payment arrived"));
}
