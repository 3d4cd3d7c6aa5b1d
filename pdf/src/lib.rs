//! Invoice PDFs: an [`InvoiceDocument`] in, the bytes of an A4 PDF out. No I/O.
//!
//! The renderer is a pure function so the daemon can serve `invoice_pdf` from any handler,
//! cache the bytes, or test them without a file system. The font is compiled in, so rendering
//! needs nothing installed at run time and any Latin, Greek or Cyrillic name prints as given.
//!
//! - [`model`]: the invoice as plain, display-ready data.
//! - [`money`]: [`format_money`], amounts as `£1,234.56`.
//! - [`render`]: [`render_invoice`], preparing blocks, planning pages, drawing them.
//! - `layout`: A4 geometry, the palette, and pagination of line items.
//! - `header`, `parties`, `stamp`, `table`, `totals`: one module per part of the page.
//! - `fonts`, `text`, `canvas`: the embedded DejaVu Sans, shaping and wrapping, drawing.
//! - [`error`]: why rendering can fail ([`PdfError`]).

mod canvas;
pub mod error;
mod fonts;
mod header;
mod layout;
pub mod model;
pub mod money;
mod parties;
pub mod render;
mod stamp;
mod table;
mod text;
mod totals;

pub use error::PdfError;
pub use model::{InvoiceDocument, Line, Party};
pub use money::format_money;
pub use render::render_invoice;
