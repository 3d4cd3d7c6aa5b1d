//! What every sandbox bank handler shares: the request's context, the test accounts, ids,
//! hashes and dates. A leaf: the handlers use it, it uses none of them.

use calmony_protocol::open_banking::{Account, SCHEME_SCAN};
use hyper::StatusCode;
use hyper::header::{AUTHORIZATION, HeaderMap};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::behaviour::TestBank;
use super::setup::{self, Keys};
use super::store::{self, Grant, TokenRecord};
use super::wire;
use crate::gateway::Gateway;
use crate::reply::Reply;

/// How long an access token lives.
pub const TOKEN_TTL_MS: u64 = 300_000;
/// How long an authorisation code may wait to be exchanged.
pub const CODE_TTL_MS: u64 = 600_000;
/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// A payer's test account at every sandbox bank. The last one's number is the Griffin
/// sandbox's failing creditor account (`griffin::setup::FAILING_ACCOUNT_NUMBER`): a payment
/// made from it is refunded into a Faster Payment that fails.
#[derive(Debug, Clone, Copy)]
pub struct TestAccount {
    pub name: &'static str,
    pub sort_code: &'static str,
    pub account_number: &'static str,
}

pub const TEST_ACCOUNTS: [TestAccount; 4] = [
    TestAccount {
        name: "Jane Payer",
        sort_code: "200045",
        account_number: "12345678",
    },
    TestAccount {
        name: "Sam Customer",
        sort_code: "401234",
        account_number: "87654321",
    },
    TestAccount {
        name: "Alex Trading Ltd",
        sort_code: "309912",
        account_number: "55501234",
    },
    TestAccount {
        name: "Closed Account Payer",
        sort_code: "200045",
        account_number: crate::griffin::setup::FAILING_ACCOUNT_NUMBER,
    },
];

impl TestAccount {
    pub fn account(&self) -> Account {
        Account {
            scheme_name: SCHEME_SCAN.to_owned(),
            identification: format!("{}{}", self.sort_code, self.account_number),
            name: Some(self.name.to_owned()),
            secondary_identification: None,
        }
    }
}

/// One request to one bank: what every handler needs.
pub struct Ctx<'a> {
    pub gw: &'a Gateway,
    pub bank: TestBank,
    pub keys: &'a Keys,
    pub headers: &'a HeaderMap,
    pub interaction: String,
    pub now_ms: i64,
}

impl Ctx<'_> {
    pub fn setup(&self) -> &setup::Setup {
        &self.gw.bank
    }

    /// The bank's public base: `<public_base>/sandbox/bank/<id>`.
    pub fn base(&self) -> String {
        format!(
            "{}/sandbox/bank/{}",
            self.gw.config.public_base.trim_end_matches('/'),
            self.bank.id()
        )
    }

    pub fn error(
        &self,
        status: StatusCode,
        code: &str,
        message: &str,
        path: Option<&str>,
    ) -> Reply {
        wire::ob_error(
            status,
            code,
            message,
            path,
            Some(self.keys),
            &self.interaction,
        )
    }

    pub fn ok<T: serde::Serialize>(&self, status: StatusCode, value: &T) -> Reply {
        wire::signed(status, value, Some(self.keys), &self.interaction)
    }

    pub fn unavailable(&self, error: &crate::SandboxError) -> Reply {
        tracing::error!(%error, bank = self.bank.id(), "sandbox bank request failed");
        self.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UK.OBIE.UnexpectedError",
            "the sandbox store is unavailable",
            None,
        )
    }

    /// The bearer token's record, if it is live, of this bank and of `grant`.
    pub async fn bearer(&self, grant: Grant) -> Result<Option<TokenRecord>, crate::SandboxError> {
        let Some(token) = self
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return Ok(None);
        };
        let key = crate::keys::bank_token(&sha256_hex(token.as_bytes()));
        let record: Option<(TokenRecord, String)> = store::load(&self.gw.store, &key).await?;
        Ok(record
            .map(|(r, _)| r)
            .filter(|r| r.bank == self.bank.id() && r.grant == grant))
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A random token of `bytes` bytes, hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// `YYYY-MM-DDTHH:MM:SS+00:00` for a Unix time in milliseconds.
pub fn iso(ms: i64) -> String {
    let t = crate::clock::UtcTime::from_unix(ms.div_euclid(1000));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}
