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
    /// Projects and the business details payers see (pages, invoices, PDFs).
    #[command(subcommand)]
    Projects(ProjectsCommand),
    /// Move the daemons' clock (only daemons with clock.controllable follow it).
    #[command(subcommand)]
    Clock(ClockCommand),
    /// Webhook operations.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Dashboard users (sign in at /dashboard).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Settlement reconciliation: what reached the Griffin account against what was expected.
    #[command(subcommand)]
    Reconcile(ReconcileCommand),
    /// Print a stored record's JSON (records are kept packed; see the README's keyspace),
    /// e.g. `calmony-payd record 'cp:{prj_…}:test:obj:pi_…' | jq .status`.
    Record {
        /// The record's key, `cp:{<project>}:<mode>:obj:<id>` (an event's too, though events
        /// are entries of `…:events:log`), or a sandbox transaction's, `cp:sandbox:txn:<xref>`.
        key: String,
    },
    /// Print one object whole, found by its id in any project and mode or read at a key: its
    /// plain fields, its JSON (pretty) and, for a payment intent, its events,
    /// e.g. `calmony-payd inspect pi_…`.
    Inspect {
        /// An object's id (`pi_…`, `cus_…`, `evt_…`, …) or a key
        /// (`cp:{<project>}:<mode>:obj:<id>`).
        target: String,
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
enum ReconcileCommand {
    /// Each batch (a day's card takings, a Pay by Bank payment) with what it expected and what
    /// arrived, and every credit nobody expected. Exits 1 when anything does not match.
    Report {
        #[arg(long, default_value = "test", value_parser = ["test", "live"])]
        mode: String,
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
        /// Batches closing on or after this day (`YYYY-MM-DD`, UTC); default: all.
        #[arg(long)]
        from: Option<String>,
        /// Batches closing on or before this day (`YYYY-MM-DD`, UTC); default: all.
        #[arg(long)]
        to: Option<String>,
    },
    /// Write an `adjustment` balance transaction (the only way a discrepancy changes a
    /// balance), optionally accounting for an unexpected credit, which then leaves the report.
    Adjust {
        #[arg(long)]
        project: String,
        #[arg(long, default_value = "test", value_parser = ["test", "live"])]
        mode: String,
        /// Pence; negative takes money off the balance.
        #[arg(long, allow_hyphen_values = true)]
        amount: i64,
        #[arg(long)]
        reason: String,
        /// The unexpected credit's transaction URL, as the report lists it.
        #[arg(long)]
        credit: Option<String>,
        /// Run again under the same key, the command answers the first run's transaction
        /// instead of adjusting twice.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum WebhooksCommand {
    /// Print the parked (dead-letter) deliveries.
    DeadLetters,
    /// Put every parked delivery back in the delivery queue.
    ReplayDead,
}

#[derive(Debug, Subcommand)]
enum ProjectsCommand {
    /// Create a project with its business details (a project is also made by its first key).
    Create {
        name: String,
        #[command(flatten)]
        details: Details,
    },
    /// Change a project's business details: only the options given change; "" clears one.
    Update {
        name: String,
        #[command(flatten)]
        details: Details,
    },
    /// Print a project's business details.
    Show { name: String },
}

/// What the payer sees of the merchant, on the hosted pages and on invoices.
#[derive(Debug, clap::Args)]
struct Details {
    /// The trading name payers see, e.g. "Harbour Lettings Ltd".
    #[arg(long)]
    display_name: Option<String>,
    /// Where payers write with questions.
    #[arg(long)]
    support_email: Option<String>,
    /// The merchant's help page (http or https).
    #[arg(long)]
    support_url: Option<String>,
    /// Postal address, lines separated by commas: "12 Quay Street, Bristol, BS1 4XX".
    #[arg(long)]
    address: Option<String>,
    /// VAT registration number, printed on invoices, e.g. "GB 123 4567 89".
    #[arg(long)]
    vat_number: Option<String>,
    /// Brand colour as hex, e.g. "#1a5fb4" (buttons and accents).
    #[arg(long)]
    brand_color: Option<String>,
    /// Logo image URL; https only.
    #[arg(long)]
    logo_url: Option<String>,
}

impl From<Details> for calmony_protocol::business::ProfileChange {
    fn from(d: Details) -> Self {
        Self {
            display_name: d.display_name,
            support_email: d.support_email,
            support_url: d.support_url,
            address: d.address,
            vat_number: d.vat_number,
            brand_color: d.brand_color,
            logo_url: d.logo_url,
        }
    }
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create a dashboard user with a role in a project (made if it does not exist). The
    /// password is read from the first line of standard input (`--password-stdin` style), so
    /// it never shows in the process list or the shell history.
    Create {
        #[arg(long)]
        email: String,
        /// The project's name, as `keys create --project` takes it.
        #[arg(long)]
        project: String,
        #[arg(long, default_value = "owner", value_parser = ["owner", "admin", "viewer"])]
        role: String,
    },
    /// Give an existing user a role in another project.
    Grant {
        #[arg(long)]
        email: String,
        #[arg(long)]
        project: String,
        #[arg(long, value_parser = ["owner", "admin", "viewer"])]
        role: String,
    },
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
        Command::Projects(p) => rt.block_on(projects(config, p)),
        Command::Clock(c) => rt.block_on(clock(config, c)),
        Command::Webhooks(w) => rt.block_on(webhooks(config, w)),
        Command::Users(u) => rt.block_on(users(config, u)),
        Command::Reconcile(r) => match rt.block_on(reconcile(config, r)) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Record { key } => rt.block_on(record(config, key)),
        Command::Inspect { target } => rt.block_on(inspect(config, target)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("calmony-payd: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn users(config: Config, cmd: UsersCommand) -> Result<(), crate::runtime::StartError> {
    use calmony_actors::dashboard::{access::Role, accounts};
    let usage = crate::runtime::StartError::Usage;
    let password = match &cmd {
        UsersCommand::Create { .. } => {
            eprintln!("password (one line on standard input):");
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| usage(format!("cannot read the password: {e}")))?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
        UsersCommand::Grant { .. } => String::new(),
    };
    let (store, managed) = crate::runtime::open_store_for_command(&config, false).await?;
    let result = async {
        match cmd {
            UsersCommand::Create {
                email,
                project,
                role,
            } => {
                let role = Role::parse(&role).unwrap_or(Role::Viewer);
                let p = api_keys::ensure_project(&store, &project).await?;
                let email = accounts::create_user(&store, &email, &password, &p.id, role).await?;
                eprintln!(
                    "created dashboard user {email}, {} of project {} ({}); sign in at /dashboard",
                    role.as_str(),
                    p.name,
                    p.id
                );
                Ok(())
            }
            UsersCommand::Grant {
                email,
                project,
                role,
            } => {
                let role = Role::parse(&role).unwrap_or(Role::Viewer);
                let p = calmony_actors::projects::find(&store, &project)
                    .await?
                    .ok_or_else(|| accounts::AccountError::Unknown(project.clone()))?;
                accounts::grant(&store, &email, &p.id, role).await?;
                eprintln!("{email} is now {} of project {}", role.as_str(), p.name);
                Ok(())
            }
        }
    }
    .await;
    if let Some(m) = managed {
        m.stop().await;
    }
    result.map_err(|e: accounts::AccountError| match e {
        accounts::AccountError::Store(e) => e.into(),
        other => usage(other.to_string()),
    })
}

async fn keys(config: Config, cmd: KeysCommand) -> Result<(), crate::runtime::StartError> {
    let reads = !matches!(cmd, KeysCommand::Create { .. });
    let (store, managed) = crate::runtime::open_store_for_command(&config, reads).await?;
    let result = run_keys(&store, cmd).await;
    if let Some(m) = managed {
        m.stop().await;
    }
    result
}

async fn projects(config: Config, cmd: ProjectsCommand) -> Result<(), crate::runtime::StartError> {
    use calmony_actors::projects::{self, ProjectError};
    let reads = !matches!(cmd, ProjectsCommand::Create { .. });
    let (store, managed) = crate::runtime::open_store_for_command(&config, reads).await?;
    let result = match cmd {
        ProjectsCommand::Create { name, details } => {
            projects::create(&store, &name, &details.into()).await
        }
        ProjectsCommand::Update { name, details } => {
            let change: calmony_protocol::business::ProfileChange = details.into();
            if change.is_empty() {
                eprintln!("nothing to change: give at least one of the options (see --help)");
            }
            projects::update(&store, &name, &change).await
        }
        ProjectsCommand::Show { name } => match projects::find(&store, &name).await {
            Ok(Some(p)) => projects::merchant(&store, &p.id)
                .await
                .map_err(ProjectError::from),
            Ok(None) => Err(ProjectError::Unknown(name)),
            Err(e) => Err(e.into()),
        },
    };
    if let Some(m) = managed {
        m.stop().await;
    }
    match result {
        Ok(m) => {
            print!("{}", show_project(&m));
            Ok(())
        }
        Err(ProjectError::Store(e)) => Err(e.into()),
        // Named as its option, as an API answer names its parameter.
        Err(ProjectError::Invalid(e)) => Err(crate::runtime::StartError::Usage(format!(
            "--{}: {}",
            e.field.replace('_', "-"),
            e.message
        ))),
        Err(e) => Err(crate::runtime::StartError::Usage(e.to_string())),
    }
}

/// A project's details, one `field: value` a line (empty fields say so: payers will not see
/// them).
fn show_project(m: &calmony_actors::projects::Merchant) -> String {
    let p = &m.profile;
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not set)".into());
    let mut rows = vec![
        vec![
            "project".to_string(),
            format!("{} ({})", m.project_name, m.project_id),
        ],
        vec![
            "display_name".into(),
            p.display_name.clone().unwrap_or_else(|| {
                "(not set: pages name no merchant; set it with --display-name)".into()
            }),
        ],
        vec!["support_email".into(), opt(&p.support_email)],
        vec!["support_url".into(), opt(&p.support_url)],
        vec![
            "address".into(),
            if p.address.is_empty() {
                "(not set)".into()
            } else {
                p.address.join(", ")
            },
        ],
        vec!["vat_number".into(), opt(&p.vat_number)],
        vec!["brand_color".into(), opt(&p.brand_color)],
        vec!["logo_url".into(), opt(&p.logo_url)],
    ];
    for r in &mut rows {
        r[0].push(':');
    }
    table(&rows)
}

async fn clock(config: Config, cmd: ClockCommand) -> Result<(), crate::runtime::StartError> {
    let (store, managed) = crate::runtime::open_store_for_command(&config, true).await?;
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

/// `Ok(false)`: the report found something that does not match.
async fn reconcile(
    mut config: Config,
    cmd: ReconcileCommand,
) -> Result<bool, crate::runtime::StartError> {
    use crate::runtime::StartError;
    use calmony_actors::money::{Settlement, follower::Follower, report};
    let (store, managed) = crate::runtime::open_store_for_command(&config, true).await?;
    crate::runtime::griffin_sandbox_key(&mut config, &store).await?;
    let griffin = calmony_actors::gateway::griffin::Griffin::from_config(&config)
        .map_err(StartError::Usage)?;
    let follower = Follower {
        store,
        settlement: std::sync::Arc::new(Settlement::from_config(&config)),
        griffin: std::sync::Arc::new(griffin),
    };
    let mode_of =
        |m: &str| calmony_protocol::Mode::parse(m).unwrap_or(calmony_protocol::Mode::Test);
    let result = match cmd {
        ReconcileCommand::Report {
            mode,
            format,
            from,
            to,
        } => {
            let day = |d: Option<String>, end: bool| -> Result<i64, StartError> {
                match d {
                    None if end => Ok(i64::MAX / 2_000),
                    None => Ok(0),
                    Some(text) => parse_day(&text)
                        .map(|day| day * 86_400 + if end { 86_399 } else { 0 })
                        .ok_or_else(|| StartError::Usage(format!("{text} is not YYYY-MM-DD"))),
                }
            };
            let (from, to) = (day(from, false)?, day(to, true)?);
            match report::build(&follower, mode_of(&mode), from, to).await {
                Ok(r) => {
                    if format == "json" {
                        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
                    } else {
                        print!("{}", report::render_text(&r));
                    }
                    let fine = ["matched", "awaiting_credit", "net_debit", "unverified"];
                    Ok(r.counts
                        .iter()
                        .all(|(k, n)| fine.contains(&k.as_str()) || *n == 0))
                }
                Err(e) => Err(StartError::Usage(e.to_string())),
            }
        }
        ReconcileCommand::Adjust {
            project,
            mode,
            amount,
            reason,
            credit,
            idempotency_key,
        } => {
            // A project by its id, or by its name as `keys create --project` takes it.
            let project = match calmony_actors::projects::find(&follower.store, &project).await {
                Ok(Some(p)) => p.id,
                _ => project,
            };
            let scope = calmony_actors::store::Scope::new(project, mode_of(&mode));
            match report::adjust(
                &follower,
                &scope,
                amount,
                &reason,
                credit.as_deref(),
                idempotency_key.as_deref(),
            )
            .await
            {
                Ok(txn) => {
                    println!("{txn}");
                    Ok(true)
                }
                Err(e) => Err(StartError::Usage(e.to_string())),
            }
        }
    };
    if let Some(m) = managed {
        m.stop().await;
    }
    result
}

/// `YYYY-MM-DD` as days since the epoch.
fn parse_day(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, '-').map(str::parse::<i64>);
    let (y, m, d) = (
        parts.next()?.ok()?,
        parts.next()?.ok()?,
        parts.next()?.ok()?,
    );
    ((1..=12).contains(&m) && (1..=31).contains(&d))
        .then(|| calmony_protocol::billing::days_from_civil(y, m, d))
}

async fn webhooks(config: Config, cmd: WebhooksCommand) -> Result<(), crate::runtime::StartError> {
    let (store, managed) = crate::runtime::open_store_for_command(&config, true).await?;
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
    let (store, managed) = crate::runtime::open_store_for_command(&config, true).await?;
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

async fn inspect(config: Config, target: String) -> Result<(), crate::runtime::StartError> {
    use crate::inspect::InspectError;
    let (store, managed) = crate::runtime::open_store_for_command(&config, true).await?;
    let found = crate::inspect::inspect(&store, &target).await;
    if let Some(m) = managed {
        m.stop().await;
    }
    match found {
        Ok(found) => {
            print!("{}", crate::inspect::render(&found));
            Ok(())
        }
        Err(InspectError::Store(e)) => Err(e.into()),
        Err(e) => Err(crate::runtime::StartError::Usage(e.to_string())),
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
            let mut rows = vec![
                [
                    "ID",
                    "PREFIX",
                    "MODE",
                    "PROJECT",
                    "CREATED",
                    "LAST USED",
                    "STATUS",
                ]
                .map(String::from)
                .to_vec(),
            ];
            for k in api_keys::list_keys(store).await? {
                rows.push(vec![
                    k.id,
                    k.prefix,
                    k.mode.to_string(),
                    k.project_name,
                    fmt_time(Some(k.created)),
                    fmt_time(k.last_used),
                    if k.revoked { "revoked" } else { "active" }.into(),
                ]);
            }
            print!("{}", table(&rows));
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

/// Rows as columns padded to their widest cell, two spaces apart. Widths are what a terminal
/// shows (`…` is one column, `東` two), not bytes or chars, so a project named `Łódź Café`
/// or a key prefix's ellipsis keeps the columns after it aligned.
fn table(rows: &[Vec<String>]) -> String {
    use unicode_width::UnicodeWidthStr;
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.width())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i].saturating_sub(cell.width()) + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `2026-11-21 11:42:09` in UTC.
fn fmt_time(t: Option<i64>) -> String {
    t.map_or("never".into(), |t| {
        calmony_actors::clock::UtcTime::from_unix(t).timestamp()
    })
}

#[cfg(test)]
mod tests {
    /// Each column starts at the same terminal column on every line, whatever the widths of
    /// the characters before it.
    #[test]
    fn table_columns_line_up_by_display_width() {
        use unicode_width::UnicodeWidthStr;
        let rows: Vec<Vec<String>> = [
            ["ID", "PREFIX", "PROJECT", "STATUS"],
            ["key_1", "sk_test_Q2x8…", "Łódź Café", "active"],
            ["key_22", "sk_live_abcd…", "東京", "revoked"],
            ["key_333", "short", "default", "active"],
        ]
        .iter()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
        let text = super::table(&rows);
        let starts = |line: &str, cell: &str| line[..line.find(cell).expect(cell)].width();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        for col in 1..4 {
            let at: Vec<usize> = lines
                .iter()
                .zip(&rows)
                .map(|(l, r)| starts(l, &r[col]))
                .collect();
            assert!(
                at.iter().all(|&a| a == at[0]),
                "column {col}: {at:?}\n{text}"
            );
        }
        assert_eq!(lines[0], "ID       PREFIX         PROJECT    STATUS");
    }

    #[test]
    fn formats_utc_times() {
        assert_eq!(super::fmt_time(Some(0)), "1970-01-01 00:00:00");
        assert_eq!(super::fmt_time(Some(1_795_261_329)), "2026-11-21 11:42:09");
        assert_eq!(super::fmt_time(Some(951_868_799)), "2000-02-29 23:59:59");
        assert_eq!(super::fmt_time(None), "never");
    }
}
