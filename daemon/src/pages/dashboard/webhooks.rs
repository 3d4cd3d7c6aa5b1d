//! Webhook endpoints and events: create an endpoint (its signing secret shown once), roll its
//! secret, disable and enable it, see its deliveries with their response excerpt and resend an
//! event; list events and read one's JSON. Every action is the API's own operation in the
//! page's project and mode.

use calmony_actors::dashboard::access::Role;
use calmony_actors::webhooks::{endpoints, events};
use calmony_protocol::{ApiError, Params, ids};
use hyper::Response;
use serde_json::Value;

use super::answers::{self, field, not_found, unavailable};
use super::views::{At, Ctx, context, n, params, render, s};
use crate::pages::html::{escape, redirect};
use crate::response::Body;

fn data(body: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("data").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

fn time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%-d %b %Y, %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// The query string that creates an endpoint from the form: `url`, the events (comma or
/// space separated; empty: every event), `description`.
pub fn create_query(url: &str, events: &str, description: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("url", url.trim());
    let list: Vec<&str> = events
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if list.is_empty() {
        q.append_pair("enabled_events[0]", "*");
    }
    for (i, e) in list.iter().enumerate() {
        q.append_pair(&format!("enabled_events[{i}]"), e);
    }
    if !description.trim().is_empty() {
        q.append_pair("description", description.trim());
    }
    q.finish()
}

async fn audit(ctx: &Ctx<'_>, at: &At<'_>, what: &str) {
    let what = format!("{what} ({})", at.mode.as_str());
    ctx.audit(at.project, &what).await;
}

fn secret_card(label: &str, secret: &str) -> String {
    format!(
        "<section class=\"card\" style=\"border-color:#f0c869;background:#fffbeb\" aria-labelledby=\"secret-h\">\
         <h2 id=\"secret-h\">{label}</h2><p>Copy it now: it is shown only this once. Verify each delivery's \
         <code>Stripe-Signature</code> with it.</p><label for=\"new-secret\">Signing secret</label>\
         <input type=\"text\" id=\"new-secret\" readonly class=\"mono\" value=\"{}\"></section>",
        escape(secret)
    )
}

pub async fn list(
    ctx: &Ctx<'_>,
    at: &At<'_>,
    form: &[(String, String)],
    problem: Option<(String, String)>,
    secret: Option<&str>,
) -> Response<Body> {
    let reply = match endpoints::list(
        &ctx.state.webhooks,
        &context(at.scope()),
        params("limit=100").unwrap_or_default(),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return unavailable(&e.message),
    };
    let b = escape(&at.base());
    let rows: String = data(&reply.body)
        .iter()
        .map(|e| {
            let id = escape(s(e, "id"));
            let tone = if s(e, "status") == "enabled" { "ok" } else { "warn" };
            let events = e
                .get("enabled_events")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            format!(
                "<tr><td><a href=\"{b}/webhooks/{id}\" id=\"hook-{id}\">{url}</a></td>\
                 <td><span class=\"pill {tone}\">{status}</span></td><td class=\"hide-sm mono\">{events}</td></tr>",
                url = escape(s(e, "url")),
                status = escape(s(e, "status")),
                events = escape(&events),
            )
        })
        .collect();
    let table = if rows.is_empty() {
        "<p class=\"muted\">No endpoints yet: events are kept and can be read below, but sent nowhere.</p>".to_string()
    } else {
        format!(
            "<table id=\"endpoints\"><thead><tr><th>URL</th><th>Status</th><th class=\"hide-sm\">Events</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    let value = |k: &str| escape(field(form, k).unwrap_or_default());
    let err = |name: &str| match &problem {
        Some((f, m)) if f == name => (
            format!(" aria-invalid=\"true\" aria-describedby=\"{name}-error\""),
            format!(
                "<p class=\"field-error\" id=\"{name}-error\">{}</p>",
                escape(m)
            ),
        ),
        _ => (String::new(), String::new()),
    };
    let (ui, ue) = err("url");
    let (ei, ee) = err("enabled_events");
    let other = match &problem {
        Some((f, m)) if f != "url" && f != "enabled_events" => {
            format!("<p class=\"alert\" role=\"alert\">{}</p>", escape(m))
        }
        _ => String::new(),
    };
    let create = if at.role >= Role::Admin {
        format!(
            "<section class=\"card\" aria-labelledby=\"add-h\"><h2 id=\"add-h\">Add an endpoint</h2>{other}\
             <form method=\"post\" action=\"{b}/webhooks\" novalidate><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label for=\"url\">Endpoint URL</label><input type=\"text\" id=\"url\" name=\"url\" inputmode=\"url\" placeholder=\"https://…\" value=\"{url}\"{ui}>{ue}\
             <label for=\"enabled_events\">Events (comma-separated; empty for all)</label>\
             <input type=\"text\" id=\"enabled_events\" name=\"enabled_events\" placeholder=\"payment_intent.succeeded, charge.refunded\" value=\"{events}\"{ei}>{ee}\
             <label for=\"description\">Description (optional)</label><input type=\"text\" id=\"description\" name=\"description\" value=\"{desc}\">\
             <div class=\"actions\"><button type=\"submit\" id=\"add-endpoint\">Add endpoint</button></div></form></section>",
            csrf = escape(&ctx.session.csrf),
            url = value("url"),
            events = value("enabled_events"),
            desc = value("description"),
        )
    } else {
        String::new()
    };
    let reveal = secret
        .map(|s| secret_card("The endpoint's signing secret", s))
        .unwrap_or_default();
    let body = format!(
        "<h1>Webhooks</h1>{reveal}<section class=\"card\">{table}<p><a href=\"{b}/events\">All events →</a></p></section>{create}"
    );
    let status = if problem.is_some() { 400 } else { 200 };
    render(
        ctx,
        status,
        "Webhooks",
        at.project,
        at.mode.as_str(),
        "webhooks",
        &body,
    )
    .await
}

pub async fn create(ctx: &Ctx<'_>, at: &At<'_>, form: &[(String, String)]) -> Response<Body> {
    let url = field(form, "url").unwrap_or_default();
    if url.trim().is_empty() {
        return list(
            ctx,
            at,
            form,
            Some(("url".into(), "Enter the URL to send events to.".into())),
            None,
        )
        .await;
    }
    let q = create_query(
        url,
        field(form, "enabled_events").unwrap_or_default(),
        field(form, "description").unwrap_or_default(),
    );
    let p = match params(&q) {
        Ok(p) => p,
        Err(e) => {
            return list(
                ctx,
                at,
                form,
                Some((e.param.clone().unwrap_or_default(), e.message)),
                None,
            )
            .await;
        }
    };
    match endpoints::create(&ctx.state.webhooks, &context(at.scope()), p).await {
        Ok(reply) => {
            let v: Value = serde_json::from_str(&reply.body).unwrap_or_default();
            audit(
                ctx,
                at,
                &format!(
                    "added webhook endpoint {} for {}",
                    s(&v, "id"),
                    s(&v, "url")
                ),
            )
            .await;
            list(ctx, at, &[], None, Some(s(&v, "secret"))).await
        }
        Err(e) if e.status < 500 => {
            let param = e.param.clone().unwrap_or_default();
            let param = if param.starts_with("enabled_events") {
                "enabled_events".to_string()
            } else {
                param
            };
            list(ctx, at, form, Some((param, e.message)), None).await
        }
        Err(e) => unavailable(&e.message),
    }
}

async fn endpoint(ctx: &Ctx<'_>, at: &At<'_>, id: &str) -> Result<Option<Value>, ApiError> {
    if !ids::is_valid("we", id) {
        return Ok(None);
    }
    super::views::found(
        endpoints::retrieve(
            &ctx.state.webhooks,
            &context(at.scope()),
            id,
            Params::default(),
        )
        .await,
    )
}

pub async fn detail(
    ctx: &Ctx<'_>,
    at: &At<'_>,
    id: &str,
    secret: Option<&str>,
    notice: Option<&str>,
) -> Response<Body> {
    let e = match endpoint(ctx, at, id).await {
        Ok(Some(e)) => e,
        Ok(None) => return not_found(),
        Err(err) => return unavailable(&err.message),
    };
    let attempts = endpoints::attempts(
        &ctx.state.webhooks,
        &context(at.scope()),
        id,
        params("limit=50").unwrap_or_default(),
    )
    .await
    .map(|r| data(&r.body))
    .unwrap_or_default();
    let b = escape(&at.base());
    let csrf = escape(&ctx.session.csrf);
    let admin = at.role >= Role::Admin;
    let rows: String = attempts
        .iter()
        .map(|a| {
            let tone = match s(a, "status") {
                "succeeded" => "ok",
                "failed" => "bad",
                _ => "warn",
            };
            let evt = escape(s(a, "event"));
            let resend = if admin {
                format!(
                    "<form method=\"post\" action=\"{b}/events/{evt}/resend\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                     <input type=\"hidden\" name=\"webhook_endpoint\" value=\"{id}\">\
                     <button type=\"submit\" class=\"secondary\" style=\"padding:.3rem .7rem\" aria-label=\"Resend event {evt}\">Resend</button></form>",
                    id = escape(id),
                )
            } else {
                String::new()
            };
            format!(
                "<tr><td class=\"nowrap muted\">{when}</td><td><a class=\"mono\" href=\"{b}/events/{evt}\">{evt}</a><br>\
                 <span class=\"muted\">try {n}</span></td><td><span class=\"pill {tone}\">{status}</span> {code}</td>\
                 <td class=\"hide-sm\"><code>{resp}</code></td><td class=\"num\">{resend}</td></tr>",
                when = escape(&time(n(a, "created"))),
                n = n(a, "attempt"),
                status = escape(s(a, "status")),
                code = a.get("http_status").and_then(Value::as_u64).map(|c| c.to_string()).unwrap_or_default(),
                resp = escape(&s(a, "response").chars().take(120).collect::<String>()),
            )
        })
        .collect();
    let table = if rows.is_empty() {
        "<p class=\"muted\">No deliveries yet.</p>".to_string()
    } else {
        format!(
            "<table id=\"attempts\"><thead><tr><th>When</th><th>Event</th><th>Result</th><th class=\"hide-sm\">Response</th><th class=\"num\"><span class=\"sr\">Resend</span></th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    let enabled = s(&e, "status") == "enabled";
    let actions = if admin {
        format!(
            "<div class=\"actions\"><form method=\"post\" action=\"{b}/webhooks/{id}/roll\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" id=\"roll-secret\">Roll signing secret</button></form>\
             <form method=\"post\" action=\"{b}/webhooks/{id}/{toggle}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" class=\"secondary\" id=\"{toggle}-endpoint\">{label}</button></form></div>",
            id = escape(id),
            toggle = if enabled { "disable" } else { "enable" },
            label = if enabled { "Disable" } else { "Enable" },
        )
    } else {
        String::new()
    };
    let reveal = secret
        .map(|s| secret_card("The new signing secret", s))
        .unwrap_or_default();
    let banner = notice
        .map(|m| {
            format!(
                "<p class=\"note\" role=\"status\" id=\"notice\">{}</p>",
                escape(m)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<p><a href=\"{b}/webhooks\">← Webhooks</a></p>{banner}{reveal}<h1 id=\"endpoint-url\" style=\"overflow-wrap:anywhere\">{url}</h1>\
         <section class=\"card\"><dl class=\"facts\"><dt>Endpoint</dt><dd class=\"mono\">{id}</dd><dt>Status</dt>\
         <dd id=\"endpoint-status\">{status}</dd><dt>Description</dt><dd>{desc}</dd></dl>{actions}</section>\
         <section class=\"card\" aria-labelledby=\"att-h\"><h2 id=\"att-h\">Deliveries</h2>{table}</section>",
        url = escape(s(&e, "url")),
        id = escape(id),
        status = escape(s(&e, "status")),
        desc = escape(if s(&e, "description").is_empty() {
            "—"
        } else {
            s(&e, "description")
        }),
    );
    render(
        ctx,
        200,
        "Webhook endpoint",
        at.project,
        at.mode.as_str(),
        "webhooks",
        &body,
    )
    .await
}

pub async fn roll(ctx: &Ctx<'_>, at: &At<'_>, id: &str) -> Response<Body> {
    if !matches!(endpoint(ctx, at, id).await, Ok(Some(_))) {
        return not_found();
    }
    match endpoints::roll_secret(
        &ctx.state.webhooks,
        &context(at.scope()),
        id,
        Params::default(),
    )
    .await
    {
        Ok(reply) => {
            let v: Value = serde_json::from_str(&reply.body).unwrap_or_default();
            audit(
                ctx,
                at,
                &format!("rolled the signing secret of webhook endpoint {id}"),
            )
            .await;
            // Answered here: the new secret is in this answer only.
            detail(ctx, at, id, Some(s(&v, "secret")), None).await
        }
        Err(e) if e.status < 500 => answers::refused(&e.message),
        Err(e) => unavailable(&e.message),
    }
}

pub async fn toggle(ctx: &Ctx<'_>, at: &At<'_>, id: &str, disable: bool) -> Response<Body> {
    if !matches!(endpoint(ctx, at, id).await, Ok(Some(_))) {
        return not_found();
    }
    let p = params(if disable {
        "disabled=true"
    } else {
        "disabled=false"
    })
    .unwrap_or_default();
    match endpoints::update(&ctx.state.webhooks, &context(at.scope()), id, p).await {
        Ok(_) => {
            let what = if disable { "disabled" } else { "enabled" };
            audit(ctx, at, &format!("{what} webhook endpoint {id}")).await;
            redirect(&format!("{}/webhooks/{id}", at.base()))
        }
        Err(e) if e.status < 500 => answers::refused(&e.message),
        Err(e) => unavailable(&e.message),
    }
}

pub async fn resend(
    ctx: &Ctx<'_>,
    at: &At<'_>,
    event: &str,
    form: &[(String, String)],
) -> Response<Body> {
    let to = field(form, "webhook_endpoint").unwrap_or_default();
    let q = if to.is_empty() {
        String::new()
    } else {
        format!("webhook_endpoint={to}")
    };
    let p = match params(&q) {
        Ok(p) => p,
        Err(e) => return answers::refused(&e.message),
    };
    match events::resend(&ctx.state.webhooks, &context(at.scope()), event, p).await {
        Ok(_) => {
            audit(ctx, at, &format!("resent event {event}")).await;
            if to.is_empty() {
                redirect(&format!("{}/events/{event}?resent=1", at.base()))
            } else {
                redirect(&format!("{}/webhooks/{to}?resent={event}", at.base()))
            }
        }
        Err(e) if e.status == 404 => not_found(),
        Err(e) if e.status < 500 => answers::refused(&e.message),
        Err(e) => unavailable(&e.message),
    }
}

pub async fn event_list(ctx: &Ctx<'_>, at: &At<'_>, q: &[(String, String)]) -> Response<Body> {
    let kind = field(q, "type").unwrap_or_default().trim();
    let mut query = String::from("limit=50");
    if !kind.is_empty() {
        query.push_str(&format!(
            "&type={}",
            form_urlencoded::byte_serialize(kind.as_bytes()).collect::<String>()
        ));
    }
    let (items, problem) = match events::list(
        &ctx.state.webhooks,
        &context(at.scope()),
        params(&query).unwrap_or_default(),
    )
    .await
    {
        Ok(r) => (data(&r.body), None),
        Err(e) if e.status < 500 => (Vec::new(), Some(e.message)),
        Err(e) => return unavailable(&e.message),
    };
    let b = escape(&at.base());
    let rows: String = items
        .iter()
        .map(|e| {
            format!(
                "<tr><td><a class=\"mono\" href=\"{b}/events/{id}\">{t}</a></td><td class=\"mono hide-sm\">{id}</td><td class=\"nowrap muted\">{when}</td></tr>",
                id = escape(s(e, "id")),
                t = escape(s(e, "type")),
                when = escape(&time(n(e, "created"))),
            )
        })
        .collect();
    let table = if rows.is_empty() {
        "<p class=\"muted\">No events.</p>".to_string()
    } else {
        format!(
            "<table id=\"events\"><thead><tr><th>Type</th><th class=\"hide-sm\">Event</th><th>When</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    let (inv, err) = match &problem {
        Some(m) => (
            " aria-invalid=\"true\" aria-describedby=\"type-error\"".to_string(),
            format!(
                "<p class=\"field-error\" id=\"type-error\">{}</p>",
                escape(m)
            ),
        ),
        None => (String::new(), String::new()),
    };
    let body = format!(
        "<h1>Events</h1><section class=\"card\"><form method=\"get\" action=\"{b}/events\" class=\"filters\">\
         <div><label for=\"type\">Type</label><input type=\"text\" id=\"type\" name=\"type\" placeholder=\"payment_intent.succeeded\" value=\"{k}\"{inv}>{err}</div>\
         <div><button type=\"submit\" class=\"secondary\">Filter</button></div></form></section><section class=\"card\">{table}</section>",
        k = escape(kind),
    );
    render(
        ctx,
        if problem.is_some() { 400 } else { 200 },
        "Events",
        at.project,
        at.mode.as_str(),
        "webhooks",
        &body,
    )
    .await
}

pub async fn event(ctx: &Ctx<'_>, at: &At<'_>, id: &str, resent: bool) -> Response<Body> {
    if !ids::is_valid("evt", id) {
        return not_found();
    }
    let v: Value = match events::retrieve(
        &ctx.state.webhooks,
        &context(at.scope()),
        id,
        Params::default(),
    )
    .await
    {
        Ok(r) => serde_json::from_str(&r.body).unwrap_or_default(),
        Err(e) if e.status == 404 => return not_found(),
        Err(e) => return unavailable(&e.message),
    };
    let pretty = serde_json::to_string_pretty(&v).unwrap_or_default();
    let b = escape(&at.base());
    let resend = if at.role >= Role::Admin {
        format!(
            "<form method=\"post\" action=\"{b}/events/{id}/resend\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\" class=\"secondary\" id=\"resend-event\">Resend to every endpoint</button></form>",
            escape(&ctx.session.csrf),
            id = escape(id),
        )
    } else {
        String::new()
    };
    let banner = if resent {
        "<p class=\"note\" role=\"status\" id=\"notice\">Queued to be sent again.</p>"
    } else {
        ""
    };
    let body = format!(
        "<p><a href=\"{b}/events\">← Events</a></p>{banner}<h1 class=\"mono\" style=\"font-size:1.15rem\">{t}</h1>\
         <section class=\"card\"><pre id=\"event-json\" tabindex=\"0\" aria-label=\"The event's JSON\" \
         style=\"overflow:auto;max-height:32rem;margin:0;font-size:.85rem\">{json}</pre><div class=\"actions\">{resend}</div></section>",
        t = escape(s(&v, "type")),
        json = escape(&pretty),
    );
    render(
        ctx,
        200,
        "Event",
        at.project,
        at.mode.as_str(),
        "webhooks",
        &body,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_the_api_s_parameters() {
        assert_eq!(
            create_query(" https://h.example/hook ", "", ""),
            "url=https%3A%2F%2Fh.example%2Fhook&enabled_events%5B0%5D=*"
        );
        assert_eq!(
            create_query("u", "a.b, c.d", " x "),
            "url=u&enabled_events%5B0%5D=a.b&enabled_events%5B1%5D=c.d&description=x"
        );
    }
}
