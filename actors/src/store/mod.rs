//! The Redis store.
//!
//! ## Keyspace
//! Every key starts with `cp:`. A project's data carries its id as a hash tag,
//! `cp:{prj_…}:<mode>:…`, so one project lives in one Redis Cluster slot and a multi-key
//! script over it stays legal if the store is ever sharded. Records are hashes with two
//! fields: `v`, a version bumped by every write, and `json`, the object exactly as the API
//! answers it, so a retrieve is a single `HGET` with no re-encoding. Lists are sorted sets of
//! IDs with equal scores: IDs are ULIDs, so lexicographic order is creation order and
//! `ZREVRANGEBYLEX` pages newest first from an exact cursor. A list's filters are sets of the
//! same shape, kept by the commit that writes each record ([`filters`]). The README lists
//! every key.
//!
//! ## One atomic commit per state change
//! A change is read, decided in Rust, and written with [`Tx`] through one Lua script
//! ([`scripts::COMMIT`]): first every check (record versions unchanged since they were read,
//! the idempotency claim still ours), then every write (records, indexes, the event, the event
//! stream entry, the stored idempotent answer). Either all of it happens or none of it does, and
//! a concurrent writer turns into a clean retry instead of a lost update. There is no second
//! write path: customers, and every resource after them, go through [`Store::commit`].

mod claim;
pub mod event_log;
pub mod filters;
mod lease;
mod managed;
pub mod packed;
pub mod plain;
pub mod retry;
pub mod scripts;
mod top_level;
mod tx;
mod unavailability;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use calmony_protocol::list::{Cursor, ListParams};
use calmony_protocol::{ApiError, Mode};
use redis::aio::ConnectionManager;
use serde_json::Value;

pub use claim::{Answer, Answers, ClaimRef, FreshClaim};
pub use lease::Lease;
pub use managed::ManagedRedis;
pub use tx::{OpList, Tx};
pub use unavailability::Unavailability;

/// How many multiplexed connections requests are spread over. Fewer carry more commands per
/// write and per wake-up of Redis and of the daemon, and a wake-up costs more than a command.
/// Not one: with a single connection, the two-daemon renewal drill once saw a Redis
/// operation queue behind others past `OP_TIMEOUT` (a renewal's charge then failed), so two
/// until that is understood.
const CONNECTIONS: usize = 2;
/// Longest time one store operation may take before the request is answered 503.
const OP_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis is unavailable: {0}")]
    Unavailable(String),
    #[error("redis command failed: {0}")]
    Command(#[source] redis::RedisError),
    #[error("record {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("managed redis-server: {0}")]
    Managed(String),
}

impl StoreError {
    fn from_redis(e: redis::RedisError) -> Self {
        match Unavailability::of(&e) {
            Some(_) => StoreError::Unavailable(e.to_string()),
            None => StoreError::Command(e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::unavailable(),
            // The edge logs internal errors with the request id and answers a bare 500.
            other => {
                let mut api = ApiError::internal("");
                api.message = other.to_string();
                api.code = Some("internal");
                api
            }
        }
    }
}

/// A project and mode: the boundary no request crosses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub project: String,
    pub mode: Mode,
}

impl Scope {
    pub fn new(project: impl Into<String>, mode: Mode) -> Self {
        Self {
            project: project.into(),
            mode,
        }
    }

    /// `cp:{prj}:<mode>:<rest>`.
    pub fn key(&self, rest: &str) -> String {
        format!("cp:{{{}}}:{}:{}", self.project, self.mode.as_str(), rest)
    }

    /// The scope of one of its keys, and the rest of the key: the inverse of [`Scope::key`].
    pub fn of_key(key: &str) -> Option<(Scope, &str)> {
        let (project, rest) = key.strip_prefix("cp:{")?.split_once("}:")?;
        let (mode, rest) = rest.split_once(':')?;
        Some((Scope::new(project, Mode::parse(mode)?), rest))
    }

    /// The record key of an object: `cp:{prj}:<mode>:obj:<id>`.
    pub fn record(&self, id: &str) -> String {
        self.key(&format!("obj:{id}"))
    }

    /// The prefix of record keys, for scripts that build them from ids.
    pub fn record_prefix(&self) -> String {
        self.key("obj:")
    }

    /// The project's event stream, read by the webhook dispatcher.
    pub fn event_stream(&self) -> String {
        self.key("events")
    }

    pub fn livemode(&self) -> bool {
        self.mode.livemode()
    }
}

/// Which way a page is read: `Desc` newest first, `Asc` oldest first (the caller reverses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Desc,
    Asc,
}

impl Direction {
    /// The command that reads a range this way: `desc` (takes the upper bound first) or `asc`.
    pub fn range(self, desc: &str, asc: &str, key: &str, min: &str, max: &str) -> redis::Cmd {
        let (name, first, second) = match self {
            Direction::Desc => (desc, max, min),
            Direction::Asc => (asc, min, max),
        };
        redis::cmd(name).arg(key).arg(first).arg(second).to_owned()
    }

    /// As the list script takes it.
    fn as_str(self) -> &'static str {
        match self {
            Direction::Desc => "desc",
            Direction::Asc => "asc",
        }
    }
}

/// A page's direction and lexicographic bounds (`-`, `+`, `[id`, `(id`) from its cursor and
/// the inclusive `lo` and `hi` of a `created` range. An `ending_before` page is read oldest
/// first from the cursor; the caller turns it newest first.
pub fn lex_range(
    list: &ListParams,
    lo: Option<&str>,
    hi: Option<&str>,
) -> (Direction, String, String) {
    let lo_bound = lo.map_or("-".to_string(), |l| format!("[{l}"));
    let hi_bound = hi.map_or("+".to_string(), |h| format!("[{h}"));
    match &list.cursor {
        Cursor::Start => (Direction::Desc, lo_bound, hi_bound),
        Cursor::After(id) => {
            let max = match hi {
                Some(h) if h < id.as_str() => hi_bound,
                _ => format!("({id}"),
            };
            (Direction::Desc, lo_bound, max)
        }
        Cursor::Before(id) => {
            let min = match lo {
                Some(l) if l > id.as_str() => lo_bound,
                _ => format!("({id}"),
            };
            (Direction::Asc, min, hi_bound)
        }
    }
}

/// A plain field as Redis answered it, as text: taken as it is when it is UTF-8 (it always is
/// when the daemon wrote it), else with the bad bytes replaced.
pub(crate) fn lossy(field: Vec<u8>) -> String {
    String::from_utf8(field).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A stored `json` value as text (packed events decoded; see [`packed`]).
pub fn text(key: &str, value: Vec<u8>) -> Result<String, StoreError> {
    packed::text(value).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// A record as every API read takes it: with `internal` (a payment intent's attempt and
/// challenge) and `xref` (a card's gateway token). Reading both for every object lets one
/// read, the key check's, serve whichever handler the request reaches.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub record: Record,
    pub internal: Option<String>,
    pub xref: Option<String>,
}

/// A [`Fetched`] as Redis answered it (`v`, `json`, `internal`, `xref`), not yet decoded: the
/// key check reads the objects a request names before the handler says which it wants, so
/// decoding (a packed record's decompression) waits for [`Unread::decode`].
#[derive(Debug, Clone, Default)]
pub struct Unread(pub [Option<Vec<u8>>; 4]);

impl Unread {
    /// The fields in the order they are read.
    pub const FIELDS: [&str; 4] = ["v", "json", "internal", "xref"];

    /// The record's version, if it was there.
    pub fn version(&self) -> Option<u64> {
        std::str::from_utf8(self.0[0].as_deref()?)
            .ok()?
            .parse()
            .ok()
    }

    /// The record at `key`, if it exists.
    pub fn decode(self, key: &str) -> Result<Option<Fetched>, StoreError> {
        let [v, json, internal, xref] = self.0;
        Ok(Record::from_fields(key, v, json)?.map(|record| Fetched {
            record,
            internal: internal.map(lossy),
            xref: xref.map(lossy),
        }))
    }
}

/// A stored record: its version and its JSON.
#[derive(Debug, Clone)]
pub struct Record {
    pub version: u64,
    pub json: String,
}

impl Record {
    /// The record from its `v` and `json` fields as read (`None` if either is missing).
    pub fn from_fields(
        key: &str,
        version: Option<Vec<u8>>,
        json: Option<Vec<u8>>,
    ) -> Result<Option<Self>, StoreError> {
        let version = version
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse().ok());
        Ok(match (version, json) {
            (Some(version), Some(json)) => Some(Record {
                version,
                json: text(key, json)?,
            }),
            _ => None,
        })
    }

    pub fn parse<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T, StoreError> {
        serde_json::from_str(&self.json).map_err(|e| StoreError::Corrupt {
            key: key.to_string(),
            reason: e.to_string(),
        })
    }
}

/// What a commit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    /// Applied; carries the id of the command it appended, if any.
    Done(Option<String>),
    /// A record changed since it was read; read again and retry.
    Conflict,
    /// The idempotency claim expired and was taken by another request.
    LostClaim,
    /// The request's API key, checked in the commit ([`Tx::check_key`]), was refused; nothing
    /// was written.
    Refused(KeyRefusal),
}

/// Why a key check refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// No such key (or, checked in a commit, not of the project and mode expected).
    Unknown,
    Revoked,
    /// Over the key's rate limit: retry after this long.
    Limited {
        retry_after_ms: u64,
    },
}

impl KeyRefusal {
    /// The refusal the key check answered, from its first word (and the wait, if limited).
    pub fn from_answer(word: &str, retry_after_ms: Option<&str>) -> Option<KeyRefusal> {
        match word {
            "unknown" => Some(KeyRefusal::Unknown),
            "revoked" => Some(KeyRefusal::Revoked),
            "limited" => Some(KeyRefusal::Limited {
                retry_after_ms: retry_after_ms
                    .and_then(|ms| ms.parse().ok())
                    .unwrap_or(1000),
            }),
            _ => None,
        }
    }
}

type Pending = (Tx, tokio::sync::oneshot::Sender<Result<Commit, StoreError>>);

/// Commits that only write, gathered into one script call: while one batch is in Redis the
/// next waits in a queue, so under load many changes share a round trip and a script run, and
/// when idle each goes alone at once. Each caller still learns whether its change landed.
#[derive(Clone)]
pub struct Batcher {
    queue: tokio::sync::mpsc::Sender<Pending>,
    store: Store,
}

impl Batcher {
    /// Start the batching task (inside a Tokio runtime); at most `max` changes per commit.
    pub fn start(store: Store, max: usize) -> Batcher {
        let (queue, mut rx) = tokio::sync::mpsc::channel::<Pending>(max * 4);
        let committer = store.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < max {
                    match rx.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let mut merged = Tx::new();
                let mut replies = Vec::with_capacity(batch.len());
                for (tx, reply) in batch {
                    merged.absorb(tx);
                    replies.push(reply);
                }
                let result = committer.commit(&merged).await;
                for reply in replies {
                    let shared = match &result {
                        Ok(c) => Ok(c.clone()),
                        Err(e) => Err(StoreError::Unavailable(e.to_string())),
                    };
                    let _ = reply.send(shared);
                }
            }
        });
        Batcher { queue, store }
    }

    /// Commit `tx`, sharing the script call with others when it only writes.
    pub async fn commit(&self, tx: Tx) -> Result<Commit, StoreError> {
        if !tx.is_unchecked() {
            return self.store.commit(&tx).await;
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self.queue.send((tx, reply)).await.is_err() {
            return Err(StoreError::Unavailable("commit batcher stopped".into()));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("commit batcher stopped".into())))
    }
}

#[derive(Clone)]
pub struct Store {
    conns: Arc<Vec<ConnectionManager>>,
    next: Arc<AtomicUsize>,
    /// How the shared connections were made, for a loop's own ([`Store::dedicated`]).
    client: redis::Client,
    config: redis::aio::ConnectionManagerConfig,
}

/// Longest a blocking read waits for new entries (`XREADGROUP … BLOCK`), well inside
/// `OP_TIMEOUT`.
pub const BLOCK: Duration = Duration::from_millis(500);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("connections", &self.conns.len())
            .finish()
    }
}

impl Store {
    /// Connect once; fails if Redis does not answer. See [`Store::connect_with_retry`].
    pub async fn connect(url: &str, connect_timeout: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(StoreError::from_redis)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let mut conns = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let cm = ConnectionManager::new_with_config(client.clone(), config.clone())
                .await
                .map_err(StoreError::from_redis)?;
            conns.push(cm);
        }
        let store = Self {
            conns: Arc::new(conns),
            next: Arc::new(AtomicUsize::new(0)),
            client,
            config,
        };
        store.ping().await?;
        Ok(store)
    }

    /// Connect, retrying with backoff (up to 10 s between tries) until Redis answers, saying
    /// so in the log each time: a daemon started before its Redis simply waits for it.
    pub async fn connect_with_retry(url: &str, connect_timeout: Duration) -> Self {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1u32;
        loop {
            match Self::connect(url, connect_timeout).await {
                Ok(store) => {
                    if attempt > 1 {
                        tracing::info!(attempt, "connected to redis");
                    }
                    return store;
                }
                Err(e) => {
                    tracing::warn!(
                        attempt,
                        retry_in_ms = delay.as_millis() as u64,
                        error = %e,
                        "redis is not reachable yet; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                    attempt += 1;
                }
            }
        }
    }

    /// A connection for one operation (they are multiplexed; this spreads the load).
    pub fn conn(&self) -> ConnectionManager {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        self.conns[i].clone()
    }

    /// A connection of its own, for one loop's blocking reads (`XREADGROUP … BLOCK`, at
    /// most [`BLOCK`]): a blocked command holds up whatever is queued behind it on its
    /// connection, so it never rides on the shared ones. An idle daemon then waits for
    /// work inside Redis instead of asking for it every few milliseconds. Tried again every
    /// half second, saying so, until Redis gives it (the manager reconnects it after that).
    pub async fn dedicated(&self, purpose: &'static str) -> ConnectionManager {
        loop {
            match ConnectionManager::new_with_config(self.client.clone(), self.config.clone()).await
            {
                Ok(c) => return c,
                Err(e) => {
                    tracing::warn!(error = %e, purpose, "no connection of its own yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// Field `field` of stream entry `id` (`None`: the entry is gone).
    pub async fn stream_field(
        &self,
        stream: &str,
        id: &str,
        field: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut c = self.conn();
        let reply: redis::streams::StreamRangeReply = self
            .run(async {
                redis::cmd("XRANGE")
                    .arg(stream)
                    .arg(id)
                    .arg(id)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .next()
            .and_then(|e| e.get::<String>(field)))
    }

    /// Move stream entry `id` that keeps failing out of `group`'s way and onto the list
    /// `dead`, as `{id, why, <field>: …}`, in one MULTI, for an operator to look at or replay.
    pub async fn dead_letter(
        &self,
        (stream, group, field): (&str, &str, &str),
        dead: &str,
        id: &str,
        why: &str,
    ) -> Result<(), StoreError> {
        let value = self
            .stream_field(stream, id, field)
            .await?
            .unwrap_or_default();
        let mut entry = serde_json::Map::new();
        entry.insert("id".into(), id.into());
        entry.insert("why".into(), why.into());
        entry.insert(field.into(), value.into());
        let entry = Value::Object(entry).to_string();
        let mut c = self.conn();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .rpush(dead, entry)
            .ignore()
            .xack(stream, group, &[id])
            .ignore()
            .xdel(stream, &[id])
            .ignore();
        self.run(pipe.query_async::<()>(&mut c)).await
    }

    /// Run one Redis operation with the store's timeout and error mapping.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let (result, kind) = match tokio::time::timeout(OP_TIMEOUT, f).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => {
                let kind = Unavailability::of(&e).map_or("other", Unavailability::label);
                (Err(StoreError::from_redis(e)), kind)
            }
            Err(_) => (
                Err(StoreError::Unavailable("operation timed out".into())),
                Unavailability::Timeout.label(),
            ),
        };
        metrics::counter!("calmony_redis_errors_total", "kind" => kind).increment(1);
        result
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.conn();
        self.run(async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
    }

    /// Whether Redis takes writes now: a small write that expires (`cp:readyz`), the probe
    /// behind `/readyz`. A `PING` answers while Redis refuses every write (memory full,
    /// loading, a replica), and a daemon that cannot write cannot take payments.
    pub async fn accepts_writes(&self) -> Result<(), StoreError> {
        let mut c = self.conn();
        self.run(async move {
            redis::cmd("SET")
                .arg("cp:readyz")
                .arg("1")
                .arg("PX")
                .arg(10_000)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    /// Read a record (version and JSON).
    pub async fn get(&self, key: &str) -> Result<Option<Record>, StoreError> {
        Ok(self.get_with(key, &[]).await?.map(|(record, _)| record))
    }

    /// The JSON stored at `key`, whatever holds it: a record's `json` field (a hash) or a whole
    /// string value (the sandbox gateway's transactions), packed or plain. For operators
    /// (`calmony-payd record`); two round trips.
    pub async fn json_at(&self, key: &str) -> Result<Option<String>, StoreError> {
        let (mut c, k) = (self.conn(), key.to_owned());
        let kind: String = self
            .run(async move { redis::cmd("TYPE").arg(k).query_async(&mut c).await })
            .await?;
        let read = match kind.as_str() {
            "hash" => redis::cmd("HGET").arg(key).arg("json").to_owned(),
            "string" => redis::cmd("GET").arg(key).to_owned(),
            _ => return Ok(None),
        };
        let mut c = self.conn();
        let raw: Option<Vec<u8>> = self
            .run(async move { read.query_async(&mut c).await })
            .await?;
        raw.map(|value| text(key, value)).transpose()
    }

    /// Read a record with internal fields.
    pub async fn get_with(
        &self,
        key: &str,
        internal: &[&str],
    ) -> Result<Option<(Record, Vec<Option<String>>)>, StoreError> {
        let mut c = self.conn();
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(key).arg("v").arg("json");
        for f in internal {
            cmd.arg(*f);
        }
        let mut out: Vec<Option<Vec<u8>>> = self
            .run(async move { cmd.query_async(&mut c).await })
            .await?;
        if out.len() < 2 {
            return Ok(None);
        }
        let rest = out.split_off(2).into_iter().map(|f| f.map(lossy)).collect();
        let json = out.pop().flatten();
        let version = out.pop().flatten();
        Ok(Record::from_fields(key, version, json)?.map(|r| (r, rest)))
    }

    /// Read a record as an API request does ([`Fetched`]).
    pub async fn fetch(&self, key: &str) -> Result<Option<Fetched>, StoreError> {
        let mut c = self.conn();
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(key).arg(&Unread::FIELDS[..]);
        let fields: Vec<Option<Vec<u8>>> = self
            .run(async move { cmd.query_async(&mut c).await })
            .await?;
        let mut fields = fields.into_iter();
        Unread(std::array::from_fn(|_| fields.next().flatten())).decode(key)
    }

    /// Apply a transaction atomically. See the module documentation.
    pub async fn commit(&self, tx: &Tx) -> Result<Commit, StoreError> {
        self.commit_numbered(tx).await.map(|(c, _)| c)
    }

    /// [`Store::commit`], answering too the numbers the commit took (`Tx::number`), in the
    /// order it took them: a caller that goes on with what it wrote then holds the real
    /// number instead of the placeholder.
    pub async fn commit_numbered(&self, tx: &Tx) -> Result<(Commit, Vec<String>), StoreError> {
        let (header, values) = tx.script_args();
        let mut c = self.conn();
        let mut inv = scripts::COMMIT.prepare_invoke();
        for k in &tx.keys {
            inv.key(k);
        }
        inv.arg(header);
        for v in &values {
            inv.arg(&**v);
        }
        let out: Vec<String> = self
            .run(async move { inv.invoke_async(&mut c).await })
            .await?;
        Ok(match out.first().map(String::as_str) {
            Some("ok") => (
                Commit::Done(out.get(1).filter(|s| !s.is_empty()).cloned()),
                out.get(2..).map(<[String]>::to_vec).unwrap_or_default(),
            ),
            Some("lost") => (Commit::LostClaim, Vec::new()),
            Some(word) => match KeyRefusal::from_answer(word, out.get(1).map(String::as_str)) {
                Some(refusal) => (Commit::Refused(refusal), Vec::new()),
                None => (Commit::Conflict, Vec::new()),
            },
            None => (Commit::Conflict, Vec::new()),
        })
    }

    /// One page of a list index, newest first, with the records' JSON.
    pub async fn page(
        &self,
        scope: &Scope,
        index: &str,
        list: &ListParams,
    ) -> Result<(Vec<String>, bool), StoreError> {
        self.page_within(scope, index, list, None, None).await
    }

    /// One page of ids between `lo` and `hi` inclusive (either open), newest first.
    pub async fn page_within(
        &self,
        scope: &Scope,
        index: &str,
        list: &ListParams,
        lo: Option<&str>,
        hi: Option<&str>,
    ) -> Result<(Vec<String>, bool), StoreError> {
        let (dir, min, max) = lex_range(list, lo, hi);
        let dir = dir.as_str();
        let mut c = self.conn();
        let prefix = scope.record_prefix();
        let limit = list.limit;
        let (ids, jsons): (Vec<String>, Vec<Option<Vec<u8>>>) = self
            .run(async move {
                scripts::PAGE
                    .key(index)
                    .arg(dir)
                    .arg(min)
                    .arg(max)
                    .arg(limit + 1)
                    .arg(prefix)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        let has_more = ids.len() > limit;
        let mut items = Vec::with_capacity(limit.min(ids.len()));
        for (id, json) in ids.iter().zip(jsons).take(limit) {
            if let Some(json) = json {
                items.push(text(&format!("{}{id}", scope.record_prefix()), json)?);
            }
        }
        if dir == "asc" {
            items.reverse();
        }
        Ok((items, has_more))
    }
}

impl Store {
    /// One page of the ids in every one of `sets` (a list's index first, then the sets of the
    /// values its filters ask for; see [`filters`]) and inside every one of `ranges`, newest
    /// first, with `has_more` exact: [`scripts::PAGE_WHERE`], asked again from where it
    /// stopped until the page is full or the smallest set ends.
    pub async fn page_where(
        &self,
        scope: &Scope,
        sets: &[String],
        ranges: &[filters::Range],
        list: &ListParams,
    ) -> Result<(Vec<String>, bool), StoreError> {
        /// How many ids one call may look at: a bound on how long it holds Redis.
        const BUDGET: usize = 2_000;
        let (dir, mut min, mut max) = lex_range(list, None, None);
        let want = list.limit + 1;
        let prefix = scope.record_prefix();
        let (mut ids, mut jsons) = (Vec::new(), Vec::new());
        loop {
            let mut c = self.conn();
            let mut inv = scripts::PAGE_WHERE.prepare_invoke();
            for set in sets {
                inv.key(set);
            }
            for range in ranges {
                inv.key(&range.set);
            }
            inv.arg(dir.as_str())
                .arg(&min)
                .arg(&max)
                .arg(want - ids.len())
                .arg(&prefix)
                .arg(BUDGET)
                .arg(ranges.len());
            for range in ranges {
                inv.arg(range.gte).arg(range.lte);
            }
            type Answer = (Vec<String>, Vec<Option<Vec<u8>>>, String, String, u8);
            let (got, got_json, next_min, next_max, ended): Answer = self
                .run(async move { inv.invoke_async(&mut c).await })
                .await?;
            ids.extend(got);
            jsons.extend(got_json);
            if ended == 1 || ids.len() >= want {
                break;
            }
            (min, max) = (next_min, next_max);
        }
        let has_more = ids.len() > list.limit;
        let mut items = Vec::with_capacity(list.limit.min(ids.len()));
        for (id, json) in ids.iter().zip(jsons).take(list.limit) {
            if let Some(json) = json {
                items.push(text(&format!("{prefix}{id}"), json)?);
            }
        }
        if dir == Direction::Asc {
            items.reverse();
        }
        Ok((items, has_more))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 503 that says "retry", not a 500 that says "do not".
    #[test]
    fn an_unavailable_redis_answers_a_retryable_503() {
        let api = ApiError::from(StoreError::Unavailable("OOM".into()));
        assert_eq!((api.status, api.should_retry()), (503, true));
    }

    #[test]
    fn a_key_gives_back_its_scope_and_the_rest() {
        let scope = Scope::new("prj_1", Mode::Live);
        let key = scope.key("obj:evt_1");
        let (back, rest) = Scope::of_key(&key).expect("a scope's key");
        assert_eq!((back, rest), (scope, "obj:evt_1"));
        assert!(Scope::of_key("cp:payments:commands").is_none());
        assert!(Scope::of_key("cp:{prj_1}:nomode:x").is_none());
    }
}
