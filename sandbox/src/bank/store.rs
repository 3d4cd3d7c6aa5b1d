//! The sandbox bank's records in Redis and the one atomic way they change.
//!
//! Every change is one Lua script ([`commit`]): an optional idempotency key checked first
//! (present: the original answer is replayed and nothing is written), one guarded key
//! compared with the value the change was decided on (a compare-and-set: another request
//! moved the consent meanwhile, so decide again), then the writes and the ledger line. So a
//! consent is consumed by exactly one payment however many daemons race, and the ledger holds
//! one line per payment the bank accepted.

use std::sync::LazyLock;

use calmony_actors::Store;
use calmony_protocol::open_banking::{ConsentRequest, ConsentStatus, Initiation, Risk};
use redis::Script;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::SandboxError;
use crate::keys;

/// A consent as the bank keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub bank: String,
    pub id: String,
    pub request: ConsentRequest,
    /// As stored; an expired undecided consent reads as `Rejected` (see
    /// [`super::behaviour::consent_status`]).
    pub status: ConsentStatus,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Random: the authorise page's CSRF token is a MAC under it, so only a page the bank
    /// rendered for this consent can decide it.
    pub csrf_secret: String,
    /// The test account the payer chose, once they approved.
    #[serde(default)]
    pub debtor: Option<usize>,
}

/// A payment as the bank keeps it. Its status is computed when read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub bank: String,
    pub id: String,
    pub consent_id: String,
    pub initiation: Initiation,
    pub risk: Risk,
    pub submitted_ms: i64,
    pub debtor: usize,
    pub read_refund_account: bool,
}

/// What an idempotency key was first used for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdemRecord {
    /// SHA-256 of the body bytes: the same key with another body is refused.
    pub body_sha256: String,
    pub resource_id: String,
}

/// What an access token was granted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grant {
    /// `client_credentials`, scope `payments`: consents and payment status.
    ClientCredentials,
    /// `authorization_code`: submitting the one payment of its consent.
    AuthorizationCode,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    pub bank: String,
    pub grant: Grant,
    #[serde(default)]
    pub consent_id: Option<String>,
}

/// An authorisation code: single use, bound to its consent and the redirect it was sent to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeRecord {
    pub bank: String,
    pub consent_id: String,
    pub redirect_uri: String,
    pub nonce: String,
}

/// One payment the bank accepted, for tests to count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LedgerLine {
    pub id: String,
    pub bank: String,
    pub consent_id: String,
    /// Pence.
    pub amount: i64,
    pub end_to_end_id: String,
    #[serde(default)]
    pub reference: Option<String>,
    pub submitted_ms: i64,
}

/// One atomic change.
#[derive(Debug, Default)]
pub struct Commit {
    /// `(key, value, ttl_ms)`: checked first, written last.
    pub idem: Option<(String, String, u64)>,
    /// The key the change was decided on and its value then (`None`: absent).
    pub guard: (String, Option<String>),
    /// `(key, value, ttl_ms)`, `ttl_ms` 0 for none.
    pub sets: Vec<(String, String, u64)>,
    pub ledger: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    Done,
    /// The guarded key changed: read again and decide again.
    Conflict,
    /// The idempotency key was used already: its stored value.
    Replay(String),
}

static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local use_idem = ARGV[1] == '1'
if use_idem then
  local existing = redis.call('GET', KEYS[1])
  if existing then return {'replay', existing} end
end
local current = redis.call('GET', KEYS[2])
if (current or '') ~= ARGV[2] then return {'conflict', ''} end
local n = tonumber(ARGV[5])
for i = 1, n do
  local value = ARGV[5 + 2 * i - 1]
  local ttl = tonumber(ARGV[5 + 2 * i])
  if ttl > 0 then
    redis.call('SET', KEYS[2 + i], value, 'PX', ttl)
  else
    redis.call('SET', KEYS[2 + i], value)
  end
end
if use_idem then redis.call('SET', KEYS[1], ARGV[3], 'PX', tonumber(ARGV[4])) end
local entry = ARGV[6 + 2 * n]
if entry ~= '' then redis.call('RPUSH', KEYS[3 + n], entry) end
return {'done', ''}
",
    )
});

/// Apply `change` atomically, or report why not.
pub async fn commit(store: &Store, change: Commit) -> Result<Committed, SandboxError> {
    let mut inv = COMMIT.prepare_invoke();
    let (idem_key, idem_value, idem_ttl) = change
        .idem
        .clone()
        .unwrap_or_else(|| (change.guard.0.clone(), String::new(), 0));
    inv.key(&idem_key).key(&change.guard.0);
    inv.arg(if change.idem.is_some() { "1" } else { "0" })
        .arg(change.guard.1.as_deref().unwrap_or(""))
        .arg(&idem_value)
        .arg(idem_ttl)
        .arg(change.sets.len());
    for (key, value, ttl) in &change.sets {
        inv.key(key).arg(value).arg(*ttl);
    }
    inv.key(keys::BANK_LEDGER)
        .arg(change.ledger.as_deref().unwrap_or(""));
    let mut c = store.conn();
    let answer: Vec<String> = store.run(inv.invoke_async(&mut c)).await?;
    match answer.first().map(String::as_str) {
        Some("done") => Ok(Committed::Done),
        Some("conflict") => Ok(Committed::Conflict),
        Some("replay") => Ok(Committed::Replay(
            answer.get(1).cloned().unwrap_or_default(),
        )),
        _ => Err(SandboxError::Corrupt {
            key: change.guard.0,
            reason: "unexpected answer from the bank's commit script".into(),
        }),
    }
}

/// The record at `key` and its raw text (the guard for a later [`commit`]).
pub async fn load<T: DeserializeOwned>(
    store: &Store,
    key: &str,
) -> Result<Option<(T, String)>, SandboxError> {
    let mut c = store.conn();
    let k = key.to_owned();
    let raw: Option<String> = store
        .run(async move { redis::cmd("GET").arg(&k).query_async(&mut c).await })
        .await?;
    raw.map(|raw| parse(key, &raw).map(|value| (value, raw)))
        .transpose()
}

pub fn parse<T: DeserializeOwned>(key: &str, raw: &str) -> Result<T, SandboxError> {
    serde_json::from_str(raw).map_err(|e| SandboxError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

pub fn to_json<T: Serialize>(key: &str, value: &T) -> Result<String, SandboxError> {
    serde_json::to_string(value).map_err(|e| SandboxError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

/// Set `key` to `value` for `ttl_ms` (tokens: nothing else depends on them).
pub async fn set_px(
    store: &Store,
    key: &str,
    value: &str,
    ttl_ms: u64,
) -> Result<(), SandboxError> {
    let mut c = store.conn();
    let (k, v) = (key.to_owned(), value.to_owned());
    store
        .run(async move {
            redis::cmd("SET")
                .arg(&k)
                .arg(&v)
                .arg("PX")
                .arg(ttl_ms)
                .query_async::<()>(&mut c)
                .await
        })
        .await?;
    Ok(())
}

/// Take `key` (read and delete at once): how an authorisation code is used exactly once.
pub async fn take(store: &Store, key: &str) -> Result<Option<String>, SandboxError> {
    let mut c = store.conn();
    let k = key.to_owned();
    Ok(store
        .run(async move { redis::cmd("GETDEL").arg(&k).query_async(&mut c).await })
        .await?)
}

/// Every ledger line, oldest first.
pub async fn ledger(store: &Store) -> Result<Vec<LedgerLine>, SandboxError> {
    let mut c = store.conn();
    let raw: Vec<String> = store
        .run(async move {
            redis::cmd("LRANGE")
                .arg(keys::BANK_LEDGER)
                .arg(0)
                .arg(-1)
                .query_async(&mut c)
                .await
        })
        .await?;
    raw.iter()
        .map(|line| parse(keys::BANK_LEDGER, line))
        .collect()
}
