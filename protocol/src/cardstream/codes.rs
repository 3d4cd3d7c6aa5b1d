//! What a gateway `responseCode` means for a payment.
//!
//! Decide on `responseCode`, never on `responseMessage`. Codes below 65536 come from the card
//! issuer or acquirer (ISO 8583 numbers; non-numeric ISO codes mapped above 99, e.g. 934 for
//! `N7`); codes from 65536 up are the gateway's own. [`Outcome`] folds them into what the daemon
//! must do next, with Stripe's `decline_code` spelling for declines:
//!
//! | `responseCode` | Outcome |
//! |---|---|
//! | 0, 85 (no reason to decline: a VERIFY) | `Approved` |
//! | 1, 2 (refer to issuer) | `Referred` (Stripe `call_issuer`) |
//! | 4, 7 (pick up card) | declined `pickup_card` |
//! | 5 (do not honour; also an AVS/CV2 failure) | declined `do_not_honor`, refined below |
//! | 6, 30, 96 | declined `processing_error` |
//! | 12, 57, 58 | declined `transaction_not_allowed` |
//! | 13 | declined `invalid_amount` |
//! | 14 | declined `incorrect_number` |
//! | 19 | declined `reenter_transaction` |
//! | 41 / 43 | declined `lost_card` / `stolen_card` |
//! | 51 | declined `insufficient_funds` |
//! | 54 | declined `expired_card` |
//! | 55 | declined `incorrect_pin` |
//! | 59 | declined `fraudulent` |
//! | 61 | declined `card_velocity_exceeded` |
//! | 62 | declined `restricted_card` |
//! | 65 (SCA required, a soft decline) | declined `authentication_required` |
//! | 75 | declined `pin_try_exceeded` |
//! | 91 | declined `issuer_not_available` |
//! | 934 (`N7`, CVV2 failure) | declined `incorrect_cvc` |
//! | any other code below 65536 | declined `generic_decline` |
//! | 65536 (transaction in progress), 65548 (database error) | `Unknown` |
//! | 65554 | `Duplicate` |
//! | 65561, 65567 (card type or issuing country not supported) | declined `card_not_supported` |
//! | 65566 (test card on a live account) | declined `testmode_decline` |
//! | 65802 | `ThreeDSecureRequired` |
//! | 65803 (3-D Secure result fails `threeDSCheckPref`) | `AuthenticationFailed` |
//! | 65862 (risk check result fails preferences) | declined `fraudulent` |
//! | any other code from 65536 | `GatewayError` |
//!
//! A 5 read from a whole response ([`Outcome::from_response`]) becomes `incorrect_cvc` when
//! `cv2Check` is `not matched`, else `incorrect_zip` when `postcodeCheck` is.
//!
//! Gateway errors include 65539 (bad credentials or signature), the 3-D Secure processing
//! errors, the missing-field (66048–66303, 66560–66815) and invalid-field (missing + 256)
//! ranges, and 66311/66312, which the simulator returns for an amount outside its test table.

use super::message::Fields;

/// Authorised (a SALE or PREAUTH).
pub const SUCCESS: u32 = 0;
/// Referred: call the issuer for a voice authorisation.
pub const REFERRED: u32 = 1;
/// Declined, keep the card.
pub const KEEP_CARD: u32 = 4;
/// Declined (do not honour); also an AVS/CV2 failure.
pub const DECLINED: u32 = 5;
/// Soft decline: retry with 3-D Secure.
pub const SCA_REQUIRED: u32 = 65;
/// The usual success of a VERIFY.
pub const NO_REASON_TO_DECLINE: u32 = 85;
/// Unknown merchant, or a signature that does not match.
pub const INVALID_CREDENTIALS: u32 = 65539;
/// The gateway was busy with the same transaction and did not finish this request.
pub const IN_PROGRESS: u32 = 65536;
/// The gateway's own store failed: the request may or may not have taken effect.
pub const DATABASE_ERROR: u32 = 65548;
/// The same request within `duplicateDelay`.
pub const DUPLICATE: u32 = 65554;

/// Whether `code` leaves what the gateway did unknown ([`Outcome::Unknown`]): the caller must
/// QUERY before deciding anything.
pub fn outcome_unknown(code: u32) -> bool {
    matches!(code, IN_PROGRESS | DATABASE_ERROR)
}
/// Continue the 3-D Secure flow with `threeDSURL` and `threeDSRequest[…]`.
pub const THREE_DS_REQUIRED: u32 = 65802;
/// The 3-D Secure result does not meet `threeDSCheckPref`.
pub const THREE_DS_NOT_ACCEPTED: u32 = 65803;
/// Signing is on for the account but the request carries no signature.
pub const MISSING_SIGNATURE: u32 = 66087;
/// The request's signature does not match.
pub const INVALID_SIGNATURE: u32 = 66343;

/// What a gateway response means for the payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The money is authorised (or the card verified).
    Approved,
    /// The issuer or gateway refused the card; `decline_code` is Stripe's spelling.
    Declined { decline_code: &'static str },
    /// The issuer wants a voice authorisation (`referralPhone` may say where).
    Referred,
    /// 65802: send the cardholder through `threeDSURL`, then continue with `threeDSRef`.
    ThreeDSecureRequired,
    /// 65803: 3-D Secure ran and the result does not meet the account's preferences.
    AuthenticationFailed,
    /// 65554: the gateway saw the same request within `duplicateDelay`; query the original
    /// rather than treat this as a decline.
    Duplicate,
    /// 65536, 65548: the gateway could not say what became of the request (busy, or its own
    /// store failed, perhaps after the change was made). Like no answer at all: query the
    /// transaction before deciding anything, and never take it as "not charged".
    Unknown { code: u32, message: String },
    /// Anything else: a request the gateway would not process. `message` is the gateway's
    /// `responseMessage` when it sent one, else the meaning of the code.
    GatewayError { code: u32, message: String },
}

/// A response without a usable `responseCode`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("the gateway response has no responseCode")]
    MissingResponseCode,
    #[error("the gateway responseCode {0:?} is not a number")]
    InvalidResponseCode(String),
}

impl Outcome {
    /// The outcome of a bare `responseCode`.
    pub fn from_code(code: u32) -> Self {
        match code {
            SUCCESS | NO_REASON_TO_DECLINE => Outcome::Approved,
            REFERRED | 2 => Outcome::Referred,
            DUPLICATE => Outcome::Duplicate,
            code if outcome_unknown(code) => Outcome::Unknown {
                code,
                message: gateway_meaning(code).to_owned(),
            },
            THREE_DS_REQUIRED => Outcome::ThreeDSecureRequired,
            THREE_DS_NOT_ACCEPTED => Outcome::AuthenticationFailed,
            0..=65535 => Outcome::Declined {
                decline_code: issuer_decline_code(code),
            },
            65561 | 65567 => Outcome::Declined {
                decline_code: "card_not_supported",
            },
            65566 => Outcome::Declined {
                decline_code: "testmode_decline",
            },
            65862 => Outcome::Declined {
                decline_code: "fraudulent",
            },
            _ => Outcome::GatewayError {
                code,
                message: gateway_meaning(code).to_owned(),
            },
        }
    }

    /// The outcome of a parsed (and verified) response: `responseCode`, refined by the CV2 and
    /// postcode checks for a do-not-honour, with the gateway's own message on errors.
    pub fn from_response(fields: &Fields) -> Result<Self, ResponseError> {
        let raw = fields
            .get("responseCode")
            .ok_or(ResponseError::MissingResponseCode)?;
        let code = raw
            .trim()
            .parse::<u32>()
            .map_err(|_| ResponseError::InvalidResponseCode(raw.to_owned()))?;
        let not_matched = |check: &str| fields.get(check) == Some("not matched");
        Ok(match Outcome::from_code(code) {
            Outcome::Declined { .. } if code == DECLINED && not_matched("cv2Check") => {
                Outcome::Declined {
                    decline_code: "incorrect_cvc",
                }
            }
            Outcome::Declined { .. } if code == DECLINED && not_matched("postcodeCheck") => {
                Outcome::Declined {
                    decline_code: "incorrect_zip",
                }
            }
            Outcome::GatewayError { code, message } => Outcome::GatewayError {
                code,
                message: fields
                    .get("responseMessage")
                    .filter(|m| !m.trim().is_empty())
                    .map_or(message, str::to_owned),
            },
            outcome => outcome,
        })
    }

    /// The Stripe `decline_code` for a card error: the decline's own, or `call_issuer` for a
    /// referral. `None` for outcomes that are not the card being refused.
    pub fn decline_code(&self) -> Option<&'static str> {
        match self {
            Outcome::Declined { decline_code } => Some(decline_code),
            Outcome::Referred => Some("call_issuer"),
            _ => None,
        }
    }
}

/// Stripe's decline code for an issuer or acquirer refusal (a code below 65536).
fn issuer_decline_code(code: u32) -> &'static str {
    match code {
        4 | 7 => "pickup_card",
        5 => "do_not_honor",
        6 | 30 | 96 => "processing_error",
        12 | 57 | 58 => "transaction_not_allowed",
        13 => "invalid_amount",
        14 => "incorrect_number",
        19 => "reenter_transaction",
        41 => "lost_card",
        43 => "stolen_card",
        51 => "insufficient_funds",
        54 => "expired_card",
        55 => "incorrect_pin",
        59 => "fraudulent",
        61 => "card_velocity_exceeded",
        62 => "restricted_card",
        65 => "authentication_required",
        75 => "pin_try_exceeded",
        91 => "issuer_not_available",
        934 => "incorrect_cvc",
        _ => "generic_decline",
    }
}

/// What a gateway code (65536 and up) means: its own entry in the integration guide's table,
/// else the meaning of the range it falls in.
fn gateway_meaning(code: u32) -> &'static str {
    named_gateway_code(code).unwrap_or(match code {
        66048..=66303 | 66560..=66815 => "Missing request field",
        66304..=66559 | 66816..=67071 => "Invalid request field",
        65792..=65823 => "3-D Secure error",
        65824..=65855 => "Remote checkout error",
        65856..=65887 => "Risk check error",
        _ => "Gateway error",
    })
}

fn named_gateway_code(code: u32) -> Option<&'static str> {
    Some(match code {
        65536 => "Transaction in progress",
        65537 => "General error",
        65539 => "Invalid credentials",
        65540 => "Permission denied",
        65541 => "Action not allowed",
        65542 => "Request mismatch",
        65543 => "Request ambiguous",
        65544 => "Request malformed",
        65545 => "Merchant account suspended",
        65546 => "Currency not supported",
        65548 => "Database error",
        65549 => "Payment processor communications error",
        65550 => "Payment processor error",
        65552 => "Internal gateway error",
        65557 => "IP blocked",
        65558 => "Primary IP blocked",
        65559 => "Secondary IP blocked",
        65563 => "Request not supported",
        65564 => "Request expired",
        65565 => "Request retry",
        65573 => "Amounts do not tally",
        65576 => "Request cancelled",
        65792 => "3-D Secure in progress",
        65793 => "3-D Secure processing error",
        65796 => "3-D Secure unavailable",
        65797 => "3-D Secure enrolment check error",
        65800 => "3-D Secure authentication check error",
        65804 => "3-D Secure authentication successful",
        65858 => "Risk check required",
        66048 => "Missing request",
        66049 => "Missing merchantID",
        66055 => "Missing action",
        66056 => "Missing amount",
        66057 => "Missing currencyCode",
        66058 => "Missing cardNumber",
        66064 => "Missing cardCVV",
        66085 => "Missing xref",
        66086 => "Missing type",
        MISSING_SIGNATURE => "Missing signature",
        66305 => "Invalid merchantID",
        66311 => "Invalid action (or, on the simulator, an invalid test amount)",
        66312 => "Invalid amount",
        66341 => "Invalid xref",
        66342 => "Invalid type",
        INVALID_SIGNATURE => "Invalid signature",
        66358 => "Invalid captureDelay",
        66944 => "Invalid initiator",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declined(decline_code: &'static str) -> Outcome {
        Outcome::Declined { decline_code }
    }

    #[test]
    fn authorisation_codes_map_to_outcomes() {
        assert_eq!(Outcome::from_code(SUCCESS), Outcome::Approved);
        assert_eq!(Outcome::from_code(NO_REASON_TO_DECLINE), Outcome::Approved);
        assert_eq!(Outcome::from_code(REFERRED), Outcome::Referred);
        assert_eq!(Outcome::from_code(2), Outcome::Referred);
        assert_eq!(Outcome::from_code(KEEP_CARD), declined("pickup_card"));
        assert_eq!(Outcome::from_code(DECLINED), declined("do_not_honor"));
        assert_eq!(
            Outcome::from_code(SCA_REQUIRED),
            declined("authentication_required")
        );
        assert_eq!(Outcome::from_code(51), declined("insufficient_funds"));
        assert_eq!(Outcome::from_code(54), declined("expired_card"));
        assert_eq!(Outcome::from_code(14), declined("incorrect_number"));
        assert_eq!(Outcome::from_code(41), declined("lost_card"));
        assert_eq!(Outcome::from_code(43), declined("stolen_card"));
        assert_eq!(Outcome::from_code(91), declined("issuer_not_available"));
        assert_eq!(Outcome::from_code(96), declined("processing_error"));
        assert_eq!(Outcome::from_code(934), declined("incorrect_cvc"));
        assert_eq!(Outcome::from_code(292), declined("generic_decline"));
        assert_eq!(Outcome::from_code(65535), declined("generic_decline"));
    }

    #[test]
    fn gateway_codes_map_to_outcomes() {
        assert_eq!(
            Outcome::from_code(THREE_DS_REQUIRED),
            Outcome::ThreeDSecureRequired
        );
        assert_eq!(Outcome::from_code(65802), Outcome::ThreeDSecureRequired);
        assert_eq!(Outcome::from_code(65554), Outcome::Duplicate);
        assert_eq!(Outcome::from_code(65803), Outcome::AuthenticationFailed);
        assert_eq!(Outcome::from_code(65561), declined("card_not_supported"));
        assert_eq!(Outcome::from_code(65566), declined("testmode_decline"));
        assert_eq!(Outcome::from_code(65862), declined("fraudulent"));
        let error = |code: u32, message: &str| Outcome::GatewayError {
            code,
            message: message.to_owned(),
        };
        let unknown = |code: u32, message: &str| Outcome::Unknown {
            code,
            message: message.to_owned(),
        };
        assert_eq!(
            Outcome::from_code(65536),
            unknown(65536, "Transaction in progress")
        );
        assert_eq!(Outcome::from_code(65548), unknown(65548, "Database error"));
        assert_eq!(Outcome::from_code(65548).decline_code(), None);
        assert_eq!(
            Outcome::from_code(65539),
            error(65539, "Invalid credentials")
        );
        assert_eq!(Outcome::from_code(66087), error(66087, "Missing signature"));
        assert_eq!(Outcome::from_code(66343), error(66343, "Invalid signature"));
        assert_eq!(
            Outcome::from_code(66060),
            error(66060, "Missing request field")
        );
        assert_eq!(
            Outcome::from_code(66316),
            error(66316, "Invalid request field")
        );
        assert_eq!(
            Outcome::from_code(66900),
            error(66900, "Invalid request field")
        );
        assert_eq!(Outcome::from_code(65795), error(65795, "3-D Secure error"));
        assert_eq!(Outcome::from_code(90000), error(90000, "Gateway error"));
        assert!(matches!(
            Outcome::from_code(66311),
            Outcome::GatewayError { code: 66311, .. }
        ));
        assert!(matches!(
            Outcome::from_code(66312),
            Outcome::GatewayError { code: 66312, .. }
        ));
    }

    #[test]
    fn decline_codes_for_card_errors() {
        assert_eq!(
            Outcome::from_code(51).decline_code(),
            Some("insufficient_funds")
        );
        assert_eq!(Outcome::from_code(1).decline_code(), Some("call_issuer"));
        assert_eq!(Outcome::from_code(0).decline_code(), None);
        assert_eq!(Outcome::from_code(65802).decline_code(), None);
        assert_eq!(Outcome::from_code(65537).decline_code(), None);
    }

    #[test]
    fn responses_refine_do_not_honour_and_carry_the_gateway_message() {
        let response = |pairs: &[(&str, &str)]| -> Fields { pairs.iter().copied().collect() };
        assert_eq!(
            Outcome::from_response(&response(&[
                ("responseCode", "5"),
                ("cv2Check", "not matched")
            ])),
            Ok(declined("incorrect_cvc"))
        );
        assert_eq!(
            Outcome::from_response(&response(&[
                ("responseCode", "5"),
                ("cv2Check", "matched"),
                ("postcodeCheck", "not matched"),
            ])),
            Ok(declined("incorrect_zip"))
        );
        assert_eq!(
            Outcome::from_response(&response(&[("responseCode", "5"), ("cv2Check", "matched")])),
            Ok(declined("do_not_honor"))
        );
        // The CV2 result only explains a do-not-honour, not another decline.
        assert_eq!(
            Outcome::from_response(&response(&[
                ("responseCode", "51"),
                ("cv2Check", "not matched")
            ])),
            Ok(declined("insufficient_funds"))
        );
        assert_eq!(
            Outcome::from_response(&response(&[
                ("responseCode", "65544"),
                ("responseMessage", "MALFORMED REQUEST"),
            ])),
            Ok(Outcome::GatewayError {
                code: 65544,
                message: "MALFORMED REQUEST".into()
            })
        );
        assert_eq!(
            Outcome::from_response(&response(&[
                ("responseCode", "65544"),
                ("responseMessage", "")
            ])),
            Ok(Outcome::GatewayError {
                code: 65544,
                message: "Request malformed".into()
            })
        );
        assert_eq!(
            Outcome::from_response(&response(&[("responseCode", "0")])),
            Ok(Outcome::Approved)
        );
    }

    #[test]
    fn responses_without_a_usable_code_are_errors() {
        let response = |pairs: &[(&str, &str)]| -> Fields { pairs.iter().copied().collect() };
        assert_eq!(
            Outcome::from_response(&response(&[("responseMessage", "AUTHCODE:1")])),
            Err(ResponseError::MissingResponseCode)
        );
        assert_eq!(
            Outcome::from_response(&response(&[("responseCode", "")])),
            Err(ResponseError::InvalidResponseCode(String::new()))
        );
        assert_eq!(
            Outcome::from_response(&response(&[("responseCode", "-1")])),
            Err(ResponseError::InvalidResponseCode("-1".into()))
        );
        assert_eq!(
            Outcome::from_response(&response(&[("responseCode[x]", "0")])),
            Err(ResponseError::MissingResponseCode)
        );
    }

    #[test]
    fn the_captured_3ds_response_needs_3ds() {
        let fields = Fields::parse(
            b"responseCode=65802&responseMessage=3DS+AUTHENTICATION+REQUIRED&responseStatus=2",
        )
        .expect("parse");
        assert_eq!(
            Outcome::from_response(&fields),
            Ok(Outcome::ThreeDSecureRequired)
        );
    }
}
