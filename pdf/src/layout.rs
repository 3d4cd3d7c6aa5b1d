//! Page geometry, the palette, and how line items are split across pages.
//!
//! The page is A4 in PDF points (1/72 inch). Everything is placed from fixed margins so the
//! layout is the same for every invoice; only the heights of the variable blocks (address
//! lines, wrapped descriptions, tax rows, footer) change, and those are measured before
//! anything is drawn.
//!
//! Pagination is a pure function of those heights. Rows fill the first page below its header
//! block, then continuation pages below a short header; the totals and footer (the "tail")
//! must sit under the last row, so if they do not fit on the page the last row ends on, they
//! move to the next page and take that last row with them, so the totals never stand alone
//! under a bare header. A row is never split across pages, and descriptions are capped at a
//! few lines so any single row fits on an empty page.

use std::ops::Range;

use crate::canvas::Colour;

/// A4 width in points.
pub(crate) const PAGE_WIDTH: f32 = 595.28;
/// A4 height in points.
pub(crate) const PAGE_HEIGHT: f32 = 841.89;
/// Left edge of the content.
pub(crate) const LEFT: f32 = 50.0;
/// Right edge of the content.
pub(crate) const RIGHT: f32 = PAGE_WIDTH - 50.0;
/// Content stops here; below is the page footer (page number).
pub(crate) const CONTENT_BOTTOM: f32 = PAGE_HEIGHT - 60.0;

/// The header band and brand colour.
pub(crate) const BRAND: Colour = Colour::new(27, 42, 74);
/// The stripe under the band and small brand accents.
pub(crate) const ACCENT: Colour = Colour::new(32, 156, 146);
/// Secondary text on the band.
pub(crate) const BAND_MUTED: Colour = Colour::new(190, 201, 222);
/// Body text.
pub(crate) const INK: Colour = Colour::new(33, 37, 41);
/// Labels and secondary text.
pub(crate) const MUTED: Colour = Colour::new(108, 117, 125);
/// Table rules.
pub(crate) const RULE: Colour = Colour::new(222, 226, 230);
/// Table header and amount-due background.
pub(crate) const SHADE: Colour = Colour::new(241, 243, 247);
/// White, for text on the band.
pub(crate) const WHITE: Colour = Colour::new(255, 255, 255);

/// Which rows go on which page: one range of row indices per page, in order. Always at least
/// one page; the last page also carries the tail.
///
/// `first` and `next` are the heights available for rows on the first and on continuation
/// pages; `tail` is the height the totals and footer need below the last row.
pub(crate) fn paginate(rows: &[f32], first: f32, next: f32, tail: f32) -> Vec<Range<usize>> {
    let mut pages = Vec::new();
    let mut start = 0;
    let mut available = first;
    let mut used = 0.0;
    for (index, height) in rows.iter().enumerate() {
        // A row taller than a whole page cannot be helped; it goes on a page of its own
        // rather than looping for ever.
        if used + height > available && index > start {
            pages.push(start..index);
            start = index;
            available = next;
            used = 0.0;
        }
        used += height;
    }
    let end = rows.len();
    if used + tail > available {
        // The totals would be alone on their page; take the last row with them, so the page
        // still reads as part of the table, unless that would empty this page.
        let carried = if end - start >= 2 { end - 1 } else { end };
        if start < carried {
            pages.push(start..carried);
            start = carried;
        }
    }
    pages.push(start..end);
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_invoice_is_one_page() {
        assert_eq!(paginate(&[30.0; 3], 400.0, 600.0, 150.0), vec![0..3]);
    }

    #[test]
    fn no_rows_is_still_one_page() {
        assert_eq!(paginate(&[], 400.0, 600.0, 150.0), vec![0..0]);
    }

    #[test]
    fn rows_continue_on_further_pages() {
        let pages = paginate(&[30.0; 60], 400.0, 600.0, 150.0);
        // 13 rows fit in 400, then 20 per 600; the last 7 rows leave room for the tail.
        assert_eq!(pages, vec![0..13, 13..33, 33..53, 53..60]);
    }

    #[test]
    fn the_tail_takes_the_last_row_to_a_new_page_when_it_does_not_fit() {
        // 13 rows use 390 of 400: the 150 tail moves on, with row 13 for company.
        assert_eq!(
            paginate(&[30.0; 13], 400.0, 600.0, 150.0),
            vec![0..12, 12..13]
        );
    }

    #[test]
    fn a_lone_row_is_not_left_behind_an_empty_page() {
        // One row already fills the page: it stays, and the tail gets the next page.
        assert_eq!(paginate(&[390.0], 400.0, 600.0, 150.0), vec![0..1, 1..1]);
    }

    #[test]
    fn an_oversized_row_gets_a_page_and_pagination_ends() {
        let pages = paginate(&[30.0, 900.0, 30.0], 400.0, 600.0, 100.0);
        assert_eq!(pages, vec![0..1, 1..2, 2..3]);
    }
}
