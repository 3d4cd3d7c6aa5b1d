//! One Cardstream merchant account's Direct API client: one signed form POST per request,
//! one verified answer.
//!
//! Requests go out one connection pool per merchant account (reqwest keeps them alive). The
//! answer is parsed whatever its Content-Type says, its signature verified with the account's
//! secret, and only then read. Every request and its latency are counted by action.

use std::time::{Duration, Instant};

use calmony_protocol::cardstream::{Fields, verify};

use super::transformers;
use crate::gateway::outcomes::{AuthOutcome, GatewayError, ManageOutcome, Tokenised, TxnStatus};
use crate::gateway::requests::{CardToTokenise, Sale, TxnLookup};

#[derive(Clone)]
pub struct Cardstream {
    http: reqwest::Client,
    url: String,
    merchant_id: String,
    secret: String,
    /// The longest one request may take, answer included (the client's total timeout).
    timeout: Duration,
}

impl std::fmt::Debug for Cardstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cardstream")
            .field("url", &self.url)
            .field("merchant_id", &self.merchant_id)
            .finish_non_exhaustive()
    }
}

impl Cardstream {
    pub fn new(url: String, merchant_id: &str, secret: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .unwrap_or_default();
        Self {
            http,
            url,
            merchant_id: merchant_id.to_string(),
            secret: secret.to_string(),
            timeout,
        }
    }

    /// The longest one request to this account may take, answer included: a request sent is
    /// over, answered or abandoned, within it.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn merchant_id(&self) -> &str {
        &self.merchant_id
    }

    /// The Hosted Payment Page beside this account's Direct API (`…/direct/` -> `…/hosted/`).
    pub fn hosted_url(&self) -> String {
        match self.url.rfind("/direct") {
            Some(i) => format!("{}/hosted/", &self.url[..i]),
            None => format!("{}/hosted/", self.url.trim_end_matches('/')),
        }
    }

    /// Sign a form the customer's browser will post to the hosted page (the secret never
    /// leaves the daemon; the browser carries only the signature).
    pub fn sign_form(&self, mut fields: Fields) -> Fields {
        fields.insert("merchantID", self.merchant_id.as_str());
        fields.add_signature(&self.secret, None);
        fields
    }

    /// Verify a result the hosted page posted back (browser redirect or server callback).
    /// Every field the caller reads must be covered by the signature.
    pub fn verify_result(&self, fields: &Fields) -> Result<(), GatewayError> {
        let coverage = verify(fields, Some(&self.secret))
            .map_err(|e| GatewayError::Unverified(e.to_string()))?;
        for must in [
            "responseCode",
            "amount",
            "xref",
            "transactionUnique",
            "orderRef",
            "currencyCode",
        ] {
            if fields.get(must).is_some() && !coverage.covers(must) {
                return Err(GatewayError::Unverified(format!("{must} is not signed")));
            }
        }
        Ok(())
    }

    /// Sign, send, verify. The only way a request leaves the daemon.
    async fn call(&self, mut fields: Fields) -> Result<Fields, GatewayError> {
        let action = fields.get("action").unwrap_or("3DS").to_string();
        fields.insert("merchantID", self.merchant_id.as_str());
        fields.add_signature(&self.secret, None);
        let started = Instant::now();
        let result = self
            .http
            .post(&self.url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(fields.encode())
            .send()
            .await;
        let answer = match result {
            Ok(resp) if resp.status().is_success() => resp
                .bytes()
                .await
                .map_err(|e| GatewayError::Unreachable(e.to_string())),
            Ok(resp) => Err(GatewayError::Unreachable(format!("HTTP {}", resp.status()))),
            Err(e) => Err(GatewayError::Unreachable(e.to_string())),
        };
        metrics::histogram!("calmony_gateway_request_duration_seconds", "action" => action.clone())
            .record(started.elapsed().as_secs_f64());
        let body = answer.inspect_err(|_| {
            metrics::counter!("calmony_gateway_errors_total", "code" => "unreachable").increment(1);
        })?;
        let response = Fields::parse(&body).map_err(|e| GatewayError::Malformed(e.to_string()))?;
        if response.is_empty() {
            return Err(GatewayError::Malformed("empty answer".into()));
        }
        let coverage = verify(&response, Some(&self.secret)).map_err(|e| {
            metrics::counter!("calmony_gateway_errors_total", "code" => "signature").increment(1);
            GatewayError::Unverified(e.to_string())
        })?;
        for must in ["responseCode", "amount", "xref", "transactionUnique"] {
            if response.get(must).is_some() && !coverage.covers(must) {
                return Err(GatewayError::Unverified(format!("{must} is not signed")));
            }
        }
        if let Some(code) = response.get("responseCode").filter(|c| *c != "0") {
            metrics::counter!("calmony_gateway_errors_total", "code" => code.to_string())
                .increment(1);
        }
        Ok(response)
    }

    /// VERIFY the card (amount 0) to obtain its token.
    pub async fn tokenise(&self, card: &CardToTokenise) -> Result<Tokenised, GatewayError> {
        let response = self.call(transformers::verify_request(card)).await?;
        Ok(Tokenised {
            outcome: transformers::auth_outcome(&response)?,
            card: transformers::card_report(&response),
        })
    }

    /// SALE: authorise (and unless manual, capture) an amount on a tokenised card.
    pub async fn authorise(&self, sale: &Sale) -> Result<AuthOutcome, GatewayError> {
        let response = self.call(transformers::sale_request(sale)).await?;
        transformers::check_echo(&response, &sale.attempt, Some(sale.amount))?;
        transformers::auth_outcome(&response)
    }

    /// Continue a 3-D Secure challenge with what the issuer's page posted back.
    pub async fn continue_challenge(
        &self,
        reference: &str,
        posted: &[(String, String)],
    ) -> Result<AuthOutcome, GatewayError> {
        let response = self
            .call(transformers::continuation_request(reference, posted))
            .await?;
        transformers::auth_outcome(&response)
    }

    /// CAPTURE an authorised sale, optionally for less.
    pub async fn capture(&self, xref: &str, amount: i64) -> Result<ManageOutcome, GatewayError> {
        let response = self
            .call(transformers::manage_request("CAPTURE", xref, Some(amount)))
            .await?;
        transformers::manage_outcome(&response)
    }

    /// CANCEL (void) an unsettled sale.
    pub async fn void(&self, xref: &str) -> Result<ManageOutcome, GatewayError> {
        let response = self
            .call(transformers::manage_request("CANCEL", xref, None))
            .await?;
        transformers::manage_outcome(&response)
    }

    /// REFUND_SALE part or all of a settled sale.
    pub async fn refund(
        &self,
        xref: &str,
        amount: i64,
        attempt: &str,
    ) -> Result<ManageOutcome, GatewayError> {
        let response = self
            .call(transformers::refund_request(xref, amount, attempt))
            .await?;
        transformers::manage_outcome(&response)
    }

    /// QUERY a transaction by our attempt id or by its xref. `None`: the gateway never saw it.
    pub async fn status(&self, lookup: &TxnLookup) -> Result<Option<TxnStatus>, GatewayError> {
        let (attempt, xref) = match lookup {
            TxnLookup::Attempt(a) => (Some(a.as_str()), None),
            TxnLookup::Xref(x) => (None, Some(x.as_str())),
        };
        self.query(attempt, xref)
            .await?
            .as_ref()
            .map(transformers::txn_status)
            .transpose()
    }

    /// The gateway's (verified) QUERY answer for a transaction: its original response as it
    /// stands now, for a caller that reads the fields themselves (a hosted page's result).
    /// `None` when the gateway never created it; an error when it cannot say.
    pub async fn query(
        &self,
        attempt: Option<&str>,
        xref: Option<&str>,
    ) -> Result<Option<Fields>, GatewayError> {
        transformers::queried(
            self.call(transformers::query_request(attempt, xref))
                .await?,
        )
    }
}
