//! What a payment intent's finish does, decided without I/O.
//!
//! The finish step is load -> [`decide`] -> commit: the processor loads the intent (and the
//! charge a capture or cancel changes), [`decide`] turns the intent's status, the command and
//! the gateway's answer into a [`Decision`], and the commit writes what the decision names
//! in one atomic change. Statuses and commands are enums here, parsed at the edge of the
//! stored record ([`IntentStatus::of`]), so every transition is matched exhaustively and the
//! table in this module's test pins each one.

use calmony_protocol::payment_intent::status;
use serde::{Deserialize, Serialize};

/// A payment intent's status (Stripe's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    /// A command is at the gateway; only its finish (or recovery's) moves it on.
    Processing,
    RequiresCapture,
    Succeeded,
    Canceled,
}

impl IntentStatus {
    /// The status a stored intent carries. `None`: a status this code never writes.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            status::REQUIRES_PAYMENT_METHOD => IntentStatus::RequiresPaymentMethod,
            status::REQUIRES_CONFIRMATION => IntentStatus::RequiresConfirmation,
            status::REQUIRES_ACTION => IntentStatus::RequiresAction,
            status::PROCESSING => IntentStatus::Processing,
            status::REQUIRES_CAPTURE => IntentStatus::RequiresCapture,
            status::SUCCEEDED => IntentStatus::Succeeded,
            status::CANCELED => IntentStatus::Canceled,
            _ => return None,
        })
    }

    /// The status of `intent` as stored; `None` for one this code never writes, which no
    /// transition accepts.
    pub fn of(intent: &calmony_protocol::payment_intent::PaymentIntent) -> Option<Self> {
        Self::parse(&intent.status)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IntentStatus::RequiresPaymentMethod => status::REQUIRES_PAYMENT_METHOD,
            IntentStatus::RequiresConfirmation => status::REQUIRES_CONFIRMATION,
            IntentStatus::RequiresAction => status::REQUIRES_ACTION,
            IntentStatus::Processing => status::PROCESSING,
            IntentStatus::RequiresCapture => status::REQUIRES_CAPTURE,
            IntentStatus::Succeeded => status::SUCCEEDED,
            IntentStatus::Canceled => status::CANCELED,
        }
    }
}

/// A charge's status (Stripe's names): a charge is written once per attempt, `failed` until
/// the gateway approves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeStatus {
    Succeeded,
    Failed,
}

impl ChargeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeStatus::Succeeded => "succeeded",
            ChargeStatus::Failed => "failed",
        }
    }
}

/// What a command entry asks the processor to do (its `op`, as stored in the stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOp {
    /// Authorise (a sale) with the intent's payment method.
    #[serde(rename = "confirm")]
    Confirm,
    /// Continue a 3-D Secure challenge with what the issuer's page posted back.
    #[serde(rename = "continue_3ds")]
    ContinueThreeDs,
    /// Capture an authorised sale.
    #[serde(rename = "capture")]
    Capture,
    /// Void an authorised sale.
    #[serde(rename = "cancel")]
    Cancel,
    /// Carry out a refund (finished by `refunds`, not by [`decide`]).
    #[serde(rename = "refund")]
    Refund,
}

/// The gateway's answer to a command, as the finish reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Authorised (and captured unless manual) for `amount`.
    Approved { amount: i64 },
    /// The cardholder must authenticate, at a page the gateway named.
    Challenge,
    /// Declined, refused as a request, or a challenge with no page to send the cardholder
    /// to: nothing charged.
    Refused,
    /// Captured for `amount`.
    Captured { amount: i64 },
    /// Voided.
    Voided,
    /// A capture or cancel the gateway refused.
    ManageRefused,
    /// No answer that says what the gateway did (lost, unverified, busy, a duplicate).
    Unknown,
}

/// What the finish knows besides the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// `None`: a status this code does not know.
    pub status: Option<IntentStatus>,
    /// The intent's attempt is the command's: no other finish applied a result meanwhile.
    pub attempt_current: bool,
    pub command: CommandOp,
    pub manual_capture: bool,
    /// Where a refused capture or cancel returns to.
    pub resume: Option<IntentStatus>,
    /// The payment pays an invoice.
    pub pays_invoice: bool,
    /// A paid receipt invoice is written for one-off payments.
    pub receipts: bool,
    /// The intent's latest charge exists (a capture or cancel updates it).
    pub has_charge: bool,
}

/// What becomes of a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeChange {
    None,
    /// A new charge, paid; captured for `amount` unless the capture is manual.
    Succeeded {
        captured: bool,
        amount: i64,
    },
    /// A new charge, failed (the decline recorded on it).
    Failed,
    /// The latest charge captured for `amount`.
    Captured {
        amount: i64,
    },
    /// The latest charge's authorisation voided: refunded whole.
    Voided,
}

/// An event the finish emits, in order. Charge events carry the charge, the others the
/// intent as the decision leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    ChargeSucceeded,
    ChargeFailed,
    ChargeCaptured,
    IntentSucceeded,
    IntentAmountCapturableUpdated,
    IntentRequiresAction,
    IntentPaymentFailed,
    /// The Calmony docs' name for `payment_intent.payment_failed`, sent beside it.
    IntentFailed,
    IntentCanceled,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::ChargeSucceeded => "charge.succeeded",
            EventKind::ChargeFailed => "charge.failed",
            EventKind::ChargeCaptured => "charge.captured",
            EventKind::IntentSucceeded => "payment_intent.succeeded",
            EventKind::IntentAmountCapturableUpdated => "payment_intent.amount_capturable_updated",
            EventKind::IntentRequiresAction => "payment_intent.requires_action",
            EventKind::IntentPaymentFailed => "payment_intent.payment_failed",
            EventKind::IntentFailed => "payment_intent.failed",
            EventKind::IntentCanceled => "payment_intent.canceled",
        }
    }

    /// Whether the event's object is the charge (else the intent).
    pub fn of_charge(self) -> bool {
        matches!(
            self,
            EventKind::ChargeSucceeded | EventKind::ChargeFailed | EventKind::ChargeCaptured
        )
    }
}

/// What the intent's `last_payment_error` becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentError {
    Keep,
    Clear,
    /// The decline, as a card error.
    Decline,
}

/// What the intent's `next_action` becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextAction {
    Keep,
    Clear,
    /// Send the cardholder's browser to the 3-D Secure page.
    ThreeDsRedirect,
}

/// What billing applies in the same commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingEffect {
    None,
    /// The invoice this payment pays is paid.
    InvoicePaid,
    /// The invoice's payment failed (dunning).
    InvoiceFailed,
    /// A one-off payment's paid receipt invoice.
    Receipt,
}

/// What the request (and the idempotency key) is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// 200 with the intent.
    Intent,
    /// 402, the card error with the intent embedded.
    CardError,
    /// 400, the gateway refused the capture or cancel.
    GatewayRefused,
}

impl Reply {
    pub fn status_code(self) -> u16 {
        match self {
            Reply::Intent => 200,
            Reply::CardError => 402,
            Reply::GatewayRefused => 400,
        }
    }
}

/// The outcome label of `calmony_payments_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    RequiresAction,
    Declined,
    Captured,
    Canceled,
    Refused,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::RequiresAction => "requires_action",
            Outcome::Declined => "declined",
            Outcome::Captured => "captured",
            Outcome::Canceled => "canceled",
            Outcome::Refused => "refused",
        }
    }
}

/// Everything one finish commit writes, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub status: IntentStatus,
    pub charge: ChargeChange,
    pub events: Vec<EventKind>,
    pub last_payment_error: PaymentError,
    pub next_action: NextAction,
    /// The pending challenge is over (or, for [`Answer::Challenge`], replaced).
    pub clear_challenge: bool,
    /// The capture or cancel's way back is spent.
    pub clear_resume: bool,
    pub billing: BillingEffect,
    pub reply: Reply,
    pub outcome: Outcome,
}

/// What the finish does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Commit the decision.
    Apply(Decision),
    /// Another finish applied this command's result already: only its entry is left to clear.
    AlreadyFinished,
    /// Nothing known: the intent stays `processing` and the command pending, for recovery,
    /// which asks the gateway before anything else.
    LeaveForRecovery,
}

/// Decide what a command's answer does to its payment. Moves an intent from `processing` to
/// `succeeded`, `requires_capture`, `requires_action`, `requires_payment_method`, `canceled`,
/// or back to where a refused capture or cancel started.
pub fn decide(facts: Facts, answer: Answer) -> Finish {
    if facts.status != Some(IntentStatus::Processing) || !facts.attempt_current {
        return Finish::AlreadyFinished;
    }
    let base = Decision {
        status: IntentStatus::Processing,
        charge: ChargeChange::None,
        events: Vec::new(),
        last_payment_error: PaymentError::Keep,
        next_action: NextAction::Keep,
        clear_challenge: false,
        clear_resume: false,
        billing: BillingEffect::None,
        reply: Reply::Intent,
        outcome: Outcome::Succeeded,
    };
    let receipt = if facts.receipts {
        BillingEffect::Receipt
    } else {
        BillingEffect::None
    };
    let decision = match answer {
        Answer::Unknown => return Finish::LeaveForRecovery,
        Answer::Approved { amount } => {
            let captured = !facts.manual_capture;
            Decision {
                status: if captured {
                    IntentStatus::Succeeded
                } else {
                    IntentStatus::RequiresCapture
                },
                charge: ChargeChange::Succeeded { captured, amount },
                events: vec![
                    EventKind::ChargeSucceeded,
                    if captured {
                        EventKind::IntentSucceeded
                    } else {
                        EventKind::IntentAmountCapturableUpdated
                    },
                ],
                last_payment_error: PaymentError::Clear,
                next_action: NextAction::Clear,
                clear_challenge: true,
                billing: if facts.pays_invoice {
                    BillingEffect::InvoicePaid
                } else {
                    receipt
                },
                ..base
            }
        }
        Answer::Challenge => Decision {
            status: IntentStatus::RequiresAction,
            events: vec![EventKind::IntentRequiresAction],
            next_action: NextAction::ThreeDsRedirect,
            outcome: Outcome::RequiresAction,
            ..base
        },
        Answer::Refused => Decision {
            status: IntentStatus::RequiresPaymentMethod,
            charge: ChargeChange::Failed,
            events: vec![
                EventKind::ChargeFailed,
                EventKind::IntentPaymentFailed,
                EventKind::IntentFailed,
            ],
            last_payment_error: PaymentError::Decline,
            next_action: NextAction::Clear,
            clear_challenge: true,
            billing: if facts.pays_invoice {
                BillingEffect::InvoiceFailed
            } else {
                BillingEffect::None
            },
            reply: Reply::CardError,
            outcome: Outcome::Declined,
            ..base
        },
        Answer::Captured { amount } => {
            let mut events = Vec::new();
            if facts.has_charge {
                events.push(EventKind::ChargeCaptured);
            }
            events.push(EventKind::IntentSucceeded);
            Decision {
                status: IntentStatus::Succeeded,
                charge: if facts.has_charge {
                    ChargeChange::Captured { amount }
                } else {
                    ChargeChange::None
                },
                events,
                clear_resume: true,
                billing: if facts.pays_invoice {
                    BillingEffect::None
                } else {
                    receipt
                },
                outcome: Outcome::Captured,
                ..base
            }
        }
        Answer::Voided => Decision {
            status: IntentStatus::Canceled,
            charge: if facts.has_charge {
                ChargeChange::Voided
            } else {
                ChargeChange::None
            },
            events: vec![EventKind::IntentCanceled],
            next_action: NextAction::Clear,
            clear_resume: true,
            outcome: Outcome::Canceled,
            ..base
        },
        Answer::ManageRefused => Decision {
            status: facts.resume.unwrap_or(IntentStatus::RequiresCapture),
            clear_resume: true,
            reply: Reply::GatewayRefused,
            outcome: Outcome::Refused,
            ..base
        },
    };
    Finish::Apply(decision)
}

#[cfg(test)]
mod tests {
    use super::*;

    use BillingEffect as B;
    use CommandOp as C;
    use EventKind as E;
    use IntentStatus as S;

    /// (case, facts, answer, status, charge, events, reply, billing)
    type Row = (
        &'static str,
        Facts,
        Answer,
        S,
        ChargeChange,
        Vec<E>,
        Reply,
        B,
    );

    fn facts(command: CommandOp) -> Facts {
        Facts {
            status: Some(S::Processing),
            attempt_current: true,
            command,
            manual_capture: false,
            resume: None,
            pays_invoice: false,
            receipts: true,
            has_charge: true,
        }
    }

    fn apply(f: Facts, a: Answer) -> Decision {
        match decide(f, a) {
            Finish::Apply(d) => d,
            other => panic!("{f:?} {a:?}: {other:?}"),
        }
    }

    #[test]
    fn the_finish_table() {
        let manual = Facts {
            manual_capture: true,
            ..facts(C::Confirm)
        };
        let invoice = Facts {
            pays_invoice: true,
            ..facts(C::Confirm)
        };
        let no_receipts = Facts {
            receipts: false,
            ..facts(C::Confirm)
        };
        let capture = Facts {
            resume: Some(S::RequiresCapture),
            ..facts(C::Capture)
        };
        let cancel = Facts {
            resume: Some(S::RequiresCapture),
            ..facts(C::Cancel)
        };
        let approved = Answer::Approved { amount: 1000 };
        // (case, facts, answer, status, charge, events, reply, billing)
        let rows: Vec<Row> = vec![
            (
                "a sale approved succeeds and writes its receipt",
                facts(C::Confirm),
                approved,
                S::Succeeded,
                ChargeChange::Succeeded {
                    captured: true,
                    amount: 1000,
                },
                vec![E::ChargeSucceeded, E::IntentSucceeded],
                Reply::Intent,
                B::Receipt,
            ),
            (
                "no receipt when receipts are off",
                no_receipts,
                approved,
                S::Succeeded,
                ChargeChange::Succeeded {
                    captured: true,
                    amount: 1000,
                },
                vec![E::ChargeSucceeded, E::IntentSucceeded],
                Reply::Intent,
                B::None,
            ),
            (
                "a manual-capture sale approved waits for its capture",
                manual,
                approved,
                S::RequiresCapture,
                ChargeChange::Succeeded {
                    captured: false,
                    amount: 1000,
                },
                vec![E::ChargeSucceeded, E::IntentAmountCapturableUpdated],
                Reply::Intent,
                B::Receipt,
            ),
            (
                "an invoice's payment approved pays the invoice, no receipt",
                invoice,
                approved,
                S::Succeeded,
                ChargeChange::Succeeded {
                    captured: true,
                    amount: 1000,
                },
                vec![E::ChargeSucceeded, E::IntentSucceeded],
                Reply::Intent,
                B::InvoicePaid,
            ),
            (
                "a 3-D Secure challenge asks for the cardholder",
                facts(C::Confirm),
                Answer::Challenge,
                S::RequiresAction,
                ChargeChange::None,
                vec![E::IntentRequiresAction],
                Reply::Intent,
                B::None,
            ),
            (
                "a declined card (insufficient funds, any decline) needs another method",
                facts(C::Confirm),
                Answer::Refused,
                S::RequiresPaymentMethod,
                ChargeChange::Failed,
                vec![E::ChargeFailed, E::IntentPaymentFailed, E::IntentFailed],
                Reply::CardError,
                B::None,
            ),
            (
                "an invoice's payment declined starts dunning",
                invoice,
                Answer::Refused,
                S::RequiresPaymentMethod,
                ChargeChange::Failed,
                vec![E::ChargeFailed, E::IntentPaymentFailed, E::IntentFailed],
                Reply::CardError,
                B::InvoiceFailed,
            ),
            (
                "3-D Secure completed: approved",
                facts(C::ContinueThreeDs),
                approved,
                S::Succeeded,
                ChargeChange::Succeeded {
                    captured: true,
                    amount: 1000,
                },
                vec![E::ChargeSucceeded, E::IntentSucceeded],
                Reply::Intent,
                B::Receipt,
            ),
            (
                "3-D Secure failed: declined",
                facts(C::ContinueThreeDs),
                Answer::Refused,
                S::RequiresPaymentMethod,
                ChargeChange::Failed,
                vec![E::ChargeFailed, E::IntentPaymentFailed, E::IntentFailed],
                Reply::CardError,
                B::None,
            ),
            (
                "an authorisation captured, in part",
                capture,
                Answer::Captured { amount: 600 },
                S::Succeeded,
                ChargeChange::Captured { amount: 600 },
                vec![E::ChargeCaptured, E::IntentSucceeded],
                Reply::Intent,
                B::Receipt,
            ),
            (
                "a capture with no charge to update still succeeds",
                Facts {
                    has_charge: false,
                    ..capture
                },
                Answer::Captured { amount: 600 },
                S::Succeeded,
                ChargeChange::None,
                vec![E::IntentSucceeded],
                Reply::Intent,
                B::Receipt,
            ),
            (
                "an invoice's payment captured writes no receipt",
                Facts {
                    pays_invoice: true,
                    ..capture
                },
                Answer::Captured { amount: 600 },
                S::Succeeded,
                ChargeChange::Captured { amount: 600 },
                vec![E::ChargeCaptured, E::IntentSucceeded],
                Reply::Intent,
                B::None,
            ),
            (
                "an authorisation voided",
                cancel,
                Answer::Voided,
                S::Canceled,
                ChargeChange::Voided,
                vec![E::IntentCanceled],
                Reply::Intent,
                B::None,
            ),
            (
                "a refused capture returns to requires_capture",
                capture,
                Answer::ManageRefused,
                S::RequiresCapture,
                ChargeChange::None,
                vec![],
                Reply::GatewayRefused,
                B::None,
            ),
            (
                "a refused cancel returns to requires_capture",
                cancel,
                Answer::ManageRefused,
                S::RequiresCapture,
                ChargeChange::None,
                vec![],
                Reply::GatewayRefused,
                B::None,
            ),
        ];
        for (case, f, answer, status, charge, events, reply, billing) in rows {
            let d = apply(f, answer);
            assert_eq!(d.status, status, "{case}");
            assert_eq!(d.charge, charge, "{case}");
            assert_eq!(d.events, events, "{case}");
            assert_eq!(d.reply, reply, "{case}");
            assert_eq!(d.billing, billing, "{case}");
        }
    }

    #[test]
    fn what_the_intent_keeps_beside_its_status() {
        // (answer, last_payment_error, next_action, challenge cleared)
        for (answer, error, next, challenge) in [
            (
                Answer::Approved { amount: 1 },
                PaymentError::Clear,
                NextAction::Clear,
                true,
            ),
            (
                Answer::Challenge,
                PaymentError::Keep,
                NextAction::ThreeDsRedirect,
                false,
            ),
            (
                Answer::Refused,
                PaymentError::Decline,
                NextAction::Clear,
                true,
            ),
            (
                Answer::Captured { amount: 1 },
                PaymentError::Keep,
                NextAction::Keep,
                false,
            ),
            (Answer::Voided, PaymentError::Keep, NextAction::Clear, false),
            (
                Answer::ManageRefused,
                PaymentError::Keep,
                NextAction::Keep,
                false,
            ),
        ] {
            let d = apply(facts(C::Confirm), answer);
            assert_eq!(d.last_payment_error, error, "{answer:?}");
            assert_eq!(d.next_action, next, "{answer:?}");
            assert_eq!(d.clear_challenge, challenge, "{answer:?}");
        }
    }

    #[test]
    fn only_the_current_processing_attempt_is_finished() {
        let approved = Answer::Approved { amount: 1000 };
        // A lost or unknown answer leaves the payment processing, for recovery.
        assert_eq!(
            decide(facts(C::Confirm), Answer::Unknown),
            Finish::LeaveForRecovery
        );
        for status in [
            Some(S::RequiresPaymentMethod),
            Some(S::RequiresConfirmation),
            Some(S::RequiresAction),
            Some(S::RequiresCapture),
            Some(S::Succeeded),
            Some(S::Canceled),
            None,
        ] {
            let f = Facts {
                status,
                ..facts(C::Confirm)
            };
            assert_eq!(decide(f, approved), Finish::AlreadyFinished, "{status:?}");
        }
        let stale = Facts {
            attempt_current: false,
            ..facts(C::Confirm)
        };
        assert_eq!(decide(stale, approved), Finish::AlreadyFinished);
    }

    #[test]
    fn statuses_and_commands_read_as_stored() {
        for s in [
            S::RequiresPaymentMethod,
            S::RequiresConfirmation,
            S::RequiresAction,
            S::Processing,
            S::RequiresCapture,
            S::Succeeded,
            S::Canceled,
        ] {
            assert_eq!(IntentStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(IntentStatus::parse("bogus"), None);
        for (op, stored) in [
            (C::Confirm, "\"confirm\""),
            (C::ContinueThreeDs, "\"continue_3ds\""),
            (C::Capture, "\"capture\""),
            (C::Cancel, "\"cancel\""),
            (C::Refund, "\"refund\""),
        ] {
            assert_eq!(serde_json::to_string(&op).ok().as_deref(), Some(stored));
            assert_eq!(serde_json::from_str::<CommandOp>(stored).ok(), Some(op));
        }
    }
}
