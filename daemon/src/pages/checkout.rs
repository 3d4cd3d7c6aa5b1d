//! The hosted checkout page a session's `url` opens, and where the gateway's hosted payment
//! page answers.
//!
//! The page shows the order and hands the browser to the gateway's hosted card page with a
//! signed form (the card never touches the merchant's server, nor this daemon). The gateway
//! posts the browser back to `/return` and, server to server, to `/callback`; both complete the
//! session (once). Then the browser goes to `success_url` (with `{CHECKOUT_SESSION_ID}`
//! replaced), to `cancel_url` if the customer cancelled (the session stays open), or back here
//! with the decline's reason and a new attempt.

use calmony_actors::checkout::Completion;
use calmony_protocol::checkout::CheckoutSession;
use calmony_protocol::clock_text::money;
use hyper::Response;
use redis::AsyncCommands;

use super::{escape, page, redirect};
use crate::edge::routes::CheckoutStep;
use crate::edge::{AppState, Body, json_response};

pub async fn handle(
    state: &AppState,
    project: &str,
    mode: &str,
    id: &str,
    step: CheckoutStep,
    body: &[u8],
) -> Response<Body> {
    let Some(scope) = calmony_actors::payments::three_ds::scope(project, mode) else {
        return not_found();
    };
    let checkout = &state.checkout;
    match step {
        CheckoutStep::Page => match checkout.load(&scope, id).await {
            Ok((_, s, internal)) => match s.status.as_str() {
                "complete" => redirect(&success(&s)),
                "expired" => page(
                    410,
                    "Checkout expired",
                    "<h1>This checkout has expired</h1><p>Please return to the shop and start again.</p>",
                ),
                _ => summary(state, &scope, &s, &internal, None).await,
            },
            Err(e) if e.status == 404 => not_found(),
            Err(e) => unavailable(&e.message),
        },
        CheckoutStep::Return => match checkout.complete(&scope, id, body).await {
            Ok(Completion::Completed(s)) => redirect(&success(&s)),
            Ok(Completion::Canceled(s)) => match &s.cancel_url {
                Some(url) => redirect(url),
                None => redirect(&calmony_actors::checkout::page_url(
                    &state.config.public_base(),
                    &scope,
                    &s.id,
                )),
            },
            Ok(Completion::Declined { session, message }) => match checkout
                .load(&scope, &session.id)
                .await
            {
                Ok((_, s, internal)) => summary(state, &scope, &s, &internal, Some(&message)).await,
                Err(e) => unavailable(&e.message),
            },
            Ok(Completion::Refused(why)) => page(
                400,
                "Payment not accepted",
                &format!("<h1>Payment not accepted</h1><p>{}</p>", escape(&why)),
            ),
            Err(e) if e.status == 404 => not_found(),
            Err(e) => unavailable(&e.message),
        },
        CheckoutStep::Callback => match checkout.complete(&scope, id, body).await {
            Ok(Completion::Refused(why)) => {
                json_response(400, serde_json::json!({"error": why}).to_string())
            }
            Ok(_) => json_response(200, r#"{"received":true}"#.into()),
            Err(e) => json_response(e.status, e.body().to_string()),
        },
    }
}

fn success(s: &CheckoutSession) -> String {
    s.success_url.replace("{CHECKOUT_SESSION_ID}", &s.id)
}

async fn merchant_name(state: &AppState, project: &str) -> String {
    let mut c = state.store.conn();
    state
        .store
        .run(c.hget::<_, _, Option<String>>(format!("cp:project:{{{project}}}"), "name"))
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| "Calmony Pay".into())
}

async fn summary(
    state: &AppState,
    scope: &calmony_actors::Scope,
    s: &CheckoutSession,
    internal: &calmony_actors::checkout::SessionInternal,
    declined: Option<&str>,
) -> Response<Body> {
    let merchant = merchant_name(state, &scope.project).await;
    let (action, fields) = match state.checkout.hand_off(scope, s, &merchant).await {
        Ok(x) => x,
        Err(e) => return unavailable(&e.message),
    };
    let per = |l: &calmony_protocol::checkout::CheckoutLine| {
        l.price["recurring"]["interval"]
            .as_str()
            .map(|i| format!(" / {i}"))
            .unwrap_or_default()
    };
    let rows: String = internal
        .lines
        .iter()
        .map(|l| {
            format!(
                "<tr><td>{}{}</td><td class=\"num\">{}{}</td></tr>",
                escape(&l.description),
                if l.quantity > 1 {
                    format!(" <span class=\"qty\">× {}</span>", l.quantity)
                } else {
                    String::new()
                },
                money(l.amount_total),
                escape(&per(l)),
            )
        })
        .collect();
    let interval = internal.lines.first().map(per).unwrap_or_default();
    let (button, note) = match s.mode.as_str() {
        "subscription" => (
            format!("Subscribe — {}{}", money(s.amount_total), interval),
            "You will be charged now and then every period until you cancel.",
        ),
        "setup" => (
            "Save card".to_string(),
            "Your card is saved for future payments. You are not charged now.",
        ),
        _ => (
            format!("Pay {}", money(s.amount_total)),
            "You will enter your card on our payment provider's secure page.",
        ),
    };
    let inputs: String = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let banner = declined
        .map(|m| {
            format!(
                "<p class=\"alert\" id=\"declined\" role=\"alert\">{} Please try another card.</p>",
                escape(m)
            )
        })
        .unwrap_or_default();
    let email = s
        .customer_email
        .as_ref()
        .map(|e| {
            format!(
                "<p class=\"muted\">Receipt to <strong>{}</strong></p>",
                escape(e)
            )
        })
        .unwrap_or_default();
    let cancel = s
        .cancel_url
        .as_ref()
        .map(|u| format!("<p class=\"center\"><a id=\"cancel-link\" href=\"{}\">Cancel and return to {}</a></p>", escape(u), escape(&merchant)))
        .unwrap_or_default();
    let body = format!(
        "<style>table{{width:100%;border-collapse:collapse;margin:1rem 0}}td{{padding:.5rem 0;border-bottom:1px solid #e6e8eb}}\
         .num{{text-align:right;white-space:nowrap}}.qty{{color:#6b7280}}.total td{{font-weight:700;border-bottom:0;font-size:1.1rem}}\
         .muted{{color:#6b7280;font-size:.9rem}}.center{{text-align:center}}#pay-button{{width:100%;padding:.9rem;font-size:1.05rem;margin-top:.5rem}}\
         .alert{{background:#fdecec;color:#8a1c1c;border-radius:8px;padding:.75rem}}.secure{{color:#6b7280;font-size:.85rem;text-align:center;margin-top:.75rem}}</style>\
         <h1 id=\"merchant\">{merchant}</h1>{banner}\
         <table aria-label=\"Order summary\"><tbody>{rows}<tr class=\"total\"><td>Total</td><td class=\"num\" id=\"total\">{total}{interval}</td></tr></tbody></table>\
         {email}<form id=\"checkout-hand-off\" method=\"post\" action=\"{action}\">{inputs}\
         <button type=\"submit\" id=\"pay-button\">{button}</button></form>\
         <p class=\"secure\">{note}</p>{cancel}",
        merchant = escape(&merchant),
        total = money(s.amount_total),
        interval = escape(&interval),
        action = escape(&action),
        button = escape(&button),
        note = escape(note),
    );
    page(200, &format!("Pay {merchant}"), &body)
}

fn not_found() -> Response<Body> {
    page(404, "Not found", "<h1>This checkout does not exist</h1>")
}

fn unavailable(message: &str) -> Response<Body> {
    page(
        503,
        "Please try again",
        &format!("<h1>Something went wrong</h1><p>{}</p>", escape(message)),
    )
}
