//! The broker's own figures, scraped from its Prometheus `/metrics`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One scrape: each sample line's `name{labels}` and value.
pub struct Scrape(HashMap<String, f64>);

/// Reads `http://ADMIN/metrics`; exits naming the address if it cannot.
pub fn scrape(admin: &str) -> Scrape {
    let text = fetch(admin).unwrap_or_else(|e| {
        eprintln!("loadgen: cannot read http://{admin}/metrics: {e}");
        std::process::exit(1)
    });
    let samples = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(series, value)| Some((series.to_string(), value.parse().ok()?)))
        .collect();
    Scrape(samples)
}

fn fetch(admin: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(admin)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {admin}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok(body.to_string())
}

impl Scrape {
    /// Whether the broker reports `name` at all.
    fn has(&self, name: &str) -> bool {
        self.0
            .keys()
            .any(|series| series.split('{').next() == Some(name))
    }

    /// The sum of the samples of `name` whose labels contain every one of
    /// `labels` (e.g. `kind="put"`).
    fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.0
            .iter()
            .filter(|(series, _)| {
                series.split('{').next() == Some(name) && labels.iter().all(|l| series.contains(l))
            })
            .map(|(_, v)| v)
            .sum()
    }
}

/// What the broker did between two scrapes.
pub struct BrokerFigures {
    /// Object-store PUT requests, whatever their outcome (each one costs).
    pub puts: f64,
    /// Object-store GET requests (whole or ranged).
    pub gets: f64,
    pub put_bytes: f64,
    pub get_bytes: f64,
    pub wal_fsyncs: f64,
    /// The broker's peak resident memory so far.
    pub peak_rss_bytes: f64,
    /// The 99th percentile of PUT latency, in seconds, if there were PUTs.
    pub put_p99_seconds: Option<f64>,
    /// The broker's CPU time over the run, if it reports its own.
    pub cpu_seconds: Option<f64>,
    /// The 50th and 99th percentiles of EndTxn requests (the round trip of
    /// a transaction's commit), in seconds, if there were any.
    pub end_txn_seconds: Option<(f64, f64)>,
}

impl BrokerFigures {
    pub fn between(before: &Scrape, after: &Scrape) -> BrokerFigures {
        let delta =
            |name: &str, labels: &[&str]| after.sum(name, labels) - before.sum(name, labels);
        let requests = "silt_object_store_requests_total";
        BrokerFigures {
            puts: delta(requests, &["kind=\"put\""]) + delta(requests, &["kind=\"put_multipart\""]),
            gets: delta(requests, &["kind=\"get\""]) + delta(requests, &["kind=\"get_ranges\""]),
            put_bytes: delta("silt_object_store_bytes_total", &["direction=\"out\""]),
            get_bytes: delta("silt_object_store_bytes_total", &["direction=\"in\""]),
            wal_fsyncs: delta("silt_wal_fsyncs_total", &[]),
            peak_rss_bytes: after.sum("process_resident_memory_peak_bytes", &[]),
            put_p99_seconds: quantile_between(before, after, PUTS, 0.99),
            end_txn_seconds: quantile_between(before, after, END_TXN, 0.5)
                .zip(quantile_between(before, after, END_TXN, 0.99)),
            cpu_seconds: after
                .has("process_cpu_seconds_total")
                .then(|| delta("process_cpu_seconds_total", &[])),
        }
    }
}

/// A latency histogram's buckets: its name and the label of the series.
type Series = (&'static str, &'static str);
const PUTS: Series = ("silt_object_store_request_seconds_bucket", "kind=\"put\"");
const END_TXN: Series = ("silt_request_seconds_bucket", "api=\"EndTxn\"");

/// A quantile of the latency histogram `series` between two scrapes,
/// interpolated within its bucket as Prometheus' `histogram_quantile`
/// does.
fn quantile_between(before: &Scrape, after: &Scrape, series: Series, q: f64) -> Option<f64> {
    let (name, kind) = series;
    // (upper bound, requests at or below it) in the run, by bound.
    let mut buckets: Vec<(f64, f64)> = after
        .0
        .iter()
        .filter(|(series, _)| series.starts_with(name) && series.contains(kind))
        .filter_map(|(series, count)| {
            let le = series.split("le=\"").nth(1)?.split('"').next()?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((bound, count - before.0.get(series).copied().unwrap_or(0.0)))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let (mut lower, mut below) = (0.0, 0.0);
    for (bound, count) in buckets {
        if count >= q * total {
            if bound.is_infinite() {
                return Some(lower);
            }
            return Some(lower + (bound - lower) * (q * total - below) / (count - below));
        }
        (lower, below) = (bound, count);
    }
    None
}
