//! The daemon's working parts and the Redis store they share.
//!
//! - [`store`]: the Redis connection, the one atomic commit script every state change goes
//!   through, cursor paging, and the managed `redis-server` the daemon can run itself.
//! - [`api_keys`]: projects and API keys (stored as SHA-256 hashes), authentication and the
//!   per-key rate limit, both decided in one Redis round trip.
//! - [`projects`]: projects' business details, what payers see of the merchant.
//! - [`idempotency`]: `Idempotency-Key` claims, replays and conflicts.
//! - [`context`]: who is asking (project, mode, request id) and the answer handed back.
//! - [`gateway`]: the card gateway (Cardstream's Direct API), one method per payment flow.
//! - [`payment_methods`]: cards tokenised at the gateway.
//! - [`payments`]: the IntentProcessor: payment intents, charges, refunds, 3-D Secure and the
//!   recovery of payments a crash interrupted.
//! - [`webhooks`]: the event log's API, webhook endpoints and the WebhookDispatcher.
//! - [`billing`]: products, prices, tax rates, invoices with PDFs, subscriptions, the
//!   SubscriptionScheduler with dunning, and test clocks.
//! - [`checkout`]: hosted checkout sessions and their exactly-once completion.
//! - [`billing_portal`]: the customer portal's sessions, configurations and page actions.
//! - [`customers`]: the customer resource's operations.
//! - [`expand`]: `expand[]`, answered the same way by every endpoint.
//! - [`clock`]: the time the daemon believes it is.
//! - [`system`]: the supervised actors (actix) that own the long-running work and the
//!   payment commands, their restart policy and health.
//! - [`sealing`]: secrets at rest (webhook signing secrets) sealed under a key kept outside Redis.

pub mod api_keys;
pub mod billing;
pub mod billing_portal;
pub mod checkout;
pub mod clock;
pub mod context;
pub mod customers;
pub mod dashboard;
pub mod expand;
pub mod gateway;
pub mod idempotency;
pub mod money;
pub mod payment_methods;
pub mod payments;
pub mod projects;
pub mod resource;
pub mod sealing;
pub mod store;
pub mod system;
pub mod webhooks;

pub use context::{Reply, RequestContext};
pub use store::{Scope, Store, StoreError};

/// Lock `m`, also after a panic elsewhere poisoned it: every value kept behind these locks
/// (remembered keys, objects, transactions, a request's state) is whole between statements.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
