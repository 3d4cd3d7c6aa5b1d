//! The scenarios. Each sets up what it needs through the API, runs the load, and reports.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::Method;
use rand::Rng;
use serde_json::{Value, json};

use crate::args::Args;
use crate::env::{Env, Usage};
use crate::http::Http;
use crate::load::{self, Op, Stats};
use crate::receiver::{Answer, Receiver};

pub struct Report {
    pub scenario: String,
    pub mode: String,
    pub stats: Option<Stats>,
    pub extra: Vec<(String, Value)>,
    pub rss_mb: Option<f64>,
    pub cpu_cores: Option<f64>,
    pub redis_per_op: Option<f64>,
    /// Redis CPU µs per operation: main thread, and AOF rewrites finished during the run.
    pub redis_cpu_us: Option<(f64, f64)>,
    /// Bytes of Redis memory added per operation (`used_memory` after the run less before).
    pub redis_bytes: Option<f64>,
    /// The machine the run had: its CPU model and count, and the share of its CPU time the
    /// hypervisor took (steal) during the run. Figures from different hosts, or from a run
    /// with steal, are not comparable.
    pub host: Option<Host>,
}

#[derive(Debug, Clone)]
pub struct Host {
    pub cpu: String,
    pub cpus: usize,
    pub steal_pct: f64,
}

/// `/proc/stat`'s first line: (steal, total) jiffies across the CPUs.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let values: Vec<u64> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    Some((*values.get(7)?, values.iter().take(8).sum()))
}

fn host_since(start: Option<(u64, u64)>) -> Option<Host> {
    let ((steal0, total0), (steal1, total1)) = (start?, cpu_jiffies()?);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_default();
    Some(Host {
        cpu,
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        steal_pct: 100.0 * steal1.saturating_sub(steal0) as f64
            / total1.saturating_sub(total0).max(1) as f64,
    })
}

impl Report {
    pub fn print(&self) {
        println!("scenario     {} ({})", self.scenario, self.mode);
        if let Some(s) = &self.stats {
            println!(
                "operations   {} ok, {} errors in {:.2} s",
                s.ops,
                s.errors,
                s.elapsed.as_secs_f64()
            );
            println!("throughput   {:.0} /s", s.throughput());
            println!(
                "latency ms   p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}",
                s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms
            );
            if let Some(e) = &s.first_error {
                println!("first error  {e}");
            }
        }
        for (k, v) in &self.extra {
            println!("{k:<12} {v}");
        }
        if let (Some(r), Some(c)) = (self.rss_mb, self.cpu_cores) {
            println!("daemon       peak RSS {r:.1} MB, CPU {c:.2} cores");
        }
        if let Some(r) = self.redis_per_op {
            println!("redis        {r:.1} commands per operation");
        }
        if let Some(b) = self.redis_bytes {
            println!("redis memory {b:.0} bytes more per operation");
        }
        if let Some(h) = &self.host {
            println!(
                "host         {} ({} CPUs), steal {:.1} % during the run",
                h.cpu, h.cpus, h.steal_pct
            );
        }
        if let Some((main, rewrites)) = self.redis_cpu_us {
            println!(
                "redis cpu    {main:.0} µs per operation (main thread), {rewrites:.0} µs (AOF rewrites)"
            );
        }
        println!("json         {}", self.json());
    }

    pub fn json(&self) -> Value {
        let mut v = json!({
            "scenario": self.scenario, "mode": self.mode,
            "daemon_peak_rss_mb": self.rss_mb, "daemon_cpu_cores": self.cpu_cores,
            "redis_commands_per_op": self.redis_per_op,
            "redis_main_cpu_us_per_op": self.redis_cpu_us.map(|c| c.0),
            "redis_rewrite_cpu_us_per_op": self.redis_cpu_us.map(|c| c.1),
            "redis_bytes_per_op": self.redis_bytes,
            "host": self.host.as_ref().map(|h| json!({
                "cpu": h.cpu, "cpus": h.cpus, "steal_pct": h.steal_pct,
            })),
        });
        if let Some(s) = &self.stats {
            v["load"] = s.json();
        }
        for (k, x) in &self.extra {
            v[k] = x.clone();
        }
        v
    }
}

struct Client {
    http: Http,
}

impl Client {
    fn new(env: &Env) -> Result<Arc<Client>, String> {
        Ok(Arc::new(Client {
            http: Http::new(&env.base, &env.key)?,
        }))
    }

    async fn post(
        &self,
        path: &str,
        body: String,
        idem: Option<&str>,
    ) -> Result<(u16, Value), String> {
        self.post_as(path, body, idem).await
    }

    /// A POST whose answer is read as `T` (the hot paths read a [`Brief`], so the load tool
    /// does not spend the CPU it shares with the daemon building a full JSON tree per answer).
    async fn post_as<T: serde::de::DeserializeOwned + Default>(
        &self,
        path: &str,
        body: String,
        idem: Option<&str>,
    ) -> Result<(u16, T), String> {
        let (status, body) = self.http.send(Method::POST, path, Some(body), idem).await?;
        Ok((status, serde_json::from_slice(&body).unwrap_or_default()))
    }

    async fn get(&self, path: &str) -> Result<(u16, Value), String> {
        self.get_as(path).await
    }

    async fn get_as<T: serde::de::DeserializeOwned + Default>(
        &self,
        path: &str,
    ) -> Result<(u16, T), String> {
        let (status, body) = self.http.send(Method::GET, path, None, None).await?;
        Ok((status, serde_json::from_slice(&body).unwrap_or_default()))
    }

    async fn card(&self) -> Result<String, String> {
        let (s, v) = self
            .post(
                "/v1/payment_methods",
                "card[number]=4242424242424242&card[exp_month]=12&card[exp_year]=2030&card[cvc]=123".into(),
                None,
            )
            .await?;
        if s != 200 {
            return Err(format!("payment method: {s} {v}"));
        }
        Ok(v["id"].as_str().unwrap_or("").to_string())
    }
}

/// The sandbox's ledger: all of it as the operator when the run knows the token, else what the
/// run's key may see (its project's charges, which are all the run makes).
async fn sandbox_ledger(env: &Env, c: &Client) -> Result<Value, String> {
    let (status, ledger) = match &env.operator_token {
        Some(token) => {
            let (status, body) = Http::new(&env.base, token)?
                .send(Method::GET, "/sandbox/ledger", None, None)
                .await?;
            (status, serde_json::from_slice(&body).unwrap_or_default())
        }
        None => c.get("/sandbox/ledger").await?,
    };
    if status != 200 {
        return Err(format!("the sandbox ledger: {status} {ledger}"));
    }
    Ok(ledger)
}

/// What the hot paths check of an answer: its id, status or error.
#[derive(Debug, Default, serde::Deserialize)]
struct Brief {
    #[serde(default)]
    id: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    error: Option<BriefError>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct BriefError {
    #[serde(default)]
    message: String,
}

fn expect_brief(status: u16, b: &Brief, want: u16) -> Result<(), String> {
    let message = || b.error.as_ref().map_or("", |e| e.message.as_str());
    answered(status, want, message)
}

fn expect(status: u16, v: &Value, want: u16) -> Result<(), String> {
    answered(status, want, || {
        v["error"]["message"].as_str().unwrap_or("")
    })
}

/// The answer had the status wanted, or an error naming the status and the API's message.
fn answered<'a>(status: u16, want: u16, message: impl FnOnce() -> &'a str) -> Result<(), String> {
    if status == want {
        Ok(())
    } else {
        Err(format!("{status}: {}", message()))
    }
}

async fn drive(args: &Args, op: Op) -> (Stats, String) {
    let duration = Duration::from_secs_f64(args.duration);
    match args.rate {
        Some(rate) => (
            load::open(duration, rate, op).await,
            format!("constant arrival {rate}/s"),
        ),
        None => (
            load::closed(duration, args.concurrency, op).await,
            format!("closed loop, {} workers", args.concurrency),
        ),
    }
}

pub async fn run(args: &Args, env: &mut Env) -> Result<Report, String> {
    let client = Client::new(env)?;
    let usage = env.daemon_pid().map(Usage::start);
    let commandstats = std::env::var_os("BENCH_COMMANDSTATS").is_some();
    if commandstats {
        env.reset_redis_stats();
    }
    let redis_before = env.redis_commands();
    let cpu_before = env.redis_cpu();
    let memory_before = env.redis_memory();
    let jiffies = cpu_jiffies();
    let mut report = match args.scenario.as_str() {
        "read" => read(args, &client).await?,
        "confirm" => confirm(args, &client).await?,
        "checkout" => checkout(args, &client).await?,
        "webhooks" => webhooks(args, env, &client).await?,
        "renewals" => renewals(args, env, &client).await?,
        "crash" => crash(args, env, &client).await?,
        "bank" => bank(args, &client).await?,
        "dashboard" => dashboard(args, env, &client).await?,
        other => return Err(format!("unknown scenario {other:?}")),
    };
    report.host = host_since(jiffies);
    if commandstats && let Some(stats) = env.redis_commandstats() {
        eprintln!("{stats}");
    }
    // The crash drill restarts its daemon and Redis keeps counting across the restarts: the
    // per-daemon and per-operation figures below would not describe one daemon's run.
    if args.scenario == "crash" {
        return Ok(report);
    }
    if let Some(u) = usage {
        let (rss, cpu) = u.finish();
        report.rss_mb = Some(rss);
        report.cpu_cores = Some(cpu);
    }
    if let (Some(before), Some(after), Some(stats)) =
        (redis_before, env.redis_commands(), &report.stats)
    {
        let ops = stats.ops.max(1) as f64;
        report.redis_per_op = Some((after.saturating_sub(before)) as f64 / ops);
        if let (Some(b), Some(a)) = (cpu_before, env.redis_cpu()) {
            report.redis_cpu_us = Some(((a.0 - b.0) / ops * 1e6, (a.1 - b.1) / ops * 1e6));
        }
        if let (Some(b), Some(a)) = (memory_before, env.redis_memory()) {
            report.redis_bytes = Some((a as f64 - b as f64) / ops);
        }
    }
    Ok(report)
}

fn report(scenario: &str, mode: String, stats: Option<Stats>) -> Report {
    Report {
        scenario: scenario.into(),
        mode,
        stats,
        extra: Vec::new(),
        rss_mb: None,
        cpu_cores: None,
        redis_per_op: None,
        redis_cpu_us: None,
        redis_bytes: None,
        host: None,
    }
}

/// A hidden input's value in a page (the forms are plain, escaped markup).
fn hidden(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"")? + 7;
    let end = tag[v..].find('"')? + v;
    Some(tag[v..end].replace("&amp;", "&").replace("&quot;", "\""))
}

/// The path (and query) of a URL on the daemon, for the load tool's client.
fn path_of(url: &str) -> String {
    match url.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/".into(), |i| rest[i..].to_string()),
        None => url.to_string(),
    }
}

fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// One payer's Pay by Bank payment through the sandbox's instant bank, as a browser walks
/// it; answers the time from the approval at the bank to the intent's `succeeded`.
async fn bank_payment(c: &Client) -> Result<Duration, String> {
    let (s, v) = c
        .post(
            "/v1/payment_intents",
            "amount=245000&currency=gbp&payment_method_types[]=pay_by_bank&confirm=true\
             &payment_method_data[type]=pay_by_bank&return_url=https%3A%2F%2Fshop.example%2Fdone"
                .into(),
            None,
        )
        .await?;
    expect(s, &v, 200)?;
    let id = v["id"].as_str().unwrap_or_default().to_string();
    let page = path_of(
        v["next_action"]["redirect_to_url"]["url"]
            .as_str()
            .unwrap_or_default(),
    );
    let (s, _, html) = c.http.send_page(Method::GET, &page, None).await?;
    let html = String::from_utf8_lossy(&html);
    answered(s, 200, || "the bank page")?;
    let secret = hidden(&html, "client_secret").ok_or("no client_secret on the page")?;
    let csrf = hidden(&html, "csrf").ok_or("no csrf on the page")?;
    let action = page.split('?').next().unwrap_or_default().to_string();
    let choice = form_body(&[
        ("client_secret", &secret),
        ("csrf", &csrf),
        ("bank", "calmony-instant"),
    ]);
    let (s, to_bank, _) = c
        .http
        .send_page(Method::POST, &action, Some(choice))
        .await?;
    answered(s, 303, || "the bank choice")?;
    let to_bank = path_of(&to_bank.ok_or("no redirect to the bank")?);
    let (s, _, html) = c.http.send_page(Method::GET, &to_bank, None).await?;
    answered(s, 200, || "the bank's page")?;
    let html = String::from_utf8_lossy(&html).into_owned();
    let names = ["consent_id", "redirect_uri", "state", "nonce", "csrf"];
    let mut fields: Vec<(&str, String)> = Vec::new();
    for n in names {
        if let Some(v) = hidden(&html, n) {
            fields.push((n, v));
        }
    }
    let account = hidden(&html, "account").unwrap_or_else(|| "0".into());
    let bank_id = to_bank
        .split('/')
        .nth(3)
        .unwrap_or("calmony-instant")
        .to_string();
    let mut pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pairs.push(("account", &account));
    pairs.push(("decision", "approve"));
    let approved = Instant::now();
    let (s, back, _) = c
        .http
        .send_page(
            Method::POST,
            &format!("/sandbox/bank/{bank_id}/authorize"),
            Some(form_body(&pairs)),
        )
        .await?;
    if s != 303 && s != 302 {
        return Err(format!("the approval: {s}"));
    }
    let back = path_of(&back.ok_or("no redirect back")?);
    c.http.send_page(Method::GET, &back, None).await?;
    let path = format!("/v1/payment_intents/{id}");
    loop {
        let (s, b) = c.get_as::<Brief>(&path).await?;
        expect_brief(s, &b, 200)?;
        match b.status.as_str() {
            "succeeded" => return Ok(approved.elapsed()),
            "processing" | "requires_action" => {}
            other => return Err(format!("status {other}")),
        }
        if approved.elapsed() > Duration::from_secs(60) {
            return Err("not succeeded within a minute".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `--count` Pay by Bank payments through the sandbox bank, `--concurrency` payers at a time
/// (at most 32): the time from each approval to `succeeded`.
async fn bank(args: &Args, c: &Arc<Client>) -> Result<Report, String> {
    let count = args.count;
    let next = Arc::new(AtomicU64::new(0));
    let times = Arc::new(std::sync::Mutex::new(Vec::with_capacity(count)));
    let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.clamp(1, 32) {
        let (c, next, times, errors) = (c.clone(), next.clone(), times.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < count as u64 {
                match bank_payment(&c).await {
                    Ok(t) => times.lock().unwrap_or_else(|p| p.into_inner()).push(t),
                    Err(e) => errors.lock().unwrap_or_else(|p| p.into_inner()).push(e),
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let elapsed = start.elapsed();
    let mut times = std::mem::take(&mut *times.lock().unwrap_or_else(|p| p.into_inner()));
    let errors = std::mem::take(&mut *errors.lock().unwrap_or_else(|p| p.into_inner()));
    times.sort();
    let pct = |q: f64| {
        times
            .get(((times.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let mut r = report(
        "bank",
        format!("{} payers at a time", args.concurrency.clamp(1, 32)),
        None,
    );
    r.extra.push((
        "payments".into(),
        json!(format!(
            "{} succeeded, {} failed in {:.1} s",
            times.len(),
            errors.len(),
            elapsed.as_secs_f64()
        )),
    ));
    r.extra.push((
        "approval_to_succeeded_ms".into(),
        json!({"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0)}),
    ));
    if let Some(e) = errors.first() {
        return Err(format!(
            "{} of {count} bank payments failed; first: {e}",
            errors.len()
        ));
    }
    Ok(r)
}

async fn read(args: &Args, c: &Arc<Client>) -> Result<Report, String> {
    let pm = c.card().await?;
    let (s, v) = c
        .post(
            "/v1/payment_intents",
            format!("amount=2500&currency=gbp&payment_method={pm}&confirm=true"),
            None,
        )
        .await?;
    expect(s, &v, 200)?;
    let path = format!("/v1/payment_intents/{}", v["id"].as_str().unwrap_or(""));
    let c2 = c.clone();
    let op: Op = Arc::new(move || {
        let (c, path) = (c2.clone(), path.clone());
        Box::pin(async move {
            let (s, b) = c.get_as::<Brief>(&path).await?;
            expect_brief(s, &b, 200)
        })
    });
    let (stats, mode) = drive(args, op).await;
    Ok(report("read", mode, Some(stats)))
}

/// The dashboard's home page with `--count` payments' figures in the store.
///
/// The figures are the per-day counters every payment's commit increments
/// (`calmony_actors::money::stats`); the store is filled as a million commits would leave it,
/// one pipelined `HINCRBY` per day and field over the last year, instead of making a million
/// payments. A few real payments make the page's recent list. A dashboard owner is made and
/// signed in directly through the store (the daemon keeps sessions there), and the load is
/// `GET /dashboard/<project>/test` with that session: the figures, the chart, the lists.
async fn dashboard(args: &Args, env: &Env, c: &Arc<Client>) -> Result<Report, String> {
    use calmony_actors::dashboard::{access::Role, accounts};
    use calmony_actors::money::stats;
    let url = env
        .redis_url
        .clone()
        .ok_or("the dashboard scenario fills the store: it needs the Redis the tool starts")?;
    let store = calmony_actors::Store::connect(&url, Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?;
    let pm = c.card().await?;
    for _ in 0..20 {
        let (s, v) = c
            .post(
                "/v1/payment_intents",
                format!("amount=2500&currency=gbp&payment_method={pm}&confirm=true"),
                None,
            )
            .await?;
        expect(s, &v, 200)?;
    }
    let mut conn = store.conn();
    let projects: HashMap<String, String> = redis::cmd("HGETALL")
        .arg("cp:projects")
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let project = projects.get("bench").ok_or("no project `bench`")?.clone();
    let scope = calmony_actors::Scope::new(project.clone(), calmony_protocol::Mode::Test);
    // Spread the payments over a year, about a fortieth of them refunded and a twentieth
    // failing, as their commits' HINCRBYs would add up (and fill every hour of the month the
    // page reads below, so none is an empty key).
    let days = 365i64;
    let now = calmony_actors::clock::now();
    let n = args.count as i64;
    let filled = Instant::now();
    let mut pipe = redis::pipe();
    // One hour a day carries the day's payments: the page reads every hour of the month.
    for d in 0..days {
        let count = n / days + i64::from(d < n % days);
        let gross = count * 2500;
        let key = stats::hour_key(&scope, &stats::hour(now - d * 86_400));
        pipe.hincr(&key, "gross:gbp", gross)
            .hincr(&key, "succeeded", count)
            .hincr(&key, "refunded:gbp", (count / 40) * 2500)
            .hincr(&key, "refunds", count / 40)
            .hincr(&key, "failed", count / 20);
        let total = stats::total_key(&scope);
        pipe.hincr(&total, "gross:gbp", gross)
            .hincr(&total, "succeeded", count)
            .hincr(&total, "refunded:gbp", (count / 40) * 2500)
            .hincr(&total, "refunds", count / 40)
            .hincr(&total, "failed", count / 20);
    }
    for h in 0..(31 * 24) {
        pipe.hincr(
            stats::hour_key(&scope, &stats::hour(now - h * 3600)),
            "failed",
            0,
        );
    }
    let () = pipe
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let fill_ms = filled.elapsed().as_secs_f64() * 1e3;
    let email = "bench@calmony.test";
    match accounts::create_user(&store, email, "bench password 1", &project, Role::Owner).await {
        Ok(_) | Err(accounts::AccountError::Exists(_)) => {}
        Err(e) => return Err(e.to_string()),
    }
    let secret = accounts::start_session(&store, email)
        .await
        .map_err(|e| e.to_string())?;
    let cookie = format!("cp_dash={secret}");
    let path = format!("/dashboard/{project}/test");
    let c2 = c.clone();
    let op: Op = Arc::new(move || {
        let (c, path, cookie) = (c2.clone(), path.clone(), cookie.clone());
        Box::pin(async move {
            let (s, body) = c.http.get_with_cookie(&path, &cookie).await?;
            if s != 200 || !body.windows(13).any(|w| w == b"id=\"gross\">\xc2\xa3") {
                return Err(format!("{path}: status {s}, no figures"));
            }
            Ok(())
        })
    });
    let (stats, mode) = drive(args, op).await;
    let mut r = report("dashboard", mode, Some(stats));
    r.extra.push(("payments_counted".into(), json!(n)));
    r.extra.push(("fill_ms".into(), json!(fill_ms.round())));
    Ok(r)
}

async fn confirm(args: &Args, c: &Arc<Client>) -> Result<Report, String> {
    let pm = c.card().await?;
    let c2 = c.clone();
    // Unique across runs against one daemon (`--url`): the run's start time, then a count.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or_default();
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let keyed = args.idempotency_keys;
    let op: Op = Arc::new(move || {
        let (c, pm) = (c2.clone(), pm.clone());
        let key = keyed.then(|| {
            let n = sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!("bench-{run}-{n}")
        });
        Box::pin(async move {
            let (s, b) = c
                .post_as::<Brief>(
                    "/v1/payment_intents",
                    format!("amount=2500&currency=gbp&payment_method={pm}&confirm=true"),
                    key.as_deref(),
                )
                .await?;
            expect_brief(s, &b, 200)?;
            if b.status != "succeeded" {
                return Err(format!("status {}", b.status));
            }
            Ok(())
        })
    });
    let (stats, mode) = drive(args, op).await;
    Ok(report("confirm", mode, Some(stats)))
}

async fn checkout(args: &Args, c: &Arc<Client>) -> Result<Report, String> {
    let c2 = c.clone();
    let op: Op = Arc::new(move || {
        let c = c2.clone();
        Box::pin(async move {
            let (s, v) = c
                .post_as::<Brief>(
                    "/v1/customers",
                    "email=buyer%40example.com&name=Buyer".into(),
                    None,
                )
                .await?;
            expect_brief(s, &v, 200)?;
            let cus = v.id;
            let (s, v) = c
                .post_as::<Brief>(
                    "/v1/payment_methods",
                    format!("customer={cus}&card[number]=4242424242424242&card[exp_month]=12&card[exp_year]=2030&card[cvc]=123"),
                    None,
                )
                .await?;
            expect_brief(s, &v, 200)?;
            let pm = v.id;
            let (s, v) = c
                .post_as::<Brief>(
                    "/v1/payment_intents",
                    format!(
                        "amount=2500&currency=gbp&customer={cus}&payment_method={pm}&confirm=true"
                    ),
                    None,
                )
                .await?;
            expect_brief(s, &v, 200)
        })
    });
    let (stats, mode) = drive(args, op).await;
    Ok(report("checkout", mode, Some(stats)))
}

/// Events as fast as the API takes them, to one endpoint of a local receiver answering 200;
/// deliveries per second from the first to the last delivery.
async fn webhooks(args: &Args, env: &Env, c: &Arc<Client>) -> Result<Report, String> {
    let rx = Receiver::start().await;
    rx.set(Answer::Ok);
    let (s, v) = c
        .post(
            "/v1/webhook_endpoints",
            format!("url={}&enabled_events[]=customer.created", rx.url),
            None,
        )
        .await?;
    expect(s, &v, 200)?;
    let n = args.count;
    let started = Instant::now();
    let created = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.min(n.max(1)) {
        let (c, created) = (c.clone(), created.clone());
        workers.push(tokio::spawn(async move {
            while created.fetch_add(1, Ordering::Relaxed) < n as u64 {
                let _ = c.post("/v1/customers", "name=Hooked".into(), None).await;
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let api_secs = started.elapsed().as_secs_f64();
    let mut first = None;
    let mut last_count = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last_at = Instant::now();
    while Instant::now() < deadline {
        let got = rx.count();
        if got > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if got != last_count {
            last_count = got;
            last_at = Instant::now();
        }
        if got >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delivered = rx.received().len();
    let unique: HashSet<String> = rx.received().iter().map(|r| r.event_id()).collect();
    let span = started
        .elapsed()
        .as_secs_f64()
        .min(last_at.duration_since(started).as_secs_f64())
        .max(0.001);
    let mut r = report(
        "webhooks",
        format!("{n} events, {} API workers", args.concurrency),
        None,
    );
    r.extra.push(("events".into(), json!(n)));
    r.extra.push(("delivered".into(), json!(delivered)));
    r.extra.push(("unique".into(), json!(unique.len())));
    r.extra.push(("api_seconds".into(), json!(api_secs)));
    r.extra.push(("deliver_secs".into(), json!(span)));
    r.extra.push((
        "deliveries/s".into(),
        json!((delivered as f64 / span).round()),
    ));
    if env.managed() {
        let (drained, secs) = drain_backlog(args, env, c, &rx).await?;
        r.extra.push(("backlog".into(), json!(drained)));
        r.extra.push(("drain_secs".into(), json!(secs)));
        r.extra.push((
            "drain/s".into(),
            json!((drained as f64 / secs.max(0.001)).round()),
        ));
    }
    Ok(r)
}

/// Delivery capacity alone: events whose first try failed wait as retries; the clock moves past
/// their due time, and the whole backlog is sent while nothing else runs.
async fn drain_backlog(
    args: &Args,
    env: &Env,
    c: &Arc<Client>,
    rx: &Receiver,
) -> Result<(usize, f64), String> {
    let n = args.count;
    let before = rx.count();
    rx.set(Answer::Fail);
    let created = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.min(n.max(1)) {
        let (c, created) = (c.clone(), created.clone());
        workers.push(tokio::spawn(async move {
            while created.fetch_add(1, Ordering::Relaxed) < n as u64 {
                let _ = c.post("/v1/customers", "name=Backlog".into(), None).await;
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    if !rx
        .wait(Duration::from_secs(120), |r| r.len() >= before + n)
        .await
    {
        return Err("the first tries of the backlog did not all arrive".into());
    }
    rx.set(Answer::Ok);
    let ok_before = rx.received().iter().filter(|r| r.answered == 200).count();
    let t0 = Instant::now();
    env.cli(&["clock", "advance", "--seconds", "90"])?;
    rx.wait(Duration::from_secs(120), |r| {
        r.iter().filter(|x| x.answered == 200).count() >= ok_before + n
    })
    .await;
    let drained = rx.received().iter().filter(|r| r.answered == 200).count() - ok_before;
    Ok((drained, t0.elapsed().as_secs_f64()))
}

/// One scheduler run over `count` due subscriptions (trials ending together), with the
/// sandbox gateway charging each renewal: renewals per second from the run's start to its end.
async fn renewals(args: &Args, env: &Env, c: &Arc<Client>) -> Result<Report, String> {
    if !env.managed() {
        return Err("the renewals scenario moves its own daemon's clock; drop --url".into());
    }
    let (s, v) = c
        .post("/v1/customers", "name=Renewals".into(), None)
        .await?;
    expect(s, &v, 200)?;
    let cus = v["id"].as_str().unwrap_or("").to_string();
    let (s, v) = c
        .post("/v1/payment_methods", format!("customer={cus}&card[number]=4242424242424242&card[exp_month]=12&card[exp_year]=2035&card[cvc]=123"), None)
        .await?;
    expect(s, &v, 200)?;
    let pm = v["id"].as_str().unwrap_or("").to_string();
    let (s, v) = c
        .post(
            "/v1/prices",
            "currency=gbp&unit_amount=999&recurring[interval]=month&product_data[name]=Plan".into(),
            None,
        )
        .await?;
    expect(s, &v, 200)?;
    let price = v["id"].as_str().unwrap_or("").to_string();
    let n = args.count;
    let made = Arc::new(AtomicU64::new(0));
    let setup = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.min(n.max(1)) {
        let (c, made) = (c.clone(), made.clone());
        let body = format!(
            "customer={cus}&items[0][price]={price}&trial_period_days=1&default_payment_method={pm}"
        );
        workers.push(tokio::spawn(async move {
            while made.fetch_add(1, Ordering::Relaxed) < n as u64 {
                let _ = c.post("/v1/subscriptions", body.clone(), None).await;
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let setup_secs = setup.elapsed().as_secs_f64();
    let url = env.redis_url.clone().ok_or("no redis")?;
    let mut r = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .map_err(|e| e.to_string())?;
    let due_before: u64 = redis::cmd("ZCARD")
        .arg("cp:billing:due")
        .query(&mut r)
        .map_err(|e| e.to_string())?;
    let commands_before = env.redis_commands();
    env.cli(&[
        "clock",
        "advance",
        "--seconds",
        &(2 * 86_400 + 7200).to_string(),
    ])?;
    // The run starts at the next scheduler tick (within a second) and ends when no
    // subscription is due any more.
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut started: Option<Instant> = None;
    loop {
        let running: bool = redis::cmd("EXISTS")
            .arg("cp:billing:run")
            .query(&mut r)
            .unwrap_or(false);
        let offset: i64 = redis::cmd("GET")
            .arg("cp:clock:offset_ms")
            .query::<Option<i64>>(&mut r)
            .ok()
            .flatten()
            .unwrap_or(0);
        let now = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
            + offset)
            / 1000;
        let still_due: u64 = redis::cmd("ZCOUNT")
            .arg("cp:billing:due")
            .arg("-inf")
            .arg(now)
            .query(&mut r)
            .unwrap_or(0);
        if running && started.is_none() {
            started = Some(Instant::now());
        }
        if started.is_some() && !running && still_due == 0 {
            break;
        }
        if Instant::now() > deadline {
            return Err("the run did not finish".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    let commands = commands_before
        .zip(env.redis_commands())
        .map(|(b, a)| a.saturating_sub(b));
    let ledger = sandbox_ledger(env, c).await?;
    let charged = ledger["entries"].as_array().map_or(0, |e| {
        e.iter()
            .filter(|x| {
                x["action"] == "SALE"
                    && (x["responseCode"] == 0 || x["responseCode"] == "0")
                    && x["orderRef"].as_str().is_some_and(|o| o.starts_with("in_"))
            })
            .count()
    });
    let mut rep = report("renewals", format!("{n} subscriptions due at once"), None);
    rep.extra.push(("setup_secs".into(), json!(setup_secs)));
    rep.extra.push(("due".into(), json!(due_before)));
    rep.extra.push(("renewed".into(), json!(charged)));
    rep.extra.push(("run_secs".into(), json!(secs)));
    rep.extra.push((
        "renewals/s".into(),
        json!((charged as f64 / secs.max(0.001)).round()),
    ));
    if let Some(n) = commands {
        // The whole run, scheduler bookkeeping included, over the renewals it made.
        rep.extra.push((
            "redis/renewal".into(),
            json!((n as f64 / charged.max(1) as f64 * 10.0).round() / 10.0),
        ));
    }
    Ok(rep)
}

/// `confirm` under load while the daemon is SIGKILLed at random moments and restarted; then
/// payments accepted but lost, and cards charged twice (from the sandbox ledger).
async fn crash(args: &Args, env: &mut Env, c: &Arc<Client>) -> Result<Report, String> {
    if !env.managed() {
        return Err("the crash scenario starts and kills its own daemon; drop --url".into());
    }
    let pm = c.card().await?;
    // key -> (client saw succeeded, intent id)
    let seen: Arc<std::sync::Mutex<HashMap<String, (bool, String)>>> = Arc::default();
    let seq = Arc::new(AtomicU64::new(0));
    let mut kills = 0;
    let started = Instant::now();
    while kills < args.kills {
        let stop_at = Instant::now() + Duration::from_millis(rand::rng().random_range(300..1500));
        let mut workers = Vec::new();
        for _ in 0..args.concurrency {
            let (c, pm, seen, seq) = (c.clone(), pm.clone(), seen.clone(), seq.clone());
            workers.push(tokio::spawn(async move {
                while Instant::now() < stop_at + Duration::from_secs(5) {
                    let key = format!("crash-{}", seq.fetch_add(1, Ordering::Relaxed));
                    let r = c
                        .post_as::<Brief>(
                            "/v1/payment_intents",
                            format!("amount=2500&currency=gbp&payment_method={pm}&confirm=true"),
                            Some(&key),
                        )
                        .await;
                    match r {
                        Ok((200, b)) => {
                            let ok = b.status == "succeeded";
                            let id = b.id;
                            seen.lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(key, (ok, id));
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            }));
        }
        tokio::time::sleep_until(stop_at.into()).await;
        env.kill9();
        kills += 1;
        for w in workers {
            let _ = w.await;
        }
        env.start_daemon().await?;
    }
    // Let recovery finish everything accepted.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut processing = usize::MAX;
    while Instant::now() < deadline {
        processing = count_status(env, "processing")?;
        if processing == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ledger = sandbox_ledger(env, c).await?;
    let mut sales: HashMap<String, usize> = HashMap::new();
    for e in ledger["entries"].as_array().cloned().unwrap_or_default() {
        if e["action"] == "SALE" && (e["responseCode"] == 0 || e["responseCode"] == "0") {
            *sales
                .entry(e["orderRef"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
    }
    let doubled = sales.values().filter(|n| **n > 1).count();
    let confirmed: Vec<(String, String)> = seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(_, (ok, _))| *ok)
        .map(|(k, (_, id))| (k.clone(), id.clone()))
        .collect();
    let mut lost = 0;
    for (_, id) in &confirmed {
        let (s, v) = c.get(&format!("/v1/payment_intents/{id}")).await?;
        if s != 200 || v["status"] != "succeeded" || !sales.contains_key(id) {
            lost += 1;
        }
    }
    let succeeded = count_status(env, "succeeded")?;
    let mut r = report(
        "crash",
        format!("{} SIGKILLs, {} workers", args.kills, args.concurrency),
        None,
    );
    r.extra
        .push(("seconds".into(), json!(started.elapsed().as_secs_f64())));
    r.extra.push(("answered_ok".into(), json!(confirmed.len())));
    r.extra.push(("succeeded".into(), json!(succeeded)));
    r.extra.push(("processing".into(), json!(processing)));
    r.extra.push(("lost".into(), json!(lost)));
    r.extra.push(("doubled".into(), json!(doubled)));
    Ok(r)
}

/// Intents in a status, read straight from Redis (the daemon may be between lives).
fn count_status(env: &Env, status: &str) -> Result<usize, String> {
    let url = env.redis_url.as_ref().ok_or("no redis")?;
    let mut c = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .map_err(|e| e.to_string())?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("cp:*:obj:pi_*")
        .query(&mut c)
        .map_err(|e| e.to_string())?;
    let needle = format!("\"status\":\"{status}\"");
    let mut n = 0;
    for k in keys {
        // Records are stored packed (`store::packed`).
        let stored: Vec<u8> = redis::cmd("HGET")
            .arg(&k)
            .arg("json")
            .query(&mut c)
            .unwrap_or_default();
        let json = calmony_actors::store::packed::text(stored).unwrap_or_default();
        if json.contains(&needle) {
            n += 1;
        }
    }
    Ok(n)
}
