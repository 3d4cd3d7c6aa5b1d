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

/// The list index of an intent's refunds.
pub(crate) fn intent_refunds(scope: &Scope, intent: &str) -> String {
    scope.key(&format!("payment_intent:{intent}:refunds"))
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
    let details = match method.and_then(|m| m.card.as_ref()) {
        Some(c) => json!({"type": "card", "card": {
            "brand": c.brand, "last4": c.last4, "exp_month": c.exp_month,
            "exp_year": c.exp_year, "fingerprint": c.fingerprint, "funding": c.funding,
            "country": c.country}}),
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

/// The list index of a scope's payment methods.
pub(crate) fn method_index(scope: &Scope) -> String {
    scope.key("payment_methods")
}

/// The list index of a customer's payment methods.
pub(crate) fn customer_method_index(scope: &Scope, customer: &str) -> String {
    scope.key(&format!("customer:{customer}:payment_methods"))
}

/// A `pay_by_bank` payment method made for a confirmation (`payment_method_data`), written
/// into `tx`: as `POST /v1/payment_methods` would write it, attached to the intent's
/// customer if it has one.
pub(crate) fn write_bank_method(
    tx: &mut Tx,
    scope: &Scope,
    customer: Option<&str>,
    request: &EventRequest,
) -> Result<PaymentMethod, ApiError> {
    let mut pm = PaymentMethod::pay_by_bank(
        ids::new_id(calmony_protocol::payment_method::PREFIX),
        clock::now(),
        scope.livemode(),
    );
    pm.set_customer(customer.map(str::to_string));
    let key = scope.record(&pm.id);
    tx.put(&key, 1, &to_json(&pm)?)
        .index(&method_index(scope), &pm.id);
    if let Some(c) = customer {
        tx.index(&customer_method_index(scope, c), &pm.id);
        tx.event(
            scope,
            &event("payment_method.attached", &pm, scope, request),
        );
    }
    Ok(pm)
}
