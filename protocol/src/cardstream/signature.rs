//! Message signing: how the gateway and we prove a message came from someone holding the
//! merchant's secret phrase.
//!
//! The signature is the lowercase hex SHA-512 of a canonical string with the secret appended
//! (no separator, no HMAC). The canonical string is the message re-encoded with PHP's rules:
//! root fields sorted by the bytes of their names (so `aZ` < `a[…]` < `aa`), each record's
//! sub-fields in the order sent, and CRLF, LFCR and CR turned into LF *after* encoding. The
//! `signature` field itself is never hashed.
//!
//! Verification re-encodes the decoded fields rather than hashing the raw body: that is the
//! method proven against a captured gateway response, and it lets a message be checked however
//! it arrived (Direct response, redirect POST, callback).
//!
//! A *partial* signature, `<hex>|name1,name2`, covers only the listed root fields; the PHP SDK
//! uses it for hosted forms so the browser may add a submit button's value. Anything outside the
//! list can have been changed by whoever relayed the message, so [`verify`] says which fields it
//! covered and the caller must not trust the others.

use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use super::encoding::normalise_line_endings;
use super::message::{FieldValue, Fields, encode_pairs};

/// The field that carries the signature.
pub const SIGNATURE_FIELD: &str = "signature";

/// Why a message is not verified. The three cases are the SDKs' three messages, kept apart
/// because each points at a different misconfiguration; all three mean "do not act on this".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The message is signed but we hold no secret: the gateway account has one we lack.
    #[error("the message is signed but no secret is configured to check it")]
    UnexpectedSignature,
    /// No signature arrived: the account has no secret, or someone stripped it.
    #[error("the message carries no signature")]
    MissingSignature,
    /// The hash does not match: a wrong secret, or the message was altered.
    #[error("the message signature does not match its fields")]
    Mismatch,
}

/// Which fields a verified signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// Every field of the message.
    All,
    /// Only these root fields (a partial signature); the rest are unauthenticated.
    Only(Vec<String>),
}

impl Coverage {
    /// Whether the root field `name` is covered by the signature.
    pub fn covers(&self, name: &str) -> bool {
        match self {
            Coverage::All => true,
            Coverage::Only(names) => names.iter().any(|n| n == name),
        }
    }
}

/// The signature of `fields` under `secret`: 128 lowercase hex digits, followed for a partial
/// signature by `|` and the names of the signed root fields present, in message order (as the
/// PHP SDK writes them). An empty `partial` list means a full signature, as in PHP.
pub fn sign(fields: &Fields, secret: &str, partial: Option<&[&str]>) -> String {
    let partial = partial.filter(|names| !names.is_empty());
    let selected: Vec<&str> = fields
        .iter()
        .map(|(name, _)| name)
        .filter(|name| partial.is_none_or(|names| names.contains(name)))
        .collect();
    let mut signature = digest(fields, secret, partial);
    if partial.is_some() && !selected.is_empty() {
        signature.push('|');
        signature.push_str(&selected.join(","));
    }
    signature
}

/// Check the `signature` field of a received message against `secret` (`None` or `""` when the
/// account has no secret), in constant time. A partial signature is honoured, and the
/// [`Coverage`] says so: the caller must only act on covered fields.
///
/// Without a secret nothing can be verified, so there is no `Ok` without one: an unsigned
/// message is [`SignatureError::MissingSignature`] either way.
pub fn verify(fields: &Fields, secret: Option<&str>) -> Result<Coverage, SignatureError> {
    let secret = secret.filter(|s| !s.is_empty());
    let signature = match fields.value(SIGNATURE_FIELD) {
        None => None,
        Some(FieldValue::Scalar(s)) if s.is_empty() => None,
        Some(value) => Some(value),
    };
    let (secret, signature) = match (secret, signature) {
        (None, Some(_)) => return Err(SignatureError::UnexpectedSignature),
        (_, None) => return Err(SignatureError::MissingSignature),
        (Some(secret), Some(FieldValue::Scalar(signature))) => (secret, signature),
        (Some(_), Some(FieldValue::Record(_))) => return Err(SignatureError::Mismatch),
    };
    let (hash, names) = match signature.split_once('|') {
        Some((hash, list)) => (hash, list.split(',').filter(|n| !n.is_empty()).collect()),
        None => (signature.as_str(), Vec::new()),
    };
    let partial = (!names.is_empty()).then_some(names.as_slice());
    let expected = digest(fields, secret, partial);
    if bool::from(expected.as_bytes().ct_eq(hash.as_bytes())) {
        Ok(match partial {
            None => Coverage::All,
            Some(names) => Coverage::Only(names.iter().map(|n| (*n).to_owned()).collect()),
        })
    } else {
        Err(SignatureError::Mismatch)
    }
}

impl Fields {
    /// Sign the message for sending: drop any old `signature`, then append the new one last.
    pub fn add_signature(&mut self, secret: &str, partial: Option<&[&str]>) -> &mut Self {
        self.remove(SIGNATURE_FIELD);
        let signature = sign(self, secret, partial);
        self.insert(SIGNATURE_FIELD, signature)
    }
}

/// The hex digest alone, over every field or the listed ones.
fn digest(fields: &Fields, secret: &str, partial: Option<&[&str]>) -> String {
    let canonical = canonical_string(fields, partial);
    let mut hasher = Sha512::new();
    hasher.update(canonical.as_bytes());
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

/// The string that is hashed, before the secret is appended.
fn canonical_string(fields: &Fields, partial: Option<&[&str]>) -> String {
    let mut signed: Vec<(&str, &FieldValue)> = fields
        .iter()
        .filter(|(name, _)| *name != SIGNATURE_FIELD)
        .filter(|(name, _)| partial.is_none_or(|names| names.contains(name)))
        .collect();
    // Stable, by root name only: record sub-fields keep their order.
    signed.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    normalise_line_endings(encode_pairs(signed.into_iter()))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    const VECTORS: &str = include_str!("testdata/signature_vectors.json");

    struct Vector {
        name: String,
        secret: String,
        fields: Fields,
        canonical: String,
        signature: String,
    }

    /// The vectors file: fields are `{name, value}` or `{name, record: [[sub, value], …]}`.
    fn vectors() -> Vec<Vector> {
        let doc: Value = serde_json::from_str(VECTORS).expect("vectors file is JSON");
        let text = |v: &Value, key: &str| v[key].as_str().expect(key).to_owned();
        doc["vectors"]
            .as_array()
            .expect("vectors array")
            .iter()
            .map(|v| {
                let mut fields = Fields::new();
                for field in v["fields"].as_array().expect("fields array") {
                    let name = text(field, "name");
                    match field.get("record") {
                        Some(record) => {
                            for pair in record.as_array().expect("record array") {
                                let sub = pair[0].as_str().expect("sub-field name");
                                let value = pair[1].as_str().expect("sub-field value");
                                fields.insert(&format!("{name}[{sub}]"), value);
                            }
                        }
                        None => {
                            fields.insert(&name, text(field, "value"));
                        }
                    }
                }
                assert_eq!(
                    fields.len(),
                    v["fields"].as_array().map_or(0, Vec::len),
                    "{}: a root field was merged",
                    text(v, "name")
                );
                Vector {
                    name: text(v, "name"),
                    secret: text(v, "secret"),
                    fields,
                    canonical: text(v, "canonical_string"),
                    signature: text(v, "signature"),
                }
            })
            .collect()
    }

    #[test]
    fn there_are_eleven_vectors() {
        assert_eq!(vectors().len(), 11);
    }

    #[test]
    fn every_vector_signs_to_its_published_hash() {
        for v in vectors() {
            assert_eq!(
                canonical_string(&v.fields, None),
                v.canonical,
                "{}: canonical",
                v.name
            );
            assert_eq!(
                sign(&v.fields, &v.secret, None),
                v.signature,
                "{}: signature",
                v.name
            );
        }
    }

    #[test]
    fn every_vector_verifies_after_a_trip_over_the_wire() {
        for v in vectors() {
            let mut fields = v.fields.clone();
            fields.add_signature(&v.secret, None);
            assert_eq!(
                fields.get(SIGNATURE_FIELD),
                Some(v.signature.as_str()),
                "{}",
                v.name
            );
            let received = Fields::parse(fields.encode().as_bytes()).expect("parse");
            assert_eq!(
                verify(&received, Some(&v.secret)),
                Ok(Coverage::All),
                "{}",
                v.name
            );
        }
    }

    #[test]
    fn every_canonical_string_parses_back_to_the_same_hash() {
        // The canonical string is itself a form body, already sorted and normalised.
        for v in vectors() {
            let parsed = Fields::parse(v.canonical.as_bytes()).expect("parse");
            assert_eq!(sign(&parsed, &v.secret, None), v.signature, "{}", v.name);
        }
    }

    #[test]
    fn real_gateway_response_verifies() {
        let v = vectors()
            .into_iter()
            .find(|v| v.name == "real-response-65802")
            .expect("vector");
        let mut body = v.fields.encode();
        body.push_str("&signature=");
        body.push_str(&v.signature);
        let received = Fields::parse(body.as_bytes()).expect("parse");
        assert_eq!(received.get("responseCode"), Some("65802"));
        assert!(received.get("threeDSRequest[threeDSMethodData]").is_some());
        assert_eq!(verify(&received, Some("pass")), Ok(Coverage::All));
        assert_eq!(
            verify(&received, Some("Circle4Take40Idea")),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn record_sub_field_order_changes_the_hash() {
        let v = vectors()
            .into_iter()
            .find(|v| v.name == "sdk-3ds-continuation")
            .expect("vector");
        assert!(v.signature.starts_with("b7700a"));
        let swapped: Fields = [
            ("threeDSRef", "AAAAAAAAA"),
            ("threeDSResponse[PaRes]", "PPPPPPPPP"),
            ("threeDSResponse[MD]", "MMMMMMMMM"),
            ("threeDSResponse[submit]", "Submit"),
            ("merchantID", "100856"),
        ]
        .into_iter()
        .collect();
        let signature = sign(&swapped, &v.secret, None);
        assert!(signature.starts_with("c8a5c"), "{signature}");
    }

    #[test]
    fn root_order_does_not_change_the_hash() {
        let forward: Fields = [("a", "one"), ("b", "two")].into_iter().collect();
        let backward: Fields = [("b", "two"), ("a", "one")].into_iter().collect();
        assert_eq!(sign(&forward, "pass", None), sign(&backward, "pass", None));
    }

    #[test]
    fn the_signature_field_is_never_hashed() {
        let plain: Fields = [("a", "one"), ("b", "two")].into_iter().collect();
        let mut signed = plain.clone();
        signed.insert(SIGNATURE_FIELD, "anything");
        assert_eq!(sign(&signed, "pass", None), sign(&plain, "pass", None));
        // Re-signing replaces the old signature and puts it last.
        signed.insert("c", "three").add_signature("pass", None);
        let names: Vec<_> = signed.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "b", "c", SIGNATURE_FIELD]);
        assert_eq!(verify(&signed, Some("pass")), Ok(Coverage::All));
    }

    #[test]
    fn partial_signature_covers_only_the_listed_fields() {
        let mut fields: Fields = [
            ("merchantID", "100001"),
            ("amount", "1001"),
            ("action", "SALE"),
        ]
        .into_iter()
        .collect();
        let signature = sign(&fields, "secret", Some(&["amount", "merchantID", "absent"]));
        let only: Fields = [("merchantID", "100001"), ("amount", "1001")]
            .into_iter()
            .collect();
        // The suffix lists the fields present, in message order.
        assert_eq!(
            signature,
            format!("{}|merchantID,amount", sign(&only, "secret", None))
        );

        fields.insert(SIGNATURE_FIELD, signature);
        fields.insert("submit", "Pay Now"); // added by the browser
        fields.insert("action", "REFUND"); // unsigned, so nobody vouches for it
        let coverage = verify(&fields, Some("secret")).expect("verifies");
        assert_eq!(
            coverage,
            Coverage::Only(vec!["merchantID".into(), "amount".into()])
        );
        assert!(coverage.covers("amount"));
        assert!(!coverage.covers("action"));

        fields.insert("amount", "1");
        assert_eq!(
            verify(&fields, Some("secret")),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn partial_list_cannot_be_widened_or_narrowed() {
        let mut fields: Fields = [("a", "1"), ("b", "2")].into_iter().collect();
        let signature = sign(&fields, "secret", Some(&["a"]));
        let hash = signature.split('|').next().expect("hash").to_owned();
        for forged in [format!("{hash}|a,b"), format!("{hash}|b"), hash.clone()] {
            fields.insert(SIGNATURE_FIELD, forged.as_str());
            assert_eq!(
                verify(&fields, Some("secret")),
                Err(SignatureError::Mismatch),
                "{forged}"
            );
        }
    }

    #[test]
    fn empty_partial_list_is_a_full_signature() {
        let fields: Fields = [("a", "1"), ("b", "2")].into_iter().collect();
        assert_eq!(sign(&fields, "s", Some(&[])), sign(&fields, "s", None));
        assert_eq!(sign(&fields, "s", Some(&["absent"])).len(), 128);
    }

    #[test]
    fn a_tampered_field_fails_verification() {
        let mut fields: Fields = [
            ("merchantID", "100001"),
            ("responseCode", "5"),
            ("threeDSRequest[creq]", "abc"),
        ]
        .into_iter()
        .collect();
        fields.add_signature("secret", None);
        assert_eq!(verify(&fields, Some("secret")), Ok(Coverage::All));

        let mut altered = fields.clone();
        altered.insert("responseCode", "0");
        assert_eq!(
            verify(&altered, Some("secret")),
            Err(SignatureError::Mismatch)
        );

        let mut altered = fields.clone();
        altered.insert("threeDSRequest[creq]", "abd");
        assert_eq!(
            verify(&altered, Some("secret")),
            Err(SignatureError::Mismatch)
        );

        let mut added = fields.clone();
        added.insert("extra", "");
        assert_eq!(
            verify(&added, Some("secret")),
            Err(SignatureError::Mismatch)
        );

        assert_eq!(
            verify(&fields, Some("other")),
            Err(SignatureError::Mismatch)
        );

        let mut upper = fields.clone();
        let shouted = fields.get(SIGNATURE_FIELD).expect("signed").to_uppercase();
        upper.insert(SIGNATURE_FIELD, shouted);
        assert_eq!(
            verify(&upper, Some("secret")),
            Err(SignatureError::Mismatch)
        );

        let mut truncated = fields.clone();
        truncated.insert(SIGNATURE_FIELD, "da0acd2c");
        assert_eq!(
            verify(&truncated, Some("secret")),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_signature_and_missing_secret_are_told_apart() {
        let unsigned: Fields = [("responseCode", "0")].into_iter().collect();
        let mut signed = unsigned.clone();
        signed.add_signature("secret", None);

        assert_eq!(
            verify(&signed, None),
            Err(SignatureError::UnexpectedSignature)
        );
        assert_eq!(
            verify(&signed, Some("")),
            Err(SignatureError::UnexpectedSignature)
        );
        assert_eq!(
            verify(&unsigned, Some("secret")),
            Err(SignatureError::MissingSignature)
        );
        assert_eq!(
            verify(&unsigned, None),
            Err(SignatureError::MissingSignature)
        );

        let mut blank = unsigned.clone();
        blank.insert(SIGNATURE_FIELD, "");
        assert_eq!(
            verify(&blank, Some("secret")),
            Err(SignatureError::MissingSignature)
        );

        let mut record = unsigned.clone();
        record.insert("signature[x]", "y");
        assert_eq!(
            verify(&record, Some("secret")),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn line_endings_do_not_change_the_hash() {
        let hash = |text: &str| {
            let fields: Fields = [("key", text)].into_iter().collect();
            sign(&fields, "pass", None)
        };
        assert_eq!(hash("a\r\nb"), hash("a\nb"));
        assert_eq!(hash("a\n\rb"), hash("a\nb"));
        assert_eq!(hash("a\rb"), hash("a\nb"));
        assert_ne!(hash("a\r\n\nb"), hash("a\nb"));
        assert_ne!(hash("a%0Db"), hash("a\nb"));
    }
}
