//! The Lua scripts. Each runs atomically inside Redis; together they are every multi-key
//! decision the daemon makes, so they are kept in one place and read as one protocol.

use std::sync::LazyLock;

use redis::Script;

use super::Unavailability;

/// The key check of a request, as a Lua function both [`AUTHENTICATE`] and [`COMMIT`] define:
/// `key_check(key, per_second[, project, mode])` looks up the API key's record, refuses an
/// unknown or revoked key (or one of another project or mode than the one given) and charges
/// one request against its rate limit. Answers `nil, record` (`project`, `mode`, `revoked`,
/// `last_used`, `id`, `tat`) or a refusal, `{'unknown'}`, `{'revoked'}` or `{'limited', ms}`,
/// having written nothing.
///
/// The limit is a GCRA token bucket holding one second of requests, timed by the Redis
/// server's clock so every daemon sharing the Redis enforces the same budget; its state is the
/// key record's `tat` (the theoretical arrival time in µs), so the check is one read and one
/// write. `last_used` is refreshed at most once a minute.
///
/// When Redis refuses that write while it still serves reads (`OOM`: `maxmemory` under
/// `noeviction`; `READONLY`: a replica; `MISCONF`: persistence failing; `NOREPLICAS`: too few
/// replicas; the list is [`Unavailability::write_refusals`]), the check lets the request
/// through uncharged and answers a third value, the error's code: every write is refused then,
/// so an over-limit client can only read, and refusing would turn each read into an error for
/// every client: a partial outage made total. Authentication itself never fails open, and any
/// other refusal of the write is the script's error.
fn key_check() -> String {
    let refusals: Vec<String> = Unavailability::write_refusals()
        .map(|code| format!("{code}=true"))
        .collect();
    format!(
        "local WRITES_REFUSED = {{{}}}\n{}",
        refusals.join(", "),
        KEY_CHECK
    )
}

const KEY_CHECK: &str = r#"
local function key_check(k, per_second, project, mode)
  local rec = redis.call('HMGET', k, 'project', 'mode', 'revoked', 'last_used', 'id', 'tat')
  if not rec[1] then return {'unknown'} end
  if project and (rec[1] ~= project or rec[2] ~= mode) then return {'unknown'} end
  if rec[3] == '1' then return {'revoked'} end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local interval = math.floor(1000000 / tonumber(per_second))
  local burst = 1000000
  local tat = tonumber(rec[6] or '0') or 0
  if tat < now then tat = now end
  local new_tat = tat + interval
  if new_tat - now > burst then
    return {'limited', tostring(math.ceil((new_tat - now - burst) / 1000))}
  end
  local charged
  if tonumber(rec[4] or '0') < tonumber(t[1]) - 60 then
    charged = redis.pcall('HSET', k, 'tat', string.format('%d', new_tat), 'last_used', t[1])
  else
    charged = redis.pcall('HSET', k, 'tat', string.format('%d', new_tat))
  end
  if type(charged) == 'table' and charged.err then
    local code = string.match(charged.err, '^%u+')
    if code and WRITES_REFUSED[code] then return nil, rec, code end
    return charged
  end
  return nil, rec
end
"#;

/// Apply one state change: every check first, then every write, or nothing.
///
/// `KEYS`: every key touched. `ARGV[1]`: the operations, one MessagePack array of codes and
/// integers (`store::OpList`; the numbers the script writes as they are travel as texts);
/// every other argument is a value. In an operation `k`/`g` are `KEYS`
/// indexes, and `a`, `f` (the first of `n` consecutive values), `b` (a record's JSON, its
/// `n` internal field/value arguments following it) are `ARGV` indexes. The line lists the
/// checks first, then the numbers, then the writes (`store::Tx` orders them so):
/// `V k version` record `k` is still at `version` (0: absent);
/// `VP k a1 a2` entry `a2` of stream `k` is still pending in group `a1`;
/// `O k a` idempotency claim `k` is still held by owner `a`;
/// `NX k` key `k` does not exist (an idempotency claim the commit itself makes);
/// `K k per_second a1 a2` the request's API key (record `k`) is good and of project `a1` and
/// mode `a2`, charged one request against its rate limit ([`key_check`]; the last check, so
/// only a change that then happens is charged): how a request whose key check was deferred
/// (see `RequestContext::deferred`) is authenticated in its own commit, one round trip less;
/// `S k a` take the next number of counter `k` as prefix `a` + six digits (how an invoice
/// gets a gap-free number: only a commit that happens takes one);
/// `T a s f l` set value `a` to values `f..l` joined with the `s`th number taken;
/// `TZ a s` append the `s`th number taken to packed value `a` as a raw zstd frame
/// (`store::packed::raw_frame` builds the same bytes; a reader puts it in its place);
/// `P k version b n` a record; `H k f n` `HSET`; `Z k score a`; `ZM k n score a...` one
/// `ZADD` of `n` entries (`Tx` joins an index's entries so); `R k a` `ZREM`;
/// `X k f n` `XADD`; `E k ms` `PEXPIRE`;
/// `C k a1 a2 f n` append a command and deliver it at once to consumer `a2` of group `a1`, so
/// from birth it sits in that daemon's pending list (a crash leaves it there for recovery, and
/// no other consumer can pick it up while it is being worked on);
/// `A k a1 a2` acknowledge and delete entry `a2` of group `a1`;
/// `I k a by` `HINCRBY`; `D k a` `HDEL`; `N k a1 a2` `HSETNX`;
/// `IX k a1 a2 a3 a4` index record `k` (id `a3`) under the space-separated values `a4` of a
/// list filter whose values are kept in its field `a1`: the id leaves the sets (`a2` + value)
/// of the values it was under and joins those of the new ones (`store::filters`);
/// `IR k a1 a2 a3 a4` the same for a range filter: record `k` (id `a3`) is in set `a2` with
/// score `a4` (none: not in it); `IXN` and `IRN` the same for a record this commit creates,
/// whose put stored its values: they only join sets;
/// `EV k k2 k3 g a1 a2 a3 a4` append an event to log `k` (as `type` `a2`, `created` `a3`,
/// `object_id` `a4`, plain for `redis-cli`, and `json`, the packed JSON `a1`), its entry ID
/// to the type list `k2` (a stream), and, if key `g` exists, to
/// the fan-out stream `k3` (as `e`; the fan-out derives the event's id from it, see
/// `store::event_log`: deriving it here in Lua cost about 7 µs of Redis's one thread an event).
/// Answers `{'ok', <id of the last command appended or ''>, <each number taken>...}`, or
/// `{'conflict'|'lost', key}`, or the key check's refusal.
///
/// The list is unpacked once (in C, by `cmsgpack`) and walked with a cursor: no Lua table per
/// operation, and the values are handed to Redis with `unpack` straight from `ARGV`.
pub static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &(key_check()
            + r#"
local t = cmsgpack.unpack(ARGV[1])
local p, last = 1, #t
local function n(i) return t[p + i] end
local function key(i) return KEYS[t[p + i]] end
local function val(i) return ARGV[t[p + i]] end
local function run(i)
  local f = t[p + i]
  return unpack(ARGV, f, f + t[p + i + 1] - 1)
end
local function rawframe(s)
  local len, b = #s, #s * 8 + 1
  return '\40\181\47\253\32' .. string.char(len, b % 256, math.floor(b / 256) % 256, math.floor(b / 65536)) .. s
end
local cmd_id = ''
local numbers = {}
local guards = {}
while p <= last do
  local o = t[p]
  if o == 'V' then
    local v = tonumber(redis.call('HGET', key(1), 'v') or '0')
    if v ~= n(2) then return {'conflict', key(1)} end
    p = p + 3
  elseif o == 'VP' then
    if #redis.call('XPENDING', key(1), val(2), val(3), val(3), 1) == 0 then return {'conflict', key(1)} end
    p = p + 4
  elseif o == 'O' then
    if redis.call('HGET', key(1), 'owner') ~= val(2) then return {'lost', key(1)} end
    p = p + 3
  elseif o == 'NX' then
    if redis.call('EXISTS', key(1)) == 1 then return {'conflict', key(1)} end
    p = p + 2
  elseif o == 'K' then
    local refused = key_check(key(1), n(2), val(3), val(4))
    if refused then return refused end
    p = p + 5
  elseif o == 'S' then
    numbers[#numbers + 1] = val(2) .. string.format('%06d', redis.call('INCR', key(1)))
    p = p + 3
  elseif o == 'T' then
    ARGV[n(1)] = table.concat(ARGV, numbers[n(2)], n(3), n(4))
    p = p + 5
  elseif o == 'TZ' then
    ARGV[n(1)] = ARGV[n(1)] .. rawframe(numbers[n(2)])
    p = p + 3
  elseif o == 'P' then
    local b = n(3)
    redis.call('HSET', key(1), 'v', t[p + 2], 'json', ARGV[b], unpack(ARGV, b + 1, b + n(4)))
    p = p + 5
  elseif o == 'H' then redis.call('HSET', key(1), run(2)) p = p + 4
  elseif o == 'Z' then redis.call('ZADD', key(1), t[p + 2], val(3)) p = p + 4
  elseif o == 'ZM' then
    local c, entries = n(2), {}
    for i = 1, c do
      entries[2 * i - 1] = t[p + 1 + 2 * i]
      entries[2 * i] = ARGV[t[p + 2 + 2 * i]]
    end
    redis.call('ZADD', key(1), unpack(entries))
    p = p + 3 + 2 * c
  elseif o == 'R' then redis.call('ZREM', key(1), val(2)) p = p + 3
  elseif o == 'X' then redis.call('XADD', key(1), '*', run(2)) p = p + 4
  elseif o == 'EV' then
    local kind = val(6)
    local e = redis.call('XADD', key(1), '*', 'type', kind, 'created', val(7),
      'object_id', val(8), 'json', val(5))
    -- The log's IDs only grow, so this one is above the type list's last; if the log was
    -- deleted and the clock went back it is not, and the event is only not listed by type
    -- (an error here would leave the log's entry written without the rest of the commit).
    redis.pcall('XADD', key(2), e, 'e', '1')
    local g = n(4)
    local ok = guards[g]
    if ok == nil then
      ok = redis.call('EXISTS', KEYS[g]) == 1
      guards[g] = ok
    end
    if ok then redis.call('XADD', key(3), '*', 'e', e, 'type', kind) end
    p = p + 9
  elseif o == 'E' then redis.call('PEXPIRE', key(1), t[p + 2]) p = p + 3
  elseif o == 'C' then
    cmd_id = redis.call('XADD', key(1), '*', run(4))
    redis.call('XREADGROUP', 'GROUP', val(2), val(3), 'COUNT', 1000, 'STREAMS', key(1), '>')
    p = p + 6
  elseif o == 'I' then redis.call('HINCRBY', key(1), val(2), t[p + 3]) p = p + 4
  elseif o == 'D' then redis.call('HDEL', key(1), val(2)) p = p + 3
  elseif o == 'N' then redis.call('HSETNX', key(1), val(2), val(3)) p = p + 4
  elseif o == 'IX' then
    local field, prefix, id, now = val(2), val(3), val(4), val(5)
    local was = redis.call('HGET', key(1), field)
    if was ~= now then
      local old = {}
      for w in string.gmatch(was or '', '%S+') do old[w] = true end
      for w in string.gmatch(now, '%S+') do
        if old[w] then old[w] = nil else redis.call('ZADD', prefix .. w, 0, id) end
      end
      for w in pairs(old) do redis.call('ZREM', prefix .. w, id) end
      redis.call('HSET', key(1), field, now)
    end
    p = p + 6
  elseif o == 'IR' then
    local field, set, id, now = val(2), val(3), val(4), val(5)
    if redis.call('HGET', key(1), field) ~= now then
      if now == '' then redis.call('ZREM', set, id) else redis.call('ZADD', set, now, id) end
      redis.call('HSET', key(1), field, now)
    end
    p = p + 6
  elseif o == 'IXN' then
    local prefix, id = val(3), val(4)
    for w in string.gmatch(val(5), '%S+') do redis.call('ZADD', prefix .. w, 0, id) end
    p = p + 6
  elseif o == 'IRN' then
    local now = val(5)
    if now ~= '' then redis.call('ZADD', val(3), now, val(4)) end
    p = p + 6
  elseif o == 'A' then
    redis.call('XACK', key(1), val(2), val(3))
    redis.call('XDEL', key(1), val(3))
    p = p + 4
  else
    return redis.error_reply('commit: unknown operation ' .. tostring(o))
  end
end
return {'ok', cmd_id, unpack(numbers)}
"#),
    )
});

/// One page of a list index (a sorted set of ids with equal scores) and the records' JSON.
///
/// `KEYS[1]`: the index. `ARGV`: direction (`desc` newest first, `asc` oldest first), the
/// lexicographic min and max (`-`, `+`, `[id` or `(id`), how many, the record key prefix. The
/// caller turns cursors and `created` ranges into min and max, and reverses `asc` pages so
/// every page reads newest first.
pub static PAGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local ids
if ARGV[1] == 'asc' then
  ids = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[2], ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
else
  ids = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[3], ARGV[2], 'LIMIT', 0, tonumber(ARGV[4]))
end
local out = {}
for i = 1, #ids do
  out[i] = redis.call('HGET', ARGV[5] .. ids[i], 'json')
end
return {ids, out}
"#,
    )
});

/// One page of the ids in every one of several sets (a list's index and the sets of the
/// values its filters ask for, see `store::filters`), with the records' JSON.
///
/// `KEYS`: the sets, all of ids at score 0, then the range filters' sets (scored by the field).
/// `ARGV`: direction, lexicographic min and max, how many, the record key prefix (as for
/// [`PAGE`]), how many ids this call may look at, how many range sets, and each one's lowest
/// and highest score. The smallest set of ids at score 0 is read from the cursor, a run at a
/// time, and each id kept if every other such set holds it and each range set holds it with a
/// score within its bounds, until the page is full, the set ends, or the budget is spent. Answers `{ids,
/// jsons, min, max, ended}`: when `ended` is 0 the page is not full yet and the caller asks
/// again with the `min` and `max` answered, which go on after the last id looked at. So a page
/// costs the ids of one set up to its last entry, never a record that is not on it, and no
/// call holds Redis longer than its budget.
pub static PAGE_WHERE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local nr = tonumber(ARGV[7])
local n, d, best = #KEYS - nr, 1, nil
for i = 1, n do
  local c = redis.call('ZCARD', KEYS[i])
  if best == nil or c < best then d, best = i, c end
end
local asc, min, max = ARGV[1] == 'asc', ARGV[2], ARGV[3]
local want, budget, seen = tonumber(ARGV[4]), tonumber(ARGV[6]), 0
local ids, ended = {}, 1
while #ids < want do
  local chunk = math.min(math.max(want - #ids, 100), budget - seen)
  if chunk <= 0 then ended = 0 break end
  local got
  if asc then
    got = redis.call('ZRANGEBYLEX', KEYS[d], min, max, 'LIMIT', 0, chunk)
  else
    got = redis.call('ZREVRANGEBYLEX', KEYS[d], max, min, 'LIMIT', 0, chunk)
  end
  seen = seen + #got
  for i = 1, #got do
    local id, keep = got[i], true
    for j = 1, n do
      if j ~= d and not redis.call('ZSCORE', KEYS[j], id) then keep = false break end
    end
    for r = 1, keep and nr or 0 do
      local score = tonumber(redis.call('ZSCORE', KEYS[n + r], id) or '')
      if not score or score < tonumber(ARGV[6 + 2 * r]) or score > tonumber(ARGV[7 + 2 * r]) then
        keep = false
        break
      end
    end
    if keep then
      ids[#ids + 1] = id
      if #ids >= want then break end
    end
  end
  if #got < chunk then break end
  if asc then min = '(' .. got[#got] else max = '(' .. got[#got] end
end
local out = {}
for i = 1, #ids do
  out[i] = redis.call('HGET', ARGV[5] .. ids[i], 'json')
end
return {ids, out, min, max, ended}
"#,
    )
});

/// Authenticate an API key and charge its rate limit, and with the same round trip read the
/// objects the request names and claim its idempotency key.
///
/// `KEYS[1]`: the key's record, which also holds its rate-limit state (`tat`, the GCRA
/// theoretical arrival time in µs), so the check is one read and one write. `ARGV[1]`: requests
/// per second. `ARGV[2]`: how many objects to read, `n`; `ARGV[3..2+n]`: their ids (each read
/// as `v`, `json`, `internal`, `xref`). Then, optionally, the `Idempotency-Key` to claim: its
/// SHA-256, the owner (the request's id), the fingerprint of the parameters, the endpoint, the
/// claim's lifetime in ms. Everything besides the key record is in the key's own project and
/// mode, known only here: the caller cannot choose the scope.
///
/// The key check and the rate limit are [`key_check`]'s. Rejected requests do not consume
/// budget, read nothing and claim nothing. Answers `{'unknown'}`, `{'revoked'}`,
/// `{'limited', ms}` or one flat list: `'ok'` (`'uncharged:<code>'`: the rate limit could not
/// be charged, Redis refusing writes with that code, see [`key_check`]), project, mode, key id, the four fields of each object (a missing one nil), then the
/// claim's answer if one was asked: `new` (the key is now this request's), `running`,
/// `mismatch`, `other_endpoint` and the first endpoint, or `done` with the status, body and
/// first request id. Flat, because building and sending nested tables measured several
/// microseconds a call more (`redis-benchmark` of both shapes, a quarter of the script).
pub static AUTHENTICATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &(key_check()
            + r#"
local refused, rec, uncharged = key_check(KEYS[1], ARGV[1])
if refused then return refused end
local out = {uncharged and ('uncharged:' .. uncharged) or 'ok', rec[1], rec[2], rec[5]}
local scope = 'cp:{' .. rec[1] .. '}:' .. rec[2] .. ':'
local last = 2 + tonumber(ARGV[2])
for i = 3, last do
  local f = redis.call('HMGET', scope .. 'obj:' .. ARGV[i], 'v', 'json', 'internal', 'xref')
  out[#out + 1] = f[1]
  out[#out + 1] = f[2]
  out[#out + 1] = f[3]
  out[#out + 1] = f[4]
end
if ARGV[last + 1] then
  local k = scope .. 'idem:' .. ARGV[last + 1]
  local owner, fp, path = ARGV[last + 2], ARGV[last + 3], ARGV[last + 4]
  local cur = redis.call('HMGET', k, 'state', 'fp', 'path', 'status', 'body', 'req')
  if not cur[1] then
    redis.call('HSET', k, 'state', 'running', 'owner', owner, 'fp', fp, 'path', path, 'req', owner)
    redis.call('PEXPIRE', k, ARGV[last + 5])
    out[#out + 1] = 'new'
  elseif cur[3] ~= path then
    out[#out + 1] = 'other_endpoint'
    out[#out + 1] = cur[3]
  elseif cur[2] ~= fp then out[#out + 1] = 'mismatch'
  elseif cur[1] == 'running' then out[#out + 1] = 'running'
  else
    out[#out + 1] = 'done'
    out[#out + 1] = cur[4]
    out[#out + 1] = cur[5]
    out[#out + 1] = cur[6]
  end
end
return out
"#),
    )
});

/// Store an answer under a claimed idempotency key (`ARGV`: owner, status, body, ttl ms), only
/// if the claim is still ours.
pub static IDEMPOTENCY_FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'body', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"#,
    )
});

/// Release a claim whose answer is not kept (validation failures, 5xx): compare-and-delete,
/// so a claim that expired and was taken by another request is left alone. `ARGV`: the owner,
/// the claim's lock (ms). A claim that lives longer than its lock is held by a committed
/// change (`Tx::hold_claim`: a payment under way, whose command stores the answer) and is
/// kept whatever the request saw, so a retry replays instead of paying again. (Told by its
/// lifetime rather than a field, so holding costs the begin no write.)
pub static IDEMPOTENCY_RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local c = redis.call('HMGET', KEYS[1], 'owner', 'state')
if c[1] == ARGV[1] and c[2] == 'running' and redis.call('PTTL', KEYS[1]) <= tonumber(ARGV[2]) then
  return redis.call('DEL', KEYS[1])
end
return 0
"#,
    )
});

/// Forget a scope's events created before a cutoff, oldest first, a batch at a time: each
/// event's record, its place in the event list and in its type's list. `KEYS[1]`: the scope's
/// event list. `ARGV`: the record key prefix, the type list key prefix, the cutoff (`created`,
/// seconds), how many at most. Answers how many went and whether it stopped at a newer event
/// (`{n, 1}`) or ran out of batch (`{n, 0}`).
///
/// The list is in id order, which is creation order, so the first event at or after the cutoff
/// ends the sweep. `created` is the event's own time (a controllable clock's, in rehearsals);
/// an event written before records carried `type` and `created` is read from its JSON, whose
/// first `created` and last field (`type`) are the event's. A list entry whose record is gone
/// is dropped too.
pub static TRIM_EVENTS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local ids = redis.call('ZRANGEBYLEX', KEYS[1], '-', '+', 'LIMIT', 0, tonumber(ARGV[4]))
local cutoff = tonumber(ARGV[3])
local n = 0
for i = 1, #ids do
  local rec = ARGV[1] .. ids[i]
  local f = redis.call('HMGET', rec, 'type', 'created', 'json')
  local t, created = f[1], tonumber(f[2])
  if f[3] then
    if not created then created = tonumber(string.match(f[3], '"created":(%d+)')) end
    if not t then t = string.match(f[3], '"type":"([^"]*)"}$') end
    if created and created >= cutoff then return {n, 1} end
  end
  if t then redis.call('ZREM', ARGV[2] .. t, ids[i]) end
  redis.call('DEL', rec)
  redis.call('ZREM', KEYS[1], ids[i])
  n = n + 1
end
return {n, 0}
"#,
    )
});

/// Forget the oldest events of a scope's log, up to the first created at or after the cutoff:
/// the entries, their entries in their types' lists and their pending counts. (An entry's
/// `type` and `created` were `t` and `c` before they were named for operators; both read.)
///
/// `KEYS[1]`: the log, `KEYS[2]`: its pending counts. `ARGV`: the type lists' key prefix, the
/// cutoff (`created`, seconds), how many at most. Answers `{forgotten,
/// reached_newer}` as [`TRIM_EVENTS`] does.
pub static TRIM_LOG: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local cutoff, most = tonumber(ARGV[2]), tonumber(ARGV[3])
local gone = {}
local reached = 0
local from = '-'
-- From the head in steps of 50: most sweeps find the first entry inside the period and read
-- no further.
while reached == 0 and #gone < most do
  local entries = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', math.min(50, most - #gone))
  if #entries == 0 then break end
  for i = 1, #entries do
    local id, f = entries[i][1], entries[i][2]
    local kind, created
    for j = 1, #f, 2 do
      local name = f[j]
      if name == 'type' or name == 't' then kind = f[j + 1]
      elseif name == 'created' or name == 'c' then created = tonumber(f[j + 1]) end
    end
    if created and created >= cutoff then reached = 1 break end
    if kind then redis.call('XDEL', ARGV[1] .. kind, id) end
    gone[#gone + 1] = id
    from = '(' .. id
  end
  if #entries < 50 then break end
end
if #gone > 0 then
  redis.call('XDEL', KEYS[1], unpack(gone))
  redis.call('HDEL', KEYS[2], unpack(gone))
end
return {#gone, reached}
"#,
    )
});

/// Move webhook retries that are due into the delivery stream. `KEYS[1]`: the retry set
/// (scored by due time in ms), `KEYS[2]`: the delivery stream. `ARGV`: now (ms), how many.
/// Any number of daemons may run it at once: each retry moves exactly once.
pub static PROMOTE_DUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #due do
  redis.call('ZREM', KEYS[1], due[i])
  redis.call('XADD', KEYS[2], '*', 'd', due[i])
end
return #due
"#,
    )
});
