//! The daemon's working parts and the Redis store they share.
//!
//! - [`store`]: the Redis connection, the one atomic commit script every state change goes
//!   through, cursor paging, and the managed `redis-server` the daemon can run itself.
//! - [`api_keys`]: projects and API keys (stored as SHA-256 hashes), authentication and the
//!   per-key rate limit, both decided in one Redis round trip.
//! - [`idempotency`]: `Idempotency-Key` claims, replays and conflicts.
//! - [`context`]: who is asking (project, mode, request id) and the answer handed back.
//! - [`customers`]: the customer resource's operations.
//! - [`clock`]: the time the daemon believes it is.

pub mod api_keys;
pub mod clock;
pub mod context;
pub mod customers;
pub mod idempotency;
pub mod store;

pub use context::{Reply, RequestContext};
pub use store::{Scope, Store, StoreError};
