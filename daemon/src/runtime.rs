//! Start-up and shutdown of the daemon.
//!
//! Order matters: Redis first (the managed one started if no URL is configured, then a
//! connection retried with backoff until it answers), then the first-start key, then the
//! listener, then the supervised actors (`calmony_actors::system`) on their own thread; `READY=1`
//! only once requests can be served. On SIGTERM or SIGINT the listener closes at once,
//! in-flight requests finish (up to `shutdown.grace_seconds`), the actors stop (work they
//! leave pending is resumed from its stream at the next start), the managed Redis is shut
//! down cleanly, and the process exits 0.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use calmony_actors::billing::Billing;
use calmony_actors::checkout::Checkout;
use calmony_actors::gateway::{Gateway, PaymentGateway};
use calmony_actors::payments::{BillingSettings, Payments};
use calmony_actors::store::ManagedRedis;
use calmony_actors::system::clock_follower::ClockFollower;
use calmony_actors::system::periodic;
use calmony_actors::system::{ActorSystem, GatewayClient, Parts};
use calmony_actors::webhooks::Webhooks;
use calmony_actors::{Store, StoreError, api_keys, sealing};
use calmony_config::Config;

use crate::private_file::write_private;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot install the metrics recorder: {0}")]
    Metrics(String),
    #[error("{0}")]
    Usage(String),
    #[error("cannot read or make the sandbox's merchant secret: {0}")]
    SandboxSecret(#[from] calmony_sandbox::SandboxError),
    #[error(transparent)]
    WebhookClient(#[from] calmony_actors::webhooks::reach::ClientError),
    #[error(transparent)]
    Actors(#[from] calmony_actors::system::SystemError),
}

/// The store an admin command (`keys`, `projects`, `record`, ...) opens: the one its settings
/// name if it exists, else the running daemon's, else a new one, said plainly (see
/// [`crate::registry`]). A command that `reads` says so when the store holds no project at all.
pub async fn open_store_for_command(
    config: &Config,
    reads: bool,
) -> Result<(Store, Option<ManagedRedis>), StartError> {
    let store_dir = std::path::absolute(config.data_dir.join("redis"))
        .unwrap_or_else(|_| config.data_dir.join("redis"));
    let choice = crate::registry::choose(
        &config.redis.url,
        config.data_dir != Config::default().data_dir,
        store_dir.exists(),
        crate::registry::running(),
    );
    let timeout = Duration::from_secs(config.redis.connect_timeout_seconds);
    let opened = match choice {
        crate::registry::Choice::Configured => open_store(config, true).await?,
        crate::registry::Choice::Daemon(d) => {
            eprintln!(
                "calmony-payd: no store in {}; using the store of the daemon running as pid {} \
                 on {} (data dir {})",
                store_dir.display(),
                d.pid,
                d.listen,
                d.data_dir.display()
            );
            (Store::connect_with_retry(&d.redis_url, timeout).await, None)
        }
        crate::registry::Choice::Ambiguous(all) => {
            let list: Vec<String> = all
                .iter()
                .map(|d| {
                    format!(
                        "pid {} on {} (data dir {})",
                        d.pid,
                        d.listen,
                        d.data_dir.display()
                    )
                })
                .collect();
            return Err(StartError::Usage(format!(
                "no store in {} and several daemons are running ({}): {}",
                store_dir.display(),
                list.join("; "),
                crate::registry::HOW_TO_POINT
            )));
        }
        crate::registry::Choice::New => {
            let opened = open_store(config, true).await?;
            eprintln!(
                "calmony-payd: there was no store in {} (and no running daemon's to use): \
                 opened a new, empty store there. If your daemon keeps its data elsewhere, {}.",
                store_dir.display(),
                crate::registry::HOW_TO_POINT
            );
            return Ok(opened);
        }
    };
    if reads && let Ok(false) = api_keys::has_projects(&opened.0).await {
        eprintln!(
            "calmony-payd: the store at {} is empty (no projects). If you expected your \
             daemon's keys, {}.",
            if config.redis.url.is_empty() {
                store_dir.display().to_string()
            } else {
                "redis.url".to_string()
            },
            crate::registry::HOW_TO_POINT
        );
    }
    Ok(opened)
}

/// Connect to the configured Redis, or to the managed one (started if `start_managed`).
pub async fn open_store(
    config: &Config,
    start_managed: bool,
) -> Result<(Store, Option<ManagedRedis>), StartError> {
    let timeout = Duration::from_secs(config.redis.connect_timeout_seconds);
    if !config.redis.url.is_empty() {
        return Ok((
            Store::connect_with_retry(&config.redis.url, timeout).await,
            None,
        ));
    }
    let socket = config.data_dir.join("redis").join("redis.sock");
    if let Ok(abs) = socket.canonicalize() {
        let url = format!("redis+unix://{}", abs.display());
        if let Ok(store) = Store::connect(&url, timeout).await {
            // A daemon already runs the managed Redis; share it.
            return Ok((store, None));
        }
    }
    if !start_managed {
        return Err(StartError::Usage(
            "the managed redis-server is not running".into(),
        ));
    }
    let managed = ManagedRedis::start(
        &config.data_dir,
        &config.redis.server_binary,
        &config.redis.appendfsync,
    )
    .await?;
    let store = Store::connect_with_retry(&managed.url(), timeout).await;
    Ok((store, Some(managed)))
}

/// Connections the kernel may hold for the listener before the daemon accepts them. Tokio's
/// `TcpListener::bind` asks for 128, the standard library's figure: a burst of new
/// connections beyond it (a load balancer opening its pool, a client reconnecting hundreds
/// of workers at once) overflowed the queue (`TcpExtListenOverflows`) and each dropped
/// connection waited for the client's one-second SYN retry, the p99.9 of a 512-connection
/// `calmony-bench confirm`. The kernel caps the figure at `net.core.somaxconn` (4096 by
/// default since Linux 5.4).
const LISTEN_BACKLOG: u32 = 4096;

/// The API listener: address reuse as `TcpListener::bind` sets it, and a deeper backlog.
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

pub async fn serve(mut config: Config) -> Result<(), StartError> {
    // First of all: a SIGTERM while starting (the port is open before the edge serves it)
    // stops the daemon cleanly instead of killing it mid-start with the default action.
    let shutdown = shutdown_signal();
    let metrics = crate::telemetry::init_metrics().map_err(StartError::Metrics)?;
    let (key_dir, may_create) = sealing::key_dir(
        &config.secrets.key_dir,
        std::env::var_os("CREDENTIALS_DIRECTORY").map(Into::into),
        &config.data_dir,
    );
    let (store, managed) = open_store(&config, true).await?;
    let ring = sealing::Keyring::load_shared(&key_dir, may_create, &store)
        .await
        .map_err(|e| StartError::Usage(format!("secrets.key_dir: {e}")))?;
    tracing::info!(dir = %key_dir.display(), sealing_key = %ring.current(), "secrets at rest are sealed");
    sealing::install(ring);
    // Once per Redis: records written before lists filtered through indexes join the sets.
    if let Err(e) = store.backfill_filters().await {
        tracing::warn!(error = %e, "records written before list filter indexes are not all indexed yet; the next start tries again");
    }
    if config.needs_installation_test_secret() {
        config.gateway.test.secret = installation_test_secret(&store).await?;
    }
    let griffin_sandbox_key = griffin_sandbox_key(&mut config, &store).await?;
    if config.api.bootstrap_test_key {
        match api_keys::bootstrap(&store).await {
            Ok(Some(raw)) => announce_first_key(&config, raw.expose()),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not create the first test key"),
        }
    }
    // No dashboard user yet: a one-time link to make the first owner, in a private file.
    match calmony_actors::dashboard::accounts::setup_token(&store).await {
        Ok(Some(token)) => announce_setup_link(&config, &token),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not make the dashboard's setup link"),
    }
    let addr = config.listen_addr();
    let listener = listen(addr).map_err(|source| StartError::Listen {
        addr: addr.to_string(),
        source,
    })?;
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(listen = %local, version = env!("CARGO_PKG_VERSION"), "calmony-payd is serving");
    // Where the admin commands find this daemon's store; unregistered when this is dropped.
    let _registered = crate::registry::register(
        &config.data_dir,
        &managed
            .as_ref()
            .map_or_else(|| config.redis.url.clone(), ManagedRedis::url),
        &local,
    );
    calmony_actors::gateway::install_tls_provider();
    // Pay by Bank's banks: keys and certificates are read now, so a live bank missing one
    // stops the start naming it.
    let bank_gateway: Arc<dyn calmony_actors::gateway::BankGateway> = Arc::new(
        calmony_actors::gateway::OpenBanking::from_config(&config)
            .map_err(|e| StartError::Usage(e.to_string()))?,
    );
    let creditor = |c: &calmony_config::CreditorAccount| calmony_actors::gateway::Creditor {
        sort_code: c.sort_code.clone(),
        account_number: c.account_number.clone(),
        name: c.name.clone(),
    };
    let live_creditor = &config.pay_by_bank.live.creditor;
    let bank_rail = calmony_actors::payments::bank_attempt::BankRail {
        gateway: bank_gateway,
        limit: config.pay_by_bank.limit,
        test_creditor: Some(creditor(&config.test_creditor())),
        live_creditor: (!live_creditor.account_number.is_empty()).then(|| creditor(live_creditor)),
    };
    // Griffin, the merchant's settlement account, where Pay by Bank refunds are paid from:
    // test mode's sandbox by default, live mode only with an API key (its signing key read
    // now, so a bad one stops the start).
    let griffin = Arc::new(
        calmony_actors::gateway::griffin::Griffin::from_config(&config)
            .map_err(|e| StartError::Usage(format!("Griffin is misconfigured: {e}")))?,
    );
    // The payments code reaches Cardstream through the CardstreamGateway actor, started
    // below; the client it is handed now is bound to the actor then.
    let accounts = Gateway::from_config(&config);
    let cardstream: Arc<dyn PaymentGateway> = Arc::new(accounts.clone());
    let gateway_client = GatewayClient::unstarted(cardstream.as_ref());
    let payments = Payments::new(
        store.clone(),
        accounts,
        config.instance_name(),
        config.public_base(),
        Duration::from_secs(config.gateway.recovery_after_seconds),
        config.api.idempotency_ttl_hours * 3600,
    )
    .with_billing(BillingSettings {
        dunning_secs: config
            .dunning_hours()
            .into_iter()
            .map(|h| (h * 3600) as i64)
            .collect(),
        final_action: config.billing.final_action.clone(),
        invoice_prefix: config.billing.invoice_prefix.clone(),
        receipts: true,
    })
    .with_gateway(Arc::new(gateway_client.clone()))
    .with_effects(Arc::new(
        calmony_actors::billing::payment_effects::BillingEffects,
    ))
    .with_bank(bank_rail)
    .with_settlement(calmony_actors::money::Settlement::from_config(&config))
    .with_griffin(griffin.clone());
    if let Err(e) = payments.ensure_group().await {
        tracing::warn!(error = %e, "could not create the payment command group yet");
    }
    let sandbox = config.sandbox.enabled.then(|| {
        calmony_sandbox::Sandbox::new(
            store.clone(),
            calmony_sandbox::SandboxConfig {
                merchant_id: config.gateway.test.merchant_id.clone(),
                secret: config.gateway.test.secret.clone(),
                public_base: config.public_base(),
                operator_token: Some(config.sandbox.operator_token.clone())
                    .filter(|t| !t.is_empty()),
                bank: calmony_sandbox::BankSandboxConfig {
                    tpp_public_key_path: Some(&config.sandbox.bank_tpp_public_key_path)
                        .filter(|p| !p.is_empty())
                        .map(std::path::PathBuf::from),
                    client_id: config.sandbox.bank_client_id.clone(),
                    client_secret: config.sandbox.bank_client_secret.clone(),
                    consent_timeout: std::time::Duration::from_secs(
                        config.sandbox.bank_consent_timeout_seconds,
                    ),
                    settle_delay: std::time::Duration::from_millis(
                        config.sandbox.bank_settle_delay_ms,
                    ),
                },
                griffin: calmony_sandbox::GriffinSandboxConfig {
                    payment_delay: std::time::Duration::from_millis(
                        config.sandbox.griffin_payment_delay_ms,
                    ),
                    client_public_key_path: Some(&config.sandbox.griffin_client_public_key_path)
                        .filter(|p| !p.is_empty())
                        .map(std::path::PathBuf::from),
                    // Test mode on the built-in sandbox hears its webhooks with no setup.
                    webhook_destination: config.griffin.test.base_url.is_empty().then(|| {
                        calmony_sandbox::griffin_own_receiver(&config.public_base(), &config.listen)
                    }),
                    api_key: griffin_sandbox_key.clone(),
                    ..calmony_sandbox::GriffinSandboxConfig::default()
                },
                cutoff: config.card_cutoff(false),
                card_fees: config.settlement.card_fees(),
            },
        )
    });
    // The sandbox's daily settlement and the clock follower run as supervised periodic
    // actors, started with the others below.
    let mut periodic: Vec<periodic::Starter> = Vec::new();
    if let Some(sandbox) = &sandbox {
        let (hour, minute) = config.settlement_at();
        periodic.push(periodic::starter(SandboxSettlement(
            sandbox.daily_settlement(hour, minute),
        )));
        periodic.push(periodic::starter(GriffinSandboxDelivery(
            sandbox.griffin_delivery(),
        )));
    }
    // The same Griffin clients serve the webhook inbox (its key fetches) and the settlement
    // follower, which closes batches into payouts and reconciles the credits.
    if griffin.client(calmony_protocol::Mode::Live).is_none() {
        tracing::info!("griffin.live has no api_key: live payouts are created but not reconciled");
    }
    let griffin_inbox = Arc::new(calmony_actors::gateway::griffin::inbox::Inbox::new(
        &griffin,
    ));
    let settlement_nudge = calmony_actors::system::settlement_follower::Nudge::default();
    for mode in [calmony_protocol::Mode::Test, calmony_protocol::Mode::Live] {
        // A webhook's commit wakes the follower, which reads the inbox and the ledger at once.
        let (changed, nudge) = (griffin_inbox.changed(mode), settlement_nudge.clone());
        tokio::spawn(async move {
            loop {
                changed.notified().await;
                nudge.nudge();
            }
        });
    }
    periodic.push(periodic::starter(
        calmony_actors::system::settlement_follower::SettlementFollower {
            follower: calmony_actors::money::follower::Follower {
                store: store.clone(),
                settlement: payments.settlement.clone(),
                griffin: griffin.clone(),
            },
            nudge: settlement_nudge.clone(),
            last_poll: None,
        },
    ));
    let webhooks = Webhooks::new(store.clone(), &config)?;
    let billing = Billing::new(payments.clone(), &config);
    let checkout = Checkout {
        payments: payments.clone(),
        billing: billing.clone(),
    };
    if config.clock.controllable {
        tracing::warn!(
            "clock.controllable is on: `calmony-payd clock advance` can move this daemon's time"
        );
        periodic.push(periodic::starter(ClockFollower {
            store: store.clone(),
        }));
    }
    // The actors start once the listener (and so the sandbox) is up: recovery may call the
    // gateway at once.
    let actors = ActorSystem::start(
        Parts {
            payments: payments.clone(),
            gateway: cardstream,
            gateway_client,
            billing: billing.clone(),
            checkout: checkout.clone(),
            webhooks: webhooks.clone(),
            periodic,
        },
        tokio::runtime::Handle::current(),
    )?;
    // Billing renders invoice PDFs on the InvoiceGenerator's threads from now on.
    billing.pdf.provide(Arc::new(actors.invoices.clone()));
    let state = Arc::new(crate::edge::AppState {
        config: config.clone(),
        store,
        metrics,
        payments: payments.clone(),
        intents: actors.intents.clone(),
        webhooks: webhooks.clone(),
        billing: billing.clone(),
        portal: calmony_actors::billing_portal::Portal {
            billing: billing.clone(),
            checkout: checkout.clone(),
        },
        checkout: checkout.clone(),
        sandbox,
        remembered: Default::default(),
        griffin_inbox,
    });
    crate::systemd::ready();
    crate::systemd::spawn_watchdog();
    spawn_plain_fields_backfill(state.store.clone());
    crate::edge::run(state, listener, shutdown).await;
    webhooks.stop();
    actors.stop().await;
    if let Some(m) = managed {
        m.stop().await;
    }
    tracing::info!("calmony-payd stopped");
    Ok(())
}

/// Give records written before plain fields existed their fields (`store::plain::backfill`),
/// in the background: it reads every record once, and nothing waits for it. A failure is
/// logged and the backfill runs again at the next start.
fn spawn_plain_fields_backfill(store: Store) {
    tokio::spawn(async move {
        match calmony_actors::store::plain::backfill(&store).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "gave older records their plain fields"),
            Err(e) => tracing::warn!(error = %e, "giving older records their plain fields failed"),
        }
    });
}

/// The key the built-in Griffin sandbox answers to: `griffin.test.api_key` when test mode
/// uses the built-in sandbox and the configuration names one, else this installation's own
/// random key (kept in Redis; see [`calmony_sandbox::merchant`]), which test mode's client then
/// uses too. Never a key written in the source: the sandbox is reachable by anyone.
pub async fn griffin_sandbox_key(config: &mut Config, store: &Store) -> Result<String, StartError> {
    let builtin = config.griffin.test.base_url.is_empty();
    if builtin && !config.griffin.test.api_key.is_empty() {
        return Ok(config.griffin.test.api_key.clone());
    }
    let key = calmony_sandbox::merchant::installation_griffin_key(store).await?;
    if builtin {
        config.griffin.test.api_key = key.clone();
    }
    Ok(key)
}

/// The built-in sandbox's merchant secret of this installation (see
/// [`calmony_sandbox::merchant`]), retried for a while: Redis may still be loading its data.
async fn installation_test_secret(store: &Store) -> Result<String, StartError> {
    let mut tries = 0;
    loop {
        match calmony_sandbox::merchant::installation_secret(store).await {
            Ok(secret) => return Ok(secret),
            Err(e) if tries < 50 => {
                tries += 1;
                tracing::warn!(error = %e, "cannot read the sandbox's merchant secret yet; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Where the first start leaves its test key, in the data directory.
const FIRST_KEY_FILE: &str = "first-test-key";

/// The first start's test key goes to a file only the daemon's user may read, never into the
/// log (which reaches journald and log shipping); the log says where it is. On a terminal
/// (`scripts/run`) the key is shown too, as it is not a log there.
fn announce_first_key(config: &Config, raw: &str) {
    let path = config.data_dir.join(FIRST_KEY_FILE);
    if let Err(e) = write_private(&path, format!("{raw}\n").as_bytes()) {
        tracing::warn!(
            error = %e,
            file = %path.display(),
            "first start: created project `default` but could not keep its test key; make one \
             with `calmony-payd keys create --project default --mode test`"
        );
        return;
    }
    tracing::info!(
        project = "default",
        file = %path.display(),
        "first start: created project `default`; its test key is in this file (mode 0600)"
    );
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let base = format!("http://{}", config.listen);
        eprintln!(
            "\n  Your test API key (kept in {}): {raw}\n\n  Try it:\n    \
             curl -s {base}/v1/customers -u {raw}: -d email=alice@example.com -d name=\"Alice Smith\"\n    \
             curl -s {base}/v1/customers -u {raw}:\n",
            path.display()
        );
    }
}

/// Where a start with no dashboard user leaves the one-time link that makes the first owner.
const SETUP_LINK_FILE: &str = "dashboard-setup-link";

/// The setup link goes to a file only the daemon's user may read, never into the log; the log
/// says where it is (as for the first test key).
fn announce_setup_link(config: &Config, token: &str) {
    let path = config.data_dir.join(SETUP_LINK_FILE);
    let link = format!("{}/dashboard/setup/{token}", config.public_base());
    if let Err(e) = write_private(&path, format!("{link}\n").as_bytes()) {
        tracing::warn!(
            error = %e,
            file = %path.display(),
            "no dashboard user yet and the setup link could not be kept; make the first owner \
             with `calmony-payd users create`"
        );
        return;
    }
    tracing::info!(
        file = %path.display(),
        "no dashboard user yet: a one-time link to make the first owner is in this file (mode 0600, for 24 hours)"
    );
}

/// The sandbox's daily settlement as a periodic actor's pass: checked every second, it
/// settles once a day at `sandbox.settlement_at` (see [`calmony_sandbox::DailySettlement`]).
#[derive(Clone)]
struct SandboxSettlement(calmony_sandbox::DailySettlement);

impl periodic::Pass for SandboxSettlement {
    const NAME: &'static str = "sandbox_settlement";
    const EVERY: Duration = Duration::from_secs(1);

    fn run(self) -> Pin<Box<dyn Future<Output = Self> + Send>> {
        Box::pin(async move { SandboxSettlement(self.0.pass().await) })
    }
}

/// The Griffin sandbox's webhook delivery: a pass sends what changed since the last.
#[derive(Clone)]
struct GriffinSandboxDelivery(calmony_sandbox::GriffinDelivery);

impl periodic::Pass for GriffinSandboxDelivery {
    const NAME: &'static str = "griffin_sandbox_delivery";
    const EVERY: Duration = Duration::from_millis(250);

    fn run(self) -> Pin<Box<dyn Future<Output = Self> + Send>> {
        Box::pin(async move { GriffinSandboxDelivery(self.0.pass().await) })
    }
}

/// Resolves on SIGTERM or SIGINT, and tells systemd the daemon is stopping.
///
/// The handlers are installed when this is called, not when the future is first polled: a
/// SIGTERM arriving between `READY=1` and the edge's first poll must start a graceful stop,
/// not kill the process with the default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                    _ = int.recv() => tracing::info!("SIGINT: stopping"),
                }
            }
            _ => {
                tracing::error!("cannot install signal handlers; ctrl-c only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        crate::systemd::stopping();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections the daemon has not accepted yet wait in the kernel's queue: with the
    /// default backlog of 128 the connections past it were dropped, and each waited a second
    /// for its SYN to be sent again.
    #[tokio::test]
    async fn a_burst_of_300_connections_is_queued_not_dropped() {
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0))).expect("listen");
        let addr = listener.local_addr().expect("address");
        let mut held = Vec::new();
        for i in 0..300 {
            let connection =
                std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500));
            assert!(
                connection.is_ok(),
                "connection {i} was not queued: {connection:?}"
            );
            held.push(connection);
        }
    }
}
