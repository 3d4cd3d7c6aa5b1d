//! The command line. `serve` (the default) runs the daemon; `keys` manages API keys against
//! the same Redis the daemon uses (the managed one is started for the command if it is not
//! already running).

use std::path::PathBuf;
use std::process::ExitCode;

use calmony_actors::api_keys;
use calmony_config::Config;
use calmony_protocol::Mode;
use clap::{Parser, Subcommand};

/// Exit code for a configuration the daemon refuses.
pub const EXIT_CONFIG: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "calmony-payd",
    version,
    about = "Calmony Pay: a Stripe-compatible payment daemon"
)]
struct Cli {
    /// A TOML config file (see scripts/calmony.example.toml); CALMONY_* variables override it.
    #[arg(long, global = true, env = "CALMONY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Serve,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Move the daemons' clock (only daemons with clock.controllable follow it).
    #[command(subcommand)]
    Clock(ClockCommand),
    /// Webhook operations.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Print a stored record's JSON (records are kept packed; see the README's keyspace),
    /// e.g. `calmony-payd record 'cp:{prj_…}:test:obj:pi_…' | jq .status`.
    Record {
        /// The record's key, `cp:{<project>}:<mode>:obj:<id>` (an event's too, though events
        /// are entries of `…:events:log`), or a sandbox transaction's, `cp:sandbox:txn:<xref>`.
        key: String,
    },
}

#[derive(Debug, Subcommand)]
enum ClockCommand {
    /// Move time forward by this many seconds (cumulative); prints the new offset.
    Advance {
        #[arg(long)]
        seconds: i64,
    },
    /// Back to real time.
    Reset,
}

#[derive(Debug, Subcommand)]
enum WebhooksCommand {
    /// Print the parked (dead-letter) deliveries.
    DeadLetters,
    /// Put every parked delivery back in the delivery queue.
    ReplayDead,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key (and its project if needed); prints the raw key alone on stdout, once.
    Create {
        #[arg(long)]
        project: String,
        #[arg(long, value_parser = ["test", "live"])]
        mode: String,
    },
    /// List keys: id, prefix, mode, project, created, last used, status.
    List,
    /// Revoke a key, named by its id (key_…) or the raw key.
    Revoke { key: String },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("calmony-payd: invalid configuration: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    crate::telemetry::init_logging(&config);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("calmony-payd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => rt.block_on(crate::runtime::serve(config)),
        Command::Keys(k) => rt.block_on(keys(config, k)),
        Command::Clock(c) => rt.block_on(clock(config, c)),
        Command::Webhooks(w) => rt.block_on(webhooks(config, w)),
        Command::Record { key } => rt.block_on(record(config, key)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("calmony-payd: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn keys(config: Config, cmd: KeysCommand) -> Result<(), crate::runtime::StartError> {
    let (store, managed) = crate::runtime::open_store(&config, true).await?;
    let result = run_keys(&store, cmd).await;
    if let Some(m) = managed {
        m.stop().await;
    }
    result
}

async fn clock(config: Config, cmd: ClockCommand) -> Result<(), crate::runtime::StartError> {
    let (store, managed) = crate::runtime::open_store(&config, true).await?;
    let mut c = store.conn();
    let key = calmony_actors::clock::OFFSET_KEY;
    let result: Result<i64, _> = match cmd {
        ClockCommand::Advance { seconds } => {
            store
                .run(async move {
                    redis::cmd("INCRBY")
                        .arg(key)
                        .arg(seconds * 1000)
                        .query_async(&mut c)
                        .await
                })
                .await
        }
        ClockCommand::Reset => store
            .run(async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(0)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
            .map(|_| 0),
    };
    if let Some(m) = managed {
        m.stop().await;
    }
    println!("{}", result? / 1000);
    Ok(())
}

async fn webhooks(config: Config, cmd: WebhooksCommand) -> Result<(), crate::runtime::StartError> {
    let (store, managed) = crate::runtime::open_store(&config, true).await?;
    let result = match cmd {
        WebhooksCommand::DeadLetters => {
            let mut c = store.conn();
            let entries: Result<Vec<String>, _> = store
                .run(async move {
                    redis::cmd("LRANGE")
                        .arg(calmony_actors::webhooks::DEAD_LETTERS)
                        .arg(0)
                        .arg(-1)
                        .query_async(&mut c)
                        .await
                })
                .await;
            entries.map(|e| {
                for line in e {
                    println!("{line}");
                }
            })
        }
        WebhooksCommand::ReplayDead => calmony_actors::webhooks::replay_dead(&store)
            .await
            .map(|n| eprintln!("replayed {n} deliveries")),
    };
    if let Some(m) = managed {
        m.stop().await;
    }
    result.map_err(Into::into)
}

/// `cp:{<project>}:<mode>:obj:evt_…` -> the scope and the event id.
fn event_scope(key: &str) -> Option<(calmony_actors::store::Scope, &str)> {
    let (scope, rest) = calmony_actors::store::Scope::of_key(key)?;
    let id = rest.strip_prefix("obj:")?;
    id.starts_with("evt_").then_some((scope, id))
}

async fn record(config: Config, key: String) -> Result<(), crate::runtime::StartError> {
    let (store, managed) = crate::runtime::open_store(&config, true).await?;
    let found = match (store.json_at(&key).await, event_scope(&key)) {
        // An event of the log has no record key: the key names its scope and id.
        (Ok(None), Some((scope, id))) => store
            .event(&scope, id)
            .await
            .map(|e| e.map(|(json, _)| json)),
        (found, _) => found,
    };
    if let Some(m) = managed {
        m.stop().await;
    }
    match found? {
        Some(json) => {
            println!("{json}");
            Ok(())
        }
        None => Err(crate::runtime::StartError::Usage(format!(
            "no record at {key}"
        ))),
    }
}

async fn run_keys(
    store: &calmony_actors::Store,
    cmd: KeysCommand,
) -> Result<(), crate::runtime::StartError> {
    match cmd {
        KeysCommand::Create { project, mode } => {
            let mode = Mode::parse(&mode).unwrap_or(Mode::Test);
            let (raw, info) = api_keys::create_key(store, &project, mode).await?;
            eprintln!(
                "created {} key {} for project {} ({}); it is shown only this once",
                info.mode, info.id, info.project_name, info.project_id
            );
            println!("{}", raw.expose());
        }
        KeysCommand::List => {
            println!(
                "{:<32} {:<14} {:<5} {:<20} {:<20} {:<20} STATUS",
                "ID", "PREFIX", "MODE", "PROJECT", "CREATED", "LAST USED"
            );
            for k in api_keys::list_keys(store).await? {
                println!(
                    "{:<32} {:<14} {:<5} {:<20} {:<20} {:<20} {}",
                    k.id,
                    k.prefix,
                    k.mode,
                    k.project_name,
                    fmt_time(Some(k.created)),
                    fmt_time(k.last_used),
                    if k.revoked { "revoked" } else { "active" }
                );
            }
        }
        KeysCommand::Revoke { key } => match api_keys::revoke(store, &key).await? {
            Some(info) => eprintln!(
                "revoked {} ({}, project {})",
                info.id, info.prefix, info.project_name
            ),
            None => {
                return Err(crate::runtime::StartError::Usage(format!("no key {key:?}")));
            }
        },
    }
    Ok(())
}

/// `2026-11-21 11:42:09` in UTC.
fn fmt_time(t: Option<i64>) -> String {
    t.map_or("never".into(), |t| {
        calmony_actors::clock::UtcTime::from_unix(t).timestamp()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_times() {
        assert_eq!(super::fmt_time(Some(0)), "1970-01-01 00:00:00");
        assert_eq!(super::fmt_time(Some(1_795_261_329)), "2026-11-21 11:42:09");
        assert_eq!(super::fmt_time(Some(951_868_799)), "2000-02-29 23:59:59");
        assert_eq!(super::fmt_time(None), "never");
    }
}
