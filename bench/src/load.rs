//! Load shapes and statistics.
//!
//! Closed loop: `concurrency` workers, each starting its next operation when the last ends;
//! this finds the saturation throughput. Open loop: operations start on a fixed schedule of
//! `rate` per second whatever the daemon does, and latency counts from the scheduled start,
//! so queueing inside the daemon shows in the percentiles (no coordinated omission).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One operation: `Ok(())` or an error description.
pub type Op =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

#[derive(Default)]
pub struct Samples {
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

pub struct Stats {
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
}

impl Stats {
    pub fn throughput(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(0.001)
    }

    pub fn json(&self) -> Value {
        json!({
            "ops": self.ops, "errors": self.errors, "seconds": self.elapsed.as_secs_f64(),
            "throughput_per_s": self.throughput(),
            "p50_ms": self.p50_ms, "p90_ms": self.p90_ms, "p99_ms": self.p99_ms, "p99_9_ms": self.p999_ms,
            "first_error": self.first_error,
        })
    }
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn finish(samples: Samples, elapsed: Duration) -> Stats {
    let mut l = samples.latencies_us;
    l.sort_unstable();
    Stats {
        ops: l.len() as u64,
        errors: samples.errors,
        first_error: samples.first_error,
        elapsed,
        p50_ms: percentile(&l, 0.50),
        p90_ms: percentile(&l, 0.90),
        p99_ms: percentile(&l, 0.99),
        p999_ms: percentile(&l, 0.999),
    }
}

fn record(samples: &Mutex<Samples>, started: Instant, result: Result<(), String>) {
    let mut s = samples.lock().unwrap_or_else(|p| p.into_inner());
    match result {
        Ok(()) => s.latencies_us.push(started.elapsed().as_micros() as u64),
        Err(e) => {
            s.errors += 1;
            if s.first_error.is_none() {
                s.first_error = Some(e);
            }
        }
    }
}

pub async fn closed(duration: Duration, concurrency: usize, op: Op) -> Stats {
    let samples = Arc::new(Mutex::new(Samples::default()));
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (op, samples) = (op.clone(), samples.clone());
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let t = Instant::now();
                let r = op().await;
                record(&samples, t, r);
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let elapsed = start.elapsed();
    let s = std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()));
    finish(s, elapsed)
}

pub async fn open(duration: Duration, rate: f64, op: Op) -> Stats {
    let samples = Arc::new(Mutex::new(Samples::default()));
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let total = (duration.as_secs_f64() * rate) as u64;
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        let (op, samples) = (op.clone(), samples.clone());
        tasks.push(tokio::spawn(async move {
            let r = op().await;
            record(&samples, scheduled, r);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed();
    let s = std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()));
    finish(s, elapsed)
}
