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

use std::time::Duration;

use calmony_protocol::charge::Charge;
use calmony_protocol::event::EventRequest;
use calmony_protocol::payment_intent::{PAY_BY_BANK, PaymentIntent};
use calmony_protocol::{ApiError, ErrorType, Mode, ids};
use redis::AsyncCommands;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::bank_attempt::BankRail;
use super::bank_attempt::{self, BankAttempt, Next, Phase};
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
const HANDOVER: Duration = Duration::from_secs(10);

fn member(scope: &Scope, id: &str) -> String {
    format!("{}|{}|{id}", scope.project, scope.mode.as_str())
}

fn parse_member(m: &str) -> Option<(Scope, String)> {
    let mut parts = m.splitn(3, '|');
    let project = parts.next()?;
    let mode = Mode::parse(parts.next()?)?;
    let id = parts.next()?;
    Some((Scope::new(project.to_string(), mode), id.to_string()))
}

fn hex_sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The token the bank page's form carries: derived from the attempt and the client secret,
/// so a page of another site cannot post a choice for a payer.
pub fn csrf_token(intent: &PaymentIntent, attempt: &BankAttempt) -> String {
    hex_sha256(&format!(
        "bank-choice:{}:{}",
        attempt.attempt, intent.client_secret
    ))
}

/// Refused unless Pay by Bank is configured for `mode`.
pub(crate) fn check_rail(p: &Payments, mode: Mode) -> Result<(), ApiError> {
    rail(p, mode).map(|_| ())
}

fn rail(p: &Payments, mode: Mode) -> Result<&BankRail, ApiError> {
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
                "Pay by Bank takes at most {} pence a payment; this one is {}.",
                limit, intent.amount
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

/// Why a page cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// Unknown intent, wrong secret or state: the page does not exist.
    #[error("not found")]
    NotFound,
    /// The payer's request was wrong (a tampered form): say so, change nothing.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Api(#[from] ApiError),
}

async fn load_checked(
    p: &Payments,
    scope: &Scope,
    id: &str,
    client_secret: &str,
) -> Result<Loaded, PageError> {
    let loaded = match p.load(scope, None, id).await {
        Ok(l) => l,
        Err(e) if e.status == 404 => return Err(PageError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let expected = loaded.intent.client_secret.as_bytes();
    if client_secret.is_empty() || !bool::from(expected.ct_eq(client_secret.as_bytes())) {
        return Err(PageError::NotFound);
    }
    if loaded.internal.bank.is_none() {
        return Err(PageError::NotFound);
    }
    Ok(loaded)
}

/// `GET` of the bank page.
pub async fn page(
    p: &Payments,
    scope: &Scope,
    id: &str,
    client_secret: &str,
) -> Result<BankPage, PageError> {
    let loaded = load_checked(p, scope, id, client_secret).await?;
    where_now(p, scope, loaded, None).await
}

/// Where an attempt stands, as a page.
async fn where_now(
    p: &Payments,
    scope: &Scope,
    loaded: Loaded,
    notice: Option<String>,
) -> Result<BankPage, PageError> {
    let Some(bank) = loaded.internal.bank.clone() else {
        return Err(PageError::NotFound);
    };
    let status = IntentStatus::of(&loaded.intent);
    Ok(match (status, bank.phase) {
        (Some(IntentStatus::RequiresAction), Phase::ChoosingBank) => BankPage::Choose {
            banks: rail(p, scope.mode)?.gateway.banks(scope.mode),
            csrf: csrf_token(&loaded.intent, &bank),
            intent: loaded.intent,
            notice,
        },
        (Some(IntentStatus::RequiresAction), Phase::AwaitingAuthorisation) => {
            return back_to_bank(p, scope, loaded).await;
        }
        (Some(IntentStatus::RequiresAction), Phase::ConsentPending) => {
            // The payer is back and the consent was never recorded (a crash, or no answer):
            // ask again under its key now rather than at the tracker's next look.
            let id = loaded.intent.id.clone();
            resend_consent(p, scope, loaded).await?;
            let now = p.load(scope, None, &id).await?;
            return match now.internal.bank.as_ref().map(|b| b.phase) {
                Some(Phase::AwaitingAuthorisation) => back_to_bank(p, scope, now).await,
                _ => Ok(page_of(now.intent)),
            };
        }
        (Some(IntentStatus::RequiresAction | IntentStatus::Processing), _) => {
            BankPage::Processing(loaded.intent)
        }
        _ => BankPage::Done(loaded.intent),
    })
}

/// The payer is back on our page while the bank waits for them: send them on again, with a
/// new `state` (only its hash is kept, so the old one cannot be sent again).
async fn back_to_bank(p: &Payments, scope: &Scope, loaded: Loaded) -> Result<BankPage, PageError> {
    let rail = rail(p, scope.mode)?;
    let Some(mut bank) = loaded.internal.bank.clone() else {
        return Err(PageError::NotFound);
    };
    let (Some(bank_id), Some(consent), Some(nonce)) = (
        bank.bank.clone(),
        bank.consent_id.clone(),
        bank.nonce.clone(),
    ) else {
        return Ok(BankPage::Processing(loaded.intent));
    };
    let state = ids::new_id("st");
    bank.state_hash = Some(hex_sha256(&state));
    let Loaded {
        version,
        intent,
        mut internal,
    } = loaded;
    internal.bank = Some(bank.clone());
    let due = clock::now_ms() + bank_attempt::next_check(bank.checks).as_millis() as i64;
    if !save(p, scope, version, &intent, &internal, Some(due), &[]).await? {
        return Ok(BankPage::Processing(intent));
    }
    let url = rail
        .gateway
        .authorize_url(
            scope.mode,
            &bank_id,
            &consent,
            &state_param(scope, &intent.id, &state),
            &nonce,
            &redirect_uri(p),
        )
        .await
        .map_err(bank_api_error)?;
    Ok(BankPage::ToBank(url.to_string()))
}

/// The payer picked `bank_id` on the page.
pub async fn choose(
    p: &Payments,
    scope: &Scope,
    id: &str,
    client_secret: &str,
    csrf: &str,
    bank_id: &str,
) -> Result<BankPage, PageError> {
    let loaded = load_checked(p, scope, id, client_secret).await?;
    let Some(mut bank) = loaded.internal.bank.clone() else {
        return Err(PageError::NotFound);
    };
    let expected = csrf_token(&loaded.intent, &bank);
    if !bool::from(expected.as_bytes().ct_eq(csrf.as_bytes())) {
        return Err(PageError::Refused(
            "This form has expired. Please go back to the shop and start the payment again.".into(),
        ));
    }
    if IntentStatus::of(&loaded.intent) != Some(IntentStatus::RequiresAction)
        || bank.phase != Phase::ChoosingBank
    {
        return where_now(p, scope, loaded, None).await;
    }
    let rail = rail(p, scope.mode)?;
    if !rail
        .gateway
        .banks(scope.mode)
        .iter()
        .any(|b| b.id == bank_id)
    {
        return Err(PageError::Refused(
            "Please choose one of the banks listed.".into(),
        ));
    }
    let creditor = rail.creditor(scope.mode).map_err(bank_api_error)?;
    // 1. The choice and the consent's key, committed before the bank hears of it.
    let state = ids::new_id("st");
    let nonce = ids::new_id("nonce");
    bank.phase = Phase::ConsentPending;
    bank.bank = Some(bank_id.to_string());
    bank.state_hash = Some(hex_sha256(&state));
    bank.nonce = Some(nonce.clone());
    bank.consent_requested_at = Some(clock::now());
    bank.checks = 0;
    let Loaded {
        version,
        intent,
        mut internal,
    } = loaded;
    internal.bank = Some(bank.clone());
    let due = clock::now_ms() + HANDOVER.as_millis() as i64;
    if !save(p, scope, version, &intent, &internal, Some(due), &[]).await? {
        return Err(PageError::Refused(
            "This payment changed meanwhile. Please reload the page.".into(),
        ));
    }
    let version = version + 1;
    // 2. The consent, under its key.
    crate::system::faults::kill_point("bank_before_consent");
    let order = order_of(&intent, &bank, creditor);
    let consent = rail
        .gateway
        .create_consent(scope.mode, bank_id, order)
        .await;
    let consent = match consent {
        Ok(c) => {
            crate::system::faults::kill_point("bank_after_consent");
            c
        }

        Err(BankError::Refused { message, .. }) => {
            let failed = fail(
                p,
                scope,
                Loaded {
                    version,
                    intent,
                    internal,
                },
                &format!("The bank refused the payment: {message}"),
            )
            .await?;
            return Ok(BankPage::Done(failed));
        }
        // Unknown: the tracker resends under the same key. The payer can try again shortly.
        Err(e) => {
            tracing::warn!(intent = %id, error = %e, "consent outcome unknown; left for the tracker");
            let loaded = Loaded {
                version,
                intent: intent.clone(),
                internal,
            };
            reschedule(p, scope, loaded).await?;
            return Ok(BankPage::Processing(intent));
        }
    };
    bank.consent_id = Some(consent.id.clone());
    bank.phase = Phase::AwaitingAuthorisation;
    internal.bank = Some(bank.clone());
    let due = clock::now_ms() + bank_attempt::next_check(4).as_millis() as i64;
    if !save(p, scope, version, &intent, &internal, Some(due), &[]).await? {
        return Ok(BankPage::Processing(intent));
    }
    // 3. Off to the bank with the state only this browser carries.
    let url = rail
        .gateway
        .authorize_url(
            scope.mode,
            bank_id,
            &consent.id,
            &state_param(scope, &intent.id, &state),
            &nonce,
            &redirect_uri(p),
        )
        .await
        .map_err(bank_api_error)?;
    Ok(BankPage::ToBank(url.to_string()))
}

/// The `state` sent through the browser: where the payment is, and the secret that proves
/// this browser was sent by us for this attempt.
fn state_param(scope: &Scope, id: &str, secret: &str) -> String {
    format!("{}.{}.{id}.{secret}", scope.project, scope.mode.as_str())
}

fn parse_state(state: &str) -> Option<(Scope, String, String)> {
    let mut parts = state.splitn(4, '.');
    let project = parts.next()?;
    let mode = Mode::parse(parts.next()?)?;
    let id = parts.next()?;
    let secret = parts.next()?;
    if project.is_empty() || id.is_empty() || secret.is_empty() {
        return None;
    }
    Some((
        Scope::new(project.to_string(), mode),
        id.to_string(),
        secret.to_string(),
    ))
}

fn order_of(
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

/// The bank sent the payer back: `query` holds `state` and `code`, or `error`.
pub async fn returned(
    p: &Payments,
    query: &[(String, String)],
) -> Result<(Scope, BankPage), PageError> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let (scope, id, secret) = get("state")
        .and_then(parse_state)
        .ok_or(PageError::NotFound)?;
    let loaded = match p.load(&scope, None, &id).await {
        Ok(l) => l,
        Err(e) if e.status == 404 => return Err(PageError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let Some(mut bank) = loaded.internal.bank.clone() else {
        return Err(PageError::NotFound);
    };
    let presented = hex_sha256(&secret);
    let matches = bank
        .state_hash
        .as_deref()
        .is_some_and(|h| bool::from(h.as_bytes().ct_eq(presented.as_bytes())));
    if !matches {
        // A tampered or stale state proves nothing: nothing changes.
        return Err(PageError::NotFound);
    }
    if bank.phase != Phase::AwaitingAuthorisation {
        // A replayed redirect: where the payment is now, and nothing more.
        let page = where_now(p, &scope, loaded, None).await?;
        return Ok((scope, page));
    }
    if let Some(error) = get("error") {
        let message = match error {
            "access_denied" => "You cancelled or declined the payment at your bank.",
            _ => "Your bank could not complete the payment.",
        };
        let failed = fail(p, &scope, loaded, message).await?;
        return Ok((scope, BankPage::Done(failed)));
    }
    let Some(code) = get("code").filter(|c| !c.is_empty() && c.len() <= 512) else {
        return Err(PageError::Refused(
            "Your bank sent you back without an approval. Nothing was paid.".into(),
        ));
    };
    let rail = rail(p, scope.mode)?;
    let bank_id = bank.bank.clone().unwrap_or_default();
    let token = match rail
        .gateway
        .exchange_code(scope.mode, &bank_id, code, &redirect_uri(p))
        .await
    {
        Ok(t) => t,
        Err(BankError::Refused { .. }) => {
            // A wrong or used code: nothing moved. The real one may still arrive.
            return Err(PageError::Refused(
                "This approval could not be used. Nothing was paid; please try again from the \
                 shop."
                    .into(),
            ));
        }
        Err(e) => return Err(bank_api_error(e).into()),
    };
    // The token, sealed, before the payment is submitted.
    let sealed = crate::sealing::keyring()
        .map_err(|e| ApiError::internal(&format!("cannot seal the bank token: {e}")))?
        .seal(token.access_token.as_bytes(), &format!("bank-token:{id}"));
    bank.token = Some(sealed);
    bank.phase = Phase::Submitting;
    bank.checks = 0;
    let Loaded {
        version,
        mut intent,
        mut internal,
    } = loaded;
    intent.status = IntentStatus::Processing.as_str().into();
    intent.next_action = None;
    internal.bank = Some(bank.clone());
    let due = clock::now_ms() + HANDOVER.as_millis() as i64;
    if !save(
        p,
        &scope,
        version,
        &intent,
        &internal,
        Some(due),
        &["payment_intent.processing"],
    )
    .await?
    {
        let now = p.load(&scope, None, &id).await?;
        return Ok((scope.clone(), where_now(p, &scope, now, None).await?));
    }
    let loaded = Loaded {
        version: version + 1,
        intent,
        internal,
    };
    crate::system::faults::kill_point("bank_before_submit");
    let page = submit(p, &scope, loaded, &token).await?;
    Ok((scope, page))
}

/// Submit under the attempt's payment key, and write what the bank answered.
async fn submit(
    p: &Payments,
    scope: &Scope,
    loaded: Loaded,
    token: &BankToken,
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
        Err(BankError::Refused { message, .. }) => {
            let failed = fail(
                p,
                scope,
                loaded,
                &format!("The bank refused the payment: {message}"),
            )
            .await?;
            Ok(BankPage::Done(failed))
        }
        Err(e) => {
            // Resent under the same key after the backoff's first steps (a bank asks for at
            // least a second between sends of one payment).
            tracing::warn!(intent = %loaded.intent.id, error = %e, "bank payment outcome unknown; left for the tracker");
            let intent = loaded.intent.clone();
            reschedule(p, scope, loaded).await?;
            Ok(BankPage::Processing(intent))
        }
    }
}

/// The bank accepted the payment: a pending charge, or at once the outcome.
async fn submitted(
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
    let mut charge = bank_charge(&intent, scope, &bank, &payment);
    charge.status = "pending".into();
    intent.latest_charge = Some(charge.id.clone());
    let due = clock::now_ms() + bank_attempt::next_check(0).as_millis() as i64;
    let request = EventRequest::default();
    let mut tx = Tx::new();
    tx.expect_version(&scope.record(&intent.id), version);
    write_intent(&mut tx, scope, version + 1, &intent, &internal)?;
    tx.index(&scope.key("charges"), &charge.id);
    tx.put(
        &scope.record(&charge.id),
        1,
        &crate::resource::to_json(&charge)?,
    );
    tx.event(scope, &event("charge.pending", &charge, scope, &request));
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

fn page_of(intent: PaymentIntent) -> BankPage {
    match IntentStatus::of(&intent) {
        Some(IntentStatus::Processing | IntentStatus::RequiresAction) => {
            BankPage::Processing(intent)
        }
        _ => BankPage::Done(intent),
    }
}

/// What a bank payment's step means for the checkout session it pays, if any.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SessionStep {
    /// Submitted: the session is complete and `unpaid` until the bank settles.
    Submitted,
    Paid,
    /// Rejected after submission.
    Failed,
}

/// Add the session's change for `step` to `tx` (nothing when no session started the payment,
/// or it is already where `step` leaves it).
async fn session_step(
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
fn bank_charge(
    intent: &PaymentIntent,
    scope: &Scope,
    bank: &BankAttempt,
    payment: &BankPayment,
) -> Charge {
    let mut charge = new_charge(intent, scope, None, None);
    charge.payment_method_details = json!({
        "type": PAY_BY_BANK,
        "pay_by_bank": {
            "bank": bank.bank,
            "reference": bank.reference,
            "end_to_end_identification": payment.end_to_end_id,
            "payer_name": payment.payer_name,
            "payer_account_last4": payment.payer_account_last4,
            "bank_payment_id": payment.id,
        }
    });
    charge
}

/// The money arrived: `succeeded`, the charge succeeded, the receipt, the events.
async fn succeed(
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
    internal.bank = Some(bank.clone());
    let request = EventRequest::default();
    let mut tx = Tx::new();
    tx.expect_version(&scope.record(&intent.id), version);
    // The pending charge if there is one, else a new one.
    let (mut charge, charge_version) = match &intent.latest_charge {
        Some(ch_id) => match p.store.get_with(&scope.record(ch_id), &[]).await? {
            Some((rec, _)) => (super::parse::<Charge>(&rec, ch_id)?, rec.version),
            None => (bank_charge(&intent, scope, &bank, payment), 0),
        },
        None => (bank_charge(&intent, scope, &bank, payment), 0),
    };
    charge.status = ChargeStatus::Succeeded.as_str().into();
    charge.paid = true;
    charge.captured = true;
    charge.amount_captured = intent.amount;
    charge.payment_method_details =
        bank_charge(&intent, scope, &bank, payment).payment_method_details;
    charge.outcome = json!({"network_status": "approved_by_network", "type": "authorized", "seller_message": "Payment complete.", "risk_level": "normal"});
    intent.status = IntentStatus::Succeeded.as_str().into();
    intent.amount_received = intent.amount;
    intent.next_action = None;
    intent.last_payment_error = None;
    intent.latest_charge = Some(charge.id.clone());
    if charge_version == 0 {
        tx.index(&scope.key("charges"), &charge.id);
    } else {
        tx.expect_version(&scope.record(&charge.id), charge_version);
    }
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
    tx.put(
        &scope.record(&charge.id),
        charge_version + 1,
        &crate::resource::to_json(&charge)?,
    );
    tx.event(scope, &event("charge.succeeded", &charge, scope, &request));
    tx.event(
        scope,
        &event("payment_intent.succeeded", &intent, scope, &request),
    );
    tx.unindex(TRACKING, &member(scope, &intent.id));
    session_step(p, scope, &mut tx, &bank, &intent, SessionStep::Paid).await?;
    match p.store.commit(&tx).await? {
        Commit::Done(_) => {
            metrics::counter!("calmony_payments_total", "outcome" => "succeeded").increment(1);
            Ok(intent)
        }
        _ => Ok(p.load(scope, None, &intent.id).await?.intent),
    }
}

/// The attempt is over without money moving (or the bank rejected the payment): back to
/// `requires_payment_method` with `last_payment_error`, the charge (if any) failed.
async fn fail(
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
    if submitted && let Some(ch_id) = intent.latest_charge.clone() {
        if let Some((rec, _)) = p.store.get_with(&scope.record(&ch_id), &[]).await? {
            let mut charge: Charge = super::parse(&rec, &ch_id)?;
            charge.status = ChargeStatus::Failed.as_str().into();
            charge.failure_code = Some("payment_method_provider_decline".into());
            charge.failure_message = Some(message.to_string());
            tx.expect_version(&scope.record(&ch_id), rec.version);
            tx.put(
                &scope.record(&ch_id),
                rec.version + 1,
                &crate::resource::to_json(&charge)?,
            );
            tx.event(scope, &event("charge.failed", &charge, scope, &request));
        }
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
    match p.store.commit(&tx).await? {
        Commit::Done(_) => {
            metrics::counter!("calmony_payments_total", "outcome" => "failed").increment(1);
            Ok(intent)
        }
        _ => Ok(p.load(scope, None, &intent.id).await?.intent),
    }
}

/// Commit the intent as it now is (version-checked), with events about it, and its tracking
/// entry due at `due` (ms). `false`: it changed meanwhile.
async fn save(
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

fn bank_api_error(e: BankError) -> ApiError {
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

/// One pass of the tracker: every open attempt that is due, looked at once. Answers how many
/// were looked at.
pub async fn track_due(p: &Payments, limit: usize) -> Result<usize, ApiError> {
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
        if let Err(e) = track_one(p, &scope, &id).await {
            tracing::warn!(intent = %id, error = %e.message, "bank payment check failed; retried later");
        }
    }
    Ok(n)
}

/// Look at one open attempt: ask the bank, then act on what it says.
pub async fn track_one(p: &Payments, scope: &Scope, id: &str) -> Result<(), ApiError> {
    let loaded = p.load(scope, None, id).await?;
    let Some(bank) = loaded.internal.bank.clone() else {
        return untrack(p, scope, id).await;
    };
    if !bank.phase.is_open()
        || !loaded
            .internal
            .attempt
            .as_deref()
            .is_some_and(|a| a == bank.attempt)
    {
        return untrack(p, scope, id).await;
    }
    let rail = rail(p, scope.mode)?;
    let bank_id = bank.bank.clone().unwrap_or_default();
    let age = Duration::from_secs(
        (clock::now() - bank.consent_requested_at.unwrap_or_else(clock::now)).max(0) as u64,
    );
    let next = match bank.phase {
        Phase::ChoosingBank => {
            // The payer never picked a bank: nothing was asked of any bank.
            if age >= bank_attempt::AUTHORISATION_WINDOW {
                Next::Fail("The payment was not completed in time.")
            } else {
                Next::Wait
            }
        }
        Phase::Submitted => {
            let payment_id = bank.payment_id.clone().unwrap_or_default();
            match rail
                .gateway
                .payment(scope.mode, &bank_id, &payment_id)
                .await
            {
                Ok(Some(payment)) => {
                    let next = bank_attempt::after_payment_check(Some(payment.status));
                    if next == Next::Succeed {
                        succeed(p, scope, loaded, &payment).await?;
                        return Ok(());
                    }
                    next
                }
                Ok(None) => Next::Wait,
                Err(e) => {
                    tracing::warn!(intent = %id, error = %e, "bank payment status unavailable");
                    Next::Wait
                }
            }
        }
        Phase::ConsentPending | Phase::AwaitingAuthorisation | Phase::Submitting => {
            let consent = match &bank.consent_id {
                Some(cid) => match rail.gateway.consent(scope.mode, &bank_id, cid).await {
                    Ok(c) => c.map(|c| c.status),
                    Err(e) => {
                        tracing::warn!(intent = %id, error = %e, "bank consent status unavailable");
                        return reschedule(p, scope, loaded).await;
                    }
                },
                None => None,
            };
            bank_attempt::after_consent_check(bank.phase, consent, age, bank.token.is_some())
        }
        Phase::Succeeded | Phase::Failed => return untrack(p, scope, id).await,
    };
    match next {
        Next::Wait => reschedule(p, scope, loaded).await,
        Next::Fail(message) => fail(p, scope, loaded, message).await.map(|_| ()),
        Next::Succeed => Ok(()),
        Next::ResendConsent => resend_consent(p, scope, loaded).await,
        Next::Submit => {
            let Some(token) = open_token(&bank, id) else {
                fail(
                    p,
                    scope,
                    loaded,
                    "The payment could not be submitted; nothing was paid.",
                )
                .await?;
                return Ok(());
            };
            submit(p, scope, loaded, &token).await.map(|_| ())
        }
    }
}

fn open_token(bank: &BankAttempt, id: &str) -> Option<BankToken> {
    let sealed = bank.token.as_deref()?;
    let ring = crate::sealing::keyring().ok()?;
    let clear = ring.open(sealed, &format!("bank-token:{id}")).ok()?;
    Some(BankToken {
        access_token: String::from_utf8(clear).ok()?,
        consent_id: bank.consent_id.clone(),
    })
}

async fn resend_consent(p: &Payments, scope: &Scope, loaded: Loaded) -> Result<(), ApiError> {
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
        Err(BankError::Refused { message, .. }) => fail(
            p,
            scope,
            loaded,
            &format!("The bank refused the payment: {message}"),
        )
        .await
        .map(|_| ()),
        Err(_) => reschedule(p, scope, loaded).await,
    }
}

/// Nothing changed: look again after the backoff's next step.
async fn reschedule(p: &Payments, scope: &Scope, loaded: Loaded) -> Result<(), ApiError> {
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

async fn untrack(p: &Payments, scope: &Scope, id: &str) -> Result<(), ApiError> {
    let mut tx = Tx::new();
    tx.unindex(TRACKING, &member(scope, id));
    p.store.commit(&tx).await?;
    Ok(())
}

/// Whether a charge was paid by bank (its refunds go another way).
pub fn is_bank_charge(details: &Value) -> bool {
    details.get("type").and_then(Value::as_str) == Some(PAY_BY_BANK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_refuse_garbage() {
        let scope = Scope::new("prj_1", Mode::Test);
        let s = state_param(&scope, "pi_1", "st_secret");
        let (sc, id, secret) = parse_state(&s).expect("parses");
        assert_eq!(
            (sc.project.as_str(), id.as_str(), secret.as_str()),
            ("prj_1", "pi_1", "st_secret")
        );
        for bad in ["", "a.b", "prj.live2.pi.x", "prj.test.pi.", ".test.pi.x"] {
            assert!(parse_state(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn tracking_members_round_trip() {
        let scope = Scope::new("prj_1", Mode::Live);
        let (sc, id) = parse_member(&member(&scope, "pi_9")).expect("parses");
        assert_eq!(
            (sc.project.as_str(), sc.mode, id.as_str()),
            ("prj_1", Mode::Live, "pi_9")
        );
        assert!(parse_member("nope").is_none());
    }
}
