//! Griffin, the bank holding the merchant's settlement account: a small client of its `/v0`
//! API for each mode ([`client::GriffinClient`]).
//!
//! The client finds the account by following links (index → organization → bank accounts)
//! unless one is configured, reads the ledger page by page from a cursor, and sends payouts
//! by create-then-submit. Griffin takes no idempotency key, so a caller keeps its own
//! reference before creating and calls [`client::GriffinClient::find_payments`] before any
//! retry, and looks at a payment's submissions before submitting it again.
//!
//! Griffin's webhooks are received by [`inbox::Inbox`] (verified by [`webhook`]: ES512
//! signatures against Griffin's published keys, cached and refetched on an unknown key id),
//! recorded once per `event-url` in one commit and signalled to reconciliation.
//!
//! Test mode defaults to the built-in Griffin sandbox (`Config::test_griffin`); live mode is
//! off until an API key is configured, and then signs every request (RFC 9421, Ed25519) and
//! reaches only public https addresses.

pub mod client;
pub mod inbox;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use calmony_config::{Config, GriffinConnection};
use calmony_protocol::Mode;
use calmony_protocol::griffin::SigningKey;

pub use client::{GriffinClient, GriffinError, GriffinSettings};

/// Both modes' Griffin clients; `None` where the mode has none.
#[derive(Debug, Default)]
pub struct Griffin {
    test: Option<Arc<GriffinClient>>,
    live: Option<Arc<GriffinClient>>,
}

impl Griffin {
    /// The clients `config` describes, keys read now. Test mode always has one (the sandbox
    /// by default); live mode only with an API key.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let timeout = Duration::from_secs(config.gateway.timeout_seconds.max(1));
        let test = connect(&config.test_griffin(), false, timeout)
            .map_err(|e| format!("griffin.test: {e}"))?;
        let live = if config.griffin.live.api_key.is_empty() {
            None
        } else {
            Some(
                connect(&config.griffin.live, true, timeout)
                    .map_err(|e| format!("griffin.live: {e}"))?,
            )
        };
        Ok(Self {
            test: Some(Arc::new(test)),
            live: live.map(Arc::new),
        })
    }

    /// The client of `mode`, if that mode settles to Griffin.
    pub fn client(&self, mode: Mode) -> Option<Arc<GriffinClient>> {
        match mode {
            Mode::Test => self.test.clone(),
            Mode::Live => self.live.clone(),
        }
    }
}

/// One mode's client from its connection settings.
pub fn connect(
    c: &GriffinConnection,
    live: bool,
    timeout: Duration,
) -> Result<GriffinClient, String> {
    let key = if c.signing_key_path.is_empty() {
        None
    } else {
        let pem = std::fs::read_to_string(&c.signing_key_path)
            .map_err(|e| format!("cannot read {}: {e}", c.signing_key_path))?;
        Some(SigningKey::ed25519_from_pem(&c.signing_key_id, &pem).map_err(|e| e.to_string())?)
    };
    if live && key.is_none() {
        return Err("live Griffin requests must be signed: set signing_key_path".into());
    }
    GriffinClient::new(GriffinSettings {
        base_url: c.base_url.clone(),
        api_key: c.api_key.clone(),
        key,
        account_url: Some(c.account_url.clone()).filter(|u| !u.is_empty()),
        live,
        timeout,
    })
}
