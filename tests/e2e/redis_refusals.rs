//! Redis refusing work for a while (memory full, a slow script) is a 503 that says "retry",
//! never a 500 that says "do not": reads go on while only writes are refused, `/readyz` says
//! the daemon cannot take payments, and every kind is counted.

use std::time::Duration;

use crate::harness::World;

fn config_set(w: &World, name: &str, value: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query(&mut w.redis.conn())
        .expect("CONFIG SET");
}

/// The value of one series in `/metrics`, 0 when absent.
async fn metric(w: &World, series: &str) -> f64 {
    let text = w.api.get("/metrics").await.text;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A customer and the customers list are read as ever.
async fn reads_are_served(w: &World, customer: &str) {
    let read = w.api.get(&format!("/v1/customers/{customer}")).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(w.api.get("/v1/customers").await.status, 200);
}

/// A write is a 503 `api_error` that tells the client to retry.
async fn a_write_is_asked_to_retry(w: &World) {
    let write = w.api.post_form("/v1/customers", "name=Bob").await;
    assert_eq!(write.status, 503, "{}", write.text);
    assert_eq!(write.err("type"), "api_error");
    assert_eq!(write.header("stripe-should-retry"), Some("true"));
}

#[tokio::test]
async fn a_redis_out_of_memory_serves_reads_and_asks_writes_to_retry() {
    let w = World::new();
    let customer = w.api.customer().await;
    // A payment's create before: the next one defers its key check to its commit.
    let first = w
        .api
        .post_form("/v1/payment_intents", "amount=500&currency=gbp")
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    config_set(&w, "maxmemory-policy", "noeviction");
    // Below what an empty Redis uses: every write is refused with OOM, reads are served.
    config_set(&w, "maxmemory", "1");

    reads_are_served(&w, &customer).await;

    a_write_is_asked_to_retry(&w).await;
    let claimed = w.api.post_idem("/v1/customers", "name=Bob", "oom-1").await;
    assert_eq!(claimed.status, 503, "{}", claimed.text);
    assert_eq!(claimed.header("stripe-should-retry"), Some("true"));
    let pay = w
        .api
        .post_form("/v1/payment_intents", "amount=500&currency=gbp")
        .await;
    assert_eq!(pay.status, 503, "{}", pay.text);
    assert_eq!(pay.header("stripe-should-retry"), Some("true"));
    let deferred = metric(&w, r#"calmony_deferred_key_checks_total{outcome="passed"}"#).await
        + metric(
            &w,
            r#"calmony_deferred_key_checks_total{outcome="unanswered"}"#,
        )
        .await
        + metric(&w, r#"calmony_deferred_key_checks_total{outcome="rerun"}"#).await;
    assert!(
        deferred >= 1.0,
        "the create under OOM took the deferred path"
    );

    let ready = w.api.get("/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert!(metric(&w, r#"calmony_redis_errors_total{kind="oom"}"#).await >= 3.0);
    assert!(metric(&w, r#"calmony_rate_limit_uncharged_total{reason="oom"}"#).await >= 2.0);

    config_set(&w, "maxmemory", "0");
    assert_eq!(w.api.get("/readyz").await.status, 200);
    let write = w.api.post_form("/v1/customers", "name=Bob").await;
    assert_eq!(write.status, 200, "{}", write.text);
    let claimed = w.api.post_idem("/v1/customers", "name=Bob", "oom-1").await;
    assert_eq!(claimed.status, 200, "{}", claimed.text);
    let read = w.api.get(&format!("/v1/customers/{customer}")).await;
    assert_eq!(read.status, 200, "{}", read.text);
}

/// A script running past `busy-reply-threshold` makes Redis answer `BUSY` to everything: a
/// 503 with retry until it ends.
#[tokio::test]
async fn a_busy_redis_is_a_503_with_retry() {
    let w = World::new();
    let customer = w.api.customer().await;
    config_set(&w, "busy-reply-threshold", "50");
    let mut busy = w.redis.conn();
    let spinning = std::thread::spawn(move || {
        let _ = redis::cmd("EVAL")
            .arg("while true do end")
            .arg(0)
            .query::<()>(&mut busy);
    });
    let path = format!("/v1/customers/{customer}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut answered = w.api.get(&path).await;
    while answered.status != 503 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        answered = w.api.get(&path).await;
    }
    assert_eq!(answered.status, 503, "{}", answered.text);
    let r = answered;
    assert_eq!(r.header("stripe-should-retry"), Some("true"));
    assert_eq!(r.err("type"), "api_error");
    assert_eq!(w.api.get("/readyz").await.status, 503);
    let _: redis::RedisResult<()> = redis::cmd("SCRIPT").arg("KILL").query(&mut w.redis.conn());
    let _ = spinning.join();
    assert!(metric(&w, r#"calmony_redis_errors_total{kind="busy"}"#).await >= 1.0);
    assert_eq!(w.api.get(&path).await.status, 200);
    assert_eq!(w.api.get("/readyz").await.status, 200);
}

/// While Redis loads its dataset after a restart it answers `LOADING` to everything: a 503
/// with retry (never a 500) until it is done, then all is served again. Loading is made to last
/// a few seconds with Redis's own `key-load-delay`.
#[tokio::test]
async fn a_loading_redis_is_a_503_with_retry() {
    let mut redis = crate::harness::Redis::start_with(&[
        "--key-load-delay",
        "200",
        "--loading-process-events-interval-bytes",
        "1024",
    ]);
    let daemon = crate::harness::Daemon::start(&redis.url());
    let api = daemon.api(&daemon.key("acme", "test"));
    let customer = api.customer().await;
    {
        // 20,000 keys at 200 µs each: about four seconds of loading.
        let mut c = redis.conn();
        let mut pipe = redis::pipe();
        for i in 0..20_000 {
            pipe.cmd("SET")
                .arg(format!("filler:{i}"))
                .arg("x".repeat(64))
                .ignore();
        }
        let _: () = pipe.query(&mut c).expect("fill");
        // Into the AOF's RDB base, which is what `key-load-delay` slows.
        let _: () = redis::cmd("BGREWRITEAOF").query(&mut c).expect("rewrite");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let info: String = redis::cmd("INFO")
                .arg("persistence")
                .query(&mut c)
                .expect("INFO");
            if info.contains("aof_rewrite_in_progress:0")
                && !info.contains("aof_rewrite_scheduled:1")
            {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the rewrite ends");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let restarting = std::thread::spawn(move || {
        redis.restart();
        redis
    });
    let path = format!("/v1/customers/{customer}");
    let mut statuses = Vec::new();
    let mut refused = None;
    while !restarting.is_finished() {
        let r = api.get(&path).await;
        statuses.push(r.status);
        if r.status == 503 {
            refused = Some(r);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let redis = restarting.join().expect("restarted");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "only 503s while loading, no 500: {statuses:?}"
    );
    let r = refused.unwrap_or_else(|| panic!("a 503 while loading: {statuses:?}"));
    assert_eq!(r.header("stripe-should-retry"), Some("true"));
    assert_eq!(r.err("type"), "api_error");
    let metrics = api.get("/metrics").await.text;
    assert!(
        metrics.lines().any(
            |l| l.starts_with(r#"calmony_redis_errors_total{kind="loading"}"#)
                && !l.ends_with(" 0")
        ),
        "{metrics}"
    );
    let mut back = false;
    for _ in 0..50 {
        if api.get(&path).await.status == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "served again once loaded");
    drop(redis);
}

/// `NOREPLICAS` (here `min-replicas-to-write` with no replica; `READONLY` and `MISCONF` are the
/// same kind) refuses only writes, as `OOM` does: reads are served (their rate limit left
/// uncharged), writes are a 503 with retry.
#[tokio::test]
async fn a_redis_refusing_writes_for_want_of_replicas_serves_reads_and_asks_writes_to_retry() {
    let w = World::new();
    let customer = w.api.customer().await;
    config_set(&w, "min-replicas-to-write", "1");

    reads_are_served(&w, &customer).await;
    a_write_is_asked_to_retry(&w).await;
    assert_eq!(w.api.get("/readyz").await.status, 503);
    assert!(
        metric(
            &w,
            r#"calmony_rate_limit_uncharged_total{reason="writes_stopped"}"#
        )
        .await
            >= 2.0
    );

    config_set(&w, "min-replicas-to-write", "0");
    assert_eq!(w.api.get("/readyz").await.status, 200);
    let write = w.api.post_form("/v1/customers", "name=Bob").await;
    assert_eq!(write.status, 200, "{}", write.text);
}
