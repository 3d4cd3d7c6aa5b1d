//! Pay by Bank: a payment the payer approves at their own bank (an Open Banking domestic
//! payment), carried through its steps with a commit before every call to the bank.
//!
//! 1. **Confirm** (the API): the intent goes to `requires_action`, its `next_action` the bank
//!    page, and a [`BankAttempt`] with both idempotency keys is written.
//! 2. **Choose a bank** (the page's form): the bank is written (`consent_pending`) *then* the
//!    consent is created under its key, and the payer is sent to the bank's authorisation.
//! 3. **Return** (the bank's redirect with `code` and `state`): the state is checked against
//!    the attempt's, the code exchanged for the consent's token, the token written sealed
//!    (`submitting`) *then* the payment submitted under its key; `processing` with a pending
//!    charge, or at once `succeeded` when the bank says it has settled.
//! 4. **Track** (the [`crate::system`] BankTracker's tick, over [`TRACKING`]): every open
//!    attempt is looked at when due, with backoff. It asks the bank first (the consent, the
//!    payment) and resends only under the same key, so a crash at any step neither loses the
//!    payment nor pays twice: a consent is created once and submitted at most once.
//!
//! Each change is one version-checked commit of the intent (and its charge, events, receipt
//! and tracking entry), so the request path and the tracker cannot both apply one result.
//!
//! The payer's pages are [`super::bank_pages`]; the BankTracker's pass is
//! [`super::bank_tracking`].

use std::time::Duration;

use calmony_protocol::charge::Charge;
use calmony_protocol::event::EventRequest;
use calmony_protocol::payment_intent::{PAY_BY_BANK, PaymentIntent};
use calmony_protocol::{ApiError, ErrorType, Mode, ids};
use serde_json::{Value, json};

pub use super::bank_attempt::BankRail;
use super::bank_attempt::{self, BankAttempt, Next, Phase};
pub use super::bank_pages::{PageError, choose, page, returned};
pub use super::bank_tracking::{track_due, track_one};
use super::records::{event, new_charge, write_intent};
use super::transitions::{BillingEffect, ChargeStatus, IntentStatus};
use super::{FinishedPayment, IntentInternal, Loaded, Payments};
use crate::clock;
use crate::gateway::bank_flows::{
    BankError, BankPayment, BankSummary, BankToken, ConsentOrder, Submission,
};
use crate::store::{Commit, Scope, Tx};

/// Open attempts by when to look at them next (ms): `project|mode|intent`.
pub const TRACKING: &str = "cp:payments:bank_tracking";

/// Checkout sessions by expiry time (the checkout sweeper's queue): a session a bank payment
/// completes leaves it in that commit.
pub const CHECKOUT_EXPIRY: &str = "cp:checkout:expiry";

/// How long the request path has before the tracker takes an attempt over: the longest bank
/// call, with room.
pub(super) const HANDOVER: Duration = Duration::from_secs(10);

pub(super) fn member(scope: &Scope, id: &str) -> String {
    format!("{}|{}|{id}", scope.project, scope.mode.as_str())
}

/// Refused unless Pay by Bank is configured for `mode`.
pub(crate) fn check_rail(p: &Payments, mode: Mode) -> Result<(), ApiError> {
    rail(p, mode).map(|_| ())
}

pub(super) fn rail(p: &Payments, mode: Mode) -> Result<&BankRail, ApiError> {
    match &p.bank {
        Some(r) if !r.gateway.banks(mode).is_empty() => Ok(r),
        _ => Err(ApiError::new(
            400,
            ErrorType::InvalidRequestError,
            format!(
                "Pay by Bank is not configured for {} payments: set pay_by_bank in the \
                 configuration.",
                mode.as_str()
            ),
        )
        .with_code("live_mode_not_configured")),
    }
}

/// Whether a confirmation goes by bank: asked for (`payment_method_data[type]=pay_by_bank`),
/// or the only type the intent takes and no card was given.
pub(crate) fn wanted(intent: &PaymentIntent, data: Option<&str>, card_given: bool) -> bool {
    data == Some(PAY_BY_BANK)
        || (!card_given
            && intent.payment_method.is_none()
            && intent.payment_method_types == [PAY_BY_BANK])
}

/// What Pay by Bank takes: pounds, up to the configured limit. Checked where the intent is
/// created with the type, and again at confirmation (the amount may have changed).
pub(crate) fn check_amount(p: &Payments, intent: &PaymentIntent) -> Result<(), ApiError> {
    if !intent.payment_method_types.iter().any(|t| t == PAY_BY_BANK) {
        return Ok(());
    }
    if intent.currency != "gbp" {
        return Err(ApiError::invalid_param(
            "payment_method_unsupported_currency",
            "currency",
            format!(
                "The currency provided ({}) is invalid. Payments with pay_by_bank support the \
                 following currencies: gbp.",
                intent.currency
            ),
        ));
    }
    let limit = p.bank.as_ref().map_or(0, |r| r.limit);
    if p.bank.is_some() && intent.amount > limit {
        return Err(ApiError::invalid_param(
            "amount_too_large",
            "amount",
            format!(
                "Pay by Bank takes at most {} a payment; this one is {}.",
                calmony_protocol::clock_text::money(limit),
                calmony_protocol::clock_text::money(intent.amount)
            ),
        ));
    }
    Ok(())
}

/// Confirmation by bank: `requires_action` towards the bank page, with a fresh attempt.
/// The caller commits the intent (with the `payment_intent.requires_action` event).
pub(crate) fn start(
    p: &Payments,
    scope: &Scope,
    intent: &mut PaymentIntent,
    internal: &mut IntentInternal,
) -> Result<(), ApiError> {
    rail(p, scope.mode)?;
    if !intent.payment_method_types.iter().any(|t| t == PAY_BY_BANK) {
        return Err(ApiError::invalid_param(
            "payment_intent_incompatible_payment_method",
            "payment_method_data[type]",
            "This PaymentIntent does not take pay_by_bank: add it to payment_method_types.",
        ));
    }
    check_amount(p, intent)?;
    if intent.statement_descriptor.is_some() {
        // The payer's statement shows the transfer's reference, which must stay tied to this
        // intent for reconciliation; a descriptor would be silently dropped, so it is refused.
        return Err(ApiError::invalid_param(
            "payment_intent_invalid_parameter",
            "statement_descriptor",
            "statement_descriptor is not used by pay_by_bank: the payer's statement shows the \
             transfer's reference (CP and the intent id's last 16 characters).",
        ));
    }
    if intent.capture_method == "manual" {
        // A bank transfer is paid when approved: there is no authorisation to hold.
        return Err(ApiError::invalid_param(
            "payment_intent_invalid_parameter",
            "capture_method",
            "capture_method=manual is not available with pay_by_bank: a bank transfer cannot \
             be held for a later capture.",
        ));
    }
    if intent.return_url.is_none() {
        return Err(ApiError::invalid_param(
            "parameter_missing",
            "return_url",
            "A return_url is required to confirm with pay_by_bank: the payer comes back to it \
             from their bank.",
        ));
    }
    let attempt = ids::new_id("att");
    let bank = BankAttempt {
        phase: Phase::ChoosingBank,
        bank: None,
        consent_key: ids::new_id("obc"),
        payment_key: ids::new_id("obp"),
        state_hash: None,
        earlier_states: Vec::new(),
        charge: None,
        nonce: None,
        consent_id: None,
        token: None,
        payment_id: None,
        consent_requested_at: None,
        checks: 0,
        reference: bank_attempt::reference_for(&intent.id),
        end_to_end_id: format!("CP{}", &attempt[attempt.len().saturating_sub(20)..]),
        instruction_id: attempt.clone(),
        attempt: attempt.clone(),
        checkout_session: None,
        refund_account: None,
    };
    intent.status = IntentStatus::RequiresAction.as_str().into();
    intent.last_payment_error = None;
    intent.next_action = Some(json!({
        "type": "redirect_to_url",
        "redirect_to_url": {"url": page_url(p, scope, intent), "return_url": intent.return_url},
    }));
    internal.attempt = Some(attempt);
    internal.bank = Some(bank);
    Ok(())
}

/// The bank page of an intent: unguessable through its client secret.
pub fn page_url(p: &Payments, scope: &Scope, intent: &PaymentIntent) -> String {
    format!(
        "{}/pay/bank/{}/{}/{}?client_secret={}",
        p.public_base,
        scope.project,
        scope.mode.as_str(),
        intent.id,
        intent.client_secret
    )
}

/// Where the bank sends the payer back: one address, registered with every bank.
pub fn redirect_uri(p: &Payments) -> String {
    format!("{}/pay/bank/return", p.public_base)
}

/// What the payer's browser is shown or sent to next.
pub enum BankPage {
    /// Pick a bank.
    Choose {
        intent: PaymentIntent,
        banks: Vec<BankSummary>,
        csrf: String,
        /// Why the last try did not go through, for the page to say.
        notice: Option<String>,
    },
    /// Off to the bank.
    ToBank(String),
    /// Submitted and not yet settled: a page that looks again.
    Processing(PaymentIntent),
    /// Over (succeeded, or failed): back to the merchant.
    Done(PaymentIntent),
}

pub(super) fn order_of(
    intent: &PaymentIntent,
    bank: &BankAttempt,
    creditor: crate::gateway::bank_flows::Creditor,
) -> ConsentOrder {
    ConsentOrder {
        idempotency_key: bank.consent_key.clone(),
        instruction_id: bank.instruction_id.clone(),
        end_to_end_id: bank.end_to_end_id.clone(),
        amount: intent.amount,
        currency: intent.currency.to_ascii_uppercase(),
        creditor,
        reference: bank.reference.clone(),
        merchant_customer_id: intent.customer.clone(),
    }
}

/// Submit under the attempt's payment key, and write what the bank answered.
///
/// `resend`: the payment may have been sent already (the tracker, after a crash or an
/// unknown answer). A refusal then does not mean nothing was paid (an expired token, a key
/// the bank has forgotten), so the attempt stays open rather than failing.
pub(super) async fn submit(
    p: &Payments,
    scope: &Scope,
    loaded: Loaded,
    token: &BankToken,
    resend: bool,
) -> Result<BankPage, ApiError> {
    let rail = rail(p, scope.mode)?;
    let Some(bank) = loaded.internal.bank.clone() else {
        return Ok(BankPage::Done(loaded.intent));
    };
    let creditor = rail.creditor(scope.mode).map_err(bank_api_error)?;
    let submission = Submission {
        idempotency_key: bank.payment_key.clone(),
        consent_id: bank.consent_id.clone().unwrap_or_default(),
        order: order_of(&loaded.intent, &bank, creditor),
    };
    let bank_id = bank.bank.clone().unwrap_or_default();
    match rail
        .gateway
        .submit_payment(scope.mode, &bank_id, token, submission)
        .await
    {
        Ok(payment) => {
            crate::system::faults::kill_point("bank_after_submit");
            submitted(p, scope, loaded, payment).await
        }
        Err(e @ (BankError::Refused { .. } | BankError::Invalid(_) | BankError::NotConfigured))
            if !resend =>
        {
            tracing::warn!(intent = %loaded.intent.id, error = %e, "the bank refused the payment");
            let failed = fail(p, scope, loaded, REFUSED).await?;
            Ok(BankPage::Done(failed))
        }
        Err(e) => {
            // Resent under the same key after the backoff's first steps (a bank asks for at
            // least a second between sends of one payment). A resend's refusal lands here too:
            // looked at again, and logged for an operator, never taken as "nothing was paid".
            tracing::warn!(intent = %loaded.intent.id, error = %e, "bank payment outcome unknown; left for the tracker");
            let intent = loaded.intent.clone();
            reschedule(p, scope, loaded).await?;
            Ok(BankPage::Processing(intent))
        }
    }
}

/// How long a bank payment's notifications can find it: far past any settlement.
const RESOURCE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

fn resource_key(mode: Mode, bank: &str, resource: &str) -> String {
    format!(
        "cp:payments:bank_resource:{}:{bank}:{resource}",
        mode.as_str()
    )
}

/// A bank's event notification arrived (a signed SET naming a payment): once verified, the
/// payment's attempt is looked at now by the tracker, which asks the bank where it stands.
/// Nothing is decided on the notification's word. `Ok(false)`: the payment is not one we
/// are waiting on (finished, or not ours).
pub async fn notified(p: &Payments, mode: Mode, bank: &str, token: &str) -> Result<bool, ApiError> {
    let rail = rail(p, mode)?;
    if !rail.gateway.banks(mode).iter().any(|b| b.id == bank) {
        return Err(ApiError::no_such("bank", bank, "bank"));
    }
    let resource = rail
        .gateway
        .notification(mode, bank, token)
        .await
        .map_err(|e| match e {
            BankError::BadSignature(_) | BankError::Invalid(_) => {
                tracing::warn!(bank, error = %e, "a bank notification was refused");
                ApiError::new(
                    400,
                    ErrorType::InvalidRequestError,
                    "The notification was refused.",
                )
            }
            other => bank_api_error(other),
        })?;
    let key = resource_key(mode, bank, &resource);
    let mut c = p.store.conn();
    let found: Option<String> = p
        .store
        .run(redis::AsyncCommands::hget(&mut c, &key, "intent"))
        .await?;
    let Some(member) = found else {
        return Ok(false);
    };
    // Due now, if it is still tracked (XX: a finished attempt is not brought back).
    let now = clock::now_ms();
    let mut c = p.store.conn();
    let changed: i64 = p
        .store
        .run(
            redis::cmd("ZADD")
                .arg(TRACKING)
                .arg("XX")
                .arg("CH")
                .arg(now)
                .arg(&member)
                .query_async(&mut c),
        )
        .await?;
    tracing::info!(bank, resource = %resource, tracked = changed > 0, "bank notification: looked at now");
    Ok(true)
}

/// What the payer is told when their bank refuses (the bank's own words go to the log).
pub(super) const REFUSED: &str = "Your bank did not accept this payment. Nothing was paid.";

/// The attempt of an intent being cancelled: ended, and no longer tracked, unless the
/// payment may already be on its way to the bank (then the cancel is refused).
pub(super) fn on_cancel(
    tx: &mut Tx,
    scope: &Scope,
    id: &str,
    internal: &mut IntentInternal,
) -> Result<(), ApiError> {
    let Some(bank) = internal.bank.as_mut() else {
        return Ok(());
    };
    if matches!(bank.phase, Phase::Submitting | Phase::Submitted) {
        return Err(ApiError::new(
            400,
            ErrorType::InvalidRequestError,
            "This PaymentIntent's bank payment has been approved and sent; it cannot be \
             canceled.",
        )
        .with_code("payment_intent_unexpected_state"));
    }
    bank.phase = Phase::Failed;
    bank.token = None;
    tx.unindex(TRACKING, &member(scope, id));
    Ok(())
}

/// Whether the checkout session that started this attempt (if any) may still be paid by
/// it: open, and pointing at this intent. A session the card paid meanwhile, or that
/// expired, is not paid a second time.
pub(super) async fn session_allows(
    p: &Payments,
    scope: &Scope,
    bank: &BankAttempt,
    intent_id: &str,
) -> Result<bool, ApiError> {
    use calmony_protocol::checkout::CheckoutSession;
    let Some(sid) = &bank.checkout_session else {
        return Ok(true);
    };
    let Some((rec, _)) = p.store.get_with(&scope.record(sid), &[]).await? else {
        return Ok(false);
    };
    let s: CheckoutSession = super::parse(&rec, sid)?;
    Ok(s.status == "open" && s.payment_intent.as_deref() == Some(intent_id))
}

/// The bank accepted the payment: a pending charge, or at once the outcome.
pub(super) async fn submitted(
    p: &Payments,
    scope: &Scope,
    loaded: Loaded,
    payment: BankPayment,
) -> Result<BankPage, ApiError> {
    let Loaded {
        version,
        mut intent,
        mut internal,
    } = loaded;
    let Some(mut bank) = internal.bank.clone() else {
        return Ok(BankPage::Done(intent));
    };
    bank.payment_id = Some(payment.id.clone());
    bank_attempt::seal_refund_account(&mut bank, &intent.id, payment.refund_account.as_ref());
    bank.phase = Phase::Submitted;
    bank.checks = 0;
    // The token has done its work: it is not kept past the submission.
    bank.token = None;
    internal.bank = Some(bank.clone());
    match bank_attempt::after_payment_check(Some(payment.status)) {
        Next::Succeed => {
            let loaded = Loaded {
                version,
                intent,
                internal,
            };
            let done = succeed(p, scope, loaded, &payment).await?;
            return Ok(BankPage::Done(done));
        }
        Next::Fail(message) => {
            let loaded = Loaded {
                version,
                intent,
                internal,
            };
            let done = fail(p, scope, loaded, message).await?;
            return Ok(BankPage::Done(done));
        }
        _ => {}
    }
    let mut charge = bank_charge(&intent, scope, &bank, Some(&payment));
    charge.status = "pending".into();
    bank.charge = Some(charge.id.clone());
    internal.bank = Some(bank.clone());
    intent.latest_charge = Some(charge.id.clone());
    let due = clock::now_ms() + bank_attempt::next_check(0).as_millis() as i64;
    let request = EventRequest::default();
    let mut tx = Tx::new();
    tx.expect_version(&scope.record(&intent.id), version);
    write_intent(&mut tx, scope, version + 1, &intent, &internal)?;
    write_charge(&mut tx, scope, &charge, 0)?;
    tx.event(scope, &event("charge.pending", &charge, scope, &request));
    // Where the bank's notifications about this payment find it.
    let bank_id = bank.bank.as_deref().unwrap_or_default();
    let found_by = resource_key(scope.mode, bank_id, &payment.id);
    tx.hset(&found_by, &[("intent", &member(scope, &intent.id))])
        .expire_ms(&found_by, RESOURCE_TTL.as_millis() as u64);
    tx.schedule(TRACKING, due, &member(scope, &intent.id));
    session_step(p, scope, &mut tx, &bank, &intent, SessionStep::Submitted).await?;
    match p.store.commit(&tx).await? {
        Commit::Done(_) => Ok(BankPage::Processing(intent)),
        _ => {
            let now = p.load(scope, None, &intent.id).await?;
            Ok(page_of(now.intent))
        }
    }
}

pub(super) fn page_of(intent: PaymentIntent) -> BankPage {
    match IntentStatus::of(&intent) {
        Some(IntentStatus::Processing | IntentStatus::RequiresAction) => {
            BankPage::Processing(intent)
        }
        _ => BankPage::Done(intent),
    }
}

/// What a bank payment's step means for the checkout session it pays, if any.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum SessionStep {
    /// Submitted: the session is complete and `unpaid` until the bank settles.
    Submitted,
    Paid,
    /// Rejected after submission.
    Failed,
}

/// Add the session's change for `step` to `tx` (nothing when no session started the payment,
/// or it is already where `step` leaves it).
pub(super) async fn session_step(
    p: &Payments,
    scope: &Scope,
    tx: &mut Tx,
    bank: &BankAttempt,
    intent: &PaymentIntent,
    step: SessionStep,
) -> Result<(), ApiError> {
    use calmony_protocol::checkout::CheckoutSession;
    let Some(sid) = &bank.checkout_session else {
        return Ok(());
    };
    let Some((rec, _)) = p.store.get_with(&scope.record(sid), &[]).await? else {
        return Ok(());
    };
    let mut s: CheckoutSession = super::parse(&rec, sid)?;
    if s.status == "expired" {
        // Checked before the payment was sent; a session that expired in the moment since
        // is left as it is, and the payment stands on its intent.
        tracing::error!(session = %sid, intent = %intent.id, "a bank payment completed after its checkout session expired");
        return Ok(());
    }
    let was_open = s.status == "open";
    let mut events: Vec<&str> = Vec::new();
    match step {
        SessionStep::Submitted if was_open => {
            s.payment_status = "unpaid".into();
            events.push("checkout.session.completed");
        }
        SessionStep::Paid if was_open => {
            s.payment_status = "paid".into();
            events.push("checkout.session.completed");
        }
        SessionStep::Paid if s.payment_status != "paid" => {
            s.payment_status = "paid".into();
            events.push("checkout.session.async_payment_succeeded");
        }
        SessionStep::Failed if !was_open && s.payment_status == "unpaid" => {
            events.push("checkout.session.async_payment_failed");
        }
        _ => return Ok(()),
    }
    s.status = "complete".into();
    s.url = None;
    s.payment_intent = Some(intent.id.clone());
    s.payment_intent_id = Some(intent.id.clone());
    tx.expect_version(&scope.record(sid), rec.version);
    tx.put(
        &scope.record(sid),
        rec.version + 1,
        &crate::resource::to_json(&s)?,
    );
    if was_open {
        tx.unindex(CHECKOUT_EXPIRY, &member(scope, sid));
    }
    let request = EventRequest::default();
    for kind in events {
        tx.event(scope, &event(kind, &s, scope, &request));
    }
    Ok(())
}

/// A charge for a bank payment, with what the bank told of the payer.
pub(super) fn bank_charge(
    intent: &PaymentIntent,
    scope: &Scope,
    bank: &BankAttempt,
    payment: Option<&BankPayment>,
) -> Charge {
    let mut charge = new_charge(intent, scope, None, None);
    charge.payment_method_details = json!({
        "type": PAY_BY_BANK,
        "pay_by_bank": {
            "bank": bank.bank,
            "reference": bank.reference,
            "end_to_end_identification": payment
                .map_or_else(|| bank.end_to_end_id.clone(), |p| p.end_to_end_id.clone()),
            "payer_name": payment.and_then(|p| p.payer_name.clone()),
            "payer_account_last4": payment.and_then(|p| p.payer_account_last4.clone()),
            "bank_payment_id": payment.map(|p| p.id.clone()).or_else(|| bank.payment_id.clone()),
        }
    });
    charge
}

/// The attempt's own charge as stored (never another attempt's, such as a declined card's
/// before it), with its version; `None` when it has made none.
async fn own_charge(
    p: &Payments,
    scope: &Scope,
    bank: &BankAttempt,
) -> Result<Option<(Charge, u64)>, ApiError> {
    let Some(ch_id) = &bank.charge else {
        return Ok(None);
    };
    Ok(match p.store.get_with(&scope.record(ch_id), &[]).await? {
        Some((rec, _)) => Some((super::parse::<Charge>(&rec, ch_id)?, rec.version)),
        None => None,
    })
}

/// The money arrived: `succeeded`, the charge succeeded, the receipt, the events.
pub(super) async fn succeed(
    p: &Payments,
    scope: &Scope,
    loaded: Loaded,
    payment: &BankPayment,
) -> Result<PaymentIntent, ApiError> {
    let Loaded {
        version,
        mut intent,
        mut internal,
    } = loaded;
    let Some(mut bank) = internal.bank.clone() else {
        return Ok(intent);
    };
    bank.phase = Phase::Succeeded;
    bank.token = None;
    if bank.refund_account.is_none() {
        bank_attempt::seal_refund_account(&mut bank, &intent.id, payment.refund_account.as_ref());
    }
    internal.bank = Some(bank.clone());
    let request = EventRequest::default();
    let mut tx = Tx::new();
    tx.expect_version(&scope.record(&intent.id), version);
    // The attempt's pending charge if it made one, else a new one.
    let (mut charge, charge_version) = match own_charge(p, scope, &bank).await? {
        Some(found) => found,
        None => (bank_charge(&intent, scope, &bank, Some(payment)), 0),
    };
    charge.status = ChargeStatus::Succeeded.as_str().into();
    charge.paid = true;
    charge.captured = true;
    charge.amount_captured = intent.amount;
    charge.payment_method_details =
        bank_charge(&intent, scope, &bank, Some(payment)).payment_method_details;
    charge.outcome = json!({"network_status": "approved_by_network", "type": "authorized", "seller_message": "Payment complete.", "risk_level": "normal"});
    crate::money::ledger::bank_charge(&mut tx, scope, &mut charge, &bank.reference, clock::now())?;
    intent.status = IntentStatus::Succeeded.as_str().into();
    intent.amount_received = intent.amount;
    intent.next_action = None;
    intent.last_payment_error = None;
    intent.latest_charge = Some(charge.id.clone());
    if p.billing.receipts && internal.invoice.is_none() {
        let finished = FinishedPayment {
            scope,
            intent: &intent,
            invoice: None,
            effect: BillingEffect::Receipt,
            carried: None,
            settings: &p.billing,
            public_base: &p.public_base,
            request: &request,
            now: intent.created.max(clock::now()),
        };
        p.effects.apply(&p.store, &mut tx, finished).await?;
    }
    write_intent(&mut tx, scope, version + 1, &intent, &internal)?;
    write_charge(&mut tx, scope, &charge, charge_version)?;
    tx.event(scope, &event("charge.succeeded", &charge, scope, &request));
    tx.event(
        scope,
        &event("payment_intent.succeeded", &intent, scope, &request),
    );
    tx.unindex(TRACKING, &member(scope, &intent.id));
    session_step(p, scope, &mut tx, &bank, &intent, SessionStep::Paid).await?;
    land(p, scope, &tx, intent, "succeeded").await
}

/// Write `charge` over the stored `version` (0: a new one, indexed).
fn write_charge(tx: &mut Tx, scope: &Scope, charge: &Charge, version: u64) -> Result<(), ApiError> {
    let key = scope.record(&charge.id);
    if version == 0 {
        tx.index(&scope.key("charges"), &charge.id);
    } else {
        tx.expect_version(&key, version);
    }
    tx.put(&key, version + 1, &crate::resource::to_json(charge)?);
    Ok(())
}

/// Commit an attempt's end and count it; if the intent changed meanwhile (another path
/// ended it first), the intent as it now is.
async fn land(
    p: &Payments,
    scope: &Scope,
    tx: &Tx,
    intent: PaymentIntent,
    outcome: &'static str,
) -> Result<PaymentIntent, ApiError> {
    match p.store.commit(tx).await? {
        Commit::Done(_) => {
            metrics::counter!("calmony_payments_total", "outcome" => outcome).increment(1);
            Ok(intent)
        }
        _ => Ok(p.load(scope, None, &intent.id).await?.intent),
    }
}

/// The attempt is over without money moving (or the bank rejected the payment): back to
/// `requires_payment_method` with `last_payment_error`, the charge (if any) failed.
pub(super) async fn fail(
    p: &Payments,
    scope: &Scope,
    loaded: Loaded,
    message: &str,
) -> Result<PaymentIntent, ApiError> {
    let Loaded {
        version,
        mut intent,
        mut internal,
    } = loaded;
    if let Some(bank) = internal.bank.as_mut() {
        bank.phase = Phase::Failed;
        bank.token = None;
    }
    let request = EventRequest::default();
    let mut tx = Tx::new();
    tx.expect_version(&scope.record(&intent.id), version);
    crate::money::stats::failed(&mut tx, scope, crate::clock::now());
    let error = json!({
        "type": "invalid_request_error",
        "code": "payment_method_provider_decline",
        "message": message,
        "payment_method_type": PAY_BY_BANK,
    });
    let submitted = internal
        .bank
        .as_ref()
        .is_some_and(|b| b.payment_id.is_some());
    // A payment the bank had: its charge fails (the attempt's pending one, or a new one
    // when the bank rejected it at once).
    if let (true, Some(bank)) = (submitted, internal.bank.as_mut()) {
        let (mut charge, charge_version) = match own_charge(p, scope, bank).await? {
            Some(found) => found,
            None => (bank_charge(&intent, scope, bank, None), 0),
        };
        charge.status = ChargeStatus::Failed.as_str().into();
        charge.failure_code = Some("payment_method_provider_decline".into());
        charge.failure_message = Some(message.to_string());
        write_charge(&mut tx, scope, &charge, charge_version)?;
        tx.event(scope, &event("charge.failed", &charge, scope, &request));
        bank.charge = Some(charge.id.clone());
        intent.latest_charge = Some(charge.id.clone());
    }
    intent.status = IntentStatus::RequiresPaymentMethod.as_str().into();
    intent.next_action = None;
    intent.last_payment_error = Some(error);
    write_intent(&mut tx, scope, version + 1, &intent, &internal)?;
    tx.event(
        scope,
        &event("payment_intent.payment_failed", &intent, scope, &request),
    );
    tx.unindex(TRACKING, &member(scope, &intent.id));
    if submitted && let Some(bank) = &internal.bank {
        session_step(p, scope, &mut tx, bank, &intent, SessionStep::Failed).await?;
    }
    land(p, scope, &tx, intent, "failed").await
}

/// Commit the intent as it now is (version-checked), with events about it, and its tracking
/// entry due at `due` (ms). `false`: it changed meanwhile.
pub(super) async fn save(
    p: &Payments,
    scope: &Scope,
    version: u64,
    intent: &PaymentIntent,
    internal: &IntentInternal,
    due: Option<i64>,
    events: &[&str],
) -> Result<bool, ApiError> {
    let request = EventRequest::default();
    let mut tx = Tx::new();
    tx.expect_version(&scope.record(&intent.id), version);
    write_intent(&mut tx, scope, version + 1, intent, internal)?;
    for kind in events {
        tx.event(scope, &event(kind, intent, scope, &request));
    }
    match due {
        Some(due) => tx.schedule(TRACKING, due, &member(scope, &intent.id)),
        None => tx.unindex(TRACKING, &member(scope, &intent.id)),
    };
    Ok(matches!(p.store.commit(&tx).await?, Commit::Done(_)))
}

pub(super) fn bank_api_error(e: BankError) -> ApiError {
    match e {
        BankError::NotConfigured => ApiError::new(
            400,
            ErrorType::InvalidRequestError,
            "Pay by Bank is not configured for this mode: set pay_by_bank in the configuration.",
        )
        .with_code("live_mode_not_configured"),
        other => ApiError::new(
            502,
            ErrorType::ApiError,
            format!("The bank could not be reached: {other}"),
        ),
    }
}

pub(super) async fn resend_consent(
    p: &Payments,
    scope: &Scope,
    loaded: Loaded,
) -> Result<(), ApiError> {
    let rail = rail(p, scope.mode)?;
    let Some(mut bank) = loaded.internal.bank.clone() else {
        return Ok(());
    };
    let creditor = rail.creditor(scope.mode).map_err(bank_api_error)?;
    let bank_id = bank.bank.clone().unwrap_or_default();
    let order = order_of(&loaded.intent, &bank, creditor);
    match rail
        .gateway
        .create_consent(scope.mode, &bank_id, order)
        .await
    {
        Ok(consent) => {
            bank.consent_id = Some(consent.id);
            bank.phase = Phase::AwaitingAuthorisation;
            bank.checks = 0;
            let Loaded {
                version,
                intent,
                mut internal,
            } = loaded;
            internal.bank = Some(bank);
            let due = clock::now_ms() + bank_attempt::next_check(4).as_millis() as i64;
            save(p, scope, version, &intent, &internal, Some(due), &[]).await?;
            Ok(())
        }
        Err(e @ (BankError::Refused { .. } | BankError::Invalid(_) | BankError::NotConfigured)) => {
            tracing::warn!(intent = %loaded.intent.id, error = %e, "the bank refused the consent");
            fail(p, scope, loaded, REFUSED).await.map(|_| ())
        }
        Err(_) => reschedule(p, scope, loaded).await,
    }
}

/// Nothing changed: look again after the backoff's next step.
pub(super) async fn reschedule(
    p: &Payments,
    scope: &Scope,
    loaded: Loaded,
) -> Result<(), ApiError> {
    let Loaded {
        version,
        intent,
        mut internal,
    } = loaded;
    let Some(bank) = internal.bank.as_mut() else {
        return Ok(());
    };
    bank.checks = bank.checks.saturating_add(1);
    let due = clock::now_ms() + bank_attempt::next_check(bank.checks).as_millis() as i64;
    save(p, scope, version, &intent, &internal, Some(due), &[]).await?;
    Ok(())
}

/// Whether a charge was paid by bank (its refunds go another way).
pub fn is_bank_charge(details: &Value) -> bool {
    details.get("type").and_then(Value::as_str) == Some(PAY_BY_BANK)
}
