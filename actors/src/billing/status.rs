//! Billing's states as types. The stored JSON (Stripe's shape) keeps them as strings: they are
//! read into these enums where a decision is made and written back as strings, so every
//! decision matches them exhaustively and a misspelt state is a compile error, not a branch
//! never taken.

/// A subscription's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    /// Its first payment has not succeeded (yet).
    Incomplete,
    /// Its first payment never succeeded within the window: it is over.
    IncompleteExpired,
    Trialing,
    Active,
    /// A renewal's payment failed; dunning retries it.
    PastDue,
    /// Dunning gave up and the final action is `unpaid`: no more charges.
    Unpaid,
    Canceled,
}

impl SubscriptionStatus {
    pub const ALL: [SubscriptionStatus; 7] = [
        Self::Incomplete,
        Self::IncompleteExpired,
        Self::Trialing,
        Self::Active,
        Self::PastDue,
        Self::Unpaid,
        Self::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Unpaid => "unpaid",
            Self::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The status of a stored subscription. One that is unreadable (never written by this
    /// daemon) is treated as ended, so nothing charges it.
    pub fn of(s: &str) -> Self {
        Self::parse(s).unwrap_or(Self::Canceled)
    }

    /// Over: no update, no cancel, nothing scheduled.
    pub fn is_ended(self) -> bool {
        matches!(self, Self::Canceled | Self::IncompleteExpired)
    }
}

/// An invoice's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceStatus {
    Draft,
    Open,
    Paid,
    Void,
    Uncollectible,
}

impl InvoiceStatus {
    pub const ALL: [InvoiceStatus; 5] = [
        Self::Draft,
        Self::Open,
        Self::Paid,
        Self::Void,
        Self::Uncollectible,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Open => "open",
            Self::Paid => "paid",
            Self::Void => "void",
            Self::Uncollectible => "uncollectible",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The status of a stored invoice; an unreadable one is treated as void (nothing moves it).
    pub fn of(s: &str) -> Self {
        Self::parse(s).unwrap_or(Self::Void)
    }
}

/// Why an invoice was made (`billing_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingReason {
    /// A subscription's first period.
    SubscriptionCreate,
    /// A renewal: the only reason whose failed payment is retried on the dunning schedule.
    SubscriptionCycle,
    /// Prorations invoiced at once (`proration_behavior=always_invoice`).
    SubscriptionUpdate,
    /// Made through the API, or a one-off payment's receipt.
    Manual,
}

impl BillingReason {
    pub const ALL: [BillingReason; 4] = [
        Self::SubscriptionCreate,
        Self::SubscriptionCycle,
        Self::SubscriptionUpdate,
        Self::Manual,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SubscriptionCreate => "subscription_create",
            Self::SubscriptionCycle => "subscription_cycle",
            Self::SubscriptionUpdate => "subscription_update",
            Self::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The reason of a stored invoice; an unknown one is treated as manual (never dunned).
    pub fn of(s: &str) -> Self {
        Self::parse(s).unwrap_or(Self::Manual)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_as_itself_and_unknown_ones_are_inert() {
        for s in SubscriptionStatus::ALL {
            assert_eq!(SubscriptionStatus::parse(s.as_str()), Some(s));
        }
        for s in InvoiceStatus::ALL {
            assert_eq!(InvoiceStatus::parse(s.as_str()), Some(s));
        }
        for r in BillingReason::ALL {
            assert_eq!(BillingReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(
            SubscriptionStatus::of("paused"),
            SubscriptionStatus::Canceled
        );
        assert_eq!(InvoiceStatus::of("deleted"), InvoiceStatus::Void);
        assert_eq!(BillingReason::of("upcoming"), BillingReason::Manual);
    }

    #[test]
    fn which_subscriptions_are_over() {
        use SubscriptionStatus::*;
        let cases: [(SubscriptionStatus, bool); 7] = [
            (Incomplete, false),
            (IncompleteExpired, true),
            (Trialing, false),
            (Active, false),
            (PastDue, false),
            (Unpaid, false),
            (Canceled, true),
        ];
        for (status, ended) in cases {
            assert_eq!(status.is_ended(), ended, "{status:?}");
        }
    }
}
