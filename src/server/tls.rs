//! TLS for SSL listeners (rustls, TLS 1.2 and 1.3): the certificate chain
//! and key from PEM files, optional client certificates checked against a
//! CA, and the files read again when they change, so certificates are
//! renewed without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use crate::config::{ClientAuth, ListenerConfig};

/// Why a listener's TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("listener {listener}: {reason}")]
pub struct TlsError {
    listener: String,
    reason: String,
}

/// The files a listener's TLS comes from.
#[derive(Debug, Clone)]
struct Files {
    cert: PathBuf,
    key: PathBuf,
    client_auth: ClientAuth,
    client_ca: Option<PathBuf>,
}

/// A listener's TLS: the acceptor for new connections, rebuilt when its
/// files change.
pub struct Tls {
    listener: String,
    files: Files,
    current: Mutex<(Vec<Option<SystemTime>>, TlsAcceptor)>,
}

impl Tls {
    /// Loads the TLS settings of `listener` (an SSL listener).
    pub fn load(listener: &ListenerConfig) -> Result<Tls, TlsError> {
        let (Some(cert), Some(key)) = (&listener.tls_cert, &listener.tls_key) else {
            return Err(TlsError {
                listener: listener.name.clone(),
                reason: "an SSL listener needs tls_cert and tls_key".into(),
            });
        };
        Tls::from_files(
            &listener.name,
            Files {
                cert: cert.clone(),
                key: key.clone(),
                client_auth: listener.tls_client_auth,
                client_ca: listener.tls_client_ca.clone(),
            },
        )
    }

    /// TLS with certificate `cert` and key `key`, no client certificates
    /// (the admin port).
    pub fn server_only(name: &str, cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        Tls::from_files(
            name,
            Files {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                client_auth: ClientAuth::None,
                client_ca: None,
            },
        )
    }

    fn from_files(name: &str, files: Files) -> Result<Tls, TlsError> {
        let acceptor = files.acceptor().map_err(|reason| TlsError {
            listener: name.to_string(),
            reason,
        })?;
        Ok(Tls {
            listener: name.to_string(),
            current: Mutex::new((files.modified(), acceptor)),
            files,
        })
    }

    /// The acceptor for a new connection: the files as they are now (if
    /// they changed and no longer load, the last good ones, logged).
    pub fn acceptor(&self) -> TlsAcceptor {
        let mut current = self.current.lock().expect("TLS state poisoned");
        let modified = self.files.modified();
        if modified != current.0 {
            match self.files.acceptor() {
                Ok(acceptor) => {
                    tracing::info!(listener = %self.listener, "TLS certificates reloaded");
                    *current = (modified, acceptor);
                }
                Err(reason) => {
                    tracing::warn!(listener = %self.listener, %reason, "changed TLS files do not load; keeping the previous ones");
                    current.0 = modified;
                }
            }
        }
        current.1.clone()
    }
}

impl Files {
    /// When each file was last modified (`None`: unreadable).
    fn modified(&self) -> Vec<Option<SystemTime>> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect()
    }

    fn acceptor(&self) -> Result<TlsAcceptor, String> {
        let read = |what: &str, path: &PathBuf, e: &dyn std::fmt::Display| {
            format!("cannot read the {what} {}: {e}", path.display())
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|certs| certs.collect())
            .map_err(|e| read("certificate chain", &self.cert, &e))?;
        if chain.is_empty() {
            return Err(format!("no certificate in {}", self.cert.display()));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| read("private key", &self.key, &e))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = match (self.client_auth, &self.client_ca) {
            (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
            (auth, Some(ca)) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in
                    CertificateDer::pem_file_iter(ca).map_err(|e| read("client CA", ca, &e))?
                {
                    let cert = cert.map_err(|e| read("client CA", ca, &e))?;
                    roots.add(cert).map_err(|e| read("client CA", ca, &e))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if auth == ClientAuth::Requested {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| format!("the certificate and key do not fit: {e}"))?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}
