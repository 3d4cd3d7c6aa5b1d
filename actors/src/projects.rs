//! Projects' business details: what the payer sees of the merchant (see
//! `calmony_protocol::business`).
//!
//! The details are one field, `business` (JSON), of the project's hash `cp:project:{prj}`,
//! written whole by a compare-and-set script: a change is checked in Rust against the details
//! it read, and written only if they are still what was read (two operators updating at once
//! cannot lose each other's change). `business_rev` counts the writes, so a cached invoice PDF
//! knows it shows older details.

use std::sync::LazyLock;

use calmony_protocol::business::{BusinessProfile, ProfileChange, ProfileError};
use redis::AsyncCommands;

use crate::api_keys::{self, Project};
use crate::store::retry::{Attempt, until_committed_within};
use crate::store::{Store, StoreError};

/// Why the details could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error(transparent)]
    Invalid(#[from] ProfileError),
    #[error("no project named {0:?} (`calmony-payd projects create` makes one)")]
    Unknown(String),
    #[error("project {0:?} exists already (`calmony-payd projects update` changes it)")]
    Exists(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A project as the payer-facing pages and invoices need it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merchant {
    pub project_id: String,
    /// The operator's name for the project: never shown to payers.
    pub project_name: String,
    pub profile: BusinessProfile,
    /// Bumped by every change of `profile`.
    pub revision: u64,
}

fn project_key(id: &str) -> String {
    format!("cp:project:{{{id}}}")
}

/// Write `ARGV[2]` as the details if they are still `ARGV[1]` (`""`: none yet).
static SET_IF_UNCHANGED: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "local cur = redis.call('HGET', KEYS[1], 'business') or '' \
         if cur ~= ARGV[1] then return 0 end \
         redis.call('HSET', KEYS[1], 'business', ARGV[2]) \
         redis.call('HINCRBY', KEYS[1], 'business_rev', 1) \
         return 1",
    )
});

/// The project's details, by its id. A project unknown or without details has the empty ones.
pub async fn merchant(store: &Store, project_id: &str) -> Result<Merchant, StoreError> {
    let mut c = store.conn();
    let (name, business, rev): (Option<String>, Option<String>, Option<u64>) = store
        .run(
            redis::cmd("HMGET")
                .arg(project_key(project_id))
                .arg("name")
                .arg("business")
                .arg("business_rev")
                .query_async(&mut c),
        )
        .await?;
    Ok(Merchant {
        project_id: project_id.to_string(),
        project_name: name.unwrap_or_default(),
        profile: parse(business.as_deref()),
        revision: rev.unwrap_or(0),
    })
}

fn parse(stored: Option<&str>) -> BusinessProfile {
    stored
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

/// The project named `name`, if there is one.
pub async fn find(store: &Store, name: &str) -> Result<Option<Project>, StoreError> {
    let mut c = store.conn();
    let id: Option<String> = store.run(c.hget("cp:projects", name)).await?;
    Ok(id.map(|id| Project {
        id,
        name: name.to_string(),
    }))
}

/// `projects create`: a new project with these details (refused if the name is taken).
pub async fn create(
    store: &Store,
    name: &str,
    change: &ProfileChange,
) -> Result<Merchant, ProjectError> {
    // Checked before anything is written: a refused value creates no project.
    change.apply(&BusinessProfile::default())?;
    if find(store, name).await?.is_some() {
        return Err(ProjectError::Exists(name.to_string()));
    }
    let project = api_keys::ensure_project(store, name).await?;
    update_project(store, &project.id, change).await
}

/// `projects update`: change the named fields of an existing project's details.
pub async fn update(
    store: &Store,
    name: &str,
    change: &ProfileChange,
) -> Result<Merchant, ProjectError> {
    let project = find(store, name)
        .await?
        .ok_or_else(|| ProjectError::Unknown(name.to_string()))?;
    update_project(store, &project.id, change).await
}

/// How many times a change reads and writes the details before giving up. More than an API
/// record's: an operator's command line is not waiting on a request timeout, and a burst of
/// scripted updates to one project should all land.
const PROFILE_WRITE_ATTEMPTS: usize = 20;

/// Apply `change` to the stored details in one write, retried if another write came between
/// the read and it.
async fn update_project(
    store: &Store,
    project_id: &str,
    change: &ProfileChange,
) -> Result<Merchant, ProjectError> {
    let key = &project_key(project_id);
    until_committed_within(
        PROFILE_WRITE_ATTEMPTS,
        || async move {
            let mut c = store.conn();
            let stored: Option<String> = store.run(c.hget(key, "business")).await?;
            let new = change.apply(&parse(stored.as_deref()))?;
            let body = serde_json::to_string(&new)
                .map_err(|e| StoreError::Unavailable(format!("business details: {e}")))?;
            let mut invocation = SET_IF_UNCHANGED.key(key);
            invocation.arg(stored.unwrap_or_default()).arg(body);
            let written: i64 = store.run(invocation.invoke_async(&mut c)).await?;
            Ok(if written == 1 {
                Attempt::Done(merchant(store, project_id).await?)
            } else {
                Attempt::Conflict
            })
        },
        || StoreError::Unavailable("the project's details kept changing; try again".into()).into(),
    )
    .await
}

/// The time zone the dashboard counts the project's days in (an IANA name), if one was set.
pub async fn time_zone(store: &Store, project_id: &str) -> Result<Option<String>, StoreError> {
    let mut c = store.conn();
    store
        .run(c.hget(project_key(project_id), "time_zone"))
        .await
}

/// Set the project's time zone (checked by the caller against the tzdb).
pub async fn set_time_zone(store: &Store, project_id: &str, name: &str) -> Result<(), StoreError> {
    let mut c = store.conn();
    store
        .run(c.hset::<_, _, _, ()>(project_key(project_id), "time_zone", name))
        .await
}
