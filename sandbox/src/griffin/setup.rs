//! What the Griffin sandbox is configured with: the API key it accepts, the client key it may
//! check request signatures with, the one account it keeps and how long a payment takes.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use calmony_protocol::griffin::VerifyingKey;

/// The committed client test key pair (`config/sandbox/griffin/`): public, sandbox only.
pub const TEST_CLIENT_PRIVATE_PEM: &str =
    include_str!("../../../config/sandbox/griffin/client-private.pem");
pub const TEST_CLIENT_PUBLIC_PEM: &str =
    include_str!("../../../config/sandbox/griffin/client-public.pem");
/// The `keyid` the committed client key is known by.
pub const TEST_CLIENT_KEYID: &str = "calmony-sandbox-client";

/// The sandbox's API key in its own tests. The daemon never uses it: it gives the sandbox the
/// installation's own key (`calmony_sandbox::merchant::installation_griffin_key`), as this one
/// is public. Griffin's sandbox prefix, so a live key can never be mistaken for it.
pub const TEST_API_KEY: &str = "g-test-calmony-sandbox-api-key";
/// The sandbox organization and its one operational account.
pub const ORGANIZATION_ID: &str = "og.CalmonySandbox";
pub const ACCOUNT_ID: &str = "ba.CalmonySettlement";
/// What every new Griffin sandbox account is opened with: £1,000,000.
pub const OPENING_DEPOSIT_PENCE: i64 = 100_000_000;
/// A creditor account number whose payments fail at the scheme: the injected failure.
pub const FAILING_ACCOUNT_NUMBER: &str = "99999999";

/// The Griffin sandbox's settings.
#[derive(Clone)]
pub struct GriffinSandboxConfig {
    /// The `Authorization: GriffinAPIKey <key>` accepted.
    pub api_key: String,
    /// When set, every `/v0` request must carry a valid RFC 9421 signature by this Ed25519
    /// public key (SPKI PEM), as Griffin's "validate all requests" toggle enforces.
    pub client_public_key_path: Option<PathBuf>,
    /// The `keyid` Griffin issued for that key.
    pub client_keyid: String,
    /// How long a submitted payment stays `processing` before it is `delivered`.
    pub payment_delay: Duration,
    pub account_holder: String,
    pub sort_code: String,
    pub account_number: String,
    /// Registered as the organization's webhook at start when none is: the daemon's own
    /// `/webhooks/griffin/test`, so test mode receives the sandbox's webhooks with no setup.
    pub webhook_destination: Option<String>,
    /// The delays before each retry of a webhook delivery not answered 2xx.
    pub webhook_backoff: Vec<Duration>,
}

/// The delays before each retry of an unaccepted webhook: six attempts over about 13 minutes.
pub const DEFAULT_WEBHOOK_BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
];

impl Default for GriffinSandboxConfig {
    fn default() -> Self {
        Self {
            api_key: TEST_API_KEY.to_owned(),
            client_public_key_path: None,
            client_keyid: TEST_CLIENT_KEYID.to_owned(),
            payment_delay: Duration::from_secs(2),
            account_holder: "Calmony Sandbox Merchant Ltd".to_owned(),
            sort_code: "000000".to_owned(),
            account_number: "00000001".to_owned(),
            webhook_destination: None,
            webhook_backoff: DEFAULT_WEBHOOK_BACKOFF.to_vec(),
        }
    }
}

impl fmt::Debug for GriffinSandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GriffinSandboxConfig")
            .field("api_key", &"****")
            .field("client_public_key_path", &self.client_public_key_path)
            .field("client_keyid", &self.client_keyid)
            .field("payment_delay", &self.payment_delay)
            .field("webhook_destination", &self.webhook_destination)
            .finish_non_exhaustive()
    }
}

/// The configuration and the client key, loaded once. A key that would not load is kept as
/// the reason and answered as a 500, rather than the daemon refusing to start over a fake.
pub struct Setup {
    pub config: GriffinSandboxConfig,
    pub client_key: Result<Option<VerifyingKey>, String>,
}

impl fmt::Debug for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setup")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Setup {
    pub fn new(config: GriffinSandboxConfig) -> Self {
        let client_key = match &config.client_public_key_path {
            None => Ok(None),
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
                .and_then(|pem| VerifyingKey::ed25519_from_pem(&pem).map_err(|e| e.to_string()))
                .map(Some),
        };
        if let Err(reason) = &client_key {
            tracing::error!(%reason, "the Griffin sandbox's client key did not load");
        }
        Self { config, client_key }
    }

    pub fn payment_delay_ms(&self) -> i64 {
        i64::try_from(self.config.payment_delay.as_millis()).unwrap_or(i64::MAX)
    }
}
