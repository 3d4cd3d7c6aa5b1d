//! The 3-D Secure hand-off.
//!
//! A payment that needs authentication answers `requires_action` with
//! `next_action.redirect_to_url.url` pointing here. This page posts the gateway's
//! `threeDSRequest` fields to the issuer's page (`threeDSURL`); the issuer posts its result back
//! to `/complete`, which continues the payment with the gateway through the IntentProcessor
//! (money moves only through the actors). While the gateway asks for
//! more (another challenge), the loop repeats; then the browser returns to the merchant's
//! `return_url` with `payment_intent`, `payment_intent_client_secret` and `redirect_status`,
//! as Stripe's redirect does.

use calmony_actors::payments::Payments;
use calmony_actors::payments::three_ds::{self, Next};
use calmony_actors::system::IntentProcessorHandle;
use calmony_protocol::payment_intent::{PaymentIntent, status};
use hyper::Response;

use super::brand::{Look, merchant_page};
use super::html::{auto_post, back_to_return_url, escape, payment_page_not_found, try_again};
use crate::response::Body;

pub async fn page_for(
    p: &Payments,
    project: &str,
    mode: &str,
    intent: &str,
    query: &str,
) -> Response<Body> {
    let secret = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "client_secret")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let Some(scope) = three_ds::scope(project, mode) else {
        return payment_page_not_found();
    };
    let look = Look::load(&p.store, &scope).await;
    match three_ds::page(p, &scope, intent, &secret).await {
        Ok(next) => render(next, &look),
        Err(e) if e.status == 404 => payment_page_not_found(),
        Err(e) => try_again(&e.message),
    }
}

pub async fn complete(
    p: &Payments,
    intents: &IntentProcessorHandle,
    project: &str,
    mode: &str,
    intent: &str,
    body: &[u8],
) -> Response<Body> {
    let Some(scope) = three_ds::scope(project, mode) else {
        return payment_page_not_found();
    };
    let posted: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .take(50)
        .collect();
    let look = Look::load(&p.store, &scope).await;
    match intents.complete_three_ds(scope, intent, posted).await {
        Ok(next) => render(next, &look),
        Err(e) if e.status == 404 => payment_page_not_found(),
        Err(e) => try_again(&e.message),
    }
}

fn render(next: Next, look: &Look) -> Response<Body> {
    match next {
        Next::Challenge(c) => merchant_page(
            200,
            "Verifying your card",
            look,
            "",
            false,
            &format!(
                "<h1>Verifying your card…</h1><p>Your bank needs to confirm this payment{}. \
                 You are being taken to its page.</p>{}",
                look.name()
                    .map(|n| format!(" to {}", escape(n)))
                    .unwrap_or_default(),
                auto_post("threeds", &c.url, &c.fields, "Continue to your bank")
            ),
        ),
        Next::Processing(i) => merchant_page(
            200,
            "Processing your payment",
            look,
            "",
            false,
            &format!(
                "<h1>Processing your payment…</h1><p>This takes a moment. \
                 <a href=\"?client_secret={}\">Check again</a>.</p>",
                escape(&i.client_secret)
            ),
        ),
        Next::Done(i) => back_to_merchant(&i, look),
    }
}

fn back_to_merchant(i: &PaymentIntent, look: &Look) -> Response<Body> {
    let outcome = match i.status.as_str() {
        status::SUCCEEDED | status::REQUIRES_CAPTURE => "succeeded",
        _ => "failed",
    };
    match &i.return_url {
        Some(url) => back_to_return_url(url, &i.id, &i.client_secret, outcome),
        None if outcome == "succeeded" => merchant_page(
            200,
            "Payment complete",
            look,
            "",
            false,
            "<h1>Payment complete</h1><p>You can close this page.</p>",
        ),
        None => merchant_page(
            200,
            "Payment not completed",
            look,
            "",
            false,
            "<h1>Payment not completed</h1><p>Your card could not be verified. Please try another card.</p>",
        ),
    }
}
