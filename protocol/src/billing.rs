//! Billing resources: products, prices, tax rates, invoices (with their lines and totals),
//! invoice items, subscriptions and test clocks, in Stripe's shapes.
//!
//! ## Totals and rounding (documented for merchants)
//! Amounts are integer pence. A line's amount is `unit_amount × quantity`. Each tax rate is
//! applied per line: **exclusive** tax is `line × rate`, rounded half away from zero to the
//! penny, and added on top; **inclusive** tax is the part of the line already inside it,
//! `line − round(line ÷ (1 + rate))`. Percentages keep four decimals (rates are computed in
//! parts per million, so no float touches money). `subtotal` is the sum of line amounts,
//! `tax` the sum of all tax, `total` = `subtotal` + exclusive tax.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use crate::metadata::Metadata;
use crate::params::{Field, Params};

pub const PRODUCT_PREFIX: &str = "prod";
pub const PRICE_PREFIX: &str = "price";
pub const TAX_RATE_PREFIX: &str = "txr";
pub const INVOICE_PREFIX: &str = "in";
pub const LINE_PREFIX: &str = "il";
pub const INVOICE_ITEM_PREFIX: &str = "ii";
pub const SUBSCRIPTION_PREFIX: &str = "sub";
pub const SUBSCRIPTION_ITEM_PREFIX: &str = "si";
pub const TEST_CLOCK_PREFIX: &str = "clock";

/// The placeholder an invoice carries until finalization gives it its number inside the
/// commit script (so numbers are gap-free: taken only by a commit that happens).
pub const NUMBER_PLACEHOLDER: &str = "CPINVOICENUMBERPLACEHOLDER";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Product {
    pub id: String,
    pub object: String,
    pub active: bool,
    pub created: i64,
    pub default_price: Option<String>,
    pub description: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    pub name: String,
    pub unit_label: Option<String>,
    pub updated: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Recurring {
    pub interval: String,
    pub interval_count: i64,
    pub usage_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Price {
    pub id: String,
    pub object: String,
    pub active: bool,
    pub billing_scheme: String,
    pub created: i64,
    pub currency: String,
    pub livemode: bool,
    pub lookup_key: Option<String>,
    pub metadata: Metadata,
    pub nickname: Option<String>,
    pub product: String,
    pub recurring: Option<Recurring>,
    pub tax_behavior: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub unit_amount: i64,
    pub unit_amount_decimal: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaxRate {
    pub id: String,
    pub object: String,
    pub active: bool,
    pub country: Option<String>,
    pub created: i64,
    pub description: Option<String>,
    pub display_name: String,
    pub inclusive: bool,
    pub jurisdiction: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    pub percentage: f64,
}

impl TaxRate {
    /// The rate in parts per million (20% = 200 000).
    pub fn ppm(&self) -> i64 {
        (self.percentage * 10_000.0).round() as i64
    }
}

/// Divide rounding half away from zero.
fn div_round(n: i128, d: i128) -> i128 {
    if d == 0 {
        return 0;
    }
    let q = n / d;
    let r = n % d;
    if 2 * r.abs() >= d.abs() {
        q + n.signum() * d.signum()
    } else {
        q
    }
}

/// Tax on one line for one rate (see the module docs).
pub fn line_tax(amount: i64, rate_ppm: i64, inclusive: bool) -> i64 {
    let (a, r) = (i128::from(amount), i128::from(rate_ppm));
    let tax = if inclusive {
        a - div_round(a * 1_000_000, 1_000_000 + r)
    } else {
        div_round(a * r, 1_000_000)
    };
    tax as i64
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaxAmount {
    pub amount: i64,
    pub inclusive: bool,
    pub tax_rate: String,
    pub taxable_amount: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Period {
    pub start: i64,
    pub end: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InvoiceLine {
    pub id: String,
    pub object: String,
    pub amount: i64,
    pub currency: String,
    pub description: Option<String>,
    pub invoice: Option<String>,
    pub invoice_item: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    pub period: Period,
    pub price: Option<String>,
    pub pricing: Option<Value>,
    pub proration: bool,
    pub quantity: i64,
    pub subscription: Option<String>,
    pub tax_amounts: Vec<TaxAmount>,
    pub tax_rates: Vec<String>,
    /// The unit amount the line was priced at (for the PDF's unit column).
    pub unit_amount: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LineList {
    pub object: String,
    pub data: Vec<InvoiceLine>,
    pub has_more: bool,
    pub total_count: usize,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
pub struct StatusTransitions {
    pub finalized_at: Option<i64>,
    pub marked_uncollectible_at: Option<i64>,
    pub paid_at: Option<i64>,
    pub voided_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Invoice {
    pub id: String,
    pub object: String,
    pub account_country: String,
    pub account_name: Option<String>,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub amount_remaining: i64,
    pub attempt_count: i64,
    pub attempted: bool,
    pub auto_advance: bool,
    pub billing_reason: String,
    pub collection_method: String,
    pub created: i64,
    pub currency: String,
    pub customer: String,
    pub customer_email: Option<String>,
    pub customer_name: Option<String>,
    pub default_payment_method: Option<String>,
    pub default_tax_rates: Vec<String>,
    pub description: Option<String>,
    pub due_date: Option<i64>,
    pub effective_at: Option<i64>,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    pub lines: LineList,
    pub livemode: bool,
    pub metadata: Metadata,
    pub next_payment_attempt: Option<i64>,
    pub number: Option<String>,
    pub paid: bool,
    pub parent: Option<Value>,
    pub payment_intent: Option<String>,
    pub period_end: i64,
    pub period_start: i64,
    pub status: String,
    pub status_transitions: StatusTransitions,
    pub subscription: Option<String>,
    pub subtotal: i64,
    pub subtotal_excluding_tax: i64,
    pub tax: i64,
    pub total: i64,
    pub total_excluding_tax: i64,
    pub total_taxes: Vec<TaxAmount>,
    pub test_clock: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceItem {
    pub id: String,
    pub object: String,
    pub amount: i64,
    pub currency: String,
    pub customer: String,
    pub date: i64,
    pub description: Option<String>,
    pub invoice: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    pub period: Period,
    pub price: Option<String>,
    pub proration: bool,
    pub quantity: i64,
    pub subscription: Option<String>,
    pub tax_rates: Vec<String>,
    pub unit_amount: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SubscriptionItem {
    pub id: String,
    pub object: String,
    pub created: i64,
    pub current_period_end: i64,
    pub current_period_start: i64,
    pub metadata: Metadata,
    pub price: Price,
    pub quantity: i64,
    pub subscription: String,
    pub tax_rates: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ItemList {
    pub object: String,
    pub data: Vec<SubscriptionItem>,
    pub has_more: bool,
    pub total_count: usize,
    pub url: String,
}

/// The feedback a customer may give on cancelling (Stripe's `cancellation_details.feedback`).
pub const CANCELLATION_FEEDBACK: [&str; 8] = [
    "too_expensive",
    "missing_features",
    "switched_service",
    "unused",
    "customer_service",
    "too_complex",
    "low_quality",
    "other",
];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CancellationDetails {
    pub comment: Option<String>,
    pub feedback: Option<String>,
    /// `cancellation_requested` once a cancellation was asked for.
    pub reason: Option<String>,
}

impl CancellationDetails {
    /// `cancellation_details[comment]` and `[feedback]`, as a cancellation request gives them.
    pub fn take(p: &mut Params) -> Result<Option<Self>, ApiError> {
        let crate::params::Field::Set(mut d) = p.object(&["cancellation_details"])? else {
            return Ok(None);
        };
        let comment = d.string_max(&["comment"], 5000)?.into_option();
        let feedback = d
            .one_of(&["feedback"], &CANCELLATION_FEEDBACK)?
            .into_option();
        d.finish()?;
        Ok(Some(CancellationDetails {
            comment,
            feedback,
            reason: Some("cancellation_requested".into()),
        }))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Subscription {
    pub id: String,
    pub object: String,
    pub billing_cycle_anchor: i64,
    pub cancel_at: Option<i64>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<i64>,
    /// Why it was cancelled (or is to be): Stripe's `cancellation_details`, kept from
    /// `cancellation_details[comment|feedback]` and from the customer portal's reason.
    #[serde(default)]
    pub cancellation_details: CancellationDetails,
    pub collection_method: String,
    pub created: i64,
    pub currency: String,
    pub current_period_end: i64,
    pub current_period_start: i64,
    pub customer: String,
    pub default_payment_method: Option<String>,
    pub default_tax_rates: Vec<String>,
    pub description: Option<String>,
    pub ended_at: Option<i64>,
    pub items: ItemList,
    pub latest_invoice: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    pub start_date: i64,
    pub status: String,
    pub test_clock: Option<String>,
    pub trial_end: Option<i64>,
    pub trial_start: Option<i64>,
    #[serde(rename = "customerId")]
    pub customer_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TestClock {
    pub id: String,
    pub object: String,
    pub created: i64,
    pub deletes_after: i64,
    pub frozen_time: i64,
    pub livemode: bool,
    pub name: Option<String>,
    pub status: String,
}

/// Add `count` months or years to a Unix time, keeping the day of month where it exists
/// (31 January + 1 month = 28/29 February, as Stripe bills month ends).
pub fn add_interval(t: i64, interval: &str, count: i64) -> i64 {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    let months = if interval == "year" {
        12 * count
    } else {
        count
    };
    let total = y * 12 + (m - 1) + months;
    let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    let nd = d.min(days_in_month(ny, nm));
    days_from_civil(ny, nm, nd) * 86_400 + secs
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// `(year, month, day)` of the day `z` days after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`): the one calendar conversion the workspace uses.
pub fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of `(year, month, day)`: the inverse of [`civil`].
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Read `recurring[interval]` and `recurring[interval_count]`.
pub fn take_recurring(p: &mut Params) -> Result<Option<Recurring>, ApiError> {
    let Field::Set(mut r) = p.object(&["recurring"])? else {
        return Ok(None);
    };
    let interval = r
        .one_of(&["interval"], &["month", "year"])?
        .into_option()
        .ok_or_else(|| ApiError::missing_param(&r.name("interval")))?;
    let count = r
        .integer(&["interval_count", "intervalCount"], 1, 12)?
        .into_option()
        .unwrap_or(1);
    // Metered prices (usage reported during the period) are not billed: only `licensed`.
    r.one_of(&["usage_type"], &["licensed"])?;
    r.finish()?;
    Ok(Some(Recurring {
        interval,
        interval_count: count,
        usage_type: "licensed".into(),
    }))
}

/// Read `currency` (GBP only), required.
pub fn take_gbp(p: &mut Params) -> Result<String, ApiError> {
    match p.string_max(&["currency"], 3)? {
        Field::Set(c) if c.eq_ignore_ascii_case("gbp") => Ok("gbp".into()),
        Field::Set(c) => Err(ApiError::invalid_param(
            "parameter_invalid_value",
            &p.name("currency"),
            format!("Invalid currency: {c}. Calmony Pay supports gbp only."),
        )),
        _ => Err(ApiError::missing_param(&p.name("currency"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uk_vat_rounding() {
        // 20% on £25.00 exclusive = £5.00; on £0.03 = 0.6p -> 1p; inclusive £30.00 holds £5.00.
        assert_eq!(line_tax(2500, 200_000, false), 500);
        assert_eq!(line_tax(3, 200_000, false), 1);
        assert_eq!(line_tax(2, 200_000, false), 0);
        assert_eq!(line_tax(3000, 200_000, true), 500);
        assert_eq!(line_tax(1000, 200_000, true), 167);
        assert_eq!(
            line_tax(-2500, 200_000, false),
            -500,
            "credits round symmetrically"
        );
        assert_eq!(line_tax(999, 50_000, false), 50, "5% of 999 = 49.95 -> 50");
    }

    #[test]
    fn months_keep_their_day_or_clamp() {
        // 2026-01-31 00:00 UTC
        let jan31 = 1_769_817_600;
        assert_eq!(add_interval(jan31, "month", 1), 1_772_236_800, "2026-02-28");
        assert_eq!(add_interval(jan31, "month", 2), 1_774_915_200, "2026-03-31");
        assert_eq!(add_interval(jan31, "year", 1), 1_801_353_600, "2027-01-31");
        // 2024-02-29 + 1 year = 2025-02-28
        assert_eq!(add_interval(1_709_164_800, "year", 1), 1_740_700_800);
    }
}
