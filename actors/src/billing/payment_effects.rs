//! Billing's side of a finished payment ([`crate::payments::PaymentEffects`]): the invoice
//! it pays takes its result (paid, or dunning after a decline), or a one-off payment gets its
//! paid receipt invoice, in the payment's own finish commit.
//!
//! The payments processor is built with [`BillingEffects`] and never names billing's types;
//! the invoice a payment carries from its begin to its finish is a [`KnownInvoice`], handed
//! over as a [`crate::payments::InvoiceSnapshot`] and taken back here.

use calmony_protocol::ApiError;
use futures_util::future::BoxFuture;

use super::collection::on_payment;
use super::invoice_records::KnownInvoice;
use super::receipts::receipt_for;
use crate::payments::{BillingEffect, FinishedPayment, InvoiceSnapshot, PaymentEffects};
use crate::store::{Store, Tx};

/// Billing's writes for every finished payment.
#[derive(Debug, Clone, Copy, Default)]
pub struct BillingEffects;

impl PaymentEffects for BillingEffects {
    fn apply<'a>(
        &'a self,
        store: &'a Store,
        tx: &'a mut Tx,
        f: FinishedPayment<'a>,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            match (f.invoice, f.effect) {
                (Some(inv), BillingEffect::InvoicePaid | BillingEffect::InvoiceFailed) => {
                    let known = f
                        .carried
                        .and_then(|c| c.into_any().downcast::<KnownInvoice>().ok())
                        .map(|k| *k);
                    on_payment(
                        store,
                        tx,
                        f.scope,
                        inv,
                        Some(&f.intent.id),
                        f.effect == BillingEffect::InvoicePaid,
                        &f.settings.dunning_secs,
                        &f.settings.final_action,
                        f.request,
                        known,
                    )
                    .await
                }
                (None, BillingEffect::Receipt) => receipt_for(
                    tx,
                    f.scope,
                    f.intent,
                    &f.settings.invoice_prefix,
                    f.public_base,
                    f.request,
                    f.now,
                )
                .map(|_| ()),
                _ => Ok(()),
            }
        })
    }
}

impl InvoiceSnapshot for KnownInvoice {
    fn renumber(&mut self, placeholder: &str, number: &str) {
        if self.invoice.number.as_deref() == Some(placeholder) {
            self.invoice.number = Some(number.to_string());
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}
