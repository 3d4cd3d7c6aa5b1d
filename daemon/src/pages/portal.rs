//! The customer portal page a `billing_portal.session`'s `url` opens: invoices with their
//! PDFs, subscriptions (renewal date and amount, cancel with a confirmation, resume, switch
//! plan), the card (updated through the gateway's hosted card page) and the customer's
//! details, in the merchant's frame, with a link back to `return_url`.
//!
//! The link (`…/t/:token`) works for five minutes and binds the browser with a cookie for an
//! hour. The cookie is `HttpOnly`, `Secure` when `public_url` is https, and `SameSite=Lax`,
//! not `Strict`: the browser reaches the page by navigations other sites start (the merchant's
//! "Manage billing" link, then our redirect; the gateway's card page posting back, then the
//! checkout's redirect here), and Chrome withholds `Strict` cookies on such chains, which
//! would show the customer an expired page. `Lax` is sent on top-level `GET`s only; every
//! change is a `POST` whose form carries a CSRF token derived from the cookie's secret, and the
//! one `GET` that changes something (back from the card page) only applies a card this
//! customer saved for this very session.

use calmony_actors::billing_portal::{
    Overview, PageError, Portal, ShownSubscription, Viewer, access::AfterTask,
};
use calmony_protocol::billing::Subscription;
use calmony_protocol::clock_text::{date, money};
use hyper::Response;
use hyper::header::HeaderMap;

use super::brand::{Look, merchant_page};
use super::html::{escape, hidden_inputs, page, redirect};
use crate::edge::routes::PortalStep;
use crate::response::{Body, set};
use crate::state::AppState;

/// One request to the page, as the edge read it.
pub struct Request<'a> {
    pub project: &'a str,
    pub mode: &'a str,
    pub session: &'a str,
    pub step: PortalStep,
    pub query: &'a str,
    pub cookie: Option<&'a str>,
    pub body: &'a [u8],
}

/// The cookie's name: one per session, so two portal tabs of two customers never mix.
fn cookie_name(session: &str) -> String {
    let safe: String = session
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    format!("cp_portal_{safe}")
}

/// This session's cookie from the request's `Cookie` headers.
pub fn cookie_of(headers: &HeaderMap, session: &str) -> Option<String> {
    let name = cookie_name(session);
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub async fn handle(state: &AppState, r: Request<'_>) -> Response<Body> {
    let Some(scope) = calmony_actors::payments::three_ds::scope(r.project, r.mode) else {
        return not_found();
    };
    let portal = &state.portal;
    let look = Look::load(&state.store, &scope).await;
    let base = state.config.public_base();
    let home_url = calmony_actors::billing_portal::page_url(&base, &scope, r.session);
    // Root-relative, for links and forms on the page.
    let here = calmony_actors::billing_portal::page_url("", &scope, r.session);
    if let PortalStep::Open { token } = &r.step {
        return match portal.open(&scope, r.session, token).await {
            Ok(opened) => {
                let mut to = here.clone();
                if let Ok(v) = portal
                    .viewer(&scope, r.session, Some(&opened.cookie_secret))
                    .await
                    && let Some(flow) = &v.session.flow
                {
                    match (flow.kind.as_str(), &flow.subscription_cancel) {
                        ("subscription_cancel", Some(c)) => {
                            to = format!("{here}/subscriptions/{}/cancel", c.subscription)
                        }
                        _ => to = format!("{here}#payment-method"),
                    }
                }
                let mut resp = redirect(&to);
                let secure = if base.starts_with("https://") {
                    "; Secure"
                } else {
                    ""
                };
                set(
                    &mut resp,
                    "set-cookie",
                    &format!(
                        "{}={}; Path={here}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
                        cookie_name(r.session),
                        opened.cookie_secret,
                        opened.until - calmony_actors::clock::now(),
                    ),
                );
                resp
            }
            Err(e) => error_page(&look, e),
        };
    }
    let v = match portal.viewer(&scope, r.session, r.cookie).await {
        Ok(v) => v,
        Err(e) => return error_page(&look, e),
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(r.body).into_owned().collect();
    if r.step.posts()
        && let Err(e) = Portal::check_form(&v, field(&form, "csrf").unwrap_or_default())
    {
        return error_page(&look, e);
    }
    let query: Vec<(String, String)> = form_urlencoded::parse(r.query.as_bytes())
        .into_owned()
        .collect();
    let done = |what: &str| -> Response<Body> {
        match Portal::after_task(&v) {
            AfterTask::Redirect(url) => redirect(&url),
            AfterTask::Confirmation(message) => confirmation(&look, &v, &here, message),
            AfterTask::Home => redirect(&format!("{here}?done={what}")),
        }
    };
    let outcome = match &r.step {
        PortalStep::Open { .. } => return not_found(),
        PortalStep::Home => {
            let notice = field(&query, "done").and_then(notice_for);
            return home(portal, &v, &look, &here, notice.map(Notice::Done)).await;
        }
        PortalStep::CancelForm { subscription } => {
            return cancel_form(portal, &v, &look, &here, subscription).await;
        }
        PortalStep::Cancel { subscription } => portal
            .cancel(
                &v,
                subscription,
                field(&form, "feedback").filter(|f| !f.is_empty()),
            )
            .await
            .map(|s| {
                if s.cancel_at_period_end && s.status != "canceled" {
                    "ending"
                } else {
                    "canceled"
                }
            }),
        PortalStep::Resume { subscription } => {
            portal.resume(&v, subscription).await.map(|_| "resumed")
        }
        PortalStep::SwitchPrice { subscription } => portal
            .switch_price(&v, subscription, field(&form, "price").unwrap_or_default())
            .await
            .map(|_| "switched"),
        PortalStep::Card => {
            return match portal.start_card_update(&v, &home_url).await {
                Ok(url) => redirect(&url),
                Err(e) => failed(portal, &v, &look, &here, e).await,
            };
        }
        PortalStep::CardSaved => portal
            .card_saved(&v, field(&query, "checkout").unwrap_or_default())
            .await
            .map(|_| "card"),
        PortalStep::Details => portal.update_details(&v, &form).await.map(|_| "details"),
        PortalStep::InvoicePdf { invoice } => {
            return match portal.invoice_pdf(&v, invoice).await {
                Ok(url) => redirect(&url),
                Err(e) => failed(portal, &v, &look, &here, e).await,
            };
        }
    };
    match outcome {
        Ok(what) => done(what),
        Err(e) => failed(portal, &v, &look, &here, e).await,
    }
}

enum Notice {
    Done(&'static str),
    Problem(String),
}

fn notice_for(done: &str) -> Option<&'static str> {
    Some(match done {
        "canceled" => "Your subscription has been cancelled.",
        "ending" => {
            "Your subscription will end at the end of the current period. You can \
                     resume it any time before then."
        }
        "resumed" => "Your subscription will continue. Nothing else changes.",
        "switched" => "Your plan has been changed.",
        "card" => "Your card has been updated. Any overdue payment has been retried with it.",
        "details" => "Your details have been saved.",
        _ => return None,
    })
}

/// A refusal or failure is shown on the page itself, with the page as it now is.
async fn failed(
    portal: &Portal,
    v: &Viewer,
    look: &Look,
    here: &str,
    e: PageError,
) -> Response<Body> {
    match e {
        PageError::Refused(why) => {
            let mut resp = home(portal, v, look, here, Some(Notice::Problem(why))).await;
            *resp.status_mut() = hyper::StatusCode::BAD_REQUEST;
            resp
        }
        other => error_page(look, other),
    }
}

/// The portal's own rules, beside the merchant frame's.
const STYLE: &str = ".wide{max-width:62rem}\
     .intro{margin:0 0 1.25rem}.intro p{margin:0;color:#5b6475}\
     .layout{display:grid;gap:1.25rem}\
     @media(min-width:52rem){.layout{grid-template-columns:1.1fr 1fr;gap:2rem}main{padding:2rem 2.25rem}}\
     section.card{border:1px solid #eceef2;border-radius:10px;padding:1.1rem 1.1rem .9rem;margin:0 0 1.25rem}\
     h2{font-size:1rem;margin:0 0 .75rem}\
     .row{display:flex;justify-content:space-between;align-items:baseline;gap:.75rem;flex-wrap:wrap}\
     .sub{padding:.25rem 0 .5rem}.sub+.sub{border-top:1px solid #eceef2;padding-top:1rem;margin-top:.5rem}\
     .sub-name{font-weight:650}\
     .price{font-size:1.5rem;font-weight:700;margin:.2rem 0}.price small{font-size:.95rem;font-weight:500;color:#5b6475}\
     .meta{color:#3c4257;margin:.25rem 0 .75rem;font-size:.95rem}\
     .pill{font-size:.75rem;font-weight:600;border-radius:999px;padding:.1rem .6rem;white-space:nowrap;border:1px solid}\
     .pill.ok{background:#e7f6ec;color:#1d6b3a;border-color:#b5e0c3}\
     .pill.warn{background:#fff4d6;color:#7a4d00;border-color:#f0c869}\
     .pill.bad{background:#fdecec;color:#8a1c1c;border-color:#f3b9b9}\
     .actions{display:flex;gap:.6rem;flex-wrap:wrap;align-items:center}\
     .actions form{margin:0}\
     .secondary,a.secondary{background:#fff;color:#1a1f36;border:1px solid #c9ced8;text-decoration:none;display:inline-block}\
     .danger{background:#fff;color:#a3262a;border:1px solid #e8b4b6}\
     .small{padding:.55rem .9rem;font-size:.95rem}\
     .cardline{display:flex;align-items:center;gap:.35rem .6rem;flex-wrap:wrap;margin:0 0 .85rem}.cardline span{white-space:nowrap}\
     .brandmark{font-size:.75rem;font-weight:700;text-transform:uppercase;letter-spacing:.04em;border:1px solid #c9ced8;border-radius:4px;padding:.05rem .35rem;color:#3c4257}\
     table{width:100%;border-collapse:collapse;font-size:.95rem}\
     th{text-align:left;font-weight:600;color:#5b6475;font-size:.85rem;padding:.25rem 0;border-bottom:1px solid #eceef2}\
     td{padding:.55rem 0;border-bottom:1px solid #eceef2;vertical-align:top}\
     .num{text-align:right;white-space:nowrap;padding-left:.75rem}\
     .muted{color:#5b6475}\
     dl{margin:0 0 .75rem;display:grid;grid-template-columns:auto 1fr;gap:.3rem .9rem}dt{color:#5b6475}dd{margin:0;overflow-wrap:anywhere}\
     details summary{cursor:pointer;color:#1a1f36;font-weight:600;margin:.25rem 0}\
     label{display:block;font-size:.9rem;color:#3c4257;margin:.6rem 0 .2rem}\
     input[type=text],input[type=email],select{width:100%;font:inherit;padding:.55rem .65rem;border:1px solid #c9ced8;border-radius:8px;background:#fff}\
     input:focus-visible,select:focus-visible{outline:3px solid #1a5fb4;outline-offset:1px}\
     fieldset{border:0;padding:0;margin:0 0 1rem}legend{font-weight:600;margin:0 0 .4rem}\
     .choice{display:flex;gap:.5rem;align-items:center;margin:.35rem 0;font-size:.95rem;color:#1a1f36}\
     .note{background:#eef6ff;color:#16406b;border:1px solid #bcd7f5;border-radius:8px;padding:.75rem;margin:0 0 1rem}\
     .alert{background:#fdecec;color:#8a1c1c;border:1px solid #f3b9b9;border-radius:8px;padding:.75rem;margin:0 0 1rem}\
     .back{margin:1.25rem 0 0;font-size:.95rem}.back a{color:#3c4257}\
     .legal{font-size:.85rem;color:#5b6475;margin:.75rem 0 0}.legal a{color:#5b6475}\
     .sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}";

fn csrf_input(v: &Viewer) -> String {
    hidden_inputs(&[("csrf".into(), v.csrf.clone())])
}

fn back_link(v: &Viewer, look: &Look) -> String {
    match &v.session.return_url {
        Some(u) => format!(
            "<p class=\"back\"><a id=\"return-link\" href=\"{}\">← Return to {}</a></p>",
            escape(u),
            escape(look.name().unwrap_or("the website"))
        ),
        None => String::new(),
    }
}

fn legal(v: &Viewer) -> String {
    let b = &v.settings.business_profile;
    let mut links = Vec::new();
    if let Some(u) = &b.terms_of_service_url {
        links.push(format!(
            "<a href=\"{}\" rel=\"noopener\">Terms of service</a>",
            escape(u)
        ));
    }
    if let Some(u) = &b.privacy_policy_url {
        links.push(format!(
            "<a href=\"{}\" rel=\"noopener\">Privacy policy</a>",
            escape(u)
        ));
    }
    if links.is_empty() {
        String::new()
    } else {
        format!("<p class=\"legal\">{}</p>", links.join(" · "))
    }
}

/// A subscription's amount each period, and its period (`/ month`).
fn per_period(s: &Subscription) -> (i64, String) {
    let amount = s
        .items
        .data
        .iter()
        .map(|i| i.price.unit_amount * i.quantity)
        .sum();
    let per = s
        .items
        .data
        .first()
        .and_then(|i| i.price.recurring.as_ref())
        .map(|r| {
            if r.interval_count > 1 {
                format!(" every {} {}s", r.interval_count, r.interval)
            } else {
                format!(" / {}", r.interval)
            }
        })
        .unwrap_or_default();
    (amount, per)
}

fn taxed(s: &Subscription) -> bool {
    !s.default_tax_rates.is_empty() || s.items.data.iter().any(|i| !i.tax_rates.is_empty())
}

fn status_pill(s: &Subscription) -> (&'static str, &'static str) {
    match s.status.as_str() {
        "past_due" | "unpaid" | "incomplete" => ("Payment overdue", "bad"),
        _ if s.cancel_at_period_end => ("Ending", "warn"),
        "trialing" => ("Trial", "ok"),
        _ => ("Active", "ok"),
    }
}

fn subscription_html(v: &Viewer, o: &Overview, here: &str, shown: &ShownSubscription) -> String {
    let s = &shown.subscription;
    let names = &shown.product_names;
    let paid_by = shown
        .other_card
        .as_ref()
        .and_then(|pm| pm.card.as_ref())
        .map(|c| {
            format!(
                "<p class=\"meta muted\" id=\"sub-card-{}\">Charged to {} •••• {}</p>",
                escape(&s.id),
                escape(&c.display_brand),
                escape(&c.last4)
            )
        })
        .unwrap_or_default();

    let (amount, per) = per_period(s);
    let tax = if taxed(s) { " including tax" } else { "" };
    let (pill, tone) = status_pill(s);
    let overdue = o
        .invoices
        .iter()
        .find(|i| Some(&i.id) == s.latest_invoice.as_ref() && i.status == "open");
    let meta = match (overdue, s.cancel_at_period_end) {
        (Some(inv), _) => format!(
            "Your last payment of {} did not go through. Update your card and it is retried \
             at once.",
            money(inv.amount_remaining)
        ),
        (None, true) => format!(
            "Ends on {}. You will not be charged again.",
            date(s.current_period_end)
        ),
        (None, false) => format!(
            "Renews on {} for {}{tax}.",
            date(s.current_period_end),
            money(shown.renewal_total)
        ),
    };
    let f = &v.settings.features;
    let id = escape(&s.id);
    let mut actions = Vec::new();
    if f.subscription_cancel.enabled {
        if s.cancel_at_period_end {
            actions.push(format!(
                "<form method=\"post\" action=\"{here}/subscriptions/{id}/resume\">{csrf}\
                 <button type=\"submit\" class=\"small\" id=\"resume-{id}\">Resume subscription</button></form>",
                here = escape(here),
                csrf = csrf_input(v),
            ));
        } else {
            actions.push(format!(
                "<a class=\"button secondary small\" id=\"cancel-{id}\" \
                 href=\"{here}/subscriptions/{id}/cancel\">Cancel subscription</a>",
                here = escape(here),
            ));
        }
    }
    let switch = if f.subscription_update.enabled
        && !s.cancel_at_period_end
        && s.items.data.len() == 1
    {
        let current = s
            .items
            .data
            .first()
            .map(|i| i.price.id.as_str())
            .unwrap_or_default();
        let options: String = o
            .switchable
            .iter()
            .map(|(p, name)| {
                let per = p
                    .recurring
                    .as_ref()
                    .map(|r| format!(" / {}", r.interval))
                    .unwrap_or_default();
                format!(
                    "<option value=\"{}\"{}>{} — {}{}</option>",
                    escape(&p.id),
                    if p.id == current { " selected" } else { "" },
                    escape(p.nickname.as_deref().unwrap_or(name)),
                    money(p.unit_amount),
                    escape(&per)
                )
            })
            .collect();
        format!(
            "<form method=\"post\" action=\"{here}/subscriptions/{id}/price\" class=\"switch\">{csrf}\
             <label for=\"price-{id}\">Change plan</label>\
             <div class=\"actions\"><select name=\"price\" id=\"price-{id}\">{options}</select>\
             <button type=\"submit\" class=\"small secondary\" id=\"switch-{id}\">Switch</button></div></form>",
            here = escape(here),
            csrf = csrf_input(v),
        )
    } else {
        String::new()
    };
    format!(
        "<article class=\"sub\" id=\"sub-{id}\"><div class=\"row\"><span class=\"sub-name\">{names}</span>\
         <span class=\"pill {tone}\" id=\"status-{id}\">{pill}</span></div>\
         <p class=\"price\">{amount}<small>{per}</small></p>\
         <p class=\"meta\" id=\"renewal-{id}\">{meta}</p>{paid_by}\
         <div class=\"actions\">{actions}</div>{switch}</article>",
        names = escape(&names.join(", ")),
        amount = money(amount),
        per = escape(&per),
        meta = escape(&meta),
        actions = actions.join(""),
    )
}

async fn home(
    portal: &Portal,
    v: &Viewer,
    look: &Look,
    here: &str,
    notice: Option<Notice>,
) -> Response<Body> {
    let o = match portal.overview(v).await {
        Ok(o) => o,
        Err(e) => return error_page(look, e),
    };
    let f = &v.settings.features;
    let banner = match notice {
        Some(Notice::Done(m)) => format!(
            "<p class=\"note\" id=\"notice\" role=\"status\">{}</p>",
            escape(m)
        ),
        Some(Notice::Problem(m)) => {
            format!(
                "<p class=\"alert\" id=\"problem\" role=\"alert\">{}</p>",
                escape(&m)
            )
        }
        None => String::new(),
    };
    let who = o
        .customer
        .email
        .clone()
        .or_else(|| o.customer.name.clone())
        .unwrap_or_default();
    let headline = v
        .settings
        .business_profile
        .headline
        .clone()
        .unwrap_or_else(|| "Manage your billing".into());
    let subs: String = if o.subscriptions.is_empty() {
        "<p class=\"muted\">You have no active subscriptions.</p>".into()
    } else {
        o.subscriptions
            .iter()
            .map(|shown| subscription_html(v, &o, here, shown))
            .collect()
    };
    let card = match o.card.as_ref().and_then(|pm| pm.card.as_ref()) {
        Some(c) => format!(
            "<p class=\"cardline\" id=\"current-card\"><span class=\"brandmark\">{}</span>\
             <span>•••• {}</span><span class=\"muted\">Expires {:02}/{}</span></p>",
            escape(&c.display_brand),
            escape(&c.last4),
            c.exp_month,
            c.exp_year
        ),
        None => "<p class=\"muted\" id=\"current-card\">No card on file.</p>".into(),
    };
    let card_section = if f.payment_method_update.enabled {
        format!(
            "<section class=\"card\" id=\"payment-method\" aria-labelledby=\"pm-h\"><h2 id=\"pm-h\">Payment method</h2>{card}\
             <form method=\"post\" action=\"{here}/card\">{csrf}\
             <button type=\"submit\" id=\"update-card\" class=\"small\">Update card</button></form></section>",
            here = escape(here),
            csrf = csrf_input(v),
        )
    } else {
        format!(
            "<section class=\"card\" id=\"payment-method\" aria-labelledby=\"pm-h\"><h2 id=\"pm-h\">Payment method</h2>{card}</section>"
        )
    };
    let c = &o.customer;
    let addr = c
        .address
        .as_ref()
        .map(|a| {
            [&a.line1, &a.line2, &a.city, &a.postal_code, &a.country]
                .iter()
                .filter_map(|x| x.as_deref())
                .filter(|x| !x.is_empty())
                .map(escape)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let allowed = |name: &str| {
        f.customer_update.enabled && f.customer_update.allowed_updates.iter().any(|a| a == name)
    };
    let mut inputs = String::new();
    if allowed("name") {
        inputs.push_str(&format!(
            "<label for=\"name\">Name</label><input type=\"text\" id=\"name\" name=\"name\" autocomplete=\"name\" value=\"{}\">",
            escape(c.name.as_deref().unwrap_or_default())
        ));
    }
    if allowed("email") {
        inputs.push_str(&format!(
            "<label for=\"email\">Email</label><input type=\"email\" id=\"email\" name=\"email\" autocomplete=\"email\" value=\"{}\">",
            escape(c.email.as_deref().unwrap_or_default())
        ));
    }
    if allowed("address") {
        let a = c.address.clone().unwrap_or_default();
        for (key, label, value, auto) in [
            ("line1", "Address line 1", a.line1, "address-line1"),
            ("line2", "Address line 2", a.line2, "address-line2"),
            ("city", "Town or city", a.city, "address-level2"),
            ("postal_code", "Postcode", a.postal_code, "postal-code"),
            ("country", "Country (2-letter code)", a.country, "country"),
        ] {
            inputs.push_str(&format!(
                "<label for=\"address-{key}\">{label}</label><input type=\"text\" id=\"address-{key}\" \
                 name=\"address[{key}]\" autocomplete=\"{auto}\" value=\"{}\">",
                escape(value.as_deref().unwrap_or_default())
            ));
        }
    }
    let edit = if inputs.is_empty() {
        String::new()
    } else {
        format!(
            "<details id=\"edit-details\"><summary>Edit details</summary>\
             <form method=\"post\" action=\"{here}/details\">{csrf}{inputs}\
             <p><button type=\"submit\" id=\"save-details\" class=\"small\">Save</button></p></form></details>",
            here = escape(here),
            csrf = csrf_input(v),
        )
    };
    let details = format!(
        "<section class=\"card\" id=\"details\" aria-labelledby=\"details-h\"><h2 id=\"details-h\">Billing information</h2>\
         <dl><dt>Name</dt><dd id=\"customer-name\">{}</dd><dt>Email</dt><dd id=\"customer-email\">{}</dd>\
         <dt>Address</dt><dd id=\"customer-address\">{}</dd></dl>{edit}</section>",
        escape(c.name.as_deref().unwrap_or("—")),
        escape(c.email.as_deref().unwrap_or("—")),
        if addr.is_empty() {
            "—".to_string()
        } else {
            addr
        },
    );
    let invoices = if f.invoice_history.enabled {
        let rows: String = o
            .invoices
            .iter()
            .map(|i| {
                let status = match i.status.as_str() {
                    "paid" => "<span class=\"pill ok\">Paid</span>",
                    "open" => "<span class=\"pill bad\">Due</span>",
                    "void" => "<span class=\"pill warn\">Void</span>",
                    _ => "<span class=\"pill warn\">Unpaid</span>",
                };
                format!(
                    "<tr><td>{date}<br><span class=\"muted\">{number}</span></td><td class=\"num\">{amount}</td>\
                     <td class=\"num\">{status}</td><td class=\"num\"><a id=\"pdf-{id}\" href=\"{here}/invoices/{id}/pdf\" \
                     aria-label=\"Download invoice {number} as PDF\">PDF</a></td></tr>",
                    date = date(i.created),
                    number = escape(i.number.as_deref().unwrap_or_default()),
                    amount = money(i.total),
                    id = escape(&i.id),
                    here = escape(here),
                )
            })
            .collect();
        let body = if rows.is_empty() {
            "<p class=\"muted\">No invoices yet.</p>".to_string()
        } else {
            format!(
                "<table aria-label=\"Invoices\"><thead><tr><th>Date</th><th class=\"num\">Amount</th>\
                 <th class=\"num\">Status</th><th class=\"num\"><span class=\"sr\">Download</span></th></tr></thead>\
                 <tbody>{rows}</tbody></table>"
            )
        };
        format!(
            "<section class=\"card\" id=\"invoices\" aria-labelledby=\"inv-h\"><h2 id=\"inv-h\">Invoice history</h2>{body}</section>"
        )
    } else {
        String::new()
    };
    let body = format!(
        "<div class=\"intro\"><h1 id=\"portal-title\">{headline}</h1><p>{who}</p></div>{banner}\
         <div class=\"layout\"><div>\
         <section class=\"card\" id=\"subscriptions\" aria-labelledby=\"subs-h\"><h2 id=\"subs-h\">Subscriptions</h2>{subs}</section>\
         {card_section}</div><div>{details}{invoices}</div></div>{back}{legal}",
        headline = escape(&headline),
        who = escape(&who),
        back = back_link(v, look),
        legal = legal(v),
    );
    merchant_page(200, "Billing", look, STYLE, true, &body)
}

async fn cancel_form(
    portal: &Portal,
    v: &Viewer,
    look: &Look,
    here: &str,
    sub: &str,
) -> Response<Body> {
    let f = &v.settings.features.subscription_cancel;
    if !f.enabled {
        return failed(
            portal,
            v,
            look,
            here,
            PageError::Refused("This business does not offer that here.".into()),
        )
        .await;
    }
    let s = match portal.subscription(v, sub).await {
        Ok(s) => s,
        Err(e) => return error_page(look, e),
    };
    if s.cancel_at_period_end {
        return redirect(here);
    }
    let names = match portal.overview(v).await {
        Ok(o) => o
            .subscriptions
            .into_iter()
            .find(|x| x.subscription.id == s.id)
            .map(|x| x.product_names.join(", "))
            .unwrap_or_default(),
        Err(e) => return error_page(look, e),
    };
    let at_once = f.mode == "immediately";
    let what = if at_once {
        "Your subscription ends now. You will not be charged again and nothing is refunded."
            .to_string()
    } else {
        format!(
            "You can keep using it until {}. You will not be charged again, and you can \
             resume any time before then.",
            date(s.current_period_end)
        )
    };
    let reasons = if f.cancellation_reason.enabled && !f.cancellation_reason.options.is_empty() {
        let choices: String = f
            .cancellation_reason
            .options
            .iter()
            .map(|o| {
                format!(
                    "<label class=\"choice\"><input type=\"radio\" name=\"feedback\" value=\"{}\" id=\"reason-{}\"> {}</label>",
                    escape(o),
                    escape(o),
                    escape(reason_text(o))
                )
            })
            .collect();
        format!("<fieldset><legend>Why are you cancelling? (optional)</legend>{choices}</fieldset>")
    } else {
        String::new()
    };
    let body = format!(
        "<h1 id=\"confirm-title\">Cancel {names}?</h1><p class=\"meta\" id=\"cancel-effect\">{what}</p>\
         <form method=\"post\" action=\"{here}/subscriptions/{id}/cancel\">{csrf}{reasons}\
         <div class=\"actions\"><button type=\"submit\" class=\"danger\" id=\"confirm-cancel\">Cancel subscription</button>\
         <a class=\"button secondary\" id=\"keep\" href=\"{here}\">Keep subscription</a></div></form>",
        names = escape(&names),
        what = escape(&what),
        here = escape(here),
        id = escape(&s.id),
        csrf = csrf_input(v),
    );
    merchant_page(200, "Cancel subscription", look, STYLE, false, &body)
}

fn reason_text(code: &str) -> &'static str {
    match code {
        "too_expensive" => "It's too expensive",
        "missing_features" => "Some features are missing",
        "switched_service" => "I'm switching to another service",
        "unused" => "I don't use it enough",
        "customer_service" => "Customer service was less than expected",
        "too_complex" => "Ease of use was less than expected",
        "low_quality" => "Quality was less than expected",
        _ => "Another reason",
    }
}

fn confirmation(look: &Look, v: &Viewer, here: &str, message: Option<String>) -> Response<Body> {
    let message = message.unwrap_or_else(|| "All done. Your change has been saved.".into());
    let body = format!(
        "<h1 id=\"confirmation\">Done</h1><p>{}</p><p class=\"back\"><a href=\"{}\">View your billing</a></p>{}",
        escape(&message),
        escape(here),
        back_link(v, look)
    );
    merchant_page(200, "Done", look, STYLE, false, &body)
}

fn error_page(look: &Look, e: PageError) -> Response<Body> {
    match e {
        PageError::NotFound => not_found(),
        PageError::Expired { return_url } => {
            let back = match (&return_url, look.name()) {
                (Some(u), Some(n)) => format!(
                    "<p class=\"back\"><a id=\"return-link\" href=\"{}\">Return to {}</a></p>",
                    escape(u),
                    escape(n)
                ),
                (Some(u), None) => format!(
                    "<p class=\"back\"><a id=\"return-link\" href=\"{}\">Return to the website</a></p>",
                    escape(u)
                ),
                _ => String::new(),
            };
            merchant_page(
                410,
                "Link expired",
                look,
                STYLE,
                false,
                &format!(
                    "<h1 id=\"expired\">This billing link has expired</h1>\
                     <p>For your security, a billing link opens the page only within five \
                     minutes of being made, and the page stays open for an hour.</p>\
                     <p>To get a new one, go back to {} and choose to manage your billing or \
                     subscription again. Nothing has changed on your account.</p>{back}",
                    escape(look.name().unwrap_or("the website you came from"))
                ),
            )
        }
        PageError::BadForm => merchant_page(
            403,
            "Please try again",
            look,
            STYLE,
            false,
            "<h1 id=\"bad-form\">This form has expired</h1><p>Please go back, reload the page and \
             try again. Nothing was changed.</p>",
        ),
        PageError::Refused(why) => merchant_page(
            400,
            "Not possible",
            look,
            STYLE,
            false,
            &format!(
                "<h1>That is not possible</h1><p class=\"alert\" id=\"problem\">{}</p>",
                escape(&why)
            ),
        ),
        PageError::Unavailable(why) => page(
            503,
            "Please try again",
            &format!("<h1>Something went wrong</h1><p>{}</p>", escape(&why)),
        ),
    }
}

fn not_found() -> Response<Body> {
    page(404, "Not found", "<h1>This page does not exist</h1>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_by_its_session_s_name_only() {
        let mut h = HeaderMap::new();
        h.append(
            hyper::header::COOKIE,
            "other=1; cp_portal_bps_A=secretA".parse().expect("header"),
        );
        h.append(
            hyper::header::COOKIE,
            "cp_portal_bps_B=secretB".parse().expect("header"),
        );
        assert_eq!(cookie_of(&h, "bps_A").as_deref(), Some("secretA"));
        assert_eq!(cookie_of(&h, "bps_B").as_deref(), Some("secretB"));
        assert_eq!(cookie_of(&h, "bps_C"), None);
        assert_eq!(cookie_name("bps_1;x=y"), "cp_portal_bps_1xy");
    }
}
