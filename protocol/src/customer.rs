//! The customer resource: its stored and answered shape (Stripe's `customer` object) and the
//! parameters of create and update.
//!
//! The stored JSON *is* the API answer, so a retrieve is one Redis read and no re-encoding.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use crate::metadata::{self, Metadata, MetadataUpdate};
use crate::params::{Field, Params};

pub const PREFIX: &str = "cus";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Address {
    pub city: Option<String>,
    pub country: Option<String>,
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub postal_code: Option<String>,
    pub state: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InvoiceSettings {
    pub custom_fields: Option<Value>,
    pub default_payment_method: Option<String>,
    pub footer: Option<String>,
    pub rendering_options: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Customer {
    pub id: String,
    pub object: String,
    pub address: Option<Address>,
    pub balance: i64,
    pub created: i64,
    pub currency: Option<String>,
    pub default_source: Option<String>,
    pub delinquent: bool,
    pub description: Option<String>,
    pub discount: Option<Value>,
    pub email: Option<String>,
    pub invoice_prefix: String,
    pub invoice_settings: InvoiceSettings,
    pub livemode: bool,
    pub metadata: Metadata,
    pub name: Option<String>,
    pub next_invoice_sequence: i64,
    pub phone: Option<String>,
    pub preferred_locales: Vec<String>,
    pub shipping: Option<Value>,
    pub tax_exempt: String,
    pub test_clock: Option<String>,
}

/// What create and update may change.
#[derive(Debug, Clone, Default)]
pub struct CustomerChanges {
    pub email: Field<String>,
    pub name: Field<String>,
    pub description: Field<String>,
    pub phone: Field<String>,
    pub address: Field<Address>,
    pub preferred_locales: Field<Vec<String>>,
    pub tax_exempt: Field<String>,
    pub metadata: Option<MetadataUpdate>,
    pub expand: Vec<String>,
    /// A test clock (`clock_…`) the customer follows; create only, test mode only.
    pub test_clock: Option<String>,
    /// `invoice_settings[default_payment_method]`.
    pub default_payment_method: Field<String>,
}

impl CustomerChanges {
    /// Read create or update parameters; unknown ones are refused.
    pub fn take(mut p: Params) -> Result<Self, ApiError> {
        let email = p.string_max(&["email"], 512)?;
        if let Field::Set(e) = &email {
            check_email(e)?;
        }
        let changes = Self {
            email,
            name: p.string_max(&["name"], 256)?,
            description: p.string_max(&["description"], 5000)?,
            phone: p.string_max(&["phone"], 40)?,
            address: take_address(&mut p)?,
            preferred_locales: p.string_array(&["preferred_locales", "preferredLocales"])?,
            tax_exempt: p.one_of(&["tax_exempt", "taxExempt"], &["none", "exempt", "reverse"])?,
            metadata: metadata::take(&mut p)?,
            expand: p.expand()?,
            test_clock: p
                .string_max(&["test_clock", "testClock"], 100)?
                .into_option(),
            default_payment_method: match p.object(&["invoice_settings", "invoiceSettings"])? {
                Field::Set(mut s) => {
                    let pm =
                        s.string_max(&["default_payment_method", "defaultPaymentMethod"], 100)?;
                    s.finish()?;
                    pm
                }
                _ => Field::Absent,
            },
        };
        p.finish()?;
        Ok(changes)
    }

    /// A new customer from create parameters.
    pub fn create(self, id: String, created: i64, livemode: bool) -> Result<Customer, ApiError> {
        let test_clock = self.test_clock.clone();
        let mut c = Customer {
            id,
            object: "customer".into(),
            address: None,
            balance: 0,
            created,
            currency: None,
            default_source: None,
            delinquent: false,
            description: None,
            discount: None,
            email: None,
            invoice_prefix: crate::ids::random_alnum(8).to_uppercase(),
            invoice_settings: InvoiceSettings::default(),
            livemode,
            metadata: Metadata::new(),
            name: None,
            next_invoice_sequence: 1,
            phone: None,
            preferred_locales: Vec::new(),
            shipping: None,
            tax_exempt: "none".into(),
            test_clock: None,
        };
        self.apply(&mut c)?;
        c.test_clock = test_clock;
        Ok(c)
    }

    /// Apply to an existing customer. Returns the previous values of changed top-level fields
    /// (the event's `previous_attributes`).
    pub fn apply(self, c: &mut Customer) -> Result<serde_json::Map<String, Value>, ApiError> {
        let before = serde_json::to_value(&*c).unwrap_or(Value::Null);
        set(&mut c.email, self.email);
        set(&mut c.name, self.name);
        set(&mut c.description, self.description);
        set(&mut c.phone, self.phone);
        set(&mut c.address, self.address);
        match self.preferred_locales {
            Field::Set(v) => c.preferred_locales = v,
            Field::Unset => c.preferred_locales.clear(),
            Field::Absent => {}
        }
        match self.tax_exempt {
            Field::Set(v) => c.tax_exempt = v,
            Field::Unset => c.tax_exempt = "none".into(),
            Field::Absent => {}
        }
        if let Some(m) = self.metadata {
            m.apply(&mut c.metadata, "metadata")?;
        }
        match self.default_payment_method {
            Field::Set(pm) => c.invoice_settings.default_payment_method = Some(pm),
            Field::Unset => c.invoice_settings.default_payment_method = None,
            Field::Absent => {}
        }
        let after = serde_json::to_value(&*c).unwrap_or(Value::Null);
        Ok(previous_attributes(&before, &after))
    }
}

fn set<T>(slot: &mut Option<T>, f: Field<T>) {
    match f {
        Field::Set(v) => *slot = Some(v),
        Field::Unset => *slot = None,
        Field::Absent => {}
    }
}

/// The top-level fields of `before` whose values differ in `after`.
pub fn previous_attributes(before: &Value, after: &Value) -> serde_json::Map<String, Value> {
    let mut prev = serde_json::Map::new();
    if let (Value::Object(b), Value::Object(a)) = (before, after) {
        for (k, v) in b {
            if a.get(k) != Some(v) {
                prev.insert(k.clone(), v.clone());
            }
        }
    }
    prev
}

fn take_address(p: &mut Params) -> Result<Field<Address>, ApiError> {
    let mut a = match p.object(&["address"])? {
        Field::Set(a) => a,
        Field::Absent => return Ok(Field::Absent),
        Field::Unset => return Ok(Field::Unset),
    };
    let address = Address {
        city: a.string_max(&["city"], 200)?.into_option(),
        country: a.string_max(&["country"], 2)?.into_option(),
        line1: a.string_max(&["line1"], 200)?.into_option(),
        line2: a.string_max(&["line2"], 200)?.into_option(),
        postal_code: a
            .string_max(&["postal_code", "postalCode"], 20)?
            .into_option(),
        state: a.string_max(&["state"], 200)?.into_option(),
    };
    a.finish()?;
    Ok(Field::Set(address))
}

/// A pragmatic email check: one `@`, a local part, a dotted domain, no spaces or controls.
pub fn check_email(e: &str) -> Result<(), ApiError> {
    let ok = match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_param(
            "email_invalid",
            "email",
            format!("Invalid email address: {e}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{parse_form, parse_json};

    #[test]
    fn create_from_form_and_json_is_identical() {
        let f = CustomerChanges::take(Params::new(
            parse_form(b"email=a%40b.co&name=Alice&metadata[x]=1").expect("form"),
        ))
        .expect("valid")
        .create("cus_1".into(), 10, false)
        .expect("create");
        let j = CustomerChanges::take(Params::new(
            parse_json(br#"{"email":"a@b.co","name":"Alice","metadata":{"x":"1"}}"#).expect("j"),
        ))
        .expect("valid")
        .create("cus_1".into(), 10, false)
        .expect("create");
        assert_eq!(
            Customer {
                invoice_prefix: String::new(),
                ..f
            },
            Customer {
                invoice_prefix: String::new(),
                ..j
            }
        );
    }

    #[test]
    fn bad_email_and_unknown_param() {
        for bad in ["nope", "a@b", "a b@c.d", "@c.d", "a@.c", "a@b@c.d"] {
            let p = Params::new(parse_form(format!("email={bad}").as_bytes()).expect("form"));
            let e = CustomerChanges::take(p).expect_err(bad);
            assert_eq!(e.param.as_deref(), Some("email"), "{bad}");
        }
        let e = CustomerChanges::take(Params::new(parse_form(b"emial=a@b.c").expect("form")))
            .expect_err("typo");
        assert_eq!(e.code, Some("parameter_unknown"));
        assert_eq!(e.param.as_deref(), Some("emial"));
    }

    #[test]
    fn update_tracks_previous_attributes_and_unsets() {
        let mut c = CustomerChanges::take(Params::new(
            parse_form(b"name=A&description=d").expect("form"),
        ))
        .expect("valid")
        .create("cus_1".into(), 1, false)
        .expect("create");
        let prev = CustomerChanges::take(Params::new(
            parse_form(b"name=B&description=").expect("form"),
        ))
        .expect("valid")
        .apply(&mut c)
        .expect("apply");
        assert_eq!(c.name.as_deref(), Some("B"));
        assert_eq!(c.description, None);
        assert_eq!(prev.get("name"), Some(&Value::String("A".into())));
        assert_eq!(prev.get("description"), Some(&Value::String("d".into())));
        assert!(!prev.contains_key("email"));
    }
}
