//! `/v1/subscriptions`: create (trial, or the first period charged at once), retrieve, list,
//! update (price or quantity with proration, cancel at period end, payment method), cancel.
//! Statuses: `incomplete` (first payment failed; `incomplete_expired` after 23 h),
//! `trialing`, `active`, `past_due`, `unpaid`, `canceled`.

use calmony_protocol::billing::{
    INVOICE_ITEM_PREFIX, InvoiceItem, ItemList, PRICE_PREFIX, Period, Price, Product,
    SUBSCRIPTION_ITEM_PREFIX, SUBSCRIPTION_PREFIX, Subscription, SubscriptionItem, add_interval,
};
use calmony_protocol::customer::Customer;
use calmony_protocol::event::EventRequest;
use calmony_protocol::list::ListParams;
use calmony_protocol::params::{Field, Params};
use calmony_protocol::payment_method::PaymentMethod;
use calmony_protocol::{ApiError, ids, metadata};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::catalog::{self, load, take_tax_rates};
use super::invoice_records::{
    self, BillTo, InvoiceInternal, KnownInvoice, index_for_subscription, load_invoice,
    write_invoice,
};
use super::invoices;
use super::keys::{self, due_member};
use super::proration::{self, Proration, ProrationBehavior, ProrationPlan};
use super::settings::Billing;
use super::status::{BillingReason, InvoiceStatus, SubscriptionStatus};
use super::totals;
use super::transitions::{
    INCOMPLETE_WINDOW, TRIAL_NOTICE, retries_on_new_method, status_at_create,
};
use crate::context::{Reply, RequestContext};
use crate::resource::{commit, commit_answer, commit_numbered, event, page_body, to_json};
use crate::store::{Commit, Scope, Tx, filters};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SubInternal {
    pub trial_will_end_sent: bool,
}

pub(crate) async fn load_sub(
    b: &Billing,
    scope: &Scope,
    id: &str,
) -> Result<(u64, Subscription, SubInternal), ApiError> {
    crate::resource::load_with_internal(
        &b.store,
        scope,
        (SUBSCRIPTION_PREFIX, "subscription", "subscription"),
        id,
    )
    .await
}

pub(crate) fn write_sub(
    tx: &mut Tx,
    scope: &Scope,
    version: u64,
    s: &Subscription,
    internal: &SubInternal,
) -> Result<String, ApiError> {
    crate::resource::write_with_internal(tx, scope, &s.id, version, s, internal)
}

pub(crate) fn sub_events(
    tx: &mut Tx,
    scope: &Scope,
    kind: &str,
    s: &Subscription,
    request: &EventRequest,
    now: i64,
) {
    for prefix in ["subscription", "customer.subscription"] {
        tx.event(
            scope,
            &event(&format!("{prefix}.{kind}"), s, scope, request, now),
        );
    }
}

/// Read `items[]`: each a `price` id or inline `price_data`, with `quantity` and `tax_rates`.
/// `kept`: prices usable even when inactive (those already on the subscription, or agreed
/// in its checkout); any other use of an inactive price is refused, as Stripe does.
async fn take_items(
    b: &Billing,
    ctx: &RequestContext,
    p: &mut Params,
    tx: &mut Tx,
    sub_id: &str,
    kept: &[&str],
    now: i64,
) -> Result<Vec<SubscriptionItem>, ApiError> {
    let Field::Set(items) = p.array(&["items"])? else {
        return Err(ApiError::missing_param("items"));
    };
    if items.is_empty() || items.len() > 20 {
        return Err(ApiError::invalid_param(
            "parameter_invalid_array",
            "items",
            "A subscription has 1 to 20 items.",
        ));
    }
    let mut out: Vec<SubscriptionItem> = Vec::new();
    for (name, v) in items {
        let Value::Object(map) = v else {
            return Err(ApiError::invalid_param(
                "parameter_invalid_object",
                &name,
                format!("{name} must be an object."),
            ));
        };
        let mut item = Params::new(map);
        let _ = &name;
        let price: Price = match (
            item.string_max(&["price", "priceId"], 100)?.into_option(),
            item.object(&["price_data", "priceData"])?,
        ) {
            (Some(id), _) => {
                let param = format!("{name}[price]");
                let (_, price): (u64, Price) =
                    load(&b.store, &ctx.scope, PRICE_PREFIX, "price", &id, &param)
                        .await
                        .map_err(|mut e| {
                            e.status = 400;
                            e
                        })?;
                if !kept.contains(&id.as_str()) {
                    catalog::refuse_inactive(&price, &param)?;
                }
                price
            }
            (None, Field::Set(mut pd)) => {
                catalog::price_from(&b.store, ctx, &mut pd, tx, true).await?
            }
            _ => return Err(ApiError::missing_param(&format!("{name}[price]"))),
        };
        if price.recurring.is_none() {
            return Err(ApiError::invalid_param(
                "price_not_recurring",
                &format!("{name}[price]"),
                "A subscription needs recurring prices.",
            ));
        }
        let quantity = item
            .integer(&["quantity"], 1, 1_000_000)?
            .into_option()
            .unwrap_or(1);
        let tax_rates = take_tax_rates(&b.store, &ctx.scope, &mut item, &["tax_rates", "taxRates"])
            .await?
            .unwrap_or_default();
        // README, "Accepted, not acted on": items keep no metadata of their own.
        item.ignore(&["metadata"]);
        item.finish()?;
        if let Some(first) = out.first()
            && first
                .price
                .recurring
                .as_ref()
                .map(|r| (&r.interval, r.interval_count))
                != price
                    .recurring
                    .as_ref()
                    .map(|r| (&r.interval, r.interval_count))
        {
            return Err(ApiError::invalid_param(
                "price_interval_mismatch",
                &format!("{name}[price]"),
                "All items of a subscription must bill on the same interval.",
            ));
        }
        out.push(SubscriptionItem {
            id: ids::new_id(SUBSCRIPTION_ITEM_PREFIX),
            object: "subscription_item".into(),
            created: now,
            current_period_end: now,
            current_period_start: now,
            metadata: Default::default(),
            price,
            quantity,
            subscription: sub_id.to_string(),
            tax_rates,
        });
    }
    Ok(out)
}

/// A payment method the customer may use: attached to them.
async fn check_method(
    b: &Billing,
    scope: &Scope,
    pm: &str,
    customer: &str,
    param: &str,
) -> Result<(), ApiError> {
    let (_, m): (u64, PaymentMethod) = load(&b.store, scope, "pm", "payment_method", pm, param)
        .await
        .map_err(|mut e| {
            e.status = 400;
            e
        })?;
    // One attached to nobody is refused too: a subscription's charges take only the
    // customer's own cards, so it could never be charged.
    match &m.customer {
        Some(c) if c == customer => Ok(()),
        Some(_) => Err(ApiError::invalid_param(
            "payment_method_customer_mismatch",
            param,
            "The payment method belongs to another customer.",
        )),
        None => Err(ApiError::invalid_param(
            "payment_method_not_attached",
            param,
            "The payment method must be attached to the customer first.",
        )),
    }
}

fn interval_of(s: &Subscription) -> (String, i64) {
    s.items
        .data
        .first()
        .and_then(|i| i.price.recurring.as_ref())
        .map(|r| (r.interval.clone(), r.interval_count))
        .unwrap_or(("month".into(), 1))
}

pub(crate) async fn product_name(b: &Billing, scope: &Scope, product: &str) -> String {
    load::<Product>(&b.store, scope, "prod", "product", product, "product")
        .await
        .map(|(_, p)| p.name)
        .unwrap_or_else(|_| "Subscription".into())
}

/// The invoice for a period `[start, end)`, with the subscription's items and any pending
/// proration items, finalized in `tx`; the period marker makes it once per period.
pub(crate) async fn period_invoice(
    b: &Billing,
    tx: &mut Tx,
    scope: &Scope,
    s: &Subscription,
    customer: &Customer,
    start: i64,
    end: i64,
    reason: BillingReason,
    now: i64,
    request: &EventRequest,
) -> Result<(calmony_protocol::billing::Invoice, InvoiceInternal), ApiError> {
    let (mut inv, internal) =
        invoice_records::draft(&b.public_base, scope, BillTo::from(customer), now, reason);
    inv.subscription = Some(s.id.clone());
    inv.parent = Some(
        serde_json::json!({"type": "subscription_details", "subscription_details": {"subscription": s.id, "metadata": s.metadata}}),
    );
    inv.period_start = start;
    inv.period_end = end;
    inv.default_tax_rates = s.default_tax_rates.clone();
    // No payment method is copied onto the invoice: its charge uses the subscription's (or
    // the customer's) current one, so a card updated during dunning is the one retried.
    inv.next_payment_attempt = Some(now);
    for item in &s.items.data {
        let name = product_name(b, scope, &item.price.product).await;
        let per = item
            .price
            .recurring
            .as_ref()
            .map(|r| {
                if r.interval_count == 1 {
                    r.interval.clone()
                } else {
                    format!("{} {}s", r.interval_count, r.interval)
                }
            })
            .unwrap_or_default();
        let desc = format!(
            "{} × {name} (at {} / {per})",
            item.quantity,
            calmony_protocol::clock_text::money(item.price.unit_amount)
        );
        let mut l = invoice_records::line(
            &inv,
            Some(desc),
            item.price.unit_amount,
            item.quantity,
            Period { start, end },
            Some(item.price.id.clone()),
            item.tax_rates.clone(),
            false,
        );
        l.subscription = Some(s.id.clone());
        inv.lines.data.push(l);
    }
    take_pending_items(b, tx, scope, s, &mut inv).await?;
    let rate_ids: Vec<String> = inv
        .lines
        .data
        .iter()
        .flat_map(|l| l.tax_rates.clone())
        .chain(inv.default_tax_rates.clone())
        .collect();
    totals::apply(
        &mut inv,
        &catalog::rates_for(&b.store, scope, &rate_ids).await?,
    );
    tx.event(scope, &event("invoice.created", &inv, scope, request, now));
    invoices::finalize_in(b, tx, scope, &mut inv, now, request);
    let marker = keys::period_marker(scope, &s.id, start);
    tx.expect_version(&marker, 0).put(&marker, 1, &inv.id);
    tx.expect_version(&scope.record(&inv.id), 0);
    write_invoice(tx, scope, 1, &inv, &internal)?;
    index_for_subscription(tx, scope, &inv);
    Ok((inv, internal))
}

/// `POST /v1/subscriptions`.
pub async fn create_subscription(
    b: &Billing,
    ctx: &RequestContext,
    p: Params,
) -> Result<Reply, ApiError> {
    create_subscription_as(b, ctx, p, ids::new_id(SUBSCRIPTION_PREFIX), &[]).await
}

/// Creates the subscription under a chosen id. A checkout session derives the id from its own,
/// so the redirect and the gateway callback racing to start it create one subscription: the
/// loser's commit finds the record already there and fails with `lock_timeout` before any
/// charge. `agreed`: prices the payer already agreed to (a checkout's own lines, inline prices
/// being inactive), taken even if inactive.
pub async fn create_subscription_as(
    b: &Billing,
    ctx: &RequestContext,
    mut p: Params,
    id: String,
    agreed: &[&str],
) -> Result<Reply, ApiError> {
    let scope = &ctx.scope;
    let (customer, now) = b.billed_customer(scope, &mut p).await?;
    let cus = customer.id.clone();
    let mut tx = Tx::new();
    let items = take_items(b, ctx, &mut p, &mut tx, &id, agreed, now).await?;
    let pm = p
        .string_max(
            &[
                "default_payment_method",
                "defaultPaymentMethod",
                "paymentMethodId",
            ],
            100,
        )?
        .into_option()
        .or(customer.invoice_settings.default_payment_method.clone());
    if let Some(pm) = &pm {
        check_method(b, scope, pm, &cus, "default_payment_method").await?;
    }
    let trial_days = p
        .integer(&["trial_period_days", "trialPeriodDays"], 1, 730)?
        .into_option();
    let trial_end = match p.take(&["trial_end", "trialEnd"])? {
        None => trial_days.map(|d| now + d * 86_400),
        Some((_, Value::String(s))) if s == "now" => None,
        Some((name, v)) => {
            let t = v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| {
                    ApiError::invalid_param(
                        "parameter_invalid_integer",
                        &name,
                        "trial_end must be a Unix time or `now`.",
                    )
                })?;
            if t <= now {
                return Err(ApiError::invalid_param(
                    "parameter_invalid_integer",
                    &name,
                    "trial_end must be in the future.",
                ));
            }
            Some(t)
        }
    };
    let cancel_at_period_end = p
        .boolean(&["cancel_at_period_end", "cancelAtPeriodEnd"])?
        .into_option()
        .unwrap_or(false);
    let default_tax_rates = take_tax_rates(
        &b.store,
        scope,
        &mut p,
        &["default_tax_rates", "defaultTaxRates"],
    )
    .await?
    .unwrap_or_default();
    let description = p.string_max(&["description"], 500)?.into_option();
    let meta = metadata::take(&mut p)?;
    // What the daemon does, and nothing else, is accepted: a first payment that fails leaves
    // the subscription `incomplete`, and it is charged automatically.
    p.one_of(
        &["payment_behavior", "paymentBehavior"],
        &["allow_incomplete"],
    )?;
    p.one_of(
        &["collection_method", "collectionMethod"],
        &["charge_automatically"],
    )?;
    // README, "Accepted, not acted on": every renewal is merchant-initiated already, and
    // nothing is prorated at creation.
    p.ignore(&["off_session", "proration_behavior"]);
    p.expand()?;
    p.finish()?;

    let first_end = match trial_end {
        Some(t) => t,
        None => {
            let (iv, n) = items[0]
                .price
                .recurring
                .as_ref()
                .map(|r| (r.interval.clone(), r.interval_count))
                .unwrap_or(("month".into(), 1));
            add_interval(now, &iv, n)
        }
    };
    let mut items = items;
    for i in &mut items {
        i.current_period_start = now;
        i.current_period_end = first_end;
    }
    let mut s = Subscription {
        id: id.clone(),
        object: "subscription".into(),
        billing_cycle_anchor: first_end,
        cancel_at: cancel_at_period_end.then_some(first_end),
        cancel_at_period_end,
        canceled_at: None,
        cancellation_details: Default::default(),
        collection_method: "charge_automatically".into(),
        created: now,
        currency: "gbp".into(),
        current_period_end: first_end,
        current_period_start: now,
        customer: cus.clone(),
        default_payment_method: pm,
        default_tax_rates,
        description,
        ended_at: None,
        items: ItemList {
            object: "list".into(),
            total_count: items.len(),
            data: items,
            has_more: false,
            url: format!("/v1/subscription_items?subscription={id}"),
        },
        latest_invoice: None,
        livemode: scope.livemode(),
        metadata: Default::default(),
        start_date: now,
        status: status_at_create(trial_end.is_some(), false).as_str().into(),
        test_clock: customer.test_clock.clone(),
        trial_end,
        trial_start: trial_end.map(|_| now),
        customer_id: cus.clone(),
    };
    if let Some(m) = &meta {
        m.apply(&mut s.metadata, "metadata")?;
    }
    let request = ctx.event_request();
    let due_set = keys::due_set(s.test_clock.as_deref());
    let member = due_member(scope, &id);
    let mut first_invoice = None;
    if trial_end.is_none() {
        let (inv, internal) = period_invoice(
            b,
            &mut tx,
            scope,
            &s,
            &customer,
            now,
            first_end,
            BillingReason::SubscriptionCreate,
            now,
            &request,
        )
        .await?;
        s.latest_invoice = Some(inv.id.clone());
        if inv.paid {
            // Nothing to charge (a free price): paid as it was finalized, so the subscription
            // starts active, due at its period's end, and no card is sent to the gateway.
            s.status = status_at_create(false, true).as_str().into();
            tx.schedule(&due_set, first_end, &member);
        } else {
            first_invoice = Some((inv, internal));
            tx.schedule(&due_set, now + INCOMPLETE_WINDOW, &member);
        }
    } else {
        let notice = first_end - TRIAL_NOTICE;
        tx.schedule(
            &due_set,
            if notice > now { notice } else { first_end },
            &member,
        );
    }
    tx.expect_version(&scope.record(&id), 0);
    let body = write_sub(&mut tx, scope, 1, &s, &SubInternal::default())?;
    tx.index(&keys::subscriptions(scope), &id)
        .index(&keys::customer_subscriptions(scope, &cus), &id);
    sub_events(&mut tx, scope, "created", &s, &request, now);
    // The first period is charged at once, its payment begun in this same commit; its result
    // makes the subscription active (or leaves it incomplete). The answer is the subscription
    // as it then stands.
    let (inv_id, begun) = match first_invoice {
        None => {
            tx.respond(ctx, 200, &body);
            (None, None)
        }
        Some((inv, internal)) => {
            let inv_id = inv.id.clone();
            let k = KnownInvoice {
                version: 1,
                invoice: inv,
                internal,
                subscription: Some((1, s)),
            };
            (
                Some(inv_id),
                invoices::begin_charge_in(b, scope, &mut tx, k).await,
            )
        }
    };
    let (cmd_id, numbers) = match commit_numbered(&b.store, &tx).await? {
        (Commit::Done(cmd_id), numbers) => (cmd_id, numbers),
        _ => return Err(ApiError::lock_timeout()),
    };
    let Some(inv_id) = inv_id else {
        return Ok(Reply {
            status: 200,
            body,
            stored: true,
        });
    };
    let charged = match (begun, cmd_id) {
        (Some(begun), Some(cmd_id)) => invoices::run_begun(b, begun, &cmd_id, &numbers).await,
        // It could not begin: charging it alone says why.
        _ => invoices::charge(b, scope, &inv_id, None, None).await,
    };
    if let Err(e) = charged {
        tracing::info!(subscription = %id, error = %e.message, "first payment not made");
    }
    let (_, s, _) = load_sub(b, scope, &id).await?;
    Ok(Reply {
        status: 200,
        body: to_json(&s)?,
        stored: false,
    })
}

pub async fn retrieve_subscription(
    b: &Billing,
    ctx: &RequestContext,
    id: &str,
    mut p: Params,
) -> Result<Reply, ApiError> {
    p.expand()?;
    p.finish()?;
    let (_, s, _) = load_sub(b, &ctx.scope, id).await?;
    Ok(Reply::ok(to_json(&s)?))
}

/// `GET /v1/subscriptions`: by `customer` and `status` (`all` includes canceled).
pub async fn list_subscriptions(
    b: &Billing,
    ctx: &RequestContext,
    mut p: Params,
) -> Result<Reply, ApiError> {
    let list = ListParams::take(&mut p, SUBSCRIPTION_PREFIX)?;
    let customer = p
        .string_max(&["customer", "customerId"], 100)?
        .into_option();
    let statuses: Vec<&str> = SubscriptionStatus::ALL
        .map(SubscriptionStatus::as_str)
        .into_iter()
        .chain(["all", "ended"])
        .collect();
    let status = p.one_of(&["status"], &statuses)?.into_option();
    let price = p.string_max(&["price"], 100)?.into_option();
    let created = calmony_protocol::payment_intent::CreatedRange::take(&mut p)?;
    let collection_method = p
        .one_of(
            &["collection_method", "collectionMethod"],
            &["charge_automatically", "send_invoice"],
        )?
        .into_option();
    p.expand()?;
    p.finish()?;
    let idx = match &customer {
        Some(c) => keys::customer_subscriptions(&ctx.scope, c),
        None => keys::subscriptions(&ctx.scope),
    };
    // Without `status`, the current ones (not canceled or expired); `all`: every one.
    let status = match status.as_deref() {
        None => Some("current"),
        Some("all") => None,
        Some(s) => Some(s),
    };
    let sets = filters::sets(
        &idx,
        &keys::subscriptions(&ctx.scope),
        &[
            ("status", status),
            ("price", price.as_deref()),
            ("collection_method", collection_method.as_deref()),
        ],
    );
    let ranges: Vec<_> = filters::range(
        &keys::subscriptions(&ctx.scope),
        "created",
        created.gte,
        created.lte,
    )
    .into_iter()
    .collect();
    let (out, has_more) = b
        .store
        .page_where(&ctx.scope, &sets, &ranges, &list)
        .await?;
    page_body("/v1/subscriptions", &out, has_more).map(Reply::ok)
}

/// The pending invoice items of changing `s`'s items to `new_items` at `now` (see
/// [`proration`]): a credit for the unused time of each old item, a charge for the remaining
/// time of each new one, described for the invoice.
fn proration_items(
    s: &Subscription,
    new_items: &[SubscriptionItem],
    now: i64,
    names: &[(String, String)],
) -> Vec<InvoiceItem> {
    let worth = |items: &[SubscriptionItem]| -> Vec<i64> {
        items
            .iter()
            .map(|i| i.price.unit_amount * i.quantity)
            .collect()
    };
    let name = |product: &str| {
        names
            .iter()
            .find(|(p, _)| p == product)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| "plan".into())
    };
    let date = calmony_protocol::clock_text::date(now);
    let end = s.current_period_end;
    let item = |desc: String, amount: i64, of: &SubscriptionItem| InvoiceItem {
        id: ids::new_id(INVOICE_ITEM_PREFIX),
        object: "invoiceitem".into(),
        amount,
        currency: "gbp".into(),
        customer: s.customer.clone(),
        date: now,
        description: Some(desc),
        invoice: None,
        livemode: s.livemode,
        metadata: Default::default(),
        period: Period { start: now, end },
        price: Some(of.price.id.clone()),
        proration: true,
        quantity: 1,
        subscription: Some(s.id.clone()),
        tax_rates: of.tax_rates.clone(),
        unit_amount: amount,
    };
    let old_items = &s.items.data;
    proration::prorations(
        &worth(old_items),
        &worth(new_items),
        s.current_period_start,
        end,
        now,
    )
    .into_iter()
    .filter_map(|p| match p {
        Proration::UnusedTime { index, amount } => old_items.get(index).map(|old| {
            let desc = format!(
                "Unused time on {} × {} after {date}",
                old.quantity,
                name(&old.price.product)
            );
            item(desc, amount, old)
        }),
        Proration::RemainingTime { index, amount } => new_items.get(index).map(|new| {
            let desc = format!(
                "Remaining time on {} × {} after {date}",
                new.quantity,
                name(&new.price.product)
            );
            item(desc, amount, new)
        }),
    })
    .collect()
}

/// `POST /v1/subscriptions/:id`: items (price or quantity), proration, cancel at period end,
/// payment method, metadata. A new payment method retries an open invoice at once.
pub async fn update_subscription(
    b: &Billing,
    ctx: &RequestContext,
    id: &str,
    mut p: Params,
) -> Result<Reply, ApiError> {
    let scope = &ctx.scope;
    let (v, mut s, internal) = load_sub(b, scope, id).await?;
    if SubscriptionStatus::of(&s.status).is_ended() {
        return Err(ApiError::unexpected_state(
            "subscription",
            &s.status,
            "updated",
        ));
    }
    let now = b.now_for(scope, s.test_clock.as_deref()).await?;
    let before = serde_json::to_value(&s).unwrap_or(Value::Null);
    let mut tx = Tx::new();
    let proration = p
        .one_of(
            &["proration_behavior", "prorationBehavior"],
            &ProrationBehavior::NAMES,
        )?
        .into_option()
        .and_then(|b| ProrationBehavior::parse(&b))
        .unwrap_or(ProrationBehavior::CreateProrations);
    let new_items = if p.keys().iter().any(|k| k == "items") {
        let kept: Vec<&str> = s.items.data.iter().map(|i| i.price.id.as_str()).collect();
        let mut items = take_items(b, ctx, &mut p, &mut tx, id, &kept, now).await?;
        if interval_of(&s)
            != items[0]
                .price
                .recurring
                .as_ref()
                .map(|r| (r.interval.clone(), r.interval_count))
                .unwrap_or_default()
        {
            return Err(ApiError::invalid_param(
                "price_interval_mismatch",
                "items",
                "A change of billing interval is not supported; cancel and start a new subscription.",
            ));
        }
        for i in &mut items {
            i.current_period_start = s.current_period_start;
            i.current_period_end = s.current_period_end;
        }
        Some(items)
    } else {
        None
    };
    let details = calmony_protocol::billing::CancellationDetails::take(&mut p)?;
    if let Field::Set(c) = p.boolean(&["cancel_at_period_end", "cancelAtPeriodEnd"])? {
        s.cancel_at_period_end = c;
        s.cancel_at = c.then_some(s.current_period_end);
        // Resuming forgets why it was to end; ending at period end is a cancellation request.
        s.cancellation_details = if c {
            details
                .clone()
                .unwrap_or(calmony_protocol::billing::CancellationDetails {
                    reason: Some("cancellation_requested".into()),
                    ..Default::default()
                })
        } else {
            Default::default()
        };
    }
    if let Some(d) = details {
        if !s.cancel_at_period_end {
            return Err(ApiError::invalid_param(
                "parameter_invalid",
                "cancellation_details",
                "cancellation_details goes with a cancellation: cancel_at_period_end=true, or \
                 DELETE /v1/subscriptions/:id.",
            ));
        }
        s.cancellation_details = d;
    }
    let new_pm = p
        .string_max(
            &[
                "default_payment_method",
                "defaultPaymentMethod",
                "paymentMethodId",
            ],
            100,
        )?
        .into_option();
    if let Some(pm) = &new_pm {
        check_method(b, scope, pm, &s.customer, "default_payment_method").await?;
        s.default_payment_method = Some(pm.clone());
    }
    if let Some(m) = metadata::take(&mut p)? {
        m.apply(&mut s.metadata, "metadata")?;
    }
    if let Some(rates) = take_tax_rates(
        &b.store,
        scope,
        &mut p,
        &["default_tax_rates", "defaultTaxRates"],
    )
    .await?
    {
        s.default_tax_rates = rates;
    }
    p.one_of(
        &["payment_behavior", "paymentBehavior"],
        &["allow_incomplete"],
    )?;
    p.one_of(
        &["billing_cycle_anchor", "billingCycleAnchor"],
        &["unchanged"],
    )?;
    p.expand()?;
    p.finish()?;
    let mut invoice_now = None;
    if let Some(items) = new_items {
        let plan = proration::plan(proration, SubscriptionStatus::of(&s.status));
        if plan != ProrationPlan::Skip {
            let mut names = Vec::new();
            for i in s.items.data.iter().chain(items.iter()) {
                names.push((
                    i.price.product.clone(),
                    product_name(b, scope, &i.price.product).await,
                ));
            }
            for item in proration_items(&s, &items, now, &names) {
                let key = scope.record(&item.id);
                tx.expect_version(&key, 0)
                    .put(&key, 1, &to_json(&item)?)
                    .index(&scope.key("invoiceitems"), &item.id)
                    .index(&keys::pending_items(scope, &s.customer), &item.id);
            }
            if plan == ProrationPlan::InvoiceNow {
                invoice_now = Some(());
            }
        }
        s.items.total_count = items.len();
        s.items.data = items;
    }
    let after = serde_json::to_value(&s).unwrap_or(Value::Null);
    let previous = calmony_protocol::customer::previous_attributes(&before, &after);
    tx.expect_version(&scope.record(id), v);
    let body = write_sub(&mut tx, scope, v + 1, &s, &internal)?;
    if !previous.is_empty() {
        let mut e = event("subscription.updated", &s, scope, &ctx.event_request(), now);
        e.data.previous_attributes = Some(Value::Object(previous.clone()));
        tx.event(scope, &e);
        let mut e = event(
            "customer.subscription.updated",
            &s,
            scope,
            &ctx.event_request(),
            now,
        );
        e.data.previous_attributes = Some(Value::Object(previous));
        tx.event(scope, &e);
    }
    let follow_up = new_pm.is_some() || invoice_now.is_some();
    if !follow_up {
        tx.respond(ctx, 200, &body);
    }
    if !matches!(commit(&b.store, &tx).await?, Commit::Done(_)) {
        return Err(ApiError::lock_timeout());
    }
    if invoice_now.is_some() {
        invoice_prorations_now(b, scope, &s, now).await?;
    }
    if new_pm.is_some() {
        retry_open(b, scope, &s).await;
    }
    if follow_up {
        let (_, s, _) = load_sub(b, scope, id).await?;
        return Ok(Reply {
            status: 200,
            body: to_json(&s)?,
            stored: false,
        });
    }
    Ok(Reply {
        status: 200,
        body,
        stored: true,
    })
}

/// Moves the prorations (and any other invoice items) waiting for subscription `s` onto
/// `inv`, each item marked as invoiced in the same commit, so it is billed once.
async fn take_pending_items(
    b: &Billing,
    tx: &mut Tx,
    scope: &Scope,
    s: &Subscription,
    inv: &mut calmony_protocol::billing::Invoice,
) -> Result<(), ApiError> {
    let pending_key = keys::pending_items(scope, &s.customer);
    let mut c = b.store.conn();
    let pending: Vec<String> = b.store.run(c.zrange(&pending_key, 0, 500)).await?;
    for item_id in pending {
        let Ok((iv, mut item)) = load::<InvoiceItem>(
            &b.store,
            scope,
            INVOICE_ITEM_PREFIX,
            "invoiceitem",
            &item_id,
            "invoiceitem",
        )
        .await
        else {
            continue;
        };
        if item.subscription.as_deref() != Some(s.id.as_str()) {
            continue;
        }
        let mut l = invoice_records::line(
            inv,
            item.description.clone(),
            item.unit_amount,
            item.quantity,
            item.period.clone(),
            item.price.clone(),
            item.tax_rates.clone(),
            item.proration,
        );
        l.invoice_item = Some(item.id.clone());
        l.subscription = Some(s.id.clone());
        inv.lines.data.push(l);
        item.invoice = Some(inv.id.clone());
        tx.expect_version(&scope.record(&item.id), iv)
            .put(&scope.record(&item.id), iv + 1, &to_json(&item)?)
            .unindex(&pending_key, &item.id);
    }
    Ok(())
}

/// `proration_behavior=always_invoice`: invoice and charge the prorations now. A net credit
/// (a downgrade) is not invoiced: an invoice cannot pay money back, so its credit would be
/// lost; its items stay pending and take it off the next period's invoice instead.
async fn invoice_prorations_now(
    b: &Billing,
    scope: &Scope,
    s: &Subscription,
    now: i64,
) -> Result<(), ApiError> {
    let (_, customer): (u64, Customer) =
        load(&b.store, scope, "cus", "customer", &s.customer, "customer").await?;
    let (mut inv, internal) = invoice_records::draft(
        &b.public_base,
        scope,
        BillTo::from(&customer),
        now,
        BillingReason::SubscriptionUpdate,
    );
    inv.subscription = Some(s.id.clone());
    let mut tx = Tx::new();
    take_pending_items(b, &mut tx, scope, s, &mut inv).await?;
    let rate_ids: Vec<String> = inv
        .lines
        .data
        .iter()
        .flat_map(|l| l.tax_rates.clone())
        .collect();
    totals::apply(
        &mut inv,
        &catalog::rates_for(&b.store, scope, &rate_ids).await?,
    );
    if inv.total <= 0 {
        // Nothing committed: the items stay pending.
        return Ok(());
    }
    let request = EventRequest::default();
    tx.event(scope, &event("invoice.created", &inv, scope, &request, now));
    invoices::finalize_in(b, &mut tx, scope, &mut inv, now, &request);
    tx.expect_version(&scope.record(&inv.id), 0);
    write_invoice(&mut tx, scope, 1, &inv, &internal)?;
    index_for_subscription(&mut tx, scope, &inv);
    commit(&b.store, &tx).await?;
    if inv.amount_due > 0 {
        let _ = invoices::charge(b, scope, &inv.id, None, None).await;
    }
    Ok(())
}

/// Retry the latest open invoice of a subscription now (its payment method changed).
async fn retry_open(b: &Billing, scope: &Scope, s: &Subscription) {
    let Some(inv) = &s.latest_invoice else { return };
    let Ok((_, invoice, internal)) = load_invoice(&b.store, scope, inv).await else {
        return;
    };
    if InvoiceStatus::of(&invoice.status) == InvoiceStatus::Open
        && internal.paying.is_none()
        && let Err(e) = invoices::charge(b, scope, inv, None, None).await
    {
        tracing::info!(invoice = %inv, error = %e.message, "retry after a payment method change failed");
    }
}

/// A customer changed their default card: retry their subscriptions' open invoices at once.
pub async fn retry_for_customer(
    b: &Billing,
    scope: &Scope,
    customer: &str,
) -> Result<(), ApiError> {
    let mut c = b.store.conn();
    let subs: Vec<String> = b
        .store
        .run(c.zrange(keys::customer_subscriptions(scope, customer), 0, 100))
        .await?;
    for id in subs {
        if let Ok((_, s, _)) = load_sub(b, scope, &id).await
            && retries_on_new_method(SubscriptionStatus::of(&s.status))
        {
            retry_open(b, scope, &s).await;
        }
    }
    Ok(())
}

/// `DELETE /v1/subscriptions/:id`: cancel now.
pub async fn cancel_subscription(
    b: &Billing,
    ctx: &RequestContext,
    id: &str,
    mut p: Params,
) -> Result<Reply, ApiError> {
    // No final invoice or proration credit is made on cancelling: asking for one is refused.
    for name in ["invoice_now", "prorate"] {
        if p.boolean(&[name])? == Field::Set(true) {
            return Err(ApiError::invalid_param(
                "parameter_invalid_boolean",
                name,
                format!("{name}=true is not supported: cancelling makes no final invoice."),
            ));
        }
    }
    let details = calmony_protocol::billing::CancellationDetails::take(&mut p)?;
    p.expand()?;
    p.finish()?;
    let scope = &ctx.scope;
    let (v, mut s, internal) = load_sub(b, scope, id).await?;
    if SubscriptionStatus::of(&s.status).is_ended() {
        return Err(ApiError::unexpected_state(
            "subscription",
            &s.status,
            "canceled",
        ));
    }
    let now = b.now_for(scope, s.test_clock.as_deref()).await?;
    s.status = SubscriptionStatus::Canceled.as_str().into();
    s.canceled_at = Some(now);
    s.ended_at = Some(now);
    s.cancellation_details = details.unwrap_or(calmony_protocol::billing::CancellationDetails {
        reason: Some("cancellation_requested".into()),
        ..s.cancellation_details
    });
    let mut tx = Tx::new();
    tx.expect_version(&scope.record(id), v);
    let body = write_sub(&mut tx, scope, v + 1, &s, &internal)?;
    tx.unindex(
        &keys::due_set(s.test_clock.as_deref()),
        &due_member(scope, id),
    );
    sub_events(&mut tx, scope, "deleted", &s, &ctx.event_request(), now);
    tx.respond(ctx, 200, &body);
    commit_answer(&b.store, &tx, body).await
}

pub(crate) fn next_period_end(s: &Subscription, start: i64) -> i64 {
    let (iv, n) = interval_of(s);
    add_interval(start, &iv, n)
}
