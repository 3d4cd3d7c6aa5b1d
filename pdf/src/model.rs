//! The invoice as the renderer sees it: plain, already-decided data.
//!
//! Everything here is display-ready except money, which stays in minor units (pence) so the
//! renderer formats every amount the same way ([`crate::format_money`]). Dates arrive as
//! strings because the caller owns the time zone and the locale; the renderer never guesses
//! either. Nothing is recomputed: the totals printed are the totals given, so the PDF always
//! agrees with the invoice object the API returned.

/// One invoice, ready to print.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoiceDocument {
    /// Who is billing: printed in the header band and the "From" block.
    pub merchant: Party,
    /// Who is billed: the "Bill to" block.
    pub customer: Party,
    /// The invoice number, e.g. `CP-000123`; `DRAFT` before finalisation.
    pub number: String,
    /// Date of issue, already formatted (e.g. `21 November 2026`).
    pub issued: String,
    /// Payment due date, already formatted; absent for invoices charged automatically.
    pub due: Option<String>,
    /// The service period a subscription invoice covers.
    pub period: Option<String>,
    /// The line items, in the order they are printed.
    pub lines: Vec<Line>,
    /// Sum of line amounts before tax, in minor units.
    pub subtotal: i64,
    /// One row per tax rate, e.g. `("VAT 20% (exclusive)", 500)`.
    pub tax_lines: Vec<(String, i64)>,
    /// Subtotal plus tax, in minor units.
    pub total: i64,
    /// What has been paid so far, in minor units.
    pub amount_paid: i64,
    /// What is still owed, in minor units.
    pub amount_due: i64,
    /// The invoice status: `paid`, `open`, `void`, `uncollectible` or `draft`. Decides the
    /// stamp.
    pub status: String,
    /// ISO currency code, lower case as in the API (`gbp`).
    pub currency: String,
    /// Free text printed at the end: payment terms, company registration, thanks.
    pub footer: Option<String>,
}

/// A merchant or customer as printed in an address block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Party {
    /// Business or personal name.
    pub name: String,
    /// Address lines, printed in order (street, town, postcode, country).
    pub lines: Vec<String>,
    /// Contact email.
    pub email: Option<String>,
    /// VAT registration number, which a UK VAT invoice must show for the supplier.
    pub tax_id: Option<String>,
}

/// One row of the line-items table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line {
    /// What was sold; long descriptions wrap, then are cut short with an ellipsis.
    pub description: String,
    /// How many units.
    pub quantity: i64,
    /// Price of one unit before tax, in minor units.
    pub unit_amount: i64,
    /// Line total before tax, in minor units.
    pub amount: i64,
    /// The tax applied, e.g. `VAT 20%`; absent when the line is untaxed.
    pub tax_label: Option<String>,
    /// Tax on this line, in minor units.
    pub tax_amount: i64,
}
