//! What a payment's result does to the invoice it paid for, and to that invoice's
//! subscription: paid, or the failed attempt counted with the next dunning retry or the final
//! action. Written in the payment's own finish commit, so a payment and its effect on billing
//! land together or not at all. Below the payments layer: it needs no payment processor.

use calmony_protocol::ApiError;
use calmony_protocol::billing::Subscription;
use calmony_protocol::event::EventRequest;

use super::customer_time;
use super::dunning::{self, AfterFailure, FinalAction};
use super::invoice_records::{KnownInvoice, mark_paid, write_invoice};
use super::keys;
use super::status::{BillingReason, InvoiceStatus, SubscriptionStatus};
use super::transitions::{
    Due, InvoiceCommand, PaymentResult, due_after_payment, invoice_after,
    subscription_after_payment,
};
use crate::resource::{event, to_json};
use crate::store::{Scope, Store, Tx};

/// Apply a payment's result to its invoice (and the invoice's subscription), in the payment's
/// own finish commit: `open`/`uncollectible` -> `paid` (the subscription `active` again), or
/// the attempt counted with the next retry (dunning) or the final action
/// (`past_due`/`unpaid`/`canceled`). Called by the IntentProcessor.
#[allow(clippy::too_many_arguments)]
pub async fn on_payment(
    store: &Store,
    tx: &mut Tx,
    scope: &Scope,
    invoice_id: &str,
    intent: Option<&str>,
    succeeded: bool,
    dunning_secs: &[i64],
    final_action: &str,
    request: &EventRequest,
    known: Option<KnownInvoice>,
) -> Result<(), ApiError> {
    let mut known = KnownInvoice::load(known, store, scope, invoice_id).await?;
    let sub = known.subscription(store, scope, tx).await;
    let KnownInvoice {
        version: v,
        invoice: mut inv,
        mut internal,
        ..
    } = known;
    let now = customer_time::now_for_invoice(store, scope, &inv).await;
    internal.paying = None;
    inv.attempted = true;
    inv.attempt_count += 1;
    if let Some(pi) = intent {
        inv.payment_intent = Some(pi.to_string());
    }
    let mut retry_at: Option<i64> = None;
    let mut result: Option<PaymentResult> = None;
    if succeeded {
        if invoice_after(InvoiceStatus::of(&inv.status), InvoiceCommand::Pay).is_some() {
            mark_paid(&mut inv, now);
            tx.event(scope, &event("invoice.paid", &inv, scope, request, now));
            tx.event(
                scope,
                &event("invoice.payment_succeeded", &inv, scope, request, now),
            );
            result = Some(PaymentResult::Paid);
        }
    } else {
        let after = dunning::after_failure(
            BillingReason::of(&inv.billing_reason),
            inv.attempt_count,
            dunning_secs,
            FinalAction::of(final_action),
            now,
        );
        match after {
            AfterFailure::RetryAt(at) => retry_at = Some(at),
            AfterFailure::Final(action) => result = Some(PaymentResult::GaveUp(action)),
            AfterFailure::NoRetry => {}
        }
        inv.next_payment_attempt = retry_at;
        tx.event(
            scope,
            &event("invoice.payment_failed", &inv, scope, request, now),
        );
    }
    write_invoice(tx, scope, v + 1, &inv, &internal)?;
    tx.expect_version(&scope.record(invoice_id), v);
    match sub {
        Some(sub) => subscription_after(tx, scope, sub, result, retry_at, request, now),
        None => Ok(()),
    }
}

/// What an invoice's result does to its subscription, in the same commit: its status (an
/// invoice paid makes an `incomplete`, `past_due` or `unpaid` one `active`, giving up applies
/// the final action) and its place in the due set. Also used when an invoice is marked paid
/// out of band.
pub(crate) fn subscription_after(
    tx: &mut Tx,
    scope: &Scope,
    (sv, mut s): (u64, Subscription),
    result: Option<PaymentResult>,
    retry_at: Option<i64>,
    request: &EventRequest,
    now: i64,
) -> Result<(), ApiError> {
    let before = SubscriptionStatus::of(&s.status);
    let after = result.map_or(before, |r| subscription_after_payment(before, r));
    if after != before {
        s.status = after.as_str().into();
        if after == SubscriptionStatus::Canceled {
            s.canceled_at = Some(now);
            s.ended_at = Some(now);
        }
    }
    let due_set = keys::due_set(s.test_clock.as_deref());
    let member = keys::due_member(scope, &s.id);
    match due_after_payment(after, retry_at, s.current_period_end) {
        Due::Unschedule => {
            tx.unindex(&due_set, &member);
        }
        Due::At(at) => {
            tx.schedule(&due_set, at, &member);
        }
        Due::Keep => {}
    }
    if after != before || retry_at.is_some() {
        let body = to_json(&s)?;
        tx.put(&scope.record(&s.id), sv + 1, &body);
        if after != before {
            let kind = if after == SubscriptionStatus::Canceled {
                "deleted"
            } else {
                "updated"
            };
            for prefix in ["subscription", "customer.subscription"] {
                tx.event(
                    scope,
                    &event(&format!("{prefix}.{kind}"), &s, scope, request, now),
                );
            }
        }
    }
    Ok(())
}
