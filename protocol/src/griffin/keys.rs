//! `GET /v0/security/public-keys`: the EC P-521 keys (ES512) Griffin signs its webhooks with,
//! as JWKs. A `kid` always names the same key; a retired key leaves the list, so a receiver
//! fetches again when a delivery names a `kid` it does not know.

use serde::{Deserialize, Serialize};

/// One key of `GET /v0/security/public-keys`: an EC P-521 public key (ES512) as a JWK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    pub kty: String,
    pub crv: String,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    pub kid: String,
    pub x: String,
    pub y: String,
}

/// `GET /v0/security/public-keys`: the keys webhooks are signed with. A `kid` always names
/// the same key; a retired key leaves the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeys {
    pub keys: Vec<PublicKey>,
    #[serde(default)]
    pub links: super::Links,
}
