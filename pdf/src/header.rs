//! What frames the line items: the first page's header, the continuation pages' short
//! header, and the page footer every page carries.
//!
//! Page one opens with the brand band (merchant name, "Billed via Calmony Pay", INVOICE and
//! the number), then the invoice details on the left and the status stamp on the right above
//! the amount due (or the amount paid, once it is), then the From and Bill to blocks. Its
//! height depends on those blocks, so it is prepared first and tells the planner where the
//! table starts. Continuation pages repeat just enough (merchant, invoice number) that a
//! loose page can be matched to its invoice; the footer's "Page 2 of 3" says whether any are
//! missing.

use crate::canvas::{Align, Canvas, Style, Weight};
use crate::fonts::Fonts;
use crate::layout::{
    ACCENT, BAND_MUTED, BRAND, CONTENT_BOTTOM, INK, LEFT, MUTED, PAGE_HEIGHT, PAGE_WIDTH, RIGHT,
    RULE, WHITE,
};
use crate::model::InvoiceDocument;
use crate::money::format_money;
use crate::parties::PartyBlock;
use crate::stamp::{self, Stamp};
use crate::text::{shrink_to_fit, truncate};

const BAND_HEIGHT: f32 = 100.0;
const STRIPE_HEIGHT: f32 = 4.0;
const TITLE: Style = Style::new(Weight::Bold, 26.0, WHITE);
const BAND_NOTE: Style = Style::new(Weight::Regular, 9.0, BAND_MUTED);
const BAND_BRAND: Style = Style::new(Weight::Bold, 9.0, WHITE);
const MERCHANT_SIZES: [f32; 4] = [20.0, 17.0, 14.0, 12.0];
const MERCHANT_WIDTH: f32 = 300.0;

const DETAILS_TOP: f32 = 142.0;
const DETAILS_STEP: f32 = 16.0;
const DETAIL_VALUE_X: f32 = LEFT + 92.0;
const DETAIL_LABEL: Style = Style::new(Weight::Regular, 9.0, MUTED);
const DETAIL_VALUE: Style = Style::new(Weight::Regular, 9.5, INK);
const DETAIL_NUMBER: Style = Style::new(Weight::Bold, 9.5, INK);
/// The details column stops short of the stamp column.
const DETAIL_VALUE_WIDTH: f32 = RIGHT - 180.0 - DETAIL_VALUE_X;

const STAMP_TOP: f32 = 128.0;
const HEADLINE_LABEL: Style = Style::new(Weight::Regular, 9.0, MUTED);
const HEADLINE_SIZES: [f32; 3] = [16.0, 13.0, 11.0];
const PARTIES_GAP: f32 = 34.0;
const BILL_TO_X: f32 = LEFT + 265.0;
const TABLE_GAP: f32 = 30.0;

const CONTINUATION_BAND: f32 = 52.0;
/// Where the table starts on continuation pages.
pub(crate) const CONTINUATION_TABLE_TOP: f32 = CONTINUATION_BAND + STRIPE_HEIGHT + 26.0;

const FOOTER_STYLE: Style = Style::new(Weight::Regular, 7.5, MUTED);

/// Page one's header, laid out.
pub(crate) struct FirstPageHeader {
    merchant: (String, f32),
    number: String,
    details: Vec<(&'static str, String, Style)>,
    stamp: Stamp,
    headline_label: &'static str,
    headline: (String, f32),
    from: PartyBlock,
    bill_to: PartyBlock,
    parties_top: f32,
}

impl FirstPageHeader {
    pub(crate) fn prepare(doc: &InvoiceDocument, fonts: &Fonts) -> Self {
        let bold = &fonts.bold;
        let regular = &fonts.regular;
        let merchant = shrink_to_fit(bold, &doc.merchant.name, MERCHANT_WIDTH, &MERCHANT_SIZES);
        let number = truncate(regular, &doc.number, 10.0, 200.0);

        let mut details = vec![("Invoice number", doc.number.clone(), DETAIL_NUMBER)];
        details.push(("Date of issue", doc.issued.clone(), DETAIL_VALUE));
        if let Some(due) = &doc.due {
            details.push(("Date due", due.clone(), DETAIL_VALUE));
        }
        if let Some(period) = &doc.period {
            details.push(("Service period", period.clone(), DETAIL_VALUE));
        }
        for (_, value, style) in &mut details {
            *value = truncate(style.face(fonts), value, style.size, DETAIL_VALUE_WIDTH);
        }

        // Under a PAID stamp, "Amount due £0.00" says less than what was paid.
        let paid = doc.status.eq_ignore_ascii_case("paid");
        let (headline_label, headline_amount) = if paid {
            ("Amount paid", doc.amount_paid)
        } else {
            ("Amount due", doc.amount_due)
        };
        let headline = format_money(headline_amount, &doc.currency);
        let headline = shrink_to_fit(bold, &headline, 175.0, &HEADLINE_SIZES);
        let details_bottom = DETAILS_TOP + DETAILS_STEP * (details.len() as f32 - 1.0);
        let headline_bottom = STAMP_TOP + stamp::HEIGHT + 40.0;
        let parties_top = details_bottom.max(headline_bottom) + PARTIES_GAP;

        Self {
            merchant,
            number,
            details,
            stamp: Stamp::for_status(&doc.status),
            headline_label,
            headline,
            from: PartyBlock::prepare("FROM", &doc.merchant, fonts),
            bill_to: PartyBlock::prepare("BILL TO", &doc.customer, fonts),
            parties_top,
        }
    }

    /// Where the line-items table starts.
    pub(crate) fn table_top(&self) -> f32 {
        self.parties_top + self.from.height().max(self.bill_to.height()) + TABLE_GAP
    }

    pub(crate) fn draw(&self, canvas: &mut Canvas<'_>, fonts: &Fonts) {
        canvas.fill_rect(0.0, 0.0, PAGE_WIDTH, BAND_HEIGHT, BRAND);
        canvas.fill_rect(0.0, BAND_HEIGHT, PAGE_WIDTH, STRIPE_HEIGHT, ACCENT);
        let (name, size) = &self.merchant;
        let name_style = Style::new(Weight::Bold, *size, WHITE);
        canvas.text(LEFT, 50.0, name, name_style, Align::Left);
        let note = "Billed via ";
        canvas.text(LEFT, 72.0, note, BAND_NOTE, Align::Left);
        let note_width = fonts.regular.width(note, BAND_NOTE.size);
        canvas.text(
            LEFT + note_width,
            72.0,
            "Calmony Pay",
            BAND_BRAND,
            Align::Left,
        );
        canvas.text(RIGHT, 54.0, "INVOICE", TITLE, Align::Right);
        let number_style = Style::new(Weight::Regular, 10.0, BAND_MUTED);
        canvas.text(RIGHT, 73.0, &self.number, number_style, Align::Right);

        let mut baseline = DETAILS_TOP;
        for (label, value, style) in &self.details {
            canvas.text(LEFT, baseline, label, DETAIL_LABEL, Align::Left);
            canvas.text(DETAIL_VALUE_X, baseline, value, *style, Align::Left);
            baseline += DETAILS_STEP;
        }

        self.stamp.draw(canvas, fonts, RIGHT, STAMP_TOP);
        let label_baseline = STAMP_TOP + stamp::HEIGHT + 20.0;
        let label = self.headline_label;
        canvas.text(RIGHT, label_baseline, label, HEADLINE_LABEL, Align::Right);
        let (amount, size) = &self.headline;
        let amount_style = Style::new(Weight::Bold, *size, INK);
        canvas.text(
            RIGHT,
            label_baseline + 20.0,
            amount,
            amount_style,
            Align::Right,
        );

        self.from.draw(canvas, LEFT, self.parties_top);
        self.bill_to.draw(canvas, BILL_TO_X, self.parties_top);
    }
}

/// The short header of pages after the first.
pub(crate) fn draw_continuation(canvas: &mut Canvas<'_>, doc: &InvoiceDocument, fonts: &Fonts) {
    canvas.fill_rect(0.0, 0.0, PAGE_WIDTH, CONTINUATION_BAND, BRAND);
    canvas.fill_rect(0.0, CONTINUATION_BAND, PAGE_WIDTH, STRIPE_HEIGHT, ACCENT);
    let (name, size) = shrink_to_fit(&fonts.bold, &doc.merchant.name, 280.0, &[14.0, 12.0]);
    canvas.text(
        LEFT,
        32.0,
        &name,
        Style::new(Weight::Bold, size, WHITE),
        Align::Left,
    );
    let label_style = Style::new(Weight::Regular, 9.5, BAND_MUTED);
    let label = format!("Invoice {} (continued)", doc.number);
    let label = truncate(&fonts.regular, &label, label_style.size, 200.0);
    canvas.text(RIGHT, 32.0, &label, label_style, Align::Right);
}

/// The line under every page's content: which invoice, and which page of how many.
pub(crate) fn draw_page_footer(
    canvas: &mut Canvas<'_>,
    doc: &InvoiceDocument,
    fonts: &Fonts,
    page: usize,
    pages: usize,
) {
    let rule_y = CONTENT_BOTTOM + 18.0;
    canvas.rule(LEFT, RIGHT, rule_y, 0.6, RULE);
    let baseline = PAGE_HEIGHT - 28.0;
    // A merchant without a name to print: no leading separator.
    let left = if doc.merchant.name.trim().is_empty() {
        format!("Invoice {}", doc.number)
    } else {
        format!("{} · Invoice {}", doc.merchant.name, doc.number)
    };
    let left = truncate(&fonts.regular, &left, FOOTER_STYLE.size, 380.0);
    canvas.text(LEFT, baseline, &left, FOOTER_STYLE, Align::Left);
    let right = format!("Page {page} of {pages}");
    canvas.text(RIGHT, baseline, &right, FOOTER_STYLE, Align::Right);
}
