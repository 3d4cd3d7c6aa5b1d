//! What can go wrong inside the simulator: the store, a record it cannot read, or faults that
//! changed under a request. Every module answers with it, so it names none of them.

use calmony_actors::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("sandbox record {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    /// A request served on remembered faults found them changed: nothing was written, and the
    /// request is served again on the faults as they are (see [`crate::memory`]).
    #[error("the sandbox faults changed while the request was served")]
    FaultsChanged,
}
