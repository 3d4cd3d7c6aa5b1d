//! Refunds of Pay by Bank payments, paid from the merchant's Griffin account to the payer's:
//! a bank payment made through the sandbox bank over HTTP, refunded through the API, and the
//! Griffin sandbox's ledger and payments as the proof of "paid back once, to the payer".

use std::sync::Arc;
use std::time::Duration;

use calmony_actors::gateway::griffin::{Griffin, GriffinClient};
use calmony_protocol::Mode;
use calmony_protocol::griffin::{Creditor, Direction, Money, NewPayment, PaymentDirection};
use serde_json::Value;

use crate::harness::{Api, Daemon, Redis, World, eventually, form, get_page};
use crate::pay_by_bank::{bank_intent, choose, come_back};

/// The sandbox bank's payer accounts (see `sandbox/src/bank/ctx.rs`): the first, and the
/// one whose refunds fail at the scheme.
const JANE: usize = 0;
const CLOSED: usize = 3;

/// The Griffin payments are quick here, so a refund finishes within a test.
const FAST_GRIFFIN: (&str, &str) = ("CALMONY_SANDBOX_GRIFFIN_PAYMENT_DELAY_MS", "300");

/// The test-mode Griffin client the daemon uses, pointed at `base`'s sandbox.
fn griffin(base: &str) -> Arc<GriffinClient> {
    let mut config = calmony_config::Config {
        public_url: base.to_owned(),
        ..calmony_config::Config::default()
    };
    config.griffin.test.api_key = crate::harness::GRIFFIN_SANDBOX_KEY.to_owned();
    Griffin::from_config(&config)
        .expect("the Griffin sandbox")
        .client(Mode::Test)
        .expect("test mode has Griffin")
}

/// The reference the daemon gives a refund's Griffin payment (see
/// `bank_refund_plan::reference_for`).
fn reference_of(refund: &str) -> String {
    let alnum: Vec<char> = refund.chars().filter(char::is_ascii_alphanumeric).collect();
    let tail: String = alnum[alnum.len().saturating_sub(16)..].iter().collect();
    format!("RF{}", tail.to_ascii_uppercase())
}

/// The debits on the Griffin sandbox ledger under `reference`, in pence.
async fn debits(g: &GriffinClient, reference: &str) -> Vec<i64> {
    let mut out = Vec::new();
    let mut page = g.transactions(None, None, 200).await.expect("ledger");
    loop {
        for t in &page.items.account_transactions {
            if t.balance_change_direction == Direction::Debit
                && t.reference.as_deref() == Some(reference)
            {
                out.push(t.balance_change.pence().expect("pence").abs());
            }
        }
        let Some(next) = page.links.next.clone() else {
            break;
        };
        page = g.transactions(Some(&next), None, 200).await.expect("page");
    }
    out
}

/// The outbound Griffin payments carrying exactly `reference`: what was sent, and to whom.
async fn payments_to(g: &GriffinClient, reference: &str) -> Vec<Option<Creditor>> {
    g.find_payments(reference)
        .await
        .expect("search")
        .into_iter()
        .filter(|p| {
            p.payment_direction == PaymentDirection::OutboundPayment
                && p.payment_reference.as_deref() == Some(reference)
        })
        .map(|p| p.creditor)
        .collect()
}

/// A succeeded bank payment of `amount`, paid from sandbox payer account `account`.
async fn paid_by_bank(api: &Api, base: &str, amount: i64, account: usize) -> String {
    let (pi, page) = bank_intent(api, amount).await;
    let to_bank = choose(base, &page, "calmony-instant").await;
    let (status, html) = get_page(&to_bank).await;
    assert_eq!(status, 200, "{html}");
    let mut at_bank = form(&html, "authorise");
    at_bank
        .fields
        .retain(|(k, _)| k != "decision" && k != "account");
    let (status, location, body) = at_bank
        .with("account", &account.to_string())
        .with("decision", "approve")
        .submit(base)
        .await;
    assert!(status == 302 || status == 303, "{status}: {body}");
    come_back(&location.expect("back to the daemon")).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            api.get(&format!("/v1/payment_intents/{pi}")).await.json["status"] == "succeeded"
        })
        .await,
        "paid: {}",
        api.get(&format!("/v1/payment_intents/{pi}")).await.text
    );
    pi
}

async fn refund_settles(api: &Api, refund: &str, status: &str) -> Value {
    let settled = eventually(Duration::from_secs(60), || async {
        api.get(&format!("/v1/refunds/{refund}")).await.json["status"] == status
    })
    .await;
    let now = api.get(&format!("/v1/refunds/{refund}")).await.json;
    assert!(settled, "{refund} never {status}: {now}");
    now
}

/// The types of the events about `object` (newest first).
async fn events_about(api: &Api, object: &str) -> Vec<String> {
    let r = api.get("/v1/events?limit=100").await;
    r.json["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["data"]["object"]["id"] == object)
        .map(|e| e["type"].as_str().unwrap_or("").to_string())
        .collect()
}

fn charge_of(intent: &Value) -> String {
    intent["latest_charge"]
        .as_str()
        .expect("a charge")
        .to_string()
}

#[tokio::test]
async fn a_partial_then_a_full_refund_are_paid_to_the_payer_once_each() {
    let w = World::with(&[FAST_GRIFFIN]);
    let base = w.daemon.base();
    let g = griffin(&base);
    let pi = paid_by_bank(&w.api, &base, 100_000, JANE).await;
    let intent = w.api.get(&format!("/v1/payment_intents/{pi}")).await.json;
    let charge = charge_of(&intent);

    // Partial: answered pending at once, the charge counting it.
    let body = format!("payment_intent={pi}&amount=30000");
    let r = w.api.post_idem("/v1/refunds", &body, "bank-refund-1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The same request again is the same refund, not a second one.
    let again = w.api.post_idem("/v1/refunds", &body, "bank-refund-1").await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json["id"], r.json["id"], "{}", again.text);
    assert_eq!(r.json["status"], "pending", "{}", r.text);
    assert_eq!(r.json["amount"], 30_000);
    assert_eq!(r.json["charge"], charge.as_str());
    let partial = r.json["id"].as_str().expect("id").to_string();
    let ch = w.api.get(&format!("/v1/charges/{charge}")).await.json;
    assert_eq!(ch["amount_refunded"], 30_000, "{ch}");
    assert_eq!(ch["refunded"], false, "{ch}");

    // More than is left is refused, and changes nothing.
    let r = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}&amount=70001"))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.err("code"), "amount_too_large");
    assert_eq!(r.err("param"), "amount");

    let done = refund_settles(&w.api, &partial, "succeeded").await;
    assert_eq!(done["failure_reason"], Value::Null, "{done}");
    // Its balance transactions: the refund, and the top-up from the Griffin account that paid
    // it (the money never came from the balance here).
    let bt = done["balance_transaction"]
        .as_str()
        .expect("a balance transaction");
    let bt = w
        .api
        .get(&format!("/v1/balance_transactions/{bt}"))
        .await
        .json;
    assert_eq!(
        (bt["type"].as_str(), bt["amount"].as_i64()),
        (Some("refund"), Some(-30_000)),
        "{bt}"
    );
    let topups = w.api.get("/v1/balance_transactions?type=topup").await.json;
    assert_eq!(topups["data"][0]["amount"], 30_000, "{topups}");
    assert_eq!(topups["data"][0]["source"], partial.as_str(), "{topups}");
    let reference = reference_of(&partial);
    assert_eq!(debits(&g, &reference).await, vec![30_000]);
    assert_eq!(
        payments_to(&g, &reference).await,
        vec![Some(Creditor::uk("Jane Payer", "200045", "12345678"))],
        "paid to the payer's account, once"
    );

    // The rest, by charge and without an amount.
    let r = w
        .api
        .post_form("/v1/refunds", &format!("charge={charge}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["amount"], 70_000, "{}", r.text);
    let rest = r.json["id"].as_str().expect("id").to_string();
    refund_settles(&w.api, &rest, "succeeded").await;
    assert_eq!(debits(&g, &reference_of(&rest)).await, vec![70_000]);
    let ch = w.api.get(&format!("/v1/charges/{charge}")).await.json;
    assert_eq!(ch["amount_refunded"], 100_000, "{ch}");
    assert_eq!(ch["refunded"], true, "{ch}");
    // Nothing is left to refund.
    let r = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}"))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.err("code"), "charge_already_refunded");
    // Still paid once each, however often the ledger is read.
    assert_eq!(debits(&g, &reference).await, vec![30_000]);

    for refund in [&partial, &rest] {
        let types = events_about(&w.api, refund).await;
        for t in ["refund.created", "refund.updated", "charge.refund.updated"] {
            assert!(types.iter().any(|x| x == t), "{t} in {types:?}");
        }
        assert!(!types.iter().any(|x| x == "refund.failed"), "{types:?}");
    }
    let charge_events = events_about(&w.api, &charge).await;
    assert_eq!(
        charge_events
            .iter()
            .filter(|t| *t == "charge.refunded")
            .count(),
        2,
        "{charge_events:?}"
    );
    let listed = w.api.get(&format!("/v1/refunds?payment_intent={pi}")).await;
    assert_eq!(
        listed.json["data"].as_array().map(Vec::len),
        Some(2),
        "{}",
        listed.text
    );
}

#[tokio::test]
async fn a_refund_the_payers_bank_refuses_fails_and_gives_the_amount_back() {
    let w = World::with(&[FAST_GRIFFIN]);
    let base = w.daemon.base();
    let g = griffin(&base);
    let before = g
        .account()
        .await
        .expect("account")
        .account_balance
        .pence()
        .expect("pence");
    let pi = paid_by_bank(&w.api, &base, 45_000, CLOSED).await;
    let charge = charge_of(&w.api.get(&format!("/v1/payment_intents/{pi}")).await.json);
    let r = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "pending");
    let refund = r.json["id"].as_str().expect("id").to_string();
    let ch = w.api.get(&format!("/v1/charges/{charge}")).await.json;
    assert_eq!(ch["amount_refunded"], 45_000, "{ch}");
    assert_eq!(ch["refunded"], true, "{ch}");

    let failed = refund_settles(&w.api, &refund, "failed").await;
    assert_eq!(failed["failure_reason"], "declined", "{failed}");
    let ch = w.api.get(&format!("/v1/charges/{charge}")).await.json;
    assert_eq!(ch["amount_refunded"], 0, "given back: {ch}");
    assert_eq!(ch["refunded"], false, "{ch}");
    let types = events_about(&w.api, &refund).await;
    for t in [
        "refund.created",
        "refund.updated",
        "charge.refund.updated",
        "refund.failed",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} in {types:?}");
    }
    // The Faster Payment was sent and failed: nothing left the account.
    let reference = reference_of(&refund);
    assert_eq!(payments_to(&g, &reference).await.len(), 1);
    assert_eq!(debits(&g, &reference).await, Vec::<i64>::new());
    let after = g.account().await.expect("account");
    assert_eq!(
        after.account_balance.pence(),
        Ok(before + 45_000),
        "the payment in, no refund out"
    );
    assert_eq!(after.available_balance.pence(), Ok(before + 45_000));
    // What was given back can be refunded again.
    let r = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}&amount=45000"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_refund_the_account_cannot_cover_waits_pending_until_money_arrives() {
    let w = World::with(&[FAST_GRIFFIN]);
    let base = w.daemon.base();
    let g = griffin(&base);
    let pi = paid_by_bank(&w.api, &base, 50_000, JANE).await;
    // The merchant pays nearly everything out: £1 is left.
    let available = g
        .account()
        .await
        .expect("account")
        .available_balance
        .pence()
        .expect("pence");
    let payout = g
        .create_payment(&NewPayment {
            payment_amount: Money::gbp(available - 100),
            creditor: Creditor::uk("Supplier Ltd", "040004", "10000001"),
            payment_reference: Some("PAYOUT-1".into()),
        })
        .await
        .expect("payout");
    g.submit(&payout).await.expect("submitted");
    assert!(
        eventually(Duration::from_secs(10), || async {
            g.account().await.expect("account").account_balance.pence() == Ok(100)
        })
        .await
    );
    let r = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let refund = r.json["id"].as_str().expect("id").to_string();
    // Griffin refuses the submission (422): the refund waits, pending, nothing paid.
    assert!(
        eventually(Duration::from_secs(15), || async {
            w.daemon
                .logs()
                .contains("the Griffin account cannot cover the refund yet")
        })
        .await,
        "{}",
        w.daemon.logs()
    );
    let now = w.api.get(&format!("/v1/refunds/{refund}")).await.json;
    assert_eq!(now["status"], "pending", "{now}");
    let reference = reference_of(&refund);
    assert_eq!(debits(&g, &reference).await, Vec::<i64>::new());
    // A settlement arrives: the refund goes out, once.
    let credited = reqwest::Client::new()
        .post(format!("{base}/sandbox/griffin/credit"))
        .bearer_auth(crate::harness::OPERATOR_TOKEN)
        .header("content-type", "application/json")
        .body(
            serde_json::json!({
                "amount": 100_000, "reference": "CS-SETTLE-9", "debtor-name": "Cardstream",
            })
            .to_string(),
        )
        .send()
        .await
        .expect("credit");
    assert_eq!(credited.status().as_u16(), 201);
    refund_settles(&w.api, &refund, "succeeded").await;
    assert_eq!(debits(&g, &reference).await, vec![50_000]);
    assert_eq!(payments_to(&g, &reference).await.len(), 1);
}

/// SIGKILL before and after each step of a refund at Griffin (create, submit), a restart,
/// and the counts: every refund succeeds, paid once. (A short gateway timeout makes the dead
/// daemon's refund lease expire sooner.)
#[tokio::test]
async fn kill_at_every_refund_step_loses_nothing_and_pays_once() {
    let redis = Redis::start();
    let (mut lost, mut doubled) = (0, 0);
    for point in [
        "bank_refund_before_create",
        "bank_refund_after_create",
        "bank_refund_before_submit",
        "bank_refund_after_submit",
    ] {
        let mut daemon = Daemon::start_with(
            &redis.url(),
            &[
                ("CALMONY_TEST_KILL_AT", point),
                ("CALMONY_GATEWAY_TIMEOUT_SECONDS", "3"),
                FAST_GRIFFIN,
            ],
        );
        let key = daemon.key("acme", "test");
        let api = daemon.api(&key);
        let base = daemon.base();
        let g = griffin(&base);
        let pi = paid_by_bank(&api, &base, 61_000, JANE).await;
        // The request commits the refund and answers (unless the tracker's step, which dies,
        // comes first); the refund is found by its payment after the restart.
        let answered = reqwest::Client::new()
            .post(format!("{base}/v1/refunds"))
            .bearer_auth(&key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("payment_intent={pi}"))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        if let Ok(r) = answered {
            assert_eq!(r.status().as_u16(), 200, "{point}");
        }
        daemon.wait_exit(Duration::from_secs(20));
        daemon.restart_without("CALMONY_TEST_KILL_AT");
        let listed = api.get(&format!("/v1/refunds?payment_intent={pi}")).await;
        let refunds = listed.json["data"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            refunds.len(),
            1,
            "{point}: committed before the crash: {}",
            listed.text
        );
        let refund = refunds[0]["id"].as_str().expect("id").to_string();
        let succeeded = eventually(Duration::from_secs(60), || async {
            api.get(&format!("/v1/refunds/{refund}")).await.json["status"] == "succeeded"
        })
        .await;
        if !succeeded {
            lost += 1;
        }
        let reference = reference_of(&refund);
        let paid = debits(&g, &reference).await;
        let made = payments_to(&g, &reference).await.len();
        println!("kill point {point}: succeeded={succeeded}, debits={paid:?}, payments={made}");
        if paid.len() > 1 || made > 1 {
            doubled += 1;
        }
        assert_eq!(paid, vec![61_000], "{point}");
        assert_eq!(made, 1, "{point}");
        assert!(succeeded, "{point}");
        daemon.kill9();
    }
    println!("bank refund kill drill: 4 kill points, {lost} lost, {doubled} paid twice");
    assert_eq!((lost, doubled), (0, 0));
}
