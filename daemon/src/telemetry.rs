//! Logs and metrics.
//!
//! Logs go to stderr (stdout belongs to commands like `keys create`), as text or JSON, filtered
//! by `log.level`. Text is coloured only when stderr is a terminal (and `NO_COLOR` is unset): a
//! log file or journald would otherwise keep the escape codes. Every request's log lines carry its request id. Metrics use the `metrics`
//! facade with the Prometheus recorder, rendered at `/metrics`.

use std::io::IsTerminal;
use std::time::Duration;

use calmony_config::Config;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

pub fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_target(false);
    let _ = if config.log.format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// The `method` label of a request: one of HTTP's registered methods, or `other`. Any token is
/// a valid method on the wire, and every label value is a series kept for the process's life,
/// so an unauthenticated client must not be able to mint them (nor a 20 KB one).
pub fn method_label(method: &hyper::Method) -> &'static str {
    use hyper::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Colour codes only for a person watching a terminal (<https://no-color.org>: any non-empty
/// `NO_COLOR` turns them off).
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
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
        "Redis operations that failed, by kind: oom, loading, busy, readonly, masterdown, \
         writes_stopped, cluster, connection, timeout (each answered 503, retry) or other"
    );
    metrics::describe_counter!(
        "calmony_rate_limit_uncharged_total",
        "Requests let through without charging their key's rate limit because Redis refused \
         the write while serving reads (reason: oom, readonly, writes_stopped)"
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
    metrics::describe_counter!(
        "calmony_actor_restarts_total",
        "Actor restarts after a panic or a failed start, by actor"
    );
    // Counters appear in /metrics from the start, not only after their first increment.
    for kind in calmony_actors::store::Unavailability::ALL {
        metrics::counter!("calmony_redis_errors_total", "kind" => kind.label()).absolute(0);
    }
    metrics::counter!("calmony_redis_errors_total", "kind" => "other").absolute(0);
    metrics::counter!("calmony_rate_limited_total").absolute(0);
    metrics::counter!("calmony_idempotent_replays_total").absolute(0);
    for actor in calmony_actors::system::faults::ACTORS {
        metrics::counter!("calmony_actor_restarts_total", "actor" => *actor).absolute(0);
    }
}

#[cfg(test)]
mod tests {
    use super::method_label;
    use hyper::Method;

    #[test]
    fn only_known_methods_become_labels() {
        let long = "X".repeat(20_000);
        for (method, label) in [
            ("GET", "GET"),
            ("POST", "POST"),
            ("DELETE", "DELETE"),
            ("PATCH", "PATCH"),
            ("HEAD", "HEAD"),
            ("OPTIONS", "OPTIONS"),
            ("get", "other"),
            ("PURGE", "other"),
            ("BREW", "other"),
            (long.as_str(), "other"),
        ] {
            let m = Method::from_bytes(method.as_bytes()).expect("a token");
            assert_eq!(
                method_label(&m),
                label,
                "{}",
                &method[..method.len().min(10)]
            );
        }
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let cases = [
            (true, None, true),
            (true, Some(""), true),
            (true, Some("1"), false),
            (false, None, false),
            (false, Some("1"), false),
        ];
        for (terminal, no_color, want) in cases {
            assert_eq!(
                super::colour(terminal, no_color.map(Into::into)),
                want,
                "{terminal} {no_color:?}"
            );
        }
    }
}
