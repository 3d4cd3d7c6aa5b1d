//! What every dashboard page answers with besides itself: the cookies, a form's field, and
//! the refusals (403, 404, 503) in the signed-out frame.

use hyper::Response;

use super::super::html::escape;
use super::frame;
use crate::response::Body;
use crate::state::AppState;

/// The session's cookie.
pub const COOKIE: &str = "cp_dash";
/// The sign-in form's pre-session cookie (its CSRF token is derived from it).
pub const PRE_COOKIE: &str = "cp_dash_pre";

pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn secure(state: &AppState) -> &'static str {
    if state.config.public_base().starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}

pub fn set_cookie(
    state: &AppState,
    resp: &mut Response<Body>,
    name: &str,
    value: &str,
    max_age: i64,
) {
    // Appended: a sign-in sets the session's cookie and clears the pre-session one.
    let line = format!(
        "{name}={value}; Path=/dashboard; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        secure(state)
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(&line) {
        resp.headers_mut().append(hyper::header::SET_COOKIE, v);
    }
}

pub fn forbidden(why: &str) -> Response<Body> {
    frame::auth_page(
        403,
        "Not allowed",
        &format!(
            "<h1 id=\"forbidden\">Not allowed</h1><p>{}</p><p><a href=\"/dashboard\">Back to the dashboard</a></p>",
            escape(why)
        ),
    )
}

pub fn not_found() -> Response<Body> {
    frame::auth_page(
        404,
        "Not found",
        "<h1 id=\"not-found\">This page does not exist</h1><p><a href=\"/dashboard\">Back to the dashboard</a></p>",
    )
}

pub fn unavailable(why: &str) -> Response<Body> {
    frame::auth_page(
        503,
        "Please try again",
        &format!("<h1>Something went wrong</h1><p>{}</p>", escape(why)),
    )
}

/// A change the store refused (a subscription already ended, say): said, nothing changed.
pub fn refused(why: &str) -> Response<Body> {
    frame::auth_page(
        400,
        "Not possible",
        &format!(
            "<h1 id=\"refused\">That is not possible</h1><p class=\"alert\">{}</p><p><a href=\"/dashboard\">Back to the dashboard</a></p>",
            escape(why)
        ),
    )
}
