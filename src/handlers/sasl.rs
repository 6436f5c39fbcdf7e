//! SaslHandshake and SaslAuthenticate: a client on a SASL listener picks a
//! mechanism, then exchanges tokens until it has authenticated (see
//! [`crate::session`]). A failed authentication is answered, then the
//! connection closes.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::security::sasl::Verifiers;
use crate::session::{AuthenticateError, HandshakeError, Session};

pub fn handshake(session: &Session, request: SaslHandshakeRequest) -> SaslHandshakeResponse {
    let error = match session.handshake(&request.mechanism) {
        Ok(()) => None,
        Err(HandshakeError::NotSasl | HandshakeError::MechanismChanged(_)) => {
            Some(ResponseError::IllegalSaslState)
        }
        Err(HandshakeError::Unsupported(_)) => Some(ResponseError::UnsupportedSaslMechanism),
    };
    SaslHandshakeResponse::default()
        .with_error_code(error.map_or(0, |e| e.code()))
        .with_mechanisms(session.mechanisms().into_iter().map(str_bytes).collect())
}

pub async fn authenticate(
    broker: &Broker,
    session: &Session,
    request: SaslAuthenticateRequest,
) -> SaslAuthenticateResponse {
    let lifetime = match broker.config.security.connections_max_reauth_ms {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    };
    let verifiers = Verifiers {
        credentials: broker.credentials(),
        tokens: broker.tokens.as_deref(),
    };
    match session
        .authenticate(&request.auth_bytes, verifiers, lifetime)
        .await
    {
        Ok(done) => {
            let lifetime_ms = done.lifetime.map_or(0, |l| l.as_millis() as i64);
            SaslAuthenticateResponse::default()
                .with_auth_bytes(Bytes::from(done.token))
                .with_session_lifetime_ms(lifetime_ms)
        }
        Err(e) => {
            let error = match e {
                AuthenticateError::NoHandshake => ResponseError::IllegalSaslState,
                AuthenticateError::Failed(_) | AuthenticateError::PrincipalChanged { .. } => {
                    ResponseError::SaslAuthenticationFailed
                }
            };
            tracing::info!(peer = %session.peer, error = %e, "authentication failed");
            metrics::counter!("silt_authentication_failures_total").increment(1);
            SaslAuthenticateResponse::default()
                .with_error_code(error.code())
                .with_error_message(Some(str_bytes(&e.to_string())))
        }
    }
}
