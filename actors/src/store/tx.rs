//! [`Tx`]: the writes of one state change, and how they travel to the commit script.
//!
//! Operations name keys by their index in `KEYS` and values by their index in `ARGV`, so the
//! records' JSON travels as plain script arguments, never escaped into the operation list. The
//! operation list itself is a line of short codes and integers (see [`scripts::COMMIT`]): the
//! script splits it once and walks it with a cursor. Decoding it as JSON built a Lua table for
//! every operation and every list of indexes and parsed each number with `strtod`, which cost
//! Redis more than the writes themselves in a commit of many operations.
//!
//! [`scripts::COMMIT`]: super::scripts::COMMIT

use std::borrow::Cow;

use calmony_protocol::event::Event;
use serde::Serialize;

use super::claim::{Answers, ClaimRef, FreshClaim};
use super::scope::Scope;
use super::{filters, packed, plain, top_level};

/// The phase of the operations that write (see [`Op::phase`]).
const WRITE: u8 = 3;

/// One operation. `k`/`guard`: `KEYS` indexes; every other `usize` an `ARGV` index; a list of
/// values is a run of consecutive arguments, `(first, count)`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    /// Record `k` is still at `version` (0: absent).
    Ver {
        k: usize,
        version: u64,
    },
    /// Idempotency claim `k` is still held by `owner`.
    Own {
        k: usize,
        owner: usize,
    },
    /// Key `k` does not exist (an idempotency claim this change makes; see
    /// [`Tx::claim_fresh`]).
    Absent {
        k: usize,
    },
    /// The API key of record `k` is good, of `project` and `mode`, and is charged a request.
    Key {
        k: usize,
        per_second: u64,
        project: usize,
        mode: usize,
    },
    /// Take the next number of counter `k`, as `prefix` + six digits.
    Seq {
        k: usize,
        prefix: usize,
    },
    /// A record: `v`, `json` = `body`, then `extra` internal field/value pairs after `body`.
    Put {
        k: usize,
        version: u64,
        body: usize,
        extra: usize,
    },
    Hset {
        k: usize,
        first: usize,
        count: usize,
    },
    Zadd {
        k: usize,
        score: i64,
        member: usize,
    },
    Zrem {
        k: usize,
        member: usize,
    },
    Xadd {
        k: usize,
        first: usize,
        count: usize,
    },
    Pexpire {
        k: usize,
        ms: u64,
    },
    /// Append a command and deliver it at once to `consumer` of `group`.
    Cmd {
        k: usize,
        group: usize,
        consumer: usize,
        first: usize,
        count: usize,
    },
    /// Acknowledge and delete entry `id` of `group`.
    Ack {
        k: usize,
        group: usize,
        id: usize,
    },
    Hincrby {
        k: usize,
        field: usize,
        by: i64,
    },
    Hdel {
        k: usize,
        field: usize,
    },
    Hsetnx {
        k: usize,
        field: usize,
        value: usize,
    },
    /// Hash `k` gets the `count` field/value values from `first` only if its first field is
    /// absent, and then `member` joins sorted set `set` at `score`.
    Once {
        k: usize,
        first: usize,
        count: usize,
        set: usize,
        score: i64,
        member: usize,
    },
    /// Entry `id` of stream `k` is still pending in `group` (not yet acknowledged).
    Unacked {
        k: usize,
        group: usize,
        id: usize,
    },
    /// Index record `k` (id `id`) under `values` of a list filter's `field` (see
    /// [`super::filters`]): its sets are `prefix` + each value; a `range` field's one set is
    /// `prefix`, scored by its one value.
    Index {
        k: usize,
        field: usize,
        prefix: usize,
        id: usize,
        values: usize,
        range: bool,
        /// The record is created by this commit: join the sets, read and leave nothing.
        fresh: bool,
    },
    /// Append an event (see [`super::event_log`]). `keys`: the log, the type list its entry
    /// ID goes to, the fan-out stream, and the key that must exist for the fan-out entry (the
    /// project's endpoints); `args`: the packed JSON, the type, `created`, the id of the
    /// object it is about.
    Event {
        keys: [usize; 4],
        args: [usize; 4],
    },
}

impl Op {
    /// The script runs every check, then the key check (which charges the rate limit, so
    /// only once the change is sure to happen), then takes every number, then writes: the
    /// list it gets is in that order whatever order the change was built in.
    fn phase(&self) -> u8 {
        match self {
            Op::Ver { .. } | Op::Own { .. } | Op::Absent { .. } | Op::Unacked { .. } => 0,
            Op::Key { .. } => 1,
            Op::Seq { .. } => 2,
            _ => WRITE,
        }
    }

    fn key(&self) -> usize {
        match self {
            Op::Ver { k, .. }
            | Op::Own { k, .. }
            | Op::Absent { k }
            | Op::Key { k, .. }
            | Op::Seq { k, .. }
            | Op::Put { k, .. }
            | Op::Hset { k, .. }
            | Op::Zadd { k, .. }
            | Op::Zrem { k, .. }
            | Op::Xadd { k, .. }
            | Op::Pexpire { k, .. }
            | Op::Cmd { k, .. }
            | Op::Ack { k, .. }
            | Op::Hincrby { k, .. }
            | Op::Hdel { k, .. }
            | Op::Hsetnx { k, .. }
            | Op::Once { k, .. }
            | Op::Unacked { k, .. }
            | Op::Index { k, .. } => *k,
            Op::Event { keys, .. } => keys[0],
        }
    }

    /// The same operation with its key indexes moved up by `keys` and its value indexes by
    /// `args` (another change's operations appended after this one's).
    fn shifted(mut self, keys: usize, args: usize) -> Op {
        match &mut self {
            Op::Ver { k, .. } | Op::Absent { k } | Op::Pexpire { k, .. } => *k += keys,
            Op::Key {
                k, project, mode, ..
            } => {
                *k += keys;
                *project += args;
                *mode += args;
            }
            Op::Own { k, owner: a }
            | Op::Seq { k, prefix: a }
            | Op::Put { k, body: a, .. }
            | Op::Hset { k, first: a, .. }
            | Op::Zadd { k, member: a, .. }
            | Op::Zrem { k, member: a }
            | Op::Xadd { k, first: a, .. }
            | Op::Hincrby { k, field: a, .. }
            | Op::Hdel { k, field: a } => {
                *k += keys;
                *a += args;
            }
            Op::Cmd {
                k,
                group,
                consumer,
                first,
                ..
            } => {
                *k += keys;
                *group += args;
                *consumer += args;
                *first += args;
            }
            Op::Ack { k, group, id } | Op::Unacked { k, group, id } => {
                *k += keys;
                *group += args;
                *id += args;
            }
            Op::Event { keys: k, args: a } => {
                k.iter_mut().for_each(|k| *k += keys);
                a.iter_mut().for_each(|a| *a += args);
            }
            Op::Hsetnx { k, field, value } => {
                *k += keys;
                *field += args;
                *value += args;
            }
            Op::Once {
                k,
                first,
                set,
                member,
                ..
            } => {
                *k += keys;
                *set += keys;
                *first += args;
                *member += args;
            }
            Op::Index {
                k,
                field,
                prefix,
                id,
                values,
                ..
            } => {
                *k += keys;
                for a in [field, prefix, id, values] {
                    *a += args;
                }
            }
        }
        self
    }

    /// The operation as the script reads it: a code, then integers.
    fn encode(&self, out: &mut OpList) {
        match *self {
            Op::Ver { k, version } => out.code("V").int(k).int(version),
            Op::Own { k, owner } => out.code("O").int(k).int(owner),
            Op::Absent { k } => out.code("NX").int(k),
            Op::Key {
                k,
                per_second,
                project,
                mode,
            } => out.code("K").int(k).int(per_second).int(project).int(mode),
            Op::Seq { k, prefix } => out.code("S").int(k).int(prefix),
            Op::Put {
                k,
                version,
                body,
                extra,
            } => out.code("P").int(k).text(version).int(body).int(extra),
            Op::Hset { k, first, count } => out.code("H").int(k).int(first).int(count),
            Op::Zadd { k, score, member } => out.code("Z").int(k).text(score).int(member),
            Op::Zrem { k, member } => out.code("R").int(k).int(member),
            Op::Xadd { k, first, count } => out.code("X").int(k).int(first).int(count),
            Op::Pexpire { k, ms } => out.code("E").int(k).text(ms),
            Op::Cmd {
                k,
                group,
                consumer,
                first,
                count,
            } => out
                .code("C")
                .int(k)
                .int(group)
                .int(consumer)
                .int(first)
                .int(count),
            Op::Ack { k, group, id } => out.code("A").int(k).int(group).int(id),
            Op::Hincrby { k, field, by } => out.code("I").int(k).int(field).text(by),
            Op::Hdel { k, field } => out.code("D").int(k).int(field),
            Op::Hsetnx { k, field, value } => out.code("N").int(k).int(field).int(value),
            Op::Once {
                k,
                first,
                count,
                set,
                score,
                member,
            } => out
                .code("HO")
                .int(k)
                .int(first)
                .int(count)
                .int(set)
                .text(score)
                .int(member),
            Op::Unacked { k, group, id } => out.code("VP").int(k).int(group).int(id),
            Op::Index {
                k,
                field,
                prefix,
                id,
                values,
                range,
                fresh,
            } => out
                .code(match (range, fresh) {
                    (false, false) => "IX",
                    (true, false) => "IR",
                    (false, true) => "IXN",
                    (true, true) => "IRN",
                })
                .int(k)
                .int(field)
                .int(prefix)
                .int(id)
                .int(values),
            Op::Event { keys, args } => keys
                .into_iter()
                .chain(args)
                .fold(out.code("EV"), |out, i| out.int(i)),
        };
    }
}

/// The operation list as the script receives it (`ARGV[1]`): one MessagePack array of codes,
/// integers (indexes, and the versions checked) and texts (the numbers the script writes as
/// they are: versions, scores, expiries, increments), encoded by `rmp-serde`. Redis's
/// `cmsgpack.unpack` turns it into a flat Lua table in C; splitting a line of words with
/// `string.gmatch` and `tonumber` on each cost the script about 20 µs per commit (a 100-word
/// list, measured in Redis 7.0) against 4 µs so. Flat rather than an array per operation, so
/// the script builds one table, not one per operation. The sandbox gateway's change script
/// reads its operations the same way.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(transparent)]
pub struct OpList {
    words: Vec<Word>,
}

/// One item of an [`OpList`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Word {
    /// An operation's code (`P`, `cas`): a MessagePack string, a Lua string.
    Code(&'static str),
    /// A `KEYS` or `ARGV` index, a count, or a version the script compares: a MessagePack
    /// unsigned integer in its shortest form, a Lua number.
    Int(u64),
    /// A number the script hands to Redis as it is: a string of its decimal digits. Lua's
    /// numbers are doubles, and `redis.call` would turn a large one into `1e+15`.
    #[serde(serialize_with = "decimal")]
    Text(i128),
}

fn decimal<S: serde::Serializer>(n: &i128, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(n)
}

impl OpList {
    pub fn code(&mut self, code: &'static str) -> &mut Self {
        self.words.push(Word::Code(code));
        self
    }

    pub fn int(&mut self, n: impl TryInto<u64>) -> &mut Self {
        self.words.push(Word::Int(n.try_into().unwrap_or(u64::MAX)));
        self
    }

    fn text(&mut self, n: impl Into<i128>) -> &mut Self {
        self.words.push(Word::Text(n.into()));
        self
    }

    /// Append another list's items after this one's.
    pub fn extend(&mut self, other: &OpList) -> &mut Self {
        self.words.extend_from_slice(&other.words);
        self
    }

    /// The list as the script's `ARGV[1]`: a MessagePack array (`rmp_serde::to_vec`: a
    /// sequence is an array whatever the naming, and the list holds no struct).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Encoding codes, integers and texts into a Vec has no failure mode; should it ever
        // fail, the empty argument makes the script refuse the commit, writing nothing.
        rmp_serde::to_vec(self).unwrap_or_default()
    }
}

/// The writes of one state change, applied atomically by [`super::Store::commit`].
#[derive(Debug, Default)]
pub struct Tx {
    pub(super) keys: Vec<String>,
    ops: Vec<Op>,
    /// Script arguments after the operation list: `ARGV[i + 2]` is `args[i]`.
    args: Vec<String>,
    /// `(placeholder, index of its Seq among the Seq operations)` (see [`Tx::number`]).
    numbers: Vec<(String, usize)>,
    /// Values other than records' and events' JSON that travel packed (stored answers).
    packed: Vec<usize>,
}

impl Tx {
    pub fn new() -> Self {
        Self::default()
    }

    fn k(&mut self, key: &str) -> usize {
        match self.keys.iter().position(|k| k == key) {
            Some(i) => i + 1,
            None => {
                self.keys.push(key.to_string());
                self.keys.len()
            }
        }
    }

    /// A value as a script argument; answers its `ARGV` index.
    fn v(&mut self, value: &str) -> usize {
        self.args.push(value.to_string());
        self.args.len() + 1
    }

    /// Field/value pairs as consecutive arguments: `(first, count)`.
    fn vs(&mut self, pairs: &[(&str, &str)]) -> (usize, usize) {
        let first = self.args.len() + 2;
        for (a, b) in pairs {
            self.v(a);
            self.v(b);
        }
        (first, pairs.len() * 2)
    }

    /// The record must still be at `version` (0: must not exist).
    pub fn expect_version(&mut self, key: &str, version: u64) -> &mut Self {
        let k = self.k(key);
        self.ops.push(Op::Ver { k, version });
        self
    }

    /// The request's API key must be good, of `scope`, and is charged one request against
    /// its rate limit of `per_second` (a refusal answers [`super::Commit::Refused`]): the
    /// key check of a request that deferred it to its commit.
    pub fn check_key(&mut self, record: &str, per_second: u64, scope: &Scope) -> &mut Self {
        let k = self.k(record);
        let project = self.v(&scope.project);
        let mode = self.v(scope.mode.as_str());
        self.ops.push(Op::Key {
            k,
            per_second,
            project,
            mode,
        });
        self
    }

    /// Write a record at `version` (the version read plus one).
    pub fn put(&mut self, key: &str, version: u64, json: &str) -> &mut Self {
        self.put_with(key, version, json, &[])
    }

    /// Write a record with internal fields kept beside its JSON (never answered to clients).
    /// The JSON is stored packed (see [`packed`]); the internal fields as they are, and so are
    /// the plain fields an operator reads with `redis-cli`, taken from the JSON here (see
    /// [`plain`]).
    pub fn put_with(
        &mut self,
        key: &str,
        version: u64,
        json: &str,
        internal: &[(&str, &str)],
    ) -> &mut Self {
        let k = self.k(key);
        let body = self.v(json);
        let (_, mut extra) = self.vs(internal);
        // A record of a filtered kind is parsed once for its plain fields and its filters.
        let (plain, filtered) = match filters::of_record(key) {
            Some((list, id, kind)) => {
                let value = top_level::object(json, |name| {
                    kind.reads(name) || plain::FIELDS.contains(&name)
                });
                let memberships = filters::memberships_of(kind, &value);
                (plain::fields_of(&value), Some((list, id, memberships)))
            }
            None => (plain::fields(json), None),
        };
        for (field, value) in plain {
            self.v(field);
            self.args.push(value);
            extra += 2;
        }
        // Version 1 is a record this commit creates (the version a check of 0 allows): it is
        // in no filter set yet, so its filter values ride in the same HSET and its index
        // operations only join sets, reading nothing.
        let fresh = version == 1;
        if let (true, Some((_, _, memberships))) = (fresh, &filtered) {
            for m in memberships {
                self.v(&filters::stored_field(m.field));
                self.args.push(m.joined());
                extra += 2;
            }
        }
        self.ops.push(Op::Put {
            k,
            version,
            body,
            extra,
        });
        if let Some((list, id, memberships)) = filtered {
            self.index_memberships(key, &list, id, memberships, fresh);
        }
        self
    }

    /// Keep a record of a filtered kind in its list filters' sets, from the JSON written for
    /// it (see [`filters`]): one `IX` per field, moving the id only if the values changed.
    pub fn index_filters(&mut self, key: &str, json: &str) -> &mut Self {
        if let Some((list, id, kind)) = filters::of_record(key) {
            self.index_memberships(key, &list, id, filters::memberships(kind, json), false);
        }
        self
    }

    /// One index operation per filter field of record `key` (id `id`) in `list`; `fresh`: the
    /// record is created by this commit, with its stored filter values in its put.
    fn index_memberships(
        &mut self,
        key: &str,
        list: &str,
        id: &str,
        memberships: Vec<filters::Membership>,
        fresh: bool,
    ) {
        let k = self.k(key);
        let id = self.v(id);
        for m in memberships {
            let field = self.v(&filters::stored_field(m.field));
            let prefix = self.v(&if m.range {
                filters::range_key(list, m.field)
            } else {
                filters::filter_key(list, m.field, "")
            });
            let values = self.v(&m.joined());
            self.ops.push(Op::Index {
                k,
                field,
                prefix,
                id,
                values,
                range: m.range,
                fresh,
            });
        }
    }

    /// Append a command to `stream`, delivered at once to `consumer` of `group`.
    pub fn command(
        &mut self,
        stream: &str,
        group: &str,
        consumer: &str,
        fields: &[(&str, &str)],
    ) -> &mut Self {
        let k = self.k(stream);
        let (group, consumer) = (self.v(group), self.v(consumer));
        let (first, count) = self.vs(fields);
        self.ops.push(Op::Cmd {
            k,
            group,
            consumer,
            first,
            count,
        });
        self
    }

    pub fn hincrby(&mut self, key: &str, field: &str, by: i64) -> &mut Self {
        let k = self.k(key);
        let field = self.v(field);
        self.ops.push(Op::Hincrby { k, field, by });
        self
    }

    pub fn hdel(&mut self, key: &str, field: &str) -> &mut Self {
        let k = self.k(key);
        let field = self.v(field);
        self.ops.push(Op::Hdel { k, field });
        self
    }

    pub fn hsetnx(&mut self, key: &str, field: &str, value: &str) -> &mut Self {
        let k = self.k(key);
        let (field, value) = (self.v(field), self.v(value));
        self.ops.push(Op::Hsetnx { k, field, value });
        self
    }

    /// Write `fields` to hash `key` only if it has none of them yet (the first is the guard),
    /// and then add `member` to `set` at `score`: something made once by whichever change
    /// comes first (a settlement batch), which later changes do not write again.
    pub fn create_once(
        &mut self,
        key: &str,
        fields: &[(&str, &str)],
        set: &str,
        score: i64,
        member: &str,
    ) -> &mut Self {
        if fields.is_empty() {
            return self;
        }
        let k = self.k(key);
        let (first, count) = self.vs(fields);
        let set = self.k(set);
        let member = self.v(member);
        self.ops.push(Op::Once {
            k,
            first,
            count,
            set,
            score,
            member,
        });
        self
    }

    /// Add a member to a sorted set with a score (due times of scheduled work).
    pub fn schedule(&mut self, set: &str, due_ms: i64, member: &str) -> &mut Self {
        let k = self.k(set);
        let member = self.v(member);
        self.ops.push(Op::Zadd {
            k,
            score: due_ms,
            member,
        });
        self
    }

    /// Append an entry to a stream (no consumer is chosen: the group's readers share it).
    /// Nothing is appended without fields: Redis would refuse the `XADD` midway through the
    /// script, after earlier writes had landed.
    pub fn append(&mut self, stream: &str, fields: &[(&str, &str)]) -> &mut Self {
        if fields.is_empty() {
            return self;
        }
        let k = self.k(stream);
        let (first, count) = self.vs(fields);
        self.ops.push(Op::Xadd { k, first, count });
        self
    }

    /// Take the next number of `counter` as `prefix` + six digits, written wherever
    /// `placeholder` appears in this transaction's writes.
    pub fn number(&mut self, counter: &str, placeholder: &str, prefix: &str) -> &mut Self {
        let k = self.k(counter);
        let prefix = self.v(prefix);
        let ordinal = self.numbers.len();
        self.ops.push(Op::Seq { k, prefix });
        self.numbers.push((placeholder.to_string(), ordinal));
        self
    }

    /// Acknowledge (and delete) a finished command.
    pub fn ack(&mut self, stream: &str, group: &str, id: &str) -> &mut Self {
        let k = self.k(stream);
        let (group, id) = (self.v(group), self.v(id));
        self.ops.push(Op::Ack { k, group, id });
        self
    }

    /// Keep an idempotency claim alive (still running) for `ms`: a change that will finish
    /// later, perhaps in another process, holds the key until its answer is stored. `ms` must
    /// exceed any claim's lock: a claim living longer than its lock is held, and is never
    /// released (see `scripts::IDEMPOTENCY_RELEASE`), so a request that saw this commit fail
    /// (a timeout, with the commit applied after all) cannot free the key for a retry to start
    /// the change a second time.
    pub fn hold_claim<'c>(&mut self, claim: impl Into<ClaimRef<'c>>, ms: u64) -> &mut Self {
        let claim = claim.into();
        let k = self.k(claim.redis_key);
        let owner = self.v(claim.owner);
        self.ops.push(Op::Own { k, owner });
        self.ops.push(Op::Pexpire { k, ms });
        self
    }

    /// Add an id to a list index.
    pub fn index(&mut self, index: &str, id: &str) -> &mut Self {
        let k = self.k(index);
        let member = self.v(id);
        self.ops.push(Op::Zadd {
            k,
            score: 0,
            member,
        });
        self
    }

    pub fn unindex(&mut self, index: &str, id: &str) -> &mut Self {
        let k = self.k(index);
        let member = self.v(id);
        self.ops.push(Op::Zrem { k, member });
        self
    }

    /// Setting no fields writes nothing (an empty `HSET` would fail midway through the script).
    pub fn hset(&mut self, key: &str, fields: &[(&str, &str)]) -> &mut Self {
        if fields.is_empty() {
            return self;
        }
        let k = self.k(key);
        let (first, count) = self.vs(fields);
        self.ops.push(Op::Hset { k, first, count });
        self
    }

    pub fn expire_ms(&mut self, key: &str, ms: u64) -> &mut Self {
        let k = self.k(key);
        self.ops.push(Op::Pexpire { k, ms });
        self
    }

    /// Append an event to its scope's log (see [`super::event_log`]): the entry (type,
    /// `created` and the id of its object, plain; the packed JSON), its entry ID in its type's
    /// list, and, for a project with webhook endpoints, an entry on the project's event stream
    /// for delivery, naming the event by its entry ID (the fan-out derives the id from it, as
    /// every reader does).
    /// Only a project with endpoints needs the event queued, and the check is inside the
    /// commit, so an endpoint created concurrently either predates the event (and hears of
    /// it) or follows it (and, as with Stripe, does not).
    pub fn event(&mut self, scope: &Scope, event: &Event) -> &mut Self {
        let json = serde_json::to_string(event).unwrap_or_default();
        let keys = [
            self.k(&scope.event_log()),
            self.k(&scope.event_type_log(&event.kind)),
            self.k(&scope.event_stream()),
            self.k(&scope.key("webhook_endpoints")),
        ];
        let object = plain::object_id(event.data.object.get()).unwrap_or_default();
        let args = [
            self.v(&json),
            self.v(&event.kind),
            self.v(&event.created.to_string()),
            self.v(&object),
        ];
        self.ops.push(Op::Event { keys, args });
        self
    }

    /// The commit applies only while entry `id` of `stream` is unacknowledged in `group`: a
    /// stream entry is then processed once even if two readers hold it.
    pub fn expect_unacked(&mut self, stream: &str, group: &str, id: &str) -> &mut Self {
        let k = self.k(stream);
        let (group, id) = (self.v(group), self.v(id));
        self.ops.push(Op::Unacked { k, group, id });
        self
    }

    /// Store the request's answer under its idempotency key, if it has one, as part of this
    /// change: a crash can then never leave a change without its answer or the reverse.
    pub fn respond(&mut self, to: &(impl Answers + ?Sized), status: u16, body: &str) -> &mut Self {
        if let Some(answer) = to.answer() {
            self.respond_to(answer.claim, answer.ttl_secs, status, body);
        }
        self
    }

    /// Store the answer under a claim carried by a command (the request may be long gone).
    pub fn respond_to<'c>(
        &mut self,
        claim: impl Into<ClaimRef<'c>>,
        ttl_secs: u64,
        status: u16,
        body: &str,
    ) -> &mut Self {
        let claim = claim.into();
        let k = self.k(claim.redis_key);
        let owner = self.v(claim.owner);
        self.ops.push(Op::Own { k, owner });
        let status = status.to_string();
        let (first, count) = self.vs(&[("state", "done"), ("status", &status), ("body", body)]);
        // Kept a day and read only by a replay: packed, like the records it reports.
        self.packed.push(first + count - 1);
        self.ops.push(Op::Hset { k, first, count });
        self.ops.push(Op::Pexpire {
            k,
            ms: ttl_secs * 1000,
        });
        self
    }

    /// Make idempotency claim `fresh` in this change, for a request that claimed nothing
    /// before it (its key check, which claims keys, was deferred to this commit; see
    /// `RequestContext::vouch`): the claim must not exist, and is written as the key check
    /// writes it (`running`, owned by the request, with the request's fingerprint and
    /// endpoint) before any other write of it, so the change's answer or hold lands on it.
    /// The change's checks that the request still holds the claim become that one check. A
    /// change that neither answers under the claim nor holds it gets the claim's lock, as the
    /// key check would have given it.
    pub fn claim_fresh(&mut self, fresh: FreshClaim<'_>) -> &mut Self {
        let claim = fresh.claim;
        let k = self.k(claim.redis_key);
        self.ops
            .retain(|op| !matches!(op, Op::Own { k: own, .. } if *own == k));
        let expires = self
            .ops
            .iter()
            .any(|op| matches!(op, Op::Pexpire { k: e, .. } if *e == k));
        let (first, count) = self.vs(&[
            ("state", "running"),
            ("owner", claim.owner),
            ("fp", fresh.fingerprint),
            ("path", fresh.endpoint),
            ("req", claim.owner),
        ]);
        // Writes go out in the order they were made: the claim's first.
        self.ops.insert(0, Op::Absent { k });
        self.ops.insert(1, Op::Hset { k, first, count });
        if !expires {
            self.ops.push(Op::Pexpire {
                k,
                ms: fresh.lock_ms,
            });
        }
        self
    }

    /// The same writes without the idempotency checks and answers (for a retry after the
    /// claim was lost: the change itself must still happen).
    pub fn without_answers(&self) -> Tx {
        let claim_keys: Vec<usize> = self
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Own { k, .. } => Some(*k),
                _ => None,
            })
            .collect();
        Tx {
            keys: self.keys.clone(),
            ops: self
                .ops
                .iter()
                .filter(|op| !claim_keys.contains(&op.key()))
                .cloned()
                .collect(),
            args: self.args.clone(),
            numbers: self.numbers.clone(),
            packed: self.packed.clone(),
        }
    }

    /// Whether this change only writes (no version or claim checks, no numbers): such changes
    /// can share one commit (see [`super::Batcher`]) without one's check failing the others.
    pub fn is_unchecked(&self) -> bool {
        self.ops.iter().all(|op| op.phase() == WRITE)
    }

    /// Append another change's checks and writes, its keys and values renumbered after this
    /// one's (its own numbers, if it takes any, are not carried).
    pub(crate) fn absorb(&mut self, other: Tx) {
        let (keys, args) = (self.keys.len(), self.args.len());
        self.ops
            .extend(other.ops.into_iter().map(|op| op.shifted(keys, args)));
        self.keys.extend(other.keys);
        self.args.extend(other.args);
        self.packed
            .extend(other.packed.into_iter().map(|i| i + args));
    }

    /// The index entries (`ZADD`s) of this change that can go to Redis as one `ZADD` per
    /// index: for each index key with more than one entry and no removal (a removal between
    /// two additions of the same member decides the outcome by its order), the positions of
    /// its entries. A batch of webhook delivery attempts adds many to its endpoints' and
    /// events' attempt lists; each `ZADD` inside the script costs its own call (about 2 µs of
    /// Lua around it and its share of the AOF).
    fn joined_index_entries(&self) -> std::collections::HashMap<usize, Vec<usize>> {
        let mut by_key: std::collections::HashMap<usize, Vec<usize>> =
            std::collections::HashMap::new();
        let mut removed = Vec::new();
        for (i, op) in self.ops.iter().enumerate() {
            match op {
                Op::Zadd { k, .. } => by_key.entry(*k).or_default().push(i),
                Op::Zrem { k, .. } => removed.push(*k),
                _ => {}
            }
        }
        by_key.retain(|k, entries| entries.len() > 1 && !removed.contains(k));
        by_key
    }

    /// The script's arguments: the operation list, the values, then, for each plain value that
    /// carries a number's placeholder, its pieces around it (the script joins them with the
    /// number it takes, so no pattern substitution runs over the records inside Redis).
    /// Every record's JSON (a `Put`'s body) travels packed; a packed value that carries a
    /// placeholder is compressed whole and the script appends the number to it as a raw frame
    /// (`TZ`), which a reader puts in the placeholder's place (see [`packed`]).
    pub(super) fn script_args(&self) -> (Vec<u8>, Vec<Cow<'_, [u8]>>) {
        let mut bodies: Vec<usize> = self
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Put { body, .. } => Some(body - 2),
                Op::Event { args, .. } => Some(args[0] - 2),
                _ => None,
            })
            .chain(self.packed.iter().map(|i| i - 2))
            .collect();
        bodies.sort_unstable();
        let is_packed = |i: usize| bodies.binary_search(&i).is_ok();
        let templated = |arg: &str| self.numbers.iter().any(|(p, _)| arg.contains(p.as_str()));
        let mut argv: Vec<Cow<'_, [u8]>> = self
            .args
            .iter()
            .enumerate()
            .map(|(i, arg)| {
                if is_packed(i) && !templated(arg) {
                    Cow::Owned(packed::pack(arg))
                } else {
                    Cow::Borrowed(arg.as_bytes())
                }
            })
            .collect();
        let mut header = OpList::default();
        let joined = self.joined_index_entries();
        for phase in 0..=WRITE {
            for (i, op) in self.ops.iter().enumerate() {
                if op.phase() != phase {
                    continue;
                }
                match (op, joined.get(&op.key())) {
                    // The first entry of a joined index carries them all; the rest are in it.
                    (Op::Zadd { k, .. }, Some(entries)) if entries[0] == i => {
                        header.code("ZM").int(*k).int(entries.len());
                        for &j in entries {
                            if let Op::Zadd { score, member, .. } = self.ops[j] {
                                header.text(score).int(member);
                            }
                        }
                    }
                    (Op::Zadd { .. }, Some(_)) => {}
                    _ => op.encode(&mut header),
                }
            }
            if phase != WRITE - 1 {
                continue;
            }
            // After the numbers are taken, before any write: a packed value that holds a
            // placeholder gets the number appended (`TZ value number`); a plain one travels
            // only as its pieces (`T value number first last`).
            for (placeholder, ordinal) in &self.numbers {
                for (i, arg) in self.args.iter().enumerate() {
                    if !arg.contains(placeholder.as_str()) {
                        continue;
                    }
                    if is_packed(i) {
                        argv[i] = Cow::Owned(packed::pack_templated(arg, placeholder));
                        header.code("TZ").int(i + 2).int(ordinal + 1);
                        continue;
                    }
                    argv[i] = Cow::Borrowed(&[][..]);
                    let first = argv.len() + 2;
                    argv.extend(
                        arg.split(placeholder.as_str())
                            .map(|p| Cow::Borrowed(p.as_bytes())),
                    );
                    header
                        .code("T")
                        .int(i + 2)
                        .int(ordinal + 1)
                        .int(first)
                        .int(argv.len() + 1);
                }
            }
        }
        (header.to_bytes(), argv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each operation as the script reads it from the encoded arguments: its code, its key
    /// (and guard key), and the values it names, in order.
    fn resolve(tx: &Tx) -> Vec<(String, Vec<String>, Vec<String>)> {
        let (header, argv) = script_text(tx);
        let t: Vec<&str> = header.split_whitespace().collect();
        let mut out = Vec::new();
        let mut p = 0;
        while p < t.len() {
            let n = |i: usize| t[p + i].parse::<usize>().expect("integer");
            let key = |i: usize| tx.keys[n(i) - 1].clone();
            let arg = |i: usize| shown(&argv[n(i) - 2]);
            let run = |i: usize| {
                (n(i)..n(i) + n(i + 1))
                    .map(|a| shown(&argv[a - 2]))
                    .collect::<Vec<_>>()
            };
            let literal = |i: usize| t[p + i].to_string();
            let (keys, values, len) = match t[p] {
                "V" | "E" => (vec![key(1)], vec![literal(2)], 3),
                "NX" => (vec![key(1)], Vec::new(), 2),
                "K" => (vec![key(1)], vec![literal(2), arg(3), arg(4)], 5),
                "O" | "S" | "R" | "D" => (vec![key(1)], vec![arg(2)], 3),
                "T" => (Vec::new(), vec![literal(1), literal(2)], 5),
                "TZ" => (Vec::new(), vec![literal(1), literal(2)], 3),
                "P" => {
                    let mut v = vec![literal(2), arg(3)];
                    v.extend((1..=n(4)).map(|j| shown(&argv[n(3) + j - 2])));
                    (vec![key(1)], v, 5)
                }
                "H" | "X" => (vec![key(1)], run(2), 4),
                "Z" => (vec![key(1)], vec![literal(2), arg(3)], 4),
                "ZM" => {
                    let v = (0..n(2))
                        .flat_map(|j| [literal(3 + 2 * j), arg(4 + 2 * j)])
                        .collect();
                    (vec![key(1)], v, 3 + 2 * n(2))
                }
                "EV" => (
                    vec![key(1), key(2), key(3), key(4)],
                    vec![arg(5), arg(6), arg(7), arg(8)],
                    9,
                ),
                "VP" => (vec![key(1)], vec![arg(2), arg(3)], 4),
                "C" => {
                    let mut v = vec![arg(2), arg(3)];
                    v.extend(run(4));
                    (vec![key(1)], v, 6)
                }
                "A" | "N" => (vec![key(1)], vec![arg(2), arg(3)], 4),
                "I" => (vec![key(1)], vec![arg(2), literal(3)], 4),
                "IX" | "IR" | "IXN" | "IRN" => {
                    (vec![key(1)], vec![arg(2), arg(3), arg(4), arg(5)], 6)
                }
                other => panic!("unexpected code {other}"),
            };
            out.push((t[p].to_string(), keys, values));
            p += len;
        }
        out
    }

    /// One resolved operation, as [`resolve`] gives it.
    fn op(code: &str, keys: &[&str], values: &[&str]) -> (String, Vec<String>, Vec<String>) {
        (code.to_string(), strings(keys), strings(values))
    }

    /// An item of the operation list as the script reads it.
    #[derive(Debug, serde::Deserialize)]
    #[serde(untagged)]
    enum Read {
        Int(u64),
        Text(String),
    }

    /// The operation list as the words the script reads, and the values.
    fn script_text(tx: &Tx) -> (String, Vec<Cow<'_, [u8]>>) {
        let (header, argv) = tx.script_args();
        let words: Vec<Read> = rmp_serde::from_slice(&header).expect("an array");
        let words: Vec<String> = words
            .into_iter()
            .map(|w| match w {
                Read::Int(n) => n.to_string(),
                Read::Text(t) => t,
            })
            .collect();
        (words.join(" "), argv)
    }

    /// A value as text: packed values decoded, as a reader would see them.
    fn shown(value: &[u8]) -> String {
        packed::text(value.to_vec()).unwrap_or_else(|_| String::from_utf8_lossy(value).into())
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// An index's entries travel as one `ZADD`, at the place of the first; an index with a
    /// removal keeps its entries one by one, in order.
    #[test]
    fn an_index_entries_join_into_one_zadd_unless_the_index_has_a_removal() {
        let mut tx = Tx::new();
        tx.put("k1", 1, "A")
            .index("events", "evt_1")
            .index("charges", "ch_1")
            .index("events", "evt_2")
            .index("list", "a1")
            .unindex("list", "a0")
            .index("list", "a2")
            .index("events", "evt_3");
        assert_eq!(
            resolve(&tx),
            vec![
                op("P", &["k1"], &["1", "A"]),
                op(
                    "ZM",
                    &["events"],
                    &["0", "evt_1", "0", "evt_2", "0", "evt_3"]
                ),
                op("Z", &["charges"], &["0", "ch_1"]),
                op("Z", &["list"], &["0", "a1"]),
                op("R", &["list"], &["a0"]),
                op("Z", &["list"], &["0", "a2"]),
            ]
        );
    }

    /// The index operation `code` of checkout session `cs_1`'s filter `field`, as resolved.
    fn session_index(code: &str, field: &str, values: &str) -> (String, Vec<String>, Vec<String>) {
        op(
            code,
            &["cp:{p}:test:obj:cs_1"],
            &[
                &format!("ix:{field}"),
                &format!("cp:{{p}}:test:checkout_sessions:{field}:"),
                "cs_1",
                values,
            ],
        )
    }

    /// A record the commit creates (version 1) stores its filters' values in its own put and
    /// only joins sets (`IXN`): nothing to read or leave.
    #[test]
    fn a_new_filtered_record_stores_its_values_in_its_put_and_only_joins_sets() {
        let cs = "cp:{p}:test:obj:cs_1";
        let json = r#"{"status":"open","customer":null,"payment_intent":null}"#;
        let mut tx = Tx::new();
        tx.put(cs, 1, json);
        let ixn = |field: &str, values: &str| session_index("IXN", field, values);
        assert_eq!(
            resolve(&tx),
            vec![
                op(
                    "P",
                    &[cs],
                    &[
                        "1",
                        json,
                        "status",
                        "open",
                        "customer",
                        "",
                        "payment_intent",
                        "",
                        "ix:status",
                        "open",
                        "ix:customer",
                        "",
                        "ix:payment_intent",
                        "",
                    ]
                ),
                ixn("status", "open"),
                ixn("customer", ""),
                ixn("payment_intent", ""),
            ]
        );
    }

    /// A record of a filtered kind carries its filters' values in its own commit, one `IX` per
    /// field after its `P`; other records carry none.
    #[test]
    fn a_filtered_record_is_indexed_in_the_commit_that_writes_it() {
        let cs = "cp:{p}:test:obj:cs_1";
        let json = r#"{"status":"open","customer":"cus_1","payment_intent":null}"#;
        let mut tx = Tx::new();
        tx.put(cs, 2, json).put("cp:{p}:test:obj:pi_1", 1, "{}");
        let mut merged = Tx::new();
        merged.put("x", 1, "A");
        merged.absorb(tx);
        let ix = |field: &str, values: &str| session_index("IX", field, values);
        assert_eq!(
            resolve(&merged),
            vec![
                op("P", &["x"], &["1", "A"]),
                op(
                    "P",
                    &[cs],
                    &[
                        "2",
                        json,
                        "status",
                        "open",
                        "customer",
                        "cus_1",
                        "payment_intent",
                        "",
                    ]
                ),
                ix("status", "open"),
                ix("customer", "cus_1"),
                ix("payment_intent", ""),
                op("P", &["cp:{p}:test:obj:pi_1"], &["1", "{}"]),
            ]
        );
    }

    #[test]
    fn absorbed_changes_keep_their_own_keys_and_values() {
        let mut first = Tx::new();
        first
            .put("k1", 1, "A")
            .index("list", "a1")
            .hincrby("k1", "n", -1);
        let mut second = Tx::new();
        second
            .put_with("k2", 3, "B", &[("f", "x")])
            .index("list", "b1")
            .append("stream", &[("d", "D")])
            .hsetnx("k2", "since", "100")
            .hdel("k2", "gone")
            .unindex("list", "old")
            .schedule("due", 5_000, "m")
            .expire_ms("k2", 60_000)
            .ack("cmds", "group", "1-0")
            .command("cmds", "group", "me", &[("cmd", "C")]);
        let scope = Scope::new("prj_1", calmony_protocol::Mode::Test);
        let event = Event::new(
            "customer.created",
            &serde_json::json!({"id": "cus_1"}),
            None,
            7,
            false,
            Default::default(),
        );
        second.event(&scope, &event);
        let mut merged = Tx::new();
        merged.absorb(first);
        merged.absorb(second);
        assert_eq!(
            resolve(&merged),
            vec![
                op("P", &["k1"], &["1", "A"]),
                op("Z", &["list"], &["0", "a1"]),
                op("I", &["k1"], &["n", "-1"]),
                op("P", &["k2"], &["3", "B", "f", "x"]),
                op("Z", &["list"], &["0", "b1"]),
                op("X", &["stream"], &["d", "D"]),
                op("N", &["k2"], &["since", "100"]),
                op("D", &["k2"], &["gone"]),
                op("R", &["list"], &["old"]),
                op("Z", &["due"], &["5000", "m"]),
                op("E", &["k2"], &["60000"]),
                op("A", &["cmds"], &["group", "1-0"]),
                op("C", &["cmds"], &["group", "me", "cmd", "C"]),
                op(
                    "EV",
                    &[
                        "cp:{prj_1}:test:events:log",
                        "cp:{prj_1}:test:events:bytype:customer.created",
                        "cp:{prj_1}:test:events",
                        "cp:{prj_1}:test:webhook_endpoints",
                    ],
                    &[
                        &serde_json::to_string(&event).expect("json"),
                        "customer.created",
                        "7",
                        "cus_1",
                    ]
                ),
            ]
        );
        assert!(merged.is_unchecked());
        let mut checked = Tx::new();
        checked.expect_version("k1", 1).put("k1", 2, "A2");
        assert!(
            !checked.is_unchecked(),
            "a version check keeps a change to itself"
        );
        let mut once = Tx::new();
        once.ack("events", "webhooks", "1-0")
            .expect_unacked("events", "webhooks", "1-0");
        assert_eq!(
            resolve(&once),
            vec![
                op("VP", &["events"], &["webhooks", "1-0"]),
                op("A", &["events"], &["webhooks", "1-0"]),
            ],
            "the check goes first"
        );
        assert!(!once.is_unchecked());
    }

    /// The key check charges the rate limit, so it runs after every other check (a change
    /// that conflicts is not charged) and before any number is taken or anything written.
    #[test]
    fn the_key_check_runs_after_the_checks_and_before_numbers_and_writes() {
        let scope = Scope::new("prj_1", calmony_protocol::Mode::Live);
        let mut tx = Tx::new();
        tx.put("pi", 1, "A")
            .number("seq", "#N#", "CP-")
            .check_key("cp:apikey:{abc}", 100, &scope)
            .expect_version("pm", 3);
        let codes: Vec<String> = resolve(&tx).into_iter().map(|(c, ..)| c).collect();
        assert_eq!(codes, ["V", "K", "S", "P"]);
        assert_eq!(
            resolve(&tx)[1],
            op("K", &["cp:apikey:{abc}"], &["100", "prj_1", "live"])
        );
        assert!(!tx.is_unchecked(), "a key check keeps a change to itself");
    }

    /// A claim the change makes itself: absent first among the checks, written before the
    /// answer stored under it, and no check that the request already held it.
    #[test]
    fn a_fresh_claim_is_checked_absent_and_written_before_its_answer() {
        /// A request holding `claim`, whose answers are kept 60 s.
        struct Request(ClaimRef<'static>);
        impl Answers for Request {
            fn answer(&self) -> Option<super::super::claim::Answer<'_>> {
                Some(super::super::claim::Answer {
                    claim: self.0,
                    ttl_secs: 60,
                })
            }
        }
        let claim = ClaimRef {
            redis_key: "cp:{prj_1}:test:idem:k1",
            owner: "req_1",
        };
        let fresh = FreshClaim {
            claim,
            fingerprint: "fp",
            endpoint: "/v1/payment_intents",
            lock_ms: 5000,
        };
        let mut tx = Tx::new();
        tx.put("pi", 1, "A")
            .respond(&Request(claim), 200, "B")
            .expect_version("pm", 3)
            .claim_fresh(fresh);
        let ops = resolve(&tx);
        let codes: Vec<&str> = ops.iter().map(|(c, ..)| c.as_str()).collect();
        assert_eq!(codes, ["NX", "V", "H", "P", "H", "E"], "no O check is left");
        let k = claim.redis_key;
        assert_eq!(ops[0], op("NX", &[k], &[]));
        assert_eq!(
            ops[2],
            op(
                "H",
                &[k],
                &[
                    "state",
                    "running",
                    "owner",
                    "req_1",
                    "fp",
                    "fp",
                    "path",
                    "/v1/payment_intents",
                    "req",
                    "req_1"
                ]
            )
        );
        assert_eq!(
            ops[4],
            op("H", &[k], &["state", "done", "status", "200", "body", "B"])
        );
        assert_eq!(ops[5], op("E", &[k], &["60000"]), "the answer's lifetime");

        let mut held = Tx::new();
        held.put("pi", 1, "A").claim_fresh(fresh);
        let last = resolve(&held).pop().expect("ops");
        assert_eq!(
            last,
            op("E", &[k], &["5000"]),
            "the lock, when nothing else expires it"
        );
    }

    /// One item of each kind, in the bytes `cmsgpack` reads: a code as a string, an index in
    /// the shortest unsigned form of its size, a number the script writes as a string.
    fn one_of_each() -> OpList {
        let mut list = OpList::default();
        list.code("V")
            .int(1u64)
            .int(200u64)
            .int(300u64)
            .int(70_000u64)
            .int(5_000_000_000u64)
            .text(-5i64)
            .text(1_733_000_000_000u64);
        list
    }

    #[test]
    fn the_operation_list_is_a_messagepack_array_in_its_shortest_forms() {
        let mut want = vec![0x98, 0xa1, b'V', 0x01, 0xcc, 200, 0xcd, 0x01, 0x2c];
        want.extend([0xce, 0x00, 0x01, 0x11, 0x70]);
        want.extend([0xcf, 0x00, 0x00, 0x00, 0x01, 0x2a, 0x05, 0xf2, 0x00]);
        want.extend([0xa2, b'-', b'5', 0xad]);
        want.extend(b"1733000000000");
        assert_eq!(one_of_each().to_bytes(), want);
        // A list of more than 15 items takes the 16-bit array header.
        let mut long = OpList::default();
        (0..16u64).for_each(|i| {
            long.int(i);
        });
        assert_eq!(long.to_bytes()[..3], [0xdc, 0x00, 0x10]);
        let mut joined = OpList::default();
        joined.code("gen").int(1u64).extend(&one_of_each());
        assert_eq!(joined.to_bytes()[..6], [0x9a, 0xa3, b'g', b'e', b'n', 0x01]);
    }

    /// What the commit script reads from the list: `cmsgpack.unpack` in a real redis-server.
    #[tokio::test]
    async fn the_script_reads_codes_and_texts_as_strings_and_indexes_as_numbers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let redis = super::super::managed::ManagedRedis::start(dir.path(), "redis-server", "no")
            .await
            .expect("redis-server");
        let store =
            super::super::client::Store::connect(&redis.url(), std::time::Duration::from_secs(5))
                .await
                .expect("connect");
        let script = redis::Script::new(
            r#"
local out = {}
for i, x in ipairs(cmsgpack.unpack(ARGV[1])) do
  out[i] = type(x) .. ':' .. (type(x) == 'number' and string.format('%d', x) or x)
end
return out
"#,
        );
        let mut c = store.conn();
        let read: Vec<String> = script
            .arg(one_of_each().to_bytes())
            .invoke_async(&mut c)
            .await
            .expect("EVAL");
        redis.stop().await;
        assert_eq!(
            read,
            [
                "string:V",
                "number:1",
                "number:200",
                "number:300",
                "number:70000",
                "number:5000000000",
                "string:-5",
                "string:1733000000000",
            ]
        );
    }

    /// A record's plain fields ride in its own `P` operation, after its internal fields: the
    /// same commit, no other operation.
    #[test]
    fn a_record_carries_its_plain_fields_in_the_same_write() {
        let json = r#"{"id":"pi_1","object":"payment_intent","amount":900,"status":"processing"}"#;
        let mut tx = Tx::new();
        tx.put_with("pi", 2, json, &[("internal", "{}")]);
        assert_eq!(
            resolve(&tx),
            vec![op(
                "P",
                &["pi"],
                &[
                    "2",
                    json,
                    "internal",
                    "{}",
                    "object",
                    "payment_intent",
                    "status",
                    "processing",
                    "amount",
                    "900"
                ]
            )]
        );
    }

    #[test]
    fn empty_field_lists_write_nothing() {
        let mut tx = Tx::new();
        tx.hset("k", &[]).append("stream", &[]);
        assert!(resolve(&tx).is_empty());
    }

    #[test]
    fn checks_go_first_and_numbered_values_get_their_number_inside_redis() {
        let mut tx = Tx::new();
        tx.put("inv", 2, "{\"number\":\"#NUM#\",\"again\":\"#NUM#\"}")
            .hset("answer", &[("body", "#NUM#!")])
            .expect_version("inv", 1)
            .number("seq", "#NUM#", "CP-");
        let (header, argv) = script_text(&tx);
        let codes: Vec<&str> = header
            .split_whitespace()
            .filter(|t| t.parse::<i64>().is_err())
            .collect();
        assert_eq!(codes, ["V", "S", "TZ", "T", "P", "H"]);
        let t: Vec<&str> = header.split_whitespace().collect();
        let at = |code: &str| t.iter().position(|c| *c == code).expect("template");
        let n = |at: usize, i: usize| t[at + i].parse::<usize>().expect("integer");
        // A plain value (here an answer body) travels as its pieces, joined with the number.
        let plain = at("T");
        assert!(
            argv[n(plain, 1) - 2].is_empty(),
            "the whole value is not sent as well"
        );
        assert_eq!(n(plain, 2), 1);
        let pieces: Vec<Vec<u8>> = (n(plain, 3)..=n(plain, 4))
            .map(|i| argv[i - 2].to_vec())
            .collect();
        let want: [&[u8]; 2] = [b"", b"!"];
        assert_eq!(pieces, want);
        // A record is packed whole; the script appends the number as a raw frame, and the
        // value reads with it in both places.
        let packed_at = at("TZ");
        assert_eq!(n(packed_at, 2), 1);
        let mut stored = argv[n(packed_at, 1) - 2].to_vec();
        assert_eq!(stored[0], packed::MARK);
        stored.extend(packed::raw_frame(b"CP-000042"));
        assert_eq!(
            packed::text(stored).expect("decodes"),
            "{\"number\":\"CP-000042\",\"again\":\"CP-000042\"}"
        );
    }

    /// An event travels packed; one carrying an invoice number travels packed whole, the script
    /// appends the number as a raw frame (`TZ`), and it then reads as the JSON with the number
    /// in place.
    #[test]
    fn events_travel_packed_and_numbered_ones_as_frames() {
        let scope = Scope::new("prj_1", calmony_protocol::Mode::Test);
        let event = |kind: &str, number: &str| {
            Event::new(
                kind,
                &serde_json::json!({"object": "invoice", "number": number}),
                None,
                1,
                false,
                Default::default(),
            )
        };
        let mut tx = Tx::new();
        tx.number("seq", "#NUM#", "CP-")
            .event(&scope, &event("invoice.created", "#NUM#"))
            .event(&scope, &event("invoice.updated", "CP-000001"));
        let (header, argv) = script_text(&tx);
        let t: Vec<&str> = header.split_whitespace().collect();
        let at = t.iter().position(|c| *c == "TZ").expect("framed template");
        let n = |i: usize| t[at + i].parse::<usize>().expect("integer");
        let mut stored = argv[n(1) - 2].to_vec();
        stored.extend(packed::raw_frame(b"CP-000007"));
        let json = packed::text(stored).expect("decodes");
        assert!(json.contains(r#""number":"CP-000007""#), "{json}");
        let events: Vec<_> = resolve(&tx)
            .into_iter()
            .filter(|(c, ..)| c == "EV")
            .collect();
        assert!(events[1].2[0].contains(r#""number":"CP-000001""#));
        let plain = events[1].2[0].len();
        let p = t.iter().rposition(|c| *c == "EV").expect("event");
        let body = t[p + 5].parse::<usize>().expect("integer");
        assert_eq!(argv[body - 2][0], packed::MARK);
        assert!(argv[body - 2].len() < plain, "packed is smaller");
    }
}
