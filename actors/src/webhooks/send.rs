//! Sending deliveries, scheduling retries, and taking over deliveries left by a crash.

use std::sync::Arc;
use std::time::{Duration, Instant};

use calmony_protocol::event::Event;
use calmony_protocol::ids;
use calmony_protocol::webhook::{ATTEMPT_PREFIX, WebhookAttempt, header};
use rand::Rng;
use redis::AsyncCommands;
use redis::streams::{StreamAutoClaimReply, StreamPendingCountReply, StreamReadReply};
use tokio::sync::Semaphore;

use super::delivery::Delivery;
use super::hub::MAX_DELIVERIES;
use super::{DEAD_LETTERS, DELIVERIES, RETRIES, SENDERS, Webhooks, endpoints, events, reach};
use crate::clock;
use crate::store::event_log::Place;
use crate::store::{Batcher, Scope, StoreError, Tx, scripts};
use crate::system::restarts::{self, Crashed};

/// Delivery attempts recorded per commit, at most.
const RECORD_BATCH: usize = 64;

/// How much of an endpoint's answer an attempt keeps, in characters.
const SNIPPET: usize = 256;
/// The most of an answer ever read: enough bytes for [`SNIPPET`] characters of UTF-8. An
/// endpoint may answer with any amount (hundreds of MB were seen); the rest is never read,
/// and the connection is dropped rather than drained.
const SNIPPET_BYTES: usize = SNIPPET * 4;

/// The panic boundary deliveries run in: the actor they belong to (its name for the fault hook
/// and the restart count) and where a panic is reported so that actor restarts.
#[derive(Clone)]
pub struct Boundary {
    pub actor: &'static str,
    pub crashed: actix::Recipient<Crashed>,
}

impl Webhooks {
    async fn ensure_group(&self) -> Result<(), StoreError> {
        let mut c = self.store.conn();
        let r: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(DELIVERIES)
            .arg(SENDERS)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut c)
            .await;
        match r {
            Err(e) if !e.to_string().contains("BUSYGROUP") => {
                Err(StoreError::Unavailable(e.to_string()))
            }
            _ => Ok(()),
        }
    }

    /// Send deliveries until the daemon stops, each inside `boundary`.
    pub async fn send_loop(self, boundary: Boundary) {
        let permits = Arc::new(Semaphore::new(self.concurrency));
        // The group is made once, and again only after a failed read (Redis restarted empty).
        let mut group_ready = false;
        // New deliveries are waited for on a connection of the loop's own.
        let waiter = self.store.dedicated("waiting for deliveries").await;
        loop {
            if !group_ready {
                if let Err(e) = self.ensure_group().await {
                    tracing::debug!(error = %e, "delivery group not ready");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                group_ready = true;
            }
            let free = permits.available_permits();
            if free == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
                continue;
            }
            let batch = match self.read_new(waiter.clone(), free.min(500)).await {
                Ok(b) => b,
                Err(_) if self.stopping() => return,
                Err(e) => {
                    tracing::warn!(error = %e, "reading deliveries failed");
                    group_ready = false;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                // The read waited (up to `store::BLOCK`) and nothing came.
                continue;
            }
            for (entry_id, raw) in batch {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                self.spawn_delivery(&boundary, entry_id, raw, permit);
            }
        }
    }

    fn spawn_delivery(
        &self,
        boundary: &Boundary,
        entry_id: String,
        raw: Option<String>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        let Some(mark) = self.claim(&entry_id) else {
            return;
        };
        let me = self.clone();
        // Inside the dispatcher's panic boundary: a panic restarts the dispatcher, and the mark
        // (dropped as the panic unwinds) no longer hides the delivery from the take-over.
        let work = async move {
            let _mark = mark;
            let _permit = permit;
            if let Err(e) = me.deliver(&entry_id, raw).await {
                tracing::warn!(delivery = %entry_id, error = %e, "delivery not recorded; will be retried");
            }
        };
        tokio::spawn(restarts::guarded(
            boundary.actor,
            boundary.crashed.clone(),
            work,
        ));
    }

    /// New deliveries, up to `count`, waiting up to `store::BLOCK` for the first on `c` (the
    /// loop's own connection).
    async fn read_new(
        &self,
        mut c: redis::aio::ConnectionManager,
        count: usize,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let consumer = self.consumer.clone();
        let reply: Option<StreamReadReply> = self
            .store
            .run(async move {
                redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(SENDERS)
                    .arg(&consumer)
                    .arg("COUNT")
                    .arg(count)
                    .arg("BLOCK")
                    .arg(crate::store::BLOCK.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(DELIVERIES)
                    .arg(">")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(reply
            .map(|r| {
                r.keys
                    .into_iter()
                    .flat_map(|k| {
                        k.ids
                            .into_iter()
                            .map(|e| (e.id.clone(), e.get::<String>("d")))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// One try: sign, POST, and one commit recording the attempt, acknowledging the delivery
    /// and, on failure, scheduling the next try.
    async fn deliver(&self, entry_id: &str, raw: Option<String>) -> Result<(), StoreError> {
        let Some(d) = raw.and_then(|r| serde_json::from_str::<Delivery>(&r).ok()) else {
            return self.park(entry_id, "unreadable delivery").await;
        };
        let scope = d.scope();
        // The endpoint's version and the event, in one round trip.
        let place = Place::of(&scope, &d.e);
        let mut c = self.store.conn();
        let mut reads = redis::pipe();
        reads
            .hget(scope.record(&d.w), "v")
            .add_command(place.read());
        let (endpoint_version, event): (Option<u64>, redis::Value) =
            self.store.run(reads.query_async(&mut c)).await?;
        let event = place.json(&d.e, event)?;
        let endpoint = match endpoint_version {
            Some(v) => self.endpoint_cached(&scope, &d.w, v).await?,
            None => None,
        };
        let (Some(endpoint), Some(event)) = (endpoint, event) else {
            // The endpoint was deleted or the event expired: nothing to send.
            metrics::counter!("calmony_webhook_deliveries_total", "outcome" => "dropped")
                .increment(1);
            let mut tx = Tx::new();
            tx.ack(DELIVERIES, SENDERS, entry_id);
            return self.store.commit(&tx).await.map(|_| ());
        };
        if endpoint.endpoint.status != "enabled" {
            metrics::counter!("calmony_webhook_deliveries_total", "outcome" => "dropped")
                .increment(1);
            let mut tx = Tx::new();
            tx.ack(DELIVERIES, SENDERS, entry_id);
            return self.store.commit(&tx).await.map(|_| ());
        }
        let now = clock::now();
        let body = event.into_bytes();
        let signature = header(now, endpoint.active_secrets(now), &body);
        let started = Instant::now();
        let reach = self.reach(scope.livemode());
        let (ok, status, response, retry_after) = self
            .post(&endpoint.endpoint.url, reach, &signature, body)
            .await;
        let elapsed = started.elapsed();
        metrics::histogram!("calmony_webhook_attempt_duration_seconds")
            .record(elapsed.as_secs_f64());
        metrics::counter!("calmony_webhook_deliveries_total", "outcome" => if ok { "succeeded" } else { "failed" })
            .increment(1);

        let mut next_due_ms = None;
        if !ok && (d.n as usize) <= self.schedule.len() {
            let base = self.schedule[d.n as usize - 1] as f64;
            let jittered = base * rand::rng().random_range(0.8..1.2);
            let delay = match retry_after {
                // Honour the endpoint's wish within [1 s, twice the schedule].
                Some(ra) => (ra as f64).clamp(1.0, base * 2.0),
                None => jittered,
            };
            next_due_ms = Some(clock::now_ms() + (delay * 1000.0) as i64);
        }
        let attempt = WebhookAttempt {
            id: ids::new_id(ATTEMPT_PREFIX),
            object: "webhook_attempt".into(),
            created: now,
            event: d.e.clone(),
            webhook_endpoint: d.w.clone(),
            url: endpoint.endpoint.url.clone(),
            attempt: d.n,
            status: if ok {
                "succeeded".into()
            } else {
                "failed".into()
            },
            http_status: status,
            duration_ms: elapsed.as_millis() as u64,
            response,
            next_attempt_at: next_due_ms.map(|ms| ms / 1000),
            livemode: scope.livemode(),
        };
        let attempt_json = serde_json::to_string(&attempt).unwrap_or_default();
        let endpoint_key = scope.record(&d.w);
        let mut tx = Tx::new();
        tx.put(&scope.record(&attempt.id), 1, &attempt_json)
            .expire_ms(
                &scope.record(&attempt.id),
                (calmony_protocol::event::RETENTION_SECS as u64) * 1000,
            )
            .index(&endpoints::attempts_index(&scope, &d.w), &attempt.id)
            .index(&events::attempts_index(&scope, &d.e), &attempt.id)
            .ack(DELIVERIES, SENDERS, entry_id);
        if ok {
            let (counter, field) = place.pending(&scope);
            tx.hincrby(&counter, &field, -1);
            if endpoint.failing_since.is_some() {
                // The failure clock stops; the version moves so cached copies are refreshed.
                tx.hdel(&endpoint_key, "failing_since")
                    .hincrby(&endpoint_key, "v", 1);
            }
        } else {
            if endpoint.failing_since.is_none() {
                tx.hsetnx(&endpoint_key, "failing_since", &now.to_string())
                    .hincrby(&endpoint_key, "v", 1);
            }
            if let Some(due) = next_due_ms {
                let next = Delivery {
                    n: d.n + 1,
                    ..d.clone()
                };
                tx.schedule(RETRIES, due, &next.encode());
            }
        }
        // Attempts only write, so concurrent deliveries share commits (one script run for many).
        let recorder = self
            .recorder
            .get_or_init(|| Batcher::start(self.store.clone(), RECORD_BATCH));
        recorder.commit(tx).await?;
        if !ok {
            let since = endpoint.failing_since.unwrap_or(now);
            if now - since >= self.disable_after_secs {
                self.disable(&scope, endpoint).await?;
            }
        }
        Ok(())
    }

    /// POST one signed delivery: (succeeded, HTTP status, what the answer or failure said,
    /// `Retry-After` seconds). A refused destination is a failure like a refused connection.
    async fn post(
        &self,
        url: &str,
        reach: calmony_protocol::destination::Reach,
        signature: &str,
        body: Vec<u8>,
    ) -> (bool, Option<u16>, String, Option<u64>) {
        let url = match reqwest::Url::parse(url) {
            Ok(u) => u,
            Err(e) => return (false, None, format!("invalid url: {e}"), None),
        };
        // A literal is connected to without DNS: the resolver's check cannot see it.
        if let Some(why) = reach::refused_literal(&url, reach) {
            return (false, None, why, None);
        }
        let sent = self
            .http
            .for_reach(reach)
            .post(url)
            .header("content-type", "application/json; charset=utf-8")
            .header("calmony-signature", signature)
            .header("stripe-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let snippet = read_excerpt(resp).await;
                (
                    (200..300).contains(&status),
                    Some(status),
                    snippet,
                    retry_after,
                )
            }
            Err(e) if e.is_timeout() => (
                false,
                None,
                format!("no answer within {:?}", self.timeout),
                None,
            ),
            Err(e) => (false, None, failure_text(&e), None),
        }
    }

    /// An endpoint, parsed once per version: every delivery reads the stored version (with the
    /// event, in one round trip) and reuses the parsed copy while it is current, so a secret
    /// roll, a disable or a deletion is seen by the very next delivery.
    async fn endpoint_cached(
        &self,
        scope: &Scope,
        id: &str,
        version: u64,
    ) -> Result<Option<Arc<endpoints::Loaded>>, StoreError> {
        let key = format!("{}:{}:{id}", scope.project, scope.mode);
        {
            let cache = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((v, l)) = cache.get(&key)
                && *v == version
            {
                return Ok(l.clone());
            }
        }
        // An endpoint that cannot be read (Redis away, secrets that do not open) is not a
        // deleted one: the delivery stays pending and is tried again.
        let loaded = endpoints::load(self, scope, id)
            .await
            .map_err(|e| StoreError::Corrupt {
                key: scope.record(id),
                reason: e.message,
            })?
            .map(Arc::new);
        let mut cache = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        if let Some(l) = &loaded {
            cache.insert(key, (l.version, loaded.clone()));
        }
        Ok(loaded)
    }

    /// Disable an endpoint that kept failing, with an event saying so.
    async fn disable(&self, scope: &Scope, l: Arc<endpoints::Loaded>) -> Result<(), StoreError> {
        // Re-read: the failure clock's own writes moved the version.
        let Ok(Some(mut l)) = endpoints::load(self, scope, &l.endpoint.id).await else {
            return Ok(());
        };
        l.endpoint.status = "disabled".into();
        let body = serde_json::to_string(&l.endpoint).unwrap_or_default();
        let event = Event::new(
            "webhook_endpoint.disabled",
            &l.endpoint,
            None,
            clock::now(),
            scope.livemode(),
            calmony_protocol::event::EventRequest::default(),
        );
        let mut tx = Tx::new();
        tx.expect_version(&scope.record(&l.endpoint.id), l.version)
            .put(&scope.record(&l.endpoint.id), l.version + 1, &body)
            .event(scope, &event);
        self.store.commit(&tx).await?;
        tracing::warn!(endpoint = %l.endpoint.id, url = %l.endpoint.url, "webhook endpoint disabled after failing continuously");
        Ok(())
    }

    /// Move due retries back into the delivery stream, take over deliveries left by crashes,
    /// and report queue depths.
    pub async fn retry_loop(self, boundary: Boundary) {
        let mut swept = Instant::now();
        loop {
            let mut c = self.store.conn();
            let moved: Result<i64, StoreError> = self
                .store
                .run(async {
                    scripts::PROMOTE_DUE
                        .key(RETRIES)
                        .key(DELIVERIES)
                        .arg(clock::now_ms())
                        .arg(1000)
                        .invoke_async(&mut c)
                        .await
                })
                .await;
            if let Err(e) = moved {
                tracing::debug!(error = %e, "promoting retries failed");
            }
            if swept.elapsed() > Duration::from_secs(1) {
                if let Err(e) = self.take_over(&boundary).await {
                    tracing::debug!(error = %e, "delivery recovery pass failed");
                }
                self.gauges().await;
                swept = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Deliveries pending in this daemon's name but not in hand (a previous life), and other
    /// daemons' deliveries idle far past the timeout.
    async fn take_over(&self, boundary: &Boundary) -> Result<(), StoreError> {
        let mut c = self.store.conn();
        let consumer = self.consumer.clone();
        let own: StreamPendingCountReply = self
            .store
            .run(async {
                redis::cmd("XPENDING")
                    .arg(DELIVERIES)
                    .arg(SENDERS)
                    .arg("IDLE")
                    .arg(1000)
                    .arg("-")
                    .arg("+")
                    .arg(200)
                    .arg(&consumer)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let mut work = Vec::new();
        for p in own.ids {
            if self.is_in_flight(&p.id) {
                continue;
            }
            if p.times_delivered as u64 > MAX_DELIVERIES {
                self.park(&p.id, "too many deliveries").await?;
                continue;
            }
            work.push((p.id.clone(), self.read_entry(&p.id).await?));
        }
        let idle = (self.timeout.as_millis() as u64) * 2 + 10_000;
        let stale: StreamAutoClaimReply = self
            .store
            .run(async {
                redis::cmd("XAUTOCLAIM")
                    .arg(DELIVERIES)
                    .arg(SENDERS)
                    .arg(&consumer)
                    .arg(idle)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(100)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        work.extend(
            stale
                .claimed
                .into_iter()
                .map(|e| (e.id.clone(), e.get::<String>("d"))),
        );
        let permits = Arc::new(Semaphore::new(self.concurrency));
        for (id, raw) in work {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            self.spawn_delivery(boundary, id, raw, permit);
        }
        Ok(())
    }

    async fn read_entry(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.store.stream_field(DELIVERIES, id, "d").await
    }

    /// Park a delivery that cannot be processed in the dead-letter list.
    async fn park(&self, id: &str, why: &str) -> Result<(), StoreError> {
        tracing::error!(delivery = %id, why, "parking a webhook delivery in {DEAD_LETTERS}");
        self.store
            .dead_letter((DELIVERIES, SENDERS, "d"), DEAD_LETTERS, id, why)
            .await
    }

    async fn gauges(&self) {
        let mut c = self.store.conn();
        let queued: Result<u64, _> = self.store.run(c.xlen(DELIVERIES)).await;
        let retries: Result<u64, _> = self.store.run(c.zcard(RETRIES)).await;
        let dead: Result<u64, _> = self.store.run(c.llen(DEAD_LETTERS)).await;
        metrics::gauge!("calmony_webhook_queue_depth", "queue" => "deliveries")
            .set(queued.unwrap_or(0) as f64);
        metrics::gauge!("calmony_webhook_queue_depth", "queue" => "retries")
            .set(retries.unwrap_or(0) as f64);
        metrics::gauge!("calmony_webhook_queue_depth", "queue" => "dead_letters")
            .set(dead.unwrap_or(0) as f64);
    }
}

/// The start of an answer's body, reading at most [`SNIPPET_BYTES`]; the response (and with
/// an unfinished body, its connection) is dropped after.
async fn read_excerpt(mut resp: reqwest::Response) -> String {
    let mut head = Vec::new();
    while head.len() < SNIPPET_BYTES {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = SNIPPET_BYTES - head.len();
                head.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    excerpt(&head)
}

/// At most [`SNIPPET`] characters of the bytes an answer began with. Any [`SNIPPET_BYTES`]
/// bytes hold that many whole characters, so a character cut at the end is never kept.
fn excerpt(head: &[u8]) -> String {
    String::from_utf8_lossy(head)
        .chars()
        .take(SNIPPET)
        .collect()
}

/// A client error with its causes (a refused destination is a cause of a connect error).
fn failure_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text
}

/// Put every parked delivery back in the delivery stream (`calmony-payd webhooks replay-dead`).
pub async fn replay_dead(store: &crate::store::Store) -> Result<usize, StoreError> {
    let mut c = store.conn();
    let entries: Vec<String> = store.run(c.lrange(DEAD_LETTERS, 0, -1)).await?;
    let mut n = 0;
    for entry in entries {
        let raw = serde_json::from_str::<serde_json::Value>(&entry)
            .ok()
            .and_then(|v| v["d"].as_str().map(str::to_string))
            .unwrap_or_default();
        if serde_json::from_str::<Delivery>(&raw).is_err() {
            // Replaying it would only park it again; it stays for a person to look at.
            tracing::warn!(entry, "keeping an unreadable dead letter");
            continue;
        }
        // Back in the queue and off the list in one MULTI: a crash never loses or doubles it.
        let mut pipe = redis::pipe();
        pipe.atomic()
            .xadd(DELIVERIES, "*", &[("d", raw.as_str())])
            .ignore()
            .lrem(DEAD_LETTERS, 1, &entry)
            .ignore();
        store.run(pipe.query_async::<()>(&mut c)).await?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_keeps_whole_characters_up_to_the_limit() {
        assert_eq!(excerpt(b"{\"received\":true}"), "{\"received\":true}");
        assert_eq!(excerpt(&[b'x'; SNIPPET_BYTES]).len(), SNIPPET);
        // Four-byte characters cut mid-way at the end of what was read: none is mangled.
        let one_byte_then_wide = format!("a{}", "\u{1F4B7}".repeat(SNIPPET));
        let kept = excerpt(&one_byte_then_wide.as_bytes()[..SNIPPET_BYTES]);
        assert_eq!(kept.chars().count(), SNIPPET);
        assert!(!kept.contains('\u{FFFD}'), "{kept}");
    }
}
