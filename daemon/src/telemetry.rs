//! Logs and metrics.
//!
//! Logs go to stderr (stdout belongs to commands like `keys create`), as text or JSON, filtered
//! by `log.level`. Every request's log lines carry its request id. Metrics use the `metrics`
//! facade with the Prometheus recorder, rendered at `/metrics`.

use std::time::Duration;

use calmony_config::Config;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

pub fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if config.log.format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Latency buckets in seconds, from 250 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

pub fn init_metrics() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    describe();
    Ok(handle)
}

fn describe() {
    metrics::describe_counter!(
        "calmony_http_requests_total",
        "API requests by route, method and status"
    );
    metrics::describe_histogram!(
        "calmony_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer a request, by route"
    );
    metrics::describe_counter!(
        "calmony_redis_errors_total",
        "Redis operations that failed or timed out"
    );
    metrics::describe_counter!(
        "calmony_rate_limited_total",
        "Requests refused by the per-key rate limit"
    );
    metrics::describe_counter!(
        "calmony_idempotent_replays_total",
        "Answers replayed for a repeated Idempotency-Key"
    );
    metrics::describe_counter!(
        "calmony_deferred_key_checks_total",
        "Payment creates whose key check rode in their own commit, by outcome: passed, refused, \
         rerun (ended without that commit, run again with a fresh key check), unanswered"
    );
    // Counters appear in /metrics from the start, not only after their first increment.
    metrics::counter!("calmony_redis_errors_total").absolute(0);
    metrics::counter!("calmony_rate_limited_total").absolute(0);
    metrics::counter!("calmony_idempotent_replays_total").absolute(0);
}
