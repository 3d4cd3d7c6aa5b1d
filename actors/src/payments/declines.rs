//! A declined attempt, whatever path it came by (the API's confirm, a 3-D Secure continuation,
//! the hosted checkout page): one place decides what it does to the payment and what it
//! announces, so every decline emits the same events, `charge.failed`,
//! `payment_intent.payment_failed` and the Calmony docs' name for the latter,
//! `payment_intent.failed`.

use calmony_protocol::charge::Charge;
use calmony_protocol::event::{Event, EventRequest};
use calmony_protocol::payment_intent::PaymentIntent;
use calmony_protocol::payment_method::PaymentMethod;
use serde_json::{Value, json};

use super::transitions::IntentStatus;
use crate::gateway::AuthOutcome;
use crate::store::Scope;

/// What a declined attempt writes beside the intent.
#[derive(Debug)]
pub struct Declined {
    /// The failed charge (new: write it and index it).
    pub charge: Charge,
    /// Stripe's card error, as `last_payment_error` and the API's answer carry it.
    pub error: Value,
    /// The events, in order.
    pub events: Vec<Event>,
}

/// Record a refused attempt on `intent`: `requires_payment_method`, the decline as its
/// `last_payment_error`, `charge` (a new charge for the attempt) failed and its latest. Pure:
/// the caller commits the intent, the charge and the events together.
pub fn record(
    intent: &mut PaymentIntent,
    mut charge: Charge,
    outcome: AuthOutcome,
    method: Option<&PaymentMethod>,
    scope: &Scope,
    request: &EventRequest,
    now: i64,
) -> Declined {
    let (code, decline_code, gateway_message, txn) = match outcome {
        AuthOutcome::Declined {
            txn,
            code,
            decline_code,
            message,
        } => (code, decline_code, message, txn),
        AuthOutcome::Failed { code, message } => {
            (code, "processing_error".to_string(), message, None)
        }
        // A challenge without a page to send the cardholder to cannot be completed.
        AuthOutcome::Challenge { .. } | AuthOutcome::Approved { .. } => (
            0,
            "authentication_required".to_string(),
            String::new(),
            None,
        ),
    };
    let (stripe_code, message) = calmony_protocol::error::decline_words(&decline_code);
    if let Some(t) = &txn {
        charge.cardstream_transaction_id = t.transaction_id.clone();
    }
    charge.status = super::transitions::ChargeStatus::Failed.as_str().into();
    charge.paid = false;
    charge.failure_code = Some(stripe_code.into());
    charge.failure_message = Some(message.into());
    charge.outcome = json!({"network_status": "declined_by_network", "type": "issuer_declined", "reason": decline_code, "seller_message": gateway_message, "gateway_code": code});
    let error = json!({
        "type": "card_error",
        "code": stripe_code,
        "decline_code": decline_code,
        "message": message,
        "charge": charge.id,
        "payment_method": method,
    });
    intent.status = IntentStatus::RequiresPaymentMethod.as_str().into();
    intent.last_payment_error = Some(error.clone());
    intent.latest_charge = Some(charge.id.clone());
    intent.next_action = None;
    if let Some(t) = &txn {
        intent.cardstream_transaction_id = t.transaction_id.clone();
    }
    let events = vec![
        crate::resource::event("charge.failed", &charge, scope, request, now),
        crate::resource::event("payment_intent.payment_failed", intent, scope, request, now),
        crate::resource::event("payment_intent.failed", intent, scope, request, now),
    ];
    Declined {
        charge,
        error,
        events,
    }
}
