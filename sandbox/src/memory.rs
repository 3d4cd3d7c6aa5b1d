//! What a simulator remembers between /direct/ requests, so that a SALE on a saved card costs
//! one Redis round trip (its change) instead of two (the faults and the saved card's VERIFY
//! read first, then the change).
//!
//! - The faults it last read, with their generation ([`crate::keys::FAULTS_GEN`], incremented
//!   by every setting). While that read found none set, `direct::handle` serves a request
//!   without reading them, as of that generation ([`AS_OF`]): every change the request makes
//!   checks the generation first and writes nothing if it moved, and a request that makes no
//!   change reads the faults before it answers. Either way a request whose faults changed is
//!   served again on the faults as they are, so a fault set by any simulator sharing the Redis
//!   applies to the next request, exactly as when every request read them.
//! - The VERIFY transactions that SALEs clone their card from, by `xref`. A VERIFY is never
//!   changed once written (captures, cancels, refunds and settlement act on SALEs; 3-D Secure
//!   continues SALEs), so a remembered one is the stored one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use calmony_actors::lock;

use crate::faults::{Faults, Seen};
use crate::transactions::Transaction;

/// VERIFY transactions remembered at most (each a few hundred bytes); emptied when full.
const MAX_VERIFIES: usize = 8192;

tokio::task_local! {
    /// Set while a request is served on remembered faults (see the module documentation).
    pub(crate) static AS_OF: AsOf;
}

/// The faults generation a request is served as of, and whether a change checked it.
#[derive(Debug, Clone)]
pub(crate) struct AsOf {
    pub generation: u64,
    applied: Arc<AtomicBool>,
}

impl AsOf {
    pub fn new(generation: u64) -> Self {
        Self {
            generation,
            applied: Arc::default(),
        }
    }

    /// A change checked the generation and was applied.
    pub fn mark_applied(&self) {
        self.applied.store(true, Ordering::Relaxed);
    }

    pub fn applied(&self) -> bool {
        self.applied.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Memory {
    seen: Mutex<Option<Seen>>,
    verifies: Mutex<HashMap<String, Arc<Transaction>>>,
}

impl Memory {
    /// The generation at which this simulator last read the faults, if none was set then.
    pub fn no_faults_at(&self) -> Option<u64> {
        lock(&self.seen)
            .filter(|s| s.faults == Faults::default())
            .map(|s| s.generation)
    }

    /// The faults as just read.
    pub fn saw(&self, seen: Seen) {
        *lock(&self.seen) = Some(seen);
    }

    /// The VERIFY transaction `xref`, if remembered.
    pub fn verify(&self, xref: &str) -> Option<Arc<Transaction>> {
        lock(&self.verifies).get(xref).cloned()
    }

    /// Remember `txn` if it is a VERIFY (nothing else is immutable).
    pub fn keep_verify(&self, txn: &Arc<Transaction>) {
        if txn.action != "VERIFY" {
            return;
        }
        let mut verifies = lock(&self.verifies);
        if verifies.len() >= MAX_VERIFIES {
            verifies.clear();
        }
        verifies.insert(txn.xref.clone(), Arc::clone(txn));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_reading_without_faults_is_served_from_memory() {
        let m = Memory::default();
        assert_eq!(m.no_faults_at(), None, "never read");
        m.saw(Seen {
            generation: 4,
            faults: Faults::default(),
        });
        assert_eq!(m.no_faults_at(), Some(4));
        m.saw(Seen {
            generation: 5,
            faults: Faults {
                delay_ms: 10,
                ..Faults::default()
            },
        });
        assert_eq!(m.no_faults_at(), None, "faults set: read them every time");
    }
}
