//! UK Open Banking (OBIE Read/Write API **v3.1**, v3.1.10 dialect) for Pay by Bank: domestic
//! single immediate payments, seen from both sides of the wire (the daemon as the PISP, the
//! sandbox as the bank), so the two can never disagree about a field's spelling.
//!
//! - [`consent`]: `domestic-payment-consents` request and answer, and the consent statuses.
//! - [`payment`]: `domestic-payments` request and answer, the payment statuses and what each
//!   means for us ([`PaymentStatus::outcome`]).
//! - [`common`]: what both share: the Initiation (OBDomestic2), Risk, accounts, links.
//! - [`error`]: OBErrorResponse1, the bank's error body.
//! - [`discovery`]: the OpenID discovery document, the token answer and the JWKS.
//! - [`amount`]: pence ↔ the decimal string `"2450.00"`; sort code + account ↔ SCAN.
//! - [`jws`]: the detached `x-jws-signature` (PS256) and the compact JWTs of the authorise
//!   request object and the id_token.
//!
//! Field names are PascalCase exactly as the OBIE OpenAPI spells them; optional members are
//! left out when absent, as banks expect.

pub mod amount;
pub mod common;
pub mod consent;
pub mod discovery;
pub mod error;
pub mod jws;
pub mod payment;

pub use amount::{
    AmountError, ScanError, amount_to_minor, format_gbp, minor_to_amount, scan, split_scan,
};
pub use common::{
    Account, Initiation, InstructedAmount, Links, Meta, RemittanceInformation, Risk, SCHEME_SCAN,
    YesNo,
};
pub use consent::{
    ConsentRequest, ConsentRequestData, ConsentResponse, ConsentResponseData, ConsentStatus,
};
pub use discovery::{Discovery, Jwk, Jwks, TokenResponse};
pub use error::{ErrorItem, ErrorResponse};
pub use jws::{Claims, JwsError, SigningKey, VerifyingKey};
pub use payment::{
    PaymentProgress, PaymentRequest, PaymentRequestData, PaymentResponse, PaymentResponseData,
    PaymentStatus, Refund,
};

/// The API version both sides speak; a consent made on one version is used on the same one.
pub const VERSION: &str = "v3.1";

/// The resource server's path under a bank's base: `<base>/open-banking/v3.1/pisp`.
pub const PISP_PATH: &str = "open-banking/v3.1/pisp";

/// The headers of the Open Banking API, by name.
pub mod headers {
    pub const INTERACTION_ID: &str = "x-fapi-interaction-id";
    pub const IDEMPOTENCY_KEY: &str = "x-idempotency-key";
    pub const JWS_SIGNATURE: &str = "x-jws-signature";
}

/// The longest `x-idempotency-key` a bank accepts.
pub const IDEMPOTENCY_KEY_MAX: usize = 40;

/// A random RFC 4122 version 4 UUID, as `x-fapi-interaction-id` wants.
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
