//! The dashboard's pages: each reads through the same operations as the API (in the page's
//! project and mode only) and renders with the frame.

use calmony_actors::RequestContext;
use calmony_actors::dashboard::access::{Role, password_problem};
use calmony_actors::dashboard::accounts::{self, AccountError, Session};
use calmony_actors::money::stats;
use calmony_actors::payments;
use calmony_actors::store::Scope;
use calmony_actors::system::PaymentOp;
use calmony_protocol::clock_text::{date, money};
use calmony_protocol::{ApiError, Mode, Params, ids};
use hyper::Response;
use serde_json::Value;

use super::answers::{self, field, not_found, unavailable};
use super::chart::{Day, revenue_svg};
use super::frame::{self, Place};
use crate::pages::html::{escape, redirect};
use crate::response::Body;
use crate::state::AppState;

pub struct Ctx<'a> {
    pub state: &'a AppState,
    pub session: &'a Session,
    pub from: &'a str,
}

impl Ctx<'_> {
    /// Record in `project`'s audit log what this user did, from where. A failure to record is
    /// logged, not shown: the change itself is already made.
    pub async fn audit(&self, project: &str, what: &str) {
        if let Err(e) = accounts::audit(
            &self.state.store,
            project,
            &self.session.user.email,
            what,
            self.from,
        )
        .await
        {
            tracing::warn!(project, what, error = %e, "the audit log could not be written");
        }
    }
}

/// The error message of a refused API answer's body, or `fallback`.
fn refusal(body: &str, fallback: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| fallback.to_string())
}

/// The project and mode a page is of, and the user's role there.
pub struct At<'a> {
    pub project: &'a str,
    pub mode: Mode,
    pub role: Role,
}

impl At<'_> {
    pub(super) fn scope(&self) -> Scope {
        Scope::new(self.project, self.mode)
    }

    pub(super) fn base(&self) -> String {
        format!("/dashboard/{}/{}", self.project, self.mode.as_str())
    }
}

/// An object read through the API for a page: its JSON, `None` when the API says there is no
/// such object in the page's project and mode, the error otherwise.
pub(super) fn found(
    answer: Result<calmony_actors::Reply, calmony_protocol::ApiError>,
) -> Result<Option<serde_json::Value>, calmony_protocol::ApiError> {
    match answer {
        Ok(r) => Ok(serde_json::from_str(&r.body).ok()),
        Err(e) if e.status == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) fn context(scope: Scope) -> RequestContext {
    RequestContext {
        deferred: None,
        request_id: ids::request_id(),
        scope,
        idempotency: None,
        idempotency_ttl_secs: 86_400,
        prefetched: Default::default(),
    }
}

/// Parameters as the API would read them from a query string.
pub(super) fn params(query: &str) -> Result<Params, ApiError> {
    calmony_protocol::params::parse_form(query.as_bytes()).map(Params::new)
}

async fn projects_of(ctx: &Ctx<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for id in ctx.session.user.roles.keys() {
        let name = calmony_actors::projects::merchant(&ctx.state.store, id)
            .await
            .ok()
            .map(|m| {
                m.profile
                    .display_name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(m.project_name)
            })
            .unwrap_or_else(|| id.clone());
        out.push((id.clone(), name));
    }
    out
}

pub(super) async fn render(
    ctx: &Ctx<'_>,
    status: u16,
    title: &str,
    project: &str,
    mode: &str,
    section: &str,
    body: &str,
) -> Response<Body> {
    let projects = projects_of(ctx).await;
    let name = projects
        .iter()
        .find(|(id, _)| id == project)
        .map(|(_, n)| n.clone())
        .unwrap_or_else(|| project.to_string());
    frame::page(
        status,
        title,
        &Place {
            project,
            project_name: &name,
            mode,
            section,
            email: &ctx.session.user.email,
            csrf: &ctx.session.csrf,
            projects: &projects,
        },
        body,
    )
}

pub(super) fn s<'v>(v: &'v Value, k: &str) -> &'v str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

pub(super) fn n(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or_default()
}

/// A payment's status as a merchant reads it, and its tone.
pub fn status_label(status: &str, failed: bool, refunded: bool) -> (&'static str, &'static str) {
    match status {
        "succeeded" if refunded => ("Refunded", "info"),
        "succeeded" => ("Succeeded", "ok"),
        "requires_payment_method" if failed => ("Failed", "bad"),
        "requires_payment_method" | "requires_confirmation" => ("Incomplete", "warn"),
        "requires_action" => ("Needs authentication", "warn"),
        "requires_capture" => ("Uncaptured", "warn"),
        "processing" => ("Processing", "info"),
        "canceled" => ("Canceled", "warn"),
        _ => ("Unknown", "warn"),
    }
}

fn pill(pi: &Value) -> String {
    let failed = pi.get("last_payment_error").is_some_and(|e| !e.is_null());
    let (label, tone) = status_label(s(pi, "status"), failed, false);
    format!("<span class=\"pill {tone}\">{label}</span>")
}

/// An event's type as a merchant reads it on a payment's timeline.
pub fn event_label(kind: &str) -> &'static str {
    match kind {
        "payment_intent.created" => "Payment created",
        "payment_intent.succeeded" => "Payment succeeded",
        "payment_intent.payment_failed" | "payment_intent.failed" => "Payment failed",
        "payment_intent.canceled" => "Payment cancelled",
        "payment_intent.requires_action" => "Authentication requested",
        "payment_intent.amount_capturable_updated" => "Authorised, to capture",
        "payment_intent.processing" => "Processing",
        "charge.succeeded" => "Card charged",
        "charge.failed" => "Card declined",
        "charge.captured" => "Captured",
        "charge.refunded" => "Refunded",
        "charge.updated" => "Charge updated",
        "refund.created" => "Refund started",
        "refund.updated" => "Refund updated",
        "refund.failed" => "Refund failed",
        "invoice.created" => "Invoice made",
        "invoice.finalized" => "Invoice finalised",
        "invoice.paid" => "Invoice paid",
        "invoice.payment_failed" => "Invoice payment failed",
        _ => "Event",
    }
}

/// A payment's pill on its own page, where its refunds are known.
fn detail_pill(pi: &Value, refunded: i64) -> String {
    let received = n(pi, "amount_received");
    match (s(pi, "status"), refunded) {
        ("succeeded", r) if r > 0 && r >= received => {
            "<span class=\"pill info\">Refunded</span>".into()
        }
        ("succeeded", r) if r > 0 => "<span class=\"pill info\">Partially refunded</span>".into(),
        _ => pill(pi),
    }
}

/// A card brand as printed on the card: `visa` as `Visa`, `amex` as `American Express`.
pub fn brand_name(brand: &str) -> String {
    match brand {
        "amex" => "American Express".into(),
        "mastercard" => "Mastercard".into(),
        "unionpay" => "UnionPay".into(),
        "diners" => "Diners Club".into(),
        other => {
            let mut c = other.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        }
    }
}

fn payment_rows(base: &str, items: &[Value]) -> String {
    items
        .iter()
        .map(|pi| {
            let id = escape(s(pi, "id"));
            format!(
                "<tr><td class=\"num\"><a href=\"{base}/payments/{id}\" id=\"pay-{id}\">{amount}</a></td>\
                 <td>{pill}</td><td class=\"hide-sm\">{desc}</td><td class=\"mono hide-sm\">{cus}</td>\
                 <td class=\"muted nowrap\">{when}</td></tr>",
                base = escape(base),
                amount = money(n(pi, "amount")),
                pill = pill(pi),
                desc = escape(s(pi, "description")),
                cus = escape(s(pi, "customer")),
                when = escape(&time(n(pi, "created"))),
            )
        })
        .collect()
}

pub(super) fn payment_table(base: &str, items: &[Value], empty: &str) -> String {
    if items.is_empty() {
        return format!("<p class=\"muted\">{}</p>", escape(empty));
    }
    format!(
        "<table><thead><tr><th class=\"num\">Amount</th><th>Status</th><th class=\"hide-sm\">Description</th>\
         <th class=\"hide-sm\">Customer</th><th>Date</th></tr></thead><tbody>{}</tbody></table>",
        payment_rows(base, items)
    )
}

async fn list_intents(
    ctx: &Ctx<'_>,
    scope: Scope,
    query: &str,
) -> Result<(Vec<Value>, bool), ApiError> {
    let reply = payments::list(&ctx.state.payments, &context(scope), params(query)?).await?;
    let v: Value =
        serde_json::from_str(&reply.body).map_err(|e| ApiError::internal(&e.to_string()))?;
    let items = v
        .get("data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok((
        items,
        v.get("has_more").and_then(Value::as_bool).unwrap_or(false),
    ))
}

/// The home page: figures from the per-day counters (one round trip), the chart, recent and
/// failed payments.
pub async fn home(ctx: &Ctx<'_>, at: &At<'_>) -> Response<Body> {
    let scope = at.scope();
    let now = calmony_actors::clock::now();
    let zone_name = calmony_actors::projects::time_zone(&ctx.state.store, at.project)
        .await
        .ok()
        .flatten()
        .filter(|z| stats::zone(z).is_some())
        .unwrap_or_else(|| "UTC".into());
    let tz = stats::zone(&zone_name).unwrap_or(jiff::tz::TimeZone::UTC);
    let (total, days) = match stats::read(&ctx.state.store, &scope, now, &tz, 30).await {
        Ok(x) => x,
        Err(e) => return unavailable(&e.to_string()),
    };
    let cur = total
        .currencies()
        .into_iter()
        .next()
        .unwrap_or_else(|| "gbp".into());
    let gross = total.gross.get(&cur).copied().unwrap_or(0);
    let refunded = total.refunded.get(&cur).copied().unwrap_or(0);
    let bars: Vec<Day> = days
        .iter()
        .map(|(d, f)| Day {
            label: short_day(d),
            net: f.net(&cur),
        })
        .collect();
    let month_net: i64 = bars.iter().map(|d| d.net).sum();
    let (recent, _) = list_intents(ctx, scope.clone(), "limit=30")
        .await
        .unwrap_or_default();
    let failed: Vec<Value> = recent
        .iter()
        .filter(|pi| {
            s(pi, "status") == "requires_payment_method"
                && pi.get("last_payment_error").is_some_and(|e| !e.is_null())
        })
        .take(5)
        .cloned()
        .collect();
    let shown: Vec<Value> = recent.into_iter().take(8).collect();
    let base = at.base();
    let tile = |id: &str, k: &str, v: String| {
        format!(
            "<div class=\"tile\"><p class=\"k\">{k}</p><p class=\"v\" id=\"{id}\">{v}</p></div>"
        )
    };
    let table_rows: String = bars
        .iter()
        .map(|d| {
            format!(
                "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
                escape(&d.label),
                money(d.net)
            )
        })
        .collect();
    let body = format!(
        "<h1>Home</h1>\
         <div class=\"tiles\">{t1}{t2}{t3}</div>\
         <div class=\"tiles\">{c1}{c2}{c3}</div>\
         <section class=\"card chart\" aria-labelledby=\"chart-h\"><h2 id=\"chart-h\">Net revenue, last 30 days \
         <span class=\"muted\" style=\"font-weight:400\" id=\"chart-zone\">· {month} · days in {zone}</span></h2><div class=\"scroll\">{svg}</div>\
         <details><summary>Show as a table</summary><table><thead><tr><th>Day</th><th class=\"num\">Net</th></tr></thead>\
         <tbody>{table_rows}</tbody></table></details></section>\
         <section class=\"card\" aria-labelledby=\"failed-h\"><h2 id=\"failed-h\">Failed payments to look at</h2>{failed}</section>\
         <section class=\"card\" aria-labelledby=\"recent-h\"><h2 id=\"recent-h\">Recent payments</h2>{recent}\
         <p><a href=\"{base}/payments\">All payments →</a></p></section>",
        t1 = tile("gross", "Gross revenue", money(gross)),
        t2 = tile("refunded", "Refunds", money(refunded)),
        t3 = tile("net", "Net revenue", money(gross - refunded)),
        c1 = tile(
            "count-succeeded",
            "Succeeded payments",
            total.succeeded.to_string()
        ),
        c2 = tile("count-failed", "Failed attempts", total.failed.to_string()),
        c3 = tile("count-refunds", "Refunds made", total.refunds.to_string()),
        month = money(month_net),
        zone = escape(&zone_name),
        svg = revenue_svg(&bars, "#3a4bd9"),
        failed = payment_table(&base, &failed, "No failed payments. All good."),
        recent = payment_table(&base, &shown, "No payments yet."),
        base = escape(&base),
    );
    render(
        ctx,
        200,
        "Home",
        at.project,
        at.mode.as_str(),
        "home",
        &body,
    )
    .await
}

/// `2026-12-06` as `6 Dec`.
fn short_day(d: &str) -> String {
    const M: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = d.split('-').skip(1);
    let m: usize = parts.next().and_then(|m| m.parse().ok()).unwrap_or(1);
    let day: u32 = parts.next().and_then(|x| x.parse().ok()).unwrap_or(1);
    format!("{day} {}", M[(m.clamp(1, 12)) - 1])
}

/// A day (`YYYY-MM-DD`) as Unix seconds at its start (UTC).
fn day_start(d: &str) -> Option<i64> {
    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .ok()
        .and_then(|x| x.and_hms_opt(0, 0, 0))
        .map(|x| x.and_utc().timestamp())
}

/// A query string of `pairs`.
fn encode(pairs: &[(&str, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        .finish()
}

/// The payments list: filters by status, date range and customer; pages of 20.
pub async fn payments(ctx: &Ctx<'_>, at: &At<'_>, q: &[(String, String)]) -> Response<Body> {
    let status = field(q, "status").unwrap_or_default();
    let customer = field(q, "customer").unwrap_or_default().trim();
    let from = field(q, "from").unwrap_or_default();
    let to = field(q, "to").unwrap_or_default();
    let after = field(q, "after").unwrap_or_default();
    let min = field(q, "min").unwrap_or_default().trim();
    let max = field(q, "max").unwrap_or_default().trim();
    let mut problems: Vec<(&str, &str)> = Vec::new();
    let mut api: Vec<(&str, String)> = Vec::new();
    let mut bounds = (None, None);
    for (name, value, slot) in [("min", min, &mut bounds.0), ("max", max, &mut bounds.1)] {
        if value.is_empty() {
            continue;
        }
        match parse_amount(value) {
            Some(a) => *slot = Some(a),
            None => problems.push((name, "Enter an amount like 12.50.")),
        }
    }
    let (lo, hi) = bounds;
    // Status and amount are filtered on the page's rows: a fuller page to filter from.
    let narrowed = !status.is_empty() || lo.is_some() || hi.is_some();
    api.push(("limit", if narrowed { "100" } else { "20" }.into()));
    if !customer.is_empty() {
        if ids::is_any(customer) {
            api.push(("customer", customer.into()));
        } else {
            problems.push(("customer", "Enter a customer id, like cus_…"));
        }
    }
    for (name, value, key, end) in [
        ("from", from, "created[gte]", 0),
        ("to", to, "created[lte]", 86_399),
    ] {
        if value.is_empty() {
            continue;
        }
        match day_start(value) {
            Some(t) => {
                api.push((key, (t + end).to_string()));
            }
            None => problems.push((name, "Enter a date as YYYY-MM-DD.")),
        }
    }
    if !after.is_empty() && ids::is_any(after) {
        api.push(("starting_after", after.into()));
    }
    let wanted = |pi: &Value| match status {
        "" => true,
        "succeeded" => s(pi, "status") == "succeeded",
        "failed" => {
            s(pi, "status") == "requires_payment_method"
                && pi.get("last_payment_error").is_some_and(|e| !e.is_null())
        }
        "uncaptured" => s(pi, "status") == "requires_capture",
        "canceled" => s(pi, "status") == "canceled",
        "incomplete" => s(pi, "status").starts_with("requires_"),
        _ => true,
    };
    let api_query = encode(&api);
    let (items, has_more) = if problems.is_empty() {
        match list_intents(ctx, at.scope(), &api_query).await {
            Ok(x) => x,
            Err(e) => return unavailable(&e.message),
        }
    } else {
        (Vec::new(), false)
    };
    let in_range = |pi: &Value| {
        let a = n(pi, "amount");
        lo.is_none_or(|l| a >= l) && hi.is_none_or(|h| a <= h)
    };
    let shown: Vec<Value> = items
        .iter()
        .filter(|pi| wanted(pi) && in_range(pi))
        .cloned()
        .collect();
    let base = at.base();
    let err = |name: &str| {
        problems
            .iter()
            .find(|(f, _)| *f == name)
            .map(|(_, m)| {
                format!(
                    "<p class=\"field-error\" id=\"{name}-error\">{}</p>",
                    escape(m)
                )
            })
            .unwrap_or_default()
    };
    let invalid = |name: &str| {
        if problems.iter().any(|(f, _)| *f == name) {
            format!(" aria-invalid=\"true\" aria-describedby=\"{name}-error\"")
        } else {
            String::new()
        }
    };
    let options: String = [
        ("", "Any status"),
        ("succeeded", "Succeeded"),
        ("failed", "Failed"),
        ("uncaptured", "Uncaptured"),
        ("incomplete", "Incomplete"),
        ("canceled", "Canceled"),
    ]
    .iter()
    .map(|(v, l)| {
        format!(
            "<option value=\"{v}\"{}>{l}</option>",
            if *v == status { " selected" } else { "" }
        )
    })
    .collect();
    let next = match (has_more, items.last()) {
        (true, Some(last)) => {
            let mut q: Vec<(&str, String)> = [
                ("status", status),
                ("customer", customer),
                ("from", from),
                ("to", to),
                ("min", min),
                ("max", max),
            ]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k, v.to_string()))
            .collect();
            q.push(("after", s(last, "id").to_string()));
            format!(
                "<a href=\"{}/payments?{}\" id=\"next-page\">Next page →</a>",
                escape(&base),
                escape(&encode(&q))
            )
        }
        _ => String::new(),
    };
    let body = format!(
        "<h1>Payments</h1><section class=\"card\" aria-label=\"Filters\">\
         <form method=\"get\" action=\"{b}/payments\" class=\"filters\">\
         <div><label for=\"status\">Status</label><select id=\"status\" name=\"status\">{options}</select></div>\
         <div><label for=\"customer\">Customer</label><input type=\"text\" id=\"customer\" name=\"customer\" value=\"{c}\" placeholder=\"cus_…\"{ci}>{ce}</div>\
         <div><label for=\"from\">From</label><input type=\"date\" id=\"from\" name=\"from\" value=\"{f}\"{fi}>{fe}</div>\
         <div><label for=\"to\">To</label><input type=\"date\" id=\"to\" name=\"to\" value=\"{t}\"{ti}>{te}</div>\
         <div><label for=\"min\">At least (£)</label><input type=\"text\" inputmode=\"decimal\" id=\"min\" name=\"min\" value=\"{mn}\"{mni}>{mne}</div>\
         <div><label for=\"max\">At most (£)</label><input type=\"text\" inputmode=\"decimal\" id=\"max\" name=\"max\" value=\"{mx}\"{mxi}>{mxe}</div>\
         <div><button type=\"submit\" class=\"secondary\">Filter</button></div></form></section>\
         <section class=\"card\">{table}<div class=\"pager\"><span></span>{next}</div></section>",
        b = escape(&base),
        c = escape(customer),
        f = escape(from),
        t = escape(to),
        ci = invalid("customer"),
        ce = err("customer"),
        fi = invalid("from"),
        fe = err("from"),
        ti = invalid("to"),
        te = err("to"),
        mn = escape(min),
        mx = escape(max),
        mni = invalid("min"),
        mne = err("min"),
        mxi = invalid("max"),
        mxe = err("max"),
        table = payment_table(&base, &shown, "No payments match."),
    );
    let status_code = if problems.is_empty() { 200 } else { 400 };
    render(
        ctx,
        status_code,
        "Payments",
        at.project,
        at.mode.as_str(),
        "payments",
        &body,
    )
    .await
}

struct Loaded {
    intent: Value,
    charge: Option<Value>,
    refunds: Vec<Value>,
}

async fn load_payment(ctx: &Ctx<'_>, at: &At<'_>, id: &str) -> Result<Option<Loaded>, ApiError> {
    if !ids::is_any(id) {
        return Ok(None);
    }
    let c = context(at.scope());
    let p = &ctx.state.payments;
    let intent = match payments::retrieve(p, &c, id, Params::default()).await {
        Ok(r) => serde_json::from_str::<Value>(&r.body)
            .map_err(|e| ApiError::internal(&e.to_string()))?,
        Err(e) if e.status == 404 => return Ok(None),
        Err(e) => return Err(e),
    };
    let charge = match intent.get("latest_charge").and_then(Value::as_str) {
        Some(ch) => payments::retrieve_charge(p, &c, ch, Params::default())
            .await
            .ok()
            .and_then(|r| serde_json::from_str(&r.body).ok()),
        None => None,
    };
    let refunds = payments::list_refunds(p, &c, params(&format!("payment_intent={id}&limit=100"))?)
        .await
        .ok()
        .and_then(|r| serde_json::from_str::<Value>(&r.body).ok())
        .and_then(|v| v.get("data").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    Ok(Some(Loaded {
        intent,
        charge,
        refunds,
    }))
}

fn refundable(l: &Loaded) -> i64 {
    let captured = l
        .charge
        .as_ref()
        .map(|c| n(c, "amount_captured"))
        .unwrap_or(0);
    let refunded: i64 = l
        .refunds
        .iter()
        .filter(|r| s(r, "status") != "failed" && s(r, "status") != "canceled")
        .map(|r| n(r, "amount"))
        .sum();
    if s(&l.intent, "status") == "succeeded" {
        (captured - refunded).max(0)
    } else {
        0
    }
}

/// A payment's page: its facts, its timeline, and a refund button for those who may.
pub async fn payment(ctx: &Ctx<'_>, at: &At<'_>, id: &str, notice: Option<&str>) -> Response<Body> {
    let l = match load_payment(ctx, at, id).await {
        Ok(Some(l)) => l,
        Ok(None) => return not_found(),
        Err(e) => return unavailable(&e.message),
    };
    let pi = &l.intent;
    let base = at.base();
    // The payment's own events, from the log (up to a few thousand entries after it began);
    // the records stand in for them if none are found.
    let (events, cut) =
        crate::inspect::payment_events_within(&ctx.state.store, &at.scope(), s(pi, "id"), 3_000)
            .await
            .unwrap_or_default();
    // The payment's, its charges', its refunds' and its invoice's (the receipt's) events.
    let events: Vec<_> = events
        .into_iter()
        .filter(|e| {
            e.field("type").is_some_and(|t| {
                ["payment_intent.", "charge.", "refund.", "invoice."]
                    .iter()
                    .any(|p| t.starts_with(p))
            })
        })
        .collect();
    let mut timeline = vec![(n(pi, "created"), "Payment created".to_string())];
    if let Some(c) = &l.charge {
        let what = match s(c, "status") {
            "succeeded" if c.get("captured").and_then(Value::as_bool) == Some(true) => {
                "Payment succeeded".to_string()
            }
            "succeeded" => "Payment authorised (not yet captured)".to_string(),
            "failed" => format!("Payment failed: {}", s(c, "failure_message")),
            other => format!("Charge {other}"),
        };
        timeline.push((n(c, "created"), what));
    }
    for r in &l.refunds {
        timeline.push((
            n(r, "created"),
            format!("Refund of {} {}", money(n(r, "amount")), s(r, "status")),
        ));
    }
    timeline.sort_by_key(|(t, _)| *t);
    let items: String = if events.is_empty() {
        timeline
            .iter()
            .map(|(t, w)| {
                format!(
                    "<li><strong>{}</strong> <span class=\"muted\">{} UTC</span></li>",
                    escape(w),
                    escape(&time(*t))
                )
            })
            .collect()
    } else {
        let b = escape(&base);
        let mut li: String = events
            .iter()
            .map(|e| {
                let kind = e.field("type").unwrap_or_default();
                let when = e.field("created").and_then(|c| c.parse().ok()).unwrap_or(0);
                let link =
                    e.id.as_deref()
                        .map(|id| {
                            format!(
                                " <a class=\"mono\" href=\"{b}/events/{id}\">{kind}</a>",
                                id = escape(id),
                                kind = escape(kind)
                            )
                        })
                        .unwrap_or_default();
                format!(
                    "<li><strong>{}</strong> <span class=\"muted\">{} UTC</span>{link}</li>",
                    escape(event_label(kind)),
                    escape(&time(when))
                )
            })
            .collect();
        if cut {
            li.push_str("<li class=\"muted\">Later events are not shown here; see Events.</li>");
        }
        li
    };
    let left = refundable(&l);
    let refunded_total: i64 = l
        .refunds
        .iter()
        .filter(|r| s(r, "status") == "succeeded" || s(r, "status") == "pending")
        .map(|r| n(r, "amount"))
        .sum();
    let status = s(pi, "status");
    let can_capture = status == "requires_capture";
    let can_cancel = matches!(
        status,
        "requires_capture"
            | "requires_payment_method"
            | "requires_confirmation"
            | "requires_action"
    );
    let action = if at.role >= Role::Admin && (left > 0 || can_capture || can_cancel) {
        let link = |what: &str, label: &str, class: &str| {
            format!(
                "<a class=\"button {class}\" id=\"{what}\" href=\"{}/payments/{}/{what}\">{label}</a>",
                escape(&base),
                escape(s(pi, "id"))
            )
        };
        let mut links = Vec::new();
        if left > 0 {
            links.push(link("refund", "Refund…", ""));
        }
        if can_capture {
            links.push(link("capture", "Capture…", ""));
        }
        if can_cancel {
            links.push(link("cancel", "Cancel payment…", "secondary"));
        }
        format!("<div class=\"actions\">{}</div>", links.join(""))
    } else if left > 0 || can_capture || can_cancel {
        "<p class=\"muted\">Your role (viewer) cannot refund, capture or cancel payments.</p>"
            .into()
    } else {
        String::new()
    };
    let card = l
        .charge
        .as_ref()
        .and_then(|c| c.pointer("/payment_method_details/card"))
        .map(|c| format!("{} •••• {}", brand_name(s(c, "brand")), s(c, "last4")))
        .unwrap_or_else(|| "—".into());
    let banner = notice
        .map(|m| {
            format!(
                "<p class=\"note\" role=\"status\" id=\"notice\">{}</p>",
                escape(m)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<p><a href=\"{b}/payments\">← Payments</a></p>{banner}<h1><span id=\"amount\">{amount}</span> {pill}</h1>\
         <section class=\"card\"><dl class=\"facts\"><dt>Payment</dt><dd class=\"mono\" id=\"payment-id\">{id}</dd>\
         <dt>Created</dt><dd>{created}</dd><dt>Customer</dt><dd class=\"mono\">{cus}</dd>\
         <dt>Description</dt><dd>{desc}</dd><dt>Card</dt><dd>{card}</dd>\
         <dt>Refunded</dt><dd id=\"refunded-total\">{refunded}</dd></dl>{action}</section>\
         <section class=\"card\" aria-labelledby=\"tl-h\"><h2 id=\"tl-h\">Timeline</h2><ol class=\"timeline\">{items}</ol></section>",
        b = escape(&base),
        amount = money(n(pi, "amount")),
        pill = detail_pill(pi, refunded_total),
        id = escape(s(pi, "id")),
        created = date(n(pi, "created")),
        cus = escape(if s(pi, "customer").is_empty() {
            "—"
        } else {
            s(pi, "customer")
        }),
        desc = escape(if s(pi, "description").is_empty() {
            "—"
        } else {
            s(pi, "description")
        }),
        card = escape(&card),
        refunded = money(refunded_total),
    );
    render(
        ctx,
        200,
        "Payment",
        at.project,
        at.mode.as_str(),
        "payments",
        &body,
    )
    .await
}

/// What an amount field says, in minor units: `12.50` or `12` pounds.
pub fn parse_amount(raw: &str) -> Option<i64> {
    let t = raw.trim().trim_start_matches('£');
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 2
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || whole.len() > 12
    {
        return None;
    }
    let pence = format!("{frac:0<2}").parse::<i64>().ok()?;
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(pence)
}

/// The confirmation step before a refund.
pub async fn refund_form(
    ctx: &Ctx<'_>,
    at: &At<'_>,
    id: &str,
    form: &[(String, String)],
    problem: Option<&str>,
) -> Response<Body> {
    if at.role < Role::Admin {
        return answers::forbidden("Your role in this project (viewer) does not allow refunds.");
    }
    let l = match load_payment(ctx, at, id).await {
        Ok(Some(l)) => l,
        Ok(None) => return not_found(),
        Err(e) => return unavailable(&e.message),
    };
    let left = refundable(&l);
    let once = match accounts::issue_once(&ctx.state.store, &refund_purpose(at, id)).await {
        Ok(t) => t,
        Err(e) => return unavailable(&e.to_string()),
    };
    let base = at.base();
    let amount = field(form, "amount")
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}.{:02}", left / 100, left % 100));
    let (inv, err) = match problem {
        Some(p) => (
            " aria-invalid=\"true\" aria-describedby=\"amount-error\"",
            format!(
                "<p class=\"field-error\" id=\"amount-error\">{}</p>",
                escape(p)
            ),
        ),
        None => ("", String::new()),
    };
    let body = format!(
        "<p><a href=\"{b}/payments/{id}\">← Back to the payment</a></p>\
         <h1 id=\"confirm-title\">Refund this payment?</h1><section class=\"card\">\
         <p>Up to <strong>{left}</strong> can be refunded. The customer sees it on their statement in 5–10 days; \
         this cannot be undone.</p>\
         <form method=\"post\" action=\"{b}/payments/{id}/refund\" novalidate><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"once\" value=\"{once}\">\
         <label for=\"amount\">Amount to refund (£)</label><input type=\"text\" inputmode=\"decimal\" id=\"amount\" name=\"amount\" value=\"{amount}\"{inv}>{err}\
         <div class=\"actions\"><button type=\"submit\" class=\"danger\" id=\"confirm-refund\">Refund</button>\
         <a class=\"button secondary\" href=\"{b}/payments/{id}\">Cancel</a></div></form></section>",
        b = escape(&base),
        id = escape(s(&l.intent, "id")),
        left = money(left),
        csrf = escape(&ctx.session.csrf),
        once = escape(&once),
        amount = escape(&amount),
    );
    let status = if problem.is_some() { 400 } else { 200 };
    render(
        ctx,
        status,
        "Refund",
        at.project,
        at.mode.as_str(),
        "payments",
        &body,
    )
    .await
}

/// What a refund form's one-time token is for: this payment, in this project and mode.
fn refund_purpose(at: &At<'_>, id: &str) -> String {
    format!("refund:{}:{}:{id}", at.project, at.mode.as_str())
}

/// Do the refund (through the IntentProcessor, as the API's), audit it, and show the payment.
/// The form's one-time token is used up before the refund: a double click or a resubmitted
/// page refunds once, and shows the payment.
pub async fn refund(
    ctx: &Ctx<'_>,
    at: &At<'_>,
    id: &str,
    form: &[(String, String)],
) -> Response<Body> {
    if at.role < Role::Admin {
        return answers::forbidden("Your role in this project (viewer) does not allow refunds.");
    }
    let l = match load_payment(ctx, at, id).await {
        Ok(Some(l)) => l,
        Ok(None) => return not_found(),
        Err(e) => return unavailable(&e.message),
    };
    let left = refundable(&l);
    let amount = match parse_amount(field(form, "amount").unwrap_or_default()) {
        None => return refund_form(ctx, at, id, form, Some("Enter an amount like 12.50.")).await,
        Some(0) => {
            return refund_form(ctx, at, id, form, Some("Enter an amount above zero.")).await;
        }
        Some(a) if a > left => {
            let why = format!("At most {} can be refunded.", money(left));
            return refund_form(ctx, at, id, form, Some(&why)).await;
        }
        Some(a) => a,
    };
    let once = field(form, "once").unwrap_or_default();
    match accounts::use_once(&ctx.state.store, once, &refund_purpose(at, id)).await {
        Ok(true) => {}
        Ok(false) => return redirect(&format!("{}/payments/{id}?resubmitted=1", at.base())),
        Err(e) => return unavailable(&e.to_string()),
    }
    let p = match params(&format!("payment_intent={id}&amount={amount}")) {
        Ok(p) => p,
        Err(e) => return unavailable(&e.message),
    };
    match ctx
        .state
        .intents
        .run(PaymentOp::Refund, context(at.scope()), "", p)
        .await
    {
        Ok(reply) if reply.status < 300 => {
            let what = format!(
                "refunded {} of payment {id} ({})",
                money(amount),
                at.mode.as_str()
            );
            ctx.audit(at.project, &what).await;
            redirect(&format!("{}/payments/{id}?refunded=1", at.base()))
        }
        Ok(reply) => {
            let msg = refusal(&reply.body, "The refund was refused.");
            refund_form(ctx, at, id, form, Some(&msg)).await
        }
        Err(e) if e.status < 500 => refund_form(ctx, at, id, form, Some(&e.message)).await,
        Err(e) => unavailable(&e.message),
    }
}

/// Capture or cancel: which, as the path names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Capture,
    Cancel,
}

impl Step {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "capture" => Some(Step::Capture),
            "cancel" => Some(Step::Cancel),
            _ => None,
        }
    }

    fn path(self) -> &'static str {
        match self {
            Step::Capture => "capture",
            Step::Cancel => "cancel",
        }
    }
}

/// The confirmation step before a capture or a cancel.
pub async fn step_form(
    ctx: &Ctx<'_>,
    at: &At<'_>,
    id: &str,
    step: Step,
    problem: Option<&str>,
) -> Response<Body> {
    if at.role < Role::Admin {
        return answers::forbidden("Your role in this project (viewer) does not allow this.");
    }
    let l = match load_payment(ctx, at, id).await {
        Ok(Some(l)) => l,
        Ok(None) => return not_found(),
        Err(e) => return unavailable(&e.message),
    };
    let amount = money(n(&l.intent, "amount"));
    let (title, what, button, class) = match step {
        Step::Capture => (
            format!("Capture {amount}?"),
            "The authorised amount is taken from the customer's card now.",
            "Capture payment",
            "",
        ),
        Step::Cancel => (
            format!("Cancel this payment of {amount}?"),
            "The payment is cancelled; an authorisation on the card is released. This cannot be undone.",
            "Cancel payment",
            "danger",
        ),
    };
    let alert = problem
        .map(|p| {
            format!(
                "<p class=\"alert\" role=\"alert\" id=\"problem\">{}</p>",
                escape(p)
            )
        })
        .unwrap_or_default();
    let b = escape(&at.base());
    let body = format!(
        "<p><a href=\"{b}/payments/{id}\">← Back to the payment</a></p><h1 id=\"confirm-title\">{title}</h1>{alert}\
         <section class=\"card\"><p>{what}</p><form method=\"post\" action=\"{b}/payments/{id}/{path}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><div class=\"actions\">\
         <button type=\"submit\" class=\"{class}\" id=\"confirm-{path}\">{button}</button>\
         <a class=\"button secondary\" href=\"{b}/payments/{id}\">Back</a></div></form></section>",
        id = escape(s(&l.intent, "id")),
        title = escape(&title),
        path = step.path(),
        csrf = escape(&ctx.session.csrf),
    );
    let status = if problem.is_some() { 400 } else { 200 };
    render(
        ctx,
        status,
        button,
        at.project,
        at.mode.as_str(),
        "payments",
        &body,
    )
    .await
}

/// Capture or cancel through the IntentProcessor, as the API's, audited.
pub async fn step(ctx: &Ctx<'_>, at: &At<'_>, id: &str, step: Step) -> Response<Body> {
    let Ok(Some(_)) = load_payment(ctx, at, id).await else {
        return not_found();
    };
    let op = match step {
        Step::Capture => PaymentOp::Capture,
        Step::Cancel => PaymentOp::Cancel,
    };
    match ctx
        .state
        .intents
        .run(op, context(at.scope()), id, Params::default())
        .await
    {
        Ok(reply) if reply.status < 300 => {
            let what = format!(
                "{}d payment {id} ({})",
                if step == Step::Capture {
                    "capture"
                } else {
                    "cancelle"
                },
                at.mode.as_str()
            );
            ctx.audit(at.project, &what).await;
            redirect(&format!("{}/payments/{id}", at.base()))
        }
        Ok(reply) => {
            let msg = refusal(&reply.body, "The payment could not be changed.");
            step_form(ctx, at, id, step, Some(&msg)).await
        }
        Err(e) if e.status < 500 => step_form(ctx, at, id, step, Some(&e.message)).await,
        Err(e) => unavailable(&e.message),
    }
}

/// The project's audit log (owners only).
pub async fn audit(ctx: &Ctx<'_>, project: &str) -> Response<Body> {
    let rows = match accounts::audit_log(&ctx.state.store, project, 200).await {
        Ok(r) => r,
        Err(e) => return unavailable(&e.to_string()),
    };
    let body: String = rows
        .iter()
        .map(|e| {
            format!(
                "<tr><td class=\"muted\">{}</td><td>{}</td><td>{}</td><td class=\"mono hide-sm\">{}</td></tr>",
                escape(&time(e.at)),
                escape(&e.who),
                escape(&e.what),
                escape(&e.from)
            )
        })
        .collect();
    let table = if body.is_empty() {
        "<p class=\"muted\">Nothing has been changed yet.</p>".to_string()
    } else {
        format!(
            "<table id=\"audit\"><thead><tr><th>When (UTC)</th><th>Who</th><th>What</th><th class=\"hide-sm\">From</th></tr></thead><tbody>{body}</tbody></table>"
        )
    };
    let html = format!("<h1>Audit log</h1><section class=\"card\">{table}</section>");
    render(ctx, 200, "Audit log", project, "test", "audit", &html).await
}

fn time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%-d %b %Y, %H:%M").to_string())
        .unwrap_or_default()
}

/// The account page: change password, sign out everywhere.
pub async fn account(
    ctx: &Ctx<'_>,
    q: &[(String, String)],
    problem: Option<(&str, &str)>,
) -> Response<Body> {
    let project = field(q, "project")
        .filter(|p| ctx.session.user.roles.contains_key(*p))
        .map(str::to_string)
        .or_else(|| ctx.session.user.roles.keys().next().cloned())
        .unwrap_or_default();
    let err = |name: &str| match problem {
        Some((f, m)) if f == name => (
            format!(" aria-invalid=\"true\" aria-describedby=\"{name}-error\""),
            format!(
                "<p class=\"field-error\" id=\"{name}-error\">{}</p>",
                escape(m)
            ),
        ),
        _ => (String::new(), String::new()),
    };
    let (ci, ce) = err("current");
    let (ni, ne) = err("new");
    let done = if field(q, "changed").is_some() {
        "<p class=\"note\" role=\"status\">Your password has been changed. Other sessions were signed out.</p>"
    } else {
        ""
    };
    let roles: String = ctx
        .session
        .user
        .roles
        .iter()
        .map(|(p, r)| {
            format!(
                "<li><span class=\"mono\">{}</span>: {}</li>",
                escape(p),
                r.as_str()
            )
        })
        .collect();
    let csrf = escape(&ctx.session.csrf);
    let body = format!(
        "<h1>Your account</h1>{done}<section class=\"card\"><dl class=\"facts\"><dt>Email</dt><dd>{email}</dd>\
         <dt>Roles</dt><dd><ul style=\"margin:0;padding-left:1.1rem\">{roles}</ul></dd></dl></section>\
         <section class=\"card\" aria-labelledby=\"pw-h\"><h2 id=\"pw-h\">Change password</h2>\
         <form method=\"post\" action=\"/dashboard/account/password?project={pid}\" novalidate><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"current\">Current password</label><input type=\"password\" id=\"current\" name=\"current\" autocomplete=\"current-password\"{ci}>{ce}\
         <label for=\"new\">New password (at least 10 characters)</label><input type=\"password\" id=\"new\" name=\"new\" autocomplete=\"new-password\"{ni}>{ne}\
         <div class=\"actions\"><button type=\"submit\" id=\"change-password\">Change password</button></div></form></section>\
         <section class=\"card\" aria-labelledby=\"out-h\"><h2 id=\"out-h\">Sessions</h2><p>Signed in somewhere you should not be? \
         This ends every session of your account, this one included.</p>\
         <form method=\"post\" action=\"/dashboard/logout-everywhere\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" class=\"secondary\" id=\"logout-everywhere\">Sign out everywhere</button></form></section>",
        email = escape(&ctx.session.user.email),
        pid = escape(&project),
    );
    let status = if problem.is_some() { 400 } else { 200 };
    render(
        ctx,
        status,
        "Your account",
        &project,
        "test",
        "account",
        &body,
    )
    .await
}

pub async fn change_password(
    ctx: &Ctx<'_>,
    form: &[(String, String)],
    secret: &str,
) -> Response<Body> {
    let current = field(form, "current").unwrap_or_default();
    let new = field(form, "new").unwrap_or_default();
    let email = &ctx.session.user.email;
    if let Some(why) = password_problem(new, email) {
        return account(ctx, &[], Some(("new", why))).await;
    }
    match accounts::change_password(&ctx.state.store, email, current, new).await {
        Ok(()) => {
            for p in ctx.session.user.roles.keys() {
                ctx.audit(p, "changed their password").await;
            }
            // This browser stays signed in: a fresh session under the new generation.
            let _ = accounts::end_session(&ctx.state.store, secret).await;
            match accounts::start_session(&ctx.state.store, email).await {
                Ok(fresh) => {
                    let mut resp = redirect("/dashboard/account?changed=1");
                    answers::set_cookie(
                        ctx.state,
                        &mut resp,
                        answers::COOKIE,
                        &fresh,
                        calmony_actors::dashboard::access::ABSOLUTE_SECS,
                    );
                    resp
                }
                Err(e) => unavailable(&e.to_string()),
            }
        }
        Err(AccountError::WrongPassword) => {
            account(
                ctx,
                &[],
                Some(("current", "That is not your current password.")),
            )
            .await
        }
        Err(AccountError::BadPassword(why)) => account(ctx, &[], Some(("new", why))).await,
        Err(e) => unavailable(&e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_pounds_and_pence() {
        for (raw, want) in [
            ("12.50", Some(1250)),
            ("12.5", Some(1250)),
            ("12", Some(1200)),
            ("£3.07", Some(307)),
            (" 0 ", Some(0)),
            ("", None),
            ("-1", None),
            ("1.234", None),
            ("abc", None),
            ("1e3", None),
            ("9999999999999", None),
        ] {
            assert_eq!(parse_amount(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn statuses_read_as_a_merchant_would() {
        assert_eq!(status_label("succeeded", false, false).0, "Succeeded");
        assert_eq!(
            status_label("requires_payment_method", true, false).0,
            "Failed"
        );
        assert_eq!(
            status_label("requires_payment_method", false, false).0,
            "Incomplete"
        );
        assert_eq!(short_day("2026-12-06"), "6 Dec");
        assert_eq!(brand_name("visa"), "Visa");
        assert_eq!(event_label("charge.refunded"), "Refunded");
        assert_eq!(event_label("something.new"), "Event");
        assert_eq!(brand_name("amex"), "American Express");
        assert_eq!(brand_name(""), "");
        assert_eq!(day_start("1970-01-02"), Some(86_400));
        assert_eq!(day_start("2026-13-01"), None);
    }
}
