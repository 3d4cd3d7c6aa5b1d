//! The merchant dashboard under `/dashboard`: sign-in, the home page's figures and 30-day
//! chart, payments with refunds, and the audit log. Server-rendered HTML that works without
//! JavaScript.
//!
//! A session is a cookie (`cp_dash`: `HttpOnly`, `SameSite=Strict`, `Path=/dashboard`, and
//! `Secure` when `public_url` is https, as it should be behind a TLS-terminating proxy) whose
//! secret Redis keeps only as a digest. Every form carries a CSRF token derived from that
//! secret (the sign-in form, from a pre-session cookie); a post without the right one is a
//! 403 and changes nothing. Each project's URL is checked against the user's roles before
//! anything is read: a project the user has no role in is "not found", exactly as one that
//! does not exist, and so is an object of another project (its id is looked up in this
//! project's scope only). Every change is written to the project's audit log.

mod answers;
mod chart;
mod customers;
mod frame;
mod lists;
mod settings;
mod users;
mod views;
mod webhooks;

use calmony_actors::dashboard::access::{self, Action, Role};
use calmony_actors::dashboard::accounts::{self, Session, SignInError};
use calmony_protocol::Mode;
use hyper::Response;
use hyper::header::HeaderMap;

use super::html::{escape, redirect};
use crate::response::Body;
use crate::state::AppState;
use answers::{COOKIE, PRE_COOKIE, field, forbidden, not_found, set_cookie, unavailable};

/// One request to the dashboard, as the edge read it.
pub struct Request<'a> {
    pub post: bool,
    /// The path's segments after `/dashboard`.
    pub rest: Vec<&'a str>,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// The client's address, for the sign-in throttle and the audit log.
    pub from: String,
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw).into_owned().collect()
}

pub async fn handle(state: &AppState, r: Request<'_>) -> Response<Body> {
    let form = pairs(r.body);
    match (r.post, r.rest.as_slice()) {
        (false, ["login"]) => return login_form(state, None, "", 200),
        (true, ["login"]) => return login(state, &r, &form).await,
        (false, ["setup", token]) => return setup_form(state, token, &[], None).await,
        (true, ["setup", token]) => return setup(state, &r, token, &form).await,
        _ => {}
    }
    let secret = cookie(r.headers, COOKIE).unwrap_or_default();
    let session = match accounts::session(&state.store, &secret).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return if r.post {
                forbidden("Your session has ended. Sign in again; nothing was changed.")
            } else {
                redirect("/dashboard/login")
            };
        }
        Err(e) => return unavailable(&e.to_string()),
    };
    if r.post && !access::csrf_ok(&secret, field(&form, "csrf").unwrap_or_default()) {
        return forbidden(
            "This form has expired or did not come from the dashboard. Reload the page and \
             try again; nothing was changed.",
        );
    }
    let query = pairs(r.query.as_bytes());
    let ctx = views::Ctx {
        state,
        session: &session,
        from: &r.from,
    };
    match (r.post, r.rest.as_slice()) {
        (false, []) => match session.user.roles.keys().next() {
            Some(p) => redirect(&format!("/dashboard/{p}/test")),
            None => frame::auth_page(
                200,
                "No project",
                "<h1>You have no project yet</h1><p>Create one to start taking payments, or ask \
                 an owner to add you to theirs.</p><p><a class=\"button\" id=\"new-project\" \
                 href=\"/dashboard/projects/new\">Create a project</a></p>",
            ),
        },
        (true, ["logout"]) => {
            let _ = accounts::end_session(&state.store, &secret).await;
            let mut resp = redirect("/dashboard/login");
            set_cookie(state, &mut resp, COOKIE, "", 0);
            resp
        }
        (true, ["logout-everywhere"]) => {
            if let Err(e) = accounts::end_all_sessions(&state.store, &session.user.email).await {
                return unavailable(&e.to_string());
            }
            let mut resp = redirect("/dashboard/login");
            set_cookie(state, &mut resp, COOKIE, "", 0);
            resp
        }
        (false, ["account"]) => views::account(&ctx, &query, None).await,
        (true, ["account", "password"]) => views::change_password(&ctx, &form, &secret).await,
        (false, ["projects", "new"]) => settings::new_project_form(&session.csrf, &[], None),
        (true, ["projects", "new"]) => settings::create_project(&ctx, &form).await,
        (false, [project, "settings"]) => match allowed(&session, project, Action::Read) {
            Ok(role) => {
                let saved = field(&query, "saved").is_some();
                settings::details(&ctx, project, role, None, None, saved).await
            }
            Err(resp) => resp,
        },
        (true, [project, "settings"]) => match allowed(&session, project, Action::Change) {
            Ok(role) => settings::save_details(&ctx, project, role, &form).await,
            Err(resp) => resp,
        },
        (false, [project, "users"]) => match allowed(&session, project, Action::ManageUsers) {
            Ok(_) => users::page(&ctx, project, &[], None).await,
            Err(resp) => resp,
        },
        (true, [project, "users"]) => match allowed(&session, project, Action::ManageUsers) {
            Ok(_) => users::add(&ctx, project, &form).await,
            Err(resp) => resp,
        },
        (true, [project, "users", which @ ("role" | "remove")]) => {
            match allowed(&session, project, Action::ManageUsers) {
                Ok(_) => users::change(&ctx, project, &form, *which == "remove").await,
                Err(resp) => resp,
            }
        }
        (false, [project, "audit"]) => match allowed(&session, project, Action::ReadAudit) {
            Ok(_) => views::audit(&ctx, project).await,
            Err(resp) => resp,
        },
        (post, [project, mode, rest @ ..]) => {
            let Some(mode) = Mode::parse(mode) else {
                return not_found();
            };
            let action = if post { Action::Change } else { Action::Read };
            let role = match allowed(&session, project, action) {
                Ok(role) => role,
                Err(resp) => return resp,
            };
            let at = views::At {
                project,
                mode,
                role,
            };
            match (post, rest) {
                (false, []) => views::home(&ctx, &at).await,
                (false, ["payments"]) => views::payments(&ctx, &at, &query).await,
                (false, ["payments", id]) => {
                    let notice = if field(&query, "refunded").is_some() {
                        Some("The refund has been made. The customer is told by their bank.")
                    } else if field(&query, "resubmitted").is_some() {
                        Some(
                            "That refund form was already sent, so nothing more was refunded. The payment's refunds are below.",
                        )
                    } else {
                        None
                    };
                    views::payment(&ctx, &at, id, notice).await
                }
                (false, ["payments", id, "refund"]) => {
                    views::refund_form(&ctx, &at, id, &form, None).await
                }
                (true, ["payments", id, "refund"]) => views::refund(&ctx, &at, id, &form).await,
                (false, ["keys"]) => settings::keys(&ctx, &at, None).await,
                (true, ["keys"]) => settings::create_key(&ctx, &at).await,
                (false, ["keys", id, "revoke"]) => settings::revoke_form(&ctx, &at, id).await,
                (true, ["keys", id, "revoke"]) => settings::revoke(&ctx, &at, id).await,
                (false, ["payments", id, which]) if views::Step::parse(which).is_some() => {
                    match views::Step::parse(which) {
                        Some(step) => views::step_form(&ctx, &at, id, step, None).await,
                        None => not_found(),
                    }
                }
                (true, ["payments", id, which]) if views::Step::parse(which).is_some() => {
                    match views::Step::parse(which) {
                        Some(step) => views::step(&ctx, &at, id, step).await,
                        None => not_found(),
                    }
                }
                (false, ["webhooks"]) => webhooks::list(&ctx, &at, &[], None, None).await,
                (true, ["webhooks"]) => webhooks::create(&ctx, &at, &form).await,
                (false, ["webhooks", id]) => {
                    let notice = field(&query, "resent").map(|_| "Queued to be sent again.");
                    webhooks::detail(&ctx, &at, id, None, notice).await
                }
                (true, ["webhooks", id, "roll"]) => webhooks::roll(&ctx, &at, id).await,
                (true, ["webhooks", id, "disable"]) => webhooks::toggle(&ctx, &at, id, true).await,
                (true, ["webhooks", id, "enable"]) => webhooks::toggle(&ctx, &at, id, false).await,
                (false, ["events"]) => webhooks::event_list(&ctx, &at, &query).await,
                (false, ["events", id]) => {
                    webhooks::event(&ctx, &at, id, field(&query, "resent").is_some()).await
                }
                (true, ["events", id, "resend"]) => webhooks::resend(&ctx, &at, id, &form).await,
                (false, ["subscriptions"]) => lists::subscriptions(&ctx, &at).await,
                (false, ["invoices"]) => lists::invoices(&ctx, &at).await,
                (false, ["checkout"]) => lists::checkout_sessions(&ctx, &at).await,
                (false, ["balance"]) => lists::balance(&ctx, &at).await,
                (false, ["customers"]) => customers::list(&ctx, &at, &query).await,
                (false, ["customers", id]) => {
                    let notice = field(&query, "canceled")
                        .is_some()
                        .then_some("The subscription has been cancelled.");
                    customers::detail(&ctx, &at, id, notice).await
                }
                (false, ["invoices", id, "pdf"]) => customers::invoice_pdf(&ctx, &at, id).await,
                (false, ["subscriptions", id, "cancel"]) => {
                    customers::cancel_form(&ctx, &at, id).await
                }
                (true, ["subscriptions", id, "cancel"]) => customers::cancel(&ctx, &at, id).await,
                _ => not_found(),
            }
        }
        _ => not_found(),
    }
}

/// The user's role in `project` if it allows `action`: a project without a role is not
/// found; a role that does not allow the action is refused.
#[allow(clippy::result_large_err)]
fn allowed(session: &Session, project: &str, action: Action) -> Result<Role, Response<Body>> {
    match session.user.role_in(project) {
        None => Err(not_found()),
        Some(role) if access::permitted(role, action) => Ok(role),
        Some(role) => Err(forbidden(&format!(
            "Your role in this project ({}) does not allow this. Ask an owner if you need it.",
            role.as_str()
        ))),
    }
}

fn login_form(state: &AppState, problem: Option<&str>, email: &str, status: u16) -> Response<Body> {
    let pre = hex::encode(rand::random::<[u8; 16]>());
    let alert = problem
        .map(|p| {
            format!(
                "<p class=\"alert\" role=\"alert\" id=\"problem\">{}</p>",
                escape(p)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1 style=\"text-align:center\">Sign in to your dashboard</h1>{alert}\
         <form method=\"post\" action=\"/dashboard/login\" novalidate>\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"email\">Email</label><input type=\"email\" id=\"email\" name=\"email\" \
         autocomplete=\"username\" required value=\"{email}\">\
         <label for=\"password\">Password</label><input type=\"password\" id=\"password\" \
         name=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\" id=\"sign-in\">Sign in</button></form>",
        csrf = access::csrf_token(&pre),
        email = escape(email),
    );
    let mut resp = frame::auth_page(status, "Sign in", &body);
    set_cookie(state, &mut resp, PRE_COOKIE, &pre, 3600);
    resp
}

/// The one-time setup link's page: the first owner's email and password, and their project.
async fn setup_form(
    state: &AppState,
    token: &str,
    form: &[(String, String)],
    problem: Option<(&str, &str)>,
) -> Response<Body> {
    match accounts::setup_open(&state.store, token).await {
        Ok(true) => {}
        Ok(false) => {
            return frame::auth_page(
                410,
                "Link used or expired",
                "<h1 id=\"setup-closed\">This setup link no longer works</h1><p>It makes the first \
                 owner only, within 24 hours of the daemon's start. <a href=\"/dashboard/login\">Sign in</a>, \
                 or make a user with <code>calmony-payd users create</code>.</p>",
            );
        }
        Err(e) => return unavailable(&e.to_string()),
    }
    let pre = hex::encode(rand::random::<[u8; 16]>());
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
    let (ei, ee) = err("email");
    let (pi, pe) = err("password");
    let (ni, ne) = err("project");
    let body = format!(
        "<h1 style=\"text-align:center\">Set up your dashboard</h1><p class=\"muted\">You will be the owner. \
         This link works once.</p><form method=\"post\" action=\"/dashboard/setup/{t}\" novalidate>\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"email\">Your email</label><input type=\"email\" id=\"email\" name=\"email\" autocomplete=\"username\" value=\"{email}\"{ei}>{ee}\
         <label for=\"password\">Password (at least 10 characters)</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"new-password\"{pi}>{pe}\
         <label for=\"project\">Project</label><input type=\"text\" id=\"project\" name=\"project\" value=\"{project}\"{ni}>{ne}\
         <button type=\"submit\" id=\"create-owner\">Create my account</button></form>",
        t = escape(token),
        csrf = access::csrf_token(&pre),
        email = escape(field(form, "email").unwrap_or_default()),
        project = escape(field(form, "project").unwrap_or("default")),
    );
    let mut resp = frame::auth_page(if problem.is_some() { 400 } else { 200 }, "Set up", &body);
    set_cookie(state, &mut resp, PRE_COOKIE, &pre, 3600);
    resp
}

async fn setup(
    state: &AppState,
    r: &Request<'_>,
    token: &str,
    form: &[(String, String)],
) -> Response<Body> {
    let pre = cookie(r.headers, PRE_COOKIE).unwrap_or_default();
    if pre.is_empty() || !access::csrf_ok(&pre, field(form, "csrf").unwrap_or_default()) {
        return forbidden("This form has expired. Reload the page and try again.");
    }
    match accounts::setup_open(&state.store, token).await {
        Ok(true) => {}
        Ok(false) => return setup_form(state, token, form, None).await,
        Err(e) => return unavailable(&e.to_string()),
    }
    let Some(email) = access::normalise_email(field(form, "email").unwrap_or_default()) else {
        return setup_form(
            state,
            token,
            form,
            Some(("email", "Enter your email address.")),
        )
        .await;
    };
    let password = field(form, "password").unwrap_or_default();
    if let Some(why) = access::password_problem(password, &email) {
        return setup_form(state, token, form, Some(("password", why))).await;
    }
    let project = field(form, "project").unwrap_or_default().trim();
    if let Some(why) = settings::project_name_problem(project) {
        return setup_form(state, token, form, Some(("project", why))).await;
    }
    let store = &state.store;
    let made = async {
        let p = calmony_actors::api_keys::ensure_project(store, project).await?;
        accounts::create_user(store, &email, password, &p.id, Role::Owner).await?;
        accounts::close_setup(store).await?;
        let _ = accounts::audit(
            store,
            &p.id,
            &email,
            "made the first owner with the setup link",
            &r.from,
        )
        .await;
        accounts::start_session(store, &email)
            .await
            .map_err(accounts::AccountError::from)
    }
    .await;
    match made {
        Ok(secret) => {
            let mut resp = redirect("/dashboard");
            set_cookie(state, &mut resp, COOKIE, &secret, access::ABSOLUTE_SECS);
            set_cookie(state, &mut resp, PRE_COOKIE, "", 0);
            resp
        }
        Err(e) => unavailable(&e.to_string()),
    }
}

async fn login(state: &AppState, r: &Request<'_>, form: &[(String, String)]) -> Response<Body> {
    let pre = cookie(r.headers, PRE_COOKIE).unwrap_or_default();
    if pre.is_empty() || !access::csrf_ok(&pre, field(form, "csrf").unwrap_or_default()) {
        return forbidden("This sign-in form has expired. Reload the page and try again.");
    }
    let email = field(form, "email").unwrap_or_default();
    let password = field(form, "password").unwrap_or_default();
    if email.trim().is_empty() || password.is_empty() {
        return login_form(state, Some("Enter your email and password."), email, 400);
    }
    match accounts::sign_in(&state.store, email, password, &r.from).await {
        Ok(user) => match accounts::start_session(&state.store, &user.email).await {
            Ok(secret) => {
                for project in user.roles.keys() {
                    let _ =
                        accounts::audit(&state.store, project, &user.email, "signed in", &r.from)
                            .await;
                }
                let mut resp = redirect("/dashboard");
                set_cookie(state, &mut resp, COOKIE, &secret, access::ABSOLUTE_SECS);
                set_cookie(state, &mut resp, PRE_COOKIE, "", 0);
                resp
            }
            Err(e) => unavailable(&e.to_string()),
        },
        Err(SignInError::Throttled) => login_form(
            state,
            Some("Too many failed sign-ins. For your security, wait 15 minutes and try again."),
            email,
            429,
        ),
        Err(SignInError::Wrong) => login_form(
            state,
            Some("That email and password do not match an account."),
            email,
            401,
        ),
        Err(SignInError::Store(e)) => unavailable(&e.to_string()),
    }
}
