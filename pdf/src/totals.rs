//! The summary under the table (Subtotal, each tax, Total, Amount paid, Amount due) and the
//! invoice's footer text.
//!
//! Together they are the "tail" that must follow the last line item on the same page, so
//! their height is known before pagination. The amounts are printed as given, never summed
//! here: the PDF must agree with the invoice object even if a rounding rule upstream changes.
//! Values line up with the table's Amount column; Amount due sits on a shaded bar because it
//! is the figure the reader acts on.

use crate::canvas::{Align, Canvas, Style, Weight};
use crate::fonts::Fonts;
use crate::layout::{INK, LEFT, MUTED, RIGHT, RULE, SHADE};
use crate::model::InvoiceDocument;
use crate::money::format_money;
use crate::table::AMOUNT_EDGE;
use crate::text::{shrink_to_fit, truncate, wrap};

/// Space between the table and the totals.
const GAP: f32 = 10.0;
const LEFT_EDGE: f32 = RIGHT - 250.0;
const LABEL_X: f32 = LEFT_EDGE + 8.0;
const LABEL_WIDTH: f32 = 150.0;
const VALUE_WIDTH: f32 = AMOUNT_EDGE - LABEL_X - LABEL_WIDTH - 8.0;
const STEP: f32 = 18.0;
const DUE_BAR: f32 = 26.0;
/// Extra space above the rule over Total, clear of the descenders of the row above.
const TOTAL_RULE_GAP: f32 = 5.0;
const FOOTER_GAP: f32 = 34.0;
const FOOTER_STEP: f32 = 12.0;
const MAX_FOOTER_LINES: usize = 8;

const LABEL: Style = Style::new(Weight::Regular, 9.0, MUTED);
const VALUE: Style = Style::new(Weight::Regular, 9.0, INK);
const STRONG: Style = Style::new(Weight::Bold, 10.0, INK);
const FOOTER: Style = Style::new(Weight::Regular, 8.5, MUTED);

/// How a summary row is set.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Emphasis {
    Plain,
    /// Total: bold, with a rule above.
    Total,
    /// Amount due: bold, on a shaded bar.
    Due,
}

/// The tail, laid out.
pub(crate) struct Totals {
    rows: Vec<(String, String, f32, Emphasis)>,
    footer: Vec<String>,
}

impl Totals {
    pub(crate) fn prepare(doc: &InvoiceDocument, fonts: &Fonts) -> Self {
        let money = |amount: i64| format_money(amount, &doc.currency);
        let mut rows = vec![("Subtotal".to_owned(), money(doc.subtotal), Emphasis::Plain)];
        for (label, amount) in &doc.tax_lines {
            rows.push((label.clone(), money(*amount), Emphasis::Plain));
        }
        rows.push(("Total".to_owned(), money(doc.total), Emphasis::Total));
        rows.push((
            "Amount paid".to_owned(),
            money(doc.amount_paid),
            Emphasis::Plain,
        ));
        rows.push((
            "Amount due".to_owned(),
            money(doc.amount_due),
            Emphasis::Due,
        ));

        let rows = rows
            .into_iter()
            .map(|(label, value, emphasis)| {
                let (label_style, value_style) = styles(emphasis);
                let face = label_style.face(fonts);
                let label = truncate(face, &label, label_style.size, LABEL_WIDTH);
                let face = value_style.face(fonts);
                let sizes = [value_style.size, value_style.size - 1.0, 7.0];
                let (value, size) = shrink_to_fit(face, &value, VALUE_WIDTH, &sizes);
                (label, value, size, emphasis)
            })
            .collect();
        let footer = doc.footer.as_deref().unwrap_or_default();
        let footer = wrap(
            FOOTER.face(fonts),
            footer,
            FOOTER.size,
            RIGHT - LEFT,
            MAX_FOOTER_LINES,
        );
        Self { rows, footer }
    }

    /// Height from the end of the table to the bottom of the footer text.
    pub(crate) fn height(&self) -> f32 {
        let rows = STEP * self.rows.len() as f32;
        let mut height = GAP + rows + TOTAL_RULE_GAP + (DUE_BAR - STEP) + 6.0;
        if !self.footer.is_empty() {
            height += FOOTER_GAP + FOOTER_STEP * self.footer.len() as f32;
        }
        height
    }

    /// Draws the tail below a table ending at `top`.
    pub(crate) fn draw(&self, canvas: &mut Canvas<'_>, top: f32) {
        let mut y = top + GAP;
        for (label, value, size, emphasis) in &self.rows {
            let (label_style, value_style) = styles(*emphasis);
            let value_style = Style::new(value_style.weight, *size, value_style.colour);
            let step = if *emphasis == Emphasis::Due {
                DUE_BAR
            } else {
                STEP
            };
            match emphasis {
                Emphasis::Total => {
                    y += TOTAL_RULE_GAP;
                    canvas.rule(LEFT_EDGE, RIGHT, y, 0.8, INK);
                }
                Emphasis::Due => {
                    canvas.fill_rect(LEFT_EDGE, y + 4.0, RIGHT - LEFT_EDGE, step, SHADE)
                }
                Emphasis::Plain => {}
            }
            let baseline = y + step / 2.0 + 7.5;
            canvas.text(LABEL_X, baseline, label, label_style, Align::Left);
            canvas.text(AMOUNT_EDGE, baseline, value, value_style, Align::Right);
            y += step;
        }
        let mut baseline = y + 6.0 + FOOTER_GAP;
        if !self.footer.is_empty() {
            canvas.rule(LEFT, RIGHT, baseline - 20.0, 0.6, RULE);
        }
        for line in &self.footer {
            canvas.text(LEFT, baseline, line, FOOTER, Align::Left);
            baseline += FOOTER_STEP;
        }
    }
}

fn styles(emphasis: Emphasis) -> (Style, Style) {
    match emphasis {
        Emphasis::Plain => (LABEL, VALUE),
        Emphasis::Total | Emphasis::Due => (Style::new(Weight::Bold, 10.0, INK), STRONG),
    }
}
