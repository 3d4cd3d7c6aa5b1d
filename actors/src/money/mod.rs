//! Money after the payment: balance transactions, the balance, payouts, and the
//! reconciliation of what the acquirer and the payers' banks credit to the merchant's Griffin
//! account against what this daemon expected.
//!
//! Each captured charge and each refund writes its balance transaction in the same commit as
//! the payment's own change ([`ledger`]), and adds its net to a settlement batch: a day's card
//! takings (one credit from the acquirer, net of its fees), or one Pay by Bank payment (one
//! Faster Payment from the payer's bank). The follower ([`follower`]) closes due batches into
//! payouts, reads the Griffin account's credits (polled, and as webhooks report them), matches
//! them to batches by reference and amount ([`batches`]), and fails payouts whose credit never
//! came. [`report`] lists what did not match; [`api`] answers `/v1/balance`,
//! `/v1/balance_transactions` and `/v1/payouts`.

pub mod api;
pub mod batches;
pub mod follower;
pub mod keys;
pub mod ledger;
pub mod report;
pub mod stats;

use calmony_config::Config;
use calmony_protocol::Mode;
use calmony_protocol::settlement::{CardFees, Cutoff};

/// One mode's settlement rules.
#[derive(Debug, Clone)]
pub struct ModeSettlement {
    pub mode: Mode,
    pub cutoff: Cutoff,
    /// The acquirer's merchant id, part of each day's credit reference.
    pub merchant_id: String,
    pub card_fees: CardFees,
    pub close_grace_secs: i64,
    pub card_deadline_secs: i64,
    pub bank_deadline_secs: i64,
}

/// Both modes' settlement rules.
#[derive(Debug, Clone)]
pub struct Settlement {
    pub test: ModeSettlement,
    pub live: ModeSettlement,
    pub poll_secs: u64,
}

impl Settlement {
    pub fn from_config(config: &Config) -> Self {
        let s = &config.settlement;
        let mode = |mode: Mode, merchant_id: &str| ModeSettlement {
            mode,
            cutoff: config.card_cutoff(mode == Mode::Live),
            merchant_id: merchant_id.to_owned(),
            card_fees: s.card_fees(),
            close_grace_secs: (s.close_grace_minutes * 60) as i64,
            card_deadline_secs: (s.card_payout_deadline_hours * 3600) as i64,
            bank_deadline_secs: (s.bank_payout_deadline_minutes * 60) as i64,
        };
        Self {
            test: mode(Mode::Test, &config.gateway.test.merchant_id),
            live: mode(Mode::Live, &config.gateway.live.merchant_id),
            poll_secs: s.poll_seconds,
        }
    }

    pub fn mode(&self, mode: Mode) -> &ModeSettlement {
        match mode {
            Mode::Test => &self.test,
            Mode::Live => &self.live,
        }
    }
}

impl Default for Settlement {
    fn default() -> Self {
        Self::from_config(&Config::default())
    }
}
