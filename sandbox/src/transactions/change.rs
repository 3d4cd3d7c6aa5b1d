//! [`Change`]: the writes of one change to the simulator's state, checked and applied in one
//! Lua script, or not at all.

use std::sync::LazyLock;

use calmony_actors::Store;
use calmony_actors::store::OpList;
use redis::Script;

use super::record::{Loaded, Transaction};
use crate::error::SandboxError;
use crate::keys;
use crate::ledger::LedgerEntry;
use crate::memory::AS_OF;

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
        let as_of = AS_OF.try_with(Clone::clone).ok();
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
