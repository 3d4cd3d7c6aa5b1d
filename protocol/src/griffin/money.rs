//! Money as Griffin writes it: `{"currency": "GBP", "value": "1250.00"}`.
//!
//! Values are decimal strings and we hold pence (`i64`); a float never touches either. Unlike
//! Open Banking amounts, a Griffin value may be zero (an empty account's balance) and a
//! balance may be negative, so the conversions here take any sign.

use serde::{Deserialize, Serialize};

/// An amount of money on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Money {
    pub currency: String,
    pub value: String,
}

/// Why a value cannot be read as pence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("a money value is digits, optionally a point and 1 or 2 more digits")]
    Malformed,
    #[error("the money value is too large")]
    TooLarge,
    #[error("the currency {0:?} is not GBP")]
    Currency(String),
}

/// Pence as the wire's decimal string: `125040` → `"1250.40"`, `-5` → `"-0.05"`.
pub fn pence_to_value(pence: i64) -> String {
    let sign = if pence < 0 { "-" } else { "" };
    let abs = pence.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// The wire's decimal string as pence: `"1250.40"` → `125040`, `"7"` → `700`, `"-0.5"` → `-50`.
pub fn value_to_pence(value: &str) -> Result<i64, MoneyError> {
    let (negative, unsigned) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((w, f)) => (w, f),
        None => (unsigned, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > 2
        || (unsigned.contains('.') && fraction.is_empty())
    {
        return Err(MoneyError::Malformed);
    }
    if whole.len() > 15 {
        return Err(MoneyError::TooLarge);
    }
    let pounds: i64 = whole.parse().map_err(|_| MoneyError::Malformed)?;
    let mut pence_text = fraction.to_owned();
    while pence_text.len() < 2 {
        pence_text.push('0');
    }
    let pence: i64 = pence_text.parse().map_err(|_| MoneyError::Malformed)?;
    let total = pounds
        .checked_mul(100)
        .and_then(|p| p.checked_add(pence))
        .ok_or(MoneyError::TooLarge)?;
    Ok(if negative { -total } else { total })
}

impl Money {
    /// Pence in GBP.
    pub fn gbp(pence: i64) -> Self {
        Self {
            currency: super::GBP.to_owned(),
            value: pence_to_value(pence),
        }
    }

    /// The value in pence; refuses anything but GBP, the only currency Griffin holds.
    pub fn pence(&self) -> Result<i64, MoneyError> {
        if self.currency != super::GBP {
            return Err(MoneyError::Currency(self.currency.clone()));
        }
        value_to_pence(&self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pence_become_the_wire_value() {
        for (pence, expected) in [
            (125040, "1250.40"),
            (1, "0.01"),
            (0, "0.00"),
            (100_000_000, "1000000.00"),
            (-5, "-0.05"),
            (-12345, "-123.45"),
        ] {
            assert_eq!(pence_to_value(pence), expected, "{pence}");
            assert_eq!(value_to_pence(expected), Ok(pence), "{expected}");
        }
    }

    #[test]
    fn the_wire_value_becomes_pence() {
        for (text, expected) in [
            ("1250.40", Ok(125040)),
            ("7", Ok(700)),
            ("1.5", Ok(150)),
            ("0.00", Ok(0)),
            ("-0.5", Ok(-50)),
            ("1.234", Err(MoneyError::Malformed)),
            ("", Err(MoneyError::Malformed)),
            ("-", Err(MoneyError::Malformed)),
            (".50", Err(MoneyError::Malformed)),
            ("5.", Err(MoneyError::Malformed)),
            ("1,000.00", Err(MoneyError::Malformed)),
            ("1e3", Err(MoneyError::Malformed)),
            ("+5.00", Err(MoneyError::Malformed)),
            ("1234567890123456", Err(MoneyError::TooLarge)),
        ] {
            assert_eq!(value_to_pence(text), expected, "{text:?}");
        }
    }

    #[test]
    fn money_is_gbp_only() {
        let m = Money::gbp(12540);
        assert_eq!(
            serde_json::to_value(&m).ok(),
            Some(serde_json::json!({"currency": "GBP", "value": "125.40"}))
        );
        assert_eq!(m.pence(), Ok(12540));
        let eur = Money {
            currency: "EUR".into(),
            value: "1.00".into(),
        };
        assert_eq!(eur.pence(), Err(MoneyError::Currency("EUR".into())));
    }
}
