//! The event log: where a scope's events are kept, and how an event's id names its place.
//!
//! Each scope appends its events to one stream, `cp:{prj}:<mode>:events:log`, an entry per
//! event holding its `type`, `created` and `object_id` (the id of its `data.object`), plain
//! so `redis-cli XRANGE` answers what happened, and its packed JSON (`json`; entries written
//! before the fields were named for operators hold `t`, `c` and `j`). A record key
//! and a list entry per event, as events were kept before, cost Redis a new top-level key
//! (and the main dictionary's growth) and a sorted-set insert for every one of the five events
//! of a payment; appending to a stream costs neither.
//!
//! The entry ID is chosen by Redis, so appends from any number of daemons stay in one order,
//! and the event's id is derived from it ([`id_of`], by whoever reads the entry; not by the
//! commit script, whose Lua runs on Redis's one thread): `evt_` and the ULID
//! layout every id has, ten Crockford base-32 characters of the entry's millisecond,
//! six of its sequence number, and ten of the scope's [`tag`]. Ids therefore still sort by
//! creation, a retrieve is one `XRANGE id id` with no index, and an id from another project or
//! mode (another tag) is refused without a read. The stored JSON keeps the placeholder id the
//! daemon gave the event; every reader puts the derived id in its place ([`with_id`]).
//!
//! A type's list is a stream too, `events:bytype:<type>`, whose entries carry the IDs their
//! events have in the log (a few bytes each in the stream's listpack, where a sorted-set
//! member costs a skiplist node and a dictionary entry).
//! It is paged like the log, then the events read from the log by ID.
//!
//! Events written before the log (a record `obj:evt_…` and entries in `events:index` and
//! `events:type:<type>`) have ids without the scope's tag; they are read from their records,
//! listed after the log's entries, and forgotten by the retention sweep as before.

use redis::Value;
use sha2::{Digest, Sha256};

use super::client::Store;
use super::error::StoreError;
use super::page::Direction;
use super::record::text;
use super::scope::Scope;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters of the id (after `evt_`): the millisecond, the sequence number, the tag.
const MS_CHARS: usize = 10;
const SEQ_CHARS: usize = 6;
const TAG_CHARS: usize = 10;
const ID_CHARS: usize = MS_CHARS + SEQ_CHARS + TAG_CHARS;
const PREFIX: &str = "evt_";
/// The largest sequence number of an entry ID, for a bound "anywhere in this millisecond".
const SEQ_MAX: u64 = u64::MAX;

impl Scope {
    /// The scope's event log (a stream).
    pub fn event_log(&self) -> String {
        self.key("events:log")
    }

    /// Pending deliveries of the log's events that endpoints were told of: a hash of entry ID
    /// -> count (`pending_webhooks`).
    pub fn event_pending(&self) -> String {
        self.key("events:pending")
    }

    /// A type's list of the log's events: a stream of their entry IDs (each entry the ID the
    /// event has in the log), a few bytes each.
    pub fn event_type_log(&self, kind: &str) -> String {
        self.key(&format!("events:bytype:{kind}"))
    }

    /// A type's list of events written before the log (a sorted set of ids).
    pub fn event_type_index_before_log(&self, kind: &str) -> String {
        self.key(&format!("events:type:{kind}"))
    }

    /// The list of events written before the log (a sorted set of ids).
    pub fn event_index_before_log(&self) -> String {
        self.key("events:index")
    }
}

/// The scope's tag, the last ten characters of its events' ids: the first 50 bits of the
/// SHA-256 of project and mode. Ids stay unique across scopes whose logs share a millisecond
/// and a sequence number.
pub fn tag(scope: &Scope) -> String {
    let digest = Sha256::new()
        .chain_update(scope.project.as_bytes())
        .chain_update(b":")
        .chain_update(scope.mode.as_str().as_bytes())
        .finalize();
    let bits = u64::from_be_bytes(digest[..8].try_into().unwrap_or_default()) >> 14;
    encode(bits, TAG_CHARS)
}

fn encode(mut n: u64, width: usize) -> String {
    let mut out = vec![b'0'; width];
    for c in out.iter_mut().rev() {
        *c = CROCKFORD[(n % 32) as usize];
        n /= 32;
    }
    out.into_iter().map(char::from).collect()
}

fn decode(s: &str) -> Option<u64> {
    s.bytes().try_fold(0u64, |n, b| {
        let d = CROCKFORD.iter().position(|&c| c == b)? as u64;
        n.checked_mul(32)?.checked_add(d)
    })
}

/// The id of the event at `entry` (`ms-seq`) of the scope's log.
pub fn id_of(entry: &str, tag: &str) -> Option<String> {
    let (ms, seq) = entry.split_once('-')?;
    let (ms, seq): (u64, u64) = (ms.parse().ok()?, seq.parse().ok()?);
    Some(format!(
        "{PREFIX}{}{}{tag}",
        encode(ms, MS_CHARS),
        encode(seq % (1 << (5 * SEQ_CHARS)), SEQ_CHARS)
    ))
}

/// The entry ID of an event id of this scope's log; `None` for an id written before the log
/// (or of another scope).
pub fn entry_of(scope: &Scope, id: &str) -> Option<String> {
    let rest = id.strip_prefix(PREFIX)?;
    if rest.len() != ID_CHARS || !rest.ends_with(&tag(scope)) {
        return None;
    }
    let ms = decode(rest.get(..MS_CHARS)?)?;
    let seq = decode(rest.get(MS_CHARS..MS_CHARS + SEQ_CHARS)?)?;
    Some(format!("{ms}-{seq}"))
}

/// The stored JSON with the event's id in place of the placeholder the daemon gave it (the
/// first field, of the same length). Text that does not start so is answered as it is.
pub fn with_id(mut json: String, id: &str) -> String {
    const OPEN: &str = "{\"id\":\"";
    let end = OPEN.len() + id.len();
    if json.starts_with(OPEN)
        && json
            .get(OPEN.len()..end)
            .is_some_and(|old| old.len() == id.len())
    {
        json.replace_range(OPEN.len()..end, id);
    }
    json
}

/// A lexicographic bound of a list of ids (`-`, `+`, `[id`, `(id`) as a bound of the log's
/// entry IDs: exact for the log's own ids and for the `created` bounds of
/// `calmony_protocol::ids::time_bounds` (the first or last possible id of a millisecond); an
/// id written before the log bounds by its whole millisecond.
pub fn entry_bound(scope: &Scope, bound: &str, upper: bool) -> String {
    let (open, id) = match bound.split_at_checked(1) {
        Some(("[", id)) => ("", id),
        Some(("(", id)) => ("(", id),
        _ => return bound.to_string(),
    };
    if let Some(entry) = entry_of(scope, id) {
        return format!("{open}{entry}");
    }
    let ms = id
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.get(..MS_CHARS))
        .and_then(decode)
        .unwrap_or(0);
    match (open, upper) {
        ("", false) => format!("{ms}-0"),
        ("", true) => format!("{ms}-{SEQ_MAX}"),
        (_, true) => format!("({ms}-0"),
        (_, false) => format!("({ms}-{SEQ_MAX}"),
    }
}

/// Where one event is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// An entry of the scope's log.
    Log { log: String, entry: String },
    /// A record written before the log.
    Record(String),
}

impl Place {
    /// Where the event with this id is: its log entry, or a record written before the log.
    pub fn of(scope: &Scope, id: &str) -> Self {
        match entry_of(scope, id) {
            Some(entry) => Place::at_entry(scope, entry),
            None => Place::Record(scope.record(id)),
        }
    }

    /// Entry `entry` of the scope's log (one already known, as the fan-out's entries give it).
    pub fn at_entry(scope: &Scope, entry: String) -> Self {
        Place::Log {
            log: scope.event_log(),
            entry,
        }
    }

    /// The command that reads the event; its answer goes to [`Place::json`].
    pub fn read(&self) -> redis::Cmd {
        match self {
            Place::Log { log, entry } => redis::cmd("XRANGE")
                .arg(log)
                .arg(entry)
                .arg(entry)
                .to_owned(),
            Place::Record(key) => redis::cmd("HGET").arg(key).arg("json").to_owned(),
        }
    }

    /// The key and field counting the event's deliveries still to succeed.
    pub fn pending(&self, scope: &Scope) -> (String, String) {
        match self {
            Place::Log { entry, .. } => (scope.event_pending(), entry.clone()),
            Place::Record(key) => (key.clone(), "pending".into()),
        }
    }

    /// The event's JSON from the answer to [`Place::read`], with its id in place.
    pub fn json(&self, id: &str, reply: Value) -> Result<Option<String>, StoreError> {
        let (key, packed) = match self {
            Place::Log { log, .. } => (log, entries(reply).into_iter().next().and_then(|e| e.1)),
            Place::Record(key) => (key, bytes(reply)),
        };
        packed
            .map(|p| text(key, p).map(|json| with_id(json, id)))
            .transpose()
    }
}

fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}

/// Entries of an `XRANGE` answer: each ID and its packed JSON (`json`).
fn entries(reply: Value) -> Vec<(String, Option<Vec<u8>>)> {
    let Value::Array(items) = reply else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(mut pair) = item else {
                return None;
            };
            let fields = pair.pop()?;
            let entry = String::from_utf8(bytes(pair.pop()?)?).ok()?;
            let Value::Array(fields) = fields else {
                return Some((entry, None));
            };
            let mut it = fields.into_iter();
            let mut json = None;
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                // `j`: as entries were written before the fields were named for operators.
                if matches!(bytes(f).as_deref(), Some(b"json" | b"j")) {
                    json = bytes(v);
                }
            }
            Some((entry, json))
        })
        .collect()
}

/// One entry of a scope's log as an operator reads it (`calmony-payd inspect`).
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// The entry ID.
    pub entry: String,
    /// The event's id, derived from the entry ID.
    pub id: Option<String>,
    /// The plain fields (`type`, `created`, `object_id`; an older entry's `t` and `c` under
    /// those names).
    pub fields: Vec<(String, String)>,
    /// The event's JSON, with its id in place.
    pub json: Option<String>,
}

impl LogEntry {
    /// A plain field (`type`, `created`, `object_id`).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The entries of an `XRANGE` answer with every field: the packed JSON (`json`, or `j`)
/// decoded, the rest as text.
fn log_entries(scope: &Scope, log: &str, reply: Value) -> Result<Vec<LogEntry>, StoreError> {
    let Value::Array(items) = reply else {
        return Ok(Vec::new());
    };
    let tag = tag(scope);
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(mut pair) = item else {
            continue;
        };
        let (Some(Value::Array(raw)), Some(entry)) = (pair.pop(), pair.pop().and_then(bytes))
        else {
            continue;
        };
        let entry = String::from_utf8_lossy(&entry).into_owned();
        let id = id_of(&entry, &tag);
        let (mut fields, mut json) = (Vec::new(), None);
        let mut it = raw.into_iter();
        while let (Some(f), Some(v)) = (it.next().and_then(bytes), it.next().and_then(bytes)) {
            if matches!(f.as_slice(), b"json" | b"j") {
                let text = text(log, v)?;
                json = Some(match &id {
                    Some(id) => with_id(text, id),
                    None => text,
                });
            } else {
                let name = match f.as_slice() {
                    b"t" => "type".to_owned(),
                    b"c" => "created".to_owned(),
                    _ => String::from_utf8_lossy(&f).into_owned(),
                };
                fields.push((name, String::from_utf8_lossy(&v).into_owned()));
            }
        }
        out.push(LogEntry {
            entry,
            id,
            fields,
            json,
        });
    }
    Ok(out)
}

impl Store {
    /// One event and its `pending_webhooks`, one round trip.
    pub async fn event(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<(String, i64)>, StoreError> {
        let place = Place::of(scope, id);
        let (key, field) = place.pending(scope);
        let mut reads = redis::pipe();
        reads.add_command(place.read()).hget(key, field);
        let mut c = self.conn();
        let (event, pending): (Value, Option<i64>) = self
            .run(async move { reads.query_async(&mut c).await })
            .await?;
        Ok(place
            .json(id, event)?
            .map(|json| (json, pending.unwrap_or(0).max(0))))
    }

    /// Up to `count` events of the log, or of one type's list in it, between two entry bounds
    /// (see [`entry_bound`]), as (id, JSON). The log's entries hold the events; a type list's
    /// hold the IDs of the log's, which a second round trip reads.
    pub async fn log_page(
        &self,
        scope: &Scope,
        kind: Option<&str>,
        dir: Direction,
        min: &str,
        max: &str,
        count: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let log = scope.event_log();
        let stream = kind.map_or_else(|| log.clone(), |k| scope.event_type_log(k));
        let mut cmd = dir.range("XREVRANGE", "XRANGE", &stream, min, max);
        cmd.arg("COUNT").arg(count);
        let mut c = self.conn();
        let reply: Value = self
            .run(async move { cmd.query_async(&mut c).await })
            .await?;
        let tag = tag(scope);
        let found = entries(reply)
            .into_iter()
            .filter_map(|(entry, packed)| Some((id_of(&entry, &tag)?, packed)));
        if kind.is_some() {
            return self
                .events_by_id(scope, found.map(|(id, _)| id).collect())
                .await;
        }
        let mut out = Vec::new();
        for (id, packed) in found {
            if let Some(packed) = packed {
                let json = with_id(text(&log, packed)?, &id);
                out.push((id, json));
            }
        }
        Ok(out)
    }

    /// Up to `count` entries of the scope's log after entry bound `from` (`-`, an entry ID,
    /// or `(` and one), oldest first, with every field: for operators, who read what happened
    /// around a moment (`calmony-payd inspect`).
    pub async fn log_entries(
        &self,
        scope: &Scope,
        from: &str,
        count: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let log = scope.event_log();
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(&log).arg(from).arg("+").arg("COUNT").arg(count);
        let mut c = self.conn();
        let reply: Value = self
            .run(async move { cmd.query_async(&mut c).await })
            .await?;
        log_entries(scope, &log, reply)
    }

    /// Up to `count` ids of a sorted-set list of events between two lexicographic bounds, and
    /// their events, as (id, JSON); two round trips.
    pub async fn event_index_page(
        &self,
        scope: &Scope,
        index: &str,
        dir: Direction,
        min: &str,
        max: &str,
        count: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut cmd = dir.range("ZREVRANGEBYLEX", "ZRANGEBYLEX", index, min, max);
        cmd.arg("LIMIT").arg(0).arg(count);
        let mut c = self.conn();
        let ids: Vec<String> = self
            .run(async move { cmd.query_async(&mut c).await })
            .await?;
        self.events_by_id(scope, ids).await
    }

    /// The events of these ids (log entries or records), in one round trip, as (id, JSON).
    async fn events_by_id(
        &self,
        scope: &Scope,
        ids: Vec<String>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let places: Vec<Place> = ids.iter().map(|id| Place::of(scope, id)).collect();
        let mut reads = redis::pipe();
        for place in &places {
            reads.add_command(place.read());
        }
        let mut c = self.conn();
        let replies: Vec<Value> = self
            .run(async move { reads.query_async(&mut c).await })
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for ((id, place), reply) in ids.into_iter().zip(&places).zip(replies) {
            // Gone between the two reads (the retention sweep): not listed.
            if let Some(json) = place.json(&id, reply)? {
                out.push((id, json));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calmony_protocol::Mode;

    #[test]
    fn an_entry_and_its_id_name_each_other_within_their_scope_only() {
        let scope = Scope::new("prj_1", Mode::Test);
        let id = id_of("1733123456789-5", &tag(&scope)).expect("id");
        assert_eq!(id.len(), 30);
        assert!(calmony_protocol::ids::is_valid("evt", &id));
        assert_eq!(entry_of(&scope, &id).as_deref(), Some("1733123456789-5"));
        assert_eq!(entry_of(&Scope::new("prj_2", Mode::Test), &id), None);
        assert_eq!(entry_of(&Scope::new("prj_1", Mode::Live), &id), None);
        // An id made before the log (a ULID) is not the log's.
        let before = calmony_protocol::ids::new_id("evt");
        assert_eq!(entry_of(&scope, &before), None);
    }

    #[test]
    fn ids_sort_as_their_entries_and_as_ulids_of_their_time() {
        let t = tag(&Scope::new("prj_1", Mode::Test));
        let a = id_of("1733123456789-5", &t).expect("id");
        let b = id_of("1733123456789-40", &t).expect("id");
        let c = id_of("1733123456790-0", &t).expect("id");
        assert!(a < b && b < c);
        let ulid = ulid::Ulid::from_parts(1_733_123_456_789, 0).to_string();
        assert_eq!(&a[4..14], &ulid[..10]);
    }

    #[test]
    fn the_placeholder_id_is_replaced_and_nothing_else() {
        let placeholder = calmony_protocol::ids::new_id("evt");
        let json = format!(r#"{{"id":"{placeholder}","object":"event"}}"#);
        let id = id_of("1733123456789-5", &tag(&Scope::new("prj_1", Mode::Test))).expect("id");
        assert_eq!(
            with_id(json, &id),
            format!(r#"{{"id":"{id}","object":"event"}}"#)
        );
        assert_eq!(with_id("{}".into(), &id), "{}");
    }

    #[test]
    fn created_bounds_become_whole_milliseconds_of_the_log() {
        let scope = Scope::new("prj_1", Mode::Test);
        let (lo, hi) = calmony_protocol::ids::time_bounds("evt", Some(10), Some(20));
        let (lo, hi) = (lo.expect("lo"), hi.expect("hi"));
        assert_eq!(entry_bound(&scope, &format!("[{lo}"), false), "10000-0");
        assert_eq!(
            entry_bound(&scope, &format!("[{hi}"), true),
            format!("20999-{}", u64::MAX)
        );
        let id = id_of("1733123456789-5", &tag(&scope)).expect("id");
        assert_eq!(
            entry_bound(&scope, &format!("({id}"), true),
            "(1733123456789-5"
        );
        assert_eq!(entry_bound(&scope, "+", true), "+");
    }
}
