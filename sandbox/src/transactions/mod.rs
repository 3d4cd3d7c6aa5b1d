//! The gateway's transactions and the one way they change.
//!
//! A transaction is one JSON string under `cp:sandbox:txn:<xref>`, stored packed as the
//! daemon's records are (`store::packed`: 1,620 bytes of a card payment's transaction become
//! about 850; the simulator's records were 45 % of what a sandbox payment leaves in Redis, and
//! every byte is written to the AOF and dumped again by each AOF rewrite). A record written
//! plain, before packing, reads as it always did. Every change (a new
//! transaction, a capture, a settlement, the end of a 3-D Secure challenge) is read, decided in
//! Rust, and written by [`Change::apply`] through one Lua script: first every check, then every
//! write, or nothing at all. The checks are what make the simulator safe when several daemons
//! share it:
//! - `cas`: the record is still byte-for-byte what we read (or still absent), so two CAPTUREs
//!   or two settlement runs cannot both win; the loser reads again and decides again;
//! - `claim`: a `transactionUnique` has not been used, so a retried SALE is a 65554 duplicate
//!   and never a second charge;
//! - `take`: a single-use token (a `threeDSRef`, a `creq`) still exists, and is consumed.
//!
//! The ledger entry, the settlement index and the tokens are written in the same script, so a
//! charge is never recorded without its transaction or the reverse.
//!
//! - [`record`]: the transaction, its states and the bytes it was read as.
//! - [`ids`]: `transactionID` blocks, `xref`s and single-use tokens.
//! - [`read`]: loading a transaction and the keys that point at one.
//! - [`change`]: [`Change`], the one atomic write.

mod change;
mod ids;
mod read;
mod record;

pub use change::{Applied, Change};
pub(crate) use ids::IdBlock;
pub use ids::{new_token, random_alnum};
pub use read::{get_string, load, load_for};
pub use record::{Loaded, PendingChallenge, State, Transaction, flatten};
