//! Card data as it arrives in a request, checked before anything leaves the daemon.
//!
//! A [`CardInput`] holds the number and CVC only for as long as it takes to tokenise the card
//! at the gateway: its `Debug` is masked, it is not `Serialize`, and nothing stores it. What
//! survives is the gateway's `xref` token, the brand, last4, expiry, funding and a fingerprint.

use crate::error::{ApiError, ErrorType};
use crate::params::{Field, Params};

/// A card number, expiry and CVC from a request. Never stored, never logged.
pub struct CardInput {
    pub number: String,
    pub exp_month: u32,
    pub exp_year: u32,
    pub cvc: Option<String>,
}

impl std::fmt::Debug for CardInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardInput")
            .field("last4", &self.last4())
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .finish_non_exhaustive()
    }
}

fn card_error(code: &'static str, param: &str, message: &str) -> ApiError {
    let mut e = ApiError::new(402, ErrorType::CardError, message)
        .with_code(code)
        .with_param(param);
    e.validation = true;
    e
}

impl CardInput {
    /// Read `card[number]`, `card[exp_month]` (`expMonth`), `card[exp_year]` (`expYear`),
    /// `card[cvc]`, and check them: Luhn, a real future expiry, a 3 or 4 digit CVC.
    pub fn take(p: &mut Params, current_year: u32, current_month: u32) -> Result<Self, ApiError> {
        let mut card = match p.object(&["card"])? {
            Field::Set(c) => c,
            _ => return Err(ApiError::missing_param("card")),
        };
        let raw_number = card.required_string(&["number"], 40)?;
        let number: String = raw_number
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        let exp_month = card
            .integer(&["exp_month", "expMonth"], i64::MIN, i64::MAX)?
            .into_option()
            .ok_or_else(|| ApiError::missing_param("card[exp_month]"))?;
        let exp_year = card
            .integer(&["exp_year", "expYear"], i64::MIN, i64::MAX)?
            .into_option()
            .ok_or_else(|| ApiError::missing_param("card[exp_year]"))?;
        let cvc = card.string_max(&["cvc"], 10)?.into_option();
        card.finish()?;

        if number.len() < 12
            || number.len() > 19
            || !number.bytes().all(|b| b.is_ascii_digit())
            || !luhn(&number)
        {
            return Err(card_error(
                "incorrect_number",
                "card[number]",
                "Your card number is incorrect.",
            ));
        }
        if !(1..=12).contains(&exp_month) {
            return Err(card_error(
                "invalid_expiry_month",
                "card[exp_month]",
                "Your card's expiration month is invalid.",
            ));
        }
        // Two-digit years mean 20YY, as card forms print them.
        let exp_year = if (0..100).contains(&exp_year) {
            exp_year + 2000
        } else {
            exp_year
        };
        let (year, month) = (i64::from(current_year), i64::from(current_month));
        if exp_year < year || exp_year > year + 50 || (exp_year == year && exp_month < month) {
            return Err(card_error(
                "invalid_expiry_year",
                "card[exp_year]",
                "Your card's expiration year is invalid.",
            ));
        }
        if let Some(c) = &cvc {
            let amex = brand(&number) == "amex";
            let ok_len = if amex { c.len() == 4 } else { c.len() == 3 };
            if !ok_len || !c.bytes().all(|b| b.is_ascii_digit()) {
                return Err(card_error(
                    "invalid_cvc",
                    "card[cvc]",
                    "Your card's security code is invalid.",
                ));
            }
        }
        Ok(Self {
            number,
            exp_month: exp_month as u32,
            exp_year: exp_year as u32,
            cvc,
        })
    }

    pub fn last4(&self) -> &str {
        &self.number[self.number.len().saturating_sub(4)..]
    }

    pub fn brand(&self) -> &'static str {
        brand(&self.number)
    }
}

/// The last four characters of any text (a gateway's card mask, an API key), counted in
/// characters so outside input cannot split one.
pub fn last4_of(text: &str) -> String {
    let skip = text.chars().count().saturating_sub(4);
    text.chars().skip(skip).collect()
}

/// The Luhn check digit test.
pub fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b.wrapping_sub(b'0'));
        if d > 9 {
            return false;
        }
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// Stripe's brand name for a card number, from its leading digits.
pub fn brand(number: &str) -> &'static str {
    let p = |n: usize| {
        number
            .get(..n)
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(0)
    };
    match () {
        _ if number.starts_with('4') => "visa",
        _ if (51..=55).contains(&p(2)) || (2221..=2720).contains(&p(4)) => "mastercard",
        _ if p(2) == 34 || p(2) == 37 => "amex",
        _ if p(2) == 35 => "jcb",
        _ if p(2) == 36 || p(2) == 38 || (300..=305).contains(&p(3)) => "diners",
        _ if p(4) == 6011 || p(2) == 65 || (644..=649).contains(&p(3)) => "discover",
        _ if p(2) == 62 => "unionpay",
        // UK Maestro runs on Mastercard's network.
        _ if p(4) == 6759 || p(4) == 6767 => "mastercard",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::parse_form;

    fn take(s: &str) -> Result<CardInput, ApiError> {
        let mut p = Params::new(parse_form(s.as_bytes()).expect("form"));
        CardInput::take(&mut p, 2026, 11)
    }

    #[test]
    fn luhn_and_brands() {
        assert!(luhn("4242424242424242"));
        assert!(!luhn("4242424242424241"));
        assert!(luhn("4929421234600821"));
        assert_eq!(brand("4111111111111111"), "visa");
        assert_eq!(brand("5555555555554444"), "mastercard");
        assert_eq!(brand("2223003122003222"), "mastercard");
        assert_eq!(brand("374245455400001"), "amex");
        assert_eq!(brand("3540599999991047"), "jcb");
        assert_eq!(brand("36432685260294"), "diners");
    }

    #[test]
    fn checks_name_the_parameter() {
        let ok = take(
            "card[number]=4242+4242+4242+4242&card[expMonth]=12&card[expYear]=2030&card[cvc]=123",
        )
        .expect("valid");
        assert_eq!(ok.last4(), "4242");
        assert!(
            !format!("{ok:?}").contains("42424242"),
            "Debug masks the number"
        );
        let e = take("card[number]=4242424242424241&card[exp_month]=12&card[exp_year]=2030")
            .expect_err("luhn");
        assert_eq!(
            (e.status, e.code, e.param.as_deref()),
            (402, Some("incorrect_number"), Some("card[number]"))
        );
        let e = take("card[number]=4242424242424242&card[exp_month]=13&card[exp_year]=2030")
            .expect_err("month");
        assert_eq!(e.param.as_deref(), Some("card[exp_month]"));
        let e = take("card[number]=4242424242424242&card[exp_month]=10&card[exp_year]=2026")
            .expect_err("past");
        assert_eq!(e.param.as_deref(), Some("card[exp_year]"));
        let e =
            take("card[number]=4242424242424242&card[exp_month]=10&card[exp_year]=30&card[cvc]=12")
                .expect_err("cvc");
        assert_eq!(e.param.as_deref(), Some("card[cvc]"));
        let e = take("card[number]=4242424242424242&card[exp_year]=2030").expect_err("missing");
        assert_eq!(e.param.as_deref(), Some("card[exp_month]"));
        assert_eq!(
            take("x=1").expect_err("no card").param.as_deref(),
            Some("card")
        );
    }
}
