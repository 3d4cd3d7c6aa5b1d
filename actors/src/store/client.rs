//! [`Store`]: the Redis connections, one operation's timeout and error mapping, reads of
//! records, and pages of lists.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use calmony_protocol::list::ListParams;
use redis::aio::ConnectionManager;
use serde_json::Value;

use super::error::StoreError;
use super::filters;
use super::page::{Direction, lex_range};
use super::record::{Fetched, Record, Unread, lossy, text};
use super::scope::Scope;
use super::scripts;
use super::unavailability::Unavailability;

/// How many multiplexed connections requests are spread over. Fewer carry more commands per
/// write and per wake-up of Redis and of the daemon, and a wake-up costs more than a command.
/// Not one: with a single connection, the two-daemon renewal drill once saw a Redis
/// operation queue behind others past `OP_TIMEOUT` (a renewal's charge then failed), so two
/// until that is understood.
const CONNECTIONS: usize = 2;
/// Longest time one store operation may take before the request is answered 503.
const OP_TIMEOUT: Duration = Duration::from_secs(3);

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
