//! The sandbox's pure decisions: a submission's status at a time, a payment's fate, and
//! which ledger entries a page holds.

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
}
