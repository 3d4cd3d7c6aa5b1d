//! The simulated issuer's pages: the 3-D Secure challenge and the hand-back to the merchant.
//!
//! They are plain HTML with one form each, so a browser test (or a test that only searches the
//! text) can drive them: the challenge form posts the cardholder's choice to
//! `/sandbox/acs/complete`, and the result page posts the `cres` to the merchant's
//! `threeDSRedirectURL`, by script when there is one and by a button when there is not. Every
//! interpolated value is escaped: the merchant name, order details and redirect URL all come
//! from a request.

pub use calmony_protocol::html::escape;

/// The issuer pages' style.
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;\
     padding:0 1rem;line-height:1.5}button{font:inherit;padding:.5rem 1rem;\
     margin:.25rem .5rem .25rem 0}dt{font-weight:bold}";

fn page(title: &str, body: &str) -> String {
    document(title, STYLE, body)
}

/// A whole page: `body` (already escaped markup) in `<main>`, styled by `css` (a constant).
pub fn document(title: &str, css: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>{title}</title>\n\
         <style>{css}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        title = escape(title),
    )
}

/// What the challenge page shows about the payment.
#[derive(Debug, Clone, Copy)]
pub struct ChallengeDetails<'a> {
    pub merchant: &'a str,
    /// Already formatted, e.g. `£10.99`.
    pub amount: &'a str,
    pub last4: &'a str,
    pub creq: &'a str,
    /// The merchant's `threeDSSessionData`, kept through the page and posted back unchanged.
    pub session_data: Option<&'a str>,
}

/// The ACS challenge: who is asking for how much, and three ways to answer.
pub fn challenge(details: &ChallengeDetails<'_>) -> String {
    let body = format!(
        "<h1>Sandbox 3-D Secure challenge</h1>\n\
         <p>This is the Calmony Pay sandbox standing in for the card issuer. No real bank is \
         involved; choose how the cardholder's authentication ends.</p>\n\
         <dl>\n<dt>Merchant</dt><dd>{merchant}</dd>\n<dt>Amount</dt><dd>{amount}</dd>\n\
         <dt>Card</dt><dd>ending {last4}</dd>\n</dl>\n\
         <form id=\"challenge\" method=\"post\" action=\"/sandbox/acs/complete\">\n\
         <input type=\"hidden\" name=\"creq\" value=\"{creq}\">\n\
         {session}\
         <button type=\"submit\" name=\"outcome\" value=\"Y\">Authenticate</button>\n\
         <button type=\"submit\" name=\"outcome\" value=\"N\">Fail authentication</button>\n\
         <button type=\"submit\" name=\"outcome\" value=\"R\">Reject</button>\n\
         </form>\n",
        merchant = escape(details.merchant),
        amount = escape(details.amount),
        last4 = escape(details.last4),
        creq = escape(details.creq),
        session = session_input(details.session_data),
    );
    page("Sandbox 3-D Secure challenge", &body)
}

/// The hidden input that carries the merchant's `threeDSSessionData`, if it sent one.
fn session_input(session_data: Option<&str>) -> String {
    session_data.map_or_else(String::new, |data| {
        format!(
            "<input type=\"hidden\" name=\"threeDSSessionData\" value=\"{}\">\n",
            escape(data)
        )
    })
}

/// The hand-back: post the `cres` (and the merchant's `threeDSSessionData`, unchanged, as
/// EMV 3-D Secure's ACS does) to the merchant's `threeDSRedirectURL`.
pub fn acs_result(redirect_url: &str, cres: &str, session_data: Option<&str>) -> String {
    let body = format!(
        "<h1>Returning to the merchant</h1>\n\
         <form id=\"acs-result\" method=\"post\" action=\"{action}\">\n\
         <input type=\"hidden\" name=\"cres\" value=\"{cres}\">\n\
         {session}\
         <noscript><button type=\"submit\">Continue</button></noscript>\n\
         </form>\n\
         <script>document.getElementById('acs-result').submit();</script>\n",
        action = escape(redirect_url),
        cres = escape(cres),
        session = session_input(session_data),
    );
    page("Sandbox 3-D Secure", &body)
}

/// A page explaining why the request cannot be served.
pub fn problem(title: &str, detail: &str) -> String {
    let body = format!("<h1>{}</h1>\n<p>{}</p>\n", escape(title), escape(detail));
    page(title, &body)
}

/// `£10.99` for 1099 in GBP; other currencies as `1099 <code>` (the simulator only takes GBP).
pub fn money(amount: u64, currency_code: &str) -> String {
    if currency_code == "826" || currency_code.eq_ignore_ascii_case("GBP") {
        calmony_protocol::clock_text::money(i64::try_from(amount).unwrap_or(i64::MAX))
    } else {
        format!("{amount} {currency_code}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_both_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn the_challenge_escapes_what_the_merchant_sent() {
        let html = challenge(&ChallengeDetails {
            merchant: "<script>alert(1)</script>",
            amount: "£1.00",
            last4: "4242",
            creq: "abc\"def",
            session_data: Some("s<1>"),
        });
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("value=\"abc&quot;def\""));
        assert!(
            html.contains(
                "<form id=\"challenge\" method=\"post\" action=\"/sandbox/acs/complete\">"
            )
        );
        assert!(html.contains("name=\"threeDSSessionData\" value=\"s&lt;1&gt;\""));
        let result = acs_result("https://shop.example/3ds?a=1&b=\"2\"", "tok", Some("s<1>"));
        assert!(result.contains("action=\"https://shop.example/3ds?a=1&amp;b=&quot;2&quot;\""));
        assert!(result.contains("name=\"threeDSSessionData\" value=\"s&lt;1&gt;\""));
        assert!(!acs_result("https://shop.example/", "tok", None).contains("threeDSSessionData"));
    }

    #[test]
    fn money_is_pounds_and_pence() {
        assert_eq!(money(1099, "826"), "£10.99");
        assert_eq!(money(5, "GBP"), "£0.05");
    }
}
