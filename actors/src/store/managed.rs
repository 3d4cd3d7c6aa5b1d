//! The managed `redis-server`: with no Redis URL configured, the daemon runs its own, so a
//! newcomer's first command needs nothing else.
//!
//! It listens only on a unix socket under the data dir (no TCP port to collide with, and about
//! half again the throughput of loopback TCP), keeps an AOF there, and is restarted with
//! backoff if it exits. It is asked to die with the daemon (`PR_SET_PDEATHSIG`), so a daemon
//! killed with SIGKILL leaves no orphan holding the data dir; a leftover one from any other
//! cause is found by its pid file and shut down cleanly before a new one starts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use super::error::StoreError;

const CONF: &str = include_str!("../../../scripts/redis.conf");

#[derive(Clone)]
pub struct ManagedRedis {
    dir: PathBuf,
    socket: PathBuf,
    binary: String,
    appendfsync: String,
    child: Arc<Mutex<Option<Child>>>,
    stopping: Arc<AtomicBool>,
}

impl ManagedRedis {
    /// Start `redis-server` under `data_dir/redis` and wait until it answers.
    pub async fn start(
        data_dir: &Path,
        binary: &str,
        appendfsync: &str,
    ) -> Result<Self, StoreError> {
        let dir = data_dir.join("redis");
        std::fs::create_dir_all(&dir)
            .map_err(|e| StoreError::Managed(format!("cannot create {}: {e}", dir.display())))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| StoreError::Managed(format!("cannot resolve {}: {e}", dir.display())))?;
        let socket = dir.join("redis.sock");
        if socket.as_os_str().len() > 100 {
            return Err(StoreError::Managed(format!(
                "the socket path {} is too long for a unix socket; choose a shorter data_dir",
                socket.display()
            )));
        }
        let me = Self {
            socket,
            binary: binary.to_string(),
            appendfsync: appendfsync.to_string(),
            child: Arc::new(Mutex::new(None)),
            stopping: Arc::new(AtomicBool::new(false)),
            dir,
        };
        me.stop_leftover().await;
        me.spawn().await?;
        me.wait_ready(Duration::from_secs(20)).await?;
        tokio::spawn(me.clone().supervise());
        Ok(me)
    }

    /// The URL to connect to it.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    async fn spawn(&self) -> Result<(), StoreError> {
        let conf = self.dir.join("redis.conf");
        std::fs::write(&conf, CONF)
            .map_err(|e| StoreError::Managed(format!("cannot write {}: {e}", conf.display())))?;
        let _ = std::fs::remove_file(&self.socket);
        let mut cmd = Command::new(&self.binary);
        cmd.arg(&conf)
            .arg("--dir")
            .arg(&self.dir)
            .arg("--port")
            .arg("0")
            .arg("--unixsocket")
            .arg(&self.socket)
            .arg("--unixsocketperm")
            .arg("700")
            .arg("--pidfile")
            .arg(self.dir.join("redis.pid"))
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .arg("--appendfsync")
            .arg(&self.appendfsync)
            .arg("--daemonize")
            .arg("no")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(false);
        die_with_parent(&mut cmd);
        let child = cmd.spawn().map_err(|e| {
            StoreError::Managed(format!(
                "cannot start {:?}: {e} (install it with `apt-get install redis-server`, or set \
                 CALMONY_REDIS_URL)",
                self.binary
            ))
        })?;
        tracing::info!(pid = child.id(), socket = %self.socket.display(), "started managed redis-server");
        *self.child.lock().await = Some(child);
        Ok(())
    }

    async fn wait_ready(&self, limit: Duration) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.ping().await {
                return Ok(());
            }
            if let Some(child) = self.child.lock().await.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(StoreError::Managed(format!(
                    "redis-server exited at start ({status}); see {}",
                    self.dir.join("redis.log").display()
                )));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(StoreError::Managed(format!(
                    "redis-server did not answer on {} within {limit:?}",
                    self.socket.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        match tokio::time::timeout(
            Duration::from_millis(500),
            client.get_multiplexed_async_connection(),
        )
        .await
        {
            Ok(Ok(mut c)) => redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .is_ok(),
            _ => false,
        }
    }

    /// A redis-server left running on our data dir by an earlier daemon: shut it down so its
    /// AOF is complete before ours opens it.
    async fn stop_leftover(&self) {
        if self.ping().await {
            tracing::warn!(socket = %self.socket.display(), "shutting down a leftover managed redis-server");
            self.shutdown_via_socket().await;
        }
        let pidfile = self.dir.join("redis.pid");
        if let Ok(pid) = std::fs::read_to_string(&pidfile) {
            let pid = pid.trim();
            let cmdline =
                std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmdline.contains("redis-server") {
                let _ = Command::new("kill").arg("-TERM").arg(pid).status().await;
                for _ in 0..200 {
                    if !Path::new(&format!("/proc/{pid}")).exists() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn shutdown_via_socket(&self) {
        if let Ok(client) = redis::Client::open(self.url())
            && let Ok(Ok(mut c)) = tokio::time::timeout(
                Duration::from_millis(500),
                client.get_multiplexed_async_connection(),
            )
            .await
        {
            // The connection drops as the server exits; that error is the success.
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                redis::cmd("SHUTDOWN").query_async::<()>(&mut c),
            )
            .await;
        }
    }

    /// Restart redis-server whenever it exits unexpectedly, with backoff.
    async fn supervise(self) {
        let mut delay = Duration::from_millis(200);
        loop {
            let status = {
                let mut guard = self.child.lock().await;
                match guard.as_mut() {
                    Some(child) => match child.try_wait() {
                        Ok(Some(status)) => Some(status),
                        _ => None,
                    },
                    None => None,
                }
            };
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            match status {
                None => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    delay = Duration::from_millis(200).max(delay / 2);
                }
                Some(status) => {
                    tracing::error!(%status, retry_in_ms = delay.as_millis() as u64, "managed redis-server exited; restarting");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                    if self.stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Err(e) = self.spawn().await {
                        tracing::error!(error = %e, "cannot restart managed redis-server");
                    }
                }
            }
        }
    }

    /// Shut the managed Redis down cleanly (its AOF flushed) and wait for it.
    pub async fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.shutdown_via_socket().await;
        if let Some(mut child) = self.child.lock().await.take() {
            match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                Ok(_) => tracing::info!("managed redis-server stopped"),
                Err(_) => {
                    tracing::warn!("managed redis-server did not stop; killing it");
                    let _ = child.kill().await;
                }
            }
        }
    }
}

/// Ask the kernel to SIGTERM the child when the daemon dies, so no orphan holds the data dir.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl, which is
    // async-signal-safe and touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGTERM as libc::c_ulong,
                0,
                0,
                0,
            );
            Ok(())
        });
    }
}
