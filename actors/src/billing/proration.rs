//! Proration: when a subscription's items change mid-period, the customer is credited the
//! unused time of the old items and charged the remaining time of the new ones, as pending
//! invoice items its next invoice takes (or an invoice made at once, with
//! `proration_behavior=always_invoice`). Each share is the item's amount times the remaining
//! fraction of the period, rounded half away from zero, so a credit and a charge of the same
//! amount cancel exactly.

use super::status::SubscriptionStatus;

/// `proration_behavior` of a subscription update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProrationBehavior {
    /// Pending items for the next invoice (the default).
    CreateProrations,
    /// No prorations: the new items bill from the next period.
    None,
    /// Prorations invoiced and charged at once.
    AlwaysInvoice,
}

impl ProrationBehavior {
    pub const NAMES: [&'static str; 3] = ["create_prorations", "none", "always_invoice"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "create_prorations" => Some(Self::CreateProrations),
            "none" => Some(Self::None),
            "always_invoice" => Some(Self::AlwaysInvoice),
            _ => None,
        }
    }
}

/// What an item change does about proration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProrationPlan {
    /// Nothing is prorated (asked not to, or still in the trial, which bills nothing).
    Skip,
    /// Pending items for the next invoice.
    Pending,
    /// Pending items, invoiced and charged at once.
    InvoiceNow,
}

/// The plan for an item change under `behavior` to a subscription in `status`.
pub fn plan(behavior: ProrationBehavior, status: SubscriptionStatus) -> ProrationPlan {
    match behavior {
        _ if status == SubscriptionStatus::Trialing => ProrationPlan::Skip,
        ProrationBehavior::None => ProrationPlan::Skip,
        ProrationBehavior::CreateProrations => ProrationPlan::Pending,
        ProrationBehavior::AlwaysInvoice => ProrationPlan::InvoiceNow,
    }
}

/// The share of `amount` for the time left of the period `[start, end)` at `now`, rounded half
/// away from zero; 0 outside the period (or for an empty one).
pub fn remaining_share(amount: i64, start: i64, end: i64, now: i64) -> i64 {
    if end <= start || now >= end || now < start {
        return 0;
    }
    let remaining = i128::from(end - now);
    let whole = i128::from(end - start);
    let n = i128::from(amount) * remaining;
    ((2 * n + whole * n.signum()) / (2 * whole)) as i64
}

/// One proration line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proration {
    /// The credit (negative) for the unused time of old item `index`.
    UnusedTime { index: usize, amount: i64 },
    /// The charge for the remaining time of new item `index`.
    RemainingTime { index: usize, amount: i64 },
}

/// The prorations of replacing items worth `old` (each item's unit amount × quantity) by items
/// worth `new`, at `now` within the period `[start, end)`: a credit per old item, then a
/// charge per new one. None outside the period.
pub fn prorations(old: &[i64], new: &[i64], start: i64, end: i64, now: i64) -> Vec<Proration> {
    if end <= start || now >= end || now < start {
        return Vec::new();
    }
    let share = |amount| remaining_share(amount, start, end, now);
    let credits = old
        .iter()
        .enumerate()
        .map(|(index, &a)| Proration::UnusedTime {
            index,
            amount: -share(a),
        });
    let charges = new
        .iter()
        .enumerate()
        .map(|(index, &a)| Proration::RemainingTime {
            index,
            amount: share(a),
        });
    credits.chain(charges).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn the_share_table() {
        let cases: [(i64, i64, i64, i64, i64); 12] = [
            // (amount, start, end, now, expected)
            (1000, 0, 100, 0, 1000),
            (1000, 0, 100, 50, 500),
            (1000, 0, 100, 99, 10),
            (1000, 0, 30 * DAY, 10 * DAY, 667),
            (1000, 0, 30 * DAY, 20 * DAY, 333),
            // Half a penny rounds away from zero, either sign.
            (1, 0, 100, 50, 1),
            (-1, 0, 100, 50, -1),
            (3, 0, 4, 2, 2),
            (-3, 0, 4, 2, -2),
            // Outside the period, or an empty one: nothing.
            (1000, 0, 100, 100, 0),
            (1000, 10, 100, 5, 0),
            (1000, 100, 100, 100, 0),
        ];
        for (amount, start, end, now, expected) in cases {
            assert_eq!(
                remaining_share(amount, start, end, now),
                expected,
                "{amount} over [{start}, {end}) at {now}"
            );
        }
    }

    #[test]
    fn the_proration_table() {
        use Proration::*;
        // (old items' worth, new items' worth, now, expected)
        type Case = (&'static [i64], &'static [i64], i64, Vec<Proration>);
        let cases: [Case; 5] = [
            // Upgrade half way: half the old back, half the new charged.
            (
                &[1000],
                &[3000],
                15 * DAY,
                vec![
                    UnusedTime {
                        index: 0,
                        amount: -500,
                    },
                    RemainingTime {
                        index: 0,
                        amount: 1500,
                    },
                ],
            ),
            // A quantity change a third of the way in: credit and charge per item.
            (
                &[1000, 200],
                &[2000, 200],
                10 * DAY,
                vec![
                    UnusedTime {
                        index: 0,
                        amount: -667,
                    },
                    UnusedTime {
                        index: 1,
                        amount: -133,
                    },
                    RemainingTime {
                        index: 0,
                        amount: 1333,
                    },
                    RemainingTime {
                        index: 1,
                        amount: 133,
                    },
                ],
            ),
            // At the period's start: everything.
            (
                &[1000],
                &[500],
                0,
                vec![
                    UnusedTime {
                        index: 0,
                        amount: -1000,
                    },
                    RemainingTime {
                        index: 0,
                        amount: 500,
                    },
                ],
            ),
            // At or after its end: nothing (the renewal bills the new items).
            (&[1000], &[500], 30 * DAY, vec![]),
            (&[1000], &[500], 31 * DAY, vec![]),
        ];
        for (old, new, now, expected) in cases {
            assert_eq!(
                prorations(old, new, 0, 30 * DAY, now),
                expected,
                "{old:?} -> {new:?} at {now}"
            );
        }
    }

    #[test]
    fn when_a_change_is_prorated() {
        use ProrationBehavior as B;
        use SubscriptionStatus as S;
        let cases: [(B, S, ProrationPlan); 7] = [
            (B::CreateProrations, S::Active, ProrationPlan::Pending),
            (B::CreateProrations, S::PastDue, ProrationPlan::Pending),
            (B::AlwaysInvoice, S::Active, ProrationPlan::InvoiceNow),
            (B::None, S::Active, ProrationPlan::Skip),
            // A trial bills nothing, so nothing is prorated.
            (B::CreateProrations, S::Trialing, ProrationPlan::Skip),
            (B::AlwaysInvoice, S::Trialing, ProrationPlan::Skip),
            (B::None, S::Trialing, ProrationPlan::Skip),
        ];
        for (behavior, status, expected) in cases {
            assert_eq!(plan(behavior, status), expected, "{behavior:?} {status:?}");
        }
        for name in ProrationBehavior::NAMES {
            assert!(ProrationBehavior::parse(name).is_some(), "{name}");
        }
        assert_eq!(ProrationBehavior::parse("prorate"), None);
    }
}
