//! An invoice's totals: each line's tax per rate (the line's own rates, or the invoice's
//! defaults when it has none), rounded per line and rate half away from zero (UK VAT rounds
//! per line); inclusive tax is part of the line's amount, exclusive tax is added on top. The
//! amount due is the total, never below nothing (a credit larger than the charges leaves 0 to
//! pay), less what was paid.

use calmony_protocol::billing::{Invoice, TaxAmount, TaxRate, line_tax};

/// A tax rate as the totals need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate<'a> {
    pub id: &'a str,
    /// Parts per million (20% = 200 000).
    pub ppm: i64,
    pub inclusive: bool,
}

impl<'a> From<&'a TaxRate> for Rate<'a> {
    fn from(r: &'a TaxRate) -> Self {
        Rate {
            id: &r.id,
            ppm: r.ppm(),
            inclusive: r.inclusive,
        }
    }
}

/// One line: its amount and its own tax rates (by id).
#[derive(Debug, Clone, Copy)]
pub struct LineInput<'a> {
    pub amount: i64,
    pub tax_rates: &'a [String],
}

/// Everything the totals decide.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub subtotal: i64,
    pub subtotal_excluding_tax: i64,
    pub tax: i64,
    pub total: i64,
    pub total_excluding_tax: i64,
    pub amount_due: i64,
    pub amount_remaining: i64,
    /// Each line's tax, by line.
    pub line_taxes: Vec<Vec<TaxAmount>>,
    /// The tax per rate over the invoice, in the order the rates first appear.
    pub total_taxes: Vec<TaxAmount>,
}

/// The totals of `lines`, taxed at `rates` (rates not among them are skipped: a rate deleted
/// since it was set taxes nothing), with `amount_paid` already paid.
pub fn totals(
    lines: &[LineInput<'_>],
    default_rates: &[String],
    rates: &[Rate<'_>],
    amount_paid: i64,
) -> Totals {
    let find = |id: &str| rates.iter().find(|r| r.id == id);
    let mut out = Totals::default();
    let mut exclusive = 0;
    for line in lines {
        let ids = if line.tax_rates.is_empty() {
            default_rates
        } else {
            line.tax_rates
        };
        let mut taxes = Vec::new();
        for id in ids {
            let Some(rate) = find(id) else { continue };
            let t = line_tax(line.amount, rate.ppm, rate.inclusive);
            let taxable = if rate.inclusive {
                line.amount - t
            } else {
                line.amount
            };
            taxes.push(TaxAmount {
                amount: t,
                inclusive: rate.inclusive,
                tax_rate: id.clone(),
                taxable_amount: taxable,
            });
            out.tax += t;
            if !rate.inclusive {
                exclusive += t;
            }
            match out.total_taxes.iter_mut().find(|x| x.tax_rate == *id) {
                Some(x) => {
                    x.amount += t;
                    x.taxable_amount += taxable;
                }
                None => out.total_taxes.push(TaxAmount {
                    amount: t,
                    inclusive: rate.inclusive,
                    tax_rate: id.clone(),
                    taxable_amount: taxable,
                }),
            }
        }
        out.line_taxes.push(taxes);
        out.subtotal += line.amount;
    }
    let inclusive_tax = out.tax - exclusive;
    out.subtotal_excluding_tax = out.subtotal - inclusive_tax;
    out.total = out.subtotal + exclusive;
    out.total_excluding_tax = out.total - out.tax;
    out.amount_due = out.total.max(0);
    out.amount_remaining = (out.amount_due - amount_paid).max(0);
    out
}

/// Fix `inv`'s totals (and each line's tax) from its lines and `rates`.
pub fn apply(inv: &mut Invoice, rates: &[TaxRate]) {
    let rates: Vec<Rate<'_>> = rates.iter().map(Rate::from).collect();
    let inputs: Vec<LineInput<'_>> = inv
        .lines
        .data
        .iter()
        .map(|l| LineInput {
            amount: l.amount,
            tax_rates: &l.tax_rates,
        })
        .collect();
    let t = totals(&inputs, &inv.default_tax_rates, &rates, inv.amount_paid);
    for (line, taxes) in inv.lines.data.iter_mut().zip(t.line_taxes) {
        line.tax_amounts = taxes;
    }
    inv.subtotal = t.subtotal;
    inv.subtotal_excluding_tax = t.subtotal_excluding_tax;
    inv.tax = t.tax;
    inv.total = t.total;
    inv.total_excluding_tax = t.total_excluding_tax;
    inv.total_taxes = t.total_taxes;
    inv.lines.total_count = inv.lines.data.len();
    inv.amount_due = t.amount_due;
    inv.amount_remaining = t.amount_remaining;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_totals_table() {
        let rates = [
            Rate {
                id: "vat20",
                ppm: 200_000,
                inclusive: false,
            },
            Rate {
                id: "vat20inc",
                ppm: 200_000,
                inclusive: true,
            },
            Rate {
                id: "vat5",
                ppm: 50_000,
                inclusive: false,
            },
        ];
        // (lines as (amount, rates), default rates, paid,
        //  (subtotal, subtotal_excluding_tax, tax, total, total_excluding_tax, due, remaining))
        type Case = (Vec<(i64, Vec<String>)>, Vec<String>, i64, [i64; 7]);
        let cases: [Case; 11] = [
            // No tax.
            (
                vec![(1000, ids(&[])), (500, ids(&[]))],
                ids(&[]),
                0,
                [1500, 1500, 0, 1500, 1500, 1500, 1500],
            ),
            // Exclusive VAT is added on top.
            (
                vec![(2500, ids(&["vat20"]))],
                ids(&[]),
                0,
                [2500, 2500, 500, 3000, 2500, 3000, 3000],
            ),
            // Inclusive VAT is inside the amount.
            (
                vec![(3000, ids(&["vat20inc"]))],
                ids(&[]),
                0,
                [3000, 2500, 500, 3000, 2500, 3000, 3000],
            ),
            (
                vec![(1000, ids(&["vat20inc"]))],
                ids(&[]),
                0,
                [1000, 833, 167, 1000, 833, 1000, 1000],
            ),
            // Both on one invoice.
            (
                vec![(1200, ids(&["vat20inc"])), (1000, ids(&["vat20"]))],
                ids(&[]),
                0,
                [2200, 2000, 400, 2400, 2000, 2400, 2400],
            ),
            // Rounded per line: 0.6p twice is 1p twice, not 1.2p once.
            (
                vec![(3, ids(&["vat20"])), (3, ids(&["vat20"]))],
                ids(&[]),
                0,
                [6, 6, 2, 8, 6, 8, 8],
            ),
            // The invoice's default rates tax lines without their own; a line's own win.
            (
                vec![(1000, ids(&[]))],
                ids(&["vat20"]),
                0,
                [1000, 1000, 200, 1200, 1000, 1200, 1200],
            ),
            (
                vec![(1000, ids(&["vat5"]))],
                ids(&["vat20"]),
                0,
                [1000, 1000, 50, 1050, 1000, 1050, 1050],
            ),
            // A rate that no longer exists taxes nothing.
            (
                vec![(1000, ids(&["txr_gone"]))],
                ids(&[]),
                0,
                [1000, 1000, 0, 1000, 1000, 1000, 1000],
            ),
            // A credit larger than the charges: nothing due, never less.
            (
                vec![(-1500, ids(&[])), (1000, ids(&[]))],
                ids(&[]),
                0,
                [-500, -500, 0, -500, -500, 0, 0],
            ),
            // Part paid: the rest remains.
            (
                vec![(1000, ids(&[]))],
                ids(&[]),
                400,
                [1000, 1000, 0, 1000, 1000, 1000, 600],
            ),
        ];
        for (lines, defaults, paid, expected) in cases {
            let inputs: Vec<LineInput<'_>> = lines
                .iter()
                .map(|(amount, tax_rates)| LineInput {
                    amount: *amount,
                    tax_rates,
                })
                .collect();
            let t = totals(&inputs, &defaults, &rates, paid);
            assert_eq!(
                [
                    t.subtotal,
                    t.subtotal_excluding_tax,
                    t.tax,
                    t.total,
                    t.total_excluding_tax,
                    t.amount_due,
                    t.amount_remaining
                ],
                expected,
                "{lines:?} defaults {defaults:?} paid {paid}"
            );
        }
    }

    #[test]
    fn tax_is_summed_per_rate_across_lines() {
        let rates = [
            Rate {
                id: "vat20",
                ppm: 200_000,
                inclusive: false,
            },
            Rate {
                id: "vat5",
                ppm: 50_000,
                inclusive: false,
            },
        ];
        let (a, b, c) = (ids(&["vat20"]), ids(&["vat5"]), ids(&["vat20"]));
        let lines = [
            LineInput {
                amount: 1000,
                tax_rates: &a,
            },
            LineInput {
                amount: 999,
                tax_rates: &b,
            },
            LineInput {
                amount: 500,
                tax_rates: &c,
            },
        ];
        let t = totals(&lines, &[], &rates, 0);
        let per_rate: Vec<(&str, i64, i64)> = t
            .total_taxes
            .iter()
            .map(|x| (x.tax_rate.as_str(), x.amount, x.taxable_amount))
            .collect();
        assert_eq!(per_rate, [("vat20", 300, 1500), ("vat5", 50, 999)]);
        let per_line: Vec<i64> = t.line_taxes.iter().map(|l| l[0].amount).collect();
        assert_eq!(per_line, [200, 50, 100]);
    }
}
