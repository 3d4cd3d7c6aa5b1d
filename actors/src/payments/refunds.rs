//! Refunds: all or part of a succeeded payment, never more than was received in total.
//!
//! Which gateway request depends on whether the sale has settled, which only the gateway knows
//! (QUERY): before settlement a refund of everything left is a CANCEL and a partial one a
//! lower-amount CAPTURE; after settlement it is a REFUND_SALE (Cardstream's rules).
//!
//! A refund begins like every money movement (one commit: the refund `pending`, the amount
//! reserved on the intent so two refunds at once cannot together exceed it, the refund queued
//! behind the intent's other unfinished refunds, the command appended) and finishes in one
//! commit (`succeeded` or `failed`, the charge's `amount_refunded`, what the gateway now keeps
//! of the sale, the refund out of the queue, the events `refund.updated` and `charge.refunded`,
//! or `refund.failed`).
//!
//! Between the two, a refund acts at the gateway only at the head of the queue, planned from
//! what the gateway last confirmed (see [`super::refund_plan`]): concurrent refunds of one sale
//! are applied one at a time, in the order they were accepted, and each one's request is
//! worked out from the state the previous one left, never from refunds still in flight. The
//! daemon acting on the head holds the sale's lease meanwhile, so with several daemons on one
//! Redis still only one acts on a sale at a time; one that finds the lease taken leaves the
//! refund to its holder, or for later.
//!
//! A refund that cannot go on fails rather than hold up the queue: a head that finds the sale
//! holding what no refund of the queue explains, or one whose command recovery parks as poison
//! ([`give_up`]). It fails in one commit (`failed` with its `failure_reason`, out of the queue,
//! its reserved amount given back, `refund.updated` and `refund.failed`), and the refunds
//! behind it go on.
//!
//! A Pay by Bank payment's refunds go another way, from the merchant's Griffin account (see
//! [`super::bank_refunds`]); they are checked against what is left here like any other.

use calmony_protocol::charge::Charge;
use calmony_protocol::event::{Event, EventRequest};
use calmony_protocol::list::ListParams;
use calmony_protocol::params::Params;
use calmony_protocol::refund::{self, Refund, RefundParams};
use calmony_protocol::{ApiError, ErrorType, charge, ids};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use super::records::intent_refunds;
use super::refund_plan::{self, GatewayAction, Progress, RefundStatus, SaleState};
use super::transitions::{CommandOp, IntentStatus};
use super::{COMMANDS, Command, GROUP, HOLD_MS, Landing, Loaded, Payments};
use crate::clock;
use crate::context::{Reply, RequestContext};
use crate::gateway::{GatewayError, ManageOutcome, ModeGateway};
use crate::money::ledger::{self, RefundRoute};
use crate::resource::{commit, page_body, to_json};
use crate::store::retry::{Attempt, CONFLICT_ATTEMPTS, until_committed, until_committed_within};
use crate::store::{Commit, Lease, Record, Scope, Tx};

/// A refund's finish must land once the gateway has acted: it outlasts more conflicts than a
/// request would (the sale's other refunds touch the same records) before leaving the refund
/// to recovery.
const LANDING_ATTEMPTS: usize = CONFLICT_ATTEMPTS * 4;
/// Begins of refunds of one payment race on its record (each reserves an amount and joins the
/// queue): a burst of them is retried with a short random pause rather than refused.
const BEGIN_ATTEMPTS: usize = 60;
/// How long a request waits for the refunds accepted before its own to finish. Past this it
/// answers the refund `pending`, and recovery finishes it.
const QUEUE_WAIT: Duration = Duration::from_secs(30);
/// How often a waiting refund looks at the queue again.
const QUEUE_POLL: Duration = Duration::from_millis(10);

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
    // Tries so far: each retry pauses a little longer (up to 40 ms).
    let rounds = std::sync::atomic::AtomicUsize::new(0);
    let (rounds, intent_id, r) = (&rounds, &intent_id, &r);
    until_committed_within(
        BEGIN_ATTEMPTS,
        || async move {
        let round = rounds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if round > 0 {
            let pause = rand::random_range(1..=8 * round.min(5) as u64);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        let Loaded {
            version,
            intent,
            mut internal,
        } = p.load(scope, None, intent_id).await.map_err(|e| {
            if e.status == 404 {
                super::intents::missing_ref("payment_intent", intent_id, "payment_intent")
            } else {
                e
            }
        })?;
        if IntentStatus::of(&intent) != Some(IntentStatus::Succeeded) {
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
            status: RefundStatus::Pending.as_str().into(),
            cardstream_transaction_id: None,
        };
        if let Some(m) = &r.metadata {
            m.apply(&mut refund.metadata, "metadata")?;
        }
        if internal.bank.is_some() {
            // A bank transfer has no refund call: the money goes back from the merchant's
            // Griffin account, by a payment of its own.
            let loaded = Loaded {
                version,
                intent,
                internal,
            };
            return super::bank_refunds::begin(p, ctx, loaded, refund).await;
        }
        p.gateway_for(scope.mode)?;
        if internal.refund_queue.is_empty() && internal.gateway_kept.is_none() {
            // The first refund (or the first since queues exist), nothing in flight: the sale
            // keeps what the records do. Later, it keeps what the gateway last confirmed.
            internal.gateway_kept = Some(intent.amount_received - internal.refunded);
        }
        internal.refunded += amount;
        internal.refund_queue.push(refund.id.clone());
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
            op: CommandOp::Refund,
            attempt,
            args: json!({"refund": refund.id, "amount": amount}),
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
            return Ok(Attempt::Done(run(p, &cmd, &cmd_id, Driver::Request).await?.reply));
        }
        Ok(Attempt::Conflict)
        },
        ApiError::lock_timeout,
    )
    .await
}

/// Who carries out a refund command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Driver {
    /// The request that began it: it waits its turn (up to [`QUEUE_WAIT`]).
    Request,
    /// Recovery: it acts if it is the sale's turn and no daemon holds the sale, else leaves
    /// the refund for a later pass.
    Recovery,
}

/// What a run of a refund command came to.
pub(super) struct Ran {
    pub reply: Reply,
    /// The refund is no longer pending (it succeeded or failed): recovery counts it done.
    pub settled: bool,
}

impl Ran {
    fn settled(reply: Reply) -> Self {
        Self {
            reply,
            settled: true,
        }
    }

    fn waiting(body: String) -> Self {
        Self {
            reply: Reply {
                status: 200,
                body,
                stored: true,
            },
            settled: false,
        }
    }
}

/// The lease a daemon holds while it acts on a sale's head refund (see [`refund_plan`]).
fn sale_lease(scope: &Scope, intent: &str) -> String {
    scope.key(&format!("payment_intent:{intent}:refund_lease"))
}

/// Carry out a refund command (from the request, or from recovery).
pub(super) async fn run(
    p: &Payments,
    cmd: &Command,
    cmd_id: &str,
    driver: Driver,
) -> Result<Ran, ApiError> {
    p.working_on(cmd_id, run_inner(p, cmd, cmd_id, driver))
        .await
}

async fn run_inner(
    p: &Payments,
    cmd: &Command,
    cmd_id: &str,
    driver: Driver,
) -> Result<Ran, ApiError> {
    let scope = cmd.scope();
    let refund_id = refund_of(cmd);
    let waiting_since = Instant::now();
    let may_wait = || driver == Driver::Request && waiting_since.elapsed() <= QUEUE_WAIT;
    loop {
        let head = match turn(p, &scope, cmd, cmd_id, &refund_id).await? {
            Turn::Over(ran) => return Ok(ran),
            Turn::Head(rec) => rec,
            Turn::Behind(rec) => {
                if !may_wait() {
                    // Recovery takes the queue in order on a later pass.
                    return Ok(Ran::waiting(rec.json));
                }
                tokio::time::sleep(QUEUE_POLL).await;
                continue;
            }
        };
        let acct = p.gateway_for(scope.mode)?;
        let token = Lease::token_for(&p.consumer);
        let ttl = refund_plan::lease_ttl(acct.request_timeout());
        let Some(lease) = p
            .store
            .take_lease(&sale_lease(&scope, &cmd.intent), token, ttl)
            .await?
        else {
            // Another daemon acts on this sale: it finishes this refund, or leaves it.
            if !may_wait() {
                return Ok(Ran::waiting(head.json));
            }
            tokio::time::sleep(QUEUE_POLL).await;
            continue;
        };
        let acted = act_as_head(p, &scope, cmd, cmd_id, &refund_id, &acct, &lease).await;
        if let Err(e) = p.store.release_lease(&lease).await {
            tracing::debug!(refund = %refund_id, error = %e, "sale lease left to expire");
        }
        if let Some(ran) = acted? {
            return Ok(ran);
        }
    }
}

/// The refund a refund command carries out.
fn refund_of(cmd: &Command) -> String {
    cmd.args
        .get("refund")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Where a refund stands in its sale's queue.
enum Turn {
    /// Finished already (or gone): its command is acknowledged.
    Over(Ran),
    /// Pending, at the head: it may act.
    Head(crate::store::Record),
    /// Pending, behind others.
    Behind(crate::store::Record),
}

async fn turn(
    p: &Payments,
    scope: &Scope,
    cmd: &Command,
    cmd_id: &str,
    refund_id: &str,
) -> Result<Turn, ApiError> {
    let refund_key = scope.record(refund_id);
    let Some((rec, _)) = p.store.get_with(&refund_key, &[]).await? else {
        let mut tx = Tx::new();
        tx.ack(COMMANDS, GROUP, cmd_id);
        p.store.commit(&tx).await?;
        return Err(ApiError::no_such("refund", refund_id, "refund"));
    };
    let refund: Refund = super::parse(&rec, &refund_key)?;
    if !RefundStatus::is_pending(&refund) {
        let mut tx = Tx::new();
        tx.ack(COMMANDS, GROUP, cmd_id);
        p.store.commit(&tx).await?;
        return Ok(Turn::Over(Ran::settled(Reply {
            status: 200,
            body: rec.json,
            stored: true,
        })));
    }
    let loaded = p.load(scope, None, &cmd.intent).await?;
    Ok(if is_head(&loaded, refund_id) {
        Turn::Head(rec)
    } else {
        Turn::Behind(rec)
    })
}

/// A refund queued behind others waits for them (one begun before queues existed is in none,
/// and goes once the queue is empty).
fn is_head(loaded: &Loaded, refund_id: &str) -> bool {
    let queue = &loaded.internal.refund_queue;
    queue.is_empty() || queue.first().map(String::as_str) == Some(refund_id)
}

/// The refund and its payment, read now, if the refund is still pending at the head of the
/// sale's queue.
async fn pending_head(
    p: &Payments,
    scope: &Scope,
    cmd: &Command,
    refund_id: &str,
) -> Result<Option<(crate::store::Record, Refund, Loaded)>, ApiError> {
    let refund_key = scope.record(refund_id);
    let Some((rec, _)) = p.store.get_with(&refund_key, &[]).await? else {
        return Ok(None);
    };
    let refund: Refund = super::parse(&rec, &refund_key)?;
    let loaded = p.load(scope, None, &cmd.intent).await?;
    if !RefundStatus::is_pending(&refund) || !is_head(&loaded, refund_id) {
        return Ok(None);
    }
    Ok(Some((rec, refund, loaded)))
}

/// Act on the head refund under the sale's lease: read it again (the lease's previous holder
/// may have finished it), then the gateway, then the finish. `None` when it is no longer the
/// pending head: look again.
async fn act_as_head(
    p: &Payments,
    scope: &Scope,
    cmd: &Command,
    cmd_id: &str,
    refund_id: &str,
    acct: &ModeGateway<'_>,
    lease: &Lease,
) -> Result<Option<Ran>, ApiError> {
    let Some((rec, refund, loaded)) = pending_head(p, scope, cmd, refund_id).await? else {
        return Ok(None);
    };
    let gateway = Held {
        store: &p.store,
        lease,
    };
    Ok(Some(
        match refund_at_gateway(acct, &gateway, cmd, &loaded, refund.amount).await {
            Ok(Step::Settled(outcome)) => {
                finish_landing(p, scope, cmd, cmd_id, rec, refund, outcome).await?
            }
            Ok(Step::Diverged { held, kept }) => {
                tracing::error!(
                    refund = %refund_id,
                    intent = %cmd.intent,
                    held, kept, amount = refund.amount,
                    "the sale moved outside its refunds at the gateway; the refund fails, the \
                     refunds behind it are planned from what the sale holds"
                );
                let why = Failure::Diverged { held };
                fail_landing(p, scope, cmd, Some(cmd_id), rec, refund, why).await?
            }
            Ok(Step::LeaseLost) => {
                tracing::warn!(refund = %refund_id, "sale lease lost before sending; left for recovery");
                Ran::waiting(rec.json)
            }
            Err(e) => {
                tracing::warn!(refund = %refund_id, error = %e, "refund outcome unknown; left for recovery");
                Ran::waiting(rec.json)
            }
        },
    ))
}

/// The gateway has acted (or refused): the finish must land. Retry on fresh reads when the
/// refund, the intent or the charge changed meanwhile (another refund accepted, say).
async fn finish_landing(
    p: &Payments,
    scope: &Scope,
    cmd: &Command,
    cmd_id: &str,
    rec: crate::store::Record,
    refund: Refund,
    outcome: Settled,
) -> Result<Ran, ApiError> {
    let outcome = &outcome;
    // Still pending after every try: recovery finds the gateway already acted (`reconcile`)
    // and records it.
    land(p, scope, rec, refund, move |version, refund| {
        finish(p, scope, cmd, cmd_id, version, refund, outcome.clone())
    })
    .await
}

/// Land one change of a pending refund (`change`: its finish or its failure, `None` when a
/// record moved meanwhile) on the refund as last read, reading it again after each lost race;
/// settled by another writer, its stored answer. After [`LANDING_ATTEMPTS`] the refund is
/// answered as it stands, still pending, for recovery to land.
async fn land<F, Fut>(
    p: &Payments,
    scope: &Scope,
    rec: crate::store::Record,
    refund: Refund,
    change: F,
) -> Result<Ran, ApiError>
where
    F: Fn(u64, Refund) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Reply>, ApiError>>,
{
    let refund_key = scope.record(&refund.id);
    // The refund as last read (and its stored body), for the next try.
    let state = std::sync::Mutex::new((rec.version, refund, rec.json));
    let (state_ref, refund_key_ref, change) = (&state, &refund_key, &change);
    let landed = until_committed_within(
        LANDING_ATTEMPTS,
        || async move {
            let (version, refund, _) = crate::lock(state_ref).clone();
            if let Some(reply) = change(version, refund).await? {
                return Ok(Attempt::Done(Ran::settled(reply)));
            }
            match reread(p, refund_key_ref).await? {
                Reread::Settled(ran) => Ok(Attempt::Done(ran)),
                Reread::Pending(fresh, current) => {
                    *crate::lock(state_ref) = (fresh.version, *current, fresh.json);
                    Ok(Attempt::Conflict)
                }
            }
        },
        || Landing::Contended,
    )
    .await;
    match landed {
        Ok(ran) => Ok(ran),
        Err(Landing::Failed(e)) => Err(e),
        Err(Landing::Contended) => Ok(Ran::waiting(crate::lock(&state).2.clone())),
    }
}

/// What a refund came to at the gateway, and what the sale keeps after it.
#[derive(Debug, Clone)]
struct Settled {
    outcome: ManageOutcome,
    kept: i64,
    /// Whether the sale settles for less (before settlement) or money went back after it:
    /// which batch the refund's balance transaction joins.
    route: RefundRoute,
}

/// Where carrying out the head refund at the gateway stopped.
#[derive(Debug)]
enum Step {
    /// Done or refused: the finish records it.
    Settled(Settled),
    /// The sale holds `held`, neither what was last confirmed (`kept`) nor that less this
    /// refund: it moved outside the queue. Nothing was sent.
    Diverged { held: i64, kept: i64 },
    /// The sale's lease lapsed before a request could be sent: nothing was sent.
    LeaseLost,
}

/// The sale's lease as held by the daemon acting on it.
struct Held<'a> {
    store: &'a crate::store::Store,
    lease: &'a Lease,
}

impl Held<'_> {
    /// Just before a request that moves money: the lease has been held without a break since
    /// it was taken, and now lasts long enough for the request (see [`refund_plan::lease_ttl`]).
    async fn still_ours(&self) -> bool {
        self.store.keep_lease(self.lease).await.unwrap_or(false)
    }
}

/// Carry out the head refund at the gateway, holding the sale's lease. Moves money: lowers the
/// captured amount, voids the sale, or refunds a settled one, as [`refund_plan::plan_refund`]
/// decides from what the gateway last confirmed. First asks the gateway what the sale holds, so
/// a request that already took effect (sent before a crash, its answer lost) is recorded, not
/// sent again; and sends nothing once the lease is lost.
async fn refund_at_gateway(
    acct: &ModeGateway<'_>,
    held: &Held<'_>,
    cmd: &Command,
    loaded: &Loaded,
    amount: i64,
) -> Result<Step, GatewayError> {
    let xref = loaded.internal.sale_xref.clone().unwrap_or_default();
    let kept = loaded
        .internal
        .gateway_kept
        .unwrap_or(loaded.intent.amount_received);
    let sale_ref = |transaction_id| crate::gateway::TxnRef {
        xref: xref.clone(),
        transaction_id,
    };
    // A CAPTURE or CANCEL refused because the sale settled meanwhile is planned again.
    let mut outcome = None;
    for _ in 0..2 {
        let sale = acct.query_sale(&xref).await?.ok_or_else(|| {
            GatewayError::Malformed(format!("the gateway does not know sale {xref}"))
        })?;
        let state = SaleState::of(&sale);
        let holds = refund_plan::held_at_gateway(&sale);
        match refund_plan::reconcile(kept, holds, amount) {
            Progress::Applied => {
                // Applied before a crash or a lost answer: a REFUND_SALE under this attempt
                // means after settlement; none means a lower capture or a cancel before it
                // (the sale may have settled since, for less).
                let mut txn = sale_ref(None);
                let mut refunded_after = false;
                if state == SaleState::Settled
                    && let Some(done) = acct.query_attempt(&cmd.attempt).await?
                    && let crate::gateway::AuthOutcome::Approved { txn: t, .. } = done.outcome
                {
                    txn = t;
                    refunded_after = true;
                }
                return Ok(Step::Settled(Settled {
                    outcome: ManageOutcome::Done { txn },
                    kept: kept - amount,
                    route: route_of(refunded_after, kept, amount),
                }));
            }
            Progress::Diverged => return Ok(Step::Diverged { held: holds, kept }),
            Progress::NotApplied => {}
        }
        let action = refund_plan::plan_refund(state, kept, amount);
        let after = matches!(action, GatewayAction::RefundSale { .. });
        if !matches!(action, GatewayAction::Refuse { .. }) && !held.still_ours().await {
            return Ok(Step::LeaseLost);
        }
        let done = match action {
            GatewayAction::Capture { keep } => acct.capture(&xref, keep).await?,
            GatewayAction::Cancel => acct.cancel(&xref).await?,
            GatewayAction::RefundSale { amount } => {
                acct.refund(&xref, amount, &cmd.attempt).await?
            }
            GatewayAction::Refuse { reason } => {
                return Ok(Step::Settled(Settled {
                    outcome: ManageOutcome::Refused {
                        code: 0,
                        message: reason.replace('_', " "),
                    },
                    kept,
                    route: RefundRoute::AfterSettlement,
                }));
            }
        };
        match done {
            ManageOutcome::Done { .. } => {
                return Ok(Step::Settled(Settled {
                    outcome: done,
                    kept: kept - amount,
                    route: route_of(after, kept, amount),
                }));
            }
            refused => outcome = Some(refused),
        }
    }
    Ok(Step::Settled(Settled {
        outcome: outcome.unwrap_or(ManageOutcome::Refused {
            code: 0,
            message: "refused".into(),
        }),
        kept,
        route: RefundRoute::AfterSettlement,
    }))
}

/// The route a refund of `amount` from a sale keeping `kept` took.
fn route_of(after_settlement: bool, kept: i64, amount: i64) -> RefundRoute {
    if after_settlement {
        RefundRoute::AfterSettlement
    } else {
        RefundRoute::BeforeSettlement {
            kept_before: kept,
            kept_after: kept - amount,
        }
    }
}

/// Why a refund fails without a gateway refusal.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// The sale holds `held`, which no refund of the queue explains.
    Diverged { held: i64 },
    /// Its command was parked as poison (`held`: what the sale holds, if the gateway said).
    Parked { held: Option<i64> },
}

impl Failure {
    fn reason(self) -> &'static str {
        match self {
            Failure::Diverged { .. } => "gateway_state_diverged",
            Failure::Parked { .. } => "processing_abandoned",
        }
    }

    fn held(self) -> Option<i64> {
        match self {
            Failure::Diverged { held } => Some(held),
            Failure::Parked { held } => held,
        }
    }
}

/// Fail a pending refund, retrying on fresh reads while its records change.
async fn fail_landing(
    p: &Payments,
    scope: &Scope,
    cmd: &Command,
    ack: Option<&str>,
    rec: crate::store::Record,
    refund: Refund,
    why: Failure,
) -> Result<Ran, ApiError> {
    land(p, scope, rec, refund, move |version, refund| {
        fail(p, scope, cmd, ack, version, refund, why)
    })
    .await
}

/// Fail a pending refund in one commit: the refund `failed` with its reason, out of the
/// intent's queue and its reserved amount given back (so the refunds behind it go on; see
/// [`refund_plan::give_back`]), the events `refund.updated` and `refund.failed`, the answer kept
/// under the request's idempotency key, and the command acknowledged if `ack` names it. `None`
/// when a record changed meanwhile.
async fn fail(
    p: &Payments,
    scope: &Scope,
    cmd: &Command,
    ack: Option<&str>,
    version: u64,
    mut refund: Refund,
    why: Failure,
) -> Result<Option<Reply>, ApiError> {
    let request = EventRequest {
        id: cmd.request.clone(),
        idempotency_key: cmd.claim.as_ref().map(|c| c.0.clone()),
    };
    let loaded = p.load(scope, None, &cmd.intent).await?;
    let internal = refund_plan::give_back(&loaded.internal, &refund.id, refund.amount, why.held());
    refund.status = RefundStatus::Failed.as_str().into();
    refund.failure_reason = Some(why.reason().into());
    let body = to_json(&refund)?;
    let mut tx = Tx::new();
    let refund_key = scope.record(&refund.id);
    tx.expect_version(&refund_key, version)
        .put(&refund_key, version + 1, &body);
    let key = scope.record(&cmd.intent);
    tx.expect_version(&key, loaded.version);
    tx.put_with(
        &key,
        loaded.version + 1,
        &to_json(&loaded.intent)?,
        &[("internal", &to_json(&internal)?)],
    );
    tx.event(scope, &event("refund.updated", &refund, scope, &request));
    tx.event(scope, &event("refund.failed", &refund, scope, &request));
    if let Some(id) = ack {
        tx.ack(COMMANDS, GROUP, id);
    }
    if let Some(claim) = cmd.claim() {
        tx.respond_to(&claim, p.idempotency_ttl_secs, 200, &body);
    }
    match crate::resource::commit_finish(&p.store, &tx).await? {
        Commit::Done(_) => {
            metrics::counter!("calmony_refunds_total", "outcome" => "failed").increment(1);
            Ok(Some(Reply {
                status: 200,
                body,
                stored: true,
            }))
        }
        _ => Ok(None),
    }
}

/// What became of a refund whose command is being parked as poison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GaveUp {
    /// It failed (or had already finished): park the command.
    Failed,
    /// The gateway had carried it out: recorded as succeeded, its command acknowledged.
    Recorded,
    /// Another daemon acts on the sale: leave it for a later pass.
    Busy,
}

/// Give up on a refund whose command is parked (unreadable, or delivered too often), so it
/// cannot hold up its sale's queue for ever. Pending behind others, it fails at once (it never
/// acted). At the head, under the sale's lease, the gateway is asked first: a request of it that
/// took effect is recorded as succeeded; otherwise it fails, the refunds behind it planned from
/// what the sale holds if the gateway said. The command itself is left for the caller to park.
pub(super) async fn give_up(p: &Payments, cmd: &Command, cmd_id: &str) -> Result<GaveUp, ApiError> {
    let scope = cmd.scope();
    let refund_id = refund_of(cmd);
    let refund_key = scope.record(&refund_id);
    let (scope, refund_id, refund_key) = (&scope, &refund_id, &refund_key);
    let gave_up = until_committed(
        || async move {
            let Some((rec, _)) = p.store.get_with(refund_key, &[]).await? else {
                return Ok(Attempt::Done(GaveUp::Failed));
            };
            let refund: Refund = super::parse(&rec, refund_key)?;
            if !RefundStatus::is_pending(&refund) {
                return Ok(Attempt::Done(GaveUp::Failed));
            }
            let loaded = p.load(scope, None, &cmd.intent).await?;
            if !is_head(&loaded, refund_id) {
                let why = Failure::Parked { held: None };
                let ran = fail_landing(p, scope, cmd, None, rec, refund, why).await?;
                return Ok(Attempt::Done(if ran.settled {
                    GaveUp::Failed
                } else {
                    GaveUp::Busy
                }));
            }
            let acct = p.gateway_for(scope.mode)?;
            let token = Lease::token_for(&p.consumer);
            let ttl = refund_plan::lease_ttl(acct.request_timeout());
            let Some(lease) = p
                .store
                .take_lease(&sale_lease(scope, &cmd.intent), token, ttl)
                .await?
            else {
                return Ok(Attempt::Done(GaveUp::Busy));
            };
            let result = give_up_head(p, scope, cmd, cmd_id, refund_id, &acct).await;
            if let Err(e) = p.store.release_lease(&lease).await {
                tracing::debug!(refund = %refund_id, error = %e, "sale lease left to expire");
            }
            if let Some(gave_up) = result? {
                return Ok(Attempt::Done(gave_up));
            }
            Ok(Attempt::Conflict)
        },
        || Landing::Contended,
    )
    .await;
    match gave_up {
        Ok(gave_up) => Ok(gave_up),
        Err(Landing::Failed(e)) => Err(e),
        Err(Landing::Contended) => Ok(GaveUp::Busy),
    }
}

/// [`give_up`] at the head, under the sale's lease; `None` when it is no longer the pending
/// head: look again.
async fn give_up_head(
    p: &Payments,
    scope: &Scope,
    cmd: &Command,
    cmd_id: &str,
    refund_id: &str,
    acct: &ModeGateway<'_>,
) -> Result<Option<GaveUp>, ApiError> {
    let Some((rec, refund, loaded)) = pending_head(p, scope, cmd, refund_id).await? else {
        return Ok(None);
    };
    let kept = loaded
        .internal
        .gateway_kept
        .unwrap_or(loaded.intent.amount_received);
    let xref = loaded.internal.sale_xref.clone().unwrap_or_default();
    // What the sale holds, if the gateway says (it may be why the command is poison).
    let holds = match acct.query_sale(&xref).await {
        Ok(Some(sale)) => Some(refund_plan::held_at_gateway(&sale)),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(refund = %refund_id, error = %e, "the sale could not be read before giving up");
            None
        }
    };
    if let Some(h) = holds
        && refund_plan::reconcile(kept, h, refund.amount) == Progress::Applied
    {
        // A REFUND_SALE under this attempt means the refund went back after settlement.
        let refunded_after = match acct.query_attempt(&cmd.attempt).await {
            Ok(Some(done)) => matches!(done.outcome, crate::gateway::AuthOutcome::Approved { .. }),
            _ => false,
        };
        let done = Settled {
            outcome: ManageOutcome::Done {
                txn: crate::gateway::TxnRef {
                    xref,
                    transaction_id: None,
                },
            },
            kept: h,
            route: route_of(refunded_after, kept, refund.amount),
        };
        let ran = finish_landing(p, scope, cmd, cmd_id, rec, refund, done).await?;
        return Ok(Some(if ran.settled {
            GaveUp::Recorded
        } else {
            GaveUp::Busy
        }));
    }
    let why = Failure::Parked { held: holds };
    let ran = fail_landing(p, scope, cmd, None, rec, refund, why).await?;
    Ok(Some(if ran.settled {
        GaveUp::Failed
    } else {
        GaveUp::Busy
    }))
}

/// Record a refund's result in one commit: the refund `succeeded` or `failed` (its reserved
/// amount given back), the charge's `amount_refunded`, what the gateway now keeps, the refund
/// out of the intent's queue (the next one may act), the events, the command acknowledged and
/// the idempotent answer. `None` when a record changed meanwhile: read again and retry.
async fn finish(
    p: &Payments,
    scope: &Scope,
    cmd: &Command,
    cmd_id: &str,
    version: u64,
    mut refund: Refund,
    settled: Settled,
) -> Result<Option<Reply>, ApiError> {
    let request = EventRequest {
        id: cmd.request.clone(),
        idempotency_key: cmd.claim.as_ref().map(|c| c.0.clone()),
    };
    let mut tx = Tx::new();
    let refund_key = scope.record(&refund.id);
    tx.expect_version(&refund_key, version);
    let loaded = p.load(scope, None, &cmd.intent).await?;
    let mut internal = loaded.internal.clone();
    internal.refund_queue.retain(|id| *id != refund.id);
    internal.gateway_kept = Some(settled.kept);
    let (status_code, body) = match settled.outcome {
        ManageOutcome::Done { txn } => {
            refund.status = RefundStatus::Succeeded.as_str().into();
            refund.cardstream_transaction_id = txn.transaction_id;
            if let Some(ch_id) = refund.charge.clone()
                && let Some((rec, _)) = p.store.get_with(&scope.record(&ch_id), &[]).await?
            {
                let ch_id = ch_id.as_str();
                let mut ch: Charge = super::parse(&rec, ch_id)?;
                let entry = match &ch.balance_transaction {
                    Some(t) => ledger::charge_entry(&p.store, scope, t).await?,
                    None => None,
                };
                ledger::card_refund(
                    &mut tx,
                    scope,
                    p.settlement.mode(scope.mode),
                    &mut refund,
                    entry.as_ref(),
                    settled.route,
                    clock::now(),
                )?;
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
            refund.status = RefundStatus::Failed.as_str().into();
            refund.failure_reason = Some(format!("gateway_refused_{code}"));
            // Give the reserved amount back.
            internal.refunded -= refund.amount;
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
    let key = scope.record(&cmd.intent);
    tx.expect_version(&key, loaded.version);
    tx.put_with(
        &key,
        loaded.version + 1,
        &to_json(&loaded.intent)?,
        &[("internal", &to_json(&internal)?)],
    );
    tx.put(&refund_key, version + 1, &to_json(&refund)?);
    tx.event(scope, &event("refund.updated", &refund, scope, &request));
    if RefundStatus::parse(&refund.status) == Some(RefundStatus::Failed) {
        tx.event(scope, &event("refund.failed", &refund, scope, &request));
    }
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

/// A refund read again after its landing lost a race.
enum Reread {
    /// Another writer already settled it: its answer as stored.
    Settled(Ran),
    /// Still pending: the record and refund to land on next.
    Pending(Record, Box<Refund>),
}

/// Read the refund at `key` again for a landing that lost a race; gone means contended.
async fn reread(p: &Payments, key: &str) -> Result<Reread, Landing> {
    let Some((fresh, _)) = p.store.get_with(key, &[]).await? else {
        return Err(Landing::Contended);
    };
    let current: Refund = super::parse(&fresh, key)?;
    if RefundStatus::is_pending(&current) {
        return Ok(Reread::Pending(fresh, Box::new(current)));
    }
    Ok(Reread::Settled(Ran::settled(Reply {
        status: 200,
        body: fresh.json,
        stored: true,
    })))
}
