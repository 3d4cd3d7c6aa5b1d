//! Settlement end to end: a day of card and Pay by Bank payments, refunds before and after
//! the acquirer's settlement, the Cardstream sandbox's settlement runs crediting the Griffin
//! sandbox, and the daemon's balance, balance transactions and payouts reconciling to the
//! penny with the Griffin ledger; then the discrepancies the report must name.

use std::time::Duration;

use calmony_actors::gateway::griffin::Griffin;
use calmony_config::Config;
use calmony_protocol::Mode;
use serde_json::{Value, json};

use crate::harness::{OPERATOR_TOKEN, World, eventually, sandbox_post};
use crate::pay_by_bank::{bank_intent, choose, come_back, decide};

/// A cut-off six hours from now (`HH:MM` UTC), so everything a test does before it advances
/// the clock lands in today's batch.
pub(crate) fn cutoff_ahead() -> (String, i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let at = (now + 6 * 3600).rem_euclid(86_400);
    let text = format!("{:02}:{:02}", at / 3600, (at % 3600) / 60);
    let cutoff = calmony_protocol::settlement::Cutoff::parse(&text).expect("HH:MM");
    (text, cutoff.batch_day(now))
}

pub(crate) fn world(extra: &[(&str, &str)], cutoff: &str) -> World {
    let mut env = vec![
        ("CALMONY_CLOCK_CONTROLLABLE", "true"),
        ("CALMONY_SANDBOX_SETTLEMENT_TIME", cutoff),
        ("CALMONY_SETTLEMENT_POLL_SECONDS", "1"),
        ("CALMONY_SANDBOX_BANK_SETTLE_DELAY_MS", "200"),
    ];
    env.extend_from_slice(extra);
    World::with(&env)
}

pub(crate) fn batch_reference(day: i64) -> String {
    calmony_protocol::settlement::card_batch_reference("100001", day)
}

/// The Griffin sandbox's credits by reference, as its own API lists them.
async fn griffin_credits(base: &str) -> Vec<(String, i64)> {
    let mut config = Config {
        public_url: base.to_owned(),
        ..Config::default()
    };
    config.griffin.test.api_key = crate::harness::GRIFFIN_SANDBOX_KEY.to_owned();
    let client = Griffin::from_config(&config)
        .expect("Griffin")
        .client(Mode::Test)
        .expect("test Griffin");
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = client
            .transactions(next.as_deref(), None, 200)
            .await
            .expect("ledger");
        for t in &page.items.account_transactions {
            if t.balance_change_direction == calmony_protocol::griffin::Direction::Credit
                && let Some(r) = &t.reference
            {
                out.push((r.clone(), t.balance_change.pence().expect("pence")));
            }
        }
        match page.links.next {
            Some(n) if !page.items.account_transactions.is_empty() => next = Some(n),
            _ => break,
        }
    }
    out
}

/// The official `stripe` Python library reads the money view: what it printed.
fn stripe_python_reads(base: &str, key: &str) -> String {
    let python = std::env::var("CALMONY_STRIPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, stripe\n\
             stripe.api_key = sys.argv[2]\n\
             stripe.api_base = sys.argv[1]\n\
             b = stripe.Balance.retrieve()\n\
             txns = list(stripe.BalanceTransaction.list(limit=3).auto_paging_iter())\n\
             payouts = stripe.Payout.list(limit=10)\n\
             one = stripe.BalanceTransaction.retrieve(txns[0].id)\n\
             print(b.available[0].amount, b.pending[0].amount, len(txns), sum(t.net for t in txns),\n\
                   sorted(p.status for p in payouts.data), one.object)",
            base,
            key,
        ])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub(crate) async fn advance(w: &World, seconds: i64) {
    let (status, _, stderr) =
        w.daemon
            .cli(&["clock", "advance", "--seconds", &seconds.to_string()]);
    assert!(status.success(), "{stderr}");
    // The daemon's clock follower picks the offset up within a second or two.
    tokio::time::sleep(Duration::from_millis(2500)).await;
}

pub(crate) async fn settle(w: &World) {
    let r = sandbox_post(&w.daemon.base(), "/sandbox/settle", "").await;
    assert!(r["settled"].as_u64().is_some(), "{r}");
}

async fn refund(w: &World, pi: &str, amount: i64) -> Value {
    let r = w
        .api
        .post_form(
            "/v1/refunds",
            &format!("payment_intent={pi}&amount={amount}"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "succeeded", "{}", r.text);
    r.json
}

pub(crate) async fn card_payment(w: &World, number: &str, amount: i64) -> (String, Value) {
    let pm = w.api.card(number, 12, 2034, None).await;
    let r = w.api.pay(amount, &pm, "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "succeeded", "{}", r.text);
    let pi = r.json["id"].as_str().expect("id").to_owned();
    let ch = r.json["latest_charge"].as_str().expect("charge").to_owned();
    let charge = w.api.get(&format!("/v1/charges/{ch}")).await.json;
    (pi, charge)
}

async fn all(w: &World, path: &str) -> Vec<Value> {
    let r = w.api.get(&format!("{path}?limit=100")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["data"].as_array().cloned().unwrap_or_default()
}

pub(crate) async fn payouts_settled(w: &World, count: usize) -> bool {
    let list = all(w, "/v1/payouts").await;
    list.len() == count
        && list
            .iter()
            .all(|p| p["status"] == "paid" || p["status"] == "failed")
}

#[tokio::test]
async fn a_day_of_card_and_bank_payments_reconciles_to_the_penny() {
    let (cutoff, day1) = cutoff_ahead();
    let w = world(&[], &cutoff);
    let base = w.daemon.base();

    // Day 1: three card payments (Visa, Mastercard), a partial refund and a full refund
    // before settlement, and a deposit by bank.
    let (a, a_charge) = card_payment(&w, "4242424242424242", 12_000).await;
    let bt = a_charge["balance_transaction"]
        .as_str()
        .expect("a balance transaction");
    let txn = w
        .api
        .get(&format!("/v1/balance_transactions/{bt}"))
        .await
        .json;
    // 1.5 % + 20p by default.
    assert_eq!(
        (
            txn["amount"].as_i64(),
            txn["fee"].as_i64(),
            txn["net"].as_i64()
        ),
        (Some(12_000), Some(200), Some(11_800)),
        "{txn}"
    );
    assert_eq!(txn["status"], "pending");
    assert_eq!(txn["type"], "charge");
    assert_eq!(txn["source"], a_charge["id"]);
    let (b, _) = card_payment(&w, "5555555555554444", 3_550).await;
    let (c, _) = card_payment(&w, "4242424242424242", 1_999).await;
    let ra = refund(&w, &a, 2_000).await;
    refund(&w, &c, 1_999).await;
    let ra_txn = ra["balance_transaction"]
        .as_str()
        .expect("refund's balance transaction");
    let ra_txn = w
        .api
        .get(&format!("/v1/balance_transactions/{ra_txn}"))
        .await
        .json;
    // Before settlement the sale settles for less: the fee on £20 less comes back.
    assert_eq!(
        (ra_txn["amount"].as_i64(), ra_txn["fee"].as_i64()),
        (Some(-2_000), Some(-30)),
        "{ra_txn}"
    );

    let (pi, page) = bank_intent(&w.api, 245_000).await;
    let to_bank = choose(&base, &page, "calmony-instant").await;
    let back = decide(&base, &to_bank, "approve").await;
    come_back(&back).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            w.api.get(&format!("/v1/payment_intents/{pi}")).await.json["status"] == "succeeded"
        })
        .await
    );

    // A refund of part of the deposit, paid from the Griffin account to the payer.
    let r = w
        .api
        .post_form("/v1/refunds", &format!("payment_intent={pi}&amount=45000"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let bank_refund = r.json["id"].as_str().expect("refund").to_owned();
    assert!(
        eventually(Duration::from_secs(30), || async {
            w.api.get(&format!("/v1/refunds/{bank_refund}")).await.json["status"] == "succeeded"
        })
        .await,
        "{}",
        w.daemon.logs()
    );

    // The deposit is its own batch, closed at once and paid when its Faster Payment is seen;
    // the day's card takings are pending until the day's batch closes.
    assert!(eventually(Duration::from_secs(20), || payouts_settled(&w, 1)).await);
    let before = w.api.get("/v1/balance").await.json;
    assert_eq!(before["available"][0]["amount"], 0, "{before}");
    assert_eq!(before["pending"][0]["amount"], 9_830 + 3_477, "{before}");

    // The acquirer's evening run pays day 1's card takings to the Griffin account.
    settle(&w).await;
    // Past the cut-off and its grace: the day's batch closes into a payout, paid once its
    // credit is seen.
    advance(&w, 7 * 3600).await;
    assert!(
        eventually(Duration::from_secs(30), || payouts_settled(&w, 2)).await,
        "payouts: {:?}\n{}",
        all(&w, "/v1/payouts").await,
        w.daemon.logs()
    );

    // Day 2: a refund after settlement (REFUND_SALE) and a new payment, settled and closed.
    refund(&w, &b, 1_000).await;
    card_payment(&w, "4242424242424242", 4_000).await;
    settle(&w).await;
    advance(&w, 24 * 3600).await;
    assert!(
        eventually(Duration::from_secs(30), || payouts_settled(&w, 3)).await,
        "payouts: {:?}",
        all(&w, "/v1/payouts").await
    );

    let payouts = all(&w, "/v1/payouts").await;
    let mut by_reference: Vec<(String, i64, String)> = payouts
        .iter()
        .map(|p| {
            (
                p["statement_descriptor"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                p["amount"].as_i64().unwrap_or_default(),
                p["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    by_reference.sort();
    let bank_reference = crate::pay_by_bank::reference_of(&pi);
    let mut want = vec![
        (batch_reference(day1), 13_307, "paid".to_owned()),
        (
            batch_reference(day1 + 1),
            4_000 - 80 - 1_000,
            "paid".to_owned(),
        ),
        (bank_reference, 245_000, "paid".to_owned()),
    ];
    want.sort();
    assert_eq!(by_reference, want);

    // The Cardstream sandbox's own ledger, replayed: each sale's final captured amount less
    // the acquirer's fee, less the refunds after settlement, is what the card payouts hold.
    let mut captured: std::collections::BTreeMap<String, i64> = Default::default();
    let mut refunded_after = 0;
    for e in crate::harness::ledger(&base, None).await {
        let ok = e["responseCode"].as_u64() == Some(0) || e["responseCode"] == "0";
        let (xref, amount) = (
            e["xref"].as_str().unwrap_or_default().to_owned(),
            e["amount"].as_i64().unwrap_or_default(),
        );
        match e["action"].as_str() {
            Some("SALE" | "CAPTURE") if ok => {
                captured.insert(xref, amount);
            }
            Some("CANCEL") if ok => {
                captured.insert(xref, 0);
            }
            Some("REFUND_SALE") if ok => refunded_after += amount,
            _ => {}
        }
    }
    let fee = |a: i64| {
        if a > 0 {
            (a * 150 + 5_000) / 10_000 + 20
        } else {
            0
        }
    };
    let acquirer: i64 = captured.values().map(|a| a - fee(*a)).sum::<i64>() - refunded_after;
    assert_eq!(acquirer, 13_307 + 2_920, "{captured:?} {refunded_after}");

    // The Griffin ledger holds exactly those credits.
    let mut credits = griffin_credits(&base).await;
    credits.retain(|(r, _)| want.iter().any(|(w, _, _)| w == r));
    credits.sort();
    let mut credited: Vec<(String, i64)> = want.iter().map(|(r, a, _)| (r.clone(), *a)).collect();
    credited.sort();
    assert_eq!(credits, credited);

    // Every balance transaction has moved on, and the balance is all paid out.
    let txns = all(&w, "/v1/balance_transactions").await;
    assert!(txns.iter().all(|t| t["status"] == "available"), "{txns:?}");
    let sum = |kind: &str| -> i64 {
        txns.iter()
            .filter(|t| t["type"] == kind)
            .map(|t| t["net"].as_i64().unwrap_or_default())
            .sum()
    };
    // The bank refund came off the Griffin account, not the balance: a refund and a top-up.
    assert_eq!(sum("topup"), 45_000);
    assert_eq!(
        sum("charge") + sum("refund") + sum("topup"),
        13_307 + 2_920 + 245_000
    );
    assert_eq!(sum("payout"), -(13_307 + 2_920 + 245_000));
    let charges_only = all(&w, "/v1/balance_transactions").await;
    assert_eq!(
        w.api.get("/v1/balance_transactions?type=payout").await.json["data"]
            .as_array()
            .map(Vec::len),
        Some(3),
        "{charges_only:?}"
    );
    let after = w.api.get("/v1/balance").await.json;
    assert_eq!(after["available"][0]["amount"], 0, "{after}");
    assert_eq!(after["pending"][0]["amount"], 0, "{after}");

    // Events: the balance became available, and each payout was created and paid.
    let events = all(&w, "/v1/events").await;
    let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    assert_eq!((count("payout.created"), count("payout.paid")), (3, 3));
    assert!(count("balance.available") >= 2);

    // The report agrees: every batch matched, nothing unexpected.
    let (status, out, err) =
        w.daemon
            .cli(&["reconcile", "report", "--mode", "test", "--format", "json"]);
    assert!(status.success(), "{out}{err}");
    let report: Value = serde_json::from_str(&out).expect("JSON");
    let verdicts: Vec<&str> = report["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .map(|b| b["verdict"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(verdicts, vec!["matched"; 3], "{report}");
    assert_eq!(report["unexpected_credits"], json!([]));

    // The official Python library reads the same figures (paging through every transaction).
    let key = w.api.key.clone();
    let printed = tokio::task::spawn_blocking(move || stripe_python_reads(&base, &key))
        .await
        .expect("python");
    assert_eq!(
        printed,
        format!(
            "0 0 {} 0 ['paid', 'paid', 'paid'] balance_transaction",
            txns.len()
        )
    );
}

#[tokio::test]
async fn a_missing_credit_a_wrong_amount_and_a_stranger_are_each_reported() {
    let (cutoff, day1) = cutoff_ahead();
    let w = world(
        &[("CALMONY_SETTLEMENT_CARD_PAYOUT_DEADLINE_HOURS", "2")],
        &cutoff,
    );
    let base = w.daemon.base();

    // Day 1's batch: its credit never comes.
    card_payment(&w, "4242424242424242", 10_000).await;
    advance(&w, 7 * 3600).await;
    // Day 2's batch: credited a penny short, by hand, instead of by the acquirer's run.
    card_payment(&w, "4242424242424242", 5_000).await;
    let day2 = batch_reference(day1 + 1);
    let short = 5_000 - 95 - 1;
    let credit = |reference: String, amount: i64| {
        let base = base.clone();
        async move {
            let r = reqwest::Client::new()
                .post(format!("{base}/sandbox/griffin/credit"))
                .bearer_auth(OPERATOR_TOKEN)
                .header("content-type", "application/json")
                .body(
                    json!({"amount": amount, "reference": reference, "debtor-name": "Someone"})
                        .to_string(),
                )
                .send()
                .await
                .expect("credit");
            assert_eq!(r.status().as_u16(), 201);
        }
    };
    credit(day2.clone(), short).await;
    // A credit nobody expected.
    credit("MYSTERY-1".into(), 500).await;
    advance(&w, 24 * 3600).await;
    // Day 1's deadline has passed (2 hours after its close): its payout fails.
    assert!(
        eventually(Duration::from_secs(30), || async {
            all(&w, "/v1/payouts")
                .await
                .iter()
                .any(|p| p["status"] == "failed")
        })
        .await,
        "{:?}",
        all(&w, "/v1/payouts").await
    );
    advance(&w, 3 * 3600).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            all(&w, "/v1/payouts")
                .await
                .iter()
                .filter(|p| p["status"] == "failed")
                .count()
                == 2
        })
        .await,
        "{:?}",
        all(&w, "/v1/payouts").await
    );
    let payouts = all(&w, "/v1/payouts").await;
    let code = |reference: &str| {
        payouts
            .iter()
            .find(|p| p["statement_descriptor"] == reference)
            .map(|p| p["failure_code"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(
        code(&batch_reference(day1)).as_deref(),
        Some("credit_not_received")
    );
    assert_eq!(code(&day2).as_deref(), Some("amount_mismatch"));
    // A failed payout gives its amount back to the available balance.
    let balance = w.api.get("/v1/balance").await.json;
    assert_eq!(
        balance["available"][0]["amount"],
        9_830 + 4_905,
        "{balance}"
    );
    let events = all(&w, "/v1/events").await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "payout.failed")
            .count(),
        2
    );

    let (status, out, _) =
        w.daemon
            .cli(&["reconcile", "report", "--mode", "test", "--format", "json"]);
    assert!(!status.success(), "discrepancies exit non-zero: {out}");
    let report: Value = serde_json::from_str(&out).expect("JSON");
    let verdict = |reference: &str| {
        report["batches"]
            .as_array()
            .and_then(|b| b.iter().find(|b| b["reference"] == reference))
            .map(|b| b["verdict"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(
        verdict(&batch_reference(day1)).as_deref(),
        Some("missing_credit")
    );
    assert_eq!(verdict(&day2).as_deref(), Some("wrong_amount"));
    let strangers = report["unexpected_credits"].as_array().expect("list");
    assert_eq!(strangers.len(), 1, "{report}");
    assert_eq!(strangers[0]["reference"], "MYSTERY-1");
    assert_eq!(strangers[0]["amount"], 500);
    let (_, text, _) = w.daemon.cli(&["reconcile", "report", "--mode", "test"]);
    assert!(
        text.contains("missing_credit") && text.contains("MYSTERY-1"),
        "{text}"
    );

    // Only the operator's command turns the stranger into an adjustment, once.
    let project = report["batches"][0]["payouts"]
        .as_object()
        .and_then(|p| p.keys().next().cloned())
        .expect("the project's id");
    let url = strangers[0]["transaction_url"]
        .as_str()
        .expect("url")
        .to_owned();
    let adjust = |w: &World| {
        w.daemon.cli(&[
            "reconcile",
            "adjust",
            "--project",
            &project,
            "--mode",
            "test",
            "--amount",
            "500",
            "--reason",
            "Unexpected credit MYSTERY-1",
            "--credit",
            &url,
        ])
    };
    let (status, out, err) = adjust(&w);
    assert!(status.success(), "{out}{err}");
    let adj = w
        .api
        .get(&format!("/v1/balance_transactions/{}", out.trim()))
        .await
        .json;
    assert_eq!(
        (adj["type"].as_str(), adj["amount"].as_i64()),
        (Some("adjustment"), Some(500)),
        "{adj}"
    );
    let (status, _, _) = adjust(&w);
    assert!(!status.success(), "a credit is adjusted once");
    let (_, out, _) = w
        .daemon
        .cli(&["reconcile", "report", "--mode", "test", "--format", "json"]);
    let report: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(report["unexpected_credits"], json!([]));

    // Written off under an idempotency key: run twice (a timeout, say), adjusted once.
    let write_off = |w: &World| {
        w.daemon.cli(&[
            "reconcile",
            "adjust",
            "--project",
            "acme",
            "--mode",
            "test",
            "--amount",
            "-4904",
            "--reason",
            "Short batch",
            "--idempotency-key",
            "short-batch-1",
        ])
    };
    let (s1, first, e1) = write_off(&w);
    let (s2, second, _) = write_off(&w);
    assert!(s1.success() && s2.success(), "{e1}");
    assert_eq!(first, second);
    let adjustments = w
        .api
        .get("/v1/balance_transactions?type=adjustment")
        .await
        .json;
    assert_eq!(
        adjustments["data"].as_array().map(Vec::len),
        Some(2),
        "{adjustments}"
    );
    let (status, _, err) = w.daemon.cli(&[
        "reconcile",
        "adjust",
        "--project",
        "nobody",
        "--mode",
        "test",
        "--amount",
        "1",
        "--reason",
        "typo",
    ]);
    assert!(!status.success() && err.contains("no project"), "{err}");
}

#[tokio::test]
async fn the_money_views_refuse_what_they_do_not_take() {
    let (cutoff, _) = cutoff_ahead();
    let w = world(&[], &cutoff);
    for (path, param) in [
        ("/v1/balance?currency=gbp", "currency"),
        ("/v1/balance_transactions?type=sale", "type"),
        ("/v1/balance_transactions?payout=po_1", "payout"),
        ("/v1/payouts?status=paid", "status"),
        ("/v1/payouts?limit=0", "limit"),
    ] {
        let r = w.api.get(path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert_eq!(r.err("param"), param, "{path}: {}", r.text);
    }
    for path in ["/v1/balance_transactions/txn_nope", "/v1/payouts/po_nope"] {
        let r = w.api.get(path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
    }
    let empty = w.api.get("/v1/balance").await;
    assert_eq!(
        empty.json["available"],
        json!([{"amount": 0, "currency": "gbp", "source_types": {"card": 0}}])
    );
    assert_eq!(empty.json["livemode"], false);
}

async fn griffin_fault(base: &str, body: Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/sandbox/griffin/faults"))
        .bearer_auth(OPERATOR_TOKEN)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("faults");
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
}

async fn paid_by_bank(w: &World, amount: i64) -> String {
    let base = w.daemon.base();
    let (pi, page) = bank_intent(&w.api, amount).await;
    let to_bank = choose(&base, &page, "calmony-instant").await;
    let back = decide(&base, &to_bank, "approve").await;
    come_back(&back).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            w.api.get(&format!("/v1/payment_intents/{pi}")).await.json["status"] == "succeeded"
        })
        .await
    );
    pi
}

async fn report(w: &World) -> Value {
    let (_, out, err) =
        w.daemon
            .cli(&["reconcile", "report", "--mode", "test", "--format", "json"]);
    serde_json::from_str(&out).unwrap_or_else(|_| panic!("report: {out}{err}"))
}

fn batch_of<'a>(report: &'a Value, reference: &str) -> &'a Value {
    report["batches"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["reference"] == reference))
        .unwrap_or(&Value::Null)
}

/// Griffin delivers every event twice and the ledger is read only when a webhook says so: the
/// credit reaches reconciliation by the webhook and by the poller it wakes, and counts once.
#[tokio::test]
async fn a_credit_seen_by_webhook_and_poller_twice_over_counts_once() {
    let (cutoff, _) = cutoff_ahead();
    let w = world(&[("CALMONY_SETTLEMENT_POLL_SECONDS", "3600")], &cutoff);
    let base = w.daemon.base();
    griffin_fault(&base, json!({"duplicate-webhooks": true})).await;
    let pi = paid_by_bank(&w, 150_000).await;
    let reference = crate::pay_by_bank::reference_of(&pi);
    assert!(
        eventually(Duration::from_secs(30), || payouts_settled(&w, 1)).await,
        "{:?}\n{}",
        all(&w, "/v1/payouts").await,
        w.daemon.logs()
    );
    let payout = &all(&w, "/v1/payouts").await[0];
    assert_eq!(
        (payout["status"].as_str(), payout["amount"].as_i64()),
        (Some("paid"), Some(150_000))
    );
    // Some more passes: still counted once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = report(&w).await;
    let b = batch_of(&r, &reference);
    assert_eq!(
        (b["received"].as_i64(), b["verdict"].as_str()),
        (Some(150_000), Some("matched")),
        "{r}"
    );
    assert_eq!(b["payouts"].as_object().map(|p| p.len()), Some(1), "{r}");
    // The duplicates reached the receiver and were acknowledged and ignored.
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap_or_default();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("calmony_griffin_webhook_duplicates_total")
                && !l.trim_end().ends_with(" 0")
        ),
        "{metrics}"
    );
}

/// The money of a payment by bank can reach the account before the daemon has committed the
/// payment's success: the credit waits aside, then its batch counts it.
#[tokio::test]
async fn a_credit_that_comes_before_its_payments_success_is_counted_in_its_batch() {
    let (cutoff, _) = cutoff_ahead();
    let w = world(&[], &cutoff);
    let base = w.daemon.base();
    let (pi, page) = bank_intent(&w.api, 90_000).await;
    let reference = crate::pay_by_bank::reference_of(&pi);
    // The payer's money, early: nobody expects it yet.
    let r = reqwest::Client::new()
        .post(format!("{base}/sandbox/griffin/credit"))
        .bearer_auth(OPERATOR_TOKEN)
        .header("content-type", "application/json")
        .body(
            json!({"amount": 90_000, "reference": reference, "debtor-name": "Jane Payer"})
                .to_string(),
        )
        .send()
        .await
        .expect("credit");
    assert_eq!(r.status().as_u16(), 201);
    assert!(
        eventually(Duration::from_secs(10), || async {
            report(&w).await["unexpected_credits"]
                .as_array()
                .map(Vec::len)
                == Some(1)
        })
        .await
    );
    // The sandbox bank's own credit of the same payment is held back (it already came).
    griffin_fault(&base, json!({"hold-next-credit": true})).await;
    let to_bank = choose(&base, &page, "calmony-instant").await;
    let back = decide(&base, &to_bank, "approve").await;
    come_back(&back).await;
    assert!(
        eventually(Duration::from_secs(30), || payouts_settled(&w, 1)).await,
        "{:?}\n{}",
        all(&w, "/v1/payouts").await,
        w.daemon.logs()
    );
    let r = report(&w).await;
    assert_eq!(batch_of(&r, &reference)["verdict"], "matched", "{r}");
    assert_eq!(r["unexpected_credits"], json!([]), "{r}");
}
