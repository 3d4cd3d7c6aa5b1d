//! Hosted checkout sessions: the API, the signed hand-off to the gateway's hosted payment page,
//! and completion.
//!
//! ## Completion, exactly once
//! The gateway tells us the result twice, in either order and perhaps more than once: the
//! customer's browser is posted back to `redirectURL`, and the gateway posts to `callbackURL`
//! server to server. Both go to [`complete`]: the signature is verified, the result is checked
//! against the session (its `orderRef`, a `transactionUnique` of this session, the amount and
//! currency), and then one commit, conditional on the session still being `open`, writes
//! everything: the customer (created from `customer_email` if needed), the card as a payment
//! method with its `xref`, the payment intent (`succeeded`, with `cardstreamTransactionId` and
//! the session's and `payment_intent_data`'s metadata), its charge, the receipt invoice, the
//! session `complete`, and the events. The second arrival finds it complete and changes nothing.
//! A success for a session that expired is refused, logged, and the charge voided at the gateway;
//! so is a success of another attempt for a session already paid (a customer who paid again
//! on a second card page while the first result was unknown): the session keeps the payment
//! that completed it.

use calmony_protocol::billing::{PRICE_PREFIX, Price, Product};
use calmony_protocol::cardstream::Fields;
use calmony_protocol::charge::Charge;
use calmony_protocol::checkout::{CheckoutLine, CheckoutSession, CreateParams, LineSpec, PREFIX};
use calmony_protocol::customer::{Customer, CustomerChanges};
use calmony_protocol::event::{Event, EventRequest};
use calmony_protocol::list::ListParams;
use calmony_protocol::params::Params;
use calmony_protocol::payment_intent::{PAY_BY_BANK, PaymentIntent};
use calmony_protocol::payment_method::{BillingDetails, CardChecks, CardDetails, PaymentMethod};
use calmony_protocol::{ApiError, Mode, ids};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::billing::Billing;
use crate::billing::status::SubscriptionStatus;
use crate::clock;
use crate::context::{Reply, RequestContext};
use crate::gateway::ManageOutcome;
use crate::payments::Payments;
use crate::resource::{commit_answer, page_body, to_json};
use crate::store::retry::{Attempt, until_committed};
use crate::store::{Commit, Scope, Tx, filters};

pub mod session_state;

use session_state::{
    OnResult, PageResult, SessionMode, SessionStatus, intent_status_after_payment,
    is_another_payment, may_expire, on_result, payment_status_after_payment,
    payment_status_of_subscription,
};

/// Sessions by expiry time, for the sweeper.
pub const EXPIRY: &str = crate::payments::bank::CHECKOUT_EXPIRY;

#[derive(Clone)]
pub struct Checkout {
    pub payments: Payments,
    pub billing: Billing,
}

/// What a session keeps beside its answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionInternal {
    pub lines: Vec<CheckoutLine>,
    pub intent_metadata: calmony_protocol::metadata::Metadata,
    /// Each line's product description (`product_data[description]`, or the product's),
    /// by line: for the page and the receipt.
    #[serde(default)]
    pub product_descriptions: Vec<Option<String>>,
    /// `payment_intent_data[description]`.
    #[serde(default)]
    pub intent_description: Option<String>,
    /// `payment_intent_data[capture_method]=manual`: the payment is authorised on the page and
    /// held (`requires_capture`) for a capture through the API.
    #[serde(default)]
    pub manual_capture: bool,
}

impl SessionInternal {
    /// A line's description as the payer and the receipt show it: the product's name, then
    /// its description if it has one.
    pub fn line_text(&self, i: usize) -> String {
        let name = self
            .lines
            .get(i)
            .map(|l| l.description.clone())
            .unwrap_or_default();
        match self.product_descriptions.get(i).cloned().flatten() {
            Some(d) => format!("{name} — {d}"),
            None => name,
        }
    }
}

/// What the hosted page's result came to.
pub enum Completion {
    Completed(CheckoutSession),
    Canceled(CheckoutSession),
    Declined {
        session: CheckoutSession,
        message: String,
    },
    Refused(String),
}

fn member(scope: &Scope, id: &str) -> String {
    format!("{}|{}|{id}", scope.project, scope.mode)
}

/// Checkout's events come from the customer's browser or the gateway, not an API request.
fn event(kind: &str, obj: &impl Serialize, scope: &Scope, now: i64) -> Event {
    crate::resource::event(kind, obj, scope, &EventRequest::default(), now)
}

/// The page a session's `url` opens.
/// The session's reference as a payer reads it (on the checkout page, and as the gateway's
/// `orderRef`, which its hosted page shows): `7K3M-9QXZ`, the last eight characters of the
/// ULID in the session's id (Crockford base 32: no I, L, O or U to misread), not the whole
/// 60-character id. The gateway's result is still bound to the whole id by its signed
/// `transactionUnique`.
pub fn short_reference(id: &str) -> String {
    let body = id.rsplit('_').next().unwrap_or(id);
    let ulid: Vec<char> = body.chars().take(26).collect();
    let tail = &ulid[ulid.len().saturating_sub(8)..];
    let (a, b) = tail.split_at(tail.len() / 2);
    format!(
        "{}-{}",
        a.iter().collect::<String>(),
        b.iter().collect::<String>()
    )
}

pub fn page_url(public_base: &str, scope: &Scope, id: &str) -> String {
    format!(
        "{public_base}/pay/checkout/{}/{}/{id}",
        scope.project, scope.mode
    )
}

impl Checkout {
    fn store(&self) -> &crate::store::Store {
        &self.payments.store
    }

    pub async fn load(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<(u64, CheckoutSession, SessionInternal), ApiError> {
        crate::resource::load_with_internal(
            self.store(),
            scope,
            (PREFIX, "checkout.session", "id"),
            id,
        )
        .await
    }

    /// `POST /v1/checkout/sessions`.
    pub async fn create(&self, ctx: &RequestContext, params: Params) -> Result<Reply, ApiError> {
        let scope = &ctx.scope;
        let now = clock::now();
        let p = CreateParams::take(params, now)?;
        // A session nobody can pay is refused now, not when the payer meets the page.
        let by_bank = p.payment_method_types.iter().any(|t| t == PAY_BY_BANK);
        if p.payment_method_types.iter().any(|t| t == "card") {
            self.payments.account(scope.mode)?;
        }
        if by_bank {
            crate::payments::bank::check_rail(&self.payments, scope.mode)?;
            if !SessionMode::of(&p.mode).takes_payment() || p.mode != "payment" {
                return Err(ApiError::invalid_param(
                    "parameter_invalid_value",
                    "payment_method_types",
                    "pay_by_bank is available in payment mode only: a bank transfer cannot \
                     be set up for later payments.",
                ));
            }
        }
        if let Some(c) = &p.customer {
            crate::payments::check_customer(&self.payments, ctx, c, "customer").await?;
        }
        let id = format!(
            "{}_{}_{}",
            PREFIX,
            scope.mode,
            ids::new_id("x").trim_start_matches("x_").to_string() + &ids::random_alnum(24)
        );
        let mut tx = Tx::new();
        let mut lines = Vec::new();
        let mut product_descriptions = Vec::new();
        // A subscription checkout becomes one subscription: its lines obey a subscription's
        // rules (1 to 20 items, one billing interval), checked now rather than after the payer
        // has paid, when the subscription would be refused.
        let subscribing = SessionMode::of(&p.mode) == SessionMode::Subscription;
        if subscribing && p.lines.len() > 20 {
            return Err(ApiError::invalid_param(
                "parameter_invalid_array",
                "line_items",
                "A subscription checkout has at most 20 line items.",
            ));
        }
        let mut interval: Option<(String, i64)> = None;
        for (i, spec) in p.lines.iter().enumerate() {
            let (price, name, product_description) = match spec {
                LineSpec::Price { id: pid, .. } => {
                    let (_, price): (u64, Price) = load_obj(
                        self,
                        scope,
                        PRICE_PREFIX,
                        pid,
                        &format!("line_items[{i}][price]"),
                    )
                    .await?;
                    crate::billing::refuse_inactive(&price, &format!("line_items[{i}][price]"))?;
                    let (_, prod): (u64, Product) = load_obj(
                        self,
                        scope,
                        "prod",
                        &price.product,
                        &format!("line_items[{i}][price]"),
                    )
                    .await?;
                    (price, prod.name, prod.description)
                }
                LineSpec::Inline {
                    name,
                    description,
                    product_metadata,
                    unit_amount,
                    recurring,
                    ..
                } => {
                    let prod = Product {
                        id: ids::new_id("prod"),
                        object: "product".into(),
                        active: true,
                        created: now,
                        default_price: None,
                        description: description.clone(),
                        livemode: scope.livemode(),
                        metadata: product_metadata.clone(),
                        name: name.clone(),
                        unit_label: None,
                        updated: now,
                    };
                    let price = Price {
                        id: ids::new_id(PRICE_PREFIX),
                        object: "price".into(),
                        active: false,
                        billing_scheme: "per_unit".into(),
                        created: now,
                        currency: "gbp".into(),
                        livemode: scope.livemode(),
                        lookup_key: None,
                        metadata: Default::default(),
                        nickname: None,
                        product: prod.id.clone(),
                        kind: if recurring.is_some() {
                            "recurring".into()
                        } else {
                            "one_time".into()
                        },
                        recurring: recurring.clone(),
                        tax_behavior: "unspecified".into(),
                        unit_amount: *unit_amount,
                        unit_amount_decimal: unit_amount.to_string(),
                    };
                    tx.expect_version(&scope.record(&prod.id), 0).put(
                        &scope.record(&prod.id),
                        1,
                        &to_json(&prod)?,
                    );
                    tx.expect_version(&scope.record(&price.id), 0).put(
                        &scope.record(&price.id),
                        1,
                        &to_json(&price)?,
                    );
                    (price, name.clone(), description.clone())
                }
            };
            product_descriptions.push(product_description);
            let quantity = match spec {
                LineSpec::Price { quantity, .. } | LineSpec::Inline { quantity, .. } => *quantity,
            };
            let subscription = SessionMode::of(&p.mode) == SessionMode::Subscription;
            let recurring_ok = subscription == price.recurring.is_some();
            if !recurring_ok {
                return Err(ApiError::invalid_param(
                    "parameter_invalid_value",
                    &format!("line_items[{i}]"),
                    if subscription {
                        "A subscription checkout needs recurring prices."
                    } else {
                        "A payment checkout takes one-off prices."
                    },
                ));
            }
            if let Some(r) = price.recurring.as_ref().filter(|_| subscribing) {
                let this = (r.interval.clone(), r.interval_count);
                if interval.get_or_insert_with(|| this.clone()) != &this {
                    return Err(ApiError::invalid_param(
                        "price_interval_mismatch",
                        &format!("line_items[{i}][price]"),
                        "All line items of a subscription checkout must bill on the same interval.",
                    ));
                }
            }
            lines.push(CheckoutLine {
                id: ids::new_id("li"),
                object: "item".into(),
                amount_subtotal: price.unit_amount * quantity,
                amount_total: price.unit_amount * quantity,
                currency: "gbp".into(),
                description: name,
                price: serde_json::to_value(&price).unwrap_or(Value::Null),
                quantity,
            });
        }
        let total: i64 = lines.iter().map(|l| l.amount_total).sum();
        if by_bank {
            let limit = self.payments.bank.as_ref().map_or(0, |r| r.limit);
            if total > limit {
                return Err(ApiError::invalid_param(
                    "amount_too_large",
                    "payment_method_types",
                    format!(
                        "pay_by_bank takes at most {} a payment; this session's total is {}.",
                        calmony_protocol::clock_text::money(limit),
                        calmony_protocol::clock_text::money(total)
                    ),
                ));
            }
        }
        let expires_at = p
            .expires_at
            .unwrap_or(now + calmony_protocol::checkout::MAX_LIFE);
        let session = CheckoutSession {
            url: Some(page_url(&self.payments.public_base, scope, &id)),
            id: id.clone(),
            object: "checkout.session".into(),
            amount_subtotal: total,
            amount_total: total,
            cancel_url: p.cancel_url,
            client_reference_id: p.client_reference_id,
            created: now,
            currency: "gbp".into(),
            customer_id: p.customer.clone(),
            customer: p.customer,
            customer_email: p.customer_email,
            expires_at,
            livemode: scope.livemode(),
            metadata: p.metadata,
            payment_status: SessionMode::of(&p.mode)
                .payment_status_at_create()
                .as_str()
                .into(),
            mode: p.mode,
            payment_intent: None,
            payment_intent_id: None,
            payment_method: None,
            status: SessionStatus::Open.as_str().into(),
            subscription: None,
            success_url: p.success_url,
            invoice: None,
            locale: p.locale,
            submit_type: p.submit_type,
            payment_method_types: p.payment_method_types,
        };
        let internal = SessionInternal {
            lines,
            intent_metadata: p.intent_metadata,
            product_descriptions,
            intent_description: p.intent_description,
            manual_capture: p.capture_method == "manual",
        };
        let body = to_json(&session)?;
        tx.expect_version(&scope.record(&id), 0)
            .put_with(
                &scope.record(&id),
                1,
                &body,
                &[("internal", &to_json(&internal)?)],
            )
            .index(&scope.key("checkout_sessions"), &id)
            .schedule(EXPIRY, expires_at, &member(scope, &id))
            .respond(ctx, 200, &body);
        commit_answer(self.store(), &tx, body).await
    }

    /// `GET /v1/checkout/sessions/:id` (`expand[]`, as success pages use it, is answered by
    /// [`crate::expand`] like every endpoint's).
    pub async fn retrieve(
        &self,
        ctx: &RequestContext,
        id: &str,
        mut p: Params,
    ) -> Result<Reply, ApiError> {
        p.expand()?;
        p.finish()?;
        let (_, s, _) = self.load(&ctx.scope, id).await?;
        Ok(Reply::ok(to_json(&s)?))
    }

    pub async fn list(&self, ctx: &RequestContext, mut p: Params) -> Result<Reply, ApiError> {
        let list = ListParams::take(&mut p, PREFIX)?;
        let payment_intent = p.string_max(&["payment_intent"], 100)?.into_option();
        let customer = p.string_max(&["customer"], 100)?.into_option();
        let status = p
            .one_of(&["status"], &SessionStatus::ALL.map(SessionStatus::as_str))?
            .into_option();
        p.expand()?;
        p.finish()?;
        let all = ctx.scope.key("checkout_sessions");
        let sets = filters::sets(
            &all,
            &all,
            &[
                ("status", status.as_deref()),
                ("customer", customer.as_deref()),
                ("payment_intent", payment_intent.as_deref()),
            ],
        );
        let (out, has_more) = self
            .store()
            .page_where(&ctx.scope, &sets, &[], &list)
            .await?;
        page_body("/v1/checkout/sessions", &out, has_more).map(Reply::ok)
    }

    /// `GET /v1/checkout/sessions/:id/line_items`.
    pub async fn line_items(
        &self,
        ctx: &RequestContext,
        id: &str,
        mut p: Params,
    ) -> Result<Reply, ApiError> {
        let list = ListParams::take(&mut p, "li")?;
        p.expand()?;
        p.finish()?;
        let (_, _, internal) = self.load(&ctx.scope, id).await?;
        let (page, has_more) =
            calmony_protocol::list::page_embedded(&internal.lines, |l| l.id.as_str(), &list)?;
        let body = json!({"object": "list", "data": page, "has_more": has_more, "url": format!("/v1/checkout/sessions/{id}/line_items")});
        Ok(Reply::ok(body.to_string()))
    }

    /// `POST /v1/checkout/sessions/:id/expire`, and the sweeper: `open` -> `expired`.
    pub async fn expire(
        &self,
        scope: &Scope,
        id: &str,
        ctx: Option<&RequestContext>,
    ) -> Result<Reply, ApiError> {
        let (v, mut s, internal) = self.load(scope, id).await?;
        if !may_expire(SessionStatus::of(&s.status)) {
            return Err(ApiError::unexpected_state(
                "checkout session",
                &s.status,
                SessionStatus::Expired.as_str(),
            ));
        }
        let now = clock::now();
        s.status = SessionStatus::Expired.as_str().into();
        s.url = None;
        let body = to_json(&s)?;
        let mut tx = Tx::new();
        tx.expect_version(&scope.record(id), v)
            .put_with(
                &scope.record(id),
                v + 1,
                &body,
                &[("internal", &to_json(&internal)?)],
            )
            .unindex(EXPIRY, &member(scope, id))
            .event(scope, &event("checkout.session.expired", &s, scope, now));
        if let Some(ctx) = ctx {
            tx.respond(ctx, 200, &body);
        }
        commit_answer(self.store(), &tx, body).await
    }

    /// Expire sessions past `expires_at`, up to 500 a pass (every daemon runs it, as the
    /// CheckoutExpiry actor, once a second; each session expires once).
    pub async fn sweep_expired(&self) {
        let mut c = self.store().conn();
        let due: Vec<String> = match self
            .store()
            .run(c.zrangebyscore_limit(EXPIRY, "-inf", clock::now(), 0, 500))
            .await
        {
            Ok(d) => d,
            Err(_) => return,
        };
        for m in due {
            let mut it = m.split('|');
            let (Some(p), Some(mode), Some(id)) =
                (it.next(), it.next().and_then(Mode::parse), it.next())
            else {
                continue;
            };
            let scope = Scope::new(p.to_string(), mode);
            match self.expire(&scope, id, None).await {
                Ok(_) => {}
                Err(e) if e.status == 400 || e.status == 404 => {
                    let _: Result<i64, _> = self.store().run(c.zrem(EXPIRY, &m)).await;
                }
                Err(e) => {
                    tracing::debug!(error = %e.message, "expiring a checkout session failed")
                }
            }
        }
    }

    /// The token the checkout page's Pay by Bank form carries (the session id is the page's
    /// secret; this binds the form to it).
    pub fn bank_csrf(id: &str) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(format!("checkout-bank:{id}").as_bytes()))
    }

    /// The payer chose Pay by Bank on the page: a payment intent for the session's total,
    /// confirmed towards the bank page (whose `return_url` is this session's page), written
    /// with the session in one commit. Answers the bank page's URL.
    pub async fn start_bank(
        &self,
        scope: &Scope,
        id: &str,
        csrf: &str,
    ) -> Result<String, ApiError> {
        use subtle::ConstantTimeEq;
        let p = &self.payments;
        let (v, mut s, internal) = self.load(scope, id).await?;
        if !bool::from(Self::bank_csrf(id).as_bytes().ct_eq(csrf.as_bytes())) {
            return Err(ApiError::invalid_param(
                "parameter_invalid_value",
                "csrf",
                "This form has expired. Reload the page.",
            ));
        }
        if s.status != SessionStatus::Open.as_str()
            || !s.payment_method_types.iter().any(|t| t == PAY_BY_BANK)
        {
            return Err(ApiError::invalid_param(
                "parameter_invalid_value",
                "payment_method_types",
                "This checkout does not take Pay by Bank now.",
            ));
        }
        // A bank payment this session already started (the payer clicked again, or came
        // back) is the one carried on: never a second consent for one session.
        if let Some(pi) = &s.payment_intent
            && let Ok(started) = p.load(scope, None, pi).await
            && started.internal.bank.is_some()
            && matches!(
                crate::payments::IntentStatus::of(&started.intent),
                Some(
                    crate::payments::IntentStatus::RequiresAction
                        | crate::payments::IntentStatus::Processing
                )
            )
        {
            return Ok(crate::payments::bank::page_url(p, scope, &started.intent));
        }
        let pi_id = ids::new_id(calmony_protocol::payment_intent::PREFIX);
        let now = clock::now();
        let mut intent = PaymentIntent::new(
            pi_id.clone(),
            s.amount_total,
            "gbp".into(),
            now,
            scope.livemode(),
        );
        intent.payment_method_types = vec![PAY_BY_BANK.into()];
        intent.return_url = Some(page_url(&p.public_base, scope, id));
        intent.description = internal.intent_description.clone();
        intent.metadata = internal.intent_metadata.clone();
        intent.set_customer(s.customer.clone());
        let mut pi_internal = crate::payments::IntentInternal::default();
        crate::payments::bank::start(p, scope, &mut intent, &mut pi_internal)?;
        if let Some(bank) = pi_internal.bank.as_mut() {
            bank.checkout_session = Some(id.to_string());
        }
        let next = intent
            .next_action
            .as_ref()
            .and_then(|n| n["redirect_to_url"]["url"].as_str())
            .unwrap_or_default()
            .to_string();
        s.payment_intent = Some(pi_id.clone());
        s.payment_intent_id = Some(pi_id.clone());
        let mut tx = Tx::new();
        tx.expect_version(&scope.record(id), v)
            .put(&scope.record(id), v + 1, &to_json(&s)?)
            .put_with(
                &scope.record(&pi_id),
                1,
                &to_json(&intent)?,
                &[("internal", &to_json(&pi_internal)?)],
            )
            .index(&scope.key("payment_intents"), &pi_id)
            .event(scope, &event("payment_intent.created", &intent, scope, now))
            .event(
                scope,
                &event("payment_intent.requires_action", &intent, scope, now),
            );
        if let Some(c) = &s.customer {
            tx.index(&scope.key(&format!("customer:{c}:payment_intents")), &pi_id);
        }
        match self.store().commit(&tx).await? {
            Commit::Done(_) => Ok(next),
            _ => Err(ApiError::lock_timeout()),
        }
    }

    /// The signed form that hands the browser to the hosted payment page: a new attempt
    /// (`transactionUnique` = session id + a random suffix), so a declined card can be
    /// retried with another.
    pub async fn hand_off(
        &self,
        scope: &Scope,
        s: &CheckoutSession,
        internal: &SessionInternal,
        merchant: Option<&str>,
    ) -> Result<(String, Vec<(String, String)>), ApiError> {
        let acct = self.payments.account(scope.mode)?;
        let base = page_url(&self.payments.public_base, scope, &s.id);
        let mut f = Fields::new();
        let verify_only = !SessionMode::of(&s.mode).takes_payment();
        f.insert("action", if verify_only { "VERIFY" } else { "SALE" })
            .insert("type", "1")
            .insert(
                "amount",
                if verify_only {
                    "0".to_string()
                } else {
                    s.amount_total.to_string()
                },
            )
            .insert("currencyCode", "826")
            .insert("countryCode", "826")
            .insert(
                "transactionUnique",
                format!("{}.{}", s.id, ids::random_alnum(10)),
            )
            .insert("orderRef", short_reference(&s.id))
            .insert("redirectURL", format!("{base}/return"))
            .insert("callbackURL", format!("{base}/callback"))
            .insert("formResponsive", "Y");
        // Without a display name the gateway's page shows its own account name for the
        // merchant, never the project's internal one.
        if let Some(name) = merchant {
            f.insert("merchantName", name);
        }
        if let Some(e) = &s.customer_email {
            f.insert("customerEmail", e.as_str());
        }
        if internal.manual_capture && !verify_only {
            // Authorised on the page, held for a capture through the API.
            f.insert("captureDelay", "-1");
        }
        let signed = acct.sign_form(f);
        let fields = signed
            .iter()
            .filter_map(|(k, v)| match v {
                calmony_protocol::cardstream::FieldValue::Scalar(s) => {
                    Some((k.to_string(), s.clone()))
                }
                calmony_protocol::cardstream::FieldValue::Record(_) => None,
            })
            .collect();
        Ok((acct.hosted_url(), fields))
    }

    /// Apply a result the hosted page posted back (see the module documentation).
    pub async fn complete(
        &self,
        scope: &Scope,
        id: &str,
        body: &[u8],
    ) -> Result<Completion, ApiError> {
        let fields = Fields::parse(body).map_err(|e| ApiError::malformed(e.to_string()))?;
        let acct = self.payments.account(scope.mode)?;
        if let Err(e) = acct.verify_result(&fields) {
            tracing::warn!(session = id, error = %e, "refused a checkout result whose signature does not verify");
            return Ok(Completion::Refused(
                "The payment result could not be verified.".into(),
            ));
        }
        let fields = match settled_result(acct, fields).await {
            Some(fields) => fields,
            None => {
                return Ok(Completion::Refused(
                    "The payment's result is not known yet. Refresh this page in a moment; do not pay again."
                        .into(),
                ));
            }
        };
        let (v, s, internal) = self.load(scope, id).await?;
        let code: i64 = fields
            .get("responseCode")
            .and_then(|c| c.parse().ok())
            .unwrap_or(-1);
        let unique = fields.get("transactionUnique").unwrap_or("");
        let ours = fields.get("orderRef") == Some(short_reference(id).as_str())
            && unique.starts_with(&format!("{id}."));
        let mode = SessionMode::of(&s.mode);
        let expected_amount = if mode.takes_payment() {
            s.amount_total
        } else {
            0
        };
        let amount_ok =
            fields.get("amount").and_then(|a| a.parse::<i64>().ok()) == Some(expected_amount);
        let currency_ok = matches!(fields.get("currencyCode"), Some("826") | Some("GBP"));
        if !ours || !amount_ok || !currency_ok {
            tracing::warn!(
                session = id,
                "refused a checkout result that does not match the session"
            );
            return Ok(Completion::Refused(
                "The payment result does not match this checkout.".into(),
            ));
        }
        let xref = fields.get("xref").unwrap_or("").to_string();
        let status = SessionStatus::of(&s.status);
        match on_result(status, mode, PageResult::of(code), s.subscription.is_some()) {
            OnResult::StartSubscription => Ok(Completion::Completed(
                self.start_subscription(scope, id).await?,
            )),
            OnResult::AlreadyComplete { void_other_payment } => {
                if void_other_payment {
                    self.void_unless_it_paid(scope, &s, &xref).await;
                }
                Ok(Completion::Completed(s))
            }
            OnResult::Canceled => Ok(Completion::Canceled(s)),
            OnResult::Declined { record } => {
                let s = if record {
                    self.record_decline(scope, v, s, &internal, &fields).await?
                } else {
                    s
                };
                let message =
                    match calmony_protocol::cardstream::codes::Outcome::from_response(&fields)
                        .ok()
                        .and_then(|o| o.decline_code())
                    {
                        Some("insufficient_funds") => "Your card has insufficient funds.",
                        Some("expired_card") => "Your card has expired.",
                        Some("incorrect_cvc") => "Your card's security code is incorrect.",
                        Some("authentication_required") => {
                            "Your bank could not verify this payment."
                        }
                        _ => "Your card was declined.",
                    };
                Ok(Completion::Declined {
                    session: s,
                    message: message.into(),
                })
            }
            OnResult::Refuse { void_payment } => {
                tracing::error!(session = id, status = %s.status, xref, "a payment arrived for a checkout session that is no longer open; voiding it at the gateway");
                if void_payment {
                    self.void_unkept(scope, id, &xref).await;
                }
                Ok(Completion::Refused("This checkout has expired.".into()))
            }
            OnResult::Complete {
                then_start_subscription,
            } => {
                let completed = self
                    .write_completion(scope, v, s, internal, &fields, &xref)
                    .await?;
                if then_start_subscription {
                    return Ok(Completion::Completed(
                        self.start_subscription(scope, id).await?,
                    ));
                }
                Ok(Completion::Completed(completed))
            }
        }
    }

    /// A declined attempt on the hosted page, recorded as one through the API is
    /// ([`crate::payments::declines`]): on the session's payment intent (made by its first
    /// attempt, so a later success completes the same one), a failed charge, and the decline's
    /// events. The redirect and the callback both bring the result: the attempt's
    /// `transactionUnique` on the intent makes the second arrival change nothing.
    async fn record_decline(
        &self,
        scope: &Scope,
        v: u64,
        mut s: CheckoutSession,
        internal: &SessionInternal,
        f: &Fields,
    ) -> Result<CheckoutSession, ApiError> {
        let attempt = f.get("transactionUnique").unwrap_or("").to_string();
        let code = f
            .get("responseCode")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let outcome = crate::gateway::cardstream::transformers::auth_outcome(f).unwrap_or(
            crate::gateway::AuthOutcome::Failed {
                code,
                message: f.get("responseMessage").unwrap_or("").to_string(),
            },
        );
        let now = clock::now();
        let existing = match s.payment_intent_id.as_deref() {
            Some(pi) => Some(self.payments.load(scope, None, pi).await?),
            None => None,
        };
        let mut tx = Tx::new();
        let (mut intent, mut pi_internal, version) = match existing {
            Some(l) => (l.intent, l.internal, l.version),
            None => {
                let mut intent = PaymentIntent::new(
                    ids::new_id("pi"),
                    s.amount_total,
                    "gbp".into(),
                    now,
                    scope.livemode(),
                );
                let mut metadata = s.metadata.clone();
                metadata.extend(internal.intent_metadata.clone());
                intent.metadata = metadata;
                intent.description = internal.lines.first().map(|l| l.description.clone());
                intent.receipt_email = s.customer_email.clone();
                intent.set_customer(s.customer.clone());
                tx.index(&scope.key("payment_intents"), &intent.id)
                    .event(scope, &event("payment_intent.created", &intent, scope, now));
                if let Some(c) = &s.customer {
                    tx.index(
                        &scope.key(&format!("customer:{c}:payment_intents")),
                        &intent.id,
                    );
                }
                (intent, crate::payments::IntentInternal::default(), 0)
            }
        };
        if pi_internal.recorded(&attempt) {
            // A replay (the redirect and the callback, or a late retry of either).
            return Ok(s);
        }
        pi_internal.record_attempt(attempt);
        let charge = crate::payments::new_charge(&intent, scope, None, None);
        let declined = crate::payments::declines::record(
            &mut intent,
            charge,
            outcome,
            None,
            scope,
            &EventRequest::default(),
            now,
        );
        tx.expect_version(&scope.record(&intent.id), version)
            .put_with(
                &scope.record(&intent.id),
                version + 1,
                &to_json(&intent)?,
                &[("internal", &to_json(&pi_internal)?)],
            )
            .expect_version(&scope.record(&declined.charge.id), 0)
            .put(
                &scope.record(&declined.charge.id),
                1,
                &to_json(&declined.charge)?,
            )
            .index(&scope.key("charges"), &declined.charge.id);
        crate::money::stats::failed(&mut tx, scope, now);
        for e in &declined.events {
            tx.event(scope, e);
        }
        if s.payment_intent_id.is_none() {
            s.payment_intent = Some(intent.id.clone());
            s.payment_intent_id = Some(intent.id.clone());
            tx.expect_version(&scope.record(&s.id), v).put_with(
                &scope.record(&s.id),
                v + 1,
                &to_json(&s)?,
                &[("internal", &to_json(internal)?)],
            );
        }
        match self.store().commit(&tx).await? {
            Commit::Done(_) => {
                metrics::counter!("calmony_payments_total", "outcome" => "declined").increment(1);
                Ok(s)
            }
            // The other arrival recorded it first (or the session moved on): its state wins.
            _ => Ok(self.load(scope, &s.id).await?.1),
        }
    }

    /// A successful payment for a session that another attempt already paid (the customer
    /// paid again while the first result was not known, or two attempts' results raced) is
    /// voided at the gateway, as a late payment for an expired session is: the session keeps
    /// the payment that completed it, and the card is never charged twice for one checkout. A
    /// replay of the completing attempt's own result (its redirect and its callback) finds its
    /// own `xref` on the session's payment and does nothing.
    async fn void_unless_it_paid(&self, scope: &Scope, s: &CheckoutSession, xref: &str) {
        if !SessionMode::of(&s.mode).takes_payment() || xref.is_empty() {
            return;
        }
        let Some(pi) = s.payment_intent_id.as_deref() else {
            return;
        };
        let paid_by = match self.payments.load(scope, None, pi).await {
            Ok(loaded) => loaded.internal.sale_xref,
            Err(e) => {
                tracing::error!(session = %s.id, xref, error = %e.message, "cannot read which payment completed this checkout; check this payment by hand");
                return;
            }
        };
        if !is_another_payment(SessionStatus::of(&s.status), paid_by.as_deref(), xref) {
            return;
        }
        let paid_by = paid_by.unwrap_or_else(|| "a bank payment".into());
        tracing::error!(session = %s.id, xref, paid_by = %paid_by, "a second payment arrived for a checkout session another payment completed; voiding it at the gateway");
        self.void_unkept(scope, &s.id, xref).await;
    }

    /// Void a payment a session will not keep (it came late, or a second time), through the
    /// gateway's cancel flow like any other void. Whatever stops the void is logged for a
    /// person: a refusal may mean it was voided already (a replay of the same result) or that
    /// it settled and must be refunded.
    async fn void_unkept(&self, scope: &Scope, session: &str, xref: &str) {
        let gateway = match self.payments.gateway_for(scope.mode) {
            Ok(gateway) => gateway,
            Err(e) => {
                tracing::error!(session, xref, error = %e.message, "cannot void a payment the checkout does not keep: refund it by hand");
                return;
            }
        };
        match gateway.cancel(xref).await {
            Ok(ManageOutcome::Done { .. }) => {}
            Ok(ManageOutcome::Refused { code, message }) => {
                tracing::error!(session, xref, code, %message, "the gateway refused to void a payment the checkout does not keep (voided already, or settled: if it is charged, refund it by hand)");
            }
            Err(e) => {
                tracing::error!(session, xref, error = %e, "voiding a payment the checkout does not keep failed: refund it by hand");
            }
        }
    }

    async fn write_completion(
        &self,
        scope: &Scope,
        v: u64,
        mut s: CheckoutSession,
        internal: SessionInternal,
        f: &Fields,
        xref: &str,
    ) -> Result<CheckoutSession, ApiError> {
        let now = clock::now();
        let mut tx = Tx::new();
        tx.expect_version(&scope.record(&s.id), v);
        // The customer: given, or made from the email.
        let customer_id = match &s.customer {
            Some(c) => c.clone(),
            None => {
                let mut changes = CustomerChanges::default();
                if let Some(e) = &s.customer_email {
                    changes.email = calmony_protocol::params::Field::Set(e.clone());
                }
                if let Some(n) = f.get("cardholderName").filter(|n| !n.is_empty()) {
                    changes.name = calmony_protocol::params::Field::Set(n.to_string());
                }
                let c: Customer = changes.create(ids::new_id("cus"), now, scope.livemode())?;
                let body = to_json(&c)?;
                let created = event("customer.created", &c, scope, now);
                crate::customers::stage_new(&mut tx, scope, &c, &body, &created);
                c.id
            }
        };
        // The card, as a payment method holding its xref.
        let mask = f.get("cardNumberMask").unwrap_or("");
        let last4 = calmony_protocol::card::last4_of(mask);
        let brand = match f.get("cardSchemeCode").unwrap_or("") {
            "VC" | "VD" | "EL" => "visa",
            "MC" | "MD" | "MA" => "mastercard",
            "AM" => "amex",
            "JC" => "jcb",
            "DI" => "diners",
            _ => calmony_protocol::card::brand(mask),
        };
        let year = f
            .get("cardExpiryYear")
            .and_then(|y| y.parse::<u32>().ok())
            .map(|y| if y < 100 { y + 2000 } else { y })
            .unwrap_or(0);
        let mut pm = PaymentMethod {
            id: ids::new_id("pm"),
            object: "payment_method".into(),
            allow_redisplay: "always".into(),
            billing_details: BillingDetails {
                address: None,
                email: s.customer_email.clone(),
                name: f.get("cardholderName").map(str::to_string),
                phone: None,
            },
            pay_by_bank: None,
            card: Some(CardDetails {
                brand: brand.into(),
                checks: CardChecks {
                    address_line1_check: None,
                    address_postal_code_check: None,
                    cvc_check: Some("pass".into()),
                },
                country: Some("GB".into()),
                display_brand: brand.into(),
                exp_month: f
                    .get("cardExpiryMonth")
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(0),
                exp_year: year,
                fingerprint: String::new(),
                funding: if f.get("cardTypeCode").is_some_and(|t| t.ends_with('D')) {
                    "debit".into()
                } else {
                    "credit".into()
                },
                last4,
                networks: json!({"available": [brand], "preferred": null}),
                three_d_secure_usage: json!({"supported": true}),
                wallet: None,
            }),
            created: now,
            customer: None,
            livemode: scope.livemode(),
            metadata: Default::default(),
            kind: "card".into(),
            customer_id: None,
        };
        pm.set_customer(Some(customer_id.clone()));
        let pm_body = to_json(&pm)?;
        tx.expect_version(&scope.record(&pm.id), 0)
            .put_with(&scope.record(&pm.id), 1, &pm_body, &[("xref", xref)])
            .index(&scope.key("payment_methods"), &pm.id)
            .index(
                &scope.key(&format!("customer:{customer_id}:payment_methods")),
                &pm.id,
            )
            .event(scope, &event("payment_method.attached", &pm, scope, now));
        if SessionMode::of(&s.mode).takes_payment() {
            let mut metadata = s.metadata.clone();
            metadata.extend(internal.intent_metadata.clone());
            // The intent a declined attempt made, if any: the session has one payment.
            let (pi_id, pi_version, created) = match s.payment_intent_id.as_deref() {
                Some(pi) => {
                    let l = self.payments.load(scope, None, pi).await?;
                    (l.intent.id, l.version, l.intent.created)
                }
                None => (ids::new_id("pi"), 0, now),
            };
            let mut intent = PaymentIntent::new(
                pi_id.clone(),
                s.amount_total,
                "gbp".into(),
                created,
                scope.livemode(),
            );
            let held = internal.manual_capture;
            if held {
                intent.capture_method = "manual".into();
                intent.amount_capturable = s.amount_total;
            } else {
                intent.amount_received = s.amount_total;
            }
            intent.status = intent_status_after_payment(held).as_str().into();
            intent.description = internal
                .intent_description
                .clone()
                .or_else(|| internal.lines.first().map(|l| l.description.clone()));
            intent.metadata = metadata;
            intent.receipt_email = s.customer_email.clone();
            intent.cardstream_transaction_id = f.get("transactionID").map(str::to_string);
            intent.set_customer(Some(customer_id.clone()));
            intent.set_payment_method(Some(pm.id.clone()));
            let charge = Charge {
                id: ids::new_id("ch"),
                object: "charge".into(),
                amount: s.amount_total,
                amount_captured: if held { 0 } else { s.amount_total },
                amount_refunded: 0,
                balance_transaction: None,
                captured: !held,
                created: now,
                currency: "gbp".into(),
                customer: Some(customer_id.clone()),
                description: intent.description.clone(),
                failure_code: None,
                failure_message: None,
                livemode: scope.livemode(),
                metadata: intent.metadata.clone(),
                outcome: json!({"network_status": "approved_by_network", "type": "authorized"}),
                paid: true,
                payment_intent: pi_id.clone(),
                payment_method: Some(pm.id.clone()),
                payment_method_details: json!({"type": "card", "card": {"brand": brand, "last4": pm.card.as_ref().map(|c| c.last4.clone())}}),
                refunded: false,
                status: crate::payments::ChargeStatus::Succeeded.as_str().into(),
                cardstream_transaction_id: intent.cardstream_transaction_id.clone(),
            };
            intent.latest_charge = Some(charge.id.clone());
            let internal_pi = crate::payments::IntentInternal {
                sale_xref: Some(xref.to_string()),
                ..Default::default()
            };
            if pi_version == 0 {
                tx.event(scope, &event("payment_intent.created", &intent, scope, now));
            }
            tx.expect_version(&scope.record(&pi_id), pi_version)
                .put_with(
                    &scope.record(&pi_id),
                    pi_version + 1,
                    &to_json(&intent)?,
                    &[("internal", &to_json(&internal_pi)?)],
                )
                .index(&scope.key("payment_intents"), &pi_id)
                .index(
                    &scope.key(&format!("customer:{customer_id}:payment_intents")),
                    &pi_id,
                )
                .expect_version(&scope.record(&charge.id), 0)
                .put(&scope.record(&charge.id), 1, &to_json(&charge)?)
                .index(&scope.key("charges"), &charge.id)
                .event(scope, &event("charge.succeeded", &charge, scope, now));
            if held {
                // Nothing is received until the capture, which writes the receipt then.
                tx.event(
                    scope,
                    &event(
                        "payment_intent.amount_capturable_updated",
                        &intent,
                        scope,
                        now,
                    ),
                );
                s.payment_status = payment_status_after_payment(true).as_str().into();
            } else {
                tx.event(
                    scope,
                    &event("payment_intent.succeeded", &intent, scope, now),
                );
                let settings = self.payments.billing.clone();
                let items: Vec<crate::billing::ReceiptLine> = internal
                    .lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| crate::billing::ReceiptLine {
                        description: internal.line_text(i),
                        unit_amount: l.amount_total / l.quantity.max(1),
                        quantity: l.quantity,
                    })
                    .collect();
                s.invoice = Some(crate::billing::receipt_with_lines(
                    &mut tx,
                    scope,
                    &intent,
                    &items,
                    &settings.invoice_prefix,
                    &self.payments.public_base,
                    &EventRequest::default(),
                    now,
                )?);
                s.payment_status = payment_status_after_payment(false).as_str().into();
            }
            s.payment_intent = Some(pi_id.clone());
            s.payment_intent_id = Some(pi_id);
        }
        s.status = SessionStatus::Complete.as_str().into();
        s.url = None;
        s.customer = Some(customer_id.clone());
        s.customer_id = Some(customer_id);
        s.payment_method = Some(pm.id.clone());
        let body = to_json(&s)?;
        tx.put_with(
            &scope.record(&s.id),
            v + 1,
            &body,
            &[("internal", &to_json(&internal)?)],
        )
        .unindex(EXPIRY, &member(scope, &s.id));
        if SessionMode::of(&s.mode) != SessionMode::Subscription {
            tx.event(scope, &event("checkout.session.completed", &s, scope, now));
        }
        match self.store().commit(&tx).await? {
            Commit::Done(_) => Ok(s),
            // The other arrival (redirect or callback) completed it first, or another attempt
            // did while this one was written.
            _ => {
                let s = self.load(scope, &s.id).await?.1;
                self.void_unless_it_paid(scope, &s, xref).await;
                Ok(s)
            }
        }
    }

    /// `mode: subscription`: the card was saved (VERIFY); the subscription starts now and its
    /// first period is charged as usual. The session completes with it.
    ///
    /// The redirect and the gateway callback both arrive here. The subscription's id is
    /// derived from the session's, so only one of them creates it (and charges); the other
    /// waits for the creator to record it on the session. If the creator died in between,
    /// the waiter records it after a few seconds, so a crash never leaves it unrecorded.
    async fn start_subscription(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<CheckoutSession, ApiError> {
        let ulid: String = id
            .strip_prefix(&format!("{PREFIX}_{}_", scope.mode))
            .unwrap_or(id)
            .chars()
            .take(26)
            .collect();
        let sub_id = format!("sub_{ulid}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        // Create it here, or wait for the arrival that does to record it.
        loop {
            let (_, s, internal) = self.load(scope, id).await?;
            if s.subscription.is_some() {
                return Ok(s);
            }
            let created_here = if self.store().get(&scope.record(&sub_id)).await?.is_none() {
                let agreed: Vec<&str> = internal
                    .lines
                    .iter()
                    .filter_map(|l| l.price["id"].as_str())
                    .collect();
                match crate::billing::create_subscription_as(
                    &self.billing,
                    &self.context(scope),
                    self.subscription_params(&s, &internal),
                    sub_id.clone(),
                    &agreed,
                )
                .await
                {
                    Ok(_) => true,
                    Err(e) if e.code == Some("lock_timeout") => false,
                    Err(e) => return Err(e),
                }
            } else {
                false
            };
            if created_here || std::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // Record it on the session (unless the other arrival has meanwhile): the session
        // completes with it.
        let sub_id = &sub_id;
        until_committed(
            || async move {
                let (v, mut s, internal) = self.load(scope, id).await?;
                if s.subscription.is_some() {
                    return Ok(Attempt::Done(s));
                }
                let sub: Value = match self.store().get(&scope.record(sub_id)).await? {
                    Some(rec) => rec.parse(&scope.record(sub_id))?,
                    None => Value::Null,
                };
                let sub_status = sub["status"].as_str().and_then(SubscriptionStatus::parse);
                s.subscription = Some(sub_id.clone());
                s.invoice = sub["latest_invoice"].as_str().map(str::to_string);
                s.payment_status = payment_status_of_subscription(sub_status).as_str().into();
                let now = clock::now();
                let mut tx = Tx::new();
                tx.expect_version(&scope.record(&s.id), v)
                    .put_with(
                        &scope.record(&s.id),
                        v + 1,
                        &to_json(&s)?,
                        &[("internal", &to_json(&internal)?)],
                    )
                    .event(scope, &event("checkout.session.completed", &s, scope, now));
                Ok(match self.store().commit(&tx).await? {
                    Commit::Done(_) => Attempt::Done(s),
                    _ => Attempt::Conflict,
                })
            },
            ApiError::lock_timeout,
        )
        .await
    }

    fn context(&self, scope: &Scope) -> RequestContext {
        RequestContext {
            deferred: None,
            request_id: ids::request_id(),
            scope: scope.clone(),
            idempotency: None,
            idempotency_ttl_secs: 86_400,
            prefetched: Default::default(),
        }
    }

    /// The subscription a session's line items describe, paid by the card it saved.
    fn subscription_params(&self, s: &CheckoutSession, internal: &SessionInternal) -> Params {
        let mut map = serde_json::Map::new();
        map.insert(
            "customer".into(),
            Value::String(s.customer.clone().unwrap_or_default()),
        );
        map.insert(
            "default_payment_method".into(),
            Value::String(s.payment_method.clone().unwrap_or_default()),
        );
        let items: Vec<Value> = internal
            .lines
            .iter()
            .map(|l| json!({"price": l.price["id"], "quantity": l.quantity.to_string()}))
            .collect();
        map.insert("items".into(), Value::Array(items));
        let md: serde_json::Map<String, Value> = s
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        map.insert("metadata".into(), Value::Object(md));
        Params::new(map)
    }
}

async fn load_obj<T: serde::de::DeserializeOwned>(
    c: &Checkout,
    scope: &Scope,
    prefix: &str,
    id: &str,
    param: &str,
) -> Result<(u64, T), ApiError> {
    if !ids::is_valid(prefix, id) {
        return Err(ApiError::invalid_param(
            "resource_missing",
            param,
            format!("No such object: '{id}'"),
        ));
    }
    let key = scope.record(id);
    let rec = c.store().get(&key).await?.ok_or_else(|| {
        ApiError::invalid_param("resource_missing", param, format!("No such object: '{id}'"))
    })?;
    Ok((rec.version, rec.parse(&key)?))
}

/// A hosted result as it can be acted on: one whose code says what happened is taken as it
/// is; one that does not (65548, the gateway's store failed, perhaps after charging) is
/// replaced by the gateway's QUERY answer for its `transactionUnique`, which replays the
/// original's fields (signature checked by the call). `None` while the gateway cannot say.
///
/// The one network call checkout still makes on the Cardstream account rather than through
/// [`crate::gateway::PaymentGateway`]: completion records the card from the result's own
/// fields (mask, scheme, expiry, holder, `transactionID`), which the trait's typed
/// [`crate::gateway::TxnStatus`] does not carry. It moves to the trait once the gateway has a
/// hosted-page flow that answers the replayed result.
async fn settled_result(acct: &crate::gateway::Cardstream, fields: Fields) -> Option<Fields> {
    let code = fields
        .get("responseCode")
        .and_then(|c| c.trim().parse().ok());
    if !code.is_some_and(calmony_protocol::cardstream::codes::outcome_unknown) {
        return Some(fields);
    }
    let unique = fields.get("transactionUnique").filter(|u| !u.is_empty())?;
    match acct.query(Some(unique), None).await {
        Ok(found) => found,
        Err(error) => {
            tracing::warn!(%error, unique, "a hosted result with an unknown outcome could not be queried");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_payer_reads_a_short_reference_not_the_session_id() {
        let id = "cs_test_01KBT5J2Q7ZC9X4M3N8P6R2W5Yk3F9qL2mZx7Vb4Nc8Tt1Hs6D";
        assert_eq!(super::short_reference(id), "8P6R-2W5Y");
        assert_eq!(
            super::short_reference("cs_live_01KBT5J2Q7ZC9X4M3N8P6R2W5Y"),
            "8P6R-2W5Y"
        );
        assert_eq!(super::short_reference(""), "-");
    }
}
