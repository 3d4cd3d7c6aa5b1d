//! The status stamp: the first thing a reader looks for is whether the invoice is settled.
//!
//! The stamp follows the invoice's status, not its amounts, so it says what the API says:
//! an `open` invoice reads DUE even when a partial payment has been made (the totals show
//! how much), and a `void` one reads VOID even though its amount due is still printed.
//! Colour matters only as a second cue; the word alone is unambiguous in greyscale.

use crate::canvas::{Align, Canvas, Colour, Style, Weight};
use crate::fonts::Fonts;

const SIZE: f32 = 15.0;
const PAD_X: f32 = 14.0;
/// Height of the stamp box.
pub(crate) const HEIGHT: f32 = 30.0;

/// The word and colour for an invoice status.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stamp {
    pub(crate) word: String,
    pub(crate) colour: Colour,
}

impl Stamp {
    pub(crate) fn for_status(status: &str) -> Self {
        let (word, colour) = match status.to_ascii_lowercase().as_str() {
            "paid" => ("PAID".to_owned(), Colour::new(25, 135, 84)),
            "open" => ("DUE".to_owned(), Colour::new(196, 98, 16)),
            "uncollectible" => ("UNCOLLECTIBLE".to_owned(), Colour::new(192, 41, 53)),
            "void" => ("VOID".to_owned(), Colour::new(108, 117, 125)),
            "draft" => ("DRAFT".to_owned(), Colour::new(90, 102, 125)),
            other => (other.to_uppercase(), Colour::new(90, 102, 125)),
        };
        Self { word, colour }
    }

    fn style(&self) -> Style {
        Style::new(Weight::Bold, SIZE, self.colour)
    }

    /// Width of the stamp box.
    pub(crate) fn width(&self, fonts: &Fonts) -> f32 {
        let style = self.style();
        style.face(fonts).width(&self.word, SIZE) + 2.0 * PAD_X
    }

    /// Draws the stamp with its top-right corner at (`right`, `top`).
    pub(crate) fn draw(&self, canvas: &mut Canvas<'_>, fonts: &Fonts, right: f32, top: f32) {
        if self.word.is_empty() {
            return;
        }
        let width = self.width(fonts);
        let left = right - width;
        canvas.fill_rect(left, top, width, HEIGHT, tint(self.colour));
        canvas.stroke_rect((left, top, width, HEIGHT), 1.6, self.colour);
        let baseline = top + HEIGHT / 2.0 + SIZE * 0.36;
        canvas.text(
            left + width / 2.0,
            baseline,
            &self.word,
            self.style(),
            Align::Centre,
        );
    }
}

/// The stamp colour mixed mostly with white, for its background.
fn tint(colour: Colour) -> Colour {
    let mix = |c: u8| (f32::from(c) * 0.1 + 255.0 * 0.9).round() as u8;
    Colour::new(mix(colour.red), mix(colour.green), mix(colour.blue))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_has_its_word() {
        assert_eq!(Stamp::for_status("paid").word, "PAID");
        assert_eq!(Stamp::for_status("open").word, "DUE");
        assert_eq!(Stamp::for_status("void").word, "VOID");
        assert_eq!(Stamp::for_status("uncollectible").word, "UNCOLLECTIBLE");
        assert_eq!(Stamp::for_status("draft").word, "DRAFT");
        assert_eq!(Stamp::for_status("Paid").word, "PAID");
        assert_eq!(Stamp::for_status("refunded").word, "REFUNDED");
    }
}
