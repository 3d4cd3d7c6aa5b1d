//! The Griffin sandbox's records in Redis and the one atomic way money moves.
//!
//! The account is a balance, the holds on it (submitted payments not yet delivered) and a
//! ledger list, oldest first, of every entry with the balance after it. Every change is one
//! Lua script ([`post`]): it opens the account with its deposit on first use, replays a
//! change already made under the same once-key, refuses a hold the available balance cannot
//! cover, takes a due payment off the pending set exactly once, and writes the ledger entry
//! with the running balance computed *inside* the script, so concurrent postings from
//! several daemons can never leave a gap or a wrong running balance.
//!
//! Every posting that is done bumps `cp:sandbox:griffin:version`, so the webhook delivery
//! pass ([`super::delivery`]) rereads the records only when something changed.
//!
//! Payment records are written once and never change: a submission's status is computed from
//! its submit time and fate ([`super::decide::submission_status`]); only the debit it causes
//! is posted later, by [`super::api::mature`].

use std::sync::LazyLock;

use calmony_actors::Store;
use calmony_protocol::griffin::{
    Creditor, Debtor, Direction, OriginType, PaymentDirection, PaymentScheme,
};
use redis::Script;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::SandboxError;
use crate::keys;

/// A payment as the sandbox keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub id: String,
    pub direction: PaymentDirection,
    pub amount: i64,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub creditor: Option<Creditor>,
    #[serde(default)]
    pub debtor: Option<Debtor>,
    pub created_ms: i64,
    #[serde(default)]
    pub submission: Option<SubmissionRecord>,
    #[serde(default)]
    pub admission: Option<AdmissionRecord>,
}

/// What happens to a submitted payment at the scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fate {
    Deliver,
    Fail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmissionRecord {
    pub id: String,
    pub scheme: PaymentScheme,
    pub submitted_ms: i64,
    pub fate: Fate,
    pub end_to_end_id: String,
    pub scheme_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdmissionRecord {
    pub id: String,
    #[serde(default)]
    pub end_to_end_id: Option<String>,
    pub scheme_id: String,
    pub created_ms: i64,
}

/// One ledger entry. `balance_after` is written by the posting script.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub processed_ms: i64,
    /// Pence, never negative: the sign is `direction`.
    pub amount: i64,
    pub direction: Direction,
    #[serde(default)]
    pub balance_after: i64,
    pub origin: OriginType,
    #[serde(default)]
    pub payment_id: Option<String>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// One atomic change of the account.
#[derive(Debug, Default)]
pub struct Posting {
    /// `(key, value)`: if the key exists its value is returned and nothing is written; else
    /// it is written with the change.
    pub once: Option<(String, String)>,
    /// Refuse unless balance − holds covers this many pence.
    pub require_available: i64,
    /// Take this payment off the pending set; if it is not there, another caller did: stop.
    pub take_pending: Option<String>,
    /// Put this payment on the pending set, due at this time.
    pub add_pending: Option<(String, i64)>,
    pub hold_delta: i64,
    pub entry: Option<Entry>,
    /// Records written with the change.
    pub sets: Vec<(String, String)>,
    /// A payment id to append to the payments list.
    pub new_payment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    Done,
    /// The once-key was used: its value.
    Replay(String),
    Insufficient,
    /// The pending payment was taken already.
    Gone,
}

static POST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SET', KEYS[2], '0')
  local e = cjson.decode(ARGV[2])
  e['balance_after'] = tonumber(ARGV[1])
  redis.call('RPUSH', KEYS[3], cjson.encode(e))
end
if ARGV[3] == '1' then
  local existing = redis.call('GET', KEYS[4])
  if existing then return {'replay', existing} end
end
local balance = tonumber(redis.call('GET', KEYS[1]))
local holds = tonumber(redis.call('GET', KEYS[2]) or '0')
local need = tonumber(ARGV[5])
if need > 0 and balance - holds < need then return {'insufficient', ''} end
if ARGV[6] ~= '' then
  if redis.call('ZREM', KEYS[5], ARGV[6]) == 0 then return {'gone', ''} end
end
if ARGV[7] ~= '' then redis.call('ZADD', KEYS[5], ARGV[8], ARGV[7]) end
redis.call('INCRBY', KEYS[2], ARGV[9])
if ARGV[10] ~= '' then
  local after = redis.call('INCRBY', KEYS[1], ARGV[11])
  local e = cjson.decode(ARGV[10])
  e['balance_after'] = after
  redis.call('RPUSH', KEYS[3], cjson.encode(e))
end
if ARGV[12] ~= '' then redis.call('RPUSH', KEYS[6], ARGV[12]) end
local n = tonumber(ARGV[13])
for i = 1, n do redis.call('SET', KEYS[6 + i], ARGV[13 + i]) end
if ARGV[3] == '1' then redis.call('SET', KEYS[4], ARGV[4]) end
redis.call('INCR', KEYS[7 + n])
return {'done', ''}
",
    )
});

/// The deposit every new sandbox account opens with.
fn opening_entry(now_ms: i64) -> Entry {
    Entry {
        id: super::ctx::new_id("tr"),
        processed_ms: now_ms,
        amount: super::setup::OPENING_DEPOSIT_PENCE,
        direction: Direction::Credit,
        balance_after: super::setup::OPENING_DEPOSIT_PENCE,
        origin: OriginType::Deposit,
        payment_id: None,
        reference: None,
        description: Some("Sandbox opening deposit".to_owned()),
    }
}

/// Apply `change` atomically (opening the account first if it is new), or say why not.
/// Moves money when `change.entry` is set: the balance by the entry's signed amount.
pub async fn post(store: &Store, now_ms: i64, change: Posting) -> Result<Posted, SandboxError> {
    let mut inv = POST.prepare_invoke();
    let (once_key, once_value) = change
        .once
        .clone()
        .unwrap_or_else(|| (keys::GRIFFIN_BALANCE.to_owned(), String::new()));
    inv.key(keys::GRIFFIN_BALANCE)
        .key(keys::GRIFFIN_HOLDS)
        .key(keys::GRIFFIN_LEDGER)
        .key(&once_key)
        .key(keys::GRIFFIN_PENDING)
        .key(keys::GRIFFIN_PAYMENTS);
    let (entry_json, delta) = match &change.entry {
        Some(e) => (
            to_json(keys::GRIFFIN_LEDGER, e)?,
            e.direction.signed(e.amount),
        ),
        None => (String::new(), 0),
    };
    let (add_member, add_score) = change.add_pending.clone().unwrap_or_default();
    inv.arg(super::setup::OPENING_DEPOSIT_PENCE)
        .arg(to_json(keys::GRIFFIN_LEDGER, &opening_entry(now_ms))?)
        .arg(if change.once.is_some() { "1" } else { "0" })
        .arg(&once_value)
        .arg(change.require_available)
        .arg(change.take_pending.as_deref().unwrap_or(""))
        .arg(&add_member)
        .arg(add_score)
        .arg(change.hold_delta)
        .arg(&entry_json)
        .arg(delta)
        .arg(change.new_payment.as_deref().unwrap_or(""))
        .arg(change.sets.len());
    for (key, value) in &change.sets {
        inv.key(key).arg(value);
    }
    inv.key(keys::GRIFFIN_VERSION);
    let mut c = store.conn();
    let answer: Vec<String> = store.run(inv.invoke_async(&mut c)).await?;
    match answer.first().map(String::as_str) {
        Some("done") => Ok(Posted::Done),
        Some("replay") => Ok(Posted::Replay(answer.get(1).cloned().unwrap_or_default())),
        Some("insufficient") => Ok(Posted::Insufficient),
        Some("gone") => Ok(Posted::Gone),
        _ => Err(SandboxError::Corrupt {
            key: keys::GRIFFIN_BALANCE.to_owned(),
            reason: "unexpected answer from the Griffin posting script".into(),
        }),
    }
}

/// The account as it stands: (ledger balance, holds), opening it first if it is new.
pub async fn balances(store: &Store, now_ms: i64) -> Result<(i64, i64), SandboxError> {
    post(store, now_ms, Posting::default()).await?;
    let mut c = store.conn();
    let (balance, holds): (Option<i64>, Option<i64>) = store
        .run(async move {
            redis::pipe()
                .get(keys::GRIFFIN_BALANCE)
                .get(keys::GRIFFIN_HOLDS)
                .query_async(&mut c)
                .await
        })
        .await?;
    Ok((balance.unwrap_or_default(), holds.unwrap_or_default()))
}

/// Every ledger entry, oldest first.
pub async fn ledger(store: &Store) -> Result<Vec<Entry>, SandboxError> {
    list_json(store, keys::GRIFFIN_LEDGER).await
}

/// Every payment id, oldest first.
pub async fn payment_ids(store: &Store) -> Result<Vec<String>, SandboxError> {
    let mut c = store.conn();
    Ok(store
        .run(async move {
            redis::cmd("LRANGE")
                .arg(keys::GRIFFIN_PAYMENTS)
                .arg(0)
                .arg(-1)
                .query_async(&mut c)
                .await
        })
        .await?)
}

/// The payments with `ids`, in one round trip (a missing one is skipped).
pub async fn payments(store: &Store, ids: &[String]) -> Result<Vec<PaymentRecord>, SandboxError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = ids.iter().map(|id| keys::griffin_payment(id)).collect();
    let mut c = store.conn();
    let k = keys.clone();
    let raw: Vec<Option<String>> = store
        .run(async move { redis::cmd("MGET").arg(&k).query_async(&mut c).await })
        .await?;
    keys.iter()
        .zip(raw)
        .filter_map(|(key, raw)| raw.map(|raw| parse(key, &raw)))
        .collect()
}

/// The payments pending delivery whose time has come.
pub async fn due(store: &Store, now_ms: i64) -> Result<Vec<String>, SandboxError> {
    let mut c = store.conn();
    Ok(store
        .run(async move {
            redis::cmd("ZRANGEBYSCORE")
                .arg(keys::GRIFFIN_PENDING)
                .arg("-inf")
                .arg(now_ms)
                .query_async(&mut c)
                .await
        })
        .await?)
}

async fn list_json<T: DeserializeOwned>(store: &Store, key: &str) -> Result<Vec<T>, SandboxError> {
    let mut c = store.conn();
    let k = key.to_owned();
    let raw: Vec<String> = store
        .run(async move {
            redis::cmd("LRANGE")
                .arg(&k)
                .arg(0)
                .arg(-1)
                .query_async(&mut c)
                .await
        })
        .await?;
    raw.iter().map(|line| parse(key, line)).collect()
}

/// The record at `key`.
pub async fn load<T: DeserializeOwned>(
    store: &Store,
    key: &str,
) -> Result<Option<T>, SandboxError> {
    let mut c = store.conn();
    let k = key.to_owned();
    let raw: Option<String> = store
        .run(async move { redis::cmd("GET").arg(&k).query_async(&mut c).await })
        .await?;
    raw.map(|raw| parse(key, &raw)).transpose()
}

/// Remember `key` for `ttl_ms` unless it is there already: whether it was new. How a
/// signature's nonce is refused the second time.
pub async fn first_use(store: &Store, key: &str, ttl_ms: u64) -> Result<bool, SandboxError> {
    let mut c = store.conn();
    let k = key.to_owned();
    let set: Option<String> = store
        .run(async move {
            redis::cmd("SET")
                .arg(&k)
                .arg("1")
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms)
                .query_async(&mut c)
                .await
        })
        .await?;
    Ok(set.is_some())
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
