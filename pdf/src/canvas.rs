//! The few drawing operations an invoice needs, over a krilla page.
//!
//! Coordinates are PDF points from the top-left corner of the page, y growing downwards, as
//! krilla has them; text is placed by its baseline. Lines are drawn as thin filled rectangles,
//! which render crisply in every viewer without stroke-adjustment quirks. Alignment is done
//! here, from the shaped width, so the layout code only says where a column's edge is.

use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::num::NormalizedF32;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;

use crate::fonts::{Fonts, Typeface};

/// An sRGB colour; our own type so the palette can be `const`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Colour {
    pub(crate) red: u8,
    pub(crate) green: u8,
    pub(crate) blue: u8,
}

impl Colour {
    pub(crate) const fn new(red: u8, green: u8, blue: u8) -> Self {
        Self { red, green, blue }
    }

    fn paint(self) -> krilla::paint::Paint {
        rgb::Color::new(self.red, self.green, self.blue).into()
    }
}

/// Which edge of the text the x coordinate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
    Centre,
}

/// The two weights of the embedded typeface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Weight {
    Regular,
    Bold,
}

/// How a run of text looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Style {
    pub(crate) weight: Weight,
    pub(crate) size: f32,
    pub(crate) colour: Colour,
}

impl Style {
    pub(crate) const fn new(weight: Weight, size: f32, colour: Colour) -> Self {
        Self {
            weight,
            size,
            colour,
        }
    }

    /// The typeface for this style's weight.
    pub(crate) fn face<'f>(&self, fonts: &'f Fonts) -> &'f Typeface {
        match self.weight {
            Weight::Regular => &fonts.regular,
            Weight::Bold => &fonts.bold,
        }
    }
}

/// One page being drawn.
pub(crate) struct Canvas<'a> {
    surface: Surface<'a>,
    fonts: &'a Fonts,
}

impl<'a> Canvas<'a> {
    pub(crate) fn new(surface: Surface<'a>, fonts: &'a Fonts) -> Self {
        Self { surface, fonts }
    }

    /// Ends the page's content stream.
    pub(crate) fn finish(self) {
        self.surface.finish();
    }

    /// A solid rectangle. Degenerate sizes draw nothing.
    pub(crate) fn fill_rect(&mut self, x: f32, y: f32, width: f32, height: f32, colour: Colour) {
        let Some(path) = rect_path(x, y, width, height) else {
            return;
        };
        self.surface.set_stroke(None);
        self.surface.set_fill(Some(solid(colour)));
        self.surface.draw_path(&path);
    }

    /// A rectangle outline of `line` points, centred on the edges.
    pub(crate) fn stroke_rect(
        &mut self,
        (x, y, width, height): (f32, f32, f32, f32),
        line: f32,
        colour: Colour,
    ) {
        let Some(path) = rect_path(x, y, width, height) else {
            return;
        };
        self.surface.set_fill(None);
        self.surface.set_stroke(Some(Stroke {
            paint: colour.paint(),
            width: line,
            ..Stroke::default()
        }));
        self.surface.draw_path(&path);
        self.surface.set_stroke(None);
    }

    /// A horizontal rule from `x1` to `x2`, centred on `y`.
    pub(crate) fn rule(&mut self, x1: f32, x2: f32, y: f32, thickness: f32, colour: Colour) {
        self.fill_rect(x1, y - thickness / 2.0, x2 - x1, thickness, colour);
    }

    /// Draws one line of text with its baseline at `baseline`; `x` is the left edge, right
    /// edge or centre according to `align`. The caller has already made it fit.
    pub(crate) fn text(&mut self, x: f32, baseline: f32, text: &str, style: Style, align: Align) {
        if text.is_empty() {
            return;
        }
        let face = style.face(self.fonts);
        let shaped = face.shape(text);
        let width = shaped.width_em * style.size;
        let left = match align {
            Align::Left => x,
            Align::Right => x - width,
            Align::Centre => x - width / 2.0,
        };
        self.surface.set_stroke(None);
        self.surface.set_fill(Some(solid(style.colour)));
        self.surface.draw_glyphs(
            Point::from_xy(left, baseline),
            &shaped.glyphs,
            face.pdf_font(),
            text,
            style.size,
            false,
        );
    }
}

fn solid(colour: Colour) -> Fill {
    Fill {
        paint: colour.paint(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    }
}

fn rect_path(x: f32, y: f32, width: f32, height: f32) -> Option<krilla::geom::Path> {
    let rect = Rect::from_xywh(x, y, width, height)?;
    let mut builder = PathBuilder::new();
    builder.push_rect(rect);
    builder.finish()
}
