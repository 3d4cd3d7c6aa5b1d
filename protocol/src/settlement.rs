//! Settlement arithmetic both sides of the card acquirer agree on: the fee taken from each
//! settled sale, and which daily batch a captured transaction settles in.
//!
//! The acquirer pays each day's card takings to the merchant's Griffin account as one
//! credit, net of its fees. The daemon predicts that credit from its own records and the
//! reconciliation compares the two to the penny, so the prediction and the (sandbox)
//! acquirer must use the same rules: they both call these functions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

const SECONDS_PER_DAY: i64 = 86_400;

/// One scheme's price: a percentage in basis points and a fixed amount in pence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeeRate {
    /// 150 is 1.5 %.
    pub percent_bps: u32,
    /// Pence per settled sale.
    pub fixed: i64,
}

impl FeeRate {
    /// The fee on a settled `amount` (pence): the percentage rounded half up, plus the fixed
    /// part; nothing on nothing (a sale cancelled before settlement costs nothing).
    pub fn fee(&self, amount: i64) -> i64 {
        if amount <= 0 {
            return 0;
        }
        let percent = (i128::from(amount) * i128::from(self.percent_bps) + 5_000) / 10_000;
        i64::try_from(percent).unwrap_or(i64::MAX) + self.fixed
    }
}

/// Card fees by scheme (`visa`, `mastercard`, `amex`, ... as a charge's `card.brand` names
/// it), with a default for the rest.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CardFees {
    pub default: FeeRate,
    pub by_scheme: BTreeMap<String, FeeRate>,
}

impl CardFees {
    pub fn rate(&self, scheme: &str) -> FeeRate {
        self.by_scheme
            .get(&scheme.to_ascii_lowercase())
            .copied()
            .unwrap_or(self.default)
    }

    pub fn fee(&self, scheme: &str, amount: i64) -> i64 {
        self.rate(scheme).fee(amount)
    }
}

/// The daily cut-off, `HH:MM` UTC: what was captured before it settles that day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoff {
    seconds_of_day: i64,
}

/// 22:00 UTC: card acquirers settle in the evening.
impl Default for Cutoff {
    fn default() -> Self {
        Self::new(22, 0)
    }
}

impl Cutoff {
    pub fn new(hour: u8, minute: u8) -> Self {
        Self {
            seconds_of_day: i64::from(hour % 24) * 3600 + i64::from(minute % 60) * 60,
        }
    }

    /// `HH:MM`; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let (h, m) = text.trim().split_once(':')?;
        let (h, m): (u8, u8) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then(|| Self::new(h, m))
    }

    /// The batch a transaction captured at `at` (Unix seconds) settles in: the day (days since
    /// the epoch) of the first cut-off after it.
    pub fn batch_day(&self, at: i64) -> i64 {
        let day = at.div_euclid(SECONDS_PER_DAY);
        if at.rem_euclid(SECONDS_PER_DAY) < self.seconds_of_day {
            day
        } else {
            day + 1
        }
    }

    /// When batch `day` closes (Unix seconds).
    pub fn closes_at(&self, day: i64) -> i64 {
        day * SECONDS_PER_DAY + self.seconds_of_day
    }
}

/// The reference the acquirer's credit for batch `day` carries: `CS`, the merchant id's last
/// eight characters and `YYYYMMDD`, at most 18 characters as Faster Payments allow.
pub fn card_batch_reference(merchant_id: &str, day: i64) -> String {
    let m: String = merchant_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let m = &m[m.len().saturating_sub(8)..];
    let (y, mo, d) = crate::billing::civil(day);
    format!("CS{m}{y:04}{mo:02}{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_round_half_up_and_cost_nothing_on_nothing() {
        let r = FeeRate {
            percent_bps: 150,
            fixed: 20,
        };
        for (amount, fee) in [
            (0, 0),
            (-5, 0),
            (100, 22),   // 1.5 -> 2
            (1_000, 35), // 15
            (1_033, 35), // 15.495 -> 15
            (1_034, 36), // 15.51 -> 16
            (200_000, 3_020),
        ] {
            assert_eq!(r.fee(amount), fee, "fee on {amount}");
        }
    }

    #[test]
    fn card_fees_by_scheme_with_a_default() {
        let mut fees = CardFees {
            default: FeeRate {
                percent_bps: 150,
                fixed: 20,
            },
            by_scheme: BTreeMap::new(),
        };
        fees.by_scheme.insert(
            "amex".into(),
            FeeRate {
                percent_bps: 250,
                fixed: 0,
            },
        );
        assert_eq!(fees.fee("Amex", 1_000), 25);
        assert_eq!(fees.fee("visa", 1_000), 35);
    }

    #[test]
    fn batches_close_at_the_cutoff() {
        let c = Cutoff::parse("22:00").expect("HH:MM");
        let day = 20_000;
        let at = |h: i64, m: i64| day * SECONDS_PER_DAY + h * 3600 + m * 60;
        for (t, batch) in [
            (at(0, 0), day),
            (at(21, 59), day),
            (at(22, 0), day + 1),
            (at(23, 59), day + 1),
        ] {
            assert_eq!(c.batch_day(t), batch);
        }
        assert_eq!(c.closes_at(day), at(22, 0));
        assert!(Cutoff::parse("24:00").is_none());
        assert!(Cutoff::parse("7").is_none());
    }

    #[test]
    fn batch_references_fit_faster_payments() {
        // 2026-12-06 is day 20_793.
        assert_eq!(card_batch_reference("100001", 20_793), "CS10000120261206");
        let long = card_batch_reference("AB-123456789012", 20_793);
        assert_eq!(long, "CS5678901220261206");
        assert!(long.len() <= 18);
    }
}
