//! The Pay by Bank pages: where a payment's `next_action` sends the payer to pick their bank,
//! and where the bank sends them back.
//!
//! `GET /pay/bank/{project}/{mode}/{intent}?client_secret=…` shows the amount, the merchant and
//! the banks; its form (carrying the client secret and a CSRF token) posts the choice, and the
//! browser goes to the bank. The bank redirects to `GET /pay/bank/return?code=…&state=…` (or
//! `error=…`); the payment is submitted and the payer goes back to the merchant's `return_url`
//! with `payment_intent`, `payment_intent_client_secret` and `redirect_status`, as Stripe's
//! redirect does. While the bank has not settled, a page that refreshes itself says so.

use calmony_actors::payments::Payments;
use calmony_actors::payments::bank::{self, BankPage, PageError};
use calmony_actors::payments::three_ds;
use calmony_protocol::clock_text::money;
use calmony_protocol::payment_intent::{PaymentIntent, status};
use hyper::Response;

use super::brand::{Look, merchant_page};
use super::html::{
    back_to_return_url, escape, hidden_inputs, page, payment_page_not_found, redirect, try_again,
};
use crate::response::Body;

const STYLE: &str = "\
.amount{font-size:2rem;font-weight:700;margin:.25rem 0 1rem;letter-spacing:-.01em}\
.lead{color:#3c4257;margin:0 0 1.25rem}\
fieldset{border:0;margin:0 0 1.25rem;padding:0}\
legend{font-weight:600;margin-bottom:.5rem}\
.bank{display:flex;align-items:center;gap:.75rem;border:1px solid #d5d9e2;border-radius:10px;\
padding:.9rem 1rem;margin:.5rem 0;cursor:pointer;min-height:3.25rem}\
.bank:hover{border-color:#8a93a6}\
.bank input{width:1.2rem;height:1.2rem;accent-color:var(--brand);flex:none}\
.bank:has(input:checked){border-color:var(--brand);box-shadow:0 0 0 1px var(--brand)}\
.bank-name{font-weight:600}\
.notice{background:#fdecea;color:#8a1c12;border-radius:8px;padding:.75rem 1rem;margin:0 0 1rem}\
.safe{display:flex;gap:.5rem;color:#3c4257;font-size:.9rem;margin:1rem 0 0}\
.pay{width:100%}\
.steps{color:#3c4257;padding-left:1.2rem;margin:0 0 1.25rem}.steps li{margin:.25rem 0}";

fn secret_of(query: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "client_secret")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// `GET /pay/bank/{project}/{mode}/{intent}`.
pub async fn page_for(
    p: &Payments,
    project: &str,
    mode: &str,
    intent: &str,
    query: &str,
) -> Response<Body> {
    let Some(scope) = three_ds::scope(project, mode) else {
        return payment_page_not_found();
    };
    let look = Look::load(&p.store, &scope).await;
    let secret = secret_of(query);
    let answer = bank::page(p, &scope, intent, &secret).await;
    render(answer, &look, &scope, intent, &secret)
}

/// `POST /pay/bank/{project}/{mode}/{intent}`: the payer's choice of bank.
pub async fn choose(
    p: &Payments,
    project: &str,
    mode: &str,
    intent: &str,
    body: &[u8],
) -> Response<Body> {
    let Some(scope) = three_ds::scope(project, mode) else {
        return payment_page_not_found();
    };
    let field = |name: &str| {
        form_urlencoded::parse(body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (secret, csrf, chosen) = (field("client_secret"), field("csrf"), field("bank"));
    let look = Look::load(&p.store, &scope).await;
    let answer = bank::choose(p, &scope, intent, &secret, &csrf, &chosen).await;
    render(answer, &look, &scope, intent, &secret)
}

/// `GET /pay/bank/return`: the bank sent the payer back.
pub async fn returned(p: &Payments, query: &str) -> Response<Body> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .take(20)
        .collect();
    match bank::returned(p, &pairs).await {
        Ok((scope, answer)) => {
            let look = Look::load(&p.store, &scope).await;
            let (id, secret) = match &answer {
                BankPage::Choose { intent, .. }
                | BankPage::Processing(intent)
                | BankPage::Done(intent) => (intent.id.clone(), intent.client_secret.clone()),
                BankPage::ToBank(_) => (String::new(), String::new()),
            };
            render(Ok(answer), &look, &scope, &id, &secret)
        }
        Err(PageError::NotFound) => page(
            400,
            "Payment link not recognised",
            "<h1>We could not match this to a payment</h1><p>The link from your bank was \
             incomplete or has already been used. Nothing more was paid. Please return to the \
             shop to check your order.</p>",
        ),
        Err(PageError::Refused(why)) => page(
            400,
            "Payment not completed",
            &format!("<h1>Payment not completed</h1><p>{}</p>", escape(&why)),
        ),
        Err(PageError::Api(e)) => try_again(&e.message),
    }
}

fn render(
    answer: Result<BankPage, PageError>,
    look: &Look,
    scope: &calmony_actors::Scope,
    id: &str,
    secret: &str,
) -> Response<Body> {
    match answer {
        Ok(BankPage::Choose {
            intent,
            banks,
            csrf,
            notice,
        }) => choose_page(look, scope, &intent, &banks, &csrf, notice.as_deref()),
        Ok(BankPage::ToBank(url)) => redirect(&url),
        Ok(BankPage::Processing(intent)) => waiting(look, scope, &intent),
        Ok(BankPage::Done(intent)) => back_to_merchant(&intent, look),
        Err(PageError::NotFound) => payment_page_not_found(),
        Err(PageError::Refused(why)) => merchant_page(
            400,
            "Payment not completed",
            look,
            STYLE,
            false,
            &format!(
                "<h1>Payment not completed</h1><p class=\"notice\" role=\"alert\">{}</p>\
                 <p><a href=\"{}\">Back to the payment</a></p>",
                escape(&why),
                escape(&format!(
                    "/pay/bank/{}/{}/{id}?client_secret={secret}",
                    scope.project,
                    scope.mode.as_str()
                )),
            ),
        ),
        Err(PageError::Api(e)) => try_again(&e.message),
    }
}

fn choose_page(
    look: &Look,
    scope: &calmony_actors::Scope,
    intent: &PaymentIntent,
    banks: &[calmony_actors::gateway::bank_flows::BankSummary],
    csrf: &str,
    notice: Option<&str>,
) -> Response<Body> {
    let payee = look.name().unwrap_or("the merchant");
    let options: String = banks
        .iter()
        .enumerate()
        .map(|(i, b)| {
            format!(
                "<label class=\"bank\"><input type=\"radio\" id=\"bank-{}\" name=\"bank\" \
                 value=\"{}\"{}{}><span class=\"bank-name\">{}</span></label>",
                escape(&b.id),
                escape(&b.id),
                if i == 0 { " checked" } else { "" },
                if i == 0 { " required" } else { "" },
                escape(&b.name)
            )
        })
        .collect();
    let notice = notice
        .map(|n| format!("<p class=\"notice\" role=\"alert\">{}</p>", escape(n)))
        .unwrap_or_default();
    let action = format!(
        "/pay/bank/{}/{}/{}",
        scope.project,
        scope.mode.as_str(),
        intent.id
    );
    let hidden = hidden_inputs(&[
        ("client_secret".into(), intent.client_secret.clone()),
        ("csrf".into(), csrf.to_string()),
    ]);
    let description = intent
        .description
        .as_deref()
        .map(|d| format!("<p class=\"lead\">{}</p>", escape(d)))
        .unwrap_or_default();
    merchant_page(
        200,
        "Pay by bank",
        look,
        STYLE,
        false,
        &format!(
            "<h1>Pay {payee} by bank transfer</h1>\
             <p class=\"amount\">{amount}</p>{description}{notice}\
             <ol class=\"steps\"><li>Choose your bank.</li>\
             <li>Approve the payment in your banking app or online banking.</li>\
             <li>You come straight back here when it is done.</li></ol>\
             <form id=\"bank-choice\" method=\"post\" action=\"{action}\">{hidden}\
             <fieldset><legend>Your bank</legend>{options}</fieldset>\
             <button class=\"pay\" id=\"bank-continue\" type=\"submit\">Continue to your bank</button></form>\
             <p class=\"safe\"><span aria-hidden=\"true\">🔒</span><span>You approve this payment \
             at your own bank. {payee_again} never sees your bank login, and no card details are \
             needed.</span></p>",
            payee = escape(payee),
            payee_again = escape(payee),
            amount = escape(&money(intent.amount)),
            action = escape(&action),
        ),
    )
}

fn waiting(look: &Look, scope: &calmony_actors::Scope, intent: &PaymentIntent) -> Response<Body> {
    let again = format!(
        "/pay/bank/{}/{}/{}?client_secret={}",
        scope.project,
        scope.mode.as_str(),
        intent.id,
        intent.client_secret
    );
    let mut resp = merchant_page(
        200,
        "Waiting for your bank",
        look,
        STYLE,
        false,
        &format!(
            "<h1>Waiting for your bank…</h1><p class=\"amount\">{}</p>\
             <p class=\"lead\" role=\"status\">Your bank is confirming the payment. This usually \
             takes a few seconds; this page checks again by itself.</p>\
             <p><a href=\"{}\">Check now</a></p>",
            escape(&money(intent.amount)),
            escape(&again)
        ),
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(&format!("2;url={again}")) {
        resp.headers_mut().insert("refresh", v);
    }
    resp
}

fn back_to_merchant(i: &PaymentIntent, look: &Look) -> Response<Body> {
    let outcome = match i.status.as_str() {
        status::SUCCEEDED => "succeeded",
        status::PROCESSING => "pending",
        _ => "failed",
    };
    match &i.return_url {
        Some(url) => back_to_return_url(url, &i.id, &i.client_secret, outcome),
        None => merchant_page(
            200,
            "Payment",
            look,
            STYLE,
            false,
            if outcome == "succeeded" {
                "<h1>Payment complete</h1><p>You can close this page.</p>"
            } else {
                "<h1>Payment not completed</h1><p>Nothing was paid.</p>"
            },
        ),
    }
}

/// `POST /pay/bank/notifications/{mode}/{bank}`: a bank's event notification (a signed SET,
/// `application/jwt`). 202 once verified (whether or not the payment is still awaited), as
/// the Open Banking event notification API expects; 400 when it does not verify.
pub async fn notification(p: &Payments, mode: &str, bank: &str, body: &[u8]) -> Response<Body> {
    let Some(mode) = calmony_protocol::Mode::parse(mode) else {
        return crate::response::json_response(404, r#"{"error":"no such mode"}"#.into());
    };
    let Ok(token) = std::str::from_utf8(body) else {
        return crate::response::json_response(400, r#"{"error":"not a JWT"}"#.into());
    };
    match bank::notified(p, mode, bank, token.trim()).await {
        Ok(_) => crate::response::json_response(202, "{}".into()),
        Err(e) => crate::response::json_response(e.status, e.body().to_string()),
    }
}
