//! Dates and money as people read them on invoices and pages: `21 November 2026` (UTC),
//! `£1,234.56`.

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `21 November 2026` for a Unix time.
pub fn date(t: i64) -> String {
    let (y, m, d) = crate::billing::civil(t.div_euclid(86_400));
    format!("{d} {} {y}", MONTHS[(m - 1) as usize])
}

/// `£1,234.56` for pence (`-£1.00` for a credit).
pub fn money(pence: i64) -> String {
    let sign = if pence < 0 { "-" } else { "" };
    let p = pence.unsigned_abs();
    let pounds = (p / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in pounds.chars().enumerate() {
        if i > 0 && (pounds.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}£{grouped}.{:02}", p % 100)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_dates() {
        assert_eq!(super::date(1_795_261_329), "21 November 2026");
        assert_eq!(super::date(951_868_799), "29 February 2000");
        assert_eq!(super::money(123_456), "£1,234.56");
        assert_eq!(super::money(-100), "-£1.00");
        assert_eq!(super::money(5), "£0.05");
    }
}
