//! The end-to-end harness: a real `redis-server` on a free port with its own temporary
//! directory, the real `calmony-payd` binary as a child process, and real HTTP.
//!
//! Nothing here touches the machine's own Redis on 6379. Every process is killed when its
//! handle drops, so a failing test leaves nothing running.

#![allow(dead_code)]

pub mod receiver;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_calmony-payd");

/// How a server of the test's own came up.
enum Started {
    Ready,
    /// Another server bound its port first.
    PortTaken,
    Failed,
}

/// A free TCP port on loopback (free when drawn: see the servers' starts for the rest).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A redis-server of the test's own.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// Whether the port was drawn here (and may be drawn again if it was taken meanwhile).
    drawn: bool,
    /// Settings added to the command line of every start.
    extra: Vec<String>,
}

impl Redis {
    pub fn start() -> Redis {
        Self::start_at(free_port(), true)
    }

    /// A redis-server on a chosen port (for tests that start it after the daemon).
    pub fn start_on(port: u16) -> Redis {
        Self::start_at(port, false)
    }

    /// A redis-server on `port`; `drawn`: the port came from [`free_port`] and another may be
    /// drawn if a server took it meanwhile.
    pub fn start_at(port: u16, drawn: bool) -> Redis {
        Self::start_args(port, drawn, &[])
    }

    /// A redis-server with extra command-line settings (`["--key-load-delay", "100"]`), kept
    /// for its restarts.
    pub fn start_with(extra: &[&str]) -> Redis {
        Self::start_args(free_port(), true, extra)
    }

    fn start_args(port: u16, drawn: bool, extra: &[&str]) -> Redis {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut r = Redis {
            child: None,
            port,
            dir,
            drawn,
            extra: extra.iter().map(|a| a.to_string()).collect(),
        };
        r.spawn();
        r
    }

    /// Start it and wait until it says it is ready: its own log, not an answer on the port,
    /// which another test's server could give. A drawn port taken by another server before
    /// this one bound it is drawn again.
    fn spawn(&mut self) {
        for _ in 0..3 {
            match self.spawn_once() {
                Started::Ready => return,
                Started::PortTaken if self.drawn => self.port = free_port(),
                _ => break,
            }
        }
        panic!(
            "redis-server on port {} did not start:\n{}",
            self.port,
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    fn spawn_once(&mut self) -> Started {
        // The log is appended to across restarts: only what this start adds counts.
        let from = self.log().len();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args(["--daemonize", "no", "--logfile", "redis.log"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let log = self.log();
            let this_start = log.get(from..).unwrap_or_default();
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(_)) = c.try_wait()
            {
                self.child = None;
                return if this_start.contains("Address already in use") {
                    Started::PortTaken
                } else {
                    Started::Failed
                };
            }
            if this_start.contains("Ready to accept connections") && self.ping() {
                return Started::Ready;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Started::Failed
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn ping(&self) -> bool {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
    }

    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("redis connection")
    }

    /// Kill it as a crash would (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port and directory (its AOF is replayed).
    pub fn restart(&mut self) {
        self.kill();
        let drawn = std::mem::replace(&mut self.drawn, false);
        self.spawn();
        self.drawn = drawn;
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The daemon under test.
pub struct Daemon {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    starts: usize,
}

impl Daemon {
    /// A daemon on the given Redis with default settings.
    pub fn start(redis_url: &str) -> Daemon {
        Self::start_with(redis_url, &[])
    }

    /// A daemon with extra `CALMONY_*` settings. An empty `redis_url` uses the managed Redis.
    pub fn start_with(redis_url: &str, extra: &[(&str, &str)]) -> Daemon {
        Self::start_drawn(redis_url, extra, free_port())
    }

    /// [`Daemon::start_with`] on `port`, as drawn by [`free_port`].
    pub fn start_drawn(redis_url: &str, extra: &[(&str, &str)], port: u16) -> Daemon {
        calmony_actors::gateway::install_tls_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut env = vec![
            ("CALMONY_LISTEN".to_string(), format!("127.0.0.1:{port}")),
            ("CALMONY_REDIS_URL".to_string(), redis_url.to_string()),
            (
                "CALMONY_DATA_DIR".to_string(),
                dir.path().join("data").display().to_string(),
            ),
            ("CALMONY_LOG_LEVEL".to_string(), "info".to_string()),
            (
                "CALMONY_API_BOOTSTRAP_TEST_KEY".to_string(),
                "false".to_string(),
            ),
            (
                "CALMONY_SHUTDOWN_GRACE_SECONDS".to_string(),
                "10".to_string(),
            ),
            (
                "CALMONY_SANDBOX_OPERATOR_TOKEN".to_string(),
                OPERATOR_TOKEN.to_string(),
            ),
            ("CALMONY_SECRETS_KEY_DIR".to_string(), shared_key_dir()),
            (
                "CALMONY_GRIFFIN_TEST_API_KEY".to_string(),
                GRIFFIN_SANDBOX_KEY.to_string(),
            ),
        ];
        for (k, v) in extra {
            env.retain(|(ek, _)| ek != k);
            env.push((k.to_string(), v.to_string()));
        }
        let mut d = Daemon {
            child: None,
            port,
            dir,
            env,
            starts: 0,
        };
        d.spawn();
        d
    }

    /// Start it and wait until it serves. The first start's port was drawn by [`free_port`],
    /// which releases it: if another test's server took it before this daemon bound it, the
    /// daemon exits saying so and the port is drawn again (a restart keeps its port).
    fn spawn(&mut self) {
        let first = self.starts == 0;
        for _ in 0..3 {
            self.starts += 1;
            let log = std::fs::File::create(self.log_path()).expect("log file");
            let child = Command::new(BIN)
                .arg("serve")
                .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn calmony-payd");
            self.child = Some(child);
            match self.wait_healthy(Duration::from_secs(30)) {
                Started::Ready => return,
                Started::PortTaken if first => {
                    self.port = free_port();
                    let listen = format!("127.0.0.1:{}", self.port);
                    for (k, v) in self.env.iter_mut() {
                        if k == "CALMONY_LISTEN" {
                            *v = listen.clone();
                        }
                    }
                }
                _ => break,
            }
        }
        panic!("daemon exited at start:\n{}", self.logs());
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("daemon-{}.log", self.starts))
    }

    /// Ready when its log says it serves (it logs that once its listener is bound; a daemon
    /// told to log less is taken as ready when its port answers).
    fn wait_healthy(&mut self, limit: Duration) -> Started {
        let says_so = self
            .env
            .iter()
            .find(|(k, _)| k == "CALMONY_LOG_LEVEL")
            .is_none_or(|(_, v)| matches!(v.as_str(), "info" | "debug" | "trace"));
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                if log.contains("Address already in use") {
                    return Started::PortTaken;
                }
                panic!("daemon exited at start ({status}):\n{}", self.logs());
            }
            let ready = if says_so {
                log.contains("calmony-payd is serving")
            } else {
                std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            };
            if ready {
                return Started::Ready;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("daemon did not listen within {limit:?}:\n{}", self.logs());
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Everything the daemon logged, across restarts.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for i in 1..=self.starts {
            let p = self.dir.path().join(format!("daemon-{i}.log"));
            out.push_str(&std::fs::read_to_string(p).unwrap_or_default());
        }
        out
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Run `calmony-payd <args>` with this daemon's settings; returns (status, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (ExitStatus, String, String) {
        let out = Command::new(BIN)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run calmony-payd");
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// [`Daemon::cli`] with `input` on standard input (a password, say).
    pub fn cli_input(&self, args: &[&str], input: &str) -> (ExitStatus, String, String) {
        use std::io::Write;
        let mut child = Command::new(BIN)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run calmony-payd");
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait for calmony-payd");
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A new API key for a project (created if needed).
    pub fn key(&self, project: &str, mode: &str) -> String {
        let (status, stdout, stderr) =
            self.cli(&["keys", "create", "--project", project, "--mode", mode]);
        assert!(status.success(), "keys create failed: {stderr}");
        let key = stdout.trim().to_string();
        assert!(
            key.starts_with(&format!("sk_{mode}_")),
            "unexpected key output {stdout:?}"
        );
        key
    }

    pub fn api(&self, key: &str) -> Api {
        Api::new(&self.base(), key)
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not exit:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Restart (after a kill) without setting `key` (a drill's kill point, say).
    pub fn restart_without(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
        self.restart();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- daemon log ---\n{}", self.logs());
        }
        self.kill9();
    }
}

/// A response: status, headers and the body (parsed as JSON when it is JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `error.<field>` as a string.
    pub fn err(&self, field: &str) -> &str {
        self.json["error"][field].as_str().unwrap_or("")
    }
}

/// A small API client with the key set.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
}

impl Api {
    /// An invoice's PDF, checked to be one, in a file for poppler's tools (the file lives as
    /// long as the directory returned with it).
    pub async fn invoice_pdf_file(&self, invoice: &str) -> (tempfile::TempDir, PathBuf) {
        let bytes = self
            .http
            .get(format!("{}/v1/invoices/{invoice}/pdf", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("pdf")
            .bytes()
            .await
            .expect("bytes");
        assert!(bytes.starts_with(b"%PDF"));
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("invoice.pdf");
        std::fs::write(&file, &bytes).expect("write");
        (dir, file)
    }

    pub fn new(base: &str, key: &str) -> Api {
        calmony_actors::gateway::install_tls_provider();
        Api {
            // No pooled connections: tests restart daemons on the same port, and a kept-alive
            // connection to a killed daemon would fail the next request.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(0)
                .build()
                .expect("client"),
            base: base.to_string(),
            key: key.to_string(),
        }
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.expect("request sent");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            json,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.key)
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.req(reqwest::Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(self.req(reqwest::Method::DELETE, path)).await
    }

    /// POST a form body, given as a raw `a=b&c[d]=e` string (what Stripe's clients send).
    pub async fn post_form(&self, path: &str, body: &str) -> Resp {
        self.send(
            self.req(reqwest::Method::POST, path)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.to_string()),
        )
        .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.send(
            self.req(reqwest::Method::POST, path)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    pub async fn post_idem(&self, path: &str, body: &str, key: &str) -> Resp {
        self.send(
            self.req(reqwest::Method::POST, path)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("idempotency-key", key)
                .body(body.to_string()),
        )
        .await
    }
}

/// Poll `f` until it returns true or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The built-in Griffin sandbox's key the tests' daemons are configured with
/// (`griffin.test.api_key`), so a test's own Griffin client can call the sandbox. Without one,
/// each installation makes its own (`griffin_webhooks::the_sandbox_answers_only_to_…`).
pub const GRIFFIN_SANDBOX_KEY: &str = "g-test-e2e-harness-griffin-key";

/// A daemon on its own Redis, with one test key for project `acme`.
pub struct World {
    pub redis: Redis,
    pub daemon: Daemon,
    pub api: Api,
}

impl World {
    pub fn new() -> World {
        Self::with(&[])
    }

    pub fn with(extra: &[(&str, &str)]) -> World {
        let redis = Redis::start();
        let daemon = Daemon::start_with(&redis.url(), extra);
        let key = daemon.key("acme", "test");
        let api = daemon.api(&key);
        World { redis, daemon, api }
    }

    /// The key of the project's test-mode event stream, as the daemon registered it in
    /// `cp:event_streams`.
    pub fn test_event_stream(&self) -> String {
        let streams: Vec<String> = redis::cmd("SMEMBERS")
            .arg("cp:event_streams")
            .query(&mut self.redis.conn())
            .expect("SMEMBERS");
        streams
            .into_iter()
            .find(|s| s.ends_with(":test:events"))
            .expect("the project's test stream is registered")
    }
}

/// The ids of a list's objects, in the order listed.
pub fn ids(list: &serde_json::Value) -> Vec<String> {
    list_field(list, |o| &o["id"])
}

/// The ids of the objects a list of events is about (`data.object.id`), in the order listed.
pub fn event_objects(list: &serde_json::Value) -> Vec<String> {
    list_field(list, |e| &e["data"]["object"]["id"])
}

fn list_field(
    list: &serde_json::Value,
    field: impl Fn(&serde_json::Value) -> &serde_json::Value,
) -> Vec<String> {
    list["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| field(o).as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}

/// The sandbox's operator token every test daemon is started with (`sandbox.operator_token`):
/// the tests read the whole ledger, set faults and run settlement as the operator.
/// The key directory every daemon of the tests shares, as daemons sharing a Redis must (one
/// with a key of its own refuses to start). A test of the first start's own key sets
/// `CALMONY_SECRETS_KEY_DIR` to "" (then `<data_dir>/keys`).
pub fn shared_key_dir() -> String {
    static DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-keys");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .expect("key dir");
        let key = dir.join("kek-00000000000000.key");
        if !key.exists() {
            // Written aside then renamed: test processes start side by side.
            let aside = dir.join(format!("kek.{}.tmp", std::process::id()));
            std::fs::write(&aside, [42u8; 32]).expect("key");
            std::fs::set_permissions(&aside, std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
            std::fs::rename(&aside, &key).expect("rename");
        }
        dir.display().to_string()
    })
    .clone()
}

pub const OPERATOR_TOKEN: &str = "operator-token-of-the-e2e-tests-0123456789abcdef";

/// The sandbox gateway's ledger entries (optionally for one orderRef, i.e. one intent), as the
/// operator sees it.
pub async fn ledger(base: &str, order_ref: Option<&str>) -> Vec<Value> {
    ledger_as(base, order_ref, OPERATOR_TOKEN).await
}

/// The ledger entries `credential` (the operator's token or a test key) may see.
pub async fn ledger_as(base: &str, order_ref: Option<&str>, credential: &str) -> Vec<Value> {
    let url = match order_ref {
        Some(o) => format!("{base}/sandbox/ledger?orderRef={o}"),
        None => format!("{base}/sandbox/ledger"),
    };
    let r = reqwest::Client::new()
        .get(url)
        .bearer_auth(credential)
        .send()
        .await
        .expect("ledger");
    assert_eq!(r.status().as_u16(), 200, "the ledger");
    let body: Value = r.json_text().await;
    body["entries"].as_array().cloned().unwrap_or_default()
}

/// Approved SALEs per orderRef: the test of "charged once".
pub fn sales_per_order(entries: &[Value]) -> std::collections::HashMap<String, usize> {
    let mut m = std::collections::HashMap::new();
    for e in entries {
        let approved = e["responseCode"]
            .as_str()
            .map_or(e["responseCode"] == 0, |c| c == "0");
        if e["action"] == "SALE" && approved {
            *m.entry(e["orderRef"].as_str().unwrap_or("").to_string())
                .or_insert(0) += 1;
        }
    }
    m
}

/// POST a form to a sandbox route as the operator.
pub async fn sandbox_post(base: &str, path: &str, form: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(OPERATOR_TOKEN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_string())
        .send()
        .await
        .expect("sandbox")
        .json_text()
        .await
}

trait JsonText {
    async fn json_text(self) -> Value;
}

impl JsonText for reqwest::Response {
    async fn json_text(self) -> Value {
        let t = self.text().await.unwrap_or_default();
        serde_json::from_str(&t).unwrap_or(Value::Null)
    }
}

/// An HTML form: where it posts and its named inputs (the pages use plain, escaped markup).
#[derive(Debug, Clone)]
pub struct Form {
    pub action: String,
    pub fields: Vec<(String, String)>,
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// The form with this id in a page.
pub fn form(html: &str, id: &str) -> Form {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no form {id} in:\n{html}"));
    let open = html[..start].rfind("<form").expect("form tag");
    let close = html[open..]
        .find("</form>")
        .map_or(html.len(), |e| open + e);
    let tag_end = html[open..].find('>').map_or(close, |e| open + e);
    let action = attr(&html[open..tag_end], "action").unwrap_or_default();
    let mut fields = Vec::new();
    let mut rest = &html[tag_end..close];
    while let Some(i) = rest.find("<input") {
        let end = rest[i..].find('>').map_or(rest.len(), |e| i + e);
        let tag = &rest[i..end];
        if let Some(name) = attr(tag, "name") {
            fields.push((name, attr(tag, "value").unwrap_or_default()));
        }
        rest = &rest[end..];
    }
    Form { action, fields }
}

impl Form {
    /// The value of input `name`, if the form has one.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The fields as a form body.
    pub fn encoded(&self) -> String {
        form_urlencoded_pairs(&self.fields)
    }

    pub fn with(mut self, name: &str, value: &str) -> Form {
        self.fields.push((name.to_string(), value.to_string()));
        self
    }

    /// Submit as a browser would (no redirects followed): status, Location, body.
    pub async fn submit(&self, base: &str) -> (u16, Option<String>, String) {
        let url = if self.action.starts_with("http") {
            self.action.clone()
        } else {
            format!("{base}{}", self.action)
        };
        let body: String = form_urlencoded_pairs(&self.fields);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let r = client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("submit");
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (status, location, r.text().await.unwrap_or_default())
    }
}

fn form_urlencoded_pairs(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn pct(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// GET a page (no redirects followed).
pub async fn get_page(url: &str) -> (u16, String) {
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(url)
        .send()
        .await
        .expect("page");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

impl Api {
    /// A customer's id.
    pub async fn customer(&self) -> String {
        let r = self
            .post_form("/v1/customers", "name=Alice&email=alice%40example.com")
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json["id"].as_str().expect("id").to_string()
    }

    /// A tokenised card (optionally for a customer); expiry month/year chosen by the test.
    pub async fn card(
        &self,
        number: &str,
        month: u32,
        year: u32,
        customer: Option<&str>,
    ) -> String {
        let mut body = format!(
            "type=card&card[number]={number}&card[exp_month]={month}&card[exp_year]={year}&card[cvc]=123"
        );
        if let Some(c) = customer {
            body.push_str(&format!("&customer={c}"));
        }
        let r = self.post_form("/v1/payment_methods", &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json["id"].as_str().expect("id").to_string()
    }

    /// Create and confirm a payment of `amount` with a card.
    pub async fn pay(&self, amount: i64, pm: &str, extra: &str) -> Resp {
        self.post_form(
            "/v1/payment_intents",
            &format!("amount={amount}&currency=gbp&payment_method={pm}&confirm=true{extra}"),
        )
        .await
    }
}

/// Await requests sent at once against a rate limit: how many passed and how many were
/// limited, each limited one a `rate_limit_error` with `Retry-After`, and nothing else.
pub async fn passed_and_limited(tasks: Vec<tokio::task::JoinHandle<Resp>>) -> (u32, u32) {
    let (mut ok, mut limited) = (0, 0);
    for t in tasks {
        let r = t.await.expect("task");
        match r.status {
            200 => ok += 1,
            429 => {
                limited += 1;
                assert_eq!(r.err("type"), "rate_limit_error");
                assert!(r.header("retry-after").is_some(), "{}", r.text);
            }
            s => panic!("unexpected {s}: {}", r.text),
        }
    }
    (ok, limited)
}

/// Every key and value in a Redis, as text, for greps that prove something is NOT stored.
/// Records' `json` and the sandbox's transactions are stored packed (`store::packed`): they are
/// decoded, so a grep sees the JSON.
/// A value that cannot be read fails the dump rather than being left out of it.
pub fn redis_dump_text(conn: &mut redis::Connection) -> String {
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(conn).unwrap_or_default();
    let mut out = String::new();
    for k in keys {
        out.push_str(&k);
        out.push('\n');
        let t: String = redis::cmd("TYPE").arg(&k).query(conn).unwrap_or_default();
        let text: Vec<String> = match t.as_str() {
            "string" => redis::cmd("GET")
                .arg(&k)
                .query::<Option<Vec<u8>>>(conn)
                .expect("GET")
                .map(|v| match v.first() {
                    // The sandbox's transactions are stored packed as records are.
                    Some(&calmony_actors::store::packed::MARK) => {
                        calmony_actors::store::packed::text(v).expect("a readable value")
                    }
                    _ => String::from_utf8_lossy(&v).into_owned(),
                })
                .into_iter()
                .collect(),
            "hash" => {
                let fields: Vec<(String, Vec<u8>)> =
                    redis::cmd("HGETALL").arg(&k).query(conn).expect("HGETALL");
                fields
                    .into_iter()
                    .flat_map(|(name, value)| {
                        // Records' `json`, and stored answers' `body`, travel packed.
                        let packed = value.first() == Some(&calmony_actors::store::packed::MARK);
                        let text = if name == "json" || packed {
                            calmony_actors::store::packed::text(value).expect("a readable record")
                        } else {
                            String::from_utf8_lossy(&value).into_owned()
                        };
                        [name, text]
                    })
                    .collect()
            }
            "zset" => redis::cmd("ZRANGE")
                .arg(&k)
                .arg(0)
                .arg(-1)
                .query(conn)
                .unwrap_or_default(),
            "set" => redis::cmd("SMEMBERS")
                .arg(&k)
                .query(conn)
                .unwrap_or_default(),
            "list" => redis::cmd("LRANGE")
                .arg(&k)
                .arg(0)
                .arg(-1)
                .query(conn)
                .unwrap_or_default(),
            "stream" => {
                let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
                    .arg(&k)
                    .arg("-")
                    .arg("+")
                    .query(conn)
                    .unwrap_or_default();
                entries
                    .into_iter()
                    .flat_map(|(_, f)| f.into_iter().flat_map(|(a, b)| [a, b]))
                    .collect()
            }
            _ => vec![],
        };
        for s in text {
            out.push_str(&s);
            out.push('\n');
        }
    }
    out
}
