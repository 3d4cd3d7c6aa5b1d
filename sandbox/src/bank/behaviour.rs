//! The test banks and their status engine: what each bank does with a payment, as a pure
//! function of the bank, when the payment was submitted and now.
//!
//! Nothing runs on a timer: a payment's status is computed whenever it is read, so a delayed
//! bank needs no background task, every daemon sharing the Redis sees the same status, and a
//! test moves time by moving the daemon's clock.

use calmony_protocol::open_banking::{ConsentStatus, PaymentStatus};

/// One simulated bank, named by its `bank_id` in the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBank {
    /// Approve → `AcceptedSettlementCompleted` at once.
    Instant,
    /// `Pending`, then `AcceptedSettlementInProcess`, then `AcceptedSettlementCompleted`
    /// once the delay has passed.
    Delayed,
    /// `Rejected` at submission.
    Rejects,
    /// `AcceptedSettlementInProcess`, then `Rejected` once the delay has passed.
    LateReject,
    /// Like `Instant`, but the first payment POST of each consent is processed and answered
    /// 500: the client must replay with the same idempotency key.
    Flaky,
}

impl TestBank {
    pub const ALL: [TestBank; 5] = [
        TestBank::Instant,
        TestBank::Delayed,
        TestBank::Rejects,
        TestBank::LateReject,
        TestBank::Flaky,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Self::Instant => "calmony-instant",
            Self::Delayed => "calmony-delayed",
            Self::Rejects => "calmony-rejects",
            Self::LateReject => "calmony-late-reject",
            Self::Flaky => "calmony-flaky",
        }
    }

    /// What the payer sees as the bank's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Instant => "Calmony Instant Bank",
            Self::Delayed => "Calmony Delayed Bank",
            Self::Rejects => "Calmony Rejecting Bank",
            Self::LateReject => "Calmony Late-Reject Bank",
            Self::Flaky => "Calmony Flaky Bank",
        }
    }

    pub fn of(id: &str) -> Option<TestBank> {
        Self::ALL.into_iter().find(|b| b.id() == id)
    }

    /// The payment's status `elapsed_ms` after its submission, given the bank's `delay_ms`.
    /// The delayed bank is `Pending` for the first half of the delay.
    pub fn payment_status(self, elapsed_ms: i64, delay_ms: i64) -> PaymentStatus {
        use PaymentStatus::*;
        match self {
            Self::Instant | Self::Flaky => AcceptedSettlementCompleted,
            Self::Rejects => Rejected,
            Self::Delayed if elapsed_ms >= delay_ms => AcceptedSettlementCompleted,
            Self::Delayed if elapsed_ms >= delay_ms / 2 => AcceptedSettlementInProcess,
            Self::Delayed => Pending,
            Self::LateReject if elapsed_ms >= delay_ms => Rejected,
            Self::LateReject => AcceptedSettlementInProcess,
        }
    }

    /// When (ms after submission) the payment last changed status, for `StatusUpdateDateTime`.
    pub fn status_changed_at(self, elapsed_ms: i64, delay_ms: i64) -> i64 {
        match self {
            Self::Instant | Self::Flaky | Self::Rejects => 0,
            Self::Delayed if elapsed_ms >= delay_ms => delay_ms,
            Self::Delayed if elapsed_ms >= delay_ms / 2 => delay_ms / 2,
            Self::LateReject if elapsed_ms >= delay_ms => delay_ms,
            Self::Delayed | Self::LateReject => 0,
        }
    }
}

/// A consent's status as read: one still awaiting the payer after `timeout_ms` reads as
/// `Rejected` (the payer never came back; the bank gave up).
pub fn consent_status(stored: ConsentStatus, age_ms: i64, timeout_ms: i64) -> ConsentStatus {
    match stored {
        ConsentStatus::AwaitingAuthorisation if age_ms >= timeout_ms => ConsentStatus::Rejected,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentStatus::*;

    #[test]
    fn each_bank_moves_its_payment_through_its_statuses() {
        let d = 3000;
        for (bank, elapsed, status, changed) in [
            (TestBank::Instant, 0, AcceptedSettlementCompleted, 0),
            (TestBank::Instant, 99_999, AcceptedSettlementCompleted, 0),
            (TestBank::Flaky, 0, AcceptedSettlementCompleted, 0),
            (TestBank::Rejects, 0, Rejected, 0),
            (TestBank::Rejects, 99_999, Rejected, 0),
            (TestBank::Delayed, 0, Pending, 0),
            (TestBank::Delayed, 1499, Pending, 0),
            (TestBank::Delayed, 1500, AcceptedSettlementInProcess, 1500),
            (TestBank::Delayed, 2999, AcceptedSettlementInProcess, 1500),
            (TestBank::Delayed, 3000, AcceptedSettlementCompleted, 3000),
            (TestBank::Delayed, 60_000, AcceptedSettlementCompleted, 3000),
            (TestBank::LateReject, 0, AcceptedSettlementInProcess, 0),
            (TestBank::LateReject, 2999, AcceptedSettlementInProcess, 0),
            (TestBank::LateReject, 3000, Rejected, 3000),
        ] {
            assert_eq!(
                bank.payment_status(elapsed, d),
                status,
                "{bank:?} at {elapsed}"
            );
            assert_eq!(
                bank.status_changed_at(elapsed, d),
                changed,
                "{bank:?} at {elapsed}"
            );
        }
    }

    #[test]
    fn an_undecided_consent_expires_and_a_decided_one_never_does() {
        use ConsentStatus::*;
        for (stored, age, expected) in [
            (AwaitingAuthorisation, 0, AwaitingAuthorisation),
            (AwaitingAuthorisation, 599_999, AwaitingAuthorisation),
            (AwaitingAuthorisation, 600_000, Rejected),
            (Authorised, 10_000_000, Authorised),
            (Consumed, 10_000_000, Consumed),
            (Rejected, 0, Rejected),
        ] {
            assert_eq!(
                consent_status(stored, age, 600_000),
                expected,
                "{stored:?} {age}"
            );
        }
    }

    #[test]
    fn banks_are_found_by_id() {
        for bank in TestBank::ALL {
            assert_eq!(TestBank::of(bank.id()), Some(bank));
        }
        assert_eq!(TestBank::of("nope"), None);
    }
}
