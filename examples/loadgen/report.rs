//! What a run counts and how it is reported: live counters, latency
//! histograms, a progress line a second, the final table and JSON line.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

use crate::metrics::{self, Scrape};

/// Messages and bytes done so far, and errors.
#[derive(Default)]
pub struct Counters {
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: AtomicU64,
}

impl Counters {
    pub fn reset(&self) {
        for counter in [&self.messages, &self.bytes, &self.errors] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// A latency histogram (microseconds, up to 10 minutes), shared by threads.
#[derive(Clone)]
pub struct Latency(Arc<Mutex<Histogram<u64>>>);

impl Default for Latency {
    fn default() -> Self {
        let histogram = Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds");
        Latency(Arc::new(Mutex::new(histogram)))
    }
}

impl Latency {
    pub fn record(&self, latency: Duration) {
        let micros = (latency.as_micros() as u64).clamp(1, 600_000_000);
        self.0
            .lock()
            .unwrap()
            .record(micros)
            .expect("within bounds");
    }

    pub fn reset(&self) {
        self.0.lock().unwrap().reset();
    }
}

/// Prints the rate of `counters` on stderr every second until dropped.
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    pub fn start(what: &'static str, counters: Arc<Counters>) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let (mut messages, mut bytes) = (0, 0);
            for second in 1.. {
                let next = start + Duration::from_secs(second);
                while Instant::now() < next {
                    if stopped.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let m = counters.messages.load(Ordering::Relaxed);
                let b = counters.bytes.load(Ordering::Relaxed);
                eprintln!(
                    "  {second:>4} s: {what} {m} messages, {} msgs/s, {:.1} MB/s",
                    m - messages,
                    (b - bytes) as f64 / 1e6
                );
                (messages, bytes) = (m, b);
            }
        });
        Progress {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The figures of one run: a table for people, a JSON line for scripts.
pub struct Report {
    kind: &'static str,
    rows: Vec<(String, String)>,
    json: Map<String, Value>,
}

impl Report {
    pub fn new(kind: &'static str, counters: &Counters, seconds: f64) -> Report {
        let messages = counters.messages.load(Ordering::Relaxed);
        let bytes = counters.bytes.load(Ordering::Relaxed);
        let errors = counters.errors.load(Ordering::Relaxed);
        let (msgs_per_s, mb_per_s) = (messages as f64 / seconds, bytes as f64 / seconds / 1e6);
        let mut report = Report {
            kind,
            rows: Vec::new(),
            json: Map::new(),
        };
        report.row(
            "messages",
            messages.to_string(),
            "messages",
            json!(messages),
        );
        report.json.insert("bytes".into(), json!(bytes));
        report.row(
            "seconds",
            format!("{seconds:.2}"),
            "seconds",
            json!(round(seconds, 3)),
        );
        report.row(
            "throughput",
            format!("{msgs_per_s:.0} msgs/s, {mb_per_s:.1} MB/s"),
            "mb_per_s",
            json!(round(mb_per_s, 1)),
        );
        report
            .json
            .insert("msgs_per_s".into(), json!(msgs_per_s.round()));
        report.row("errors", errors.to_string(), "errors", json!(errors));
        report
    }

    /// Adds a latency distribution; its JSON fields start with `prefix`.
    pub fn latency(&mut self, prefix: &str, label: &str, latency: &Latency) {
        let h = latency.0.lock().unwrap();
        let ms = |micros: u64| round(micros as f64 / 1000.0, 3);
        let quantiles = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)];
        let mut shown = Vec::new();
        for (name, q) in quantiles {
            let value = ms(h.value_at_quantile(q));
            shown.push(format!("{value}"));
            self.json.insert(format!("{prefix}{name}_ms"), json!(value));
        }
        shown.push(format!("{}", ms(h.max())));
        self.json
            .insert(format!("{prefix}max_ms"), json!(ms(h.max())));
        self.rows.push((
            format!("{label} p50 / p90 / p99 / p99.9 / max"),
            format!("{} ms", shown.join(" / ")),
        ));
    }

    /// Adds the broker's own figures over the run, if `admin` names its
    /// admin port; `before` is the scrape taken when the run started.
    pub fn broker(&mut self, admin: Option<&str>, before: Option<Scrape>) {
        let (Some(admin), Some(before)) = (admin, before) else {
            return;
        };
        let after = metrics::scrape(admin);
        let gib = self.json["bytes"].as_u64().unwrap_or(0) as f64 / (1u64 << 30) as f64;
        let figures = metrics::BrokerFigures::between(&before, &after);
        let per_gib = |n: f64| if gib > 0.0 { n / gib } else { 0.0 };
        for (what, count, field) in [
            ("PUTs", figures.puts, "broker_puts"),
            ("GETs", figures.gets, "broker_gets"),
        ] {
            self.row(
                &format!("broker: object-store {what} (per GiB)"),
                format!("{count} ({:.0})", per_gib(count)),
                field,
                json!(count),
            );
            self.json
                .insert(format!("{field}_per_gib"), json!(per_gib(count).round()));
        }
        self.row(
            "broker: object-store MB written / read",
            format!(
                "{:.1} / {:.1}",
                figures.put_bytes / 1e6,
                figures.get_bytes / 1e6
            ),
            "broker_put_mb",
            json!(round(figures.put_bytes / 1e6, 1)),
        );
        self.json.insert(
            "broker_get_mb".into(),
            json!(round(figures.get_bytes / 1e6, 1)),
        );
        if let Some(p99) = figures.put_p99_seconds {
            self.row(
                "broker: PUT latency p99",
                format!("{:.0} ms", p99 * 1000.0),
                "broker_put_p99_ms",
                json!((p99 * 1000.0).round()),
            );
        }
        if let Some((p50, p99)) = figures.end_txn_seconds {
            self.row(
                "broker: EndTxn p50 / p99",
                format!("{:.1} / {:.1} ms", p50 * 1000.0, p99 * 1000.0),
                "broker_end_txn_p50_ms",
                json!(round(p50 * 1000.0, 1)),
            );
            self.json.insert(
                "broker_end_txn_p99_ms".into(),
                json!(round(p99 * 1000.0, 1)),
            );
        }
        self.row(
            "broker: WAL fsyncs",
            figures.wal_fsyncs.to_string(),
            "broker_wal_fsyncs",
            json!(figures.wal_fsyncs),
        );
        if let Some(seconds) = figures.cpu_seconds {
            self.cpu("broker", seconds);
        }
        self.row(
            "broker: peak RSS",
            format!("{:.0} MB", figures.peak_rss_bytes / 1e6),
            "broker_peak_rss_mb",
            json!((figures.peak_rss_bytes / 1e6).round()),
        );
    }

    /// Adds the CPU time this load generator used since `before` (its
    /// [`silt::admin::cpu_seconds`] when the run started).
    pub fn client_cpu(&mut self, before: Option<f64>) {
        if let (Some(before), Some(now)) = (before, silt::admin::cpu_seconds()) {
            self.cpu("client", now - before);
        }
    }

    /// A CPU time row for `who`, also per GB moved: what one gigabyte
    /// costs it, to set against the cores the machine has.
    fn cpu(&mut self, who: &str, seconds: f64) {
        let gb = self.json["bytes"].as_u64().unwrap_or(0) as f64 / 1e9;
        let per_gb = if gb > 0.0 { seconds / gb } else { 0.0 };
        self.row(
            &format!("{who}: CPU seconds (per GB)"),
            format!("{seconds:.2} ({per_gb:.2})"),
            &format!("{who}_cpu_s"),
            json!(round(seconds, 2)),
        );
        self.json
            .insert(format!("{who}_cpu_s_per_gb"), json!(round(per_gb, 2)));
    }

    fn row(&mut self, label: &str, shown: String, field: &str, value: Value) {
        self.rows.push((label.to_string(), shown));
        self.json.insert(field.to_string(), value);
    }

    /// The table, then the JSON line (last, for scripts).
    pub fn print(mut self) {
        println!("| {} | value |\n|---|---|", self.kind);
        for (label, shown) in &self.rows {
            println!("| {label} | {shown} |");
        }
        self.json.insert("kind".into(), json!(self.kind));
        println!("{}", Value::Object(self.json));
    }
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// Loopback TCP throughput: one thread writes `gib` GiB in 1 MiB writes,
/// another reads it.
pub fn tcp_baseline(gib: u64) -> Report {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let chunk = vec![0x5au8; 1 << 20];
    let chunks = gib * 1024;
    let counters = Counters::default();
    let start = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut out = std::net::TcpStream::connect(addr).expect("connect");
            for _ in 0..chunks {
                out.write_all(&chunk).expect("write");
            }
        });
        let (mut input, _) = listener.accept().expect("accept");
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            match input.read(&mut buffer).expect("read") {
                0 => break,
                n => counters.bytes.fetch_add(n as u64, Ordering::Relaxed),
            };
        }
    });
    counters.messages.store(chunks, Ordering::Relaxed);
    Report::new("tcp-baseline", &counters, start.elapsed().as_secs_f64())
}
