//! The one-time backfill of list filters' sets ([`Store::backfill_filters`]): it reads
//! records and commits [`Tx`]s, so it lives apart from [`super::filters`], which every
//! [`Tx`] write uses to derive a record's sets.

use calmony_protocol::Mode;
use redis::AsyncCommands;

use super::client::Store;
use super::commit::Commit;
use super::error::StoreError;
use super::filters::{BACKFILLED, KINDS, Kind, memberships, stored_field};
use super::record::{Record, lossy};
use super::retry::{Attempt, until_committed};
use super::scope::Scope;
use super::tx::Tx;

impl Store {
    /// Put every record of a filtered kind that is in its list but not yet in its filters'
    /// sets into them, once: the daemon runs it at start, before it serves, and [`BACKFILLED`]
    /// marks it done. Each record is moved by a commit that checks its version, so a change
    /// written meanwhile (by another daemon) is never undone; running it twice does nothing
    /// more. Answers how many records were indexed.
    pub async fn backfill_filters(&self) -> Result<u64, StoreError> {
        let mut c = self.conn();
        let done: bool = self.run(c.exists(BACKFILLED)).await?;
        if done {
            return Ok(0);
        }
        let projects: Vec<String> = self.run(c.hvals("cp:projects")).await?;
        let mut moved = 0;
        for project in &projects {
            for mode in [Mode::Test, Mode::Live] {
                let scope = Scope::new(project.clone(), mode);
                for kind in &KINDS {
                    moved += self.backfill_list(&scope, kind).await?;
                }
            }
        }
        let _: () = self.run(c.set(BACKFILLED, "1")).await?;
        if moved > 0 {
            tracing::info!(records = moved, "records put in their list filters' sets");
        }
        Ok(moved)
    }

    /// One list, 200 records at a time: their fields read in one pipeline, and those not yet
    /// indexed as their JSON says moved in one commit (one at a time if another writer moved
    /// one of them meanwhile).
    async fn backfill_list(&self, scope: &Scope, kind: &Kind) -> Result<u64, StoreError> {
        const BATCH: usize = 200;
        let list = scope.key(kind.list);
        let fields: Vec<String> = kind
            .fields
            .iter()
            .chain(kind.ranges)
            .map(|f| stored_field(f))
            .collect();
        let mut from = "-".to_string();
        let mut moved = 0;
        loop {
            let mut c = self.conn();
            let ids: Vec<String> = self
                .run(
                    redis::cmd("ZRANGEBYLEX")
                        .arg(&list)
                        .arg(&from)
                        .arg("+")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(BATCH)
                        .query_async(&mut c),
                )
                .await?;
            let keys: Vec<String> = ids.iter().map(|id| scope.record(id)).collect();
            let mut tx = Tx::new();
            let mut stale = Vec::new();
            for (key, read) in keys.iter().zip(self.read_indexed(&keys, &fields).await?) {
                if let Some(record) = unindexed(key, kind, read)? {
                    tx.expect_version(key, record.version)
                        .index_filters(key, &record.json);
                    stale.push(key);
                }
            }
            if !stale.is_empty() {
                match self.commit(&tx).await? {
                    Commit::Done(_) => moved += stale.len() as u64,
                    _ => {
                        for key in stale {
                            moved += u64::from(self.backfill_record(key, kind, &fields).await?);
                        }
                    }
                }
            }
            match ids.last() {
                Some(last) if ids.len() == BATCH => from = format!("({last}"),
                _ => return Ok(moved),
            }
        }
    }

    /// Each record's `v`, `json` and `fields`, in one pipeline.
    async fn read_indexed(
        &self,
        keys: &[String],
        fields: &[String],
    ) -> Result<Vec<Vec<Option<Vec<u8>>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("HMGET").arg(key).arg("v").arg("json").arg(fields);
        }
        let mut c = self.conn();
        self.run(async move { pipe.query_async(&mut c).await })
            .await
    }

    /// Index one record if its sets are not those of its JSON; whether it was.
    async fn backfill_record(
        &self,
        key: &str,
        kind: &Kind,
        fields: &[String],
    ) -> Result<bool, StoreError> {
        until_committed(
            || async move {
                let keys = [key.to_string()];
                let read = self.read_indexed(&keys, fields).await?.pop();
                let Some(record) = unindexed(key, kind, read.unwrap_or_default())? else {
                    return Ok(Attempt::Done(false));
                };
                let mut tx = Tx::new();
                tx.expect_version(key, record.version)
                    .index_filters(key, &record.json);
                Ok(match self.commit(&tx).await? {
                    Commit::Done(_) => Attempt::Done(true),
                    _ => Attempt::Conflict,
                })
            },
            || StoreError::Corrupt {
                key: key.to_string(),
                reason: "kept changing while its list filters were indexed".into(),
            },
        )
        .await
    }
}

/// The record read as `v`, `json` and its stored filter values, if those are not the values
/// of its JSON (`None` too when there is no record).
fn unindexed(
    key: &str,
    kind: &Kind,
    mut read: Vec<Option<Vec<u8>>>,
) -> Result<Option<Record>, StoreError> {
    let stored: Vec<Option<String>> = read
        .split_off(2.min(read.len()))
        .into_iter()
        .map(|f| f.map(lossy))
        .collect();
    let json = read.pop().flatten();
    let version = read.pop().flatten();
    let Some(record) = Record::from_fields(key, version, json)? else {
        return Ok(None);
    };
    let want = memberships(kind, &record.json);
    let indexed = want.len() == stored.len()
        && want
            .iter()
            .zip(&stored)
            .all(|(m, s)| s.as_deref() == Some(m.joined().as_str()));
    Ok((!indexed).then_some(record))
}
