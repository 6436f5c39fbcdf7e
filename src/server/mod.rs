//! The Kafka listener: the accept loop and one task per connection.
//!
//! `run(listener, broker, shutdown)` is the one entry point for `main` and
//! tests. On shutdown it stops accepting, lets every connection finish the
//! requests it has read, and returns once they are closed.

mod connection;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;

/// Serves Kafka clients on `listener` until `shutdown` is cancelled.
pub async fn run(listener: TcpListener, broker: Arc<Broker>, shutdown: CancellationToken) {
    let connections = TaskTracker::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    if let Err(e) = socket.set_nodelay(true) {
                        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
                    }
                    let broker = broker.clone();
                    let shutdown = shutdown.clone();
                    connections.spawn(async move {
                        connection::serve(socket, peer, broker, shutdown).await;
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            () = shutdown.cancelled() => break,
        }
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}
