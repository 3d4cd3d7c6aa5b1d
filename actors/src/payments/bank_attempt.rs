//! A Pay by Bank attempt: where one payer's bank transfer stands, and what to do next. Pure:
//! the flow (`super::bank`) loads, asks these functions, and commits.
//!
//! The attempt is written into the intent's internal record *before* each call to the bank
//! (the consent's and the payment's idempotency keys, the OAuth `state`), so a crash at any
//! step leaves enough to ask the bank where things stand and to resend only under the same
//! key: a consent is created once and submitted at most once.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::gateway::bank_flows::{
    BankError, BankGateway, BankPaymentState, ConsentState, Creditor, PayerAccount,
};

/// Pay by Bank's side of the processor: the banks, the account payments go to in each mode,
/// and the largest amount they take.
#[derive(Clone)]
pub struct BankRail {
    pub gateway: Arc<dyn BankGateway>,
    /// In pence.
    pub limit: i64,
    pub test_creditor: Option<Creditor>,
    pub live_creditor: Option<Creditor>,
}

impl BankRail {
    /// The merchant's account for payments in `mode`.
    pub fn creditor(&self, mode: calmony_protocol::Mode) -> Result<Creditor, BankError> {
        match mode {
            calmony_protocol::Mode::Test => self.test_creditor.clone(),
            calmony_protocol::Mode::Live => self.live_creditor.clone(),
        }
        .ok_or(BankError::NotConfigured)
    }
}

/// The steps of an attempt, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Confirmed; the payer has not picked a bank yet.
    ChoosingBank,
    /// A bank picked and the consent's key written; the consent may or may not exist.
    ConsentPending,
    /// The consent exists; the payer is at the bank.
    AwaitingAuthorisation,
    /// Approved and the token kept; the payment may or may not be submitted.
    Submitting,
    /// Submitted; the bank settles it or rejects it.
    Submitted,
    Succeeded,
    Failed,
}

impl Phase {
    /// Phases a payer's page or the tracker still acts on.
    pub fn is_open(self) -> bool {
        !matches!(self, Phase::Succeeded | Phase::Failed)
    }
}

/// What [`BankAttempt`] keeps beside the intent (never answered to clients).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankAttempt {
    pub attempt: String,
    pub phase: Phase,
    #[serde(default)]
    pub bank: Option<String>,
    pub consent_key: String,
    pub payment_key: String,
    /// SHA-256 (hex) of the OAuth `state` secret sent through the payer's browser.
    #[serde(default)]
    pub state_hash: Option<String>,
    /// The hashes of states sent before it (the page was opened again while the payer was
    /// at the bank): a return with any of them is this attempt's, the newest few kept.
    #[serde(default)]
    pub earlier_states: Vec<String>,
    /// The charge this attempt made once the payment was submitted.
    #[serde(default)]
    pub charge: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub consent_id: Option<String>,
    /// The consent's access token, sealed at rest.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub payment_id: Option<String>,
    /// Unix seconds the consent was asked for (what its expiry is counted from).
    #[serde(default)]
    pub consent_requested_at: Option<i64>,
    /// Status checks made since the last change: the backoff's step.
    #[serde(default)]
    pub checks: u32,
    /// On the payee's statement (at most 18 characters).
    pub reference: String,
    pub end_to_end_id: String,
    pub instruction_id: String,
    /// The checkout session this payment completes, if a session started it.
    #[serde(default)]
    pub checkout_session: Option<String>,
    /// The payer's account as their bank reported it (`ReadRefundAccount`), sealed at rest
    /// (see [`seal_refund_account`]): where a refund of this payment is paid to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_account: Option<String>,
}

/// The payer's account a refund is paid to: kept sealed, never logged (the charge shows the
/// last 4 digits only).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundAccount {
    #[serde(default)]
    pub name: Option<String>,
    /// Six digits.
    pub sort_code: String,
    /// Eight digits.
    pub account_number: String,
}

impl std::fmt::Debug for RefundAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = &self.account_number;
        f.debug_struct("RefundAccount")
            .field("last4", &n.get(n.len().saturating_sub(4)..).unwrap_or(""))
            .finish_non_exhaustive()
    }
}

/// Where a sealed refund account is bound to: its intent (a value copied to another intent
/// does not open).
fn refund_account_place(intent_id: &str) -> String {
    format!("bank-refund-account:{intent_id}")
}

/// Keep `account` (when the bank reported one) on `bank`, sealed for `intent_id`. Without
/// the keyring (never in the daemon) nothing is kept, and refunds of the payment are refused.
pub fn seal_refund_account(
    bank: &mut BankAttempt,
    intent_id: &str,
    account: Option<&PayerAccount>,
) {
    let Some(account) = account else { return };
    let kept = RefundAccount {
        name: account.name.clone(),
        sort_code: account
            .sort_code
            .chars()
            .filter(char::is_ascii_digit)
            .collect(),
        account_number: account.account_number.clone(),
    };
    let Ok(clear) = serde_json::to_vec(&kept) else {
        return;
    };
    match crate::sealing::keyring() {
        Ok(ring) => bank.refund_account = Some(ring.seal(&clear, &refund_account_place(intent_id))),
        Err(e) => {
            tracing::warn!(intent = %intent_id, error = %e, "the payer's refund account cannot be sealed; not kept")
        }
    }
}

/// The payer's account kept on `bank`, opened; `None` when none was kept or it does not open.
pub fn open_refund_account(bank: &BankAttempt, intent_id: &str) -> Option<RefundAccount> {
    let sealed = bank.refund_account.as_deref()?;
    let ring = crate::sealing::keyring().ok()?;
    let clear = ring.open(sealed, &refund_account_place(intent_id)).ok()?;
    serde_json::from_slice(&clear).ok()
}

/// What a status check at the bank means for the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Nothing changed: look again later.
    Wait,
    /// The payer is gone and will not come back, or the bank refused: the intent goes back to
    /// `requires_payment_method` with this message.
    Fail(&'static str),
    /// Send the consent again, under its key (the bank answers with the same consent).
    ResendConsent,
    /// Submit (or resubmit under the same key) with the kept token.
    Submit,
    /// The money arrived: the intent succeeds.
    Succeed,
}

/// How long a payer may take at the bank before an unapproved consent counts as abandoned.
pub const AUTHORISATION_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A consent the bank reported (or `None`: it does not know it) for an attempt in `phase`,
/// `age` after it was asked for, with `token` kept or not.
pub fn after_consent_check(
    phase: Phase,
    consent: Option<ConsentState>,
    age: Duration,
    has_token: bool,
) -> Next {
    let expired = age >= AUTHORISATION_WINDOW;
    match (phase, consent) {
        // Asked for but never recorded: the same key finds (or makes) the one consent.
        (Phase::ConsentPending, _) => Next::ResendConsent,
        (Phase::AwaitingAuthorisation, None) => {
            Next::Fail("The bank has no record of this payment.")
        }
        (_, Some(ConsentState::Rejected)) if phase != Phase::Submitted => {
            Next::Fail("The payment was rejected or cancelled at the bank.")
        }
        (Phase::AwaitingAuthorisation, Some(ConsentState::AwaitingAuthorisation)) if expired => {
            Next::Fail("The payment was not approved at the bank in time.")
        }
        (Phase::AwaitingAuthorisation, Some(ConsentState::AwaitingAuthorisation)) => Next::Wait,
        // Approved, but the approval's code never reached us (or its token was not kept): no
        // money can move without it, so once the payer can no longer return, it is over.
        (Phase::AwaitingAuthorisation, Some(ConsentState::Authorised)) if expired => {
            Next::Fail("The payment was approved but could not be completed; nothing was paid.")
        }
        (Phase::AwaitingAuthorisation, Some(_)) => Next::Wait,
        // Consumed without a token kept: the payment may exist, and only its own key could
        // find it. Never failed on a guess: it stays open for the bank's word or an operator.
        (Phase::Submitting, Some(ConsentState::Consumed)) if !has_token => Next::Wait,
        (Phase::Submitting, _) if !has_token => {
            Next::Fail("The payment could not be submitted; nothing was paid.")
        }
        // Authorised: never submitted. Consumed: submitted, and the same key answers with
        // that payment. Either way the submission under the kept key is the one payment.
        (Phase::Submitting, Some(ConsentState::Authorised | ConsentState::Consumed)) => {
            Next::Submit
        }
        // The bank does not know the consent now: an answer this odd is no reason to fail a
        // payment that may have been sent. Looked at again.
        (Phase::Submitting, None) => Next::Wait,
        (Phase::Submitting, _) => {
            Next::Fail("The bank no longer holds this approval; nothing was paid.")
        }
        _ => Next::Wait,
    }
}

/// A submitted payment's status.
pub fn after_payment_check(state: Option<BankPaymentState>) -> Next {
    match state {
        Some(BankPaymentState::Settled) => Next::Succeed,
        Some(BankPaymentState::Rejected) => Next::Fail("The bank rejected the payment."),
        Some(BankPaymentState::InProgress) | None => Next::Wait,
    }
}

/// When to look at an open attempt again after `checks` looks without a change: 1 s,
/// doubling to a minute (a bank's status API is throttled; most settle within seconds).
pub fn next_check(checks: u32) -> Duration {
    Duration::from_secs(1u64 << checks.min(6)).min(Duration::from_secs(60))
}

/// The reference on the payee's statement: `CP` and the intent id's last 16 characters,
/// uppercase (Faster Payments carries 18; banks may strip anything but letters and digits).
pub fn reference_for(intent_id: &str) -> String {
    let tail: String = intent_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .take(16)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("CP{}", tail.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use BankPaymentState as P;
    use ConsentState as C;
    use Phase::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn consent_checks() {
        let cases: &[(Phase, Option<C>, Duration, bool, Next)] = &[
            (ConsentPending, None, MIN, false, Next::ResendConsent),
            (
                ConsentPending,
                Some(C::Authorised),
                MIN,
                false,
                Next::ResendConsent,
            ),
            (
                AwaitingAuthorisation,
                Some(C::AwaitingAuthorisation),
                MIN,
                false,
                Next::Wait,
            ),
            (
                AwaitingAuthorisation,
                Some(C::AwaitingAuthorisation),
                16 * MIN,
                false,
                Next::Fail("The payment was not approved at the bank in time."),
            ),
            (
                AwaitingAuthorisation,
                Some(C::Rejected),
                MIN,
                false,
                Next::Fail("The payment was rejected or cancelled at the bank."),
            ),
            (
                AwaitingAuthorisation,
                Some(C::Authorised),
                MIN,
                false,
                Next::Wait,
            ),
            (
                AwaitingAuthorisation,
                Some(C::Authorised),
                16 * MIN,
                false,
                Next::Fail(
                    "The payment was approved but could not be completed; nothing was paid.",
                ),
            ),
            (
                AwaitingAuthorisation,
                None,
                MIN,
                false,
                Next::Fail("The bank has no record of this payment."),
            ),
            (Submitting, Some(C::Authorised), MIN, true, Next::Submit),
            (Submitting, Some(C::Consumed), MIN, true, Next::Submit),
            (Submitting, Some(C::Consumed), MIN, false, Next::Wait),
            (
                Submitting,
                Some(C::Authorised),
                MIN,
                false,
                Next::Fail("The payment could not be submitted; nothing was paid."),
            ),
            (Submitting, None, MIN, true, Next::Wait),
            (
                Submitting,
                Some(C::Rejected),
                MIN,
                true,
                Next::Fail("The payment was rejected or cancelled at the bank."),
            ),
            (Submitted, Some(C::Consumed), MIN, true, Next::Wait),
        ];
        for (phase, consent, age, token, want) in cases {
            assert_eq!(
                after_consent_check(*phase, *consent, *age, *token),
                *want,
                "{phase:?} {consent:?} {age:?} token={token}"
            );
        }
    }

    #[test]
    fn payment_checks() {
        assert_eq!(after_payment_check(Some(P::Settled)), Next::Succeed);
        assert_eq!(after_payment_check(Some(P::InProgress)), Next::Wait);
        assert_eq!(after_payment_check(None), Next::Wait);
        assert_eq!(
            after_payment_check(Some(P::Rejected)),
            Next::Fail("The bank rejected the payment.")
        );
    }

    #[test]
    fn backoff_doubles_to_a_minute() {
        let secs: Vec<u64> = (0..9).map(|c| next_check(c).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn the_refund_account_is_kept_sealed_for_its_intent_and_never_shown_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ring = crate::sealing::Keyring::load(dir.path(), true).expect("keyring");
        crate::sealing::install(ring);
        let mut bank = BankAttempt {
            attempt: "att_1".into(),
            phase: Submitted,
            bank: None,
            consent_key: String::new(),
            payment_key: String::new(),
            state_hash: None,
            earlier_states: Vec::new(),
            charge: None,
            nonce: None,
            consent_id: None,
            token: None,
            payment_id: None,
            consent_requested_at: None,
            checks: 0,
            reference: String::new(),
            end_to_end_id: String::new(),
            instruction_id: String::new(),
            checkout_session: None,
            refund_account: None,
        };
        seal_refund_account(&mut bank, "pi_1", None);
        assert_eq!(bank.refund_account, None, "nothing reported, nothing kept");
        let reported = PayerAccount {
            name: Some("Jane Payer".into()),
            sort_code: "20-00-45".into(),
            account_number: "12345678".into(),
        };
        seal_refund_account(&mut bank, "pi_1", Some(&reported));
        let sealed = bank.refund_account.clone().unwrap_or_default();
        assert!(!sealed.contains("12345678"), "sealed at rest: {sealed}");
        let opened = open_refund_account(&bank, "pi_1").expect("opens for its intent");
        assert_eq!(
            (opened.sort_code.as_str(), opened.account_number.as_str()),
            ("200045", "12345678")
        );
        assert_eq!(
            open_refund_account(&bank, "pi_2"),
            None,
            "bound to its intent"
        );
        let shown = format!("{opened:?}");
        assert!(shown.contains("5678") && !shown.contains("1234"), "{shown}");
    }

    #[test]
    fn references_fit_faster_payments() {
        let r = reference_for("pi_01M966ZGBDQ29KVP3MGH6AH1Q8");
        assert_eq!(r, "CPQ29KVP3MGH6AH1Q8");
        assert!(r.len() <= 18, "{r}");
        assert!(r.starts_with("CP"));
        assert!(
            r.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
    }
}
