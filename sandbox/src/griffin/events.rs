//! Events, derived when read from the records they are about, so no change has to write
//! them and none can be missed: a payment's `payment-created`, its submission's
//! `submission-created` and (once its delay has passed) `submission-updated`, an incoming
//! payment's `admission-created` and `admission-updated`, and every ledger entry's
//! `transaction-created`. Ids are derived too (`ev.<record>-<n>`), so a consumer deduping on
//! `event-url` sees each event once however often it reads. [`super::delivery`] sends each to
//! the webhook once it is claimed.

use calmony_protocol::griffin::{AdmissionStatus, Event, SubmissionStatus};

use super::store::{Entry, PaymentRecord};
use super::wire;

/// Every event about `payments` and `ledger` at `now_ms`, newest first.
pub fn all(payments: &[PaymentRecord], ledger: &[Entry], now_ms: i64, delay_ms: i64) -> Vec<Event> {
    let mut out: Vec<(i64, Event)> = Vec::new();
    let mut push = |at: i64, id: String, kind: &str, payload: serde_json::Value| {
        out.push((
            at,
            Event {
                event_url: format!("/v0/events/{id}"),
                event_type: kind.to_owned(),
                event_payload: payload,
                created_at: wire::iso(at),
            },
        ));
    };
    for p in payments {
        let tail = p.id.trim_start_matches("pm.");
        push(
            p.created_ms,
            format!("ev.{tail}-1"),
            "payment-created",
            value(&wire::payment(p)),
        );
        if let (Some(s), Some(now)) = (&p.submission, wire::submission(p, now_ms, delay_ms)) {
            let mut first = now.clone();
            first.submission_status = SubmissionStatus::Processing;
            first.submission_status_reason = None;
            push(
                s.submitted_ms,
                format!("ev.{tail}-2"),
                "submission-created",
                value(&first),
            );
            if now.submission_status != SubmissionStatus::Processing {
                let due = s.submitted_ms.saturating_add(delay_ms);
                push(
                    due,
                    format!("ev.{tail}-3"),
                    "submission-updated",
                    value(&now),
                );
            }
        }
        if let Some(a) = wire::admission(p) {
            let mut first = a.clone();
            first.admission_status = AdmissionStatus::Processing;
            let at = p.admission.as_ref().map_or(p.created_ms, |r| r.created_ms);
            push(
                at,
                format!("ev.{tail}-4"),
                "admission-created",
                value(&first),
            );
            push(at, format!("ev.{tail}-5"), "admission-updated", value(&a));
        }
    }
    for e in ledger {
        let tail = e.id.trim_start_matches("tr.");
        push(
            e.processed_ms,
            format!("ev.{tail}-6"),
            "transaction-created",
            value(&wire::transaction(e)),
        );
    }
    out.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| b.1.event_url.cmp(&a.1.event_url))
    });
    out.into_iter().map(|(_, e)| e).collect()
}

/// A resource as the event's payload.
fn value<T: serde::Serialize>(resource: &T) -> serde_json::Value {
    serde_json::to_value(resource).unwrap_or_default()
}
