//! Dunning: after a renewal's payment fails, when it is retried, and what happens to the
//! subscription once the last retry has failed. The schedule is the configuration's
//! `billing.dunning_retry_hours` (the wait before each retry, counted from the failure before
//! it) and `billing.final_action`. Only renewals are retried: a first payment that fails
//! leaves the subscription `incomplete` until it expires, and a one-off invoice waits for its
//! customer.

use super::status::{BillingReason, SubscriptionStatus};

/// What a subscription becomes when the last retry of its renewal has failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalAction {
    /// Stay `past_due`: the invoice stays open for the customer to pay.
    PastDue,
    /// `unpaid`: no more charges until the customer pays.
    Unpaid,
    /// `canceled`: the subscription ends.
    Cancel,
}

impl FinalAction {
    /// The configuration's `billing.final_action` (validated when the configuration loads;
    /// anything else stays `past_due`, the safe choice that ends nothing).
    pub fn of(setting: &str) -> Self {
        match setting {
            "unpaid" => Self::Unpaid,
            "cancel" => Self::Cancel,
            _ => Self::PastDue,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PastDue => "past_due",
            Self::Unpaid => "unpaid",
            Self::Cancel => "cancel",
        }
    }

    /// The subscription's status after it.
    pub fn status(self) -> SubscriptionStatus {
        match self {
            Self::PastDue => SubscriptionStatus::PastDue,
            Self::Unpaid => SubscriptionStatus::Unpaid,
            Self::Cancel => SubscriptionStatus::Canceled,
        }
    }
}

/// What follows a failed payment of an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// A renewal with retries left: try again at this time.
    RetryAt(i64),
    /// A renewal whose last retry failed: the final action.
    Final(FinalAction),
    /// Not a renewal: nothing is retried and its subscription (if any) does not change.
    NoRetry,
}

/// After the `attempts`-th failed attempt (counting this one) of an invoice made for `reason`,
/// failing at `now`: the retry `retries[attempts - 1]` seconds later, or the final action once
/// the schedule is used up. Pure: the caller writes the result in the payment's own commit.
pub fn after_failure(
    reason: BillingReason,
    attempts: i64,
    retries: &[i64],
    final_action: FinalAction,
    now: i64,
) -> AfterFailure {
    if reason != BillingReason::SubscriptionCycle {
        return AfterFailure::NoRetry;
    }
    let wait = usize::try_from(attempts - 1)
        .ok()
        .and_then(|i| retries.get(i));
    match wait {
        Some(wait) => AfterFailure::RetryAt(now + wait),
        None => AfterFailure::Final(final_action),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn the_dunning_table() {
        use AfterFailure::*;
        use BillingReason::*;
        use FinalAction::*;
        let default = [DAY, DAY, DAY];
        let growing = [DAY, 3 * DAY, 7 * DAY];
        let t = 1_000_000;
        let cases: [(BillingReason, i64, &[i64], FinalAction, AfterFailure); 13] = [
            // A renewal: each failure waits its turn of the schedule, from the failure.
            (SubscriptionCycle, 1, &default, PastDue, RetryAt(t + DAY)),
            (SubscriptionCycle, 2, &default, PastDue, RetryAt(t + DAY)),
            (SubscriptionCycle, 3, &default, PastDue, RetryAt(t + DAY)),
            (SubscriptionCycle, 1, &growing, Cancel, RetryAt(t + DAY)),
            (SubscriptionCycle, 2, &growing, Cancel, RetryAt(t + 3 * DAY)),
            (SubscriptionCycle, 3, &growing, Cancel, RetryAt(t + 7 * DAY)),
            // The schedule used up: the final action, whichever it is.
            (SubscriptionCycle, 4, &default, PastDue, Final(PastDue)),
            (SubscriptionCycle, 4, &growing, Unpaid, Final(Unpaid)),
            (SubscriptionCycle, 9, &growing, Cancel, Final(Cancel)),
            // No retries configured: the first failure is the last.
            (SubscriptionCycle, 1, &[], Unpaid, Final(Unpaid)),
            // Not a renewal: never retried, whatever the schedule.
            (SubscriptionCreate, 1, &default, Cancel, NoRetry),
            (SubscriptionUpdate, 1, &default, Cancel, NoRetry),
            (Manual, 4, &default, Cancel, NoRetry),
        ];
        for (reason, attempts, retries, last, expected) in cases {
            assert_eq!(
                after_failure(reason, attempts, retries, last, t),
                expected,
                "{reason:?} attempt {attempts} of {retries:?}, then {last:?}"
            );
        }
    }

    #[test]
    fn the_final_action_setting() {
        let cases: [(&str, FinalAction, SubscriptionStatus); 4] = [
            (
                "past_due",
                FinalAction::PastDue,
                SubscriptionStatus::PastDue,
            ),
            ("unpaid", FinalAction::Unpaid, SubscriptionStatus::Unpaid),
            ("cancel", FinalAction::Cancel, SubscriptionStatus::Canceled),
            ("", FinalAction::PastDue, SubscriptionStatus::PastDue),
        ];
        for (setting, action, status) in cases {
            assert_eq!(FinalAction::of(setting), action, "{setting}");
            assert_eq!(action.status(), status, "{setting}");
        }
    }
}
