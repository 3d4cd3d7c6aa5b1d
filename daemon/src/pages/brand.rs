//! The merchant's frame around a payer-facing page: who is being paid, in their colours, and
//! how to reach them.
//!
//! A payer deciding whether to hand over a card looks for the business they meant to pay: its
//! name as the heading (never the project's internal name: a merchant that set no display
//! name gets a page that names no one), its logo and colour, and in the footer the support
//! contact, postal address and VAT number a real business shows. Test mode says so at the top.
//! Everything the merchant typed is escaped; the colour and logo were checked when they were
//! set and are checked again here, since they land in CSS and an `src` attribute.

use calmony_actors::projects::Merchant;
use calmony_protocol::Mode;
use calmony_protocol::business::{self, BusinessProfile};
use hyper::Response;

use super::html::escape;
use crate::response::Body;

/// How a page presents its merchant.
#[derive(Debug, Clone, Default)]
pub struct Look {
    pub profile: BusinessProfile,
    pub test_mode: bool,
}

impl Look {
    pub fn new(merchant: Merchant, mode: Mode) -> Self {
        Look {
            profile: merchant.profile,
            test_mode: mode == Mode::Test,
        }
    }

    /// The look of `scope`'s project (the default look if its details cannot be read: a page
    /// is still drawn, unbranded).
    pub async fn load(store: &calmony_actors::Store, scope: &calmony_actors::Scope) -> Self {
        let merchant = calmony_actors::projects::merchant(store, &scope.project)
            .await
            .unwrap_or_default();
        Look::new(merchant, scope.mode)
    }

    /// The merchant's name as payers read it, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.profile.payer_name()
    }

    /// `#rrggbb`: the brand colour if it is one, else the default.
    fn color(&self) -> String {
        self.profile
            .brand_color
            .as_deref()
            .and_then(|c| business::parse_color(c).ok())
            .unwrap_or_else(|| business::DEFAULT_BRAND.into())
    }

    fn logo(&self) -> Option<&str> {
        self.profile
            .logo_url
            .as_deref()
            .filter(|u| u.starts_with("https://"))
    }

    /// The header: logo (or, for a named merchant without one, its initial on the brand
    /// colour, as payment pages do) and name, and the test-mode badge.
    fn header(&self) -> String {
        let logo = match (self.logo(), self.name()) {
            (Some(u), _) => format!(
                "<img class=\"logo\" id=\"merchant-logo\" src=\"{}\" alt=\"\" referrerpolicy=\"no-referrer\">",
                escape(u)
            ),
            (None, Some(n)) => n
                .chars()
                .find(|c| c.is_alphanumeric())
                .map(|c| {
                    format!(
                        "<span class=\"monogram\" aria-hidden=\"true\">{}</span>",
                        escape(&c.to_uppercase().to_string())
                    )
                })
                .unwrap_or_default(),
            (None, None) => String::new(),
        };
        let name = self
            .name()
            .map(|n| format!("<span class=\"merchant-name\">{}</span>", escape(n)))
            .unwrap_or_default();
        let badge = if self.test_mode {
            "<span class=\"badge\" id=\"test-mode\">Test mode</span>"
        } else {
            ""
        };
        format!("<header class=\"top\" id=\"merchant\">{logo}{name}{badge}</header>")
    }

    /// The footer: support contact, address, VAT number, and who runs the page.
    fn footer(&self) -> String {
        let p = &self.profile;
        let mut parts = Vec::new();
        let mut contact = Vec::new();
        if let Some(e) = &p.support_email {
            contact.push(format!(
                "<a id=\"support-email\" href=\"mailto:{0}\">{0}</a>",
                escape(e)
            ));
        }
        if let Some(u) = &p.support_url {
            let shown = u
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/');
            contact.push(format!(
                "<a id=\"support-url\" href=\"{}\" rel=\"noopener\">{}</a>",
                escape(u),
                escape(shown)
            ));
        }
        if !contact.is_empty() {
            parts.push(format!(
                "<p>Questions about this payment? {}</p>",
                contact.join(" · ")
            ));
        }
        let mut business_lines = Vec::new();
        if let Some(n) = self.name() {
            business_lines.push(escape(n));
        }
        business_lines.extend(p.address.iter().map(|l| escape(l)));
        if !p.address.is_empty() || p.vat_number.is_some() {
            let vat = p
                .vat_number
                .as_ref()
                .map(|v| format!("<br><span id=\"vat-number\">VAT no. {}</span>", escape(v)))
                .unwrap_or_default();
            parts.push(format!(
                "<p id=\"merchant-address\">{}{vat}</p>",
                business_lines.join(", ")
            ));
        }
        parts.push("<p class=\"powered\">Payments by Calmony Pay</p>".into());
        format!("<footer class=\"foot\">{}</footer>", parts.join(""))
    }
}

/// The look every merchant page shares: the brand colour as `--brand` (and its readable text
/// colour as `--on-brand`), one column on a phone.
fn style(color: &str) -> String {
    format!(
        ":root{{--brand:{color};--on-brand:{ink}}}\
         *{{box-sizing:border-box}}\
         body{{margin:0;font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;background:#f4f5f7;color:#1a1f36}}\
         .band{{height:6px;background:var(--brand)}}\
         .wrap{{max-width:30rem;margin:0 auto;padding:1.25rem 1rem 2rem}}\
         @media(min-width:52rem){{.wrap{{padding-top:8vh}}}}\
         .top{{display:flex;align-items:center;gap:.75rem;min-height:2.5rem;margin:.5rem 0 1.25rem}}\
         .logo{{max-height:40px;max-width:140px;object-fit:contain}}\
         .monogram{{display:inline-flex;align-items:center;justify-content:center;width:2.25rem;height:2.25rem;\
         border-radius:8px;background:var(--brand);color:var(--on-brand);font-weight:700;font-size:1.1rem;flex:none}}\
         .merchant-name{{font-weight:650;font-size:1.15rem;overflow-wrap:anywhere}}\
         .badge{{margin-left:auto;font-size:.75rem;font-weight:600;text-transform:uppercase;letter-spacing:.04em;\
         background:#fff4d6;color:#7a4d00;border:1px solid #f0c869;border-radius:999px;padding:.1rem .6rem;white-space:nowrap}}\
         main{{background:#fff;border-radius:12px;padding:1.5rem;box-shadow:0 1px 3px rgba(16,24,40,.08),0 8px 24px rgba(16,24,40,.06)}}\
         h1{{font-size:1.25rem;margin:0 0 .5rem}}\
         button,.button{{font:inherit;font-weight:600;padding:.85rem 1.2rem;border:0;border-radius:8px;\
         background:var(--brand);color:var(--on-brand);cursor:pointer}}\
         button:focus-visible,a:focus-visible{{outline:3px solid #1a5fb4;outline-offset:2px}}\
         a{{color:#1a1f36}}\
         .foot{{color:#5b6475;font-size:.85rem;text-align:center;margin-top:1.5rem}}\
         .foot p{{margin:.35rem 0}}.foot a{{color:#3c4257}}\
         .powered{{color:#8a93a6;font-size:.8rem}}",
        ink = business::ink_on(color),
    )
}

/// A page framed as the merchant's: `extra_style` adds the page's own rules, `wide` lets the
/// page use a two-column layout on a desktop.
pub fn merchant_page(
    status: u16,
    title: &str,
    look: &Look,
    extra_style: &str,
    wide: bool,
    body: &str,
) -> Response<Body> {
    let color = look.color();
    let title = match look.name() {
        Some(n) => format!("{title} · {n}"),
        None => title.to_string(),
    };
    let wrap = if wide { "wrap wide" } else { "wrap" };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"theme-color\" content=\"{color}\">\
         <title>{title}</title><style>{style}{extra_style}</style></head>\
         <body><div class=\"band\"></div><div class=\"{wrap}\">{header}<main>{body}</main>{footer}</div></body></html>",
        title = escape(&title),
        style = style(&color),
        header = look.header(),
        footer = look.footer(),
    );
    super::html::html_response(status, html)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(f: impl FnOnce(&mut BusinessProfile)) -> Look {
        let mut profile = BusinessProfile::default();
        f(&mut profile);
        Look {
            profile,
            test_mode: false,
        }
    }

    fn html(l: &Look) -> String {
        format!("{}{}", l.header(), l.footer())
    }

    #[test]
    fn merchant_text_is_escaped_everywhere_it_appears() {
        let l = look(|p| {
            p.display_name = Some("Tea & <Cake>".into());
            p.support_email = Some("a\"b@x.example".into());
            p.support_url = Some("https://x.example/?a=1&b=<2>".into());
            p.address = vec!["1 <Road>".into()];
            p.vat_number = Some("GB<1>".into());
        });
        let h = html(&l);
        assert!(h.contains("Tea &amp; &lt;Cake&gt;"));
        assert!(h.contains("mailto:a&quot;b@x.example"));
        assert!(h.contains("a=1&amp;b=&lt;2&gt;"));
        assert!(h.contains("1 &lt;Road&gt;"));
        assert!(h.contains("VAT no. GB&lt;1&gt;"));
        assert!(!h.contains("<Cake>") && !h.contains("<Road>"));
    }

    #[test]
    fn a_bad_stored_colour_or_logo_never_reaches_the_page() {
        let l = look(|p| {
            p.brand_color = Some("red;}body{display:none".into());
            p.logo_url = Some("javascript:alert(1)".into());
        });
        assert_eq!(l.color(), business::DEFAULT_BRAND);
        assert!(!l.header().contains("<img"));
        let good = look(|p| {
            p.brand_color = Some("#0A7".into());
            p.logo_url = Some("https://cdn.example/l.png".into());
        });
        assert_eq!(good.color(), "#00aa77");
        assert!(good.header().contains("src=\"https://cdn.example/l.png\""));
    }

    #[test]
    fn an_unnamed_merchant_is_not_named_and_test_mode_says_so() {
        let mut l = look(|_| {});
        l.test_mode = true;
        let h = html(&l);
        assert!(h.contains("id=\"test-mode\""));
        assert!(!h.contains("merchant-name"));
        assert!(!h.contains("merchant-address"));
    }
}
