//! Payment intents: create, retrieve, update, list, confirm, capture, cancel, and the finish
//! step every gateway answer goes through. See the module above for the path of a payment.

use calmony_protocol::charge::Charge;
use calmony_protocol::event::{Event, EventRequest};
use calmony_protocol::list::ListParams;
use calmony_protocol::params::{Field, Params};
use calmony_protocol::payment_intent::{
    self, ConfirmParams, CreateParams, CreatedRange, PAY_BY_BANK, PaymentIntent, UpdateParams,
};
use calmony_protocol::payment_method::PaymentMethod;
use calmony_protocol::{ApiError, ErrorType, ids};
use serde_json::{Value, json};

use super::bank;
use super::effects::{FinishedPayment, InvoiceSnapshot};
use super::records::{event, new_charge, write_bank_method, write_intent};
use super::transitions::{
    self, Answer, BillingEffect, ChargeChange, ChargeStatus, CommandOp, Facts, Finish,
    IntentStatus, NextAction, PaymentError, Reply as TransitionReply,
};
use super::{
    COMMANDS, Challenge, Command, GROUP, HOLD_MS, IntentInternal, Landing, Loaded, Payments,
};
use crate::clock;
use crate::context::{Reply, RequestContext};
use crate::gateway::{AuthOutcome, GatewayError, ModeGateway, Sale, ThreeDsContinuation, TxnState};
use crate::resource::{answered, commit, commit_for, committed, page_body, to_json};
use crate::store::retry::{Attempt, until_committed};
use crate::store::{Commit, Scope, Tx};

pub(super) fn index(scope: &Scope) -> String {
    scope.key("payment_intents")
}

fn customer_index(scope: &Scope, customer: &str) -> String {
    scope.key(&format!("customer:{customer}:payment_intents"))
}

/// A referenced object in a request's parameters that does not exist (400, naming the param).
pub(crate) fn missing_ref(object: &str, id: &str, param: &str) -> ApiError {
    let mut e = ApiError::no_such(object, id, param);
    e.status = 400;
    e
}

/// The customer must exist in the request's scope and not be deleted.
pub(crate) async fn check_customer(
    p: &Payments,
    ctx: &RequestContext,
    id: &str,
    param: &str,
) -> Result<(), ApiError> {
    if !ids::is_valid(calmony_protocol::customer::PREFIX, id) {
        return Err(missing_ref("customer", id, param));
    }
    match ctx.read(&p.store, id).await? {
        Some(f) if !f.record.json.contains("\"deleted\":true") => Ok(()),
        _ => Err(missing_ref("customer", id, param)),
    }
}

/// A payment method of this scope with its gateway token; for a request (`ctx`), as the key
/// check read it if it did.
pub(crate) async fn load_method(
    p: &Payments,
    scope: &Scope,
    ctx: Option<&RequestContext>,
    id: &str,
    param: &str,
) -> Result<(PaymentMethod, String), ApiError> {
    if !ids::is_valid(calmony_protocol::payment_method::PREFIX, id) {
        return Err(missing_ref("payment_method", id, param));
    }
    let f = p
        .fetch(scope, ctx, id)
        .await?
        .ok_or_else(|| missing_ref("payment_method", id, param))?;
    let pm: PaymentMethod = f.record.parse(&scope.record(id))?;
    Ok((pm, f.xref.unwrap_or_default()))
}

fn unexpected(intent: &PaymentIntent, action: &str) -> ApiError {
    ApiError::new(
        400,
        ErrorType::InvalidRequestError,
        format!(
            "You cannot {action} this PaymentIntent because it has a status of {}.",
            intent.status
        ),
    )
    .with_code("payment_intent_unexpected_state")
    .with_param("intent")
}

/// `POST /v1/payment_intents`, with `confirm: true` going straight on to the gateway.
pub async fn create(p: &Payments, ctx: &RequestContext, params: Params) -> Result<Reply, ApiError> {
    let c = CreateParams::take(params)?;
    let scope = &ctx.scope;
    if let Some(cus) = &c.customer {
        check_customer(p, ctx, cus, "customer").await?;
    }
    let method = match &c.payment_method {
        Some(pm) => {
            let loaded = load_method(p, scope, Some(ctx), pm, "payment_method").await?;
            check_owner(&loaded.0, c.customer.as_deref())?;
            Some(loaded)
        }
        None => None,
    };
    if c.payment_method_data.is_some() && c.payment_method.is_some() {
        return Err(ApiError::invalid_param(
            "parameter_invalid_value",
            "payment_method_data",
            "Pass either payment_method or payment_method_data, not both.",
        ));
    }
    if c.payment_method_data.is_some() && !c.confirm {
        return Err(ApiError::invalid_param(
            "parameter_invalid_value",
            "payment_method_data",
            "payment_method_data is used when the intent is confirmed: pass confirm=true, or \
             pass it to /confirm.",
        ));
    }
    let id = ids::new_id(payment_intent::PREFIX);
    let mut intent = PaymentIntent::new(id, c.amount, c.currency, clock::now(), scope.livemode());
    if let Some(types) = c.payment_method_types {
        intent.payment_method_types = types;
    }
    bank::check_amount(p, &intent)?;
    let method_is_bank = method.as_ref().is_some_and(|(m, _)| m.kind == PAY_BY_BANK);
    let by_bank = c.confirm
        && (method_is_bank
            || bank::wanted(
                &intent,
                c.payment_method_data.as_deref(),
                c.payment_method.is_some(),
            ));
    if c.confirm && c.payment_method.is_none() && !by_bank {
        return Err(ApiError::missing_param("payment_method"));
    }
    intent.capture_method = c.capture_method;
    intent.description = c.description;
    intent.receipt_email = c.receipt_email;
    intent.return_url = c.return_url;
    intent.statement_descriptor = c.statement_descriptor;
    if c.payment_method.is_some() {
        intent.status = IntentStatus::RequiresConfirmation.as_str().into();
    }
    intent.set_customer(c.customer.clone());
    intent.set_payment_method(c.payment_method.clone());
    if let Some(m) = &c.metadata {
        m.apply(&mut intent.metadata, "metadata")?;
    }
    let request = ctx.event_request();
    let created = event("payment_intent.created", &intent, scope, &request);
    let mut tx = Tx::new();
    // A fresh id: no record can be there already, so no absence check is spent on it.
    tx.index(&index(scope), &intent.id);
    if let Some(cus) = &intent.customer {
        tx.index(&customer_index(scope, cus), &intent.id);
    }
    tx.event(scope, &created);
    if !c.confirm {
        let body = write_intent(&mut tx, scope, 1, &intent, &IntentInternal::default())?;
        tx.respond(ctx, 200, &body);
        return answered(commit_for(&p.store, ctx, &mut tx).await?, body);
    }
    if by_bank {
        // Created and sent to the bank page in one commit; no money moves until the payer
        // picks a bank and approves.
        let mut internal = IntentInternal::default();
        bank::start(p, scope, &mut intent, &mut internal)?;
        if intent.payment_method.is_none() {
            // `payment_method_data`: the payment method is made in this commit, as Stripe
            // makes one for the confirmation.
            let pm = write_bank_method(&mut tx, scope, intent.customer.as_deref(), &request)?;
            intent.set_payment_method(Some(pm.id));
        }
        let body = write_intent(&mut tx, scope, 1, &intent, &internal)?;
        tx.event(
            scope,
            &event("payment_intent.requires_action", &intent, scope, &request),
        );
        tx.respond(ctx, 200, &body);
        return answered(commit_for(&p.store, ctx, &mut tx).await?, body);
    }
    // Created and confirmed in one commit: a crash can't leave a created-but-unconfirmed
    // intent behind an idempotency key that would then create a second one.
    p.gateway_for(scope.mode)?;
    let attempt = ids::new_id("att");
    intent.status = IntentStatus::Processing.as_str().into();
    let internal = IntentInternal {
        attempt: Some(attempt.clone()),
        ..Default::default()
    };
    write_intent(&mut tx, scope, 1, &intent, &internal)?;
    let cmd = command(ctx, &intent.id, CommandOp::Confirm, &attempt, Value::Null);
    add_command(&mut tx, p, ctx, &cmd);
    match commit_for(&p.store, ctx, &mut tx).await? {
        Commit::Done(Some(cmd_id)) => {
            run(p, &cmd, &cmd_id, Begun::here(1, intent, internal, method)).await
        }
        _ => Err(ApiError::lock_timeout()),
    }
}

fn check_owner(method: &PaymentMethod, customer: Option<&str>) -> Result<(), ApiError> {
    match (&method.customer, customer) {
        (Some(owner), Some(c)) if owner != c => Err(ApiError::invalid_param(
            "payment_method_customer_mismatch",
            "payment_method",
            format!(
                "The payment method {} belongs to another customer than {c}.",
                method.id
            ),
        )),
        _ => Ok(()),
    }
}

fn command(
    ctx: &RequestContext,
    intent: &str,
    op: CommandOp,
    attempt: &str,
    args: Value,
) -> Command {
    Command {
        project: ctx.scope.project.clone(),
        mode: ctx.scope.mode,
        intent: intent.to_string(),
        op,
        attempt: attempt.to_string(),
        args,
        claim: ctx
            .idempotency
            .as_ref()
            .map(|c| (c.key.clone(), c.redis_key.clone(), c.owner.clone())),
        request: Some(ctx.request_id.clone()),
    }
}

/// The command entry, and the request's idempotency claim held until the result is stored.
fn add_command(tx: &mut Tx, p: &Payments, ctx: &RequestContext, cmd: &Command) {
    tx.command(COMMANDS, GROUP, &p.consumer, &[("cmd", &cmd.encode())]);
    if let Some(claim) = &ctx.idempotency {
        tx.hold_claim(claim, HOLD_MS);
    }
}

/// An invoice to charge (from billing).
pub struct InvoiceCharge {
    pub intent_id: String,
    pub invoice: String,
    pub customer: String,
    pub payment_method: String,
    pub amount: i64,
    pub description: Option<String>,
    /// A merchant-initiated recurring payment (a subscription's), charged without the
    /// cardholder: `type=9`, no 3-D Secure.
    pub recurring: bool,
    pub created: i64,
}

/// An invoice's charge whose begin is written in a change not yet committed: once that commit
/// lands (answering the command's id), [`InvoiceChargeBegun::run`] carries it out.
pub struct InvoiceChargeBegun {
    cmd: Command,
    begun: Begun,
}

impl InvoiceChargeBegun {
    /// With the invoice as the begin commit leaves it (the finish then need not read it).
    pub fn with_invoice(mut self, known: impl InvoiceSnapshot) -> Self {
        if let Begun::Here(w) = &mut self.begun {
            w.invoice = Some(Box::new(known));
        }
        self
    }

    /// When the begin was committed in the change that finalized its invoice: the number that
    /// commit took, in place of `placeholder` (in the intent's description and the invoice as
    /// carried). Without it the intent is read afresh, as recovery reads it, rather than
    /// carried on with the placeholder.
    pub fn numbered(mut self, placeholder: &str, number: Option<&str>) -> Self {
        let Begun::Here(w) = &mut self.begun else {
            return self;
        };
        let Some(number) = number else {
            self.begun = Begun::Recovered;
            return self;
        };
        if let Some(d) = &mut w.loaded.intent.description {
            *d = d.replace(placeholder, number);
        }
        if let Some(k) = &mut w.invoice {
            k.renumber(placeholder, number);
        }
        self
    }

    /// The gateway call and the finish, once the commit holding the begin appended command
    /// `cmd_id`.
    pub async fn run(self, p: &Payments, cmd_id: &str) -> Result<Reply, ApiError> {
        run(p, &self.cmd, cmd_id, self.begun).await
    }
}

/// The begin of an invoice's charge (the payment intent, created `processing`, its event and
/// its command), as a change for the caller to commit, alone or within its own change.
pub async fn begin_invoice_charge(
    p: &Payments,
    scope: &Scope,
    ctx: Option<&RequestContext>,
    c: InvoiceCharge,
) -> Result<(Tx, InvoiceChargeBegun), ApiError> {
    p.gateway_for(scope.mode)?;
    let method = load_method(p, scope, None, &c.payment_method, "payment_method").await?;
    if method.0.card.is_none() {
        // A bank transfer needs its payer to approve each payment: nothing to charge alone.
        return Err(ApiError::invalid_param(
            "payment_method_unexpected_type",
            "payment_method",
            format!(
                "The payment method {} is of type {}, which cannot be charged without its \
                 payer; invoices are charged to cards.",
                method.0.id, method.0.kind
            ),
        ));
    }
    // Charged without the cardholder, an invoice takes only a card its customer still holds:
    // a detached one (no customer any more) may not be used again, as with Stripe.
    if method.0.customer.as_deref() != Some(c.customer.as_str()) {
        return Err(ApiError::invalid_param(
            "payment_method_not_attached",
            "payment_method",
            format!(
                "The payment method {} is not attached to the invoice's customer {}.",
                method.0.id, c.customer
            ),
        ));
    }
    let id = c.intent_id;
    let mut intent = PaymentIntent::new(
        id.clone(),
        c.amount,
        "gbp".into(),
        c.created,
        scope.livemode(),
    );
    intent.description = c.description;
    intent.metadata = [("invoice".to_string(), c.invoice.clone())]
        .into_iter()
        .collect();
    intent.setup_future_usage = Some("off_session".into());
    intent.status = IntentStatus::Processing.as_str().into();
    intent.set_customer(Some(c.customer.clone()));
    intent.set_payment_method(Some(c.payment_method.clone()));
    let attempt = ids::new_id("att");
    let internal = IntentInternal {
        attempt: Some(attempt.clone()),
        invoice: Some(c.invoice.clone()),
        ..Default::default()
    };
    let request = ctx.map_or(EventRequest::default(), RequestContext::event_request);
    let mut tx = Tx::new();
    let key = scope.record(&id);
    tx.expect_version(&key, 0)
        .index(&index(scope), &id)
        .index(&customer_index(scope, &c.customer), &id);
    write_intent(&mut tx, scope, 1, &intent, &internal)?;
    tx.event(
        scope,
        &event("payment_intent.created", &intent, scope, &request),
    );
    let cmd = Command {
        project: scope.project.clone(),
        mode: scope.mode,
        intent: id.clone(),
        op: CommandOp::Confirm,
        attempt,
        args: json!({"recurring": c.recurring}),
        claim: ctx
            .and_then(|x| x.idempotency.as_ref())
            .map(|c| (c.key.clone(), c.redis_key.clone(), c.owner.clone())),
        request: request.id.clone(),
    };
    tx.command(COMMANDS, GROUP, &p.consumer, &[("cmd", &cmd.encode())]);
    if let Some(claim) = ctx.and_then(|x| x.idempotency.as_ref()) {
        tx.hold_claim(claim, HOLD_MS);
    }
    let begun = Begun::here(1, intent, internal, Some(method));
    Ok((tx, InvoiceChargeBegun { cmd, begun }))
}

/// `GET /v1/payment_intents/:id`.
pub async fn retrieve(
    p: &Payments,
    ctx: &RequestContext,
    id: &str,
    mut params: Params,
) -> Result<Reply, ApiError> {
    // Answered exactly as stored: no parse and re-encode on the hottest read.
    params.ignore(&["client_secret"]);
    crate::resource::retrieve_stored(
        &p.store,
        ctx,
        payment_intent::PREFIX,
        "payment_intent",
        id,
        params,
    )
    .await
}

/// `POST /v1/payment_intents/:id`: change amount, customer, payment method, description or
/// metadata before the intent is confirmed.
pub async fn update(
    p: &Payments,
    ctx: &RequestContext,
    id: &str,
    params: Params,
) -> Result<Reply, ApiError> {
    let u = UpdateParams::take(params)?;
    let scope = &ctx.scope;
    let u = &u;
    until_committed(
        || async move {
            let Loaded {
                version,
                mut intent,
                internal,
            } = p.load(scope, Some(ctx), id).await?;
            if !matches!(
                IntentStatus::of(&intent),
                Some(
                    IntentStatus::RequiresPaymentMethod
                        | IntentStatus::RequiresConfirmation
                        | IntentStatus::RequiresAction
                )
            ) {
                return Err(unexpected(&intent, "update"));
            }
            if let Some(a) = u.amount {
                if internal
                    .bank
                    .as_ref()
                    .is_some_and(|b| b.phase != super::bank_attempt::Phase::ChoosingBank)
                {
                    return Err(ApiError::invalid_param(
                        "payment_intent_unexpected_state",
                        "amount",
                        "The amount cannot change while the payer's bank holds a consent for it: \
                         cancel this PaymentIntent and create another.",
                    ));
                }
                intent.amount = a;
                bank::check_amount(p, &intent)?;
            }
            if let Some(cus) = &u.customer {
                check_customer(p, ctx, cus, "customer").await?;
                intent.set_customer(Some(cus.clone()));
            }
            if let Some(pm) = &u.payment_method {
                let (method, _) = load_method(p, scope, Some(ctx), pm, "payment_method").await?;
                check_owner(&method, intent.customer.as_deref())?;
                intent.set_payment_method(Some(pm.clone()));
                intent.status = IntentStatus::RequiresConfirmation.as_str().into();
            }
            match &u.description {
                Field::Set(d) => intent.description = Some(d.clone()),
                Field::Unset => intent.description = None,
                Field::Absent => {}
            }
            match &u.receipt_email {
                Field::Set(e) => intent.receipt_email = Some(e.clone()),
                Field::Unset => intent.receipt_email = None,
                Field::Absent => {}
            }
            if let Some(m) = &u.metadata {
                m.apply(&mut intent.metadata, "metadata")?;
            }
            let mut tx = Tx::new();
            tx.expect_version(&scope.record(id), version);
            let body = write_intent(&mut tx, scope, version + 1, &intent, &internal)?;
            if let Some(cus) = &u.customer {
                tx.index(&customer_index(scope, cus), id);
            }
            tx.respond(ctx, 200, &body);
            Ok(committed(commit(&p.store, &tx).await?, body))
        },
        ApiError::lock_timeout,
    )
    .await
}

/// `GET /v1/payment_intents`: newest first, by customer and `created` range.
pub async fn list(
    p: &Payments,
    ctx: &RequestContext,
    mut params: Params,
) -> Result<Reply, ApiError> {
    let list = ListParams::take(&mut params, payment_intent::PREFIX)?;
    let customer = params
        .string_max(&["customer", "customerId"], 100)?
        .into_option();
    let created = CreatedRange::take(&mut params)?;
    params.expand()?;
    params.finish()?;
    let scope = &ctx.scope;
    let index = match &customer {
        Some(c) => customer_index(scope, c),
        None => index(scope),
    };
    let (lo, hi) = ids::time_bounds(payment_intent::PREFIX, created.gte, created.lte);
    let (items, has_more) = p
        .store
        .page_within(scope, &index, &list, lo.as_deref(), hi.as_deref())
        .await?;
    page_body("/v1/payment_intents", &items, has_more).map(Reply::ok)
}

/// `POST /v1/payment_intents/:id/confirm`: `requires_payment_method` (with a payment method)
/// or `requires_confirmation` -> `processing` -> the gateway's answer.
pub async fn confirm(
    p: &Payments,
    ctx: &RequestContext,
    id: &str,
    params: Params,
) -> Result<Reply, ApiError> {
    let c = ConfirmParams::take(params)?;
    let scope = &ctx.scope;
    let c = &c;
    until_committed(
        || async move {
            let Loaded {
                version,
                mut intent,
                ..
            } = p.load(scope, Some(ctx), id).await?;
            if !matches!(
                IntentStatus::of(&intent),
                Some(IntentStatus::RequiresPaymentMethod | IntentStatus::RequiresConfirmation)
            ) {
                return Err(unexpected(&intent, "confirm"));
            }
            if let Some(pm) = &c.payment_method {
                intent.set_payment_method(Some(pm.clone()));
            }
            if let Some(types) = &c.payment_method_types {
                intent.payment_method_types = types.clone();
            }
            if c.return_url.is_some() {
                intent.return_url = c.return_url.clone();
            }
            bank::check_amount(p, &intent)?;
            if c.payment_method_data.is_some() && c.payment_method.is_some() {
                return Err(ApiError::invalid_param(
                    "parameter_invalid_value",
                    "payment_method_data",
                    "Pass either payment_method or payment_method_data, not both.",
                ));
            }
            let method = match (&intent.payment_method, &c.payment_method_data) {
                (Some(pm), None) => {
                    Some(load_method(p, scope, Some(ctx), pm, "payment_method").await?)
                }
                _ => None,
            };
            let method_is_bank = method.as_ref().is_some_and(|(m, _)| m.kind == PAY_BY_BANK);
            if method_is_bank
                || bank::wanted(
                    &intent,
                    c.payment_method_data.as_deref(),
                    c.payment_method.is_some(),
                )
            {
                let mut internal = IntentInternal::default();
                bank::start(p, scope, &mut intent, &mut internal)?;
                let mut tx = Tx::new();
                tx.expect_version(&scope.record(id), version);
                let request = ctx.event_request();
                if c.payment_method_data.is_some() {
                    let pm =
                        write_bank_method(&mut tx, scope, intent.customer.as_deref(), &request)?;
                    intent.set_payment_method(Some(pm.id));
                }
                let body = write_intent(&mut tx, scope, version + 1, &intent, &internal)?;
                tx.event(
                    scope,
                    &event("payment_intent.requires_action", &intent, scope, &request),
                );
                tx.respond(ctx, 200, &body);
                return Ok(committed(commit_for(&p.store, ctx, &mut tx).await?, body));
            }
            p.gateway_for(scope.mode)?;
            let Some(pm) = intent.payment_method.clone() else {
                return Err(ApiError::new(
                    400,
                    ErrorType::InvalidRequestError,
                    "You cannot confirm this PaymentIntent because it's missing a payment method. \
                 Update it with a payment_method or pass one to confirm.",
                )
                .with_code("payment_intent_unexpected_state")
                .with_param("payment_method"));
            };
            let (method, _) = match method {
                Some(m) => m,
                None => load_method(p, scope, Some(ctx), &pm, "payment_method").await?,
            };
            check_owner(&method, intent.customer.as_deref())?;
            intent.last_payment_error = None;
            let mut tx = Tx::new();
            tx.expect_version(&scope.record(id), version);
            let step = (version, intent, IntentInternal::default());
            if let Some(reply) =
                start_step(p, ctx, tx, step, CommandOp::Confirm, Value::Null).await?
            {
                return Ok(Attempt::Done(reply));
            }
            Ok(Attempt::Conflict)
        },
        ApiError::lock_timeout,
    )
    .await
}

/// `POST /v1/payment_intents/:id/capture`: `requires_capture` -> `succeeded`, for all or part.
pub async fn capture(
    p: &Payments,
    ctx: &RequestContext,
    id: &str,
    params: Params,
) -> Result<Reply, ApiError> {
    let amount = payment_intent::take_capture(params)?;
    let scope = &ctx.scope;
    until_committed(
        || async move {
            let Loaded {
                version,
                intent,
                mut internal,
            } = p.load(scope, Some(ctx), id).await?;
            if IntentStatus::of(&intent) != Some(IntentStatus::RequiresCapture) {
                return Err(unexpected(&intent, "capture"));
            }
            let amount = amount.unwrap_or(intent.amount_capturable);
            if amount > intent.amount_capturable {
                return Err(ApiError::invalid_param(
                    "amount_too_large",
                    "amount_to_capture",
                    format!(
                        "amount_to_capture ({amount}) is more than the amount capturable ({}).",
                        intent.amount_capturable
                    ),
                ));
            }
            internal.resume_status = Some(IntentStatus::RequiresCapture.as_str().into());
            let mut tx = Tx::new();
            tx.expect_version(&scope.record(id), version);
            let step = (version, intent, internal);
            if let Some(reply) = start_step(
                p,
                ctx,
                tx,
                step,
                CommandOp::Capture,
                json!({"amount": amount}),
            )
            .await?
            {
                return Ok(Attempt::Done(reply));
            }
            Ok(Attempt::Conflict)
        },
        ApiError::lock_timeout,
    )
    .await
}

/// `POST /v1/payment_intents/:id/cancel`: from any state before money moved, and from
/// `requires_capture` by voiding the authorisation at the gateway.
pub async fn cancel(
    p: &Payments,
    ctx: &RequestContext,
    id: &str,
    params: Params,
) -> Result<Reply, ApiError> {
    let reason = payment_intent::take_cancel(params)?;
    let scope = &ctx.scope;
    let reason = &reason;
    until_committed(
        || async move {
            let Loaded {
                version,
                mut intent,
                mut internal,
            } = p.load(scope, Some(ctx), id).await?;
            let mut tx = Tx::new();
            tx.expect_version(&scope.record(id), version);
            match IntentStatus::of(&intent) {
                Some(
                    IntentStatus::RequiresPaymentMethod
                    | IntentStatus::RequiresConfirmation
                    | IntentStatus::RequiresAction,
                ) => {
                    // A bank attempt ends here, unless its payment may be on its way.
                    bank::on_cancel(&mut tx, scope, &intent.id, &mut internal)?;
                    mark_canceled(&mut intent, reason.clone());
                    internal.challenge = None;
                    let body = write_intent(&mut tx, scope, version + 1, &intent, &internal)?;
                    tx.event(
                        scope,
                        &event(
                            "payment_intent.canceled",
                            &intent,
                            scope,
                            &ctx.event_request(),
                        ),
                    );
                    tx.respond(ctx, 200, &body);
                    if let Commit::Done(_) = commit(&p.store, &tx).await? {
                        return Ok(Attempt::Done(Reply {
                            status: 200,
                            body,
                            stored: true,
                        }));
                    }
                }
                Some(IntentStatus::RequiresCapture) => {
                    internal.resume_status = Some(IntentStatus::RequiresCapture.as_str().into());
                    let step = (version, intent, internal);
                    let args = json!({"reason": reason});
                    if let Some(reply) =
                        start_step(p, ctx, tx, step, CommandOp::Cancel, args).await?
                    {
                        return Ok(Attempt::Done(reply));
                    }
                }
                _ => return Err(unexpected(&intent, "cancel")),
            }
            Ok(Attempt::Conflict)
        },
        ApiError::lock_timeout,
    )
    .await
}

/// Hand a gateway step (`confirm`, `capture`, `cancel`) to the processor: the intent becomes
/// `processing` under a new attempt id, and the command is appended in the same commit as
/// that change (to `tx`, which already holds the caller's version check), then run. `None`:
/// the intent changed meanwhile; the caller reads it again.
async fn start_step(
    p: &Payments,
    ctx: &RequestContext,
    mut tx: Tx,
    (version, mut intent, mut internal): (u64, PaymentIntent, IntentInternal),
    action: CommandOp,
    args: Value,
) -> Result<Option<Reply>, ApiError> {
    let attempt = ids::new_id("att");
    intent.status = IntentStatus::Processing.as_str().into();
    internal.attempt = Some(attempt.clone());
    write_intent(&mut tx, &ctx.scope, version + 1, &intent, &internal)?;
    let cmd = command(ctx, &intent.id, action, &attempt, args);
    add_command(&mut tx, p, ctx, &cmd);
    match commit(&p.store, &tx).await? {
        Commit::Done(Some(cmd_id)) => {
            let begun = Begun::here(version + 1, intent, internal, None);
            run(p, &cmd, &cmd_id, begun).await.map(Some)
        }
        _ => Ok(None),
    }
}

/// `cancellation_reason` is what the client gave, or `null` as Stripe answers without one.
fn mark_canceled(intent: &mut PaymentIntent, reason: Option<String>) {
    intent.status = IntentStatus::Canceled.as_str().into();
    intent.canceled_at = Some(clock::now());
    intent.cancellation_reason = reason;
    intent.next_action = None;
    intent.amount_capturable = 0;
}

/// Continue a 3-D Secure challenge with the fields the issuer's page posted back:
/// `requires_action` -> `processing` -> the gateway's answer. Returns the intent afterwards.
///
/// `session` is the secret the issuer's page carried back (see [`super::three_ds`]): without
/// the one of the intent's current attempt, the intent is not found and nothing changes.
pub async fn continue_challenge(
    p: &Payments,
    scope: &Scope,
    id: &str,
    session: Option<&str>,
    posted: Vec<(String, String)>,
) -> Result<PaymentIntent, ApiError> {
    p.gateway_for(scope.mode)?;
    let posted = &posted;
    until_committed(
        || async move {
            let Loaded {
                version,
                mut intent,
                internal,
            } = p.load(scope, None, id).await?;
            if !super::three_ds_session::session_matches(
                internal.three_ds_session.as_ref(),
                internal.attempt.as_deref(),
                session,
            ) {
                return Err(ApiError::no_such("payment_intent", id, "intent"));
            }
            if IntentStatus::of(&intent) != Some(IntentStatus::RequiresAction)
                || internal.challenge.is_none()
            {
                // Already finished (a second post of the same form): show where it stands.
                return Ok(Attempt::Done(intent));
            }
            intent.status = IntentStatus::Processing.as_str().into();
            intent.next_action = None;
            let mut tx = Tx::new();
            tx.expect_version(&scope.record(id), version);
            write_intent(&mut tx, scope, version + 1, &intent, &internal)?;
            let cmd = Command {
                project: scope.project.clone(),
                mode: scope.mode,
                intent: id.to_string(),
                op: CommandOp::ContinueThreeDs,
                attempt: internal.attempt.clone().unwrap_or_default(),
                args: json!({ "posted": posted }),
                claim: None,
                request: None,
            };
            tx.command(COMMANDS, GROUP, &p.consumer, &[("cmd", &cmd.encode())]);
            if let Commit::Done(Some(cmd_id)) = commit(&p.store, &tx).await? {
                let begun = Begun::here(version + 1, intent, internal, None);
                run(p, &cmd, &cmd_id, begun).await?;
                return Ok(Attempt::Done(p.load(scope, None, id).await?.intent));
            }
            Ok(Attempt::Conflict)
        },
        ApiError::lock_timeout,
    )
    .await
}

/// Who carries out a command, and what they already know.
pub(crate) enum Begun {
    /// Recovery (after a restart, or for another daemon): the intent is read afresh and the
    /// gateway asked first.
    Recovered,
    /// The request whose begin commit just wrote the intent (as given) and appended the
    /// command.
    Here(Box<Written>),
}

/// What the request that began a command already holds: the intent as its begin commit wrote
/// it, the payment method and its gateway token when it had loaded them, and the invoice the
/// payment pays as that commit left it.
pub(crate) struct Written {
    loaded: Loaded,
    method: Option<(PaymentMethod, String)>,
    invoice: Option<Box<dyn InvoiceSnapshot>>,
}

impl Begun {
    /// The intent as the begin commit wrote it, at `version`.
    fn here(
        version: u64,
        intent: PaymentIntent,
        internal: IntentInternal,
        method: Option<(PaymentMethod, String)>,
    ) -> Self {
        Begun::Here(Box::new(Written {
            loaded: Loaded {
                version,
                intent,
                internal,
            },
            method,
            invoice: None,
        }))
    }
}

/// Carry out a command: the gateway call (asking first when recovering), then the finish
/// commit. Used by the request that began it and by recovery alike.
pub(super) async fn run(
    p: &Payments,
    cmd: &Command,
    cmd_id: &str,
    begun: Begun,
) -> Result<Reply, ApiError> {
    // Boxed: the payment's state machine is large, and nested inside billing's (an invoice
    // paid through the API) it would otherwise overflow a worker thread's stack.
    p.working_on(cmd_id, Box::pin(run_inner(p, cmd, cmd_id, begun)))
        .await
}

async fn run_inner(
    p: &Payments,
    cmd: &Command,
    cmd_id: &str,
    begun: Begun,
) -> Result<Reply, ApiError> {
    let scope = cmd.scope();
    let (loaded, mut method, mut invoice, recovering) = match begun {
        Begun::Recovered => (p.load(&scope, None, &cmd.intent).await?, None, None, true),
        Begun::Here(begun) => {
            let Written {
                loaded,
                method,
                invoice,
            } = *begun;
            (loaded, method, invoice, false)
        }
    };
    if IntentStatus::of(&loaded.intent) != Some(IntentStatus::Processing)
        || loaded.internal.attempt.as_deref() != Some(cmd.attempt.as_str())
    {
        // Finished by someone else; only the command entry is left to clear.
        let mut tx = Tx::new();
        tx.ack(COMMANDS, GROUP, cmd_id);
        p.store.commit(&tx).await?;
        return Ok(Reply {
            status: 200,
            body: to_json(&loaded.intent)?,
            stored: true,
        });
    }
    let acct = p.gateway_for(scope.mode)?;
    let result = match cmd.op {
        CommandOp::Confirm => {
            confirm_at_gateway(p, &acct, &scope, cmd, &loaded, &mut method, recovering)
                .await
                .map(Step::Auth)
        }
        CommandOp::ContinueThreeDs => challenge_at_gateway(&acct, cmd, &loaded)
            .await
            .map(Step::Auth),
        CommandOp::Capture | CommandOp::Cancel => {
            manage_at_gateway(&acct, cmd, &loaded, recovering).await
        }
        CommandOp::Refund => {
            // Refunds are carried out by `refunds::run`; one routed here is left pending.
            tracing::error!(intent = %cmd.intent, "a refund command reached the intent processor");
            Err(GatewayError::Malformed(
                "a refund is not an intent command".into(),
            ))
        }
    };
    match result {
        Ok(step) => {
            // The finish must land: the gateway has acted. A version conflict (a charge
            // touched meanwhile) is retried on fresh reads; if the intent left `processing`,
            // another resolver applied this same result.
            let method = method.map(|(m, _)| m);
            // What the next try finishes: the intent as last read, and the invoice as the
            // begin left it (known only to the first try: a retry reads afresh).
            let current = std::sync::Mutex::new(Some((loaded, invoice.take())));
            let (current_ref, method, step, scope) = (&current, &method, &step, &scope);
            let landed = until_committed(
                || async move {
                    let Some((loaded, invoice)) = crate::lock(current_ref).take() else {
                        return Err(Landing::Contended);
                    };
                    let finished = Box::pin(finish(
                        p,
                        scope,
                        cmd,
                        cmd_id,
                        loaded,
                        method.clone(),
                        invoice,
                        step.clone(),
                    ));
                    if let Some(reply) = finished.await? {
                        return Ok(Attempt::Done(reply));
                    }
                    let loaded = p.load(scope, None, &cmd.intent).await?;
                    if IntentStatus::of(&loaded.intent) != Some(IntentStatus::Processing)
                        || loaded.internal.attempt.as_deref() != Some(cmd.attempt.as_str())
                    {
                        return Ok(Attempt::Done(Reply {
                            status: 200,
                            body: to_json(&loaded.intent)?,
                            stored: true,
                        }));
                    }
                    *crate::lock(current_ref) = Some((loaded, None));
                    Ok(Attempt::Conflict)
                },
                || Landing::Contended,
            )
            .await;
            match landed {
                Ok(reply) => Ok(reply),
                Err(Landing::Failed(e)) => Err(e),
                // Still contended: the command stays pending and recovery finishes it.
                Err(Landing::Contended) => {
                    let last = crate::lock(&current).take();
                    let body = match last {
                        Some((loaded, _)) => to_json(&loaded.intent)?,
                        None => to_json(&p.load(scope, None, &cmd.intent).await?.intent)?,
                    };
                    Ok(Reply {
                        status: 200,
                        body,
                        stored: true,
                    })
                }
            }
        }
        Err(e) => {
            // The outcome is unknown: the intent stays `processing`, the command pending, and
            // recovery asks the gateway again. Nothing is answered under the idempotency key.
            tracing::warn!(intent = %cmd.intent, op = ?cmd.op, error = %e, "payment outcome unknown; left for recovery");
            metrics::counter!("calmony_payments_total", "outcome" => "unknown").increment(1);
            // `stored`: the claim stays held; recovery stores the final answer under it.
            Ok(Reply {
                status: 200,
                body: to_json(&loaded.intent)?,
                stored: true,
            })
        }
    }
}

/// What the gateway said, with what the finish writes of it.
#[derive(Clone)]
pub(super) enum Step {
    Auth(AuthOutcome),
    Captured { amount: i64 },
    Voided,
    ManageRefused { message: String },
}

impl Step {
    /// The answer as [`transitions::decide`] reads it.
    fn answer(&self) -> Answer {
        match self {
            Step::Auth(AuthOutcome::Approved { amount, .. }) => {
                Answer::Approved { amount: *amount }
            }
            Step::Auth(AuthOutcome::Challenge { url, .. }) if !url.is_empty() => Answer::Challenge,
            // A challenge without a page to send the cardholder to cannot be completed.
            Step::Auth(_) => Answer::Refused,
            Step::Captured { amount } => Answer::Captured { amount: *amount },
            Step::Voided => Answer::Voided,
            Step::ManageRefused { .. } => Answer::ManageRefused,
        }
    }
}

fn three_ds_return(p: &Payments, scope: &Scope, id: &str) -> String {
    format!(
        "{}/pay/3ds/{}/{}/{id}/complete",
        p.public_base, scope.project, scope.mode
    )
}

async fn confirm_at_gateway(
    p: &Payments,
    acct: &ModeGateway<'_>,
    scope: &Scope,
    cmd: &Command,
    loaded: &Loaded,
    method: &mut Option<(PaymentMethod, String)>,
    recovering: bool,
) -> Result<AuthOutcome, GatewayError> {
    if method.is_none() {
        let pm = loaded.intent.payment_method.clone().unwrap_or_default();
        match load_method(p, scope, None, &pm, "payment_method").await {
            Ok(found) => *method = Some(found),
            Err(_) => {
                return Ok(AuthOutcome::Failed {
                    code: 0,
                    message: "The payment method no longer exists.".into(),
                });
            }
        }
    }
    let xref = method.as_ref().map(|(_, x)| x.clone()).unwrap_or_default();
    let sale = Sale {
        attempt: cmd.attempt.clone(),
        // An invoice's payments are ordered by the invoice: the gateway's ledger then shows
        // one charge per invoice.
        order_ref: loaded
            .internal
            .invoice
            .clone()
            .unwrap_or_else(|| loaded.intent.id.clone()),
        amount: loaded.intent.amount,
        card_xref: xref,
        capture: loaded.intent.capture_method != "manual",
        three_ds_return: Some(three_ds_return(p, scope, &loaded.intent.id)),
        recurring: cmd
            .args
            .get("recurring")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    if recovering && let Some(found) = acct.query_attempt(&sale.attempt).await? {
        return Ok(found.outcome);
    }
    match authorise(acct, &sale).await {
        Err(first) => {
            tracing::warn!(attempt = %sale.attempt, error = %first, "sale outcome unknown; asking the gateway");
            match acct.query_attempt(&sale.attempt).await? {
                Some(found) => Ok(found.outcome),
                // The gateway never saw it: send it again, under the same transactionUnique.
                // Unknown again (or a duplicate: the first landed after the QUERY), the
                // command is left for recovery, which asks first.
                None => authorise(acct, &sale).await,
            }
        }
        outcome => outcome,
    }
}

/// Send a sale. A duplicate is not a refusal: the gateway answers it as an unknown outcome
/// ([`PaymentGateway::sale`](crate::gateway::PaymentGateway::sale)), like a lost answer.
async fn authorise(acct: &ModeGateway<'_>, sale: &Sale) -> Result<AuthOutcome, GatewayError> {
    acct.sale(sale.clone()).await
}

async fn challenge_at_gateway(
    acct: &ModeGateway<'_>,
    cmd: &Command,
    loaded: &Loaded,
) -> Result<AuthOutcome, GatewayError> {
    let reference = loaded
        .internal
        .challenge
        .as_ref()
        .map(|c| c.reference.clone())
        .unwrap_or_default();
    let posted: Vec<(String, String)> = cmd
        .args
        .get("posted")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let step = ThreeDsContinuation { reference, posted };
    match acct.continue_three_ds(step.clone()).await {
        Ok(outcome) => Ok(outcome),
        Err(first) => {
            tracing::warn!(attempt = %cmd.attempt, error = %first, "3-D Secure outcome unknown; asking the gateway");
            match acct.query_attempt(&cmd.attempt).await? {
                Some(found) if !matches!(found.outcome, AuthOutcome::Challenge { .. }) => {
                    Ok(found.outcome)
                }
                _ => acct.continue_three_ds(step).await,
            }
        }
    }
}

/// Capture or cancel an authorised sale; after an unknown answer, the sale's state decides.
async fn manage_at_gateway(
    acct: &ModeGateway<'_>,
    cmd: &Command,
    loaded: &Loaded,
    recovering: bool,
) -> Result<Step, GatewayError> {
    let xref = loaded.internal.sale_xref.clone().unwrap_or_default();
    let capturing = cmd.op == CommandOp::Capture;
    let amount = cmd
        .args
        .get("amount")
        .and_then(Value::as_i64)
        .unwrap_or(loaded.intent.amount_capturable);
    let done = |state: &TxnState| {
        if capturing {
            state.captured()
        } else {
            state.canceled()
        }
    };
    let success = || {
        if capturing {
            Step::Captured { amount }
        } else {
            Step::Voided
        }
    };
    if recovering
        && let Some(s) = acct.query_sale(&xref).await?
        && done(&s.state)
    {
        return Ok(success());
    }
    let sent = if capturing {
        acct.capture(&xref, amount).await
    } else {
        acct.cancel(&xref).await
    };
    let outcome = match sent {
        Ok(o) => o,
        Err(first) => {
            tracing::warn!(xref = %xref, error = %first, "capture/cancel outcome unknown; asking the gateway");
            match acct.query_sale(&xref).await? {
                Some(s) if done(&s.state) => return Ok(success()),
                _ => {
                    if capturing {
                        acct.capture(&xref, amount).await?
                    } else {
                        acct.cancel(&xref).await?
                    }
                }
            }
        }
    };
    Ok(match outcome {
        crate::gateway::ManageOutcome::Done { .. } => success(),
        crate::gateway::ManageOutcome::Refused { message, .. } => Step::ManageRefused { message },
    })
}

/// The finish commit: the intent's new state, its charge and events, the command
/// acknowledged, and the answer stored under the idempotency key, all at once. Load (the
/// payment method or charge the answer touches) -> [`transitions::decide`] -> commit.
/// `None`: a record changed since it was read (retry on fresh reads).
#[allow(clippy::too_many_arguments)]
async fn finish(
    p: &Payments,
    scope: &Scope,
    cmd: &Command,
    cmd_id: &str,
    loaded: Loaded,
    method: Option<PaymentMethod>,
    invoice: Option<Box<dyn InvoiceSnapshot>>,
    step: Step,
) -> Result<Option<Reply>, ApiError> {
    let Loaded {
        version,
        mut intent,
        mut internal,
    } = loaded;
    let answer = step.answer();
    // Load what the answer touches: the card for a new charge, the charge a capture or
    // cancel changes.
    let method = match (answer, method, &intent.payment_method) {
        (Answer::Approved { .. } | Answer::Refused, Some(m), _) => Some(m),
        (Answer::Approved { .. } | Answer::Refused, None, Some(pm)) => {
            load_method(p, scope, None, pm, "payment_method")
                .await
                .ok()
                .map(|(m, _)| m)
        }
        _ => None,
    };
    let latest = match (answer, &intent.latest_charge) {
        (Answer::Captured { .. } | Answer::Voided, Some(ch_id)) => {
            match p.store.get_with(&scope.record(ch_id), &[]).await? {
                Some((rec, _)) => Some((super::parse::<Charge>(&rec, ch_id)?, rec.version)),
                None => None,
            }
        }
        _ => None,
    };
    let facts = Facts {
        status: IntentStatus::of(&intent),
        attempt_current: internal.attempt.as_deref() == Some(cmd.attempt.as_str()),
        command: cmd.op,
        manual_capture: intent.capture_method == "manual",
        resume: internal
            .resume_status
            .as_deref()
            .and_then(IntentStatus::parse),
        pays_invoice: internal.invoice.is_some(),
        receipts: p.billing.receipts,
        has_charge: latest.is_some(),
    };
    let decision = match transitions::decide(facts, answer) {
        Finish::Apply(d) => d,
        // The callers finish only their own `processing` attempt with a known answer.
        Finish::AlreadyFinished | Finish::LeaveForRecovery => {
            return Ok(Some(Reply {
                status: 200,
                body: to_json(&intent)?,
                stored: true,
            }));
        }
    };
    let request = EventRequest {
        id: cmd.request.clone(),
        idempotency_key: cmd.claim.as_ref().map(|c| c.0.clone()),
    };
    let mut tx = Tx::new();
    tx.expect_version(&scope.record(&intent.id), version);

    // The intent and its charge, as the decision says.
    intent.status = decision.status.as_str().into();
    match decision.last_payment_error {
        PaymentError::Clear => intent.last_payment_error = None,
        PaymentError::Keep | PaymentError::Decline => {}
    }
    match decision.next_action {
        NextAction::Clear => intent.next_action = None,
        NextAction::ThreeDsRedirect => {
            let page = format!(
                "{}/pay/3ds/{}/{}/{}?client_secret={}",
                p.public_base, scope.project, scope.mode, intent.id, intent.client_secret
            );
            intent.next_action = Some(json!({
                "type": "redirect_to_url",
                "redirect_to_url": {"url": page, "return_url": intent.return_url},
            }));
        }
        NextAction::Keep => {}
    }
    if decision.clear_challenge {
        internal.challenge = None;
    }
    if decision.clear_resume {
        internal.resume_status = None;
    }
    let mut charge_write: Option<(Charge, u64)> = None;
    let mut error_body: Option<Value> = None;
    match (decision.charge, step) {
        (
            ChargeChange::Succeeded { captured, amount },
            Step::Auth(AuthOutcome::Approved { txn, .. }),
        ) => {
            let mut ch = new_charge(&intent, scope, txn.transaction_id.clone(), method.as_ref());
            ch.status = ChargeStatus::Succeeded.as_str().into();
            ch.paid = true;
            ch.captured = captured;
            ch.amount_captured = if captured { amount } else { 0 };
            ch.outcome = json!({"network_status": "approved_by_network", "type": "authorized", "seller_message": "Payment complete.", "risk_level": "normal"});
            let st = p.settlement.mode(scope.mode);
            crate::money::ledger::card_charge(&mut tx, scope, st, &mut ch, clock::now())?;
            intent.latest_charge = Some(ch.id.clone());
            intent.cardstream_transaction_id = txn.transaction_id;
            internal.sale_xref = Some(txn.xref);
            if captured {
                intent.amount_received = amount;
            } else {
                intent.amount_capturable = amount;
            }
            charge_write = Some((ch, 1));
        }
        (ChargeChange::Failed, Step::Auth(outcome)) => {
            let ch = new_charge(&intent, scope, None, method.as_ref());
            let declined = super::declines::record(
                &mut intent,
                ch,
                outcome,
                method.as_ref(),
                scope,
                &request,
                clock::now(),
            );
            crate::money::stats::failed(&mut tx, scope, clock::now());
            charge_write = Some((declined.charge, 1));
            error_body = Some(declined.error);
        }
        (
            ChargeChange::None,
            Step::Auth(AuthOutcome::Challenge {
                txn,
                url,
                fields,
                reference,
            }),
        ) => {
            if let Some(t) = txn {
                intent.cardstream_transaction_id = t.transaction_id;
            }
            // A new secret for every challenge: the issuer's page carries it back.
            let (secret, session) = super::three_ds_session::Session::new(
                internal.attempt.as_deref().unwrap_or_default(),
            );
            internal.three_ds_session = Some(session);
            internal.challenge = Some(Challenge {
                url,
                fields: super::three_ds_session::with_session(fields, secret),
                reference,
            });
        }
        (charge, Step::Captured { amount }) => {
            intent.amount_received = amount;
            intent.amount_capturable = 0;
            if let (ChargeChange::Captured { amount }, Some((mut ch, v))) = (charge, latest) {
                ch.captured = true;
                ch.amount_captured = amount;
                let st = p.settlement.mode(scope.mode);
                crate::money::ledger::card_charge(&mut tx, scope, st, &mut ch, clock::now())?;
                tx.expect_version(&scope.record(&ch.id), v);
                charge_write = Some((ch, v + 1));
            }
        }
        (charge, Step::Voided) => {
            let reason = cmd
                .args
                .get("reason")
                .and_then(Value::as_str)
                .map(str::to_string);
            mark_canceled(&mut intent, reason);
            if let (ChargeChange::Voided, Some((mut ch, v))) = (charge, latest) {
                ch.refunded = true;
                ch.amount_refunded = ch.amount;
                tx.expect_version(&scope.record(&ch.id), v);
                charge_write = Some((ch, v + 1));
            }
        }
        (_, Step::ManageRefused { message }) => {
            error_body = Some(json!({
                "type": "invalid_request_error",
                "code": "gateway_refused",
                "message": format!("The gateway refused the request: {message}"),
            }));
        }
        (_, Step::Auth(_)) => {}
    }
    let error_body = error_body.map(|mut body| {
        if decision.reply == TransitionReply::CardError {
            body["payment_intent"] = serde_json::to_value(&intent).unwrap_or(Value::Null);
        }
        json!({ "error": body })
    });
    let events: Vec<Event> = decision
        .events
        .iter()
        .filter_map(|kind| {
            if kind.of_charge() {
                let (ch, _) = charge_write.as_ref()?;
                Some(event(kind.name(), ch, scope, &request))
            } else {
                Some(event(kind.name(), &intent, scope, &request))
            }
        })
        .collect();

    // Billing: the invoice this payment pays takes its result in this same commit; a one-off
    // payment that succeeded gets its paid receipt invoice.
    if decision.billing != BillingEffect::None {
        let finished = FinishedPayment {
            scope,
            intent: &intent,
            invoice: internal.invoice.as_deref(),
            effect: decision.billing,
            carried: invoice,
            settings: &p.billing,
            public_base: &p.public_base,
            request: &request,
            now: intent.created.max(clock::now()),
        };
        p.effects.apply(&p.store, &mut tx, finished).await?;
    }
    let intent_body = write_intent(&mut tx, scope, version + 1, &intent, &internal)?;
    if let Some((ch, v)) = &charge_write {
        let key = scope.record(&ch.id);
        if *v == 1 {
            // A new charge has a fresh id (no absence check needed).
            tx.index(&scope.key("charges"), &ch.id);
        }
        tx.put(&key, *v, &to_json(ch)?);
    }
    for e in &events {
        tx.event(scope, e);
    }
    tx.ack(COMMANDS, GROUP, cmd_id);
    let status_code = decision.reply.status_code();
    let body = match &error_body {
        Some(b) => b.to_string(),
        None => intent_body,
    };
    if let Some(claim) = cmd.claim() {
        tx.respond_to(&claim, p.idempotency_ttl_secs, status_code, &body);
    }
    let outcome = crate::resource::commit_finish(&p.store, &tx).await?;
    match outcome {
        Commit::Done(_) => {
            metrics::counter!("calmony_payments_total", "outcome" => decision.outcome.label())
                .increment(1);
            Ok(Some(Reply {
                status: status_code,
                body,
                stored: true,
            }))
        }
        _ => Ok(None),
    }
}
