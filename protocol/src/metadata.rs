//! Metadata: the merchant's own key-value pairs on an object, with Stripe's rules.
//!
//! Up to 50 keys, key names up to 40 characters without brackets, values up to 500 characters,
//! all stored as strings. On update the given keys are merged in; `metadata[k]=` (empty) removes
//! `k`, and `metadata=` (empty, or JSON `null`) clears everything. The lettings client keeps its
//! ledger id here, so these rules are part of the contract.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::ApiError;
use crate::params::{Field, Params};

pub type Metadata = BTreeMap<String, String>;

pub const MAX_KEYS: usize = 50;
pub const MAX_KEY_LEN: usize = 40;
pub const MAX_VALUE_LEN: usize = 500;

/// A metadata change read from a request: keys to set, keys to remove, or clear all first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataUpdate {
    pub clear: bool,
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
}

impl MetadataUpdate {
    /// Apply to `current`, enforcing the key limit on the result.
    pub fn apply(&self, current: &mut Metadata, param: &str) -> Result<(), ApiError> {
        if self.clear {
            current.clear();
        }
        for k in &self.remove {
            current.remove(k);
        }
        for (k, v) in &self.set {
            current.insert(k.clone(), v.clone());
        }
        if current.len() > MAX_KEYS {
            return Err(ApiError::invalid_param(
                "parameter_invalid",
                param,
                format!("Invalid {param}: an object can have at most {MAX_KEYS} metadata keys."),
            ));
        }
        Ok(())
    }
}

/// Read the `metadata` parameter.
pub fn take(params: &mut Params) -> Result<Option<MetadataUpdate>, ApiError> {
    let name = params.name("metadata");
    let mut obj = match params.object(&["metadata"])? {
        Field::Absent => return Ok(None),
        Field::Unset => {
            return Ok(Some(MetadataUpdate {
                clear: true,
                ..Default::default()
            }));
        }
        Field::Set(obj) => obj,
    };
    let mut update = MetadataUpdate::default();
    let keys = obj.keys();
    for key in keys {
        let param = format!("{name}[{key}]");
        if key.is_empty() || key.chars().count() > MAX_KEY_LEN || key.contains(['[', ']']) {
            return Err(ApiError::invalid_param(
                "parameter_invalid",
                &param,
                format!(
                    "Invalid metadata key {key:?}: keys must be 1 to {MAX_KEY_LEN} characters \
                     without square brackets."
                ),
            ));
        }
        match obj.take(&[key.as_str()])?.map(|(_, v)| v) {
            None | Some(Value::Null) => update.remove.push(key),
            Some(Value::String(s)) if s.is_empty() => update.remove.push(key),
            Some(Value::String(s)) => update.set.push((key, check_value(&param, s)?)),
            Some(Value::Number(n)) => update.set.push((key, n.to_string())),
            Some(Value::Bool(b)) => update.set.push((key, b.to_string())),
            Some(_) => {
                return Err(ApiError::invalid_param(
                    "parameter_invalid_string",
                    &param,
                    format!("Invalid metadata value for {param}: values must be strings."),
                ));
            }
        }
    }
    if update.set.len() > MAX_KEYS {
        return Err(ApiError::invalid_param(
            "parameter_invalid",
            &name,
            format!("Invalid {name}: an object can have at most {MAX_KEYS} metadata keys."),
        ));
    }
    Ok(Some(update))
}

fn check_value(param: &str, s: String) -> Result<String, ApiError> {
    if s.chars().count() > MAX_VALUE_LEN {
        return Err(ApiError::invalid_param(
            "parameter_invalid_string",
            param,
            format!("Invalid {param}: metadata values can be at most {MAX_VALUE_LEN} characters."),
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::parse_form;

    fn read(s: &str) -> Result<Option<MetadataUpdate>, ApiError> {
        let mut p = Params::new(parse_form(s.as_bytes()).expect("form"));
        take(&mut p)
    }

    #[test]
    fn merge_remove_and_clear() {
        let mut m = Metadata::new();
        m.insert("a".into(), "1".into());
        m.insert("b".into(), "2".into());
        read("metadata[b]=&metadata[c]=3")
            .expect("ok")
            .expect("some")
            .apply(&mut m, "metadata")
            .expect("apply");
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("a").map(String::as_str), Some("1"));
        assert_eq!(m.get("c").map(String::as_str), Some("3"));
        read("metadata=")
            .expect("ok")
            .expect("some")
            .apply(&mut m, "metadata")
            .expect("apply");
        assert!(m.is_empty());
    }

    #[test]
    fn limits_name_the_offending_key() {
        let long_key = "k".repeat(41);
        let e = read(&format!("metadata[{long_key}]=1")).expect_err("long key");
        assert!(
            e.param
                .as_deref()
                .is_some_and(|p| p.starts_with("metadata["))
        );
        let e = read(&format!("metadata[a]={}", "v".repeat(501))).expect_err("long value");
        assert_eq!(e.param.as_deref(), Some("metadata[a]"));
        let many: Vec<String> = (0..51).map(|i| format!("metadata[k{i}]=v")).collect();
        assert!(read(&many.join("&")).is_err());
        assert!(read("metadata=x").is_err());
    }
}
