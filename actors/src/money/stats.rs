//! The dashboard's figures: per project, mode and day, counters written in the same commit as
//! the payment, refund or decline they count, so the home page reads a month in one round trip
//! and never scans payments.
//!
//! `cp:{prj}:<mode>:stats:<YYYY-MM-DD>` (UTC day) and `cp:{prj}:<mode>:stats:total` are hashes:
//! `gross:<currency>` (captured, minor units), `refunded:<currency>` (positive), and the counts
//! `succeeded`, `refunds`, `failed`. Only ever incremented.

use std::collections::BTreeMap;

use calmony_protocol::balance::TxnType;

use crate::store::{Scope, Store, StoreError, Tx};

/// The UTC day of `at` (Unix seconds), as the key names it.
pub fn day(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|t| t.date_naive().format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".into())
}

/// The hash of one day's figures.
pub fn day_key(scope: &Scope, day: &str) -> String {
    scope.key(&format!("stats:{day}"))
}

/// The hash of the figures since the project began.
pub fn total_key(scope: &Scope) -> String {
    scope.key("stats:total")
}

/// The increments a balance transaction of `kind` and `amount` makes: `(field, by)`.
/// Pure: the table test below pins what each kind counts.
pub fn increments(kind: TxnType, amount: i64, currency: &str) -> Vec<(String, i64)> {
    let cur = currency.to_ascii_lowercase();
    match kind {
        TxnType::Charge => vec![(format!("gross:{cur}"), amount), ("succeeded".into(), 1)],
        TxnType::Refund => vec![(format!("refunded:{cur}"), -amount), ("refunds".into(), 1)],
        _ => Vec::new(),
    }
}

fn add(tx: &mut Tx, scope: &Scope, at: i64, field: &str, by: i64) {
    tx.hincrby(&day_key(scope, &day(at)), field, by)
        .hincrby(&total_key(scope), field, by);
}

/// Count a balance transaction (called by `ledger::write`, in its commit).
pub fn entry(tx: &mut Tx, scope: &Scope, at: i64, kind: TxnType, amount: i64, currency: &str) {
    for (field, by) in increments(kind, amount, currency) {
        add(tx, scope, at, &field, by);
    }
}

/// Count a failed payment attempt, in the commit that records it.
pub fn failed(tx: &mut Tx, scope: &Scope, at: i64) {
    add(tx, scope, at, "failed", 1);
}

/// One hash of figures as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// Captured, by currency.
    pub gross: BTreeMap<String, i64>,
    /// Refunded (positive), by currency.
    pub refunded: BTreeMap<String, i64>,
    pub succeeded: i64,
    pub refunds: i64,
    pub failed: i64,
}

impl Figures {
    /// The figures a hash's fields say; unknown fields are ignored.
    pub fn from_fields(fields: &[(String, i64)]) -> Self {
        let mut f = Figures::default();
        for (k, v) in fields {
            match k.split_once(':') {
                Some(("gross", c)) => *f.gross.entry(c.into()).or_default() += v,
                Some(("refunded", c)) => *f.refunded.entry(c.into()).or_default() += v,
                _ => match k.as_str() {
                    "succeeded" => f.succeeded += v,
                    "refunds" => f.refunds += v,
                    "failed" => f.failed += v,
                    _ => {}
                },
            }
        }
        f
    }

    /// Gross less refunds, in `currency`.
    pub fn net(&self, currency: &str) -> i64 {
        self.gross.get(currency).copied().unwrap_or(0)
            - self.refunded.get(currency).copied().unwrap_or(0)
    }

    /// The currencies with any money moved, `gbp` first when there is none.
    pub fn currencies(&self) -> Vec<String> {
        let mut c: Vec<String> = self
            .gross
            .keys()
            .chain(self.refunded.keys())
            .cloned()
            .collect();
        c.sort();
        c.dedup();
        if c.is_empty() {
            c.push("gbp".into());
        }
        c
    }
}

/// The totals and the `days` days up to and including `today` (oldest first), in one round
/// trip.
pub async fn read(
    store: &Store,
    scope: &Scope,
    today: i64,
    days: i64,
) -> Result<(Figures, Vec<(String, Figures)>), StoreError> {
    let names: Vec<String> = (0..days)
        .rev()
        .map(|back| day(today - back * 86_400))
        .collect();
    let mut pipe = redis::pipe();
    pipe.hgetall(total_key(scope));
    for d in &names {
        pipe.hgetall(day_key(scope, d));
    }
    let mut c = store.conn();
    let answers: Vec<Vec<(String, i64)>> = store.run(pipe.query_async(&mut c)).await?;
    let mut it = answers.into_iter();
    let total = Figures::from_fields(&it.next().unwrap_or_default());
    let per_day = names
        .into_iter()
        .zip(it.chain(std::iter::repeat_with(Vec::new)))
        .map(|(d, f)| (d, Figures::from_fields(&f)))
        .collect();
    Ok((total, per_day))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_and_refunds_count_and_other_entries_do_not() {
        for (kind, amount, want) in [
            (
                TxnType::Charge,
                1500,
                vec![("gross:gbp".to_string(), 1500), ("succeeded".into(), 1)],
            ),
            (
                TxnType::Refund,
                -500,
                vec![("refunded:gbp".to_string(), 500), ("refunds".into(), 1)],
            ),
            (TxnType::Payout, -1000, vec![]),
            (TxnType::Adjustment, 10, vec![]),
        ] {
            assert_eq!(increments(kind, amount, "GBP"), want, "{kind:?}");
        }
    }

    #[test]
    fn figures_read_back_with_net_by_currency() {
        let f = Figures::from_fields(&[
            ("gross:gbp".into(), 3000),
            ("refunded:gbp".into(), 500),
            ("succeeded".into(), 2),
            ("refunds".into(), 1),
            ("failed".into(), 4),
            ("junk".into(), 9),
        ]);
        assert_eq!(f.net("gbp"), 2500);
        assert_eq!((f.succeeded, f.refunds, f.failed), (2, 1, 4));
        assert_eq!(f.currencies(), vec!["gbp".to_string()]);
        assert_eq!(Figures::default().currencies(), vec!["gbp".to_string()]);
    }

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(day(0), "1970-01-01");
        assert_eq!(day(1_796_601_599), "2026-12-06");
        assert_eq!(day(1_796_601_600), "2026-12-07");
    }
}
