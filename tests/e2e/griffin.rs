//! Griffin's lower half end to end: the daemon's Griffin client against the built-in Griffin
//! sandbox over real HTTP (account by links, the ledger by pages, a payout created, found by
//! its reference, submitted and delivered), and request signatures when the sandbox wants
//! them.

use std::time::Duration;

use calmony_actors::gateway::griffin::{Griffin, GriffinClient, GriffinError};
use calmony_config::{Config, GriffinConfig, GriffinConnection};
use calmony_protocol::Mode;
use calmony_protocol::griffin::{Creditor, Direction, Money, NewPayment, SubmissionStatus};
use serde_json::{Value, json};

use crate::harness::{OPERATOR_TOKEN, World};

const CLIENT_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../config/sandbox/griffin/client-private.pem"
);
const CLIENT_PUBLIC_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../config/sandbox/griffin/client-public.pem"
);

/// Test mode's client as the daemon builds it, pointed at `base`'s sandbox.
fn client(base: &str, mut test: GriffinConnection) -> std::sync::Arc<GriffinClient> {
    if test.api_key.is_empty() {
        test.api_key = crate::harness::GRIFFIN_SANDBOX_KEY.to_owned();
    }
    let config = Config {
        public_url: base.to_owned(),
        griffin: GriffinConfig {
            test,
            ..GriffinConfig::default()
        },
        ..Config::default()
    };
    Griffin::from_config(&config)
        .expect("the Griffin sandbox")
        .client(Mode::Test)
        .expect("test mode has Griffin")
}

/// Credit the sandbox account as the Cardstream sandbox's settlement will.
async fn credit(base: &str, pence: i64, reference: &str) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{base}/sandbox/griffin/credit"))
        .bearer_auth(OPERATOR_TOKEN)
        .header("content-type", "application/json")
        .body(
            json!({
                "amount": pence, "reference": reference, "debtor-name": "Cardstream",
                "end-to-end-id": format!("E2E-{reference}"),
            })
            .to_string(),
        )
        .send()
        .await
        .expect("credit");
    assert_eq!(r.status().as_u16(), 201);
    serde_json::from_str(&r.text().await.unwrap_or_default()).unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_client_finds_the_account_by_links_and_pages_its_ledger_oldest_first() {
    let w = World::new();
    let base = w.daemon.base();
    let griffin = client(&base, GriffinConnection::default());
    let account = griffin.account().await.expect("account");
    assert_eq!(account.account_balance.pence(), Ok(100_000_000));
    credit(&base, 12_540, "CS-SETTLE-1").await;
    credit(&base, 99, "PBB-2").await;

    let mut seen = Vec::new();
    let mut page = griffin.transactions(None, None, 1).await.expect("page");
    loop {
        for t in &page.items.account_transactions {
            seen.push((
                t.reference.clone().unwrap_or_default(),
                t.balance_change_direction,
                t.account_balance.pence().expect("balance"),
            ));
        }
        let Some(next) = page.links.next.clone() else {
            break;
        };
        page = griffin
            .transactions(Some(&next), None, 1)
            .await
            .expect("next page");
    }
    assert_eq!(
        seen,
        [
            (String::new(), Direction::Credit, 100_000_000),
            ("CS-SETTLE-1".to_owned(), Direction::Credit, 100_012_540),
            ("PBB-2".to_owned(), Direction::Credit, 100_012_639),
        ]
    );
    assert_eq!(
        griffin
            .account()
            .await
            .expect("account")
            .account_balance
            .pence(),
        Ok(100_012_639)
    );
}

#[tokio::test]
async fn a_payout_is_found_by_its_reference_then_submitted_and_delivered_once() {
    let w = World::with(&[("CALMONY_SANDBOX_GRIFFIN_PAYMENT_DELAY_MS", "300")]);
    let griffin = client(&w.daemon.base(), GriffinConnection::default());
    let payout = NewPayment {
        payment_amount: Money::gbp(25_000),
        creditor: Creditor::uk("Acme Shop Ltd", "040004", "10000001"),
        payment_reference: Some("PO-e2e-0001".into()),
    };
    assert!(
        griffin
            .find_payments("PO-e2e-0001")
            .await
            .expect("search")
            .is_empty()
    );
    let payment = griffin.create_payment(&payout).await.expect("created");
    let found = griffin.find_payments("PO-e2e-0001").await.expect("search");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].payment_url, payment.payment_url);

    assert!(
        griffin
            .submissions(&payment)
            .await
            .expect("none yet")
            .is_empty()
    );
    let submission = griffin.submit(&payment).await.expect("submitted");
    let listed = griffin.submissions(&payment).await.expect("one");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].submission_url, submission.submission_url);
    assert_eq!(submission.submission_status, SubmissionStatus::Processing);
    let again = griffin.submit(&payment).await;
    assert!(
        matches!(again, Err(GriffinError::Refused { status: 409, .. })),
        "{again:?}"
    );
    let held = griffin.account().await.expect("account");
    assert_eq!(held.available_balance.pence(), Ok(100_000_000 - 25_000));

    tokio::time::sleep(Duration::from_millis(500)).await;
    let done = griffin
        .submission(&submission.submission_url)
        .await
        .expect("submission");
    assert_eq!(done.submission_status, SubmissionStatus::Delivered);
    let page = griffin.transactions(None, None, 50).await.expect("ledger");
    let debits: Vec<_> = page
        .items
        .account_transactions
        .iter()
        .filter(|t| t.balance_change_direction == Direction::Debit)
        .collect();
    assert_eq!(debits.len(), 1);
    assert_eq!(
        debits[0].payment_url.as_deref(),
        Some(payment.payment_url.as_str())
    );
    assert_eq!(debits[0].account_balance.pence(), Ok(100_000_000 - 25_000));
}

#[tokio::test]
async fn a_sandbox_that_wants_signatures_refuses_the_unsigned_client_and_takes_the_signed() {
    let w = World::with(&[(
        "CALMONY_SANDBOX_GRIFFIN_CLIENT_PUBLIC_KEY_PATH",
        CLIENT_PUBLIC_KEY,
    )]);
    let base = w.daemon.base();
    let unsigned = client(&base, GriffinConnection::default());
    let refused = unsigned.account().await;
    assert!(
        matches!(refused, Err(GriffinError::Refused { status: 401, .. })),
        "{refused:?}"
    );
    let signed = client(
        &base,
        GriffinConnection {
            signing_key_id: "calmony-sandbox-client".into(),
            signing_key_path: CLIENT_KEY.into(),
            ..GriffinConnection::default()
        },
    );
    let account = signed.account().await.expect("a signed client is served");
    let payment = signed
        .create_payment(&NewPayment {
            payment_amount: Money::gbp(100),
            creditor: Creditor::uk("Acme Shop Ltd", "040004", "10000001"),
            payment_reference: Some("PO-signed".into()),
        })
        .await
        .expect("a signed POST with its body is served");
    assert_eq!(payment.account_url, account.account_url);
}
