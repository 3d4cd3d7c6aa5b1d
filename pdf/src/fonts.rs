//! The embedded typeface, shaped here and drawn by krilla.
//!
//! PDF's built-in fonts only cover Latin-1 in practice, so "Łódź" or "Zoë" would come out
//! wrong; instead DejaVu Sans (regular and bold, licence in `fonts/LICENSE`) is compiled in
//! and krilla embeds the subset of glyphs each invoice uses, which keeps a one-page invoice
//! to a few tens of kilobytes.
//!
//! We shape with rustybuzz ourselves rather than calling krilla's `draw_text`, because
//! right-aligned amounts and word wrapping need a line's width before drawing it, and
//! krilla does not expose one. Each glyph keeps the byte range of the text it came from;
//! krilla writes that into the PDF's ToUnicode map, which is what lets `pdftotext`, search
//! and copy-paste give back "Łódź Café Ltd" rather than glyph numbers.

use krilla::text::{Font, GlyphId, KrillaGlyph};
use rustybuzz::{Direction, Face, UnicodeBuffer};

use crate::PdfError;

const REGULAR: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

/// One font file, loaded for drawing (krilla) and for shaping (rustybuzz).
pub(crate) struct Typeface {
    pdf: Font,
    face: Face<'static>,
}

/// The two weights the invoice uses.
pub(crate) struct Fonts {
    pub(crate) regular: Typeface,
    pub(crate) bold: Typeface,
}

impl Fonts {
    pub(crate) fn load() -> Result<Self, PdfError> {
        Ok(Self {
            regular: Typeface::load(REGULAR, "DejaVuSans.ttf")?,
            bold: Typeface::load(BOLD, "DejaVuSans-Bold.ttf")?,
        })
    }
}

/// Shaped text: glyphs in drawing order and their total advance.
pub(crate) struct Shaped {
    pub(crate) glyphs: Vec<KrillaGlyph>,
    /// Total advance in ems; multiply by the font size for points.
    pub(crate) width_em: f32,
}

impl Typeface {
    fn load(data: &'static [u8], name: &'static str) -> Result<Self, PdfError> {
        let pdf = Font::new(data.into(), 0).ok_or(PdfError::Font(name))?;
        let face = Face::from_slice(data, 0).ok_or(PdfError::Font(name))?;
        Ok(Self { pdf, face })
    }

    /// The font handle krilla draws with.
    pub(crate) fn pdf_font(&self) -> Font {
        self.pdf.clone()
    }

    /// Shapes one line of text (kerning, ligatures, combining accents) in a single script.
    pub(crate) fn shape(&self, text: &str) -> Shaped {
        let mut buffer = UnicodeBuffer::new();
        buffer.push_str(text);
        buffer.guess_segment_properties();
        let rtl = buffer.direction() == Direction::RightToLeft;
        let output = rustybuzz::shape(&self.face, &[], buffer);
        let units = self.face.units_per_em() as f32;
        let infos = output.glyph_infos();
        let positions = output.glyph_positions();

        let mut width_em = 0.0;
        let mut glyphs = Vec::with_capacity(infos.len());
        for (i, (info, pos)) in infos.iter().zip(positions).enumerate() {
            let start = info.cluster as usize;
            // A cluster ends where the next one in reading order begins; right-to-left
            // output is in visual order, so reading order runs backwards through it.
            let next = if rtl {
                infos[..i].iter().rev().find(|n| n.cluster != info.cluster)
            } else {
                infos[i + 1..].iter().find(|n| n.cluster != info.cluster)
            };
            let end = next.map_or(text.len(), |n| n.cluster as usize);
            let advance = pos.x_advance as f32 / units;
            width_em += advance;
            glyphs.push(KrillaGlyph::new(
                GlyphId::new(info.glyph_id),
                advance,
                pos.x_offset as f32 / units,
                pos.y_offset as f32 / units,
                pos.y_advance as f32 / units,
                start..end,
                None,
            ));
        }
        Shaped { glyphs, width_em }
    }

    /// Width of `text` in points at `size`.
    pub(crate) fn width(&self, text: &str, size: f32) -> f32 {
        self.shape(text).width_em * size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_fonts_load() {
        assert!(Fonts::load().is_ok());
    }

    #[test]
    fn glyphs_cover_the_whole_text() -> Result<(), PdfError> {
        let fonts = Fonts::load()?;
        let text = "Łódź Café £25.00";
        let shaped = fonts.regular.shape(text);
        let first = shaped.glyphs.first().map(|g| g.text_range.start);
        let last = shaped.glyphs.last().map(|g| g.text_range.end);
        assert_eq!(first, Some(0));
        assert_eq!(last, Some(text.len()));
        assert!(shaped.width_em > 0.0);
        Ok(())
    }

    #[test]
    fn bold_is_wider_than_regular() -> Result<(), PdfError> {
        let fonts = Fonts::load()?;
        assert!(fonts.bold.width("INVOICE", 10.0) > fonts.regular.width("INVOICE", 10.0));
        Ok(())
    }
}
