//! The reconciliation report (`calmony-payd reconcile report`) and the operator's adjustment
//! (`calmony-payd reconcile adjust`): what the settlement account received against what each
//! batch expected, and the credits nobody expected.

use std::collections::BTreeMap;

use calmony_protocol::Mode;
use calmony_protocol::balance::TxnType;
use serde::Serialize;

use super::batches::Phase;
use super::follower::{FollowError, Follower, SeenCredit};
use super::keys;
use super::ledger::{self, NewEntry};
use crate::clock;
use crate::resource::to_json;
use crate::store::{Commit, Scope, Tx};

/// One batch as reconciled.
#[derive(Debug, Clone, Serialize)]
pub struct BatchLine {
    pub reference: String,
    pub kind: String,
    pub closes_at: i64,
    pub phase: String,
    pub expected: i64,
    pub received: i64,
    pub payouts: BTreeMap<String, String>,
    /// `matched`, `awaiting_credit`, `missing_credit`, `late_credit` (in full after the
    /// deadline failed the payouts), `wrong_amount`, `changed_after_close`,
    /// `net_debit` (refunds outweighed takings: nothing to pay out, the acquirer debits),
    /// `unverified` (paid when due in a mode without Griffin: nothing could confirm it).
    pub verdict: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: String,
    pub generated_at: i64,
    pub batches: Vec<BatchLine>,
    pub unexpected_credits: Vec<SeenCredit>,
    pub counts: BTreeMap<String, usize>,
}

/// The verdict on the batch under `reference`, read straight from the store (what the
/// dashboard shows beside a project's payout, without the other projects' figures).
pub async fn verdict_of(
    store: &crate::store::Store,
    mode: Mode,
    reference: &str,
) -> Result<Option<&'static str>, FollowError> {
    let (mut c, k) = (store.conn(), keys::batch(mode, reference));
    let fields: BTreeMap<String, String> = store
        .run(async move { redis::cmd("HGETALL").arg(k).query_async(&mut c).await })
        .await?;
    let Some(fig) = super::batches::Figures::from_fields(&fields) else {
        return Ok(None);
    };
    let key = keys::batch_state(mode, reference);
    let state: super::batches::BatchState = match store.get(&key).await? {
        Some(rec) => rec.parse(&key)?,
        None => Default::default(),
    };
    Ok(Some(verdict(
        state.phase,
        fig.expected,
        state.received,
        state.expected_at_close,
    )))
}

/// A batch's verdict from its figures and state (pure).
pub fn verdict(
    phase: Phase,
    expected: i64,
    received: i64,
    expected_at_close: Option<i64>,
) -> &'static str {
    if expected_at_close.is_some_and(|e| e != expected) {
        return "changed_after_close";
    }
    match phase {
        Phase::Paid if received == expected => "matched",
        Phase::Paid if expected <= 0 && received == 0 => "net_debit",
        // Paid with nothing seen: a mode without Griffin, on the acquirer's word.
        Phase::Paid if received == 0 => "unverified",
        Phase::Open | Phase::InTransit if received == 0 => "awaiting_credit",
        Phase::Failed if received == 0 => "missing_credit",
        // The credit came in full, but after the deadline had failed the payouts: the money
        // is on the account and the projects' balances, and an operator must pay it out.
        Phase::Failed if received == expected => "late_credit",
        _ if received != expected => "wrong_amount",
        _ => "matched",
    }
}

/// Reconcile the batches closing between `from` and `to` (Unix seconds) and every credit
/// nobody expected.
pub async fn build(f: &Follower, mode: Mode, from: i64, to: i64) -> Result<Report, FollowError> {
    let refs = f
        .scored(
            &keys::batches(mode),
            &(from * 1000).to_string(),
            &(to * 1000).to_string(),
        )
        .await?;
    let mut batches = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for reference in refs {
        let Some(fig) = f.figures(mode, &reference).await? else {
            continue;
        };
        let (state, _) = f.state(mode, &reference).await?;
        let v = verdict(
            state.phase,
            fig.expected,
            state.received,
            state.expected_at_close,
        );
        *counts.entry(v.to_owned()).or_default() += 1;
        batches.push(BatchLine {
            reference,
            kind: fig.kind.as_str().into(),
            closes_at: fig.closes_at,
            phase: state.phase.as_str().into(),
            expected: fig.expected,
            received: state.received,
            payouts: state.payouts,
            verdict: v.into(),
        });
    }
    let mut unexpected_credits = Vec::new();
    for url in f.scored(&keys::unexpected(mode), "-inf", "+inf").await? {
        let key = keys::credit(mode, &url);
        if let Some(rec) = f.store.get(&key).await? {
            let seen: SeenCredit = rec.parse(&key)?;
            if seen.adjusted.is_none() {
                unexpected_credits.push(seen);
            }
        }
    }
    counts.insert("unexpected_credit".into(), unexpected_credits.len());
    Ok(Report {
        mode: mode.as_str().into(),
        generated_at: clock::now(),
        batches,
        unexpected_credits,
        counts,
    })
}

fn pounds(pence: i64) -> String {
    let sign = if pence < 0 { "-" } else { "" };
    format!("{sign}£{}.{:02}", pence.abs() / 100, pence.abs() % 100)
}

/// The report for a terminal.
pub fn render_text(r: &Report) -> String {
    let mut out = format!("Reconciliation, {} mode\n\n", r.mode);
    out.push_str(&format!(
        "{:<20} {:<5} {:<11} {:>12} {:>12}  {}\n",
        "reference", "kind", "phase", "expected", "received", "verdict"
    ));
    for b in &r.batches {
        out.push_str(&format!(
            "{:<20} {:<5} {:<11} {:>12} {:>12}  {}\n",
            b.reference,
            b.kind,
            b.phase,
            pounds(b.expected),
            pounds(b.received),
            b.verdict
        ));
    }
    out.push_str("\nCredits nobody expected:\n");
    if r.unexpected_credits.is_empty() {
        out.push_str("  none\n");
    }
    for c in &r.unexpected_credits {
        out.push_str(&format!(
            "  {} {} reference {} ({})\n",
            c.processed_at,
            pounds(c.amount),
            c.reference.as_deref().unwrap_or("(none)"),
            c.transaction_url
        ));
    }
    out.push_str("\nCounts:");
    for (k, n) in &r.counts {
        out.push_str(&format!(" {k}={n}"));
    }
    out.push('\n');
    out
}

/// An operator's adjustment: an `adjustment` balance transaction of `amount` in `scope`,
/// and, when it accounts for an unexpected credit, that credit marked as adjusted in the same
/// commit (so it leaves the report, and cannot be adjusted twice). Under an `idempotency_key`
/// a command run again (after a timeout, say) answers the first one's transaction.
pub async fn adjust(
    f: &Follower,
    scope: &Scope,
    amount: i64,
    reason: &str,
    credit: Option<&str>,
    idempotency_key: Option<&str>,
) -> Result<String, FollowError> {
    let now = clock::now();
    let once = idempotency_key.map(|k| keys::adjustment(scope, k));
    if let Some(once) = &once
        && let Some(rec) = f.store.get(once).await?
    {
        return Ok(rec.parse::<serde_json::Value>(once)?["txn"]
            .as_str()
            .unwrap_or_default()
            .to_owned());
    }
    if crate::projects::merchant(&f.store, &scope.project)
        .await?
        .project_name
        .is_empty()
    {
        return Err(FollowError::Api(format!("no project {}", scope.project)));
    }
    let mut tx = Tx::new();
    if let Some(url) = credit {
        let key = keys::credit(scope.mode, url);
        let rec = f
            .store
            .get(&key)
            .await?
            .ok_or_else(|| FollowError::Api(format!("no credit {url} was seen")))?;
        let mut seen: SeenCredit = rec.parse(&key)?;
        if seen.batch.is_some() || seen.adjusted.is_some() {
            return Err(FollowError::Api(format!(
                "credit {url} is not an unexpected credit awaiting adjustment"
            )));
        }
        if seen.amount != amount {
            return Err(FollowError::Api(format!(
                "credit {url} is {} pence: an adjustment accounting for it must be the same",
                seen.amount
            )));
        }
        seen.adjusted = Some(reason.to_owned());
        tx.expect_version(&key, rec.version)
            .put(&key, rec.version + 1, &to_json(&seen)?);
    }
    let bt = ledger::write(
        &mut tx,
        scope,
        &NewEntry {
            kind: TxnType::Adjustment,
            amount,
            fee: 0,
            currency: "gbp",
            source: credit,
            description: Some(reason.to_owned()),
            created: now,
            batch: None,
            scheme: None,
        },
    )?;
    if let Some(once) = &once {
        tx.expect_version(once, 0).put(
            once,
            1,
            &serde_json::json!({"txn": bt.id, "amount": amount, "reason": reason}).to_string(),
        );
    }
    match f.store.commit(&tx).await? {
        Commit::Done(_) => Ok(bt.id),
        _ => Err(FollowError::Api(
            "the credit or the idempotency key changed meanwhile; run it again".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        for (phase, expected, received, at_close, want) in [
            (Phase::Paid, 500, 500, Some(500), "matched"),
            (Phase::InTransit, 500, 0, Some(500), "awaiting_credit"),
            (Phase::Open, 500, 0, None, "awaiting_credit"),
            (Phase::Failed, 500, 0, Some(500), "missing_credit"),
            (Phase::Failed, 500, 499, Some(500), "wrong_amount"),
            (Phase::Failed, 500, 500, Some(500), "late_credit"),
            (Phase::InTransit, 500, 501, Some(500), "wrong_amount"),
            (Phase::Paid, 600, 500, Some(500), "changed_after_close"),
            (Phase::Paid, -700, 0, Some(-700), "net_debit"),
            (Phase::Paid, 700, 0, Some(700), "unverified"),
        ] {
            assert_eq!(verdict(phase, expected, received, at_close), want);
        }
        assert_eq!(pounds(-1_234), "-£12.34");
    }
}
