//! A gateway message: the ordered name=value fields of a request, response or callback.
//!
//! Order is part of the message. Root fields are sorted before hashing, but a record's
//! sub-fields (`threeDSRequest[…]`, `threeDSResponse[…]`) are hashed in the order they were sent,
//! and the 3-D Secure continuation must pass the ACS's fields on in the order received. So
//! [`Fields`] is an ordered list, never a map that might reorder.
//!
//! Names follow PHP's `parse_str`, which is how the gateway itself reads a body: a name
//! `root[sub]` is a sub-field of the record `root`, and a name seen twice keeps its first
//! position and takes its last value. Anything the gateway adds that we do not know is kept
//! as-is, because it is covered by the signature.

use std::fmt;

use super::encoding::{form_decode, push_php_urlencoded, split_name};

/// The most fields a body may hold (PHP's default `max_input_vars`). The gateway accepts 255
/// request fields and adds its own, so a legitimate message is far below this; the cap only
/// stops a hostile callback POST from making us build a huge message.
const MAX_FIELDS: usize = 1000;

/// Fields whose values never appear in `Debug` output.
const MASKED: [&str; 3] = ["cardNumber", "cardCVV", "merchantPwd"];

/// The value of a root field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// `name=value`
    Scalar(String),
    /// `name[sub]=value`, sub-fields in the order sent or received.
    Record(Vec<(String, String)>),
}

/// An ordered gateway message. `Debug` masks the card number, CVV and merchant password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Fields {
    entries: Vec<(String, FieldValue)>,
}

/// A form body the codec cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the form field {name:?} is not valid UTF-8 once decoded")]
    NotUtf8 { name: String },
    #[error("the form body has more than {MAX_FIELDS} fields")]
    TooManyFields,
}

impl Fields {
    pub fn new() -> Self {
        Self::default()
    }

    /// Read a form body (a gateway response, a callback, or a request at the sandbox gateway)
    /// in the order received. The `Content-Type` is not consulted: the gateway labels its
    /// URL-encoded responses `text/html`.
    pub fn parse(body: &[u8]) -> Result<Self, FormError> {
        let mut fields = Self::new();
        for (count, pair) in body
            .split(|&b| b == b'&')
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            if count >= MAX_FIELDS {
                return Err(FormError::TooManyFields);
            }
            let (raw_name, raw_value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &[][..]),
            };
            let name = form_decode(raw_name).map_err(|_| FormError::NotUtf8 {
                name: String::from_utf8_lossy(raw_name).into_owned(),
            })?;
            if name.is_empty() {
                continue; // PHP drops nameless pairs.
            }
            let value =
                form_decode(raw_value).map_err(|_| FormError::NotUtf8 { name: name.clone() })?;
            fields.insert(&name, value);
        }
        Ok(fields)
    }

    /// Set a field. `root[sub]` sets a sub-field of the record `root`, appending it if new. A
    /// field that already exists keeps its position and takes the new value.
    pub fn insert(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        let value = value.into();
        let (root, sub) = split_name(name);
        let existing = self.entries.iter_mut().find(|(n, _)| n == root);
        match (sub, existing) {
            (None, Some((_, slot))) => *slot = FieldValue::Scalar(value),
            (None, None) => self
                .entries
                .push((root.to_owned(), FieldValue::Scalar(value))),
            (Some(sub), Some((_, FieldValue::Record(items)))) => {
                match items.iter_mut().find(|(k, _)| k == sub) {
                    Some((_, slot)) => *slot = value,
                    None => items.push((sub.to_owned(), value)),
                }
            }
            (Some(sub), Some((_, slot))) => {
                *slot = FieldValue::Record(vec![(sub.to_owned(), value)]);
            }
            (Some(sub), None) => self.entries.push((
                root.to_owned(),
                FieldValue::Record(vec![(sub.to_owned(), value)]),
            )),
        }
        self
    }

    /// A scalar field's value, or a record sub-field's by `root[sub]`.
    pub fn get(&self, name: &str) -> Option<&str> {
        let (root, sub) = split_name(name);
        match (self.value(root)?, sub) {
            (FieldValue::Scalar(v), None) => Some(v),
            (FieldValue::Record(items), Some(sub)) => items
                .iter()
                .find(|(k, _)| k == sub)
                .map(|(_, v)| v.as_str()),
            _ => None,
        }
    }

    /// A record's sub-fields in order, e.g. `threeDSRequest` to post on to the ACS.
    pub fn record(&self, root: &str) -> Option<&[(String, String)]> {
        match self.value(root)? {
            FieldValue::Record(items) => Some(items),
            FieldValue::Scalar(_) => None,
        }
    }

    /// A root field's value, whichever kind it is.
    pub fn value(&self, root: &str) -> Option<&FieldValue> {
        self.entries.iter().find(|(n, _)| n == root).map(|(_, v)| v)
    }

    /// Remove a root field (a whole record, for a record).
    pub fn remove(&mut self, root: &str) -> Option<FieldValue> {
        let at = self.entries.iter().position(|(n, _)| n == root)?;
        Some(self.entries.remove(at).1)
    }

    /// Root fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &FieldValue)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// The number of root fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The form body, as PHP's `http_build_query` writes it: fields in order, record names as
    /// `root%5Bsub%5D`, line endings untouched (only the hash normalises them).
    pub fn encode(&self) -> String {
        encode_pairs(self.entries.iter().map(|(n, v)| (n.as_str(), v)))
    }
}

/// Write root fields as `name=value&…`, records flattened in their own order.
pub(crate) fn encode_pairs<'a>(entries: impl Iterator<Item = (&'a str, &'a FieldValue)>) -> String {
    // Room for a typical message at once rather than growing through reallocations.
    let mut out = String::with_capacity(1024);
    for (name, value) in entries {
        match value {
            FieldValue::Scalar(v) => push_pair(&mut out, name, None, v),
            FieldValue::Record(items) => {
                for (sub, v) in items {
                    push_pair(&mut out, name, Some(sub), v);
                }
            }
        }
    }
    out
}

/// Append `root=value` or `root[sub]=value`, brackets percent-encoded as PHP does.
fn push_pair(out: &mut String, root: &str, sub: Option<&str>, value: &str) {
    if !out.is_empty() {
        out.push('&');
    }
    push_php_urlencoded(out, root);
    if let Some(sub) = sub {
        push_php_urlencoded(out, "[");
        push_php_urlencoded(out, sub);
        push_php_urlencoded(out, "]");
    }
    out.push('=');
    push_php_urlencoded(out, value);
}

impl<K: AsRef<str>, V: Into<String>> FromIterator<(K, V)> for Fields {
    /// Build a message from `(name, value)` pairs, `root[sub]` names making records.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut fields = Self::new();
        for (name, value) in pairs {
            fields.insert(name.as_ref(), value);
        }
        fields
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in &self.entries {
            if MASKED.contains(&name.as_str()) {
                map.entry(name, &"****");
            } else {
                map.entry(name, value);
            }
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_keeps_order_and_records() {
        let body = b"responseCode=65802&threeDSRequest%5BthreeDSMethodData%5D=eyJ0&threeDSURL=\
                     https%3A%2F%2Facs.example%2F&threeDSRequest[creq]=x+y&orderRef=Test+%C2%A3";
        let fields = Fields::parse(body).expect("parse");
        let names: Vec<_> = fields.iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["responseCode", "threeDSRequest", "threeDSURL", "orderRef"]
        );
        assert_eq!(
            fields.record("threeDSRequest").expect("record"),
            [
                ("threeDSMethodData".to_owned(), "eyJ0".to_owned()),
                ("creq".to_owned(), "x y".to_owned())
            ]
        );
        assert_eq!(fields.get("threeDSRequest[creq]"), Some("x y"));
        assert_eq!(fields.get("threeDSURL"), Some("https://acs.example/"));
        assert_eq!(fields.get("orderRef"), Some("Test £"));
        assert_eq!(fields.get("threeDSRequest"), None);
        assert_eq!(fields.get("missing"), None);
    }

    #[test]
    fn parse_follows_php_for_odd_pairs() {
        let fields = Fields::parse(b"&a=1&&b&=x&a=2&c=p%3Dq=r").expect("parse");
        assert_eq!(fields.len(), 3);
        assert_eq!(fields.get("a"), Some("2"));
        assert_eq!(fields.get("b"), Some(""));
        assert_eq!(fields.get("c"), Some("p=q=r"));
        let names: Vec<_> = fields.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn parse_rejects_bad_utf8_and_floods() {
        assert_eq!(
            Fields::parse(b"orderRef=%FF"),
            Err(FormError::NotUtf8 {
                name: "orderRef".into()
            })
        );
        let flood = "a=1&".repeat(MAX_FIELDS + 1);
        assert_eq!(
            Fields::parse(flood.as_bytes()),
            Err(FormError::TooManyFields)
        );
        assert!(Fields::parse(b"").expect("empty").is_empty());
    }

    #[test]
    fn encode_matches_http_build_query() {
        let mut fields = Fields::new();
        fields
            .insert("merchantID", "100001")
            .insert("orderRef", "Signature Test ~*")
            .insert("threeDSResponse[cres]", "abc=")
            .insert("threeDSResponse[threeDSMethodData]", "")
            .insert("amount", "1001");
        assert_eq!(
            fields.encode(),
            "merchantID=100001&orderRef=Signature+Test+%7E%2A&threeDSResponse%5Bcres%5D=abc%3D\
             &threeDSResponse%5BthreeDSMethodData%5D=&amount=1001"
        );
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let fields: Fields = [
            (
                "customerAddress",
                "Flat 6 Primrose Rise\r\n347 Lavender Road",
            ),
            ("orderRef", "£10 & 100% = (a+b)!*'~"),
            ("threeDSRequest[threeDSMethodData]", "eyJ0aHJlZURT"),
            ("threeDSRequest[creq]", "second"),
            ("empty", ""),
            ("items[0][description]", "Tea"),
        ]
        .into_iter()
        .collect();
        let parsed = Fields::parse(fields.encode().as_bytes()).expect("parse");
        assert_eq!(parsed, fields);
        assert_eq!(parsed.encode(), fields.encode());
        assert_eq!(parsed.get("items[0][description]"), Some("Tea"));
    }

    #[test]
    fn insert_replaces_in_place_across_kinds() {
        let mut fields = Fields::new();
        fields.insert("a", "1").insert("b", "2").insert("a", "3");
        assert_eq!(fields.encode(), "a=3&b=2");
        fields.insert("a[x]", "4");
        assert_eq!(fields.encode(), "a%5Bx%5D=4&b=2");
        fields.insert("a[y]", "5").insert("a[x]", "6");
        assert_eq!(fields.encode(), "a%5Bx%5D=6&a%5By%5D=5&b=2");
        fields.insert("a", "7");
        assert_eq!(fields.encode(), "a=7&b=2");
        assert_eq!(fields.remove("a"), Some(FieldValue::Scalar("7".into())));
        assert_eq!(fields.remove("a"), None);
        assert_eq!(fields.encode(), "b=2");
    }

    #[test]
    fn debug_masks_card_data() {
        let fields: Fields = [
            ("cardNumber", "4929421234600821"),
            ("cardCVV", "356"),
            ("merchantPwd", "pw"),
        ]
        .into_iter()
        .collect();
        let shown = format!("{fields:?}");
        assert!(!shown.contains("4929") && !shown.contains("356") && !shown.contains("pw\""));
        assert!(shown.contains("cardNumber"));
    }
}
