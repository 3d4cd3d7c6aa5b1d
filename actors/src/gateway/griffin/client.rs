//! One Griffin organization over HTTP.
//!
//! Links in Griffin's answers are relative to the API root (`/v0/...`), so every URL is the
//! configured base followed by the link: `https://api.griffin.com` + `/v0/index`, or the
//! sandbox's `<public>/sandbox/griffin` + `/v0/index`. A live client refuses any URL that is
//! not public https, and resolves names through the public-only resolver, so no answer can
//! point it inside. A 5xx, a timeout or a dropped connection is [`GriffinError::Unavailable`]:
//! a POST may have happened, so the caller looks before it sends again.

use std::time::Duration;

use calmony_protocol::destination;
use calmony_protocol::griffin::page::{
    BankAccountItems, PaymentItems, SubmissionItems, TransactionItems,
};
use calmony_protocol::griffin::signature::sign_request;
use calmony_protocol::griffin::{
    AUTH_SCHEME, BankAccount, ErrorBody, Index, NewPayment, NewSubmission, Organization, Page,
    Payment, PaymentScheme, PublicKeys, SearchQuery, SigningKey, Submission,
};
use calmony_protocol::secret::Secret;
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;
use url::Url;

/// Why a Griffin call did not give an answer to act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GriffinError {
    /// No answer, or a 5xx: a POST may have been applied; look before sending again.
    #[error("Griffin is unavailable: {0}")]
    Unavailable(String),
    /// Griffin said no (4xx): its status and first error.
    #[error("Griffin refused ({status}): {message}")]
    Refused { status: u16, message: String },
    /// A URL or answer we will not use.
    #[error("invalid Griffin request or answer: {0}")]
    Invalid(String),
}

pub struct GriffinSettings {
    /// The API root, before `/v0`.
    pub base_url: String,
    pub api_key: String,
    /// Signs every request when present (required live).
    pub key: Option<SigningKey>,
    /// The settlement account's URL; `None`: the organization's first.
    pub account_url: Option<String>,
    pub live: bool,
    pub timeout: Duration,
}

pub struct GriffinClient {
    base: String,
    api_key: Secret,
    key: Option<SigningKey>,
    live: bool,
    timeout: Duration,
    http: reqwest::Client,
    configured_account: Option<String>,
    account_url: OnceCell<String>,
}

impl std::fmt::Debug for GriffinClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GriffinClient")
            .field("base", &self.base)
            .field("live", &self.live)
            .field("signed", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

impl GriffinClient {
    pub fn new(s: GriffinSettings) -> Result<Self, String> {
        crate::gateway::install_tls_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(s.timeout)
            .connect_timeout(Duration::from_secs(5).min(s.timeout))
            .redirect(reqwest::redirect::Policy::none());
        if s.live {
            builder = builder.dns_resolver(std::sync::Arc::new(
                crate::webhooks::reach::GuardedResolver(
                    calmony_protocol::destination::Reach::PublicOnly,
                ),
            ));
        }
        let http = builder.build().map_err(|e| e.to_string())?;
        let client = Self {
            base: s.base_url.trim_end_matches('/').to_owned(),
            api_key: Secret::new(s.api_key),
            key: s.key,
            live: s.live,
            timeout: s.timeout,
            http,
            configured_account: s.account_url,
            account_url: OnceCell::new(),
        };
        client.url("/v0/index").map_err(|e| e.to_string())?;
        Ok(client)
    }

    /// The longest one request may take, answer included.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `base` + `link`, checked: a link must be a path, and a live URL public https.
    fn url(&self, link: &str) -> Result<Url, GriffinError> {
        if !link.starts_with('/') {
            return Err(GriffinError::Invalid(format!(
                "not a relative link: {link:?}"
            )));
        }
        let raw = format!("{}{link}", self.base);
        let reach = if self.live {
            destination::Reach::PublicOnly
        } else {
            destination::Reach::Anywhere
        };
        destination::check(&raw, self.live, reach)
            .map(|c| c.url)
            .map_err(|e| {
                GriffinError::Invalid(format!("Griffin URL {raw:?} (live: public https): {e}"))
            })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        link: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, GriffinError> {
        let url = self.url(link)?;
        let body = body.unwrap_or_default();
        let mut req = self.http.request(method.clone(), url.clone()).header(
            "authorization",
            format!("{AUTH_SCHEME} {}", self.api_key.expose()),
        );
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        if let Some(key) = &self.key {
            let now = crate::clock::now_ms().div_euclid(1000);
            let nonce = ulid::Ulid::new().to_string();
            let headers = sign_request(
                key,
                method.as_str(),
                &url,
                Some("application/json"),
                &body,
                now,
                &nonce,
            )
            .map_err(|e| GriffinError::Invalid(e.to_string()))?;
            for (name, value) in headers {
                req = req.header(name, value);
            }
        }
        if !body.is_empty() {
            req = req.body(body);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| GriffinError::Unavailable(e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| GriffinError::Unavailable(e.to_string()))?;
        if status.is_server_error() {
            return Err(GriffinError::Unavailable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|b| b.summary())
                .unwrap_or_else(|_| format!("HTTP {status}"));
            return Err(GriffinError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| GriffinError::Invalid(format!("unreadable answer from {link}: {e}")))
    }

    async fn get<T: DeserializeOwned>(&self, link: &str) -> Result<T, GriffinError> {
        self.call(Method::GET, link, None).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        link: &str,
        body: &B,
    ) -> Result<T, GriffinError> {
        let bytes = serde_json::to_vec(body).map_err(|e| GriffinError::Invalid(e.to_string()))?;
        self.call(Method::POST, link, Some(bytes)).await
    }

    /// The keys Griffin signs webhooks with (`/v0/security/public-keys`).
    pub async fn public_keys(&self) -> Result<PublicKeys, GriffinError> {
        self.get("/v0/security/public-keys").await
    }

    pub async fn index(&self) -> Result<Index, GriffinError> {
        self.get("/v0/index").await
    }

    pub async fn organization(&self) -> Result<Organization, GriffinError> {
        let index = self.index().await?;
        self.get(&index.organization_url).await
    }

    /// The settlement account's URL: configured, or the organization's first account,
    /// found once by following links.
    pub async fn account_url(&self) -> Result<&str, GriffinError> {
        self.account_url
            .get_or_try_init(|| async {
                if let Some(url) = &self.configured_account {
                    return Ok(url.clone());
                }
                let org = self.organization().await?;
                let accounts: Page<BankAccountItems> =
                    self.get(&org.organization_bank_accounts_url).await?;
                accounts
                    .items
                    .bank_accounts
                    .into_iter()
                    .next()
                    .map(|a| a.account_url)
                    .ok_or_else(|| GriffinError::Invalid("the organization has no account".into()))
            })
            .await
            .map(String::as_str)
    }

    pub async fn account(&self) -> Result<BankAccount, GriffinError> {
        let url = self.account_url().await?.to_owned();
        self.get(&url).await
    }

    /// A page of the ledger, oldest first. `next`: a `links.next` from the previous page (it
    /// keeps the filters); else the first page of entries processed at or after `since`.
    pub async fn transactions(
        &self,
        next: Option<&str>,
        since: Option<&str>,
        page_size: u8,
    ) -> Result<Page<TransactionItems>, GriffinError> {
        let link = match next {
            Some(link) => link.to_owned(),
            None => {
                let account = self.account().await?;
                let mut q = form_urlencoded::Serializer::new(String::new());
                q.append_pair("sort", "processed-at");
                q.append_pair("page[size]", &page_size.clamp(1, 200).to_string());
                if let Some(since) = since {
                    q.append_pair("filter[processed-at][gte]", since);
                }
                format!("{}?{}", account.account_transactions_url, q.finish())
            }
        };
        self.get(&link).await
    }

    /// Create an outbound payment (not yet sent). Not idempotent: before a retry, look for
    /// it with [`Self::find_payments`] by its reference.
    pub async fn create_payment(&self, payment: &NewPayment) -> Result<Payment, GriffinError> {
        let account = self.account().await?;
        self.post(&account.account_payments_url, payment).await
    }

    /// One ledger entry, by its `account-transaction-url` (a webhook names it; Griffin's
    /// advice is to read the resource before acting on an event).
    pub async fn transaction(
        &self,
        url: &str,
    ) -> Result<calmony_protocol::griffin::Transaction, GriffinError> {
        self.get(url).await
    }

    /// A payment as it stands, by its `payment-url`.
    pub async fn payment(&self, url: &str) -> Result<Payment, GriffinError> {
        self.get(url).await
    }

    /// Send a created payment by Faster Payments: moves money once `delivered`.
    pub async fn submit(&self, payment: &Payment) -> Result<Submission, GriffinError> {
        let body = NewSubmission {
            payment_scheme: PaymentScheme::Fps,
        };
        self.post(&payment.payment_submissions_url, &body).await
    }

    /// A payment's submissions: what to look at before submitting it again, since a lost
    /// answer to a submit may still have sent the money.
    pub async fn submissions(&self, payment: &Payment) -> Result<Vec<Submission>, GriffinError> {
        let page: Page<SubmissionItems> = self.get(&payment.payment_submissions_url).await?;
        Ok(page.items.submissions)
    }

    /// A submission as it stands (follow `submission-url` or `latest-submission-url`).
    pub async fn submission(&self, url: &str) -> Result<Submission, GriffinError> {
        self.get(url).await
    }

    /// The organization's payments whose reference (or scheme id) matches `reference`.
    pub async fn find_payments(&self, reference: &str) -> Result<Vec<Payment>, GriffinError> {
        let org = self.organization().await?;
        let query = SearchQuery {
            search_query: reference.to_owned(),
        };
        let found: Page<PaymentItems> = self
            .post(&org.organization_payments_search_url, &query)
            .await?;
        Ok(found.items.payments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str, live: bool) -> Result<GriffinClient, String> {
        GriffinClient::new(GriffinSettings {
            base_url: base.into(),
            api_key: "g-test-x".into(),
            key: None,
            account_url: None,
            live,
            timeout: Duration::from_secs(1),
        })
    }

    #[test]
    fn links_join_the_base_and_live_urls_are_public_https() {
        let test = client("http://127.0.0.1:4242/sandbox/griffin/", false)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            test.url("/v0/index").map(|u| u.to_string()),
            Ok("http://127.0.0.1:4242/sandbox/griffin/v0/index".to_owned())
        );
        assert!(matches!(
            test.url("https://elsewhere.example/v0/index"),
            Err(GriffinError::Invalid(_))
        ));
        for (base, ok) in [
            ("https://api.griffin.com", true),
            ("http://api.griffin.com", false),
            ("https://127.0.0.1", false),
            ("https://localhost", false),
        ] {
            assert_eq!(client(base, true).is_ok(), ok, "{base}");
        }
    }
}
