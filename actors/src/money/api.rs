//! `GET /v1/balance`, `/v1/balance_transactions[/:id]` and `/v1/payouts[/:id]`, per project
//! and mode, read from what the payments' and the follower's commits wrote.

use std::collections::BTreeMap;

use calmony_protocol::ApiError;
use calmony_protocol::balance::{Balance, Funds, PAYOUT_PREFIX, TXN_PREFIX, TxnType};
use calmony_protocol::list::ListParams;
use calmony_protocol::params::Params;
use serde_json::json;

use super::keys;
use crate::context::{Reply, RequestContext};
use crate::resource::{page_body, retrieve_stored, to_json};
use crate::store::{Scope, Store, StoreError};

/// The scope's balance: available and pending by currency (GBP shown even when nothing moved).
pub async fn balance(store: &Store, scope: &Scope) -> Result<Balance, StoreError> {
    let (mut c, k) = (store.conn(), keys::balance(scope));
    let fields: BTreeMap<String, i64> = store
        .run(async move { redis::cmd("HGETALL").arg(k).query_async(&mut c).await })
        .await?;
    let mut available = BTreeMap::from([("gbp".to_owned(), 0i64)]);
    let mut pending = available.clone();
    for (field, amount) in fields {
        match field.split_once(':') {
            Some(("available", cur)) => *available.entry(cur.to_owned()).or_default() += amount,
            Some(("pending", cur)) => *pending.entry(cur.to_owned()).or_default() += amount,
            _ => {}
        }
    }
    let funds = |m: BTreeMap<String, i64>| {
        m.into_iter()
            .map(|(currency, amount)| Funds {
                amount,
                currency,
                source_types: json!({ "card": amount }),
            })
            .collect()
    };
    Ok(Balance {
        object: "balance".into(),
        available: funds(available),
        pending: funds(pending),
        livemode: scope.livemode(),
    })
}

/// `GET /v1/balance`.
pub async fn retrieve_balance(
    store: &Store,
    ctx: &RequestContext,
    params: Params,
) -> Result<Reply, ApiError> {
    params.finish()?;
    let b = balance(store, &ctx.scope).await?;
    Ok(Reply::ok(to_json(&b)?))
}

/// `GET /v1/balance_transactions/:id`.
pub async fn retrieve_balance_transaction(
    store: &Store,
    ctx: &RequestContext,
    id: &str,
    params: Params,
) -> Result<Reply, ApiError> {
    retrieve_stored(store, ctx, TXN_PREFIX, "balance_transaction", id, params).await
}

/// `GET /v1/balance_transactions`, optionally of one `type`.
pub async fn list_balance_transactions(
    store: &Store,
    ctx: &RequestContext,
    mut params: Params,
) -> Result<Reply, ApiError> {
    let list = ListParams::take(&mut params, TXN_PREFIX)?;
    let names: Vec<&str> = TxnType::ALL.iter().map(|t| t.as_str()).collect();
    let kind = params.one_of(&["type"], &names)?.into_option();
    params.expand()?;
    params.finish()?;
    let index = match &kind {
        Some(t) => keys::balance_transactions_of(&ctx.scope, t),
        None => keys::balance_transactions(&ctx.scope),
    };
    let (items, has_more) = store.page(&ctx.scope, &index, &list).await?;
    page_body("/v1/balance_transactions", &items, has_more).map(Reply::ok)
}

/// `GET /v1/payouts/:id`.
pub async fn retrieve_payout(
    store: &Store,
    ctx: &RequestContext,
    id: &str,
    params: Params,
) -> Result<Reply, ApiError> {
    retrieve_stored(store, ctx, PAYOUT_PREFIX, "payout", id, params).await
}

/// `GET /v1/payouts`.
pub async fn list_payouts(
    store: &Store,
    ctx: &RequestContext,
    mut params: Params,
) -> Result<Reply, ApiError> {
    let list = ListParams::take(&mut params, PAYOUT_PREFIX)?;
    params.expand()?;
    params.finish()?;
    let (items, has_more) = store
        .page(&ctx.scope, &keys::payouts(&ctx.scope), &list)
        .await?;
    page_body("/v1/payouts", &items, has_more).map(Reply::ok)
}
