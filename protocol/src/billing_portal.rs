//! The customer portal on the wire: `billing_portal.session` and
//! `billing_portal.configuration` in Stripe's shapes, and their create and update parameters.
//!
//! A configuration says what a customer may do on the portal page (see [`Features`]); a
//! session is one link to that page for one customer. Every parameter is read by name here:
//! the ones the page cannot honour (a login page, promotion codes, phone or tax id updates,
//! retention offers) are refused with a 400 naming them, never silently dropped.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use crate::metadata::{self, Metadata};
use crate::params::{Field, Params};

pub const SESSION_PREFIX: &str = "bps";
pub const CONFIGURATION_PREFIX: &str = "bpc";
/// How long a session's link opens the page (Stripe's `expires_at`): five minutes.
pub const LINK_LIFE: i64 = 300;
/// How long an opened page stays usable in the browser that opened it: an hour.
pub const BROWSER_LIFE: i64 = 3600;

/// The reasons a customer may give for cancelling (Stripe's `cancellation_reason.options`).
pub const CANCELLATION_REASONS: [&str; 8] = [
    "too_expensive",
    "missing_features",
    "switched_service",
    "unused",
    "customer_service",
    "too_complex",
    "low_quality",
    "other",
];

/// What the customer may change about themselves on the page.
pub const CUSTOMER_UPDATES: [&str; 3] = ["email", "name", "address"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Session {
    pub id: String,
    pub object: String,
    pub configuration: Option<String>,
    pub created: i64,
    pub customer: String,
    pub expires_at: i64,
    pub flow: Option<Flow>,
    pub livemode: bool,
    pub locale: Option<String>,
    pub on_behalf_of: Option<String>,
    pub return_url: Option<String>,
    pub url: String,
}

/// `flow_data`: the page opens straight on one task, then goes where `after_completion` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Flow {
    #[serde(rename = "type")]
    pub kind: String,
    pub after_completion: AfterCompletion,
    pub subscription_cancel: Option<FlowCancel>,
    pub subscription_update: Option<Value>,
    pub subscription_update_confirm: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AfterCompletion {
    #[serde(rename = "type")]
    pub kind: String,
    pub redirect: Option<RedirectTo>,
    pub hosted_confirmation: Option<HostedConfirmation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RedirectTo {
    pub return_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HostedConfirmation {
    pub custom_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FlowCancel {
    pub retention: Option<Value>,
    pub subscription: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Configuration {
    pub id: String,
    pub object: String,
    pub active: bool,
    pub application: Option<String>,
    pub business_profile: BusinessProfile,
    pub created: i64,
    pub default_return_url: Option<String>,
    pub features: Features,
    pub is_default: bool,
    pub livemode: bool,
    pub login_page: LoginPage,
    pub metadata: Metadata,
    pub name: Option<String>,
    pub updated: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BusinessProfile {
    pub headline: Option<String>,
    pub privacy_policy_url: Option<String>,
    pub terms_of_service_url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoginPage {
    pub enabled: bool,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Features {
    pub customer_update: CustomerUpdate,
    pub invoice_history: Enabled,
    pub payment_method_update: Enabled,
    pub subscription_cancel: SubscriptionCancel,
    pub subscription_update: SubscriptionUpdate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Enabled {
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CustomerUpdate {
    pub allowed_updates: Vec<String>,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SubscriptionCancel {
    pub cancellation_reason: CancellationReason,
    pub enabled: bool,
    /// `at_period_end` or `immediately`.
    pub mode: String,
    pub proration_behavior: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CancellationReason {
    pub enabled: bool,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SubscriptionUpdate {
    pub default_allowed_updates: Vec<String>,
    pub enabled: bool,
    pub products: Vec<ProductPrices>,
    pub proration_behavior: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProductPrices {
    pub prices: Vec<String>,
    pub product: String,
}

impl Default for Features {
    /// What a session without a `configuration` offers before the project has made one:
    /// invoices, the card, cancelling at period end, and the customer's own details.
    /// Switching plans needs the merchant to say which prices, so it is off.
    fn default() -> Self {
        Features {
            customer_update: CustomerUpdate {
                allowed_updates: CUSTOMER_UPDATES.map(String::from).to_vec(),
                enabled: true,
            },
            invoice_history: Enabled { enabled: true },
            payment_method_update: Enabled { enabled: true },
            subscription_cancel: SubscriptionCancel {
                cancellation_reason: CancellationReason {
                    enabled: true,
                    options: CANCELLATION_REASONS.map(String::from).to_vec(),
                },
                enabled: true,
                mode: "at_period_end".into(),
                proration_behavior: "none".into(),
            },
            subscription_update: SubscriptionUpdate {
                default_allowed_updates: Vec::new(),
                enabled: false,
                products: Vec::new(),
                proration_behavior: "none".into(),
            },
        }
    }
}

impl Features {
    /// Every feature off: a configuration's starting point before its `features` are read.
    fn none() -> Self {
        let mut f = Features::default();
        f.customer_update.enabled = false;
        f.customer_update.allowed_updates.clear();
        f.invoice_history.enabled = false;
        f.payment_method_update.enabled = false;
        f.subscription_cancel.enabled = false;
        f.subscription_cancel.cancellation_reason.enabled = false;
        f
    }
}

fn url(p: &mut Params, names: &[&str]) -> Result<Field<String>, ApiError> {
    let name = p.name(names[0]);
    let u = p.string_max(names, 2048)?;
    if let Field::Set(u) = &u
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        return Err(ApiError::invalid_param(
            "url_invalid",
            &name,
            format!("{name} must be an http:// or https:// URL."),
        ));
    }
    Ok(u)
}

fn set_opt(target: &mut Option<String>, field: Field<String>) {
    match field {
        Field::Set(v) => *target = Some(v),
        Field::Unset => *target = None,
        Field::Absent => {}
    }
}

/// Strings each of which must be one of `allowed`, named by index when one is not.
fn each_one_of(
    p: &mut Params,
    names: &[&str],
    allowed: &[&str],
    why: &str,
) -> Result<Option<Vec<String>>, ApiError> {
    let name = p.name(names[0]);
    match p.string_array(names)? {
        Field::Set(v) => {
            for (i, s) in v.iter().enumerate() {
                if !allowed.contains(&s.as_str()) {
                    return Err(ApiError::invalid_param(
                        "parameter_invalid_value",
                        &format!("{name}[{i}]"),
                        format!(
                            "{s:?} is not supported{why}: it must be one of {}.",
                            allowed.join(", ")
                        ),
                    ));
                }
            }
            Ok(Some(v))
        }
        Field::Unset => Ok(Some(Vec::new())),
        Field::Absent => Ok(None),
    }
}

/// A product and the prices of it the customer may switch among, as the parameters name
/// them; whether they exist is the caller's to check (it has the store).
fn take_products(p: &mut Params) -> Result<Option<Vec<ProductPrices>>, ApiError> {
    let items = match p.array(&["products"])? {
        Field::Set(items) => items,
        Field::Unset => return Ok(Some(Vec::new())),
        Field::Absent => return Ok(None),
    };
    let mut out = Vec::new();
    for (name, v) in items {
        let Value::Object(map) = v else {
            return Err(ApiError::invalid_param(
                "parameter_invalid_object",
                &name,
                format!("{name} must be an object."),
            ));
        };
        let mut item = Params::nested(map, name.clone());
        let product = item.required_string(&["product"], 100)?;
        let prices = match item.string_array(&["prices"])? {
            Field::Set(v) if !v.is_empty() => v,
            _ => return Err(ApiError::missing_param(&format!("{name}[prices]"))),
        };
        item.finish()?;
        out.push(ProductPrices { prices, product });
    }
    Ok(Some(out))
}

const PRORATIONS: [&str; 3] = ["none", "create_prorations", "always_invoice"];

impl Features {
    /// Apply `features[…]` to `self` (create starts from [`Features::none`], update from the
    /// stored configuration).
    pub fn apply(&mut self, mut p: Params) -> Result<(), ApiError> {
        if let Field::Set(mut cu) = p.object(&["customer_update"])? {
            if let Field::Set(e) = cu.boolean(&["enabled"])? {
                self.customer_update.enabled = e;
            }
            if let Some(v) = each_one_of(
                &mut cu,
                &["allowed_updates"],
                &CUSTOMER_UPDATES,
                " on the portal page",
            )? {
                self.customer_update.allowed_updates = v;
            }
            cu.finish()?;
        }
        for (name, target) in [
            ("invoice_history", &mut self.invoice_history),
            ("payment_method_update", &mut self.payment_method_update),
        ] {
            if let Field::Set(mut f) = p.object(&[name])? {
                if let Field::Set(e) = f.boolean(&["enabled"])? {
                    target.enabled = e;
                }
                f.finish()?;
            }
        }
        if let Field::Set(mut sc) = p.object(&["subscription_cancel"])? {
            let c = &mut self.subscription_cancel;
            if let Field::Set(e) = sc.boolean(&["enabled"])? {
                c.enabled = e;
            }
            if let Field::Set(m) = sc.one_of(&["mode"], &["at_period_end", "immediately"])? {
                c.mode = m;
            }
            // Cancelling makes no final invoice or credit (as `DELETE /v1/subscriptions/:id`).
            if let Field::Set(pb) = sc.one_of(&["proration_behavior"], &["none"])? {
                c.proration_behavior = pb;
            }
            if let Field::Set(mut r) = sc.object(&["cancellation_reason"])? {
                if let Field::Set(e) = r.boolean(&["enabled"])? {
                    c.cancellation_reason.enabled = e;
                }
                if let Some(v) = each_one_of(&mut r, &["options"], &CANCELLATION_REASONS, "")? {
                    c.cancellation_reason.options = v;
                }
                r.finish()?;
            }
            sc.finish()?;
        }
        if let Field::Set(mut su) = p.object(&["subscription_update"])? {
            let u = &mut self.subscription_update;
            if let Field::Set(e) = su.boolean(&["enabled"])? {
                u.enabled = e;
            }
            if let Some(v) = each_one_of(
                &mut su,
                &["default_allowed_updates"],
                &["price"],
                " (the page switches prices; quantities and promotion codes are not offered)",
            )? {
                u.default_allowed_updates = v;
            }
            if let Some(v) = take_products(&mut su)? {
                u.products = v;
            }
            if let Field::Set(pb) = su.one_of(&["proration_behavior"], &PRORATIONS)? {
                u.proration_behavior = pb;
            }
            su.finish()?;
        }
        p.finish()?;
        let u = &self.subscription_update;
        if u.enabled && (u.products.is_empty() || u.default_allowed_updates.is_empty()) {
            return Err(ApiError::invalid_param(
                "parameter_missing",
                "features[subscription_update][products]",
                "Switching plans needs products[] with their prices and \
                 default_allowed_updates[]=price.",
            ));
        }
        if self.customer_update.enabled && self.customer_update.allowed_updates.is_empty() {
            return Err(ApiError::invalid_param(
                "parameter_missing",
                "features[customer_update][allowed_updates]",
                "Say which details the customer may update: email, name, address.",
            ));
        }
        Ok(())
    }
}

/// Every product and price a configuration names, for the caller to check they exist.
pub fn named_prices(f: &Features) -> Vec<(String, String)> {
    f.subscription_update
        .products
        .iter()
        .flat_map(|pp| {
            pp.prices
                .iter()
                .map(move |price| (pp.product.clone(), price.clone()))
        })
        .collect()
}

impl Configuration {
    /// A configuration from `POST /v1/billing_portal/configurations`.
    pub fn create(
        mut p: Params,
        id: String,
        now: i64,
        livemode: bool,
        is_default: bool,
    ) -> Result<Self, ApiError> {
        let mut c = Configuration {
            id,
            object: "billing_portal.configuration".into(),
            active: true,
            application: None,
            business_profile: BusinessProfile::default(),
            created: now,
            default_return_url: None,
            features: Features::none(),
            is_default,
            livemode,
            login_page: LoginPage::default(),
            metadata: Metadata::new(),
            name: None,
            updated: now,
        };
        match p.object(&["features"])? {
            Field::Set(f) => c.features.apply(f)?,
            _ => return Err(ApiError::missing_param("features")),
        }
        c.apply_common(&mut p)?;
        p.expand()?;
        p.finish()?;
        Ok(c)
    }

    /// `POST /v1/billing_portal/configurations/:id`.
    pub fn update(&mut self, mut p: Params, now: i64) -> Result<(), ApiError> {
        if let Field::Set(a) = p.boolean(&["active"])? {
            self.active = a;
        }
        if let Field::Set(f) = p.object(&["features"])? {
            self.features.apply(f)?;
        }
        self.apply_common(&mut p)?;
        p.expand()?;
        p.finish()?;
        self.updated = now;
        Ok(())
    }

    fn apply_common(&mut self, p: &mut Params) -> Result<(), ApiError> {
        if let Field::Set(mut bp) = p.object(&["business_profile"])? {
            let b = &mut self.business_profile;
            set_opt(&mut b.headline, bp.string_max(&["headline"], 60)?);
            set_opt(
                &mut b.privacy_policy_url,
                url(&mut bp, &["privacy_policy_url"])?,
            );
            set_opt(
                &mut b.terms_of_service_url,
                url(&mut bp, &["terms_of_service_url"])?,
            );
            bp.finish()?;
        }
        set_opt(
            &mut self.default_return_url,
            url(p, &["default_return_url"])?,
        );
        set_opt(&mut self.name, p.string_max(&["name"], 256)?);
        if let Field::Set(mut lp) = p.object(&["login_page"])? {
            // There is no login page: the only way in is a session's link.
            if lp.boolean(&["enabled"])? == Field::Set(true) {
                return Err(ApiError::invalid_param(
                    "parameter_invalid_boolean",
                    "login_page[enabled]",
                    "There is no portal login page: create a billing_portal.session for each \
                     visit.",
                ));
            }
            lp.finish()?;
        }
        if let Some(m) = metadata::take(p)? {
            m.apply(&mut self.metadata, "metadata")?;
        }
        Ok(())
    }
}

/// `POST /v1/billing_portal/sessions`, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionParams {
    pub customer: String,
    pub return_url: Option<String>,
    pub configuration: Option<String>,
    pub flow: Option<Flow>,
    pub locale: Option<String>,
}

impl SessionParams {
    pub fn take(mut p: Params) -> Result<Self, ApiError> {
        let customer = p.required_string(&["customer"], 100)?;
        let return_url = url(&mut p, &["return_url"])?.into_option();
        let configuration = p.string_max(&["configuration"], 100)?.into_option();
        // The page is in English; the languages a browser may ask for are accepted.
        let locale = p
            .one_of(&["locale"], &["auto", "en", "en-GB"])?
            .into_option();
        if let Field::Set(_) = p.string(&["on_behalf_of"])? {
            return Err(ApiError::invalid_param(
                "parameter_unknown",
                "on_behalf_of",
                "There are no connected accounts: on_behalf_of is not supported.",
            ));
        }
        let flow = match p.object(&["flow_data"])? {
            Field::Set(f) => Some(take_flow(f)?),
            _ => None,
        };
        p.expand()?;
        p.finish()?;
        Ok(SessionParams {
            customer,
            return_url,
            configuration,
            flow,
            locale,
        })
    }
}

fn take_flow(mut f: Params) -> Result<Flow, ApiError> {
    let kind = f
        .one_of(&["type"], &["payment_method_update", "subscription_cancel"])?
        .into_option()
        .ok_or_else(|| ApiError::missing_param("flow_data[type]"))?;
    let mut after = AfterCompletion {
        kind: "portal_homepage".into(),
        redirect: None,
        hosted_confirmation: None,
    };
    if let Field::Set(mut ac) = f.object(&["after_completion"])? {
        after.kind = ac
            .one_of(
                &["type"],
                &["portal_homepage", "redirect", "hosted_confirmation"],
            )?
            .into_option()
            .ok_or_else(|| ApiError::missing_param("flow_data[after_completion][type]"))?;
        if let Field::Set(mut r) = ac.object(&["redirect"])? {
            let to = url(&mut r, &["return_url"])?.into_option().ok_or_else(|| {
                ApiError::missing_param("flow_data[after_completion][redirect][return_url]")
            })?;
            r.finish()?;
            after.redirect = Some(RedirectTo { return_url: to });
        }
        if let Field::Set(mut h) = ac.object(&["hosted_confirmation"])? {
            let m = h.string_max(&["custom_message"], 500)?.into_option();
            h.finish()?;
            after.hosted_confirmation = Some(HostedConfirmation { custom_message: m });
        }
        ac.finish()?;
        match after.kind.as_str() {
            "redirect" if after.redirect.is_none() => {
                return Err(ApiError::missing_param(
                    "flow_data[after_completion][redirect][return_url]",
                ));
            }
            "hosted_confirmation" if after.hosted_confirmation.is_none() => {
                after.hosted_confirmation = Some(HostedConfirmation {
                    custom_message: None,
                });
            }
            _ => {}
        }
    }
    let mut cancel = None;
    if let Field::Set(mut sc) = f.object(&["subscription_cancel"])? {
        let subscription = sc.required_string(&["subscription"], 100)?;
        if !matches!(sc.object(&["retention"])?, Field::Absent) {
            return Err(ApiError::invalid_param(
                "parameter_invalid",
                "flow_data[subscription_cancel][retention]",
                "Retention offers (coupons) are not supported.",
            ));
        }
        sc.finish()?;
        cancel = Some(FlowCancel {
            retention: None,
            subscription,
        });
    }
    f.finish()?;
    if kind == "subscription_cancel" && cancel.is_none() {
        return Err(ApiError::missing_param(
            "flow_data[subscription_cancel][subscription]",
        ));
    }
    if kind != "subscription_cancel" && cancel.is_some() {
        return Err(ApiError::invalid_param(
            "parameter_invalid",
            "flow_data[subscription_cancel]",
            "flow_data[subscription_cancel] goes with flow_data[type]=subscription_cancel.",
        ));
    }
    Ok(Flow {
        kind,
        after_completion: after,
        subscription_cancel: cancel,
        subscription_update: None,
        subscription_update_confirm: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(form: &str) -> Params {
        Params::new(crate::params::parse_form(form.as_bytes()).expect("form"))
    }

    #[test]
    fn a_configuration_is_read_by_name_and_what_the_page_cannot_do_is_refused_by_name() {
        let c = Configuration::create(
            params(
                "features[invoice_history][enabled]=true\
                 &features[subscription_cancel][enabled]=true\
                 &features[subscription_cancel][mode]=immediately\
                 &features[subscription_cancel][cancellation_reason][enabled]=true\
                 &features[subscription_cancel][cancellation_reason][options][]=unused\
                 &business_profile[headline]=Harbour+billing&default_return_url=https://h.example/",
            ),
            "bpc_1".into(),
            10,
            false,
            true,
        )
        .expect("valid");
        assert!(c.features.invoice_history.enabled);
        assert!(!c.features.payment_method_update.enabled);
        assert_eq!(c.features.subscription_cancel.mode, "immediately");
        assert_eq!(
            c.features.subscription_cancel.cancellation_reason.options,
            vec!["unused"]
        );
        assert_eq!(
            c.business_profile.headline.as_deref(),
            Some("Harbour billing")
        );
        for (form, param) in [
            ("", "features"),
            (
                "features[customer_update][enabled]=true&features[customer_update][allowed_updates][]=tax_id",
                "features[customer_update][allowed_updates][0]",
            ),
            (
                "features[subscription_update][enabled]=true&features[subscription_update][default_allowed_updates][]=price",
                "features[subscription_update][products]",
            ),
            (
                "features[subscription_cancel][proration_behavior]=create_prorations",
                "features[subscription_cancel][proration_behavior]",
            ),
            (
                "features[invoice_history][enabled]=true&login_page[enabled]=true",
                "login_page[enabled]",
            ),
            (
                "features[invoice_history][enabled]=true&features[invoice_history][color]=red",
                "features[invoice_history][color]",
            ),
        ] {
            let e = Configuration::create(params(form), "bpc_2".into(), 10, false, false)
                .expect_err(form);
            assert_eq!(e.param.as_deref(), Some(param), "{form}: {}", e.message);
        }
    }

    #[test]
    fn session_flows_are_checked_before_anything_is_written() {
        let s = SessionParams::take(params(
            "customer=cus_1&return_url=https://h.example/account\
             &flow_data[type]=subscription_cancel&flow_data[subscription_cancel][subscription]=sub_1\
             &flow_data[after_completion][type]=redirect\
             &flow_data[after_completion][redirect][return_url]=https://h.example/bye",
        ))
        .expect("valid");
        let flow = s.flow.expect("flow");
        assert_eq!(flow.kind, "subscription_cancel");
        assert_eq!(
            flow.after_completion.redirect.map(|r| r.return_url),
            Some("https://h.example/bye".into())
        );
        for (form, param) in [
            ("return_url=https://h.example", "customer"),
            ("customer=cus_1&return_url=ftp://x", "return_url"),
            (
                "customer=cus_1&flow_data[type]=subscription_cancel",
                "flow_data[subscription_cancel][subscription]",
            ),
            (
                "customer=cus_1&flow_data[type]=subscription_update",
                "flow_data[type]",
            ),
            (
                "customer=cus_1&flow_data[type]=payment_method_update&flow_data[after_completion][type]=redirect",
                "flow_data[after_completion][redirect][return_url]",
            ),
            ("customer=cus_1&on_behalf_of=acct_1", "on_behalf_of"),
            ("customer=cus_1&locale=fr", "locale"),
        ] {
            let e = SessionParams::take(params(form)).expect_err(form);
            assert_eq!(e.param.as_deref(), Some(param), "{form}: {}", e.message);
        }
    }
}
