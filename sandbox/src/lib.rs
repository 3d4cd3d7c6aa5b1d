//! Calmony Pay's sandbox gateway: a Cardstream simulator (Direct API and Hosted Payment Page)
//! the daemon talks to over real HTTP, exactly as it talks to Cardstream.
//!
//! Test mode must exercise the same client code as live mode, so the simulator speaks the real
//! wire protocol: PHP-encoded forms, SHA-512 signatures both ways, Cardstream's response codes
//! and transaction states, the 65802 3-D Secure flow and `xref` card-on-file. Its state is in
//! Redis under `cp:sandbox:`, so several daemons sharing a Redis share one simulated gateway.
//!
//! - `direct`: `POST /sandbox/direct/`, one module per action (VERIFY, SALE, CAPTURE, CANCEL,
//!   REFUND_SALE, QUERY and the 3-D Secure continuation).
//! - `hosted`: the Hosted Payment Page, `POST /sandbox/hosted/`: the card page, 3-D Secure run
//!   inside it, the signed result posted back through the browser and to `callbackURL`. It
//!   authorises through `direct`'s own SALE and VERIFY.
//! - `cards`: the test cards and the card profile kept instead of the card number.
//! - `issuer`: the simulated issuer: authorisation outcomes, test amounts, 3-D Secure plans.
//! - `three_ds`: the ACS pages and the tokens of a challenge.
//! - `transactions`: the transaction record and the one atomic way it changes.
//! - `ledger`: every charge, capture, cancel and refund, for tests to count.
//! - `settlement`: the daily run from `captured` to `accepted`.
//! - `faults`: tampered signatures, delays and dropped answers, on demand.
//! - `config`, `error`: the account the daemon configures and what can go wrong.
//! - `gateway`: what every handler shares (store, account, memory).
//! - `memory`: the faults and VERIFYs a simulator remembers between requests.
//! - [`access`]: who may use the control routes (faults, settlement, the ledger).
//! - [`merchant`]: the installation's own signature secret, made at first start.
//! - `pages`, `reply`: HTML and HTTP answers. `clock`: the UTC calendar. [`keys`]: the
//!   keyspace.
//!
//! - `bank`: the sandbox banks of Pay by Bank (Open Banking v3.1 payment initiation) under
//!   `/sandbox/bank/<bank_id>/`, and their ledger at `GET /sandbox/bank/ledger` (operator).
//! - `griffin`: the Griffin bank (the merchant's settlement account) under
//!   `/sandbox/griffin/v0/`, its signed webhooks, and its operator routes: the test credit at
//!   `POST /sandbox/griffin/credit`, faults, held credits' release, key rotation and the
//!   delivery attempts (see `griffin`).
//!
//! Routes, all under `/sandbox/`: `POST direct/`, `POST hosted/`, `POST hosted/pay`,
//! `POST hosted/3ds`, `GET|POST acs`, `POST acs/complete`, `POST settle`, `GET ledger`,
//! `GET|POST faults`. Anything else is a 404. The last three are control routes, answered only
//! to the callers [`access`] admits.

pub mod access;
mod bank;
mod cards;
mod clock;
mod config;
mod direct;
mod error;
mod faults;
mod gateway;
mod griffin;
mod hosted;
mod issuer;
pub mod keys;
mod ledger;
mod memory;
pub mod merchant;
mod pages;
mod reply;
mod settlement;
pub use settlement::DailySettlement;
mod three_ds;
mod transactions;

pub use access::Caller;
pub use bank::BankSandboxConfig;
pub use bank::setup::{
    BANK_KID, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_TPP_KID, TEST_TPP_PRIVATE_PEM,
    TEST_TPP_PUBLIC_PEM,
};
pub use cards::known_numbers as test_card_numbers;
pub use config::SandboxConfig;
pub use error::SandboxError;
pub use griffin::decide::own_receiver as griffin_own_receiver;
pub use griffin::setup::{
    ACCOUNT_ID as GRIFFIN_ACCOUNT_ID, FAILING_ACCOUNT_NUMBER as GRIFFIN_FAILING_ACCOUNT_NUMBER,
    TEST_API_KEY as GRIFFIN_TEST_API_KEY, TEST_CLIENT_KEYID as GRIFFIN_TEST_CLIENT_KEYID,
    TEST_CLIENT_PRIVATE_PEM as GRIFFIN_TEST_CLIENT_PRIVATE_PEM,
    TEST_CLIENT_PUBLIC_PEM as GRIFFIN_TEST_CLIENT_PUBLIC_PEM,
};
pub use griffin::{Credit as GriffinCredit, Credited as GriffinCredited, GriffinSandboxConfig};
pub use hosted::DEFAULT_CALLBACK_BACKOFF;
pub use ledger::LedgerEntry;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use calmony_actors::Store;
use calmony_protocol::cardstream::Fields;
use http_body_util::Full;
use hyper::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Response, StatusCode};
use serde_json::json;

use gateway::Gateway;
use memory::Memory;
use transactions::IdBlock;

/// How long a dropped /direct/ answer holds the connection: past any sane client timeout.
const DROP_HOLD: Duration = Duration::from_secs(60);

/// The simulated gateway. Cheap to clone: clones share one state.
#[derive(Clone)]
pub struct Sandbox {
    gateway: Arc<Gateway>,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox")
            .field("config", &self.gateway.config)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    pub fn new(store: Store, config: SandboxConfig) -> Self {
        Self::with_drop_hold(store, config, DROP_HOLD)
    }

    /// The same simulator, holding dropped answers for `hold` instead of a minute, so a test
    /// can see the empty answer arrive.
    pub fn with_drop_hold(store: Store, config: SandboxConfig, hold: Duration) -> Self {
        Self {
            gateway: Arc::new(Gateway {
                store,
                drop_hold: hold,
                callback_backoff: DEFAULT_CALLBACK_BACKOFF.to_vec(),
                ids: IdBlock::default(),
                memory: Memory::default(),
                bank: Arc::new(bank::setup::Setup::new(config.bank.clone())),
                griffin: Arc::new(griffin::setup::Setup::new(config.griffin.clone())),
                config,
            }),
        }
    }

    /// The same simulator, retrying a hosted payment's callback after each of `delays` instead
    /// of [`DEFAULT_CALLBACK_BACKOFF`] (so `delays.len() + 1` attempts), so a test need not
    /// wait minutes for a retry.
    pub fn with_callback_backoff(self, delays: Vec<Duration>) -> Self {
        let gw = self.gateway.as_ref();
        Self {
            gateway: Arc::new(Gateway {
                store: gw.store.clone(),
                config: gw.config.clone(),
                drop_hold: gw.drop_hold,
                callback_backoff: delays,
                ids: IdBlock::default(),
                memory: Memory::default(),
                bank: Arc::clone(&gw.bank),
                griffin: Arc::clone(&gw.griffin),
            }),
        }
    }

    /// Whether `credential` (a bearer token) is the operator's, compared in constant time.
    pub fn is_operator(&self, credential: &str) -> bool {
        access::is_operator(self.gateway.config.operator_token.as_deref(), credential)
    }

    /// The answer to `caller` at `path` when it may not have one: a 404 for a control route
    /// that is off, a 401 for one it may not use. `None` for every gateway route. The edge
    /// asks before reading a body; [`Sandbox::handle`] asks again.
    pub fn refusal(&self, path: &str, caller: &Caller) -> Option<Response<Full<Bytes>>> {
        let control = access::Control::of(path)?;
        let configured = self.gateway.config.operator_token.is_some();
        match access::decide(control, caller, configured) {
            access::Access::Granted(_) => None,
            access::Access::Off => Some(reply::json_error(
                StatusCode::NOT_FOUND,
                "no such sandbox route (set sandbox.operator_token to turn the control routes on)",
            )),
            access::Access::Unauthorized => {
                let mut answer = reply::json_error(
                    StatusCode::UNAUTHORIZED,
                    "the sandbox's control routes need the operator's token \
                     (Authorization: Bearer <sandbox.operator_token>); the ledger also takes \
                     a project's test secret key and shows that project's charges",
                );
                answer.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"calmony-sandbox\""),
                );
                Some(answer)
            }
        }
    }

    /// Answer one request from `caller`. `path` is the full path (starting `/sandbox/`),
    /// `query` the raw query string, `headers` the request's (the sandbox bank reads its
    /// bearer token, idempotency key and signature there), `body` the whole body. Never
    /// panics; every failure is an answer.
    pub async fn handle(
        &self,
        caller: &Caller,
        method: &Method,
        path: &str,
        query: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response<Full<Bytes>> {
        if let Some(refused) = self.refusal(path, caller) {
            return refused;
        }
        let gw = self.gateway.as_ref();
        if let Some(rest) = path.strip_prefix("/sandbox/bank/") {
            return bank::handle(gw, method, rest, query, headers, body).await;
        }
        if let Some(rest) = path.strip_prefix("/sandbox/griffin/") {
            let setup = gw.griffin.as_ref();
            return griffin::handle(gw, setup, method, path, rest, query, headers, body).await;
        }
        let form = |bytes: &[u8]| Fields::parse(bytes).unwrap_or_default();
        match (path, method) {
            ("/sandbox/direct" | "/sandbox/direct/", &Method::POST) => {
                direct::handle(gw, &body).await
            }
            ("/sandbox/hosted" | "/sandbox/hosted/", &Method::POST) => {
                hosted::start(gw, &body).await
            }
            (hosted::PAY_PATH, &Method::POST) => hosted::pay(gw, &form(&body)).await,
            (hosted::THREE_DS_PATH, &Method::POST) => {
                let mut fields = form(query.as_bytes());
                for (name, value) in transactions::flatten(&form(&body)) {
                    fields.insert(&name, value);
                }
                hosted::three_ds_return(gw, &fields).await
            }
            ("/sandbox/acs" | "/sandbox/acs/", &Method::GET) => {
                three_ds::challenge_page(gw, &form(query.as_bytes())).await
            }
            ("/sandbox/acs" | "/sandbox/acs/", &Method::POST) => {
                let mut fields = form(query.as_bytes());
                for (name, value) in transactions::flatten(&form(&body)) {
                    fields.insert(&name, value);
                }
                three_ds::challenge_page(gw, &fields).await
            }
            ("/sandbox/acs/complete", &Method::POST) => three_ds::complete(gw, &form(&body)).await,
            ("/sandbox/settle", &Method::POST) => match self.settle().await {
                Ok(settled) => reply::json(StatusCode::OK, &json!({ "settled": settled })),
                Err(error) => unavailable(&error),
            },
            ("/sandbox/ledger", &Method::GET) => {
                let filter = form(query.as_bytes());
                let order_ref = filter.get("orderRef").filter(|r| !r.is_empty());
                let view = match caller {
                    Caller::Project(project) => access::View::Project(project.clone()),
                    _ => access::View::All,
                };
                match ledger::entries(&gw.store, order_ref, &view).await {
                    Ok(entries) => reply::json(StatusCode::OK, &json!({ "entries": entries })),
                    Err(error) => unavailable(&error),
                }
            }
            ("/sandbox/faults", &Method::GET) => match faults::current(&gw.store).await {
                Ok(current) => reply::json(StatusCode::OK, &json!(current)),
                Err(error) => unavailable(&error),
            },
            ("/sandbox/faults", &Method::POST) => {
                let settings = match Fields::parse(&body)
                    .map_err(|e| e.to_string())
                    .and_then(|f| faults::Settings::parse(&f).map_err(|e| e.to_string()))
                {
                    Ok(settings) => settings,
                    Err(message) => return reply::json_error(StatusCode::BAD_REQUEST, &message),
                };
                match faults::apply(&gw.store, &settings).await {
                    Ok(current) => {
                        tracing::info!(?current, "sandbox faults set");
                        reply::json(StatusCode::OK, &json!(current))
                    }
                    Err(error) => unavailable(&error),
                }
            }
            (
                "/sandbox/direct"
                | "/sandbox/direct/"
                | "/sandbox/hosted"
                | "/sandbox/hosted/"
                | hosted::PAY_PATH
                | hosted::THREE_DS_PATH
                | "/sandbox/acs"
                | "/sandbox/acs/"
                | "/sandbox/acs/complete"
                | "/sandbox/settle"
                | "/sandbox/ledger"
                | "/sandbox/faults",
                _,
            ) => reply::json_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            _ => reply::json_error(StatusCode::NOT_FOUND, "no such sandbox route"),
        }
    }

    /// Run settlement now (also what the daily timer runs): returns how many transactions
    /// moved. Moves money: `captured` to `accepted` or `rejected`.
    pub async fn settle(&self) -> Result<usize, SandboxError> {
        settlement::settle(&self.gateway).await
    }

    /// The Griffin sandbox's webhook delivery, for the daemon to run a pass of every few
    /// hundred milliseconds under supervision.
    pub fn griffin_delivery(&self) -> GriffinDelivery {
        GriffinDelivery {
            gateway: Arc::clone(&self.gateway),
            state: griffin::delivery::PassState::default(),
        }
    }

    /// The daily settlement at `hour:minute` UTC, for the daemon to run under supervision.
    pub fn daily_settlement(&self, hour: u8, minute: u8) -> settlement::DailySettlement {
        settlement::DailySettlement::new(Arc::clone(&self.gateway), hour, minute)
    }
}

/// The Griffin sandbox's webhook delivery (see `griffin::delivery`): each pass sends the
/// events made since the last, posts held credits that are due and matures payments. A pass
/// that panics hands nothing back, so its caller keeps the state from before it.
#[derive(Clone)]
pub struct GriffinDelivery {
    gateway: Arc<Gateway>,
    state: griffin::delivery::PassState,
}

impl GriffinDelivery {
    pub async fn pass(mut self) -> Self {
        let gw = self.gateway.as_ref();
        if let Err(error) = griffin::delivery::pass(gw, gw.griffin.as_ref(), &mut self.state).await
        {
            tracing::warn!(%error, "Griffin sandbox delivery pass failed");
        }
        self
    }
}

fn unavailable(error: &SandboxError) -> Response<Full<Bytes>> {
    tracing::error!(%error, "sandbox request failed");
    reply::json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the sandbox store is unavailable",
    )
}
