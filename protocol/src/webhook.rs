//! Webhooks on the wire: the signature header, its verification, the event catalogue, and the
//! endpoint and attempt resources.
//!
//! A delivery carries `Calmony-Signature` and an identical `Stripe-Signature`:
//! `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>[,v1=…]`, one `v1` per secret
//! that is active (a rolled secret signs alongside the new one for the overlap). The key is the
//! secret string as given to the merchant, `whsec_` prefix included, exactly as Stripe's
//! libraries expect, so `stripe.Webhook.construct_event` accepts our deliveries.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::destination::{self, Reach};
use crate::error::ApiError;
use crate::metadata::{self, Metadata, MetadataUpdate};
use crate::params::{Field, Params};

pub const ENDPOINT_PREFIX: &str = "we";
pub const ATTEMPT_PREFIX: &str = "wha";
/// Stripe's limit on endpoints per account (per project and mode here).
pub const MAX_ENDPOINTS: usize = 16;
/// Default tolerance of [`verify`]: how old a signed timestamp may be.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Every event type the daemon emits (or will, as capabilities land), as `enabled_events`
/// may name them. `*` means all.
pub const CATALOGUE: &[&str] = &[
    "billing_portal.configuration.created",
    "billing_portal.configuration.updated",
    "billing_portal.session.created",
    "charge.captured",
    "charge.failed",
    "charge.pending",
    "charge.refund.updated",
    "charge.refunded",
    "charge.succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.completed",
    "checkout.session.expired",
    "customer.created",
    "customer.deleted",
    "customer.updated",
    "customer.subscription.created",
    "customer.subscription.deleted",
    "customer.subscription.trial_will_end",
    "customer.subscription.updated",
    "invoice.created",
    "invoice.deleted",
    "invoice.finalized",
    "invoice.marked_uncollectible",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "invoice.updated",
    "invoice.voided",
    "invoiceitem.created",
    "payment_intent.amount_capturable_updated",
    "payment_intent.canceled",
    "payment_intent.created",
    "payment_intent.failed",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.requires_action",
    "payment_intent.succeeded",
    "payment_method.attached",
    "payment_method.detached",
    "price.created",
    "product.created",
    "refund.created",
    "refund.failed",
    "refund.updated",
    "subscription.created",
    "subscription.deleted",
    "subscription.trial_will_end",
    "subscription.updated",
    "webhook_endpoint.disabled",
];

/// The HMAC of one signed payload, lowercase hex.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The header value for a delivery: `t=…,v1=…` with one `v1` per active secret.
pub fn header<'a>(
    timestamp: i64,
    secrets: impl IntoIterator<Item = &'a str>,
    body: &[u8],
) -> String {
    let mut out = format!("t={timestamp}");
    for s in secrets {
        out.push_str(",v1=");
        out.push_str(&signature(s, timestamp, body));
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the signature header has no timestamp")]
    NoTimestamp,
    #[error("the signature header has no v1 signature")]
    NoSignature,
    #[error("no v1 signature matches the payload")]
    Mismatch,
    #[error("the timestamp is older than the tolerance")]
    TooOld,
}

/// Verify a delivery as a merchant would: some `v1` matches (constant time), and the
/// timestamp is no older than `tolerance` seconds before `now`. Unknown schemes are ignored.
pub fn verify(
    body: &[u8],
    header: &str,
    secret: &str,
    tolerance: i64,
    now: i64,
) -> Result<i64, VerifyError> {
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => candidates.push(v.to_string()),
            _ => {}
        }
    }
    let t = t.ok_or(VerifyError::NoTimestamp)?;
    if candidates.is_empty() {
        return Err(VerifyError::NoSignature);
    }
    let expected = signature(secret, t, body);
    let matched = candidates
        .iter()
        .any(|c| bool::from(c.as_bytes().ct_eq(expected.as_bytes())));
    if !matched {
        return Err(VerifyError::Mismatch);
    }
    if tolerance > 0 && now - t > tolerance {
        return Err(VerifyError::TooOld);
    }
    Ok(t)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookEndpoint {
    pub id: String,
    pub object: String,
    pub api_version: Option<String>,
    pub application: Option<String>,
    pub created: i64,
    pub description: Option<String>,
    pub enabled_events: Vec<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    /// Only in the answer to create (and to a secret roll).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub secret: Option<String>,
    pub status: String,
    pub url: String,
    /// The Calmony docs' spelling.
    #[serde(rename = "enabledEvents")]
    pub enabled_events_camel: Vec<String>,
}

impl WebhookEndpoint {
    pub fn wants(&self, event_type: &str) -> bool {
        self.status == "enabled"
            && self
                .enabled_events
                .iter()
                .any(|e| e == "*" || e == event_type)
    }
}

/// One try at delivering one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookAttempt {
    pub id: String,
    pub object: String,
    pub created: i64,
    pub event: String,
    pub webhook_endpoint: String,
    pub url: String,
    /// 1 for the first try.
    pub attempt: u32,
    /// `succeeded`, `failed`, or `skipped` (the endpoint was disabled or deleted).
    pub status: String,
    pub http_status: Option<u16>,
    pub duration_ms: u64,
    /// The first bytes of the answer, or what went wrong.
    pub response: String,
    /// When the next try is due, if there will be one.
    pub next_attempt_at: Option<i64>,
    pub livemode: bool,
}

/// Create or update parameters.
#[derive(Debug, Clone, Default)]
pub struct EndpointParams {
    pub url: Option<String>,
    pub enabled_events: Option<Vec<String>>,
    pub description: Field<String>,
    pub metadata: Option<MetadataUpdate>,
    pub disabled: Option<bool>,
}

/// The URL policy: a valid absolute http(s) URL; in live mode https only. Under
/// [`Reach::PublicOnly`] (every live endpoint) never a local name or an address that is not
/// public, however spelled ([`crate::destination`]). The answer names `url`.
pub fn check_url(url: &str, livemode: bool, reach: Reach) -> Result<(), ApiError> {
    if url.len() > 2048 {
        return Err(ApiError::invalid_param(
            "url_invalid",
            "url",
            "The url must be at most 2048 characters.",
        ));
    }
    destination::check(url, livemode, reach)
        .map(|_| ())
        .map_err(|e| ApiError::invalid_param("url_invalid", "url", e.to_string()))
}

fn take_events(p: &mut Params) -> Result<Option<Vec<String>>, ApiError> {
    let Field::Set(events) = p.string_array(&["enabled_events", "enabledEvents"])? else {
        return Ok(None);
    };
    if events.is_empty() {
        return Err(ApiError::invalid_param(
            "parameter_invalid_empty",
            "enabled_events",
            "enabled_events must name at least one event type, or `*`.",
        ));
    }
    for (i, e) in events.iter().enumerate() {
        if e != "*" && !CATALOGUE.contains(&e.as_str()) {
            return Err(ApiError::invalid_param(
                "parameter_invalid_value",
                &format!("enabled_events[{i}]"),
                format!("Invalid event type {e:?}: not in the event catalogue."),
            ));
        }
    }
    Ok(Some(events))
}

impl EndpointParams {
    /// `reach`: where this mode's endpoints may point (live: [`Reach::PublicOnly`] always).
    pub fn take_create(mut p: Params, livemode: bool, reach: Reach) -> Result<Self, ApiError> {
        let url = p.required_string(&["url"], 4096)?;
        check_url(&url, livemode, reach)?;
        let enabled_events =
            take_events(&mut p)?.ok_or_else(|| ApiError::missing_param("enabled_events"))?;
        let e = Self {
            url: Some(url),
            enabled_events: Some(enabled_events),
            description: p.string_max(&["description"], 5000)?,
            metadata: metadata::take(&mut p)?,
            disabled: None,
        };
        // One API version is served (README: accepted, not acted on); there are no connected
        // accounts, so `connect=true` is refused by name.
        p.ignore(&["api_version", "apiVersion"]);
        if p.boolean(&["connect"])? == Field::Set(true) {
            return Err(ApiError::invalid_param(
                "parameter_invalid_boolean",
                "connect",
                "There are no connected accounts: connect must be false.",
            ));
        }
        p.expand()?;
        p.finish()?;
        Ok(e)
    }

    pub fn take_update(mut p: Params, livemode: bool, reach: Reach) -> Result<Self, ApiError> {
        let url = p.string_max(&["url"], 4096)?.into_option();
        if let Some(u) = &url {
            check_url(u, livemode, reach)?;
        }
        let e = Self {
            url,
            enabled_events: take_events(&mut p)?,
            description: p.string_max(&["description"], 5000)?,
            metadata: metadata::take(&mut p)?,
            disabled: p.boolean(&["disabled"])?.into_option(),
        };
        p.expand()?;
        p.finish()?;
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip_with_two_secrets() {
        let body = br#"{"id":"evt_1"}"#;
        let h = header(1_700_000_000, ["whsec_old", "whsec_new"], body);
        assert_eq!(h.matches("v1=").count(), 2);
        assert_eq!(
            verify(body, &h, "whsec_new", 300, 1_700_000_100),
            Ok(1_700_000_000)
        );
        assert_eq!(
            verify(body, &h, "whsec_old", 300, 1_700_000_100),
            Ok(1_700_000_000)
        );
        assert_eq!(
            verify(body, &h, "whsec_other", 300, 1_700_000_100),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"{}", &h, "whsec_new", 300, 1_700_000_100),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(body, &h, "whsec_new", 300, 1_700_000_301),
            Err(VerifyError::TooOld)
        );
        assert_eq!(
            verify(body, &h, "whsec_new", 0, 1_800_000_000),
            Ok(1_700_000_000)
        );
        assert_eq!(
            verify(body, "v1=abc", "s", 300, 0),
            Err(VerifyError::NoTimestamp)
        );
        assert_eq!(
            verify(body, "t=1,v0=abc", "s", 300, 0),
            Err(VerifyError::NoSignature)
        );
    }

    #[test]
    fn known_hmac() {
        // HMAC-SHA256("whsec_test", "1.{}"), computed with Python's hmac module.
        assert_eq!(
            signature("whsec_test", 1, b"{}"),
            "7500d5d4be4b3ef07af1fe56f7d522d135cdaa7530de557e67cc1049c52de094"
        );
    }

    #[test]
    fn url_policy() {
        assert!(check_url("https://shop.example/hooks", true, Reach::PublicOnly).is_ok());
        assert!(check_url("http://127.0.0.1:9000/hooks", false, Reach::Anywhere).is_ok());
        for (url, live) in [
            ("http://shop.example/hooks", true),
            ("https://127.0.0.1/hooks", true),
            ("https://10.1.2.3/x", true),
            ("https://192.168.0.1/x", true),
            ("https://[::1]/x", true),
            ("https://localhost/x", true),
            ("ftp://x.example/", false),
            ("not a url", false),
            ("https:///nohost", false),
        ] {
            let e = check_url(url, live, Reach::PublicOnly).expect_err(url);
            assert_eq!(e.param.as_deref(), Some("url"), "{url}");
        }
    }

    #[test]
    fn event_names_are_checked() {
        let p = Params::new(
            crate::params::parse_form(b"url=https%3A%2F%2Fa.example&enabled_events[]=payment_intent.succeeded&enabled_events[]=nope.nope")
                .expect("form"),
        );
        let e = EndpointParams::take_create(p, false, Reach::Anywhere).expect_err("unknown event");
        assert_eq!(e.param.as_deref(), Some("enabled_events[1]"));
    }
}
