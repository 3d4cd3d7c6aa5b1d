//! A Pay by Bank refund's steps at Griffin, decided here and carried out by
//! [`super::bank_refunds`]. Pure: the caller loads, asks, calls Griffin, commits.
//!
//! The money goes back as a Faster Payment from the merchant's Griffin account to the payer's
//! account: a payment created (under a reference of our own, [`reference_for`]), submitted,
//! then followed until its submission is `delivered` (the refund succeeds) or `failed` (it
//! fails). Griffin takes no idempotency key, so every step that sends something first looks
//! at what Griffin already has: before creating, a search by the reference; before submitting,
//! the payment's submissions. A step whose answer was lost is therefore found, never repeated.
//!
//! Insufficient funds (Griffin's 422 when creating or submitting) leave the refund `pending`:
//! the account fills as settlements land, so it is tried again with the usual backoff, for up
//! to [`INSUFFICIENT_FUNDS_WINDOW`] after the first refusal; then it fails with Stripe's
//! `insufficient_funds`. Nothing has been paid by then (a refused submission holds nothing).

use std::time::Duration;

use calmony_protocol::griffin::{Payment, PaymentDirection, SubmissionStatus};
use serde::{Deserialize, Serialize};

use crate::gateway::griffin::GriffinError;

/// How long a refund waits for the Griffin account to cover it before it fails.
pub const INSUFFICIENT_FUNDS_WINDOW: Duration = Duration::from_secs(72 * 3600);

/// Where a refund stands at Griffin (kept beside the refund, never answered to clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Committed with its reference; the Griffin payment may or may not exist.
    Creating,
    /// The payment exists (its URL kept); it may or may not be submitted.
    Created,
    /// Submitted (its submission's URL kept): followed until delivered or failed.
    Submitted,
}

/// A bank refund's progress, written in the same commit as the step it reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankRefund {
    pub phase: Phase,
    /// The Griffin payment's reference: unique to the refund, at most 18 characters.
    pub reference: String,
    #[serde(default)]
    pub payment_url: Option<String>,
    #[serde(default)]
    pub submission_url: Option<String>,
    /// Looks since the last change: the backoff's step.
    #[serde(default)]
    pub checks: u32,
    /// When (ms) Griffin first said the account could not cover it; `None` since it could.
    #[serde(default)]
    pub short_since: Option<i64>,
    /// When (ms) a submit was sent that Griffin has not answered: it may have made a
    /// submission, so the payment is not submitted again (Griffin takes no idempotency key)
    /// until a look well past the request's timeout still finds none.
    #[serde(default)]
    pub submit_sent_at: Option<i64>,
}

impl BankRefund {
    pub fn new(refund_id: &str) -> Self {
        Self {
            phase: Phase::Creating,
            reference: reference_for(refund_id),
            payment_url: None,
            submission_url: None,
            checks: 0,
            short_since: None,
            submit_sent_at: None,
        }
    }
}

/// The reference the payer sees on the refund: `RF` and the refund id's last 16 letters and
/// digits, uppercase (Faster Payments carries 18; banks may strip anything else). A refund
/// id's tail is its random part, so no two refunds share one, and a search finds only its own.
pub fn reference_for(refund_id: &str) -> String {
    let alnum: Vec<char> = refund_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let tail: String = alnum[alnum.len().saturating_sub(16)..].iter().collect();
    format!("RF{}", tail.to_ascii_uppercase())
}

/// What a search result says that matters here.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a> {
    pub payment_url: &'a str,
    pub direction: PaymentDirection,
    pub reference: Option<&'a str>,
    pub created_at: &'a str,
}

impl<'a> Found<'a> {
    pub fn of(p: &'a Payment) -> Self {
        Self {
            payment_url: &p.payment_url,
            direction: p.payment_direction,
            reference: p.payment_reference.as_deref(),
            created_at: &p.created_at,
        }
    }
}

/// The one payment of ours among what a search by `reference` found: an outbound payment
/// carrying exactly that reference (the search matches parts of references too). More than
/// one would mean a payment made twice, which these steps never do; the oldest is taken.
pub fn ours<'a>(found: &[Found<'a>], reference: &str) -> Option<&'a str> {
    found
        .iter()
        .filter(|p| p.direction == PaymentDirection::OutboundPayment)
        .filter(|p| p.reference == Some(reference))
        .min_by(|a, b| a.created_at.cmp(b.created_at))
        .map(|p| p.payment_url)
}

/// What to do after a step at Griffin did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Look again after the backoff (the same step, looking first).
    Wait,
    /// As `Wait`, the account short of funds since `since` (ms).
    Short { since: i64 },
    /// The refund fails with this Stripe `failure_reason`; nothing was paid.
    Fail(&'static str),
}

/// Which request at Griffin a step made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Creating the payment (searched for first, so a lost answer is found next time).
    Create,
    /// Submitting it.
    Submit,
    /// Reading: a search, the payment, its submissions, a submission. Money may already
    /// have moved, so no answer to a read ever fails a refund.
    Look,
}

/// A step that Griffin answered with `error`, for a refund first found short at
/// `short_since`, now `now_ms`. No answer (or a 5xx) may hide a payment made or a submission
/// sent: looked at again, never taken as a refusal. A 409 on a submit means a submission
/// exists: the next look finds it. A 429 is a pause. Only a create or a submit that Griffin
/// refused outright fails the refund: nothing was sent.
pub fn after_error(
    error: &GriffinError,
    call: Call,
    short_since: Option<i64>,
    now_ms: i64,
) -> Next {
    match (call, error) {
        (Call::Look, _) => Next::Wait,
        (_, GriffinError::Unavailable(_)) => Next::Wait,
        (
            _,
            GriffinError::Refused {
                status: 409 | 429, ..
            },
        ) => Next::Wait,
        (_, GriffinError::Refused { status: 422, .. }) => {
            let since = short_since.unwrap_or(now_ms);
            let window = INSUFFICIENT_FUNDS_WINDOW.as_millis() as i64;
            if now_ms.saturating_sub(since) >= window {
                Next::Fail("insufficient_funds")
            } else {
                Next::Short { since }
            }
        }
        // Our request is wrong or the payment is gone: nothing moved, and sending it again
        // would not change that.
        (_, GriffinError::Refused { .. }) => Next::Fail("unknown"),
        // An answer we will not act on: looked at again (an operator reads the log).
        (_, GriffinError::Invalid(_)) => Next::Wait,
    }
}

/// Whether a submit that failed with `error` may have made a submission anyway (no answer,
/// or one we cannot read): then the payment must never be submitted again.
pub fn submit_uncertain(error: &GriffinError) -> bool {
    matches!(
        error,
        GriffinError::Unavailable(_) | GriffinError::Invalid(_)
    )
}

/// What a submission's status means for the refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still on its way: look again later.
    Pending,
    /// The money reached the payer's bank.
    Succeeded,
    /// It did not (or came back): the refund fails with this `failure_reason`.
    Failed(&'static str),
}

pub fn after_submission(status: SubmissionStatus) -> Outcome {
    match status {
        SubmissionStatus::Scheduled | SubmissionStatus::Processing => Outcome::Pending,
        SubmissionStatus::Delivered => Outcome::Succeeded,
        // The payer's account refused it (closed, wrong details): Stripe's word for a refund
        // the receiving side turned down.
        SubmissionStatus::Failed | SubmissionStatus::Returned => Outcome::Failed("declined"),
    }
}

/// When to look at a refund again after `checks` looks without a change: 1 s, doubling to
/// a minute (Faster Payments settle in seconds; a short account waits for settlements).
pub fn next_check(checks: u32) -> Duration {
    Duration::from_secs(1u64 << checks.min(6)).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_the_refund_ids_tail_and_fit_faster_payments() {
        for (id, expected) in [
            ("re_01M966ZGBDQ29KVP3MGH6AH1Q8", "RFQ29KVP3MGH6AH1Q8"),
            ("re_abc", "RFREABC"),
        ] {
            let r = reference_for(id);
            assert_eq!(r, expected);
            assert!(r.len() <= 18, "{r}");
        }
        assert_ne!(
            reference_for("re_01M966ZGBDQ29KVP3MGH6AH1Q8"),
            reference_for("re_01M966ZGBDQ29KVP3MGH6AH1Q9")
        );
    }

    #[test]
    fn only_an_outbound_payment_with_exactly_the_reference_is_ours() {
        let p = |url, direction, reference, created_at| Found {
            payment_url: url,
            direction,
            reference,
            created_at,
        };
        use PaymentDirection::*;
        let found = [
            p(
                "/v0/payments/pm.in",
                InboundPayment,
                Some("RF1"),
                "2026-01-01",
            ),
            p(
                "/v0/payments/pm.longer",
                OutboundPayment,
                Some("RF12"),
                "2026-01-01",
            ),
            p(
                "/v0/payments/pm.b",
                OutboundPayment,
                Some("RF1"),
                "2026-01-03",
            ),
            p(
                "/v0/payments/pm.a",
                OutboundPayment,
                Some("RF1"),
                "2026-01-02",
            ),
        ];
        assert_eq!(ours(&found, "RF1"), Some("/v0/payments/pm.a"));
        assert_eq!(ours(&found, "RF12"), Some("/v0/payments/pm.longer"));
        assert_eq!(ours(&found, "RF"), None);
        assert_eq!(ours(&[], "RF1"), None);
    }

    #[test]
    fn errors_wait_fail_or_count_the_shortfall() {
        let refused = |status| GriffinError::Refused {
            status,
            message: String::new(),
        };
        let window = INSUFFICIENT_FUNDS_WINDOW.as_millis() as i64;
        let cases: Vec<(GriffinError, Option<i64>, i64, Next)> = vec![
            (
                GriffinError::Unavailable("timeout".into()),
                None,
                5,
                Next::Wait,
            ),
            (GriffinError::Invalid("odd".into()), None, 5, Next::Wait),
            (refused(409), None, 5, Next::Wait),
            (refused(429), None, 5, Next::Wait),
            (refused(422), None, 5, Next::Short { since: 5 }),
            (refused(422), Some(1), 5, Next::Short { since: 1 }),
            (
                refused(422),
                Some(1),
                1 + window - 1,
                Next::Short { since: 1 },
            ),
            (
                refused(422),
                Some(1),
                1 + window,
                Next::Fail("insufficient_funds"),
            ),
            (refused(400), None, 5, Next::Fail("unknown")),
            (refused(404), None, 5, Next::Fail("unknown")),
            (refused(410), Some(1), 5, Next::Fail("unknown")),
        ];
        for (error, since, now, expected) in cases {
            for call in [Call::Create, Call::Submit] {
                assert_eq!(
                    after_error(&error, call, since, now),
                    expected,
                    "{error:?} {call:?} {since:?} {now}"
                );
            }
            // A read that fails never fails the refund: money may have moved.
            assert_eq!(after_error(&error, Call::Look, since, now), Next::Wait);
        }
        assert!(submit_uncertain(&GriffinError::Unavailable(
            "timeout".into()
        )));
        assert!(!submit_uncertain(&refused(400)));
    }

    #[test]
    fn a_submission_decides_the_refund_once_final() {
        use SubmissionStatus::*;
        for (status, expected) in [
            (Scheduled, Outcome::Pending),
            (Processing, Outcome::Pending),
            (Delivered, Outcome::Succeeded),
            (Failed, Outcome::Failed("declined")),
            (Returned, Outcome::Failed("declined")),
        ] {
            assert_eq!(after_submission(status), expected, "{status:?}");
        }
    }

    #[test]
    fn backoff_doubles_to_a_minute() {
        let secs: Vec<u64> = (0..9).map(|c| next_check(c).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn the_state_reads_as_written() {
        let mut s = BankRefund::new("re_01M966ZGBDQ29KVP3MGH6AH1Q8");
        s.phase = Phase::Submitted;
        s.payment_url = Some("/v0/payments/pm.1".into());
        let text = serde_json::to_string(&s).unwrap_or_default();
        assert!(text.contains("\"submitted\""), "{text}");
        assert_eq!(serde_json::from_str::<BankRefund>(&text).ok(), Some(s));
    }
}
