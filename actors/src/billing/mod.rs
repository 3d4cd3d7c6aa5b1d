//! Billing: products, prices, tax rates, invoices (with PDFs), subscriptions, the
//! SubscriptionScheduler with dunning, and test clocks.
//!
//! ## Time
//! A customer created with a test clock lives at that clock's `frozen_time`; everything billed
//! to them (subscription periods, invoice dates, dunning) uses it, and advancing the clock runs
//! the scheduler over that clock's subscriptions at once: a year of renewals in seconds.
//! Everyone else lives at the daemon's clock.
//!
//! ## Exactly once per period
//! Subscriptions waiting for something (a renewal, a trial end, a dunning retry) sit in a
//! sorted set by due time: `cp:billing:due` for real time, `cp:billing:clock:<clock>` per test
//! clock. A run takes a lease (one daemon at a time; another takes over if it dies), and each
//! renewal is one commit that creates the period's invoice only if the period's marker
//! (`…:subscription:<sub>:period:<start>`) does not exist yet, so a period is invoiced once
//! even if two runs overlap. An invoice is charged through the IntentProcessor with the
//! invoice as the gateway `orderRef`; an invoice with a payment in flight is not charged again.
//! The result of every charge (paid, or retry scheduled, or the final action) is written in
//! the same commit as the payment's own result.
//!
//! ## Layers
//! Each file looks only down this list, and this file only declares and re-exports:
//! - decisions, pure and table-tested: [`status`] (the states as enums), [`transitions`]
//!   (invoice commands, a payment's effect, the scheduler's next step), [`dunning`],
//!   [`proration`], [`totals`];
//! - records: [`keys`] (the Redis layout), [`customer_time`], `catalog` (products, prices,
//!   tax rates), `invoice_records` (an invoice as kept, drafts and lines);
//! - a payment's effects, below the payments layer: `collection` ([`on_payment`]) and
//!   `receipts` ([`receipt_for`]);
//! - the service: `settings` ([`Billing`]), then `pdf`, `invoices`, `subscriptions`,
//!   `scheduler` and [`clocks`], each above the ones before it.

mod catalog;
pub mod clocks;
mod collection;
pub mod customer_time;
pub mod dunning;
mod invoice_records;
mod invoices;
pub mod keys;
pub mod payment_effects;
mod pdf;
pub mod proration;
mod receipts;
mod scheduler;
mod settings;
pub mod status;
mod subscriptions;
pub mod totals;
pub mod transitions;

pub use catalog::{
    create_price, create_product, create_tax_rate, delete_product, list_prices, list_products,
    list_tax_rates, refuse_inactive, retrieve_price, retrieve_product, retrieve_tax_rate,
    update_price, update_product, update_tax_rate,
};
pub use collection::on_payment;
pub use invoice_records::{InvoiceInternal, KnownInvoice};
pub use invoices::{
    create_invoice, create_invoice_item, delete_invoice, finalize_invoice, invoice_lines,
    invoice_pdf, list_invoice_items, list_invoices, mark_uncollectible, pay_invoice, public_pdf,
    retrieve_invoice, retrieve_invoice_item, void_invoice,
};
pub use keys::{DUE, LEASE, RUN, clock_due, due_member, parse_due_member};
pub use pdf::{PdfRenderer, PdfSlot};
pub use receipts::{ReceiptLine, receipt_for, receipt_with_lines};
pub use scheduler::SchedulePosition;
pub use settings::Billing;
pub use subscriptions::{
    cancel_subscription, create_subscription, create_subscription_as, list_subscriptions,
    retrieve_subscription, retry_for_customer, update_subscription,
};
