//! What the sandbox bank is configured with: the TPP it trusts and its own signing key.
//!
//! The keys default to the committed test pairs (`config/sandbox/open-banking/`), built into
//! the binary so a daemon started anywhere finds them: they are public, test-only keys.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use calmony_protocol::open_banking::{SigningKey, VerifyingKey};

/// The committed test keys: public, for the sandbox only.
pub const TEST_TPP_PRIVATE_PEM: &str =
    include_str!("../../../config/sandbox/open-banking/tpp-private.pem");
pub const TEST_TPP_PUBLIC_PEM: &str =
    include_str!("../../../config/sandbox/open-banking/tpp-public.pem");
pub const TEST_BANK_PRIVATE_PEM: &str =
    include_str!("../../../config/sandbox/open-banking/bank-private.pem");

/// The `kid` the sandbox bank signs under, published in its JWKS.
pub const BANK_KID: &str = "calmony-sandbox-bank";
/// The `kid` the committed TPP test key is known by.
pub const TEST_TPP_KID: &str = "calmony-sandbox-tpp";
/// The sandbox's client registration, when none is configured: public, like the keys.
pub const TEST_CLIENT_ID: &str = "calmony-sandbox-tpp";
pub const TEST_CLIENT_SECRET: &str = "sandbox-client-secret-not-for-live";

/// The sandbox bank's settings (the `[sandbox]` bank settings of the daemon's configuration).
#[derive(Clone)]
pub struct BankSandboxConfig {
    /// The TPP's public key (SPKI PEM) that request signatures and request objects are checked
    /// with. `None`: the committed test key.
    pub tpp_public_key_path: Option<PathBuf>,
    /// The one client registered at every test bank.
    pub client_id: String,
    pub client_secret: String,
    /// How long a consent may wait for the payer before it reads as `Rejected`.
    pub consent_timeout: Duration,
    /// How long the delayed and late-rejecting banks take to finish a payment.
    pub settle_delay: Duration,
}

impl Default for BankSandboxConfig {
    fn default() -> Self {
        Self {
            tpp_public_key_path: None,
            client_id: TEST_CLIENT_ID.to_owned(),
            client_secret: TEST_CLIENT_SECRET.to_owned(),
            consent_timeout: Duration::from_secs(600),
            settle_delay: Duration::from_secs(3),
        }
    }
}

impl fmt::Debug for BankSandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BankSandboxConfig")
            .field("tpp_public_key_path", &self.tpp_public_key_path)
            .field("client_id", &self.client_id)
            .field("client_secret", &"****")
            .field("consent_timeout", &self.consent_timeout)
            .field("settle_delay", &self.settle_delay)
            .finish()
    }
}

/// The keys, loaded once.
#[derive(Debug, Clone)]
pub struct Keys {
    pub bank: SigningKey,
    pub tpp: VerifyingKey,
}

/// The configuration and its keys; a key that would not load is kept as the reason, and every
/// bank route answers it as a 500 rather than the daemon refusing to start over a test bank.
#[derive(Debug)]
pub struct Setup {
    pub config: BankSandboxConfig,
    pub keys: Result<Keys, String>,
}

impl Setup {
    pub fn new(config: BankSandboxConfig) -> Self {
        let keys = load(&config);
        if let Err(reason) = &keys {
            tracing::error!(%reason, "the sandbox bank's keys did not load");
        }
        Self { config, keys }
    }

    pub fn consent_timeout_ms(&self) -> i64 {
        i64::try_from(self.config.consent_timeout.as_millis()).unwrap_or(i64::MAX)
    }

    pub fn settle_delay_ms(&self) -> i64 {
        i64::try_from(self.config.settle_delay.as_millis()).unwrap_or(i64::MAX)
    }
}

fn load(config: &BankSandboxConfig) -> Result<Keys, String> {
    let bank = SigningKey::from_pkcs8_pem(TEST_BANK_PRIVATE_PEM, BANK_KID, "calmony-sandbox")
        .map_err(|e| format!("the sandbox bank key: {e}"))?;
    let tpp_pem = match &config.tpp_public_key_path {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the TPP public key {}: {e}", path.display()))?,
        None => TEST_TPP_PUBLIC_PEM.to_owned(),
    };
    let tpp = VerifyingKey::from_public_key_pem(&tpp_pem)
        .map_err(|e| format!("the TPP public key: {e}"))?;
    Ok(Keys { bank, tpp })
}
