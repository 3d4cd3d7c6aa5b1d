//! Why rendering can fail.
//!
//! With a font compiled into the crate and A4 fixed, failure means a bug or a broken build,
//! not bad invoice data: any text renders (characters outside the font print as empty boxes)
//! and any length is wrapped or cut short. The variants say which part broke so the log
//! points at it; callers should treat all of them as an internal error.

/// Rendering an invoice failed.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// An embedded font could not be parsed: the crate was built with a damaged font file.
    #[error("the embedded font {0} could not be read")]
    Font(&'static str),
    /// A page could not be set up with the intended geometry.
    #[error("invalid page geometry: {0}")]
    Geometry(&'static str),
    /// krilla refused to write the document. Carried as text so krilla's types stay out of
    /// this crate's API.
    #[error("writing the PDF failed: {0}")]
    Write(String),
}
