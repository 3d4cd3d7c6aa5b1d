//! Dashboard users, their sessions, the sign-in throttle and the audit log, in Redis.
//!
//! Passwords are argon2id PHC strings; a session's secret (the cookie) is kept only as its
//! SHA-256, so a copy of Redis opens nobody's session. Keys (global, not per project, since a
//! user may belong to several): `cp:dashboard:user:{<email>}` (hash: `phc`, `created`, `gen`),
//! `cp:dashboard:user:{<email>}:projects` (hash: project id → role),
//! `cp:dashboard:session:{<sha>}` (hash: `email`, `created`, `last_seen`, `gen`; expires when
//! idle), `cp:dashboard:throttle:<account|address>:<who>` (failures, expiring), and per project
//! `cp:{prj}:dashboard:audit` (a stream: who, what, when, from where).

use std::collections::BTreeMap;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use super::access::{self, Role};
use crate::clock;
use crate::store::{Store, StoreError};

/// Why an account change was refused; each message is the operator's to read.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0:?} is not an email address")]
    BadEmail(String),
    #[error("{0}")]
    BadPassword(&'static str),
    #[error("a user with email {0:?} exists already")]
    Exists(String),
    #[error("no user with email {0:?}")]
    Unknown(String),
    #[error("the current password is not right")]
    WrongPassword,
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a sign-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("too many failed sign-ins; try again in 15 minutes")]
    Throttled,
    #[error("that email and password do not match an account")]
    Wrong,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A signed-in user: who, and their role in each project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub email: String,
    pub roles: BTreeMap<String, Role>,
}

impl User {
    pub fn role_in(&self, project: &str) -> Option<Role> {
        self.roles.get(project).copied()
    }
}

/// A live session: its user and the token its forms carry.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub csrf: String,
    pub created: i64,
}

fn user_key(email: &str) -> String {
    format!("cp:dashboard:user:{{{email}}}")
}

fn roles_key(email: &str) -> String {
    format!("cp:dashboard:user:{{{email}}}:projects")
}

fn session_key(secret: &str) -> String {
    format!("cp:dashboard:session:{{{}}}", access::digest(secret))
}

fn throttle_key(kind: &str, who: &str) -> String {
    format!("cp:dashboard:throttle:{kind}:{who}")
}

/// The project's audit log (a stream).
pub fn audit_key(project: &str) -> String {
    format!("cp:{{{project}}}:dashboard:audit")
}

async fn hash_password(password: &str) -> Result<String, AccountError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt_bytes: [u8; 16] = rand::random();
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| AccountError::Hash(e.to_string()))?
    .map_err(AccountError::Hash)
}

/// A hash no password is known to match, verified in place of an unknown account's so that
/// a sign-in takes as long whether the account exists or not (no probing for emails).
static DECOY: std::sync::LazyLock<Option<String>> = std::sync::LazyLock::new(|| {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).ok()?;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .ok()
        .map(|h| h.to_string())
});

/// Whether `password` is the one `phc` was made from (a missing or unreadable hash: no, after
/// as long as a real check takes).
async fn password_matches(phc: Option<String>, password: &str) -> bool {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let known = phc.is_some();
        let Some(phc) = phc.or_else(|| DECOY.clone()) else {
            return false;
        };
        let ok = PasswordHash::new(&phc).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        known && ok
    })
    .await
    .unwrap_or(false)
}

/// `users create`: a new user with `role` in `project` (an id).
pub async fn create_user(
    store: &Store,
    email: &str,
    password: &str,
    project: &str,
    role: Role,
) -> Result<String, AccountError> {
    let email =
        access::normalise_email(email).ok_or_else(|| AccountError::BadEmail(email.into()))?;
    if let Some(why) = access::password_problem(password, &email) {
        return Err(AccountError::BadPassword(why));
    }
    let phc = hash_password(password).await?;
    let mut c = store.conn();
    // HSETNX first in one atomic block: a second create of the same email writes nothing.
    let script = redis::Script::new(
        "if redis.call('HSETNX', KEYS[1], 'phc', ARGV[1]) == 0 then return 0 end \
         redis.call('HSET', KEYS[1], 'created', ARGV[2], 'gen', 1) \
         redis.call('HSET', KEYS[2], ARGV[3], ARGV[4]) \
         redis.call('SADD', 'cp:dashboard:users', ARGV[5]) \
         return 1",
    );
    let mut inv = script.key(user_key(&email));
    inv.key(roles_key(&email))
        .arg(phc)
        .arg(clock::now())
        .arg(project)
        .arg(role.as_str())
        .arg(&email);
    let made: i64 = store.run(inv.invoke_async(&mut c)).await?;
    if made == 1 {
        Ok(email)
    } else {
        Err(AccountError::Exists(email))
    }
}

/// `users grant`: give an existing user `role` in `project`.
pub async fn grant(
    store: &Store,
    email: &str,
    project: &str,
    role: Role,
) -> Result<(), AccountError> {
    let email =
        access::normalise_email(email).ok_or_else(|| AccountError::BadEmail(email.into()))?;
    let mut c = store.conn();
    let exists: bool = store
        .run(
            redis::cmd("EXISTS")
                .arg(user_key(&email))
                .query_async(&mut c),
        )
        .await?;
    if !exists {
        return Err(AccountError::Unknown(email));
    }
    let _: () = store
        .run(
            redis::cmd("HSET")
                .arg(roles_key(&email))
                .arg(project)
                .arg(role.as_str())
                .query_async(&mut c),
        )
        .await?;
    Ok(())
}

/// The project's members and their roles, by email.
pub async fn members(store: &Store, project: &str) -> Result<Vec<(String, Role)>, StoreError> {
    let mut c = store.conn();
    let emails: Vec<String> = store
        .run(
            redis::cmd("SMEMBERS")
                .arg("cp:dashboard:users")
                .query_async(&mut c),
        )
        .await?;
    let mut pipe = redis::pipe();
    for e in &emails {
        pipe.hget(roles_key(e), project);
    }
    let roles: Vec<Option<String>> = store.run(pipe.query_async(&mut c)).await?;
    let mut out: Vec<(String, Role)> = emails
        .into_iter()
        .zip(roles)
        .filter_map(|(e, r)| r.and_then(|r| Role::parse(&r)).map(|r| (e, r)))
        .collect();
    out.sort();
    Ok(out)
}

/// Take away `email`'s role in `project`.
pub async fn remove(store: &Store, email: &str, project: &str) -> Result<(), StoreError> {
    let mut c = store.conn();
    store
        .run(
            redis::cmd("HDEL")
                .arg(roles_key(email))
                .arg(project)
                .query_async(&mut c),
        )
        .await
}

async fn load_user(store: &Store, email: &str) -> Result<Option<(User, u64)>, StoreError> {
    let mut c = store.conn();
    let (generation, roles): (Option<u64>, Vec<(String, String)>) = store
        .run(
            redis::pipe()
                .hget(user_key(email), "gen")
                .hgetall(roles_key(email))
                .query_async(&mut c),
        )
        .await?;
    Ok(generation.map(|generation| {
        let roles = roles
            .into_iter()
            .filter_map(|(p, r)| Role::parse(&r).map(|r| (p, r)))
            .collect();
        (
            User {
                email: email.to_string(),
                roles,
            },
            generation,
        )
    }))
}

/// Check an email and password, counting failures per account and per address; refused
/// outright while either count is over its limit.
pub async fn sign_in(
    store: &Store,
    email: &str,
    password: &str,
    address: &str,
) -> Result<User, SignInError> {
    let email = access::normalise_email(email).unwrap_or_else(|| email.trim().to_string());
    let account = throttle_key("account", &access::digest(&email));
    let addr = throttle_key("address", address);
    let mut c = store.conn();
    let (a, b): (Option<i64>, Option<i64>) = store
        .run(redis::pipe().get(&account).get(&addr).query_async(&mut c))
        .await?;
    if !access::sign_in_allowed(a.unwrap_or(0), b.unwrap_or(0)) {
        return Err(SignInError::Throttled);
    }
    let phc: Option<String> = store
        .run(
            redis::cmd("HGET")
                .arg(user_key(&email))
                .arg("phc")
                .query_async(&mut c),
        )
        .await?;
    if !password_matches(phc, password).await {
        let window = access::THROTTLE_WINDOW_SECS;
        let _: () = store
            .run(
                redis::pipe()
                    .atomic()
                    .incr(&account, 1)
                    .expire(&account, window)
                    .incr(&addr, 1)
                    .expire(&addr, window)
                    .ignore()
                    .query_async(&mut c),
            )
            .await?;
        return Err(SignInError::Wrong);
    }
    let _: () = store
        .run(redis::cmd("DEL").arg(&account).query_async(&mut c))
        .await?;
    match load_user(store, &email).await? {
        Some((user, _)) => Ok(user),
        None => Err(SignInError::Wrong),
    }
}

/// Start a session for `email`; answers the secret for the cookie (kept only as its digest).
pub async fn start_session(store: &Store, email: &str) -> Result<String, StoreError> {
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let mut c = store.conn();
    let generation: Option<u64> = store
        .run(
            redis::cmd("HGET")
                .arg(user_key(email))
                .arg("gen")
                .query_async(&mut c),
        )
        .await?;
    let now = clock::now();
    let key = session_key(&secret);
    let _: () = store
        .run(
            redis::pipe()
                .atomic()
                .hset_multiple(
                    &key,
                    &[
                        ("email", email.to_string()),
                        ("created", now.to_string()),
                        ("last_seen", now.to_string()),
                        ("gen", generation.unwrap_or(1).to_string()),
                    ],
                )
                .expire(&key, access::IDLE_SECS)
                .ignore()
                .query_async(&mut c),
        )
        .await?;
    Ok(secret)
}

/// The session a cookie's secret opens, if it is still live; touching it keeps it so.
pub async fn session(store: &Store, secret: &str) -> Result<Option<Session>, StoreError> {
    if secret.is_empty() || secret.len() > 128 {
        return Ok(None);
    }
    let key = session_key(secret);
    let mut c = store.conn();
    let fields: BTreeMap<String, String> = store
        .run(redis::cmd("HGETALL").arg(&key).query_async(&mut c))
        .await?;
    let num = |k: &str| fields.get(k).and_then(|v| v.parse::<i64>().ok());
    let (Some(email), Some(created), Some(last_seen), Some(generation)) = (
        fields.get("email"),
        num("created"),
        num("last_seen"),
        num("gen"),
    ) else {
        return Ok(None);
    };
    let Some((user, user_generation)) = load_user(store, email).await? else {
        return Ok(None);
    };
    let now = clock::now();
    if !access::session_live(now, created, last_seen, generation as u64, user_generation) {
        let _: () = store
            .run(redis::cmd("DEL").arg(&key).query_async(&mut c))
            .await?;
        return Ok(None);
    }
    let _: () = store
        .run(
            redis::pipe()
                .atomic()
                .hset(&key, "last_seen", now)
                .expire(&key, access::IDLE_SECS)
                .ignore()
                .query_async(&mut c),
        )
        .await?;
    Ok(Some(Session {
        user,
        csrf: access::csrf_token(secret),
        created,
    }))
}

/// Sign out this browser.
pub async fn end_session(store: &Store, secret: &str) -> Result<(), StoreError> {
    let mut c = store.conn();
    store
        .run(
            redis::cmd("DEL")
                .arg(session_key(secret))
                .query_async(&mut c),
        )
        .await
}

/// Sign out everywhere: every session of `email` made before now stops opening.
pub async fn end_all_sessions(store: &Store, email: &str) -> Result<(), StoreError> {
    let mut c = store.conn();
    store
        .run(
            redis::cmd("HINCRBY")
                .arg(user_key(email))
                .arg("gen")
                .arg(1)
                .query_async(&mut c),
        )
        .await
}

/// Change a password, given the current one; every other session is signed out.
pub async fn change_password(
    store: &Store,
    email: &str,
    current: &str,
    new: &str,
) -> Result<(), AccountError> {
    let mut c = store.conn();
    let phc: Option<String> = store
        .run(
            redis::cmd("HGET")
                .arg(user_key(email))
                .arg("phc")
                .query_async(&mut c),
        )
        .await?;
    if !password_matches(phc, current).await {
        return Err(AccountError::WrongPassword);
    }
    if let Some(why) = access::password_problem(new, email) {
        return Err(AccountError::BadPassword(why));
    }
    let phc = hash_password(new).await?;
    let _: () = store
        .run(
            redis::pipe()
                .atomic()
                .hset(user_key(email), "phc", phc)
                .hincr(user_key(email), "gen", 1)
                .ignore()
                .query_async(&mut c),
        )
        .await?;
    Ok(())
}

/// The one-time setup link's token digest, while no dashboard user exists.
const SETUP_KEY: &str = "cp:dashboard:setup";
/// How long a setup link works.
pub const SETUP_LIFE_SECS: i64 = 24 * 60 * 60;

/// At start, while there is no dashboard user at all: a fresh setup token (its digest kept
/// for [`SETUP_LIFE_SECS`]), for the link written to a file only the daemon's user reads.
/// `None` once anyone has an account.
pub async fn setup_token(store: &Store) -> Result<Option<String>, StoreError> {
    let mut c = store.conn();
    let users: u64 = store
        .run(
            redis::cmd("SCARD")
                .arg("cp:dashboard:users")
                .query_async(&mut c),
        )
        .await?;
    if users > 0 {
        return Ok(None);
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    let _: () = store
        .run(
            redis::cmd("SET")
                .arg(SETUP_KEY)
                .arg(access::digest(&token))
                .arg("EX")
                .arg(SETUP_LIFE_SECS)
                .query_async(&mut c),
        )
        .await?;
    Ok(Some(token))
}

/// Whether `token` is the live setup link's (and still no user exists).
pub async fn setup_open(store: &Store, token: &str) -> Result<bool, StoreError> {
    let mut c = store.conn();
    let (stored, users): (Option<String>, u64) = store
        .run(
            redis::pipe()
                .get(SETUP_KEY)
                .scard("cp:dashboard:users")
                .query_async(&mut c),
        )
        .await?;
    Ok(users == 0
        && stored.is_some_and(|s| {
            use subtle::ConstantTimeEq;
            let given = access::digest(token);
            bool::from(s.as_bytes().ct_eq(given.as_bytes()))
        }))
}

/// Use the setup link up: it opens nothing after the first owner is made.
pub async fn close_setup(store: &Store) -> Result<(), StoreError> {
    let mut c = store.conn();
    store
        .run(redis::cmd("DEL").arg(SETUP_KEY).query_async(&mut c))
        .await
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: i64,
    pub who: String,
    pub what: String,
    pub from: String,
}

/// Write a line of `project`'s audit log.
pub async fn audit(
    store: &Store,
    project: &str,
    who: &str,
    what: &str,
    from: &str,
) -> Result<(), StoreError> {
    let mut c = store.conn();
    let _: String = store
        .run(
            redis::cmd("XADD")
                .arg(audit_key(project))
                .arg("MAXLEN")
                .arg("~")
                .arg(100_000)
                .arg("*")
                .arg("at")
                .arg(clock::now())
                .arg("who")
                .arg(who)
                .arg("what")
                .arg(what)
                .arg("from")
                .arg(from)
                .query_async(&mut c),
        )
        .await?;
    Ok(())
}

/// The newest `count` lines of `project`'s audit log, newest first.
pub async fn audit_log(
    store: &Store,
    project: &str,
    count: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut c = store.conn();
    let rows: Vec<(String, Vec<(String, String)>)> = store
        .run(
            redis::cmd("XREVRANGE")
                .arg(audit_key(project))
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(count)
                .query_async(&mut c),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(_, fields)| {
            let get = |k: &str| {
                fields
                    .iter()
                    .find(|(f, _)| f == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            AuditEntry {
                at: get("at").parse().unwrap_or(0),
                who: get("who"),
                what: get("what"),
                from: get("from"),
            }
        })
        .collect())
}

/// How long a form's one-time token stays good.
pub const ONCE_LIFE_SECS: u64 = 3_600;

fn once_key(token: &str) -> String {
    format!("cp:dashboard:once:{}", access::digest(token))
}

/// A one-time token for a form that moves money (`purpose` names what it is for, e.g. a
/// refund of one payment in one project and mode): a double submit, or a resubmitted page,
/// finds it used and does nothing a second time.
pub async fn issue_once(store: &Store, purpose: &str) -> Result<String, StoreError> {
    let token = hex::encode(rand::random::<[u8; 16]>());
    let mut c = store.conn();
    let _: () = store
        .run(
            redis::cmd("SET")
                .arg(once_key(&token))
                .arg(purpose)
                .arg("EX")
                .arg(ONCE_LIFE_SECS)
                .query_async(&mut c),
        )
        .await?;
    Ok(token)
}

/// Use `token` up: true only for the first use, within its life, for the same `purpose`.
pub async fn use_once(store: &Store, token: &str, purpose: &str) -> Result<bool, StoreError> {
    if token.is_empty() || token.len() > 64 {
        return Ok(false);
    }
    let mut c = store.conn();
    let was: Option<String> = store
        .run(
            redis::cmd("GETDEL")
                .arg(once_key(token))
                .query_async(&mut c),
        )
        .await?;
    Ok(was.as_deref() == Some(purpose))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_matches_its_own_hash_only() {
        let phc = hash_password("correct horse battery").await.expect("hash");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(password_matches(Some(phc.clone()), "correct horse battery").await);
        assert!(!password_matches(Some(phc), "correct horse batterY").await);
        assert!(!password_matches(None, "").await);
    }
}
