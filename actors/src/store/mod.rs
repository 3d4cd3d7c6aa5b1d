//! The Redis store.
//!
//! ## Keyspace
//! Every key starts with `cp:`. A project's data carries its id as a hash tag,
//! `cp:{prj_…}:<mode>:…`, so one project lives in one Redis Cluster slot and a multi-key
//! script over it stays legal if the store is ever sharded. Records are hashes with two
//! fields: `v`, a version bumped by every write, and `json`, the object exactly as the API
//! answers it, so a retrieve is a single `HGET` with no re-encoding. Lists are sorted sets of
//! IDs with equal scores: IDs are ULIDs, so lexicographic order is creation order and
//! `ZREVRANGEBYLEX` pages newest first from an exact cursor. A list's filters are sets of the
//! same shape, kept by the commit that writes each record ([`filters`]). The README lists
//! every key.
//!
//! ## One atomic commit per state change
//! A change is read, decided in Rust, and written with [`Tx`] through one Lua script
//! ([`scripts::COMMIT`]): first every check (record versions unchanged since they were read,
//! the idempotency claim still ours), then every write (records, indexes, the event, the event
//! stream entry, the stored idempotent answer). Either all of it happens or none of it does, and
//! a concurrent writer turns into a clean retry instead of a lost update. There is no second
//! write path: customers, and every resource after them, go through [`Store::commit`].
//!
//! ## Layers
//! This file only declares the store's files and re-exports their items, so every path
//! `crate::store::X` stays as it was while no file here names this one: the leaves
//! (`error`, `scope`, `page`, `record`) name nothing of the store's, `client` holds
//! the connections, reads and pages, `tx` builds a change, and `commit` applies it.

mod batcher;
mod claim;
mod client;
mod commit;
mod error;
pub mod event_log;
mod filter_backfill;
pub mod filters;
mod lease;
mod managed;
pub mod packed;
mod page;
pub mod plain;
mod record;
pub mod retry;
mod scope;
pub mod scripts;
mod top_level;
mod tx;
mod unavailability;

pub use batcher::Batcher;
pub use claim::{Answer, Answers, ClaimRef, FreshClaim};
pub use client::{BLOCK, Store};
pub use commit::{Commit, KeyRefusal};
pub use error::StoreError;
pub use lease::Lease;
pub use managed::ManagedRedis;
pub use page::{Direction, lex_range};
pub(crate) use record::lossy;
pub use record::{Fetched, Record, Unread, text};
pub use scope::Scope;
pub use tx::{OpList, Tx};
pub use unavailability::Unavailability;
