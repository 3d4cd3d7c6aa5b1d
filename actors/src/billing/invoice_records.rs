//! An invoice as billing keeps it: its record and what is kept beside it, a new draft and its
//! lines, and the writes every invoice path shares (paid, indexed). A leaf below the invoice
//! API, the subscriptions, the scheduler and a payment's result, so each of them builds and
//! writes invoices the same way without importing another.

use calmony_protocol::billing::{
    INVOICE_PREFIX, Invoice, InvoiceLine, LINE_PREFIX, LineList, Period, SUBSCRIPTION_PREFIX,
    StatusTransitions, Subscription,
};
use calmony_protocol::customer::Customer;
use calmony_protocol::{ApiError, ids};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::catalog::load;
use super::keys;
use super::status::{BillingReason, InvoiceStatus};
use crate::store::{Scope, Store, Tx};

/// What is kept beside an invoice.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InvoiceInternal {
    /// A payment in flight for it: no second charge while this is set.
    pub paying: Option<String>,
    /// The unguessable part of its public PDF link.
    pub pdf_token: String,
}

/// An invoice as its caller has just written it (and, for a subscription's, the subscription
/// as it stands), handed to the next step so that step need not read them back: a renewal's
/// charge, then the payment's finish. Every write that relies on it still checks the version
/// it names, so a change made meanwhile fails that commit and the step reads afresh.
#[derive(Debug, Clone)]
pub struct KnownInvoice {
    pub version: u64,
    pub invoice: Invoice,
    pub internal: InvoiceInternal,
    pub subscription: Option<(u64, Subscription)>,
}

impl KnownInvoice {
    /// `id` as known, or as read from Redis.
    pub(crate) async fn load(
        known: Option<KnownInvoice>,
        store: &Store,
        scope: &Scope,
        id: &str,
    ) -> Result<KnownInvoice, ApiError> {
        if let Some(k) = known.filter(|k| k.invoice.id == id) {
            return Ok(k);
        }
        let (version, invoice, internal) = load_invoice(store, scope, id).await?;
        Ok(KnownInvoice {
            version,
            invoice,
            internal,
            subscription: None,
        })
    }

    /// The invoice's subscription, as known or as read; `tx` then checks its version, since
    /// what the commit does to the subscription (or its schedule) follows from this state.
    pub(crate) async fn subscription(
        &mut self,
        store: &Store,
        scope: &Scope,
        tx: &mut Tx,
    ) -> Option<(u64, Subscription)> {
        let id = self.invoice.subscription.clone()?;
        let found = match self.subscription.take().filter(|(_, s)| s.id == id) {
            Some(known) => Some(known),
            None => load::<Subscription>(
                store,
                scope,
                SUBSCRIPTION_PREFIX,
                "subscription",
                &id,
                "subscription",
            )
            .await
            .ok(),
        };
        if let Some((v, _)) = &found {
            tx.expect_version(&scope.record(&id), *v);
        }
        found
    }
}

pub(crate) async fn load_invoice(
    store: &Store,
    scope: &Scope,
    id: &str,
) -> Result<(u64, Invoice, InvoiceInternal), ApiError> {
    crate::resource::load_with_internal(store, scope, (INVOICE_PREFIX, "invoice", "invoice"), id)
        .await
}

pub(crate) fn write_invoice(
    tx: &mut Tx,
    scope: &Scope,
    version: u64,
    inv: &Invoice,
    internal: &InvoiceInternal,
) -> Result<String, ApiError> {
    crate::resource::write_with_internal(tx, scope, &inv.id, version, inv, internal)
}

/// Who an invoice bills.
pub(crate) struct BillTo<'a> {
    pub id: &'a str,
    pub email: Option<String>,
    pub name: Option<String>,
    pub test_clock: Option<String>,
}

impl<'a> From<&'a Customer> for BillTo<'a> {
    fn from(c: &'a Customer) -> Self {
        Self {
            id: &c.id,
            email: c.email.clone(),
            name: c.name.clone(),
            test_clock: c.test_clock.clone(),
        }
    }
}

/// A new draft.
pub(crate) fn draft(
    public_base: &str,
    scope: &Scope,
    to: BillTo<'_>,
    now: i64,
    reason: BillingReason,
) -> (Invoice, InvoiceInternal) {
    let id = ids::new_id(INVOICE_PREFIX);
    let token = ids::random_alnum(24);
    let inv = Invoice {
        object: "invoice".into(),
        account_country: "GB".into(),
        account_name: None,
        amount_due: 0,
        amount_paid: 0,
        amount_remaining: 0,
        attempt_count: 0,
        attempted: false,
        auto_advance: false,
        billing_reason: reason.as_str().into(),
        collection_method: "charge_automatically".into(),
        created: now,
        currency: "gbp".into(),
        customer: to.id.to_string(),
        customer_email: to.email,
        customer_name: to.name,
        default_payment_method: None,
        default_tax_rates: Vec::new(),
        description: None,
        due_date: None,
        effective_at: None,
        hosted_invoice_url: None,
        invoice_pdf: Some(format!(
            "{public_base}/invoices/{}/{}/{id}/{token}.pdf",
            scope.project, scope.mode
        )),
        lines: LineList {
            object: "list".into(),
            data: Vec::new(),
            has_more: false,
            total_count: 0,
            url: format!("/v1/invoices/{id}/lines"),
        },
        livemode: scope.livemode(),
        metadata: Default::default(),
        next_payment_attempt: None,
        number: None,
        paid: false,
        parent: None,
        payment_intent: None,
        period_end: now,
        period_start: now,
        status: InvoiceStatus::Draft.as_str().into(),
        status_transitions: StatusTransitions::default(),
        subscription: None,
        subtotal: 0,
        subtotal_excluding_tax: 0,
        tax: 0,
        total: 0,
        total_excluding_tax: 0,
        total_taxes: Vec::new(),
        test_clock: to.test_clock,
        id,
    };
    (
        inv,
        InvoiceInternal {
            paying: None,
            pdf_token: token,
        },
    )
}

pub(crate) fn line(
    inv: &Invoice,
    description: Option<String>,
    unit_amount: i64,
    quantity: i64,
    period: Period,
    price: Option<String>,
    tax_rates: Vec<String>,
    proration: bool,
) -> InvoiceLine {
    InvoiceLine {
        id: ids::new_id(LINE_PREFIX),
        object: "line_item".into(),
        amount: unit_amount * quantity,
        currency: "gbp".into(),
        description,
        invoice: Some(inv.id.clone()),
        invoice_item: None,
        livemode: inv.livemode,
        metadata: Default::default(),
        period,
        pricing: price
            .as_ref()
            .map(|p| json!({"type": "price_details", "price_details": {"price": p}})),
        price,
        proration,
        quantity,
        subscription: inv.subscription.clone(),
        tax_amounts: Vec::new(),
        tax_rates,
        unit_amount,
    }
}

/// Record an invoice as paid at `now` (its whole amount due).
pub(crate) fn mark_paid(inv: &mut Invoice, now: i64) {
    inv.status = InvoiceStatus::Paid.as_str().into();
    inv.paid = true;
    inv.amount_paid = inv.amount_due;
    inv.amount_remaining = 0;
    inv.status_transitions.paid_at = Some(now);
    inv.next_payment_attempt = None;
}

/// Index an invoice under its subscription (for `GET /v1/invoices?subscription=`).
pub(crate) fn index_for_subscription(tx: &mut Tx, scope: &Scope, inv: &Invoice) {
    tx.index(&keys::invoices(scope), &inv.id)
        .index(&keys::customer_invoices(scope, &inv.customer), &inv.id);
    if let Some(s) = &inv.subscription {
        tx.index(&keys::subscription_invoices(scope, s), &inv.id);
    }
}
