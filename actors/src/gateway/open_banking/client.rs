//! One bank over HTTP: discovery (once), client-credentials tokens (until they expire), signed
//! requests and verified answers.
//!
//! Every call carries a new `x-fapi-interaction-id`; every POST an `x-idempotency-key` and an
//! `x-jws-signature` over the exact bytes sent. A 2xx answer is believed only when its
//! `x-jws-signature` verifies with a key of the bank's JWKS; otherwise it is
//! [`BankError::BadSignature`], never an outcome. A 5xx, a timeout or a dropped connection is
//! [`BankError::Unavailable`]: the POST may have happened, so the caller replays its key.

use std::time::{Duration, Instant};

use bytes::Bytes;
use calmony_protocol::destination;
use calmony_protocol::open_banking::{
    Discovery, ErrorResponse, Jwks, SigningKey, TokenResponse, VerifyingKey, headers, jws, uuid_v4,
};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, OnceCell};
use url::Url;

use crate::gateway::bank_flows::BankError;

/// What discovery found: the endpoints and the keys the bank signs with.
#[derive(Debug)]
pub struct Discovered {
    pub doc: Discovery,
    pub keys: Vec<VerifyingKey>,
}

/// A token is renewed this long before it expires, so it never expires in flight.
const TOKEN_MARGIN: Duration = Duration::from_secs(15);

pub struct BankClient {
    pub id: String,
    pub name: String,
    discovery_url: String,
    client_id: String,
    client_secret: String,
    key: SigningKey,
    http: reqwest::Client,
    /// Live banks must be https and never a local address.
    live: bool,
    discovered: OnceCell<Discovered>,
    cc_token: Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for BankClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankClient")
            .field("id", &self.id)
            .field("discovery_url", &self.discovery_url)
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

/// A parsed answer: status and body bytes, signature already checked for a 2xx.
struct Answer {
    status: StatusCode,
    body: Bytes,
}

pub struct BankSettings {
    pub id: String,
    pub name: String,
    pub discovery_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub key: SigningKey,
    pub live: bool,
    pub timeout: Duration,
    /// Client certificate and key (PEM) for mutual TLS.
    pub identity_pem: Option<Vec<u8>>,
}

impl BankClient {
    pub fn new(s: BankSettings) -> Result<Self, String> {
        // reqwest is built without a default TLS provider: make sure ring is installed.
        crate::gateway::install_tls_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(s.timeout)
            .connect_timeout(Duration::from_secs(5).min(s.timeout))
            .redirect(reqwest::redirect::Policy::none());
        if s.live {
            // A public-looking name may resolve to an internal address: a live bank's names
            // are resolved by the resolver that refuses any name with a non-public address
            // (the webhook sender's), so no bank URL or discovery document can reach inside.
            builder = builder.dns_resolver(std::sync::Arc::new(
                crate::webhooks::reach::GuardedResolver(
                    calmony_protocol::destination::Reach::PublicOnly,
                ),
            ));
        }
        if let Some(pem) = &s.identity_pem {
            let identity = reqwest::Identity::from_pem(pem)
                .map_err(|e| format!("mutual TLS identity: {e}"))?;
            builder = builder.identity(identity);
        }
        let http = builder.build().map_err(|e| e.to_string())?;
        Ok(Self {
            id: s.id,
            name: s.name,
            discovery_url: s.discovery_url,
            client_id: s.client_id,
            client_secret: s.client_secret,
            key: s.key,
            http,
            live: s.live,
            discovered: OnceCell::new(),
            cc_token: Mutex::new(None),
        })
    }

    /// A URL this client may call: parsed, and for a live bank https and not local.
    fn checked(&self, raw: &str) -> Result<Url, BankError> {
        let reach = if self.live {
            destination::Reach::PublicOnly
        } else {
            destination::Reach::Anywhere
        };
        destination::check(raw, self.live, reach)
            .map(|c| c.url)
            .map_err(|e| BankError::Invalid(format!("bank URL {raw:?} (live: public https): {e}")))
    }

    /// Discovery and the JWKS, fetched once.
    pub async fn discovered(&self) -> Result<&Discovered, BankError> {
        self.discovered
            .get_or_try_init(|| async {
                let url = self.checked(&self.discovery_url)?;
                let doc: Discovery = self.fetch_unsigned(url).await?;
                for u in [
                    &doc.authorization_endpoint,
                    &doc.token_endpoint,
                    &doc.jwks_uri,
                    &doc.open_banking_pisp_base,
                ] {
                    self.checked(u)?;
                }
                let jwks: Jwks = self.fetch_unsigned(self.checked(&doc.jwks_uri)?).await?;
                let keys: Vec<VerifyingKey> = jwks
                    .keys
                    .iter()
                    .filter_map(|k| VerifyingKey::from_jwk(k).ok())
                    .collect();
                if keys.is_empty() {
                    return Err(BankError::BadSignature(
                        "the bank's JWKS has no usable RSA key".into(),
                    ));
                }
                Ok(Discovered { doc, keys })
            })
            .await
    }

    async fn fetch_unsigned<T: DeserializeOwned>(&self, url: Url) -> Result<T, BankError> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| BankError::Unavailable(e.to_string()))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| BankError::Unavailable(e.to_string()))?;
        if !status.is_success() {
            return Err(if status.is_server_error() {
                BankError::Unavailable(format!("HTTP {status}"))
            } else {
                BankError::Refused {
                    code: status.as_u16().to_string(),
                    message: "discovery failed".into(),
                }
            });
        }
        serde_json::from_slice(&body)
            .map_err(|e| BankError::Unavailable(format!("unreadable answer: {e}")))
    }

    /// Check a 2xx answer's signature with the bank's keys.
    fn verify(
        &self,
        d: &Discovered,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<(), BankError> {
        let Some(value) = signature else {
            return Err(BankError::BadSignature("the answer is unsigned".into()));
        };
        let mut last = None;
        for key in &d.keys {
            match jws::verify_detached(value, body, key) {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(BankError::BadSignature(
            last.map_or_else(|| "no key".into(), |e| e.to_string()),
        ))
    }

    /// Send `req`; a 2xx must be signed by the bank, a 5xx or failure is unavailability.
    async fn send(
        &self,
        d: &Discovered,
        req: reqwest::RequestBuilder,
    ) -> Result<Answer, BankError> {
        let resp = req
            .header(headers::INTERACTION_ID, uuid_v4())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| BankError::Unavailable(e.to_string()))?;
        let status = resp.status();
        let signature = resp
            .headers()
            .get(headers::JWS_SIGNATURE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp
            .bytes()
            .await
            .map_err(|e| BankError::Unavailable(e.to_string()))?;
        if status.is_server_error() {
            let detail = serde_json::from_slice::<ErrorResponse>(&body)
                .map_or_else(|_| format!("HTTP {status}"), |e| e.message);
            return Err(BankError::Unavailable(detail));
        }
        if status.is_success() {
            self.verify(d, signature.as_deref(), &body)?;
        }
        Ok(Answer { status, body })
    }

    /// A client-credentials token (scope `payments`), cached until shortly before it expires.
    pub async fn cc_token(&self, d: &Discovered) -> Result<String, BankError> {
        let mut cached = self.cc_token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && *until > Instant::now()
        {
            return Ok(token.clone());
        }
        let answer = self
            .token(
                d,
                &[("grant_type", "client_credentials"), ("scope", "payments")],
            )
            .await?;
        let life = Duration::from_secs(answer.expires_in).saturating_sub(TOKEN_MARGIN);
        *cached = Some((answer.access_token.clone(), Instant::now() + life));
        Ok(answer.access_token)
    }

    /// Forget the cached token (the bank said 401).
    async fn drop_token(&self) {
        *self.cc_token.lock().await = None;
    }

    /// `POST token` with `params` and our client credentials.
    pub async fn token(
        &self,
        d: &Discovered,
        params: &[(&str, &str)],
    ) -> Result<TokenResponse, BankError> {
        let form = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (k, v) in params {
                form.append_pair(k, v);
            }
            form.append_pair("client_id", &self.client_id)
                .append_pair("client_secret", &self.client_secret);
            form.finish()
        };
        let req = self
            .http
            .post(self.checked(&d.doc.token_endpoint)?)
            .header("content-type", "application/x-www-form-urlencoded")
            .header(headers::INTERACTION_ID, uuid_v4())
            .body(form);
        let resp = req
            .send()
            .await
            .map_err(|e| BankError::Unavailable(e.to_string()))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| BankError::Unavailable(e.to_string()))?;
        if status.is_server_error() {
            return Err(BankError::Unavailable(format!(
                "token endpoint HTTP {status}"
            )));
        }
        if !status.is_success() {
            let error: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            return Err(BankError::Refused {
                code: error["error"]
                    .as_str()
                    .unwrap_or("token_refused")
                    .to_owned(),
                message: error["error_description"].as_str().unwrap_or("").to_owned(),
            });
        }
        serde_json::from_slice(&body)
            .map_err(|e| BankError::Unavailable(format!("unreadable token answer: {e}")))
    }

    /// `POST <pisp>/<path>` with `body` exactly as given, signed, under `idempotency_key`.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        token: &str,
        idempotency_key: &str,
        body: Vec<u8>,
    ) -> Result<T, BankError> {
        let d = self.discovered().await?;
        let url = self.checked(&format!(
            "{}/{path}",
            d.doc.open_banking_pisp_base.trim_end_matches('/')
        ))?;
        let signature = jws::sign_detached(&body, &self.key);
        let req = self
            .http
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header(headers::IDEMPOTENCY_KEY, idempotency_key)
            .header(headers::JWS_SIGNATURE, signature)
            .body(body);
        let answer = self.send(d, req).await?;
        self.read(answer)
            .await
            .and_then(|v| v.ok_or_else(|| refused_unknown(path)))
    }

    /// `GET <pisp>/<path>` with a client-credentials token. `None`: the bank does not know the
    /// resource (it answers 400 `UK.OBIE.Resource.NotFound` for unknown ids).
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, BankError> {
        let d = self.discovered().await?;
        let url = self.checked(&format!(
            "{}/{path}",
            d.doc.open_banking_pisp_base.trim_end_matches('/')
        ))?;
        let token = self.cc_token(d).await?;
        let answer = self.send(d, self.http.get(url).bearer_auth(token)).await?;
        self.read(answer).await
    }

    async fn read<T: DeserializeOwned>(&self, answer: Answer) -> Result<Option<T>, BankError> {
        if answer.status.is_success() {
            return serde_json::from_slice(&answer.body)
                .map(Some)
                .map_err(|e| BankError::Unavailable(format!("unreadable answer: {e}")));
        }
        if answer.status == StatusCode::UNAUTHORIZED {
            // An expired or revoked token says nothing of the request itself: a resend under
            // the same key may already have been acted on. Unknown, never a refusal.
            self.drop_token().await;
            return Err(BankError::Unavailable(
                "the bank refused our token (401)".into(),
            ));
        }
        if answer.status == StatusCode::CONFLICT || answer.status == StatusCode::TOO_MANY_REQUESTS {
            // A concurrent request under the same key, or throttling: the first may succeed.
            return Err(BankError::Unavailable(format!(
                "the bank answered {} (busy or a concurrent request)",
                answer.status
            )));
        }
        let error = serde_json::from_slice::<ErrorResponse>(&answer.body).ok();
        let code = error
            .as_ref()
            .and_then(|e| e.first_code())
            .unwrap_or("")
            .to_owned();
        if code == "UK.OBIE.Resource.NotFound" {
            return Ok(None);
        }
        Err(BankError::Refused {
            code: if code.is_empty() {
                answer.status.as_u16().to_string()
            } else {
                code
            },
            message: error.map_or_else(|| format!("HTTP {}", answer.status), |e| e.message),
        })
    }

    /// The authorise URL for `consent_id`, with a request object signed by our key.
    pub async fn authorize_url(
        &self,
        consent_id: &str,
        state: &str,
        nonce: &str,
        redirect_uri: &str,
    ) -> Result<Url, BankError> {
        let d = self.discovered().await?;
        let now = jws::now_secs();
        let intent = serde_json::json!({ "value": consent_id, "essential": true });
        let claims = serde_json::json!({
            "iss": self.client_id,
            "aud": d.doc.issuer,
            "client_id": self.client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": "openid payments",
            "state": state,
            "nonce": nonce,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "claims": {
                "id_token": { "openbanking_intent_id": intent, "acr": { "essential": true, "values": ["urn:openbanking:psd2:sca"] } },
                "userinfo": { "openbanking_intent_id": intent },
            },
        });
        let request = jws::sign_jwt(&claims, &self.key);
        let mut url = self.checked(&d.doc.authorization_endpoint)?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", "openid payments")
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("request", &request);
        Ok(url)
    }

    /// An event notification (SET) from this bank: signed by one of its keys, issued by it,
    /// addressed to our client id; the id of the resource it names.
    pub async fn verify_notification(&self, token: &str) -> Result<String, BankError> {
        let d = self.discovered().await?;
        let claims = d
            .keys
            .iter()
            .find_map(|k| jws::verify_jwt(token, k).ok())
            .ok_or_else(|| BankError::BadSignature("the notification does not verify".into()))?;
        let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).unwrap_or("");
        if text("iss") != d.doc.issuer || text("aud") != self.client_id {
            return Err(BankError::BadSignature(
                "the notification is not the bank's for us (iss or aud)".into(),
            ));
        }
        claims
            .get("events")
            .and_then(|e| e.get(NOTIFICATION_EVENT))
            .and_then(|e| e.get("subject"))
            .and_then(|s| s.get("http://openbanking.org.uk/rid"))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| BankError::Invalid("the notification names no resource".into()))
    }

    /// Exchange `code`; the consent and the nonce the bank's signed id_token names, when it
    /// sent one.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<(String, Option<String>, Option<String>), BankError> {
        let d = self.discovered().await?;
        let answer = self
            .token(
                d,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", redirect_uri),
                ],
            )
            .await?;
        let (consent_id, nonce) = match &answer.id_token {
            None => (None, None),
            Some(id_token) => {
                let claims = d
                    .keys
                    .iter()
                    .find_map(|k| jws::verify_jwt(id_token, k).ok())
                    .ok_or_else(|| {
                        BankError::BadSignature("the id_token does not verify".into())
                    })?;
                let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).unwrap_or("");
                if text("iss") != d.doc.issuer || text("aud") != self.client_id {
                    return Err(BankError::BadSignature(
                        "the id_token is not the bank's for us (iss or aud)".into(),
                    ));
                }
                let named =
                    |name: &str| claims.get(name).and_then(|v| v.as_str()).map(str::to_owned);
                (named("openbanking_intent_id"), named("nonce"))
            }
        };
        Ok((answer.access_token, consent_id, nonce))
    }
}

/// The one event an Open Banking notification carries: a resource changed.
pub const NOTIFICATION_EVENT: &str = "urn:uk:org:openbanking:events:resource-update";

fn refused_unknown(path: &str) -> BankError {
    BankError::Refused {
        code: "UK.OBIE.Resource.NotFound".into(),
        message: format!("{path}: not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TPP_PEM: &str = include_str!("../../../../config/sandbox/open-banking/tpp-private.pem");

    fn client(live: bool) -> BankClient {
        BankClient::new(BankSettings {
            id: "b".into(),
            name: "B".into(),
            discovery_url: "https://bank.example/.well-known/openid-configuration".into(),
            client_id: "c".into(),
            client_secret: "s".into(),
            key: SigningKey::from_pkcs8_pem(TPP_PEM, "k", "c").expect("test key"),
            live,
            timeout: Duration::from_secs(5),
            identity_pem: None,
        })
        .expect("client")
    }

    #[test]
    fn a_live_bank_is_reached_only_over_public_https() {
        let (live, test) = (client(true), client(false));
        for (url, live_ok) in [
            ("https://bank.example/token", true),
            ("http://bank.example/token", false),
            ("https://localhost/token", false),
            ("https://127.0.0.1/token", false),
            ("https://10.1.2.3/token", false),
            ("https://bank.internal/token", false),
        ] {
            assert_eq!(live.checked(url).is_ok(), live_ok, "{url}");
            assert!(
                test.checked(url).is_ok(),
                "test mode reaches the local sandbox: {url}"
            );
        }
    }
}
