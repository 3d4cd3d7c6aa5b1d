//! The IntentProcessor: every payment intent transition that moves money, and their recovery.
//!
//! ## The path of a payment
//! 1. **Begin** (one atomic commit): the intent moves to `processing`, a command entry
//!    (`confirm`, `continue_3ds`, `capture`, `cancel`, `refund`, with its attempt id) is
//!    appended to the `cp:payments:commands` stream *and delivered to this daemon's consumer in
//!    the same script*, and the request's idempotency claim is held for 24 h.
//! 2. **Gateway**: the request goes out with the attempt id as `transactionUnique`.
//! 3. **Finish** (one atomic commit): the intent's new state, its charge, its events, the
//!    command acknowledged and deleted, and the answer stored under the idempotency key.
//!
//! An answer that does not say what the gateway did is treated like no answer: a lost or
//! unverified one, and also a 65548 (its database failed, perhaps after charging), a 65536
//! (busy) or a duplicate (65554). A sale, capture or cancel asks the gateway at once (QUERY);
//! a refund, or anything the QUERY cannot settle, is left pending for recovery, which asks
//! first. None is ever taken as a refusal.
//!
//! A crash between 1 and 3 leaves the command pending in the consumer group. The recovery
//! loop (the IntentProcessor actor's tick) finds it: its own pending entries at once after a
//! restart (the consumer name is stable per daemon), other daemons' entries after
//! `gateway.recovery_after_seconds` idle (XAUTOCLAIM). It then **asks the gateway first**
//! (QUERY by the attempt id, or by the sale's xref) and only re-sends when the gateway never
//! saw the request, with the same `transactionUnique`, so the gateway's duplicate check backs
//! it up. A payment is never lost and never charged twice. The finish commit checks the
//! intent's version, so two resolvers cannot both apply a result. An answer the gateway did
//! not sign correctly is never acted on: the command stays pending and is retried.
//!
//! Commands that keep failing to process (a poison entry) go to `cp:payments:dead` after
//! [`MAX_DELIVERIES`] tries, for an operator to look at. A refund's command is parked only once
//! its refund has failed (or been found done), so it cannot hold up its sale's later refunds.

pub mod bank;
pub mod bank_attempt;
mod bank_pages;
mod bank_refund_plan;
pub mod bank_refunds;
mod bank_tracking;
mod charges;
pub mod declines;
mod effects;
mod intents;
pub(crate) mod records;
mod recovery;
mod refund_plan;
mod refunds;
pub mod three_ds;
mod three_ds_session;
pub mod transitions;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use calmony_protocol::payment_intent::PaymentIntent;
use calmony_protocol::{ApiError, Mode, ids};
use serde::{Deserialize, Serialize};

use crate::RequestContext;
use crate::gateway::{Cardstream, GatewayError, MerchantAccounts, ModeGateway, PaymentGateway};
use crate::idempotency::Claim;
use crate::store::{Fetched, Record, Scope, Store, StoreError};
pub use effects::{BillingSettings, FinishedPayment, InvoiceSnapshot, NoEffects, PaymentEffects};
pub use transitions::{BillingEffect, ChargeStatus, CommandOp, IntentStatus};

pub use charges::{list_charges, retrieve_charge};
pub(crate) use intents::check_customer;
pub use intents::{
    InvoiceCharge, InvoiceChargeBegun, begin_invoice_charge, cancel, capture, confirm, create,
    list, retrieve, update,
};
pub(crate) use records::new_charge;
pub use refunds::{create_refund, list_refunds, retrieve_refund};

/// The command stream and its consumer group.
pub const COMMANDS: &str = "cp:payments:commands";
pub const GROUP: &str = "processors";
/// Where poison commands go.
pub const DEAD_LETTERS: &str = "cp:payments:dead";
/// Deliveries of one command before it is parked as poison.
pub const MAX_DELIVERIES: u64 = 20;

/// How long a request-held idempotency claim lives while its payment may be finished by
/// recovery (Stripe keeps keys 24 h). Longer than any claim's lock (at most an hour, see
/// `api.idempotency_lock_seconds`): that is how a held claim is told from a free one.
const HOLD_MS: u64 = 24 * 3600 * 1000;
const _: () = assert!(
    HOLD_MS > 2 * 3600 * 1000,
    "a held claim must outlive every lock"
);

/// What the processor keeps beside an intent's JSON (never answered to clients).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IntentInternal {
    /// The gateway attempt in flight or last made (`transactionUnique`).
    pub attempt: Option<String>,
    /// The status to return to if a capture or cancel is refused.
    pub resume_status: Option<String>,
    /// The approved sale's xref: what capture, cancel and refunds act on.
    pub sale_xref: Option<String>,
    /// A pending 3-D Secure challenge.
    pub challenge: Option<Challenge>,
    /// The secret the issuer's page must carry back to complete this attempt's challenge
    /// (see [`three_ds`]). Kept after the challenge ends, so a repeated post of the same
    /// form still finds where the payment stands.
    #[serde(default)]
    pub three_ds_session: Option<three_ds_session::Session>,
    /// Total refunded, including refunds in flight.
    pub refunded: i64,
    /// Refunds accepted and not yet finished, oldest first: only the head may act at the
    /// gateway, so a sale's refunds reach it one at a time, in the order they were accepted.
    #[serde(default)]
    pub refund_queue: Vec<String>,
    /// What the gateway last confirmed it keeps of the sale (see `refund_plan`); `None` until
    /// the first refund, when it is everything received.
    #[serde(default)]
    pub gateway_kept: Option<i64>,
    /// The invoice this payment pays, if any (its result is applied to it).
    #[serde(default)]
    pub invoice: Option<String>,
    /// The hosted page's attempts (`transactionUnique`) whose declines are recorded, the last
    /// [`RECORDED_ATTEMPTS`]: a result replayed after a later attempt's (a late callback
    /// retry) is known and recorded once. Kept here, the record each decline's commit writes
    /// under its version check, so two arrivals of one result cannot both record it.
    #[serde(default)]
    pub recorded_attempts: std::collections::VecDeque<String>,
    /// A Pay by Bank attempt (see [`bank`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank: Option<bank_attempt::BankAttempt>,
}

/// How many of a checkout's recorded attempts are remembered: more than a payer makes on one
/// session, and results are retried for minutes, not for hundreds of attempts.
pub const RECORDED_ATTEMPTS: usize = 50;

impl IntentInternal {
    /// Whether `attempt`'s result is already recorded (the latest attempt, or one remembered).
    pub fn recorded(&self, attempt: &str) -> bool {
        self.attempt.as_deref() == Some(attempt)
            || self.recorded_attempts.iter().any(|a| a == attempt)
    }

    /// Record `attempt` as the latest, remembering at most [`RECORDED_ATTEMPTS`].
    pub fn record_attempt(&mut self, attempt: String) {
        if !self.recorded_attempts.contains(&attempt) {
            self.recorded_attempts.push_back(attempt.clone());
        }
        while self.recorded_attempts.len() > RECORDED_ATTEMPTS {
            self.recorded_attempts.pop_front();
        }
        self.attempt = Some(attempt);
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Challenge {
    pub url: String,
    pub fields: Vec<(String, String)>,
    pub reference: String,
}

/// An intent as loaded for a transition.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub version: u64,
    pub intent: PaymentIntent,
    pub internal: IntentInternal,
}

/// The processor: shared by the API handlers, the 3-D Secure pages and the recovery loop.
#[derive(Clone)]
pub struct Payments {
    pub store: Store,
    /// Whoever moves the money, one method per flow: Cardstream's accounts, or whatever
    /// [`Payments::with_gateway`] put in their place.
    pub gateway: Arc<dyn PaymentGateway>,
    /// Cardstream's merchant accounts themselves, for its Hosted Payment Page (checkout signs
    /// the page's form and verifies its result with them; no other flow reads them).
    pub accounts: MerchantAccounts,
    /// This daemon's consumer name in [`GROUP`].
    pub consumer: String,
    /// Where browsers reach this daemon (3-D Secure pages).
    pub public_base: String,
    pub recovery_after: Duration,
    pub idempotency_ttl_secs: u64,
    /// Command ids this process is working on right now (recovery leaves them alone).
    in_flight: Arc<Mutex<HashSet<String>>>,
    /// What a payment's result means for billing (dunning, numbering).
    pub billing: Arc<BillingSettings>,
    /// Billing's writes for a finished payment, added to its finish commit.
    effects: Arc<dyn PaymentEffects>,
    /// Pay by Bank's banks and limit; `None`: not taken.
    pub bank: Option<bank_attempt::BankRail>,
    /// Fees, cut-offs and batches: how each payment's balance transaction is written.
    pub settlement: Arc<crate::money::Settlement>,
    /// Griffin, the merchant's account Pay by Bank refunds are paid from; `None` (or a mode
    /// without a client): those refunds are refused.
    pub griffin: Option<Arc<crate::gateway::griffin::Griffin>>,
}

/// A mode whose merchant account is not configured takes no payments.
fn not_configured(e: GatewayError) -> ApiError {
    ApiError::new(
        400,
        calmony_protocol::ErrorType::InvalidRequestError,
        format!("{e}: set gateway.live in the configuration to take live payments."),
    )
    .with_code("live_mode_not_configured")
}

impl Payments {
    pub fn new(
        store: Store,
        accounts: MerchantAccounts,
        consumer: String,
        public_base: String,
        recovery_after: Duration,
        idempotency_ttl_secs: u64,
    ) -> Self {
        Self {
            store,
            gateway: Arc::new(accounts.clone()),
            accounts,
            consumer,
            public_base,
            recovery_after,
            idempotency_ttl_secs,
            in_flight: Arc::new(Mutex::new(HashSet::new())),
            billing: Arc::new(BillingSettings::default()),
            effects: Arc::new(NoEffects),
            bank: None,
            settlement: Arc::new(crate::money::Settlement::default()),
            griffin: None,
        }
    }

    /// Write balance transactions by these settlement rules (from the configuration).
    pub fn with_settlement(mut self, settlement: crate::money::Settlement) -> Self {
        self.settlement = Arc::new(settlement);
        self
    }

    /// Pay Pay by Bank refunds from `griffin`'s accounts.
    pub fn with_griffin(mut self, griffin: Arc<crate::gateway::griffin::Griffin>) -> Self {
        self.griffin = Some(griffin);
        self
    }

    /// Take Pay by Bank through `rail`.
    pub fn with_bank(mut self, rail: bank_attempt::BankRail) -> Self {
        self.bank = Some(rail);
        self
    }

    /// Use these billing settings (from the configuration).
    pub fn with_billing(mut self, settings: BillingSettings) -> Self {
        self.billing = Arc::new(settings);
        self
    }

    /// Apply `effects` (billing's) in every finish commit. Without it, a payment whose result
    /// billing must record is left pending rather than finished without it.
    pub fn with_effects(mut self, effects: Arc<dyn PaymentEffects>) -> Self {
        self.effects = effects;
        self
    }

    /// Move the money through `gateway` instead of calling Cardstream directly (an actor
    /// that owns the accounts, or a test double).
    pub fn with_gateway(mut self, gateway: Arc<dyn PaymentGateway>) -> Self {
        self.gateway = gateway;
        self
    }

    /// The gateway for payments in `mode`; refused when that mode's account is not set up.
    pub(crate) fn gateway_for(&self, mode: Mode) -> Result<ModeGateway<'_>, ApiError> {
        ModeGateway::new(self.gateway.as_ref(), mode).map_err(not_configured)
    }

    /// Cardstream's merchant account for `mode`, for its Hosted Payment Page (checkout).
    pub(crate) fn account(&self, mode: Mode) -> Result<&Cardstream, ApiError> {
        self.accounts.account(mode).map_err(not_configured)
    }

    /// Carry out command `id` with it marked in flight, so recovery leaves it to this task.
    /// The mark goes when the work ends in any way (answered, panicked, dropped): a mark left
    /// behind would hide the command from recovery until the daemon restarted.
    async fn working_on<T>(&self, id: &str, work: impl std::future::Future<Output = T>) -> T {
        let _mark = InFlight::mark(&self.in_flight, id);
        work.await
    }

    fn is_in_flight(&self, id: &str) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    /// Record `id` of `scope`; for a request (`ctx`), as its key check read it if it did.
    pub(crate) async fn fetch(
        &self,
        scope: &Scope,
        ctx: Option<&RequestContext>,
        id: &str,
    ) -> Result<Option<Fetched>, StoreError> {
        match ctx {
            Some(ctx) => ctx.read(&self.store, id).await,
            None => self.store.fetch(&scope.record(id)).await,
        }
    }

    /// Load an intent with its internals; 404 unless it exists in this scope. A request's
    /// (`ctx`) first load of it takes the key check's read.
    pub async fn load(
        &self,
        scope: &Scope,
        ctx: Option<&RequestContext>,
        id: &str,
    ) -> Result<Loaded, ApiError> {
        let missing = || ApiError::no_such("payment_intent", id, "intent");
        if !ids::is_valid(calmony_protocol::payment_intent::PREFIX, id) {
            return Err(missing());
        }
        let f = self.fetch(scope, ctx, id).await?.ok_or_else(missing)?;
        Ok(Loaded {
            version: f.record.version,
            intent: f.record.parse(&scope.record(id))?,
            internal: f
                .internal
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default(),
        })
    }
}

/// What a command entry carries: enough to finish the work without the request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Command {
    pub project: String,
    pub mode: Mode,
    pub intent: String,
    pub op: CommandOp,
    pub attempt: String,
    #[serde(default)]
    pub args: serde_json::Value,
    /// The idempotency claim whose answer this command's result is.
    pub claim: Option<(String, String, String)>,
    /// The request that began it (events name it).
    #[serde(default)]
    pub request: Option<String>,
}

impl Command {
    pub fn scope(&self) -> Scope {
        Scope::new(self.project.clone(), self.mode)
    }

    pub fn claim(&self) -> Option<Claim> {
        self.claim.clone().map(|(key, redis_key, owner)| Claim {
            key,
            redis_key,
            owner,
        })
    }

    pub(crate) fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The refund an entry that does not read as a command still names, as a refund command
    /// carrying out nothing but that refund: enough to fail it when the entry is parked.
    pub(crate) fn refund_named(fields: &str) -> Option<Command> {
        let v: serde_json::Value = serde_json::from_str(fields).ok()?;
        let text = |field: &str| v.get(field)?.as_str().map(str::to_string);
        if text("op")? != "refund" {
            return None;
        }
        let refund = v.get("args")?.get("refund")?.as_str()?.to_string();
        Some(Command {
            project: text("project")?,
            mode: serde_json::from_value(v.get("mode")?.clone()).ok()?,
            intent: text("intent")?,
            op: CommandOp::Refund,
            attempt: text("attempt").unwrap_or_default(),
            args: serde_json::json!({ "refund": refund }),
            claim: v
                .get("claim")
                .and_then(|c| serde_json::from_value(c.clone()).ok()),
            request: text("request"),
        })
    }
}

/// Why a finish retried on fresh reads did not land. Running out of tries is not the
/// request's failure: the command stays pending and recovery lands it.
pub(crate) enum Landing {
    Failed(ApiError),
    Contended,
}

impl From<ApiError> for Landing {
    fn from(e: ApiError) -> Self {
        Landing::Failed(e)
    }
}

impl From<StoreError> for Landing {
    fn from(e: StoreError) -> Self {
        Landing::Failed(e.into())
    }
}

/// Treat an unreadable stored record as a 500 with detail in the log.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    rec: &Record,
    key: &str,
) -> Result<T, ApiError> {
    Ok(rec.parse(key)?)
}

/// A command marked in flight in this process, unmarked when dropped.
struct InFlight<'a> {
    set: &'a Mutex<HashSet<String>>,
    id: String,
}

impl<'a> InFlight<'a> {
    fn mark(set: &'a Mutex<HashSet<String>>, id: &str) -> Self {
        crate::lock(set).insert(id.to_string());
        Self {
            set,
            id: id.to_string(),
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        crate::lock(self.set).remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_entry_still_names_its_refund_when_it_can() {
        let named = |fields: &str| {
            Command::refund_named(fields).map(|c| {
                let refund = refund_id(&c);
                (c.project, c.mode, c.intent, refund)
            })
        };
        fn refund_id(c: &Command) -> String {
            c.args["refund"].as_str().unwrap_or_default().to_string()
        }
        let whole = r#"{"project":"prj_1","mode":"test","intent":"pi_1","op":"refund",
            "attempt":"att_1","args":{"refund":"re_1","amount":100},"claim":null}"#;
        let one = Some((
            "prj_1".to_string(),
            Mode::Test,
            "pi_1".to_string(),
            "re_1".to_string(),
        ));
        assert_eq!(named(whole), one);
        // A field of the wrong shape makes the command unreadable; the refund is still named.
        let bent = r#"{"project":"prj_1","mode":"test","intent":"pi_1","op":"refund",
            "attempt":7,"args":{"refund":"re_1"},"claim":"nonsense"}"#;
        assert!(serde_json::from_str::<Command>(bent).is_err());
        assert_eq!(named(bent), one);
        for nothing in [
            "not json",
            r#"{"project":"prj_1","mode":"test","intent":"pi_1","op":"confirm"}"#,
            r#"{"project":"prj_1","mode":"test","intent":"pi_1","op":"refund","args":{}}"#,
            r#"{"mode":"test","intent":"pi_1","op":"refund","args":{"refund":"re_1"}}"#,
        ] {
            assert_eq!(named(nothing), None, "{nothing}");
        }
    }
}

#[cfg(test)]
mod recorded_attempts_tests {
    use super::*;

    #[test]
    fn an_attempt_is_recorded_once_whatever_came_between() {
        let mut i = IntentInternal::default();
        // (attempt arriving, recorded already?)
        for (attempt, seen) in [
            ("A", false),
            ("A", true),
            ("B", false),
            ("A", true), // a late retry of A after B
            ("B", true),
            ("C", false),
        ] {
            assert_eq!(i.recorded(attempt), seen, "{attempt}");
            if !seen {
                i.record_attempt(attempt.into());
            }
        }
        assert_eq!(i.attempt.as_deref(), Some("C"));
        // Bounded: the oldest are forgotten first.
        for n in 0..RECORDED_ATTEMPTS {
            i.record_attempt(format!("x{n}"));
        }
        assert_eq!(i.recorded_attempts.len(), RECORDED_ATTEMPTS);
        assert!(!i.recorded("A") && i.recorded("x0") && i.recorded("x49"));
        // An intent stored before the list existed still knows its latest attempt.
        let older: IntentInternal =
            serde_json::from_str(r#"{"attempt":"Z","refunded":0}"#).expect("older record");
        assert!(older.recorded("Z") && !older.recorded("Y"));
    }

    /// A command whose work panics is unmarked all the same, so recovery takes it up.
    #[test]
    fn a_command_is_unmarked_however_its_work_ends() {
        let set = Mutex::new(HashSet::new());
        {
            let _m = InFlight::mark(&set, "1-0");
            assert!(crate::lock(&set).contains("1-0"));
        }
        assert!(crate::lock(&set).is_empty(), "unmarked when the work ends");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _m = InFlight::mark(&set, "2-0");
            panic!("the work panicked");
        }));
        assert!(panicked.is_err());
        assert!(crate::lock(&set).is_empty(), "unmarked after a panic");
    }
}
