//! Checkout sessions: the hosted page a merchant sends a customer to (Stripe's
//! `checkout.session`), and its parameters.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use crate::metadata::{self, Metadata};
use crate::params::{Field, Params};

pub const PREFIX: &str = "cs";

/// The shortest and longest life of a session (Stripe's bounds), and the default.
pub const MIN_LIFE: i64 = 30 * 60;
pub const MAX_LIFE: i64 = 24 * 3600;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckoutLine {
    pub id: String,
    pub object: String,
    pub amount_subtotal: i64,
    pub amount_total: i64,
    pub currency: String,
    pub description: String,
    pub price: Value,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckoutSession {
    pub id: String,
    pub object: String,
    pub amount_subtotal: i64,
    pub amount_total: i64,
    pub cancel_url: Option<String>,
    pub client_reference_id: Option<String>,
    pub created: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub customer_email: Option<String>,
    pub expires_at: i64,
    pub livemode: bool,
    pub metadata: Metadata,
    pub mode: String,
    pub payment_intent: Option<String>,
    pub payment_method: Option<String>,
    pub payment_status: String,
    pub status: String,
    pub subscription: Option<String>,
    pub success_url: String,
    pub url: Option<String>,
    pub invoice: Option<String>,
    /// The page's language (`auto`, `en`, `en-GB`: the page is in English).
    #[serde(default)]
    pub locale: Option<String>,
    /// The pay button's wording (`auto`, `pay`, `book`, `donate`).
    #[serde(default)]
    pub submit_type: Option<String>,
    #[serde(default = "card_only")]
    pub payment_method_types: Vec<String>,
    /// The Calmony docs' spellings.
    #[serde(rename = "customerId")]
    pub customer_id: Option<String>,
    #[serde(rename = "paymentIntentId")]
    pub payment_intent_id: Option<String>,
}

/// A line as asked for: a price id, or inline terms.
#[derive(Debug, Clone)]
pub enum LineSpec {
    Price {
        id: String,
        quantity: i64,
    },
    Inline {
        name: String,
        /// `product_data[description]`: on the page and the receipt's line.
        description: Option<String>,
        product_metadata: Metadata,
        unit_amount: i64,
        recurring: Option<crate::billing::Recurring>,
        quantity: i64,
    },
}

#[derive(Debug, Clone)]
pub struct CreateParams {
    pub lines: Vec<LineSpec>,
    pub success_url: String,
    pub cancel_url: Option<String>,
    pub customer: Option<String>,
    pub customer_email: Option<String>,
    pub mode: String,
    pub metadata: Metadata,
    pub client_reference_id: Option<String>,
    pub intent_metadata: Metadata,
    /// `payment_intent_data[description]`, for the payment intent.
    pub intent_description: Option<String>,
    /// `payment_intent_data[capture_method]`: `manual` holds the payment for a capture.
    pub capture_method: String,
    pub expires_at: Option<i64>,
    pub locale: Option<String>,
    pub submit_type: Option<String>,
    pub payment_method_types: Vec<String>,
}

fn card_only() -> Vec<String> {
    vec!["card".into()]
}

/// The locales the page can be shown in: it is written in English, so English is honoured
/// and `auto` (the browser's language) falls back to it; any other is refused, not shown in
/// a language the merchant did not ask for.
pub const LOCALES: [&str; 3] = ["auto", "en", "en-GB"];

/// `submit_type`: the words on the pay button, as Stripe's page has them.
pub const SUBMIT_TYPES: [&str; 4] = ["auto", "pay", "book", "donate"];

/// The pay button of a `payment` session: `Pay £25.00`, `Book £25.00`, `Donate £25.00`
/// (`auto` and none are `Pay`).
pub fn pay_button(submit_type: Option<&str>, amount: &str) -> String {
    let verb = match submit_type {
        Some("book") => "Book",
        Some("donate") => "Donate",
        _ => "Pay",
    };
    format!("{verb} {amount}")
}

fn url(p: &mut Params, names: &[&str], required: bool) -> Result<Option<String>, ApiError> {
    let name = p.name(names[0]);
    let u = p.string_max(names, 2048)?.into_option();
    match &u {
        None if required => return Err(ApiError::missing_param(&name)),
        Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) => {
            return Err(ApiError::invalid_param(
                "url_invalid",
                &name,
                format!("{name} must be an http:// or https:// URL."),
            ));
        }
        _ => {}
    }
    Ok(u)
}

impl CreateParams {
    pub fn take(mut p: Params, now: i64) -> Result<Self, ApiError> {
        let mode = p
            .one_of(&["mode"], &["payment", "subscription", "setup"])?
            .into_option()
            .unwrap_or_else(|| "payment".into());
        let success_url = url(&mut p, &["success_url", "successUrl"], true)?.unwrap_or_default();
        let cancel_url = url(&mut p, &["cancel_url", "cancelUrl"], false)?;
        let customer = p
            .string_max(&["customer", "customerId"], 100)?
            .into_option();
        let customer_email = p
            .string_max(&["customer_email", "customerEmail"], 512)?
            .into_option();
        if let Some(e) = &customer_email {
            crate::customer::check_email(e).map_err(|e| e.with_param("customer_email"))?;
        }
        if customer.is_some() && customer_email.is_some() {
            return Err(ApiError::invalid_param(
                "parameter_invalid",
                "customer_email",
                "Give customer or customer_email, not both.",
            ));
        }
        let mut lines = Vec::new();
        match p.array(&["line_items", "lineItems"])? {
            Field::Set(items) => {
                for (name, v) in items {
                    let Value::Object(map) = v else {
                        return Err(ApiError::invalid_param(
                            "parameter_invalid_object",
                            &name,
                            format!("{name} must be an object."),
                        ));
                    };
                    let mut li = Params::nested(map, name.clone());
                    let quantity = li
                        .integer(&["quantity"], 1, 10_000)?
                        .into_option()
                        .unwrap_or(1);
                    let spec = match (
                        li.string_max(&["price"], 100)?.into_option(),
                        li.object(&["price_data", "priceData"])?,
                    ) {
                        (Some(id), _) => LineSpec::Price { id, quantity },
                        (None, Field::Set(mut pd)) => {
                            crate::billing::take_gbp(&mut pd).map_err(|e| {
                                e.with_param(format!("{name}[price_data][currency]"))
                            })?;
                            let unit_amount = pd
                                .integer(&["unit_amount", "unitAmount"], 1, 99_999_999)?
                                .into_option()
                                .ok_or_else(|| {
                                    ApiError::missing_param(&format!(
                                        "{name}[price_data][unit_amount]"
                                    ))
                                })?;
                            let recurring = crate::billing::take_recurring(&mut pd)?;
                            let (product, description, product_metadata) = match pd
                                .object(&["product_data", "productData"])?
                            {
                                Field::Set(mut prod) => {
                                    let n = prod.required_string(&["name"], 250)?;
                                    let d = prod.string_max(&["description"], 5000)?.into_option();
                                    let mut md = Metadata::new();
                                    if let Some(m) = metadata::take(&mut prod)? {
                                        m.apply(&mut md, &prod.name("metadata"))?;
                                    }
                                    // The page shows no pictures (README: accepted, not acted on).
                                    prod.ignore(&["images"]);
                                    prod.finish()?;
                                    (n, d, md)
                                }
                                _ => {
                                    return Err(ApiError::missing_param(&format!(
                                        "{name}[price_data][product_data][name]"
                                    )));
                                }
                            };
                            // No tax is added at checkout (README: accepted, not acted on).
                            pd.ignore(&["tax_behavior"]);
                            pd.finish()?;
                            LineSpec::Inline {
                                name: product,
                                description,
                                product_metadata,
                                unit_amount,
                                recurring,
                                quantity,
                            }
                        }
                        _ => return Err(ApiError::missing_param(&format!("{name}[price]"))),
                    };
                    li.finish()?;
                    lines.push(spec);
                }
            }
            _ if mode == "setup" => {}
            _ => return Err(ApiError::missing_param("line_items")),
        }
        if lines.len() > 100 {
            return Err(ApiError::invalid_param(
                "parameter_invalid_array",
                "line_items",
                "At most 100 line items.",
            ));
        }
        let mut meta = Metadata::new();
        if let Some(m) = metadata::take(&mut p)? {
            m.apply(&mut meta, "metadata")?;
        }
        let mut intent_metadata = Metadata::new();
        let mut intent_description = None;
        let mut capture_method = "automatic".to_string();
        if let Field::Set(mut pid) = p.object(&["payment_intent_data", "paymentIntentData"])? {
            if mode != "payment" {
                return Err(ApiError::invalid_param(
                    "parameter_invalid",
                    "payment_intent_data",
                    "payment_intent_data can only be used in payment mode.",
                ));
            }
            if let Some(m) = metadata::take(&mut pid)? {
                m.apply(&mut intent_metadata, "payment_intent_data[metadata]")?;
            }
            intent_description = pid.string_max(&["description"], 1000)?.into_option();
            capture_method = crate::payment_intent::take_capture_method(&mut pid)?;
            // The card is always saved to the customer (README: accepted, not acted on).
            pid.ignore(&["setup_future_usage"]);
            pid.finish()?;
        }
        let locale = p.one_of(&["locale"], &LOCALES)?.into_option();
        let submit_type = p
            .one_of(&["submit_type", "submitType"], &SUBMIT_TYPES)?
            .into_option();
        if submit_type.is_some() && mode != "payment" {
            return Err(ApiError::invalid_param(
                "parameter_invalid",
                "submit_type",
                "submit_type can only be used in payment mode.",
            ));
        }
        let payment_method_types = crate::payment_intent::take_payment_method_types(&mut p)?
            .unwrap_or_else(|| vec!["card".into()]);
        // Only the hosted page exists; `embedded` and `custom` are refused by name.
        p.one_of(&["ui_mode", "uiMode"], &["hosted"])?;
        let expires_at = p
            .integer(&["expires_at", "expiresAt"], 0, 10_000_000_000)?
            .into_option();
        if let Some(t) = expires_at
            && (t < now + MIN_LIFE || t > now + MAX_LIFE)
        {
            return Err(ApiError::invalid_param(
                "parameter_invalid_integer",
                "expires_at",
                "expires_at must be between 30 minutes and 24 hours from now.",
            ));
        }
        let s = Self {
            lines,
            success_url,
            cancel_url,
            customer,
            customer_email,
            mode,
            metadata: meta,
            client_reference_id: p
                .string_max(&["client_reference_id", "clientReferenceId"], 200)?
                .into_option(),
            intent_metadata,
            intent_description,
            capture_method,
            expires_at,
            locale,
            submit_type,
            payment_method_types,
        };
        // README, "Accepted, not acted on": the gateway's page asks for what it needs, and
        // there are no promotion codes.
        p.ignore(&["billing_address_collection", "allow_promotion_codes"]);
        p.expand()?;
        p.finish()?;
        Ok(s)
    }
}
