//! The Lua scripts. Each runs atomically inside Redis; together they are every multi-key
//! decision the daemon makes, so they are kept in one place and read as one protocol. The Lua
//! itself is in `lua/*.lua` (one file a script, compiled in with `include_str!`), so it reads
//! and diffs as Lua; what each script takes and answers is documented here.

use std::sync::LazyLock;

use redis::Script;

use super::unavailability::Unavailability;

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
        include_str!("lua/key_check.lua")
    )
}

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
pub static COMMIT: LazyLock<Script> =
    LazyLock::new(|| Script::new(&(key_check() + include_str!("lua/commit.lua"))));

/// One page of a list index (a sorted set of ids with equal scores) and the records' JSON.
///
/// `KEYS[1]`: the index. `ARGV`: direction (`desc` newest first, `asc` oldest first), the
/// lexicographic min and max (`-`, `+`, `[id` or `(id`), how many, the record key prefix. The
/// caller turns cursors and `created` ranges into min and max, and reverses `asc` pages so
/// every page reads newest first.
pub static PAGE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/page.lua")));

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
pub static PAGE_WHERE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/page_where.lua")));

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
pub static AUTHENTICATE: LazyLock<Script> =
    LazyLock::new(|| Script::new(&(key_check() + include_str!("lua/authenticate.lua"))));

/// Store an answer under a claimed idempotency key (`ARGV`: owner, status, body, ttl ms), only
/// if the claim is still ours.
pub static IDEMPOTENCY_FINISH: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/idempotency_finish.lua")));

/// Release a claim whose answer is not kept (validation failures, 5xx): compare-and-delete,
/// so a claim that expired and was taken by another request is left alone. `ARGV`: the owner,
/// the claim's lock (ms). A claim that lives longer than its lock is held by a committed
/// change (`Tx::hold_claim`: a payment under way, whose command stores the answer) and is
/// kept whatever the request saw, so a retry replays instead of paying again. (Told by its
/// lifetime rather than a field, so holding costs the begin no write.)
pub static IDEMPOTENCY_RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/idempotency_release.lua")));

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
pub static TRIM_EVENTS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/trim_events.lua")));

/// Forget the oldest events of a scope's log, up to the first created at or after the cutoff:
/// the entries, their entries in their types' lists and their pending counts. (An entry's
/// `type` and `created` were `t` and `c` before they were named for operators; both read.)
///
/// `KEYS[1]`: the log, `KEYS[2]`: its pending counts. `ARGV`: the type lists' key prefix, the
/// cutoff (`created`, seconds), how many at most. Answers `{forgotten,
/// reached_newer}` as [`TRIM_EVENTS`] does.
pub static TRIM_LOG: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/trim_log.lua")));

/// Move webhook retries that are due into the delivery stream. `KEYS[1]`: the retry set
/// (scored by due time in ms), `KEYS[2]`: the delivery stream. `ARGV`: now (ms), how many.
/// Any number of daemons may run it at once: each retry moves exactly once.
pub static PROMOTE_DUE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/promote_due.lua")));
