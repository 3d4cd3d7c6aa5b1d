//! Invoices: drafts built from invoice items, finalization (the gap-free number is taken in
//! the finalizing commit), payment through the IntentProcessor, void, uncollectible, the
//! receipt invoice of every one-off payment, and the PDF (rendered once per version, cached).

use calmony_protocol::billing::{
    INVOICE_ITEM_PREFIX, INVOICE_PREFIX, Invoice, InvoiceItem, InvoiceLine, LINE_PREFIX, LineList,
    NUMBER_PLACEHOLDER, Period, StatusTransitions, Subscription,
};
use calmony_protocol::customer::Customer;
use calmony_protocol::event::EventRequest;
use calmony_protocol::list::ListParams;
use calmony_protocol::params::{Field, Params};
use calmony_protocol::payment_intent::PaymentIntent;
use calmony_protocol::{ApiError, ErrorType, ids, metadata};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::catalog::{self, load, rates_for, take_tax_rates};
use super::{Billing, due_member};
use crate::context::{Reply, RequestContext};
use crate::resource::{commit, commit_answer, page_body, to_json};
use crate::store::{Commit, Scope, Store, Tx, filters};

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
    async fn load(
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
    async fn subscription(
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
                calmony_protocol::billing::SUBSCRIPTION_PREFIX,
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

pub(super) fn index(scope: &Scope) -> String {
    scope.key("invoices")
}

fn customer_index(scope: &Scope, customer: &str) -> String {
    scope.key(&format!("customer:{customer}:invoices"))
}

fn pending_items(scope: &Scope, customer: &str) -> String {
    scope.key(&format!("customer:{customer}:pending_items"))
}

fn counter(scope: &Scope) -> String {
    scope.key("invoice_seq")
}

pub(super) async fn load_invoice(
    store: &Store,
    scope: &Scope,
    id: &str,
) -> Result<(u64, Invoice, InvoiceInternal), ApiError> {
    crate::resource::load_with_internal(store, scope, (INVOICE_PREFIX, "invoice", "invoice"), id)
        .await
}

pub(super) fn write_invoice(
    tx: &mut Tx,
    scope: &Scope,
    version: u64,
    inv: &Invoice,
    internal: &InvoiceInternal,
) -> Result<String, ApiError> {
    crate::resource::write_with_internal(tx, scope, &inv.id, version, inv, internal)
}

pub(super) use crate::resource::event;

/// Who an invoice bills.
pub(super) struct BillTo<'a> {
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
pub(super) fn draft(
    public_base: &str,
    scope: &Scope,
    to: BillTo<'_>,
    now: i64,
    reason: &str,
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
        billing_reason: reason.into(),
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
        status: "draft".into(),
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

pub(super) fn line(
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

/// Move a draft to `open` in `tx`: the number (taken by the commit), the finalized time, the
/// totals fixed; a zero invoice is paid at once. Events `invoice.finalized` (and `paid`).
/// Warns the operator if the project has no display name to print as the supplier.
pub(super) fn finalize_in(
    b: &Billing,
    tx: &mut Tx,
    scope: &Scope,
    inv: &mut Invoice,
    now: i64,
    request: &EventRequest,
) {
    inv.status = "open".into();
    inv.number = Some(NUMBER_PLACEHOLDER.into());
    inv.status_transitions.finalized_at = Some(now);
    inv.effective_at = Some(now);
    inv.auto_advance = inv.collection_method == "charge_automatically";
    tx.number(&counter(scope), NUMBER_PLACEHOLDER, &b.invoice_prefix);
    tx.event(scope, &event("invoice.finalized", inv, scope, request, now));
    super::pdf::warn_if_unnamed(&b.store, &scope.project);
    if inv.amount_due == 0 {
        mark_paid(inv, now);
        tx.event(scope, &event("invoice.paid", inv, scope, request, now));
    }
}

fn mark_paid(inv: &mut Invoice, now: i64) {
    inv.status = "paid".into();
    inv.paid = true;
    inv.amount_paid = inv.amount_due;
    inv.amount_remaining = 0;
    inv.status_transitions.paid_at = Some(now);
    inv.next_payment_attempt = None;
}

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
    let (mut inv, internal) = draft(public_base, scope, to, now, "manual");
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
    inv.compute(&[]);
    tx.number(&counter(scope), NUMBER_PLACEHOLDER, invoice_prefix);
    inv.status = "open".into();
    inv.number = Some(NUMBER_PLACEHOLDER.into());
    inv.status_transitions.finalized_at = Some(now);
    inv.effective_at = Some(now);
    mark_paid(&mut inv, now);
    inv.attempted = true;
    inv.attempt_count = 1;
    // A fresh id: no absence check needed.
    write_invoice(tx, scope, 1, &inv, &internal)?;
    tx.index(&index(scope), &inv.id);
    if let Some(c) = &intent.customer {
        tx.index(&customer_index(scope, c), &inv.id);
    }
    tx.event(scope, &event("invoice.created", &inv, scope, request, now));
    tx.event(scope, &event("invoice.paid", &inv, scope, request, now));
    Ok(inv.id)
}

/// Apply a payment's result to its invoice (and the invoice's subscription), in the payment's
/// own finish commit: paid, or the attempt counted with the next retry (dunning) or the final
/// action. Called by the IntentProcessor.
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
    let now = super::clocks::now_for_invoice(store, scope, &inv).await;
    internal.paying = None;
    inv.attempted = true;
    inv.attempt_count += 1;
    if let Some(pi) = intent {
        inv.payment_intent = Some(pi.to_string());
    }
    let mut sub_next_due: Option<i64> = None;
    let mut sub_status: Option<&str> = None;
    if succeeded {
        if inv.status == "open" || inv.status == "uncollectible" {
            mark_paid(&mut inv, now);
            tx.event(scope, &event("invoice.paid", &inv, scope, request, now));
            tx.event(
                scope,
                &event("invoice.payment_succeeded", &inv, scope, request, now),
            );
            sub_status = Some("active");
        }
    } else {
        let retry = usize::try_from(inv.attempt_count - 1)
            .ok()
            .and_then(|i| dunning_secs.get(i));
        let is_renewal = inv.billing_reason == "subscription_cycle";
        inv.next_payment_attempt = match (retry, is_renewal) {
            (Some(d), true) => Some(now + d),
            _ => None,
        };
        tx.event(
            scope,
            &event("invoice.payment_failed", &inv, scope, request, now),
        );
        if is_renewal {
            match inv.next_payment_attempt {
                Some(at) => sub_next_due = Some(at),
                None => {
                    sub_status = Some(match final_action {
                        "unpaid" => "unpaid",
                        "cancel" => "canceled",
                        _ => "past_due",
                    });
                }
            }
        }
    }
    write_invoice(tx, scope, v + 1, &inv, &internal)?;
    tx.expect_version(&scope.record(invoice_id), v);
    if let Some((sv, mut s)) = sub {
        let before = s.status.clone();
        if let Some(st) = sub_status {
            let changes_status = match st {
                "active" => matches!(
                    s.status.as_str(),
                    "incomplete" | "past_due" | "unpaid" | "active"
                ),
                _ => s.status != "canceled",
            };
            if changes_status {
                s.status = st.to_string();
            }
            if st == "canceled" {
                s.canceled_at = Some(now);
                s.ended_at = Some(now);
            }
        }
        let due_set = Billing::due_set(s.test_clock.as_deref());
        let member = due_member(scope, &s.id);
        match (s.status.as_str(), sub_next_due) {
            ("canceled" | "incomplete_expired", _) => {
                tx.unindex(&due_set, &member);
            }
            (_, Some(at)) => {
                tx.schedule(&due_set, at.min(s.current_period_end), &member);
            }
            ("active" | "past_due" | "unpaid", None) => {
                tx.schedule(&due_set, s.current_period_end, &member);
            }
            _ => {}
        }
        if s.status != before || sub_next_due.is_some() {
            let body = to_json(&s)?;
            tx.put(&scope.record(&s.id), sv + 1, &body);
            if s.status != before {
                let kind = if s.status == "canceled" {
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
    }
    Ok(())
}

/// `POST /v1/invoices`: a draft for a customer, taking the customer's pending invoice items.
pub async fn create_invoice(
    b: &Billing,
    ctx: &RequestContext,
    mut p: Params,
) -> Result<Reply, ApiError> {
    let scope = &ctx.scope;
    let (customer, now) = b.billed_customer(scope, &mut p).await?;
    let cus_id = customer.id.clone();
    let (mut inv, internal) = draft(
        &b.public_base,
        scope,
        BillTo::from(&customer),
        now,
        "manual",
    );
    inv.description = p.string_max(&["description"], 5000)?.into_option();
    inv.collection_method = p
        .one_of(
            &["collection_method", "collectionMethod"],
            &["charge_automatically", "send_invoice"],
        )?
        .into_option()
        .unwrap_or_else(|| "charge_automatically".into());
    if let Some(days) = p
        .integer(&["days_until_due", "daysUntilDue"], 0, 3650)?
        .into_option()
    {
        inv.due_date = Some(now + days * 86_400);
    }
    inv.default_payment_method = p
        .string_max(&["default_payment_method", "defaultPaymentMethod"], 100)?
        .into_option();
    if let Some(rates) = take_tax_rates(
        &b.store,
        scope,
        &mut p,
        &["default_tax_rates", "defaultTaxRates"],
    )
    .await?
    {
        inv.default_tax_rates = rates;
    }
    if let Some(m) = metadata::take(&mut p)? {
        m.apply(&mut inv.metadata, "metadata")?;
    }
    let include = p
        .one_of(&["pending_invoice_items_behavior"], &["include", "exclude"])?
        .into_option()
        .is_none_or(|b| b == "include");
    p.ignore(&["auto_advance", "subscription"]);
    p.expand()?;
    p.finish()?;
    let mut tx = Tx::new();
    if include {
        let mut c = b.store.conn();
        let pending: Vec<String> = b
            .store
            .run(c.zrange(pending_items(scope, &cus_id), 0, 500))
            .await?;
        for item_id in pending {
            let (iv, mut item): (u64, InvoiceItem) = load(
                &b.store,
                scope,
                INVOICE_ITEM_PREFIX,
                "invoiceitem",
                &item_id,
                "invoiceitem",
            )
            .await?;
            let mut l = line(
                &inv,
                item.description.clone(),
                item.unit_amount,
                item.quantity,
                item.period.clone(),
                item.price.clone(),
                item.tax_rates.clone(),
                item.proration,
            );
            l.invoice_item = Some(item.id.clone());
            l.subscription = item.subscription.clone();
            inv.lines.data.push(l);
            item.invoice = Some(inv.id.clone());
            tx.expect_version(&scope.record(&item.id), iv)
                .put(&scope.record(&item.id), iv + 1, &to_json(&item)?)
                .unindex(&pending_items(scope, &cus_id), &item.id);
        }
    }
    let ids: Vec<String> = inv
        .lines
        .data
        .iter()
        .flat_map(|l| l.tax_rates.clone())
        .chain(inv.default_tax_rates.clone())
        .collect();
    inv.compute(&rates_for(&b.store, scope, &ids).await?);
    tx.expect_version(&scope.record(&inv.id), 0);
    let body = write_invoice(&mut tx, scope, 1, &inv, &internal)?;
    tx.index(&index(scope), &inv.id)
        .index(&customer_index(scope, &cus_id), &inv.id);
    tx.event(
        scope,
        &event("invoice.created", &inv, scope, &ctx.event_request(), now),
    );
    tx.respond(ctx, 200, &body);
    commit_answer(&b.store, &tx, body).await
}

/// `POST /v1/invoiceitems`: a charge for a customer's next invoice, or for a draft (`invoice`).
pub async fn create_invoice_item(
    b: &Billing,
    ctx: &RequestContext,
    mut p: Params,
) -> Result<Reply, ApiError> {
    let scope = &ctx.scope;
    let (customer, now) = b.billed_customer(scope, &mut p).await?;
    let cus_id = customer.id.clone();
    let mut tx = Tx::new();
    let quantity = p
        .integer(&["quantity"], 1, 1_000_000)?
        .into_option()
        .unwrap_or(1);
    let amount = p
        .integer(&["amount"], -99_999_999, 99_999_999)?
        .into_option();
    let unit = p
        .integer(&["unit_amount", "unitAmount"], 0, 99_999_999)?
        .into_option();
    let price_id = p.string_max(&["price"], 100)?.into_option();
    let price_data = match p.object(&["price_data", "priceData"])? {
        Field::Set(mut pd) => {
            Some(catalog::price_from(&b.store, ctx, &mut pd, &mut tx, true).await?)
        }
        _ => None,
    };
    if p.take(&["currency"])?
        .is_some_and(|(_, c)| !c.as_str().is_some_and(|c| c.eq_ignore_ascii_case("gbp")))
    {
        return Err(ApiError::invalid_param(
            "parameter_invalid_value",
            "currency",
            "Calmony Pay supports gbp only.",
        ));
    }
    let (unit_amount, price) = match (amount, unit, price_id, price_data) {
        (Some(a), _, _, _) => (a / quantity.max(1), None),
        (None, Some(u), _, _) => (u, None),
        (None, None, Some(pid), _) => {
            let (_, price): (u64, calmony_protocol::billing::Price) =
                load(&b.store, scope, "price", "price", &pid, "price").await?;
            (price.unit_amount, Some(price.id))
        }
        (None, None, None, Some(pd)) => (pd.unit_amount, Some(pd.id)),
        _ => return Err(ApiError::missing_param("amount")),
    };
    let tax_rates = take_tax_rates(&b.store, scope, &mut p, &["tax_rates", "taxRates"])
        .await?
        .unwrap_or_default();
    let mut item = InvoiceItem {
        id: ids::new_id(INVOICE_ITEM_PREFIX),
        object: "invoiceitem".into(),
        amount: unit_amount * quantity,
        currency: "gbp".into(),
        customer: cus_id.clone(),
        date: now,
        description: p.string_max(&["description"], 5000)?.into_option(),
        invoice: p.string_max(&["invoice"], 100)?.into_option(),
        livemode: scope.livemode(),
        metadata: Default::default(),
        period: Period {
            start: now,
            end: now,
        },
        price,
        proration: false,
        quantity,
        subscription: None,
        tax_rates,
        unit_amount,
    };
    if let Some(m) = metadata::take(&mut p)? {
        m.apply(&mut item.metadata, "metadata")?;
    }
    p.ignore(&["period", "discountable"]);
    p.expand()?;
    p.finish()?;
    if let Some(inv_id) = item.invoice.clone() {
        let (v, mut inv, internal) =
            load_invoice(&b.store, scope, &inv_id)
                .await
                .map_err(|mut e| {
                    e.status = 400;
                    e
                })?;
        if inv.status != "draft" || inv.customer != cus_id {
            return Err(ApiError::invalid_param(
                "invoice_not_editable",
                "invoice",
                "Items can only be added to a draft invoice of the same customer.",
            ));
        }
        let mut l = line(
            &inv,
            item.description.clone(),
            item.unit_amount,
            item.quantity,
            item.period.clone(),
            item.price.clone(),
            item.tax_rates.clone(),
            false,
        );
        l.invoice_item = Some(item.id.clone());
        inv.lines.data.push(l);
        let ids: Vec<String> = inv
            .lines
            .data
            .iter()
            .flat_map(|l| l.tax_rates.clone())
            .chain(inv.default_tax_rates.clone())
            .collect();
        inv.compute(&rates_for(&b.store, scope, &ids).await?);
        tx.expect_version(&scope.record(&inv_id), v);
        write_invoice(&mut tx, scope, v + 1, &inv, &internal)?;
    } else {
        tx.index(&pending_items(scope, &cus_id), &item.id);
    }
    let body = to_json(&item)?;
    tx.expect_version(&scope.record(&item.id), 0)
        .put(&scope.record(&item.id), 1, &body)
        .index(&scope.key("invoiceitems"), &item.id)
        .event(
            scope,
            &event(
                "invoiceitem.created",
                &item,
                scope,
                &ctx.event_request(),
                now,
            ),
        )
        .respond(ctx, 200, &body);
    commit_answer(&b.store, &tx, body).await
}

pub async fn retrieve_invoice_item(
    b: &Billing,
    ctx: &RequestContext,
    id: &str,
    p: Params,
) -> Result<Reply, ApiError> {
    crate::resource::retrieve_stored(&b.store, ctx, INVOICE_ITEM_PREFIX, "invoiceitem", id, p).await
}

pub async fn list_invoice_items(
    b: &Billing,
    ctx: &RequestContext,
    mut p: Params,
) -> Result<Reply, ApiError> {
    let list = ListParams::take(&mut p, INVOICE_ITEM_PREFIX)?;
    let customer = p.string_max(&["customer"], 100)?.into_option();
    let pending = p.boolean(&["pending"])?.into_option();
    let invoice = p.string_max(&["invoice"], 100)?.into_option();
    p.expand()?;
    p.finish()?;
    let all = ctx.scope.key("invoiceitems");
    let pending = pending.map(|p| p.to_string());
    let sets = filters::sets(
        &all,
        &all,
        &[
            ("customer", customer.as_deref()),
            ("pending", pending.as_deref()),
            ("invoice", invoice.as_deref()),
        ],
    );
    let (items, more) = b.store.page_where(&ctx.scope, &sets, &[], &list).await?;
    page_body("/v1/invoiceitems", &items, more).map(Reply::ok)
}

/// Re-read an invoice after a commit that numbered it (the number is written by the script).
async fn reread(b: &Billing, scope: &Scope, id: &str) -> Result<String, ApiError> {
    Ok(b.store
        .get(&scope.record(id))
        .await?
        .map(|r| r.json)
        .unwrap_or_default())
}

/// `POST /v1/invoices/:id/finalize`: draft -> open, numbered.
pub async fn finalize_invoice(
    b: &Billing,
    ctx: &RequestContext,
    id: &str,
    mut p: Params,
) -> Result<Reply, ApiError> {
    p.ignore(&["auto_advance"]);
    p.expand()?;
    p.finish()?;
    let scope = &ctx.scope;
    let (v, mut inv, internal) = load_invoice(&b.store, scope, id).await?;
    if inv.status != "draft" {
        return Err(ApiError::unexpected_state(
            "invoice",
            &inv.status,
            "finalized",
        ));
    }
    let now = super::clocks::now_for_invoice(&b.store, scope, &inv).await;
    let mut tx = Tx::new();
    tx.expect_version(&scope.record(id), v);
    finalize_in(b, &mut tx, scope, &mut inv, now, &ctx.event_request());
    let body = write_invoice(&mut tx, scope, v + 1, &inv, &internal)?;
    tx.respond(ctx, 200, &body);
    match commit(&b.store, &tx).await? {
        Commit::Done(_) => Ok(Reply {
            status: 200,
            body: reread(b, scope, id).await?,
            stored: true,
        }),
        _ => Err(ApiError::lock_timeout()),
    }
}

/// `POST /v1/invoices/:id/pay`: charge the payment method now (or `paid_out_of_band`).
pub async fn pay_invoice(
    b: &Billing,
    ctx: &RequestContext,
    id: &str,
    mut p: Params,
) -> Result<Reply, ApiError> {
    let pm = p
        .string_max(&["payment_method", "paymentMethod"], 100)?
        .into_option();
    let out_of_band = p
        .boolean(&["paid_out_of_band"])?
        .into_option()
        .unwrap_or(false);
    p.ignore(&["off_session", "forgive"]);
    p.expand()?;
    p.finish()?;
    let scope = &ctx.scope;
    let (v, mut inv, internal) = load_invoice(&b.store, scope, id).await?;
    if inv.status == "draft" {
        // Stripe finalizes a draft when asked to pay it.
        finalize_invoice(
            b,
            &RequestContext {
                deferred: None,
                idempotency: None,
                ..ctx.clone()
            },
            id,
            Params::default(),
        )
        .await?;
        return Box::pin(pay_invoice(b, ctx, id, Params::default())).await;
    }
    if !matches!(inv.status.as_str(), "open" | "uncollectible") {
        return Err(ApiError::unexpected_state("invoice", &inv.status, "paid"));
    }
    if out_of_band {
        let now = super::clocks::now_for_invoice(&b.store, scope, &inv).await;
        mark_paid(&mut inv, now);
        let mut tx = Tx::new();
        tx.expect_version(&scope.record(id), v);
        let body = write_invoice(&mut tx, scope, v + 1, &inv, &internal)?;
        tx.event(
            scope,
            &event("invoice.paid", &inv, scope, &ctx.event_request(), now),
        )
        .respond(ctx, 200, &body);
        return commit_answer(&b.store, &tx, body).await;
    }
    let reply = charge(b, scope, id, pm, Some(ctx)).await?;
    if reply.status == 200 {
        return Ok(Reply {
            status: 200,
            body: reread(b, scope, id).await?,
            stored: false,
        });
    }
    Ok(reply)
}

/// Charge an open invoice through the IntentProcessor. The payment method: the one given, the
/// invoice's, its subscription's, or the customer's default. An invoice with a payment in
/// flight is not charged again.
pub(super) async fn charge(
    b: &Billing,
    scope: &Scope,
    id: &str,
    pm: Option<String>,
    ctx: Option<&RequestContext>,
) -> Result<Reply, ApiError> {
    let known = KnownInvoice::load(None, &b.store, scope, id).await?;
    let (tx, begun) = begin_charge(b, scope, known, pm, ctx, false).await?;
    match commit(&b.store, &tx).await? {
        Commit::Done(Some(cmd_id)) => begun.run(&b.payments, &cmd_id).await,
        _ => Err(ApiError::lock_timeout()),
    }
}

/// Begin the charge of invoice `k`, which `tx` finalizes (not yet committed), within `tx`: the
/// payment's begin then lands with the invoice, one script instead of two. `None` when it
/// cannot begin (no card the customer still holds): the caller commits the invoice alone and
/// charges it afterwards, which says why (and, for a renewal, counts the failed attempt).
pub(super) async fn begin_charge_in(
    b: &Billing,
    scope: &Scope,
    tx: &mut Tx,
    k: KnownInvoice,
) -> Option<crate::payments::InvoiceChargeBegun> {
    let (charge, begun) = begin_charge(b, scope, k, None, None, true).await.ok()?;
    tx.absorb(charge);
    Some(begun)
}

/// Carry out a charge begun by [`begin_charge_in`], once its commit appended command `cmd_id`
/// and took `numbers` (the invoice's, in place of its placeholder).
pub(super) async fn run_begun(
    b: &Billing,
    begun: crate::payments::InvoiceChargeBegun,
    cmd_id: &str,
    numbers: &[String],
) -> Result<Reply, ApiError> {
    let number = match numbers {
        [n] => Some(n.as_str()),
        _ => None,
    };
    begun
        .numbered(NUMBER_PLACEHOLDER, number)
        .run(&b.payments, cmd_id)
        .await
}

/// The begin of invoice `k`'s charge, as a change to commit: the payment intent and its
/// command (see `payments::begin_invoice_charge`) and the invoice's in-flight marker, set
/// beside its JSON (which does not change). `written_here`: the change the caller adds this to
/// writes the invoice itself (a renewal's period invoice and its charge begin in one commit),
/// so the marker neither checks nor moves its version.
pub(super) async fn begin_charge(
    b: &Billing,
    scope: &Scope,
    k: KnownInvoice,
    pm: Option<String>,
    ctx: Option<&RequestContext>,
    written_here: bool,
) -> Result<(Tx, crate::payments::InvoiceChargeBegun), ApiError> {
    let KnownInvoice {
        version: v,
        invoice: inv,
        mut internal,
        subscription,
    } = k;
    if let Some(pi) = &internal.paying {
        return Err(ApiError::new(
            409,
            ErrorType::InvalidRequestError,
            format!("A payment for this invoice is already in progress ({pi})."),
        )
        .with_code("invoice_payment_in_progress"));
    }
    let mut pm = pm.or(inv.default_payment_method.clone());
    let mut recurring = false;
    if let Some(s) = &inv.subscription {
        recurring = true;
        if pm.is_none() {
            pm = match &subscription {
                Some((_, sub)) if &sub.id == s => sub.default_payment_method.clone(),
                _ => {
                    load::<Subscription>(&b.store, scope, "sub", "subscription", s, "subscription")
                        .await
                        .ok()
                        .and_then(|(_, sub)| sub.default_payment_method)
                }
            };
        }
    }
    if pm.is_none()
        && let Ok((_, c)) = load::<Customer>(
            &b.store,
            scope,
            "cus",
            "customer",
            &inv.customer,
            "customer",
        )
        .await
    {
        pm = c.invoice_settings.default_payment_method;
    }
    let Some(pm) = pm else {
        return Err(ApiError::invalid_param(
            "invoice_no_payment_method",
            "payment_method",
            "The invoice has no payment method to charge: give one, or set the customer's invoice_settings.default_payment_method.",
        ));
    };
    let pi_id = ids::new_id(calmony_protocol::payment_intent::PREFIX);
    internal.paying = Some(pi_id.clone());
    let now = super::clocks::now_for_invoice(&b.store, scope, &inv).await;
    let (mut tx, begun) = crate::payments::begin_invoice_charge(
        &b.payments,
        scope,
        ctx,
        crate::payments::InvoiceCharge {
            intent_id: pi_id,
            invoice: inv.id.clone(),
            customer: inv.customer.clone(),
            payment_method: pm,
            amount: inv.amount_remaining,
            description: Some(format!(
                "Invoice {}",
                inv.number.clone().unwrap_or_default()
            )),
            recurring,
            created: now,
        },
    )
    .await?;
    let key = scope.record(&inv.id);
    let internal_json = to_json(&internal)?;
    let version = if written_here {
        tx.hset(&key, &[("internal", &internal_json)]);
        v
    } else {
        tx.expect_version(&key, v).hset(
            &key,
            &[("v", &(v + 1).to_string()), ("internal", &internal_json)],
        );
        v + 1
    };
    // As the begin commit leaves it, for the finish.
    let begun = begun.with_invoice(KnownInvoice {
        version,
        invoice: inv,
        internal,
        subscription,
    });
    Ok((tx, begun))
}

/// `POST /v1/invoices/:id/void`.
pub async fn void_invoice(
    b: &Billing,
    ctx: &RequestContext,
    id: &str,
    p: Params,
) -> Result<Reply, ApiError> {
    transition(
        b,
        ctx,
        id,
        p,
        &["open", "uncollectible"],
        "void",
        "invoice.voided",
    )
    .await
}

/// `POST /v1/invoices/:id/mark_uncollectible`.
pub async fn mark_uncollectible(
    b: &Billing,
    ctx: &RequestContext,
    id: &str,
    p: Params,
) -> Result<Reply, ApiError> {
    transition(
        b,
        ctx,
        id,
        p,
        &["open"],
        "uncollectible",
        "invoice.marked_uncollectible",
    )
    .await
}

async fn transition(
    b: &Billing,
    ctx: &RequestContext,
    id: &str,
    mut p: Params,
    from: &[&str],
    to: &str,
    kind: &str,
) -> Result<Reply, ApiError> {
    p.expand()?;
    p.finish()?;
    let scope = &ctx.scope;
    let (v, mut inv, internal) = load_invoice(&b.store, scope, id).await?;
    if !from.contains(&inv.status.as_str()) {
        return Err(ApiError::unexpected_state(
            "invoice",
            &inv.status,
            &to.replace('_', " "),
        ));
    }
    if internal.paying.is_some() {
        return Err(ApiError::lock_timeout());
    }
    let now = super::clocks::now_for_invoice(&b.store, scope, &inv).await;
    inv.status = to.to_string();
    inv.next_payment_attempt = None;
    match to {
        "void" => inv.status_transitions.voided_at = Some(now),
        _ => inv.status_transitions.marked_uncollectible_at = Some(now),
    }
    let mut tx = Tx::new();
    tx.expect_version(&scope.record(id), v);
    let body = write_invoice(&mut tx, scope, v + 1, &inv, &internal)?;
    tx.event(scope, &event(kind, &inv, scope, &ctx.event_request(), now))
        .respond(ctx, 200, &body);
    commit_answer(&b.store, &tx, body).await
}

/// `DELETE /v1/invoices/:id`: drafts only.
pub async fn delete_invoice(
    b: &Billing,
    ctx: &RequestContext,
    id: &str,
    p: Params,
) -> Result<Reply, ApiError> {
    p.finish()?;
    let scope = &ctx.scope;
    let (v, inv, _) = load_invoice(&b.store, scope, id).await?;
    if inv.status != "draft" {
        return Err(ApiError::unexpected_state(
            "invoice",
            &inv.status,
            "deleted",
        ));
    }
    let body = json!({"id": id, "object": "invoice", "deleted": true}).to_string();
    let mut tx = Tx::new();
    tx.expect_version(&scope.record(id), v)
        .put(&scope.record(id), v + 1, &body)
        .unindex(&index(scope), id)
        .unindex(&customer_index(scope, &inv.customer), id)
        .respond(ctx, 200, &body);
    commit_answer(&b.store, &tx, body).await
}

pub async fn retrieve_invoice(
    b: &Billing,
    ctx: &RequestContext,
    id: &str,
    mut p: Params,
) -> Result<Reply, ApiError> {
    p.expand()?;
    p.finish()?;
    let (_, inv, _) = load_invoice(&b.store, &ctx.scope, id).await?;
    Ok(Reply::ok(to_json(&inv)?))
}

/// `GET /v1/invoices`: by `customer`, `status`, `subscription`.
pub async fn list_invoices(
    b: &Billing,
    ctx: &RequestContext,
    mut p: Params,
) -> Result<Reply, ApiError> {
    let list = ListParams::take(&mut p, INVOICE_PREFIX)?;
    let customer = p
        .string_max(&["customer", "customerId"], 100)?
        .into_option();
    let status = p
        .one_of(
            &["status"],
            &["draft", "open", "paid", "void", "uncollectible"],
        )?
        .into_option();
    let subscription = p.string_max(&["subscription"], 100)?.into_option();
    let collection_method = p
        .one_of(
            &["collection_method", "collectionMethod"],
            &["charge_automatically", "send_invoice"],
        )?
        .into_option();
    let created = calmony_protocol::payment_intent::CreatedRange::take(&mut p)?;
    let due_date = calmony_protocol::payment_intent::CreatedRange::take_named(&mut p, "due_date")?;
    p.expand()?;
    p.finish()?;
    let scope = &ctx.scope;
    let idx = match (&subscription, &customer) {
        (Some(s), _) => scope.key(&format!("subscription:{s}:invoices")),
        (None, Some(c)) => customer_index(scope, c),
        _ => index(scope),
    };
    let sets = filters::sets(
        &idx,
        &index(scope),
        &[
            ("status", status.as_deref()),
            ("collection_method", collection_method.as_deref()),
        ],
    );
    let ranges: Vec<_> = [("created", created), ("due_date", due_date)]
        .into_iter()
        .filter_map(|(field, r)| filters::range(&index(scope), field, r.gte, r.lte))
        .collect();
    let (out, has_more) = b.store.page_where(scope, &sets, &ranges, &list).await?;
    page_body("/v1/invoices", &out, has_more).map(Reply::ok)
}

/// `GET /v1/invoices/:id/lines`.
pub async fn invoice_lines(
    b: &Billing,
    ctx: &RequestContext,
    id: &str,
    mut p: Params,
) -> Result<Reply, ApiError> {
    let list = calmony_protocol::list::ListParams::take(&mut p, LINE_PREFIX)?;
    p.expand()?;
    p.finish()?;
    let (_, inv, _) = load_invoice(&b.store, &ctx.scope, id).await?;
    let mut lines = inv.lines;
    let (page, has_more) =
        calmony_protocol::list::page_embedded(&lines.data, |l| l.id.as_str(), &list)?;
    lines.data = page.to_vec();
    lines.has_more = has_more;
    Ok(Reply::ok(to_json(&lines)?))
}

/// The invoice's PDF, rendered at most once per version of the invoice.
async fn pdf_bytes(
    b: &Billing,
    scope: &Scope,
    id: &str,
) -> Result<(Vec<u8>, InvoiceInternal, Invoice), ApiError> {
    let (v, inv, internal) = load_invoice(&b.store, scope, id).await?;
    let cache = scope.key(&format!("invoice_pdf:{id}"));
    let mut c = b.store.conn();
    let merchant = crate::projects::merchant(&b.store, &scope.project).await?;
    // The PDF shows the invoice at version `v` and the merchant's details at their revision.
    let version = format!("{v}.{}", merchant.revision);
    let cached: (Option<String>, Option<Vec<u8>>) = b
        .store
        .run(async {
            redis::cmd("HMGET")
                .arg(&cache)
                .arg("v")
                .arg("pdf")
                .query_async(&mut c)
                .await
        })
        .await?;
    if let (Some(cv), Some(bytes)) = cached
        && cv == version
    {
        return Ok((bytes, internal, inv));
    }
    let customer: Option<Customer> = load(
        &b.store,
        scope,
        "cus",
        "customer",
        &inv.customer,
        "customer",
    )
    .await
    .ok()
    .map(|(_, c)| c);
    if merchant.profile.payer_name().is_none() {
        tracing::warn!(project = %scope.project, "{}", super::pdf::unnamed_hint(&merchant.project_name));
    }
    let doc = super::pdf::document(
        &inv,
        &merchant,
        customer.as_ref(),
        &rates_for(
            &b.store,
            scope,
            &inv.lines
                .data
                .iter()
                .flat_map(|l| l.tax_rates.clone())
                .chain(inv.default_tax_rates.clone())
                .collect::<Vec<_>>(),
        )
        .await?,
    );
    let bytes = calmony_pdf::render_invoice(&doc).map_err(|e| {
        let mut err = ApiError::internal("");
        err.message = format!("invoice PDF: {e}");
        err
    })?;
    let _: () = b
        .store
        .run(async {
            redis::cmd("HSET")
                .arg(&cache)
                .arg("v")
                .arg(&version)
                .arg("pdf")
                .arg(&bytes)
                .query_async(&mut c)
                .await
        })
        .await?;
    Ok((bytes, internal, inv))
}

/// `GET /v1/invoices/:id/pdf`.
pub async fn invoice_pdf(
    b: &Billing,
    ctx: &RequestContext,
    id: &str,
) -> Result<(Vec<u8>, String), ApiError> {
    let (bytes, _, inv) = pdf_bytes(b, &ctx.scope, id).await?;
    Ok((bytes, inv.number.unwrap_or_else(|| inv.id.clone())))
}

/// The public link on `invoice_pdf`: the token must match (constant time).
pub async fn public_pdf(
    b: &Billing,
    scope: &Scope,
    id: &str,
    token: &str,
) -> Result<(Vec<u8>, String), ApiError> {
    use subtle::ConstantTimeEq;
    let (bytes, internal, inv) = pdf_bytes(b, scope, id).await?;
    if !bool::from(internal.pdf_token.as_bytes().ct_eq(token.as_bytes())) {
        return Err(ApiError::no_such("invoice", id, "invoice"));
    }
    Ok((bytes, inv.number.unwrap_or_else(|| inv.id.clone())))
}

/// Index an invoice under its subscription (for `GET /v1/invoices?subscription=`).
pub(super) fn index_for_subscription(tx: &mut Tx, scope: &Scope, inv: &Invoice) {
    tx.index(&index(scope), &inv.id)
        .index(&customer_index(scope, &inv.customer), &inv.id);
    if let Some(s) = &inv.subscription {
        tx.index(&scope.key(&format!("subscription:{s}:invoices")), &inv.id);
    }
}
