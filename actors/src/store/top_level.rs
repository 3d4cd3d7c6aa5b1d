//! The few top-level fields of a record's JSON that a commit reads (its plain fields and list
//! filter values), found without parsing the rest.
//!
//! A commit writing a record of a filtered kind needs a handful of its top-level fields, but
//! parsing its whole JSON into a `serde_json::Value` builds a map, a string and a vector for
//! every nested member: for a receipt invoice (1.7 KB, its lines nested) that was most of
//! the cost of the plain fields and filters of a payment. [`object`] parses the JSON with
//! serde as far as its top level and builds only the members asked for; every other value is
//! passed over (`IgnoredAny`: checked, never built).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

/// The members of the JSON object `json` whose names `wanted` accepts, as a `Value::Object`:
/// what `serde_json::from_str` gives, less the other members (a repeated name keeps its last
/// value, as there). `Value::Null` when `json` is not an object or does not parse, as a
/// failed parse gives.
pub fn object(json: &str, wanted: impl Fn(&str) -> bool) -> Value {
    let mut de = serde_json::Deserializer::from_str(json);
    match Members(&wanted)
        .deserialize(&mut de)
        .and_then(|m| de.end().map(|()| m))
    {
        Ok(members) => Value::Object(members),
        Err(_) => Value::Null,
    }
}

/// The top level of an object, keeping the members `.0` wants.
struct Members<'f, F>(&'f F);

impl<'de, F: Fn(&str) -> bool> DeserializeSeed<'de> for Members<'_, F> {
    type Value = Map<String, Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: Fn(&str) -> bool> Visitor<'de> for Members<'_, F> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        while let Some(name) = map.next_key_seed(Name(self.0))? {
            match name {
                Some(name) => {
                    out.insert(name, map.next_value()?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// A member's name: `Some` (owned) if wanted, `None` (never copied) if not.
struct Name<'f, F>(&'f F);

impl<'de, F: Fn(&str) -> bool> DeserializeSeed<'de> for Name<'_, F> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<F: Fn(&str) -> bool> Visitor<'_> for Name<'_, F> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok((self.0)(name).then(|| name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a full parse gives, less the members not wanted.
    fn parsed(json: &str, wanted: &[&str]) -> Value {
        match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(m)) => Value::Object(
                m.into_iter()
                    .filter(|(k, _)| wanted.contains(&k.as_str()))
                    .collect(),
            ),
            _ => Value::Null,
        }
    }

    #[test]
    fn the_wanted_members_are_what_a_full_parse_gives() {
        let wanted = [
            "status", "customer", "created", "items", "deleted", "due_date",
        ];
        for json in [
            r#"{"id":"in_1","object":"invoice","status":"paid","created":1733000000}"#,
            r#" { "status" : "open" , "lines" : {"data":[{"a":"}]\"{["},[1,{"b":null}]]},
                  "customer":{"id":"cus_1","x":[]}, "due_date":null } "#,
            r#"{"items":{"data":[{"price":{"id":"price_1"}}]},"deleted":true,"created":-5}"#,
            r#"{"status":"a\"b\\","st\u0061tus2":1,"created":1.5e3}"#,
            r#"{"status":"x","status":"y"}"#,
            r#"{}"#,
            r#"{"other":{"status":"nested, not top level"}}"#,
            r#"{"status":"\u00e9t\u00e9 ☀"}"#,
        ] {
            assert_eq!(
                object(json, |k| wanted.contains(&k)),
                parsed(json, &wanted),
                "{json}"
            );
        }
    }

    #[test]
    fn anything_but_a_whole_object_is_null() {
        for json in [
            "in_01ABC",
            "null",
            "[1,2]",
            "",
            r#"{"status":"open""#,
            r#"{"status":"open"} x"#,
            r#"{"status" "open"}"#,
            r#"{"status":"open",}"#,
            r#"{"lines":{"data":[1,2}"#,
            r#"{"status":}"#,
            r#"{"x":tru,"status":"open"}"#,
        ] {
            assert_eq!(object(json, |_| true), Value::Null, "{json}");
        }
    }
}
