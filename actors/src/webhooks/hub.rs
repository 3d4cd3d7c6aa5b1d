//! The WebhookDispatcher's shared state: the [`Webhooks`] value its loops and the API's
//! handlers share, and the names of the streams and sets deliveries move through. A leaf: it
//! names no sibling that names it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use calmony_config::Config;
use calmony_protocol::destination::Reach;

use super::reach;
use super::signing;
use crate::store::{Batcher, Store};

pub const DELIVERIES: &str = "cp:webhooks:deliveries";
pub const SENDERS: &str = "senders";
pub const EVENTS_GROUP: &str = "webhooks";
pub const RETRIES: &str = "cp:webhooks:retries";
pub const DEAD_LETTERS: &str = "cp:webhooks:dead";
/// Deliveries of one entry before it is parked as poison.
pub(super) const MAX_DELIVERIES: u64 = 10;

/// The dispatcher: fan-out, sending, retries, recovery. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    pub store: Store,
    /// The delivery clients, one per [`Reach`] (see [`reach`]).
    pub(super) http: reach::Clients,
    /// Where test-mode endpoints may point (`webhooks.local_targets`); live: public only.
    pub(super) test_reach: Reach,
    pub(super) consumer: String,
    pub(super) schedule: Arc<Vec<u64>>,
    pub(super) timeout: Duration,
    pub(super) disable_after_secs: i64,
    pub secret_overlap_secs: i64,
    pub(super) concurrency: usize,
    pub(super) in_flight: Arc<Mutex<HashSet<String>>>,
    /// Endpoints parsed at a version, by `project:mode:id` (see `endpoint_cached`).
    pub(super) endpoints: Arc<Mutex<EndpointCache>>,
    /// Records delivery attempts, many to a commit (started by the first delivery).
    pub(super) recorder: Arc<std::sync::OnceLock<Batcher>>,
    /// Set by [`Webhooks::stop`] when the daemon shuts down: the loops' Redis goes away then,
    /// and a failed read is the end of the loop, not something to warn about.
    pub(super) stopping: Arc<std::sync::atomic::AtomicBool>,
}

/// A delivery in hand: while it lives, the take-over of orphans leaves the delivery alone.
/// The mark goes when it drops, so a delivery that panics (or whose task is aborted) is
/// taken over again like any other orphan, never hidden for the life of the process.
#[derive(Debug)]
pub(super) struct InFlight {
    set: Arc<Mutex<HashSet<String>>>,
    id: String,
}

impl InFlight {
    fn claim(set: &Arc<Mutex<HashSet<String>>>, id: &str) -> Option<Self> {
        let fresh = set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string());
        fresh.then(|| Self {
            set: set.clone(),
            id: id.to_string(),
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

type EndpointCache = HashMap<String, (u64, Option<Arc<signing::Loaded>>)>;

impl Webhooks {
    /// Fails only if the delivery client cannot be built: the daemon then does not start.
    pub fn new(store: Store, config: &Config) -> Result<Self, reach::ClientError> {
        let timeout = Duration::from_secs(config.webhooks.timeout_seconds);
        let http = reach::Clients::new(timeout, config.webhooks.concurrency as usize)?;
        Ok(Self {
            store,
            http,
            test_reach: match config.webhooks.local_targets.as_str() {
                "test" => Reach::Anywhere,
                "loopback" => Reach::Loopback,
                _ => Reach::PublicOnly,
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

    /// Mark delivery `id` as in hand until the returned guard drops; `None` when it already is.
    pub(super) fn claim(&self, id: &str) -> Option<InFlight> {
        InFlight::claim(&self.in_flight, id)
    }

    pub(super) fn is_in_flight(&self, id: &str) -> bool {
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

    /// Whether the daemon is shutting down (the loops' ends are expected then).
    pub fn is_stopping(&self) -> bool {
        self.stopping()
    }

    pub(super) fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(set: &Arc<Mutex<HashSet<String>>>, id: &str) -> bool {
        set.lock().unwrap_or_else(|p| p.into_inner()).contains(id)
    }

    #[test]
    fn a_delivery_is_claimed_once_and_released_when_its_guard_drops() {
        let set = Arc::new(Mutex::new(HashSet::new()));
        let first = InFlight::claim(&set, "1-0").expect("free");
        assert!(held(&set, "1-0"));
        assert!(InFlight::claim(&set, "1-0").is_none(), "claimed twice");
        let other = InFlight::claim(&set, "2-0").expect("another delivery");
        drop(first);
        assert!(!held(&set, "1-0"));
        assert!(held(&set, "2-0"));
        drop(other);
        assert!(set.lock().unwrap_or_else(|p| p.into_inner()).is_empty());
    }

    #[test]
    fn a_panicking_delivery_releases_its_mark() {
        let set = Arc::new(Mutex::new(HashSet::new()));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _mark = InFlight::claim(&set, "1-0").expect("free");
            panic!("the delivery panics");
        }));
        assert!(caught.is_err());
        assert!(!held(&set, "1-0"), "the mark outlived the panic");
        assert!(
            InFlight::claim(&set, "1-0").is_some(),
            "cannot be taken over"
        );
    }
}
