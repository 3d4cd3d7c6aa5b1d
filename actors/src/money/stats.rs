//! The dashboard's figures: per project, mode and hour, counters written in the same commit as
//! the payment, refund or decline they count, so the home page reads a month in one round trip
//! and never scans payments.
//!
//! `cp:{prj}:<mode>:stats:h:<YYYY-MM-DDTHH>` (a UTC hour) and `cp:{prj}:<mode>:stats:total` are
//! hashes: `gross:<currency>` (captured, minor units), `refunded:<currency>` (positive), and the
//! counts `succeeded`, `refunds`, `failed`. Only ever incremented. Hours, not days, because the
//! project's day is in its own time zone, which may change: a day is the sum of the UTC hours
//! that fall in it ([`local_days`]), so a zone whose offset is not whole hours is off by the
//! remainder at each end of the day.

use std::collections::BTreeMap;

use calmony_protocol::balance::TxnType;

use crate::store::{Scope, Store, StoreError, Tx};

/// The UTC hour of `at` (Unix seconds), as the key names it: `2026-12-06T23`.
pub fn hour(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|t| t.format("%Y-%m-%dT%H").to_string())
        .unwrap_or_else(|| "1970-01-01T00".into())
}

/// The hash of one UTC hour's figures.
pub fn hour_key(scope: &Scope, hour: &str) -> String {
    scope.key(&format!("stats:h:{hour}"))
}

/// The time zone named (IANA, `Europe/London`), if the system's tzdb knows it.
pub fn zone(name: &str) -> Option<jiff::tz::TimeZone> {
    if name.is_empty() || name.len() > 64 {
        return None;
    }
    jiff::tz::TimeZone::get(name).ok()
}

/// One of the project's days: its date there, and the UTC hours it is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDay {
    /// `YYYY-MM-DD` in the project's time zone.
    pub date: String,
    pub hours: Vec<String>,
}

/// The `days` days up to and including today in `tz` (oldest first), each with its UTC hours
/// (a day of a clock change has 23 or 25).
pub fn local_days(now: i64, tz: &jiff::tz::TimeZone, days: i64) -> Vec<LocalDay> {
    use jiff::ToSpan;
    let Ok(ts) = jiff::Timestamp::from_second(now) else {
        return Vec::new();
    };
    let today = ts.to_zoned(tz.clone()).date();
    let bounds = |d: jiff::civil::Date| -> Option<(i64, i64)> {
        let start = d.to_zoned(tz.clone()).ok()?.timestamp().as_second();
        let end = d
            .tomorrow()
            .ok()?
            .to_zoned(tz.clone())
            .ok()?
            .timestamp()
            .as_second();
        Some((start, end))
    };
    (0..days)
        .rev()
        .filter_map(|back| {
            let d = today.checked_sub(back.days()).ok()?;
            let (start, end) = bounds(d)?;
            let first = start.div_euclid(3600) * 3600;
            let hours = (first..end).step_by(3600).map(hour).collect();
            Some(LocalDay {
                date: d.to_string(),
                hours,
            })
        })
        .collect()
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
    tx.hincrby(&hour_key(scope, &hour(at)), field, by)
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

/// The totals and the project's `days` days up to and including today in `tz` (oldest
/// first), in one round trip.
pub async fn read(
    store: &Store,
    scope: &Scope,
    now: i64,
    tz: &jiff::tz::TimeZone,
    days: i64,
) -> Result<(Figures, Vec<(String, Figures)>), StoreError> {
    let days = local_days(now, tz, days);
    let mut pipe = redis::pipe();
    pipe.hgetall(total_key(scope));
    for d in &days {
        for h in &d.hours {
            pipe.hgetall(hour_key(scope, h));
        }
    }
    let mut c = store.conn();
    let answers: Vec<Vec<(String, i64)>> = store.run(pipe.query_async(&mut c)).await?;
    let mut it = answers.into_iter();
    let total = Figures::from_fields(&it.next().unwrap_or_default());
    let per_day = days
        .into_iter()
        .map(|d| {
            let fields: Vec<(String, i64)> = it.by_ref().take(d.hours.len()).flatten().collect();
            (d.date, Figures::from_fields(&fields))
        })
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
    fn hours_are_utc_and_days_are_the_project_s() {
        assert_eq!(hour(0), "1970-01-01T00");
        assert_eq!(hour(1_796_601_599), "2026-12-06T23");
        let utc = jiff::tz::TimeZone::UTC;
        let days = local_days(1_796_601_599, &utc, 2);
        assert_eq!(days.len(), 2);
        assert_eq!(days[1].date, "2026-12-06");
        assert_eq!(days[1].hours.len(), 24);
        assert_eq!(days[1].hours[0], "2026-12-06T00");
        let Some(london) = zone("Europe/London") else {
            panic!("the system's tzdb knows Europe/London");
        };
        // 2026-07-01 00:30 UTC is 01:30 on 1 July in London (BST): that day began at 23:00 UTC.
        let july = local_days(1_782_865_800, &london, 1);
        assert_eq!(july[0].date, "2026-07-01");
        assert_eq!(
            july[0].hours.first().map(String::as_str),
            Some("2026-06-30T23")
        );
        assert_eq!(
            july[0].hours.last().map(String::as_str),
            Some("2026-07-01T22")
        );
        // The clocks went forward on 29 March 2026: a day of 23 hours.
        let spring = local_days(1_774_785_600, &london, 1);
        assert_eq!(
            (spring[0].date.as_str(), spring[0].hours.len()),
            ("2026-03-29", 23)
        );
        assert!(zone("Mars/Olympus").is_none());
    }
}
