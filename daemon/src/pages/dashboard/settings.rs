//! Onboarding and settings: a new project (its creator becomes its owner), the business
//! details the hosted pages and invoices show, and API keys (created and shown once, listed
//! by prefix, revoked with a confirmation step). Keys are made and revoked by the same
//! functions as `calmony-payd keys`, so they are hashed the same way.

use calmony_actors::api_keys;
use calmony_actors::dashboard::access::Role;
use calmony_actors::dashboard::accounts;
use calmony_actors::projects::{self, ProjectError};
use calmony_protocol::business::{BusinessProfile, ProfileChange};
use calmony_protocol::clock_text::date;
use hyper::Response;

use super::answers::{self, field, not_found, unavailable};
use super::frame;
use super::views::{At, Ctx, render};
use crate::pages::html::{escape, redirect};
use crate::response::Body;

/// The details form's fields: `(name, label, autocomplete, hint)`.
const FIELDS: [(&str, &str, &str, &str); 7] = [
    (
        "display_name",
        "Business name (shown to payers)",
        "organization",
        "",
    ),
    ("support_email", "Support email", "email", ""),
    ("support_url", "Support website", "url", "https://…"),
    (
        "address",
        "Address (one line per comma)",
        "street-address",
        "",
    ),
    ("vat_number", "VAT number", "off", ""),
    ("brand_color", "Brand colour", "off", "#rrggbb"),
    ("logo_url", "Logo URL", "url", "https://…"),
];

fn change_from(form: &[(String, String)]) -> ProfileChange {
    let get = |k: &str| field(form, k).map(str::to_string);
    ProfileChange {
        display_name: get("display_name"),
        support_email: get("support_email"),
        support_url: get("support_url"),
        address: get("address"),
        vat_number: get("vat_number"),
        brand_color: get("brand_color"),
        logo_url: get("logo_url"),
    }
}

fn current(p: &BusinessProfile, name: &str) -> String {
    match name {
        "display_name" => p.display_name.clone(),
        "support_email" => p.support_email.clone(),
        "support_url" => p.support_url.clone(),
        "address" => Some(p.address.join(", ")),
        "vat_number" => p.vat_number.clone(),
        "brand_color" => p.brand_color.clone(),
        "logo_url" => p.logo_url.clone(),
        _ => None,
    }
    .unwrap_or_default()
}

/// The inputs of the details form, each with its problem beside it.
fn detail_inputs(values: &dyn Fn(&str) -> String, problem: Option<(&str, &str)>) -> String {
    FIELDS
        .iter()
        .map(|(name, label, auto, hint)| {
            let (inv, err) = match problem {
                Some((f, m)) if f == *name => (
                    format!(" aria-invalid=\"true\" aria-describedby=\"{name}-error\""),
                    format!("<p class=\"field-error\" id=\"{name}-error\">{}</p>", escape(m)),
                ),
                _ => (String::new(), String::new()),
            };
            format!(
                "<label for=\"{name}\">{label}</label><input type=\"text\" id=\"{name}\" name=\"{name}\" \
                 autocomplete=\"{auto}\" placeholder=\"{hint}\" value=\"{v}\"{inv}>{err}",
                v = escape(&values(name)),
            )
        })
        .collect()
}

pub async fn details(
    ctx: &Ctx<'_>,
    project: &str,
    role: Role,
    form: Option<&[(String, String)]>,
    problem: Option<(&str, &str)>,
    saved: bool,
) -> Response<Body> {
    let m = match projects::merchant(&ctx.state.store, project).await {
        Ok(m) => m,
        Err(e) => return unavailable(&e.to_string()),
    };
    let values = |name: &str| match form {
        Some(f) => field(f, name).unwrap_or_default().to_string(),
        None => current(&m.profile, name),
    };
    let done = if saved {
        "<p class=\"note\" role=\"status\" id=\"notice\">Saved. Checkout, the portal and new invoices show these details now.</p>"
    } else {
        ""
    };
    let zone_now = projects::time_zone(&ctx.state.store, project)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| "UTC".into());
    let zone_value = match form {
        Some(f) => field(f, "time_zone").unwrap_or_default().to_string(),
        None => zone_now,
    };
    let (zi, ze) = match problem {
        Some(("time_zone", m)) => (
            " aria-invalid=\"true\" aria-describedby=\"time_zone-error\"".to_string(),
            format!(
                "<p class=\"field-error\" id=\"time_zone-error\">{}</p>",
                escape(m)
            ),
        ),
        _ => (String::new(), String::new()),
    };
    let zone_input = format!(
        "<label for=\"time_zone\">Time zone of the dashboard's days (e.g. Europe/London)</label>\
         <input type=\"text\" id=\"time_zone\" name=\"time_zone\" value=\"{}\"{zi}>{ze}",
        escape(&zone_value)
    );
    let form_html = if role >= Role::Admin {
        format!(
            "<form method=\"post\" action=\"/dashboard/{p}/settings\" novalidate>\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{inputs}{zone_input}\
             <div class=\"actions\"><button type=\"submit\" id=\"save-details\">Save details</button></div></form>",
            p = escape(project),
            csrf = escape(&ctx.session.csrf),
            inputs = detail_inputs(&values, problem),
        )
    } else {
        "<p class=\"muted\">Your role (viewer) cannot change these details.</p>".into()
    };
    let body = format!(
        "<h1>Business details</h1>{done}<section class=\"card\"><p class=\"muted\">What payers see on the \
         checkout and portal pages and on invoices. Project <span class=\"mono\">{name}</span> ({id}).</p>{form_html}</section>",
        name = escape(&m.project_name),
        id = escape(project),
    );
    let status = if problem.is_some() { 400 } else { 200 };
    render(
        ctx,
        status,
        "Business details",
        project,
        "test",
        "settings",
        &body,
    )
    .await
}

pub async fn save_details(
    ctx: &Ctx<'_>,
    project: &str,
    role: Role,
    form: &[(String, String)],
) -> Response<Body> {
    let m = match projects::merchant(&ctx.state.store, project).await {
        Ok(m) => m,
        Err(e) => return unavailable(&e.to_string()),
    };
    // The time zone is checked first: a refused one writes nothing at all.
    let zone = field(form, "time_zone").unwrap_or_default().trim();
    let zone_change = match projects::time_zone(&ctx.state.store, project).await {
        Ok(now) if now.as_deref().unwrap_or("UTC") == zone || zone.is_empty() => None,
        Ok(_) if calmony_actors::money::stats::zone(zone).is_none() => {
            let why = "Enter a time zone name such as Europe/London or UTC.";
            return details(
                ctx,
                project,
                role,
                Some(form),
                Some(("time_zone", why)),
                false,
            )
            .await;
        }
        Ok(_) => Some(zone),
        Err(e) => return unavailable(&e.to_string()),
    };
    // Only what changed is written (an unchanged field left as it is).
    let mut change = change_from(form);
    for (name, slot) in [
        ("display_name", &mut change.display_name),
        ("support_email", &mut change.support_email),
        ("support_url", &mut change.support_url),
        ("address", &mut change.address),
        ("vat_number", &mut change.vat_number),
        ("brand_color", &mut change.brand_color),
        ("logo_url", &mut change.logo_url),
    ] {
        if slot.as_deref().map(str::trim) == Some(current(&m.profile, name).as_str()) {
            *slot = None;
        }
    }
    // The details are checked before the time zone is written, so a refusal writes nothing.
    if let Err(e) = change.apply(&m.profile) {
        return details(
            ctx,
            project,
            role,
            Some(form),
            Some((e.field, &e.message)),
            false,
        )
        .await;
    }
    if let Some(zone) = zone_change {
        if let Err(e) = projects::set_time_zone(&ctx.state.store, project, zone).await {
            return unavailable(&e.to_string());
        }
        ctx.audit(project, &format!("set the time zone to {zone}"))
            .await;
    }
    if change.is_empty() {
        return redirect(&format!("/dashboard/{project}/settings?saved=1"));
    }
    match projects::update(&ctx.state.store, &m.project_name, &change).await {
        Ok(_) => {
            ctx.audit(project, "changed the business details").await;
            redirect(&format!("/dashboard/{project}/settings?saved=1"))
        }
        Err(ProjectError::Invalid(e)) => {
            details(
                ctx,
                project,
                role,
                Some(form),
                Some((e.field, &e.message)),
                false,
            )
            .await
        }
        Err(e) => unavailable(&e.to_string()),
    }
}

/// The keys of this project and mode, newest first.
async fn keys_of(ctx: &Ctx<'_>, at: &At<'_>) -> Result<Vec<api_keys::ApiKeyInfo>, String> {
    let mut keys: Vec<_> = api_keys::list_keys(&ctx.state.store)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|k| k.project_id == at.project && k.mode == at.mode)
        .collect();
    keys.reverse();
    Ok(keys)
}

pub async fn keys(ctx: &Ctx<'_>, at: &At<'_>, revealed: Option<&str>) -> Response<Body> {
    let keys = match keys_of(ctx, at).await {
        Ok(k) => k,
        Err(e) => return unavailable(&e),
    };
    let b = escape(&at.base());
    let admin = at.role >= Role::Admin;
    let rows: String = keys
        .iter()
        .map(|k| {
            let action = if k.revoked {
                "<span class=\"pill warn\">Revoked</span>".to_string()
            } else if admin {
                format!("<a href=\"{b}/keys/{id}/revoke\" id=\"revoke-{id}\">Revoke…</a>", id = escape(&k.id))
            } else {
                "<span class=\"pill ok\">Active</span>".to_string()
            };
            format!(
                "<tr><td class=\"mono\">{prefix}</td><td class=\"mono hide-sm\">{id}</td><td class=\"nowrap\">{created}</td>\
                 <td class=\"nowrap hide-sm\">{used}</td><td class=\"num\">{action}</td></tr>",
                prefix = escape(&k.prefix),
                id = escape(&k.id),
                created = date(k.created),
                used = k.last_used.map(date).unwrap_or_else(|| "never".into()),
            )
        })
        .collect();
    let table = if rows.is_empty() {
        "<p class=\"muted\">No keys yet.</p>".to_string()
    } else {
        format!(
            "<table id=\"keys\"><thead><tr><th>Key</th><th class=\"hide-sm\">Id</th><th>Created</th><th class=\"hide-sm\">Last used</th><th class=\"num\"><span class=\"sr\">Status</span></th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    let reveal = revealed
        .map(|raw| {
            format!(
                "<section class=\"card\" aria-labelledby=\"new-key-h\" style=\"border-color:#f0c869;background:#fffbeb\">\
                 <h2 id=\"new-key-h\">Your new secret key</h2><p>Copy it now and keep it safe: it is shown only this once \
                 and cannot be shown again.</p><p><label for=\"new-key\">Secret key</label>\
                 <input type=\"text\" id=\"new-key\" readonly value=\"{}\" class=\"mono\"></p></section>",
                escape(raw)
            )
        })
        .unwrap_or_default();
    let create = if admin {
        format!(
            "<form method=\"post\" action=\"{b}/keys\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\" id=\"create-key\">Create a {} secret key</button></form>",
            escape(&ctx.session.csrf),
            at.mode.as_str()
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>API keys</h1>{reveal}<section class=\"card\"><p class=\"muted\">Secret keys for {mode} mode. \
         Only a hash of each key is kept.</p>{table}<div class=\"actions\">{create}</div></section>",
        mode = at.mode.as_str(),
    );
    render(
        ctx,
        200,
        "API keys",
        at.project,
        at.mode.as_str(),
        "keys",
        &body,
    )
    .await
}

pub async fn create_key(ctx: &Ctx<'_>, at: &At<'_>) -> Response<Body> {
    let m = match projects::merchant(&ctx.state.store, at.project).await {
        Ok(m) if !m.project_name.is_empty() => m,
        Ok(_) => return not_found(),
        Err(e) => return unavailable(&e.to_string()),
    };
    match api_keys::create_key(&ctx.state.store, &m.project_name, at.mode).await {
        Ok((raw, info)) => {
            let what = format!(
                "created {} key {} ({})",
                at.mode.as_str(),
                info.id,
                info.prefix
            );
            ctx.audit(at.project, &what).await;
            // Answered here, not redirected: the raw key is in this answer only.
            keys(ctx, at, Some(raw.expose())).await
        }
        Err(e) => unavailable(&e.to_string()),
    }
}

pub async fn revoke_form(ctx: &Ctx<'_>, at: &At<'_>, id: &str) -> Response<Body> {
    if at.role < Role::Admin {
        return answers::forbidden(
            "Your role in this project (viewer) does not allow revoking keys.",
        );
    }
    let Some(k) = keys_of(ctx, at)
        .await
        .ok()
        .and_then(|ks| ks.into_iter().find(|k| k.id == id))
    else {
        return not_found();
    };
    let b = escape(&at.base());
    let body = format!(
        "<p><a href=\"{b}/keys\">← API keys</a></p><h1 id=\"confirm-title\">Revoke key {prefix}?</h1><section class=\"card\">\
         <p>Every request made with this key is refused from now on, by every daemon. This cannot be undone.</p>\
         <form method=\"post\" action=\"{b}/keys/{id}/revoke\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <div class=\"actions\"><button type=\"submit\" class=\"danger\" id=\"confirm-revoke\">Revoke key</button>\
         <a class=\"button secondary\" href=\"{b}/keys\">Keep it</a></div></form></section>",
        prefix = escape(&k.prefix),
        id = escape(&k.id),
        csrf = escape(&ctx.session.csrf),
    );
    render(
        ctx,
        200,
        "Revoke key",
        at.project,
        at.mode.as_str(),
        "keys",
        &body,
    )
    .await
}

pub async fn revoke(ctx: &Ctx<'_>, at: &At<'_>, id: &str) -> Response<Body> {
    // Only a key of this project and mode: an id of another's is not found.
    let Some(k) = keys_of(ctx, at)
        .await
        .ok()
        .and_then(|ks| ks.into_iter().find(|k| k.id == id))
    else {
        return not_found();
    };
    match api_keys::revoke(&ctx.state.store, &k.id).await {
        Ok(_) => {
            let what = format!("revoked {} key {} ({})", at.mode.as_str(), k.id, k.prefix);
            ctx.audit(at.project, &what).await;
            redirect(&format!("{}/keys", at.base()))
        }
        Err(e) => unavailable(&e.to_string()),
    }
}

/// A project's name as `projects create` takes it: letters, digits, `-` and `_`.
pub fn project_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("Enter a short name for the project, like harbour-lettings.")
    } else if name.len() > 40 {
        Some("Use at most 40 characters.")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Some("Use letters, digits, - and _ only.")
    } else {
        None
    }
}

pub fn new_project_form(
    csrf: &str,
    form: &[(String, String)],
    problem: Option<(&str, &str)>,
) -> Response<Body> {
    let values = |name: &str| field(form, name).unwrap_or_default().to_string();
    let (inv, err) = match problem {
        Some(("name", m)) => (
            " aria-invalid=\"true\" aria-describedby=\"name-error\"".to_string(),
            format!(
                "<p class=\"field-error\" id=\"name-error\">{}</p>",
                escape(m)
            ),
        ),
        _ => (String::new(), String::new()),
    };
    let other = problem.filter(|(f, _)| *f != "name");
    let body = format!(
        "<h1>Create a project</h1><p class=\"muted\">A project holds one business's payments, customers and keys, \
         in test and live mode. You will be its owner.</p>\
         <form method=\"post\" action=\"/dashboard/projects/new\" novalidate><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"name\">Project name (for you; payers never see it)</label>\
         <input type=\"text\" id=\"name\" name=\"name\" value=\"{name}\"{inv}>{err}{inputs}\
         <button type=\"submit\" id=\"create-project\">Create project</button></form>\
         <p style=\"text-align:center\"><a href=\"/dashboard\">Cancel</a></p>",
        csrf = escape(csrf),
        name = escape(&values("name")),
        inputs = detail_inputs(&values, other),
    );
    frame::auth_page(
        if problem.is_some() { 400 } else { 200 },
        "Create a project",
        &body,
    )
}

pub async fn create_project(ctx: &Ctx<'_>, form: &[(String, String)]) -> Response<Body> {
    let name = field(form, "name").unwrap_or_default().trim();
    if let Some(why) = project_name_problem(name) {
        return new_project_form(&ctx.session.csrf, form, Some(("name", why)));
    }
    let mut change = change_from(form);
    for slot in [
        &mut change.display_name,
        &mut change.support_email,
        &mut change.support_url,
        &mut change.address,
        &mut change.vat_number,
        &mut change.brand_color,
        &mut change.logo_url,
    ] {
        if slot.as_deref().is_some_and(|v| v.trim().is_empty()) {
            *slot = None;
        }
    }
    match projects::create(&ctx.state.store, name, &change).await {
        Ok(m) => {
            if let Err(e) = accounts::grant(
                &ctx.state.store,
                &ctx.session.user.email,
                &m.project_id,
                Role::Owner,
            )
            .await
            {
                return unavailable(&e.to_string());
            }
            ctx.audit(&m.project_id, &format!("created project {name}"))
                .await;
            redirect(&format!("/dashboard/{}/test/keys", m.project_id))
        }
        Err(ProjectError::Exists(_)) => new_project_form(
            &ctx.session.csrf,
            form,
            Some(("name", "A project with this name exists already.")),
        ),
        Err(ProjectError::Invalid(e)) => {
            new_project_form(&ctx.session.csrf, form, Some((e.field, &e.message)))
        }
        Err(e) => unavailable(&e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_are_short_and_plain() {
        assert_eq!(project_name_problem("harbour-lettings_2"), None);
        for bad in ["", "has space", "ünï", &"x".repeat(41)] {
            assert!(project_name_problem(bad).is_some(), "{bad}");
        }
    }
}
