//! The line-items table: Description | Qty | Unit price | Tax | Amount.
//!
//! Numbers are right-aligned on fixed column edges so pence line up down the page. Each row
//! is prepared (description wrapped, amounts shrunk to their column) before any page is
//! drawn, because pagination needs every row's height. A description gets at most
//! [`MAX_DESCRIPTION_LINES`] lines, so one row can never be taller than a page. The tax
//! column shows the rate's label ("VAT 20%"): a UK VAT invoice must give each line's rate,
//! while the VAT amounts are totalled per rate under the table. A line taxed without a label
//! shows its tax amount instead, so no tax goes unexplained.

use crate::canvas::{Align, Canvas, Style, Weight};
use crate::fonts::Fonts;
use crate::layout::{INK, LEFT, RIGHT, RULE, SHADE};
use crate::model::{InvoiceDocument, Line};
use crate::money::{format_money, format_quantity};
use crate::text::{shrink_to_fit, truncate, wrap};

const PAD: f32 = 8.0;
const DESCRIPTION_X: f32 = LEFT + PAD;
const AMOUNT_RIGHT: f32 = RIGHT - PAD;
const TAX_RIGHT: f32 = AMOUNT_RIGHT - 84.0;
const UNIT_RIGHT: f32 = TAX_RIGHT - 72.0;
const QTY_RIGHT: f32 = UNIT_RIGHT - 84.0;
const DESCRIPTION_WIDTH: f32 = QTY_RIGHT - 44.0 - DESCRIPTION_X;
// Moving the number columns must leave descriptions room for a few words a line.
const _: () = assert!(DESCRIPTION_WIDTH > 180.0);
/// Room for a number: the column's width less a gap before the column to its left.
const MONEY_WIDTH: f32 = 84.0 - 12.0;
const TAX_WIDTH: f32 = 72.0 - 12.0;
const QTY_WIDTH: f32 = 44.0 - 8.0;

const MAX_DESCRIPTION_LINES: usize = 6;
/// Height of the column headings.
pub(crate) const HEAD_HEIGHT: f32 = 24.0;
const ROW_PAD: f32 = 7.0;
const LINE_STEP: f32 = 13.0;
const FIRST_BASELINE: f32 = ROW_PAD + 9.5;

const HEAD: Style = Style::new(Weight::Bold, 8.5, INK);
const BODY: Style = Style::new(Weight::Regular, 9.0, INK);
const NUMBER_SIZES: [f32; 3] = [9.0, 8.0, 7.0];

/// The right edge of the Amount column, which the totals line up with.
pub(crate) const AMOUNT_EDGE: f32 = AMOUNT_RIGHT;

/// One line item, laid out.
pub(crate) struct Row {
    description: Vec<String>,
    quantity: (String, f32),
    unit: (String, f32),
    tax: (String, f32),
    amount: (String, f32),
}

impl Row {
    fn prepare(line: &Line, currency: &str, fonts: &Fonts) -> Self {
        let regular = &fonts.regular;
        let description = wrap(
            regular,
            &line.description,
            BODY.size,
            DESCRIPTION_WIDTH,
            MAX_DESCRIPTION_LINES,
        );
        let number = |text: &str, width: f32| shrink_to_fit(regular, text, width, &NUMBER_SIZES);
        let label = line
            .tax_label
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty());
        let tax = match label {
            Some(label) => (truncate(regular, label, BODY.size, TAX_WIDTH), BODY.size),
            // Tax without a named rate: the amount is all there is to show.
            None if line.tax_amount != 0 => {
                number(&format_money(line.tax_amount, currency), TAX_WIDTH)
            }
            None => (String::new(), BODY.size),
        };
        Self {
            description,
            quantity: number(&format_quantity(line.quantity), QTY_WIDTH),
            unit: number(&format_money(line.unit_amount, currency), MONEY_WIDTH),
            tax,
            amount: number(&format_money(line.amount, currency), MONEY_WIDTH),
        }
    }

    pub(crate) fn height(&self) -> f32 {
        let lines = self.description.len().max(1);
        2.0 * ROW_PAD + LINE_STEP * lines as f32
    }
}

/// Lays out every line item of the invoice.
pub(crate) fn prepare_rows(doc: &InvoiceDocument, fonts: &Fonts) -> Vec<Row> {
    let rows = doc.lines.iter();
    rows.map(|line| Row::prepare(line, &doc.currency, fonts))
        .collect()
}

/// Draws the column headings at `top`; returns where the first row starts.
pub(crate) fn draw_head(canvas: &mut Canvas<'_>, top: f32) -> f32 {
    canvas.fill_rect(LEFT, top, RIGHT - LEFT, HEAD_HEIGHT, SHADE);
    let baseline = top + 15.5;
    canvas.text(DESCRIPTION_X, baseline, "Description", HEAD, Align::Left);
    canvas.text(QTY_RIGHT, baseline, "Qty", HEAD, Align::Right);
    canvas.text(UNIT_RIGHT, baseline, "Unit price", HEAD, Align::Right);
    canvas.text(TAX_RIGHT, baseline, "Tax", HEAD, Align::Right);
    canvas.text(AMOUNT_RIGHT, baseline, "Amount", HEAD, Align::Right);
    top + HEAD_HEIGHT
}

/// Draws one row at `top`; returns where the next starts.
pub(crate) fn draw_row(canvas: &mut Canvas<'_>, row: &Row, top: f32) -> f32 {
    let first = top + FIRST_BASELINE;
    for (i, line) in row.description.iter().enumerate() {
        let baseline = first + LINE_STEP * i as f32;
        canvas.text(DESCRIPTION_X, baseline, line, BODY, Align::Left);
    }
    let cells = [
        (&row.quantity, QTY_RIGHT),
        (&row.unit, UNIT_RIGHT),
        (&row.tax, TAX_RIGHT),
        (&row.amount, AMOUNT_RIGHT),
    ];
    for ((text, size), right) in cells {
        let style = Style::new(Weight::Regular, *size, INK);
        canvas.text(right, first, text, style, Align::Right);
    }
    let bottom = top + row.height();
    canvas.rule(LEFT, RIGHT, bottom, 0.6, RULE);
    bottom
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PdfError;

    #[test]
    fn long_descriptions_make_taller_rows_up_to_a_cap() -> Result<(), PdfError> {
        let fonts = Fonts::load()?;
        let short = Line {
            description: "Pro plan".into(),
            ..Line::default()
        };
        let long = Line {
            description: "A very long description ".repeat(100),
            ..Line::default()
        };
        let short = Row::prepare(&short, "gbp", &fonts);
        let long = Row::prepare(&long, "gbp", &fonts);
        assert!(long.height() > short.height());
        assert_eq!(long.description.len(), MAX_DESCRIPTION_LINES);
        Ok(())
    }

    #[test]
    fn a_taxed_line_shows_its_rate() -> Result<(), PdfError> {
        let fonts = Fonts::load()?;
        let line = Line {
            description: "Pro plan".into(),
            quantity: 1,
            unit_amount: 2500,
            amount: 2500,
            tax_label: Some("VAT 20%".into()),
            tax_amount: 500,
        };
        let row = Row::prepare(&line, "gbp", &fonts);
        assert_eq!(row.tax.0, "VAT 20%");
        assert_eq!(row.amount.0, "£25.00");
        let unlabelled = Line {
            tax_label: None,
            ..line
        };
        assert_eq!(Row::prepare(&unlabelled, "gbp", &fonts).tax.0, "£5.00");
        Ok(())
    }
}
