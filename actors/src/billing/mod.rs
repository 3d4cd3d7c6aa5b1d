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

mod catalog;
pub mod clocks;
mod invoices;
mod pdf;
mod scheduler;
mod subscriptions;

use std::time::Duration;

use calmony_config::Config;
use calmony_protocol::ApiError;

use crate::payments::Payments;
use crate::store::{Scope, Store};

pub use catalog::{
    create_price, create_product, create_tax_rate, delete_product, list_prices, list_products,
    list_tax_rates, retrieve_price, retrieve_product, retrieve_tax_rate, update_price,
    update_product, update_tax_rate,
};
pub use invoices::{KnownInvoice, ReceiptLine, on_payment, receipt_for, receipt_with_lines};
pub use invoices::{
    create_invoice, create_invoice_item, delete_invoice, finalize_invoice, invoice_lines,
    invoice_pdf, list_invoice_items, list_invoices, mark_uncollectible, pay_invoice, public_pdf,
    retrieve_invoice, retrieve_invoice_item, void_invoice,
};
pub use subscriptions::{
    cancel_subscription, create_subscription, create_subscription_as, list_subscriptions,
    retrieve_subscription, retry_for_customer, update_subscription,
};

/// Real-time subscriptions waiting for the scheduler.
pub const DUE: &str = "cp:billing:due";
/// The scheduler's lease.
pub const LEASE: &str = "cp:billing:lease";
/// The cutoff time of a run in progress (so another daemon can finish it).
pub const RUN: &str = "cp:billing:run";

pub fn clock_due(clock: &str) -> String {
    format!("cp:billing:clock:{clock}")
}

/// Billing's view of the daemon: the store, the payment processor, and the settings.
#[derive(Clone)]
pub struct Billing {
    pub store: Store,
    pub payments: Payments,
    pub public_base: String,
    dunning: Vec<i64>,
    final_action: String,
    pub lease: Duration,
    pub concurrency: usize,
    pub invoice_prefix: String,
    pub consumer: String,
    pub schedule: String,
}

impl Billing {
    pub fn new(payments: Payments, config: &Config) -> Self {
        Self {
            store: payments.store.clone(),
            public_base: config.public_base(),
            dunning: config
                .dunning_hours()
                .into_iter()
                .map(|h| (h * 3600) as i64)
                .collect(),
            final_action: config.billing.final_action.clone(),
            lease: Duration::from_secs(config.billing.lease_seconds),
            concurrency: config.billing.concurrency as usize,
            invoice_prefix: config.billing.invoice_prefix.clone(),
            consumer: config.instance_name(),
            schedule: config.billing.schedule.clone(),
            payments,
        }
    }

    /// The time a customer lives at: their test clock's, or the daemon's.
    pub async fn now_for(&self, scope: &Scope, test_clock: Option<&str>) -> Result<i64, ApiError> {
        match test_clock {
            Some(c) => Ok(clocks::frozen_time(&self.store, scope, c)
                .await?
                .unwrap_or_else(crate::clock::now)),
            None => Ok(crate::clock::now()),
        }
    }

    /// The required `customer` of a billing request (an unknown one is a 400 naming it, as a
    /// parameter rather than a path), and the time that customer lives at.
    pub(crate) async fn billed_customer(
        &self,
        scope: &Scope,
        p: &mut calmony_protocol::params::Params,
    ) -> Result<(calmony_protocol::customer::Customer, i64), ApiError> {
        let id = p
            .string_max(&["customer", "customerId"], 100)?
            .into_option()
            .ok_or_else(|| ApiError::missing_param("customer"))?;
        let (_, customer): (u64, calmony_protocol::customer::Customer) =
            catalog::load(&self.store, scope, "cus", "customer", &id, "customer")
                .await
                .map_err(|mut e| {
                    e.status = 400;
                    e
                })?;
        let now = self.now_for(scope, customer.test_clock.as_deref()).await?;
        Ok((customer, now))
    }

    /// The due set a subscription belongs in.
    pub fn due_set(test_clock: Option<&str>) -> String {
        match test_clock {
            Some(c) => clock_due(c),
            None => DUE.to_string(),
        }
    }
}

/// A member of a due set: where the subscription lives.
pub fn due_member(scope: &Scope, sub: &str) -> String {
    format!("{}|{}|{sub}", scope.project, scope.mode)
}

pub fn parse_due_member(m: &str) -> Option<(Scope, String)> {
    let mut it = m.split('|');
    let (p, mode, sub) = (it.next()?, it.next()?, it.next()?);
    Some((
        Scope::new(p.to_string(), calmony_protocol::Mode::parse(mode)?),
        sub.to_string(),
    ))
}
