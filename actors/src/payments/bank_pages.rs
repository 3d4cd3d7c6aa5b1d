//! The payer's side of Pay by Bank: the bank page (`GET`), the choice of bank (`POST`, the
//! consent asked for under the attempt's key, committed first), and the bank's redirect back
//! (the `state` checked against the attempt's hash, the code exchanged, the token sealed and
//! committed, then the payment submitted). See [`super::bank`] for the whole path.

use calmony_protocol::payment_intent::PaymentIntent;
use calmony_protocol::{ApiError, Mode, ids};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Loaded;
use super::Payments;
use super::bank::{
    BankPage, HANDOVER, REFUSED, bank_api_error, fail, order_of, page_of, rail, redirect_uri,
    reschedule, resend_consent, save, session_allows, submit,
};
use super::bank_attempt::{self, BankAttempt, Phase};
use super::transitions::IntentStatus;
use crate::clock;
use crate::gateway::bank_flows::BankError;
use crate::store::Scope;

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

/// How many earlier states of one attempt a return may still carry.
const EARLIER_STATES: usize = 5;

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
    let state = secret("st");
    // The state of a tab still at the bank stays good: a few earlier ones are kept.
    if let Some(old) = bank.state_hash.replace(hex_sha256(&state)) {
        bank.earlier_states.push(old);
        let extra = bank.earlier_states.len().saturating_sub(EARLIER_STATES);
        bank.earlier_states.drain(..extra);
    }
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
    let state = secret("st");
    let nonce = secret("nonce");
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
        Err(e @ (BankError::Refused { .. } | BankError::Invalid(_) | BankError::NotConfigured)) => {
            tracing::warn!(intent = %id, error = %e, "the bank refused the consent");
            let loaded = Loaded {
                version,
                intent,
                internal,
            };
            let failed = fail(p, scope, loaded, REFUSED).await?;
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
    let same = |h: &String| bool::from(h.as_bytes().ct_eq(presented.as_bytes()));
    let matches = bank.state_hash.iter().any(same) | bank.earlier_states.iter().any(same);
    if !matches {
        // A tampered or stale state proves nothing: nothing changes.
        return Err(PageError::NotFound);
    }
    if bank.phase != Phase::AwaitingAuthorisation
        || IntentStatus::of(&loaded.intent) != Some(IntentStatus::RequiresAction)
    {
        // A replayed redirect, or an intent canceled meanwhile: where the payment is now,
        // and nothing more.
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
            // A wrong or used code. If the same redirect arrived twice, the other arrival is
            // carrying the payment: show where it stands. Otherwise nothing moved.
            let now = p.load(&scope, None, &id).await?;
            if now.internal.bank.as_ref().map(|b| b.phase) != Some(Phase::AwaitingAuthorisation) {
                return Ok((scope.clone(), where_now(p, &scope, now, None).await?));
            }
            return Err(PageError::Refused(
                "This approval could not be used. Nothing was paid; please try again from the \
                 shop."
                    .into(),
            ));
        }
        Err(e) => return Err(bank_api_error(e).into()),
    };
    // The bank's id_token names the consent it approved: it must be this attempt's.
    let other_consent =
        matches!((&token.consent_id, &bank.consent_id), (Some(named), Some(ours)) if named != ours);
    let other_nonce =
        matches!((&token.nonce, &bank.nonce), (Some(named), Some(ours)) if named != ours);
    if other_consent || other_nonce {
        tracing::error!(intent = %id, "the bank's id_token names another consent or nonce; not used");
        return Err(PageError::Refused(
            "Your bank's approval did not match this payment. Nothing was paid.".into(),
        ));
    }
    // A checkout paid meanwhile (by card, or by another attempt) or expired is not paid again.
    if !session_allows(p, &scope, &bank, &id).await? {
        let failed = fail(
            p,
            &scope,
            loaded,
            "This checkout was already completed or has expired. Nothing was paid.",
        )
        .await?;
        return Ok((scope, BankPage::Done(failed)));
    }
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
    let page = submit(p, &scope, loaded, &token, false).await?;
    Ok((scope, page))
}

/// An OAuth `state` or OpenID `nonce`: random (about 190 bits), never a time-ordered id, whose
/// neighbours within a millisecond would tell it.
fn secret(prefix: &str) -> String {
    format!("{prefix}_{}", ids::random_alnum(32))
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
}
