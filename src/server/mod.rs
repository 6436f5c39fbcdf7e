//! The Kafka listeners: one accept loop per listener and one task per
//! connection.
//!
//! `run(listeners, broker, shutdown)` is the one entry point for `main` and
//! tests. On shutdown it stops accepting, lets every connection finish the
//! requests it has read, and returns once they are closed.

mod connection;
pub mod limits;
mod throttle;
pub mod tls;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::config::SaslMechanism;
use crate::session::Session;
use limits::ConnectionLimits;

/// A bound listener, its name, its TLS (SSL and SASL_SSL listeners) and
/// the SASL mechanisms it offers (SASL listeners).
pub struct Bound {
    pub socket: TcpListener,
    pub name: Arc<str>,
    pub tls: Option<Arc<tls::Tls>>,
    pub sasl: Option<Arc<[SaslMechanism]>>,
}

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves Kafka clients on every listener until `shutdown` is cancelled.
pub async fn run(listeners: Vec<Bound>, broker: Arc<Broker>, shutdown: CancellationToken) {
    let connections = TaskTracker::new();
    let accepting = TaskTracker::new();
    let limits = ConnectionLimits::new(&broker.config.limits);
    for listener in listeners {
        accepting.spawn(accept(
            listener,
            broker.clone(),
            limits.clone(),
            connections.clone(),
            shutdown.clone(),
        ));
    }
    accepting.close();
    accepting.wait().await;
    connections.close();
    connections.wait().await;
}

/// Accepts connections on `listener` until `shutdown`.
async fn accept(
    listener: Bound,
    broker: Arc<Broker>,
    limits: Arc<ConnectionLimits>,
    connections: TaskTracker,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            accepted = listener.socket.accept() => match accepted {
                Ok((socket, peer)) => {
                    let counted = match limits.admit(peer.ip().to_canonical(), std::time::Instant::now()) {
                        Ok(counted) => counted,
                        Err(refusal) => {
                            tracing::info!(%peer, reason = %refusal, "connection refused");
                            metrics::counter!("silt_connections_refused_total", "reason" => refusal.label()).increment(1);
                            continue;
                        }
                    };
                    if let Err(e) = socket.set_nodelay(true) {
                        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
                    }
                    let session = Session::new(peer, listener.name.clone(), listener.sasl.clone());
                    let (broker, shutdown) = (broker.clone(), shutdown.clone());
                    let tls = listener.tls.as_ref().map(|tls| tls.acceptor());
                    connections.spawn(async move {
                        let _counted = counted;
                        let Some(tls) = tls else {
                            let (reader, writer) = socket.into_split();
                            connection::serve(reader, writer, session, broker, shutdown).await;
                            return;
                        };
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(socket)).await {
                            Ok(Ok(stream)) => {
                                let certificate = stream.get_ref().1.peer_certificates().and_then(|c| c.first());
                                if let Some(der) = certificate {
                                    let Some(principal) = broker.principals.principal(der) else {
                                        tracing::info!(%peer, "no principal for the client certificate (ssl_principal_mapping_rules): connection refused");
                                        return;
                                    };
                                    session.set_certificate_principal(principal);
                                }
                                let (reader, writer) = tokio::io::split(stream);
                                connection::serve(reader, writer, session, broker, shutdown).await;
                            }
                            Ok(Err(e)) => tracing::info!(%peer, error = %e, "TLS handshake failed"),
                            Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            () = shutdown.cancelled() => return,
        }
    }
}
