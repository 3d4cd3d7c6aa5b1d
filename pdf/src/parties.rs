//! The "From" and "Bill to" address blocks.
//!
//! A block is laid out into styled lines before drawing, so its height is known when the
//! page is planned. Names wrap onto a second line; address lines are cut short rather than
//! wrapped, since a wrapped street line reads like two lines of address; a block keeps at most
//! [`MAX_ADDRESS_LINES`] of them so a pathological address cannot push the table off page one.

use crate::canvas::{Align, Canvas, Style, Weight};
use crate::fonts::Fonts;
use crate::layout::{INK, MUTED};
use crate::model::Party;
use crate::text::{truncate, wrap};

/// Width of each block.
pub(crate) const WIDTH: f32 = 225.0;
const MAX_ADDRESS_LINES: usize = 6;
const HEADING: Style = Style::new(Weight::Bold, 7.5, MUTED);
const NAME: Style = Style::new(Weight::Bold, 10.5, INK);
const BODY: Style = Style::new(Weight::Regular, 9.0, INK);
const DETAIL: Style = Style::new(Weight::Regular, 9.0, MUTED);
const NAME_STEP: f32 = 14.0;
const BODY_STEP: f32 = 13.0;

/// A party's block, laid out: (text, style, distance below the previous baseline).
pub(crate) struct PartyBlock {
    lines: Vec<(String, Style, f32)>,
}

impl PartyBlock {
    pub(crate) fn prepare(heading: &str, party: &Party, fonts: &Fonts) -> Self {
        let mut lines = vec![(heading.to_owned(), HEADING, 0.0)];
        let mut step = 17.0;
        for name in wrap(NAME.face(fonts), &party.name, NAME.size, WIDTH, 2) {
            lines.push((name, NAME, step));
            step = NAME_STEP;
        }
        step = if lines.len() > 1 { 15.0 } else { 17.0 };
        let address = party.lines.iter().filter(|l| !l.trim().is_empty());
        for line in address.take(MAX_ADDRESS_LINES) {
            let text = truncate(BODY.face(fonts), line.trim(), BODY.size, WIDTH);
            lines.push((text, BODY, step));
            step = BODY_STEP;
        }
        let details = [
            party.email.as_deref().map(str::to_owned),
            party.tax_id.as_deref().map(|id| format!("VAT no. {id}")),
        ];
        for detail in details.into_iter().flatten() {
            if detail.trim().is_empty() {
                continue;
            }
            let text = truncate(DETAIL.face(fonts), detail.trim(), DETAIL.size, WIDTH);
            lines.push((text, DETAIL, step));
            step = BODY_STEP;
        }
        Self { lines }
    }

    /// Distance from the heading's baseline to the last line's baseline.
    pub(crate) fn height(&self) -> f32 {
        self.lines.iter().map(|l| l.2).sum()
    }

    /// Draws the block with the heading's baseline at `top`.
    pub(crate) fn draw(&self, canvas: &mut Canvas<'_>, left: f32, top: f32) {
        let mut baseline = top;
        for (text, style, step) in &self.lines {
            baseline += step;
            canvas.text(left, baseline, text, *style, Align::Left);
        }
    }
}
