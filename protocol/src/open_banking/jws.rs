//! Message signing: the detached `x-jws-signature` and the compact JWTs of the authorise flow.
//!
//! Open Banking signs every payment POST and every answer (RFC 7515 appendix F): the header
//! value is `<b64url(header)>..<b64url(signature)>`, the payload part left empty because the
//! HTTP body is the payload. From v3.1.4 there is no `b64: false`, so the signing input is the
//! ordinary `b64url(header) "." b64url(body)`: a verifier must use the body's *exact bytes*,
//! which is why both sides sign and verify bytes, never a re-serialised value.
//!
//! The header carries `alg: PS256`, `kid`, `typ: JOSE`, `cty: application/json` and three
//! private claims, all listed in `crit` so a verifier that does not know them must refuse:
//! `http://openbanking.org.uk/iat` (when, in seconds, never in the future),
//! `http://openbanking.org.uk/iss` (who signs) and `http://openbanking.org.uk/tan` (the trust
//! anchor). PS256 is RSASSA-PSS with SHA-256 and a 32-byte salt.
//!
//! The clock is an argument of the `_at` forms, so tests fix it; the plain forms read the
//! system clock.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::pss::{BlindedSigningKey, Signature};
use rsa::signature::{Keypair, RandomizedSigner, SignatureEncoding, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::discovery::Jwk;

pub const CLAIM_IAT: &str = "http://openbanking.org.uk/iat";
pub const CLAIM_ISS: &str = "http://openbanking.org.uk/iss";
pub const CLAIM_TAN: &str = "http://openbanking.org.uk/tan";

/// How far in the future an `iat` may be and still count as now: clocks drift.
pub const CLOCK_SKEW_SECS: i64 = 60;

/// Why a signature or token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("malformed JWS: {0}")]
    Malformed(&'static str),
    #[error("the JWS algorithm {0:?} is not PS256")]
    Algorithm(String),
    #[error("the JWS critical claim {0} is missing")]
    MissingCritical(&'static str),
    #[error("the JWS was issued in the future")]
    IssuedInFuture,
    #[error("the token has expired or is not valid yet")]
    Expired,
    #[error("the JWS key id {0:?} is not the expected key")]
    KeyId(String),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("unusable key: {0}")]
    Key(String),
}

/// A private key that signs as one party: the key, its `kid` and who it says it is.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    /// `http://openbanking.org.uk/iss`: a TPP's `<org-id>/<software-statement-id>`, a bank's
    /// `<org-id>`.
    issuer: String,
    /// `http://openbanking.org.uk/tan`.
    trust_anchor: String,
    key: BlindedSigningKey<Sha256>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A key from a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(pem: &str, kid: &str, issuer: &str) -> Result<Self, JwsError> {
        let key = RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| JwsError::Key(e.to_string()))?;
        Ok(Self {
            kid: kid.to_owned(),
            issuer: issuer.to_owned(),
            trust_anchor: "openbanking.org.uk".to_owned(),
            key: BlindedSigningKey::new(key),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The public half, under the same `kid`.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            kid: Some(self.kid.clone()),
            key: self.key.verifying_key(),
        }
    }

    /// The public half as a JWK, for a JWKS.
    pub fn jwk(&self) -> Jwk {
        let public = self.key.verifying_key();
        let public: &RsaPublicKey = public.as_ref();
        Jwk {
            kty: "RSA".to_owned(),
            kid: self.kid.clone(),
            use_: Some("sig".to_owned()),
            alg: Some("PS256".to_owned()),
            n: B64.encode(public.n().to_bytes_be()),
            e: B64.encode(public.e().to_bytes_be()),
        }
    }

    fn sign_input(&self, input: &[u8]) -> String {
        let signature: Signature = self.key.sign_with_rng(&mut rsa::rand_core::OsRng, input);
        B64.encode(signature.to_bytes())
    }
}

/// A public key that checks one party's signatures. With a `kid`, a signature naming another
/// key is refused before any arithmetic.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Option<String>,
    key: rsa::pss::VerifyingKey<Sha256>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// A key from an SPKI PEM (`-----BEGIN PUBLIC KEY-----`), accepting any `kid`.
    pub fn from_public_key_pem(pem: &str) -> Result<Self, JwsError> {
        let key =
            RsaPublicKey::from_public_key_pem(pem).map_err(|e| JwsError::Key(e.to_string()))?;
        Ok(Self {
            kid: None,
            key: rsa::pss::VerifyingKey::new(key),
        })
    }

    /// A key from a JWK's modulus and exponent (base64url), bound to its `kid`.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, JwsError> {
        if jwk.kty != "RSA" {
            return Err(JwsError::Key(format!("key type {:?} is not RSA", jwk.kty)));
        }
        let n = B64
            .decode(&jwk.n)
            .map_err(|_| JwsError::Key("n is not base64url".into()))?;
        let e = B64
            .decode(&jwk.e)
            .map_err(|_| JwsError::Key("e is not base64url".into()))?;
        let key = RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from_bytes_be(&e))
            .map_err(|e| JwsError::Key(e.to_string()))?;
        Ok(Self {
            kid: Some(jwk.kid.clone()),
            key: rsa::pss::VerifyingKey::new(key),
        })
    }

    /// The same key, bound to `kid`.
    pub fn with_kid(mut self, kid: &str) -> Self {
        self.kid = Some(kid.to_owned());
        self
    }

    fn check(
        &self,
        header: &Map<String, Value>,
        input: &[u8],
        signature: &str,
    ) -> Result<(), JwsError> {
        match header.get("alg").and_then(Value::as_str) {
            Some("PS256") => {}
            Some(other) => return Err(JwsError::Algorithm(other.to_owned())),
            None => return Err(JwsError::Algorithm(String::new())),
        }
        if let Some(expected) = &self.kid {
            let kid = header.get("kid").and_then(Value::as_str).unwrap_or("");
            if kid != expected {
                return Err(JwsError::KeyId(kid.to_owned()));
            }
        }
        let bytes = B64
            .decode(signature)
            .map_err(|_| JwsError::Malformed("signature is not base64url"))?;
        let signature =
            Signature::try_from(bytes.as_slice()).map_err(|_| JwsError::BadSignature)?;
        self.key
            .verify(input, &signature)
            .map_err(|_| JwsError::BadSignature)
    }
}

/// What a verified detached signature said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub kid: String,
    pub iat: i64,
    pub iss: String,
    pub tan: String,
}

/// Seconds since the epoch now.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The `x-jws-signature` value for `body`, signed now.
pub fn sign_detached(body: &[u8], key: &SigningKey) -> String {
    sign_detached_at(body, key, now_secs())
}

/// The `x-jws-signature` value for `body`, issued at `iat`.
pub fn sign_detached_at(body: &[u8], key: &SigningKey, iat: i64) -> String {
    let header = json!({
        "alg": "PS256",
        "kid": key.kid,
        "typ": "JOSE",
        "cty": "application/json",
        CLAIM_IAT: iat,
        CLAIM_ISS: key.issuer,
        CLAIM_TAN: key.trust_anchor,
        "crit": [CLAIM_IAT, CLAIM_ISS, CLAIM_TAN],
    });
    let header = B64.encode(header.to_string());
    let input = format!("{header}.{}", B64.encode(body));
    let signature = key.sign_input(input.as_bytes());
    format!("{header}..{signature}")
}

/// Check `value` (an `x-jws-signature`) over `body`'s exact bytes, now.
pub fn verify_detached(value: &str, body: &[u8], key: &VerifyingKey) -> Result<Claims, JwsError> {
    verify_detached_at(value, body, key, now_secs())
}

/// Check `value` over `body` as of `now`: PS256, the three critical claims present and listed,
/// `iat` not in the future beyond [`CLOCK_SKEW_SECS`], the key id, then the signature.
pub fn verify_detached_at(
    value: &str,
    body: &[u8],
    key: &VerifyingKey,
    now: i64,
) -> Result<Claims, JwsError> {
    let mut parts = value.trim().split('.');
    let (Some(header_b64), Some(""), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed("not <header>..<signature>"));
    };
    let header = decode_object(header_b64)?;
    if header.contains_key("b64") {
        return Err(JwsError::Malformed("b64 is not used from v3.1.4"));
    }
    let crit: Vec<&str> = header
        .get("crit")
        .and_then(Value::as_array)
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for claim in [CLAIM_IAT, CLAIM_ISS, CLAIM_TAN] {
        if !crit.contains(&claim) || !header.contains_key(claim) {
            return Err(JwsError::MissingCritical(claim));
        }
    }
    let input = format!("{header_b64}.{}", B64.encode(body));
    key.check(&header, input.as_bytes(), signature)?;
    let iat = header
        .get(CLAIM_IAT)
        .and_then(Value::as_i64)
        .ok_or(JwsError::MissingCritical(CLAIM_IAT))?;
    if iat > now + CLOCK_SKEW_SECS {
        return Err(JwsError::IssuedInFuture);
    }
    let text = |name: &'static str| {
        header
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(JwsError::MissingCritical(name))
    };
    Ok(Claims {
        kid: header
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        iat,
        iss: text(CLAIM_ISS)?,
        tan: text(CLAIM_TAN)?,
    })
}

/// A compact JWT (`header.payload.signature`, PS256) of `claims`: the authorise request
/// object, an id_token.
pub fn sign_jwt(claims: &Value, key: &SigningKey) -> String {
    let header = json!({ "alg": "PS256", "kid": key.kid, "typ": "JWT" });
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let signature = key.sign_input(input.as_bytes());
    format!("{input}.{signature}")
}

/// The claims of a compact JWT signed by `key`, checked now.
pub fn verify_jwt(token: &str, key: &VerifyingKey) -> Result<Map<String, Value>, JwsError> {
    verify_jwt_at(token, key, now_secs())
}

/// The claims of `token` as of `now`: PS256, `key`'s signature, and `exp`/`nbf` when present.
pub fn verify_jwt_at(
    token: &str,
    key: &VerifyingKey,
    now: i64,
) -> Result<Map<String, Value>, JwsError> {
    let mut parts = token.trim().split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed("not <header>.<payload>.<signature>"));
    };
    let header = decode_object(header_b64)?;
    let input = format!("{header_b64}.{payload_b64}");
    key.check(&header, input.as_bytes(), signature)?;
    let claims = decode_object(payload_b64)?;
    if let Some(exp) = claims.get("exp").and_then(Value::as_i64)
        && exp + CLOCK_SKEW_SECS < now
    {
        return Err(JwsError::Expired);
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64)
        && nbf > now + CLOCK_SKEW_SECS
    {
        return Err(JwsError::Expired);
    }
    Ok(claims)
}

fn decode_object(b64: &str) -> Result<Map<String, Value>, JwsError> {
    let bytes = B64
        .decode(b64)
        .map_err(|_| JwsError::Malformed("a part is not base64url"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwsError::Malformed("a part is not a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TPP_PRIVATE: &str = include_str!("../../../config/sandbox/open-banking/tpp-private.pem");
    const TPP_PUBLIC: &str = include_str!("../../../config/sandbox/open-banking/tpp-public.pem");
    const BANK_PRIVATE: &str =
        include_str!("../../../config/sandbox/open-banking/bank-private.pem");

    fn tpp() -> SigningKey {
        SigningKey::from_pkcs8_pem(TPP_PRIVATE, "tpp-test", "calmony/sandbox").expect("test key")
    }

    #[test]
    fn a_detached_signature_verifies_over_the_exact_body_only() {
        let key = tpp();
        let public = VerifyingKey::from_public_key_pem(TPP_PUBLIC).expect("test key");
        let body = br#"{"Data":{"ConsentId":"c1"}}"#;
        let now = 1_750_000_000;
        let value = sign_detached_at(body, &key, now);
        assert!(value.contains(".."), "{value}");
        let claims = verify_detached_at(&value, body, &public, now).expect("verifies");
        assert_eq!(claims.iat, now);
        assert_eq!(claims.iss, "calmony/sandbox");
        assert_eq!(claims.kid, "tpp-test");

        let tampered = br#"{"Data":{"ConsentId":"c2"}}"#;
        assert_eq!(
            verify_detached_at(&value, tampered, &public, now),
            Err(JwsError::BadSignature)
        );
        let spaced = br#"{"Data": {"ConsentId":"c1"}}"#;
        assert_eq!(
            verify_detached_at(&value, spaced, &public, now),
            Err(JwsError::BadSignature)
        );
    }

    #[test]
    fn a_signature_by_another_key_or_from_the_future_is_refused() {
        let key = tpp();
        let bank = SigningKey::from_pkcs8_pem(BANK_PRIVATE, "tpp-test", "bank").expect("test key");
        let body = b"{}";
        let now = 1_750_000_000;
        let public = key.verifying_key();
        let by_bank = sign_detached_at(body, &bank, now);
        assert_eq!(
            verify_detached_at(&by_bank, body, &public, now),
            Err(JwsError::BadSignature)
        );
        let future = sign_detached_at(body, &key, now + CLOCK_SKEW_SECS + 1);
        assert_eq!(
            verify_detached_at(&future, body, &public, now),
            Err(JwsError::IssuedInFuture)
        );
        let slight = sign_detached_at(body, &key, now + 5);
        assert!(verify_detached_at(&slight, body, &public, now).is_ok());
        let other_kid = public.clone().with_kid("someone-else");
        let signed = sign_detached_at(body, &key, now);
        assert_eq!(
            verify_detached_at(&signed, body, &other_kid, now),
            Err(JwsError::KeyId("tpp-test".into()))
        );
    }

    #[test]
    fn a_header_without_ps256_or_its_critical_claims_is_refused() {
        let key = tpp();
        let public = key.verifying_key();
        let now = 1_750_000_000;
        let forge = |header: Value| {
            let h = B64.encode(header.to_string());
            let sig = key.sign_input(format!("{h}.{}", B64.encode(b"{}")).as_bytes());
            format!("{h}..{sig}")
        };
        let hs = forge(json!({"alg": "HS256", "kid": "tpp-test",
            "crit": [CLAIM_IAT, CLAIM_ISS, CLAIM_TAN], CLAIM_IAT: now, CLAIM_ISS: "x", CLAIM_TAN: "y"}));
        assert_eq!(
            verify_detached_at(&hs, b"{}", &public, now),
            Err(JwsError::Algorithm("HS256".into()))
        );
        let no_tan = forge(json!({"alg": "PS256", "kid": "tpp-test",
            "crit": [CLAIM_IAT, CLAIM_ISS], CLAIM_IAT: now, CLAIM_ISS: "x"}));
        assert_eq!(
            verify_detached_at(&no_tan, b"{}", &public, now),
            Err(JwsError::MissingCritical(CLAIM_TAN))
        );
        for malformed in ["", "abc", "a.b.c", "a..b..c"] {
            assert!(matches!(
                verify_detached_at(malformed, b"{}", &public, now),
                Err(JwsError::Malformed(_))
            ));
        }
    }

    #[test]
    fn a_key_read_back_from_its_jwk_verifies() {
        let key = tpp();
        let jwk = key.jwk();
        let public = VerifyingKey::from_jwk(&jwk).expect("jwk");
        let value = sign_detached(b"[]", &key);
        assert!(verify_detached(&value, b"[]", &public).is_ok());
    }

    #[test]
    fn a_compact_jwt_verifies_until_it_expires() {
        let key = tpp();
        let public = key.verifying_key();
        let now = 1_750_000_000;
        let token = sign_jwt(&json!({"iss": "c", "exp": now + 300, "nonce": "n"}), &key);
        let claims = verify_jwt_at(&token, &public, now).expect("verifies");
        assert_eq!(claims.get("nonce"), Some(&json!("n")));
        assert_eq!(
            verify_jwt_at(&token, &public, now + 1000),
            Err(JwsError::Expired)
        );
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = B64.encode(json!({"iss": "c", "exp": now + 300, "nonce": "m"}).to_string());
        parts[1] = &forged;
        assert_eq!(
            verify_jwt_at(&parts.join("."), &public, now),
            Err(JwsError::BadSignature)
        );
    }
}
