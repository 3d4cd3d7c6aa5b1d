//! The sandbox's pure decisions: a submission's status at a time, a payment's fate, which
//! ledger entries a page holds, and for webhooks: where one may be sent, how many copies of
//! an event go out under the injected faults, what a credit posts and when, and how a test
//! delivery's outcome is reported.

use std::time::Duration;

use calmony_protocol::griffin::{Creditor, SubmissionStatus};

use super::setup::FAILING_ACCOUNT_NUMBER;
use super::store::Fate;

/// A submission's status at `now_ms`: `processing` until `delay_ms` after submission, then
/// its fate. Computed on every read, so no timer has to run for a payment to finish.
pub fn submission_status(
    now_ms: i64,
    submitted_ms: i64,
    delay_ms: i64,
    fate: Fate,
) -> SubmissionStatus {
    if now_ms < submitted_ms.saturating_add(delay_ms) {
        return SubmissionStatus::Processing;
    }
    match fate {
        Fate::Deliver => SubmissionStatus::Delivered,
        Fate::Fail => SubmissionStatus::Failed,
    }
}

/// What the scheme will do with a payment to `creditor`: the failing account number is the
/// injected failure; everything else is delivered, as in Griffin's own sandbox.
pub fn fate(creditor: &Creditor) -> Fate {
    match creditor {
        Creditor::UkDomestic { account_number, .. } if account_number == FAILING_ACCOUNT_NUMBER => {
            Fate::Fail
        }
        _ => Fate::Deliver,
    }
}

/// A page over `ordered` (positions in the order being read, each a stable id): up to `size`
/// items strictly after `after`, or strictly before `before`, else from the start. Returns
/// the page and the cursors of its neighbours: `prev` (the page's first item, to read before)
/// and `next` (its last, to read after), `None` at either end.
pub fn paginate(
    ordered: &[usize],
    size: usize,
    after: Option<usize>,
    before: Option<usize>,
) -> (Vec<usize>, Option<usize>, Option<usize>) {
    let size = size.max(1);
    let position = |id: usize| ordered.iter().position(|x| *x == id);
    let (start, end) = match (after, before) {
        (Some(a), _) => {
            let start = position(a).map_or(ordered.len(), |p| p + 1);
            (start, (start + size).min(ordered.len()))
        }
        (None, Some(b)) => {
            let end = position(b).unwrap_or(0);
            (end.saturating_sub(size), end)
        }
        (None, None) => (0, size.min(ordered.len())),
    };
    let page = ordered[start..end].to_vec();
    let prev = (start > 0).then(|| page.first().copied()).flatten();
    let next = (end < ordered.len())
        .then(|| page.last().copied())
        .flatten();
    (page, prev, next)
}

/// Whether the sandbox can deliver to `url`: an `http://` URL with a host. Griffin itself
/// wants https on port 443 at a public address; the sandbox runs beside the daemon, so
/// loopback and plain http are what it must allow, and it has no TLS client for https.
pub fn check_destination(url: &str) -> Result<(), &'static str> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(if url.starts_with("https://") {
            "the sandbox delivers to http:// URLs only (it carries no TLS client)"
        } else {
            "webhook-destination-url must be an http:// URL"
        });
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty()
        || host.contains('@')
        || url.len() > 2048
        || url.bytes().any(|b| b.is_ascii_control() || b == b' ')
    {
        return Err("webhook-destination-url must be an http:// URL with a host");
    }
    Ok(())
}

/// Where the sandbox delivers to the daemon it runs in: its public URL when that is plain
/// http (the sandbox has no TLS client), else its listen address over loopback (an https
/// public URL is usually a proxy in front of that address).
pub fn own_receiver(public_base: &str, listen: &str) -> String {
    const PATH: &str = "/webhooks/griffin/test";
    let base = public_base.trim_end_matches('/');
    if base.starts_with("http://") {
        return format!("{base}{PATH}");
    }
    let (host, port) = match listen.rsplit_once(':') {
        Some((host, port)) => (host, port),
        None => (listen, "80"),
    };
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1",
        "[::]" => "[::1]",
        other => other,
    };
    format!("http://{host}:{port}{PATH}")
}

/// How many copies of one event are sent: none when a dropped-webhook fault took it, two in
/// duplicate mode, else one.
pub fn copies(dropped: bool, duplicate: bool) -> usize {
    match (dropped, duplicate) {
        (true, _) => 0,
        (false, true) => 2,
        (false, false) => 1,
    }
}

/// How long after a pass the `index`th of its `count` new events (oldest first) is sent:
/// at once, or in reorder mode newest first, each `spacing` after the one before it.
pub fn send_delay(index: usize, count: usize, reorder: bool, spacing: Duration) -> Duration {
    if !reorder {
        return Duration::ZERO;
    }
    let position = count.saturating_sub(1).saturating_sub(index);
    spacing.saturating_mul(u32::try_from(position).unwrap_or(u32::MAX))
}

/// What an incoming credit of `amount` posts under a wrong-amount fault of `delta` pence: at
/// least a penny, as a scheme never delivers nothing.
pub fn injected_amount(amount: i64, delta: i64) -> i64 {
    amount.saturating_add(delta).max(1)
}

/// When a credit posts: `None` now; else the time (ms) it is held until, `f64::INFINITY`
/// while held until released.
pub fn credit_due(now_ms: i64, delay_ms: i64, hold: bool) -> Option<f64> {
    if hold {
        return Some(f64::INFINITY);
    }
    (delay_ms > 0).then(|| now_ms.saturating_add(delay_ms) as f64)
}

/// How one delivery attempt ended, as the sandbox tells it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempted {
    Answered(u16),
    TimedOut,
    Unreachable,
    Garbled,
}

/// A test delivery's `webhook-http-status` and `webhook-error-code`, as Griffin reports them.
pub fn test_outcome(attempt: Attempted) -> (Option<u16>, Option<&'static str>) {
    match attempt {
        Attempted::Answered(s) if (200..300).contains(&s) => (Some(s), None),
        Attempted::Answered(s) => (Some(s), Some("webhook-invalid-response")),
        Attempted::TimedOut => (None, Some("webhook-timeout")),
        Attempted::Unreachable => (None, Some("webhook-unknown-host")),
        Attempted::Garbled => (None, Some("webhook-unknown-error")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submission_is_processing_until_its_delay_then_its_fate() {
        for (now, fate, expected) in [
            (1000, Fate::Deliver, SubmissionStatus::Processing),
            (2999, Fate::Deliver, SubmissionStatus::Processing),
            (3000, Fate::Deliver, SubmissionStatus::Delivered),
            (3000, Fate::Fail, SubmissionStatus::Failed),
            (2999, Fate::Fail, SubmissionStatus::Processing),
        ] {
            assert_eq!(
                submission_status(now, 1000, 2000, fate),
                expected,
                "{now} {fate:?}"
            );
        }
    }

    #[test]
    fn only_the_failing_account_fails() {
        for (account, expected) in [
            (FAILING_ACCOUNT_NUMBER, Fate::Fail),
            ("70031942", Fate::Deliver),
        ] {
            assert_eq!(fate(&Creditor::uk("A", "040512", account)), expected);
        }
        let own = Creditor::GriffinBankAccount {
            account_url: "/v0/bank/accounts/ba.1".into(),
        };
        assert_eq!(fate(&own), Fate::Deliver);
    }

    #[test]
    fn pages_walk_both_ways_with_null_ends() {
        let newest_first = [4, 3, 2, 1, 0];
        type Case = (
            Option<usize>,
            Option<usize>,
            Vec<usize>,
            Option<usize>,
            Option<usize>,
        );
        let cases: Vec<Case> = vec![
            (None, None, vec![4, 3], None, Some(3)),
            (Some(3), None, vec![2, 1], Some(2), Some(1)),
            (Some(1), None, vec![0], Some(0), None),
            (None, Some(0), vec![2, 1], Some(2), Some(1)),
            (None, Some(2), vec![4, 3], None, Some(3)),
            (Some(0), None, vec![], None, None),
            (Some(99), None, vec![], None, None),
        ];
        for (after, before, page, prev, next) in cases {
            assert_eq!(
                paginate(&newest_first, 2, after, before),
                (page, prev, next),
                "after {after:?} before {before:?}"
            );
        }
        assert_eq!(paginate(&[], 25, None, None), (vec![], None, None));
        assert_eq!(paginate(&[7], 25, None, None), (vec![7], None, None));
    }

    #[test]
    fn destinations_are_http_urls_with_a_host_loopback_included() {
        for (url, ok) in [
            ("http://127.0.0.1:8080/webhooks/griffin/test", true),
            ("http://localhost/hooks", true),
            ("https://merchant.example/hooks", false),
            ("ftp://x/", false),
            ("http://", false),
            ("http:///path", false),
            ("http://user@host/", false),
            ("http://host/a b", false),
            ("", false),
        ] {
            assert_eq!(check_destination(url).is_ok(), ok, "{url}");
        }
    }

    #[test]
    fn the_daemons_own_receiver_is_reached_over_http() {
        for (public, listen, expected) in [
            (
                "http://127.0.0.1:4242",
                "127.0.0.1:4242",
                "http://127.0.0.1:4242/webhooks/griffin/test",
            ),
            (
                "http://pay.example/",
                "0.0.0.0:4242",
                "http://pay.example/webhooks/griffin/test",
            ),
            (
                "https://pay.example",
                "0.0.0.0:4242",
                "http://127.0.0.1:4242/webhooks/griffin/test",
            ),
            (
                "https://pay.example",
                "[::]:8080",
                "http://[::1]:8080/webhooks/griffin/test",
            ),
            (
                "https://pay.example",
                "10.0.0.5:4242",
                "http://10.0.0.5:4242/webhooks/griffin/test",
            ),
        ] {
            assert_eq!(own_receiver(public, listen), expected, "{public} {listen}");
        }
    }

    #[test]
    fn a_dropped_event_has_no_copy_and_duplicate_mode_two() {
        for (dropped, duplicate, n) in [
            (false, false, 1),
            (false, true, 2),
            (true, false, 0),
            (true, true, 0),
        ] {
            assert_eq!(copies(dropped, duplicate), n, "{dropped} {duplicate}");
        }
    }

    #[test]
    fn reorder_mode_sends_newest_first() {
        let ms = Duration::from_millis;
        let spacing = ms(200);
        let delays = |reorder| {
            (0..3)
                .map(|i| send_delay(i, 3, reorder, spacing))
                .collect::<Vec<_>>()
        };
        assert_eq!(delays(false), [ms(0), ms(0), ms(0)]);
        assert_eq!(delays(true), [ms(400), ms(200), ms(0)]);
        assert_eq!(send_delay(0, 0, true, spacing), ms(0));
        assert_eq!(send_delay(5, 3, true, spacing), ms(0));
    }

    #[test]
    fn a_wrong_amount_credit_posts_the_delta_but_never_nothing() {
        for (amount, delta, posted) in [
            (1000, 0, 1000),
            (1000, 1, 1001),
            (1000, -250, 750),
            (1000, -1000, 1),
            (1000, -5000, 1),
            (i64::MAX, 1, i64::MAX),
        ] {
            assert_eq!(injected_amount(amount, delta), posted, "{amount} {delta}");
        }
    }

    #[test]
    fn a_credit_posts_now_later_or_when_released() {
        assert_eq!(credit_due(1000, 0, false), None);
        assert_eq!(credit_due(1000, 500, false), Some(1500.0));
        assert_eq!(credit_due(1000, 0, true), Some(f64::INFINITY));
        assert_eq!(credit_due(1000, 500, true), Some(f64::INFINITY));
        assert_eq!(credit_due(1000, -5, false), None);
    }

    #[test]
    fn a_test_delivery_reports_griffins_error_codes() {
        for (attempt, expected) in [
            (Attempted::Answered(200), (Some(200), None)),
            (Attempted::Answered(204), (Some(204), None)),
            (
                Attempted::Answered(500),
                (Some(500), Some("webhook-invalid-response")),
            ),
            (
                Attempted::Answered(401),
                (Some(401), Some("webhook-invalid-response")),
            ),
            (Attempted::TimedOut, (None, Some("webhook-timeout"))),
            (Attempted::Unreachable, (None, Some("webhook-unknown-host"))),
            (Attempted::Garbled, (None, Some("webhook-unknown-error"))),
        ] {
            assert_eq!(test_outcome(attempt), expected, "{attempt:?}");
        }
    }
}
