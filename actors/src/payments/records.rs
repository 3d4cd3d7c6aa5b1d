//! How a payment's records are written: the intent with its internals, a new charge, and
//! an event about either. Shared by the card path (`intents`) and Pay by Bank (`bank`).

use calmony_protocol::charge::{self, Charge};
use calmony_protocol::event::{Event, EventRequest};
use calmony_protocol::payment_intent::PaymentIntent;
use calmony_protocol::payment_method::PaymentMethod;
use calmony_protocol::{ApiError, ids};
use serde_json::{Value, json};

use super::IntentInternal;
use super::transitions::ChargeStatus;
use crate::clock;
use crate::resource::to_json;
use crate::store::{Scope, Tx};

/// A payment's events happen now, on the wall clock.
pub(crate) fn event(
    kind: &str,
    object: &impl serde::Serialize,
    scope: &Scope,
    request: &EventRequest,
) -> Event {
    crate::resource::event(kind, object, scope, request, clock::now())
}

pub(crate) fn write_intent(
    tx: &mut Tx,
    scope: &Scope,
    version: u64,
    intent: &PaymentIntent,
    internal: &IntentInternal,
) -> Result<String, ApiError> {
    let body = to_json(intent)?;
    let internal = to_json(internal)?;
    tx.put_with(
        &scope.record(&intent.id),
        version,
        &body,
        &[("internal", &internal)],
    );
    Ok(body)
}

pub(crate) fn new_charge(
    intent: &PaymentIntent,
    scope: &Scope,
    transaction_id: Option<String>,
    method: Option<&PaymentMethod>,
) -> Charge {
    let details = match method {
        Some(m) => json!({"type": "card", "card": {
            "brand": m.card.brand, "last4": m.card.last4, "exp_month": m.card.exp_month,
            "exp_year": m.card.exp_year, "fingerprint": m.card.fingerprint, "funding": m.card.funding,
            "country": m.card.country}}),
        None => json!({"type": "card"}),
    };
    Charge {
        id: ids::new_id(charge::PREFIX),
        object: "charge".into(),
        amount: intent.amount,
        amount_captured: 0,
        amount_refunded: 0,
        balance_transaction: None,
        captured: false,
        created: clock::now(),
        currency: intent.currency.clone(),
        customer: intent.customer.clone(),
        description: intent.description.clone(),
        failure_code: None,
        failure_message: None,
        livemode: scope.livemode(),
        metadata: intent.metadata.clone(),
        outcome: Value::Null,
        paid: false,
        payment_intent: intent.id.clone(),
        payment_method: intent.payment_method.clone(),
        payment_method_details: details,
        refunded: false,
        status: ChargeStatus::Failed.as_str().into(),
        cardstream_transaction_id: transaction_id,
    }
}
