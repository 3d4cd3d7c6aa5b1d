//! Cardstream, the first [`PaymentGateway`](crate::gateway::PaymentGateway): its Direct API
//! for every flow, and the Hosted Payment Page's signing for checkout.
//!
//! - [`client`]: one merchant account's signed, verified requests.
//! - [`accounts`]: both modes' accounts, and the trait's implementation over them.
//! - [`transformers`]: Cardstream's fields for each flow, and its answers read back into the
//!   gateway's typed outcomes. Cardstream's codes and states never leave this module.

pub mod accounts;
pub mod client;
pub mod transformers;

pub use accounts::MerchantAccounts;
pub use client::Cardstream;
