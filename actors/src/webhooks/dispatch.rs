//! Fan-out: from each project's event stream to one delivery per matching endpoint.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};

use super::delivery::Delivery;
use super::{DELIVERIES, EVENTS_GROUP, Webhooks, endpoints};
use crate::api_keys::EVENT_STREAMS;
use crate::store::event_log::{self, Place};
use crate::store::{Commit, Scope, StoreError, Tx};

/// How often the fan-out looks for event streams registered since it last did (one `SCARD`).
const STREAMS_CHECK: Duration = Duration::from_millis(250);
/// How often it reads the whole list and makes sure every stream's group exists.
const STREAMS_RELIST: Duration = Duration::from_secs(10);

/// An event entry read from a stream.
struct Entry {
    stream: String,
    id: String,
    /// The event's id and where it is kept, if the entry names one.
    event: Option<(String, Place)>,
    kind: Option<String>,
}

impl Entry {
    /// An entry of `stream`, whose scope and tag are `scope`. The event is named by `e`, its
    /// entry ID in the scope's log, which gives both its place and (with the tag) its id; or
    /// by `id`, the id itself, in entries written before the commit script stopped deriving
    /// ids (and before the log).
    fn read(stream: &str, scope: Option<&(Scope, String)>, e: StreamId) -> Self {
        let event = scope.and_then(|(scope, tag)| match e.get::<String>("id") {
            Some(id) => Some((id.clone(), Place::of(scope, &id))),
            None => {
                let entry: String = e.get("e")?;
                let id = event_log::id_of(&entry, tag)?;
                Some((id, Place::at_entry(scope, entry)))
            }
        });
        Entry {
            stream: stream.to_owned(),
            event,
            kind: e.get("type"),
            id: e.id,
        }
    }
}

/// The scope of this fan-out stream and its tag, once a read, for [`Entry::read`].
fn scope_and_tag(stream: &str) -> Option<(Scope, String)> {
    scope_of(stream).map(|scope| {
        let tag = event_log::tag(&scope);
        (scope, tag)
    })
}

/// `cp:{prj}:<mode>:events` -> the scope.
pub(super) fn scope_of(stream: &str) -> Option<Scope> {
    Scope::of_key(stream)
        .filter(|(_, rest)| *rest == "events")
        .map(|(scope, _)| scope)
}

impl Webhooks {
    pub async fn fan_out_loop(self) {
        let mut streams: Vec<String> = Vec::new();
        // When each was last done; `None`: not yet, or wanted at once. (Not "now minus a
        // minute": that underflows in the first minute after boot, when systemd starts us.)
        let mut checked: Option<Instant> = None;
        let mut listed: Option<Instant> = None;
        let mut swept: Option<Instant> = None;
        let waiter = self.store.dedicated("waiting for events").await;
        let due = |last: Option<Instant>, every: Duration| last.is_none_or(|t| t.elapsed() > every);
        loop {
            // A new project's stream is noticed within a check (its first events wait no
            // longer than that); the whole list is read again now and then regardless.
            if due(checked, STREAMS_CHECK) {
                let relist = due(listed, STREAMS_RELIST);
                match self.refresh_streams(&mut streams, relist).await {
                    Ok(true) => listed = Some(Instant::now()),
                    Ok(false) => {}
                    Err(e) => tracing::debug!(error = %e, "could not list event streams"),
                }
                checked = Some(Instant::now());
            }
            if streams.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            // Own unfinished entries (a previous life of this daemon), and other daemons'
            // stale ones, now and then; new entries always.
            let mut batch = Vec::new();
            if due(swept, Duration::from_secs(5)) {
                batch.extend(self.read(&streams, "0", None).await.unwrap_or_default());
                batch.extend(self.claim_stale(&streams).await.unwrap_or_default());
                swept = Some(Instant::now());
            }
            // New entries are waited for (unless there is work in hand) on a connection of
            // the loop's own, for at most `store::BLOCK`, so a project's stream that appears
            // meanwhile is read from within that and a check.
            let wait = batch.is_empty().then(|| waiter.clone());
            match self.read(&streams, ">", wait).await {
                Ok(new) => batch.extend(new),
                Err(_) if self.stopping() => return,
                Err(e) => {
                    // A stream or its group may have gone (an operator's DEL): list and
                    // create them all again at the next check.
                    listed = None;
                    tracing::warn!(error = %e, "reading event streams failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            if batch.is_empty() {
                continue;
            }
            if let Err(e) = self.fan_out(batch).await {
                tracing::warn!(error = %e.message, "webhook fan-out failed; will retry");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// Bring `streams` up to date with the registered event streams, creating the consumer
    /// group of each new one (of every one when `relist`). A check is one `SCARD` while
    /// nothing changed; answers whether the list was read.
    async fn refresh_streams(
        &self,
        streams: &mut Vec<String>,
        relist: bool,
    ) -> Result<bool, StoreError> {
        let mut c = self.store.conn();
        if !relist {
            let registered: usize = self.store.run(c.scard(EVENT_STREAMS)).await?;
            if registered == streams.len() {
                return Ok(false);
            }
        }
        let all: Vec<String> = self.store.run(c.smembers(EVENT_STREAMS)).await?;
        let new: Vec<&String> = all
            .iter()
            .filter(|s| relist || !streams.contains(s))
            .collect();
        for s in new {
            let created: redis::RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(s)
                .arg(EVENTS_GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut c)
                .await;
            if let Err(e) = created
                && !e.to_string().contains("BUSYGROUP")
            {
                return Err(StoreError::Unavailable(e.to_string()));
            }
        }
        *streams = all;
        Ok(true)
    }

    /// Entries of `streams` after `from` (`>`: new ones; `0`: this consumer's pending ones),
    /// waiting up to `store::BLOCK` for new ones on `wait` if given (a loop's own connection).
    async fn read(
        &self,
        streams: &[String],
        from: &str,
        wait: Option<redis::aio::ConnectionManager>,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(EVENTS_GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(200);
        if wait.is_some() {
            cmd.arg("BLOCK").arg(crate::store::BLOCK.as_millis() as u64);
        }
        cmd.arg("STREAMS");
        for s in streams {
            cmd.arg(s);
        }
        for _ in streams {
            cmd.arg(from);
        }
        let mut c = wait.unwrap_or_else(|| self.store.conn());
        let reply: Option<StreamReadReply> = self
            .store
            .run(async move { cmd.query_async(&mut c).await })
            .await?;
        Ok(reply
            .map(|r| {
                r.keys
                    .into_iter()
                    .flat_map(|k| {
                        let scope = scope_and_tag(&k.key);
                        k.ids
                            .into_iter()
                            .map(move |e| Entry::read(&k.key, scope.as_ref(), e))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn claim_stale(&self, streams: &[String]) -> Result<Vec<Entry>, StoreError> {
        let idle = (self.timeout.as_millis() as u64) * 2 + 20_000;
        let mut out = Vec::new();
        for s in streams {
            let mut c = self.store.conn();
            let reply: StreamAutoClaimReply = self
                .store
                .run(async {
                    redis::cmd("XAUTOCLAIM")
                        .arg(s)
                        .arg(EVENTS_GROUP)
                        .arg(&self.consumer)
                        .arg(idle)
                        .arg("0-0")
                        .arg("COUNT")
                        .arg(100)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            let scope = scope_and_tag(s);
            out.extend(
                reply
                    .claimed
                    .into_iter()
                    .map(|e| Entry::read(s, scope.as_ref(), e)),
            );
        }
        Ok(out)
    }

    /// One commit per event: count its pending deliveries, append them, and acknowledge the
    /// entry, only while it is unacknowledged (so a repeat is a no-op). The commits of a
    /// batch are independent, so they go out together (pipelined on the shared connections).
    async fn fan_out(&self, batch: Vec<Entry>) -> Result<(), calmony_protocol::ApiError> {
        let mut endpoints_of: HashMap<String, Vec<endpoints::Loaded>> = HashMap::new();
        for entry in &batch {
            if !endpoints_of.contains_key(&entry.stream)
                && let Some(scope) = scope_of(&entry.stream)
            {
                endpoints_of.insert(entry.stream.clone(), endpoints::all(self, &scope).await?);
            }
        }
        let plan: Vec<(&Entry, Vec<&endpoints::Loaded>)> = batch
            .iter()
            .map(|entry| {
                let targets = match (&entry.kind, endpoints_of.get(&entry.stream)) {
                    (Some(kind), Some(all)) => {
                        all.iter().filter(|l| l.endpoint.wants(kind)).collect()
                    }
                    _ => Vec::new(),
                };
                (entry, targets)
            })
            .collect();
        // The whole batch in one commit: the common case, and one round trip instead of one
        // per event. If any event was fanned out already (another daemon took over a stale
        // entry, or a previous life of this one got that far), the script wrote nothing and
        // the events go one at a time.
        let mut tx = Tx::new();
        for (entry, targets) in &plan {
            fan_out_into(&mut tx, entry, targets);
        }
        if let Commit::Done(_) = self.store.commit(&tx).await? {
            metrics::counter!("calmony_webhook_fanouts_total").increment(plan.len() as u64);
            return Ok(());
        }
        let commits = plan
            .into_iter()
            .map(|(entry, targets)| self.fan_out_one(entry, targets));
        for result in futures_util::future::join_all(commits).await {
            result?;
        }
        Ok(())
    }

    async fn fan_out_one(
        &self,
        entry: &Entry,
        targets: Vec<&endpoints::Loaded>,
    ) -> Result<(), StoreError> {
        let mut tx = Tx::new();
        fan_out_into(&mut tx, entry, &targets);
        match self.store.commit(&tx).await? {
            Commit::Done(_) => {
                metrics::counter!("calmony_webhook_fanouts_total").increment(1);
                Ok(())
            }
            // Fanned out already, by the commit that acknowledged the entry: clearing it
            // again changes nothing.
            _ => self.ack_event(entry).await,
        }
    }

    async fn ack_event(&self, entry: &Entry) -> Result<(), StoreError> {
        let mut tx = Tx::new();
        tx.ack(&entry.stream, EVENTS_GROUP, &entry.id);
        self.store.commit(&tx).await.map(|_| ())
    }
}

/// One event's fan-out: the count of endpoints still to hear of it, a delivery per endpoint,
/// and the stream entry acknowledged, applied only while the entry is unacknowledged (two
/// daemons holding it, one a stale claim, fan it out once). An event no endpoint wants (and an
/// entry that names no event) is only acknowledged: doing that twice changes nothing, so it
/// needs no check, and most events of a project without endpoints cost two commands less.
fn fan_out_into(tx: &mut Tx, entry: &Entry, targets: &[&endpoints::Loaded]) {
    if targets.is_empty() {
        tx.ack(&entry.stream, EVENTS_GROUP, &entry.id);
        return;
    }
    if let (Some(scope), Some((event, place))) = (scope_of(&entry.stream), &entry.event) {
        tx.expect_unacked(&entry.stream, EVENTS_GROUP, &entry.id);
        let (counter, field) = place.pending(&scope);
        tx.hincrby(&counter, &field, targets.len() as i64);
        for l in targets {
            let d = Delivery::first(&scope, event, &l.endpoint.id);
            tx.append(DELIVERIES, &[("d", &d.encode())]);
        }
    }
    tx.ack(&entry.stream, EVENTS_GROUP, &entry.id);
}

#[cfg(test)]
mod tests {
    #[test]
    fn stream_names_give_the_scope() {
        let s = super::scope_of("cp:{prj_1}:live:events").expect("scope");
        assert_eq!(
            (s.project.as_str(), s.mode),
            ("prj_1", calmony_protocol::Mode::Live)
        );
        assert!(super::scope_of("cp:payments:commands").is_none());
    }

    #[test]
    fn an_entry_names_its_event_by_log_entry_or_by_id() {
        let stream = "cp:{prj_1}:test:events";
        let scope = super::scope_and_tag(stream).expect("scope");
        let entry = |fields: &[(&str, &str)]| redis::streams::StreamId {
            id: "5-0".into(),
            map: fields
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        redis::Value::BulkString(v.as_bytes().to_vec()),
                    )
                })
                .collect(),
            ..Default::default()
        };
        let derived = super::Entry::read(
            stream,
            Some(&scope),
            entry(&[("e", "1733123456789-5"), ("type", "charge.succeeded")]),
        );
        let expected = super::event_log::id_of("1733123456789-5", &scope.1);
        let (id, place) = derived.event.expect("named");
        assert_eq!(Some(id), expected);
        assert_eq!(
            place,
            super::Place::at_entry(&scope.0, "1733123456789-5".into())
        );
        assert_eq!(derived.kind.as_deref(), Some("charge.succeeded"));
        let written_before = super::Entry::read(stream, Some(&scope), entry(&[("id", "evt_1")]));
        assert_eq!(
            written_before.event,
            Some((
                "evt_1".to_string(),
                super::Place::Record(scope.0.record("evt_1"))
            ))
        );
        let nameless = super::Entry::read(stream, Some(&scope), entry(&[("type", "x")]));
        assert!(nameless.event.is_none());
    }
}
