//! The customer portal: `billing_portal.session`s and `.configuration`s, and what the portal
//! page may do for the one customer a session names.
//!
//! A session is created by the merchant's server for one customer. Its `url` carries a
//! 256-bit token from the OS-seeded CSPRNG, stored only as its SHA-256 ([`access`]): the URL is
//! answered once, to the merchant, and every copy the daemon keeps (the record, the
//! `billing_portal.session.created` event) holds the page's address without it. Opening the
//! link within five minutes binds that browser with a cookie for an hour; from then on the
//! cookie, not the link, opens the page.
//!
//! Every change the page makes goes through the same operations as the API (subscription
//! update and cancel, customer update), so each is one atomic commit with the events the API's
//! would emit (`customer.updated`, `customer.subscription.updated`/`.deleted`, …). Every
//! object the page names in a URL is checked to be this customer's in this project and mode;
//! anything else is "not found", exactly as an object that does not exist.
//!
//! Updating the card reuses hosted checkout in `setup` mode: the checkout page hands the
//! browser to the gateway's hosted card page (the sandbox's in test mode), the card is saved
//! on the customer, and the browser comes back here, where the card becomes the customer's
//! and their subscriptions' default and an open or past-due invoice is retried at once.

use calmony_protocol::billing::{Invoice, Price, Subscription, TaxRate};
use calmony_protocol::billing_portal::{
    BusinessProfile, CONFIGURATION_PREFIX, Configuration, Features, SESSION_PREFIX, Session,
    SessionParams,
};
use calmony_protocol::checkout::CheckoutSession;
use calmony_protocol::customer::Customer;
use calmony_protocol::list::ListParams;
use calmony_protocol::params::Params;
use calmony_protocol::payment_method::PaymentMethod;
use calmony_protocol::{ApiError, ids};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::billing::Billing;
use crate::checkout::Checkout;
use crate::clock;
use crate::context::{Reply, RequestContext};
use crate::resource::{commit_answer, page_body, to_json};
use crate::store::{Commit, Scope, Store, Tx, filters};

pub mod access;

use access::{Action, AfterTask, LinkState};

#[derive(Clone)]
pub struct Portal {
    pub billing: Billing,
    pub checkout: Checkout,
}

/// What a session keeps beside its answer: digests only, never a secret.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionInternal {
    pub token_hash: String,
    /// The digest of the cookie of the browser that opened the link, and until when it opens
    /// the page.
    pub cookie_hash: Option<String>,
    pub browser_until: Option<i64>,
}

/// What a session's configuration lets the page do and show.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub features: Features,
    pub business_profile: BusinessProfile,
    /// Where a session without `return_url` links back to.
    pub default_return_url: Option<String>,
}

/// A browser the page recognised: its session, the rules that apply, and the token its forms
/// must carry.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub scope: Scope,
    pub session: Session,
    pub settings: Settings,
    pub csrf: String,
    pub cookie_secret: String,
}

/// Why the page cannot be shown or an action not done; each is a page of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageError {
    /// No such session, or an object that is not this customer's.
    NotFound,
    /// The link is older than five minutes, or the browser's hour is over.
    Expired { return_url: Option<String> },
    /// The form's CSRF token is not this browser's.
    BadForm,
    /// The customer asked for something the page does not allow; the message says why.
    Refused(String),
    /// The store or gateway did not answer: try again.
    Unavailable(String),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        match e.status {
            404 => PageError::NotFound,
            400 | 402 => PageError::Refused(e.message),
            _ => PageError::Unavailable(e.message),
        }
    }
}

/// The opened link: the cookie to set and where to send the browser.
pub struct Opened {
    pub cookie_secret: String,
    pub until: i64,
}

/// A subscription as the page shows it.
pub struct ShownSubscription {
    pub subscription: Subscription,
    pub product_names: Vec<String>,
    /// The card it is charged to, when that is not the customer's default (the page says so:
    /// a past-due subscription on another card is not fixed by the card shown above it).
    pub other_card: Option<PaymentMethod>,
    /// What the next renewal charges: its items with their tax, as the invoice will total.
    pub renewal_total: i64,
}

/// Everything the page shows.
pub struct Overview {
    pub customer: Customer,
    pub card: Option<PaymentMethod>,
    /// Current subscriptions, each with its products' names.
    pub subscriptions: Vec<ShownSubscription>,
    pub invoices: Vec<Invoice>,
    /// The prices a customer may switch to, with their product's name.
    pub switchable: Vec<(Price, String)>,
}

fn session_page(public_base: &str, scope: &Scope, id: &str) -> String {
    format!("{public_base}/portal/{}/{}/{id}", scope.project, scope.mode)
}

/// The page's own address for a session: where forms post and the cookie is scoped.
pub fn page_url(public_base: &str, scope: &Scope, id: &str) -> String {
    session_page(public_base, scope, id)
}

fn configurations(scope: &Scope) -> String {
    scope.key("billing_portal_configurations")
}

/// The project's default configuration's id, in a hash field set once (the first created).
fn defaults(scope: &Scope) -> String {
    scope.key("billing_portal")
}

/// Context for the API operations the page calls on the customer's behalf.
fn context(scope: &Scope) -> RequestContext {
    RequestContext {
        deferred: None,
        request_id: ids::request_id(),
        scope: scope.clone(),
        idempotency: None,
        idempotency_ttl_secs: 86_400,
        prefetched: Default::default(),
    }
}

fn form(pairs: &[(&str, Value)]) -> Params {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert((*k).to_string(), v.clone());
    }
    Params::new(m)
}

/// A stored object that does not read back is a bug: a bare 500, as [`to_json`]'s.
fn broken(e: serde_json::Error) -> ApiError {
    let mut err = ApiError::internal("");
    err.message = format!("cannot read a stored object: {e}");
    err
}

fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, ApiError> {
    serde_json::from_str(json).map_err(broken)
}

impl Portal {
    fn store(&self) -> &Store {
        &self.checkout.payments.store
    }

    fn public_base(&self) -> &str {
        &self.checkout.payments.public_base
    }

    async fn load_configuration(
        &self,
        scope: &Scope,
        id: &str,
        param: &str,
    ) -> Result<(u64, Configuration), ApiError> {
        if !ids::is_valid(CONFIGURATION_PREFIX, id) {
            return Err(ApiError::no_such("billing_portal.configuration", id, param));
        }
        let key = scope.record(id);
        let rec = self
            .store()
            .get(&key)
            .await?
            .ok_or_else(|| ApiError::no_such("billing_portal.configuration", id, param))?;
        Ok((rec.version, rec.parse(&key)?))
    }

    /// The configuration a session uses: its own, the project's default, or the built-in
    /// defaults ([`Features::default`]) before the project made one.
    async fn settings(&self, scope: &Scope, id: Option<&str>) -> Result<Settings, ApiError> {
        let id = match id {
            Some(id) => Some(id.to_string()),
            None => {
                let mut c = self.store().conn();
                self.store()
                    .run(c.hget::<_, _, Option<String>>(defaults(scope), "default"))
                    .await?
            }
        };
        Ok(match id {
            Some(id) => {
                let (_, c) = self.load_configuration(scope, &id, "configuration").await?;
                Settings {
                    features: c.features,
                    business_profile: c.business_profile,
                    default_return_url: c.default_return_url,
                }
            }
            None => Settings::default(),
        })
    }

    /// Every product and price a configuration names exists here, and each price is a
    /// recurring price of its product.
    async fn check_prices(&self, scope: &Scope, f: &Features) -> Result<(), ApiError> {
        for (i, (product, price)) in calmony_protocol::billing_portal::named_prices(f)
            .iter()
            .enumerate()
        {
            let param = "features[subscription_update][products]";
            let key = scope.record(price);
            let found: Option<Price> = match self.store().get(&key).await? {
                Some(rec) if ids::is_valid("price", price) => Some(rec.parse(&key)?),
                _ => None,
            };
            match found {
                Some(p) if &p.product == product && p.recurring.is_some() => {}
                _ => {
                    return Err(ApiError::invalid_param(
                        "resource_missing",
                        param,
                        format!(
                            "Price {i} ({price}) is not a recurring price of product {product}."
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `POST /v1/billing_portal/configurations`. The project's first is its default.
    pub async fn create_configuration(
        &self,
        ctx: &RequestContext,
        params: Params,
    ) -> Result<Reply, ApiError> {
        let scope = &ctx.scope;
        let mut c = self.store().conn();
        let has_default: Option<String> =
            self.store().run(c.hget(defaults(scope), "default")).await?;
        let now = clock::now();
        let config = Configuration::create(
            params,
            ids::new_id(CONFIGURATION_PREFIX),
            now,
            scope.livemode(),
            has_default.is_none(),
        )?;
        self.check_prices(scope, &config.features).await?;
        let body = to_json(&config)?;
        let key = scope.record(&config.id);
        let mut tx = Tx::new();
        tx.expect_version(&key, 0)
            .put(&key, 1, &body)
            .index(&configurations(scope), &config.id)
            .event(
                scope,
                &crate::resource::event(
                    "billing_portal.configuration.created",
                    &config,
                    scope,
                    &ctx.event_request(),
                    now,
                ),
            );
        if config.is_default {
            tx.hsetnx(&defaults(scope), "default", &config.id);
        }
        tx.respond(ctx, 200, &body);
        commit_answer(self.store(), &tx, body).await
    }

    pub async fn retrieve_configuration(
        &self,
        ctx: &RequestContext,
        id: &str,
        mut p: Params,
    ) -> Result<Reply, ApiError> {
        p.expand()?;
        p.finish()?;
        let (_, c) = self.load_configuration(&ctx.scope, id, "id").await?;
        Ok(Reply::ok(to_json(&c)?))
    }

    /// `POST /v1/billing_portal/configurations/:id` (`billing_portal.configuration.updated`).
    pub async fn update_configuration(
        &self,
        ctx: &RequestContext,
        id: &str,
        p: Params,
    ) -> Result<Reply, ApiError> {
        let scope = &ctx.scope;
        let (v, mut c) = self.load_configuration(scope, id, "id").await?;
        let before = serde_json::to_value(&c).unwrap_or(Value::Null);
        let now = clock::now();
        c.update(p, now)?;
        if c.is_default && !c.active {
            // Sessions that name no configuration use the default: it stays usable.
            return Err(ApiError::invalid_param(
                "parameter_invalid",
                "active",
                "The default configuration cannot be deactivated.",
            ));
        }
        self.check_prices(scope, &c.features).await?;
        let body = to_json(&c)?;
        let key = scope.record(id);
        let mut e = crate::resource::event(
            "billing_portal.configuration.updated",
            &c,
            scope,
            &ctx.event_request(),
            now,
        );
        let after = serde_json::to_value(&c).unwrap_or(Value::Null);
        e.data.previous_attributes = Some(Value::Object(
            calmony_protocol::customer::previous_attributes(&before, &after),
        ));
        let mut tx = Tx::new();
        tx.expect_version(&key, v)
            .put(&key, v + 1, &body)
            .event(scope, &e)
            .respond(ctx, 200, &body);
        commit_answer(self.store(), &tx, body).await
    }

    /// `GET /v1/billing_portal/configurations` (by `active`, `is_default`).
    pub async fn list_configurations(
        &self,
        ctx: &RequestContext,
        mut p: Params,
    ) -> Result<Reply, ApiError> {
        let list = ListParams::take(&mut p, CONFIGURATION_PREFIX)?;
        let active = p.boolean(&["active"])?.into_option().map(|b| b.to_string());
        let is_default = p
            .boolean(&["is_default"])?
            .into_option()
            .map(|b| b.to_string());
        p.expand()?;
        p.finish()?;
        let all = configurations(&ctx.scope);
        let sets = filters::sets(
            &all,
            &all,
            &[
                ("active", active.as_deref()),
                ("is_default", is_default.as_deref()),
            ],
        );
        let (out, has_more) = self
            .store()
            .page_where(&ctx.scope, &sets, &[], &list)
            .await?;
        page_body("/v1/billing_portal/configurations", &out, has_more).map(Reply::ok)
    }

    /// `POST /v1/billing_portal/sessions`: a link to the page for one customer
    /// (`billing_portal.session.created`).
    pub async fn create_session(
        &self,
        ctx: &RequestContext,
        params: Params,
    ) -> Result<Reply, ApiError> {
        let scope = &ctx.scope;
        let p = SessionParams::take(params)?;
        crate::payments::check_customer(&self.checkout.payments, ctx, &p.customer, "customer")
            .await?;
        let (configuration, features, default_return_url) = match &p.configuration {
            Some(id) => {
                let (_, c) = self
                    .load_configuration(scope, id, "configuration")
                    .await
                    .map_err(|mut e| {
                        e.status = 400;
                        e
                    })?;
                if !c.active {
                    return Err(ApiError::invalid_param(
                        "parameter_invalid",
                        "configuration",
                        "This configuration is not active.",
                    ));
                }
                (Some(c.id), c.features, c.default_return_url)
            }
            None => {
                let mut c = self.store().conn();
                let id: Option<String> =
                    self.store().run(c.hget(defaults(scope), "default")).await?;
                let settings = self.settings(scope, id.as_deref()).await?;
                (id, settings.features, settings.default_return_url)
            }
        };
        if let Some(flow) = &p.flow {
            let offered = match flow.kind.as_str() {
                "payment_method_update" => features.payment_method_update.enabled,
                _ => features.subscription_cancel.enabled,
            };
            if !offered {
                return Err(ApiError::invalid_param(
                    "parameter_invalid",
                    "flow_data[type]",
                    format!(
                        "The portal configuration does not offer {}: enable it in features.",
                        flow.kind
                    ),
                ));
            }
            if let Some(c) = &flow.subscription_cancel {
                let param = "flow_data[subscription_cancel][subscription]";
                let sub = self
                    .customers_subscription(scope, &p.customer, &c.subscription)
                    .await;
                match sub {
                    Ok(s)
                        if !crate::billing::status::SubscriptionStatus::of(&s.status)
                            .is_ended()
                            && !s.cancel_at_period_end => {}
                    Ok(_) => {
                        return Err(ApiError::invalid_param(
                            "parameter_invalid",
                            param,
                            "This subscription is already cancelled or set to end.",
                        ));
                    }
                    Err(_) => {
                        return Err(ApiError::invalid_param(
                            "resource_missing",
                            param,
                            format!(
                                "No such subscription of this customer: '{}'",
                                c.subscription
                            ),
                        ));
                    }
                }
            }
        }
        let now = clock::now();
        let id = ids::new_id(SESSION_PREFIX);
        let token = ids::random_alnum(43);
        let page = session_page(self.public_base(), scope, &id);
        let stored = Session {
            id: id.clone(),
            object: "billing_portal.session".into(),
            configuration,
            created: now,
            customer: p.customer,
            expires_at: now + calmony_protocol::billing_portal::LINK_LIFE,
            flow: p.flow,
            livemode: scope.livemode(),
            locale: p.locale,
            on_behalf_of: None,
            // Without one, the configuration's `default_return_url` (Stripe's rule).
            return_url: p.return_url.or(default_return_url),
            url: page.clone(),
        };
        let answer = Session {
            url: format!("{page}/t/{token}"),
            ..stored.clone()
        };
        let internal = SessionInternal {
            token_hash: access::digest(&token),
            cookie_hash: None,
            browser_until: None,
        };
        let body = to_json(&answer)?;
        let key = scope.record(&id);
        let mut tx = Tx::new();
        tx.expect_version(&key, 0)
            .put_with(
                &key,
                1,
                &to_json(&stored)?,
                &[("internal", &to_json(&internal)?)],
            )
            .event(
                scope,
                &crate::resource::event(
                    "billing_portal.session.created",
                    &stored,
                    scope,
                    &ctx.event_request(),
                    now,
                ),
            )
            .respond(ctx, 200, &body);
        commit_answer(self.store(), &tx, body).await
    }

    async fn load_session(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<(u64, Session, SessionInternal), PageError> {
        crate::resource::load_with_internal(
            self.store(),
            scope,
            (SESSION_PREFIX, "billing_portal.session", "id"),
            id,
        )
        .await
        .map_err(PageError::from)
    }

    /// The link was opened: within five minutes and with the session's token, this browser
    /// is bound (one commit) and gets its cookie.
    pub async fn open(&self, scope: &Scope, id: &str, token: &str) -> Result<Opened, PageError> {
        let (v, s, mut internal) = self.load_session(scope, id).await?;
        let now = clock::now();
        let token_ok = access::matches(&internal.token_hash, token);
        match access::on_open(now, s.created, token_ok) {
            LinkState::Expired => Err(PageError::Expired {
                return_url: s.return_url,
            }),
            LinkState::Bind { until } => {
                let cookie_secret = ids::random_alnum(43);
                internal.cookie_hash = Some(access::digest(&cookie_secret));
                internal.browser_until = Some(until);
                let key = scope.record(id);
                let mut tx = Tx::new();
                tx.expect_version(&key, v).put_with(
                    &key,
                    v + 1,
                    &to_json(&s)?,
                    &[("internal", &to_json(&internal)?)],
                );
                match self.store().commit(&tx).await.map_err(ApiError::from)? {
                    Commit::Done(_) => Ok(Opened {
                        cookie_secret,
                        until,
                    }),
                    _ => Err(PageError::Unavailable(
                        "The page was opened twice at once. Please open the link again.".into(),
                    )),
                }
            }
        }
    }

    /// The browser behind a request to the page, by its cookie.
    pub async fn viewer(
        &self,
        scope: &Scope,
        id: &str,
        cookie_secret: Option<&str>,
    ) -> Result<Viewer, PageError> {
        let (_, session, internal) = self.load_session(scope, id).await?;
        let cookie_ok = match (cookie_secret, &internal.cookie_hash) {
            (Some(c), Some(h)) => access::matches(h, c),
            _ => false,
        };
        if !access::browser_ok(clock::now(), internal.browser_until, cookie_ok) {
            return Err(PageError::Expired {
                return_url: session.return_url,
            });
        }
        let cookie_secret = cookie_secret.unwrap_or_default().to_string();
        let settings = self
            .settings(scope, session.configuration.as_deref())
            .await?;
        Ok(Viewer {
            scope: scope.clone(),
            csrf: access::csrf_token(id, &cookie_secret),
            settings,
            session,
            cookie_secret,
        })
    }

    /// A form's token must be this browser's.
    pub fn check_form(v: &Viewer, csrf: &str) -> Result<(), PageError> {
        if access::csrf_ok(&v.session.id, &v.cookie_secret, csrf) {
            Ok(())
        } else {
            Err(PageError::BadForm)
        }
    }

    fn permit(v: &Viewer, action: Action<'_>) -> Result<(), PageError> {
        access::permitted(&v.settings.features, action)
            .map_err(|r| PageError::Refused(r.to_string()))
    }

    /// Where the browser goes after a task the session's flow opened on.
    pub fn after_task(v: &Viewer) -> AfterTask {
        access::after_task(v.session.flow.as_ref())
    }

    async fn customers_subscription(
        &self,
        scope: &Scope,
        customer: &str,
        id: &str,
    ) -> Result<Subscription, PageError> {
        if !ids::is_valid("sub", id) {
            return Err(PageError::NotFound);
        }
        let key = scope.record(id);
        let rec = self
            .store()
            .get(&key)
            .await
            .map_err(ApiError::from)?
            .ok_or(PageError::NotFound)?;
        let s: Subscription = rec.parse(&key).map_err(ApiError::from)?;
        if s.customer != customer {
            return Err(PageError::NotFound);
        }
        Ok(s)
    }

    /// A subscription the page may act on: this customer's, not ended.
    pub async fn subscription(&self, v: &Viewer, id: &str) -> Result<Subscription, PageError> {
        let s = self
            .customers_subscription(&v.scope, &v.session.customer, id)
            .await?;
        if crate::billing::status::SubscriptionStatus::of(&s.status).is_ended() {
            return Err(PageError::NotFound);
        }
        Ok(s)
    }

    /// An invoice of this customer's, for its PDF link.
    pub async fn invoice_pdf(&self, v: &Viewer, id: &str) -> Result<String, PageError> {
        Self::permit(v, Action::SeeInvoices)?;
        if !ids::is_valid("in", id) {
            return Err(PageError::NotFound);
        }
        let key = v.scope.record(id);
        let rec = self
            .store()
            .get(&key)
            .await
            .map_err(ApiError::from)?
            .ok_or(PageError::NotFound)?;
        let inv: Invoice = rec.parse(&key).map_err(ApiError::from)?;
        if inv.customer != v.session.customer || inv.status == "draft" {
            return Err(PageError::NotFound);
        }
        inv.invoice_pdf.ok_or(PageError::NotFound)
    }

    /// What the page shows.
    pub async fn overview(&self, v: &Viewer) -> Result<Overview, PageError> {
        let scope = &v.scope;
        let ctx = context(scope);
        let key = scope.record(&v.session.customer);
        let rec = self
            .store()
            .get(&key)
            .await
            .map_err(ApiError::from)?
            .ok_or(PageError::NotFound)?;
        if rec.json.contains("\"deleted\":true") {
            return Err(PageError::NotFound);
        }
        let customer: Customer = rec.parse(&key).map_err(ApiError::from)?;
        let card = match &customer.invoice_settings.default_payment_method {
            Some(pm) => self.object::<PaymentMethod>(scope, pm).await,
            None => None,
        };
        let subs = crate::billing::list_subscriptions(
            &self.billing,
            &ctx,
            form(&[("customer", json!(customer.id)), ("limit", json!("20"))]),
        )
        .await?;
        let subs: Value = parse(&subs.body)?;
        let mut subscriptions = Vec::new();
        for s in subs["data"].as_array().cloned().unwrap_or_default() {
            let s: Subscription = serde_json::from_value(s).map_err(broken)?;
            let mut names = Vec::new();
            for item in &s.items.data {
                names.push(self.product_name(scope, &item.price.product).await);
            }
            let other_card = match &s.default_payment_method {
                Some(pm)
                    if customer.invoice_settings.default_payment_method.as_ref() != Some(pm) =>
                {
                    self.object::<PaymentMethod>(scope, pm).await
                }
                _ => None,
            };
            let renewal_total = self.renewal_total(scope, &s).await;
            subscriptions.push(ShownSubscription {
                subscription: s,
                product_names: names,
                other_card,
                renewal_total,
            });
        }
        let invoices = if v.settings.features.invoice_history.enabled {
            let r = crate::billing::list_invoices(
                &self.billing,
                &ctx,
                form(&[("customer", json!(customer.id)), ("limit", json!("24"))]),
            )
            .await?;
            let list: Value = parse(&r.body)?;
            list["data"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|i| serde_json::from_value::<Invoice>(i).ok())
                .filter(|i| i.status != "draft")
                .collect()
        } else {
            Vec::new()
        };
        let mut switchable = Vec::new();
        let u = &v.settings.features.subscription_update;
        if u.enabled {
            for pp in &u.products {
                let name = self.product_name(scope, &pp.product).await;
                for price in &pp.prices {
                    if let Some(p) = self.object::<Price>(scope, price).await
                        && p.active
                    {
                        switchable.push((p, name.clone()));
                    }
                }
            }
        }
        Ok(Overview {
            customer,
            card,
            subscriptions,
            invoices,
            switchable,
        })
    }

    async fn object<T: serde::de::DeserializeOwned>(&self, scope: &Scope, id: &str) -> Option<T> {
        let key = scope.record(id);
        self.store()
            .get(&key)
            .await
            .ok()
            .flatten()
            .and_then(|rec| rec.parse(&key).ok())
    }

    /// A period's charge for `s`'s items with their tax rates (or its default ones), totalled
    /// as an invoice is ([`crate::billing::totals`]).
    async fn renewal_total(&self, scope: &Scope, s: &Subscription) -> i64 {
        use crate::billing::totals::{LineInput, Rate, totals};
        let amounts: Vec<i64> = s
            .items
            .data
            .iter()
            .map(|i| i.price.unit_amount * i.quantity)
            .collect();
        let lines: Vec<LineInput<'_>> = s
            .items
            .data
            .iter()
            .zip(&amounts)
            .map(|(i, amount)| LineInput {
                amount: *amount,
                tax_rates: &i.tax_rates,
            })
            .collect();
        let mut rates: Vec<TaxRate> = Vec::new();
        for id in s
            .default_tax_rates
            .iter()
            .chain(s.items.data.iter().flat_map(|i| i.tax_rates.iter()))
        {
            if !rates.iter().any(|r| &r.id == id)
                && let Some(r) = self.object::<TaxRate>(scope, id).await
            {
                rates.push(r);
            }
        }
        let rates: Vec<Rate<'_>> = rates.iter().map(Rate::from).collect();
        totals(&lines, &s.default_tax_rates, &rates, 0).total
    }

    async fn product_name(&self, scope: &Scope, product: &str) -> String {
        self.object::<Value>(scope, product)
            .await
            .and_then(|p| p["name"].as_str().map(str::to_string))
            .unwrap_or_else(|| "Subscription".into())
    }

    /// Cancel: at the period's end or at once, as the configuration says, with the
    /// customer's reason as the subscription's `cancellation_details[feedback]`.
    pub async fn cancel(
        &self,
        v: &Viewer,
        sub: &str,
        feedback: Option<&str>,
    ) -> Result<Subscription, PageError> {
        Self::permit(v, Action::Cancel { feedback })?;
        let s = self.subscription(v, sub).await?;
        let ctx = context(&v.scope);
        let mut details = Map::new();
        if let Some(f) = feedback {
            details.insert("feedback".into(), json!(f));
        }
        let details = Value::Object(details);
        let reply = if v.settings.features.subscription_cancel.mode == "immediately" {
            crate::billing::cancel_subscription(
                &self.billing,
                &ctx,
                &s.id,
                form(&[("cancellation_details", details)]),
            )
            .await?
        } else {
            crate::billing::update_subscription(
                &self.billing,
                &ctx,
                &s.id,
                form(&[
                    ("cancel_at_period_end", json!(true)),
                    ("cancellation_details", details),
                ]),
            )
            .await?
        };
        Ok(parse(&reply.body)?)
    }

    /// Resume a subscription set to end at the period's end.
    pub async fn resume(&self, v: &Viewer, sub: &str) -> Result<Subscription, PageError> {
        Self::permit(v, Action::Resume)?;
        let s = self.subscription(v, sub).await?;
        if !s.cancel_at_period_end {
            return Ok(s);
        }
        let reply = crate::billing::update_subscription(
            &self.billing,
            &context(&v.scope),
            &s.id,
            form(&[("cancel_at_period_end", json!(false))]),
        )
        .await?;
        Ok(parse(&reply.body)?)
    }

    /// Switch a one-item subscription to another of the configuration's prices, prorated as
    /// the configuration says (the subscriptions API's proration).
    pub async fn switch_price(
        &self,
        v: &Viewer,
        sub: &str,
        price: &str,
    ) -> Result<Subscription, PageError> {
        Self::permit(v, Action::SwitchPrice { price })?;
        let s = self.subscription(v, sub).await?;
        let [item] = s.items.data.as_slice() else {
            return Err(PageError::Refused(
                "This subscription has several items: please contact us to change it.".into(),
            ));
        };
        if item.price.id == price {
            return Ok(s);
        }
        let reply = crate::billing::update_subscription(
            &self.billing,
            &context(&v.scope),
            &s.id,
            form(&[
                (
                    "items",
                    json!([{"price": price, "quantity": item.quantity.to_string()}]),
                ),
                (
                    "proration_behavior",
                    json!(v.settings.features.subscription_update.proration_behavior),
                ),
            ]),
        )
        .await?;
        Ok(parse(&reply.body)?)
    }

    /// The customer's own details: only the fields the configuration allows, each refused
    /// by name otherwise (`customer.updated`).
    pub async fn update_details(
        &self,
        v: &Viewer,
        fields: &[(String, String)],
    ) -> Result<(), PageError> {
        let mut m = Map::new();
        let mut address = Map::new();
        for (k, val) in fields {
            let (field, sub) = match k.split_once('[') {
                Some((f, rest)) => (f, Some(rest.trim_end_matches(']'))),
                None => (k.as_str(), None),
            };
            if field == "csrf" {
                continue;
            }
            Self::permit(v, Action::UpdateDetail { field })?;
            match (field, sub) {
                ("email" | "name", None) => {
                    m.insert(field.into(), json!(val.trim()));
                }
                ("address", Some(part))
                    if ["line1", "line2", "city", "postal_code", "state", "country"]
                        .contains(&part) =>
                {
                    address.insert(part.into(), json!(val.trim()));
                }
                _ => return Err(PageError::Refused(format!("Unknown field: {k}"))),
            }
        }
        if !address.is_empty() {
            m.insert("address".into(), Value::Object(address));
        }
        crate::customers::update(
            self.store(),
            &context(&v.scope),
            &v.session.customer,
            Params::new(m),
        )
        .await?;
        Ok(())
    }

    /// Start updating the card: a `setup` checkout session for this customer whose success
    /// brings the browser back to `return_to` (with the checkout session's id).
    pub async fn start_card_update(&self, v: &Viewer, back: &str) -> Result<String, PageError> {
        Self::permit(v, Action::UpdateCard)?;
        let reply = self
            .checkout
            .create(
                &context(&v.scope),
                form(&[
                    ("mode", json!("setup")),
                    ("customer", json!(v.session.customer)),
                    (
                        "success_url",
                        json!(format!(
                            "{back}/card/saved?checkout={{CHECKOUT_SESSION_ID}}"
                        )),
                    ),
                    ("cancel_url", json!(back)),
                    ("metadata", json!({"billing_portal_session": v.session.id})),
                ]),
            )
            .await?;
        let cs: CheckoutSession = parse(&reply.body)?;
        cs.url
            .ok_or_else(|| PageError::Unavailable("The card page is not available.".into()))
    }

    /// The card page saved a card: it becomes the default of the customer and of each of
    /// their current subscriptions, and their open invoices are retried at once (dunning's
    /// recovery). The checkout session must be this customer's, complete, from this session.
    pub async fn card_saved(&self, v: &Viewer, checkout: &str) -> Result<(), PageError> {
        Self::permit(v, Action::UpdateCard)?;
        let scope = &v.scope;
        let (_, cs, _) = self.checkout.load(scope, checkout).await?;
        let ours = cs.customer.as_deref() == Some(v.session.customer.as_str())
            && cs.mode == "setup"
            && cs
                .metadata
                .get("billing_portal_session")
                .map(String::as_str)
                == Some(v.session.id.as_str());
        if !ours {
            return Err(PageError::NotFound);
        }
        let Some(pm) = cs.payment_method.filter(|_| cs.status == "complete") else {
            return Err(PageError::Refused(
                "The card was not saved. Please try again.".into(),
            ));
        };
        let ctx = context(scope);
        crate::customers::update(
            self.store(),
            &ctx,
            &v.session.customer,
            form(&[("invoice_settings", json!({"default_payment_method": pm}))]),
        )
        .await?;
        let mut c = self.store().conn();
        let subs: Vec<String> = self
            .store()
            .run(c.zrange(
                crate::billing::keys::customer_subscriptions(scope, &v.session.customer),
                0,
                100,
            ))
            .await
            .map_err(ApiError::from)?;
        for id in subs {
            let Ok(s) = self.subscription(v, &id).await else {
                continue;
            };
            if s.default_payment_method.as_deref() == Some(pm.as_str()) {
                continue;
            }
            // Updating the subscription's card retries its open invoice (the API's path).
            crate::billing::update_subscription(
                &self.billing,
                &ctx,
                &s.id,
                form(&[("default_payment_method", json!(pm))]),
            )
            .await?;
        }
        if let Err(e) =
            crate::billing::retry_for_customer(&self.billing, scope, &v.session.customer).await
        {
            tracing::warn!(customer = %v.session.customer, error = %e.message, "retrying open invoices after a card update failed");
        }
        Ok(())
    }
}
