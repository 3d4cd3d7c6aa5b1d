//! The newcomer's path: no Redis URL, so the daemon runs its own redis-server, keeps a first
//! test key in a private file, and keeps the data across a crash and restart.

use std::time::Duration;

use crate::harness::{Daemon, eventually};

#[tokio::test]
async fn the_daemon_runs_its_own_redis_and_prints_a_first_key() {
    let mut d = Daemon::start_with("", &[("CALMONY_API_BOOTSTRAP_TEST_KEY", "true")]);
    // The first key is kept in a private file, which the log names (never the key itself).
    let key_file = d.data_dir().join("first-test-key");
    assert!(
        d.logs().contains(&key_file.display().to_string()),
        "{}",
        d.logs()
    );
    let key = std::fs::read_to_string(&key_file)
        .expect("a first test key in its file")
        .trim()
        .to_string();
    let api = d.api(&key);
    let c = api.post_form("/v1/customers", "name=Persisted").await;
    assert_eq!(c.status, 200, "{}", c.text);
    let id = c.json["id"].as_str().expect("id").to_string();
    let socket = d.data_dir().join("redis").join("redis.sock");
    assert!(socket.exists());

    // A crash of the daemon takes its redis-server down too (no orphan)...
    d.kill9();
    let pidfile = d.data_dir().join("redis").join("redis.pid");
    let gone = eventually(Duration::from_secs(10), || {
        let pidfile = pidfile.clone();
        async move {
            let pid = std::fs::read_to_string(&pidfile).unwrap_or_default();
            pid.trim().is_empty()
                || !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists()
        }
    })
    .await;
    assert!(gone, "the managed redis-server exits with its daemon");

    // ...and a restart finds the data in the AOF, without printing a new key.
    d.restart();
    let api = d.api(&key);
    let got = api.get(&format!("/v1/customers/{id}")).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.json["name"], "Persisted");
    let second_start =
        std::fs::read_to_string(d.dir.path().join("daemon-2.log")).unwrap_or_default();
    assert!(
        !second_start.contains("first start") && !second_start.contains("sk_test_"),
        "no second key:\n{second_start}"
    );

    // The keys command shares the running daemon's Redis.
    let (status, stdout, _) = d.cli(&["keys", "list"]);
    assert!(status.success());
    assert!(stdout.contains("default"));

    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(15)).success());
}
