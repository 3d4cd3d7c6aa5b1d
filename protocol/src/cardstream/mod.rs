//! The Cardstream gateway's wire format: form-encoded messages, their signatures, and what a
//! response code means. Both ends use it: the Gateway actor builds and signs requests and
//! verifies responses; the sandbox gateway parses and verifies requests and signs responses.
//!
//! ```text
//! let mut request: Fields = [("merchantID", id), ("action", "SALE"), …].into_iter().collect();
//! request.add_signature(secret, None);        // body: request.encode()
//! let response = Fields::parse(&body)?;       // whatever the Content-Type says
//! let coverage = verify(&response, Some(secret))?;  // act on nothing before this, and
//!                                                  // only on fields `coverage` covers
//! match Outcome::from_response(&response)? { … }
//! ```
//!
//! The gateway is PHP, and a signature is a hash of the message *as PHP encodes it*, so exact
//! byte compatibility with PHP decides everything here:
//! - `encoding`: PHP's `urlencode`/`urldecode` (RFC 1738, `~` encoded) and `name[sub]` names.
//! - `message`: [`Fields`], the ordered message, with records whose sub-field order matters.
//! - `signature`: SHA-512 over the sorted, re-encoded fields plus the secret; partial
//!   signatures; the SDKs' three ways for verification to fail.
//! - [`codes`]: `responseCode` to [`Outcome`], with Stripe decline codes.
//!
//! Nothing here does I/O, and nothing decides whether a message *should* be trusted beyond its
//! signature: after verifying, the caller still checks that amount, currency and
//! `transactionUnique` match its own order, so a genuine response cannot be replayed against
//! another payment.

pub mod codes;
mod encoding;
mod message;
mod signature;

pub use codes::{Outcome, ResponseError};
pub use encoding::php_urlencode;
pub use message::{FieldValue, Fields, FormError};
pub use signature::{Coverage, SIGNATURE_FIELD, SignatureError, sign, verify};
