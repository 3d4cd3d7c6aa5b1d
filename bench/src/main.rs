//! `calmony-bench`: the figures a merchant asks for, measured against a real daemon.
//!
//! It starts its own `redis-server` (AOF, `appendfsync` as asked) and the release
//! `calmony-payd` on free ports, or targets a running daemon (`--url` and `--key`), then runs
//! one named scenario closed-loop (saturation: `--concurrency` workers back to back) or at a
//! constant arrival rate (`--rate` per second, latency measured from each request's scheduled
//! start, so a slow daemon cannot hide queueing). It reports throughput, p50/p90/p99/p99.9,
//! errors, the daemon's peak resident memory and CPU, and Redis commands per operation, as a
//! table and as JSON.
//!
//! - [`args`]: the command line.
//! - [`env`]: Redis and the daemon as child processes, and the daemon's resource use.
//! - [`http`]: the client, kept-alive HTTP/1.1 connections straight on hyper.
//! - [`load`]: the two load shapes and the statistics.
//! - [`scenarios`]: checkout, confirm, read, webhooks, renewals, crash.

mod args;
mod env;
mod http;
mod load;
mod scenarios;

#[path = "../../tests/harness/receiver.rs"]
#[allow(dead_code)]
mod receiver;

use std::time::Duration;

use clap::Parser;

use args::Args;

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("calmony-bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("calmony-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    if args.url.is_some() && !args.redis_config.is_empty() {
        return Err(
            "--redis-config applies only to the Redis the tool starts, not to --url".into(),
        );
    }
    for setting in &args.redis_config {
        println!("redis config {setting}");
    }
    if args.versus.is_some() {
        return compare(args).await;
    }
    let report = once(&args).await?;
    report.print();
    let j = report.json();
    if let Some(path) = &args.json {
        std::fs::write(path, j.to_string()).map_err(|e| format!("{path}: {e}"))?;
    }
    passed(j).map(|_| ())
}

/// One run on its own Redis and daemon (or against `--url`).
async fn once(args: &Args) -> Result<scenarios::Report, String> {
    let mut env = env::Env::up(args).await?;
    let report = scenarios::run(args, &mut env).await;
    if report.is_err() {
        // What the daemon said before the run failed, while its log still exists.
        env.print_log_tail(30);
    }
    env.down();
    tokio::time::sleep(Duration::from_millis(10)).await;
    report
}

/// The report, or why the run failed whatever its speed (see [`failure`]).
fn passed(j: serde_json::Value) -> Result<serde_json::Value, String> {
    match failure(&j) {
        Some(why) => Err(why),
        None => Ok(j),
    }
}

/// A run's headline figure (per second; at a constant arrival rate, the p99 latency in ms)
/// and, for load scenarios, the daemon's CPU per operation in µs.
fn headline(args: &Args, j: &serde_json::Value) -> (f64, Option<f64>) {
    let rate = match args.scenario.as_str() {
        "webhooks" => j["drain/s"].as_f64().or(j["deliveries/s"].as_f64()),
        "renewals" => j["renewals/s"].as_f64(),
        _ => j["load"]["throughput_per_s"].as_f64(),
    }
    .unwrap_or(0.0);
    let cpu = j["daemon_cpu_cores"]
        .as_f64()
        .filter(|_| j.get("load").is_some() && rate > 0.0)
        .map(|cores| cores / rate * 1e6);
    match args.rate {
        Some(_) => (j["load"]["p99_ms"].as_f64().unwrap_or(0.0), cpu),
        None => (rate, cpu),
    }
}

/// `--versus`: interleaved runs of two daemon binaries, then both series and their means.
async fn compare(args: Args) -> Result<(), String> {
    if args.url.is_some() || args.scenario == "crash" {
        return Err("--versus starts its own daemons and does not run the crash drill".into());
    }
    let a = Args {
        versus: None,
        ..args.clone()
    };
    let b = Args {
        daemon: args.versus.clone(),
        versus: None,
        ..args.clone()
    };
    let label = |x: &Args| {
        x.daemon
            .clone()
            .unwrap_or_else(|| "(default daemon)".into())
    };
    println!("a            {}", label(&a));
    println!("b            {}", label(&b));
    let unit = match (args.rate, args.scenario.as_str()) {
        (Some(_), _) => "ms p99",
        (None, "webhooks") => "deliveries/s (drain)",
        (None, _) => "/s",
    };
    // At a constant arrival rate the figure is a latency: lower is better.
    let better = |x: f64, y: f64| if args.rate.is_some() { y < x } else { y > x };
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds.max(1) {
        let ja = passed(once(&a).await?.json())?;
        let jb = passed(once(&b).await?.json())?;
        let (ra, rb) = (headline(&args, &ja), headline(&args, &jb));
        let cpu = |c: Option<f64>, j: &serde_json::Value| {
            let daemon = c.map(|c| format!("{c:.0}")).unwrap_or_else(|| "-".into());
            match j["redis_main_cpu_us_per_op"].as_f64() {
                Some(r) => format!(" ({daemon} + redis {r:.0} µs CPU/op)"),
                None => c
                    .map(|_| format!(" ({daemon} µs CPU/op)"))
                    .unwrap_or_default(),
            }
        };
        println!(
            "round {round:<6} a {:.1}{}   b {:.1}{}",
            ra.0,
            cpu(ra.1, &ja),
            rb.0,
            cpu(rb.1, &jb)
        );
        sa.push(ra);
        sb.push(rb);
    }
    let mean = |s: &[(f64, Option<f64>)]| s.iter().map(|x| x.0).sum::<f64>() / s.len() as f64;
    let (ma, mb) = (mean(&sa), mean(&sb));
    let wins = sa.iter().zip(&sb).filter(|(x, y)| better(x.0, y.0)).count();
    println!(
        "mean         a {ma:.1} {unit}   b {mb:.1} {unit}   b/a {:.3} (b better in {wins} of {} rounds)",
        mb / ma.max(f64::MIN_POSITIVE),
        sa.len()
    );
    Ok(())
}

/// What makes a run fail, whatever its speed: a lost or doubled payment, a request that
/// errored, a webhook event not delivered exactly once, a due subscription not renewed.
fn failure(j: &serde_json::Value) -> Option<String> {
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    if n(&j["lost"]) > 0 || n(&j["doubled"]) > 0 {
        return Some(format!(
            "{} payments lost, {} doubled",
            n(&j["lost"]),
            n(&j["doubled"])
        ));
    }
    if n(&j["load"]["errors"]) > 0 {
        return Some(format!(
            "{} requests failed: {}",
            n(&j["load"]["errors"]),
            j["load"]["first_error"]
        ));
    }
    if j.get("events").is_some() && (j["unique"] != j["events"] || j["delivered"] != j["events"]) {
        return Some(format!(
            "{} events, {} delivered, {} unique",
            j["events"], j["delivered"], j["unique"]
        ));
    }
    if j.get("due").is_some() && j["renewed"] != j["due"] {
        return Some(format!("{} due, {} renewed", j["due"], j["renewed"]));
    }
    None
}
