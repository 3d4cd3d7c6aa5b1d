//! The command line: which scenario, how hard, against which daemon. Every other module reads
//! it, so it sits below them all.

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(name = "calmony-bench", about = "Load scenarios against calmony-payd")]
pub struct Args {
    /// checkout | confirm | read | webhooks | renewals | crash | bank | dashboard
    pub scenario: String,
    /// How long to apply load, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Closed loop: this many workers back to back.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Open loop: this many requests per second instead of a closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Operations for count-based scenarios (webhooks: events; renewals: subscriptions;
    /// dashboard: the payments whose figures fill the store).
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// The managed Redis's appendfsync (everysec or always).
    #[arg(long, default_value = "everysec")]
    pub fsync: String,
    /// Another setting for the Redis the tool starts, as `name value` (repeatable), e.g.
    /// `--redis-config 'auto-aof-rewrite-percentage 0'` to see a run without AOF rewrites.
    #[arg(long = "redis-config", value_name = "NAME VALUE")]
    pub redis_config: Vec<String>,
    /// Target a running daemon instead of starting one.
    #[arg(long)]
    pub url: Option<String>,
    /// API key for --url.
    #[arg(long)]
    pub key: Option<String>,
    /// The daemon binary (default: target/release/calmony-payd next to this one).
    #[arg(long)]
    pub daemon: Option<String>,
    /// Crash scenario: how many SIGKILLs.
    #[arg(long, default_value_t = 20)]
    pub kills: usize,
    /// Write the report as JSON here too.
    #[arg(long)]
    pub json: Option<String>,
    /// A/B: also run this daemon binary, alternating with `--daemon` (or the default) for
    /// `--rounds` rounds, each run on a fresh Redis and daemon, and print both series with
    /// their means. This machine's speed drifts by tens of percent within an hour, so only
    /// interleaved runs compare two builds fairly.
    #[arg(long)]
    pub versus: Option<String>,
    /// A/B: how many rounds (each runs both daemons once).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// `confirm`: send a fresh `Idempotency-Key` with every payment, as the official Stripe
    /// libraries do.
    #[arg(long)]
    pub idempotency_keys: bool,
}
