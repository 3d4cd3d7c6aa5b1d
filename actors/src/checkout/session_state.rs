//! A checkout session's states as types, and the decisions made on them: what a session
//! starts as, whether it may expire, and what a result from the hosted page does to it. Pure:
//! [`super::Checkout`] loads the session, decides here, and writes in one commit. The stored
//! session (Stripe's shape) keeps `status`, `payment_status` and `mode` as strings.

use crate::billing::status::SubscriptionStatus;
use crate::payments::IntentStatus;

/// A session's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    /// Waiting for the payer.
    Open,
    /// Paid (or the card saved): final.
    Complete,
    /// Past `expires_at`, or expired through the API: final.
    Expired,
}

impl SessionStatus {
    pub const ALL: [SessionStatus; 3] = [Self::Open, Self::Complete, Self::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Complete => "complete",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The status of a stored session; an unreadable one is treated as expired (nothing
    /// completes it).
    pub fn of(s: &str) -> Self {
        Self::parse(s).unwrap_or(Self::Expired)
    }
}

/// A session's `payment_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    Paid,
    /// Not paid yet, or only authorised (a manual capture holds it until captured).
    Unpaid,
    /// A setup session: it saves a card and takes nothing.
    NoPaymentRequired,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::Unpaid => "unpaid",
            Self::NoPaymentRequired => "no_payment_required",
        }
    }
}

/// A session's `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionMode {
    /// A one-off payment: the page takes the money.
    Payment,
    /// The page saves the card (a VERIFY): nothing is taken.
    Setup,
    /// The page saves the card; the subscription's first invoice is charged with it.
    Subscription,
}

impl SessionMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "payment" => Some(Self::Payment),
            "setup" => Some(Self::Setup),
            "subscription" => Some(Self::Subscription),
            _ => None,
        }
    }

    /// The mode of a stored session (validated when it was created; anything else is read as
    /// setup, which takes no money).
    pub fn of(s: &str) -> Self {
        Self::parse(s).unwrap_or(Self::Setup)
    }

    /// Whether the hosted page takes the money itself (otherwise it only saves the card).
    pub fn takes_payment(self) -> bool {
        self == Self::Payment
    }

    /// A new session's `payment_status`.
    pub fn payment_status_at_create(self) -> PaymentStatus {
        match self {
            Self::Setup => PaymentStatus::NoPaymentRequired,
            Self::Payment | Self::Subscription => PaymentStatus::Unpaid,
        }
    }
}

/// Whether a session in `status` may expire (through the API or the sweeper).
pub fn may_expire(status: SessionStatus) -> bool {
    status == SessionStatus::Open
}

/// A payment session's `payment_status` once the page's payment is recorded: a held
/// authorisation (manual capture) is not paid until it is captured.
pub fn payment_status_after_payment(held: bool) -> PaymentStatus {
    if held {
        PaymentStatus::Unpaid
    } else {
        PaymentStatus::Paid
    }
}

/// The status of a payment session's intent once the page's payment is recorded: a held
/// authorisation (manual capture) waits for its capture through the API; otherwise the page
/// took the money.
pub fn intent_status_after_payment(held: bool) -> IntentStatus {
    if held {
        IntentStatus::RequiresCapture
    } else {
        IntentStatus::Succeeded
    }
}

/// Whether the approved sale `xref` is another payment than the one that paid the session
/// (`paid_by`, the sale its intent keeps), and so must be voided. A replay of the paying
/// sale's own result is not, nor a result without an xref (nothing to void). A `complete`
/// session whose payment kept no sale was paid by bank: any card sale is another payment (a
/// card form from a page opened before the bank payment). While the session is not complete
/// and no sale is recorded there is nothing to keep a sale against.
pub fn is_another_payment(status: SessionStatus, paid_by: Option<&str>, xref: &str) -> bool {
    match (paid_by, status) {
        _ if xref.is_empty() => false,
        (Some(paid_by), _) => paid_by != xref,
        (None, SessionStatus::Complete) => true,
        (None, _) => false,
    }
}

/// A subscription session's `payment_status`, from the subscription it started (none if it
/// could not be read): paid once it is active or trialing.
pub fn payment_status_of_subscription(status: Option<SubscriptionStatus>) -> PaymentStatus {
    match status {
        Some(SubscriptionStatus::Active | SubscriptionStatus::Trialing) => PaymentStatus::Paid,
        _ => PaymentStatus::Unpaid,
    }
}

/// The hosted page's result, by the gateway's response code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageResult {
    /// Code 0.
    Approved,
    /// Code 65576: the payer left the page.
    CanceledByPayer,
    /// Anything else.
    Declined,
}

impl PageResult {
    pub fn of(code: i64) -> Self {
        match code {
            0 => Self::Approved,
            65576 => Self::CanceledByPayer,
            _ => Self::Declined,
        }
    }
}

/// What a verified result from the hosted page does to its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnResult {
    /// Complete, with its subscription still to start: start it (once) and record it.
    StartSubscription,
    /// Already complete: nothing changes; an approved payment of another attempt is voided
    /// unless it is the one that paid.
    AlreadyComplete { void_other_payment: bool },
    /// The payer left the page.
    Canceled,
    /// Declined: recorded on the session's payment intent when it still takes a payment.
    Declined { record: bool },
    /// Approved for a session that is no longer open: refused, the payment voided.
    Refuse { void_payment: bool },
    /// Approved for an open session: complete it (and then start its subscription).
    Complete { then_start_subscription: bool },
}

/// The decision for a result `result` reaching a session in `status` and `mode`, with its
/// subscription started already or not.
pub fn on_result(
    status: SessionStatus,
    mode: SessionMode,
    result: PageResult,
    subscription_started: bool,
) -> OnResult {
    let subscription = mode == SessionMode::Subscription;
    match (status, result) {
        (SessionStatus::Complete, _) if subscription && !subscription_started => {
            OnResult::StartSubscription
        }
        (SessionStatus::Complete, result) => OnResult::AlreadyComplete {
            void_other_payment: result == PageResult::Approved,
        },
        (_, PageResult::CanceledByPayer) => OnResult::Canceled,
        (status, PageResult::Declined) => OnResult::Declined {
            record: mode.takes_payment() && status == SessionStatus::Open,
        },
        (SessionStatus::Open, PageResult::Approved) => OnResult::Complete {
            then_start_subscription: subscription,
        },
        (SessionStatus::Expired, PageResult::Approved) => OnResult::Refuse {
            void_payment: mode.takes_payment(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_payment_waits_for_its_capture_and_is_not_paid() {
        for (held, intent, payment) in [
            (false, IntentStatus::Succeeded, PaymentStatus::Paid),
            (true, IntentStatus::RequiresCapture, PaymentStatus::Unpaid),
        ] {
            assert_eq!(intent_status_after_payment(held), intent, "held: {held}");
            assert_eq!(payment_status_after_payment(held), payment, "held: {held}");
        }
    }

    #[test]
    fn only_a_sale_other_than_the_one_that_paid_is_voided() {
        use SessionStatus::{Complete, Open};
        for (status, paid_by, xref, void) in [
            (Complete, Some("x1"), "x2", true),
            (Complete, Some("x1"), "x1", false),
            (Complete, Some("x1"), "", false),
            // Paid by bank: a card sale from a stale page is another payment.
            (Complete, None, "x2", true),
            (Complete, None, "", false),
            (Open, None, "x2", false),
            (Open, Some("x1"), "x2", true),
            (Open, None, "", false),
        ] {
            assert_eq!(
                is_another_payment(status, paid_by, xref),
                void,
                "{status:?}, paid by {paid_by:?}, result {xref:?}"
            );
        }
    }

    #[test]
    fn the_result_table() {
        use OnResult as R;
        use PageResult as P;
        use SessionMode::*;
        use SessionStatus::*;
        let cases: [(SessionStatus, SessionMode, PageResult, bool, OnResult); 18] = [
            // Open: approved completes it; a subscription's starts after.
            (
                Open,
                Payment,
                P::Approved,
                false,
                R::Complete {
                    then_start_subscription: false,
                },
            ),
            (
                Open,
                Setup,
                P::Approved,
                false,
                R::Complete {
                    then_start_subscription: false,
                },
            ),
            (
                Open,
                Subscription,
                P::Approved,
                false,
                R::Complete {
                    then_start_subscription: true,
                },
            ),
            // Declined: recorded only where the page takes a payment.
            (
                Open,
                Payment,
                P::Declined,
                false,
                R::Declined { record: true },
            ),
            (
                Open,
                Setup,
                P::Declined,
                false,
                R::Declined { record: false },
            ),
            (
                Open,
                Subscription,
                P::Declined,
                false,
                R::Declined { record: false },
            ),
            (
                Expired,
                Payment,
                P::Declined,
                false,
                R::Declined { record: false },
            ),
            // The payer left.
            (Open, Payment, P::CanceledByPayer, false, R::Canceled),
            (Expired, Payment, P::CanceledByPayer, false, R::Canceled),
            // Approved too late: refused, a payment voided.
            (
                Expired,
                Payment,
                P::Approved,
                false,
                R::Refuse { void_payment: true },
            ),
            (
                Expired,
                Setup,
                P::Approved,
                false,
                R::Refuse {
                    void_payment: false,
                },
            ),
            (
                Expired,
                Subscription,
                P::Approved,
                false,
                R::Refuse {
                    void_payment: false,
                },
            ),
            // Complete already: the second arrival changes nothing, and a second payment is
            // voided unless it is the one that paid.
            (
                Complete,
                Payment,
                P::Approved,
                false,
                R::AlreadyComplete {
                    void_other_payment: true,
                },
            ),
            (
                Complete,
                Payment,
                P::Declined,
                false,
                R::AlreadyComplete {
                    void_other_payment: false,
                },
            ),
            (
                Complete,
                Payment,
                P::CanceledByPayer,
                false,
                R::AlreadyComplete {
                    void_other_payment: false,
                },
            ),
            (
                Complete,
                Subscription,
                P::Approved,
                true,
                R::AlreadyComplete {
                    void_other_payment: true,
                },
            ),
            // ...but a subscription not yet started is started, whatever arrives.
            (
                Complete,
                Subscription,
                P::Approved,
                false,
                R::StartSubscription,
            ),
            (
                Complete,
                Subscription,
                P::Declined,
                false,
                R::StartSubscription,
            ),
        ];
        for (status, mode, result, started, expected) in cases {
            assert_eq!(
                on_result(status, mode, result, started),
                expected,
                "{status:?} {mode:?} {result:?} started {started}"
            );
        }
    }

    #[test]
    fn payment_statuses() {
        let cases: [(SessionMode, PaymentStatus); 3] = [
            (SessionMode::Payment, PaymentStatus::Unpaid),
            (SessionMode::Subscription, PaymentStatus::Unpaid),
            (SessionMode::Setup, PaymentStatus::NoPaymentRequired),
        ];
        for (mode, expected) in cases {
            assert_eq!(mode.payment_status_at_create(), expected, "{mode:?}");
        }
        assert_eq!(payment_status_after_payment(false), PaymentStatus::Paid);
        assert_eq!(payment_status_after_payment(true), PaymentStatus::Unpaid);
        for (sub, expected) in [
            (Some(SubscriptionStatus::Active), PaymentStatus::Paid),
            (Some(SubscriptionStatus::Trialing), PaymentStatus::Paid),
            (Some(SubscriptionStatus::Incomplete), PaymentStatus::Unpaid),
            (Some(SubscriptionStatus::PastDue), PaymentStatus::Unpaid),
            (None, PaymentStatus::Unpaid),
        ] {
            assert_eq!(payment_status_of_subscription(sub), expected, "{sub:?}");
        }
    }

    #[test]
    fn only_an_open_session_expires_and_states_read_back() {
        for status in SessionStatus::ALL {
            assert_eq!(SessionStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                may_expire(status),
                status == SessionStatus::Open,
                "{status:?}"
            );
        }
        assert_eq!(PageResult::of(0), PageResult::Approved);
        assert_eq!(PageResult::of(65576), PageResult::CanceledByPayer);
        assert_eq!(PageResult::of(5), PageResult::Declined);
        assert_eq!(PageResult::of(-1), PageResult::Declined);
    }
}
