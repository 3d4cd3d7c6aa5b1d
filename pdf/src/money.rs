//! Amounts as a UK reader expects them: symbol first, comma thousands, two decimals.
//!
//! Amounts arrive in the currency's minor unit, as in the Stripe API. Most currencies have two
//! decimals, but Stripe treats a few as zero-decimal (`jpy`: 500 means ¥500) and a few as
//! three-decimal (`kwd`), so the exponent comes from those lists rather than being assumed.
//! Currencies without a well-known symbol print their code (`CHF 12.50`), which is never
//! ambiguous.

/// Currencies whose minor unit is the major unit (Stripe's zero-decimal list).
const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];

/// Currencies with three decimals (Stripe's three-decimal list).
const THREE_DECIMAL: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];

/// Formats an amount in minor units: `format_money(123456, "gbp")` is `£1,234.56`, and
/// negative amounts (credits, refunds) put the sign first: `-£1.00`.
pub fn format_money(pence: i64, currency: &str) -> String {
    let code = currency.to_ascii_lowercase();
    let decimals: u32 = if ZERO_DECIMAL.contains(&code.as_str()) {
        0
    } else if THREE_DECIMAL.contains(&code.as_str()) {
        3
    } else {
        2
    };
    let prefix = match code.as_str() {
        "gbp" => "£".to_owned(),
        "eur" => "€".to_owned(),
        "usd" => "$".to_owned(),
        "jpy" => "¥".to_owned(),
        _ => format!("{} ", code.to_ascii_uppercase()),
    };
    let sign = if pence < 0 { "-" } else { "" };
    // unsigned_abs: i64::MIN has no positive i64 counterpart.
    let magnitude = pence.unsigned_abs();
    let scale = 10u64.pow(decimals);
    let major = group_thousands(magnitude / scale);
    if decimals == 0 {
        format!("{sign}{prefix}{major}")
    } else {
        let minor = magnitude % scale;
        let width = decimals as usize;
        format!("{sign}{prefix}{major}.{minor:0width$}")
    }
}

/// `1234567` as `1,234,567`; also used for quantities.
pub(crate) fn group_thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A signed count with thousands separators, for the quantity column.
pub(crate) fn format_quantity(quantity: i64) -> String {
    let sign = if quantity < 0 { "-" } else { "" };
    format!("{sign}{}", group_thousands(quantity.unsigned_abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pounds_and_pence() {
        assert_eq!(format_money(0, "gbp"), "£0.00");
        assert_eq!(format_money(5, "gbp"), "£0.05");
        assert_eq!(format_money(123456, "gbp"), "£1,234.56");
        assert_eq!(format_money(100000000, "gbp"), "£1,000,000.00");
    }

    #[test]
    fn negative_amounts_put_the_sign_before_the_symbol() {
        assert_eq!(format_money(-100, "gbp"), "-£1.00");
        assert_eq!(format_money(-5, "gbp"), "-£0.05");
    }

    #[test]
    fn extremes_do_not_overflow() {
        assert_eq!(format_money(i64::MIN, "gbp"), "-£92,233,720,368,547,758.08");
        assert_eq!(format_money(i64::MAX, "gbp"), "£92,233,720,368,547,758.07");
    }

    #[test]
    fn currency_code_is_case_insensitive() {
        assert_eq!(format_money(2500, "GBP"), "£25.00");
    }

    #[test]
    fn other_currencies() {
        assert_eq!(format_money(1050, "eur"), "€10.50");
        assert_eq!(format_money(1050, "usd"), "$10.50");
        assert_eq!(format_money(1250, "chf"), "CHF 12.50");
        assert_eq!(format_money(1500, "jpy"), "¥1,500");
        assert_eq!(format_money(1500, "kwd"), "KWD 1.500");
    }

    #[test]
    fn quantities_are_grouped() {
        assert_eq!(format_quantity(1), "1");
        assert_eq!(format_quantity(1000), "1,000");
        assert_eq!(format_quantity(-12345), "-12,345");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(100000), "100,000");
    }
}
