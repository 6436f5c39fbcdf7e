//! Who a request comes from: the client's address, the listener it
//! connected to (clients are told the addresses advertised on it), and on
//! SASL listeners the principal it authenticated as.
//!
//! A SASL listener's connection starts unauthenticated: until a
//! SaslHandshake and SaslAuthenticate exchange succeeds it may send only
//! those and ApiVersions, in small frames. An authentication may expire
//! (`connections_max_reauth_ms`): the client authenticates again on the
//! same connection (KIP-368), as the same principal, or is disconnected.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiKey;

use crate::config::SaslMechanism;
use crate::security::Principal;
use crate::security::sasl::{Exchange, SaslError, Step, Verifiers};

/// One client connection's identity, handed to every request handler.
#[derive(Debug, Clone)]
pub struct Session {
    pub peer: SocketAddr,
    /// The name of the listener the client connected to.
    pub listener: Arc<str>,
    auth: Arc<Mutex<Auth>>,
}

/// Where a connection's authentication is.
#[derive(Debug)]
struct Auth {
    /// The mechanisms offered; `None` on a listener without SASL.
    mechanisms: Option<Arc<[SaslMechanism]>>,
    /// `None` until the client has authenticated.
    principal: Option<Principal>,
    /// The exchange under way, after a handshake.
    exchange: Option<Exchange>,
    /// The mechanism of the last handshake (a re-authentication keeps it).
    mechanism: Option<SaslMechanism>,
    /// When the authentication runs out.
    expires: Option<Instant>,
    /// An authentication failed: the connection closes after answering.
    failed: bool,
}

/// Why a handshake is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("this listener does not use SASL")]
    NotSasl,
    #[error("mechanism {0} is not enabled on this listener")]
    Unsupported(String),
    #[error("re-authentication must use the mechanism first used ({0})")]
    MechanismChanged(&'static str),
}

/// Why an authentication failed (the connection then closes).
#[derive(Debug, thiserror::Error)]
pub enum AuthenticateError {
    #[error("SaslAuthenticate before a SaslHandshake")]
    NoHandshake,
    #[error(transparent)]
    Failed(#[from] SaslError),
    #[error("re-authentication as {new} on a connection of {old}")]
    PrincipalChanged { old: Principal, new: Principal },
}

/// A successful SaslAuthenticate round.
#[derive(Debug)]
pub struct Authenticated {
    /// The token for the client.
    pub token: Vec<u8>,
    /// How long the authentication lasts, once complete (`None`: not yet
    /// complete, or for the connection's life).
    pub lifetime: Option<Duration>,
}

impl Session {
    /// A new connection's session; `mechanisms` on SASL listeners (the
    /// client starts unauthenticated), else its principal is
    /// `User:ANONYMOUS`.
    pub fn new(
        peer: SocketAddr,
        listener: Arc<str>,
        mechanisms: Option<Arc<[SaslMechanism]>>,
    ) -> Session {
        let principal = mechanisms.is_none().then(Principal::anonymous);
        Session {
            peer,
            listener,
            auth: Arc::new(Mutex::new(Auth {
                mechanisms,
                principal,
                exchange: None,
                mechanism: None,
                expires: None,
                failed: false,
            })),
        }
    }

    /// On a listener without SASL, the connection is `principal`, from
    /// its client certificate.
    pub fn set_certificate_principal(&self, principal: Principal) {
        let mut auth = self.auth();
        if auth.mechanisms.is_none() {
            auth.principal = Some(principal);
        }
    }

    fn auth(&self) -> std::sync::MutexGuard<'_, Auth> {
        self.auth.lock().expect("session state poisoned")
    }

    /// Who the client is; `None` until it has authenticated.
    pub fn principal(&self) -> Option<Principal> {
        self.auth().principal.clone()
    }

    /// Whether the connection may send a request of `api` now; the reason
    /// to close it if not.
    pub fn admits(&self, api: ApiKey) -> Result<(), &'static str> {
        let sasl_api = matches!(
            api,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        );
        let auth = self.auth();
        if auth.failed {
            Err("authentication failed")
        } else if sasl_api {
            Ok(())
        } else if auth.principal.is_none() {
            Err("a request before authentication")
        } else if auth.expires.is_some_and(|at| Instant::now() >= at) {
            Err("the authentication expired")
        } else {
            Ok(())
        }
    }

    /// The largest request the connection may send now: `limit`, or before
    /// it has authenticated `unauthenticated_limit`.
    pub fn frame_limit(&self, limit: usize, unauthenticated_limit: usize) -> usize {
        if self.auth().principal.is_some() {
            limit
        } else {
            limit.min(unauthenticated_limit)
        }
    }

    /// Whether an authentication failed (the connection closes after the
    /// answer saying so).
    pub fn failed(&self) -> bool {
        self.auth().failed
    }

    /// The names of the mechanisms the listener offers.
    pub fn mechanisms(&self) -> Vec<&'static str> {
        let auth = self.auth();
        let offered = auth.mechanisms.iter().flat_map(|m| m.iter());
        offered.map(|m| m.name()).collect()
    }

    /// Starts an exchange in the mechanism named `name`.
    pub fn handshake(&self, name: &str) -> Result<(), HandshakeError> {
        let mut auth = self.auth();
        let Some(offered) = &auth.mechanisms else {
            return Err(HandshakeError::NotSasl);
        };
        let Some(mechanism) = offered.iter().copied().find(|m| m.name() == name) else {
            auth.failed = true;
            return Err(HandshakeError::Unsupported(name.to_string()));
        };
        if let Some(first) = auth.mechanism.filter(|first| *first != mechanism) {
            auth.failed = true;
            return Err(HandshakeError::MechanismChanged(first.name()));
        }
        auth.mechanism = Some(mechanism);
        auth.exchange = Some(Exchange::Start(mechanism));
        Ok(())
    }

    /// Takes the client's next `token` of the exchange; once the client
    /// has proved who it is, the connection is authenticated for
    /// `lifetime` (`None`: for its life), or less if its credential runs
    /// out sooner (a token's expiry).
    pub async fn authenticate(
        &self,
        token: &[u8],
        verifiers: Verifiers<'_>,
        lifetime: Option<Duration>,
    ) -> Result<Authenticated, AuthenticateError> {
        let exchange = self.auth().exchange.take();
        let result = match exchange {
            None => Err(AuthenticateError::NoHandshake),
            Some(exchange) => exchange.step(token, verifiers).await.map_err(Into::into),
        };
        let mut auth = self.auth();
        let step = match result {
            Ok(step) => step,
            Err(e) => {
                auth.failed = true;
                return Err(e);
            }
        };
        match step {
            Step::Continue(token, exchange) => {
                auth.exchange = Some(exchange);
                Ok(Authenticated {
                    token,
                    lifetime: None,
                })
            }
            Step::Done {
                principal,
                token,
                valid_for,
            } => {
                let lifetime = match (lifetime, valid_for) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                if let Some(old) = auth.principal.clone().filter(|old| *old != principal) {
                    auth.failed = true;
                    return Err(AuthenticateError::PrincipalChanged {
                        old,
                        new: principal,
                    });
                }
                auth.principal = Some(principal);
                auth.expires = lifetime.map(|l| Instant::now() + l);
                Ok(Authenticated { token, lifetime })
            }
        }
    }
}
