//! The catalogue: `/v1/products`, `/v1/prices` (one-off and recurring, reused by id; inline
//! `price_data` where Stripe accepts it creates one too), `/v1/tax_rates`.

use calmony_protocol::billing::{
    PRICE_PREFIX, PRODUCT_PREFIX, Price, Product, TAX_RATE_PREFIX, TaxRate, take_gbp,
    take_recurring,
};
use calmony_protocol::list::ListParams;
use calmony_protocol::params::{Field, Params};
use calmony_protocol::{ApiError, ids, metadata};

use crate::clock;
use crate::context::{Reply, RequestContext};
use crate::resource::{commit_answer, page_body, to_json};
use crate::store::{Scope, Store, Tx, filters};

fn not_found(object: &str, id: &str, param: &str) -> ApiError {
    ApiError::no_such(object, id, param)
}

/// Load a stored object of a kind (404 naming `param` when absent).
pub(crate) async fn load<T: serde::de::DeserializeOwned>(
    store: &Store,
    scope: &Scope,
    prefix: &str,
    object: &str,
    id: &str,
    param: &str,
) -> Result<(u64, T), ApiError> {
    if !ids::is_valid(prefix, id) {
        return Err(not_found(object, id, param));
    }
    let key = scope.record(id);
    let rec = store
        .get(&key)
        .await?
        .ok_or_else(|| not_found(object, id, param))?;
    if rec.json.contains("\"deleted\":true") {
        return Err(not_found(object, id, param));
    }
    Ok((rec.version, rec.parse(&key)?))
}

/// An archived (inactive) price takes no new use: a subscription, checkout line or invoice
/// item naming it by id is refused, naming `param` (as Stripe does). Uses already made keep it.
pub fn refuse_inactive(price: &Price, param: &str) -> Result<(), ApiError> {
    if price.active {
        return Ok(());
    }
    Err(ApiError::invalid_param(
        "parameter_invalid_value",
        param,
        "The price specified is inactive. This field only accepts active prices.",
    ))
}

async fn save<T: serde::Serialize>(
    store: &Store,
    ctx: &RequestContext,
    id: &str,
    version: u64,
    obj: &T,
    index: Option<&str>,
) -> Result<Reply, ApiError> {
    let body = to_json(obj)?;
    let key = ctx.scope.record(id);
    let mut tx = Tx::new();
    tx.expect_version(&key, version)
        .put(&key, version + 1, &body);
    if let Some(i) = index {
        tx.index(&ctx.scope.key(i), id);
    }
    tx.respond(ctx, 200, &body);
    commit_answer(store, &tx, body).await
}

fn new_product(ctx: &RequestContext, name: String) -> Product {
    let now = clock::now();
    Product {
        id: ids::new_id(PRODUCT_PREFIX),
        object: "product".into(),
        active: true,
        created: now,
        default_price: None,
        description: None,
        livemode: ctx.scope.livemode(),
        metadata: Default::default(),
        name,
        unit_label: None,
        updated: now,
    }
}

/// `POST /v1/products`.
pub async fn create_product(
    store: &Store,
    ctx: &RequestContext,
    mut p: Params,
) -> Result<Reply, ApiError> {
    let name = p.required_string(&["name"], 250)?;
    let mut prod = new_product(ctx, name);
    prod.description = p.string_max(&["description"], 5000)?.into_option();
    prod.unit_label = p
        .string_max(&["unit_label", "unitLabel"], 12)?
        .into_option();
    prod.active = p.boolean(&["active"])?.into_option().unwrap_or(true);
    if let Some(m) = metadata::take(&mut p)? {
        m.apply(&mut prod.metadata, "metadata")?;
    }
    if !p.string_max(&["id"], 255)?.is_absent() {
        return Err(ApiError::invalid_param(
            "parameter_invalid",
            "id",
            "A product's id is chosen by the daemon; id cannot be given.",
        ));
    }
    // README, "Accepted, not acted on": no pictures, page or descriptor is shown, no tax is
    // computed by code.
    p.ignore(&["images", "tax_code", "url", "statement_descriptor"]);
    p.expand()?;
    p.finish()?;
    let id = prod.id.clone();
    save(store, ctx, &id, 0, &prod, Some("products")).await
}

pub async fn retrieve_product(
    store: &Store,
    ctx: &RequestContext,
    id: &str,
    p: Params,
) -> Result<Reply, ApiError> {
    crate::resource::retrieve_stored(store, ctx, PRODUCT_PREFIX, "product", id, p).await
}

pub async fn update_product(
    store: &Store,
    ctx: &RequestContext,
    id: &str,
    mut p: Params,
) -> Result<Reply, ApiError> {
    let (v, mut prod): (u64, Product) =
        load(store, &ctx.scope, PRODUCT_PREFIX, "product", id, "id").await?;
    if let Field::Set(n) = p.string_max(&["name"], 250)? {
        prod.name = n;
    }
    match p.string_max(&["description"], 5000)? {
        Field::Set(d) => prod.description = Some(d),
        Field::Unset => prod.description = None,
        Field::Absent => {}
    }
    if let Field::Set(a) = p.boolean(&["active"])? {
        prod.active = a;
    }
    if let Some(m) = metadata::take(&mut p)? {
        m.apply(&mut prod.metadata, "metadata")?;
    }
    p.expand()?;
    p.finish()?;
    prod.updated = clock::now();
    save(store, ctx, id, v, &prod, None).await
}

pub async fn delete_product(
    store: &Store,
    ctx: &RequestContext,
    id: &str,
    p: Params,
) -> Result<Reply, ApiError> {
    p.finish()?;
    let (v, _): (u64, Product) =
        load(store, &ctx.scope, PRODUCT_PREFIX, "product", id, "id").await?;
    let body = serde_json::json!({"id": id, "object": "product", "deleted": true}).to_string();
    let mut tx = Tx::new();
    tx.expect_version(&ctx.scope.record(id), v)
        .put(&ctx.scope.record(id), v + 1, &body)
        .unindex(&ctx.scope.key("products"), id)
        .respond(ctx, 200, &body);
    commit_answer(store, &tx, body).await
}

pub async fn list_products(
    store: &Store,
    ctx: &RequestContext,
    mut p: Params,
) -> Result<Reply, ApiError> {
    let list = ListParams::take(&mut p, PRODUCT_PREFIX)?;
    let active = p.boolean(&["active"])?.into_option();
    p.expand()?;
    p.finish()?;
    let all = ctx.scope.key("products");
    let active = active.map(|a| a.to_string());
    let sets = filters::sets(&all, &all, &[("active", active.as_deref())]);
    let (items, more) = store.page_where(&ctx.scope, &sets, &[], &list).await?;
    page_body("/v1/products", &items, more).map(Reply::ok)
}

/// Read a price's terms (for `POST /v1/prices` and inline `price_data`). `product` or
/// `product_data[name]` names the product; a new product is created in `tx`.
pub(crate) async fn price_from(
    store: &Store,
    ctx: &RequestContext,
    p: &mut Params,
    tx: &mut Tx,
    inline: bool,
) -> Result<Price, ApiError> {
    let currency = take_gbp(p)?;
    let unit_amount = p
        .integer(&["unit_amount", "unitAmount"], 0, 99_999_999)?
        .into_option()
        .ok_or_else(|| ApiError::missing_param(&p.name("unit_amount")))?;
    let recurring = take_recurring(p)?;
    let tax_behavior = p
        .one_of(
            &["tax_behavior", "taxBehavior"],
            &["inclusive", "exclusive", "unspecified"],
        )?
        .into_option()
        .unwrap_or_else(|| "unspecified".into());
    let product = match (
        p.string_max(&["product"], 100)?.into_option(),
        p.object(&["product_data", "productData"])?,
    ) {
        (Some(id), _) => {
            let (_, prod): (u64, Product) = load(
                store,
                &ctx.scope,
                PRODUCT_PREFIX,
                "product",
                &id,
                &p.name("product"),
            )
            .await?;
            prod.id
        }
        (None, Field::Set(mut pd)) => {
            let name = pd.required_string(&["name"], 250)?;
            let description = pd.string_max(&["description"], 5000)?.into_option();
            let meta = metadata::take(&mut pd)?;
            let meta_name = pd.name("metadata");
            // README, "Accepted, not acted on": no pictures are shown, no tax is computed by code.
            pd.ignore(&["images", "tax_code"]);
            pd.finish()?;
            let mut prod = new_product(ctx, name);
            prod.description = description;
            if let Some(m) = meta {
                m.apply(&mut prod.metadata, &meta_name)?;
            }
            let body = to_json(&prod)?;
            tx.expect_version(&ctx.scope.record(&prod.id), 0)
                .put(&ctx.scope.record(&prod.id), 1, &body)
                .index(&ctx.scope.key("products"), &prod.id);
            prod.id
        }
        _ => return Err(ApiError::missing_param(&p.name("product"))),
    };
    let mut price = Price {
        id: ids::new_id(PRICE_PREFIX),
        object: "price".into(),
        active: !inline,
        billing_scheme: "per_unit".into(),
        created: clock::now(),
        currency,
        livemode: ctx.scope.livemode(),
        lookup_key: None,
        metadata: Default::default(),
        nickname: None,
        product,
        kind: if recurring.is_some() {
            "recurring".into()
        } else {
            "one_time".into()
        },
        recurring,
        tax_behavior,
        unit_amount,
        unit_amount_decimal: unit_amount.to_string(),
    };
    if !inline {
        price.nickname = p.string_max(&["nickname"], 250)?.into_option();
        price.lookup_key = p
            .string_max(&["lookup_key", "lookupKey"], 200)?
            .into_option();
        if let Some(m) = metadata::take(p)? {
            m.apply(&mut price.metadata, "metadata")?;
        }
        price.active = p.boolean(&["active"])?.into_option().unwrap_or(true);
    }
    let body = to_json(&price)?;
    tx.expect_version(&ctx.scope.record(&price.id), 0)
        .put(&ctx.scope.record(&price.id), 1, &body);
    if !inline {
        tx.index(&ctx.scope.key("prices"), &price.id);
    }
    Ok(price)
}

/// `POST /v1/prices`.
pub async fn create_price(
    store: &Store,
    ctx: &RequestContext,
    mut p: Params,
) -> Result<Reply, ApiError> {
    let mut tx = Tx::new();
    let price = price_from(store, ctx, &mut p, &mut tx, false).await?;
    p.expand()?;
    p.finish()?;
    let body = to_json(&price)?;
    tx.respond(ctx, 200, &body);
    commit_answer(store, &tx, body).await
}

pub async fn retrieve_price(
    store: &Store,
    ctx: &RequestContext,
    id: &str,
    p: Params,
) -> Result<Reply, ApiError> {
    crate::resource::retrieve_stored(store, ctx, PRICE_PREFIX, "price", id, p).await
}

/// `POST /v1/prices/:id`: a price's terms never change; `active`, `nickname` and `metadata` do.
pub async fn update_price(
    store: &Store,
    ctx: &RequestContext,
    id: &str,
    mut p: Params,
) -> Result<Reply, ApiError> {
    let (v, mut price): (u64, Price) =
        load(store, &ctx.scope, PRICE_PREFIX, "price", id, "id").await?;
    if let Field::Set(a) = p.boolean(&["active"])? {
        price.active = a;
    }
    match p.string_max(&["nickname"], 250)? {
        Field::Set(n) => price.nickname = Some(n),
        Field::Unset => price.nickname = None,
        Field::Absent => {}
    }
    if let Some(m) = metadata::take(&mut p)? {
        m.apply(&mut price.metadata, "metadata")?;
    }
    p.expand()?;
    p.finish()?;
    save(store, ctx, id, v, &price, None).await
}

pub async fn list_prices(
    store: &Store,
    ctx: &RequestContext,
    mut p: Params,
) -> Result<Reply, ApiError> {
    let list = ListParams::take(&mut p, PRICE_PREFIX)?;
    let active = p.boolean(&["active"])?.into_option();
    let product = p.string_max(&["product"], 100)?.into_option();
    let kind = p
        .one_of(&["type"], &["one_time", "recurring"])?
        .into_option();
    let currency = p
        .string_max(&["currency"], 3)?
        .into_option()
        .map(|c| c.to_lowercase());
    p.expand()?;
    p.finish()?;
    let all = ctx.scope.key("prices");
    let active = active.map(|a| a.to_string());
    let sets = filters::sets(
        &all,
        &all,
        &[
            ("active", active.as_deref()),
            ("product", product.as_deref()),
            ("type", kind.as_deref()),
            ("currency", currency.as_deref()),
        ],
    );
    let (items, more) = store.page_where(&ctx.scope, &sets, &[], &list).await?;
    page_body("/v1/prices", &items, more).map(Reply::ok)
}

/// `POST /v1/tax_rates`: e.g. UK VAT, `display_name=VAT&percentage=20&inclusive=false`.
pub async fn create_tax_rate(
    store: &Store,
    ctx: &RequestContext,
    mut p: Params,
) -> Result<Reply, ApiError> {
    let display_name = p.required_string(&["display_name", "displayName"], 50)?;
    let percentage = match p.take(&["percentage"])? {
        None => return Err(ApiError::missing_param("percentage")),
        Some((name, v)) => {
            let pct = match &v {
                serde_json::Value::Number(n) => n.as_f64(),
                serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            match pct {
                Some(x) if (0.0..=100.0).contains(&x) => (x * 10_000.0).round() / 10_000.0,
                _ => {
                    return Err(ApiError::invalid_param(
                        "parameter_invalid_value",
                        &name,
                        "percentage must be a number from 0 to 100 (up to four decimals).",
                    ));
                }
            }
        }
    };
    let inclusive = p
        .boolean(&["inclusive"])?
        .into_option()
        .ok_or_else(|| ApiError::missing_param("inclusive"))?;
    let mut rate = TaxRate {
        id: ids::new_id(TAX_RATE_PREFIX),
        object: "tax_rate".into(),
        active: p.boolean(&["active"])?.into_option().unwrap_or(true),
        country: p.string_max(&["country"], 2)?.into_option(),
        created: clock::now(),
        description: p.string_max(&["description"], 500)?.into_option(),
        display_name,
        inclusive,
        jurisdiction: p.string_max(&["jurisdiction"], 50)?.into_option(),
        livemode: ctx.scope.livemode(),
        metadata: Default::default(),
        percentage,
    };
    if let Some(m) = metadata::take(&mut p)? {
        m.apply(&mut rate.metadata, "metadata")?;
    }
    // README, "Accepted, not acted on": the rate's percentage is all the totals use.
    p.ignore(&["tax_type", "state"]);
    p.expand()?;
    p.finish()?;
    let id = rate.id.clone();
    save(store, ctx, &id, 0, &rate, Some("tax_rates")).await
}

pub async fn retrieve_tax_rate(
    store: &Store,
    ctx: &RequestContext,
    id: &str,
    p: Params,
) -> Result<Reply, ApiError> {
    crate::resource::retrieve_stored(store, ctx, TAX_RATE_PREFIX, "tax_rate", id, p).await
}

/// `POST /v1/tax_rates/:id`: percentage and inclusiveness are fixed once created.
pub async fn update_tax_rate(
    store: &Store,
    ctx: &RequestContext,
    id: &str,
    mut p: Params,
) -> Result<Reply, ApiError> {
    let (v, mut rate): (u64, TaxRate) =
        load(store, &ctx.scope, TAX_RATE_PREFIX, "tax_rate", id, "id").await?;
    if let Field::Set(a) = p.boolean(&["active"])? {
        rate.active = a;
    }
    if let Field::Set(n) = p.string_max(&["display_name", "displayName"], 50)? {
        rate.display_name = n;
    }
    if let Some(m) = metadata::take(&mut p)? {
        m.apply(&mut rate.metadata, "metadata")?;
    }
    p.expand()?;
    p.finish()?;
    save(store, ctx, id, v, &rate, None).await
}

pub async fn list_tax_rates(
    store: &Store,
    ctx: &RequestContext,
    mut p: Params,
) -> Result<Reply, ApiError> {
    let list = ListParams::take(&mut p, TAX_RATE_PREFIX)?;
    let active = p.boolean(&["active"])?.into_option();
    let inclusive = p.boolean(&["inclusive"])?.into_option();
    p.expand()?;
    p.finish()?;
    let all = ctx.scope.key("tax_rates");
    let (active, inclusive) = (
        active.map(|a| a.to_string()),
        inclusive.map(|i| i.to_string()),
    );
    let sets = filters::sets(
        &all,
        &all,
        &[
            ("active", active.as_deref()),
            ("inclusive", inclusive.as_deref()),
        ],
    );
    let (items, more) = store.page_where(&ctx.scope, &sets, &[], &list).await?;
    page_body("/v1/tax_rates", &items, more).map(Reply::ok)
}

/// Tax rates named in a request (`tax_rates[]` / `default_tax_rates[]`), checked to exist.
pub(crate) async fn take_tax_rates(
    store: &Store,
    scope: &Scope,
    p: &mut Params,
    names: &[&str],
) -> Result<Option<Vec<String>>, ApiError> {
    let param = p.name(names[0]);
    let Field::Set(ids) = p.string_array(names)? else {
        return Ok(None);
    };
    for (i, id) in ids.iter().enumerate() {
        load::<TaxRate>(
            store,
            scope,
            TAX_RATE_PREFIX,
            "tax_rate",
            id,
            &format!("{param}[{i}]"),
        )
        .await
        .map_err(|mut e| {
            e.status = 400;
            e
        })?;
    }
    Ok(Some(ids))
}

/// The tax rates an invoice uses, loaded.
pub(crate) async fn rates_for(
    store: &Store,
    scope: &Scope,
    ids: &[String],
) -> Result<Vec<TaxRate>, ApiError> {
    let mut out = Vec::new();
    for id in ids {
        if out.iter().any(|r: &TaxRate| &r.id == id) {
            continue;
        }
        if let Ok((_, r)) =
            load::<TaxRate>(store, scope, TAX_RATE_PREFIX, "tax_rate", id, "tax_rates").await
        {
            out.push(r);
        }
    }
    Ok(out)
}
