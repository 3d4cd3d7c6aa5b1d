//! Test cards: what the simulated gateway knows about a card number, and the profile it keeps.
//!
//! A card number is read once, when a VERIFY or SALE carries it, and turned into a
//! [`CardProfile`]: scheme, type, mask, expiry, funding and a [`Behaviour`] that decides every
//! later authorisation. The profile is what an `xref` clones. The number itself, and the CVV,
//! are never kept: not in Redis, not in the ledger, not in a log line. The mask holds the first
//! six and last four digits, as Cardstream's `cardNumberMask` does, and the fingerprint is a
//! SHA-256 so a re-sent card can be compared without being stored.
//!
//! Two families of test cards are known:
//! - Stripe's test numbers, which behave by number (approve, decline, insufficient funds, CVC
//!   failure, 3-D Secure challenge, …) whatever the amount, so a Stripe-compatible client's
//!   own test suite runs unchanged;
//! - the Cardstream guide's test cards (§10.3), which follow the guide's test-amount table
//!   (§10.2) and simulate 3-D Secure by expiry month (§10.4).
//!
//! Any other Luhn-valid number is an unknown test card, declined as the real test gateway does.

use calmony_protocol::cardstream::Fields;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::UtcTime;

/// How a card answers an authorisation. Stored with the profile, so a card cloned by `xref`
/// keeps behaving as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Stripe's approving cards (4242…, 5555…, amex 3782…): every SALE approved.
    Approve,
    /// 4000000000000002: SALE declined without a reason Stripe names (`generic_decline`).
    Decline,
    /// 4000000000009995: SALE declined 51.
    InsufficientFunds,
    /// 4000000000009987: SALE declined 41 (lost card).
    LostCard,
    /// 4000000000009979: SALE declined 43 (stolen card).
    StolenCard,
    /// 4000000000006975: SALE declined 61 (velocity limit exceeded).
    VelocityExceeded,
    /// 4100000000000019: SALE declined 59 (the issuer suspects fraud).
    Fraudulent,
    /// 4000000000000069: SALE declined 54 although the expiry date is in the future.
    ExpiredCard,
    /// 4000000000000127: SALE declined 5 with `cv2Check=not matched`.
    IncorrectCvc,
    /// 4000000000000119: SALE fails with a processor error (65550).
    ProcessingError,
    /// 4000000000000341: VERIFY succeeds (the card can be saved) but every SALE is declined.
    DeclineAfterAttach,
    /// 4000002500003155, 4000000000003220: an ECOM SALE needs a 3-D Secure challenge.
    ThreeDsChallenge,
    /// The guide's test cards: the amount decides (§10.2), the expiry month decides 3-D Secure.
    TestAmounts,
    /// A number the gateway does not know: declined.
    Unknown,
}

/// What the gateway keeps of a card. Nothing here is the card number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardProfile {
    pub scheme: String,
    pub scheme_code: String,
    pub card_type: String,
    pub card_type_code: String,
    pub funding: String,
    /// `424242******4242`: the first six and last four digits.
    pub mask: String,
    pub last4: String,
    pub exp_month: u8,
    /// Two digits, as the wire carries it.
    pub exp_year: u8,
    pub behaviour: Behaviour,
    /// Lowercase hex SHA-256 of the digits, to recognise the same card when it is re-sent.
    pub fingerprint: String,
}

impl CardProfile {
    /// Whether the card's last valid month is before `now`'s month.
    pub fn expired(&self, now: &UtcTime) -> bool {
        let year = 2000 + i64::from(self.exp_year);
        (year, u32::from(self.exp_month)) < (now.year, now.month)
    }

    /// The response fields that describe the card.
    pub fn describe(&self, fields: &mut Fields) {
        fields
            .insert("cardNumberMask", self.mask.as_str())
            .insert("cardTypeCode", self.card_type_code.as_str())
            .insert("cardType", self.card_type.as_str())
            .insert("cardSchemeCode", self.scheme_code.as_str())
            .insert("cardScheme", self.scheme.as_str())
            .insert("cardExpiryMonth", format!("{:02}", self.exp_month))
            .insert("cardExpiryYear", format!("{:02}", self.exp_year));
    }
}

/// Why the card fields of a request cannot be read. Each maps to the gateway's
/// missing-field (66048 + n) or invalid-field (missing + 256) code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("Invalid cardNumber")]
    InvalidNumber,
    #[error("Missing cardExpiryMonth")]
    MissingExpiryMonth,
    #[error("Invalid cardExpiryMonth")]
    InvalidExpiryMonth,
    #[error("Missing cardExpiryYear")]
    MissingExpiryYear,
    #[error("Invalid cardExpiryYear")]
    InvalidExpiryYear,
}

impl CardError {
    pub fn response_code(self) -> u32 {
        match self {
            CardError::InvalidNumber => 66058 + 256,
            CardError::MissingExpiryMonth => 66059,
            CardError::InvalidExpiryMonth => 66059 + 256,
            CardError::MissingExpiryYear => 66060,
            CardError::InvalidExpiryYear => 66060 + 256,
        }
    }
}

/// The card a request carries, if it carries `cardNumber`: checked (digits, Luhn, expiry) and
/// reduced to its profile. The number goes out of scope here.
pub fn from_request(request: &Fields) -> Result<Option<CardProfile>, CardError> {
    let Some(raw) = request.get("cardNumber") else {
        return Ok(None);
    };
    let digits: String = raw.chars().filter(|c| *c != ' ').collect();
    if !(12..=19).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !calmony_protocol::card::luhn(&digits)
    {
        return Err(CardError::InvalidNumber);
    }
    let (exp_month, exp_year) = expiry(request)?.ok_or(CardError::MissingExpiryMonth)?;
    Ok(Some(profile(&digits, exp_month, exp_year)))
}

/// The expiry a request carries: `cardExpiryMonth` and `cardExpiryYear`, or `cardExpiryDate`
/// as `MMYY`. `None` when it carries neither (a SALE by `xref` keeps the cloned expiry).
pub fn expiry(request: &Fields) -> Result<Option<(u8, u8)>, CardError> {
    let month = request.get("cardExpiryMonth").filter(|m| !m.is_empty());
    let year = request.get("cardExpiryYear").filter(|y| !y.is_empty());
    if month.is_none()
        && year.is_none()
        && let Some(date) = request.get("cardExpiryDate").filter(|d| !d.is_empty())
    {
        return match (date.get(..2), date.get(2..)) {
            (Some(m), Some(y)) if date.len() == 4 => Ok(Some((
                parse_month(m).ok_or(CardError::InvalidExpiryMonth)?,
                parse_year(y).ok_or(CardError::InvalidExpiryYear)?,
            ))),
            _ => Err(CardError::InvalidExpiryMonth),
        };
    }
    match (month, year) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(CardError::MissingExpiryMonth),
        (Some(_), None) => Err(CardError::MissingExpiryYear),
        (Some(m), Some(y)) => Ok(Some((
            parse_month(m).ok_or(CardError::InvalidExpiryMonth)?,
            parse_year(y).ok_or(CardError::InvalidExpiryYear)?,
        ))),
    }
}

fn parse_month(text: &str) -> Option<u8> {
    let month: u8 = digits_only(text, 2)?.parse().ok()?;
    (1..=12).contains(&month).then_some(month)
}

/// Two digits, or four (the last two are kept).
fn parse_year(text: &str) -> Option<u8> {
    let text = match text.len() {
        4 => text.get(2..)?,
        _ => digits_only(text, 2)?,
    };
    digits_only(text, 2)?.parse().ok()
}

fn digits_only(text: &str, max: usize) -> Option<&str> {
    (!text.is_empty() && text.len() <= max && text.bytes().all(|b| b.is_ascii_digit()))
        .then_some(text)
}

/// The card kinds the simulator names, with Cardstream's type and scheme codes.
#[derive(Debug, Clone, Copy)]
enum Kind {
    VisaCredit,
    VisaDebit,
    VisaElectron,
    MastercardCredit,
    MastercardDebit,
    Maestro,
    Amex,
    Jcb,
    Diners,
    Discover,
    UnionPay,
    Other,
}

impl Kind {
    /// `(cardType, cardTypeCode, cardScheme, cardSchemeCode, funding)`.
    fn names(
        self,
    ) -> (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    ) {
        match self {
            Kind::VisaCredit => ("Visa Credit", "VC", "Visa", "VC", "credit"),
            Kind::VisaDebit => ("Visa Debit", "VD", "Visa", "VC", "debit"),
            Kind::VisaElectron => ("Visa Electron", "EL", "Visa", "VC", "debit"),
            Kind::MastercardCredit => ("Mastercard Credit", "MC", "Mastercard", "MC", "credit"),
            Kind::MastercardDebit => ("Mastercard Debit", "MD", "Mastercard", "MC", "debit"),
            Kind::Maestro => ("Maestro", "MA", "Mastercard", "MC", "debit"),
            Kind::Amex => ("American Express", "AM", "American Express", "AM", "credit"),
            Kind::Jcb => ("JCB", "JC", "JCB", "JC", "credit"),
            Kind::Diners => ("Diners Club", "DC", "Diners Club", "DI", "credit"),
            Kind::Discover => ("Discover", "DS", "Discover", "DS", "credit"),
            Kind::UnionPay => ("China UnionPay", "CU", "China UnionPay", "CU", "credit"),
            Kind::Other => ("Unknown", "XX", "Unknown", "XX", "unknown"),
        }
    }

    /// The kind of a number the simulator does not list, from its leading digits.
    fn of_unlisted(digits: &str) -> Kind {
        match calmony_protocol::card::brand(digits) {
            "visa" => Kind::VisaCredit,
            "mastercard" => Kind::MastercardCredit,
            "amex" => Kind::Amex,
            "jcb" => Kind::Jcb,
            "diners" => Kind::Diners,
            "discover" => Kind::Discover,
            "unionpay" => Kind::UnionPay,
            _ => Kind::Other,
        }
    }
}

/// Every number the simulator knows.
const TEST_CARDS: &[(&str, Kind, Behaviour)] = &[
    // Stripe's test numbers: the number decides.
    ("4242424242424242", Kind::VisaCredit, Behaviour::Approve),
    ("4111111111111111", Kind::VisaCredit, Behaviour::Approve),
    (
        "5555555555554444",
        Kind::MastercardCredit,
        Behaviour::Approve,
    ),
    (
        "2223003122003222",
        Kind::MastercardCredit,
        Behaviour::Approve,
    ),
    (
        "5200828282828210",
        Kind::MastercardDebit,
        Behaviour::Approve,
    ),
    ("4000056655665556", Kind::VisaDebit, Behaviour::Approve),
    ("378282246310005", Kind::Amex, Behaviour::Approve),
    ("4000000000000002", Kind::VisaCredit, Behaviour::Decline),
    (
        "4000000000009995",
        Kind::VisaCredit,
        Behaviour::InsufficientFunds,
    ),
    ("4000000000009987", Kind::VisaCredit, Behaviour::LostCard),
    ("4000000000009979", Kind::VisaCredit, Behaviour::StolenCard),
    (
        "4000000000006975",
        Kind::VisaCredit,
        Behaviour::VelocityExceeded,
    ),
    ("4100000000000019", Kind::VisaCredit, Behaviour::Fraudulent),
    ("4000000000000069", Kind::VisaCredit, Behaviour::ExpiredCard),
    (
        "4000000000000127",
        Kind::VisaCredit,
        Behaviour::IncorrectCvc,
    ),
    (
        "4000000000000119",
        Kind::VisaCredit,
        Behaviour::ProcessingError,
    ),
    (
        "4000000000000341",
        Kind::VisaCredit,
        Behaviour::DeclineAfterAttach,
    ),
    (
        "4000002500003155",
        Kind::VisaCredit,
        Behaviour::ThreeDsChallenge,
    ),
    (
        "4000000000003220",
        Kind::VisaCredit,
        Behaviour::ThreeDsChallenge,
    ),
    // The Cardstream guide's test cards (§10.3): the amount decides.
    ("4929421234600821", Kind::VisaCredit, Behaviour::TestAmounts),
    ("4543059999999982", Kind::VisaCredit, Behaviour::TestAmounts),
    ("4543059999999990", Kind::VisaCredit, Behaviour::TestAmounts),
    ("4539791001730106", Kind::VisaDebit, Behaviour::TestAmounts),
    ("4462000000000003", Kind::VisaDebit, Behaviour::TestAmounts),
    (
        "4917480000000008",
        Kind::VisaElectron,
        Behaviour::TestAmounts,
    ),
    (
        "5301250070000191",
        Kind::MastercardCredit,
        Behaviour::TestAmounts,
    ),
    (
        "5413339000001000",
        Kind::MastercardCredit,
        Behaviour::TestAmounts,
    ),
    (
        "5434849999999951",
        Kind::MastercardCredit,
        Behaviour::TestAmounts,
    ),
    (
        "5434849999999993",
        Kind::MastercardCredit,
        Behaviour::TestAmounts,
    ),
    (
        "5573471234567898",
        Kind::MastercardDebit,
        Behaviour::TestAmounts,
    ),
    ("6759015050123445002", Kind::Maestro, Behaviour::TestAmounts),
    ("6759016800000120097", Kind::Maestro, Behaviour::TestAmounts),
    ("3540599999991047", Kind::Jcb, Behaviour::TestAmounts),
    ("374245455400001", Kind::Amex, Behaviour::TestAmounts),
    ("36432685260294", Kind::Diners, Behaviour::TestAmounts),
    ("4012001037141112", Kind::VisaCredit, Behaviour::TestAmounts),
];

/// Every test card number, for tests that prove none of them reaches storage.
pub fn known_numbers() -> impl Iterator<Item = &'static str> {
    TEST_CARDS.iter().map(|(number, _, _)| *number)
}

fn profile(digits: &str, exp_month: u8, exp_year: u8) -> CardProfile {
    let (kind, behaviour) = TEST_CARDS
        .iter()
        .find(|(number, _, _)| *number == digits)
        .map_or(
            (Kind::of_unlisted(digits), Behaviour::Unknown),
            |(_, k, b)| (*k, *b),
        );
    let (card_type, card_type_code, scheme, scheme_code, funding) = kind.names();
    let head = digits.get(..6).unwrap_or_default();
    let last4 = digits
        .get(digits.len().saturating_sub(4)..)
        .unwrap_or_default();
    let hidden = digits.len().saturating_sub(head.len() + last4.len());
    CardProfile {
        scheme: scheme.to_owned(),
        scheme_code: scheme_code.to_owned(),
        card_type: card_type.to_owned(),
        card_type_code: card_type_code.to_owned(),
        funding: funding.to_owned(),
        mask: format!("{head}{}{last4}", "*".repeat(hidden)),
        last4: last4.to_owned(),
        exp_month,
        exp_year,
        behaviour,
        fingerprint: fingerprint(digits),
    }
}

/// The SHA-256 of a card number's digits (spaces removed), in lowercase hex.
pub fn fingerprint(number: &str) -> String {
    let digits: String = number.chars().filter(|c| *c != ' ').collect();
    hex::encode(Sha256::digest(digits.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(number: &str, month: &str, year: &str) -> Result<Option<CardProfile>, CardError> {
        let fields: Fields = [
            ("cardNumber", number),
            ("cardExpiryMonth", month),
            ("cardExpiryYear", year),
        ]
        .into_iter()
        .collect();
        from_request(&fields)
    }

    #[test]
    fn every_test_card_passes_luhn() {
        for number in known_numbers() {
            assert!(calmony_protocol::card::luhn(number), "{number}");
        }
    }

    #[test]
    fn profiles_mask_and_name_the_card() {
        let visa = card("4242 4242 4242 4242", "12", "30")
            .expect("valid")
            .expect("card");
        assert_eq!(visa.mask, "424242******4242");
        assert_eq!(visa.last4, "4242");
        assert_eq!(
            (visa.card_type.as_str(), visa.card_type_code.as_str()),
            ("Visa Credit", "VC")
        );
        assert_eq!(visa.behaviour, Behaviour::Approve);
        assert_eq!(visa.fingerprint, fingerprint("4242424242424242"));
        let amex = card("378282246310005", "1", "2031")
            .expect("valid")
            .expect("card");
        assert_eq!(amex.mask, "378282*****0005");
        assert_eq!((amex.exp_month, amex.exp_year), (1, 31));
        assert_eq!(amex.card_type_code, "AM");
        let debit = card("5200828282828210", "1", "31")
            .expect("valid")
            .expect("card");
        assert_eq!(debit.card_type, "Mastercard Debit");
        assert_eq!(debit.funding, "debit");
        let guide = card("4929421234600821", "12", "31")
            .expect("valid")
            .expect("card");
        assert_eq!(guide.behaviour, Behaviour::TestAmounts);
        let unknown = card("4000000000000010", "12", "31")
            .expect("valid")
            .expect("card");
        assert_eq!(unknown.behaviour, Behaviour::Unknown);
        assert_eq!(unknown.scheme, "Visa");
    }

    #[test]
    fn bad_card_fields_name_the_field() {
        assert_eq!(
            card("4242424242424241", "12", "30"),
            Err(CardError::InvalidNumber)
        );
        assert_eq!(card("4242-4242", "12", "30"), Err(CardError::InvalidNumber));
        assert_eq!(
            card("4242424242424242", "13", "30"),
            Err(CardError::InvalidExpiryMonth)
        );
        assert_eq!(
            card("4242424242424242", "12", "3x"),
            Err(CardError::InvalidExpiryYear)
        );
        assert_eq!(
            card("4242424242424242", "", "30"),
            Err(CardError::MissingExpiryMonth)
        );
        assert_eq!(
            card("4242424242424242", "12", ""),
            Err(CardError::MissingExpiryYear)
        );
        assert_eq!(CardError::InvalidNumber.response_code(), 66314);
        let date: Fields = [
            ("cardNumber", "4242424242424242"),
            ("cardExpiryDate", "0931"),
        ]
        .into_iter()
        .collect();
        let profile = from_request(&date).expect("valid").expect("card");
        assert_eq!((profile.exp_month, profile.exp_year), (9, 31));
        assert_eq!(from_request(&Fields::new()), Ok(None));
    }

    #[test]
    fn expiry_is_the_end_of_the_month() {
        let profile = card("4242424242424242", "3", "26")
            .expect("valid")
            .expect("card");
        let at = |year, month| UtcTime {
            year,
            month,
            day: 31,
            hour: 23,
            minute: 59,
            second: 59,
        };
        assert!(!profile.expired(&at(2026, 3)));
        assert!(profile.expired(&at(2026, 4)));
        assert!(!profile.expired(&at(2025, 12)));
    }
}
