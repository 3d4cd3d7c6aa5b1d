//! Fitting text into columns: word wrapping and cutting short with an ellipsis.
//!
//! Every piece of caller-supplied text has a column to stay inside, so nothing can run off
//! the page or over a neighbouring column, whatever its length. A paragraph is shaped once and
//! broken between clusters (a letter with its accents, or a ligature), preferring spaces; a
//! single word wider than the column is broken inside the word, because a customer reference
//! or URL with no spaces must still fit. When the lines run out, the last one ends in "…" so
//! the reader can see text was dropped. Explicit newlines are kept as line breaks.

use crate::fonts::Typeface;

const ELLIPSIS: &str = "…";

/// Breaks `text` into at most `max_lines` lines no wider than `max_width` points.
/// Returns no lines for blank text.
pub(crate) fn wrap(
    face: &Typeface,
    text: &str,
    size: f32,
    max_width: f32,
    max_lines: usize,
) -> Vec<String> {
    let mut lines = Vec::new();
    if max_lines == 0 {
        return lines;
    }
    let paragraphs: Vec<String> = text
        .lines()
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    for (index, paragraph) in paragraphs.iter().enumerate() {
        let mut rest = paragraph.as_str();
        while !rest.is_empty() {
            if lines.len() + 1 == max_lines {
                // Last line allowed: whatever remains, cut to fit.
                let more_paragraphs = index + 1 < paragraphs.len();
                let last = if more_paragraphs {
                    truncate_with_ellipsis(face, rest, size, max_width, true)
                } else {
                    truncate(face, rest, size, max_width)
                };
                lines.push(last);
                return lines;
            }
            let split = break_point(face, rest, size, max_width);
            lines.push(rest[..split].trim_end().to_owned());
            rest = rest[split..].trim_start();
        }
        if lines.len() >= max_lines {
            break;
        }
    }
    lines
}

/// `text` on one line, cut short with "…" if it is wider than `max_width` points.
pub(crate) fn truncate(face: &Typeface, text: &str, size: f32, max_width: f32) -> String {
    truncate_with_ellipsis(face, text, size, max_width, false)
}

/// Picks the largest of `sizes` (largest first) at which `text` fits in `max_width`, for
/// names and amounts that should shrink before being cut short; at the smallest size the text
/// is truncated if it still does not fit.
pub(crate) fn shrink_to_fit(
    face: &Typeface,
    text: &str,
    max_width: f32,
    sizes: &[f32],
) -> (String, f32) {
    for &size in sizes {
        if face.width(text, size) <= max_width {
            return (text.to_owned(), size);
        }
    }
    let smallest = sizes.last().copied().unwrap_or(8.0);
    (truncate(face, text, smallest, max_width), smallest)
}

/// Like [`truncate`], but `always_mark` adds the ellipsis even if the text fits, for when
/// what follows has been dropped.
fn truncate_with_ellipsis(
    face: &Typeface,
    text: &str,
    size: f32,
    max_width: f32,
    always_mark: bool,
) -> String {
    if !always_mark && face.width(text, size) <= max_width {
        return text.to_owned();
    }
    let room = max_width - face.width(ELLIPSIS, size);
    let cut = fit(face, text, size, room);
    format!("{}{ELLIPSIS}", text[..cut].trim_end())
}

/// Byte offset at which to end the first line of `text`: after the last space that keeps
/// the line within `max_width`, else inside the first word, always at least one cluster so
/// wrapping makes progress.
fn break_point(face: &Typeface, text: &str, size: f32, max_width: f32) -> usize {
    let fits = fit(face, text, size, max_width);
    if fits >= text.len() {
        return text.len();
    }
    // The overflow starts on a space: break there.
    if fits > 0 && text[fits..].starts_with(' ') {
        return fits;
    }
    // Otherwise after the last space that still fits, else mid-word.
    match text[..fits].rfind(' ') {
        Some(space) if space > 0 => space + 1,
        _ if fits > 0 => fits,
        _ => first_cluster_end(face, text),
    }
}

/// The longest prefix of `text` (in bytes, at a cluster boundary) whose advance is at most
/// `max_width` points.
fn fit(face: &Typeface, text: &str, size: f32, max_width: f32) -> usize {
    let shaped = face.shape(text);
    let mut clusters: Vec<(usize, usize, f32)> = Vec::new();
    for glyph in &shaped.glyphs {
        let advance = glyph.x_advance * size;
        match clusters.last_mut() {
            Some(last) if last.0 == glyph.text_range.start => last.2 += advance,
            _ => clusters.push((glyph.text_range.start, glyph.text_range.end, advance)),
        }
    }
    clusters.sort_by_key(|c| c.0);
    let mut used = 0.0;
    let mut end = 0;
    for (start, cluster_end, advance) in clusters {
        if start != end || used + advance > max_width {
            break;
        }
        used += advance;
        end = cluster_end;
    }
    end
}

/// End of the first cluster, so even a column narrower than one letter shows something.
fn first_cluster_end(face: &Typeface, text: &str) -> usize {
    face.shape(text)
        .glyphs
        .iter()
        .map(|g| g.text_range.end)
        .find(|&end| end > 0)
        .unwrap_or(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PdfError;
    use crate::fonts::Fonts;

    #[test]
    fn short_text_is_one_line() -> Result<(), PdfError> {
        let fonts = Fonts::load()?;
        let lines = wrap(&fonts.regular, "Pro plan", 10.0, 200.0, 3);
        assert_eq!(lines, vec!["Pro plan"]);
        Ok(())
    }

    #[test]
    fn long_text_wraps_within_the_width() -> Result<(), PdfError> {
        let fonts = Fonts::load()?;
        let text = "Consulting services for the migration of the ledger to the new platform \
                    including two workshops";
        let lines = wrap(&fonts.regular, text, 10.0, 150.0, 10);
        assert!(lines.len() > 1);
        for line in &lines {
            assert!(fonts.regular.width(line, 10.0) <= 150.5, "{line} too wide");
        }
        assert_eq!(lines.join(" "), text);
        Ok(())
    }

    #[test]
    fn overflowing_text_ends_in_an_ellipsis() -> Result<(), PdfError> {
        let fonts = Fonts::load()?;
        let text = "word ".repeat(200);
        let lines = wrap(&fonts.regular, &text, 10.0, 100.0, 3);
        assert_eq!(lines.len(), 3);
        assert!(lines[2].ends_with('…'));
        assert!(fonts.regular.width(&lines[2], 10.0) <= 100.5);
        Ok(())
    }

    #[test]
    fn a_word_wider_than_the_column_is_broken() -> Result<(), PdfError> {
        let fonts = Fonts::load()?;
        let text = "x".repeat(300);
        let lines = wrap(&fonts.regular, &text, 10.0, 80.0, 100);
        assert!(lines.len() > 1);
        assert_eq!(lines.concat(), text);
        Ok(())
    }

    #[test]
    fn newlines_are_kept_and_blank_text_gives_nothing() -> Result<(), PdfError> {
        let fonts = Fonts::load()?;
        let lines = wrap(
            &fonts.regular,
            "Thank you.\nPay by bank transfer.",
            10.0,
            400.0,
            5,
        );
        assert_eq!(lines, vec!["Thank you.", "Pay by bank transfer."]);
        assert!(wrap(&fonts.regular, "  \n ", 10.0, 400.0, 5).is_empty());
        Ok(())
    }

    #[test]
    fn dropped_paragraphs_are_marked() -> Result<(), PdfError> {
        let fonts = Fonts::load()?;
        let lines = wrap(&fonts.regular, "One\nTwo\nThree", 10.0, 400.0, 2);
        assert_eq!(lines, vec!["One", "Two…"]);
        Ok(())
    }

    #[test]
    fn shrink_to_fit_prefers_the_largest_size_that_fits() -> Result<(), PdfError> {
        let fonts = Fonts::load()?;
        let text = "£1,000,000,000.00";
        let width = fonts.regular.width(text, 8.0) + 0.1;
        assert_eq!(
            shrink_to_fit(&fonts.regular, text, width, &[10.0, 8.0, 6.0]).1,
            8.0
        );
        let (cut, size) = shrink_to_fit(&fonts.regular, text, 20.0, &[10.0, 8.0]);
        assert_eq!(size, 8.0);
        assert!(cut.ends_with('…'));
        Ok(())
    }

    #[test]
    fn truncate_keeps_text_that_fits() -> Result<(), PdfError> {
        let fonts = Fonts::load()?;
        assert_eq!(
            truncate(&fonts.regular, "Zoë Ångström", 10.0, 300.0),
            "Zoë Ångström"
        );
        let cut = truncate(&fonts.regular, "Zoë Ångström", 10.0, 40.0);
        assert!(cut.ends_with('…'));
        assert!(fonts.regular.width(&cut, 10.0) <= 40.5);
        Ok(())
    }
}
