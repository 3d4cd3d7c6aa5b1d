//! How invoices and subscriptions move between states: which command an invoice's status
//! allows, what a payment's result does to a subscription, and what the scheduler does next
//! with a subscription that came due. Pure: the callers load the records, decide here, and
//! write the decision in one commit.

use super::dunning::FinalAction;
use super::status::{InvoiceStatus, SubscriptionStatus};

/// Stripe's window for a first payment before an incomplete subscription expires.
pub const INCOMPLETE_WINDOW: i64 = 23 * 3600;
/// `trial_will_end` comes this long before the trial ends.
pub const TRIAL_NOTICE: i64 = 3 * 86_400;

/// What is asked of an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceCommand {
    /// `draft` -> `open`, numbered.
    Finalize,
    /// A payment succeeded (charged, or paid out of band).
    Pay,
    Void,
    MarkUncollectible,
    /// Delete it, or add an item to it: drafts only.
    Edit,
}

impl InvoiceCommand {
    /// The verb of the refusal (`"... cannot be <verb>"`).
    pub fn verb(self) -> &'static str {
        match self {
            Self::Finalize => "finalized",
            Self::Pay => "paid",
            Self::Void => "void",
            Self::MarkUncollectible => "uncollectible",
            Self::Edit => "deleted",
        }
    }
}

/// The status `command` moves an invoice in `from` to, or `None` if it may not.
pub fn invoice_after(from: InvoiceStatus, command: InvoiceCommand) -> Option<InvoiceStatus> {
    use InvoiceCommand as C;
    use InvoiceStatus as S;
    match (command, from) {
        (C::Finalize, S::Draft) => Some(S::Open),
        (C::Pay, S::Open | S::Uncollectible) => Some(S::Paid),
        (C::Void, S::Open | S::Uncollectible) => Some(S::Void),
        (C::MarkUncollectible, S::Open) => Some(S::Uncollectible),
        (C::Edit, S::Draft) => Some(S::Draft),
        _ => None,
    }
}

/// What a payment's result means for the invoice's subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentResult {
    /// The invoice was paid.
    Paid,
    /// A renewal's last retry failed.
    GaveUp(FinalAction),
}

/// A subscription's status after a payment `result` of its invoice. A payment revives one that
/// was waiting for it (never one that ended or is still in its trial); the final action
/// applies to anything not already canceled.
pub fn subscription_after_payment(
    current: SubscriptionStatus,
    result: PaymentResult,
) -> SubscriptionStatus {
    use SubscriptionStatus as S;
    match result {
        PaymentResult::Paid => match current {
            S::Incomplete | S::PastDue | S::Unpaid | S::Active => S::Active,
            other => other,
        },
        PaymentResult::GaveUp(_) if current == S::Canceled => current,
        PaymentResult::GaveUp(action) => action.status(),
    }
}

/// Where a subscription stands in its due set after a payment's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Out of the due set: nothing more to do for it.
    Unschedule,
    /// Due at this time.
    At(i64),
    /// Left where it is.
    Keep,
}

/// After a payment's result: an ended subscription leaves the schedule; a retry makes it due
/// then (never later than its period's end, when it renews anyway); otherwise one that goes on
/// is due at its period's end.
pub fn due_after_payment(
    status: SubscriptionStatus,
    retry_at: Option<i64>,
    period_end: i64,
) -> Due {
    use SubscriptionStatus as S;
    match (status, retry_at) {
        (S::Canceled | S::IncompleteExpired, _) => Due::Unschedule,
        (_, Some(at)) => Due::At(at.min(period_end)),
        (S::Active | S::PastDue | S::Unpaid, None) => Due::At(period_end),
        _ => Due::Keep,
    }
}

/// What the scheduler knows of a subscription that came due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueSubscription {
    pub status: SubscriptionStatus,
    pub created: i64,
    pub trial_end: Option<i64>,
    pub current_period_end: i64,
    pub cancel_at_period_end: bool,
    pub trial_will_end_sent: bool,
}

/// Its latest invoice, when that is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenInvoice {
    /// A payment is in flight for it.
    pub paying: bool,
    pub next_payment_attempt: Option<i64>,
}

/// What the scheduler does with a subscription that came due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing more will happen to it: out of the due set.
    Unschedule,
    /// Its first payment never came: `incomplete_expired`, its open invoice void.
    Expire,
    /// Nothing to do yet: due again at this time.
    WaitUntil(i64),
    /// Send `trial_will_end`, then wait for the trial's end.
    NoticeTrialEnd { trial_end: i64 },
    /// A new period from `start`: its invoice, then its charge.
    StartPeriod { start: i64 },
    /// Charge its open invoice again (a dunning retry, or a charge a crash interrupted).
    Retry,
    /// `cancel_at_period_end` and the period is over: `canceled`.
    CancelAtPeriodEnd,
}

/// The scheduler's decision for `sub` at `now`, given its latest invoice when that is open.
pub fn next_step(sub: &DueSubscription, open: Option<OpenInvoice>, now: i64) -> Step {
    use SubscriptionStatus as S;
    match sub.status {
        S::Canceled | S::IncompleteExpired => Step::Unschedule,
        S::Incomplete => {
            let expires = sub.created + INCOMPLETE_WINDOW;
            if now >= expires {
                Step::Expire
            } else {
                Step::WaitUntil(expires)
            }
        }
        S::Trialing => {
            let trial_end = sub.trial_end.unwrap_or(sub.current_period_end);
            // Cancelled at the period's end during a trial: it ends with the trial, never
            // charged (as Stripe does).
            if now >= trial_end && sub.cancel_at_period_end {
                Step::CancelAtPeriodEnd
            } else if now >= trial_end {
                Step::StartPeriod { start: trial_end }
            } else if !sub.trial_will_end_sent && now >= trial_end - TRIAL_NOTICE {
                Step::NoticeTrialEnd { trial_end }
            } else {
                Step::WaitUntil(trial_end)
            }
        }
        S::Active | S::PastDue | S::Unpaid => {
            // An unpaid subscription is charged no more; its open invoice waits.
            if let Some(inv) = open.filter(|_| sub.status != S::Unpaid) {
                if inv.paying {
                    return Step::WaitUntil(now + 60);
                }
                match inv.next_payment_attempt {
                    Some(t) if t <= now => return Step::Retry,
                    Some(t) if t < sub.current_period_end => return Step::WaitUntil(t),
                    _ => {}
                }
            }
            if now < sub.current_period_end {
                Step::WaitUntil(sub.current_period_end)
            } else if sub.cancel_at_period_end {
                Step::CancelAtPeriodEnd
            } else {
                Step::StartPeriod {
                    start: sub.current_period_end,
                }
            }
        }
    }
}

/// The status a subscription starts its new period in: a trial that ends becomes active.
pub fn status_at_period_start(current: SubscriptionStatus) -> SubscriptionStatus {
    match current {
        SubscriptionStatus::Trialing => SubscriptionStatus::Active,
        other => other,
    }
}

/// Whether a new period's invoice is charged: something is due, and the subscription is not
/// `unpaid` (which is charged no more).
pub fn charges_period(status: SubscriptionStatus, amount_due: i64) -> bool {
    amount_due > 0 && status != SubscriptionStatus::Unpaid
}

/// Whether a new payment method retries the subscription's open invoice at once.
pub fn retries_on_new_method(status: SubscriptionStatus) -> bool {
    use SubscriptionStatus as S;
    matches!(status, S::PastDue | S::Unpaid | S::Incomplete | S::Active)
}

/// A new subscription's status: trialing, or (its first period invoiced) active when that
/// invoice was paid as it was finalized (nothing to charge), else incomplete until it is.
pub fn status_at_create(trial: bool, first_invoice_paid: bool) -> SubscriptionStatus {
    match (trial, first_invoice_paid) {
        (true, _) => SubscriptionStatus::Trialing,
        (false, true) => SubscriptionStatus::Active,
        (false, false) => SubscriptionStatus::Incomplete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invoice_table() {
        use InvoiceCommand as C;
        use InvoiceStatus as S;
        let cases: [(S, C, Option<S>); 30] = [
            (S::Draft, C::Finalize, Some(S::Open)),
            (S::Open, C::Finalize, None),
            (S::Paid, C::Finalize, None),
            (S::Void, C::Finalize, None),
            (S::Uncollectible, C::Finalize, None),
            (S::Draft, C::Pay, None),
            (S::Open, C::Pay, Some(S::Paid)),
            (S::Uncollectible, C::Pay, Some(S::Paid)),
            (S::Paid, C::Pay, None),
            (S::Void, C::Pay, None),
            (S::Draft, C::Void, None),
            (S::Open, C::Void, Some(S::Void)),
            (S::Uncollectible, C::Void, Some(S::Void)),
            (S::Paid, C::Void, None),
            (S::Void, C::Void, None),
            (S::Draft, C::MarkUncollectible, None),
            (S::Open, C::MarkUncollectible, Some(S::Uncollectible)),
            (S::Uncollectible, C::MarkUncollectible, None),
            (S::Paid, C::MarkUncollectible, None),
            (S::Void, C::MarkUncollectible, None),
            (S::Draft, C::Edit, Some(S::Draft)),
            (S::Open, C::Edit, None),
            (S::Paid, C::Edit, None),
            (S::Void, C::Edit, None),
            (S::Uncollectible, C::Edit, None),
            // Nothing leaves paid or void.
            (S::Paid, C::Finalize, None),
            (S::Void, C::Finalize, None),
            (S::Paid, C::Void, None),
            (S::Void, C::Pay, None),
            (S::Void, C::MarkUncollectible, None),
        ];
        for (from, command, to) in cases {
            assert_eq!(invoice_after(from, command), to, "{from:?} {command:?}");
        }
    }

    #[test]
    fn what_a_payment_does_to_its_subscription() {
        use FinalAction::*;
        use PaymentResult::*;
        use SubscriptionStatus as S;
        let cases: [(S, PaymentResult, S); 17] = [
            // Paid: whatever waited for it becomes active.
            (S::Incomplete, Paid, S::Active),
            (S::PastDue, Paid, S::Active),
            (S::Unpaid, Paid, S::Active),
            (S::Active, Paid, S::Active),
            // ...but a payment never revives an ended one, nor ends a trial.
            (S::Canceled, Paid, S::Canceled),
            (S::IncompleteExpired, Paid, S::IncompleteExpired),
            (S::Trialing, Paid, S::Trialing),
            // The last retry failed: the final action.
            (S::Active, GaveUp(PastDue), S::PastDue),
            (S::PastDue, GaveUp(PastDue), S::PastDue),
            (S::PastDue, GaveUp(Unpaid), S::Unpaid),
            (S::PastDue, GaveUp(Cancel), S::Canceled),
            (S::Active, GaveUp(Cancel), S::Canceled),
            (S::Unpaid, GaveUp(Cancel), S::Canceled),
            (S::Incomplete, GaveUp(Unpaid), S::Unpaid),
            (S::IncompleteExpired, GaveUp(PastDue), S::PastDue),
            // A canceled one stays canceled.
            (S::Canceled, GaveUp(PastDue), S::Canceled),
            (S::Canceled, GaveUp(Unpaid), S::Canceled),
        ];
        for (current, result, expected) in cases {
            assert_eq!(
                subscription_after_payment(current, result),
                expected,
                "{current:?} {result:?}"
            );
        }
    }

    #[test]
    fn where_a_subscription_is_due_after_a_payment() {
        use SubscriptionStatus as S;
        let end = 5_000;
        let cases: [(S, Option<i64>, Due); 10] = [
            (S::Canceled, None, Due::Unschedule),
            (S::Canceled, Some(100), Due::Unschedule),
            (S::IncompleteExpired, None, Due::Unschedule),
            // A retry: then, but never after the period's end.
            (S::PastDue, Some(100), Due::At(100)),
            (S::Active, Some(9_000), Due::At(end)),
            // Going on: at the period's end.
            (S::Active, None, Due::At(end)),
            (S::PastDue, None, Due::At(end)),
            (S::Unpaid, None, Due::At(end)),
            // Still waiting for its first payment, or in its trial: its schedule stands.
            (S::Incomplete, None, Due::Keep),
            (S::Trialing, None, Due::Keep),
        ];
        for (status, retry, expected) in cases {
            assert_eq!(
                due_after_payment(status, retry, end),
                expected,
                "{status:?} {retry:?}"
            );
        }
    }

    #[test]
    fn the_scheduler_table() {
        use SubscriptionStatus as S;
        let sub = |status, trial_end, cancel, notice_sent| DueSubscription {
            status,
            created: 0,
            trial_end,
            current_period_end: 10 * 86_400,
            cancel_at_period_end: cancel,
            trial_will_end_sent: notice_sent,
        };
        let end = 10 * 86_400;
        let open = |paying, next| {
            Some(OpenInvoice {
                paying,
                next_payment_attempt: next,
            })
        };
        let cases: [(DueSubscription, Option<OpenInvoice>, i64, Step); 24] = [
            (
                sub(S::Canceled, None, false, false),
                None,
                5,
                Step::Unschedule,
            ),
            (
                sub(S::IncompleteExpired, None, false, false),
                None,
                5,
                Step::Unschedule,
            ),
            // Incomplete: waits out its window, then expires.
            (
                sub(S::Incomplete, None, false, false),
                open(false, Some(0)),
                5,
                Step::WaitUntil(INCOMPLETE_WINDOW),
            ),
            (
                sub(S::Incomplete, None, false, false),
                None,
                INCOMPLETE_WINDOW,
                Step::Expire,
            ),
            // Trialing: the notice three days before, once; the first period at its end.
            (
                sub(S::Trialing, Some(end), false, false),
                None,
                1,
                Step::WaitUntil(end),
            ),
            (
                sub(S::Trialing, Some(end), false, false),
                None,
                end - TRIAL_NOTICE,
                Step::NoticeTrialEnd { trial_end: end },
            ),
            (
                sub(S::Trialing, Some(end), false, true),
                None,
                end - TRIAL_NOTICE,
                Step::WaitUntil(end),
            ),
            (
                sub(S::Trialing, Some(end), false, true),
                None,
                end,
                Step::StartPeriod { start: end },
            ),
            (
                sub(S::Trialing, None, false, true),
                None,
                end + 7,
                Step::StartPeriod { start: end },
            ),
            // Cancelled at the period's end while trialing: ends with the trial, uncharged.
            (
                sub(S::Trialing, Some(end), true, true),
                None,
                end - 1,
                Step::WaitUntil(end),
            ),
            (
                sub(S::Trialing, Some(end), true, true),
                None,
                end,
                Step::CancelAtPeriodEnd,
            ),
            // Active: renews at the period's end, or cancels then if asked to.
            (
                sub(S::Active, None, false, false),
                None,
                5,
                Step::WaitUntil(end),
            ),
            (
                sub(S::Active, None, false, false),
                None,
                end,
                Step::StartPeriod { start: end },
            ),
            (
                sub(S::Active, None, true, false),
                None,
                end,
                Step::CancelAtPeriodEnd,
            ),
            (
                sub(S::PastDue, None, true, false),
                None,
                end + 1,
                Step::CancelAtPeriodEnd,
            ),
            // An open invoice: a payment in flight is waited for; a retry due is made.
            (
                sub(S::PastDue, None, false, false),
                open(true, Some(3)),
                5,
                Step::WaitUntil(65),
            ),
            (
                sub(S::PastDue, None, false, false),
                open(false, Some(5)),
                5,
                Step::Retry,
            ),
            (
                sub(S::Active, None, false, false),
                open(false, Some(1)),
                5,
                Step::Retry,
            ),
            (
                sub(S::PastDue, None, false, false),
                open(false, Some(99)),
                5,
                Step::WaitUntil(99),
            ),
            // A retry after the period's end gives way to the renewal.
            (
                sub(S::PastDue, None, false, false),
                open(false, Some(end + 5)),
                5,
                Step::WaitUntil(end),
            ),
            (
                sub(S::PastDue, None, false, false),
                open(false, None),
                end,
                Step::StartPeriod { start: end },
            ),
            // Unpaid: its open invoice is not charged again; it still renews.
            (
                sub(S::Unpaid, None, false, false),
                open(false, Some(1)),
                5,
                Step::WaitUntil(end),
            ),
            (
                sub(S::Unpaid, None, false, false),
                open(true, Some(1)),
                5,
                Step::WaitUntil(end),
            ),
            (
                sub(S::Unpaid, None, false, false),
                open(false, Some(1)),
                end,
                Step::StartPeriod { start: end },
            ),
        ];
        for (sub, open, now, expected) in cases {
            assert_eq!(
                next_step(&sub, open, now),
                expected,
                "{sub:?} {open:?} at {now}"
            );
        }
    }

    #[test]
    fn a_new_period_and_a_new_subscription() {
        use SubscriptionStatus as S;
        let starts: [(S, S); 4] = [
            (S::Trialing, S::Active),
            (S::Active, S::Active),
            (S::PastDue, S::PastDue),
            (S::Unpaid, S::Unpaid),
        ];
        for (current, expected) in starts {
            assert_eq!(status_at_period_start(current), expected, "{current:?}");
        }
        let charges: [(S, i64, bool); 5] = [
            (S::Active, 1000, true),
            (S::PastDue, 1, true),
            (S::Active, 0, false),
            (S::Unpaid, 1000, false),
            (S::Incomplete, 1000, true),
        ];
        for (status, due, expected) in charges {
            assert_eq!(charges_period(status, due), expected, "{status:?} {due}");
        }
        let creates: [(bool, bool, S); 4] = [
            (true, false, S::Trialing),
            (true, true, S::Trialing),
            (false, true, S::Active),
            (false, false, S::Incomplete),
        ];
        for (trial, paid, expected) in creates {
            assert_eq!(status_at_create(trial, paid), expected, "{trial} {paid}");
        }
        for status in S::ALL {
            let expected = !matches!(status, S::Trialing | S::Canceled | S::IncompleteExpired);
            assert_eq!(retries_on_new_method(status), expected, "{status:?}");
        }
    }
}
