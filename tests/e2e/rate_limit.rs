//! The per-key rate limit, enforced in Redis so it holds across daemons sharing it.

use std::time::Instant;

use crate::harness::{Daemon, Redis};

#[tokio::test]
async fn the_limit_holds_across_two_daemons() {
    let redis = Redis::start();
    let settings = [("CALMONY_API_RATE_LIMIT_PER_SECOND", "20")];
    let d1 = Daemon::start_with(&redis.url(), &settings);
    let d2 = Daemon::start_with(&redis.url(), &settings);
    let key = d1.key("acme", "test");
    let other_key = d1.key("acme", "test");
    let (a1, a2) = (d1.api(&key), d2.api(&key));

    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..120 {
        let api = if i % 2 == 0 { a1.clone() } else { a2.clone() };
        tasks.push(tokio::spawn(async move { api.get("/v1/customers").await }));
    }
    let (ok, limited) = crate::harness::passed_and_limited(tasks).await;
    let elapsed = started.elapsed().as_secs_f64();
    // One second of burst (20) plus 20/s for the time the burst took, across both daemons.
    let allowed = 20.0 + 20.0 * elapsed + 1.0;
    assert!(limited > 0, "120 requests at once must hit a 20/s limit");
    assert!(
        f64::from(ok) <= allowed,
        "{ok} requests passed in {elapsed:.2}s; at most {allowed:.0} may"
    );
    // Another key of the same project has its own budget.
    assert_eq!(d2.api(&other_key).get("/v1/customers").await.status, 200);
}
