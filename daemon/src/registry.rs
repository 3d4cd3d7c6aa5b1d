//! Where the running daemons keep their stores, for the commands run without their settings.
//!
//! `calmony-payd keys list` run in another directory than the daemon (or without its
//! `CALMONY_*` variables) would start a new, empty managed Redis in `./.calmony` and list
//! nothing, as if the daemon had no keys. So each daemon registers itself while it serves: a
//! file `<pid>.json` (its data directory and Redis URL) in a directory only its user can read,
//! `$XDG_RUNTIME_DIR/calmony-payd` or else `<tmp>/calmony-payd-<uid>`. A command that would
//! otherwise open a new store uses the one running daemon's store instead, refuses to guess
//! among several, and when there is none says plainly that the store it opened is new and
//! empty, where it is, and how to point it at the right one ([`choose`]).

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One serving daemon, as it registered itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub pid: u32,
    /// Absolute.
    pub data_dir: PathBuf,
    /// The URL its store answers on (`redis+unix://…/redis.sock` for the managed Redis).
    pub redis_url: String,
    pub listen: String,
}

/// The directory registrations live in, made (mode 0700) if missing. `None` if it cannot be
/// made or is not this user's alone (another user could plant a registration there).
fn dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(run) => PathBuf::from(run).join("calmony-payd"),
        None => {
            let uid = fs::metadata("/proc/self").ok()?.uid();
            std::env::temp_dir().join(format!("calmony-payd-{uid}"))
        }
    };
    let _ = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir);
    let meta = fs::symlink_metadata(&dir).ok()?;
    let me = fs::metadata("/proc/self").ok()?.uid();
    (meta.is_dir() && meta.uid() == me && meta.permissions().mode() & 0o077 == 0).then_some(dir)
}

/// Registers the daemon while it lives; the file goes when this is dropped (a daemon that is
/// killed leaves it, and readers skip registrations whose process is gone).
pub struct Registered(PathBuf);

impl Drop for Registered {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Register this daemon. Failing to is logged, not fatal: only the commands' guess suffers.
pub fn register(data_dir: &Path, redis_url: &str, listen: &str) -> Option<Registered> {
    let dir = dir()?;
    let me = Registration {
        pid: std::process::id(),
        data_dir: std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf()),
        redis_url: redis_url.to_string(),
        listen: listen.to_string(),
    };
    let path = dir.join(format!("{}.json", me.pid));
    let written = serde_json::to_vec(&me)
        .map_err(std::io::Error::other)
        .and_then(|body| crate::private_file::write_private(&path, &body));
    match written {
        Ok(()) => Some(Registered(path)),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "could not register this daemon for the admin commands");
            None
        }
    }
}

/// Every registered daemon whose process still runs.
pub fn running() -> Vec<Registration> {
    let Some(dir) = dir() else { return Vec::new() };
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<Registration> = entries
        .flatten()
        .filter_map(|e| fs::read(e.path()).ok())
        .filter_map(|body| serde_json::from_slice::<Registration>(&body).ok())
        .filter(|r| alive(r.pid))
        .collect();
    out.sort_by_key(|r| r.pid);
    out
}

/// The process runs and is a calmony-payd (not another program that got the pid since).
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "calmony-payd")
}

/// Which store a command opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The store its settings name (a Redis URL, or a data directory that holds a store).
    Configured,
    /// No store where its settings point: the one daemon that runs.
    Daemon(Registration),
    /// No store where its settings point, and several daemons run: the operator must say.
    Ambiguous(Vec<Registration>),
    /// No store anywhere: a new, empty one in the data directory.
    New,
}

/// Decide which store a command opens: the settings' if they name one that exists (a Redis
/// URL, or a data directory with a store in it), else the running daemon's, else a new one.
/// A data directory other than the default (`data_dir_named`) is the operator saying where
/// the store is, perhaps to make a new one: it is never swapped for a running daemon's.
pub fn choose(
    redis_url: &str,
    data_dir_named: bool,
    store_exists: bool,
    running: Vec<Registration>,
) -> Choice {
    if !redis_url.is_empty() || store_exists {
        return Choice::Configured;
    }
    if data_dir_named {
        return Choice::New;
    }
    match running.len() {
        0 => Choice::New,
        1 => running
            .into_iter()
            .next()
            .map_or(Choice::New, Choice::Daemon),
        _ => Choice::Ambiguous(running),
    }
}

/// How to point a command at a daemon's store: said whenever a command might be looking at
/// the wrong one.
pub const HOW_TO_POINT: &str = "point the command at the daemon's store the way the daemon \
     was started: run it in the daemon's directory, or set CALMONY_DATA_DIR to the daemon's \
     data_dir, or CALMONY_REDIS_URL to its redis.url, or pass --config with its file";

#[cfg(test)]
mod tests {
    use super::*;

    fn daemon(pid: u32) -> Registration {
        Registration {
            pid,
            data_dir: PathBuf::from(format!("/srv/d{pid}/.calmony")),
            redis_url: format!("redis+unix:///srv/d{pid}/.calmony/redis/redis.sock"),
            listen: "127.0.0.1:4242".into(),
        }
    }

    #[test]
    fn a_command_opens_the_store_its_settings_name_else_the_running_daemons() {
        // (redis.url, data_dir other than the default, a store there, running daemons)
        let cases: Vec<(&str, bool, bool, Vec<Registration>, Choice)> = vec![
            (
                "redis://r:6380",
                false,
                false,
                vec![daemon(7)],
                Choice::Configured,
            ),
            (
                "",
                false,
                true,
                vec![daemon(7), daemon(8)],
                Choice::Configured,
            ),
            ("", true, true, vec![daemon(7)], Choice::Configured),
            ("", false, false, vec![daemon(7)], Choice::Daemon(daemon(7))),
            ("", true, false, vec![daemon(7)], Choice::New),
            (
                "",
                false,
                false,
                vec![daemon(7), daemon(8)],
                Choice::Ambiguous(vec![daemon(7), daemon(8)]),
            ),
            ("", false, false, vec![], Choice::New),
        ];
        for (url, named, exists, running, want) in cases {
            assert_eq!(
                choose(url, named, exists, running),
                want,
                "{url:?} {named} {exists}"
            );
        }
    }

    #[test]
    fn only_a_running_calmony_payd_counts() {
        assert!(!alive(u32::MAX));
        // This test binary is not calmony-payd.
        assert!(!alive(std::process::id()));
    }
}
