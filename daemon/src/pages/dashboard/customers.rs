//! Customers: search by email or name, and a customer's page with their payments, cards,
//! subscriptions (cancel, with a confirmation step) and invoices (PDF), each read through the
//! API's own operations in the page's project and mode.

use calmony_actors::dashboard::access::Role;
use calmony_actors::{billing, customers, payment_methods, payments};
use calmony_protocol::clock_text::{date, money};
use calmony_protocol::{ApiError, Params, ids};
use hyper::Response;
use serde_json::Value;

use super::answers::{self, field, not_found, unavailable};
use super::views::{At, Ctx, context, n, params, payment_table, render, s};
use crate::pages::html::{escape, redirect};
use crate::response::{Body, pdf_response};

fn data(body: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("data").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

/// Whether a customer matches a search (case-insensitive, in the email or the name).
pub fn matches(c: &Value, q: &str) -> bool {
    let q = q.trim().to_lowercase();
    q.is_empty()
        || s(c, "email").to_lowercase().contains(&q)
        || s(c, "name").to_lowercase().contains(&q)
        || s(c, "id") == q
}

pub async fn list(ctx: &Ctx<'_>, at: &At<'_>, q: &[(String, String)]) -> Response<Body> {
    let search = field(q, "q").unwrap_or_default();
    let reply = match customers::list(
        &ctx.state.store,
        &context(at.scope()),
        params("limit=100").unwrap_or_default(),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return unavailable(&e.message),
    };
    let found: Vec<Value> = data(&reply.body)
        .into_iter()
        .filter(|c| matches(c, search))
        .collect();
    let base = at.base();
    let rows: String = found
        .iter()
        .map(|c| {
            format!(
                "<tr><td><a href=\"{b}/customers/{id}\" id=\"cus-{id}\">{name}</a></td><td>{email}</td>\
                 <td class=\"muted nowrap hide-sm\">{when}</td></tr>",
                b = escape(&base),
                id = escape(s(c, "id")),
                name = escape(if s(c, "name").is_empty() { s(c, "id") } else { s(c, "name") }),
                email = escape(s(c, "email")),
                when = date(n(c, "created")),
            )
        })
        .collect();
    let table = if rows.is_empty() {
        "<p class=\"muted\">No customers match.</p>".to_string()
    } else {
        format!(
            "<table><thead><tr><th>Name</th><th>Email</th><th class=\"hide-sm\">Since</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    let body = format!(
        "<h1>Customers</h1><section class=\"card\"><form method=\"get\" action=\"{b}/customers\" class=\"filters\">\
         <div><label for=\"q\">Search by email or name</label><input type=\"text\" id=\"q\" name=\"q\" value=\"{q}\"></div>\
         <div><button type=\"submit\" class=\"secondary\">Search</button></div></form></section>\
         <section class=\"card\">{table}</section>",
        b = escape(&base),
        q = escape(search),
    );
    render(
        ctx,
        200,
        "Customers",
        at.project,
        at.mode.as_str(),
        "customers",
        &body,
    )
    .await
}

async fn load(ctx: &Ctx<'_>, at: &At<'_>, id: &str) -> Result<Option<Value>, ApiError> {
    if !ids::is_valid("cus", id) {
        return Ok(None);
    }
    super::views::found(
        customers::retrieve(
            &ctx.state.store,
            &context(at.scope()),
            id,
            Params::default(),
        )
        .await,
    )
}

pub async fn detail(ctx: &Ctx<'_>, at: &At<'_>, id: &str, notice: Option<&str>) -> Response<Body> {
    let c = match load(ctx, at, id).await {
        Ok(Some(c)) => c,
        Ok(None) => return not_found(),
        Err(e) => return unavailable(&e.message),
    };
    let rc = context(at.scope());
    let st = ctx.state;
    let q = |extra: &str| params(&format!("customer={id}&limit=100{extra}")).unwrap_or_default();
    let pays = payments::list(&st.payments, &rc, q(""))
        .await
        .map(|r| data(&r.body))
        .unwrap_or_default();
    let cards = payment_methods::list(
        &st.payments,
        &rc,
        Some(id.to_string()),
        params("limit=100").unwrap_or_default(),
    )
    .await
    .map(|r| data(&r.body))
    .unwrap_or_default();
    let subs = billing::list_subscriptions(&st.billing, &rc, q("&status=all"))
        .await
        .map(|r| data(&r.body))
        .unwrap_or_default();
    let invoices = billing::list_invoices(&st.billing, &rc, q(""))
        .await
        .map(|r| data(&r.body))
        .unwrap_or_default();
    let base = at.base();
    let b = escape(&base);
    let cards_html: String = if cards.is_empty() {
        "<p class=\"muted\">No saved cards.</p>".into()
    } else {
        cards
            .iter()
            .map(|pm| {
                let card = pm.get("card").cloned().unwrap_or_default();
                format!(
                    "<p>{} •••• {} <span class=\"muted\">expires {:02}/{}</span></p>",
                    escape(s(&card, "brand")),
                    escape(s(&card, "last4")),
                    n(&card, "exp_month"),
                    n(&card, "exp_year")
                )
            })
            .collect()
    };
    let subs_rows: String = subs
        .iter()
        .map(|sub| {
            let sid = escape(s(sub, "id"));
            let status = s(sub, "status");
            let cancel =
                if at.role >= Role::Admin && !matches!(status, "canceled" | "incomplete_expired") {
                    format!(
                        "<a href=\"{b}/subscriptions/{sid}/cancel\" id=\"cancel-{sid}\">Cancel…</a>"
                    )
                } else {
                    String::new()
                };
            let tone = match status {
                "active" | "trialing" => "ok",
                "canceled" => "warn",
                _ => "bad",
            };
            format!(
                "<tr><td class=\"mono\">{sid}</td><td><span class=\"pill {tone}\">{st}</span></td>\
                 <td class=\"nowrap hide-sm\">{renews}</td><td class=\"num\">{cancel}</td></tr>",
                st = escape(status),
                renews = date(n(sub, "current_period_end")),
            )
        })
        .collect();
    let subs_html = if subs_rows.is_empty() {
        "<p class=\"muted\">No subscriptions.</p>".to_string()
    } else {
        format!(
            "<table><thead><tr><th>Subscription</th><th>Status</th><th class=\"hide-sm\">Period ends</th><th class=\"num\"><span class=\"sr\">Actions</span></th></tr></thead><tbody>{subs_rows}</tbody></table>"
        )
    };
    let inv_rows: String = invoices
        .iter()
        .map(|inv| {
            let iid = escape(s(inv, "id"));
            let number = escape(if s(inv, "number").is_empty() { s(inv, "id") } else { s(inv, "number") });
            let pdf = if s(inv, "status") == "draft" {
                "<span class=\"muted\">draft</span>".to_string()
            } else {
                format!("<a href=\"{b}/invoices/{iid}/pdf\" id=\"pdf-{iid}\" aria-label=\"Download invoice {number} as PDF\">PDF</a>")
            };
            format!(
                "<tr><td>{number}</td><td class=\"num\">{amount}</td><td>{status}</td><td class=\"nowrap hide-sm\">{when}</td><td class=\"num\">{pdf}</td></tr>",
                amount = money(n(inv, "total")),
                status = escape(s(inv, "status")),
                when = date(n(inv, "created")),
            )
        })
        .collect();
    let inv_html = if inv_rows.is_empty() {
        "<p class=\"muted\">No invoices.</p>".to_string()
    } else {
        format!(
            "<table id=\"invoices\"><thead><tr><th>Invoice</th><th class=\"num\">Total</th><th>Status</th><th class=\"hide-sm\">Date</th><th class=\"num\"><span class=\"sr\">Download</span></th></tr></thead><tbody>{inv_rows}</tbody></table>"
        )
    };
    let banner = notice
        .map(|m| {
            format!(
                "<p class=\"note\" role=\"status\" id=\"notice\">{}</p>",
                escape(m)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<p><a href=\"{b}/customers\">← Customers</a></p>{banner}<h1 id=\"customer-name\">{name}</h1>\
         <section class=\"card\"><dl class=\"facts\"><dt>Customer</dt><dd class=\"mono\">{id}</dd>\
         <dt>Email</dt><dd>{email}</dd><dt>Since</dt><dd>{since}</dd></dl></section>\
         <section class=\"card\" aria-labelledby=\"p-h\"><h2 id=\"p-h\">Payments</h2>{pays}</section>\
         <section class=\"card\" aria-labelledby=\"s-h\"><h2 id=\"s-h\">Subscriptions</h2>{subs_html}</section>\
         <section class=\"card\" aria-labelledby=\"i-h\"><h2 id=\"i-h\">Invoices</h2>{inv_html}</section>\
         <section class=\"card\" aria-labelledby=\"c-h\"><h2 id=\"c-h\">Cards</h2>{cards_html}</section>",
        name = escape(if s(&c, "name").is_empty() {
            s(&c, "email")
        } else {
            s(&c, "name")
        }),
        id = escape(s(&c, "id")),
        email = escape(s(&c, "email")),
        since = date(n(&c, "created")),
        pays = payment_table(&base, &pays, "No payments yet."),
    );
    render(
        ctx,
        200,
        "Customer",
        at.project,
        at.mode.as_str(),
        "customers",
        &body,
    )
    .await
}

/// An invoice's PDF, as the API's `GET /v1/invoices/:id/pdf` makes it.
pub async fn invoice_pdf(ctx: &Ctx<'_>, at: &At<'_>, id: &str) -> Response<Body> {
    if !ids::is_valid("in", id) {
        return not_found();
    }
    match billing::invoice_pdf(&ctx.state.billing, &context(at.scope()), id).await {
        Ok((bytes, name)) => pdf_response(bytes, &name),
        Err(e) if e.status == 404 || e.status == 400 => not_found(),
        Err(e) => unavailable(&e.message),
    }
}

async fn subscription(ctx: &Ctx<'_>, at: &At<'_>, id: &str) -> Option<Value> {
    if !ids::is_valid("sub", id) {
        return None;
    }
    billing::retrieve_subscription(
        &ctx.state.billing,
        &context(at.scope()),
        id,
        Params::default(),
    )
    .await
    .ok()
    .and_then(|r| serde_json::from_str(&r.body).ok())
}

pub async fn cancel_form(ctx: &Ctx<'_>, at: &At<'_>, id: &str) -> Response<Body> {
    if at.role < Role::Admin {
        return answers::forbidden("Your role in this project (viewer) does not allow cancelling.");
    }
    let Some(sub) = subscription(ctx, at, id).await else {
        return not_found();
    };
    let b = escape(&at.base());
    let body = format!(
        "<p><a href=\"{b}/customers/{cus}\">← Back to the customer</a></p><h1 id=\"confirm-title\">Cancel this subscription now?</h1>\
         <section class=\"card\"><p>Subscription <span class=\"mono\">{id}</span> ends at once: no further invoices are made \
         and nothing is refunded. This cannot be undone.</p>\
         <form method=\"post\" action=\"{b}/subscriptions/{id}/cancel\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <div class=\"actions\"><button type=\"submit\" class=\"danger\" id=\"confirm-cancel\">Cancel subscription</button>\
         <a class=\"button secondary\" href=\"{b}/customers/{cus}\">Keep it</a></div></form></section>",
        cus = escape(s(&sub, "customer")),
        id = escape(s(&sub, "id")),
        csrf = escape(&ctx.session.csrf),
    );
    render(
        ctx,
        200,
        "Cancel subscription",
        at.project,
        at.mode.as_str(),
        "customers",
        &body,
    )
    .await
}

pub async fn cancel(ctx: &Ctx<'_>, at: &At<'_>, id: &str) -> Response<Body> {
    let Some(sub) = subscription(ctx, at, id).await else {
        return not_found();
    };
    match billing::cancel_subscription(
        &ctx.state.billing,
        &context(at.scope()),
        id,
        Params::default(),
    )
    .await
    {
        Ok(_) => {
            let what = format!("cancelled subscription {id} ({})", at.mode.as_str());
            ctx.audit(at.project, &what).await;
            redirect(&format!(
                "{}/customers/{}?canceled=1",
                at.base(),
                s(&sub, "customer")
            ))
        }
        Err(e) if e.status < 500 => answers::refused(&e.message),
        Err(e) => unavailable(&e.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn search_finds_by_email_or_name_in_any_case() {
        let c = json!({"id": "cus_1", "email": "Ann@Example.com", "name": "Ann Lee"});
        for (q, want) in [
            ("", true),
            ("ann@", true),
            ("LEE", true),
            ("cus_1", true),
            ("bob", false),
        ] {
            assert_eq!(matches(&c, q), want, "{q}");
        }
    }
}
