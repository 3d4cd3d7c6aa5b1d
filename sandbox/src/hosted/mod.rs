//! The Hosted Payment Page, `/sandbox/hosted/`: Cardstream's `/hosted/`, simulated.
//!
//! The merchant's checkout page auto-posts a signed form here from the customer's browser. The
//! simulator then plays the whole hosted flow:
//! 1. `POST hosted/`: the request is read like a Direct one (PHP form rules, signature first:
//!    66087 missing, 66343 wrong) and checked for what a hosted payment needs (`action` SALE or
//!    VERIFY, `type`, `amount`, GBP, an http(s) `redirectURL`). A request that fails is an error
//!    page, never a charge. One that passes is stored as a [`session`] and answered with the
//!    card page, whose form carries only the session token.
//! 2. `POST hosted/pay`: Cancel ends the session with 65576. Otherwise the card is checked as a
//!    payment form checks it (Luhn, expiry, CVV) and a mistake shows the form again with an
//!    inline error, creating nothing. A good card runs the Direct API's own SALE or VERIFY
//!    ([`crate::direct::sale`], [`crate::direct::verify`]) with the stored request plus the
//!    card, so test cards, amount bands, `captureDelay`, the `transactionUnique` duplicate
//!    check and the ledger behave exactly as on /direct/.
//! 3. 3-D Secure runs inside: the SALE is given a `threeDSRedirectURL` back into the simulator
//!    (`hosted/3ds?session=…`), so a challenge card gets the issuer's ACS page, and the ACS's
//!    `cres` comes back here to be continued through the Direct continuation. Frictionless
//!    results (the guide cards' expiry months) are decided by the SALE itself.
//! 4. Whatever the end (approved, declined, 3-D Secure refused, cancelled, an error), the
//!    result is built as Cardstream's: every request field echoed except card data, the
//!    response fields over them, signed in full (wrongly under the `tamper_signatures`
//!    fault). It is kept in the session, POSTed to `callbackURL` in the background
//!    ([`callback`]), and handed to the browser as a self-submitting form to `redirectURL`.
//!
//! One session pays once. Each submit first moves the session from `open` to `paying` (a
//! compare-and-set), so a double click or a replayed form finds it taken: a finished session
//! answers "This payment is already complete" and re-posts the same result, a session still
//! paying says so, and one waiting for 3-D Secure shows its challenge again. A declined card
//! finishes the session too; the merchant starts a new one to let the customer retry.
//!
//! The session holds only what the merchant sent (minus any card fields it pre-filled) and,
//! once finished, the result; card numbers and CVVs live only in the request that carries
//! them, as on /direct/. A session left `paying` by a crash mid-authorisation stays so until
//! it expires; whatever the SALE did is then found by QUERY on its `transactionUnique`.
//!
//! Of the faults, `tamper_signatures` signs the result and callback wrongly and `fail_next`
//! makes a payment's result 65548 after the payment was made; `delay_ms` and `drop_next`
//! concern /direct/ answers only.

pub(crate) mod callback;
mod pages;
mod session;

pub use callback::DEFAULT_BACKOFF as DEFAULT_CALLBACK_BACKOFF;

use calmony_protocol::cardstream::{
    Coverage, Fields, SignatureError, codes, verify as verify_signature,
};
use hyper::StatusCode;

use crate::cards::{self, CardError};
use crate::clock::UtcTime;
use crate::direct;
use crate::direct::answer::{
    self, CURRENCY_NOT_SUPPORTED, DB_ERROR, GENERAL_ERROR, MALFORMED, MISSING_REQUEST, set_outcome,
};
use crate::direct::request::{non_empty, parse_amount};
use crate::error::SandboxError;
use crate::faults::{self, Faults};
use crate::gateway::Gateway;
use crate::issuer::TxnType;
use crate::reply::{self, Reply};
use crate::three_ds;
use crate::transactions::flatten;
use pages::{CardField, CardPage};
use session::{Loaded, Stage};

/// Where the card form posts.
pub const PAY_PATH: &str = "/sandbox/hosted/pay";
/// Where the ACS sends the cardholder back with the `cres`.
pub const THREE_DS_PATH: &str = "/sandbox/hosted/3ds";

/// Cardstream's code for a payment the customer cancelled on the hosted page.
pub const CANCELLED: u32 = 65576;

/// How often a submit re-reads a session that another submit moved first.
const ATTEMPTS: usize = 3;

/// Request fields never kept nor echoed: card data, the password, and the Direct API's
/// 3-D Secure plumbing, which the hosted page runs itself.
const NOT_KEPT: [&str; 13] = [
    "signature",
    "cardNumber",
    "cardCVV",
    "merchantPwd",
    "cardExpiryMonth",
    "cardExpiryYear",
    "cardExpiryDate",
    "threeDSRedirectURL",
    "threeDSRef",
    "threeDSResponse",
    "threeDSURL",
    "threeDSRequest",
    "session",
];

/// Fields of the Direct exchange that the hosted result leaves out.
const INTERNAL: [&str; 7] = [
    "cardNumber",
    "cardCVV",
    "threeDSRedirectURL",
    "threeDSRef",
    "threeDSResponse",
    "threeDSURL",
    "threeDSRequest",
];

/// A request the hosted page refuses: the gateway's code and message, shown on an error page.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    code: u32,
    message: String,
}

fn refuse(code: u32, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

fn missing(field: &str) -> Refusal {
    refuse(answer::missing_code(field), format!("Missing {field}"))
}

fn invalid(field: &str) -> Refusal {
    refuse(
        answer::missing_code(field) + 256,
        format!("Invalid {field}"),
    )
}

/// `POST /sandbox/hosted/`: check the merchant's request and show the card page.
pub(crate) async fn start(gw: &Gateway, body: &[u8]) -> Reply {
    let request = match read_request(gw, body) {
        Ok(request) => request,
        Err(refusal) => {
            tracing::info!(
                response_code = refusal.code,
                "sandbox hosted request refused"
            );
            return reply::html(
                StatusCode::BAD_REQUEST,
                pages::problem(
                    "Payment could not start",
                    Some(refusal.code),
                    &refusal.message,
                ),
            );
        }
    };
    match session::create(&gw.store, &request).await {
        Ok(token) => card_form(StatusCode::OK, &request, &token, None, &Fields::new()),
        Err(error) => unavailable(&error),
    }
}

/// The request as the session keeps it, or why the hosted page refuses it.
fn read_request(gw: &Gateway, body: &[u8]) -> Result<Fields, Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(refuse(MISSING_REQUEST, "Missing request"));
    }
    let mut request = Fields::parse(body).map_err(|_| refuse(MALFORMED, "Request malformed"))?;
    if !gw.config.secret.is_empty() {
        match verify_signature(&request, Some(&gw.config.secret)) {
            Ok(Coverage::All) => {}
            // The PHP SDK signs hosted forms partially, so the browser may add a button's
            // value; whatever the signature does not cover is dropped, never trusted.
            Ok(Coverage::Only(names)) => {
                let uncovered: Vec<String> = request
                    .iter()
                    .map(|(name, _)| name.to_owned())
                    .filter(|name| !names.contains(name))
                    .collect();
                for name in uncovered {
                    request.remove(&name);
                }
            }
            Err(SignatureError::MissingSignature) => {
                return Err(refuse(codes::MISSING_SIGNATURE, "Missing signature"));
            }
            Err(_) => return Err(refuse(codes::INVALID_SIGNATURE, "Invalid signature")),
        }
    }
    for name in NOT_KEPT {
        request.remove(name);
    }
    match non_empty(&request, "merchantID") {
        None => return Err(missing("merchantID")),
        Some(id) if id != gw.config.merchant_id => {
            return Err(refuse(codes::INVALID_CREDENTIALS, "Invalid credentials"));
        }
        Some(_) => {}
    }
    let action = non_empty(&request, "action").ok_or_else(|| missing("action"))?;
    let save_only = match action {
        "SALE" => false,
        "VERIFY" => true,
        _ => return Err(invalid("action")),
    };
    match non_empty(&request, "type").map(TxnType::parse) {
        None => return Err(missing("type")),
        // Continuous authority is merchant-initiated: never a customer on a payment page.
        Some(None | Some(TxnType::ContinuousAuthority)) => return Err(invalid("type")),
        Some(Some(_)) => {}
    }
    match (non_empty(&request, "amount").map(parse_amount), save_only) {
        (None, false) => return Err(missing("amount")),
        (Some(Some(amount)), false) if amount > 0 => {}
        (None | Some(Some(0)), true) => {}
        _ => return Err(invalid("amount")),
    }
    match non_empty(&request, "currencyCode") {
        None => return Err(missing("currencyCode")),
        Some(code) if direct::sale::supported_currency(code) => {}
        Some(_) => return Err(refuse(CURRENCY_NOT_SUPPORTED, "Currency not supported")),
    }
    if direct::sale::manual_capture(&request).is_none() {
        return Err(invalid("captureDelay"));
    }
    // Cardstream's codes for these are not documented: a general error, named.
    match non_empty(&request, "redirectURL") {
        None => return Err(refuse(GENERAL_ERROR, "Missing redirectURL")),
        Some(url) if !web_url(url) => return Err(refuse(GENERAL_ERROR, "Invalid redirectURL")),
        Some(_) => {}
    }
    if non_empty(&request, "callbackURL").is_some_and(|url| !web_url(url)) {
        return Err(refuse(GENERAL_ERROR, "Invalid callbackURL"));
    }
    Ok(request)
}

/// An absolute http(s) URL without spaces or control characters.
fn web_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && !url.bytes().any(|b| b.is_ascii_control() || b == b' ')
}

/// The card page for a session's `request`: `error` says what to correct in the submitted
/// `form`, whose expiry and name are filled in again (never the number or CVV).
fn card_form(
    status: StatusCode,
    request: &Fields,
    token: &str,
    error: Option<(CardField, &str)>,
    form: &Fields,
) -> Reply {
    let amount = crate::pages::money(
        non_empty(request, "amount")
            .and_then(parse_amount)
            .unwrap_or(0),
        request.get("currencyCode").unwrap_or("826"),
    );
    let merchant = non_empty(request, "merchantName")
        .or_else(|| non_empty(request, "merchantID"))
        .unwrap_or("the merchant");
    let page = CardPage {
        session: token,
        merchant,
        amount: &amount,
        save_only: request.get("action") == Some("VERIFY"),
        order_ref: non_empty(request, "orderRef"),
        customer_email: non_empty(request, "customerEmail"),
        error,
        expiry_month: form.get("cardExpiryMonth").unwrap_or_default(),
        expiry_year: form.get("cardExpiryYear").unwrap_or_default(),
        cardholder_name: form
            .get("cardholderName")
            .or_else(|| non_empty(request, "customerName"))
            .unwrap_or_default(),
    };
    reply::html(status, pages::card_form(&page))
}

/// `POST /sandbox/hosted/pay`: the customer's card, or Cancel.
pub(crate) async fn pay(gw: &Gateway, form: &Fields) -> Reply {
    let Some(token) = non_empty(form, "session") else {
        return session_not_found();
    };
    for _ in 0..ATTEMPTS {
        let loaded = match session::load(&gw.store, token).await {
            Ok(Some(loaded)) => loaded,
            Ok(None) => return session_not_found(),
            Err(error) => return unavailable(&error),
        };
        if loaded.session.stage != Stage::Open {
            return revisit(gw, &loaded).await;
        }
        let request = loaded.session.request();
        if form.get("cancel") == Some("1") {
            let mut result = request.clone();
            set_outcome(&mut result, CANCELLED, "Request cancelled");
            result
                .insert("state", "finished")
                .insert("timestamp", UtcTime::now().timestamp());
            let result = seal(gw, result).await;
            match loaded.advance(&gw.store, done(&result)).await {
                Ok(Some(_)) => return hand_back(gw, &request, &result, "Payment cancelled"),
                Ok(None) => continue,
                Err(error) => return unavailable(&error),
            }
        }
        let card = match read_card(form) {
            Ok(card) => card,
            Err(problem) => {
                let status = StatusCode::UNPROCESSABLE_ENTITY;
                return card_form(status, &request, token, Some(problem), form);
            }
        };
        let paying = match loaded.advance(&gw.store, Stage::Paying).await {
            Ok(Some(paying)) => paying,
            Ok(None) => continue,
            Err(error) => return unavailable(&error),
        };
        return authorise(gw, &paying, &request, card).await;
    }
    in_progress()
}

/// A submit on a session past the stage it expected.
async fn revisit(gw: &Gateway, loaded: &Loaded) -> Reply {
    match &loaded.session.stage {
        Stage::Done { result } => {
            let request = loaded.session.request();
            let redirect = request.get("redirectURL").unwrap_or_default();
            reply::html(
                StatusCode::OK,
                pages::result("This payment is already complete", redirect, result),
            )
        }
        Stage::Challenge { creq, .. } => {
            let fields: Fields = [("creq", creq.as_str())].into_iter().collect();
            three_ds::challenge_page(gw, &fields).await
        }
        Stage::Paying => in_progress(),
        Stage::Open => reply::html(
            StatusCode::BAD_REQUEST,
            pages::problem(
                "No 3-D Secure challenge",
                None,
                "This payment is not waiting for 3-D Secure.",
            ),
        ),
    }
}

/// The card fields to add to the Direct request, or the input to correct and why.
fn read_card(form: &Fields) -> Result<Fields, (CardField, &'static str)> {
    let number: String = form
        .get("cardNumber")
        .unwrap_or_default()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    if number.is_empty() {
        return Err((CardField::Number, "Enter the card number"));
    }
    let month = form.get("cardExpiryMonth").unwrap_or_default().trim();
    let year = form.get("cardExpiryYear").unwrap_or_default().trim();
    let mut card: Fields = [
        ("cardNumber", number.as_str()),
        ("cardExpiryMonth", month),
        ("cardExpiryYear", year),
    ]
    .into_iter()
    .collect();
    let profile = match cards::from_request(&card) {
        Ok(Some(profile)) => profile,
        Ok(None) | Err(CardError::InvalidNumber) => {
            return Err((CardField::Number, "Card number is invalid"));
        }
        Err(CardError::MissingExpiryMonth) if month.is_empty() => {
            return Err((CardField::ExpiryMonth, "Enter the expiry month"));
        }
        Err(CardError::MissingExpiryMonth | CardError::InvalidExpiryMonth) => {
            return Err((CardField::ExpiryMonth, "Expiry month is invalid"));
        }
        Err(CardError::MissingExpiryYear) => {
            return Err((CardField::ExpiryYear, "Enter the expiry year"));
        }
        Err(CardError::InvalidExpiryYear) => {
            return Err((CardField::ExpiryYear, "Expiry year is invalid"));
        }
    };
    if profile.expired(&UtcTime::now()) {
        return Err((CardField::ExpiryYear, "The card has expired"));
    }
    let cvv = form.get("cardCVV").unwrap_or_default().trim();
    if cvv.is_empty() {
        return Err((CardField::Cvv, "Enter the security code"));
    }
    if !(3..=4).contains(&cvv.len()) || !cvv.bytes().all(|b| b.is_ascii_digit()) {
        return Err((CardField::Cvv, "Security code is invalid"));
    }
    card.insert("cardCVV", cvv);
    if let Some(name) = form.get("cardholderName").map(str::trim) {
        card.insert("cardholderName", name);
    }
    Ok(card)
}

/// Run the Direct SALE or VERIFY for a session this submit holds (`paying`). Moves money as
/// those do; the session ends `done`, or `challenge` while 3-D Secure waits.
async fn authorise(gw: &Gateway, paying: &Loaded, request: &Fields, card: Fields) -> Reply {
    let mut direct_request = request.clone();
    for (name, value) in flatten(&card) {
        direct_request.insert(&name, value);
    }
    direct_request.insert(
        "threeDSRedirectURL",
        format!(
            "{}{THREE_DS_PATH}?session={}",
            gw.config.public_base.trim_end_matches('/'),
            paying.token
        ),
    );
    let answer = if request.get("action") == Some("VERIFY") {
        direct::verify::verify(gw, &direct_request).await
    } else {
        direct::sale::sale(gw, &direct_request).await
    };
    let answer = answer.unwrap_or_else(|error| {
        tracing::error!(%error, "sandbox hosted payment failed");
        answer::refusal(&direct_request, DB_ERROR, "DB ERROR")
    });
    let answer = direct::failed_by_fault(gw, &direct_request, answer).await;
    if answer.get("responseCode") == Some(&codes::THREE_DS_REQUIRED.to_string()) {
        let (Some(xref), Some(creq), Some(three_ds_ref)) = (
            answer.get("xref"),
            answer.get("threeDSRequest[creq]"),
            answer.get("threeDSRef"),
        ) else {
            return finish(gw, paying, request, &answer).await;
        };
        let stage = Stage::Challenge {
            xref: xref.to_owned(),
            creq: creq.to_owned(),
            three_ds_ref: three_ds_ref.to_owned(),
        };
        tracing::info!(xref, "sandbox hosted payment waits for 3-D Secure");
        return match paying.advance(&gw.store, stage).await {
            Ok(Some(challenge)) => revisit(gw, &challenge).await,
            Ok(None) => session_not_found(),
            Err(error) => unavailable(&error),
        };
    }
    finish(gw, paying, request, &answer).await
}

/// `POST /sandbox/hosted/3ds?session=…`: the ACS hands the cardholder back with a `cres`;
/// continue the SALE and finish. Moves money as the Direct continuation does.
pub(crate) async fn three_ds_return(gw: &Gateway, form: &Fields) -> Reply {
    let Some(token) = non_empty(form, "session") else {
        return session_not_found();
    };
    for _ in 0..ATTEMPTS {
        let loaded = match session::load(&gw.store, token).await {
            Ok(Some(loaded)) => loaded,
            Ok(None) => return session_not_found(),
            Err(error) => return unavailable(&error),
        };
        let Stage::Challenge {
            xref, three_ds_ref, ..
        } = &loaded.session.stage
        else {
            return revisit(gw, &loaded).await;
        };
        // Only this payment's own challenge result may move it on.
        let Some(cres) = non_empty(form, "cres") else {
            return bad_challenge_result();
        };
        match three_ds::resolve_cres(gw, cres).await {
            Ok(Some(result)) if result.xref == *xref => {}
            Ok(_) => return bad_challenge_result(),
            Err(error) => return unavailable(&error),
        }
        let request = loaded.session.request();
        let paying = match loaded.advance(&gw.store, Stage::Paying).await {
            Ok(Some(paying)) => paying,
            Ok(None) => continue,
            Err(error) => return unavailable(&error),
        };
        let continuation: Fields = [
            ("merchantID", gw.config.merchant_id.as_str()),
            ("action", request.get("action").unwrap_or("SALE")),
            ("threeDSRef", three_ds_ref.as_str()),
            ("threeDSResponse[cres]", cres),
        ]
        .into_iter()
        .collect();
        let answer = direct::continuation::continue_sale(gw, &continuation)
            .await
            .unwrap_or_else(|error| {
                tracing::error!(%error, "sandbox hosted 3-D Secure continuation failed");
                answer::refusal(&continuation, DB_ERROR, "DB ERROR")
            });
        return finish(gw, &paying, &request, &answer).await;
    }
    in_progress()
}

/// End a payment this submit holds: build and sign the result, keep it in the session, send
/// the callback and hand the browser back to the merchant.
async fn finish(gw: &Gateway, paying: &Loaded, request: &Fields, answer: &Fields) -> Reply {
    let result = seal(gw, result_of(request, answer)).await;
    match paying.advance(&gw.store, done(&result)).await {
        Ok(Some(_)) => {}
        // The payment happened either way: the merchant still gets its result.
        Ok(None) => tracing::warn!("sandbox hosted session expired before it finished"),
        Err(error) => tracing::error!(%error, "sandbox hosted session not recorded as finished"),
    }
    let heading = match result.get("responseCode") {
        Some("0") => "Payment complete",
        _ => "Payment not completed",
    };
    hand_back(gw, request, &result, heading)
}

/// The result of a Direct answer: the session's request echoed, the answer's fields over it,
/// the Direct plumbing removed.
fn result_of(request: &Fields, answer: &Fields) -> Fields {
    let mut result = request.clone();
    for (name, value) in flatten(answer) {
        result.insert(&name, value);
    }
    for name in INTERNAL {
        result.remove(name);
    }
    result
}

/// Fill in what every hosted result carries and sign it, wrongly under `tamper_signatures`.
async fn seal(gw: &Gateway, mut result: Fields) -> Fields {
    if result.get("amountReceived").is_none() {
        result.insert("amountReceived", "0");
    }
    let faults = faults::current(&gw.store).await.unwrap_or_else(|error| {
        tracing::warn!(%error, "sandbox faults unreadable; serving without them");
        Faults::default()
    });
    let secret = gw.config.secret.as_str();
    if !secret.is_empty() {
        if faults.tamper_signatures {
            result.add_signature(&format!("{secret}-tampered"), None);
        } else {
            result.add_signature(secret, None);
        }
    }
    result
}

fn done(result: &Fields) -> Stage {
    Stage::Done {
        result: flatten(result),
    }
}

/// Send the callback (if the merchant asked for one) and answer the browser with the
/// self-submitting result form.
fn hand_back(gw: &Gateway, request: &Fields, result: &Fields, heading: &str) -> Reply {
    let xref = result.get("xref").unwrap_or_default();
    tracing::info!(
        xref,
        response_code = result.get("responseCode").unwrap_or_default(),
        state = result.get("state").unwrap_or_default(),
        "sandbox hosted payment finished"
    );
    if let Some(url) = non_empty(request, "callbackURL") {
        callback::spawn(
            url.to_owned(),
            result.encode(),
            gw.callback_backoff.clone(),
            xref.to_owned(),
        );
    }
    let redirect = request.get("redirectURL").unwrap_or_default();
    reply::html(
        StatusCode::OK,
        pages::result(heading, redirect, &flatten(result)),
    )
}

fn session_not_found() -> Reply {
    reply::html(
        StatusCode::BAD_REQUEST,
        pages::problem(
            "Payment session not found",
            None,
            "This payment page is unknown or has expired. Return to the merchant and start again.",
        ),
    )
}

fn bad_challenge_result() -> Reply {
    reply::html(
        StatusCode::BAD_REQUEST,
        pages::problem(
            "3-D Secure result not recognised",
            None,
            "The issuer's answer does not belong to this payment.",
        ),
    )
}

fn in_progress() -> Reply {
    reply::html(
        StatusCode::CONFLICT,
        pages::problem(
            "This payment is being processed",
            None,
            "Another submit of this form is being processed. Wait a moment; do not pay again.",
        ),
    )
}

fn unavailable(error: &SandboxError) -> Reply {
    tracing::error!(%error, "sandbox hosted page could not reach its store");
    reply::html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::problem(
            "Sandbox unavailable",
            Some(DB_ERROR),
            "The sandbox gateway cannot reach its store; try again shortly.",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().copied().collect()
    }

    fn card(number: &str, month: &str, year: &str, cvv: &str) -> Fields {
        form(&[
            ("cardNumber", number),
            ("cardExpiryMonth", month),
            ("cardExpiryYear", year),
            ("cardCVV", cvv),
        ])
    }

    #[test]
    fn card_mistakes_name_the_input() {
        let problem = |f: Fields| read_card(&f).err();
        assert_eq!(
            problem(card("4242424242424241", "12", "40", "123")),
            Some((CardField::Number, "Card number is invalid"))
        );
        assert_eq!(
            problem(card("", "12", "40", "123")),
            Some((CardField::Number, "Enter the card number"))
        );
        assert_eq!(
            problem(card("4242424242424242", "13", "40", "123")),
            Some((CardField::ExpiryMonth, "Expiry month is invalid"))
        );
        assert_eq!(
            problem(card("4242424242424242", "", "40", "123")),
            Some((CardField::ExpiryMonth, "Enter the expiry month"))
        );
        assert_eq!(
            problem(card("4242424242424242", "12", "", "123")),
            Some((CardField::ExpiryYear, "Enter the expiry year"))
        );
        assert_eq!(
            problem(card("4242424242424242", "01", "20", "123")),
            Some((CardField::ExpiryYear, "The card has expired"))
        );
        assert_eq!(
            problem(card("4242424242424242", "12", "40", "12")),
            Some((CardField::Cvv, "Security code is invalid"))
        );
        assert_eq!(
            problem(card("4242424242424242", "12", "40", "")),
            Some((CardField::Cvv, "Enter the security code"))
        );
        let good = read_card(&card("4242 4242-4242 4242", "1", "2040", "1234")).expect("valid");
        assert_eq!(good.get("cardNumber"), Some("4242424242424242"));
        assert_eq!(good.get("cardExpiryYear"), Some("2040"));
    }

    #[test]
    fn urls_must_be_absolute_http() {
        assert!(web_url("https://shop.example/done"));
        assert!(web_url("http://127.0.0.1:8080/x?y=1"));
        assert!(!web_url("/relative"));
        assert!(!web_url("https://"));
        assert!(!web_url("javascript:alert(1)"));
        assert!(!web_url("https://shop.example/a b"));
    }

    #[test]
    fn the_result_leaves_out_card_data_and_plumbing() {
        let request = form(&[("merchantID", "1"), ("orderRef", "o")]);
        let answer = form(&[
            ("orderRef", "o"),
            ("cardCVV", "123"),
            ("threeDSRedirectURL", "http://x/"),
            ("threeDSRef", "r"),
            ("threeDSResponse[cres]", "c"),
            ("responseCode", "0"),
            ("xref", "X"),
        ]);
        let result = result_of(&request, &answer);
        let names: Vec<&str> = result.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["merchantID", "orderRef", "responseCode", "xref"]);
    }
}
