//! A Hosted Payment Page session: the merchant's request, kept while the customer pays.
//!
//! One JSON string under `cp:sandbox:hosted:<session>`, written when the card page is served and
//! expiring an hour later ([`keys::HOSTED_TTL_MS`]); every later write keeps that expiry. It
//! holds the signed request as received (minus `signature` and any card data the merchant
//! pre-filled) and the [`Stage`] the payment has reached. Each move between stages is a
//! compare-and-set through [`Change`], so two submits of the same form cannot both pay: the
//! first moves `open` to `paying`, the second finds it moved.

use calmony_actors::Store;
use calmony_protocol::cardstream::Fields;
use serde::{Deserialize, Serialize};

use crate::error::SandboxError;
use crate::keys;
use crate::transactions::{self, Applied, Change};

/// How far a hosted payment has got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// The card page is showing; nothing has been charged.
    Open,
    /// One submit holds the session while it authorises (or continues 3-D Secure).
    Paying,
    /// The SALE waits in `received` for the cardholder's 3-D Secure challenge.
    Challenge {
        xref: String,
        /// The ACS page's token, to show the challenge again on a re-submit.
        creq: String,
        three_ds_ref: String,
    },
    /// Finished: the signed result, re-posted to `redirectURL` if the form is submitted again.
    Done { result: Vec<(String, String)> },
}

/// The stored session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostedSession {
    /// The merchant's request fields, `root[sub]` flattened, without card data or signature.
    pub request: Vec<(String, String)>,
    pub stage: Stage,
}

impl HostedSession {
    pub fn request(&self) -> Fields {
        pairs_to_fields(&self.request)
    }

    fn to_json(&self, token: &str) -> Result<String, SandboxError> {
        serde_json::to_string(self).map_err(|e| SandboxError::Corrupt {
            key: keys::hosted(token),
            reason: e.to_string(),
        })
    }
}

/// Flattened `(name, value)` pairs back into a message.
pub fn pairs_to_fields(pairs: &[(String, String)]) -> Fields {
    pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

/// A session as read, with the JSON it was read as.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub token: String,
    pub session: HostedSession,
    raw: String,
}

/// Store a new session and return its token.
pub async fn create(store: &Store, request: &Fields) -> Result<String, SandboxError> {
    let token = transactions::new_token();
    let session = HostedSession {
        request: transactions::flatten(request),
        stage: Stage::Open,
    };
    let json = session.to_json(&token)?;
    let mut change = Change::new();
    change.token(&keys::hosted(&token), &json, keys::HOSTED_TTL_MS);
    change.apply(store).await?;
    Ok(token)
}

/// Read a session by token; `None` if unknown or expired.
pub async fn load(store: &Store, token: &str) -> Result<Option<Loaded>, SandboxError> {
    let key = keys::hosted(token);
    let Some(raw) = transactions::get_string(store, &key).await? else {
        return Ok(None);
    };
    let session = serde_json::from_str(&raw).map_err(|e| SandboxError::Corrupt {
        key,
        reason: e.to_string(),
    })?;
    Ok(Some(Loaded {
        token: token.to_owned(),
        session,
        raw,
    }))
}

impl Loaded {
    /// Move the session to `stage` if nobody moved it since it was read. `None` if somebody
    /// did, or it expired.
    pub async fn advance(
        &self,
        store: &Store,
        stage: Stage,
    ) -> Result<Option<Loaded>, SandboxError> {
        let session = HostedSession {
            request: self.session.request.clone(),
            stage,
        };
        let json = session.to_json(&self.token)?;
        let mut change = Change::new();
        change.replace(&keys::hosted(&self.token), &self.raw, &json);
        Ok(match change.apply(store).await? {
            Applied::Done => Some(Loaded {
                token: self.token.clone(),
                session,
                raw: json,
            }),
            Applied::Conflict | Applied::Gone | Applied::Duplicate => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_tagged_json() {
        let session = HostedSession {
            request: vec![("amount".into(), "2500".into())],
            stage: Stage::Challenge {
                xref: "X".into(),
                creq: "C".into(),
                three_ds_ref: "R".into(),
            },
        };
        let json = serde_json::to_string(&session).expect("json");
        assert!(json.contains(r#""stage":"challenge""#), "{json}");
        let back: HostedSession = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, session);
        let open = serde_json::to_string(&Stage::Open).expect("json");
        assert_eq!(open, r#"{"stage":"open"}"#);
    }
}
