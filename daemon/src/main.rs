//! `calmony-payd`: the Calmony Pay daemon and its admin commands.
//!
//! - [`cli`]: the command line (`serve`, `keys create|list|revoke`).
//! - [`private_file`]: files only the daemon's user may read (first key, registry entries).
//! - [`registry`]: where running daemons keep their stores, for the admin commands.
//! - [`runtime`]: start-up: config, the managed Redis, the store, the first-start key.
//! - [`edge`]: the hyper HTTP edge: routing, auth, rate limit, bodies, idempotency, errors.
//! - [`api`]: one handler module per resource under `/v1`.
//! - [`pages`]: HTML for customers' browsers (3-D Secure).
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`state`]: what every handler shares (config, store, services, sandbox).
//! - [`response`]: the HTTP answers every layer builds (JSON, errors, PDF, headers).
//! - [`telemetry`]: logs and Prometheus metrics.
//! - [`systemd`]: `sd_notify` READY, STOPPING and the watchdog.

/// Many small, short-lived allocations per request (JSON, form fields, Redis replies), often
/// freed on another thread than the one that made them (the edge, the actors and the Redis
/// connections run on different threads): jemalloc serves them with less CPU than glibc's
/// malloc or mimalloc, and with a smaller footprint.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod api;
mod cli;
mod edge;
mod inspect;
mod openapi;
mod ops;
mod pages;
mod private_file;
mod registry;
mod response;
mod runtime;
mod state;
mod systemd;
mod telemetry;

fn main() -> std::process::ExitCode {
    cli::main()
}
