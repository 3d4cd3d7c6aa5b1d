//! RFC 9421 HTTP message signatures as Griffin uses them.
//!
//! Requests to Griffin are signed with the client's Ed25519 key (mandatory in live, optional
//! in the sandbox); Griffin signs its webhook deliveries with ES512 (ECDSA, P-521, SHA-512).
//! Both are the same construction: a *signature base* of one line per covered component,
//! `"<name>": <value>`, then `"@signature-params": <the Signature-Input member>`, signed as
//! bytes. The headers carry `Signature-Input: <label>=("@method" ...);created=..;nonce="..";
//! keyid=".."` and `Signature: <label>=:<base64>:`.
//!
//! The body is covered through `Content-Digest: sha-512=:<base64>:`, which a verifier must
//! recompute over the *raw bytes* received: a signature over a digest proves nothing about a
//! body nobody hashed. Everything here is pure: the clock and the nonce are arguments, and
//! refusing a reused nonce is the caller's (it needs memory).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signer as _, Verifier as _};
use sha2::{Digest, Sha512};

/// What Griffin's reference client covers on a request with a body.
pub const REQUEST_COMPONENTS: &[&str] = &[
    "@method",
    "@authority",
    "@path",
    "@query",
    "content-type",
    "content-length",
    "date",
    "content-digest",
];

/// What a request without a body covers: there is no content to describe.
pub const REQUEST_COMPONENTS_NO_BODY: &[&str] =
    &["@method", "@authority", "@path", "@query", "date"];

/// What Griffin covers on a webhook delivery.
pub const WEBHOOK_COMPONENTS: &[&str] = &[
    "date",
    "@method",
    "@path",
    "@authority",
    "content-type",
    "content-length",
    "content-digest",
];

/// How far a signer's clock may run ahead of ours.
pub const CLOCK_SKEW_SECS: i64 = 60;

/// Why a message cannot be signed or its signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Signature-Input or Signature header")]
    Missing,
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("the covered component {0:?} is not in the message")]
    MissingComponent(String),
    #[error("the signature does not cover {0:?}")]
    NotCovered(&'static str),
    #[error("the Content-Digest does not match the body")]
    Digest,
    #[error("the signature was created in the future")]
    CreatedInFuture,
    #[error("the signature has expired")]
    Expired,
    #[error("the signature has no created time")]
    NoCreated,
    #[error("the key id {0:?} is not known")]
    UnknownKey(String),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("unusable key: {0}")]
    Key(String),
}

/// A private key and the `keyid` Griffin (or the sandbox) knows it by.
#[derive(Clone)]
pub struct SigningKey {
    pub keyid: String,
    key: PrivateKey,
}

#[derive(Clone)]
enum PrivateKey {
    Ed25519(ed25519_dalek::SigningKey),
    Es512(p521::ecdsa::SigningKey),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("keyid", &self.keyid)
            .finish_non_exhaustive()
    }
}

/// A public key that checks signatures.
#[derive(Clone)]
pub enum VerifyingKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    Es512(p521::ecdsa::VerifyingKey),
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ed25519(_) => "VerifyingKey::Ed25519",
            Self::Es512(_) => "VerifyingKey::Es512",
        })
    }
}

impl SigningKey {
    /// An Ed25519 key from its 32 secret bytes.
    pub fn ed25519_from_bytes(keyid: &str, secret: &[u8; 32]) -> Self {
        Self {
            keyid: keyid.to_owned(),
            key: PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(secret)),
        }
    }

    /// An Ed25519 key from a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as `openssl genpkey
    /// -algorithm ed25519` writes it.
    pub fn ed25519_from_pem(keyid: &str, pem: &str) -> Result<Self, SignatureError> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| SignatureError::Key(e.to_string()))?;
        Ok(Self {
            keyid: keyid.to_owned(),
            key: PrivateKey::Ed25519(key),
        })
    }

    /// A P-521 key (ES512) from its 66-byte secret scalar.
    pub fn es512_from_bytes(keyid: &str, secret: &[u8]) -> Result<Self, SignatureError> {
        let key = p521::ecdsa::SigningKey::from_slice(secret)
            .map_err(|e| SignatureError::Key(e.to_string()))?;
        Ok(Self {
            keyid: keyid.to_owned(),
            key: PrivateKey::Es512(key),
        })
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        match &self.key {
            PrivateKey::Ed25519(k) => VerifyingKey::Ed25519(k.verifying_key()),
            PrivateKey::Es512(k) => VerifyingKey::Es512(p521::ecdsa::VerifyingKey::from(k)),
        }
    }

    fn sign_bytes(&self, base: &[u8]) -> Vec<u8> {
        match &self.key {
            PrivateKey::Ed25519(k) => k.sign(base).to_bytes().to_vec(),
            PrivateKey::Es512(k) => {
                let sig: p521::ecdsa::Signature = k.sign(base);
                sig.to_bytes().to_vec()
            }
        }
    }
}

impl VerifyingKey {
    /// An Ed25519 public key from an SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn ed25519_from_pem(pem: &str) -> Result<Self, SignatureError> {
        ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
            .map(Self::Ed25519)
            .map_err(|e| SignatureError::Key(e.to_string()))
    }

    /// A P-521 public key from a JWK, as `/v0/security/public-keys` lists them.
    pub fn es512_from_jwk(jwk: &str) -> Result<Self, SignatureError> {
        let public =
            p521::PublicKey::from_jwk_str(jwk).map_err(|e| SignatureError::Key(e.to_string()))?;
        p521::ecdsa::VerifyingKey::from_affine(*public.as_affine())
            .map(Self::Es512)
            .map_err(|e| SignatureError::Key(e.to_string()))
    }

    /// A P-521 public key as a JWK string (without `kid`, `alg`, `use`).
    pub fn es512_jwk(&self) -> Option<String> {
        match self {
            Self::Es512(k) => p521::PublicKey::from_affine(*k.as_affine())
                .ok()
                .map(|p| p.to_jwk_string()),
            Self::Ed25519(_) => None,
        }
    }

    fn verify_bytes(&self, base: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        match self {
            Self::Ed25519(k) => {
                let sig = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| SignatureError::BadSignature)?;
                k.verify(base, &sig)
                    .map_err(|_| SignatureError::BadSignature)
            }
            Self::Es512(k) => {
                use p521::ecdsa::signature::Verifier as _;
                let sig = p521::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| SignatureError::BadSignature)?;
                k.verify(base, &sig)
                    .map_err(|_| SignatureError::BadSignature)
            }
        }
    }
}

/// `Content-Digest` for a body: `sha-512=:<base64>:`.
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-512=:{}:", B64.encode(Sha512::digest(body)))
}

/// An HTTP date (RFC 9110 IMF-fixdate) for a Unix time: `Sat, 06 Dec 2025 10:00:00 GMT`.
pub fn http_date(unix_secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs.div_euclid(86_400);
    let of_day = unix_secs.rem_euclid(86_400);
    let (y, m, d) = crate::billing::civil(days);
    let month = MONTHS[usize::try_from(m - 1).unwrap_or(0) % 12];
    let weekday = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    format!(
        "{weekday}, {d:02} {month} {y} {:02}:{:02}:{:02} GMT",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// The headers that sign a request to `url` as Griffin's reference client does: `date`,
/// `content-digest` (with a body), `signature-input` and `signature`. The caller sends them
/// with the body's exact bytes, `content-type` as given and `content-length` of the body.
pub fn sign_request(
    key: &SigningKey,
    method: &str,
    url: &url::Url,
    content_type: Option<&str>,
    body: &[u8],
    now_secs: i64,
    nonce: &str,
) -> Result<Vec<(&'static str, String)>, SignatureError> {
    let date = http_date(now_secs);
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_owned(),
    };
    let mut out: Vec<(&'static str, String)> = vec![("date", date)];
    let components = if body.is_empty() {
        REQUEST_COMPONENTS_NO_BODY
    } else {
        out.push(("content-digest", content_digest(body)));
        out.push(("content-length", body.len().to_string()));
        out.push((
            "content-type",
            content_type.unwrap_or("application/json").to_owned(),
        ));
        REQUEST_COMPONENTS
    };
    let covered: Vec<(&str, &str)> = out.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let message = Message {
        method,
        authority: &authority,
        path: url.path(),
        query: url.query().unwrap_or(""),
        headers: &covered,
    };
    let params = Params {
        label: "sig1".to_owned(),
        components: components.iter().map(|c| (*c).to_owned()).collect(),
        created: now_secs,
        expires: None,
        nonce: nonce.to_owned(),
        keyid: key.keyid.clone(),
    };
    let signed = sign(key, &message, &params)?;
    out.retain(|(n, _)| *n != "content-length" && *n != "content-type");
    out.push(("signature-input", signed.signature_input));
    out.push(("signature", signed.signature));
    Ok(out)
}

/// How long a webhook signature is valid for after it is made (`expires` − `created`).
pub const WEBHOOK_EXPIRES_SECS: i64 = 300;

/// The headers that sign a webhook delivery of `body` to `url` as Griffin signs them: `date`,
/// `content-type`, `content-length`, `content-digest`, then `signature-input` and `signature`
/// labelled with the key id, covering [`WEBHOOK_COMPONENTS`] with `created`, `expires`,
/// `nonce` and `keyid`. The caller sends exactly these values with the body's bytes.
pub fn sign_webhook(
    key: &SigningKey,
    url: &url::Url,
    body: &[u8],
    now_secs: i64,
    nonce: &str,
) -> Result<Vec<(&'static str, String)>, SignatureError> {
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_owned(),
    };
    let mut out: Vec<(&'static str, String)> = vec![
        ("date", http_date(now_secs)),
        ("content-type", "application/json".to_owned()),
        ("content-length", body.len().to_string()),
        ("content-digest", content_digest(body)),
    ];
    let covered: Vec<(&str, &str)> = out.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let message = Message {
        method: "POST",
        authority: &authority,
        path: url.path(),
        query: url.query().unwrap_or(""),
        headers: &covered,
    };
    let params = Params {
        label: key.keyid.clone(),
        components: WEBHOOK_COMPONENTS.iter().map(|c| (*c).to_owned()).collect(),
        created: now_secs,
        expires: Some(now_secs + WEBHOOK_EXPIRES_SECS),
        nonce: nonce.to_owned(),
        keyid: key.keyid.clone(),
    };
    let signed = sign(key, &message, &params)?;
    out.push(("signature-input", signed.signature_input));
    out.push(("signature", signed.signature));
    Ok(out)
}

impl crate::griffin::PublicKey {
    /// The JWK Griffin publishes for an ES512 key; `None` for another kind of key.
    pub fn of(kid: &str, key: &VerifyingKey) -> Option<Self> {
        let jwk: serde_json::Value = serde_json::from_str(&key.es512_jwk()?).ok()?;
        let text = |name: &str| jwk.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        Some(Self {
            kty: text("kty")?,
            crv: text("crv")?,
            alg: Some("ES512".to_owned()),
            use_: Some("sig".to_owned()),
            kid: kid.to_owned(),
            x: text("x")?,
            y: text("y")?,
        })
    }

    /// The key to verify with: only an EC P-521 key for ES512 signatures is accepted.
    pub fn verifying_key(&self) -> Result<VerifyingKey, SignatureError> {
        if self.kty != "EC" || self.crv != "P-521" {
            return Err(SignatureError::Key(format!(
                "key {:?} is {} {}, not EC P-521",
                self.kid, self.kty, self.crv
            )));
        }
        if self.alg.as_deref().is_some_and(|a| a != "ES512") {
            return Err(SignatureError::Key(format!(
                "key {:?} is for {:?}, not ES512",
                self.kid, self.alg
            )));
        }
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-521", "x": self.x, "y": self.y});
        VerifyingKey::es512_from_jwk(&jwk.to_string())
    }
}

/// The parts of an HTTP message a signature can cover. Header names are matched without
/// regard to case; `query` is the text after `?` (empty when there is none).
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub method: &'a str,
    /// Host, and the port when it is not the scheme's default.
    pub authority: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
}

impl Message<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    /// One component's value as RFC 9421 §2 derives it.
    fn component(&self, name: &str) -> Result<String, SignatureError> {
        let missing = || SignatureError::MissingComponent(name.to_owned());
        match name {
            "@method" => Ok(self.method.to_ascii_uppercase()),
            "@authority" => Ok(self.authority.to_ascii_lowercase()),
            "@path" => Ok(if self.path.is_empty() {
                "/".to_owned()
            } else {
                self.path.to_owned()
            }),
            "@query" => Ok(format!("?{}", self.query)),
            n if n.starts_with('@') => Err(missing()),
            n => self.header(n).map(str::to_owned).ok_or_else(missing),
        }
    }
}

/// The `Signature-Input` member's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub label: String,
    pub components: Vec<String>,
    pub created: i64,
    pub expires: Option<i64>,
    pub nonce: String,
    pub keyid: String,
}

impl Params {
    /// `("@method" ...);created=..;expires=..;nonce="..";keyid=".."`: both the header value
    /// (after `label=`) and the last line of the signature base.
    fn serialise(&self) -> String {
        let list: Vec<String> = self.components.iter().map(|c| format!("\"{c}\"")).collect();
        let mut out = format!("({});created={}", list.join(" "), self.created);
        if let Some(expires) = self.expires {
            out.push_str(&format!(";expires={expires}"));
        }
        out.push_str(&format!(
            ";nonce=\"{}\";keyid=\"{}\"",
            self.nonce, self.keyid
        ));
        out
    }
}

/// The two headers a signature adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    pub signature_input: String,
    pub signature: String,
}

fn signature_base(
    message: &Message<'_>,
    components: &[String],
    params_text: &str,
) -> Result<String, SignatureError> {
    let mut base = String::new();
    for name in components {
        let value = message.component(name)?;
        base.push_str(&format!("\"{name}\": {value}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {params_text}"));
    Ok(base)
}

/// Sign `message` over `params.components`. The headers it covers (`date`,
/// `content-digest`, ...) must already be in `message.headers`.
pub fn sign(
    key: &SigningKey,
    message: &Message<'_>,
    params: &Params,
) -> Result<SignatureHeaders, SignatureError> {
    let params_text = params.serialise();
    let base = signature_base(message, &params.components, &params_text)?;
    let signature = B64.encode(key.sign_bytes(base.as_bytes()));
    Ok(SignatureHeaders {
        signature_input: format!("{}={params_text}", params.label),
        signature: format!("{}=:{signature}:", params.label),
    })
}

/// What a verified signature said about itself; the caller refuses a nonce seen before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub label: String,
    pub keyid: String,
    pub nonce: Option<String>,
    pub created: i64,
}

/// What a verifier insists on.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// Components every accepted signature must cover (`content-digest` is added whenever
    /// the body is not empty).
    pub required: &'a [&'static str],
    /// How old `created` may be.
    pub max_age_secs: i64,
}

/// Check the signatures on `message` and its raw `body` at time `now` (seconds). Passes when
/// one signature by a key `key_for(keyid)` knows covers what `policy` requires and verifies;
/// otherwise names what failed for the last one tried.
pub fn verify(
    message: &Message<'_>,
    body: &[u8],
    key_for: &dyn Fn(&str) -> Option<VerifyingKey>,
    policy: &Policy<'_>,
    now: i64,
) -> Result<Verified, SignatureError> {
    let (Some(inputs), Some(signatures)) = (
        message.header("signature-input"),
        message.header("signature"),
    ) else {
        return Err(SignatureError::Missing);
    };
    let signatures = parse_signatures(signatures)?;
    let members = split_top_level(inputs);
    // Each member costs a signature check: a request naming many is refused before any.
    if members.len() > MAX_SIGNATURES {
        return Err(SignatureError::Malformed(
            "Signature-Input: too many signatures",
        ));
    }
    // The body is hashed once, whatever the members.
    let digest = content_digest(body);
    let mut last = SignatureError::Missing;
    for member in members {
        let result = parse_input(member).and_then(|(label, params_text, parsed)| {
            let bytes = signatures
                .iter()
                .find(|(l, _)| *l == label)
                .map(|(_, b)| b.clone())
                .ok_or(SignatureError::Malformed(
                    "Signature: no member for the label",
                ))?;
            check_one(
                message,
                body.is_empty(),
                &digest,
                key_for,
                policy,
                now,
                &params_text,
                &parsed,
                &bytes,
            )?;
            Ok(Verified {
                label: label.to_owned(),
                keyid: parsed.keyid.unwrap_or_default(),
                nonce: parsed.nonce,
                created: parsed.created.unwrap_or_default(),
            })
        });
        match result {
            Ok(v) => return Ok(v),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The most signatures one message may carry (Griffin sends one).
const MAX_SIGNATURES: usize = 4;

#[allow(clippy::too_many_arguments)]
fn check_one(
    message: &Message<'_>,
    body_empty: bool,
    digest: &str,
    key_for: &dyn Fn(&str) -> Option<VerifyingKey>,
    policy: &Policy<'_>,
    now: i64,
    params_text: &str,
    parsed: &ParsedParams,
    signature: &[u8],
) -> Result<(), SignatureError> {
    for required in policy.required {
        if !parsed.components.iter().any(|c| c == required) {
            return Err(SignatureError::NotCovered(required));
        }
    }
    let covers_digest = parsed.components.iter().any(|c| c == "content-digest");
    if !body_empty && !covers_digest {
        return Err(SignatureError::NotCovered("content-digest"));
    }
    if covers_digest && message.header("content-digest") != Some(digest) {
        return Err(SignatureError::Digest);
    }
    let created = parsed.created.ok_or(SignatureError::NoCreated)?;
    if created > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(SignatureError::CreatedInFuture);
    }
    if now.saturating_sub(created) > policy.max_age_secs || parsed.expires.is_some_and(|e| e < now)
    {
        return Err(SignatureError::Expired);
    }
    let keyid = parsed.keyid.clone().unwrap_or_default();
    let key = key_for(&keyid).ok_or(SignatureError::UnknownKey(keyid))?;
    let base = signature_base(message, &parsed.components, params_text)?;
    key.verify_bytes(base.as_bytes(), signature)
}

#[derive(Debug, Default)]
struct ParsedParams {
    components: Vec<String>,
    created: Option<i64>,
    expires: Option<i64>,
    nonce: Option<String>,
    keyid: Option<String>,
}

/// Split a structured-field dictionary at commas outside quotes and parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0_i32, false, 0);
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(text[start..].trim());
    out.retain(|m| !m.is_empty());
    out
}

/// `label=("a" "b");k=v;...` → (label, the text after `=`, its parts).
fn parse_input(member: &str) -> Result<(&str, String, ParsedParams), SignatureError> {
    let bad = SignatureError::Malformed("Signature-Input");
    let (label, rest) = member.split_once('=').ok_or(bad.clone())?;
    let rest = rest.trim();
    let inner = rest.strip_prefix('(').ok_or(bad.clone())?;
    let (list, params) = inner.split_once(')').ok_or(bad.clone())?;
    let mut parsed = ParsedParams::default();
    for item in list.split_whitespace() {
        let name = item
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .ok_or(bad.clone())?;
        parsed.components.push(name.to_ascii_lowercase());
    }
    for param in params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = param.split_once('=').ok_or(bad.clone())?;
        let text = || value.trim_matches('"').to_owned();
        let number = || value.parse::<i64>().map_err(|_| bad.clone());
        match name {
            "created" => parsed.created = Some(number()?),
            "expires" => parsed.expires = Some(number()?),
            "nonce" => parsed.nonce = Some(text()),
            "keyid" => parsed.keyid = Some(text()),
            _ => {}
        }
    }
    Ok((label.trim(), rest.to_owned(), parsed))
}

/// `label=:b64:, label2=:b64:` → (label, bytes) pairs.
fn parse_signatures(text: &str) -> Result<Vec<(&str, Vec<u8>)>, SignatureError> {
    let bad = SignatureError::Malformed("Signature");
    split_top_level(text)
        .into_iter()
        .map(|member| {
            let (label, value) = member.split_once('=').ok_or(bad.clone())?;
            let b64 = value
                .trim()
                .strip_prefix(':')
                .and_then(|v| v.strip_suffix(':'))
                .ok_or(bad.clone())?;
            let bytes = B64.decode(b64).map_err(|_| bad.clone())?;
            Ok((label.trim(), bytes))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_765_000_000;
    const BODY: &[u8] = br#"{"payment-scheme":"fps"}"#;

    fn client_key() -> SigningKey {
        SigningKey::ed25519_from_bytes("kid-client-1", &[7; 32])
    }

    fn params(components: &[&str]) -> Params {
        Params {
            label: "sig1".into(),
            components: components.iter().map(|c| (*c).to_owned()).collect(),
            created: NOW,
            expires: None,
            nonce: "n-123".into(),
            keyid: "kid-client-1".into(),
        }
    }

    fn policy() -> Policy<'static> {
        Policy {
            required: &["@method", "@authority", "@path"],
            max_age_secs: 300,
        }
    }

    /// Sign a POST and return its headers, the signature's two included.
    fn signed_post(key: &SigningKey, body: &[u8]) -> Vec<(String, String)> {
        let digest = content_digest(body);
        let length = body.len().to_string();
        let base: Vec<(&str, &str)> = vec![
            ("content-type", "application/json"),
            ("content-length", &length),
            ("date", "Sat, 06 Dec 2025 10:00:00 GMT"),
            ("content-digest", &digest),
        ];
        let message = Message {
            method: "post",
            authority: "api.griffin.com",
            path: "/v0/payments/pm.1/submissions",
            query: "",
            headers: &base,
        };
        let headers =
            sign(key, &message, &params(REQUEST_COMPONENTS)).unwrap_or_else(|e| panic!("{e}"));
        let mut out: Vec<(String, String)> = base
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        out.push(("Signature-Input".into(), headers.signature_input));
        out.push(("Signature".into(), headers.signature));
        out
    }

    fn check(
        headers: &[(String, String)],
        body: &[u8],
        path: &str,
        key: &VerifyingKey,
        now: i64,
    ) -> Result<Verified, SignatureError> {
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let message = Message {
            method: "POST",
            authority: "API.griffin.com",
            path,
            query: "",
            headers: &pairs,
        };
        let key = key.clone();
        verify(
            &message,
            body,
            &move |kid| (kid == "kid-client-1").then(|| key.clone()),
            &policy(),
            now,
        )
    }

    #[test]
    fn http_dates_are_imf_fixdate() {
        for (t, expected) in [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (1_765_015_200, "Sat, 06 Dec 2025 10:00:00 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        ] {
            assert_eq!(http_date(t), expected);
        }
    }

    #[test]
    fn a_signed_request_verifies_as_the_server_sees_it() {
        let key = client_key();
        let url = url::Url::parse("http://127.0.0.1:4242/sandbox/griffin/v0/index?x=1")
            .unwrap_or_else(|e| panic!("{e}"));
        let headers = sign_request(&key, "GET", &url, None, b"", NOW, "n-9")
            .unwrap_or_else(|e| panic!("{e}"));
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let message = Message {
            method: "GET",
            authority: "127.0.0.1:4242",
            path: "/sandbox/griffin/v0/index",
            query: "x=1",
            headers: &pairs,
        };
        let public = key.verifying_key();
        let lookup = move |_: &str| Some(public.clone());
        assert!(verify(&message, b"", &lookup, &policy(), NOW).is_ok());
        let moved = Message {
            query: "x=2",
            ..message
        };
        assert_eq!(
            verify(&moved, b"", &lookup, &policy(), NOW),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn the_digest_is_sha512_in_colons() {
        assert_eq!(
            content_digest(b""),
            "sha-512=:z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==:"
        );
    }

    #[test]
    fn the_signature_input_lists_components_and_params() {
        let headers = signed_post(&client_key(), BODY);
        let input = headers
            .iter()
            .find(|(n, _)| n == "Signature-Input")
            .map(|(_, v)| v.clone());
        assert_eq!(
            input.as_deref(),
            Some(
                "sig1=(\"@method\" \"@authority\" \"@path\" \"@query\" \"content-type\" \
                 \"content-length\" \"date\" \"content-digest\");created=1765000000;\
                 nonce=\"n-123\";keyid=\"kid-client-1\""
            )
        );
    }

    /// (name, body, path, key, now, expected).
    type Case<'a> = (
        &'a str,
        &'a [u8],
        &'a str,
        &'a VerifyingKey,
        i64,
        Result<(), SignatureError>,
    );

    #[test]
    fn what_a_verifier_accepts_and_refuses() {
        let key = client_key();
        let public = key.verifying_key();
        let wrong = SigningKey::ed25519_from_bytes("kid-client-1", &[9; 32]).verifying_key();
        let headers = signed_post(&key, BODY);
        let path = "/v0/payments/pm.1/submissions";
        let cases: Vec<Case<'_>> = vec![
            ("as signed", BODY, path, &public, NOW, Ok(())),
            (
                "a tampered body",
                b"{\"payment-scheme\":\"chaps\"}",
                path,
                &public,
                NOW,
                Err(SignatureError::Digest),
            ),
            (
                "a wrong key",
                BODY,
                path,
                &wrong,
                NOW,
                Err(SignatureError::BadSignature),
            ),
            (
                "another path",
                BODY,
                "/v0/payments/pm.2/submissions",
                &public,
                NOW,
                Err(SignatureError::BadSignature),
            ),
            (
                "too old",
                BODY,
                path,
                &public,
                NOW + 301,
                Err(SignatureError::Expired),
            ),
            (
                "from the future",
                BODY,
                path,
                &public,
                NOW - 61,
                Err(SignatureError::CreatedInFuture),
            ),
        ];
        for (name, body, path, key, now, expected) in cases {
            let got = check(&headers, body, path, key, now).map(|v| {
                assert_eq!(v.nonce.as_deref(), Some("n-123"));
            });
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn a_tampered_header_or_unknown_key_is_refused() {
        let key = client_key();
        let mut headers = signed_post(&key, BODY);
        for (n, v) in headers.iter_mut() {
            if n == "date" {
                *v = "Sun, 07 Dec 2025 10:00:00 GMT".into();
            }
        }
        let path = "/v0/payments/pm.1/submissions";
        assert_eq!(
            check(&headers, BODY, path, &key.verifying_key(), NOW),
            Err(SignatureError::BadSignature)
        );
        let other = SigningKey::ed25519_from_bytes("kid-other", &[7; 32]);
        let headers = signed_post(&other, BODY);
        let headers: Vec<(String, String)> = headers
            .into_iter()
            .map(|(n, v)| (n, v.replace("kid-client-1", "kid-other")))
            .collect();
        assert!(matches!(
            check(&headers, BODY, path, &key.verifying_key(), NOW),
            Err(SignatureError::UnknownKey(_) | SignatureError::BadSignature)
        ));
        assert_eq!(
            check(&[], BODY, path, &key.verifying_key(), NOW),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn a_signature_must_cover_the_digest_of_a_body() {
        let key = client_key();
        let date: Vec<(&str, &str)> = vec![("date", "Sat, 06 Dec 2025 10:00:00 GMT")];
        let message = Message {
            method: "POST",
            authority: "api.griffin.com",
            path: "/v0/x",
            query: "",
            headers: &date,
        };
        let h = sign(&key, &message, &params(REQUEST_COMPONENTS_NO_BODY))
            .unwrap_or_else(|e| panic!("{e}"));
        let headers: Vec<(&str, &str)> = vec![
            ("date", "Sat, 06 Dec 2025 10:00:00 GMT"),
            ("signature-input", &h.signature_input),
            ("signature", &h.signature),
        ];
        let message = Message {
            headers: &headers,
            ..message
        };
        let public = key.verifying_key();
        let lookup = move |_: &str| Some(public.clone());
        assert!(verify(&message, b"", &lookup, &policy(), NOW).is_ok());
        assert_eq!(
            verify(&message, BODY, &lookup, &policy(), NOW),
            Err(SignatureError::NotCovered("content-digest"))
        );
    }

    #[test]
    fn sign_webhook_makes_a_delivery_its_published_key_verifies() {
        let mut secret = [5_u8; 66];
        secret[0] = 1;
        let key = SigningKey::es512_from_bytes("griffin-sbx-1", &secret)
            .unwrap_or_else(|e| panic!("{e}"));
        let published = crate::griffin::PublicKey::of("griffin-sbx-1", &key.verifying_key())
            .unwrap_or_else(|| panic!("an ES512 key has a JWK"));
        assert_eq!(
            (published.kty.as_str(), published.crv.as_str()),
            ("EC", "P-521")
        );
        let public = published.verifying_key().unwrap_or_else(|e| panic!("{e}"));
        let url = url::Url::parse("http://127.0.0.1:4242/webhooks/griffin/test")
            .unwrap_or_else(|e| panic!("{e}"));
        let body = br#"{"event-url":"/v0/events/ev.1"}"#;
        let headers = sign_webhook(&key, &url, body, NOW, "n-1").unwrap_or_else(|e| panic!("{e}"));
        let input = headers
            .iter()
            .find(|(n, _)| *n == "signature-input")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        assert!(input.starts_with("griffin-sbx-1=(\"date\" \"@method\" \"@path\""));
        assert!(input.contains(&format!(";expires={}", NOW + WEBHOOK_EXPIRES_SECS)));
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let message = Message {
            method: "POST",
            authority: "127.0.0.1:4242",
            path: "/webhooks/griffin/test",
            query: "",
            headers: &pairs,
        };
        let lookup = move |kid: &str| (kid == "griffin-sbx-1").then(|| public.clone());
        let policy = Policy {
            required: WEBHOOK_COMPONENTS,
            max_age_secs: 300,
        };
        let v = verify(&message, body, &lookup, &policy, NOW).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.nonce.as_deref(), Some("n-1"));
        let wrong = crate::griffin::PublicKey {
            crv: "P-256".into(),
            ..published
        };
        assert!(wrong.verifying_key().is_err());
    }

    #[test]
    fn a_webhook_signed_with_es512_verifies_through_its_jwk() {
        // A P-521 scalar is below the group order, so its top byte is 0 or 1.
        let mut secret = [3_u8; 66];
        secret[0] = 0;
        let key = SigningKey::es512_from_bytes("griffin-2025-05-23-1", &secret)
            .unwrap_or_else(|e| panic!("{e}"));
        let jwk = key.verifying_key().es512_jwk().unwrap_or_default();
        let public = VerifyingKey::es512_from_jwk(&jwk).unwrap_or_else(|e| panic!("{e}"));
        let body = br#"{"event-type":"test-event"}"#;
        let digest = content_digest(body);
        let length = body.len().to_string();
        let base: Vec<(&str, &str)> = vec![
            ("date", "Sat, 06 Dec 2025 10:00:00 GMT"),
            ("content-type", "application/json"),
            ("content-length", &length),
            ("content-digest", &digest),
        ];
        let message = Message {
            method: "POST",
            authority: "merchant.example",
            path: "/hooks/griffin",
            query: "",
            headers: &base,
        };
        let mut p = params(WEBHOOK_COMPONENTS);
        p.label = "griffin-2025-05-23-1".into();
        p.keyid = "griffin-2025-05-23-1".into();
        p.expires = Some(NOW + 300);
        let h = sign(&key, &message, &p).unwrap_or_else(|e| panic!("{e}"));
        let mut all = base.clone();
        all.push(("signature-input", &h.signature_input));
        all.push(("signature", &h.signature));
        let message = Message {
            headers: &all,
            ..message
        };
        let lookup = move |kid: &str| (kid == "griffin-2025-05-23-1").then(|| public.clone());
        let webhook_policy = Policy {
            required: WEBHOOK_COMPONENTS,
            max_age_secs: 300,
        };
        assert!(verify(&message, body, &lookup, &webhook_policy, NOW).is_ok());
        assert_eq!(
            verify(&message, b"{}", &lookup, &webhook_policy, NOW),
            Err(SignatureError::Digest)
        );
        assert_eq!(
            verify(&message, body, &lookup, &webhook_policy, NOW + 301),
            Err(SignatureError::Expired)
        );
    }
}
