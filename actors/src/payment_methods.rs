//! Payment methods: cards tokenised at the gateway with a VERIFY (amount 0).
//!
//! The card number and CVC exist only in the request's memory while the VERIFY is sent: they
//! are not in any log line, Redis key or answer. What is kept is the gateway's `xref` (beside
//! the record, never answered), brand, last4, expiry, funding, and a fingerprint: an
//! HMAC-SHA256 of the number under a per-project random key, so the same card is recognisable
//! within a project and meaningless outside it.

use calmony_protocol::card::CardInput;
use calmony_protocol::event::Event;
use calmony_protocol::list::ListParams;
use calmony_protocol::params::{Field, Params};
use calmony_protocol::payment_intent::PAY_BY_BANK;
use calmony_protocol::payment_method::{
    self, BillingDetails, CardChecks, CardDetails, PaymentMethod,
};
use calmony_protocol::{ApiError, ErrorType, ids, metadata};
use hmac::{Hmac, Mac};
use redis::AsyncCommands;
use serde_json::json;
use sha2::Sha256;

use crate::clock;
use crate::context::{Reply, RequestContext};
use crate::gateway::{AuthOutcome, CardToTokenise, Tokenised};
use crate::payments::Payments;
use crate::resource::{commit, commit_answer, committed, page_body, to_json};
use crate::store::retry::{Attempt, until_committed};
use crate::store::{Scope, Store, StoreError, Tx};

use crate::payments::records::{customer_method_index as customer_index, method_index as index};

/// The project's fingerprint key, made on first use.
async fn fingerprint_key(store: &Store, project: &str) -> Result<String, StoreError> {
    let key = format!("cp:project:{{{project}}}");
    let mut c = store.conn();
    let fresh = ids::random_alnum(32);
    let _: bool = store
        .run(c.hset_nx(&key, "fingerprint_key", &fresh))
        .await?;
    let k: Option<String> = store.run(c.hget(&key, "fingerprint_key")).await?;
    Ok(k.unwrap_or(fresh))
}

fn fingerprint(key: &str, number: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(number.as_bytes());
    let digest = mac.finalize().into_bytes();
    hex::encode(&digest[..8])
}

fn card_error(code: &'static str, decline_code: &str, message: &str) -> ApiError {
    let mut e = ApiError::new(402, ErrorType::CardError, message)
        .with_code(code)
        .with_param("card");
    e.decline_code = Some(decline_code.to_string());
    e
}

fn event(kind: &str, pm: &PaymentMethod, scope: &Scope, ctx: &RequestContext) -> Event {
    crate::resource::event(kind, pm, scope, &ctx.event_request(), clock::now())
}

fn take_billing(p: &mut Params) -> Result<BillingDetails, ApiError> {
    let mut b = match p.object(&["billing_details", "billingDetails"])? {
        Field::Set(b) => b,
        _ => {
            return Ok(BillingDetails {
                address: None,
                email: None,
                name: None,
                phone: None,
            });
        }
    };
    let details = BillingDetails {
        name: b.string_max(&["name"], 256)?.into_option(),
        email: b.string_max(&["email"], 512)?.into_option(),
        phone: b.string_max(&["phone"], 40)?.into_option(),
        address: b.take(&["address"])?.map(|(_, v)| v),
    };
    b.finish()?;
    Ok(details)
}

/// `POST /v1/payment_methods`: tokenise a card (and attach it if a customer is named).
/// `POST /v1/payment_methods` with `type=pay_by_bank`: nothing to tokenise (the payer picks
/// and approves at their bank on each payment); billing details, metadata and a customer as
/// for a card.
async fn create_bank_method(
    p: &Payments,
    ctx: &RequestContext,
    mut params: Params,
) -> Result<Reply, ApiError> {
    let scope = &ctx.scope;
    if let Field::Set(data) = params.object(&["pay_by_bank"])? {
        // Stripe's `pay_by_bank` hash has nothing to set; anything in it is refused by name.
        data.finish()?;
    }
    let billing = take_billing(&mut params)?;
    let meta = metadata::take(&mut params)?;
    let customer = params
        .string_max(&["customer", "customerId"], 100)?
        .into_option();
    params.expand()?;
    params.finish()?;
    if let Some(c) = &customer {
        crate::payments::check_customer(p, ctx, c, "customer").await?;
    }
    let mut pm = PaymentMethod::pay_by_bank(
        ids::new_id(payment_method::PREFIX),
        clock::now(),
        scope.livemode(),
    );
    pm.billing_details = billing;
    if let Some(m) = &meta {
        m.apply(&mut pm.metadata, "metadata")?;
    }
    pm.set_customer(customer.clone());
    let body = to_json(&pm)?;
    let key = scope.record(&pm.id);
    let mut tx = Tx::new();
    tx.expect_version(&key, 0)
        .put(&key, 1, &body)
        .index(&index(scope), &pm.id);
    if let Some(c) = &customer {
        tx.index(&customer_index(scope, c), &pm.id);
        tx.event(scope, &event("payment_method.attached", &pm, scope, ctx));
    }
    tx.respond(ctx, 200, &body);
    commit_answer(&p.store, &tx, body).await
}

pub async fn create(
    p: &Payments,
    ctx: &RequestContext,
    mut params: Params,
) -> Result<Reply, ApiError> {
    let scope = &ctx.scope;
    let kind = params
        .one_of(&["type"], &["card", PAY_BY_BANK])?
        .into_option();
    if kind.as_deref() == Some(PAY_BY_BANK) {
        return create_bank_method(p, ctx, params).await;
    }
    let (year, month) = clock::year_month();
    let card = CardInput::take(&mut params, year, month)?;
    let billing = take_billing(&mut params)?;
    let meta = metadata::take(&mut params)?;
    let customer = params
        .string_max(&["customer", "customerId"], 100)?
        .into_option();
    params.expand()?;
    params.finish()?;
    if let Some(c) = &customer {
        crate::payments::check_customer(p, ctx, c, "customer").await?;
    }
    let acct = p.gateway_for(scope.mode)?;
    // The request takes its own copy of the number and CVC, dropped when it is answered.
    let request = CardToTokenise {
        card: CardInput {
            number: card.number.clone(),
            exp_month: card.exp_month,
            exp_year: card.exp_year,
            cvc: card.cvc.clone(),
        },
        attempt: ids::new_id("tok"),
    };
    let tokenised = acct.tokenise(request).await;
    let Tokenised {
        outcome,
        card: report,
    } = tokenised.map_err(|e| {
        tracing::warn!(error = %e, "card tokenisation failed");
        ApiError::new(
            503,
            ErrorType::ApiError,
            "The card gateway could not be reached. Please retry.",
        )
        .with_code("gateway_unavailable")
    })?;
    let xref = match outcome {
        AuthOutcome::Approved { txn, .. } => txn.xref,
        AuthOutcome::Declined { decline_code, .. } => {
            let (code, message) = calmony_protocol::error::decline_words(&decline_code);
            return Err(card_error(code, &decline_code, message));
        }
        AuthOutcome::Challenge { .. } | AuthOutcome::Failed { .. } => {
            return Err(card_error(
                "processing_error",
                "processing_error",
                "An error occurred while processing your card. Try again in a little bit.",
            ));
        }
    };
    let fp_key = fingerprint_key(&p.store, &scope.project).await?;
    let brand = card.brand();
    let mut pm = PaymentMethod {
        id: ids::new_id(payment_method::PREFIX),
        object: "payment_method".into(),
        allow_redisplay: "unspecified".into(),
        billing_details: billing,
        pay_by_bank: None,
        card: Some(CardDetails {
            brand: brand.into(),
            checks: CardChecks {
                address_line1_check: None,
                address_postal_code_check: None,
                cvc_check: card.cvc.as_ref().map(|_| "pass".to_string()),
            },
            country: report.country,
            display_brand: brand.into(),
            exp_month: card.exp_month,
            exp_year: card.exp_year,
            fingerprint: fingerprint(&fp_key, &card.number),
            funding: report.funding,
            last4: card.last4().to_string(),
            networks: json!({"available": [brand], "preferred": null}),
            three_d_secure_usage: json!({"supported": true}),
            wallet: None,
        }),
        created: clock::now(),
        customer: None,
        livemode: scope.livemode(),
        metadata: Default::default(),
        kind: "card".into(),
        customer_id: None,
    };
    drop(card);
    if let Some(m) = &meta {
        m.apply(&mut pm.metadata, "metadata")?;
    }
    pm.set_customer(customer.clone());
    let body = to_json(&pm)?;
    let key = scope.record(&pm.id);
    let mut tx = Tx::new();
    tx.expect_version(&key, 0)
        .put_with(&key, 1, &body, &[("xref", &xref)])
        .index(&index(scope), &pm.id);
    if let Some(c) = &customer {
        tx.index(&customer_index(scope, c), &pm.id);
        tx.event(scope, &event("payment_method.attached", &pm, scope, ctx));
    }
    tx.respond(ctx, 200, &body);
    commit_answer(&p.store, &tx, body).await
}

async fn load(
    p: &Payments,
    scope: &Scope,
    id: &str,
) -> Result<(u64, PaymentMethod, String), ApiError> {
    if !ids::is_valid(payment_method::PREFIX, id) {
        return Err(ApiError::no_such("payment_method", id, "payment_method"));
    }
    let key = scope.record(id);
    let (rec, internal) = p
        .store
        .get_with(&key, &["xref"])
        .await?
        .ok_or_else(|| ApiError::no_such("payment_method", id, "payment_method"))?;
    let pm = rec.parse(&key)?;
    Ok((
        rec.version,
        pm,
        internal.into_iter().next().flatten().unwrap_or_default(),
    ))
}

/// `GET /v1/payment_methods/:id`.
pub async fn retrieve(
    p: &Payments,
    ctx: &RequestContext,
    id: &str,
    mut params: Params,
) -> Result<Reply, ApiError> {
    params.expand()?;
    params.finish()?;
    let (_, pm, _) = load(p, &ctx.scope, id).await?;
    Ok(Reply::ok(to_json(&pm)?))
}

/// `POST /v1/payment_methods/:id/attach` (`payment_method.attached`). Attaching to the customer
/// it already belongs to changes nothing.
pub async fn attach(
    p: &Payments,
    ctx: &RequestContext,
    id: &str,
    mut params: Params,
) -> Result<Reply, ApiError> {
    let customer = params
        .string_max(&["customer", "customerId"], 100)?
        .into_option()
        .ok_or_else(|| ApiError::missing_param("customer"))?;
    params.expand()?;
    params.finish()?;
    let scope = &ctx.scope;
    crate::payments::check_customer(p, ctx, &customer, "customer").await?;
    let customer = &customer;
    until_committed(
        || async move {
        let (version, mut pm, xref) = load(p, scope, id).await?;
        match &pm.customer {
            Some(c) if c == customer => return Ok(Attempt::Done(Reply::ok(to_json(&pm)?))),
            Some(_) => {
                return Err(ApiError::invalid_param(
                    "payment_method_unexpected_state",
                    "customer",
                    "The payment method is already attached to another customer. Detach it first.",
                ));
            }
            None => {}
        }
        pm.set_customer(Some(customer.clone()));
        let body = to_json(&pm)?;
        let key = scope.record(id);
        let mut tx = Tx::new();
        tx.expect_version(&key, version)
            .put_with(&key, version + 1, &body, &[("xref", &xref)])
            .index(&customer_index(scope, customer), id)
            .event(scope, &event("payment_method.attached", &pm, scope, ctx))
            .respond(ctx, 200, &body);
        Ok(committed(commit(&p.store, &tx).await?, body))
        },
        ApiError::lock_timeout,
    )
    .await
}

/// `POST /v1/payment_methods/:id/detach` (`payment_method.detached`).
pub async fn detach(
    p: &Payments,
    ctx: &RequestContext,
    id: &str,
    mut params: Params,
) -> Result<Reply, ApiError> {
    params.expand()?;
    params.finish()?;
    let scope = &ctx.scope;
    until_committed(
        || async move {
            let (version, mut pm, xref) = load(p, scope, id).await?;
            let Some(customer) = pm.customer.clone() else {
                return Err(ApiError::invalid_param(
                    "payment_method_unexpected_state",
                    "payment_method",
                    "The payment method is not attached to a customer.",
                ));
            };
            pm.set_customer(None);
            let body = to_json(&pm)?;
            let key = scope.record(id);
            let mut tx = Tx::new();
            tx.expect_version(&key, version)
                .put_with(&key, version + 1, &body, &[("xref", &xref)])
                .unindex(&customer_index(scope, &customer), id)
                .event(scope, &event("payment_method.detached", &pm, scope, ctx))
                .respond(ctx, 200, &body);
            Ok(committed(commit(&p.store, &tx).await?, body))
        },
        ApiError::lock_timeout,
    )
    .await
}

/// `GET /v1/payment_methods?customer=…` (and `GET /v1/customers/:id/payment_methods`).
pub async fn list(
    p: &Payments,
    ctx: &RequestContext,
    customer: Option<String>,
    mut params: Params,
) -> Result<Reply, ApiError> {
    let list = ListParams::take(&mut params, payment_method::PREFIX)?;
    let customer = match customer {
        Some(c) => Some(c),
        None => params
            .string_max(&["customer", "customerId"], 100)?
            .into_option(),
    };
    params.one_of(&["type"], &["card"])?;
    params.expand()?;
    params.finish()?;
    let index = match &customer {
        Some(c) => customer_index(&ctx.scope, c),
        None => index(&ctx.scope),
    };
    let (items, has_more) = p.store.page(&ctx.scope, &index, &list).await?;
    let url = match &customer {
        Some(c) if false => format!("/v1/customers/{c}/payment_methods"),
        _ => "/v1/payment_methods".to_string(),
    };
    page_body(&url, &items, has_more).map(Reply::ok)
}
