//! Webhook delivery: every event is POSTed to the registered webhook, signed as Griffin signs
//! (RFC 9421, ES512, `content-digest`, `created`/`expires`/`nonce`, the key id as label),
//! at least once, retried with backoff until answered 2xx; every attempt is recorded.
//!
//! A pass runs every few hundred milliseconds in the daemon (a supervised periodic actor, as
//! the sandbox's settlement is). It posts held credits whose time has come, matures due
//! payments, and, when a posting has moved the records' version since it last looked,
//! derives the events ([`super::events`]) and claims each new one in a Redis set: the first
//! daemon to claim an event sends it, so several daemons on one Redis deliver it once.
//! Events made while no webhook is active are claimed and not sent, as Griffin sends only
//! to a registered, active webhook. The faults of [`super::faults`] decide how many copies
//! go ([`super::decide::copies`]) and, in reorder mode, in which order
//! ([`super::decide::send_delay`]). Retries live in the process that claimed the event.

use std::collections::HashSet;
use std::time::Duration;

use calmony_actors::Store;
use calmony_protocol::griffin::signature::sign_webhook;
use calmony_protocol::griffin::{Event, WebhookRequestStatus, WebhookTest};
use serde::Serialize;

use super::ctx::{Ctx, new_id};
use super::decide::{self, Attempted};
use super::setup::Setup;
use super::{api, faults, store, webhooks, wire};
use crate::error::SandboxError;
use crate::gateway::Gateway;
use crate::hosted::callback::{self, AttemptError};
use crate::keys;

/// How far apart reorder mode sends a pass's events, newest first.
const REORDER_SPACING: Duration = Duration::from_millis(200);

/// The most attempts kept in `cp:sandbox:griffin:attempts`.
const ATTEMPTS_KEPT: isize = 1000;

/// One attempt, as `GET /sandbox/griffin/deliveries` lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AttemptRecord {
    pub event_url: String,
    pub event_type: String,
    /// 1 for the first copy, 2 for the duplicate.
    pub copy: usize,
    pub attempt: usize,
    pub at: String,
    /// `delivered`, `refused`, `failed` or `dropped`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyid: Option<String>,
}

/// What one process remembers between passes.
#[derive(Debug, Clone, Default)]
pub struct PassState {
    /// The records' version the last full look saw.
    seen_version: Option<i64>,
    /// Whether the daemon's own receiver has been registered (or found registered).
    registered: bool,
}

/// One pass: held credits, maturing payments, then any new events sent.
pub async fn pass(gw: &Gateway, setup: &Setup, state: &mut PassState) -> Result<(), SandboxError> {
    let ctx = Ctx {
        gw,
        setup,
        now_ms: calmony_actors::clock::now_ms(),
    };
    super::credit::post_held_credits(&gw.store, ctx.now_ms, false).await?;
    api::mature(&ctx).await?;
    if !state.registered {
        if let Some(url) = &setup.config.webhook_destination
            && webhooks::register_if_none(&gw.store, url, ctx.now_ms).await?
        {
            tracing::info!(%url, "Griffin sandbox: the daemon's receiver registered as the webhook");
        }
        state.registered = true;
    }
    let mut c = gw.store.conn();
    let version: Option<i64> = gw
        .store
        .run(async move {
            redis::cmd("GET")
                .arg(keys::GRIFFIN_VERSION)
                .query_async(&mut c)
                .await
        })
        .await?;
    if version.is_none() || version == state.seen_version {
        return Ok(());
    }
    let payments = store::payments(&gw.store, &store::payment_ids(&gw.store).await?).await?;
    let ledger = store::ledger(&gw.store).await?;
    let mut events = super::events::all(&payments, &ledger, ctx.now_ms, ctx.delay_ms());
    // Oldest first, so a receiver usually sees them in order (it must not rely on it).
    events.reverse();
    let hook = webhooks::current(&gw.store)
        .await?
        .filter(|w| w.active && w.created_ms <= ctx.now_ms);
    let claimed = already_claimed(&gw.store, &events).await?;
    let mut mine = Vec::new();
    for event in events {
        if !claimed.contains(&event.event_url) && claim(&gw.store, &event.event_url).await? {
            mine.push(event);
        }
    }
    let Some(hook) = hook else {
        state.seen_version = version;
        return Ok(());
    };
    let set = faults::current(&gw.store).await?;
    let count = mine.len();
    for (index, event) in mine.into_iter().enumerate() {
        let dropped = faults::take_drop(&gw.store).await?;
        let copies = decide::copies(dropped, set.duplicate_webhooks);
        if copies == 0 {
            record(
                &gw.store,
                &AttemptRecord {
                    event_url: event.event_url.clone(),
                    event_type: event.event_type.clone(),
                    copy: 0,
                    attempt: 0,
                    at: wire::iso(ctx.now_ms),
                    outcome: "dropped",
                    http_status: None,
                    error: None,
                    keyid: None,
                },
            )
            .await;
            tracing::info!(event = %event.event_url, "Griffin sandbox: webhook dropped (fault)");
        }
        let wait = decide::send_delay(index, count, set.reorder_webhooks, REORDER_SPACING);
        for copy in 1..=copies {
            spawn_delivery(
                gw.store.clone(),
                hook.destination.clone(),
                event.clone(),
                copy,
                wait,
                setup.config.webhook_backoff.clone(),
            );
        }
    }
    state.seen_version = version;
    Ok(())
}

/// Which of `events` are claimed already, in one round trip.
async fn already_claimed(store: &Store, events: &[Event]) -> Result<HashSet<String>, SandboxError> {
    if events.is_empty() {
        return Ok(HashSet::new());
    }
    let mut pipe = redis::pipe();
    for e in events {
        pipe.sismember(keys::GRIFFIN_CLAIMED, &e.event_url);
    }
    let mut c = store.conn();
    let member: Vec<bool> = store
        .run(async move { pipe.query_async(&mut c).await })
        .await?;
    Ok(events
        .iter()
        .zip(member)
        .filter(|(_, m)| *m)
        .map(|(e, _)| e.event_url.clone())
        .collect())
}

/// Claim an event for delivery: whether this caller is the first.
async fn claim(store: &Store, event_url: &str) -> Result<bool, SandboxError> {
    let mut c = store.conn();
    let url = event_url.to_owned();
    let added: i64 = store
        .run(async move {
            redis::cmd("SADD")
                .arg(keys::GRIFFIN_CLAIMED)
                .arg(url)
                .query_async(&mut c)
                .await
        })
        .await?;
    Ok(added == 1)
}

/// Keep an attempt in the capped list; a failure to record is logged, never fatal.
async fn record(store: &Store, attempt: &AttemptRecord) {
    let Ok(json) = serde_json::to_string(attempt) else {
        return;
    };
    let mut c = store.conn();
    let done = store
        .run(async move {
            redis::pipe()
                .lpush(keys::GRIFFIN_ATTEMPTS, json)
                .ltrim(keys::GRIFFIN_ATTEMPTS, 0, ATTEMPTS_KEPT - 1)
                .query_async::<()>(&mut c)
                .await
        })
        .await;
    if let Err(error) = done {
        tracing::warn!(%error, "Griffin sandbox: could not record a delivery attempt");
    }
}

/// The attempts recorded, newest first.
pub async fn attempts(store: &Store) -> Result<Vec<serde_json::Value>, SandboxError> {
    let mut c = store.conn();
    let raw: Vec<String> = store
        .run(async move {
            redis::cmd("LRANGE")
                .arg(keys::GRIFFIN_ATTEMPTS)
                .arg(0)
                .arg(-1)
                .query_async(&mut c)
                .await
        })
        .await?;
    raw.iter()
        .map(|line| store::parse(keys::GRIFFIN_ATTEMPTS, line))
        .collect()
}

/// Sign `body` with the current key and POST it to `destination` once.
async fn send_once(
    store: &Store,
    destination: &str,
    body: &[u8],
) -> Result<(String, Attempted), SandboxError> {
    let key = webhooks::signing_key(store).await?;
    let Ok(url) = url::Url::parse(destination) else {
        return Ok((key.keyid, Attempted::Unreachable));
    };
    let now = calmony_actors::clock::now_ms().div_euclid(1000);
    let nonce = new_id("n").trim_start_matches("n.").to_owned();
    let headers =
        sign_webhook(&key, &url, body, now, &nonce).map_err(|e| SandboxError::Corrupt {
            key: keys::GRIFFIN_SIGNING_KEYS.to_owned(),
            reason: e.to_string(),
        })?;
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let attempted = match callback::post_with(destination, &pairs, body).await {
        Ok(status) => Attempted::Answered(status),
        Err(AttemptError::Timeout) => Attempted::TimedOut,
        Err(AttemptError::Io(_) | AttemptError::BadUrl | AttemptError::Unsupported) => {
            Attempted::Unreachable
        }
        Err(AttemptError::NoStatus) => Attempted::Garbled,
    };
    Ok((key.keyid, attempted))
}

/// Deliver one copy of `event` in the background after `wait`, retrying after each of
/// `backoff`.
fn spawn_delivery(
    store: Store,
    destination: String,
    event: Event,
    copy: usize,
    wait: Duration,
    backoff: Vec<Duration>,
) {
    tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        let Ok(body) = serde_json::to_vec(&event) else {
            return;
        };
        for attempt in 1..=backoff.len() + 1 {
            if let Some(delay) = attempt.checked_sub(2).and_then(|i| backoff.get(i)) {
                tokio::time::sleep(*delay).await;
            }
            let (keyid, attempted) = match send_once(&store, &destination, &body).await {
                Ok(sent) => (Some(sent.0), sent.1),
                Err(error) => {
                    tracing::warn!(%error, "Griffin sandbox: could not sign a webhook");
                    (None, Attempted::Garbled)
                }
            };
            let (http_status, error) = decide::test_outcome(attempted);
            let delivered = error.is_none();
            record(
                &store,
                &AttemptRecord {
                    event_url: event.event_url.clone(),
                    event_type: event.event_type.clone(),
                    copy,
                    attempt,
                    at: wire::iso(calmony_actors::clock::now_ms()),
                    outcome: match (delivered, http_status) {
                        (true, _) => "delivered",
                        (false, Some(_)) => "refused",
                        (false, None) => "failed",
                    },
                    http_status,
                    error: error.map(str::to_owned),
                    keyid,
                },
            )
            .await;
            if delivered {
                tracing::debug!(event = %event.event_url, copy, attempt, "Griffin sandbox: webhook delivered");
                return;
            }
            tracing::warn!(event = %event.event_url, copy, attempt, ?http_status, ?error, "Griffin sandbox: webhook not accepted");
        }
        tracing::error!(event = %event.event_url, copy, "Griffin sandbox: webhook given up");
    });
}

/// Send one `test-event` to `destination`, once, and record how it went.
pub fn spawn_test(store: Store, destination: String) {
    tokio::spawn(async move {
        let now = calmony_actors::clock::now_ms();
        let event = Event {
            event_url: format!("/v0/events/{}", new_id("ev")),
            event_type: "test-event".to_owned(),
            event_payload: serde_json::json!({}),
            created_at: wire::iso(now),
        };
        let attempted = match serde_json::to_vec(&event) {
            Ok(body) => match send_once(&store, &destination, &body).await {
                Ok((_, a)) => a,
                Err(_) => Attempted::Garbled,
            },
            Err(_) => Attempted::Garbled,
        };
        let (http_status, error) = decide::test_outcome(attempted);
        let done = WebhookTest {
            webhook_request_status: WebhookRequestStatus::Complete,
            webhook_http_status: http_status,
            webhook_error_code: error.map(str::to_owned),
        };
        if let Err(error) = webhooks::save_test(&store, &done).await {
            tracing::warn!(%error, "Griffin sandbox: could not record the test delivery");
        }
        let mut c = store.conn();
        let _ = store
            .run(async move {
                redis::cmd("DEL")
                    .arg(keys::GRIFFIN_WEBHOOK_TEST_RUNNING)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await;
    });
}
