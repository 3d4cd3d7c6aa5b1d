//! The pieces every page is built from: the shared frame, the HTML answer no cache keeps, a
//! form that posts itself, a redirect, and [`escape`] for every interpolated value.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

use crate::response::{Body, set};

pub use calmony_protocol::html::escape;

/// A page with the shared look: centred card, system fonts, readable on a phone.
pub fn page(status: u16, title: &str, body: &str) -> Response<Body> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><style>\
         body{{margin:0;font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f5f6f8;color:#1a1f36}}\
         main{{max-width:28rem;margin:10vh auto;background:#fff;border-radius:12px;padding:2rem;box-shadow:0 2px 12px rgba(0,0,0,.08)}}\
         h1{{font-size:1.25rem;margin:0 0 .5rem}}button{{font:inherit;padding:.6rem 1.2rem;border:0;border-radius:8px;background:#3a4bd9;color:#fff;cursor:pointer}}\
         .brand{{font-weight:600;color:#3a4bd9;margin-bottom:1rem}}</style></head>\
         <body><main><div class=\"brand\">Calmony Pay</div>{body}</main></body></html>",
        title = escape(title),
    );
    html_response(status, html)
}

/// An HTML answer that no cache keeps.
pub fn html_response(status: u16, html: String) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(html)));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    set(&mut resp, "content-type", "text/html; charset=utf-8");
    set(&mut resp, "cache-control", "no-store");
    resp
}

/// Hidden inputs carrying `fields`, escaped, for a form that posts them on.
pub fn hidden_inputs(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect()
}

/// A form that posts itself (with a button for browsers without scripts).
pub fn auto_post(id: &str, action: &str, fields: &[(String, String)], button: &str) -> String {
    let inputs = hidden_inputs(fields);
    format!(
        "<form id=\"{id}\" method=\"post\" action=\"{}\">{inputs}\
         <noscript><button type=\"submit\">{}</button></noscript></form>\
         <script>document.getElementById('{id}').submit()</script>",
        escape(action),
        escape(button)
    )
}

pub fn redirect(to: &str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = hyper::StatusCode::SEE_OTHER;
    set(&mut resp, "location", to);
    resp
}

/// The browser back to the merchant's `return_url`, as Stripe's redirect does: with the
/// payment intent, its client secret and `redirect_status`.
pub fn back_to_return_url(
    url: &str,
    intent: &str,
    client_secret: &str,
    status: &str,
) -> Response<Body> {
    let sep = if url.contains('?') { '&' } else { '?' };
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payment_intent", intent)
        .append_pair("payment_intent_client_secret", client_secret)
        .append_pair("redirect_status", status)
        .finish();
    redirect(&format!("{url}{sep}{query}"))
}

/// A payment page that does not exist (or whose secret did not match).
pub fn payment_page_not_found() -> Response<Body> {
    page(
        404,
        "Not found",
        "<h1>This payment page does not exist</h1>",
    )
}

/// Something the payer can only retry (the store or the bank did not answer).
pub fn try_again(message: &str) -> Response<Body> {
    page(
        503,
        "Please try again",
        &format!("<h1>Something went wrong</h1><p>{}</p>", escape(message)),
    )
}
