//! A settlement batch's life, as pure decisions: when it closes into payouts, when its credit
//! pays them, when the deadline fails them.
//!
//! A batch's expected net (the sum of its projects' shares) only grows by the payments' commits (see [`super::ledger`]); what
//! the follower decides and writes is its [`BatchState`], a record it changes under a version
//! check, so two daemons never close or pay a batch twice. Credits are summed by reference:
//! an acquirer may pay one day's batch in more than one credit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ModeSettlement;
use super::ledger::BatchKind;

/// Where a batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Gathering balance transactions.
    #[default]
    Open,
    /// Closed into payouts; its credit is awaited.
    InTransit,
    /// Its credits add up to what was expected.
    Paid,
    /// The deadline passed without the expected credit.
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Open => "open",
            Phase::InTransit => "in_transit",
            Phase::Paid => "paid",
            Phase::Failed => "failed",
        }
    }
}

/// What the follower keeps of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BatchState {
    pub phase: Phase,
    /// Pence credited so far under the batch's reference.
    pub received: i64,
    /// The credits' transaction URLs.
    pub credits: Vec<String>,
    /// Each project's payout.
    pub payouts: BTreeMap<String, String>,
    /// What the batch expected when it closed (later additions are a discrepancy).
    pub expected_at_close: Option<i64>,
    pub closed_at: Option<i64>,
    pub failure_code: Option<String>,
}

/// A batch's running figures, as the payments wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    pub kind: BatchKind,
    pub closes_at: i64,
    pub expected: i64,
    pub currency: String,
    pub shares: BTreeMap<String, i64>,
}

impl Figures {
    /// From the batch hash's fields; `None` if it has no kind (not a batch).
    pub fn from_fields(fields: &BTreeMap<String, String>) -> Option<Self> {
        let int = |k: &str| {
            fields
                .get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        let shares: BTreeMap<String, i64> = fields
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("share:")?.to_owned(), v.parse().ok()?)))
            .collect();
        Some(Self {
            kind: BatchKind::parse(fields.get("kind")?)?,
            closes_at: int("closes_at"),
            // Every net joins `expected` and exactly one share in the same commit.
            expected: fields
                .get("expected")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| shares.values().sum()),
            currency: fields
                .get("currency")
                .cloned()
                .unwrap_or_else(|| "gbp".into()),
            shares,
        })
    }
}

/// What to do with a batch now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Nothing,
    /// Close into payouts (one per project with a positive share); `paid`: its credits have
    /// already come, to the penny.
    Close {
        paid: bool,
    },
    Pay,
    Fail {
        code: &'static str,
    },
}

/// When a batch of `kind` closes, and how long its credit may take after that.
fn timing(st: &ModeSettlement, kind: BatchKind) -> (i64, i64) {
    match kind {
        BatchKind::Card => (st.close_grace_secs, st.card_deadline_secs),
        BatchKind::Bank => (0, st.bank_deadline_secs),
    }
}

/// The step a batch takes at `now` (Unix seconds). `watched`: the mode's settlement
/// account is read (Griffin is configured); without it nothing can confirm a credit, so a
/// payout counts as paid when it was due to arrive, on the acquirer's word.
pub fn on_tick(st: &ModeSettlement, f: &Figures, s: &BatchState, now: i64, watched: bool) -> Step {
    let (grace, deadline) = timing(st, f.kind);
    let due = now >= s.closed_at.unwrap_or(f.closes_at) + deadline;
    // Once closed, the payouts are what the batch held then: a later addition is a
    // discrepancy to report, not a reason to leave the credit unmatched.
    let expected = s.expected_at_close.unwrap_or(f.expected);
    match s.phase {
        // A batch whose refunds outweigh its takings has nothing to pay out (the acquirer
        // collects the difference by debit): it closes settled.
        Phase::Open if now >= f.closes_at + grace => Step::Close {
            paid: s.received == f.expected || (f.expected <= 0 && s.received == 0),
        },
        Phase::InTransit if s.received == expected => Step::Pay,
        Phase::InTransit if due && !watched => Step::Pay,
        Phase::InTransit if due => Step::Fail {
            code: if s.received == 0 {
                "credit_not_received"
            } else {
                "amount_mismatch"
            },
        },
        _ => Step::Nothing,
    }
}

/// The step a batch takes when a credit of `amount` arrives under its reference, and its
/// received total after it.
pub fn on_credit(f: &Figures, s: &BatchState, amount: i64) -> (i64, Step) {
    let received = s.received + amount;
    let step = match s.phase {
        Phase::InTransit if received == s.expected_at_close.unwrap_or(f.expected) => Step::Pay,
        _ => Step::Nothing,
    };
    (received, step)
}

/// The payouts a closing batch makes: each project with a positive share (a project whose
/// refunds outweigh its takings keeps the negative in its balance).
pub fn payouts(f: &Figures) -> Vec<(String, i64)> {
    f.shares
        .iter()
        .filter(|(_, amount)| **amount > 0)
        .map(|(p, a)| (p.clone(), *a))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(kind: BatchKind, expected: i64) -> Figures {
        Figures {
            kind,
            closes_at: 1_000,
            expected,
            currency: "gbp".into(),
            shares: BTreeMap::from([("a".into(), expected - 100), ("b".into(), 100)]),
        }
    }

    fn state(phase: Phase, received: i64) -> BatchState {
        BatchState {
            phase,
            received,
            closed_at: (phase != Phase::Open).then_some(1_900),
            ..BatchState::default()
        }
    }

    #[test]
    fn ticks() {
        let st = crate::money::Settlement::default().test;
        let (grace, card_deadline) = (st.close_grace_secs, st.card_deadline_secs);
        let card = figures(BatchKind::Card, 5_000);
        let bank = figures(BatchKind::Bank, 5_000);
        let cases = [
            (
                &card,
                state(Phase::Open, 0),
                1_000 + grace - 1,
                Step::Nothing,
            ),
            (
                &card,
                state(Phase::Open, 0),
                1_000 + grace,
                Step::Close { paid: false },
            ),
            (
                &card,
                state(Phase::Open, 5_000),
                1_000 + grace,
                Step::Close { paid: true },
            ),
            (
                &bank,
                state(Phase::Open, 0),
                1_000,
                Step::Close { paid: false },
            ),
            (&card, state(Phase::InTransit, 5_000), 2_000, Step::Pay),
            (
                &card,
                state(Phase::InTransit, 0),
                1_900 + card_deadline - 1,
                Step::Nothing,
            ),
            (
                &card,
                state(Phase::InTransit, 0),
                1_900 + card_deadline,
                Step::Fail {
                    code: "credit_not_received",
                },
            ),
            (
                &card,
                state(Phase::InTransit, 4_999),
                1_900 + card_deadline,
                Step::Fail {
                    code: "amount_mismatch",
                },
            ),
            (&card, state(Phase::Paid, 5_000), 99_999_999, Step::Nothing),
            (&card, state(Phase::Failed, 0), 99_999_999, Step::Nothing),
        ];
        for (i, (f, s, now, want)) in cases.into_iter().enumerate() {
            assert_eq!(on_tick(&st, f, &s, now, true), want, "case {i}");
        }
    }

    #[test]
    fn unwatched_payouts_are_paid_when_due() {
        let st = crate::money::Settlement::default().live;
        let f = figures(BatchKind::Card, 5_000);
        let s = state(Phase::InTransit, 0);
        assert_eq!(
            on_tick(&st, &f, &s, 1_900 + st.card_deadline_secs, false),
            Step::Pay
        );
        assert_eq!(on_tick(&st, &f, &s, 1_900, false), Step::Nothing);
    }

    #[test]
    fn credits_add_up_by_reference() {
        let f = figures(BatchKind::Card, 5_000);
        assert_eq!(
            on_credit(&f, &state(Phase::InTransit, 0), 3_000),
            (3_000, Step::Nothing)
        );
        assert_eq!(
            on_credit(&f, &state(Phase::InTransit, 3_000), 2_000),
            (5_000, Step::Pay)
        );
        // Before the close a credit only counts; the close pays it.
        assert_eq!(
            on_credit(&f, &state(Phase::Open, 0), 5_000),
            (5_000, Step::Nothing)
        );
        // Too much is not paid: it is a discrepancy.
        assert_eq!(
            on_credit(&f, &state(Phase::InTransit, 0), 5_001),
            (5_001, Step::Nothing)
        );
    }

    #[test]
    fn payouts_only_for_positive_shares() {
        let mut f = figures(BatchKind::Card, 5_000);
        f.shares.insert("c".into(), -300);
        let made = payouts(&f);
        assert_eq!(made, vec![("a".into(), 4_900), ("b".into(), 100)]);
    }

    #[test]
    fn a_batch_expects_what_its_shares_add_up_to_and_needs_a_kind() {
        let fields = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        for (pairs, want) in [
            (
                vec![("kind", "card"), ("share:a", "4900"), ("share:b", "-300")],
                Some(4_600),
            ),
            (vec![("kind", "bank"), ("closes_at", "9")], Some(0)),
            // `expected` as kept beside the shares, their sum.
            (
                vec![("kind", "card"), ("expected", "5"), ("share:a", "5")],
                Some(5),
            ),
            (vec![("share:a", "5")], None),
            (vec![("kind", "crypto"), ("share:a", "5")], None),
        ] {
            let got = Figures::from_fields(&fields(&pairs)).map(|f| f.expected);
            assert_eq!(got, want, "{pairs:?}");
        }
    }
}
