//! Griffin, the UK bank-as-a-service that holds a merchant's settlement account: its `/v0`
//! API seen from both sides of the wire (the daemon as the client, the sandbox as Griffin),
//! so the two can never disagree about a field's spelling.
//!
//! - [`money`]: `{currency, value}` and pence ↔ the decimal string `"1250.00"`.
//! - [`account`]: the index, the organization and its links, bank accounts.
//! - [`transaction`]: ledger entries with their running balance.
//! - [`payment`]: payments, submissions (outbound) and admissions (inbound).
//! - [`event`]: events and the webhook resource. [`keys`]: the keys webhooks are signed with.
//! - [`page`]: a list page with `links.prev/next`.
//! - [`error`]: the `{"errors": [...]}` body.
//! - [`signature`]: RFC 9421 message signatures (Ed25519 requests, ES512 webhooks) and
//!   `Content-Digest`.
//!
//! Keys are kebab-case as Griffin spells them; resources refer to each other by relative
//! URL (`account-url`, `payment-url`), which is also their identity: clients follow links
//! rather than build paths.

pub mod account;
pub mod error;
pub mod event;
pub mod keys;
pub mod money;
pub mod page;
pub mod payment;
pub mod signature;
pub mod transaction;

pub use account::{BankAccount, BankAddress, Index, Organization, OrganizationMode};
pub use error::{ErrorBody, ErrorItem};
pub use event::{
    Event, NewWebhook, Webhook, WebhookChange, WebhookRequestStatus, WebhookState, WebhookTest,
};
pub use keys::{PublicKey, PublicKeys};
pub use money::{Money, MoneyError};
pub use page::{Links, Page};
pub use payment::{
    Admission, AdmissionSchemeInformation, AdmissionStatus, Creditor, Debtor, NewPayment,
    NewSubmission, Payment, PaymentDirection, PaymentScheme, SearchQuery, Submission,
    SubmissionSchemeInformation, SubmissionStatus,
};
pub use signature::{SignatureError, SignatureHeaders, SigningKey, VerifyingKey};
pub use transaction::{Direction, OriginType, Transaction};

/// The API's path prefix; everything a client calls is under `<base>/v0/`.
pub const VERSION_PREFIX: &str = "/v0";

/// The scheme of `Authorization: GriffinAPIKey <key>`.
pub const AUTH_SCHEME: &str = "GriffinAPIKey";

/// The only currency Griffin's money enum admits.
pub const GBP: &str = "GBP";
