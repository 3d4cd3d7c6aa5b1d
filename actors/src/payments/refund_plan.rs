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
//!
//! Several daemons may share one Redis, so "only the head acts" needs more than a queue: the
//! daemon acting on a sale's head holds the sale's lease ([`lease_ttl`]) from its QUERY through
//! its request to its finish, and keeps it (proving it never lapsed) just before each request
//! it sends. A head that cannot go on (its command parked as poison, or a sale that moved
//! outside the queue) fails ([`give_back`]): it leaves the queue and its reserved amount is
//! given back, so the refunds behind it go on.

use std::time::Duration;

use super::IntentInternal;
use crate::gateway::TxnStatus;

/// A refund's status (Stripe's names), parsed from the stored refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundStatus {
    /// Accepted, queued behind the sale's earlier refunds or at the gateway.
    Pending,
    Succeeded,
    Failed,
}

impl RefundStatus {
    /// `None`: a status this code never writes (no transition accepts it).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => RefundStatus::Pending,
            "succeeded" => RefundStatus::Succeeded,
            "failed" => RefundStatus::Failed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }

    /// Whether `refund` is still pending (the only status a refund's work moves on from).
    pub fn is_pending(refund: &calmony_protocol::refund::Refund) -> bool {
        Self::parse(&refund.status) == Some(RefundStatus::Pending)
    }
}

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
        } else if sale.state.canceled() {
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

/// How long a sale's lease lasts from each taking or keeping: one gateway request may take
/// up to `request_timeout` (answer included), and the lease is kept just before each request
/// is sent, so it outlasts any request its holder has in flight; the margin covers the time
/// between keeping it and sending. A holder that dies frees the sale after this long.
pub fn lease_ttl(request_timeout: Duration) -> Duration {
    request_timeout + LEASE_MARGIN
}

const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// The intent's refund book once refund `id` of `amount` has failed: out of the queue (the next
/// one may act), its reserved amount given back (never below nothing), and what the gateway
/// keeps set to what it was last seen to hold (`held`), when it was seen: the refunds behind a
/// sale that moved outside the queue are then planned from the sale as it is.
pub fn give_back(
    book: &IntentInternal,
    id: &str,
    amount: i64,
    held: Option<i64>,
) -> IntentInternal {
    let mut after = book.clone();
    after.refund_queue.retain(|queued| queued != id);
    after.refunded = (after.refunded - amount).max(0);
    if held.is_some() {
        after.gateway_kept = held;
    }
    after
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::AuthOutcome;

    #[test]
    fn a_sale_lease_outlasts_a_request_in_flight() {
        for secs in [1, 10, 300] {
            let timeout = Duration::from_secs(secs);
            assert!(
                lease_ttl(timeout) >= timeout + Duration::from_secs(2),
                "{secs}"
            );
        }
    }

    #[test]
    fn a_failed_refund_leaves_the_queue_and_gives_its_amount_back() {
        let book = |queue: &[&str], refunded, kept| IntentInternal {
            refund_queue: queue.iter().map(|s| s.to_string()).collect(),
            refunded,
            gateway_kept: kept,
            ..Default::default()
        };
        for (before, id, amount, held, after) in [
            // The head fails, the sale as last confirmed: the next is head, planned as before.
            (
                book(&["re_1", "re_2"], 300, Some(1000)),
                "re_1",
                100,
                None,
                book(&["re_2"], 200, Some(1000)),
            ),
            // The sale moved outside the queue: the next is planned from what it holds.
            (
                book(&["re_1", "re_2"], 300, Some(1000)),
                "re_1",
                100,
                Some(800),
                book(&["re_2"], 200, Some(800)),
            ),
            // One behind the head fails: the head stays, the kept amount too.
            (
                book(&["re_1", "re_2", "re_3"], 300, Some(900)),
                "re_2",
                100,
                None,
                book(&["re_1", "re_3"], 200, Some(900)),
            ),
            // One begun before queues existed is in none; its amount still comes back.
            (book(&[], 100, None), "re_0", 100, None, book(&[], 0, None)),
            // Never less than nothing refunded.
            (
                book(&["re_1"], 50, Some(10)),
                "re_1",
                100,
                None,
                book(&[], 0, Some(10)),
            ),
        ] {
            let got = give_back(&before, id, amount, held);
            assert_eq!(
                (got.refund_queue, got.refunded, got.gateway_kept),
                (after.refund_queue, after.refunded, after.gateway_kept),
                "{id} of {amount}, held {held:?}"
            );
        }
    }

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
    fn refund_statuses_read_as_stored() {
        for s in [
            RefundStatus::Pending,
            RefundStatus::Succeeded,
            RefundStatus::Failed,
        ] {
            assert_eq!(RefundStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(RefundStatus::parse("canceled"), None);
    }

    #[test]
    fn what_a_sale_holds() {
        let sale = |state: &str, received, refunded| TxnStatus {
            outcome: AuthOutcome::Failed {
                code: 0,
                message: String::new(),
            },
            state: crate::gateway::cardstream::transformers::txn_state(state),
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
