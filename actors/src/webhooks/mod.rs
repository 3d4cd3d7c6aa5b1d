//! Events and webhooks: the event log's API, webhook endpoints, and the WebhookDispatcher.
//!
//! ## The path of a delivery
//! 1. Every state change appends its event, in the same commit, to its project's event log
//!    (`cp:{prj}:<mode>:events:log`, see `store::event_log`) and, while the project has
//!    endpoints, to its event stream (`cp:{prj}:<mode>:events`; all such streams are listed in
//!    `cp:event_streams`).
//! 2. **Fan-out** ([`dispatch`]): the `webhooks` consumer group reads the event streams. For each
//!    event, one commit, applied only while the entry is unacknowledged (so a second fan-out of
//!    the same event, after a crash or a stale claim, changes nothing), counts its pending
//!    deliveries (`events:pending`), appends one delivery per matching endpoint to
//!    `cp:webhooks:deliveries`, and acknowledges the event entry.
//! 3. **Send** ([`send`]): the `senders` group reads deliveries, many in flight at once. Each
//!    POST is signed (`Calmony-Signature` and `Stripe-Signature`, one `v1` per active secret)
//!    over exactly the bytes sent. One commit then records the attempt, acknowledges the
//!    delivery, and on failure schedules the next try in `cp:webhooks:retries` (a sorted set
//!    by due time) following `webhooks.retry_schedule` with ±20% jitter, `Retry-After`
//!    honoured within bounds.
//! 4. **Retries** come due and are moved back into the delivery stream by one script any daemon
//!    may run. An endpoint failing continuously for `webhooks.disable_after_hours` is disabled,
//!    with a `webhook_endpoint.disabled` event.
//!
//! Crash safety: a delivery claimed by a daemon that dies stays pending in the group and is
//! taken over (own orphans after a restart at once, other daemons' by XAUTOCLAIM), so every
//! event reaches every endpoint at least once; without failures, exactly once, because each
//! step is one atomic commit and each entry goes to one consumer. Entries that cannot be
//! processed at all go to `cp:webhooks:dead`, which `calmony-payd webhooks replay-dead` replays.

mod dispatch;
pub mod endpoints;
pub mod events;
pub mod reach;
mod retention;
mod send;

pub use send::replay_dead;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use calmony_config::Config;
use calmony_protocol::destination::Reach;

use crate::store::{Batcher, Store};

pub const DELIVERIES: &str = "cp:webhooks:deliveries";
pub const SENDERS: &str = "senders";
pub const EVENTS_GROUP: &str = "webhooks";
pub const RETRIES: &str = "cp:webhooks:retries";
pub const DEAD_LETTERS: &str = "cp:webhooks:dead";
/// Deliveries of one entry before it is parked as poison.
const MAX_DELIVERIES: u64 = 10;

/// The dispatcher: fan-out, sending, retries, recovery. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    pub store: Store,
    /// The delivery clients, one per [`Reach`] (see [`reach`]).
    http: reach::Clients,
    /// Where test-mode endpoints may point (`webhooks.local_targets`); live: public only.
    test_reach: Reach,
    consumer: String,
    schedule: Arc<Vec<u64>>,
    timeout: Duration,
    disable_after_secs: i64,
    pub secret_overlap_secs: i64,
    concurrency: usize,
    in_flight: Arc<Mutex<HashSet<String>>>,
    /// Endpoints parsed at a version, by `project:mode:id` (see `endpoint_cached`).
    endpoints: Arc<Mutex<EndpointCache>>,
    /// Records delivery attempts, many to a commit (started by the first delivery).
    recorder: Arc<std::sync::OnceLock<Batcher>>,
    /// Set by [`Webhooks::stop`] when the daemon shuts down: the loops' Redis goes away then,
    /// and a failed read is the end of the loop, not something to warn about.
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

type EndpointCache = HashMap<String, (u64, Option<Arc<endpoints::Loaded>>)>;

impl Webhooks {
    /// Fails only if the delivery client cannot be built: the daemon then does not start.
    pub fn new(store: Store, config: &Config) -> Result<Self, reach::ClientError> {
        let timeout = Duration::from_secs(config.webhooks.timeout_seconds);
        let http = reach::Clients::new(timeout, config.webhooks.concurrency as usize)?;
        Ok(Self {
            store,
            http,
            test_reach: if config.webhooks.test_reaches_local() {
                Reach::Anywhere
            } else {
                Reach::PublicOnly
            },
            consumer: config.instance_name(),
            schedule: Arc::new(config.retry_schedule()),
            timeout,
            disable_after_secs: (config.webhooks.disable_after_hours * 3600) as i64,
            secret_overlap_secs: (config.webhooks.secret_overlap_hours * 3600) as i64,
            concurrency: config.webhooks.concurrency as usize,
            in_flight: Arc::new(Mutex::new(HashSet::new())),
            endpoints: Arc::new(Mutex::new(HashMap::new())),
            recorder: Arc::new(std::sync::OnceLock::new()),
            stopping: Arc::default(),
        })
    }

    /// For the API side only (endpoints, events): no sending.
    pub fn for_api(store: Store, config: &Config) -> Result<Self, reach::ClientError> {
        Self::new(store, config)
    }

    /// Where endpoints of a mode may point: live ones only ever at public servers.
    pub fn reach(&self, livemode: bool) -> Reach {
        if livemode {
            Reach::PublicOnly
        } else {
            self.test_reach
        }
    }

    fn mark(&self, id: &str, working: bool) -> bool {
        let mut set = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if working {
            set.insert(id.to_string())
        } else {
            set.remove(id)
        }
    }

    fn is_in_flight(&self, id: &str) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    /// The daemon is shutting down: the loops end quietly at their next failed read.
    pub fn stop(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Start the fan-out, send, retry and recovery loops.
    pub fn spawn(&self) {
        // Secrets an older version kept in clear, or sealed under a key since replaced.
        let store = self.store.clone();
        tokio::spawn(async move {
            match endpoints::reseal_all(&store).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(endpoints = n, "re-sealed webhook signing secrets"),
                Err(e) => tracing::warn!(error = %e, "re-sealing webhook signing secrets failed"),
            }
        });
        supervise("webhook fan-out", self.clone(), |w| async move {
            w.fan_out_loop().await
        });
        supervise("webhook sender", self.clone(), |w| async move {
            w.send_loop().await
        });
        supervise("webhook retries", self.clone(), |w| async move {
            w.retry_loop().await
        });
        supervise("event retention", self.clone(), |w| async move {
            w.retention_loop().await
        });
    }
}

/// Run a loop forever; if it panics or ends, log it and start it again after a pause.
fn supervise<F, Fut>(name: &'static str, w: Webhooks, f: F)
where
    F: Fn(Webhooks) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let run = tokio::spawn(f(w.clone()));
            let ended = run.await;
            if w.stopping() {
                return;
            }
            match ended {
                Ok(()) => tracing::warn!(loop_name = name, "loop ended; restarting"),
                Err(e) => {
                    tracing::error!(loop_name = name, error = %e, "loop panicked; restarting")
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}
