//! What a finished payment means outside payments, as a hook the processor is built with.
//!
//! A payment's result changes billing's records (an invoice paid, dunning after a decline, a
//! receipt invoice for a one-off payment) and those writes MUST land in the finish's own
//! commit: a paid payment with an unpaid invoice would charge the customer again. So billing
//! does not hear of it afterwards; it adds its writes to the finish's [`Tx`] through
//! [`PaymentEffects`], given the finished payment as a typed value. Payments names no billing
//! type: billing implements the hook (`billing::payment_effects`), and the invoice it hands a
//! payment to carry to its finish travels as an opaque [`InvoiceSnapshot`].

use std::any::Any;

use calmony_protocol::ApiError;
use calmony_protocol::event::EventRequest;
use calmony_protocol::payment_intent::PaymentIntent;
use futures_util::future::BoxFuture;

use super::transitions::BillingEffect;
use crate::store::{Scope, Store, Tx};

/// The billing settings a payment's finish applies.
#[derive(Debug, Clone)]
pub struct BillingSettings {
    pub dunning_secs: Vec<i64>,
    pub final_action: String,
    pub invoice_prefix: String,
    /// Write a paid receipt invoice for every one-off payment.
    pub receipts: bool,
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self {
            dunning_secs: vec![86_400, 86_400, 86_400],
            final_action: "past_due".into(),
            invoice_prefix: "CP-".into(),
            receipts: true,
        }
    }
}

/// An invoice as billing's begin commit left it, carried by the payment to its finish so the
/// finish need not read it back. Opaque to payments: only billing reads it.
pub trait InvoiceSnapshot: Send + Sync + 'static {
    /// The invoice's number, taken by the commit that finalized it, in place of `placeholder`.
    fn renumber(&mut self, placeholder: &str, number: &str);
    /// For billing's hook to take back its own type.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// A payment as its finish commit leaves it, for the hook.
pub struct FinishedPayment<'a> {
    pub scope: &'a Scope,
    pub intent: &'a PaymentIntent,
    /// The invoice the payment pays, if any.
    pub invoice: Option<&'a str>,
    /// What the result means for billing ([`BillingEffect::None`] is never passed).
    pub effect: BillingEffect,
    /// The invoice as the payment's begin left it, when the finish runs in that same request.
    pub carried: Option<Box<dyn InvoiceSnapshot>>,
    pub settings: &'a BillingSettings,
    /// Where browsers reach this daemon (the receipt's links).
    pub public_base: &'a str,
    /// The request the payment's events name.
    pub request: &'a EventRequest,
    /// The time of the receipt (never before the intent was created).
    pub now: i64,
}

/// Billing's writes for a finished payment, added to the finish's commit.
pub trait PaymentEffects: Send + Sync + 'static {
    /// Add to `tx` what `finished` changes outside payments. It may read (`store`) but must
    /// write only through `tx`; an error aborts the finish, which is retried.
    fn apply<'a>(
        &'a self,
        store: &'a Store,
        tx: &'a mut Tx,
        finished: FinishedPayment<'a>,
    ) -> BoxFuture<'a, Result<(), ApiError>>;
}

/// Payments built without billing: a result that billing must record is refused, so the
/// command stays pending (and recovery retries it) rather than the invoice being left unpaid.
pub struct NoEffects;

impl PaymentEffects for NoEffects {
    fn apply<'a>(
        &'a self,
        _store: &'a Store,
        _tx: &'a mut Tx,
        finished: FinishedPayment<'a>,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            tracing::error!(intent = %finished.intent.id, effect = ?finished.effect, "a payment's billing effect has no billing to apply it; built without Payments::with_effects");
            Err(ApiError::new(
                500,
                calmony_protocol::ErrorType::ApiError,
                "The payment's result could not be recorded.",
            ))
        })
    }
}
