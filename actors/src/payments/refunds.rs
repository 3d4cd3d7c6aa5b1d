//! Refunds: all or part of a succeeded payment, never more than was received in total.
//!
//! Which gateway request depends on whether the sale has settled, which only the gateway knows
//! (QUERY): before settlement a refund of everything left is a CANCEL and a partial one a
//! lower-amount CAPTURE; after settlement it is a REFUND_SALE (Cardstream's rules).
//!
//! A refund begins like every money movement (one commit: the refund `pending`, the amount
//! reserved on the intent so two refunds at once cannot together exceed it, the command
//! appended) and finishes in one commit (`succeeded` or `failed`, the charge's
//! `amount_refunded`, the events `refund.updated` and `charge.refunded`).

use calmony_protocol::charge::Charge;
use calmony_protocol::event::{Event, EventRequest};
use calmony_protocol::list::ListParams;
use calmony_protocol::params::Params;
use calmony_protocol::payment_intent::status;
use calmony_protocol::refund::{self, Refund, RefundParams};
use calmony_protocol::{ApiError, ErrorType, charge, ids};
use serde_json::{Value, json};

use super::{COMMANDS, Command, GROUP, HOLD_MS, Loaded, Payments};
use crate::clock;
use crate::context::{Reply, RequestContext};
use crate::gateway::{Cardstream, GatewayError, ManageOutcome};
use crate::resource::{commit, page_body, to_json};
use crate::store::{Commit, Scope, Tx};

const MAX_ATTEMPTS: usize = 5;

fn intent_refunds(scope: &Scope, intent: &str) -> String {
    scope.key(&format!("payment_intent:{intent}:refunds"))
}

/// A payment's events happen now, on the wall clock.
fn event(
    kind: &str,
    object: &impl serde::Serialize,
    scope: &Scope,
    request: &EventRequest,
) -> Event {
    crate::resource::event(kind, object, scope, request, clock::now())
}

/// `POST /v1/refunds`.
pub async fn create_refund(
    p: &Payments,
    ctx: &RequestContext,
    params: Params,
) -> Result<Reply, ApiError> {
    let r = RefundParams::take(params)?;
    let scope = &ctx.scope;
    p.account(scope.mode)?;
    let intent_id = match (&r.payment_intent, &r.charge) {
        (Some(pi), _) => pi.clone(),
        (None, Some(ch)) => {
            if !ids::is_valid(charge::PREFIX, ch) {
                return Err(super::intents::missing_ref("charge", ch, "charge"));
            }
            let rec = p
                .store
                .get(&scope.record(ch))
                .await?
                .ok_or_else(|| super::intents::missing_ref("charge", ch, "charge"))?;
            let c: Charge = super::parse(&rec, ch)?;
            c.payment_intent
        }
        (None, None) => return Err(ApiError::missing_param("payment_intent")),
    };
    for _ in 0..MAX_ATTEMPTS {
        let Loaded {
            version,
            intent,
            mut internal,
        } = p.load(scope, None, &intent_id).await.map_err(|e| {
            if e.status == 404 {
                super::intents::missing_ref("payment_intent", &intent_id, "payment_intent")
            } else {
                e
            }
        })?;
        if intent.status != status::SUCCEEDED {
            return Err(ApiError::new(
                400,
                ErrorType::InvalidRequestError,
                format!(
                    "This PaymentIntent cannot be refunded because it has a status of {}. \
                     Only succeeded payments can be refunded.",
                    intent.status
                ),
            )
            .with_code("payment_intent_unexpected_state")
            .with_param("payment_intent"));
        }
        let remaining = intent.amount_received - internal.refunded;
        if remaining <= 0 {
            return Err(ApiError::new(
                400,
                ErrorType::InvalidRequestError,
                format!(
                    "The payment {} has already been refunded in full.",
                    intent.id
                ),
            )
            .with_code("charge_already_refunded")
            .with_param("payment_intent"));
        }
        let amount = r.amount.unwrap_or(remaining);
        if amount > remaining {
            return Err(ApiError::invalid_param(
                "amount_too_large",
                "amount",
                format!(
                    "Refund amount ({amount}) is greater than the amount left to refund ({remaining})."
                ),
            ));
        }
        let mut refund = Refund {
            id: ids::new_id(refund::PREFIX),
            object: "refund".into(),
            amount,
            balance_transaction: None,
            charge: intent.latest_charge.clone(),
            created: clock::now(),
            currency: intent.currency.clone(),
            failure_reason: None,
            livemode: scope.livemode(),
            metadata: Default::default(),
            payment_intent: intent.id.clone(),
            reason: r.reason.clone(),
            status: "pending".into(),
            cardstream_transaction_id: None,
        };
        if let Some(m) = &r.metadata {
            m.apply(&mut refund.metadata, "metadata")?;
        }
        internal.refunded += amount;
        let attempt = ids::new_id("att");
        let mut tx = Tx::new();
        let intent_key = scope.record(&intent.id);
        tx.expect_version(&intent_key, version);
        tx.put_with(
            &intent_key,
            version + 1,
            &to_json(&intent)?,
            &[("internal", &to_json(&internal)?)],
        );
        let refund_key = scope.record(&refund.id);
        tx.expect_version(&refund_key, 0)
            .put(&refund_key, 1, &to_json(&refund)?)
            .index(&scope.key("refunds"), &refund.id)
            .index(&intent_refunds(scope, &intent.id), &refund.id);
        tx.event(
            scope,
            &event("refund.created", &refund, scope, &ctx.event_request()),
        );
        let cmd = Command {
            project: scope.project.clone(),
            mode: scope.mode,
            intent: intent.id.clone(),
            op: "refund".into(),
            attempt,
            args: json!({"refund": refund.id, "amount": amount, "remaining_before": remaining}),
            claim: ctx
                .idempotency
                .as_ref()
                .map(|c| (c.key.clone(), c.redis_key.clone(), c.owner.clone())),
            request: Some(ctx.request_id.clone()),
        };
        tx.command(COMMANDS, GROUP, &p.consumer, &[("cmd", &cmd.encode())]);
        if let Some(claim) = &ctx.idempotency {
            tx.hold_claim(claim, HOLD_MS);
        }
        if let Commit::Done(Some(cmd_id)) = commit(&p.store, &tx).await? {
            return run(p, &cmd, &cmd_id, false).await;
        }
    }
    Err(ApiError::lock_timeout())
}

/// Carry out a refund command (from the request, or from recovery).
pub(super) async fn run(
    p: &Payments,
    cmd: &Command,
    cmd_id: &str,
    recovering: bool,
) -> Result<Reply, ApiError> {
    p.working_on(cmd_id, run_inner(p, cmd, cmd_id, recovering))
        .await
}

async fn run_inner(
    p: &Payments,
    cmd: &Command,
    cmd_id: &str,
    recovering: bool,
) -> Result<Reply, ApiError> {
    let scope = cmd.scope();
    let refund_id = cmd
        .args
        .get("refund")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let refund_key = scope.record(&refund_id);
    let Some((rec, _)) = p.store.get_with(&refund_key, &[]).await? else {
        let mut tx = Tx::new();
        tx.ack(COMMANDS, GROUP, cmd_id);
        p.store.commit(&tx).await?;
        return Err(ApiError::no_such("refund", &refund_id, "refund"));
    };
    let refund: Refund = super::parse(&rec, &refund_key)?;
    if refund.status != "pending" {
        let mut tx = Tx::new();
        tx.ack(COMMANDS, GROUP, cmd_id);
        p.store.commit(&tx).await?;
        return Ok(Reply {
            status: 200,
            body: rec.json,
            stored: true,
        });
    }
    let loaded = p.load(&scope, None, &cmd.intent).await?;
    let acct = p.account(scope.mode)?;
    match refund_at_gateway(acct, cmd, &loaded, recovering).await {
        Ok(outcome) => {
            // The gateway has acted: the finish must land. Retry on fresh reads when the charge
            // (or intent) changed meanwhile, e.g. another refund finishing.
            let (mut version, mut refund) = (rec.version, refund);
            for _ in 0..MAX_ATTEMPTS * 4 {
                if let Some(reply) = finish(
                    p,
                    &scope,
                    cmd,
                    cmd_id,
                    version,
                    refund.clone(),
                    outcome.clone(),
                )
                .await?
                {
                    return Ok(reply);
                }
                let Some((fresh, _)) = p.store.get_with(&refund_key, &[]).await? else {
                    break;
                };
                let current: Refund = super::parse(&fresh, &refund_key)?;
                if current.status != "pending" {
                    return Ok(Reply {
                        status: 200,
                        body: fresh.json,
                        stored: true,
                    });
                }
                (version, refund) = (fresh.version, current);
            }
            Ok(Reply {
                status: 200,
                body: to_json(&refund)?,
                stored: true,
            })
        }
        Err(e) => {
            tracing::warn!(refund = %refund_id, error = %e, "refund outcome unknown; left for recovery");
            Ok(Reply {
                status: 200,
                body: rec.json,
                stored: true,
            })
        }
    }
}

async fn refund_at_gateway(
    acct: &Cardstream,
    cmd: &Command,
    loaded: &Loaded,
    recovering: bool,
) -> Result<ManageOutcome, GatewayError> {
    let xref = loaded.internal.sale_xref.clone().unwrap_or_default();
    let amount = cmd.args.get("amount").and_then(Value::as_i64).unwrap_or(0);
    let remaining_before = cmd
        .args
        .get("remaining_before")
        .and_then(Value::as_i64)
        .unwrap_or(amount);
    let sale = acct
        .sync(None, Some(&xref))
        .await?
        .ok_or_else(|| GatewayError::Malformed(format!("the gateway does not know sale {xref}")))?;
    if sale.settled() {
        if recovering
            && let Some(done) = acct.sync(Some(&cmd.attempt), None).await?
            && let crate::gateway::AuthOutcome::Approved { txn, .. } = done.outcome
        {
            return Ok(ManageOutcome::Done { txn });
        }
        return acct.refund(&xref, amount, &cmd.attempt).await;
    }
    if amount == remaining_before {
        if sale.state == "canceled" {
            return Ok(ManageOutcome::Done {
                txn: crate::gateway::TxnRef {
                    xref,
                    transaction_id: None,
                },
            });
        }
        return acct.void(&xref).await;
    }
    // Partial, before settlement: capture only what is kept: what was received less every
    // refund reserved so far (read now, so refunds finishing in any order agree). Capturing
    // the same lower amount twice is the same state, so a retry is safe.
    let keep = loaded.intent.amount_received - loaded.internal.refunded;
    acct.capture(&xref, keep.max(0)).await
}

async fn finish(
    p: &Payments,
    scope: &Scope,
    cmd: &Command,
    cmd_id: &str,
    version: u64,
    mut refund: Refund,
    outcome: ManageOutcome,
) -> Result<Option<Reply>, ApiError> {
    let request = EventRequest {
        id: cmd.request.clone(),
        idempotency_key: cmd.claim.as_ref().map(|c| c.0.clone()),
    };
    let mut tx = Tx::new();
    let refund_key = scope.record(&refund.id);
    tx.expect_version(&refund_key, version);
    let (status_code, body) = match outcome {
        ManageOutcome::Done { txn } => {
            refund.status = "succeeded".into();
            refund.cardstream_transaction_id = txn.transaction_id;
            if let Some(ch_id) = &refund.charge
                && let Some((rec, _)) = p.store.get_with(&scope.record(ch_id), &[]).await?
            {
                let mut ch: Charge = super::parse(&rec, ch_id)?;
                ch.amount_refunded += refund.amount;
                ch.refunded = ch.amount_refunded >= ch.amount_captured;
                tx.expect_version(&scope.record(ch_id), rec.version);
                tx.put(&scope.record(ch_id), rec.version + 1, &to_json(&ch)?);
                tx.event(scope, &event("charge.refunded", &ch, scope, &request));
            }
            let body = to_json(&refund)?;
            metrics::counter!("calmony_refunds_total", "outcome" => "succeeded").increment(1);
            (200, body)
        }
        ManageOutcome::Refused { code, message } => {
            refund.status = "failed".into();
            refund.failure_reason = Some(format!("gateway_refused_{code}"));
            // Give the reserved amount back.
            let loaded = p.load(scope, None, &cmd.intent).await?;
            let mut internal = loaded.internal.clone();
            internal.refunded -= refund.amount;
            let key = scope.record(&cmd.intent);
            tx.expect_version(&key, loaded.version);
            tx.put_with(
                &key,
                loaded.version + 1,
                &to_json(&loaded.intent)?,
                &[("internal", &to_json(&internal)?)],
            );
            metrics::counter!("calmony_refunds_total", "outcome" => "failed").increment(1);
            let body = json!({"error": {
                "type": "invalid_request_error",
                "code": "refund_failed",
                "message": format!("The gateway refused the refund: {message}"),
                "param": "payment_intent",
            }})
            .to_string();
            (400, body)
        }
    };
    tx.put(&refund_key, version + 1, &to_json(&refund)?);
    tx.event(scope, &event("refund.updated", &refund, scope, &request));
    tx.ack(COMMANDS, GROUP, cmd_id);
    if let Some(claim) = cmd.claim() {
        tx.respond_to(&claim, p.idempotency_ttl_secs, status_code, &body);
    }
    let outcome = crate::resource::commit_finish(&p.store, &tx).await?;
    match outcome {
        Commit::Done(_) => Ok(Some(Reply {
            status: status_code,
            body,
            stored: true,
        })),
        _ => Ok(None),
    }
}

/// `GET /v1/refunds/:id`.
pub async fn retrieve_refund(
    p: &Payments,
    ctx: &RequestContext,
    id: &str,
    params: Params,
) -> Result<Reply, ApiError> {
    crate::resource::retrieve_stored(&p.store, ctx, refund::PREFIX, "refund", id, params).await
}

/// `GET /v1/refunds`, optionally for one payment intent.
pub async fn list_refunds(
    p: &Payments,
    ctx: &RequestContext,
    mut params: Params,
) -> Result<Reply, ApiError> {
    let list = ListParams::take(&mut params, refund::PREFIX)?;
    let intent = params
        .string_max(&["payment_intent", "paymentIntent"], 100)?
        .into_option();
    params.expand()?;
    params.finish()?;
    let index = match &intent {
        Some(pi) => intent_refunds(&ctx.scope, pi),
        None => ctx.scope.key("refunds"),
    };
    let (items, has_more) = p.store.page(&ctx.scope, &index, &list).await?;
    page_body("/v1/refunds", &items, has_more).map(Reply::ok)
}
