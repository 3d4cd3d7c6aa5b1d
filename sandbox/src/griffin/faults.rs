//! Faults injected into the Griffin sandbox, set by the operator at
//! `POST /sandbox/griffin/faults` (JSON, every field optional, merged into what is set):
//!
//! - `drop-webhooks`: N — the next N events are never delivered (a lost webhook: the
//!   receiver learns of them only by polling the ledger or the events list);
//! - `duplicate-webhooks`: true|false — every event is delivered twice (two deliveries,
//!   each signed afresh) until turned off;
//! - `reorder-webhooks`: true|false — the events of each pass are delivered newest first,
//!   spaced so they arrive in that order, until turned off;
//! - `delay-next-credit-ms`: D — the next credit posts to the ledger D ms after it was made;
//! - `hold-next-credit`: true — the next credit is held until `POST /sandbox/griffin/credit/release`;
//! - `next-credit-delta`: ±pence — the next credit posts its amount plus this (a wrong amount).
//!
//! The credit faults are taken by the next credit, whichever way it arrives (the operator's
//! route or the sandbox bank's settlement), and then cleared. `GET` shows what is set; a
//! failing submission needs no fault: pay the creditor account number `99999999`.

use std::sync::LazyLock;

use calmony_actors::Store;
use hyper::{Method, StatusCode};
use redis::Script;
use serde::{Deserialize, Serialize};

use super::wire;
use crate::error::SandboxError;
use crate::keys;
use crate::reply::Reply;

/// What `POST /sandbox/griffin/faults` may set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Settings {
    pub drop_webhooks: Option<u32>,
    pub duplicate_webhooks: Option<bool>,
    pub reorder_webhooks: Option<bool>,
    pub delay_next_credit_ms: Option<u64>,
    pub hold_next_credit: Option<bool>,
    pub next_credit_delta: Option<i64>,
}

/// What is set now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Current {
    pub drop_webhooks: i64,
    pub duplicate_webhooks: bool,
    pub reorder_webhooks: bool,
    pub delay_next_credit_ms: i64,
    pub hold_next_credit: bool,
    pub next_credit_delta: i64,
}

/// The credit faults the next credit takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreditFaults {
    pub delay_ms: i64,
    pub hold: bool,
    pub delta: i64,
}

async fn fields(store: &Store) -> Result<Vec<Option<i64>>, SandboxError> {
    let mut c = store.conn();
    Ok(store
        .run(async move {
            redis::cmd("HMGET")
                .arg(keys::GRIFFIN_FAULTS)
                .arg(&["drop", "duplicate", "delay_ms", "hold", "delta", "reorder"][..])
                .query_async(&mut c)
                .await
        })
        .await?)
}

pub async fn current(store: &Store) -> Result<Current, SandboxError> {
    let f = fields(store).await?;
    let at = |i: usize| f.get(i).copied().flatten().unwrap_or_default();
    Ok(Current {
        drop_webhooks: at(0),
        duplicate_webhooks: at(1) != 0,
        reorder_webhooks: at(5) != 0,
        delay_next_credit_ms: at(2),
        hold_next_credit: at(3) != 0,
        next_credit_delta: at(4),
    })
}

/// Take one dropped webhook if any are set: whether this event is to be dropped.
pub async fn take_drop(store: &Store) -> Result<bool, SandboxError> {
    static TAKE: LazyLock<Script> = LazyLock::new(|| {
        Script::new(
            r"
local n = tonumber(redis.call('HGET', KEYS[1], 'drop') or '0')
if n > 0 then redis.call('HINCRBY', KEYS[1], 'drop', -1) return 1 end
return 0
",
        )
    });
    let mut inv = TAKE.prepare_invoke();
    inv.key(keys::GRIFFIN_FAULTS);
    let mut c = store.conn();
    let taken: i64 = store.run(inv.invoke_async(&mut c)).await?;
    Ok(taken == 1)
}

/// Take the credit faults, clearing them, in one step: two credits at once never both take
/// them.
pub async fn take_credit_faults(store: &Store) -> Result<CreditFaults, SandboxError> {
    static TAKE: LazyLock<Script> = LazyLock::new(|| {
        Script::new(
            r"
local v = redis.call('HMGET', KEYS[1], 'delay_ms', 'hold', 'delta')
redis.call('HDEL', KEYS[1], 'delay_ms', 'hold', 'delta')
return {tonumber(v[1] or '0'), tonumber(v[2] or '0'), tonumber(v[3] or '0')}
",
        )
    });
    let mut inv = TAKE.prepare_invoke();
    inv.key(keys::GRIFFIN_FAULTS);
    let mut c = store.conn();
    let v: Vec<i64> = store.run(inv.invoke_async(&mut c)).await?;
    let at = |i: usize| v.get(i).copied().unwrap_or_default();
    Ok(CreditFaults {
        delay_ms: at(0),
        hold: at(1) != 0,
        delta: at(2),
    })
}

async fn apply(store: &Store, s: &Settings) -> Result<Current, SandboxError> {
    let mut pairs: Vec<(&str, i64)> = Vec::new();
    if let Some(n) = s.drop_webhooks {
        pairs.push(("drop", i64::from(n)));
    }
    if let Some(d) = s.duplicate_webhooks {
        pairs.push(("duplicate", i64::from(d)));
    }
    if let Some(r) = s.reorder_webhooks {
        pairs.push(("reorder", i64::from(r)));
    }
    if let Some(ms) = s.delay_next_credit_ms {
        pairs.push(("delay_ms", i64::try_from(ms).unwrap_or(i64::MAX)));
    }
    if let Some(h) = s.hold_next_credit {
        pairs.push(("hold", i64::from(h)));
    }
    if let Some(d) = s.next_credit_delta {
        pairs.push(("delta", d));
    }
    if !pairs.is_empty() {
        let mut c = store.conn();
        store
            .run(async move {
                redis::cmd("HSET")
                    .arg(keys::GRIFFIN_FAULTS)
                    .arg(pairs)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await?;
    }
    current(store).await
}

/// `GET|POST /sandbox/griffin/faults`.
pub async fn handle(store: &Store, method: &Method, body: &[u8]) -> Result<Reply, SandboxError> {
    if *method == Method::GET {
        return Ok(wire::ok(StatusCode::OK, &current(store).await?));
    }
    if *method != Method::POST {
        return Ok(wire::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "GET or POST",
            None,
        ));
    }
    let settings: Settings = if body.iter().all(u8::is_ascii_whitespace) {
        Settings::default()
    } else {
        match serde_json::from_slice(body) {
            Ok(s) => s,
            Err(e) => {
                return Ok(wire::error(
                    StatusCode::BAD_REQUEST,
                    "Invalid body",
                    &e.to_string(),
                    None,
                ));
            }
        }
    };
    let now = apply(store, &settings).await?;
    tracing::info!(?now, "Griffin sandbox faults set");
    Ok(wire::ok(StatusCode::OK, &now))
}
