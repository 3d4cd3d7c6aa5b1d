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

mod delivery;
mod dispatch;
pub mod endpoints;
pub mod events;
mod hub;
pub mod reach;
mod retention;
mod send;
mod signing;

pub use hub::{DEAD_LETTERS, DELIVERIES, EVENTS_GROUP, RETRIES, SENDERS, Webhooks};
pub use send::{Boundary, replay_dead};
