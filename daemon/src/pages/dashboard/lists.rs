//! The remaining lists: subscriptions, invoices (with their PDFs), checkout sessions, and the
//! balance with its payouts. Each reads through the API's own list in the page's project and
//! mode, newest first, 50 at a time.

use calmony_actors::billing;
use calmony_actors::money::api as money_api;
use calmony_protocol::clock_text::{date, money};
use hyper::Response;
use serde_json::Value;

use super::answers::unavailable;
use super::views::{At, Ctx, context, n, params, render, s};
use crate::pages::html::escape;
use crate::response::Body;

fn data(body: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("data").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

fn tone(status: &str) -> &'static str {
    match status {
        "active" | "trialing" | "paid" | "complete" | "succeeded" => "ok",
        "past_due" | "unpaid" | "open" | "failed" | "uncollectible" => "bad",
        "in_transit" | "pending" => "info",
        _ => "warn",
    }
}

fn pill(status: &str) -> String {
    format!(
        "<span class=\"pill {}\">{}</span>",
        tone(status),
        escape(&status.replace('_', " "))
    )
}

fn customer_link(base: &str, id: &str) -> String {
    if id.is_empty() {
        "—".into()
    } else {
        format!(
            "<a class=\"mono\" href=\"{}/customers/{id}\">{id}</a>",
            escape(base),
            id = escape(id)
        )
    }
}

fn table(id: &str, head: &str, rows: String, empty: &str) -> String {
    if rows.is_empty() {
        format!("<p class=\"muted\">{empty}</p>")
    } else {
        format!("<table id=\"{id}\"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    }
}

pub async fn subscriptions(ctx: &Ctx<'_>, at: &At<'_>) -> Response<Body> {
    let items = match billing::list_subscriptions(
        &ctx.state.billing,
        &context(at.scope()),
        params("limit=50&status=all").unwrap_or_default(),
    )
    .await
    {
        Ok(r) => data(&r.body),
        Err(e) => return unavailable(&e.message),
    };
    let base = at.base();
    let rows: String = items
        .iter()
        .map(|x| {
            let amount: i64 = x
                .pointer("/items/data")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|i| n(i, "quantity").max(1) * i.pointer("/price/unit_amount").and_then(Value::as_i64).unwrap_or(0))
                        .sum()
                })
                .unwrap_or(0);
            format!(
                "<tr><td class=\"mono hide-sm\">{id}</td><td class=\"cut\">{cus}</td><td>{pill}</td><td class=\"num\">{amount}</td>\
                 <td class=\"nowrap\">{end}</td></tr>",
                id = escape(s(x, "id")),
                cus = customer_link(&base, s(x, "customer")),
                pill = pill(s(x, "status")),
                amount = money(amount),
                end = date(n(x, "current_period_end")),
            )
        })
        .collect();
    let body = format!(
        "<h1>Subscriptions</h1><section class=\"card\">{}</section>",
        table(
            "subscriptions",
            "<th class=\"hide-sm\">Subscription</th><th>Customer</th><th>Status</th><th class=\"num\">Per period</th><th>Period ends</th>",
            rows,
            "No subscriptions yet."
        )
    );
    render(
        ctx,
        200,
        "Subscriptions",
        at.project,
        at.mode.as_str(),
        "subscriptions",
        &body,
    )
    .await
}

pub async fn invoices(ctx: &Ctx<'_>, at: &At<'_>) -> Response<Body> {
    let items = match billing::list_invoices(
        &ctx.state.billing,
        &context(at.scope()),
        params("limit=50").unwrap_or_default(),
    )
    .await
    {
        Ok(r) => data(&r.body),
        Err(e) => return unavailable(&e.message),
    };
    let base = at.base();
    let b = escape(&base);
    let rows: String = items
        .iter()
        .map(|x| {
            let id = escape(s(x, "id"));
            let number = escape(if s(x, "number").is_empty() { s(x, "id") } else { s(x, "number") });
            let pdf = if s(x, "status") == "draft" {
                String::new()
            } else {
                format!("<a href=\"{b}/invoices/{id}/pdf\" aria-label=\"Download invoice {number} as PDF\">PDF</a>")
            };
            format!(
                "<tr><td class=\"nowrap\">{number}</td><td class=\"hide-sm\">{cus}</td><td>{pill}</td><td class=\"num\">{total}</td>\
                 <td class=\"nowrap hide-sm\">{when}</td><td class=\"num\">{pdf}</td></tr>",
                cus = customer_link(&base, s(x, "customer")),
                pill = pill(s(x, "status")),
                total = money(n(x, "total")),
                when = date(n(x, "created")),
            )
        })
        .collect();
    let body = format!(
        "<h1>Invoices</h1><section class=\"card\">{}</section>",
        table(
            "invoices",
            "<th>Invoice</th><th class=\"hide-sm\">Customer</th><th>Status</th><th class=\"num\">Total</th><th class=\"hide-sm\">Date</th><th class=\"num\"><span class=\"sr\">PDF</span></th>",
            rows,
            "No invoices yet."
        )
    );
    render(
        ctx,
        200,
        "Invoices",
        at.project,
        at.mode.as_str(),
        "invoices",
        &body,
    )
    .await
}

pub async fn checkout_sessions(ctx: &Ctx<'_>, at: &At<'_>) -> Response<Body> {
    let items = match ctx
        .state
        .checkout
        .list(&context(at.scope()), params("limit=50").unwrap_or_default())
        .await
    {
        Ok(r) => data(&r.body),
        Err(e) => return unavailable(&e.message),
    };
    let base = at.base();
    let rows: String = items
        .iter()
        .map(|x| {
            let pi = s(x, "payment_intent");
            let payment = if pi.is_empty() {
                "—".to_string()
            } else {
                format!("<a class=\"mono\" href=\"{}/payments/{p}\">{p}</a>", escape(&base), p = escape(pi))
            };
            format!(
                "<tr><td class=\"mono hide-sm\">{id}</td><td>{pill} {paid}</td><td class=\"num\">{amount}</td>\
                 <td>{payment}</td><td class=\"nowrap hide-sm\">{when}</td></tr>",
                id = escape(s(x, "id")),
                pill = pill(s(x, "status")),
                paid = if s(x, "payment_status") == "paid" { pill("paid") } else { String::new() },
                amount = money(n(x, "amount_total")),
                when = date(n(x, "created")),
            )
        })
        .collect();
    let body = format!(
        "<h1>Checkout sessions</h1><section class=\"card\">{}</section>",
        table(
            "checkout-sessions",
            "<th class=\"hide-sm\">Session</th><th>Status</th><th class=\"num\">Amount</th><th>Payment</th><th class=\"hide-sm\">Created</th>",
            rows,
            "No checkout sessions yet."
        )
    );
    render(
        ctx,
        200,
        "Checkout sessions",
        at.project,
        at.mode.as_str(),
        "checkout",
        &body,
    )
    .await
}

pub async fn balance(ctx: &Ctx<'_>, at: &At<'_>) -> Response<Body> {
    let scope = at.scope();
    let bal = match money_api::balance(&ctx.state.store, &scope).await {
        Ok(b) => b,
        Err(e) => return unavailable(&e.to_string()),
    };
    let payouts = match money_api::list_payouts(
        &ctx.state.store,
        &context(scope),
        params("limit=50").unwrap_or_default(),
    )
    .await
    {
        Ok(r) => data(&r.body),
        Err(e) => return unavailable(&e.message),
    };
    let sum = |f: &[calmony_protocol::balance::Funds]| {
        f.iter()
            .filter(|x| x.currency == "gbp")
            .map(|x| x.amount)
            .sum::<i64>()
    };
    let mut rows = String::new();
    for p in &payouts {
        // Whether the settlement account received what this payout's batch expected: the
        // verdict only, never another project's figures in the same batch.
        let reference = s(p, "statement_descriptor");
        let verdict =
            match calmony_actors::money::report::verdict_of(&ctx.state.store, at.mode, reference)
                .await
            {
                Ok(Some(v)) => reconciled(v),
                _ => "—",
            };
        rows.push_str(&format!(
            "<tr><td class=\"mono hide-sm\">{id}</td><td>{pill}</td><td class=\"num\">{amount}</td><td class=\"nowrap\">{arrival}</td><td class=\"mono hide-sm\">{reference}</td><td>{verdict}</td></tr>",
            id = escape(s(p, "id")),
            pill = pill(s(p, "status")),
            amount = money(n(p, "amount")),
            arrival = date(n(p, "arrival_date")),
            reference = escape(reference),
        ));
    }
    let body = format!(
        "<h1>Balance and payouts</h1><div class=\"tiles\">\
         <div class=\"tile\"><p class=\"k\">Available</p><p class=\"v\" id=\"available\">{avail}</p></div>\
         <div class=\"tile\"><p class=\"k\">Pending (settling)</p><p class=\"v\" id=\"pending\">{pend}</p></div></div>\
         <section class=\"card\" aria-labelledby=\"po-h\"><h2 id=\"po-h\">Payouts</h2>{table}\
         <p class=\"muted\">Payouts reach your Griffin account. <em>Reconciled</em> says whether the credit under each \
         payout's reference matched what its batch expected, to the penny; the full report, with credits nobody expected, \
         is the operator's (<code>calmony-payd reconcile report</code>), since one credit pays every project's card takings of a day.</p></section>",
        avail = money(sum(&bal.available)),
        pend = money(sum(&bal.pending)),
        table = table(
            "payouts",
            "<th class=\"hide-sm\">Payout</th><th>Status</th><th class=\"num\">Amount</th><th>Arrives</th><th class=\"hide-sm\">Reference</th><th>Reconciled</th>",
            rows,
            "No payouts yet."
        ),
    );
    render(
        ctx,
        200,
        "Balance",
        at.project,
        at.mode.as_str(),
        "balance",
        &body,
    )
    .await
}

/// A reconciliation verdict in words.
fn reconciled(verdict: &str) -> &'static str {
    match verdict {
        "matched" => "Matched",
        "awaiting_credit" => "Awaiting credit",
        "missing_credit" => "Credit missing",
        "late_credit" => "Credit late (payouts failed)",
        "wrong_amount" => "Wrong amount",
        "changed_after_close" => "Changed after close",
        "net_debit" => "Nothing to pay (net debit)",
        "unverified" => "Not verified (no Griffin)",
        _ => "—",
    }
}
