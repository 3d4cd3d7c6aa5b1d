//! The invoice API: drafts built from invoice items, finalization (the gap-free number is
//! taken in the finalizing commit), payment through the IntentProcessor, void, uncollectible,
//! and the PDF (rendered once per version, cached). Which command each status allows is
//! decided in [`super::transitions`], the totals in [`super::totals`]; the receipt of a one-off
//! payment and a payment's effect on its invoice live in [`super::receipts`] and
//! [`super::collection`], below the payments layer.

use calmony_protocol::billing::{
    INVOICE_ITEM_PREFIX, INVOICE_PREFIX, Invoice, InvoiceItem, LINE_PREFIX, NUMBER_PLACEHOLDER,
    Period, Subscription,
};
use calmony_protocol::customer::Customer;
use calmony_protocol::event::EventRequest;
use calmony_protocol::list::ListParams;
use calmony_protocol::params::{Field, Params};
use calmony_protocol::{ApiError, ErrorType, ids, metadata};
use redis::AsyncCommands;
use serde_json::json;

use super::catalog::{self, load, rates_for, take_tax_rates};
use super::customer_time::now_for_invoice;
use super::invoice_records::{
    BillTo, InvoiceInternal, KnownInvoice, draft, line, load_invoice, mark_paid, write_invoice,
};
use super::keys;
use super::settings::Billing;
use super::status::{BillingReason, InvoiceStatus};
use super::totals;
use super::transitions::{InvoiceCommand, PaymentResult, invoice_after};
use crate::context::{Reply, RequestContext};
use crate::resource::{commit, commit_answer, event, page_body, to_json};
use crate::store::{Commit, Scope, Tx, filters};

/// The refusal of `command` on an invoice in `status`.
fn refused(status: &str, command: InvoiceCommand) -> ApiError {
    ApiError::unexpected_state("invoice", status, command.verb())
}

/// `command` on an invoice in `status`: the status it moves to, or the refusal.
fn allowed(status: &str, command: InvoiceCommand) -> Result<InvoiceStatus, ApiError> {
    invoice_after(InvoiceStatus::of(status), command).ok_or_else(|| refused(status, command))
}

/// Move a draft to `open` in `tx`: the number (taken by the commit), the finalized time, the
/// totals fixed; a zero invoice is paid at once. Events `invoice.finalized` (and `paid`).
/// Warns the operator if the project has no display name to print as the supplier.
pub(crate) fn finalize_in(
    b: &Billing,
    tx: &mut Tx,
    scope: &Scope,
    inv: &mut Invoice,
    now: i64,
    request: &EventRequest,
) {
    inv.status = InvoiceStatus::Open.as_str().into();
    inv.number = Some(NUMBER_PLACEHOLDER.into());
    inv.status_transitions.finalized_at = Some(now);
    inv.effective_at = Some(now);
    inv.auto_advance = inv.collection_method == "charge_automatically";
    tx.number(
        &keys::invoice_counter(scope),
        NUMBER_PLACEHOLDER,
        &b.invoice_prefix,
    );
    tx.event(scope, &event("invoice.finalized", inv, scope, request, now));
    super::pdf::warn_if_unnamed(&b.store, &scope.project);
    if inv.amount_due == 0 {
        mark_paid(inv, now);
        tx.event(scope, &event("invoice.paid", inv, scope, request, now));
    }
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
        BillingReason::Manual,
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
            .run(c.zrange(keys::pending_items(scope, &cus_id), 0, 500))
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
                .unindex(&keys::pending_items(scope, &cus_id), &item.id);
        }
    }
    let ids: Vec<String> = inv
        .lines
        .data
        .iter()
        .flat_map(|l| l.tax_rates.clone())
        .chain(inv.default_tax_rates.clone())
        .collect();
    totals::apply(&mut inv, &rates_for(&b.store, scope, &ids).await?);
    tx.expect_version(&scope.record(&inv.id), 0);
    let body = write_invoice(&mut tx, scope, 1, &inv, &internal)?;
    tx.index(&keys::invoices(scope), &inv.id)
        .index(&keys::customer_invoices(scope, &cus_id), &inv.id);
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
    // `amount` is the item's whole amount: with a quantity it must divide into equal units,
    // or the item would bill a different sum than was asked (1000 over 3 is 333 a unit).
    if let Some(a) = amount
        && a % quantity.max(1) != 0
    {
        return Err(ApiError::invalid_param(
            "parameter_invalid_integer",
            "quantity",
            format!(
                "An amount of {a} does not divide into {quantity} equal units; pass unit_amount with quantity instead."
            ),
        ));
    }
    let (unit_amount, price) = match (amount, unit, price_id, price_data) {
        (Some(a), _, _, _) => (a / quantity.max(1), None),
        (None, Some(u), _, _) => (u, None),
        (None, None, Some(pid), _) => {
            let (_, price): (u64, calmony_protocol::billing::Price) =
                load(&b.store, scope, "price", "price", &pid, "price").await?;
            catalog::refuse_inactive(&price, "price")?;
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
        let editable = invoice_after(InvoiceStatus::of(&inv.status), InvoiceCommand::Edit);
        if editable.is_none() || inv.customer != cus_id {
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
        totals::apply(&mut inv, &rates_for(&b.store, scope, &ids).await?);
        tx.expect_version(&scope.record(&inv_id), v);
        write_invoice(&mut tx, scope, v + 1, &inv, &internal)?;
    } else {
        tx.index(&keys::pending_items(scope, &cus_id), &item.id);
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
    allowed(&inv.status, InvoiceCommand::Finalize)?;
    let now = now_for_invoice(&b.store, scope, &inv).await;
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
    let (mut version, mut inv, mut internal) = load_invoice(&b.store, scope, id).await?;
    if InvoiceStatus::of(&inv.status) == InvoiceStatus::Draft {
        // Stripe finalizes a draft when asked to pay it, then pays it as asked: the payment
        // method and `paid_out_of_band` given still apply.
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
        (version, inv, internal) = load_invoice(&b.store, scope, id).await?;
    }
    if out_of_band {
        let known = KnownInvoice {
            version,
            invoice: inv,
            internal,
            subscription: None,
        };
        return pay_out_of_band(b, ctx, known).await;
    }
    allowed(&inv.status, InvoiceCommand::Pay)?;
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

/// The refusal of a second payment for an invoice while `pi` is paying it.
fn payment_in_progress(pi: &str) -> ApiError {
    ApiError::new(
        409,
        ErrorType::InvalidRequestError,
        format!("A payment for this invoice is already in progress ({pi})."),
    )
    .with_code("invoice_payment_in_progress")
}

/// `paid_out_of_band`: the invoice paid outside Calmony (cash, a bank transfer), and its
/// subscription moved on as a payment would move it, in one commit. Refused while a payment
/// for it is in flight: that payment could then take the money a second time.
async fn pay_out_of_band(
    b: &Billing,
    ctx: &RequestContext,
    mut known: KnownInvoice,
) -> Result<Reply, ApiError> {
    let scope = &ctx.scope;
    let id = known.invoice.id.clone();
    allowed(&known.invoice.status, InvoiceCommand::Pay)?;
    if let Some(pi) = &known.internal.paying {
        return Err(payment_in_progress(pi));
    }
    let mut tx = Tx::new();
    let sub = known.subscription(&b.store, scope, &mut tx).await;
    let KnownInvoice {
        version: v,
        invoice: mut inv,
        internal,
        ..
    } = known;
    let now = now_for_invoice(&b.store, scope, &inv).await;
    let request = ctx.event_request();
    mark_paid(&mut inv, now);
    inv.next_payment_attempt = None;
    tx.expect_version(&scope.record(&id), v);
    let body = write_invoice(&mut tx, scope, v + 1, &inv, &internal)?;
    tx.event(scope, &event("invoice.paid", &inv, scope, &request, now));
    if let Some(sub) = sub {
        super::collection::subscription_after(
            &mut tx,
            scope,
            sub,
            Some(PaymentResult::Paid),
            None,
            &request,
            now,
        )?;
    }
    tx.respond(ctx, 200, &body);
    commit_answer(&b.store, &tx, body).await
}

/// Charge an open invoice through the IntentProcessor. The payment method: the one given, the
/// invoice's, its subscription's, or the customer's default. An invoice with a payment in
/// flight is not charged again.
pub(crate) async fn charge(
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
pub(crate) async fn begin_charge_in(
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
pub(crate) async fn run_begun(
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
pub(crate) async fn begin_charge(
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
        return Err(payment_in_progress(pi));
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
    let now = now_for_invoice(&b.store, scope, &inv).await;
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
    transition(b, ctx, id, p, InvoiceCommand::Void, "invoice.voided").await
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
        InvoiceCommand::MarkUncollectible,
        "invoice.marked_uncollectible",
    )
    .await
}

/// `open` -> `void` or `uncollectible` (and `uncollectible` -> `void`): no payment in flight.
async fn transition(
    b: &Billing,
    ctx: &RequestContext,
    id: &str,
    mut p: Params,
    command: InvoiceCommand,
    kind: &str,
) -> Result<Reply, ApiError> {
    p.expand()?;
    p.finish()?;
    let scope = &ctx.scope;
    let (v, mut inv, internal) = load_invoice(&b.store, scope, id).await?;
    let to = allowed(&inv.status, command)?;
    if internal.paying.is_some() {
        return Err(ApiError::lock_timeout());
    }
    let now = now_for_invoice(&b.store, scope, &inv).await;
    inv.status = to.as_str().into();
    inv.next_payment_attempt = None;
    match to {
        InvoiceStatus::Void => inv.status_transitions.voided_at = Some(now),
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
    allowed(&inv.status, InvoiceCommand::Edit)?;
    let body = json!({"id": id, "object": "invoice", "deleted": true}).to_string();
    let mut tx = Tx::new();
    tx.expect_version(&scope.record(id), v)
        .put(&scope.record(id), v + 1, &body)
        .unindex(&keys::invoices(scope), id)
        .unindex(&keys::customer_invoices(scope, &inv.customer), id)
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
        .one_of(&["status"], &InvoiceStatus::ALL.map(InvoiceStatus::as_str))?
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
        (Some(s), _) => keys::subscription_invoices(scope, s),
        (None, Some(c)) => keys::customer_invoices(scope, c),
        _ => keys::invoices(scope),
    };
    let sets = filters::sets(
        &idx,
        &keys::invoices(scope),
        &[
            ("status", status.as_deref()),
            ("collection_method", collection_method.as_deref()),
        ],
    );
    let ranges: Vec<_> = [("created", created), ("due_date", due_date)]
        .into_iter()
        .filter_map(|(field, r)| filters::range(&keys::invoices(scope), field, r.gte, r.lte))
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
    let bytes = b.pdf.render(doc).await.map_err(|e| {
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
    // An invoice with no token (its internal fields missing or unreadable) has no public link:
    // an empty token must never match an empty one.
    if internal.pdf_token.is_empty()
        || !bool::from(internal.pdf_token.as_bytes().ct_eq(token.as_bytes()))
    {
        return Err(ApiError::no_such("invoice", id, "invoice"));
    }
    Ok((bytes, inv.number.unwrap_or_else(|| inv.id.clone())))
}
