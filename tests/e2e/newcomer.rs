//! A newcomer's first minutes: the admin commands find the running daemon's store from any
//! directory (or say plainly that they opened an empty one), logs written to a file are plain
//! text, and a clean stop logs no warning.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::harness::{Daemon, World};

const BIN: &str = env!("CARGO_BIN_EXE_calmony-payd");

/// `calmony-payd <args>` run in `dir` with none of the daemon's settings, as a newcomer types
/// it in another terminal: only the registry directory is shared (each test its own, so
/// other tests' daemons are not found).
fn bare_cli(dir: &Path, runtime: &Path, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", runtime);
    for (k, _) in std::env::vars() {
        if k.starts_with("CALMONY_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("run calmony-payd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn keys_list_from_another_directory_finds_the_running_daemons_store() {
    let runtime = tempfile::tempdir().expect("runtime dir");
    let runtime_path = runtime.path().display().to_string();
    let mut d = Daemon::start_with("", &[("XDG_RUNTIME_DIR", runtime_path.as_str())]);
    d.key("harbour-lettings", "test");
    let elsewhere = tempfile::tempdir().expect("another directory");
    let (ok, stdout, stderr) = bare_cli(elsewhere.path(), runtime.path(), &["keys", "list"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("harbour-lettings"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("using the store of the daemon running as pid"),
        "{stderr}"
    );
    assert!(
        !elsewhere.path().join(".calmony").exists(),
        "no new store was made in the current directory"
    );
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(15)).success());
    assert_eq!(
        std::fs::read_dir(runtime.path().join("calmony-payd"))
            .expect("registry dir")
            .count(),
        0,
        "a daemon that stops unregisters"
    );
}

#[tokio::test]
async fn keys_list_with_no_daemon_says_it_opened_a_new_empty_store_and_where() {
    let runtime = tempfile::tempdir().expect("runtime dir");
    let elsewhere = tempfile::tempdir().expect("another directory");
    let (ok, stdout, stderr) = bare_cli(elsewhere.path(), runtime.path(), &["keys", "list"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "only the heading: {stdout}");
    let store = elsewhere.path().join(".calmony").join("redis");
    for needle in [
        "opened a new, empty store",
        store.to_str().expect("utf-8 path"),
        "CALMONY_DATA_DIR",
        "CALMONY_REDIS_URL",
        "--config",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in:\n{stderr}");
    }
}

#[tokio::test]
async fn a_log_file_has_no_terminal_colour_codes() {
    let w = World::new();
    w.api.post_form("/v1/customers", "name=Plain").await;
    let logs = w.daemon.logs();
    assert!(logs.contains("calmony-payd is serving"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "escape codes in the log file:\n{logs:?}"
    );
}

#[tokio::test]
async fn a_clean_stop_with_the_managed_redis_logs_no_warning() {
    let mut d = Daemon::start_with("", &[]);
    let key = d.key("harbour-lettings", "test");
    let api = d.api(&key);
    // An endpoint, so the fan-out loop waits on the project's event stream too.
    let we = api
        .post_form(
            "/v1/webhook_endpoints",
            "url=http%3A%2F%2F127.0.0.1%3A9%2Fhooks&enabled_events[]=*",
        )
        .await;
    assert_eq!(we.status, 200, "{}", we.text);
    api.post_form("/v1/customers", "name=Before+the+stop").await;
    // The loops are blocked in their reads when the stop comes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(15)).success());
    let logs = d.logs();
    assert!(logs.contains("calmony-payd stopped"), "{logs}");
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}\n{logs}");
}
