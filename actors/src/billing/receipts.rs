//! The receipt invoice of a one-off payment: written in the payment's own finish commit, one
//! line per thing bought (or one for the payment), already paid and numbered. Below the
//! payments layer's view of billing: it needs no payment processor.

use calmony_protocol::ApiError;
use calmony_protocol::billing::{NUMBER_PLACEHOLDER, Period};
use calmony_protocol::event::EventRequest;
use calmony_protocol::payment_intent::PaymentIntent;

use super::invoice_records::{BillTo, draft, line, mark_paid, write_invoice};
use super::keys;
use super::status::{BillingReason, InvoiceStatus};
use super::totals;
use crate::resource::event;
use crate::store::{Scope, Tx};

/// The receipt invoice of a one-off payment that just succeeded, written in the payment's own
/// finish commit: one line, already paid, with its number.
pub fn receipt_for(
    tx: &mut Tx,
    scope: &Scope,
    intent: &PaymentIntent,
    invoice_prefix: &str,
    public_base: &str,
    request: &EventRequest,
    now: i64,
) -> Result<String, ApiError> {
    receipt_with_lines(
        tx,
        scope,
        intent,
        &[],
        invoice_prefix,
        public_base,
        request,
        now,
    )
}

/// A line of a receipt that itemises what was bought (a checkout session's lines).
#[derive(Debug, Clone)]
pub struct ReceiptLine {
    pub description: String,
    pub unit_amount: i64,
    pub quantity: i64,
}

/// [`receipt_for`], with the lines given (they add up to the payment); with none, one line
/// of the payment's description and amount.
#[allow(clippy::too_many_arguments)]
pub fn receipt_with_lines(
    tx: &mut Tx,
    scope: &Scope,
    intent: &PaymentIntent,
    items: &[ReceiptLine],
    invoice_prefix: &str,
    public_base: &str,
    request: &EventRequest,
    now: i64,
) -> Result<String, ApiError> {
    let to = BillTo {
        id: intent.customer.as_deref().unwrap_or(""),
        email: intent.receipt_email.clone(),
        name: None,
        test_clock: None,
    };
    let (mut inv, internal) = draft(public_base, scope, to, now, BillingReason::Manual);
    inv.description = intent.description.clone();
    inv.payment_intent = Some(intent.id.clone());
    let desc = intent
        .description
        .clone()
        .unwrap_or_else(|| "Payment".into());
    let one = [ReceiptLine {
        description: desc,
        unit_amount: intent.amount_received,
        quantity: 1,
    }];
    let items = if items.is_empty() { &one[..] } else { items };
    for item in items {
        let l = line(
            &inv,
            Some(item.description.clone()),
            item.unit_amount,
            item.quantity,
            Period {
                start: now,
                end: now,
            },
            None,
            Vec::new(),
            false,
        );
        inv.lines.data.push(l);
    }
    totals::apply(&mut inv, &[]);
    tx.number(
        &keys::invoice_counter(scope),
        NUMBER_PLACEHOLDER,
        invoice_prefix,
    );
    inv.status = InvoiceStatus::Open.as_str().into();
    inv.number = Some(NUMBER_PLACEHOLDER.into());
    inv.status_transitions.finalized_at = Some(now);
    inv.effective_at = Some(now);
    mark_paid(&mut inv, now);
    inv.attempted = true;
    inv.attempt_count = 1;
    // A fresh id: no absence check needed.
    write_invoice(tx, scope, 1, &inv, &internal)?;
    tx.index(&keys::invoices(scope), &inv.id);
    if let Some(c) = &intent.customer {
        tx.index(&keys::customer_invoices(scope, c), &inv.id);
    }
    tx.event(scope, &event("invoice.created", &inv, scope, request, now));
    tx.event(scope, &event("invoice.paid", &inv, scope, request, now));
    Ok(inv.id)
}
