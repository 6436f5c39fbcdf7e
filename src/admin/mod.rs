//! The admin HTTP port: Prometheus metrics at `/metrics`, the JSON API
//! under `/api/v1` ([`api`]), the Iceberg REST catalog under `/iceberg`
//! ([`catalog`]) and `/health`,
//! over HTTPS with `[admin] tls_cert`, and behind a bearer token or basic
//! authentication with `[admin] token` / `basic_auth` (`/health` stays
//! open for load balancers).
//!
//! Metrics are recorded where things happen (`metrics` macros); this module
//! installs the Prometheus recorder, adds what is computed on scrape
//! (buffered bytes, and [`scrape`]'s families), and serves it.

mod access;
mod api;
mod catalog;
mod scrape;

pub use scrape::cpu_seconds;

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
        .merge(api::routes())
        .merge(catalog::routes())
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
    metrics::gauge!("silt_unflushed_bytes").set(broker.log.unflushed_bytes() as f64);
    metrics::gauge!("silt_unflushed_bytes_limit")
        .set(broker.config.limits.max_unflushed_bytes as f64);
    metrics::gauge!("silt_wal_bytes").set(broker.log.wal_bytes() as f64);
    let mut text = handle.render();
    text.push_str(&scrape::render(&broker).await);
    text
}
