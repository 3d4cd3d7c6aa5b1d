//! Putting an invoice on pages: prepare every block, plan the pages, then draw them.
//!
//! Preparing first (wrapping text, shrinking amounts) gives every block its height, so the
//! page plan (`layout::paginate`) is made before anything is drawn and the footer
//! can say "Page 1 of 3". Output is deterministic: no dates or random IDs go into the file,
//! so the same invoice always renders to the same bytes and can be cached or compared.

use krilla::Document;
use krilla::metadata::Metadata;
use krilla::page::PageSettings;

use crate::PdfError;
use crate::canvas::Canvas;
use crate::fonts::Fonts;
use crate::header::{self, CONTINUATION_TABLE_TOP, FirstPageHeader};
use crate::layout::{CONTENT_BOTTOM, PAGE_HEIGHT, PAGE_WIDTH, paginate};
use crate::model::InvoiceDocument;
use crate::table;
use crate::totals::Totals;

/// Renders `doc` as an A4 PDF and returns the file's bytes.
pub fn render_invoice(doc: &InvoiceDocument) -> Result<Vec<u8>, PdfError> {
    let fonts = Fonts::load()?;
    let first_page = FirstPageHeader::prepare(doc, &fonts);
    let rows = table::prepare_rows(doc, &fonts);
    let totals = Totals::prepare(doc, &fonts);

    let heights: Vec<f32> = rows.iter().map(table::Row::height).collect();
    let first_body = first_page.table_top() + table::HEAD_HEIGHT;
    let next_body = CONTINUATION_TABLE_TOP + table::HEAD_HEIGHT;
    let pages = paginate(
        &heights,
        CONTENT_BOTTOM - first_body,
        CONTENT_BOTTOM - next_body,
        totals.height(),
    );

    let mut document = Document::new();
    document.set_metadata(metadata(doc));
    let settings = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT)
        .ok_or(PdfError::Geometry("A4 page size rejected"))?;
    let count = pages.len();
    for (index, range) in pages.into_iter().enumerate() {
        let last = index + 1 == count;
        let mut page = document.start_page_with(settings.clone());
        let mut canvas = Canvas::new(page.surface(), &fonts);
        let mut y = if index == 0 {
            first_page.draw(&mut canvas, &fonts);
            first_page.table_top()
        } else {
            header::draw_continuation(&mut canvas, doc, &fonts);
            CONTINUATION_TABLE_TOP
        };
        // A page holding only the totals needs no column headings.
        if index == 0 || !range.is_empty() {
            y = table::draw_head(&mut canvas, y);
        }
        for row in &rows[range] {
            y = table::draw_row(&mut canvas, row, y);
        }
        if last {
            totals.draw(&mut canvas, y);
        }
        header::draw_page_footer(&mut canvas, doc, &fonts, index + 1, count);
        canvas.finish();
        page.finish();
    }
    document
        .finish()
        .map_err(|e| PdfError::Write(format!("{e:?}")))
}

/// The document properties a viewer shows in its title bar and file info.
fn metadata(doc: &InvoiceDocument) -> Metadata {
    let mut metadata = Metadata::new()
        .title(format!("Invoice {}", doc.number))
        .creator("Calmony Pay".to_owned())
        .language("en-GB".to_owned());
    if !doc.merchant.name.trim().is_empty() {
        metadata = metadata.authors(vec![doc.merchant.name.clone()]);
    }
    metadata
}
