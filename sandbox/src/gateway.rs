//! What every handler shares: the store, the account, and what the simulator keeps in memory.
//! Built by [`crate::Sandbox`]; the handlers below it receive it, and it names none of them.

use std::time::Duration;

use calmony_actors::Store;

use std::sync::Arc;

use crate::bank::setup::Setup as BankSetup;
use crate::config::SandboxConfig;
use crate::memory::Memory;
use crate::transactions::IdBlock;

/// What every handler shares.
pub(crate) struct Gateway {
    pub(crate) store: Store,
    pub(crate) config: SandboxConfig,
    /// How long a dropped answer is held ([`crate::DROP_HOLD`]; shorter in tests).
    pub(crate) drop_hold: Duration,
    /// The delays before each retry of a hosted payment's callback
    /// ([`crate::DEFAULT_CALLBACK_BACKOFF`]; shorter in tests).
    pub(crate) callback_backoff: Vec<Duration>,
    /// `transactionID`s reserved from Redis a block at a time (see [`IdBlock`]).
    pub(crate) ids: IdBlock,
    /// The faults last read and the VERIFYs SALEs clone (see [`crate::memory`]).
    pub(crate) memory: Memory,
    /// The sandbox bank's settings and keys, loaded once.
    pub(crate) bank: Arc<BankSetup>,
    /// The Griffin sandbox's settings and client key, loaded once.
    pub(crate) griffin: Arc<crate::griffin::setup::Setup>,
}
