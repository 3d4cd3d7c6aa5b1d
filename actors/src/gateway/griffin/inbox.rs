//! The daemon's receiver of Griffin's webhooks, per mode: verify ([`super::webhook`]), then
//! record, in ONE Redis commit, that the event was seen and what it was, and only then
//! answer. Griffin delivers at least once, so a second delivery of a seen `event-url`
//! changes nothing and is still answered 200 (it is counted in
//! `calmony_griffin_webhook_duplicates_total`).
//!
//! A webhook is only a "something changed" signal (brief §13): the event is appended to the
//! stream `cp:griffin:<mode>:events` for whoever reconciles, and [`Inbox::changed`] is
//! notified so a waiting poller reads Griffin's ledger now rather than at its next tick.
//! Nothing here acts on the event's payload; the ledger is the truth.
//!
//! Keys (per mode):
//! - `cp:griffin:<mode>:events`: stream, one entry per new event: `event-url`, `event-type`,
//!   `keyid`, `received-at` (ms), `event` (the raw body); trimmed to about 100,000 entries.
//! - `cp:griffin:<mode>:seen`: hash, `event-url` → the stream entry's id.
//! - `cp:griffin:<mode>:nonce:<keyid>:<nonce>`: a signature's nonce, for
//!   [`super::webhook::NONCE_TTL_MS`].

use std::sync::{Arc, LazyLock};

use calmony_protocol::Mode;
use redis::Script;
use tokio::sync::Notify;

use super::webhook::{self, Delivery, KeyCache, VerifiedEvent, WebhookError};
use super::{Griffin, GriffinClient};
use crate::store::{Store, StoreError};

/// About how many events each mode's stream keeps.
const STREAM_MAX: u64 = 100_000;

pub fn events_stream(mode: Mode) -> String {
    format!("cp:griffin:{}:events", mode.as_str())
}

pub fn seen_key(mode: Mode) -> String {
    format!("cp:griffin:{}:seen", mode.as_str())
}

pub fn nonce_key(mode: Mode, keyid: &str, nonce: &str) -> String {
    format!("cp:griffin:{}:nonce:{keyid}:{nonce}", mode.as_str())
}

/// What a delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A new event, at this stream entry.
    New(String),
    /// Seen before: nothing was written.
    Duplicate,
}

/// Why a delivery was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("this mode has no Griffin connection")]
    NoGriffin,
    #[error(transparent)]
    Refused(#[from] WebhookError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ReceiveError {
    pub fn status(&self) -> u16 {
        match self {
            Self::NoGriffin => 404,
            Self::Refused(e) => e.status(),
            Self::Store(_) => 503,
        }
    }
}

/// A seen event changes nothing (whatever its nonce: a redelivery of the very request whose
/// 200 was lost carries the same one); else a used nonce is refused; else the nonce, the event
/// in the stream and its `event-url` as seen, together.
static RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local seen = redis.call('HGET', KEYS[2], ARGV[2])
if seen then return {'duplicate', seen} end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'nonce', ''} end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*',
  'event-url', ARGV[2], 'event-type', ARGV[3], 'keyid', ARGV[5], 'received-at', ARGV[6],
  'event', ARGV[4])
redis.call('HSET', KEYS[2], ARGV[2], id)
return {'new', id}
",
    )
});

/// Record a verified delivery in one commit.
pub async fn record(
    store: &Store,
    mode: Mode,
    verified: &VerifiedEvent,
    body: &[u8],
    now_ms: i64,
) -> Result<Result<Received, WebhookError>, StoreError> {
    let mut inv = RECORD.prepare_invoke();
    inv.key(nonce_key(mode, &verified.keyid, &verified.nonce))
        .key(seen_key(mode))
        .key(events_stream(mode))
        .arg(webhook::NONCE_TTL_MS)
        .arg(&verified.event.event_url)
        .arg(&verified.event.event_type)
        .arg(body)
        .arg(&verified.keyid)
        .arg(now_ms)
        .arg(STREAM_MAX);
    let mut c = store.conn();
    let answer: Vec<String> = store.run(inv.invoke_async(&mut c)).await?;
    Ok(match answer.first().map(String::as_str) {
        Some("new") => Ok(Received::New(answer.get(1).cloned().unwrap_or_default())),
        Some("duplicate") => Ok(Received::Duplicate),
        _ => Err(WebhookError::NonceReused),
    })
}

/// One mode's receiver: its client (to fetch keys) and the keys it has.
#[derive(Debug)]
struct ModeInbox {
    client: Arc<GriffinClient>,
    keys: KeyCache,
}

/// Both modes' receivers, and the signal each gives when an event arrives.
#[derive(Debug)]
pub struct Inbox {
    test: Option<ModeInbox>,
    live: Option<ModeInbox>,
    test_changed: Arc<Notify>,
    live_changed: Arc<Notify>,
}

impl Inbox {
    /// A receiver for each mode `griffin` has a client for.
    pub fn new(griffin: &Griffin) -> Self {
        let of = |mode| {
            griffin.client(mode).map(|client| ModeInbox {
                client,
                keys: KeyCache::default(),
            })
        };
        Self {
            test: of(Mode::Test),
            live: of(Mode::Live),
            test_changed: Arc::new(Notify::new()),
            live_changed: Arc::new(Notify::new()),
        }
    }

    /// Notified (`notify_one`) after each new event of `mode` is committed: what the
    /// reconciliation poller waits on besides its timer.
    pub fn changed(&self, mode: Mode) -> Arc<Notify> {
        match mode {
            Mode::Test => Arc::clone(&self.test_changed),
            Mode::Live => Arc::clone(&self.live_changed),
        }
    }

    fn of(&self, mode: Mode) -> Option<&ModeInbox> {
        match mode {
            Mode::Test => self.test.as_ref(),
            Mode::Live => self.live.as_ref(),
        }
    }

    /// Verify `delivery` and record it (see the module documentation). `Ok` only once the
    /// commit is done: the caller answers 200 then, and not before.
    pub async fn receive(
        &self,
        store: &Store,
        mode: Mode,
        delivery: &Delivery<'_>,
    ) -> Result<Received, ReceiveError> {
        let inbox = self.of(mode).ok_or(ReceiveError::NoGriffin)?;
        let now_ms = crate::clock::now_ms();
        let verified =
            webhook::verify_delivery(&inbox.keys, delivery, now_ms.div_euclid(1000), || {
                inbox.client.public_keys()
            })
            .await;
        let outcome = match verified {
            Ok(v) => record(store, mode, &v, delivery.body, now_ms).await?,
            Err(e) => Err(e),
        };
        let label = match &outcome {
            Ok(Received::New(_)) => "new",
            Ok(Received::Duplicate) => "duplicate",
            Err(_) => "refused",
        };
        metrics::counter!("calmony_griffin_webhooks_total", "mode" => mode.as_str(), "outcome" => label)
            .increment(1);
        match outcome {
            Ok(Received::New(id)) => {
                self.changed(mode).notify_one();
                Ok(Received::New(id))
            }
            Ok(Received::Duplicate) => {
                metrics::counter!("calmony_griffin_webhook_duplicates_total", "mode" => mode.as_str())
                    .increment(1);
                Ok(Received::Duplicate)
            }
            Err(e) => {
                tracing::warn!(mode = mode.as_str(), error = %e, "Griffin webhook refused");
                Err(e.into())
            }
        }
    }
}
