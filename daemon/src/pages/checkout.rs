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
use calmony_protocol::payment_intent::PAY_BY_BANK;
use hyper::Response;

use super::brand::{Look, merchant_page};
use super::html::{escape, hidden_inputs, page, redirect};
use crate::edge::routes::CheckoutStep;
use crate::response::{Body, json_response};
use crate::state::AppState;

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
                "expired" => merchant_page(
                    410,
                    "Checkout expired",
                    &Look::load(&state.store, &scope).await,
                    "",
                    false,
                    "<h1>This checkout has expired</h1><p>Nothing was charged. Please return to \
                     the shop and start again.</p>",
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
        CheckoutStep::Bank => {
            let csrf = form_urlencoded::parse(body)
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            match checkout.start_bank(&scope, id, &csrf).await {
                Ok(url) => redirect(&url),
                Err(e) if e.status == 404 => not_found(),
                Err(e) if e.status == 400 => page(
                    400,
                    "Payment not started",
                    &format!("<h1>Payment not started</h1><p>{}</p>", escape(&e.message)),
                ),
                Err(e) => unavailable(&e.message),
            }
        }
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

/// The checkout page's own rules: the order on the left and the payment on the right on a
/// desktop, one above the other on a phone.
const STYLE: &str = ".wide{max-width:58rem}\
     .layout{display:grid;gap:1.5rem}.pay{border-top:1px solid #eceef2;padding-top:1.25rem}\
     @media(min-width:52rem){.layout{grid-template-columns:1.15fr 1fr;gap:2.5rem}\
     .pay{border-top:0;padding-top:0;border-left:1px solid #eceef2;padding-left:2.5rem}main{padding:2rem 2.25rem}}\
     .label{color:#5b6475;font-size:.95rem;margin:0}\
     .amount{font-size:2.25rem;font-weight:700;letter-spacing:-.01em;margin:.1rem 0 1rem;line-height:1.2}\
     .amount small{font-size:1rem;font-weight:500;color:#5b6475}\
     table{width:100%;border-collapse:collapse;margin:.5rem 0}\
     td{padding:.6rem 0;border-bottom:1px solid #eceef2;vertical-align:top}\
     .num{text-align:right;white-space:nowrap;padding-left:1rem}.qty{color:#5b6475;font-size:.9rem}.about{color:#5b6475;font-size:.9rem}\
     .total td{font-weight:700;border-bottom:0}\
     .ref{color:#5b6475;font-size:.85rem;margin:.5rem 0 0}\
     .ref span{font-family:ui-monospace,Menlo,Consolas,monospace;color:#3c4257}\
     .receipt{color:#3c4257;font-size:.95rem;margin:0 0 1rem;overflow-wrap:anywhere}\
     #pay-button{width:100%;font-size:1.075rem;min-height:3.25rem}\
     .secure{color:#5b6475;font-size:.85rem;text-align:center;margin:.85rem 0 0}\
     .secure svg{vertical-align:-2px;margin-right:.3rem}\
     .cancel{text-align:center;margin:1.25rem 0 0;font-size:.9rem}\
     .cancel a{color:#5b6475;text-decoration:none}.cancel a:hover{text-decoration:underline}\
     h2{font-size:1rem;margin:0 0 .75rem}\
     .or{display:flex;align-items:center;gap:.75rem;color:#5b6475;font-size:.9rem;margin:1.25rem 0}\
     .or::before,.or::after{content:\"\";flex:1;border-top:1px solid #eceef2}\
     #bank-button{width:100%;font-size:1.075rem;min-height:3.25rem}\
     #bank-button.secondary{background:#fff;color:#1a1f36;border:1px solid #c9ced8}\
     .alert{background:#fdecec;color:#8a1c1c;border:1px solid #f3b9b9;border-radius:8px;padding:.75rem;margin:0 0 1rem}";

/// A padlock for the "secure page" line.
const LOCK: &str = "<svg width=\"12\" height=\"14\" viewBox=\"0 0 12 14\" aria-hidden=\"true\">\
     <path fill=\"currentColor\" d=\"M6 0a3.5 3.5 0 0 0-3.5 3.5V6H2a1 1 0 0 0-1 1v6a1 1 0 0 0 1 1h8a1 1 0 0 0 \
     1-1V7a1 1 0 0 0-1-1h-.5V3.5A3.5 3.5 0 0 0 6 0zm-2 6V3.5a2 2 0 1 1 4 0V6z\"/></svg>";

async fn summary(
    state: &AppState,
    scope: &calmony_actors::Scope,
    s: &CheckoutSession,
    internal: &calmony_actors::checkout::SessionInternal,
    declined: Option<&str>,
) -> Response<Body> {
    let look = Look::load(&state.store, scope).await;
    let by_card = s.payment_method_types.iter().any(|t| t == "card");
    let by_bank = s.payment_method_types.iter().any(|t| t == PAY_BY_BANK);
    let (action, fields) = if by_card {
        match state
            .checkout
            .hand_off(scope, s, internal, look.name())
            .await
        {
            Ok(x) => x,
            Err(e) => return unavailable(&e.message),
        }
    } else {
        (String::new(), Vec::new())
    };
    // A bank payment that did not go through says why, as a declined card does.
    let bank_failure = match &s.payment_intent {
        Some(pi) if by_bank => state
            .payments
            .load(scope, None, pi)
            .await
            .ok()
            .and_then(|l| l.intent.last_payment_error)
            .and_then(|e| e["message"].as_str().map(str::to_string)),
        _ => None,
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
        .enumerate()
        .map(|(i, l)| {
            let about = internal
                .product_descriptions
                .get(i)
                .cloned()
                .flatten()
                .map(|d| format!("<br><span class=\"about\">{}</span>", escape(&d)))
                .unwrap_or_default();
            format!(
                "<tr><td>{}{about}{}</td><td class=\"num\">{}{}</td></tr>",
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
    let (label, button, note) = match s.mode.as_str() {
        "subscription" => (
            "Subscribe to",
            format!("Subscribe — {}{}", money(s.amount_total), interval),
            "You will be charged now and then every period until you cancel.",
        ),
        "setup" => (
            "Save a card with",
            "Save card".to_string(),
            "Your card is saved for future payments. You are not charged now.",
        ),
        _ => (
            "Pay",
            {
                let button = calmony_protocol::checkout::pay_button(
                    s.submit_type.as_deref(),
                    &money(s.amount_total),
                );
                // Beside the bank button, each says which way it pays.
                if by_bank {
                    format!("{button} by card")
                } else {
                    button
                }
            },
            "You will enter your card on our payment provider's secure page.",
        ),
    };
    // "Pay Harbour Lettings Ltd"; a merchant without a display name is not named at all.
    let heading = match look.name() {
        Some(n) => format!("{label} {}", escape(n)),
        None if s.mode == "setup" => "Save a card".into(),
        None if s.mode == "subscription" => "Subscribe".into(),
        None => "Amount due".into(),
    };
    let banner = match (declined, &bank_failure) {
        (Some(m), _) => format!(
            "<p class=\"alert\" id=\"declined\" role=\"alert\">{} Please try another card.</p>",
            escape(m)
        ),
        (None, Some(m)) => format!(
            "<p class=\"alert\" id=\"declined\" role=\"alert\">{} Nothing was paid; you can \
             try again.</p>",
            escape(m)
        ),
        (None, None) => String::new(),
    };
    let card_form = if by_card {
        format!(
            "<form id=\"checkout-hand-off\" method=\"post\" action=\"{action}\">{inputs}\
             <button type=\"submit\" id=\"pay-button\">{button}</button></form>\
             <p class=\"secure\">{LOCK}{note}</p>",
            action = escape(&action),
            inputs = hidden_inputs(&fields),
            button = escape(&button),
            note = escape(note),
        )
    } else {
        String::new()
    };
    let bank_form = if by_bank {
        format!(
            "{or}<form id=\"bank-hand-off\" method=\"post\" action=\"{action}\">{inputs}\
             <button type=\"submit\" id=\"bank-button\" class=\"{class}\">Pay {amount} by bank \
             transfer</button></form>\
             <p class=\"secure\">{LOCK}Approve the payment in your own banking app. No card \
             needed.</p>",
            or = if by_card {
                "<p class=\"or\"><span>or</span></p>"
            } else {
                ""
            },
            action = escape(&format!(
                "{}/bank",
                calmony_actors::checkout::page_url("", scope, &s.id)
            )),
            inputs = hidden_inputs(&[(
                "csrf".into(),
                calmony_actors::checkout::Checkout::bank_csrf(&s.id)
            )]),
            class = if by_card { "secondary" } else { "" },
            amount = money(s.amount_total),
        )
    } else {
        String::new()
    };
    let email = s
        .customer_email
        .as_ref()
        .map(|e| {
            format!(
                "<p class=\"receipt\">Receipt to <strong>{}</strong></p>",
                escape(e)
            )
        })
        .unwrap_or_default();
    let back_to = look
        .name()
        .map(|n| format!("Cancel and return to {}", escape(n)))
        .unwrap_or_else(|| "Cancel and return".into());
    let cancel = s
        .cancel_url
        .as_ref()
        .map(|u| {
            format!(
                "<p class=\"cancel\"><a id=\"cancel-link\" href=\"{}\">{back_to}</a></p>",
                escape(u)
            )
        })
        .unwrap_or_default();
    let amount = if s.mode == "setup" {
        String::new()
    } else {
        format!(
            "<p class=\"amount\" id=\"amount\">{}<small>{}</small></p>",
            money(s.amount_total),
            escape(&interval)
        )
    };
    let body = format!(
        "<div class=\"layout\"><section class=\"order\" aria-label=\"Your order\">\
         <h1 class=\"label\" id=\"pay-to\">{heading}</h1>{amount}\
         <table aria-label=\"Order summary\"><tbody>{rows}<tr class=\"total\"><td>Total due today</td>\
         <td class=\"num\" id=\"total\">{total}{interval}</td></tr></tbody></table>\
         <p class=\"ref\">Reference <span id=\"reference\">{reference}</span></p></section>\
         <section class=\"pay\" aria-label=\"Payment\"><h2>{pay_by}</h2>{banner}{email}\
         {card_form}{bank_form}{cancel}</section></div>",
        pay_by = match (s.mode.as_str(), by_card, by_bank) {
            ("setup", _, _) => "Your card",
            (_, true, true) => "How would you like to pay?",
            (_, false, true) => "Pay by bank",
            _ => "Pay by card",
        },
        total = money(s.amount_total),
        interval = escape(&interval),
        reference = escape(&calmony_actors::checkout::short_reference(&s.id)),
    );
    let title = if s.mode == "setup" {
        "Save your card"
    } else {
        "Checkout"
    };
    merchant_page(200, title, &look, STYLE, true, &body)
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
