//! A project's users (owners only): who has which role, add someone (a new account with a
//! first password they change, or an existing one), change a role, remove. A project is never
//! left without an owner.

use calmony_actors::dashboard::access::{Role, normalise_email, role_change_allowed};
use calmony_actors::dashboard::accounts::{self, AccountError};
use hyper::Response;

use super::answers::{self, field, unavailable};
use super::views::{Ctx, render};
use crate::pages::html::{escape, redirect};
use crate::response::Body;

fn role_options(current: Role) -> String {
    [Role::Viewer, Role::Admin, Role::Owner]
        .iter()
        .map(|r| {
            format!(
                "<option value=\"{v}\"{sel}>{v}</option>",
                v = r.as_str(),
                sel = if *r == current { " selected" } else { "" }
            )
        })
        .collect()
}

pub async fn page(
    ctx: &Ctx<'_>,
    project: &str,
    form: &[(String, String)],
    problem: Option<(&str, String)>,
) -> Response<Body> {
    let members = match accounts::members(&ctx.state.store, project).await {
        Ok(m) => m,
        Err(e) => return unavailable(&e.to_string()),
    };
    let csrf = escape(&ctx.session.csrf);
    let p = escape(project);
    let rows: String = members
        .iter()
        .map(|(email, role)| {
            let e = escape(email);
            let you = if *email == ctx.session.user.email { " <span class=\"muted\">(you)</span>" } else { "" };
            format!(
                "<tr><td>{e}{you}</td><td><form method=\"post\" action=\"/dashboard/{p}/users/role\" class=\"actions\" style=\"margin:0\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"email\" value=\"{e}\">\
                 <label class=\"sr\" for=\"role-{e}\">Role of {e}</label><select id=\"role-{e}\" name=\"role\" style=\"width:auto\">{opts}</select>\
                 <button type=\"submit\" class=\"secondary\" style=\"padding:.35rem .8rem\">Change</button></form></td>\
                 <td class=\"num\"><form method=\"post\" action=\"/dashboard/{p}/users/remove\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <input type=\"hidden\" name=\"email\" value=\"{e}\"><button type=\"submit\" class=\"secondary\" style=\"padding:.35rem .8rem\" \
                 aria-label=\"Remove {e}\">Remove</button></form></td></tr>",
                opts = role_options(*role),
            )
        })
        .collect();
    let err = |name: &str| match &problem {
        Some((f, m)) if *f == name => (
            format!(" aria-invalid=\"true\" aria-describedby=\"{name}-error\""),
            format!(
                "<p class=\"field-error\" id=\"{name}-error\">{}</p>",
                escape(m)
            ),
        ),
        _ => (String::new(), String::new()),
    };
    let (ei, ee) = err("email");
    let (pi, pe) = err("password");
    let other = match &problem {
        Some((f, m)) if *f == "members" => format!(
            "<p class=\"alert\" role=\"alert\" id=\"problem\">{}</p>",
            escape(m)
        ),
        _ => String::new(),
    };
    let body = format!(
        "<h1>Users</h1>{other}<section class=\"card\"><table id=\"members\"><thead><tr><th>Email</th><th>Role</th>\
         <th class=\"num\"><span class=\"sr\">Remove</span></th></tr></thead><tbody>{rows}</tbody></table>\
         <p class=\"muted\">Owners can do everything; admins everything but users; viewers only look.</p></section>\
         <section class=\"card\" aria-labelledby=\"add-h\"><h2 id=\"add-h\">Add someone</h2>\
         <form method=\"post\" action=\"/dashboard/{p}/users\" novalidate><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"email\">Email</label><input type=\"email\" id=\"email\" name=\"email\" value=\"{email}\"{ei}>{ee}\
         <label for=\"role\">Role</label><select id=\"role\" name=\"role\">{opts}</select>\
         <label for=\"password\">First password (for someone without an account; they change it after signing in)</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"new-password\"{pi}>{pe}\
         <div class=\"actions\"><button type=\"submit\" id=\"add-user\">Add</button></div></form></section>",
        email = escape(field(form, "email").unwrap_or_default()),
        opts = role_options(Role::Viewer),
    );
    let status = if problem.is_some() { 400 } else { 200 };
    render(ctx, status, "Users", project, "test", "users", &body).await
}

async fn audit(ctx: &Ctx<'_>, project: &str, what: &str) {
    ctx.audit(project, what).await;
}

pub async fn add(ctx: &Ctx<'_>, project: &str, form: &[(String, String)]) -> Response<Body> {
    let Some(email) = normalise_email(field(form, "email").unwrap_or_default()) else {
        return page(
            ctx,
            project,
            form,
            Some(("email", "Enter an email address.".into())),
        )
        .await;
    };
    let role = Role::parse(field(form, "role").unwrap_or_default()).unwrap_or(Role::Viewer);
    let store = &ctx.state.store;
    let done = match accounts::grant(store, &email, project, role).await {
        Ok(()) => Ok(()),
        Err(AccountError::Unknown(_)) => {
            let password = field(form, "password").unwrap_or_default();
            if password.is_empty() {
                return page(
                    ctx,
                    project,
                    form,
                    Some((
                        "password",
                        "There is no account for this email yet: give a first password.".into(),
                    )),
                )
                .await;
            }
            accounts::create_user(store, &email, password, project, role)
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    };
    match done {
        Ok(()) => {
            audit(
                ctx,
                project,
                &format!("gave {email} the role {}", role.as_str()),
            )
            .await;
            redirect(&format!("/dashboard/{project}/users"))
        }
        Err(AccountError::BadPassword(why)) => {
            page(ctx, project, form, Some(("password", why.into()))).await
        }
        Err(AccountError::BadEmail(_)) => {
            page(
                ctx,
                project,
                form,
                Some(("email", "Enter an email address.".into())),
            )
            .await
        }
        Err(e) => unavailable(&e.to_string()),
    }
}

/// Change a member's role (`to`), or remove them (`None`).
pub async fn change(
    ctx: &Ctx<'_>,
    project: &str,
    form: &[(String, String)],
    remove: bool,
) -> Response<Body> {
    let email = field(form, "email").unwrap_or_default();
    let to = if remove {
        None
    } else {
        Role::parse(field(form, "role").unwrap_or_default())
    };
    if !remove && to.is_none() {
        return answers::refused("Choose viewer, admin or owner.");
    }
    let members = match accounts::members(&ctx.state.store, project).await {
        Ok(m) => m,
        Err(e) => return unavailable(&e.to_string()),
    };
    if !members.iter().any(|(e, _)| e == email) {
        return super::answers::not_found();
    }
    if !role_change_allowed(&members, email, to) {
        return page(
            ctx,
            project,
            &[],
            Some((
                "members",
                "A project needs an owner: make someone else owner first.".into(),
            )),
        )
        .await;
    }
    let result = match to {
        Some(r) => accounts::grant(&ctx.state.store, email, project, r).await,
        None => accounts::remove(&ctx.state.store, email, project)
            .await
            .map_err(AccountError::from),
    };
    match result {
        Ok(()) => {
            let what = match to {
                Some(r) => format!("changed {email}'s role to {}", r.as_str()),
                None => format!("removed {email}"),
            };
            audit(ctx, project, &what).await;
            redirect(&format!("/dashboard/{project}/users"))
        }
        Err(e) => unavailable(&e.to_string()),
    }
}
