//! The daemon's configuration: a TOML file (`--config FILE`) with `CALMONY_*` environment
//! overrides, validated once at start.
//!
//! Every setting has a default that runs on a laptop, so the daemon starts with no file at all.
//! Each setting's environment name is derived from its path (`api.rate_limit_per_second` ->
//! `CALMONY_API_RATE_LIMIT_PER_SECOND`), so the table in [`SETTINGS`] is the one place that lists
//! them; `scripts/calmony.example.toml` documents each one. A bad value is a [`ConfigError`] that
//! names the setting, where it came from and what is wrong; the daemon exits with code 2.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How a setting's environment value is typed before it joins the TOML tree.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::Int => "a whole number of at least 0",
            Kind::Bool => "true or false",
        }
    }
}

/// Every setting: its path in the TOML file and its type. The environment name is derived.
const SETTINGS: &[(&str, Kind)] = &[
    ("listen", Kind::Str),
    ("data_dir", Kind::Str),
    ("public_url", Kind::Str),
    ("log.format", Kind::Str),
    ("log.level", Kind::Str),
    ("redis.url", Kind::Str),
    ("redis.server_binary", Kind::Str),
    ("redis.appendfsync", Kind::Str),
    ("redis.connect_timeout_seconds", Kind::Int),
    ("api.rate_limit_per_second", Kind::Int),
    ("api.max_body_bytes", Kind::Int),
    ("api.idempotency_ttl_hours", Kind::Int),
    ("api.idempotency_lock_seconds", Kind::Int),
    ("api.bootstrap_test_key", Kind::Bool),
    ("http.header_read_timeout_seconds", Kind::Int),
    ("http.body_read_timeout_seconds", Kind::Int),
    ("http.max_connections", Kind::Int),
    ("http.trusted_proxies", Kind::Str),
    ("shutdown.grace_seconds", Kind::Int),
    ("instance_id", Kind::Str),
    ("gateway.timeout_seconds", Kind::Int),
    ("gateway.recovery_after_seconds", Kind::Int),
    ("gateway.test.url", Kind::Str),
    ("gateway.test.merchant_id", Kind::Str),
    ("gateway.test.secret", Kind::Str),
    ("gateway.live.url", Kind::Str),
    ("gateway.live.merchant_id", Kind::Str),
    ("gateway.live.secret", Kind::Str),
    ("sandbox.enabled", Kind::Bool),
    ("sandbox.settlement_time", Kind::Str),
    ("sandbox.operator_token", Kind::Str),
    ("sandbox.bank_client_id", Kind::Str),
    ("sandbox.bank_client_secret", Kind::Str),
    ("sandbox.bank_tpp_public_key_path", Kind::Str),
    ("sandbox.bank_consent_timeout_seconds", Kind::Int),
    ("sandbox.bank_settle_delay_ms", Kind::Int),
    ("sandbox.griffin_payment_delay_ms", Kind::Int),
    ("sandbox.griffin_client_public_key_path", Kind::Str),
    ("webhooks.timeout_seconds", Kind::Int),
    ("webhooks.retry_schedule", Kind::Str),
    ("webhooks.disable_after_hours", Kind::Int),
    ("webhooks.secret_overlap_hours", Kind::Int),
    ("webhooks.concurrency", Kind::Int),
    ("webhooks.local_targets", Kind::Str),
    ("secrets.key_dir", Kind::Str),
    ("clock.controllable", Kind::Bool),
    ("billing.schedule", Kind::Str),
    ("billing.dunning_retry_hours", Kind::Str),
    ("billing.final_action", Kind::Str),
    ("billing.lease_seconds", Kind::Int),
    ("billing.concurrency", Kind::Int),
    ("billing.invoice_prefix", Kind::Str),
    ("pay_by_bank.limit", Kind::Int),
    ("pay_by_bank.test.creditor.sort_code", Kind::Str),
    ("pay_by_bank.test.creditor.account_number", Kind::Str),
    ("pay_by_bank.test.creditor.name", Kind::Str),
    ("pay_by_bank.live.creditor.sort_code", Kind::Str),
    ("pay_by_bank.live.creditor.account_number", Kind::Str),
    ("pay_by_bank.live.creditor.name", Kind::Str),
    ("griffin.test.base_url", Kind::Str),
    ("griffin.test.api_key", Kind::Str),
    ("griffin.test.signing_key_id", Kind::Str),
    ("griffin.test.signing_key_path", Kind::Str),
    ("griffin.test.account_url", Kind::Str),
    ("griffin.live.base_url", Kind::Str),
    ("griffin.live.api_key", Kind::Str),
    ("griffin.live.signing_key_id", Kind::Str),
    ("griffin.live.signing_key_path", Kind::Str),
    ("griffin.live.account_url", Kind::Str),
    ("settlement.live_cutoff", Kind::Str),
    ("settlement.close_grace_minutes", Kind::Int),
    ("settlement.card_payout_deadline_hours", Kind::Int),
    ("settlement.bank_payout_deadline_minutes", Kind::Int),
    ("settlement.poll_seconds", Kind::Int),
    ("settlement.fees.card.percent_bps", Kind::Int),
    ("settlement.fees.card.fixed", Kind::Int),
    ("settlement.fees.visa.percent_bps", Kind::Int),
    ("settlement.fees.visa.fixed", Kind::Int),
    ("settlement.fees.mastercard.percent_bps", Kind::Int),
    ("settlement.fees.mastercard.fixed", Kind::Int),
    ("settlement.fees.amex.percent_bps", Kind::Int),
    ("settlement.fees.amex.fixed", Kind::Int),
];

/// The lists of tables among the settings (`[[pay_by_bank.test.banks]]`), and the string
/// fields each entry may have. No environment override: a list is set in the file.
const TABLE_LISTS: &[(&str, &[&str])] = &[
    ("pay_by_bank.test.banks", BANK_FIELDS),
    ("pay_by_bank.live.banks", BANK_FIELDS),
];

const BANK_FIELDS: &[&str] = &[
    "id",
    "name",
    "discovery_url",
    "client_id",
    "client_secret",
    "signing_key_id",
    "signing_key_path",
    "mtls_cert_path",
    "mtls_key_path",
];

/// The environment variable that overrides a setting.
pub fn env_name(path: &str) -> String {
    format!("CALMONY_{}", path.replace('.', "_").to_uppercase())
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("setting `{setting}` (from {origin}): {problem}")]
    Invalid {
        setting: String,
        origin: String,
        problem: String,
    },
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port of the HTTP API.
    pub listen: String,
    /// Where the daemon keeps its managed Redis data and sockets.
    pub data_dir: PathBuf,
    /// The address merchants' customers reach (hosted pages, PDF links).
    pub public_url: String,
    pub log: LogConfig,
    pub redis: RedisConfig,
    pub api: ApiConfig,
    pub http: HttpConfig,
    pub shutdown: ShutdownConfig,
    /// This daemon's name among several sharing one Redis (its stream consumer name). Empty:
    /// derived from the host name and listen port, so a restarted daemon finds its own work.
    pub instance_id: String,
    pub gateway: GatewayConfig,
    pub sandbox: SandboxConfig,
    pub webhooks: WebhooksConfig,
    pub secrets: SecretsConfig,
    pub clock: ClockConfig,
    pub billing: BillingConfig,
    pub pay_by_bank: PayByBankConfig,
    pub griffin: GriffinConfig,
    pub settlement: SettlementConfig,
}

/// Settlement: when the acquirer's daily card batch closes, what it charges, and how long a
/// payout may take to reach the Griffin account before it counts as failed.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SettlementConfig {
    /// Live mode's daily card cut-off, `HH:MM` UTC (test mode's is `sandbox.settlement_time`,
    /// when the sandbox acquirer settles).
    pub live_cutoff: String,
    /// How long after the cut-off a day's batch closes (its payout is created), giving the
    /// acquirer's run time to finish.
    pub close_grace_minutes: u64,
    /// A card batch's credit not seen by then fails its payout (acquirers take up to 3 days).
    pub card_payout_deadline_hours: u64,
    /// A Pay by Bank payment's credit (a Faster Payment) not seen by then fails its payout.
    pub bank_payout_deadline_minutes: u64,
    /// How often the settlement account's transactions are read (webhooks can be lost).
    pub poll_seconds: u64,
    pub fees: FeesConfig,
}

impl Default for SettlementConfig {
    fn default() -> Self {
        Self {
            live_cutoff: "22:00".into(),
            close_grace_minutes: 15,
            card_payout_deadline_hours: 72,
            bank_payout_deadline_minutes: 120,
            poll_seconds: 30,
            fees: FeesConfig::default(),
        }
    }
}

/// The acquirer's card fees per scheme; a scheme without its own rate pays `card`'s.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeesConfig {
    pub card: SchemeFee,
    pub visa: SchemeFee,
    pub mastercard: SchemeFee,
    pub amex: SchemeFee,
}

impl Default for FeesConfig {
    fn default() -> Self {
        Self {
            card: SchemeFee {
                percent_bps: Some(150),
                fixed: Some(20),
            },
            visa: SchemeFee::default(),
            mastercard: SchemeFee::default(),
            amex: SchemeFee::default(),
        }
    }
}

/// One scheme's rate: basis points (150 is 1.5 %) and pence per settled sale.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemeFee {
    pub percent_bps: Option<u32>,
    pub fixed: Option<i64>,
}

impl SettlementConfig {
    /// The fee schedule both the daemon's predictions and the sandbox acquirer use.
    pub fn card_fees(&self) -> calmony_protocol::settlement::CardFees {
        use calmony_protocol::settlement::FeeRate;
        let base = FeeRate {
            percent_bps: self.fees.card.percent_bps.unwrap_or(0),
            fixed: self.fees.card.fixed.unwrap_or(0),
        };
        let mut fees = calmony_protocol::settlement::CardFees {
            default: base,
            by_scheme: Default::default(),
        };
        for (scheme, f) in [
            ("visa", self.fees.visa),
            ("mastercard", self.fees.mastercard),
            ("amex", self.fees.amex),
        ] {
            if f.percent_bps.is_some() || f.fixed.is_some() {
                fees.by_scheme.insert(
                    scheme.into(),
                    FeeRate {
                        percent_bps: f.percent_bps.unwrap_or(base.percent_bps),
                        fixed: f.fixed.unwrap_or(base.fixed),
                    },
                );
            }
        }
        fees
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        if calmony_protocol::settlement::Cutoff::parse(&self.live_cutoff).is_none() {
            return Err(("settlement.live_cutoff", "must be HH:MM (UTC)".into()));
        }
        if self.poll_seconds == 0 {
            return Err(("settlement.poll_seconds", "must be at least 1".into()));
        }
        for (setting, f) in [
            ("settlement.fees.card", self.fees.card),
            ("settlement.fees.visa", self.fees.visa),
            ("settlement.fees.mastercard", self.fees.mastercard),
            ("settlement.fees.amex", self.fees.amex),
        ] {
            if f.percent_bps.is_some_and(|b| b > 10_000) {
                return Err((setting, "percent_bps must be at most 10000 (100 %)".into()));
            }
        }
        Ok(())
    }
}

/// Griffin, the bank holding the merchant's settlement account: how each mode reaches it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GriffinConfig {
    /// Test keys' Griffin. Unset: the built-in Griffin sandbox (see [`Config::test_griffin`]).
    pub test: GriffinConnection,
    /// Live keys' Griffin. No API key: settlement to Griffin is off in live mode.
    pub live: GriffinConnection,
}

/// One Griffin organization as the daemon reaches it.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GriffinConnection {
    /// The API's root, before `/v0` (`https://api.griffin.com`).
    pub base_url: String,
    /// `Authorization: GriffinAPIKey <api_key>`.
    pub api_key: String,
    /// The `keyid` Griffin issued for our request-signing key (RFC 9421, Ed25519).
    pub signing_key_id: String,
    /// Our Ed25519 signing key, PKCS#8 PEM. Required in live, where Griffin requires
    /// signed requests; in test mode empty means unsigned.
    pub signing_key_path: String,
    /// The settlement account (`/v0/bank/accounts/ba....`). Empty: the organization's first
    /// bank account, found by following links from the index.
    pub account_url: String,
}

impl std::fmt::Debug for GriffinConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GriffinConnection")
            .field("base_url", &self.base_url)
            .field("api_key", &"****")
            .field("signing_key_id", &self.signing_key_id)
            .field("signing_key_path", &self.signing_key_path)
            .field("account_url", &self.account_url)
            .finish()
    }
}

impl GriffinConfig {
    /// A live connection with an API key needs every setting, https and its key file.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        let live = &self.live;
        if live.api_key.is_empty() {
            return Ok(());
        }
        for (field, value) in [
            ("base_url", &live.base_url),
            ("signing_key_id", &live.signing_key_id),
            ("signing_key_path", &live.signing_key_path),
        ] {
            if value.trim().is_empty() {
                return Err((
                    "griffin.live",
                    format!("{field} is required with an api_key"),
                ));
            }
        }
        if !live.base_url.starts_with("https://") {
            return Err(("griffin.live.base_url", "must be https://".into()));
        }
        if !Path::new(&live.signing_key_path).is_file() {
            return Err((
                "griffin.live.signing_key_path",
                format!("{:?} is not a readable file", live.signing_key_path),
            ));
        }
        Ok(())
    }
}

/// Pay by Bank (Open Banking payment initiation): the banks each mode may send payers to and
/// the account they pay into.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PayByBankConfig {
    /// The largest payment by bank, in pence (£10,000 by default: what banks commonly allow
    /// for a single immediate payment without extra checks).
    pub limit: i64,
    /// Test keys' banks. No banks listed: the built-in sandbox's five test banks.
    pub test: BankMode,
    /// Live keys' banks. None listed: live Pay by Bank is off.
    pub live: BankMode,
}

impl Default for PayByBankConfig {
    fn default() -> Self {
        Self {
            limit: 1_000_000,
            test: BankMode::default(),
            live: BankMode::default(),
        }
    }
}

/// One mode's banks and the merchant's account payers pay into.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BankMode {
    pub banks: Vec<BankConnection>,
    pub creditor: CreditorAccount,
}

/// The account payments by bank are made to (a UK sort code and account number).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CreditorAccount {
    pub sort_code: String,
    pub account_number: String,
    /// The payee name the payer's bank shows (and may check against the account).
    pub name: String,
}

/// One bank (ASPSP) as registered with it: where it is and who we are there.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BankConnection {
    /// Our name for it (in URLs and stored payments): stable, lowercase.
    pub id: String,
    /// What the payer sees in the bank list.
    pub name: String,
    /// Its `/.well-known/openid-configuration`.
    pub discovery_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// The `kid` of our signing key in the Open Banking Directory.
    pub signing_key_id: String,
    /// Our PKCS#8 PEM signing key (request signatures and request objects).
    pub signing_key_path: String,
    /// Our transport certificate and key for mutual TLS (live banks require it).
    pub mtls_cert_path: String,
    pub mtls_key_path: String,
}

impl std::fmt::Debug for BankConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankConnection")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("discovery_url", &self.discovery_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"****")
            .field("signing_key_id", &self.signing_key_id)
            .field("signing_key_path", &self.signing_key_path)
            .field("mtls_cert_path", &self.mtls_cert_path)
            .field("mtls_key_path", &self.mtls_key_path)
            .finish()
    }
}

/// The built-in sandbox's test banks: `(id, name)`, served at `/sandbox/bank/<id>/`.
pub const SANDBOX_BANKS: [(&str, &str); 5] = [
    ("calmony-instant", "Calmony Instant Bank"),
    ("calmony-delayed", "Calmony Delayed Bank"),
    ("calmony-rejects", "Calmony Rejecting Bank"),
    ("calmony-late-reject", "Calmony Late-Reject Bank"),
    ("calmony-flaky", "Calmony Flaky Bank"),
];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingConfig {
    /// When the SubscriptionScheduler runs: a cron expression with seconds
    /// (`sec min hour day month weekday`), hourly by default. Test clocks also run it at once.
    pub schedule: String,
    /// Hours between payment retries of a failed renewal, comma-separated: three retries over
    /// three days by default.
    pub dunning_retry_hours: String,
    /// After the last retry fails: `past_due` (stay), `unpaid`, or `cancel`.
    pub final_action: String,
    /// How long a scheduler run's lease lasts without renewal (another daemon takes over a
    /// run whose daemon died after this).
    pub lease_seconds: u64,
    /// Subscriptions renewed at once in a run.
    pub concurrency: u64,
    /// Invoice numbers: this prefix and a six-digit sequence per project and mode.
    pub invoice_prefix: String,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            schedule: "0 0 * * * *".into(),
            dunning_retry_hours: "24,24,24".into(),
            final_action: "past_due".into(),
            lease_seconds: 30,
            concurrency: 128,
            invoice_prefix: "CP-".into(),
        }
    }
}

/// Secrets at rest (webhook signing secrets) are sealed under key-encryption keys kept in files
/// outside Redis: `kek-<id>.key`, 32 random bytes (raw or 64 hex digits), the greatest id
/// sealing and every one opening.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// The directory of the key files. Empty: systemd's `$CREDENTIALS_DIRECTORY` when it holds
    /// one, else `<data_dir>/keys` (the first start creates a key there, mode 0600).
    pub key_dir: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Seconds to wait for an endpoint's answer; no answer in time is a failure.
    pub timeout_seconds: u64,
    /// Seconds between tries after a failure, comma-separated; each gets ±20% jitter. The
    /// default spans about three days.
    pub retry_schedule: String,
    /// An endpoint failing continuously this long is disabled.
    pub disable_after_hours: u64,
    /// How long a rolled secret keeps signing beside the new one.
    pub secret_overlap_hours: u64,
    /// Deliveries in flight at once per daemon.
    pub concurrency: u64,
    /// Which endpoints may point at local addresses (loopback, private, link-local, ...):
    /// `loopback` (the default: test mode may reach this machine, where a developer's
    /// receiver listens, and no other local address), `test` (test mode may reach any, a
    /// private network's servers included) or `none`. Live endpoints never may: `live` and
    /// `all` are refused.
    pub local_targets: String,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            timeout_seconds: 10,
            retry_schedule: "60,300,1800,3600,7200,14400,28800,43200,86400,86400".into(),
            disable_after_hours: 120,
            secret_overlap_hours: 24,
            concurrency: 256,
            local_targets: "loopback".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ClockConfig {
    /// Let `calmony-payd clock advance` move this daemon's clock forward (tests and
    /// rehearsals of retries and renewals). Never on in production.
    pub controllable: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Longest wait for one gateway answer; after it the payment is resolved by QUERY.
    pub timeout_seconds: u64,
    /// How long a payment may stay `processing` in another daemon's hands before this one
    /// takes it over (must exceed `timeout_seconds`).
    pub recovery_after_seconds: u64,
    /// The merchant account test keys use. Empty `url`: the built-in sandbox gateway.
    pub test: MerchantAccount,
    /// The merchant account live keys use. Live payments are refused until it is set.
    pub live: MerchantAccount,
}

/// A Cardstream merchant account: where to send, who we are, and the signing secret.
#[derive(Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MerchantAccount {
    pub url: String,
    pub merchant_id: String,
    pub secret: String,
}

impl std::fmt::Debug for MerchantAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerchantAccount")
            .field("url", &self.url)
            .field("merchant_id", &self.merchant_id)
            .field("secret", &"****")
            .finish()
    }
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Serve the Cardstream simulator under /sandbox/ (test mode only ever talks to it).
    pub enabled: bool,
    /// Daily settlement run of the simulator, `HH:MM` UTC.
    pub settlement_time: String,
    /// The bearer token of the simulator's control routes (faults, settlement, the whole
    /// ledger): they act on every project's test mode, so they are off while it is empty. A
    /// project's test key still reads that project's own ledger.
    pub operator_token: String,
    /// The client registered at the sandbox banks (Pay by Bank's test banks). Public test
    /// values by default: the sandbox never moves real money.
    pub bank_client_id: String,
    pub bank_client_secret: String,
    /// The TPP public key (SPKI PEM) the sandbox banks check signatures with. Empty: the
    /// committed test key (`config/sandbox/open-banking/tpp-public.pem`).
    pub bank_tpp_public_key_path: String,
    /// How long a consent waits for the payer before it reads as `Rejected`.
    pub bank_consent_timeout_seconds: u64,
    /// How long the delayed and late-rejecting test banks take to finish a payment.
    pub bank_settle_delay_ms: u64,
    /// How long the Griffin sandbox keeps a submitted payment `processing`.
    pub griffin_payment_delay_ms: u64,
    /// The client public key (SPKI PEM, Ed25519) the Griffin sandbox checks request
    /// signatures with. Empty: requests need no signature, as in Griffin's own sandbox.
    pub griffin_client_public_key_path: String,
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("enabled", &self.enabled)
            .field("settlement_time", &self.settlement_time)
            .field(
                "operator_token",
                &if self.operator_token.is_empty() {
                    ""
                } else {
                    "****"
                },
            )
            .field("bank_client_id", &self.bank_client_id)
            .field("bank_tpp_public_key_path", &self.bank_tpp_public_key_path)
            .field(
                "bank_consent_timeout_seconds",
                &self.bank_consent_timeout_seconds,
            )
            .field("bank_settle_delay_ms", &self.bank_settle_delay_ms)
            .field("griffin_payment_delay_ms", &self.griffin_payment_delay_ms)
            .field(
                "griffin_client_public_key_path",
                &self.griffin_client_public_key_path,
            )
            .finish_non_exhaustive()
    }
}

/// The Cardstream guide's published test-merchant signature secret. Anyone can sign with it,
/// so the built-in sandbox never accepts it: each installation makes its own secret at first
/// start (see `gateway.test.secret`). Cardstream's own test gateway may still use it.
pub const PUBLISHED_DEMO_SECRET: &str = "Circle4Take40Idea";

/// The shortest `sandbox.operator_token` accepted: a guessable token would open the control
/// routes to anyone.
pub const MIN_OPERATOR_TOKEN: usize = 32;

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            timeout_seconds: 30,
            recovery_after_seconds: 45,
            // No secret: with the built-in sandbox, the installation's own (made at first
            // start and kept in Redis); see `Config::needs_installation_test_secret`.
            test: MerchantAccount {
                url: String::new(),
                merchant_id: "100001".into(),
                secret: String::new(),
            },
            live: MerchantAccount {
                url: "https://gateway.cardstream.com/direct/".into(),
                merchant_id: String::new(),
                secret: String::new(),
            },
        }
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            settlement_time: "22:00".into(),
            operator_token: String::new(),
            bank_client_id: "calmony-sandbox-tpp".into(),
            bank_client_secret: "sandbox-client-secret-not-for-live".into(),
            bank_tpp_public_key_path: String::new(),
            bank_consent_timeout_seconds: 600,
            bank_settle_delay_ms: 3000,
            griffin_payment_delay_ms: 2000,
            griffin_client_public_key_path: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` for people, `json` for log collectors.
    pub format: String,
    /// A tracing filter, e.g. `info` or `calmony=debug,info`.
    pub level: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:port/db` or `redis+unix:///path`. Empty: the daemon runs its own.
    pub url: String,
    /// The `redis-server` binary for the managed Redis.
    pub server_binary: String,
    /// The managed Redis's AOF fsync policy: `always`, `everysec` or `no`.
    pub appendfsync: String,
    /// How long one connection attempt may take.
    pub connect_timeout_seconds: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Requests per second allowed per API key (a token bucket with one second of burst).
    pub rate_limit_per_second: u64,
    /// Largest request body accepted.
    pub max_body_bytes: u64,
    /// How long an idempotency key's answer is kept (Stripe: at least 24 h).
    pub idempotency_ttl_hours: u64,
    /// How long an in-flight idempotency key blocks a retry if its daemon died mid-request.
    pub idempotency_lock_seconds: u64,
    /// On first start with an empty store, create project `default` and log one test key.
    pub bootstrap_test_key: bool,
}

/// `[http]`: how long a client may take and how many may be connected at once, so that slow
/// or idle clients cannot hold the daemon's connections (and their memory) without end.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Seconds a client may take to send a request's headers, counted from its first byte or,
    /// on a kept-alive connection, from the previous answer (so it is the idle timeout too);
    /// past it the connection is closed. 30 s, hyper's own default, leaves pooled clients'
    /// idle connections as they were.
    pub header_read_timeout_seconds: u64,
    /// Seconds a request's body may take to arrive in full; past it the request is answered
    /// 408 and its connection closed. Counted after the key check on `/v1`: a made-up key is
    /// refused before any of its body is read.
    pub body_read_timeout_seconds: u64,
    /// Connections open at once (each holds a file descriptor and buffers); one more is
    /// answered 503 with `Stripe-Should-Retry: true` and closed. Keep it under the process's
    /// file limit (`LimitNOFILE`).
    pub max_connections: u64,
    /// The reverse proxies (IP addresses, comma-separated) whose `X-Forwarded-For` names the
    /// client: the dashboard's sign-in throttle and audit log then see the client's address,
    /// not the proxy's. Empty (the default): the connection's address is the client's.
    pub trusted_proxies: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_seconds: 30,
            body_read_timeout_seconds: 30,
            max_connections: 1024,
            trusted_proxies: String::new(),
        }
    }
}

impl HttpConfig {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(1..=300).contains(&self.header_read_timeout_seconds) {
            return Err((
                "http.header_read_timeout_seconds",
                "must be between 1 and 300".into(),
            ));
        }
        if !(1..=3600).contains(&self.body_read_timeout_seconds) {
            return Err((
                "http.body_read_timeout_seconds",
                "must be between 1 and 3600".into(),
            ));
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err((
                "http.max_connections",
                "must be between 1 and 1000000".into(),
            ));
        }
        if let Some(bad) = self
            .trusted_proxy_list()
            .iter()
            .find_map(|p| p.as_ref().err())
        {
            return Err((
                "http.trusted_proxies",
                format!("{bad:?} is not an IP address (give addresses, comma-separated)"),
            ));
        }
        Ok(())
    }

    /// [`HttpConfig::trusted_proxies`] read as addresses (each entry, or what it was).
    pub fn trusted_proxy_list(&self) -> Vec<Result<std::net::IpAddr, String>> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.parse().map_err(|_| p.to_string()))
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// How long SIGTERM waits for in-flight requests before closing them.
    pub grace_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:4242".into(),
            data_dir: PathBuf::from(".calmony"),
            public_url: String::new(),
            log: LogConfig::default(),
            redis: RedisConfig::default(),
            api: ApiConfig::default(),
            http: HttpConfig::default(),
            shutdown: ShutdownConfig::default(),
            instance_id: String::new(),
            gateway: GatewayConfig::default(),
            sandbox: SandboxConfig::default(),
            webhooks: WebhooksConfig::default(),
            secrets: SecretsConfig::default(),
            clock: ClockConfig::default(),
            billing: BillingConfig::default(),
            pay_by_bank: PayByBankConfig::default(),
            griffin: GriffinConfig::default(),
            settlement: SettlementConfig::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            server_binary: "redis-server".into(),
            appendfsync: "everysec".into(),
            connect_timeout_seconds: 2,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            rate_limit_per_second: 100,
            max_body_bytes: 1024 * 1024,
            idempotency_ttl_hours: 24,
            idempotency_lock_seconds: 60,
            bootstrap_test_key: true,
        }
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self { grace_seconds: 30 }
    }
}

impl Config {
    /// Load from an optional file and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(file, |name| std::env::var(name).ok())
    }

    /// Load with an explicit environment lookup (tests pass their own).
    pub fn load_with(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let (mut table, origin_file) = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                let table: toml::Table =
                    toml::from_str(&text).map_err(|e| ConfigError::Syntax {
                        path: path.to_path_buf(),
                        message: e.message().to_string(),
                    })?;
                (table, format!("config file {}", path.display()))
            }
            None => (toml::Table::new(), "defaults".to_string()),
        };
        check_known(&table, "", &origin_file)?;
        let mut from_env: Vec<(&str, String)> = Vec::new();
        for (path, kind) in SETTINGS {
            let name = env_name(path);
            if let Some(raw) = env(&name) {
                let value = typed(&raw, *kind).map_err(|problem| ConfigError::Invalid {
                    setting: path.to_string(),
                    origin: format!("environment variable {name}"),
                    problem,
                })?;
                set_path(&mut table, path, value);
                from_env.push((path, name));
            }
        }
        let origin_of = |setting: &str| -> String {
            from_env
                .iter()
                .find(|(p, _)| *p == setting)
                .map(|(_, n)| format!("environment variable {n}"))
                .unwrap_or_else(|| origin_file.clone())
        };
        // Settings given override the defaults one by one, at any depth: setting only
        // `gateway.test.url` keeps the default test merchant id and secret.
        let mut merged = match toml::Value::try_from(Config::default()) {
            Ok(toml::Value::Table(t)) => t,
            _ => toml::Table::new(),
        };
        merge(&mut merged, table);
        let config: Config =
            toml::Value::Table(merged)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    let problem = e.message().to_string();
                    let setting = setting_in_message(&problem).unwrap_or_else(|| "config".into());
                    ConfigError::Invalid {
                        origin: origin_of(&setting),
                        setting,
                        problem,
                    }
                })?;
        config
            .validate()
            .map_err(|(setting, problem)| ConfigError::Invalid {
                origin: origin_of(setting),
                setting: setting.to_string(),
                problem,
            })?;
        Ok(config)
    }

    /// The listen address, already checked by [`Config::load`].
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 4242)))
    }

    /// The webhook retry delays, already checked by [`Config::load`].
    pub fn retry_schedule(&self) -> Vec<u64> {
        parse_schedule(&self.webhooks.retry_schedule).unwrap_or_default()
    }

    /// Hours between dunning retries, already checked by [`Config::load`].
    pub fn dunning_hours(&self) -> Vec<u64> {
        parse_schedule(&self.billing.dunning_retry_hours).unwrap_or_default()
    }

    /// This daemon's consumer name: configured, or `<hostname>:<listen port>`.
    pub fn instance_name(&self) -> String {
        if !self.instance_id.is_empty() {
            return self.instance_id.clone();
        }
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        format!("{host}:{}", self.listen_addr().port())
    }

    /// The settlement time as (hour, minute), already checked by [`Config::load`].
    pub fn settlement_at(&self) -> (u8, u8) {
        parse_hh_mm(&self.sandbox.settlement_time).unwrap_or((22, 0))
    }

    /// A mode's daily card cut-off: test mode's acquirer is the sandbox, which settles at
    /// `sandbox.settlement_time`; live mode's is `settlement.live_cutoff`.
    pub fn card_cutoff(&self, live: bool) -> calmony_protocol::settlement::Cutoff {
        use calmony_protocol::settlement::Cutoff;
        if live {
            Cutoff::parse(&self.settlement.live_cutoff).unwrap_or(Cutoff::new(22, 0))
        } else {
            let (h, m) = self.settlement_at();
            Cutoff::new(h, m)
        }
    }

    /// The URL of the gateway for test keys: configured, or the built-in sandbox.
    pub fn test_gateway_url(&self) -> String {
        if self.gateway.test.url.is_empty() {
            format!("{}/sandbox/direct/", self.public_base())
        } else {
            self.gateway.test.url.clone()
        }
    }

    /// Test mode's banks: configured, or the built-in sandbox's five, reached over HTTP at
    /// `public_url/sandbox/bank/<id>/` with the sandbox's public test client and keys (empty
    /// key paths: the committed test keys, which the client knows).
    pub fn test_banks(&self) -> Vec<BankConnection> {
        if !self.pay_by_bank.test.banks.is_empty() {
            return self.pay_by_bank.test.banks.clone();
        }
        let base = self.public_base();
        SANDBOX_BANKS
            .iter()
            .map(|(id, name)| BankConnection {
                id: (*id).to_owned(),
                name: (*name).to_owned(),
                discovery_url: format!("{base}/sandbox/bank/{id}/.well-known/openid-configuration"),
                client_id: self.sandbox.bank_client_id.clone(),
                client_secret: self.sandbox.bank_client_secret.clone(),
                signing_key_id: "calmony-sandbox-tpp".to_owned(),
                ..BankConnection::default()
            })
            .collect()
    }

    /// Test mode's Griffin: as configured, an empty base URL filled with the built-in sandbox
    /// at `public_url/sandbox/griffin` (unsigned requests). An empty API key is filled at start
    /// with the installation's own sandbox key (the daemon's `runtime::griffin_sandbox_key`).
    pub fn test_griffin(&self) -> GriffinConnection {
        let mut c = self.griffin.test.clone();
        if c.base_url.is_empty() {
            c.base_url = format!("{}/sandbox/griffin", self.public_base());
        }
        c
    }

    /// Test mode's creditor account: configured, or a sandbox test account.
    pub fn test_creditor(&self) -> CreditorAccount {
        let c = &self.pay_by_bank.test.creditor;
        if c.sort_code.is_empty() && c.account_number.is_empty() {
            CreditorAccount {
                sort_code: "04-00-04".to_owned(),
                account_number: "10000001".to_owned(),
                name: if c.name.is_empty() {
                    "Calmony Sandbox Merchant".to_owned()
                } else {
                    c.name.clone()
                },
            }
        } else {
            c.clone()
        }
    }

    /// Whether test mode charges the built-in sandbox with no secret configured: the daemon
    /// then uses the installation's own random secret, made at first start.
    pub fn needs_installation_test_secret(&self) -> bool {
        self.gateway.test.url.is_empty() && self.gateway.test.secret.is_empty()
    }

    /// The public base URL: configured, or derived from the listen address.
    pub fn public_base(&self) -> String {
        if self.public_url.is_empty() {
            format!("http://{}", self.listen)
        } else {
            self.public_url.trim_end_matches('/').to_string()
        }
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.listen.parse::<SocketAddr>().is_err() {
            return Err((
                "listen",
                format!(
                    "{:?} is not an address:port such as 127.0.0.1:4242",
                    self.listen
                ),
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(("data_dir", "must not be empty".into()));
        }
        let scheme_ok = ["http://", "https://"]
            .iter()
            .any(|p| self.public_url.starts_with(p));
        if !self.public_url.is_empty() && !scheme_ok {
            return Err(("public_url", "must start with http:// or https://".into()));
        }
        if !["text", "json"].contains(&self.log.format.as_str()) {
            return Err((
                "log.format",
                format!("{:?} is not `text` or `json`", self.log.format),
            ));
        }
        if !self.redis.url.is_empty()
            && !["redis://", "rediss://", "redis+unix://", "unix://"]
                .iter()
                .any(|s| self.redis.url.starts_with(s))
        {
            return Err((
                "redis.url",
                format!(
                    "{:?} is not a redis:// or redis+unix:// URL",
                    self.redis.url
                ),
            ));
        }
        if !["always", "everysec", "no"].contains(&self.redis.appendfsync.as_str()) {
            return Err((
                "redis.appendfsync",
                format!(
                    "{:?} is not `always`, `everysec` or `no`",
                    self.redis.appendfsync
                ),
            ));
        }
        if !(1..=60).contains(&self.redis.connect_timeout_seconds) {
            return Err((
                "redis.connect_timeout_seconds",
                "must be between 1 and 60".into(),
            ));
        }
        self.http.validate()?;
        self.pay_by_bank.validate()?;
        self.griffin.validate()?;
        self.settlement.validate()?;
        if !(1..=1_000_000).contains(&self.api.rate_limit_per_second) {
            return Err((
                "api.rate_limit_per_second",
                "must be between 1 and 1000000".into(),
            ));
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.api.max_body_bytes) {
            return Err((
                "api.max_body_bytes",
                "must be between 1024 and 67108864".into(),
            ));
        }
        if !(24..=24 * 30).contains(&self.api.idempotency_ttl_hours) {
            return Err((
                "api.idempotency_ttl_hours",
                "must be between 24 and 720 (Stripe keeps keys at least 24 h)".into(),
            ));
        }
        if !(1..=3600).contains(&self.api.idempotency_lock_seconds) {
            return Err((
                "api.idempotency_lock_seconds",
                "must be between 1 and 3600".into(),
            ));
        }
        if !(1..=300).contains(&self.gateway.timeout_seconds) {
            return Err((
                "gateway.timeout_seconds",
                "must be between 1 and 300".into(),
            ));
        }
        if self.gateway.recovery_after_seconds <= self.gateway.timeout_seconds {
            return Err((
                "gateway.recovery_after_seconds",
                "must be longer than gateway.timeout_seconds".into(),
            ));
        }
        for (name, acct) in [
            ("gateway.test", &self.gateway.test),
            ("gateway.live", &self.gateway.live),
        ] {
            let scheme_ok = ["http://", "https://"]
                .iter()
                .any(|p| acct.url.starts_with(p));
            if !acct.url.is_empty() && !scheme_ok {
                return Err((
                    if name == "gateway.test" {
                        "gateway.test.url"
                    } else {
                        "gateway.live.url"
                    },
                    "must start with https:// (or http:// for a local test gateway)".into(),
                ));
            }
        }
        if self.gateway.test.url.is_empty() && self.gateway.test.secret == PUBLISHED_DEMO_SECRET {
            return Err((
                "gateway.test.secret",
                "is the Cardstream guide's published demo secret, which anyone can sign with: \
                 remove it and the daemon makes this installation its own at first start"
                    .into(),
            ));
        }
        if !self.gateway.test.url.is_empty() && self.gateway.test.secret.is_empty() {
            return Err((
                "gateway.test.secret",
                "is required when gateway.test.url is set".into(),
            ));
        }
        if !self.sandbox.operator_token.is_empty()
            && (self.sandbox.operator_token.len() < MIN_OPERATOR_TOKEN
                || !self
                    .sandbox
                    .operator_token
                    .bytes()
                    .all(|b| b.is_ascii_graphic()))
        {
            return Err((
                "sandbox.operator_token",
                format!(
                    "must be at least {MIN_OPERATOR_TOKEN} printable characters without spaces \
                     (e.g. `openssl rand -hex 32`), or empty to turn the control routes off"
                ),
            ));
        }
        if !self.gateway.live.merchant_id.is_empty() && self.gateway.live.secret.is_empty() {
            return Err((
                "gateway.live.secret",
                "is required when gateway.live.merchant_id is set".into(),
            ));
        }
        if !self.gateway.live.merchant_id.is_empty()
            && self.gateway.live.merchant_id == self.gateway.test.merchant_id
            && (self.gateway.live.url == self.gateway.test.url || self.gateway.test.url.is_empty())
        {
            return Err((
                "gateway.test.merchant_id",
                "must not be the live merchant account: test keys never reach a live account"
                    .into(),
            ));
        }
        if !(1..=120).contains(&self.webhooks.timeout_seconds) {
            return Err((
                "webhooks.timeout_seconds",
                "must be between 1 and 120".into(),
            ));
        }
        if parse_schedule(&self.webhooks.retry_schedule).is_none() {
            return Err((
                "webhooks.retry_schedule",
                format!(
                    "{:?} is not a comma-separated list of 1 to 50 delays in seconds",
                    self.webhooks.retry_schedule
                ),
            ));
        }
        match self.webhooks.local_targets.as_str() {
            "loopback" | "test" | "none" => {}
            "live" | "all" => {
                return Err((
                    "webhooks.local_targets",
                    "live endpoints can never reach local addresses: use `loopback`, `test` or `none`".into(),
                ));
            }
            other => {
                return Err((
                    "webhooks.local_targets",
                    format!("{other:?} is not `loopback`, `test` or `none`"),
                ));
            }
        }
        if !(1..=4096).contains(&self.webhooks.concurrency) {
            return Err(("webhooks.concurrency", "must be between 1 and 4096".into()));
        }
        if self.webhooks.secret_overlap_hours > 24 * 7 {
            return Err((
                "webhooks.secret_overlap_hours",
                "must be at most 168".into(),
            ));
        }
        if self.billing.schedule.split_whitespace().count() < 6
            || <cron::Schedule as std::str::FromStr>::from_str(&self.billing.schedule).is_err()
        {
            return Err((
                "billing.schedule",
                format!(
                    "{:?} is not a cron expression with seconds (sec min hour day month weekday)",
                    self.billing.schedule
                ),
            ));
        }
        if parse_schedule(&self.billing.dunning_retry_hours).is_none() {
            return Err((
                "billing.dunning_retry_hours",
                "must be a comma-separated list of 1 to 50 hours".into(),
            ));
        }
        if !["past_due", "unpaid", "cancel"].contains(&self.billing.final_action.as_str()) {
            return Err((
                "billing.final_action",
                format!(
                    "{:?} is not past_due, unpaid or cancel",
                    self.billing.final_action
                ),
            ));
        }
        if !(2..=3600).contains(&self.billing.lease_seconds) {
            return Err(("billing.lease_seconds", "must be between 2 and 3600".into()));
        }
        if !(1..=4096).contains(&self.billing.concurrency) {
            return Err(("billing.concurrency", "must be between 1 and 4096".into()));
        }
        if self.billing.invoice_prefix.len() > 10
            || !self
                .billing
                .invoice_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err((
                "billing.invoice_prefix",
                "must be at most 10 letters, digits or dashes".into(),
            ));
        }
        if parse_hh_mm(&self.sandbox.settlement_time).is_none() {
            return Err((
                "sandbox.settlement_time",
                format!("{:?} is not HH:MM", self.sandbox.settlement_time),
            ));
        }
        if self.shutdown.grace_seconds > 3600 {
            return Err(("shutdown.grace_seconds", "must be at most 3600".into()));
        }
        Ok(())
    }
}

/// Overlay `over` onto `base`, table by table.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn parse_schedule(s: &str) -> Option<Vec<u64>> {
    let delays: Option<Vec<u64>> = s
        .split(',')
        .map(|d| d.trim().parse::<u64>().ok().filter(|d| *d > 0))
        .collect();
    delays.filter(|d| (1..=50).contains(&d.len()))
}

fn parse_hh_mm(s: &str) -> Option<(u8, u8)> {
    let (h, m) = s.split_once(':')?;
    let (h, m) = (h.parse::<u8>().ok()?, m.parse::<u8>().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

fn typed(raw: &str, kind: Kind) -> Result<toml::Value, String> {
    match kind {
        Kind::Str => Ok(toml::Value::String(raw.to_string())),
        Kind::Int => raw
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|i| *i >= 0)
            .map(toml::Value::Integer)
            .ok_or_else(|| format!("{raw:?} is not {}", kind.describe())),
        Kind::Bool => match raw.trim() {
            "true" | "1" | "yes" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("{raw:?} is not true or false")),
        },
    }
}

fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    match path.split_once('.') {
        None => {
            table.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let child = table
                .entry(head.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !child.is_table() {
                *child = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(t) = child {
                set_path(t, rest, value);
            }
        }
    }
}

impl PayByBankConfig {
    /// Live banks need every setting (mutual TLS included) and their files; any bank needs an
    /// id, a discovery URL and a client; a mode with banks needs a whole creditor account.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.limit <= 0 {
            return Err(("pay_by_bank.limit", "must be at least 1 (pence)".into()));
        }
        for (setting, creditor_setting, mode, live) in [
            (
                "pay_by_bank.test.banks",
                "pay_by_bank.test.creditor",
                &self.test,
                false,
            ),
            (
                "pay_by_bank.live.banks",
                "pay_by_bank.live.creditor",
                &self.live,
                true,
            ),
        ] {
            let mut seen = std::collections::BTreeSet::new();
            for (i, bank) in mode.banks.iter().enumerate() {
                let named = if bank.id.is_empty() {
                    format!("entry {}", i + 1)
                } else {
                    format!("bank {:?}", bank.id)
                };
                let required: Vec<(&str, &str)> = if live {
                    vec![
                        ("id", &bank.id),
                        ("name", &bank.name),
                        ("discovery_url", &bank.discovery_url),
                        ("client_id", &bank.client_id),
                        ("client_secret", &bank.client_secret),
                        ("signing_key_id", &bank.signing_key_id),
                        ("signing_key_path", &bank.signing_key_path),
                        ("mtls_cert_path", &bank.mtls_cert_path),
                        ("mtls_key_path", &bank.mtls_key_path),
                    ]
                } else {
                    vec![
                        ("id", &bank.id),
                        ("discovery_url", &bank.discovery_url),
                        ("client_id", &bank.client_id),
                    ]
                };
                if let Some((field, _)) = required.iter().find(|(_, v)| v.trim().is_empty()) {
                    return Err((setting, format!("{named}: {field} is required")));
                }
                if !seen.insert(bank.id.as_str()) {
                    return Err((setting, format!("{named} is listed twice")));
                }
                if live && !bank.discovery_url.starts_with("https://") {
                    return Err((setting, format!("{named}: discovery_url must be https://")));
                }
                for (field, path) in [
                    ("signing_key_path", &bank.signing_key_path),
                    ("mtls_cert_path", &bank.mtls_cert_path),
                    ("mtls_key_path", &bank.mtls_key_path),
                ] {
                    if !path.is_empty() && !Path::new(path).is_file() {
                        return Err((
                            setting,
                            format!("{named}: {field} {path:?} is not a readable file"),
                        ));
                    }
                }
            }
            let c = &mode.creditor;
            let any = !(c.sort_code.is_empty() && c.account_number.is_empty() && c.name.is_empty());
            if (live && !mode.banks.is_empty()) || any {
                if c.sort_code.chars().filter(char::is_ascii_digit).count() != 6
                    || !c
                        .sort_code
                        .chars()
                        .all(|ch| ch.is_ascii_digit() || ch == '-')
                {
                    return Err((
                        creditor_setting,
                        "sort_code must be 6 digits (dashes allowed)".into(),
                    ));
                }
                if c.account_number.len() != 8
                    || !c.account_number.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err((creditor_setting, "account_number must be 8 digits".into()));
                }
                if c.name.trim().is_empty() {
                    return Err((creditor_setting, "name is required".into()));
                }
            }
        }
        Ok(())
    }
}

/// Refuse keys the daemon does not know, naming the full path (a typo must not be ignored).
fn check_known(table: &toml::Table, prefix: &str, origin: &str) -> Result<(), ConfigError> {
    for (k, v) in table {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let is_section = SETTINGS
            .iter()
            .any(|(p, _)| p.starts_with(&format!("{path}.")));
        let kind = SETTINGS.iter().find(|(p, _)| *p == path).map(|(_, k)| *k);
        let list = TABLE_LISTS
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, f)| *f);
        match (v, kind) {
            (toml::Value::Array(items), None) if list.is_some() => {
                let fields = list.unwrap_or_default();
                for item in items {
                    let toml::Value::Table(entry) = item else {
                        return Err(ConfigError::Invalid {
                            setting: path,
                            origin: origin.to_string(),
                            problem: "must be a list of tables ([[...]])".into(),
                        });
                    };
                    for (field, value) in entry {
                        if !fields.contains(&field.as_str()) || !value.is_str() {
                            return Err(ConfigError::Invalid {
                                setting: format!("{path}.{field}"),
                                origin: origin.to_string(),
                                problem: "unknown setting, or not a string".into(),
                            });
                        }
                    }
                }
            }
            (toml::Value::Table(t), None) if is_section => check_known(t, &path, origin)?,
            (toml::Value::String(_), Some(Kind::Str))
            | (toml::Value::Boolean(_), Some(Kind::Bool)) => {}
            (toml::Value::Integer(i), Some(Kind::Int)) if *i >= 0 => {}
            (_, Some(kind)) => {
                return Err(ConfigError::Invalid {
                    setting: path,
                    origin: origin.to_string(),
                    problem: format!("{v} is not {}", kind.describe()),
                });
            }
            _ => {
                return Err(ConfigError::Invalid {
                    setting: path,
                    origin: origin.to_string(),
                    problem: "unknown setting".into(),
                });
            }
        }
    }
    Ok(())
}

/// serde's messages name the field as "`field`"; map that back to a setting path.
fn setting_in_message(msg: &str) -> Option<String> {
    SETTINGS
        .iter()
        .map(|(p, _)| *p)
        .find(|p| {
            let leaf = p.rsplit('.').next().unwrap_or(p);
            msg.contains(&format!("`{leaf}`"))
        })
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn defaults_run_locally() {
        let c = Config::load_with(None, env(&[])).expect("defaults are valid");
        assert_eq!(c.listen, "127.0.0.1:4242");
        assert_eq!(c.api.rate_limit_per_second, 100);
        assert!(c.redis.url.is_empty());
    }

    #[test]
    fn environment_overrides_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\n[api]\nrate_limit_per_second = 5\n",
        )
        .expect("write");
        let c = Config::load_with(
            Some(&path),
            env(&[
                ("CALMONY_LISTEN", "0.0.0.0:9"),
                ("CALMONY_REDIS_URL", "redis://x:1"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.listen, "0.0.0.0:9");
        assert_eq!(c.redis.url, "redis://x:1");
        assert_eq!(c.api.rate_limit_per_second, 5);
    }

    #[test]
    fn a_nested_setting_keeps_its_siblings_defaults() {
        let c = Config::load_with(
            None,
            env(&[
                ("CALMONY_GATEWAY_TEST_URL", "http://gw:1/direct/"),
                ("CALMONY_GATEWAY_TEST_SECRET", "s3cret"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.gateway.test.url, "http://gw:1/direct/");
        assert_eq!(c.gateway.test.merchant_id, "100001");
        assert_eq!(c.gateway.test.secret, "s3cret");
        assert_eq!(c.gateway.live.url, "https://gateway.cardstream.com/direct/");
    }

    #[test]
    fn pay_by_bank_defaults_to_the_sandbox_banks_and_live_banks_need_every_setting() {
        let c = Config::load_with(None, env(&[])).expect("defaults");
        assert_eq!(c.pay_by_bank.limit, 1_000_000);
        let banks = c.test_banks();
        assert_eq!(banks.len(), 5);
        assert_eq!(
            banks[0].discovery_url,
            "http://127.0.0.1:4242/sandbox/bank/calmony-instant/.well-known/openid-configuration"
        );
        assert!(
            c.pay_by_bank.live.banks.is_empty(),
            "live Pay by Bank is off"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        let cases = [
            (
                "[[pay_by_bank.live.banks]]\nid = \"b\"\nname = \"B\"\ndiscovery_url = \"https://b.example/\"\nclient_id = \"c\"\nclient_secret = \"s\"\nsigning_key_id = \"k\"\nsigning_key_path = \"/nonexistent\"\n",
                "mtls_cert_path is required",
            ),
            (
                "[[pay_by_bank.live.banks]]\nid = \"b\"\nsecret = \"s\"\n",
                "pay_by_bank.live.banks.secret",
            ),
            (
                "[pay_by_bank.test.creditor]\nsort_code = \"04-00-04\"\naccount_number = \"123\"\nname = \"M\"\n",
                "account_number must be 8 digits",
            ),
            ("[pay_by_bank]\nlimit = 0\n", "pay_by_bank.limit"),
        ];
        for (text, named) in cases {
            std::fs::write(&file, text).expect("write");
            let e = Config::load_with(Some(&file), env(&[])).expect_err("refused");
            assert!(e.to_string().contains(named), "{text}: {e}");
        }
        std::fs::write(&file, "[[pay_by_bank.test.banks]]\nid = \"x\"\ndiscovery_url = \"http://x/\"\nclient_id = \"c\"\n").expect("write");
        let c = Config::load_with(Some(&file), env(&[])).expect("a test bank");
        assert_eq!(c.test_banks().len(), 1);
    }

    #[test]
    fn the_sandbox_never_takes_the_published_secret_and_its_controls_need_a_real_token() {
        let c = Config::load_with(None, env(&[])).expect("defaults");
        assert!(c.needs_installation_test_secret());
        assert!(c.sandbox.operator_token.is_empty(), "control routes off");
        let spaced = "with space ".repeat(4);
        let refused = [
            (
                ("CALMONY_GATEWAY_TEST_SECRET", PUBLISHED_DEMO_SECRET),
                "gateway.test.secret",
            ),
            (
                ("CALMONY_GATEWAY_TEST_URL", "https://gw.example/direct/"),
                "gateway.test.secret",
            ),
            (
                ("CALMONY_SANDBOX_OPERATOR_TOKEN", "short"),
                "sandbox.operator_token",
            ),
            (
                ("CALMONY_SANDBOX_OPERATOR_TOKEN", spaced.as_str()),
                "sandbox.operator_token",
            ),
        ];
        for (pair, named) in refused {
            let e = Config::load_with(None, env(&[pair])).expect_err("refused");
            assert!(e.to_string().contains(named), "{pair:?}: {e}");
        }
        // Cardstream's own test gateway may use its published secret.
        let c = Config::load_with(
            None,
            env(&[
                ("CALMONY_GATEWAY_TEST_URL", "https://gw.example/direct/"),
                ("CALMONY_GATEWAY_TEST_SECRET", PUBLISHED_DEMO_SECRET),
                (
                    "CALMONY_SANDBOX_OPERATOR_TOKEN",
                    &"t".repeat(MIN_OPERATOR_TOKEN),
                ),
            ]),
        )
        .expect("valid");
        assert!(!c.needs_installation_test_secret());
        assert!(
            !format!("{:?}", c.sandbox).contains("ttt"),
            "the token is masked"
        );
    }

    #[test]
    fn http_limits_default_and_refuse_zero() {
        let c = Config::load_with(None, env(&[])).expect("defaults");
        assert_eq!(
            (
                c.http.header_read_timeout_seconds,
                c.http.body_read_timeout_seconds,
                c.http.max_connections
            ),
            (30, 30, 1024)
        );
        for name in [
            "CALMONY_HTTP_HEADER_READ_TIMEOUT_SECONDS",
            "CALMONY_HTTP_BODY_READ_TIMEOUT_SECONDS",
            "CALMONY_HTTP_MAX_CONNECTIONS",
        ] {
            let e = Config::load_with(None, env(&[(name, "0")])).expect_err("zero");
            assert!(e.to_string().contains(name), "{e}");
        }
    }

    #[test]
    fn bad_values_name_the_setting_and_origin() {
        let e = Config::load_with(None, env(&[("CALMONY_LISTEN", "nowhere")])).expect_err("bad");
        let msg = e.to_string();
        assert!(
            msg.contains("`listen`") && msg.contains("CALMONY_LISTEN"),
            "{msg}"
        );

        let e = Config::load_with(None, env(&[("CALMONY_API_RATE_LIMIT_PER_SECOND", "lots")]))
            .expect_err("bad");
        assert!(e.to_string().contains("api.rate_limit_per_second"), "{e}");

        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[api]\nrate_limit_per_secnd = 5\n").expect("write");
        let e = Config::load_with(Some(&path), env(&[])).expect_err("typo");
        assert!(e.to_string().contains("api.rate_limit_per_secnd"), "{e}");

        std::fs::write(&path, "[redis]\nappendfsync = \"sometimes\"\n").expect("write");
        let e = Config::load_with(Some(&path), env(&[])).expect_err("bad enum");
        assert!(e.to_string().contains("redis.appendfsync"), "{e}");

        std::fs::write(&path, "[api]\nmax_body_bytes = \"big\"\n").expect("write");
        let e = Config::load_with(Some(&path), env(&[])).expect_err("bad type");
        assert!(e.to_string().contains("max_body_bytes"), "{e}");
    }

    #[test]
    fn local_webhook_targets_are_for_test_mode_only() {
        let c = Config::load_with(None, env(&[])).expect("defaults");
        assert_eq!(
            c.webhooks.local_targets, "loopback",
            "the loopback only, by default"
        );
        for valid in ["none", "test"] {
            let c = Config::load_with(None, env(&[("CALMONY_WEBHOOKS_LOCAL_TARGETS", valid)]))
                .expect(valid);
            assert_eq!(c.webhooks.local_targets, valid);
        }
        for refused in ["live", "all", "yes"] {
            let e = Config::load_with(None, env(&[("CALMONY_WEBHOOKS_LOCAL_TARGETS", refused)]))
                .expect_err(refused);
            assert!(e.to_string().contains("webhooks.local_targets"), "{e}");
        }
    }

    #[test]
    fn griffin_defaults_to_the_sandbox_and_live_needs_every_setting() {
        let c = Config::load_with(None, env(&[])).expect("defaults");
        let test = c.test_griffin();
        assert_eq!(test.base_url, "http://127.0.0.1:4242/sandbox/griffin");
        assert!(
            test.api_key.is_empty(),
            "filled at start with the installation's own key"
        );
        assert!(c.griffin.live.api_key.is_empty(), "live Griffin is off");
        for (vars, named) in [
            (
                vec![("CALMONY_GRIFFIN_LIVE_API_KEY", "k")],
                "base_url is required",
            ),
            (
                vec![
                    ("CALMONY_GRIFFIN_LIVE_API_KEY", "k"),
                    ("CALMONY_GRIFFIN_LIVE_BASE_URL", "http://api.griffin.com"),
                    ("CALMONY_GRIFFIN_LIVE_SIGNING_KEY_ID", "kid"),
                    ("CALMONY_GRIFFIN_LIVE_SIGNING_KEY_PATH", "/nonexistent"),
                ],
                "must be https",
            ),
            (
                vec![
                    ("CALMONY_GRIFFIN_LIVE_API_KEY", "k"),
                    ("CALMONY_GRIFFIN_LIVE_BASE_URL", "https://api.griffin.com"),
                    ("CALMONY_GRIFFIN_LIVE_SIGNING_KEY_ID", "kid"),
                    ("CALMONY_GRIFFIN_LIVE_SIGNING_KEY_PATH", "/nonexistent"),
                ],
                "not a readable file",
            ),
        ] {
            let e = Config::load_with(None, env(&vars)).expect_err(named);
            assert!(e.to_string().contains(named), "{e}");
        }
    }

    #[test]
    fn every_setting_has_an_env_name_and_is_documented() {
        let example = include_str!("../../scripts/calmony.example.toml");
        for (path, _) in SETTINGS {
            let leaf = path.rsplit('.').next().unwrap_or(path);
            assert!(
                example.contains(leaf),
                "{path} missing from the example config"
            );
            assert!(
                example.contains(&env_name(path)),
                "{} not documented",
                env_name(path)
            );
        }
    }
}
