//! The admin HTTP port: Prometheus metrics at `/metrics` and `/health`,
//! over HTTPS with `[admin] tls_cert`, and behind a bearer token or basic
//! authentication with `[admin] token` / `basic_auth` (`/health` stays
//! open for load balancers).
//!
//! Metrics are recorded where things happen (`metrics` macros); this module
//! installs the Prometheus recorder, adds what is computed on scrape
//! (consumer lag per group and partition, buffered bytes, resident
//! memory, CPU time), and serves it.

mod access;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::server::tls::{Tls, TlsError};

/// Latency buckets (seconds) for every `*_seconds` histogram: fine below
/// 1 ms for fsyncs and local requests, and from 50 to 500 ms where object
/// store requests and `object`-durability produces land.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// The process-wide Prometheus recorder, installed on first use.
pub fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .expect("the buckets are not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed")
    })
}

/// The admin port's TLS, if `[admin]` asks for it.
pub fn tls(broker_config: &crate::config::Config) -> Result<Option<Arc<Tls>>, TlsError> {
    let admin = &broker_config.admin;
    match (&admin.tls_cert, &admin.tls_key) {
        (Some(cert), Some(key)) => Ok(Some(Arc::new(Tls::server_only("admin", cert, key)?))),
        _ => Ok(None),
    }
}

/// Serves `/metrics` and `/health` on `listener` (over `tls`, if given)
/// until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<Tls>>,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
) {
    let access = access::Access::new(&broker.config.admin);
    let guarded = Router::new()
        .route("/metrics", get(render_metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::new(access),
            access::check,
        ));
    let app = guarded.route("/health", get(health)).with_state(broker);
    let stopped = async move { shutdown.cancelled().await };
    let served = match tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
        }
        Some(tls) => match access::TlsListener::new(listener, tls) {
            Ok(listener) => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            }
            Err(e) => Err(e),
        },
    };
    if let Err(e) = served {
        tracing::error!(error = %e, "the admin HTTP server failed");
    }
}

/// 200 while the broker serves, else 503 (for load balancers' checks).
async fn health(State(broker): State<Arc<Broker>>) -> (axum::http::StatusCode, &'static str) {
    if broker.serving() {
        (axum::http::StatusCode::OK, "ok\n")
    } else {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "not serving: etcd has not confirmed this broker's registration\n",
        )
    }
}

async fn render_metrics(State(broker): State<Arc<Broker>>) -> String {
    let handle = recorder();
    handle.run_upkeep();
    for (group, _, _) in broker.groups.list().await {
        for lag in broker.consumer_lag(&group).await {
            metrics::gauge!(
                "silt_consumer_lag",
                "group" => group.clone(),
                "topic" => lag.topic,
                "partition" => lag.partition.to_string()
            )
            .set(lag.lag as f64);
        }
    }
    metrics::gauge!("silt_unflushed_bytes").set(broker.log.unflushed_bytes() as f64);
    metrics::gauge!("silt_wal_bytes").set(broker.log.wal_bytes() as f64);
    if let Some((resident, peak)) = resident_memory() {
        metrics::gauge!("process_resident_memory_bytes").set(resident as f64);
        metrics::gauge!("process_resident_memory_peak_bytes").set(peak as f64);
    }
    if let Some(seconds) = cpu_seconds() {
        metrics::gauge!("process_cpu_seconds_total").set(seconds);
    }
    handle.render()
}

/// This process's CPU time so far, user and system, in seconds (Linux:
/// `/proc/self/stat` counts it in USER_HZ, 100 per second).
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may
    // hold spaces; utime and stime are fields 14 and 15 of the line.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

/// This process's resident memory and its peak, in bytes (Linux).
fn resident_memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = |field: &str| {
        let line = status.lines().find(|l| l.starts_with(field))?;
        let value = line[field.len()..].trim().trim_end_matches("kB").trim();
        value.parse::<u64>().ok().map(|k| k * 1024)
    };
    Some((kib("VmRSS:")?, kib("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_count_the_work_done() {
        let start = cpu_seconds().expect("/proc/self/stat");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut spins = 0u64;
        while cpu_seconds().unwrap() < start + 0.05 {
            assert!(std::time::Instant::now() < deadline, "no CPU time counted");
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }
}
