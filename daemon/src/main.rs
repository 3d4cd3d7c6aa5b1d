//! `calmony-payd`: the Calmony Pay daemon and its admin commands.
//!
//! - [`cli`]: the command line (`serve`, `keys create|list|revoke`).
//! - [`runtime`]: start-up: config, the managed Redis, the store, the first-start key.
//! - [`edge`]: the hyper HTTP edge: routing, auth, rate limit, bodies, idempotency, errors.
//! - [`api`]: one handler module per resource under `/v1`.
//! - [`pages`]: HTML for customers' browsers (3-D Secure).
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`telemetry`]: logs and Prometheus metrics.
//! - [`systemd`]: `sd_notify` READY, STOPPING and the watchdog.

/// Many small, short-lived allocations per request (JSON, form fields, Redis replies):
/// mimalloc serves them with far less CPU than glibc's malloc (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod api;
mod cli;
mod edge;
mod ops;
mod pages;
mod runtime;
mod systemd;
mod telemetry;

fn main() -> std::process::ExitCode {
    cli::main()
}
