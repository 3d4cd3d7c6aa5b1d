//! Projects and API keys.
//!
//! A raw key (`sk_test_` or `sk_live_` and 32 random letters and digits, about 190 bits) is
//! shown once and stored only as its SHA-256. A slow password hash would cost every request and
//! buys nothing for a long random secret. The hash *is* the lookup key (`cp:apikey:{<sha>}`), so
//! no comparison of secret bytes happens in the daemon at all: an unknown key simply has no
//! record. The key fixes the project and the mode of everything the request touches.
//!
//! Authentication and the per-key rate limit are one Lua script ([`scripts::AUTHENTICATE`]):
//! one round trip, and the limit holds across every daemon sharing the Redis.

use calmony_protocol::secret::Secret;
use calmony_protocol::{Mode, ids};
use redis::AsyncCommands;
use sha2::{Digest, Sha256};

use crate::clock;
use crate::idempotency::{Ask, Begin};
use crate::store::{KeyRefusal, Scope, Store, StoreError, Unavailability, Unread, lossy, scripts};

const PROJECTS: &str = "cp:projects";
const KEY_INDEX: &str = "cp:apikeys";
/// Every project-and-mode event stream, for the webhook dispatcher to find.
pub const EVENT_STREAMS: &str = "cp:event_streams";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub id: String,
    pub prefix: String,
    pub mode: Mode,
    pub project_id: String,
    pub project_name: String,
    pub created: i64,
    pub last_used: Option<i64>,
    pub revoked: bool,
}

/// What authentication decided.
#[derive(Debug)]
pub enum Auth {
    Ok {
        scope: Scope,
        key_id: String,
        /// The answer to the idempotency claim asked for with the check, if one was.
        claim: Option<Begin>,
        /// The objects asked for with the check: `(id, its fields as read)`.
        read: Vec<(String, Unread)>,
    },
    Refused(KeyRefusal),
}

/// What the key check does in its round trip besides checking the key: each only once the key
/// is known good, and in the key's own project and mode.
#[derive(Debug, Default)]
pub struct Alongside<'a> {
    /// An idempotency key to claim.
    pub claim: Option<&'a Ask>,
    /// Objects to read (each must be shaped like an id; others are skipped).
    pub read: Vec<&'a str>,
}

pub fn hash(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

/// The key record of the key whose SHA-256 is `sha`.
pub fn record_key(sha: &str) -> String {
    format!("cp:apikey:{{{sha}}}")
}

/// Whether a string is shaped like a secret key at all (checked before any lookup).
pub fn looks_like_key(raw: &str) -> bool {
    (raw.starts_with("sk_test_") || raw.starts_with("sk_live_"))
        && raw.len() <= 128
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The SHA-256 a raw key is looked up by, if it is shaped like a key at all.
pub fn lookup_hash(raw: &str) -> Option<String> {
    looks_like_key(raw).then(|| hash(raw))
}

/// Authenticate the key whose [`lookup_hash`] is `sha` (`None`: not a key) and charge one
/// request against its rate limit, doing what `alongside` asks in the same round trip.
pub async fn authenticate(
    store: &Store,
    sha: Option<&str>,
    per_second: u64,
    alongside: &Alongside<'_>,
) -> Result<Auth, StoreError> {
    let Some(sha) = sha else {
        return Ok(Auth::Refused(KeyRefusal::Unknown));
    };
    // Only an id-shaped value may name a key inside the script.
    let read: Vec<&str> = alongside
        .read
        .iter()
        .copied()
        .filter(|id| ids::is_any(id))
        .collect();
    let mut c = store.conn();
    let mut inv = scripts::AUTHENTICATE.prepare_invoke();
    inv.key(record_key(sha))
        .arg(per_second)
        .arg(read.len())
        .arg(&read);
    if let Some(ask) = alongside.claim {
        inv.arg(&ask.args());
    }
    // Byte strings: a record's JSON is stored packed.
    let out: Vec<Option<Vec<u8>>> = store
        .run(async move { inv.invoke_async(&mut c).await })
        .await?;
    let mut out = out.into_iter();
    let mut word = || out.next().flatten().map(lossy).unwrap_or_default();
    let first = word();
    Ok(match first.as_str() {
        first if first == "ok" || first.starts_with("uncharged:") => {
            if let Some(code) = first.strip_prefix("uncharged:") {
                // Redis refused the rate limit's write while serving reads: let the request
                // through (it can only read; see `scripts::key_check`), and say so.
                let reason = Unavailability::of_code(code).map_or("other", Unavailability::label);
                metrics::counter!("calmony_rate_limit_uncharged_total", "reason" => reason)
                    .increment(1);
            }
            let (project, mode, key_id) = (word(), word(), word());
            let mode = Mode::parse(&mode).ok_or_else(|| StoreError::Corrupt {
                key: "apikey".into(),
                reason: format!("unknown mode {mode:?}"),
            })?;
            let scope = Scope::new(project, mode);
            let fetched = read
                .into_iter()
                .map(|id| {
                    let fields = std::array::from_fn(|_| out.next().flatten());
                    (id.to_string(), Unread(fields))
                })
                .collect();
            // A stored answer's body is packed (see `Tx::respond_to`); the other words plain.
            let claim = match alongside.claim {
                Some(ask) => {
                    let mut answer = out
                        .by_ref()
                        .map(|f| {
                            f.map_or(Ok(String::new()), |b| {
                                crate::store::text("idempotency claim", b)
                            })
                        })
                        .collect::<Result<Vec<String>, StoreError>>()?;
                    // An answer that shows a secret is kept sealed (`webhooks::endpoints`).
                    if let [done, _, body, _] = answer.as_mut_slice()
                        && done == "done"
                        && crate::sealing::is_sealed(body)
                    {
                        let place = crate::idempotency::claim_for(&scope, &ask.key, "").redis_key;
                        let clear = crate::sealing::keyring()
                            .and_then(|ring| ring.open(body, &place))
                            .map_err(|e| StoreError::Corrupt {
                                key: place.clone(),
                                reason: e.to_string(),
                            })?;
                        *body = String::from_utf8_lossy(&clear).into_owned();
                    }
                    Some(Begin::from_answer(&answer))
                }
                None => None,
            };
            Auth::Ok {
                scope,
                key_id,
                claim,
                read: fetched,
            }
        }
        _ => Auth::Refused(
            KeyRefusal::from_answer(&first, Some(&word())).unwrap_or(KeyRefusal::Unknown),
        ),
    })
}

/// Whether the key whose [`lookup_hash`] is `sha` (`None`: not a key) exists and is not
/// revoked: `None` if so, else the refusal. One `HMGET` that writes nothing. The edge asks it
/// before reading a request's body, so a made-up key is refused without reading what its
/// client sends; [`authenticate`] (the rate limit, the claim, the reads) follows the body.
pub async fn recognise(store: &Store, sha: Option<&str>) -> Result<Option<KeyRefusal>, StoreError> {
    let Some(sha) = sha else {
        return Ok(Some(KeyRefusal::Unknown));
    };
    let mut c = store.conn();
    let key = record_key(sha);
    let (project, revoked): (Option<String>, Option<String>) = store
        .run(async move {
            redis::cmd("HMGET")
                .arg(key)
                .arg("project")
                .arg("revoked")
                .query_async(&mut c)
                .await
        })
        .await?;
    Ok(match (project, revoked.as_deref()) {
        (None, _) => Some(KeyRefusal::Unknown),
        (Some(_), Some("1")) => Some(KeyRefusal::Revoked),
        (Some(_), _) => None,
    })
}

/// The project with this name, created if needed (safe against two creators at once).
pub async fn ensure_project(store: &Store, name: &str) -> Result<Project, StoreError> {
    let mut c = store.conn();
    let fresh = ids::new_id("prj");
    let created: bool = store.run(c.hset_nx(PROJECTS, name, &fresh)).await?;
    let id: String = store.run(c.hget(PROJECTS, name)).await?;
    if created {
        let now = clock::now();
        let project_key = format!("cp:project:{{{id}}}");
        store
            .run(c.hset_multiple::<_, _, _, ()>(
                &project_key,
                &[("name", name.to_string()), ("created", now.to_string())],
            ))
            .await?;
        for mode in [Mode::Test, Mode::Live] {
            let stream = Scope::new(id.clone(), mode).event_stream();
            store.run(c.sadd::<_, _, ()>(EVENT_STREAMS, stream)).await?;
        }
        tracing::info!(project = %id, name, "created project");
    }
    Ok(Project {
        id,
        name: name.to_string(),
    })
}

/// Create a key for a project (created if needed). The raw key is returned once, here.
pub async fn create_key(
    store: &Store,
    project_name: &str,
    mode: Mode,
) -> Result<(Secret, ApiKeyInfo), StoreError> {
    let project = ensure_project(store, project_name).await?;
    let raw = format!("{}{}", mode.key_prefix(), ids::random_alnum(32));
    let sha = hash(&raw);
    let info = ApiKeyInfo {
        id: ids::new_id("key"),
        prefix: format!("{}…", &raw[..12]),
        mode,
        project_id: project.id.clone(),
        project_name: project.name.clone(),
        created: clock::now(),
        last_used: None,
        revoked: false,
    };
    let mut c = store.conn();
    let fields = [
        ("id", info.id.clone()),
        ("prefix", info.prefix.clone()),
        ("mode", mode.as_str().to_string()),
        ("project", project.id.clone()),
        ("project_name", project.name.clone()),
        ("created", info.created.to_string()),
        ("revoked", "0".to_string()),
    ];
    let mut pipe = redis::pipe();
    pipe.atomic()
        .hset_multiple(record_key(&sha), &fields)
        .ignore()
        .hset(KEY_INDEX, &info.id, &sha)
        .ignore();
    store.run(pipe.query_async::<()>(&mut c)).await?;
    Ok((Secret::new(raw), info))
}

/// Every key, oldest first.
pub async fn list_keys(store: &Store) -> Result<Vec<ApiKeyInfo>, StoreError> {
    let mut c = store.conn();
    let index: Vec<(String, String)> = store.run(c.hgetall(KEY_INDEX)).await?;
    let mut out = Vec::with_capacity(index.len());
    for (_, sha) in index {
        if let Some(info) = read_key(store, &sha).await? {
            out.push(info);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

async fn read_key(store: &Store, sha: &str) -> Result<Option<ApiKeyInfo>, StoreError> {
    let mut c = store.conn();
    let m: std::collections::HashMap<String, String> =
        store.run(c.hgetall(record_key(sha))).await?;
    let get = |f: &str| m.get(f).cloned().unwrap_or_default();
    if m.is_empty() {
        return Ok(None);
    }
    Ok(Some(ApiKeyInfo {
        id: get("id"),
        prefix: get("prefix"),
        mode: Mode::parse(&get("mode")).unwrap_or(Mode::Test),
        project_id: get("project"),
        project_name: get("project_name"),
        created: get("created").parse().unwrap_or(0),
        last_used: m.get("last_used").and_then(|s| s.parse().ok()),
        revoked: get("revoked") == "1",
    }))
}

/// Revoke a key, named by its id (`key_…`) or by the raw key itself. Takes effect on the next
/// request to any daemon: nothing caches authentication.
pub async fn revoke(store: &Store, id_or_raw: &str) -> Result<Option<ApiKeyInfo>, StoreError> {
    let mut c = store.conn();
    let sha = if looks_like_key(id_or_raw) {
        Some(hash(id_or_raw))
    } else {
        store.run(c.hget(KEY_INDEX, id_or_raw)).await?
    };
    let Some(sha) = sha else { return Ok(None) };
    let exists: bool = store.run(c.exists(record_key(&sha))).await?;
    if !exists {
        return Ok(None);
    }
    store
        .run(c.hset::<_, _, _, ()>(record_key(&sha), "revoked", "1"))
        .await?;
    read_key(store, &sha).await
}

/// Whether the store knows any project (an admin command warns when it opened an empty one).
pub async fn has_projects(store: &Store) -> Result<bool, StoreError> {
    let mut c = store.conn();
    store.run(c.exists(PROJECTS)).await
}

/// On the first start against an empty store, create project `default` and one test key, so a
/// newcomer has a key at once. Only one daemon wins this, even if several start together.
pub async fn bootstrap(store: &Store) -> Result<Option<Secret>, StoreError> {
    let mut c = store.conn();
    let has_projects: bool = store.run(c.exists(PROJECTS)).await?;
    if has_projects {
        return Ok(None);
    }
    let won: bool = store.run(c.set_nx("cp:bootstrapped", clock::now())).await?;
    if !won {
        return Ok(None);
    }
    let (raw, _) = create_key(store, "default", Mode::Test).await?;
    Ok(Some(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shapes() {
        assert!(looks_like_key("sk_test_abc123"));
        assert!(looks_like_key("sk_live_abc123"));
        assert!(!looks_like_key("pk_test_abc"));
        assert!(!looks_like_key("sk_test_a b"));
        assert!(!looks_like_key(&format!("sk_test_{}", "a".repeat(200))));
        assert_eq!(hash("x").len(), 64);
    }
}
