//! The pages the daemon serves to customers' browsers (not to API clients).
//!
//! - [`bank`]: the Pay by Bank page (pick a bank) and the bank's redirect back.
//! - [`brand`]: the merchant's frame (name, logo, colour, support contact) around a page.
//! - [`dashboard`]: the merchant dashboard under `/dashboard` (sign-in, figures, payments).
//! - [`checkout`]: the hosted checkout page and the gateway's answers to it.
//! - [`portal`]: the customer portal page a billing portal session's `url` opens.
//! - [`griffin`]: Griffin's signed webhooks (server to server, like the bank's notifications).
//! - [`three_ds`]: the 3-D Secure hand-off a payment's `next_action` points at.
//! - [`html`]: the shared frame, HTML answers, self-posting forms and redirects.
//!
//! Pages are small, plain HTML that works without JavaScript (a button where a script would
//! auto-submit), and every interpolated value is escaped with [`html::escape`].

pub mod bank;
pub mod brand;
pub mod checkout;
pub mod dashboard;
pub mod docs;
pub mod griffin;
mod html;
pub mod portal;
pub mod three_ds;
