//! Secrets at rest: webhook signing secrets are sealed in Redis under a key kept in a private
//! file, an older version's clear secrets are re-sealed at start, and the first start's test
//! key is kept in a private file rather than written to the log.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use calmony_protocol::webhook::verify;

use crate::harness::receiver::Receiver;
use crate::harness::{BIN, Daemon, Redis, World, free_port, redis_dump_text};

fn mode_of(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn key_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("kek-") && n.ends_with(".key"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn delivered_with(rx: &Receiver, secret: &str) -> bool {
    rx.received().iter().any(|r| {
        verify(
            r.body.as_bytes(),
            &r.calmony_signature,
            secret,
            300,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
        )
        .is_ok()
    })
}

#[tokio::test]
async fn signing_secrets_are_never_in_redis_and_deliveries_still_verify() {
    // The first start's own key, in `<data_dir>/keys` (not the tests' shared key directory).
    let w = World::with(&[("CALMONY_SECRETS_KEY_DIR", "")]);
    let rx = Receiver::start().await;
    let body = format!(
        "url={}&enabled_events[]=customer.created",
        form_urlencoded::byte_serialize(rx.url.as_bytes()).collect::<String>()
    );
    let made = w
        .api
        .post_idem("/v1/webhook_endpoints", &body, "endpoint-1")
        .await;
    assert_eq!(made.status, 200, "{}", made.text);
    let secret = made.json["secret"].as_str().expect("secret").to_string();
    let we = made.json["id"].as_str().expect("id").to_string();
    // A retried create shows the same secret (its stored answer is sealed, and opens).
    let again = w
        .api
        .post_idem("/v1/webhook_endpoints", &body, "endpoint-1")
        .await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json["secret"], secret.as_str(), "{}", again.text);

    w.api.customer().await;
    assert!(rx.wait(Duration::from_secs(10), |r| r.len() == 1).await);
    assert!(
        delivered_with(&rx, &secret),
        "signed with the secret answered"
    );

    let rolled = w
        .api
        .post_idem(
            &format!("/v1/webhook_endpoints/{we}/roll_secret"),
            "",
            "roll-1",
        )
        .await;
    assert_eq!(rolled.status, 200, "{}", rolled.text);
    let new_secret = rolled.json["secret"].as_str().expect("secret").to_string();
    w.api.customer().await;
    assert!(rx.wait(Duration::from_secs(10), |r| r.len() == 2).await);
    assert!(delivered_with(&rx, &new_secret));

    let dump = redis_dump_text(&mut w.redis.conn());
    for s in [&secret, &new_secret] {
        assert!(!dump.contains(s.as_str()), "{s} is stored in clear");
        let body = s.trim_start_matches("whsec_");
        assert!(!dump.contains(body), "{s}'s random part is stored in clear");
    }
    assert!(dump.contains("sealed1."), "the secrets are kept sealed");

    let dir = w.daemon.data_dir().join("keys");
    let files = key_files(&dir);
    assert_eq!(
        files.len(),
        1,
        "one key made at first start in {}",
        dir.display()
    );
    assert_eq!(mode_of(&files[0]), 0o600);
    assert_eq!(mode_of(&dir), 0o700);
}

#[tokio::test]
async fn clear_secrets_of_an_older_version_are_read_and_sealed_at_start() {
    let redis = Redis::start();
    let mut d = Daemon::start(&redis.url());
    let key = d.key("acme", "test");
    let api = d.api(&key);
    let rx = Receiver::start().await;
    let body = format!(
        "url={}&enabled_events[]=customer.created",
        form_urlencoded::byte_serialize(rx.url.as_bytes()).collect::<String>()
    );
    let made = api.post_form("/v1/webhook_endpoints", &body).await;
    assert_eq!(made.status, 200, "{}", made.text);
    let we = made.json["id"].as_str().expect("id").to_string();
    // What an older version stored: the secrets as clear JSON beside the record.
    let legacy = "whsec_LegacyClearSecretFromAnOlderVersion1";
    let mut c = redis.conn();
    let records: Vec<String> = redis::cmd("KEYS")
        .arg(format!("cp:*:test:obj:{we}"))
        .query(&mut c)
        .expect("KEYS");
    assert_eq!(records.len(), 1, "{records:?}");
    let _: () = redis::cmd("HSET")
        .arg(&records[0])
        .arg("secrets")
        .arg(format!(r#"[{{"secret":"{legacy}","expires_at":0}}]"#))
        .query(&mut c)
        .expect("HSET");
    d.restart();
    let api = d.api(&key);
    let sealed = crate::harness::eventually(Duration::from_secs(10), || async {
        !redis_dump_text(&mut redis.conn()).contains(legacy)
    })
    .await;
    assert!(sealed, "the clear secret is sealed at start");
    api.customer().await;
    assert!(rx.wait(Duration::from_secs(10), |r| r.len() == 1).await);
    assert!(delivered_with(&rx, legacy), "signed with the older secret");
}

#[tokio::test]
async fn the_first_test_key_is_kept_in_a_private_file_not_in_the_log() {
    let redis = Redis::start();
    let d = Daemon::start_with(&redis.url(), &[("CALMONY_API_BOOTSTRAP_TEST_KEY", "true")]);
    let file = d.data_dir().join("first-test-key");
    assert_eq!(mode_of(&file), 0o600);
    let key = std::fs::read_to_string(&file).expect("key file");
    let key = key.trim();
    assert!(key.starts_with("sk_test_"), "{key:?}");
    let logs = d.logs();
    assert!(!logs.contains("sk_test_"), "no key in the log:\n{logs}");
    assert!(
        logs.contains(&file.display().to_string()),
        "the log says where the key is:\n{logs}"
    );
    assert_eq!(d.api(key).get("/v1/customers").await.status, 200);
}

#[tokio::test]
async fn a_daemon_without_the_keys_of_its_redis_refuses_to_start_rather_than_make_its_own() {
    let redis = Redis::start();
    // The first daemon makes its key in its own data directory and records its id in Redis.
    let first = Daemon::start_with(&redis.url(), &[("CALMONY_SECRETS_KEY_DIR", "")]);
    let made = key_files(&first.data_dir().join("keys"));
    assert_eq!(made.len(), 1, "{made:?}");
    let name = made[0]
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();

    // A second daemon on the same Redis with a fresh data directory and no key.
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let mut child = std::process::Command::new(BIN)
        .arg("serve")
        .env("CALMONY_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("CALMONY_REDIS_URL", redis.url())
        .env("CALMONY_DATA_DIR", &data)
        .env("CALMONY_SECRETS_KEY_DIR", "")
        .env("CALMONY_API_BOOTSTRAP_TEST_KEY", "false")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the second daemon started with a key of its own");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut said = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut said)
        .expect("stderr");
    assert!(!status.success(), "{said}");
    assert!(
        said.contains("secrets.key_dir") && said.contains(&name) && said.contains("copy"),
        "the refusal names the setting and the file to copy:\n{said}"
    );
    assert!(
        key_files(&data.join("keys")).is_empty(),
        "no key of its own was made"
    );

    // With the key copied there, it starts and shares the work.
    let keys = data.join("keys");
    std::fs::create_dir_all(&keys).expect("key dir");
    std::fs::copy(&made[0], keys.join(&name)).expect("copy the key");
    std::fs::set_permissions(keys.join(&name), std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    let second = Daemon::start_with(
        &redis.url(),
        &[("CALMONY_SECRETS_KEY_DIR", keys.to_str().expect("utf-8"))],
    );
    let key = second.key("acme", "test");
    assert_eq!(second.api(&key).get("/v1/customers").await.status, 200);
}
