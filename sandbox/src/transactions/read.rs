//! Reading transactions (and the plain string keys that point at them) from Redis.

use calmony_actors::Store;
use calmony_actors::store::packed;

use super::record::Loaded;
use crate::error::SandboxError;
use crate::keys;

/// Read a transaction by `xref`.
pub async fn load(store: &Store, xref: &str) -> Result<Option<Loaded>, SandboxError> {
    let key = keys::transaction(xref);
    let raw = get(store, &key).await?;
    parsed(key, raw)
}

fn parsed(key: String, raw: Option<Vec<u8>>) -> Result<Option<Loaded>, SandboxError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let corrupt = |reason: String| SandboxError::Corrupt {
        key: key.clone(),
        reason,
    };
    let json = packed::text(raw.clone()).map_err(|e| corrupt(e.to_string()))?;
    let txn = serde_json::from_str(&json).map_err(|e| corrupt(e.to_string()))?;
    Ok(Some(Loaded { txn, raw }))
}

/// Read a merchant's transaction by `xref`: another merchant's is as good as absent.
pub async fn load_for(
    store: &Store,
    merchant_id: &str,
    xref: &str,
) -> Result<Option<Loaded>, SandboxError> {
    let loaded = load(store, xref).await?;
    Ok(loaded.filter(|loaded| loaded.txn.merchant_id == merchant_id))
}

/// Read a string key as text.
pub async fn get_string(store: &Store, key: &str) -> Result<Option<String>, SandboxError> {
    get(store, key).await
}

/// Read a string key, as text or as the bytes stored (a packed transaction).
async fn get<T: redis::FromRedisValue + Send + 'static>(
    store: &Store,
    key: &str,
) -> Result<Option<T>, SandboxError> {
    let mut c = store.conn();
    let key = key.to_owned();
    Ok(store
        .run(async move { redis::cmd("GET").arg(key).query_async(&mut c).await })
        .await?)
}
