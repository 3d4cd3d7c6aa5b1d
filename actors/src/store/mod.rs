//! The Redis store.
//!
//! ## Keyspace
//! Every key starts with `cp:`. A project's data carries its id as a hash tag,
//! `cp:{prj_…}:<mode>:…`, so one project lives in one Redis Cluster slot and a multi-key
//! script over it stays legal if the store is ever sharded. Records are hashes with two
//! fields: `v`, a version bumped by every write, and `json`, the object exactly as the API
//! answers it, so a retrieve is a single `HGET` with no re-encoding. Lists are sorted sets of
//! IDs with equal scores: IDs are ULIDs, so lexicographic order is creation order and
//! `ZREVRANGEBYLEX` pages newest first from an exact cursor. The README lists every key.
//!
//! ## One atomic commit per state change
//! A change is read, decided in Rust, and written with [`Tx`] through one Lua script
//! ([`scripts::COMMIT`]): first every check (record versions unchanged since they were read,
//! the idempotency claim still ours), then every write (records, indexes, the event, the event
//! stream entry, the stored idempotent answer). Either all of it happens or none of it does, and
//! a concurrent writer turns into a clean retry instead of a lost update. There is no second
//! write path: customers, and every resource after them, go through [`Store::commit`].

mod managed;
pub mod scripts;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use calmony_protocol::event::Event;
use calmony_protocol::list::{Cursor, ListParams};
use calmony_protocol::{ApiError, Mode};
use redis::aio::ConnectionManager;
use serde_json::{Value, json};

pub use managed::ManagedRedis;

/// How many multiplexed connections requests are spread over.
const CONNECTIONS: usize = 4;
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
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.is_unrecoverable_error()
        {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Command(e)
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

/// A stored record: its version and its JSON.
#[derive(Debug, Clone)]
pub struct Record {
    pub version: u64,
    pub json: String,
}

impl Record {
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
}

/// The writes of one state change, applied atomically by [`Store::commit`].
///
/// Operations name keys by their index in `KEYS` and values by their index in `ARGV`, so the
/// records' JSON travels as plain script arguments: it is neither escaped into the operation
/// list here nor decoded again inside Redis (that double handling was most of a commit's cost).
#[derive(Debug, Default)]
pub struct Tx {
    keys: Vec<String>,
    ops: Vec<Value>,
    /// Script arguments after the operation list: `ARGV[i + 2]` is `args[i]`.
    args: Vec<String>,
    /// `(placeholder, prefix)` of every number taken (see [`Tx::number`]).
    numbers: Vec<(String, String)>,
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

    fn vs(&mut self, pairs: &[(&str, &str)]) -> Vec<usize> {
        pairs
            .iter()
            .flat_map(|(a, b)| [self.v(a), self.v(b)])
            .collect()
    }

    /// The record must still be at `version` (0: must not exist).
    pub fn expect_version(&mut self, key: &str, version: u64) -> &mut Self {
        let k = self.k(key);
        self.ops.push(json!(["ver", k, version]));
        self
    }

    /// Write a record at `version` (the version read plus one).
    pub fn put(&mut self, key: &str, version: u64, json: &str) -> &mut Self {
        self.put_with(key, version, json, &[])
    }

    /// Write a record with internal fields kept beside its JSON (never answered to clients).
    pub fn put_with(
        &mut self,
        key: &str,
        version: u64,
        json: &str,
        internal: &[(&str, &str)],
    ) -> &mut Self {
        let k = self.k(key);
        let body = self.v(json);
        let extra = self.vs(internal);
        self.ops
            .push(json!(["put", k, version.to_string(), body, extra]));
        self
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
        let fields = self.vs(fields);
        self.ops.push(json!(["cmd", k, group, consumer, fields]));
        self
    }

    pub fn hincrby(&mut self, key: &str, field: &str, by: i64) -> &mut Self {
        let k = self.k(key);
        self.ops.push(json!(["hincrby", k, field, by]));
        self
    }

    pub fn hdel(&mut self, key: &str, field: &str) -> &mut Self {
        let k = self.k(key);
        self.ops.push(json!(["hdel", k, field]));
        self
    }

    pub fn hsetnx(&mut self, key: &str, field: &str, value: &str) -> &mut Self {
        let k = self.k(key);
        let value = self.v(value);
        self.ops.push(json!(["hsetnx", k, field, value]));
        self
    }

    /// Add a member to a sorted set with a score (due times of scheduled work).
    pub fn schedule(&mut self, set: &str, due_ms: i64, member: &str) -> &mut Self {
        let k = self.k(set);
        let member = self.v(member);
        self.ops
            .push(json!(["zadd", k, due_ms.to_string(), member]));
        self
    }

    /// Append an entry to a stream (no consumer is chosen: the group's readers share it).
    pub fn append(&mut self, stream: &str, fields: &[(&str, &str)]) -> &mut Self {
        let k = self.k(stream);
        let fields = self.vs(fields);
        self.ops.push(json!(["xadd", k, fields]));
        self
    }

    /// Take the next number of `counter` as `prefix` + six digits, written wherever
    /// `placeholder` appears in this transaction's writes.
    pub fn number(&mut self, counter: &str, placeholder: &str, prefix: &str) -> &mut Self {
        let k = self.k(counter);
        // Numbers are taken in the write pass before any write that carries them.
        self.ops
            .insert(0, json!(["seq", k, placeholder, prefix, 6]));
        self.numbers
            .push((placeholder.to_string(), prefix.to_string()));
        self
    }

    /// Acknowledge (and delete) a finished command.
    pub fn ack(&mut self, stream: &str, group: &str, id: &str) -> &mut Self {
        let k = self.k(stream);
        self.ops.push(json!(["ack", k, group, id]));
        self
    }

    /// Keep an idempotency claim alive (still running) for `ms`: a change that will finish
    /// later, perhaps in another process, holds the key until its answer is stored.
    pub fn hold_claim(&mut self, claim: &crate::idempotency::Claim, ms: u64) -> &mut Self {
        let k = self.k(&claim.redis_key);
        self.ops.push(json!(["own", k, claim.owner]));
        self.expire_ms(&claim.redis_key.clone(), ms)
    }

    /// Add an id to a list index.
    pub fn index(&mut self, index: &str, id: &str) -> &mut Self {
        let k = self.k(index);
        let id = self.v(id);
        self.ops.push(json!(["zadd", k, "0", id]));
        self
    }

    pub fn unindex(&mut self, index: &str, id: &str) -> &mut Self {
        let k = self.k(index);
        let id = self.v(id);
        self.ops.push(json!(["zrem", k, id]));
        self
    }

    pub fn hset(&mut self, key: &str, fields: &[(&str, &str)]) -> &mut Self {
        let k = self.k(key);
        let fields = self.vs(fields);
        self.ops.push(json!(["hset", k, fields]));
        self
    }

    pub fn expire_ms(&mut self, key: &str, ms: u64) -> &mut Self {
        let k = self.k(key);
        self.ops.push(json!(["pexpire", k, ms.to_string()]));
        self
    }

    /// Append an event: its record (with its type beside the JSON, for the retention sweep
    /// that forgets it after the retention period: see `webhooks::retention`), its place in
    /// the project's event list and its type's, and an entry on the project's event stream for
    /// delivery.
    pub fn event(&mut self, scope: &Scope, event: &Event) -> &mut Self {
        let json = serde_json::to_string(event).unwrap_or_default();
        let record = scope.record(&event.id);
        let created = event.created.to_string();
        self.put_with(
            &record,
            1,
            &json,
            &[("type", &event.kind), ("created", &created)],
        );
        self.index(&scope.key("events:index"), &event.id);
        self.index(
            &scope.key(&format!("events:type:{}", event.kind)),
            &event.id,
        );
        // Only a project with webhook endpoints needs the event queued for fan-out, and the
        // check is inside the commit, so an endpoint created concurrently either predates the
        // event (and hears of it) or follows it (and, as with Stripe, does not).
        let k = self.k(&scope.event_stream());
        let guard = self.k(&scope.key("webhook_endpoints"));
        let fields = self.vs(&[("id", &event.id), ("type", &event.kind)]);
        self.ops.push(json!(["xaddif", k, guard, fields]));
        self
    }

    /// Store the request's answer under its idempotency key, if it has one, as part of this
    /// change: a crash can then never leave a change without its answer or the reverse.
    pub fn respond(&mut self, ctx: &crate::RequestContext, status: u16, body: &str) -> &mut Self {
        if let Some(claim) = &ctx.idempotency {
            self.respond_to(claim, ctx.idempotency_ttl_secs, status, body);
        }
        self
    }

    /// Store the answer under a claim carried by a command (the request may be long gone).
    pub fn respond_to(
        &mut self,
        claim: &crate::idempotency::Claim,
        ttl_secs: u64,
        status: u16,
        body: &str,
    ) -> &mut Self {
        let k = self.k(&claim.redis_key);
        self.ops.push(json!(["own", k, claim.owner]));
        let status = status.to_string();
        self.hset(
            &claim.redis_key.clone(),
            &[("state", "done"), ("status", &status), ("body", body)],
        );
        self.expire_ms(&claim.redis_key.clone(), ttl_secs * 1000)
    }

    /// The same writes without the idempotency checks and answers (for a retry after the
    /// claim was lost: the change itself must still happen).
    pub fn without_answers(&self) -> Tx {
        let claim_keys: Vec<u64> = self
            .ops
            .iter()
            .filter(|op| op[0] == "own")
            .filter_map(|op| op[1].as_u64())
            .collect();
        let ops = self
            .ops
            .iter()
            .filter(|op| !op[1].as_u64().is_some_and(|k| claim_keys.contains(&k)))
            .cloned()
            .collect();
        Tx {
            keys: self.keys.clone(),
            ops,
            args: self.args.clone(),
            numbers: self.numbers.clone(),
        }
    }

    /// Whether this change only writes (no version or claim checks, no numbers): such changes
    /// can share one commit (see [`Batcher`]) without one's check failing the others.
    pub fn is_unchecked(&self) -> bool {
        self.numbers.is_empty() && !self.ops.iter().any(|op| op[0] == "ver" || op[0] == "own")
    }

    /// Append another change's writes, its keys and values renumbered after this one's.
    fn absorb(&mut self, other: Tx) {
        let (keys, args) = (self.keys.len() as u64, self.args.len() as u64);
        for mut op in other.ops {
            shift(&mut op[1], keys);
            match op[0].as_str().unwrap_or("") {
                "put" => {
                    shift(&mut op[3], args);
                    shift_all(&mut op[4], args);
                }
                "hset" | "xadd" => shift_all(&mut op[2], args),
                "zadd" | "hsetnx" => shift(&mut op[3], args),
                "zrem" => shift(&mut op[2], args),
                "xaddif" => {
                    shift(&mut op[2], keys);
                    shift_all(&mut op[3], args);
                }
                "cmd" => shift_all(&mut op[4], args),
                _ => {}
            }
            self.ops.push(op);
        }
        self.keys.extend(other.keys);
        self.args.extend(other.args);
    }

    /// The script's arguments: the operation list, the values, then, for each value that
    /// carries a number's placeholder, its pieces around it (the script joins them with the
    /// number it takes, so no pattern substitution runs over the records inside Redis).
    fn script_args(&self) -> (String, Vec<&str>) {
        let mut argv: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut templates: Vec<(usize, &str, usize, usize)> = Vec::new();
        for (placeholder, _) in &self.numbers {
            for (i, arg) in self.args.iter().enumerate() {
                if !arg.contains(placeholder.as_str()) {
                    continue;
                }
                // A templated value travels only as its pieces.
                argv[i] = "";
                let first = argv.len() + 2;
                argv.extend(arg.split(placeholder.as_str()));
                templates.push((i + 2, placeholder, first, argv.len() + 1));
            }
        }
        #[derive(serde::Serialize)]
        struct Header<'a> {
            ops: &'a [Value],
            tpl: &'a [(usize, &'a str, usize, usize)],
        }
        let header = Header {
            ops: &self.ops,
            tpl: &templates,
        };
        (serde_json::to_string(&header).unwrap_or_default(), argv)
    }
}

fn shift(index: &mut Value, by: u64) {
    if let Some(n) = index.as_u64() {
        *index = json!(n + by);
    }
}

fn shift_all(list: &mut Value, by: u64) {
    if let Some(items) = list.as_array_mut() {
        items.iter_mut().for_each(|i| shift(i, by));
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
}

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
        let result = match tokio::time::timeout(OP_TIMEOUT, f).await {
            Ok(r) => r.map_err(StoreError::from_redis),
            Err(_) => Err(StoreError::Unavailable("operation timed out".into())),
        };
        if result.is_err() {
            metrics::counter!("calmony_redis_errors_total").increment(1);
        }
        result
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.conn();
        self.run(async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
    }

    /// Read a record (version and JSON).
    pub async fn get(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let mut c = self.conn();
        let (v, json): (Option<u64>, Option<String>) = self
            .run(async move {
                redis::cmd("HMGET")
                    .arg(key)
                    .arg("v")
                    .arg("json")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(match (v, json) {
            (Some(version), Some(json)) => Some(Record { version, json }),
            _ => None,
        })
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
        let mut out: Vec<Option<String>> = self
            .run(async move { cmd.query_async(&mut c).await })
            .await?;
        if out.len() < 2 {
            return Ok(None);
        }
        let rest = out.split_off(2);
        Ok(
            match (out[0].as_ref().and_then(|v| v.parse().ok()), out[1].take()) {
                (Some(version), Some(json)) => Some((Record { version, json }, rest)),
                _ => None,
            },
        )
    }

    /// Apply a transaction atomically. See the module documentation.
    pub async fn commit(&self, tx: &Tx) -> Result<Commit, StoreError> {
        let (header, values) = tx.script_args();
        let mut c = self.conn();
        let mut inv = scripts::COMMIT.prepare_invoke();
        for k in &tx.keys {
            inv.key(k);
        }
        inv.arg(header);
        for v in values {
            inv.arg(v);
        }
        let out: Vec<String> = self
            .run(async move { inv.invoke_async(&mut c).await })
            .await?;
        Ok(match out.first().map(String::as_str) {
            Some("ok") => Commit::Done(out.get(1).filter(|s| !s.is_empty()).cloned()),
            Some("lost") => Commit::LostClaim,
            _ => Commit::Conflict,
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
        let lo_bound = lo.map_or("-".to_string(), |l| format!("[{l}"));
        let hi_bound = hi.map_or("+".to_string(), |h| format!("[{h}"));
        let (dir, min, max) = match &list.cursor {
            Cursor::Start => ("desc", lo_bound, hi_bound),
            Cursor::After(id) => {
                let max = match hi {
                    Some(h) if h < id.as_str() => hi_bound,
                    _ => format!("({id}"),
                };
                ("desc", lo_bound, max)
            }
            Cursor::Before(id) => {
                let min = match lo {
                    Some(l) if l > id.as_str() => lo_bound,
                    _ => format!("({id}"),
                };
                ("asc", min, hi_bound)
            }
        };
        let mut c = self.conn();
        let prefix = scope.record_prefix();
        let limit = list.limit;
        let (ids, jsons): (Vec<String>, Vec<Option<String>>) = self
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
        let mut items: Vec<String> = jsons.into_iter().take(limit).flatten().collect();
        if dir == "asc" {
            items.reverse();
        }
        Ok((items, has_more))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an operation names, resolved through the script arguments as the script would.
    fn resolve(tx: &Tx) -> Vec<(String, String, Vec<String>)> {
        let (header, argv) = tx.script_args();
        let header: Value = serde_json::from_str(&header).expect("header");
        let value = |i: &Value| argv[i.as_u64().expect("index") as usize - 2].to_string();
        header["ops"]
            .as_array()
            .expect("ops")
            .iter()
            .map(|op| {
                let key = tx.keys[op[1].as_u64().expect("key") as usize - 1].clone();
                let values = match op[0].as_str().expect("kind") {
                    "put" => std::iter::once(value(&op[3]))
                        .chain(op[4].as_array().expect("fields").iter().map(value))
                        .collect(),
                    "zadd" => vec![value(&op[3])],
                    "xadd" => op[2]
                        .as_array()
                        .expect("fields")
                        .iter()
                        .map(value)
                        .collect(),
                    _ => Vec::new(),
                };
                (op[0].as_str().unwrap_or("").to_string(), key, values)
            })
            .collect()
    }

    #[test]
    fn absorbed_changes_keep_their_own_keys_and_values() {
        let mut first = Tx::new();
        first.put("k1", 1, "A").index("list", "a1");
        let mut second = Tx::new();
        second
            .put_with("k2", 3, "B", &[("f", "x")])
            .index("list", "b1")
            .append("stream", &[("d", "D")]);
        let mut merged = Tx::new();
        merged.absorb(first);
        merged.absorb(second);
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            resolve(&merged),
            vec![
                ("put".into(), "k1".into(), s(&["A"])),
                ("zadd".into(), "list".into(), s(&["a1"])),
                ("put".into(), "k2".into(), s(&["B", "f", "x"])),
                ("zadd".into(), "list".into(), s(&["b1"])),
                ("xadd".into(), "stream".into(), s(&["d", "D"])),
            ]
        );
        assert!(merged.is_unchecked());
        let mut checked = Tx::new();
        checked.expect_version("k1", 1).put("k1", 2, "A2");
        assert!(
            !checked.is_unchecked(),
            "a version check keeps a change to itself"
        );
    }
}
