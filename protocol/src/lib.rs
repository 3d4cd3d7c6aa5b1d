//! What goes over the wire between merchants, the daemon and its peers. No I/O lives here.
//!
//! - [`error`]: the API error envelope (`{error: {type, code, message, param}}`) and its statuses.
//! - [`params`]: Stripe-style request parameters, from JSON or bracketed form encoding, read by
//!   name (with the Calmony docs' camelCase spellings) so unknown and missing ones are named.
//! - [`ids`]: resource IDs (`cus_…`, `evt_…`): a prefix and a ULID, so they sort by creation.
//! - [`mode`]: test or live, fixed by the API key.
//! - [`metadata`]: Stripe's metadata rules (50 keys, merge on update, `""` deletes).
//! - [`list`]: cursor pagination parameters and the `{object: "list"}` envelope.
//! - [`customer`]: the customer resource and its create/update parameters.
//! - [`business`]: a project's business details, what the payer sees of the merchant.
//! - [`billing`]: products, prices, tax rates, invoices and their totals, subscriptions.
//! - [`billing_portal`]: the customer portal's sessions and configurations.
//! - [`card`]: card numbers, expiry and CVC checked on arrival; never stored.
//! - [`payment_method`], [`payment_intent`], [`charge`], [`refund`]: the payment resources.
//! - [`checkout`]: hosted checkout sessions.
//! - [`expand`]: which fields `expand[]` may expand, and the checking of its paths.
//! - [`event`]: events, the immutable record of every state change.
//! - [`html`]: escaping for rendered pages.
//! - [`webhook`]: delivery signatures and their verification, the event catalogue, endpoints.
//! - [`destination`]: where a webhook may be delivered (the rules against request forgery).
//! - [`secret`]: a wrapper that keeps secrets out of logs.
//! - [`cardstream`]: the Cardstream gateway's messages: PHP form encoding, signatures, outcomes.
//! - [`open_banking`]: UK Open Banking payment initiation (Pay by Bank): wire types, amounts,
//!   the detached JWS.
//! - [`griffin`]: the Griffin bank's `/v0` API (settlement account, ledger, payouts) and its
//!   RFC 9421 message signatures.

pub mod balance;
pub mod billing;
pub mod billing_portal;
pub mod business;
pub mod card;
pub mod cardstream;
pub mod charge;
pub mod checkout;
pub mod clock_text;
pub mod customer;
pub mod destination;
pub mod error;
pub mod event;
pub mod expand;
pub mod griffin;
pub mod html;
pub mod ids;
pub mod list;
pub mod metadata;
pub mod mode;
pub mod open_banking;
pub mod params;
pub mod payment_intent;
pub mod payment_method;
pub mod refund;
pub mod secret;
pub mod settlement;
pub mod webhook;

pub use error::{ApiError, ErrorType};
pub use mode::Mode;
pub use params::Params;

/// The Stripe API version whose object shapes the daemon follows; echoed as `Stripe-Version`.
pub const API_VERSION: &str = "2025-03-31.basil";
