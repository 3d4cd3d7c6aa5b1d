//! A project's business details: who the payer is paying.
//!
//! A project's name (`default`, `acme-prod`) is the operator's handle for it, not something a
//! payer should read; the hosted pages once said "Pay default". These details are what the
//! payer sees instead, on the checkout and 3-D Secure pages and on invoices and their PDFs:
//! the trading name, how to reach support, the postal address and VAT number a UK VAT invoice
//! must show, and the brand colour and logo that make the page recognisably the merchant's.
//!
//! Every field is checked on the way in ([`ProfileChange::apply`]), so the pages can trust what
//! they print (they still escape it): a colour is `#rrggbb`, a logo is an `https` URL (a page
//! served over https must not pull an image over http, and a `data:` or `javascript:` URL has
//! no business in an `<img>`), and text has no control characters.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// What the payer sees of a project. Every field is optional: pages and invoices leave out
/// what is not set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BusinessProfile {
    /// The trading name, e.g. `Harbour Lettings Ltd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_url: Option<String>,
    /// Postal address, one entry a line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_number: Option<String>,
    /// `#rrggbb`, lower case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand_color: Option<String>,
    /// An `https` URL of the logo image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
}

/// A refused value, naming the field (`brand_color`) so the CLI can name its flag and the API
/// its parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct ProfileError {
    pub field: &'static str,
    pub message: String,
}

impl From<ProfileError> for ApiError {
    fn from(e: ProfileError) -> Self {
        ApiError::invalid_param("parameter_invalid_string", e.field, e.to_string())
    }
}

/// Changes to a profile: `None` leaves a field as it is, `Some("")` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChange {
    pub display_name: Option<String>,
    pub support_email: Option<String>,
    pub support_url: Option<String>,
    /// Lines separated by commas or new lines.
    pub address: Option<String>,
    pub vat_number: Option<String>,
    pub brand_color: Option<String>,
    pub logo_url: Option<String>,
}

const MAX_NAME: usize = 80;
const MAX_TEXT: usize = 200;
const MAX_URL: usize = 500;
const MAX_ADDRESS_LINES: usize = 6;

fn err(field: &'static str, message: impl Into<String>) -> ProfileError {
    ProfileError {
        field,
        message: message.into(),
    }
}

/// Trimmed single-line text of at most `max` characters.
fn text(field: &'static str, v: &str, max: usize) -> Result<String, ProfileError> {
    let v = v.trim();
    if v.chars().any(char::is_control) {
        return Err(err(
            field,
            "must be one line of text, without control characters",
        ));
    }
    if v.chars().count() > max {
        return Err(err(field, format!("must be at most {max} characters")));
    }
    Ok(v.to_string())
}

fn email(v: &str) -> Result<String, ProfileError> {
    let v = text("support_email", v, MAX_TEXT)?;
    crate::customer::check_email(&v)
        .map_err(|_| err("support_email", format!("{v:?} is not an email address")))?;
    Ok(v)
}

/// An absolute URL with a host, of one of `schemes`, without a user or password.
fn url(field: &'static str, v: &str, schemes: &[&str]) -> Result<String, ProfileError> {
    let v = text(field, v, MAX_URL)?;
    let parsed =
        url::Url::parse(&v).map_err(|e| err(field, format!("{v:?} is not a URL ({e})")))?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(err(
            field,
            format!(
                "must be an {} URL, not {:?}",
                schemes.join(" or "),
                parsed.scheme()
            ),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(err(field, "must name a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(err(field, "must not carry a user name or password"));
    }
    Ok(parsed.to_string())
}

/// `#abc` or `#aabbcc` (any case) -> `#aabbcc`.
pub fn parse_color(v: &str) -> Result<String, ProfileError> {
    let hex = v.trim().strip_prefix('#').unwrap_or(v.trim());
    let valid = hex.chars().all(|c| c.is_ascii_hexdigit());
    let full = match hex.len() {
        6 if valid => hex.to_ascii_lowercase(),
        3 if valid => hex
            .chars()
            .flat_map(|c| [c, c])
            .collect::<String>()
            .to_ascii_lowercase(),
        _ => {
            return Err(err(
                "brand_color",
                format!("{v:?} is not a hex colour such as #1a5fb4"),
            ));
        }
    };
    Ok(format!("#{full}"))
}

/// A VAT registration number: a two-letter country prefix and its digits (spaces allowed, as
/// printed: `GB 123 4567 89`). A UK number is 9 or 12 digits, or `GD`/`HA` and 3 digits;
/// another country's is taken as 2 to 13 letters and digits.
fn vat_number(v: &str) -> Result<String, ProfileError> {
    let v = text("vat_number", v, 40)?.to_ascii_uppercase();
    let compact: String = v.chars().filter(|c| *c != ' ').collect();
    let bad = || {
        err(
            "vat_number",
            format!("{v:?} is not a VAT number such as GB 123 4567 89"),
        )
    };
    let (country, rest) = compact.split_at_checked(2).ok_or_else(bad)?;
    if !country.chars().all(|c| c.is_ascii_uppercase())
        || !rest.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(bad());
    }
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let ok = match country {
        "GB" | "XI" => {
            (digits(rest) && matches!(rest.len(), 9 | 12))
                || (rest.len() == 5
                    && (rest.starts_with("GD") || rest.starts_with("HA"))
                    && digits(&rest[2..]))
        }
        _ => (2..=13).contains(&rest.len()),
    };
    if ok { Ok(v) } else { Err(bad()) }
}

fn address(v: &str) -> Result<Vec<String>, ProfileError> {
    let lines: Vec<String> = v
        .split([',', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| text("address", l, 100))
        .collect::<Result<_, _>>()?;
    if lines.len() > MAX_ADDRESS_LINES {
        return Err(err(
            "address",
            format!("at most {MAX_ADDRESS_LINES} lines (separated by commas)"),
        ));
    }
    Ok(lines)
}

/// `Some("")` clears, `Some(v)` is checked by `check`, `None` keeps `old`.
fn change<T>(
    old: Option<T>,
    new: Option<&str>,
    check: impl Fn(&str) -> Result<T, ProfileError>,
) -> Result<Option<T>, ProfileError> {
    match new {
        None => Ok(old),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => check(v).map(Some),
    }
}

impl ProfileChange {
    /// The profile with these changes, every changed field checked; nothing changes if any is
    /// refused.
    pub fn apply(&self, old: &BusinessProfile) -> Result<BusinessProfile, ProfileError> {
        let old = old.clone();
        Ok(BusinessProfile {
            display_name: change(old.display_name, self.display_name.as_deref(), |v| {
                text("display_name", v, MAX_NAME)
            })?,
            support_email: change(old.support_email, self.support_email.as_deref(), email)?,
            support_url: change(old.support_url, self.support_url.as_deref(), |v| {
                url("support_url", v, &["https", "http"])
            })?,
            address: change(Some(old.address), self.address.as_deref(), address)?
                .unwrap_or_default(),
            vat_number: change(old.vat_number, self.vat_number.as_deref(), vat_number)?,
            brand_color: change(old.brand_color, self.brand_color.as_deref(), parse_color)?,
            logo_url: change(old.logo_url, self.logo_url.as_deref(), |v| {
                url("logo_url", v, &["https"])
            })?,
        })
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl BusinessProfile {
    /// The name the payer reads; `None` when the merchant has not given one (pages then name
    /// no one rather than show the project's internal name).
    pub fn payer_name(&self) -> Option<&str> {
        self.display_name.as_deref().filter(|n| !n.is_empty())
    }
}

/// The brand colour, or the default blue.
pub const DEFAULT_BRAND: &str = "#3a4bd9";

/// Text on a background of `color` (`#rrggbb`): white on dark colours, near-black on light
/// ones, by WCAG relative luminance, so a merchant's pale yellow still has a readable button.
pub fn ink_on(color: &str) -> &'static str {
    let channel = |i: usize| {
        let v = color
            .get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .map_or(0.0, |b| f64::from(b) / 255.0);
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
    // Where white and near-black (#1a1f36, L ≈ 0.014) give the same contrast ratio.
    if l > 0.21 { "#1a1f36" } else { "#ffffff" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(f: impl FnOnce(&mut ProfileChange)) -> Result<BusinessProfile, ProfileError> {
        let mut c = ProfileChange::default();
        f(&mut c);
        c.apply(&BusinessProfile::default())
    }

    #[test]
    fn each_field_is_checked_and_a_refusal_names_it() {
        type Case = (fn(&mut ProfileChange, String), &'static str, &'static str);
        let refused: &[Case] = &[
            (|c, v| c.display_name = Some(v), "display_name", "Tab\there"),
            (|c, v| c.display_name = Some(v), "display_name", "x"),
            (
                |c, v| c.support_email = Some(v),
                "support_email",
                "help at example.com",
            ),
            (
                |c, v| c.support_url = Some(v),
                "support_url",
                "ftp://example.com/",
            ),
            (
                |c, v| c.support_url = Some(v),
                "support_url",
                "https://u:p@example.com/",
            ),
            (
                |c, v| c.logo_url = Some(v),
                "logo_url",
                "http://cdn.example/logo.png",
            ),
            (
                |c, v| c.logo_url = Some(v),
                "logo_url",
                "javascript:alert(1)",
            ),
            (
                |c, v| c.logo_url = Some(v),
                "logo_url",
                "data:image/png;base64,AAAA",
            ),
            (|c, v| c.logo_url = Some(v), "logo_url", "logo.png"),
            (|c, v| c.brand_color = Some(v), "brand_color", "blue"),
            (|c, v| c.brand_color = Some(v), "brand_color", "#12345"),
            (|c, v| c.brand_color = Some(v), "brand_color", "#ggg"),
            (|c, v| c.brand_color = Some(v), "brand_color", "red;}body{x"),
            (|c, v| c.vat_number = Some(v), "vat_number", "GB 123"),
            (|c, v| c.vat_number = Some(v), "vat_number", "123456789"),
            (|c, v| c.vat_number = Some(v), "vat_number", "GB12345678X"),
            (|c, v| c.address = Some(v), "address", "1,2,3,4,5,6,7"),
        ];
        for (f, field, value) in refused {
            let value = if *value == "x" {
                "x".repeat(81)
            } else {
                value.to_string()
            };
            let e = set(|c| f(c, value.clone())).expect_err(&value);
            assert_eq!(e.field, *field, "{value}");
            assert!(e.to_string().starts_with(&format!("invalid {field}: ")));
        }
    }

    #[test]
    fn accepted_values_are_normalised() {
        let p = set(|c| {
            c.display_name = Some("  Łódź Café & Co <Ltd>  ".into());
            c.support_email = Some("help@harbour.example".into());
            c.support_url = Some("https://harbour.example/help".into());
            c.address = Some("12 Quay Street,\nBristol, BS1 4XX ,".into());
            c.vat_number = Some("gb 123 4567 89".into());
            c.brand_color = Some("#0A7".into());
            c.logo_url = Some("https://cdn.harbour.example/logo.svg".into());
        })
        .expect("valid");
        assert_eq!(p.payer_name(), Some("Łódź Café & Co <Ltd>"));
        assert_eq!(p.address, ["12 Quay Street", "Bristol", "BS1 4XX"]);
        assert_eq!(p.vat_number.as_deref(), Some("GB 123 4567 89"));
        assert_eq!(p.brand_color.as_deref(), Some("#00aa77"));
        for vat in [
            "GB123456789",
            "GB123456789012",
            "GBGD001",
            "GBHA599",
            "XI 123456789",
            "DE123456789",
            "IE1234567WA",
        ] {
            assert!(vat_number(vat).is_ok(), "{vat}");
        }
    }

    #[test]
    fn an_update_changes_only_what_it_names_and_empty_clears() {
        let old = set(|c| {
            c.display_name = Some("Harbour".into());
            c.vat_number = Some("GB123456789".into());
        })
        .expect("valid");
        let new = ProfileChange {
            vat_number: Some(String::new()),
            brand_color: Some("#112233".into()),
            ..Default::default()
        }
        .apply(&old)
        .expect("valid");
        assert_eq!(new.payer_name(), Some("Harbour"));
        assert_eq!(new.vat_number, None);
        assert_eq!(new.brand_color.as_deref(), Some("#112233"));
        // A refused field leaves everything as it was (the caller keeps `old`).
        let refused = ProfileChange {
            display_name: Some("New".into()),
            logo_url: Some("http://x.example/l.png".into()),
            ..Default::default()
        }
        .apply(&old);
        assert!(refused.is_err());
    }

    #[test]
    fn text_on_the_brand_colour_stays_readable() {
        for (bg, ink) in [
            ("#3a4bd9", "#ffffff"),
            ("#000000", "#ffffff"),
            ("#1a5fb4", "#ffffff"),
            ("#ffffff", "#1a1f36"),
            ("#ffeb3b", "#1a1f36"),
            ("#00aa77", "#1a1f36"),
            ("#b00020", "#ffffff"),
        ] {
            assert_eq!(ink_on(bg), ink, "{bg}");
        }
    }
}
