//! Refund planning: which gateway request carries a refund, decided from what the gateway last
//! confirmed it keeps of the sale, never from refunds still in flight.
//!
//! A sale's refunds reach the gateway one at a time, in the order they were accepted (the
//! intent keeps them in a queue; only its head may act). Each is planned from `kept`, what the
//! gateway confirmed it keeps after the previous one, stored beside the intent in the commit
//! that records that result. Before settlement a refund that leaves money captured is a lower
//! CAPTURE of what is kept, and one that leaves nothing a CANCEL; after settlement it is a
//! REFUND_SALE. So there is never a CAPTURE of 0, never a CANCEL while money is meant to stay
//! captured, and never a CAPTURE that raises the amount again.
//!
//! After a crash (or an answer that never came), whether the head's request reached the gateway
//! is read from the sale itself ([`reconcile`]) before anything is re-sent: a sale that still
//! holds `kept` never saw it, one that holds `kept - amount` applied it. Anything else means
//! the sale moved outside this queue, and nothing is sent.

use crate::gateway::TxnStatus;

/// Where the sale stands at the gateway, as far as a refund is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaleState {
    /// Authorised or captured, not settled: a CAPTURE can lower it, a CANCEL void it.
    Unsettled,
    /// Settled: only a REFUND_SALE gives money back.
    Settled,
    /// Voided: it holds nothing.
    Canceled,
}

impl SaleState {
    pub fn of(sale: &TxnStatus) -> Self {
        if sale.settled() {
            SaleState::Settled
        } else if sale.state == "canceled" {
            SaleState::Canceled
        } else {
            SaleState::Unsettled
        }
    }
}

/// What the sale holds now at the gateway: captured (or authorised) less what REFUND_SALEs gave
/// back; nothing once canceled.
pub fn held_at_gateway(sale: &TxnStatus) -> i64 {
    match SaleState::of(sale) {
        SaleState::Canceled => 0,
        SaleState::Settled => sale.amount_received - sale.amount_refunded,
        SaleState::Unsettled => sale.amount_received,
    }
}

/// The one gateway request that carries a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayAction {
    /// Lower the captured amount to `keep` (always more than 0).
    Capture { keep: i64 },
    /// Void the sale: the refund takes everything it still holds.
    Cancel,
    /// Give `amount` back from a settled sale.
    RefundSale { amount: i64 },
    /// Send nothing: the refund cannot be made (the reason is the refund's failure).
    Refuse { reason: &'static str },
}

/// Plan a refund of `amount` from a sale in state `sale` that the gateway last confirmed keeps
/// `kept`. Pure: the caller loads, plans, sends, then commits.
pub fn plan_refund(sale: SaleState, kept: i64, amount: i64) -> GatewayAction {
    if amount <= 0 {
        return GatewayAction::Refuse {
            reason: "nothing_to_refund",
        };
    }
    if amount > kept {
        return GatewayAction::Refuse {
            reason: "exceeds_captured",
        };
    }
    match sale {
        SaleState::Canceled => GatewayAction::Refuse {
            reason: "sale_canceled",
        },
        SaleState::Settled => GatewayAction::RefundSale { amount },
        SaleState::Unsettled if amount == kept => GatewayAction::Cancel,
        SaleState::Unsettled => GatewayAction::Capture {
            keep: kept - amount,
        },
    }
}

/// What became of the head refund's request, told from what the sale holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The sale still holds what was last confirmed: the request never took effect.
    NotApplied,
    /// The sale holds `kept - amount`: the request took effect; record it, send nothing.
    Applied,
    /// The sale holds something else: it moved outside the queue. Send nothing.
    Diverged,
}

/// Compare what the sale holds (`held`) with what was last confirmed (`kept`) for a refund of
/// `amount` (more than 0, so the two outcomes differ).
pub fn reconcile(kept: i64, held: i64, amount: i64) -> Progress {
    if held == kept {
        Progress::NotApplied
    } else if held == kept - amount {
        Progress::Applied
    } else {
        Progress::Diverged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::AuthOutcome;

    #[test]
    fn the_refund_table() {
        use GatewayAction::*;
        use SaleState::*;
        for (sale, kept, amount, expected) in [
            // Before settlement: a lower capture while money stays, a cancel for the last of it.
            (Unsettled, 1000, 100, Capture { keep: 900 }),
            (Unsettled, 200, 100, Capture { keep: 100 }),
            (Unsettled, 100, 100, Cancel),
            (Unsettled, 1000, 1000, Cancel),
            (Unsettled, 1, 1, Cancel),
            // Never a capture of 0, never more than is kept.
            (
                Unsettled,
                0,
                100,
                Refuse {
                    reason: "exceeds_captured",
                },
            ),
            (
                Unsettled,
                50,
                100,
                Refuse {
                    reason: "exceeds_captured",
                },
            ),
            (
                Unsettled,
                100,
                0,
                Refuse {
                    reason: "nothing_to_refund",
                },
            ),
            // After settlement: a refund sale, whatever is left.
            (Settled, 1000, 100, RefundSale { amount: 100 }),
            (Settled, 100, 100, RefundSale { amount: 100 }),
            (
                Settled,
                99,
                100,
                Refuse {
                    reason: "exceeds_captured",
                },
            ),
            (
                Canceled,
                100,
                100,
                Refuse {
                    reason: "sale_canceled",
                },
            ),
        ] {
            assert_eq!(
                plan_refund(sale, kept, amount),
                expected,
                "{sale:?} kept {kept} refund {amount}"
            );
        }
    }

    #[test]
    fn progress_is_read_from_the_sale() {
        for (kept, held, amount, expected) in [
            (1000, 1000, 100, Progress::NotApplied),
            (1000, 900, 100, Progress::Applied),
            (100, 0, 100, Progress::Applied),
            (1000, 800, 100, Progress::Diverged),
            (900, 1000, 100, Progress::Diverged),
        ] {
            assert_eq!(reconcile(kept, held, amount), expected, "{kept} {held}");
        }
    }

    #[test]
    fn what_a_sale_holds() {
        let sale = |state: &str, received, refunded| TxnStatus {
            outcome: AuthOutcome::Failed {
                code: 0,
                message: String::new(),
            },
            state: state.into(),
            amount_received: received,
            amount_refunded: refunded,
        };
        for (status, state, held) in [
            (sale("captured", 900, 0), SaleState::Unsettled, 900),
            (sale("approved", 1000, 0), SaleState::Unsettled, 1000),
            (sale("accepted", 900, 300), SaleState::Settled, 600),
            (sale("canceled", 1000, 0), SaleState::Canceled, 0),
        ] {
            assert_eq!(SaleState::of(&status), state);
            assert_eq!(held_at_gateway(&status), held);
        }
    }
}
