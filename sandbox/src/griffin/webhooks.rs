//! The organization's one webhook (`/v0/organizations/{og}/webhooks`, `/v0/webhooks/{wh}`)
//! and the keys its deliveries are signed with (`/v0/security/public-keys`).
//!
//! Signing keys are ES512 (P-521) as Griffin's are, made by the sandbox on first use and kept
//! in its Redis keyspace, so every daemon sharing the Redis signs with the same key and the
//! daemon's verifier can fetch it like Griffin's. An operator may rotate the key
//! (`POST /sandbox/griffin/rotate-key`): the old one leaves the published list, as a retired
//! Griffin key does, and the next delivery carries a key id the receiver has not seen.

use calmony_protocol::griffin::{
    Links, NewWebhook, PublicKey, PublicKeys, SigningKey, Webhook, WebhookChange, WebhookState,
    WebhookTest,
};
use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::ctx::{Ctx, new_id};
use super::store;
use super::{decide, wire};
use crate::error::SandboxError;
use crate::keys;
use crate::reply::Reply;

/// The webhook as the sandbox keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookRecord {
    pub id: String,
    pub destination: String,
    #[serde(default)]
    pub description: Option<String>,
    pub active: bool,
    pub created_ms: i64,
}

impl WebhookRecord {
    pub fn resource(&self) -> Webhook {
        let url = format!("/v0/webhooks/{}", self.id);
        Webhook {
            webhook_url: url.clone(),
            webhook_destination_url: self.destination.clone(),
            webhook_description: self.description.clone(),
            webhook_state: if self.active {
                WebhookState::Active
            } else {
                WebhookState::Inactive
            },
            activate_webhook_url: Some(format!("{url}/actions/activate")),
            deactivate_webhook_url: Some(format!("{url}/actions/deactivate")),
            test_webhook_url: Some(format!("{url}/actions/test")),
            created_at: Some(wire::iso(self.created_ms)),
        }
    }
}

/// The webhook, if one is registered.
pub async fn current(store: &calmony_actors::Store) -> Result<Option<WebhookRecord>, SandboxError> {
    store::load(store, keys::GRIFFIN_WEBHOOK).await
}

/// Register `destination` unless a webhook exists: whether it was registered. What the
/// daemon's test mode does at start, so it receives Griffin's webhooks with no setup.
pub async fn register_if_none(
    store: &calmony_actors::Store,
    destination: &str,
    now_ms: i64,
) -> Result<bool, SandboxError> {
    let record = WebhookRecord {
        id: new_id("wh"),
        destination: destination.to_owned(),
        description: Some("the daemon's own receiver (registered at start)".to_owned()),
        active: true,
        created_ms: now_ms,
    };
    let json = store::to_json(keys::GRIFFIN_WEBHOOK, &record)?;
    let mut c = store.conn();
    let set: Option<String> = store
        .run(async move {
            redis::cmd("SET")
                .arg(keys::GRIFFIN_WEBHOOK)
                .arg(json)
                .arg("NX")
                .query_async(&mut c)
                .await
        })
        .await?;
    Ok(set.is_some())
}

async fn save(store: &calmony_actors::Store, record: &WebhookRecord) -> Result<(), SandboxError> {
    let json = store::to_json(keys::GRIFFIN_WEBHOOK, record)?;
    let mut c = store.conn();
    store
        .run(async move {
            redis::cmd("SET")
                .arg(keys::GRIFFIN_WEBHOOK)
                .arg(json)
                .query_async::<()>(&mut c)
                .await
        })
        .await?;
    Ok(())
}

/// `POST /v0/organizations/{og}/webhooks` → 201; 409 when the organization has one (Griffin
/// allows one per organization), 400 for a destination the sandbox cannot deliver to.
pub async fn create(ctx: &Ctx<'_>, body: &[u8]) -> Result<Reply, SandboxError> {
    let new: NewWebhook = match serde_json::from_slice(body) {
        Ok(n) => n,
        Err(e) => {
            return Ok(wire::error(
                StatusCode::BAD_REQUEST,
                "Invalid body",
                &e.to_string(),
                None,
            ));
        }
    };
    if let Err(why) = decide::check_destination(&new.webhook_destination_url) {
        return Ok(wire::error(
            StatusCode::BAD_REQUEST,
            "Invalid value",
            why,
            Some("/webhook-destination-url"),
        ));
    }
    let record = WebhookRecord {
        id: new_id("wh"),
        destination: new.webhook_destination_url,
        description: new.webhook_description,
        active: true,
        created_ms: ctx.now_ms,
    };
    let json = store::to_json(keys::GRIFFIN_WEBHOOK, &record)?;
    let mut c = ctx.gw.store.conn();
    let set: Option<String> = ctx
        .gw
        .store
        .run(async move {
            redis::cmd("SET")
                .arg(keys::GRIFFIN_WEBHOOK)
                .arg(json)
                .arg("NX")
                .query_async(&mut c)
                .await
        })
        .await?;
    Ok(match set {
        Some(_) => wire::ok(StatusCode::CREATED, &record.resource()),
        None => wire::error(
            StatusCode::CONFLICT,
            "Conflict",
            "the organization has a webhook already; delete it first",
            None,
        ),
    })
}

/// `GET /v0/organizations/{og}/webhooks`.
pub async fn list(ctx: &Ctx<'_>) -> Result<Reply, SandboxError> {
    let hooks: Vec<Webhook> = current(&ctx.gw.store)
        .await?
        .iter()
        .map(WebhookRecord::resource)
        .collect();
    Ok(wire::ok(
        StatusCode::OK,
        &serde_json::json!({"webhooks": hooks, "links": Links::default()}),
    ))
}

pub async fn named(ctx: &Ctx<'_>, id: &str) -> Result<Option<WebhookRecord>, SandboxError> {
    Ok(current(&ctx.gw.store).await?.filter(|w| w.id == id))
}

/// `GET /v0/webhooks/{wh}`.
pub async fn get(ctx: &Ctx<'_>, id: &str) -> Result<Reply, SandboxError> {
    Ok(match named(ctx, id).await? {
        Some(w) => wire::ok(StatusCode::OK, &w.resource()),
        None => wire::not_found(),
    })
}

/// `DELETE /v0/webhooks/{wh}` → 204.
pub async fn delete(ctx: &Ctx<'_>, id: &str) -> Result<Reply, SandboxError> {
    if named(ctx, id).await?.is_none() {
        return Ok(wire::not_found());
    }
    let mut c = ctx.gw.store.conn();
    ctx.gw
        .store
        .run(async move {
            redis::cmd("DEL")
                .arg(keys::GRIFFIN_WEBHOOK)
                .query_async::<()>(&mut c)
                .await
        })
        .await?;
    let mut reply = crate::reply::json(StatusCode::NO_CONTENT, &serde_json::Value::Null);
    *reply.body_mut() = http_body_util::Full::new(bytes::Bytes::new());
    Ok(reply)
}

/// `PATCH /v0/webhooks/{wh}`: a new destination or description → 200 with the webhook.
pub async fn update(ctx: &Ctx<'_>, id: &str, body: &[u8]) -> Result<Reply, SandboxError> {
    let Some(mut record) = named(ctx, id).await? else {
        return Ok(wire::not_found());
    };
    let change: WebhookChange = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) => {
            return Ok(wire::error(
                StatusCode::BAD_REQUEST,
                "Invalid body",
                &e.to_string(),
                None,
            ));
        }
    };
    if let Some(url) = change.webhook_destination_url {
        if let Err(why) = decide::check_destination(&url) {
            return Ok(wire::error(
                StatusCode::BAD_REQUEST,
                "Invalid value",
                why,
                Some("/webhook-destination-url"),
            ));
        }
        record.destination = url;
    }
    if let Some(description) = change.webhook_description {
        record.description = Some(description);
    }
    save(&ctx.gw.store, &record).await?;
    Ok(wire::ok(StatusCode::OK, &record.resource()))
}

/// `POST /v0/webhooks/{wh}/actions/activate|deactivate` → 200 with the webhook.
pub async fn set_active(ctx: &Ctx<'_>, id: &str, active: bool) -> Result<Reply, SandboxError> {
    let Some(mut record) = named(ctx, id).await? else {
        return Ok(wire::not_found());
    };
    record.active = active;
    save(&ctx.gw.store, &record).await?;
    Ok(wire::ok(StatusCode::OK, &record.resource()))
}

pub async fn save_test(
    store: &calmony_actors::Store,
    test: &WebhookTest,
) -> Result<(), SandboxError> {
    let json = store::to_json(keys::GRIFFIN_WEBHOOK_TEST, test)?;
    let mut c = store.conn();
    store
        .run(async move {
            redis::cmd("SET")
                .arg(keys::GRIFFIN_WEBHOOK_TEST)
                .arg(json)
                .query_async::<()>(&mut c)
                .await
        })
        .await?;
    Ok(())
}

/// A new P-521 secret scalar: 66 bytes whose top byte is 0, so it is below the group order.
fn new_secret() -> [u8; 66] {
    use rand::Rng;
    let mut secret = [0_u8; 66];
    rand::rng().fill(&mut secret[1..]);
    secret
}

fn new_kid() -> String {
    format!(
        "calmony-sandbox-{}",
        new_id("k").trim_start_matches("k.").to_ascii_lowercase()
    )
}

/// The key deliveries are signed with now, made on first use (by whichever daemon gets
/// there first: the others read the same key).
pub async fn signing_key(store: &calmony_actors::Store) -> Result<SigningKey, SandboxError> {
    for _ in 0..3 {
        let mut c = store.conn();
        let kid: Option<String> = store
            .run(async move {
                redis::cmd("GET")
                    .arg(keys::GRIFFIN_SIGNING_KEY)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let Some(kid) = kid else {
            install_key(store, true).await?;
            continue;
        };
        let mut c = store.conn();
        let k = kid.clone();
        let secret: Option<String> = store
            .run(async move {
                redis::cmd("HGET")
                    .arg(keys::GRIFFIN_SIGNING_KEYS)
                    .arg(&k)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let Some(secret) = secret else { continue };
        let corrupt = |reason: String| SandboxError::Corrupt {
            key: keys::GRIFFIN_SIGNING_KEYS.to_owned(),
            reason,
        };
        let bytes = hex::decode(secret).map_err(|e| corrupt(e.to_string()))?;
        return SigningKey::es512_from_bytes(&kid, &bytes).map_err(|e| corrupt(e.to_string()));
    }
    Err(SandboxError::Corrupt {
        key: keys::GRIFFIN_SIGNING_KEY.to_owned(),
        reason: "the signing key changed under every read".into(),
    })
}

/// Make a key and make it current: only if there is none (`first`), or replacing (and
/// retiring) the current one. Its id.
async fn install_key(store: &calmony_actors::Store, first: bool) -> Result<String, SandboxError> {
    static INSTALL: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
        redis::Script::new(
            r"
local old = redis.call('GET', KEYS[1])
if ARGV[3] == '1' and old then return old end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('SET', KEYS[1], ARGV[1])
if old and old ~= ARGV[1] then redis.call('HDEL', KEYS[2], old) end
return ARGV[1]
",
        )
    });
    let kid = new_kid();
    let secret = hex::encode(new_secret());
    let mut inv = INSTALL.prepare_invoke();
    inv.key(keys::GRIFFIN_SIGNING_KEY)
        .key(keys::GRIFFIN_SIGNING_KEYS)
        .arg(&kid)
        .arg(&secret)
        .arg(if first { "1" } else { "0" });
    let mut c = store.conn();
    Ok(store.run(inv.invoke_async(&mut c)).await?)
}

/// Retire the current key and sign with a new one from now on: its id.
pub async fn rotate_key(store: &calmony_actors::Store) -> Result<String, SandboxError> {
    signing_key(store).await?;
    install_key(store, false).await
}

/// `GET /v0/security/public-keys`: the current key as a JWK (counted, so a test can see how
/// often a receiver fetched it).
pub async fn public_keys(store: &calmony_actors::Store) -> Result<Reply, SandboxError> {
    let key = signing_key(store).await?;
    let mut c = store.conn();
    store
        .run(async move {
            redis::cmd("INCR")
                .arg(keys::GRIFFIN_KEY_FETCHES)
                .query_async::<()>(&mut c)
                .await
        })
        .await?;
    let body = PublicKeys {
        keys: PublicKey::of(&key.keyid, &key.verifying_key())
            .into_iter()
            .collect(),
        links: Links::default(),
    };
    Ok(wire::ok(StatusCode::OK, &body))
}
