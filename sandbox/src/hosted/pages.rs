//! The Hosted Payment Page's HTML: the card form, the hand-back to the merchant, and the pages
//! that explain why there is no form.
//!
//! The pages are plain HTML with stable ids, so the daemon's browser tests can type and click
//! into them and a test that only reads the text can find its way: the card form is
//! `#card-form` with inputs named and id'd `cardNumber`, `cardExpiryMonth`, `cardExpiryYear`,
//! `cardCVV`, `cardholderName`, buttons `#pay` and `#cancel`, and an inline `#card-error`; the
//! hand-back is `#hosted-result`. They are built for a phone first: one column, inputs and
//! buttons at least 3rem tall with 16px+ text (so iOS does not zoom), a label for every input,
//! the numeric keypad for digits, `autocomplete` so a browser can fill a saved card, and the
//! error announced to screen readers. Every interpolated value is escaped.

use crate::pages::{document, escape};

const STYLE: &str = "body{font-family:system-ui,sans-serif;font-size:1.0625rem;\
     line-height:1.5;margin:0;color:#1c1c1c;background:#f6f6f4}\
     main{max-width:28rem;margin:0 auto;padding:1rem}\
     .notice{background:#eaf4ea;border:1px solid #5a8f5a;border-radius:.5rem;\
     padding:.5rem .75rem;margin:0 0 1rem}\
     h1{font-size:1.375rem;margin:.5rem 0 0}\
     .amount{font-size:2rem;font-weight:700;margin:.25rem 0 .5rem}\
     .meta{margin:0;color:#444;overflow-wrap:anywhere}\
     label{display:block;font-weight:600;margin:1rem 0 .25rem}\
     input{box-sizing:border-box;width:100%;min-height:3rem;font:inherit;font-size:1.125rem;\
     padding:.5rem .75rem;border:2px solid #555;border-radius:.375rem;background:#fff}\
     input[aria-invalid=true]{border-color:#a51d2d}\
     input:focus,button:focus{outline:3px solid #1a5fb4;outline-offset:2px}\
     .row{display:flex;gap:1rem}.row>div{flex:1}\
     button{display:block;box-sizing:border-box;width:100%;min-height:3rem;font:inherit;\
     font-size:1.125rem;font-weight:600;margin-top:1rem;border-radius:.375rem;\
     border:2px solid #1a5fb4;cursor:pointer}\
     #pay{background:#1a5fb4;color:#fff}#cancel{background:#fff;color:#1a5fb4}\
     .error{color:#a51d2d;background:#fdecea;border:1px solid #a51d2d;border-radius:.375rem;\
     padding:.5rem .75rem;margin:1rem 0 0}";

/// The notice at the top of every hosted page.
const NOTICE: &str = "<p class=\"notice\" id=\"sandbox-notice\">Sandbox \u{2014} test cards \
     only. No real payment is taken.</p>\n";

/// An input of the card form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardField {
    Number,
    ExpiryMonth,
    ExpiryYear,
    Cvv,
}

/// What the card page shows.
#[derive(Debug, Clone, Copy)]
pub struct CardPage<'a> {
    pub session: &'a str,
    pub merchant: &'a str,
    /// Already formatted, e.g. `£25.00`.
    pub amount: &'a str,
    /// A VERIFY: the card is saved, not charged.
    pub save_only: bool,
    pub order_ref: Option<&'a str>,
    pub customer_email: Option<&'a str>,
    /// What was wrong with the last submit, and which input it concerns.
    pub error: Option<(CardField, &'a str)>,
    /// Values to fill in again (never the card number or CVV).
    pub expiry_month: &'a str,
    pub expiry_year: &'a str,
    pub cardholder_name: &'a str,
}

/// One labelled input.
struct Input<'a> {
    field: Option<CardField>,
    name: &'a str,
    label: &'a str,
    autocomplete: &'a str,
    numeric: bool,
    maxlength: Option<u8>,
    placeholder: Option<&'a str>,
    required: bool,
    value: &'a str,
}

impl Input<'_> {
    fn render(&self, error: Option<CardField>) -> String {
        let invalid = self.field.is_some() && self.field == error;
        let mut attrs = String::new();
        if self.numeric {
            attrs.push_str(" inputmode=\"numeric\"");
        }
        if let Some(max) = self.maxlength {
            attrs.push_str(&format!(" maxlength=\"{max}\""));
        }
        if let Some(placeholder) = self.placeholder {
            attrs.push_str(&format!(" placeholder=\"{}\"", escape(placeholder)));
        }
        if self.required {
            attrs.push_str(" required");
        }
        if !self.value.is_empty() {
            attrs.push_str(&format!(" value=\"{}\"", escape(self.value)));
        }
        if invalid {
            attrs.push_str(" aria-invalid=\"true\" aria-describedby=\"card-error\" autofocus");
        }
        format!(
            "<label for=\"{name}\">{label}</label>\n\
             <input id=\"{name}\" name=\"{name}\" type=\"text\" autocomplete=\"{auto}\"{attrs}>\n",
            name = self.name,
            label = self.label,
            auto = self.autocomplete,
        )
    }
}

/// The card form.
pub fn card_form(page: &CardPage<'_>) -> String {
    let error = page.error.map(|(field, _)| field);
    let input = |field, name, label, autocomplete, maxlength, placeholder, value| Input {
        field,
        name,
        label,
        autocomplete,
        numeric: field.is_some(),
        maxlength,
        placeholder,
        required: field.is_some(),
        value,
    };
    let number = input(
        Some(CardField::Number),
        "cardNumber",
        "Card number",
        "cc-number",
        Some(23),
        None,
        "",
    );
    let month = input(
        Some(CardField::ExpiryMonth),
        "cardExpiryMonth",
        "Expiry month",
        "cc-exp-month",
        Some(2),
        Some("MM"),
        page.expiry_month,
    );
    let year = input(
        Some(CardField::ExpiryYear),
        "cardExpiryYear",
        "Expiry year",
        "cc-exp-year",
        Some(4),
        Some("YY"),
        page.expiry_year,
    );
    let cvv = input(
        Some(CardField::Cvv),
        "cardCVV",
        "Security code (CVV)",
        "cc-csc",
        Some(4),
        None,
        "",
    );
    let name = input(
        None,
        "cardholderName",
        "Name on card",
        "cc-name",
        None,
        None,
        page.cardholder_name,
    );
    let (heading, pay_label) = if page.save_only {
        (
            format!("Save a card with {}", escape(page.merchant)),
            "Save card".to_owned(),
        )
    } else {
        (
            format!("Pay {}", escape(page.merchant)),
            format!("Pay {}", escape(page.amount)),
        )
    };
    let mut body = String::from(NOTICE);
    body.push_str(&format!("<h1>{heading}</h1>\n"));
    if page.save_only {
        body.push_str(
            "<p class=\"meta\">Your card will be checked and saved; nothing is charged now.</p>\n",
        );
    } else {
        body.push_str(&format!(
            "<p class=\"amount\" id=\"amount\">{}</p>\n",
            escape(page.amount)
        ));
    }
    if let Some(order) = page.order_ref {
        body.push_str(&format!("<p class=\"meta\">Order: {}</p>\n", escape(order)));
    }
    if let Some(email) = page.customer_email {
        body.push_str(&format!(
            "<p class=\"meta\">Receipt to: {}</p>\n",
            escape(email)
        ));
    }
    if let Some((_, message)) = page.error {
        body.push_str(&format!(
            "<p class=\"error\" id=\"card-error\" role=\"alert\">{}</p>\n",
            escape(message)
        ));
    }
    body.push_str(
        "<form id=\"card-form\" method=\"post\" action=\"/sandbox/hosted/pay\" \
         autocomplete=\"on\">\n",
    );
    body.push_str(&format!(
        "<input type=\"hidden\" name=\"session\" value=\"{}\">\n",
        escape(page.session)
    ));
    body.push_str(&number.render(error));
    body.push_str("<div class=\"row\">\n<div>\n");
    body.push_str(&month.render(error));
    body.push_str("</div>\n<div>\n");
    body.push_str(&year.render(error));
    body.push_str("</div>\n</div>\n");
    body.push_str(&cvv.render(error));
    body.push_str(&name.render(error));
    body.push_str(&format!(
        "<button type=\"submit\" id=\"pay\">{pay_label}</button>\n\
         <button type=\"submit\" id=\"cancel\" name=\"cancel\" value=\"1\" formnovalidate>\
         Cancel</button>\n</form>\n"
    ));
    let title = if page.save_only {
        "Save your card"
    } else {
        "Pay by card"
    };
    document(title, STYLE, &body)
}

/// The hand-back: post the signed result to the merchant's `redirectURL`, by script when
/// there is one and by a button when there is not. `heading` says why the customer is here.
pub fn result(heading: &str, redirect_url: &str, fields: &[(String, String)]) -> String {
    let mut body = String::from(NOTICE);
    body.push_str(&format!(
        "<h1>{}</h1>\n<p>Returning you to the merchant\u{2026}</p>\n",
        escape(heading)
    ));
    body.push_str(&format!(
        "<form id=\"hosted-result\" method=\"post\" action=\"{}\">\n",
        escape(redirect_url)
    ));
    for (name, value) in fields {
        body.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
            escape(name),
            escape(value)
        ));
    }
    body.push_str(
        "<noscript><button type=\"submit\" id=\"continue\">Continue</button></noscript>\n\
         </form>\n<script>document.getElementById('hosted-result').submit();</script>\n",
    );
    document(heading, STYLE, &body)
}

/// Why the payment page cannot be shown or used: a title, the gateway's code and message.
pub fn problem(title: &str, code: Option<u32>, message: &str) -> String {
    let mut body = String::from(NOTICE);
    body.push_str(&format!(
        "<h1>{}</h1>\n<p id=\"error-message\">{}</p>\n",
        escape(title),
        escape(message)
    ));
    if let Some(code) = code {
        body.push_str(&format!(
            "<p>Response code: <span id=\"error-code\">{code}</span></p>\n"
        ));
    }
    document(title, STYLE, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page<'a>(error: Option<(CardField, &'a str)>) -> CardPage<'a> {
        CardPage {
            session: "tok\"en",
            merchant: "Tea & <Cake>",
            amount: "£25.00",
            save_only: false,
            order_ref: Some("o<1>"),
            customer_email: None,
            error,
            expiry_month: "12",
            expiry_year: "",
            cardholder_name: "J \"Q\" Public",
        }
    }

    #[test]
    fn the_card_form_labels_every_input_and_escapes_the_merchant() {
        let html = card_form(&page(None));
        assert!(
            html.contains("<form id=\"card-form\" method=\"post\" action=\"/sandbox/hosted/pay\"")
        );
        assert!(html.contains("<input type=\"hidden\" name=\"session\" value=\"tok&quot;en\">"));
        for (name, auto) in [
            ("cardNumber", "cc-number"),
            ("cardExpiryMonth", "cc-exp-month"),
            ("cardExpiryYear", "cc-exp-year"),
            ("cardCVV", "cc-csc"),
            ("cardholderName", "cc-name"),
        ] {
            assert!(html.contains(&format!("<label for=\"{name}\">")), "{name}");
            assert!(
                html.contains(&format!(
                    "<input id=\"{name}\" name=\"{name}\" type=\"text\" autocomplete=\"{auto}\""
                )),
                "{name}"
            );
        }
        assert!(html.contains("<button type=\"submit\" id=\"pay\">Pay £25.00</button>"));
        assert!(html.contains(
            "<button type=\"submit\" id=\"cancel\" name=\"cancel\" value=\"1\" formnovalidate>Cancel</button>"
        ));
        assert!(html.contains("Pay Tea &amp; &lt;Cake&gt;"));
        assert!(html.contains("Order: o&lt;1&gt;"));
        assert!(html.contains("value=\"J &quot;Q&quot; Public\""));
        assert!(!html.contains("card-error"));
    }

    #[test]
    fn an_error_is_announced_and_points_at_its_input() {
        let html = card_form(&page(Some((CardField::Number, "Card number is invalid"))));
        assert!(html.contains(
            "<p class=\"error\" id=\"card-error\" role=\"alert\">Card number is invalid</p>"
        ));
        assert!(html.contains("autocomplete=\"cc-number\" inputmode=\"numeric\" maxlength=\"23\" required aria-invalid=\"true\""));
    }

    #[test]
    fn the_result_posts_every_field_escaped() {
        let html = result(
            "Payment complete",
            "https://shop.example/done?a=1&b=2",
            &[("orderRef".into(), "<x> & \"y\"".into())],
        );
        assert!(html.contains(
            "<form id=\"hosted-result\" method=\"post\" action=\"https://shop.example/done?a=1&amp;b=2\">"
        ));
        assert!(html.contains(
            "<input type=\"hidden\" name=\"orderRef\" value=\"&lt;x&gt; &amp; &quot;y&quot;\">"
        ));
        assert!(html.contains(
            "<noscript><button type=\"submit\" id=\"continue\">Continue</button></noscript>"
        ));
        assert!(html.contains("document.getElementById('hosted-result').submit();"));
    }
}
