//! The simulated merchant account and where the simulator is reachable: what the daemon's
//! configuration gives the sandbox.

use std::fmt;

use crate::bank::BankSandboxConfig;

/// The simulated merchant account and where the simulator is reachable.
#[derive(Clone)]
pub struct SandboxConfig {
    pub merchant_id: String,
    /// The account's signature secret: requests must be signed with it, answers are.
    pub secret: String,
    /// The simulator's public origin, e.g. `http://127.0.0.1:4242`: the ACS URL is built on it.
    pub public_base: String,
    /// The bearer token of the control routes; `None`: faults and settlement are off (see
    /// [`access`]).
    pub operator_token: Option<String>,
    /// The sandbox bank (Pay by Bank): its client, trusted TPP key and timings.
    pub bank: BankSandboxConfig,
    /// The Griffin sandbox (the settlement account): its API key, client key and timings.
    pub griffin: crate::griffin::GriffinSandboxConfig,
    /// The acquirer's daily cut-off and card fees: each settlement run credits the Griffin
    /// sandbox with each day's batch, net of these fees, as the daemon expects it.
    pub cutoff: calmony_protocol::settlement::Cutoff,
    pub card_fees: calmony_protocol::settlement::CardFees,
}

impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("merchant_id", &self.merchant_id)
            .field("secret", &"****")
            .field("public_base", &self.public_base)
            .field(
                "operator_token",
                &self.operator_token.as_ref().map(|_| "****"),
            )
            .field("bank", &self.bank)
            .field("griffin", &self.griffin)
            .finish()
    }
}
