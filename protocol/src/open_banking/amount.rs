//! The wire's spellings of money and accounts.
//!
//! Amounts travel as decimal strings (`^\d{1,13}$` or `^\d{1,13}\.\d{1,5}$`) and we hold pence
//! (`i64`): a float never touches either. A UK account travels as one 14-digit SCAN
//! identification (6-digit sort code then 8-digit account number, no dashes).

/// Why an amount cannot cross the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("an amount must be positive")]
    NotPositive,
    #[error("an amount is digits, optionally a point and 1 to 5 more digits")]
    Malformed,
    #[error("an amount in pounds has no fraction of a penny")]
    FractionOfPenny,
    #[error("the amount is too large")]
    TooLarge,
}

/// Pence as the wire's decimal string with 2 places: `245000` → `"2450.00"`.
pub fn minor_to_amount(pence: i64) -> Result<String, AmountError> {
    if pence <= 0 {
        return Err(AmountError::NotPositive);
    }
    let pounds = pence / 100;
    if pounds >= 10_i64.pow(13) {
        return Err(AmountError::TooLarge);
    }
    Ok(format!("{pounds}.{:02}", pence % 100))
}

/// The wire's decimal string as pence: `"2450.00"` → `245000`, `"7"` → `700`, `"1.5"` → `150`.
/// Digits past the second decimal place must be zeros.
pub fn amount_to_minor(amount: &str) -> Result<i64, AmountError> {
    let (whole, fraction) = match amount.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (amount, None),
    };
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(whole, 13) || fraction.is_some_and(|f| !digits(f, 5)) {
        return Err(AmountError::Malformed);
    }
    let fraction = fraction.unwrap_or("");
    if fraction.bytes().skip(2).any(|b| b != b'0') {
        return Err(AmountError::FractionOfPenny);
    }
    let pounds: i64 = whole.parse().map_err(|_| AmountError::Malformed)?;
    let mut pence_text: String = fraction.chars().take(2).collect();
    while pence_text.len() < 2 {
        pence_text.push('0');
    }
    let pence: i64 = pence_text.parse().map_err(|_| AmountError::Malformed)?;
    let total = pounds
        .checked_mul(100)
        .and_then(|p| p.checked_add(pence))
        .ok_or(AmountError::TooLarge)?;
    if total == 0 {
        return Err(AmountError::NotPositive);
    }
    Ok(total)
}

/// Why a sort code and account number are not a SCAN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("a sort code is 6 digits (dashes or spaces allowed between pairs)")]
    SortCode,
    #[error("an account number is 8 digits")]
    AccountNumber,
    #[error("a SCAN identification is 14 digits")]
    Identification,
}

/// Sort code (`04-05-12` or `040512`) and account number (8 digits) as a 14-digit SCAN.
pub fn scan(sort_code: &str, account_number: &str) -> Result<String, ScanError> {
    let sort: String = sort_code
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .collect();
    if sort.len() != 6 || !sort.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScanError::SortCode);
    }
    if account_number.len() != 8 || !account_number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScanError::AccountNumber);
    }
    Ok(format!("{sort}{account_number}"))
}

/// A 14-digit SCAN as (sort code `04-05-12`, account number).
pub fn split_scan(identification: &str) -> Result<(String, String), ScanError> {
    if identification.len() != 14 || !identification.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScanError::Identification);
    }
    let (sort, account) = identification.split_at(6);
    let sort = format!("{}-{}-{}", &sort[0..2], &sort[2..4], &sort[4..6]);
    Ok((sort, account.to_owned()))
}

/// Pence as a payer reads pounds: `245000` → `£2,450.00`.
pub fn format_gbp(pence: i64) -> String {
    crate::clock_text::money(pence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pence_become_the_wire_decimal() {
        for (pence, expected) in [
            (245000, Ok("2450.00")),
            (1, Ok("0.01")),
            (12540, Ok("125.40")),
            (0, Err(AmountError::NotPositive)),
            (-5, Err(AmountError::NotPositive)),
            (i64::MAX, Err(AmountError::TooLarge)),
        ] {
            assert_eq!(
                minor_to_amount(pence),
                expected.map(str::to_owned),
                "{pence}"
            );
        }
    }

    #[test]
    fn the_wire_decimal_becomes_pence() {
        for (text, expected) in [
            ("2450.00", Ok(245000)),
            ("7", Ok(700)),
            ("1.5", Ok(150)),
            ("0.01", Ok(1)),
            ("3.10000", Ok(310)),
            ("3.101", Err(AmountError::FractionOfPenny)),
            ("3.123456", Err(AmountError::Malformed)),
            ("", Err(AmountError::Malformed)),
            (".50", Err(AmountError::Malformed)),
            ("5.", Err(AmountError::Malformed)),
            ("-5.00", Err(AmountError::Malformed)),
            ("1,000.00", Err(AmountError::Malformed)),
            ("12345678901234", Err(AmountError::Malformed)),
            ("0.00", Err(AmountError::NotPositive)),
            ("1e3", Err(AmountError::Malformed)),
        ] {
            assert_eq!(amount_to_minor(text), expected, "{text:?}");
        }
    }

    #[test]
    fn sort_code_and_account_become_a_scan_and_back() {
        for (sort, account, expected) in [
            ("04-05-12", "70031942", Ok("04051270031942")),
            ("040512", "70031942", Ok("04051270031942")),
            ("04 05 12", "70031942", Ok("04051270031942")),
            ("04-05-1", "70031942", Err(ScanError::SortCode)),
            ("04-05-1a", "70031942", Err(ScanError::SortCode)),
            ("04-05-12", "7003194", Err(ScanError::AccountNumber)),
            ("04-05-12", "700319420", Err(ScanError::AccountNumber)),
        ] {
            let got = scan(sort, account);
            assert_eq!(got, expected.map(str::to_owned), "{sort} {account}");
            if let Ok(id) = got {
                assert_eq!(
                    split_scan(&id),
                    Ok(("04-05-12".to_owned(), account.to_owned()))
                );
            }
        }
        assert_eq!(split_scan("0405127003194"), Err(ScanError::Identification));
        assert_eq!(split_scan("04051270031a42"), Err(ScanError::Identification));
    }

    #[test]
    fn pounds_read_with_thousands_separators() {
        for (pence, expected) in [
            (245000, "£2,450.00"),
            (1, "£0.01"),
            (100_000_000, "£1,000,000.00"),
            (99_999, "£999.99"),
        ] {
            assert_eq!(format_gbp(pence), expected);
        }
    }
}
