//! Who may use the admin port: a bearer token or basic authentication
//! (compared in constant time), and HTTPS through the listeners' TLS.

use std::net::SocketAddr;
use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

use crate::config::AdminConfig;
use crate::server::tls::Tls;

/// The credentials the admin port accepts (none: open).
pub struct Access {
    token: Option<String>,
    basic: Option<String>,
}

impl Access {
    pub fn new(config: &AdminConfig) -> Access {
        Access {
            token: config.token.clone(),
            basic: config.basic_auth.clone(),
        }
    }

    /// Whether an `Authorization` header value is accepted.
    fn accepts(&self, authorization: Option<&str>) -> bool {
        if self.token.is_none() && self.basic.is_none() {
            return true;
        }
        let Some((scheme, value)) = authorization.and_then(|a| a.split_once(' ')) else {
            return false;
        };
        let same = |a: &str, b: &str| verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok();
        match (
            scheme.to_ascii_lowercase().as_str(),
            &self.token,
            &self.basic,
        ) {
            ("bearer", Some(token), _) => same(value.trim(), token),
            ("basic", _, Some(basic)) => BASE64
                .decode(value.trim())
                .ok()
                .and_then(|decoded| String::from_utf8(decoded).ok())
                .is_some_and(|given| same(&given, basic)),
            _ => false,
        }
    }
}

/// Refuses requests without accepted credentials (401, asking for them).
pub async fn check(State(access): State<Arc<Access>>, request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if access.accepts(authorization) {
        return next.run(request).await;
    }
    let challenge = if access.token.is_some() {
        "Bearer realm=\"silt\""
    } else {
        "Basic realm=\"silt\""
    };
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
        "authentication required\n",
    )
        .into_response()
}

/// The admin port over TLS: handshakes run in their own tasks (a client
/// that never finishes one holds up no one); failed ones are dropped.
pub struct TlsListener {
    local: SocketAddr,
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

/// How long an admin client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl TlsListener {
    /// Accepts on `tcp` (until the listener is dropped), handshaking with
    /// `tls`.
    pub fn new(tcp: TcpListener, tls: Arc<Tls>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (done, ready) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let Ok((socket, peer)) = tcp.accept().await else {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                };
                let (tls, handed) = (tls.clone(), done.clone());
                tokio::spawn(async move {
                    let handshake = tls.acceptor().accept(socket);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Ok(stream)) => {
                            let _ = handed.send((stream, peer)).await;
                        }
                        _ => tracing::info!(%peer, "admin TLS handshake failed"),
                    }
                });
                if done.is_closed() {
                    return;
                }
            }
        });
        Ok(TlsListener { local, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task only stops once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_or_basic_credentials_are_required_when_configured() {
        let open = Access::new(&AdminConfig::default());
        assert!(open.accepts(None));
        let access = Access::new(&AdminConfig {
            token: Some("s3cret".into()),
            basic_auth: Some("ops:pw".into()),
            ..AdminConfig::default()
        });
        assert!(access.accepts(Some("Bearer s3cret")));
        assert!(!access.accepts(Some("Bearer s3cre")));
        assert!(access.accepts(Some(&format!("Basic {}", BASE64.encode("ops:pw")))));
        assert!(!access.accepts(Some(&format!("Basic {}", BASE64.encode("ops:no")))));
        assert!(!access.accepts(None));
        assert!(!access.accepts(Some("s3cret")));
    }
}
