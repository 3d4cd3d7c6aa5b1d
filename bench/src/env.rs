//! The system under test: a `redis-server` and `calmony-payd` started for the run (or a
//! daemon already running), and how much memory and CPU the daemon uses.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::args::Args;

pub struct Env {
    pub base: String,
    pub key: String,
    /// The sandbox's operator token (`sandbox.operator_token`), for the whole ledger: made
    /// for a daemon the run starts; `CALMONY_SANDBOX_OPERATOR_TOKEN` for one already running
    /// (without it the ledger is read with the run's key, which sees its project's charges).
    pub operator_token: Option<String>,
    pub redis_url: Option<String>,
    redis: Option<Child>,
    daemon: Option<Child>,
    daemon_bin: String,
    daemon_env: Vec<(String, String)>,
    /// Holds the run's temporary directory (Redis data, daemon log) until the end.
    _dir: Option<tempfile::TempDir>,
    pub logs: std::path::PathBuf,
}

/// `--redis-config` values (`name value`) as `redis-server` arguments (`--name value`).
fn redis_settings(settings: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for s in settings {
        let mut words = s.split_whitespace();
        let name = words
            .next()
            .ok_or("--redis-config needs a setting name and value")?;
        out.push(format!("--{}", name.trim_start_matches('-')));
        out.extend(words.map(str::to_string));
    }
    Ok(out)
}

/// Two distinct free ports on loopback, for Redis and the daemon. Both listeners are held
/// until both ports are known: taken one after the other, the second could be the first
/// again (redis-server had not bound it yet), and then the daemon could not listen while the
/// tool, finding Redis on the daemon's port, sent it HTTP (Redis closes such a connection:
/// "connection closed before message completed", seen once in CI).
fn free_ports() -> Result<(u16, u16), String> {
    let bind = || TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"));
    let (a, b) = (bind()?, bind()?);
    let port = |l: &TcpListener| {
        l.local_addr()
            .map(|a| a.port())
            .map_err(|e| format!("no free port: {e}"))
    };
    Ok((port(&a)?, port(&b)?))
}

/// 32 random hex digits: a run's sandbox operator token.
fn uuid_like() -> String {
    use std::fmt::Write;
    (0..16).fold(String::new(), |mut s, _| {
        let _ = write!(s, "{:02x}", rand::random::<u8>());
        s
    })
}

fn default_daemon() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("calmony-payd")))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "target/release/calmony-payd".into())
}

/// Whether `GET /healthz` at `addr` answers 200 (a plain blocking exchange: it runs only while
/// the daemon starts).
fn healthy(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

impl Env {
    pub async fn up(args: &Args) -> Result<Env, String> {
        if let Some(url) = &args.url {
            let key = args.key.clone().ok_or("--url needs --key")?;
            return Ok(Env {
                base: url.trim_end_matches('/').to_string(),
                key,
                operator_token: std::env::var("CALMONY_SANDBOX_OPERATOR_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty()),
                redis_url: None,
                redis: None,
                daemon: None,
                daemon_bin: String::new(),
                daemon_env: Vec::new(),
                _dir: None,
                logs: std::path::PathBuf::from("/dev/null"),
            });
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (redis_port, port) = free_ports()?;
        // The settings of `scripts/redis.conf` that bear on speed, as the managed Redis has
        // them; AOF and fsync as the run asks.
        let redis = Command::new("redis-server")
            .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir.path())
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                &args.fsync,
                "--rdbcompression",
                "no",
                "--hash-max-listpack-value",
                "1024",
            ])
            .args(redis_settings(&args.redis_config)?)
            .args(["--daemonize", "no", "--logfile", "redis.log"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        let redis_url = format!("redis://127.0.0.1:{redis_port}/");
        let daemon_bin = args.daemon.clone().unwrap_or_else(default_daemon);
        let operator_token = format!("bench-{}", uuid_like());
        let daemon_env = vec![
            ("CALMONY_LISTEN".to_string(), format!("127.0.0.1:{port}")),
            ("CALMONY_REDIS_URL".to_string(), redis_url.clone()),
            (
                "CALMONY_DATA_DIR".to_string(),
                dir.path().join("data").display().to_string(),
            ),
            (
                "CALMONY_API_RATE_LIMIT_PER_SECOND".to_string(),
                "1000000".to_string(),
            ),
            (
                "CALMONY_API_BOOTSTRAP_TEST_KEY".to_string(),
                "false".to_string(),
            ),
            ("CALMONY_LOG_LEVEL".to_string(), "warn".to_string()),
            ("CALMONY_CLOCK_CONTROLLABLE".to_string(), "true".to_string()),
            (
                "CALMONY_SANDBOX_OPERATOR_TOKEN".to_string(),
                operator_token.clone(),
            ),
        ];
        let logs = dir.path().join("daemon.log");
        let mut env = Env {
            base: format!("http://127.0.0.1:{port}"),
            key: String::new(),
            operator_token: Some(operator_token),
            redis_url: Some(redis_url),
            redis: Some(redis),
            daemon: None,
            daemon_bin,
            daemon_env,
            _dir: Some(dir),
            logs,
        };
        if let Err(e) = env.start_daemon().await {
            // The run never began, so `once` has no environment to show the log of.
            env.print_log_tail(30);
            return Err(e);
        }
        env.key = env.cli(&["keys", "create", "--project", "bench", "--mode", "test"])?;
        Ok(env)
    }

    pub fn managed(&self) -> bool {
        self.daemon_env.iter().any(|(k, _)| k == "CALMONY_LISTEN")
    }

    pub async fn start_daemon(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.logs)
            .map_err(|e| e.to_string())?;
        let child = Command::new(&self.daemon_bin)
            .arg("serve")
            .envs(
                self.daemon_env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {}: {e} (build it: cargo build --release -p calmony-payd)",
                    self.daemon_bin
                )
            })?;
        self.daemon = Some(child);
        let addr = self.base.trim_start_matches("http://").to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.daemon.as_mut().map(Child::try_wait) {
                return Err(format!("the daemon exited at start ({status})"));
            }
            // Up means the daemon answers, not merely that something listens on its port.
            if healthy(&addr) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err("the daemon did not start".into())
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.daemon_bin)
            .args(args)
            .envs(
                self.daemon_env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    pub fn daemon_pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(Child::id)
    }

    /// Total commands Redis has processed (for commands per operation).
    pub fn redis_commands(&self) -> Option<u64> {
        self.redis_info("stats")?
            .lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Bytes of memory Redis holds (`used_memory`): what a run's writes leave behind, per
    /// operation, is the keyspace's cost to an operator sizing Redis.
    pub fn redis_memory(&self) -> Option<u64> {
        self.redis_info("memory")?
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
    }

    /// CPU seconds of Redis's main thread and of its finished children (AOF rewrites), from
    /// `INFO cpu`: per operation a steadier figure than throughput on a machine whose speed
    /// drifts, and the part of the machine the daemon's daemon-CPU figure does not show.
    pub fn redis_cpu(&self) -> Option<(f64, f64)> {
        let info = self.redis_info("cpu")?;
        let field = |name: &str| -> Option<f64> {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse().ok())
        };
        Some((
            field("used_cpu_sys_main_thread")? + field("used_cpu_user_main_thread")?,
            field("used_cpu_sys_children")? + field("used_cpu_user_children")?,
        ))
    }

    /// The last `lines` of the daemon's log, on standard error (a failed run's context).
    pub fn print_log_tail(&self, lines: usize) {
        let Ok(log) = std::fs::read_to_string(&self.logs) else {
            return;
        };
        let all: Vec<&str> = log.lines().collect();
        eprintln!("--- the daemon's log, last {lines} lines ---");
        for line in &all[all.len().saturating_sub(lines)..] {
            eprintln!("{line}");
        }
        eprintln!("--- end of the daemon's log ---");
    }

    /// Per-command counts and times since the scenario began (`BENCH_COMMANDSTATS=1`), for
    /// finding which command a change added or removed.
    pub fn redis_commandstats(&self) -> Option<String> {
        self.redis_info("commandstats")
    }

    /// Zero Redis's command statistics (`CONFIG RESETSTAT`), so `INFO commandstats` after the
    /// scenario counts only its commands.
    pub fn reset_redis_stats(&self) {
        let Some(url) = self.redis_url.as_ref() else {
            return;
        };
        if let Ok(mut c) = redis::Client::open(url.as_str()).and_then(|c| c.get_connection()) {
            let _: redis::RedisResult<()> = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c);
        }
    }

    /// One section of `INFO` from the Redis the tool started.
    fn redis_info(&self, section: &str) -> Option<String> {
        let url = self.redis_url.as_ref()?;
        let mut c = redis::Client::open(url.as_str())
            .ok()?
            .get_connection()
            .ok()?;
        redis::cmd("INFO").arg(section).query(&mut c).ok()
    }

    pub fn down(mut self) {
        self.kill9();
        if let Some(mut r) = self.redis.take() {
            let _ = r.kill();
            let _ = r.wait();
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kill9();
        if let Some(mut r) = self.redis.take() {
            let _ = r.kill();
            let _ = r.wait();
        }
    }
}

/// Samples a process's resident memory (peak) and CPU time while a scenario runs.
pub struct Usage {
    pid: u32,
    peak_rss_kb: Arc<AtomicU64>,
    cpu_start: u64,
    started: Instant,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit(')').next()?.to_string();
            let f: Vec<&str> = after.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

impl Usage {
    pub fn start(pid: u32) -> Usage {
        let peak = Arc::new(AtomicU64::new(rss_kb(pid)));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kb(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Usage {
            pid,
            peak_rss_kb: peak,
            cpu_start: cpu_ticks(pid),
            started: Instant::now(),
            stop,
        }
    }

    /// (peak RSS in MB, CPU use in cores on average).
    pub fn finish(self) -> (f64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        let ticks = cpu_ticks(self.pid).saturating_sub(self.cpu_start) as f64;
        let cores = ticks / 100.0 / self.started.elapsed().as_secs_f64().max(0.001);
        (
            self.peak_rss_kb.load(Ordering::Relaxed) as f64 / 1024.0,
            cores,
        )
    }
}
