//! The simulated issuer and Directory Server: what happens to an authorisation, and whether a
//! 3-D Secure step comes first.
//!
//! Everything here is a pure function of the card's [`Behaviour`], the amount, the transaction
//! type and the 3-D Secure result, so the same SALE always gets the same answer and the daemon's
//! tests can aim at any outcome. Nothing here touches Redis.
//!
//! The guide's test cards follow its test-amount table (§10.2). The "SCA required" bands only
//! bite an ECOM (type 1) SALE that has not completed 3-D Secure, because that is the
//! transaction PSD2 makes the issuer challenge; a MOTO (2) or continuous-authority (9)
//! payment is out of scope and gets the band's other answer. Referrals use code 2 and become
//! approvals when the merchant sends the `authorisationCode` it obtained by phone.

use crate::cards::{Behaviour, CardProfile};

/// The `type` of a new transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnType {
    /// 1: e-commerce, the cardholder present online. The only type that does 3-D Secure.
    Ecom,
    /// 2: mail or telephone order.
    Moto,
    /// 9: continuous authority, a merchant-initiated repeat payment.
    ContinuousAuthority,
}

impl TxnType {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "1" => Some(TxnType::Ecom),
            "2" => Some(TxnType::Moto),
            "9" => Some(TxnType::ContinuousAuthority),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TxnType::Ecom => "1",
            TxnType::Moto => "2",
            TxnType::ContinuousAuthority => "9",
        }
    }
}

/// A guide card's amount band (§10.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Band {
    Approve,
    Referred,
    Decline,
    KeepCard,
    /// 65 if SCA applies, else approve.
    ScaElseApprove,
    /// 65 if SCA applies, else decline.
    ScaElseDecline,
    Invalid,
}

fn band(amount: u64) -> Band {
    match amount {
        100..=4999 => Band::Approve,
        5000..=9999 => Band::Referred,
        10_000..=14_999 => Band::Decline,
        15_000..=19_999 => Band::KeepCard,
        20_000..=24_999 => Band::ScaElseApprove,
        25_000..=29_999 => Band::ScaElseDecline,
        _ => Band::Invalid,
    }
}

/// Whether a guide card's SALE of `amount` is outside the test-amount table (66312).
pub fn invalid_test_amount(card: &CardProfile, amount: u64) -> bool {
    card.behaviour == Behaviour::TestAmounts && band(amount) == Band::Invalid
}

/// Whether settling `captured` on this card is refused by the acquirer: the guide's
/// 2500–4999 and 7500–9999 bands.
pub fn settlement_rejected(card: &CardProfile, captured: u64) -> bool {
    card.behaviour == Behaviour::TestAmounts && matches!(captured, 2500..=4999 | 7500..=9999)
}

/// What 3-D Secure does for a SALE, decided before any authorisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreeDsPlan {
    /// No 3-D Secure: not ECOM, no `threeDSRedirectURL`, or a card without it.
    Skip,
    /// The ACS wants to see the cardholder: answer 65802.
    Challenge,
    /// Frictionless: the Directory Server answered with this `threeDSAuthenticated` status.
    Frictionless(char),
}

/// The 3-D Secure step for a SALE of `card` of `kind`, given whether the merchant sent a
/// `threeDSRedirectURL` (without one it cannot run a challenge, so none is started).
pub fn three_ds_plan(card: &CardProfile, kind: TxnType, has_redirect: bool) -> ThreeDsPlan {
    if kind != TxnType::Ecom || !has_redirect {
        return ThreeDsPlan::Skip;
    }
    match card.behaviour {
        Behaviour::ThreeDsChallenge => ThreeDsPlan::Challenge,
        // §10.4: the expiry month picks the Directory Server's answer.
        Behaviour::TestAmounts => match card.exp_month {
            1 => ThreeDsPlan::Frictionless('Y'),
            2 => ThreeDsPlan::Frictionless('N'),
            3 | 11 => ThreeDsPlan::Frictionless('U'),
            4 => ThreeDsPlan::Frictionless('A'),
            5 => ThreeDsPlan::Frictionless('D'),
            6 => ThreeDsPlan::Frictionless('R'),
            10 => ThreeDsPlan::Frictionless('I'),
            12 => ThreeDsPlan::Challenge,
            _ => ThreeDsPlan::Frictionless('E'),
        },
        _ => ThreeDsPlan::Skip,
    }
}

/// Whether a `threeDSAuthenticated` status means the cardholder was authenticated (so the
/// payment may go ahead with liability shift).
pub fn authenticated(status: char) -> bool {
    matches!(status, 'Y' | 'A')
}

/// Whether a `threeDSAuthenticated` status stops the payment before authorisation (65803).
pub fn refused(status: char) -> bool {
    matches!(status, 'N' | 'R')
}

/// The issuer code of Stripe's generic decline (4000 0000 0000 0002): a refusal whose reason
/// the issuer does not share. Not 5 (do not honour), which is the guide's own decline and
/// Stripe's `do_not_honor`; 79 (a life-cycle decline) is one no Stripe `decline_code` names,
/// so it reads as `generic_decline`, as Stripe documents for that card.
pub const UNNAMED_DECLINE: u32 = 79;

/// What the issuer answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Authorised, with this authorisation code.
    Approve { authorisation_code: String },
    /// Refused, with the state the transaction ends in and any check results to report.
    Refuse {
        code: u32,
        message: &'static str,
        referred: bool,
        cv2_not_matched: bool,
    },
    /// The gateway could not reach the processor (65550); the transaction is `finished`.
    ProcessorError,
}

impl Decision {
    fn refuse(code: u32, message: &'static str) -> Self {
        Decision::Refuse {
            code,
            message,
            referred: false,
            cv2_not_matched: false,
        }
    }
}

/// The answer to a VERIFY: the card is checked, not charged, so only an unknown or expired
/// card is refused.
pub fn verify(card: &CardProfile, expired: bool) -> Decision {
    if card.behaviour == Behaviour::Unknown {
        Decision::refuse(5, "UNKNOWN TEST CARD")
    } else if expired {
        Decision::refuse(54, "EXPIRED CARD")
    } else {
        Decision::Approve {
            authorisation_code: String::new(),
        }
    }
}

/// What a SALE carries that the issuer looks at.
#[derive(Debug, Clone, Copy)]
pub struct Sale<'a> {
    pub card: &'a CardProfile,
    pub expired: bool,
    pub amount: u64,
    pub kind: TxnType,
    /// The `authorisationCode` the merchant sent (a voice authorisation for a referral).
    pub authorisation_code: Option<&'a str>,
    /// The `threeDSAuthenticated` status, if 3-D Secure ran.
    pub three_ds: Option<char>,
}

/// The answer to a SALE. A guide card's amount must already be inside the table.
pub fn authorise(sale: &Sale<'_>) -> Decision {
    let approve = || Decision::Approve {
        authorisation_code: new_authorisation_code(),
    };
    let sca_applies = sale.kind == TxnType::Ecom && !sale.three_ds.is_some_and(authenticated);
    if sale.card.behaviour == Behaviour::Unknown {
        return Decision::refuse(5, "UNKNOWN TEST CARD");
    }
    if sale.expired {
        return Decision::refuse(54, "EXPIRED CARD");
    }
    match sale.card.behaviour {
        Behaviour::Approve => approve(),
        Behaviour::Decline | Behaviour::DeclineAfterAttach => {
            Decision::refuse(UNNAMED_DECLINE, "CARD DECLINED")
        }
        Behaviour::InsufficientFunds => Decision::refuse(51, "INSUFFICIENT FUNDS"),
        Behaviour::LostCard => Decision::refuse(41, "LOST CARD"),
        Behaviour::StolenCard => Decision::refuse(43, "STOLEN CARD"),
        Behaviour::VelocityExceeded => Decision::refuse(61, "EXCEEDS WITHDRAWAL LIMIT"),
        Behaviour::Fraudulent => Decision::refuse(59, "SUSPECTED FRAUD"),
        Behaviour::ExpiredCard => Decision::refuse(54, "EXPIRED CARD"),
        Behaviour::IncorrectCvc => Decision::Refuse {
            code: 5,
            message: "CARD DECLINED",
            referred: false,
            cv2_not_matched: true,
        },
        Behaviour::ProcessingError => Decision::ProcessorError,
        // Without a completed challenge an ECOM payment is a soft decline, as Stripe's
        // "authentication required" cards are off-session.
        Behaviour::ThreeDsChallenge if sca_applies => Decision::refuse(65, "SCA REQUIRED"),
        Behaviour::ThreeDsChallenge => approve(),
        Behaviour::TestAmounts => match band(sale.amount) {
            Band::Approve => approve(),
            Band::Referred => match sale.authorisation_code.filter(|c| !c.is_empty()) {
                Some(code) => Decision::Approve {
                    authorisation_code: code.to_owned(),
                },
                None => Decision::Refuse {
                    code: 2,
                    message: "CARD REFERRED",
                    referred: true,
                    cv2_not_matched: false,
                },
            },
            Band::Decline => Decision::refuse(5, "CARD DECLINED"),
            Band::KeepCard => Decision::refuse(4, "CARD DECLINED - KEEP CARD"),
            Band::ScaElseApprove | Band::ScaElseDecline if sca_applies => {
                Decision::refuse(65, "SCA REQUIRED")
            }
            Band::ScaElseApprove => approve(),
            Band::ScaElseDecline => Decision::refuse(5, "CARD DECLINED"),
            Band::Invalid => Decision::refuse(66312, "Invalid Test Amount"),
        },
        Behaviour::Unknown => Decision::refuse(5, "UNKNOWN TEST CARD"),
    }
}

/// A six-digit authorisation code.
fn new_authorisation_code() -> String {
    use rand::Rng;
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// The ECI an issuer reports for a `threeDSAuthenticated` status on this scheme.
pub fn eci(card: &CardProfile, status: char) -> &'static str {
    match (card.scheme_code.as_str(), status) {
        ("MC", 'Y') => "02",
        ("MC", _) => "01",
        (_, 'Y') => "05",
        _ => "06",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calmony_protocol::cardstream::Fields;

    fn guide(month: &str) -> CardProfile {
        let fields: Fields = [
            ("cardNumber", "4929421234600821"),
            ("cardExpiryMonth", month),
            ("cardExpiryYear", "40"),
        ]
        .into_iter()
        .collect();
        crate::cards::from_request(&fields)
            .expect("valid")
            .expect("card")
    }

    fn code(card: &CardProfile, amount: u64, kind: TxnType, three_ds: Option<char>) -> u32 {
        let sale = Sale {
            card,
            expired: false,
            amount,
            kind,
            authorisation_code: None,
            three_ds,
        };
        match authorise(&sale) {
            Decision::Approve { .. } => 0,
            Decision::Refuse { code, .. } => code,
            Decision::ProcessorError => 65550,
        }
    }

    #[test]
    fn the_test_amount_table() {
        let card = guide("07");
        let ecom = TxnType::Ecom;
        for (amount, expected) in [
            (100, 0),
            (2499, 0),
            (2500, 0),
            (4999, 0),
            (5000, 2),
            (9999, 2),
            (10_000, 5),
            (15_000, 4),
            (20_000, 65),
            (25_000, 65),
        ] {
            assert_eq!(code(&card, amount, ecom, None), expected, "{amount}");
        }
        assert_eq!(code(&card, 20_000, TxnType::ContinuousAuthority, None), 0);
        assert_eq!(code(&card, 25_000, TxnType::Moto, None), 5);
        assert_eq!(code(&card, 20_000, ecom, Some('Y')), 0);
        assert_eq!(code(&card, 20_000, ecom, Some('U')), 65);
        assert!(invalid_test_amount(&card, 99));
        assert!(invalid_test_amount(&card, 30_000));
        assert!(!invalid_test_amount(&card, 100));
        assert!(settlement_rejected(&card, 2500));
        assert!(settlement_rejected(&card, 7500));
        assert!(!settlement_rejected(&card, 2499));
        assert!(!settlement_rejected(&card, 5000));
    }

    #[test]
    fn a_voice_authorisation_turns_a_referral_into_an_approval() {
        let card = guide("07");
        let sale = Sale {
            card: &card,
            expired: false,
            amount: 6000,
            kind: TxnType::Ecom,
            authorisation_code: Some("VOICE1"),
            three_ds: None,
        };
        assert_eq!(
            authorise(&sale),
            Decision::Approve {
                authorisation_code: "VOICE1".into()
            }
        );
    }

    #[test]
    fn expiry_month_drives_three_ds() {
        let plan = |month| three_ds_plan(&guide(month), TxnType::Ecom, true);
        assert_eq!(plan("12"), ThreeDsPlan::Challenge);
        assert_eq!(plan("01"), ThreeDsPlan::Frictionless('Y'));
        assert_eq!(plan("04"), ThreeDsPlan::Frictionless('A'));
        assert_eq!(plan("02"), ThreeDsPlan::Frictionless('N'));
        assert_eq!(plan("06"), ThreeDsPlan::Frictionless('R'));
        assert_eq!(plan("08"), ThreeDsPlan::Frictionless('E'));
        assert_eq!(plan("10"), ThreeDsPlan::Frictionless('I'));
        assert_eq!(
            three_ds_plan(&guide("12"), TxnType::ContinuousAuthority, true),
            ThreeDsPlan::Skip
        );
        assert_eq!(
            three_ds_plan(&guide("12"), TxnType::Ecom, false),
            ThreeDsPlan::Skip
        );
    }

    /// Stripe's testing documentation, "Declined payments": each number's error `code` and
    /// `decline_code`, as the daemon reads the simulator's answer. The guide's own cards keep
    /// Cardstream's meaning (5 is `do_not_honor`).
    #[test]
    fn stripe_test_cards_answer_stripes_documented_codes() {
        use calmony_protocol::cardstream::codes::Outcome;
        let outcome_of = |number: &str, month: &str, amount: u64| {
            let fields: Fields = [
                ("cardNumber", number),
                ("cardExpiryMonth", month),
                ("cardExpiryYear", "40"),
            ]
            .into_iter()
            .collect();
            let card = crate::cards::from_request(&fields)
                .expect("valid")
                .expect("card");
            let decision = authorise(&Sale {
                card: &card,
                expired: false,
                amount,
                kind: TxnType::Ecom,
                authorisation_code: None,
                three_ds: None,
            });
            let mut answer = Fields::new();
            match decision {
                Decision::Approve { .. } => return None,
                Decision::Refuse {
                    code,
                    cv2_not_matched,
                    ..
                } => {
                    answer.insert("responseCode", code.to_string());
                    if cv2_not_matched {
                        answer.insert("cv2Check", "not matched");
                    }
                }
                Decision::ProcessorError => {
                    answer.insert("responseCode", "65550");
                }
            }
            // As the daemon reads it: a decline's own code; a processor failure is
            // `processing_error`.
            let decline_code = match Outcome::from_response(&answer).expect("a code") {
                outcome @ (Outcome::Declined { .. } | Outcome::Referred) => {
                    outcome.decline_code().expect("a decline code")
                }
                _ => "processing_error",
            };
            let (code, _) = calmony_protocol::error::decline_words(decline_code);
            Some((code, decline_code))
        };
        for (number, code, decline_code) in [
            ("4000000000000002", "card_declined", "generic_decline"),
            ("4000000000009995", "card_declined", "insufficient_funds"),
            ("4000000000009987", "card_declined", "lost_card"),
            ("4000000000009979", "card_declined", "stolen_card"),
            (
                "4000000000006975",
                "card_declined",
                "card_velocity_exceeded",
            ),
            ("4100000000000019", "card_declined", "fraudulent"),
            ("4000000000000069", "expired_card", "expired_card"),
            ("4000000000000127", "incorrect_cvc", "incorrect_cvc"),
            ("4000000000000119", "processing_error", "processing_error"),
            ("4000000000000341", "card_declined", "generic_decline"),
        ] {
            assert_eq!(
                outcome_of(number, "12", 1000),
                Some((code, decline_code)),
                "{number}"
            );
        }
        for number in ["4242424242424242", "5555555555554444", "378282246310005"] {
            assert_eq!(outcome_of(number, "12", 1000), None, "{number}");
        }
        // The guide's cards: Cardstream's mapping, by amount.
        assert_eq!(
            outcome_of("4929421234600821", "11", 12_000),
            Some(("card_declined", "do_not_honor"))
        );
        assert_eq!(
            outcome_of("4929421234600821", "11", 15_000),
            Some(("card_declined", "pickup_card"))
        );
        assert_eq!(
            outcome_of("4929421234600821", "11", 5_000),
            Some(("card_declined", "call_issuer"))
        );
    }
}
