//! The gateway's transactions and the one way they change.
//!
//! A transaction is one JSON string under `cp:sandbox:txn:<xref>`, stored packed as the
//! daemon's records are (`store::packed`: 1,620 bytes of a card payment's transaction become
//! about 850; the simulator's records were 45 % of what a sandbox payment leaves in Redis, and
//! every byte is written to the AOF and dumped again by each AOF rewrite). A record written
//! plain, before packing, reads as it always did. Every change (a new
//! transaction, a capture, a settlement, the end of a 3-D Secure challenge) is read, decided in
//! Rust, and written by [`Change::apply`] through one Lua script: first every check, then every
//! write, or nothing at all. The checks are what make the simulator safe when several daemons
//! share it:
//! - `cas`: the record is still byte-for-byte what we read (or still absent), so two CAPTUREs
//!   or two settlement runs cannot both win; the loser reads again and decides again;
//! - `claim`: a `transactionUnique` has not been used, so a retried SALE is a 65554 duplicate
//!   and never a second charge;
//! - `take`: a single-use token (a `threeDSRef`, a `creq`) still exists, and is consumed.
//!
//! The ledger entry, the settlement index and the tokens are written in the same script, so a
//! charge is never recorded without its transaction or the reverse.

use std::sync::LazyLock;

use calmony_actors::Store;
use calmony_actors::store::{OpList, packed};
use calmony_protocol::cardstream::{FieldValue, Fields};
use rand::Rng;
use redis::Script;
use serde::{Deserialize, Serialize};

use crate::SandboxError;
use crate::cards::CardProfile;
use crate::clock::UtcTime;
use crate::keys;
use crate::ledger::LedgerEntry;

/// Cardstream's transaction states (§6.1). `canceled` is spelt the gateway's way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Received,
    Approved,
    Verified,
    Declined,
    Referred,
    Captured,
    Accepted,
    Rejected,
    Canceled,
    Finished,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Received => "received",
            State::Approved => "approved",
            State::Verified => "verified",
            State::Declined => "declined",
            State::Referred => "referred",
            State::Captured => "captured",
            State::Accepted => "accepted",
            State::Rejected => "rejected",
            State::Canceled => "canceled",
            State::Finished => "finished",
        }
    }
}

/// A 3-D Secure challenge waiting for the cardholder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChallenge {
    /// Where the ACS page sends the cardholder's browser with the `cres`.
    pub redirect_url: String,
    /// The `authorisationCode` the SALE carried, for its authorisation afterwards.
    pub authorisation_code: Option<String>,
}

/// One transaction at the simulated gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub xref: String,
    pub transaction_id: u64,
    pub merchant_id: String,
    /// `SALE`, `VERIFY` or `REFUND_SALE`.
    pub action: String,
    /// The wire `type`: 1, 2 or 9.
    pub kind: String,
    pub state: State,
    /// The amount asked for, in minor units.
    pub amount: u64,
    pub amount_authorised: u64,
    pub amount_captured: u64,
    /// For a SALE: the total refunded by REFUND_SALEs so far.
    pub amount_refunded: u64,
    pub currency_code: String,
    pub transaction_unique: Option<String>,
    pub order_ref: Option<String>,
    pub card: CardProfile,
    /// Sent with `captureDelay` -1 or `never`: approved only, captured by CAPTURE.
    pub manual_capture: bool,
    pub authorisation_code: Option<String>,
    /// For a REFUND_SALE: the SALE it refunds.
    pub original_xref: Option<String>,
    /// Set while the transaction waits in `received` for a 3-D Secure challenge.
    pub challenge: Option<PendingChallenge>,
    /// `YYYY-MM-DD HH:MM:SS` UTC.
    pub created: String,
    /// The latest answer about this transaction, unsigned, as `(name, value)` pairs with
    /// records flattened to `root[sub]`: what QUERY replays. Never holds card data.
    pub response: Vec<(String, String)>,
}

impl Transaction {
    /// A new transaction with a fresh `xref` and `transactionID`, in state `received`.
    pub(crate) async fn begin(
        gw: &crate::Gateway,
        merchant_id: &str,
        action: &str,
        card: CardProfile,
    ) -> Result<Self, SandboxError> {
        let now = UtcTime::now();
        Ok(Transaction {
            xref: new_xref(&now),
            transaction_id: gw.ids.next(&gw.store).await?,
            merchant_id: merchant_id.to_owned(),
            action: action.to_owned(),
            kind: "1".to_owned(),
            state: State::Received,
            amount: 0,
            amount_authorised: 0,
            amount_captured: 0,
            amount_refunded: 0,
            currency_code: "826".to_owned(),
            transaction_unique: None,
            order_ref: None,
            card,
            manual_capture: false,
            authorisation_code: None,
            original_xref: None,
            challenge: None,
            created: now.timestamp(),
            response: Vec::new(),
        })
    }

    /// The amount the card has been charged: what was captured, else what was authorised.
    pub fn amount_received(&self) -> u64 {
        if self.amount_captured > 0 {
            self.amount_captured
        } else {
            self.amount_authorised
        }
    }

    /// The fields every answer about this transaction carries: its identity, state, card and,
    /// once authorised, the amount received and authorisation code.
    pub fn describe(&self, fields: &mut Fields) {
        fields
            .insert("xref", self.xref.as_str())
            .insert("transactionID", self.transaction_id.to_string())
            .insert("state", self.state.as_str())
            .insert("timestamp", UtcTime::now().timestamp());
        self.card.describe(fields);
        if self.amount_authorised > 0 {
            fields.insert("amountReceived", self.amount_received().to_string());
        }
        if let Some(code) = self.authorisation_code.as_deref() {
            fields.insert("authorisationCode", code);
        }
    }

    /// Keep `fields` as the answer QUERY replays.
    pub fn remember(&mut self, fields: &Fields) {
        self.response = flatten(fields);
    }

    /// The remembered answer.
    pub fn remembered(&self) -> Fields {
        self.response
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    /// The record as stored: its JSON, packed.
    fn to_stored(&self) -> Result<Vec<u8>, SandboxError> {
        let json = serde_json::to_string(self).map_err(|e| SandboxError::Corrupt {
            key: keys::transaction(&self.xref),
            reason: e.to_string(),
        })?;
        Ok(packed::pack(&json))
    }
}

/// A transaction as read, with the exact bytes it was read as (what a `cas` compares against).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub txn: Transaction,
    pub raw: Vec<u8>,
}

/// Read a transaction by `xref`.
pub async fn load(store: &Store, xref: &str) -> Result<Option<Loaded>, SandboxError> {
    let key = keys::transaction(xref);
    let raw = get(store, &key).await?;
    parsed(key, raw)
}

fn parsed(key: String, raw: Option<Vec<u8>>) -> Result<Option<Loaded>, SandboxError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let corrupt = |reason: String| SandboxError::Corrupt {
        key: key.clone(),
        reason,
    };
    let json = packed::text(raw.clone()).map_err(|e| corrupt(e.to_string()))?;
    let txn = serde_json::from_str(&json).map_err(|e| corrupt(e.to_string()))?;
    Ok(Some(Loaded { txn, raw }))
}

/// Read a merchant's transaction by `xref`: another merchant's is as good as absent.
pub async fn load_for(
    store: &Store,
    merchant_id: &str,
    xref: &str,
) -> Result<Option<Loaded>, SandboxError> {
    let loaded = load(store, xref).await?;
    Ok(loaded.filter(|loaded| loaded.txn.merchant_id == merchant_id))
}

/// Read a string key as text.
pub async fn get_string(store: &Store, key: &str) -> Result<Option<String>, SandboxError> {
    get(store, key).await
}

/// Read a string key, as text or as the bytes stored (a packed transaction).
async fn get<T: redis::FromRedisValue + Send + 'static>(
    store: &Store,
    key: &str,
) -> Result<Option<T>, SandboxError> {
    let mut c = store.conn();
    let key = key.to_owned();
    Ok(store
        .run(async move { redis::cmd("GET").arg(key).query_async(&mut c).await })
        .await?)
}

/// How many `transactionID`s one `INCRBY` reserves.
const ID_BLOCK: u64 = 100;

/// Numeric `transactionID`s, unique across every simulator sharing the Redis: each takes a
/// block of [`ID_BLOCK`] from the counter and hands them out in order, so a transaction costs
/// no round trip of its own for its number. Like Cardstream's, the numbers rise but are not
/// gap-free: a restart forgets the rest of its block, and simulators interleave blocks.
#[derive(Debug, Default)]
pub(crate) struct IdBlock {
    /// `(next, end)`: the ids not yet handed out, `next..end`.
    range: tokio::sync::Mutex<(u64, u64)>,
}

impl IdBlock {
    pub(crate) async fn next(&self, store: &Store) -> Result<u64, SandboxError> {
        let mut range = self.range.lock().await;
        if range.0 >= range.1 {
            let mut c = store.conn();
            let end: u64 = store
                .run(async move {
                    redis::cmd("INCRBY")
                        .arg(keys::TRANSACTION_ID)
                        .arg(ID_BLOCK)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            *range = (end + 1 - ID_BLOCK, end + 1);
        }
        let id = range.0;
        range.0 += 1;
        Ok(id)
    }
}

/// `YYMMDDHH` and 15 uppercase letters and digits, as the gateway's are.
fn new_xref(now: &UtcTime) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..15)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect();
    format!("{}{tail}", crate::clock::xref_prefix(now))
}

/// An opaque single-use token (`threeDSRef`, `creq`, `cres`): 40 letters and digits.
pub fn new_token() -> String {
    random_alnum(40)
}

/// `len` random letters and digits.
pub fn random_alnum(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Flatten a message to `(name, value)` pairs, records as `root[sub]` in their order.
pub fn flatten(fields: &Fields) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(fields.len());
    for (root, value) in fields.iter() {
        match value {
            FieldValue::Scalar(v) => out.push((root.to_owned(), v.clone())),
            FieldValue::Record(items) => {
                for (sub, v) in items {
                    out.push((format!("{root}[{sub}]"), v.clone()));
                }
            }
        }
    }
    out
}

/// What [`Change::apply`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Done,
    /// A transaction changed since it was read: read again and decide again.
    Conflict,
    /// The `transactionUnique` was already used.
    Duplicate,
    /// A single-use token was already used (or expired).
    Gone,
}

/// The writes of one change, applied atomically.
///
/// The operations travel as one MessagePack list of codes and indexes (an [`OpList`], as the
/// daemon's commits send theirs; `cmsgpack.unpack` in the script, in C) and every value as a script argument of its own: the list used to be
/// JSON with the transaction's own JSON escaped inside it, and decoding that in Lua
/// (`cjson.decode`) was most of the script's time (23.8 against 14.7 µs a sale, inner
/// commands 5 µs).
#[derive(Debug, Default)]
pub struct Change {
    keys: Vec<String>,
    ops: OpList,
    /// `ARGV[i + 2]` is `args[i]`.
    args: Vec<Vec<u8>>,
}

impl Change {
    pub fn new() -> Self {
        Self::default()
    }

    fn k(&mut self, key: &str) -> u64 {
        let i = match self.keys.iter().position(|k| k == key) {
            Some(i) => i,
            None => {
                self.keys.push(key.to_owned());
                self.keys.len() - 1
            }
        };
        i as u64 + 1
    }

    /// A value as the next script argument; its `ARGV` index.
    fn v(&mut self, value: impl Into<Vec<u8>>) -> u64 {
        self.args.push(value.into());
        self.args.len() as u64 + 1
    }

    /// One operation: its code, then key and argument indexes.
    fn op(&mut self, code: &'static str, indexes: &[u64]) -> &mut Self {
        self.ops.code(code);
        for &i in indexes {
            self.ops.int(i);
        }
        self
    }

    /// Write a new transaction; fails as a conflict if its `xref` somehow exists.
    pub fn create(&mut self, txn: &Transaction) -> Result<&mut Self, SandboxError> {
        let stored = txn.to_stored()?;
        let k = self.k(&keys::transaction(&txn.xref));
        let new = self.v(stored);
        Ok(self.op("cas", &[k, 0, new]))
    }

    /// Replace a transaction read as `before`, if nobody changed it since.
    pub fn update(
        &mut self,
        before: &Loaded,
        txn: &Transaction,
    ) -> Result<&mut Self, SandboxError> {
        let stored = txn.to_stored()?;
        let k = self.k(&keys::transaction(&txn.xref));
        let expected = self.v(before.raw.as_slice());
        let new = self.v(stored);
        Ok(self.op("cas", &[k, expected, new]))
    }

    /// Claim the merchant's `transactionUnique` for `xref`, unless already used.
    pub fn claim_unique(&mut self, merchant_id: &str, unique: &str, xref: &str) -> &mut Self {
        let k = self.k(&keys::unique(merchant_id, unique));
        let value = self.v(xref);
        self.op("claim", &[k, value])
    }

    /// Consume a single-use token, which must still exist.
    pub fn take(&mut self, key: &str) -> &mut Self {
        let k = self.k(key);
        self.op("take", &[k])
    }

    /// Replace a value read as `before` (a hosted payment session), keeping its expiry. The
    /// change is [`Applied::Gone`] if the key has expired and a conflict if it changed.
    pub fn replace(&mut self, key: &str, before: &str, value: &str) -> &mut Self {
        let k = self.k(key);
        let expected = self.v(before);
        let new = self.v(value);
        self.op("replace", &[k, expected, new])
    }

    /// Write a token that expires after `ttl_ms`.
    pub fn token(&mut self, key: &str, value: &str, ttl_ms: u64) -> &mut Self {
        let k = self.k(key);
        let value = self.v(value);
        let ttl = self.v(ttl_ms.to_string());
        self.op("set", &[k, value, ttl])
    }

    pub fn ledger(&mut self, entry: &LedgerEntry) -> Result<&mut Self, SandboxError> {
        let json = serde_json::to_string(entry).map_err(|e| SandboxError::Corrupt {
            key: keys::LEDGER.to_owned(),
            reason: e.to_string(),
        })?;
        let k = self.k(keys::LEDGER);
        let value = self.v(json);
        Ok(self.op("rpush", &[k, value]))
    }

    /// Put the transaction in, or take it out of, the next settlement run.
    pub fn settle_later(&mut self, xref: &str, pending: bool) -> &mut Self {
        let k = self.k(keys::UNSETTLED);
        let member = self.v(xref);
        self.op(if pending { "sadd" } else { "srem" }, &[k, member])
    }

    /// Apply the change. Inside a request served on remembered faults
    /// ([`crate::memory::AS_OF`]) it first checks their generation: moved, it writes nothing
    /// and fails with [`SandboxError::FaultsChanged`].
    pub async fn apply(&self, store: &Store) -> Result<Applied, SandboxError> {
        let as_of = crate::memory::AS_OF.try_with(Clone::clone).ok();
        let mut invocation = APPLY.prepare_invoke();
        for key in &self.keys {
            invocation.key(key);
        }
        match &as_of {
            Some(_) => {
                // The check goes first in the list; its key and value follow all the others.
                let mut ops = OpList::default();
                ops.code("gen")
                    .int(self.keys.len() as u64 + 1)
                    .int(self.args.len() as u64 + 2)
                    .extend(&self.ops);
                invocation.key(keys::FAULTS_GEN);
                invocation.arg(ops.to_bytes());
            }
            None => {
                invocation.arg(self.ops.to_bytes());
            }
        }
        for value in &self.args {
            invocation.arg(value.as_slice());
        }
        if let Some(as_of) = &as_of {
            invocation.arg(as_of.generation);
        }
        let mut c = store.conn();
        let outcome: String = store
            .run(async move { invocation.invoke_async(&mut c).await })
            .await?;
        if outcome == "faults" {
            return Err(SandboxError::FaultsChanged);
        }
        if let Some(as_of) = &as_of
            && outcome == "ok"
        {
            as_of.mark_applied();
        }
        Ok(match outcome.as_str() {
            "ok" => Applied::Done,
            "duplicate" => Applied::Duplicate,
            "gone" => Applied::Gone,
            _ => Applied::Conflict,
        })
    }
}

/// `KEYS`: every key touched. `ARGV[1]`: the operations, one MessagePack list of codes and
/// indexes (`k` a `KEYS` index, every other an `ARGV` index; `0` for "absent"), walked with a
/// cursor. Checks: `cas k expected new` (`expected` 0: must be absent), `claim k value` (must
/// be absent), `take k` (must exist), `replace k expected new` (must exist and equal
/// `expected`). Writes: those four (set, set, delete, set keeping the TTL), then
/// `set k value ttl_ms`, `rpush k value`, `sadd k member`, `srem k member`. And a check that
/// writes nothing, `gen k expected`: the faults generation (key `k`, absent as 0) is still
/// `expected`, else the answer is `faults` (see [`crate::memory`]).
static APPLY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = cmsgpack.unpack(ARGV[1])
local n = #t
local width = {cas = 4, claim = 3, take = 2, replace = 4, set = 4, rpush = 3, sadd = 3, srem = 3, gen = 3}
local p = 1
while p <= n do
  local o, k = t[p], KEYS[t[p + 1]]
  if o == 'cas' then
    local current = redis.call('GET', k)
    if t[p + 2] == 0 then
      if current then return 'conflict' end
    elseif current ~= ARGV[t[p + 2]] then
      return 'conflict'
    end
  elseif o == 'claim' then
    if redis.call('EXISTS', k) == 1 then return 'duplicate' end
  elseif o == 'take' then
    if redis.call('EXISTS', k) == 0 then return 'gone' end
  elseif o == 'gen' then
    if (redis.call('GET', k) or '0') ~= ARGV[t[p + 2]] then return 'faults' end
  elseif o == 'replace' then
    local current = redis.call('GET', k)
    if not current then return 'gone' end
    if current ~= ARGV[t[p + 2]] then return 'conflict' end
  elseif not width[o] then
    return redis.error_reply('apply: unknown operation ' .. tostring(o))
  end
  p = p + width[o]
end
p = 1
while p <= n do
  local o, k = t[p], KEYS[t[p + 1]]
  if o == 'cas' then redis.call('SET', k, ARGV[t[p + 3]])
  elseif o == 'claim' then redis.call('SET', k, ARGV[t[p + 2]])
  elseif o == 'take' then redis.call('DEL', k)
  elseif o == 'replace' then redis.call('SET', k, ARGV[t[p + 3]], 'KEEPTTL')
  elseif o == 'set' then redis.call('SET', k, ARGV[t[p + 2]], 'PX', ARGV[t[p + 3]])
  elseif o == 'rpush' then redis.call('RPUSH', k, ARGV[t[p + 2]])
  elseif o == 'sadd' then redis.call('SADD', k, ARGV[t[p + 2]])
  elseif o == 'srem' then redis.call('SREM', k, ARGV[t[p + 2]])
  end
  p = p + width[o]
end
return 'ok'
"#,
    )
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xrefs_look_like_the_gateways() {
        let now = UtcTime::from_unix(1_575_376_496);
        let xref = new_xref(&now);
        assert_eq!(xref.len(), 23);
        assert!(xref.starts_with("19120312"));
        assert!(
            xref.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
        assert_ne!(new_xref(&now), xref);
        assert_eq!(new_token().len(), 40);
    }

    #[test]
    fn flatten_keeps_record_order() {
        let fields: Fields = [
            ("a", "1"),
            ("threeDSRequest[creq]", "x"),
            ("threeDSRequest[b]", "y"),
        ]
        .into_iter()
        .collect();
        let flat = flatten(&fields);
        assert_eq!(
            flat,
            [
                ("a".to_owned(), "1".to_owned()),
                ("threeDSRequest[creq]".to_owned(), "x".to_owned()),
                ("threeDSRequest[b]".to_owned(), "y".to_owned()),
            ]
        );
        let back: Fields = flat.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(back, fields);
    }
}
