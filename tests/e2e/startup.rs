//! Start-up: a Redis that is not there yet, and the systemd notification protocol.

use std::time::Duration;

use crate::harness::{BIN, Daemon, Redis, free_port};

#[tokio::test]
async fn a_daemon_started_before_its_redis_waits_for_it() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/");
    // Redis appears two seconds after the daemon starts; the daemon must wait and then serve.
    let redis = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        Redis::start_on(port)
    });
    let d = Daemon::start(&url);
    let _redis = redis.join().expect("redis thread");
    let key = d.key("acme", "test");
    assert_eq!(d.api(&key).get("/v1/customers").await.status, 200);
    let logs = d.logs();
    assert!(
        logs.contains("redis is not reachable yet; retrying"),
        "{logs}"
    );
}

#[tokio::test]
async fn systemd_hears_ready_watchdog_and_stopping() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().expect("tmp");
    let sock_path = dir.path().join("notify.sock");
    let sock = tokio::net::UnixDatagram::bind(&sock_path).expect("bind notify socket");
    let port = free_port();
    // systemd sets WATCHDOG_PID to the service's pid; `exec` keeps the shell's pid.
    let mut child = std::process::Command::new("sh")
        .args(["-c", "WATCHDOG_PID=$$ exec \"$0\" serve", BIN])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "200000")
        .env("CALMONY_LISTEN", format!("127.0.0.1:{port}"))
        .env("CALMONY_REDIS_URL", redis.url())
        .env("CALMONY_DATA_DIR", dir.path().join("data"))
        .env("CALMONY_API_BOOTSTRAP_TEST_KEY", "false")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut seen = String::new();
    let mut buf = vec![0u8; 4096];
    for want in ["READY=1", "WATCHDOG=1"] {
        while !seen.contains(want) {
            let n = tokio::time::timeout(Duration::from_secs(10), sock.recv(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no {want} from the daemon; got {seen:?}"))
                .expect("recv");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            seen.push('\n');
        }
    }
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    while !seen.contains("STOPPING=1") {
        let n = tokio::time::timeout(Duration::from_secs(10), sock.recv(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no STOPPING=1; got {seen:?}"))
            .expect("recv");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        seen.push('\n');
    }
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status}");
    assert!(seen.find("READY=1") < seen.find("STOPPING=1"), "{seen}");
}

/// Tests run side by side, and a drawn port is free only when drawn: a server of another test
/// can take it before this test's binds it. The harness then draws again instead of talking
/// to the other test's server (which answers on that port just as well).
#[tokio::test]
async fn a_drawn_port_taken_meanwhile_is_drawn_again() {
    let other = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = other.local_addr().expect("addr").port();
    let redis = Redis::start_at(taken, true);
    assert_ne!(redis.port, taken);
    assert!(redis.ping());
    let d = Daemon::start_drawn(&redis.url(), &[], taken);
    assert_ne!(d.port, taken);
    assert!(d.logs().contains("Address already in use"), "{}", d.logs());
    let key = d.key("acme", "test");
    assert_eq!(d.api(&key).get("/v1/customers").await.status, 200);
    drop(other);
}
