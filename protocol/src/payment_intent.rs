//! The payment intent resource: the lifecycle of one payment, and its parameters.
//!
//! ```text
//! requires_payment_method ─(payment method)─> requires_confirmation ─(confirm)─> processing
//! processing ─> succeeded | requires_capture (manual) | requires_action (3-D Secure)
//!            └> requires_payment_method (declined, with last_payment_error)
//! requires_action ─(challenge done)─> processing ─> …
//! requires_capture ─(capture)─> succeeded;  any but succeeded/processing ─(cancel)─> canceled
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use crate::metadata::{self, Metadata, MetadataUpdate};
use crate::params::{Field, Params};

pub const PREFIX: &str = "pi";

/// Largest amount accepted, in pence (£999,999.99, as Stripe's limit for GBP).
pub const MAX_AMOUNT: i64 = 99_999_999;

pub mod status {
    pub const REQUIRES_PAYMENT_METHOD: &str = "requires_payment_method";
    pub const REQUIRES_CONFIRMATION: &str = "requires_confirmation";
    pub const REQUIRES_ACTION: &str = "requires_action";
    pub const PROCESSING: &str = "processing";
    pub const REQUIRES_CAPTURE: &str = "requires_capture";
    pub const SUCCEEDED: &str = "succeeded";
    pub const CANCELED: &str = "canceled";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PaymentIntent {
    pub id: String,
    pub object: String,
    pub amount: i64,
    pub amount_capturable: i64,
    pub amount_received: i64,
    pub automatic_payment_methods: Option<Value>,
    pub canceled_at: Option<i64>,
    pub cancellation_reason: Option<String>,
    pub capture_method: String,
    pub client_secret: String,
    pub confirmation_method: String,
    pub created: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub description: Option<String>,
    pub last_payment_error: Option<Value>,
    pub latest_charge: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    pub next_action: Option<Value>,
    pub payment_method: Option<String>,
    pub payment_method_types: Vec<String>,
    pub processing: Option<Value>,
    pub receipt_email: Option<String>,
    pub return_url: Option<String>,
    pub setup_future_usage: Option<String>,
    pub shipping: Option<Value>,
    pub statement_descriptor: Option<String>,
    pub status: String,
    /// The Calmony docs' spellings and the gateway's transaction id.
    #[serde(rename = "customerId")]
    pub customer_id: Option<String>,
    #[serde(rename = "paymentMethodId")]
    pub payment_method_id: Option<String>,
    #[serde(rename = "cardstreamTransactionId")]
    pub cardstream_transaction_id: Option<String>,
}

impl PaymentIntent {
    /// A new card payment of `amount` pence in `currency` as the API's create makes it
    /// (`requires_payment_method`, captured automatically, a fresh client secret); callers set
    /// what their path decides on top.
    pub fn new(id: String, amount: i64, currency: String, created: i64, livemode: bool) -> Self {
        Self {
            client_secret: format!("{id}_secret_{}", crate::ids::random_alnum(24)),
            id,
            object: "payment_intent".into(),
            amount,
            amount_capturable: 0,
            amount_received: 0,
            automatic_payment_methods: None,
            canceled_at: None,
            cancellation_reason: None,
            capture_method: "automatic".into(),
            confirmation_method: "automatic".into(),
            created,
            currency,
            customer: None,
            description: None,
            last_payment_error: None,
            latest_charge: None,
            livemode,
            metadata: Metadata::default(),
            next_action: None,
            payment_method: None,
            payment_method_types: vec!["card".into()],
            processing: None,
            receipt_email: None,
            return_url: None,
            setup_future_usage: None,
            shipping: None,
            statement_descriptor: None,
            status: status::REQUIRES_PAYMENT_METHOD.into(),
            customer_id: None,
            payment_method_id: None,
            cardstream_transaction_id: None,
        }
    }

    pub fn set_customer(&mut self, c: Option<String>) {
        self.customer_id = c.clone();
        self.customer = c;
    }

    pub fn set_payment_method(&mut self, pm: Option<String>) {
        self.payment_method_id = pm.clone();
        self.payment_method = pm;
    }
}

/// Read `currency`: GBP only, either case.
fn take_currency(p: &mut Params, required: bool) -> Result<Option<String>, ApiError> {
    match p.string_max(&["currency"], 3)? {
        Field::Set(c) if c.eq_ignore_ascii_case("gbp") => Ok(Some("gbp".into())),
        Field::Set(c) => Err(ApiError::invalid_param(
            "parameter_invalid_value",
            "currency",
            format!("Invalid currency: {c}. Calmony Pay supports gbp only."),
        )),
        _ if required => Err(ApiError::missing_param("currency")),
        _ => Ok(None),
    }
}

fn take_amount(p: &mut Params, required: bool) -> Result<Option<i64>, ApiError> {
    match p.integer(&["amount"], i64::MIN, i64::MAX)? {
        Field::Set(a) if a < 1 => Err(ApiError::invalid_param(
            "amount_too_small",
            "amount",
            "Amount must be at least 1 penny (amounts are in pence).",
        )),
        Field::Set(a) if a > MAX_AMOUNT => Err(ApiError::invalid_param(
            "amount_too_large",
            "amount",
            format!("Amount must be no more than {MAX_AMOUNT} pence."),
        )),
        Field::Set(a) => Ok(Some(a)),
        _ if required => Err(ApiError::missing_param("amount")),
        _ => Ok(None),
    }
}

/// `capture_method`: `manual` holds the authorisation for a capture; `automatic` and
/// `automatic_async` (the same thing here: a card capture is never asynchronous) capture at once.
pub fn take_capture_method(p: &mut Params) -> Result<String, ApiError> {
    Ok(p.one_of(
        &["capture_method", "captureMethod"],
        &["automatic", "automatic_async", "manual"],
    )?
    .into_option()
    .filter(|m| m == "manual")
    .unwrap_or_else(|| "automatic".into()))
}

/// The payment method types the daemon takes: cards, and Pay by Bank (a bank transfer the
/// payer approves at their bank, GBP only).
pub const METHOD_TYPES: [&str; 2] = ["card", PAY_BY_BANK];
/// Pay by Bank's payment method type, as Stripe spells it.
pub const PAY_BY_BANK: &str = "pay_by_bank";

/// `payment_method_types[]`: `card` and `pay_by_bank`; any other type (`bacs_debit`, …) is
/// refused rather than shown a page that cannot take it. `None` when not given.
pub fn take_payment_method_types(p: &mut Params) -> Result<Option<Vec<String>>, ApiError> {
    let name = p.name("payment_method_types");
    match p.string_array(&["payment_method_types", "paymentMethodTypes"])? {
        Field::Set(types) if types.is_empty() => Err(ApiError::invalid_param(
            "parameter_invalid_array",
            &name,
            format!("{name} must name at least one payment method type."),
        )),
        Field::Set(types) => match types.iter().find(|t| !METHOD_TYPES.contains(&t.as_str())) {
            Some(other) => Err(ApiError::invalid_param(
                "parameter_invalid_value",
                &name,
                format!(
                    "The payment method type {other:?} is not supported: only `card` and \
                     `pay_by_bank` payment methods are."
                ),
            )),
            None => {
                let mut unique: Vec<String> = Vec::new();
                for t in types {
                    if !unique.contains(&t) {
                        unique.push(t);
                    }
                }
                Ok(Some(unique))
            }
        },
        _ => Ok(None),
    }
}

/// `payment_method_data[type]`: a payment method made for this confirmation. Only
/// `pay_by_bank` is taken inline (a card is tokenised through `/v1/payment_methods` first, so
/// card numbers never pass through a payment intent).
pub fn take_payment_method_data(p: &mut Params) -> Result<Option<String>, ApiError> {
    let mut data = match p.object(&["payment_method_data", "paymentMethodData"])? {
        Field::Set(d) => d,
        _ => return Ok(None),
    };
    let kind = data.one_of(&["type"], &[PAY_BY_BANK])?.into_option();
    if kind.is_none() {
        return Err(ApiError::missing_param("payment_method_data[type]"));
    }
    // `payment_method_data[pay_by_bank]` carries nothing the daemon uses; anything else in it
    // is refused by name.
    data.ignore(&["pay_by_bank"]);
    data.finish()?;
    Ok(kind)
}

/// `POST /v1/payment_intents`.
#[derive(Debug, Clone)]
pub struct CreateParams {
    pub amount: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub payment_method: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<MetadataUpdate>,
    pub capture_method: String,
    pub confirm: bool,
    pub return_url: Option<String>,
    pub receipt_email: Option<String>,
    pub statement_descriptor: Option<String>,
    /// `None`: not given (cards).
    pub payment_method_types: Option<Vec<String>>,
    /// `payment_method_data[type]`: a payment method made inline (`pay_by_bank`).
    pub payment_method_data: Option<String>,
}

fn take_return_url(p: &mut Params) -> Result<Option<String>, ApiError> {
    let url = p
        .string_max(&["return_url", "returnUrl"], 2048)?
        .into_option();
    if let Some(u) = &url
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        return Err(ApiError::invalid_param(
            "url_invalid",
            "return_url",
            "return_url must be an http:// or https:// URL.",
        ));
    }
    Ok(url)
}

impl CreateParams {
    pub fn take(mut p: Params) -> Result<Self, ApiError> {
        let amount = take_amount(&mut p, true)?.unwrap_or(0);
        let currency = take_currency(&mut p, true)?.unwrap_or_default();
        let capture_method = take_capture_method(&mut p)?;
        let payment_method_types = take_payment_method_types(&mut p)?;
        let payment_method_data = take_payment_method_data(&mut p)?;
        let c = Self {
            payment_method_types,
            payment_method_data,
            amount,
            currency,
            customer: p
                .string_max(&["customer", "customerId"], 100)?
                .into_option(),
            payment_method: p
                .string_max(&["payment_method", "paymentMethodId", "paymentMethod"], 100)?
                .into_option(),
            description: p.string_max(&["description"], 1000)?.into_option(),
            metadata: metadata::take(&mut p)?,
            capture_method,
            confirm: p.boolean(&["confirm"])?.into_option().unwrap_or(false),
            return_url: take_return_url(&mut p)?,
            receipt_email: p
                .string_max(&["receipt_email", "receiptEmail"], 512)?
                .into_option(),
            statement_descriptor: p
                .string_max(&["statement_descriptor", "statementDescriptor"], 22)?
                .into_option(),
        };
        if let Some(e) = &c.receipt_email {
            crate::customer::check_email(e).map_err(|e| e.with_param("receipt_email"))?;
        }
        p.ignore(&["automatic_payment_methods"]);
        p.expand()?;
        p.finish()?;
        Ok(c)
    }
}

/// `POST /v1/payment_intents/:id` (only before confirmation).
#[derive(Debug, Clone)]
pub struct UpdateParams {
    pub amount: Option<i64>,
    pub customer: Option<String>,
    pub payment_method: Option<String>,
    pub description: Field<String>,
    pub metadata: Option<MetadataUpdate>,
    pub receipt_email: Field<String>,
}

impl UpdateParams {
    pub fn take(mut p: Params) -> Result<Self, ApiError> {
        let amount = take_amount(&mut p, false)?;
        take_currency(&mut p, false)?;
        let u = Self {
            amount,
            customer: p
                .string_max(&["customer", "customerId"], 100)?
                .into_option(),
            payment_method: p
                .string_max(&["payment_method", "paymentMethodId", "paymentMethod"], 100)?
                .into_option(),
            description: p.string_max(&["description"], 1000)?,
            metadata: metadata::take(&mut p)?,
            receipt_email: p.string_max(&["receipt_email", "receiptEmail"], 512)?,
        };
        p.expand()?;
        p.finish()?;
        Ok(u)
    }
}

/// `POST /v1/payment_intents/:id/confirm`.
#[derive(Debug, Clone, Default)]
pub struct ConfirmParams {
    pub payment_method: Option<String>,
    pub return_url: Option<String>,
    /// `payment_method_types[]` replaced at confirmation; `None`: unchanged.
    pub payment_method_types: Option<Vec<String>>,
    /// `payment_method_data[type]`: a payment method made inline (`pay_by_bank`).
    pub payment_method_data: Option<String>,
}

impl ConfirmParams {
    pub fn take(mut p: Params) -> Result<Self, ApiError> {
        let c = Self {
            payment_method: p
                .string_max(&["payment_method", "paymentMethodId", "paymentMethod"], 100)?
                .into_option(),
            return_url: take_return_url(&mut p)?,
            payment_method_types: take_payment_method_types(&mut p)?,
            payment_method_data: take_payment_method_data(&mut p)?,
        };
        p.expand()?;
        p.finish()?;
        Ok(c)
    }
}

/// `POST /v1/payment_intents/:id/capture`.
pub fn take_capture(mut p: Params) -> Result<Option<i64>, ApiError> {
    let amount = p
        .integer(&["amount_to_capture", "amountToCapture"], 1, MAX_AMOUNT)?
        .into_option();
    p.expand()?;
    p.finish()?;
    Ok(amount)
}

/// `POST /v1/payment_intents/:id/cancel`.
pub fn take_cancel(mut p: Params) -> Result<Option<String>, ApiError> {
    let reason = p
        .one_of(
            &["cancellation_reason", "cancellationReason"],
            &[
                "duplicate",
                "fraudulent",
                "requested_by_customer",
                "abandoned",
            ],
        )?
        .into_option();
    p.expand()?;
    p.finish()?;
    Ok(reason)
}

/// `created[gt|gte|lt|lte]` or `created=<t>` on list endpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreatedRange {
    pub gte: Option<i64>,
    pub lte: Option<i64>,
}

impl CreatedRange {
    pub fn take(p: &mut Params) -> Result<Self, ApiError> {
        Self::take_named(p, "created")
    }

    /// The same range syntax under another name (`due_date`).
    pub fn take_named(p: &mut Params, field: &str) -> Result<Self, ApiError> {
        let mut r = Self::default();
        match p.take(&[field])? {
            None => {}
            Some((name, Value::Object(map))) => {
                let mut sub = Params::new(map);
                let _ = name;
                let bound = |s: &mut Params, k: &str| -> Result<Option<i64>, ApiError> {
                    Ok(s.integer(&[k], 0, 10_000_000_000)?.into_option())
                };
                let gt = bound(&mut sub, "gt")?;
                let gte = bound(&mut sub, "gte")?;
                let lt = bound(&mut sub, "lt")?;
                let lte = bound(&mut sub, "lte")?;
                sub.finish().map_err(|e| {
                    let p = e.param.clone().unwrap_or_default();
                    e.with_param(format!("{field}[{p}]"))
                })?;
                r.gte = gte.or(gt.map(|t| t + 1));
                r.lte = lte.or(lt.map(|t| t - 1));
            }
            Some((name, v)) => {
                let t = match &v {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                }
                .ok_or_else(|| {
                    ApiError::invalid_param(
                        "parameter_invalid_integer",
                        &name,
                        format!(
                            "{field} must be a Unix timestamp or an object with gt, gte, lt, lte."
                        ),
                    )
                })?;
                r.gte = Some(t);
                r.lte = Some(t);
            }
        }
        Ok(r)
    }

    /// Whether a range was given at all.
    pub fn is_given(&self) -> bool {
        self.gte.is_some() || self.lte.is_some()
    }

    /// Whether `t` (a time, if the object has one) is inside the range; no range holds all.
    pub fn holds(&self, t: Option<i64>) -> bool {
        if !self.is_given() {
            return true;
        }
        t.is_some_and(|t| self.gte.is_none_or(|g| t >= g) && self.lte.is_none_or(|l| t <= l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{parse_form, parse_json};

    #[test]
    fn create_accepts_both_spellings_and_checks_amount_and_currency() {
        let c = CreateParams::take(Params::new(
            parse_json(br#"{"amount":2500,"currency":"GBP","customerId":"cus_1","paymentMethodId":"pm_1","confirm":true}"#)
                .expect("json"),
        ))
        .expect("valid");
        assert_eq!(
            (c.amount, c.currency.as_str(), c.confirm),
            (2500, "gbp", true)
        );
        assert_eq!(c.customer.as_deref(), Some("cus_1"));
        assert_eq!(c.payment_method.as_deref(), Some("pm_1"));
        let e = CreateParams::take(Params::new(parse_form(b"currency=gbp").expect("f")))
            .expect_err("no amount");
        assert_eq!(
            (e.code, e.param.as_deref()),
            (Some("parameter_missing"), Some("amount"))
        );
        let e = CreateParams::take(Params::new(
            parse_form(b"amount=0&currency=gbp").expect("f"),
        ))
        .expect_err("zero");
        assert_eq!(e.param.as_deref(), Some("amount"));
        let e = CreateParams::take(Params::new(
            parse_form(b"amount=10&currency=usd").expect("f"),
        ))
        .expect_err("usd");
        assert_eq!(e.param.as_deref(), Some("currency"));
        let e = CreateParams::take(Params::new(
            parse_form(b"amount=10.5&currency=gbp").expect("f"),
        ))
        .expect_err("frac");
        assert_eq!(e.code, Some("parameter_invalid_integer"));
    }

    #[test]
    fn created_ranges() {
        let mut p = Params::new(parse_form(b"created[gt]=10&created[lte]=20").expect("f"));
        assert_eq!(
            CreatedRange::take(&mut p).expect("ok"),
            CreatedRange {
                gte: Some(11),
                lte: Some(20)
            }
        );
        let mut p = Params::new(parse_form(b"created=15").expect("f"));
        assert_eq!(
            CreatedRange::take(&mut p).expect("ok"),
            CreatedRange {
                gte: Some(15),
                lte: Some(15)
            }
        );
        let mut p = Params::new(parse_form(b"created[after]=1").expect("f"));
        assert_eq!(
            CreatedRange::take(&mut p)
                .expect_err("bad")
                .param
                .as_deref(),
            Some("created[after]")
        );
    }
}
