//! The Lua scripts. Each runs atomically inside Redis; together they are every multi-key
//! decision the daemon makes, so they are kept in one place and read as one protocol.

use std::sync::LazyLock;

use redis::Script;

/// Apply one state change: every check first, then every write, or nothing.
///
/// `KEYS`: every key touched. `ARGV[1]`: JSON `{"ops": [...], "tpl": [...]}`; every other
/// argument is a value, named in the operations by its `ARGV` index (`a` below), so records
/// arrive as they are, never escaped into the JSON. Operations name keys by `KEYS` index:
/// `["ver", k, v]` record `k` is still at version `v` (0: absent);
/// `["own", k, owner]` idempotency claim `k` is still held by `owner`;
/// `["put", k, v, a, [a, …]]` a record with extra (internal) field/value pairs;
/// `["hset", k, [a, …]]`; `["zadd", k, score, a]`; `["zrem", k, a]`;
/// `["xadd", k, [a, …]]`; `["xaddif", k, guard, [a, …]]` append only if key `guard`
/// exists; `["pexpire", k, ms]`;
/// `["cmd", k, group, consumer, [a, …]]` append a command and deliver it at once to
/// `consumer`, so from birth it sits in that daemon's pending list (a crash leaves it there
/// for recovery, and no other consumer can pick it up while it is being worked on);
/// `["ack", k, group, id]` acknowledge and delete a command;
/// `["hincrby", k, field, n]`; `["hdel", k, field]`; `["hsetnx", k, field, a]`;
/// `["seq", k, placeholder, prefix, width]` take the next number of counter `k` (how an
/// invoice gets a gap-free number: only a commit that happens takes one). Each `tpl` entry
/// `[a, placeholder, first, last]` then sets value `a` to `ARGV[first..last]` joined with that
/// number, before any write.
/// Answers `{'ok', <id of the last command appended or ''>}`.
pub static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local tx = cjson.decode(ARGV[1])
local ops = tx['ops']
local cmd_id = ''
local function vals(list)
  local out = {}
  for j = 1, #list do out[j] = ARGV[list[j]] end
  return out
end
for i = 1, #ops do
  local op = ops[i]
  if op[1] == 'ver' then
    local v = tonumber(redis.call('HGET', KEYS[op[2]], 'v') or '0')
    if v ~= tonumber(op[3]) then return {'conflict', KEYS[op[2]]} end
  elseif op[1] == 'own' then
    if redis.call('HGET', KEYS[op[2]], 'owner') ~= op[3] then return {'lost', KEYS[op[2]]} end
  end
end
local numbers = {}
for i = 1, #ops do
  local op = ops[i]
  if op[1] == 'seq' then
    local n = redis.call('INCR', KEYS[op[2]])
    numbers[op[3]] = op[4] .. string.format('%0' .. op[5] .. 'd', n)
  end
end
local tpl = tx['tpl']
for i = 1, #tpl do
  local t = tpl[i]
  local pieces = {}
  for j = t[3], t[4] do pieces[#pieces + 1] = ARGV[j] end
  ARGV[t[1]] = table.concat(pieces, numbers[t[2]])
end
local guards = {}
for i = 1, #ops do
  local op = ops[i]
  local k = KEYS[op[2]]
  local o = op[1]
  if o == 'put' then
    redis.call('HSET', k, 'v', op[3], 'json', ARGV[op[4]], unpack(vals(op[5])))
  elseif o == 'hset' then redis.call('HSET', k, unpack(vals(op[3])))
  elseif o == 'zadd' then redis.call('ZADD', k, op[3], ARGV[op[4]])
  elseif o == 'zrem' then redis.call('ZREM', k, ARGV[op[3]])
  elseif o == 'xadd' then redis.call('XADD', k, '*', unpack(vals(op[3])))
  elseif o == 'xaddif' then
    local g = guards[op[3]]
    if g == nil then
      g = redis.call('EXISTS', KEYS[op[3]]) == 1
      guards[op[3]] = g
    end
    if g then redis.call('XADD', k, '*', unpack(vals(op[4]))) end
  elseif o == 'pexpire' then redis.call('PEXPIRE', k, op[3])
  elseif o == 'cmd' then
    cmd_id = redis.call('XADD', k, '*', unpack(vals(op[5])))
    redis.call('XREADGROUP', 'GROUP', op[3], op[4], 'COUNT', 1000, 'STREAMS', k, '>')
  elseif o == 'hincrby' then redis.call('HINCRBY', k, op[3], op[4])
  elseif o == 'hdel' then redis.call('HDEL', k, op[3])
  elseif o == 'hsetnx' then redis.call('HSETNX', k, op[3], ARGV[op[4]])
  elseif o == 'ack' then
    redis.call('XACK', k, op[3], op[4])
    redis.call('XDEL', k, op[4])
  end
end
return {'ok', cmd_id}
"#,
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

/// Authenticate an API key and charge its rate limit, in one round trip.
///
/// `KEYS[1]`: the key's record, which also holds its rate-limit state (`tat`, the GCRA
/// theoretical arrival time in µs), so the check is one read and one write. `ARGV[1]`: requests
/// per second; `ARGV[2]`: an object id whose stored JSON to fetch from the key's own project and
/// mode in the same call (or empty): a `GET /v1/<objects>/<id>` then costs one round trip.
/// The limit is a GCRA token bucket holding one second of requests, timed by the Redis
/// server's clock so every daemon sharing the Redis enforces the same budget. Rejected requests
/// do not consume budget. `last_used` is refreshed at most once a minute.
pub static AUTHENTICATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local rec = redis.call('HMGET', KEYS[1], 'project', 'mode', 'revoked', 'last_used', 'id', 'tat')
if not rec[1] then return {'unknown'} end
if rec[3] == '1' then return {'revoked'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = math.floor(1000000 / tonumber(ARGV[1]))
local burst = 1000000
local tat = tonumber(rec[6] or '0') or 0
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > burst then
  return {'limited', tostring(math.ceil((new_tat - now - burst) / 1000))}
end
if tonumber(rec[4] or '0') < tonumber(t[1]) - 60 then
  redis.call('HSET', KEYS[1], 'tat', string.format('%d', new_tat), 'last_used', t[1])
else
  redis.call('HSET', KEYS[1], 'tat', string.format('%d', new_tat))
end
if ARGV[2] ~= '' then
  local json = redis.call('HGET', 'cp:{' .. rec[1] .. '}:' .. rec[2] .. ':obj:' .. ARGV[2], 'json')
  if json then return {'ok', rec[1], rec[2], rec[5], '1', json} end
  return {'ok', rec[1], rec[2], rec[5], '0', ''}
end
return {'ok', rec[1], rec[2], rec[5]}
"#,
    )
});

/// Claim an idempotency key, or report what the first request with it did.
///
/// `KEYS[1]`: the key's record. `ARGV`: owner (this request's id), fingerprint of the
/// parameters, endpoint, claim lifetime in ms. Answers `new`, `running`, `mismatch`,
/// `other_endpoint` (with the first endpoint) or `done` (with status, body, first request id).
pub static IDEMPOTENCY_BEGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local cur = redis.call('HMGET', KEYS[1], 'state', 'fp', 'path', 'status', 'body', 'req')
if not cur[1] then
  redis.call('HSET', KEYS[1], 'state', 'running', 'owner', ARGV[1], 'fp', ARGV[2],
             'path', ARGV[3], 'req', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return {'new'}
end
if cur[3] ~= ARGV[3] then return {'other_endpoint', cur[3]} end
if cur[2] ~= ARGV[2] then return {'mismatch'} end
if cur[1] == 'running' then return {'running'} end
return {'done', cur[4], cur[5], cur[6]}
"#,
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
/// so a claim that expired and was taken by another request is left alone.
pub static IDEMPOTENCY_RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] and redis.call('HGET', KEYS[1], 'state') == 'running' then
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
