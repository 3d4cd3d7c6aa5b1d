//! [`Billing`]: billing's view of the daemon (the store, the payment processor) and its
//! settings from the configuration. A leaf below every billing file that takes one, so none
//! of them reaches up into `billing/mod.rs`.

use std::time::Duration;

use calmony_config::Config;
use calmony_protocol::ApiError;
use calmony_protocol::customer::Customer;
use calmony_protocol::params::Params;

use super::catalog;
use super::customer_time;
use super::dunning::FinalAction;
use super::pdf::PdfSlot;
use crate::payments::Payments;
use crate::store::{Scope, Store};

/// Billing's view of the daemon: the store, the payment processor, and the settings.
#[derive(Clone)]
pub struct Billing {
    pub store: Store,
    pub payments: Payments,
    pub public_base: String,
    /// The wait before each dunning retry, in seconds.
    dunning: Vec<i64>,
    final_action: FinalAction,
    pub lease: Duration,
    pub concurrency: usize,
    pub invoice_prefix: String,
    pub consumer: String,
    pub schedule: String,
    /// Renders invoice PDFs; the daemon provides the InvoiceGenerator here.
    pub pdf: PdfSlot,
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
            final_action: FinalAction::of(&config.billing.final_action),
            lease: Duration::from_secs(config.billing.lease_seconds),
            concurrency: config.billing.concurrency as usize,
            invoice_prefix: config.billing.invoice_prefix.clone(),
            consumer: config.instance_name(),
            schedule: config.billing.schedule.clone(),
            pdf: PdfSlot::default(),
            payments,
        }
    }

    /// The time a customer lives at: their test clock's, or the daemon's.
    pub async fn now_for(&self, scope: &Scope, test_clock: Option<&str>) -> Result<i64, ApiError> {
        customer_time::now_for(&self.store, scope, test_clock).await
    }

    /// The required `customer` of a billing request (an unknown one is a 400 naming it, as a
    /// parameter rather than a path), and the time that customer lives at.
    pub(crate) async fn billed_customer(
        &self,
        scope: &Scope,
        p: &mut Params,
    ) -> Result<(Customer, i64), ApiError> {
        let id = p
            .string_max(&["customer", "customerId"], 100)?
            .into_option()
            .ok_or_else(|| ApiError::missing_param("customer"))?;
        let (_, customer): (u64, Customer) =
            catalog::load(&self.store, scope, "cus", "customer", &id, "customer")
                .await
                .map_err(|mut e| {
                    e.status = 400;
                    e
                })?;
        let now = self.now_for(scope, customer.test_clock.as_deref()).await?;
        Ok((customer, now))
    }

    /// The wait before each dunning retry, in seconds.
    pub fn dunning_secs(&self) -> &[i64] {
        &self.dunning
    }

    /// What a subscription becomes after its last dunning retry fails.
    pub fn final_action(&self) -> FinalAction {
        self.final_action
    }
}
