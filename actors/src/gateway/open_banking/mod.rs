//! Pay by Bank over UK Open Banking v3.1: the [`BankGateway`] of both modes' configured banks.
//!
//! Each bank is a [`client::BankClient`]: discovery fetched once, client-credentials tokens
//! cached until they expire, requests signed with our key and answers verified with the
//! bank's. The mapping between our orders and the OBIE wire is in [`transformers`]. Test mode
//! defaults to the built-in sandbox's banks (see `Config::test_banks`) with the committed test
//! key; live mode has only the banks configured, each checked at start.

pub mod client;
pub mod transformers;

use std::sync::Arc;
use std::time::Duration;

use calmony_config::{BankConnection, Config};
use calmony_protocol::Mode;
use calmony_protocol::open_banking::{ConsentResponse, PaymentResponse, SigningKey};
use url::Url;

use crate::gateway::bank_flows::{
    BankAnswer, BankError, BankGateway, BankPayment, BankSummary, BankToken, Consent, ConsentOrder,
    Submission,
};
use client::{BankClient, BankSettings};

/// The committed sandbox TPP key: public, test-only (`config/sandbox/open-banking/`).
const TEST_TPP_PRIVATE_PEM: &str =
    include_str!("../../../../config/sandbox/open-banking/tpp-private.pem");

const CONSENTS: &str = "domestic-payment-consents";
const PAYMENTS: &str = "domestic-payments";

/// Why the banks could not be set up at start.
#[derive(Debug, thiserror::Error)]
#[error("pay_by_bank.{mode}.banks: bank {bank:?}: {problem}")]
pub struct BankSetupError {
    pub mode: &'static str,
    pub bank: String,
    pub problem: String,
}

/// Both modes' banks.
#[derive(Debug, Default)]
pub struct OpenBanking {
    test: Vec<Arc<BankClient>>,
    live: Vec<Arc<BankClient>>,
}

impl OpenBanking {
    /// The banks `config` names (test mode: the sandbox's when none), keys read now.
    pub fn from_config(config: &Config) -> Result<Self, BankSetupError> {
        let timeout = Duration::from_secs(config.gateway.timeout_seconds.max(1));
        let build = |mode: &'static str, live: bool, banks: Vec<BankConnection>| {
            banks
                .into_iter()
                .map(|b| {
                    connect(&b, live, timeout)
                        .map(Arc::new)
                        .map_err(|problem| BankSetupError {
                            mode,
                            bank: b.id.clone(),
                            problem,
                        })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            test: build("test", false, config.test_banks())?,
            live: build("live", true, config.pay_by_bank.live.banks.clone())?,
        })
    }

    fn bank(&self, mode: Mode, id: &str) -> Result<&BankClient, BankError> {
        let banks = match mode {
            Mode::Test => &self.test,
            Mode::Live => &self.live,
        };
        banks
            .iter()
            .find(|b| b.id == id)
            .map(Arc::as_ref)
            .ok_or(BankError::NotConfigured)
    }
}

fn connect(b: &BankConnection, live: bool, timeout: Duration) -> Result<BankClient, String> {
    let pem = if b.signing_key_path.is_empty() {
        if live {
            return Err("signing_key_path is required".into());
        }
        TEST_TPP_PRIVATE_PEM.to_owned()
    } else {
        std::fs::read_to_string(&b.signing_key_path)
            .map_err(|e| format!("signing_key_path {}: {e}", b.signing_key_path))?
    };
    let kid = if b.signing_key_id.is_empty() {
        "calmony-sandbox-tpp"
    } else {
        b.signing_key_id.as_str()
    };
    let key = SigningKey::from_pkcs8_pem(&pem, kid, &b.client_id)
        .map_err(|e| format!("signing key: {e}"))?;
    let identity_pem = if b.mtls_cert_path.is_empty() && b.mtls_key_path.is_empty() {
        if live {
            return Err("mtls_cert_path and mtls_key_path are required".into());
        }
        None
    } else {
        let mut pem = std::fs::read(&b.mtls_cert_path)
            .map_err(|e| format!("mtls_cert_path {}: {e}", b.mtls_cert_path))?;
        pem.push(b'\n');
        pem.extend(
            std::fs::read(&b.mtls_key_path)
                .map_err(|e| format!("mtls_key_path {}: {e}", b.mtls_key_path))?,
        );
        Some(pem)
    };
    BankClient::new(BankSettings {
        id: b.id.clone(),
        name: if b.name.is_empty() {
            b.id.clone()
        } else {
            b.name.clone()
        },
        discovery_url: b.discovery_url.clone(),
        client_id: b.client_id.clone(),
        client_secret: b.client_secret.clone(),
        key,
        live,
        timeout,
        identity_pem,
    })
}

fn json(value: &impl serde::Serialize) -> Result<Vec<u8>, BankError> {
    serde_json::to_vec(value).map_err(|e| BankError::Invalid(e.to_string()))
}

impl BankGateway for OpenBanking {
    fn banks(&self, mode: Mode) -> Vec<BankSummary> {
        let banks = match mode {
            Mode::Test => &self.test,
            Mode::Live => &self.live,
        };
        banks
            .iter()
            .map(|b| BankSummary {
                id: b.id.clone(),
                name: b.name.clone(),
            })
            .collect()
    }

    fn create_consent<'a>(
        &'a self,
        mode: Mode,
        bank: &'a str,
        order: ConsentOrder,
    ) -> BankAnswer<'a, Consent> {
        Box::pin(async move {
            let client = self.bank(mode, bank)?;
            let body = json(&transformers::consent_request(&order)?)?;
            let d = client.discovered().await?;
            let token = client.cc_token(d).await?;
            let answer: ConsentResponse = client
                .post(CONSENTS, &token, &order.idempotency_key, body)
                .await?;
            Ok(transformers::consent(&answer))
        })
    }

    fn consent<'a>(
        &'a self,
        mode: Mode,
        bank: &'a str,
        consent_id: &'a str,
    ) -> BankAnswer<'a, Option<Consent>> {
        Box::pin(async move {
            let client = self.bank(mode, bank)?;
            let answer: Option<ConsentResponse> =
                client.get(&format!("{CONSENTS}/{consent_id}")).await?;
            Ok(answer.as_ref().map(transformers::consent))
        })
    }

    fn authorize_url<'a>(
        &'a self,
        mode: Mode,
        bank: &'a str,
        consent_id: &'a str,
        state: &'a str,
        nonce: &'a str,
        redirect_uri: &'a str,
    ) -> BankAnswer<'a, Url> {
        Box::pin(async move {
            self.bank(mode, bank)?
                .authorize_url(consent_id, state, nonce, redirect_uri)
                .await
        })
    }

    fn exchange_code<'a>(
        &'a self,
        mode: Mode,
        bank: &'a str,
        code: &'a str,
        redirect_uri: &'a str,
    ) -> BankAnswer<'a, BankToken> {
        Box::pin(async move {
            let (access_token, consent_id, nonce) = self
                .bank(mode, bank)?
                .exchange_code(code, redirect_uri)
                .await?;
            Ok(BankToken {
                access_token,
                consent_id,
                nonce,
            })
        })
    }

    fn submit_payment<'a>(
        &'a self,
        mode: Mode,
        bank: &'a str,
        token: &'a BankToken,
        submission: Submission,
    ) -> BankAnswer<'a, BankPayment> {
        Box::pin(async move {
            let client = self.bank(mode, bank)?;
            if token
                .consent_id
                .as_deref()
                .is_some_and(|c| c != submission.consent_id)
            {
                return Err(BankError::Invalid(
                    "the token was granted for another consent".into(),
                ));
            }
            let body = json(&transformers::payment_request(
                &submission.consent_id,
                &submission.order,
            )?)?;
            let answer: PaymentResponse = client
                .post(
                    PAYMENTS,
                    &token.access_token,
                    &submission.idempotency_key,
                    body,
                )
                .await?;
            Ok(transformers::payment(&answer))
        })
    }

    fn notification<'a>(
        &'a self,
        mode: Mode,
        bank: &'a str,
        token: &'a str,
    ) -> BankAnswer<'a, String> {
        Box::pin(async move { self.bank(mode, bank)?.verify_notification(token).await })
    }

    fn payment<'a>(
        &'a self,
        mode: Mode,
        bank: &'a str,
        payment_id: &'a str,
    ) -> BankAnswer<'a, Option<BankPayment>> {
        Box::pin(async move {
            let client = self.bank(mode, bank)?;
            let answer: Option<PaymentResponse> =
                client.get(&format!("{PAYMENTS}/{payment_id}")).await?;
            Ok(answer.as_ref().map(transformers::payment))
        })
    }
}
