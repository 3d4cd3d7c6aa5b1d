//! A stored record as read back: its version and JSON, and what an API read takes with it.

use super::error::StoreError;
use super::packed;

/// A plain field as Redis answered it, as text: taken as it is when it is UTF-8 (it always is
/// when the daemon wrote it), else with the bad bytes replaced.
pub(crate) fn lossy(field: Vec<u8>) -> String {
    String::from_utf8(field).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A stored `json` value as text (packed events decoded; see [`packed`]).
pub fn text(key: &str, value: Vec<u8>) -> Result<String, StoreError> {
    packed::text(value).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// A record as every API read takes it: with `internal` (a payment intent's attempt and
/// challenge) and `xref` (a card's gateway token). Reading both for every object lets one
/// read, the key check's, serve whichever handler the request reaches.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub record: Record,
    pub internal: Option<String>,
    pub xref: Option<String>,
}

/// A [`Fetched`] as Redis answered it (`v`, `json`, `internal`, `xref`), not yet decoded: the
/// key check reads the objects a request names before the handler says which it wants, so
/// decoding (a packed record's decompression) waits for [`Unread::decode`].
#[derive(Debug, Clone, Default)]
pub struct Unread(pub [Option<Vec<u8>>; 4]);

impl Unread {
    /// The fields in the order they are read.
    pub const FIELDS: [&str; 4] = ["v", "json", "internal", "xref"];

    /// The record's version, if it was there.
    pub fn version(&self) -> Option<u64> {
        std::str::from_utf8(self.0[0].as_deref()?)
            .ok()?
            .parse()
            .ok()
    }

    /// The record at `key`, if it exists.
    pub fn decode(self, key: &str) -> Result<Option<Fetched>, StoreError> {
        let [v, json, internal, xref] = self.0;
        Ok(Record::from_fields(key, v, json)?.map(|record| Fetched {
            record,
            internal: internal.map(lossy),
            xref: xref.map(lossy),
        }))
    }
}

/// A stored record: its version and its JSON.
#[derive(Debug, Clone)]
pub struct Record {
    pub version: u64,
    pub json: String,
}

impl Record {
    /// The record from its `v` and `json` fields as read (`None` if either is missing).
    pub fn from_fields(
        key: &str,
        version: Option<Vec<u8>>,
        json: Option<Vec<u8>>,
    ) -> Result<Option<Self>, StoreError> {
        let version = version
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse().ok());
        Ok(match (version, json) {
            (Some(version), Some(json)) => Some(Record {
                version,
                json: text(key, json)?,
            }),
            _ => None,
        })
    }

    pub fn parse<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T, StoreError> {
        serde_json::from_str(&self.json).map_err(|e| StoreError::Corrupt {
            key: key.to_string(),
            reason: e.to_string(),
        })
    }
}
