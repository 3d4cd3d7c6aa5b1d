//! Refunds of Pay by Bank payments, paid from the merchant's Griffin account to the payer's
//! account (as their bank reported it) by Faster Payments. The steps are decided in
//! [`super::bank_refund_plan`]; this file loads, calls Griffin and commits.
//!
//! 1. **Begin** (`POST /v1/refunds`, one commit): the refund `pending` with its Griffin
//!    reference, the amount reserved on the intent and counted on the charge
//!    (`amount_refunded`, as Stripe counts a pending refund), `refund.created` and
//!    `charge.refunded`, the answer under the request's idempotency key, and the refund due on
//!    [`TRACKING`]. Nothing is sent to Griffin on the request's path.
//! 2. **Create** (the BankTracker's pass): search Griffin by the reference; none found, the
//!    payment is created; its `payment-url` is committed as `created`.
//! 3. **Submit**: the payment's submissions are read; none, it is submitted; the submission's
//!    URL is committed as `submitted`.
//! 4. **Follow** the submission: `delivered` → the refund `succeeded` (`refund.updated`,
//!    `charge.refund.updated`); `failed` → the refund `failed` with its `failure_reason`, the
//!    amount given back to the charge and the intent (`refund.updated`,
//!    `charge.refund.updated`, `refund.failed`). The refund then leaves [`TRACKING`].
//!
//! A crash anywhere leaves the refund on [`TRACKING`] at the step last committed, and each
//! step looks before it sends, so the refund is never lost and never paid twice. Several
//! daemons may share the Redis: the one acting on a refund holds its lease (kept just before
//! every request that sends something), so only one sends at a time.

use std::sync::Arc;
use std::time::Duration;

use calmony_protocol::charge::Charge;
use calmony_protocol::event::EventRequest;
use calmony_protocol::griffin::{Creditor, Money, NewPayment};
use calmony_protocol::refund::Refund;
use calmony_protocol::{ApiError, ErrorType, Mode};
use redis::AsyncCommands;

use super::bank::member;
use super::bank_attempt::open_refund_account;
use super::bank_refund_plan::{self, BankRefund, Call, Found, Next, Outcome, Phase};
use super::bank_tracking::parse_member;
use super::records::{event, intent_refunds, write_intent};
use super::refund_plan::RefundStatus;
use super::{Loaded, Payments};
use crate::clock;
use crate::context::{Reply, RequestContext};
use crate::gateway::griffin::{GriffinClient, GriffinError};
use crate::resource::{commit, committed, to_json};
use crate::store::retry::Attempt;
use crate::store::{Commit, Lease, Record, Scope, Tx};
use crate::system::faults::kill_point;

/// Beyond twice the request timeout, how long an unanswered submit waits for its submission
/// to show before the payment may be submitted again.
const RESUBMIT_MARGIN: Duration = Duration::from_secs(5);

/// Bank refunds not yet finished, by when to look at them next (ms): `project|mode|refund`.
/// A refund joins it in its begin commit and leaves it only in the commit that finishes it.
pub const TRACKING: &str = "cp:payments:bank_refunds";

/// The refund's own lease: held while a daemon acts on it at Griffin.
fn lease_key(scope: &Scope, refund_id: &str) -> String {
    scope.key(&format!("refund:{refund_id}:lease"))
}

/// Leeway past one Griffin request's timeout for a lease kept just before sending it.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// The Griffin client of `mode`, or the refusal a bank payment's refund gets without one.
fn griffin(p: &Payments, mode: Mode) -> Result<Arc<GriffinClient>, ApiError> {
    p.griffin
        .as_ref()
        .and_then(|g| g.client(mode))
        .ok_or_else(|| {
            ApiError::new(
                400,
                ErrorType::InvalidRequestError,
                "This payment was made by Pay by Bank. Its refund is paid from your bank \
                 account to the payer's, and no settlement account (Griffin) is configured to \
                 pay it from. Nothing was changed.",
            )
            .with_code("refund_unsupported_payment_method")
            .with_param("payment_intent")
        })
}

/// Begin a refund of a Pay by Bank payment (see the module documentation, step 1): `refund`
/// is the `pending` refund `create_refund` made of `loaded`, its amount checked against what
/// is left. [`Attempt::Conflict`] when the intent or its charge changed meanwhile.
pub(super) async fn begin(
    p: &Payments,
    ctx: &RequestContext,
    loaded: Loaded,
    refund: Refund,
) -> Result<Attempt<Reply>, ApiError> {
    let scope = &ctx.scope;
    griffin(p, scope.mode)?;
    let Loaded {
        version,
        intent,
        mut internal,
    } = loaded;
    let payee = internal
        .bank
        .as_ref()
        .and_then(|b| open_refund_account(b, &intent.id));
    if payee.is_none() {
        return Err(ApiError::new(
            400,
            ErrorType::InvalidRequestError,
            "The payer's bank did not share the account this payment came from, so it cannot \
             be refunded from here: refund the payer another way. Nothing was changed.",
        )
        .with_code("charge_not_refundable")
        .with_param("payment_intent"));
    }
    internal.refunded += refund.amount;
    let state = BankRefund::new(&refund.id);
    let body = to_json(&refund)?;
    let request = ctx.event_request();
    let mut tx = Tx::new();
    tx.expect_version(&scope.record(&intent.id), version);
    write_intent(&mut tx, scope, version + 1, &intent, &internal)?;
    let refund_key = scope.record(&refund.id);
    tx.expect_version(&refund_key, 0)
        .put_with(&refund_key, 1, &body, &[("internal", &to_json(&state)?)])
        .index(&scope.key("refunds"), &refund.id)
        .index(&intent_refunds(scope, &intent.id), &refund.id);
    tx.event(scope, &event("refund.created", &refund, scope, &request));
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
    tx.schedule(TRACKING, clock::now_ms(), &member(scope, &refund.id));
    tx.respond(ctx, 200, &body);
    Ok(committed(commit(&p.store, &tx).await?, body))
}

/// One pass over [`TRACKING`]: every bank refund that is due, looked at once. Answers how many
/// were looked at.
pub async fn follow_due(p: &Payments, limit: usize) -> Result<usize, ApiError> {
    let now = clock::now_ms();
    let mut c = p.store.conn();
    let due: Vec<String> = p
        .store
        .run(c.zrangebyscore_limit(TRACKING, "-inf", now, 0, limit as isize))
        .await?;
    let n = due.len();
    for m in due {
        let Some((scope, id)) = parse_member(&m) else {
            let mut tx = Tx::new();
            tx.unindex(TRACKING, &m);
            p.store.commit(&tx).await?;
            continue;
        };
        if let Err(e) = follow_one(p, &scope, &id).await {
            tracing::warn!(refund = %id, error = %e.message, "bank refund step failed; retried later");
        }
    }
    Ok(n)
}

/// Take the refund's next step at Griffin, under its lease (a refund another daemon acts on
/// is left to it).
pub async fn follow_one(p: &Payments, scope: &Scope, refund_id: &str) -> Result<(), ApiError> {
    let client = match griffin(p, scope.mode) {
        Ok(c) => c,
        Err(_) => {
            // Configured when it began; an operator removed it since. Kept, looked at later.
            tracing::error!(refund = %refund_id, "a bank refund is pending but Griffin is not configured for its mode");
            return reschedule_only(p, scope, refund_id, 60_000).await;
        }
    };
    let token = Lease::token_for(&p.consumer);
    let ttl = client.timeout() + LEASE_MARGIN;
    let Some(lease) = p
        .store
        .take_lease(&lease_key(scope, refund_id), token, ttl)
        .await?
    else {
        return Ok(());
    };
    let stepped = step(p, scope, refund_id, &client, &lease).await;
    if let Err(e) = p.store.release_lease(&lease).await {
        tracing::debug!(refund = %refund_id, error = %e, "refund lease left to expire");
    }
    stepped
}

/// A refund as read for a step: its record, the refund and its progress.
struct Tracked {
    rec: Record,
    refund: Refund,
    state: BankRefund,
}

async fn load(p: &Payments, scope: &Scope, refund_id: &str) -> Result<Option<Tracked>, ApiError> {
    let key = scope.record(refund_id);
    let Some((rec, fields)) = p.store.get_with(&key, &["internal"]).await? else {
        return Ok(None);
    };
    let refund: Refund = super::parse(&rec, &key)?;
    let state = fields
        .into_iter()
        .next()
        .flatten()
        .and_then(|s| serde_json::from_str::<BankRefund>(&s).ok());
    Ok(state.map(|state| Tracked { rec, refund, state }))
}

async fn step(
    p: &Payments,
    scope: &Scope,
    refund_id: &str,
    client: &GriffinClient,
    lease: &Lease,
) -> Result<(), ApiError> {
    let Some(now) = load(p, scope, refund_id).await? else {
        tracing::error!(refund = %refund_id, "a tracked bank refund has no record or progress; untracked");
        return untrack(p, scope, refund_id).await;
    };
    if !RefundStatus::is_pending(&now.refund) {
        return untrack(p, scope, refund_id).await;
    }
    match now.state.phase {
        Phase::Creating => create(p, scope, client, lease, now).await,
        Phase::Created => submit(p, scope, client, lease, now).await,
        Phase::Submitted => follow(p, scope, client, now).await,
    }
}

/// Step 2: find the payment by its reference, or create it.
async fn create(
    p: &Payments,
    scope: &Scope,
    client: &GriffinClient,
    lease: &Lease,
    now: Tracked,
) -> Result<(), ApiError> {
    let found = match client.find_payments(&now.state.reference).await {
        Ok(found) => found,
        Err(e) => return waited(p, scope, now, &e, Call::Look).await,
    };
    let views: Vec<Found<'_>> = found.iter().map(Found::of).collect();
    if let Some(url) = bank_refund_plan::ours(&views, &now.state.reference) {
        let url = url.to_owned();
        return created(p, scope, now, url).await;
    }
    let Some(payee) = payee_of(p, scope, &now.refund).await? else {
        return fail(p, scope, now, "unknown").await;
    };
    if !p.store.keep_lease(lease).await.unwrap_or(false) {
        return Ok(());
    }
    kill_point("bank_refund_before_create");
    let order = NewPayment {
        payment_amount: Money::gbp(now.refund.amount),
        creditor: Creditor::uk(
            payee.name.as_deref().unwrap_or("Payer"),
            &payee.sort_code,
            &payee.account_number,
        ),
        payment_reference: Some(now.state.reference.clone()),
    };
    match client.create_payment(&order).await {
        Ok(payment) => {
            kill_point("bank_refund_after_create");
            created(p, scope, now, payment.payment_url).await
        }
        Err(e) => {
            tracing::warn!(refund = %now.refund.id, error = %e, "Griffin did not create the refund's payment");
            waited(p, scope, now, &e, Call::Create).await
        }
    }
}

/// The payer's account the refund's payment was made from, opened.
async fn payee_of(
    p: &Payments,
    scope: &Scope,
    refund: &Refund,
) -> Result<Option<super::bank_attempt::RefundAccount>, ApiError> {
    let loaded = p.load(scope, None, &refund.payment_intent).await?;
    Ok(loaded
        .internal
        .bank
        .as_ref()
        .and_then(|b| open_refund_account(b, &loaded.intent.id)))
}

/// The payment exists at `url`: committed as `created`, due at once.
async fn created(p: &Payments, scope: &Scope, now: Tracked, url: String) -> Result<(), ApiError> {
    let mut state = now.state.clone();
    state.phase = Phase::Created;
    state.payment_url = Some(url);
    state.checks = 0;
    save(p, scope, &now, &state, clock::now_ms()).await
}

/// Step 3: look at the payment's submissions, and submit it if it has none.
async fn submit(
    p: &Payments,
    scope: &Scope,
    client: &GriffinClient,
    lease: &Lease,
    now: Tracked,
) -> Result<(), ApiError> {
    let url = now.state.payment_url.clone().unwrap_or_default();
    let looked = match client.payment(&url).await {
        Ok(payment) => client
            .submissions(&payment)
            .await
            .map(|subs| (payment, subs)),
        Err(e) => Err(e),
    };
    let (payment, submissions) = match looked {
        Ok(found) => found,
        Err(e) => return waited(p, scope, now, &e, Call::Look).await,
    };
    if let Some(s) = submissions.first() {
        return submitted(p, scope, now, s.submission_url.clone()).await;
    }
    if let Some(sent) = now.state.submit_sent_at {
        // A submit was sent (or about to be) and never answered. Griffin makes a submission
        // while it handles the request, so once well past the request's timeout a look that
        // still finds none means it made none: only then is the payment submitted again.
        let waiting_ms = clock::now_ms().saturating_sub(sent);
        let grace_ms = (client.timeout() * 2 + RESUBMIT_MARGIN).as_millis() as i64;
        if waiting_ms < grace_ms {
            return backoff(p, scope, now, None).await;
        }
        tracing::warn!(refund = %now.refund.id, payment = %url, waiting_ms, "a refund's submit was never answered and no submission shows after the grace: submitted again");
    }
    // Recorded before it is sent, so a crash or a lost answer after it never sends another.
    let mut state = now.state.clone();
    state.submit_sent_at = Some(clock::now_ms());
    let due = clock::now_ms() + bank_refund_plan::next_check(0).as_millis() as i64;
    if !save_checked(p, scope, &now, &state, due).await? {
        return Ok(());
    }
    let Some(now) = load(p, scope, &now.refund.id).await? else {
        return Ok(());
    };
    if !p.store.keep_lease(lease).await.unwrap_or(false) {
        return Ok(());
    }
    kill_point("bank_refund_before_submit");
    match client.submit(&payment).await {
        Ok(s) => {
            kill_point("bank_refund_after_submit");
            submitted(p, scope, now, s.submission_url).await
        }
        Err(e) => {
            tracing::warn!(refund = %now.refund.id, error = %e, "Griffin did not take the refund's submission");
            if bank_refund_plan::submit_uncertain(&e) {
                return backoff(p, scope, now, None).await;
            }
            // Griffin answered that it made no submission: a later pass may submit again.
            let mut state = now.state.clone();
            state.submit_sent_at = None;
            let due = clock::now_ms();
            if !save_checked(p, scope, &now, &state, due).await? {
                return Ok(());
            }
            match load(p, scope, &now.refund.id).await? {
                Some(now) => waited(p, scope, now, &e, Call::Submit).await,
                None => Ok(()),
            }
        }
    }
}

/// Submitted: committed as `submitted`, looked at after the first step of the backoff.
async fn submitted(p: &Payments, scope: &Scope, now: Tracked, url: String) -> Result<(), ApiError> {
    let mut state = now.state.clone();
    state.phase = Phase::Submitted;
    state.submission_url = Some(url);
    state.checks = 0;
    state.short_since = None;
    let due = clock::now_ms() + bank_refund_plan::next_check(0).as_millis() as i64;
    save(p, scope, &now, &state, due).await
}

/// Step 4: where the submission stands.
async fn follow(
    p: &Payments,
    scope: &Scope,
    client: &GriffinClient,
    now: Tracked,
) -> Result<(), ApiError> {
    let url = now.state.submission_url.clone().unwrap_or_default();
    let status = match client.submission(&url).await {
        Ok(s) => s.submission_status,
        Err(e) => return waited(p, scope, now, &e, Call::Look).await,
    };
    match bank_refund_plan::after_submission(status) {
        Outcome::Pending => backoff(p, scope, now, None).await,
        Outcome::Succeeded => succeed(p, scope, now).await,
        Outcome::Failed(reason) => {
            tracing::warn!(refund = %now.refund.id, ?status, "the refund's Faster Payment did not reach the payer");
            fail(p, scope, now, reason).await
        }
    }
}

/// A step Griffin did not answer (or refused): looked at again, or the refund fails.
async fn waited(
    p: &Payments,
    scope: &Scope,
    now: Tracked,
    error: &GriffinError,
    call: Call,
) -> Result<(), ApiError> {
    match bank_refund_plan::after_error(error, call, now.state.short_since, clock::now_ms()) {
        Next::Wait => {
            tracing::warn!(refund = %now.refund.id, %error, "bank refund step not answered; looked at again");
            backoff(p, scope, now, None).await
        }
        Next::Short { since } => {
            tracing::warn!(refund = %now.refund.id, "the Griffin account cannot cover the refund yet; tried again later");
            backoff(p, scope, now, Some(since)).await
        }
        Next::Fail(reason) => {
            tracing::warn!(refund = %now.refund.id, %error, reason, "Griffin refused the refund; it fails");
            fail(p, scope, now, reason).await
        }
    }
}

/// Nothing changed: due again after the backoff's next step.
async fn backoff(
    p: &Payments,
    scope: &Scope,
    now: Tracked,
    short_since: Option<i64>,
) -> Result<(), ApiError> {
    let mut state = now.state.clone();
    state.checks = state.checks.saturating_add(1);
    state.short_since = short_since;
    let due = clock::now_ms() + bank_refund_plan::next_check(state.checks).as_millis() as i64;
    save(p, scope, &now, &state, due).await
}

/// [`save`], answering whether it landed.
async fn save_checked(
    p: &Payments,
    scope: &Scope,
    now: &Tracked,
    state: &BankRefund,
    due: i64,
) -> Result<bool, ApiError> {
    let key = scope.record(&now.refund.id);
    let mut tx = Tx::new();
    tx.expect_version(&key, now.rec.version).put_with(
        &key,
        now.rec.version + 1,
        &now.rec.json,
        &[("internal", &to_json(state)?)],
    );
    tx.schedule(TRACKING, due, &member(scope, &now.refund.id));
    Ok(matches!(p.store.commit(&tx).await?, Commit::Done(_)))
}

/// Commit the refund's progress (its record version-checked) and when to look next. A record
/// that moved meanwhile is left for the next pass, which reads it again.
async fn save(
    p: &Payments,
    scope: &Scope,
    now: &Tracked,
    state: &BankRefund,
    due: i64,
) -> Result<(), ApiError> {
    let key = scope.record(&now.refund.id);
    let mut tx = Tx::new();
    tx.expect_version(&key, now.rec.version).put_with(
        &key,
        now.rec.version + 1,
        &now.rec.json,
        &[("internal", &to_json(state)?)],
    );
    tx.schedule(TRACKING, due, &member(scope, &now.refund.id));
    if !matches!(p.store.commit(&tx).await?, Commit::Done(_)) {
        tracing::debug!(refund = %now.refund.id, "bank refund moved meanwhile; read again next pass");
    }
    Ok(())
}

/// The money reached the payer: `succeeded` in one commit, out of [`TRACKING`].
async fn succeed(p: &Payments, scope: &Scope, now: Tracked) -> Result<(), ApiError> {
    let mut refund = now.refund.clone();
    refund.status = RefundStatus::Succeeded.as_str().into();
    let mut tx = Tx::new();
    crate::money::ledger::bank_refund(&mut tx, scope, &mut refund, crate::clock::now())?;
    let body = to_json(&refund)?;
    let key = scope.record(&refund.id);
    let request = EventRequest::default();
    tx.expect_version(&key, now.rec.version).put_with(
        &key,
        now.rec.version + 1,
        &body,
        &[("internal", &to_json(&now.state)?)],
    );
    tx.event(scope, &event("refund.updated", &refund, scope, &request));
    tx.event(
        scope,
        &event("charge.refund.updated", &refund, scope, &request),
    );
    tx.unindex(TRACKING, &member(scope, &refund.id));
    if matches!(p.store.commit(&tx).await?, Commit::Done(_)) {
        metrics::counter!("calmony_refunds_total", "outcome" => "succeeded").increment(1);
    }
    Ok(())
}

/// The refund did not go through (`reason`, Stripe's `failure_reason`): `failed` in one
/// commit, its amount given back to the intent and the charge, out of [`TRACKING`]. A
/// record that moved meanwhile is left for the next pass.
async fn fail(p: &Payments, scope: &Scope, now: Tracked, reason: &str) -> Result<(), ApiError> {
    let mut refund = now.refund.clone();
    refund.status = RefundStatus::Failed.as_str().into();
    refund.failure_reason = Some(reason.to_owned());
    let body = to_json(&refund)?;
    let key = scope.record(&refund.id);
    let request = EventRequest::default();
    let mut tx = Tx::new();
    tx.expect_version(&key, now.rec.version).put_with(
        &key,
        now.rec.version + 1,
        &body,
        &[("internal", &to_json(&now.state)?)],
    );
    let Loaded {
        version,
        intent,
        mut internal,
    } = p.load(scope, None, &refund.payment_intent).await?;
    internal.refunded = (internal.refunded - refund.amount).max(0);
    tx.expect_version(&scope.record(&intent.id), version);
    write_intent(&mut tx, scope, version + 1, &intent, &internal)?;
    if let Some(ch_id) = &refund.charge
        && let Some((rec, _)) = p.store.get_with(&scope.record(ch_id), &[]).await?
    {
        let mut ch: Charge = super::parse(&rec, ch_id)?;
        ch.amount_refunded = (ch.amount_refunded - refund.amount).max(0);
        ch.refunded = ch.amount_refunded > 0 && ch.amount_refunded >= ch.amount_captured;
        tx.expect_version(&scope.record(ch_id), rec.version);
        tx.put(&scope.record(ch_id), rec.version + 1, &to_json(&ch)?);
    }
    tx.event(scope, &event("refund.updated", &refund, scope, &request));
    tx.event(
        scope,
        &event("charge.refund.updated", &refund, scope, &request),
    );
    tx.event(scope, &event("refund.failed", &refund, scope, &request));
    tx.unindex(TRACKING, &member(scope, &refund.id));
    if matches!(p.store.commit(&tx).await?, Commit::Done(_)) {
        metrics::counter!("calmony_refunds_total", "outcome" => "failed").increment(1);
    } else {
        tracing::debug!(refund = %refund.id, "bank refund's records moved meanwhile; failed next pass");
    }
    Ok(())
}

/// Look at the refund again in `after_ms`, changing nothing else.
async fn reschedule_only(
    p: &Payments,
    scope: &Scope,
    refund_id: &str,
    after_ms: i64,
) -> Result<(), ApiError> {
    let mut tx = Tx::new();
    tx.schedule(
        TRACKING,
        clock::now_ms() + after_ms,
        &member(scope, refund_id),
    );
    p.store.commit(&tx).await?;
    Ok(())
}

async fn untrack(p: &Payments, scope: &Scope, refund_id: &str) -> Result<(), ApiError> {
    let mut tx = Tx::new();
    tx.unindex(TRACKING, &member(scope, refund_id));
    p.store.commit(&tx).await?;
    Ok(())
}
