//! The BankTracker's pass over [`super::bank::TRACKING`]: every open attempt that is due,
//! looked at once. It asks the bank first (the consent, the payment) and acts on the answer
//! with the same commits as the payer's path, resending only under the attempt's own keys.

use std::time::Duration;

use calmony_protocol::{ApiError, Mode};
use redis::AsyncCommands;

use super::Payments;
use super::bank::{TRACKING, fail, member, rail, reschedule, resend_consent, submit, succeed};
use super::bank_attempt::{self, BankAttempt, Next, Phase};
use super::transitions::IntentStatus;
use crate::clock;
use crate::gateway::bank_flows::{BankToken, ConsentState};
use crate::store::{Scope, Tx};

pub(super) fn parse_member(m: &str) -> Option<(Scope, String)> {
    let mut parts = m.splitn(3, '|');
    let project = parts.next()?;
    let mode = Mode::parse(parts.next()?)?;
    let id = parts.next()?;
    Some((Scope::new(project.to_string(), mode), id.to_string()))
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
    let current = loaded.internal.attempt.as_deref() == Some(bank.attempt.as_str());
    // Only an intent still waiting on its bank is acted on: one canceled or finished
    // another way is never moved again.
    let waiting = matches!(
        IntentStatus::of(&loaded.intent),
        Some(IntentStatus::RequiresAction | IntentStatus::Processing)
    );
    if !bank.phase.is_open() || !current || !waiting {
        return untrack(p, scope, id).await;
    }
    let rail = rail(p, scope.mode)?;
    let bank_id = bank.bank.clone().unwrap_or_default();
    let age = Duration::from_secs(
        (clock::now() - bank.consent_requested_at.unwrap_or_else(clock::now)).max(0) as u64,
    );
    // Whether the bank says the consent's payment was made: a resend then must not fail on a
    // refusal (see `bank::submit`).
    let mut consumed = false;
    let next = match bank.phase {
        // Never tracked: nothing has been asked of any bank until the payer picks one (the
        // intent waits in `requires_action`, as Stripe's does).
        Phase::ChoosingBank => return untrack(p, scope, id).await,
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
            consumed = consent == Some(ConsentState::Consumed);
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
                if consumed {
                    // The payment may exist; only its key could find it. Kept open.
                    tracing::error!(intent = %id, "a consumed consent's token cannot be opened; left for an operator");
                    return reschedule(p, scope, loaded).await;
                }
                fail(
                    p,
                    scope,
                    loaded,
                    "The payment could not be submitted; nothing was paid.",
                )
                .await?;
                return Ok(());
            };
            submit(p, scope, loaded, &token, consumed).await.map(|_| ())
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
        nonce: bank.nonce.clone(),
    })
}

async fn untrack(p: &Payments, scope: &Scope, id: &str) -> Result<(), ApiError> {
    let mut tx = Tx::new();
    tx.unindex(TRACKING, &member(scope, id));
    p.store.commit(&tx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
