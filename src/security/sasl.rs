//! SASL authentication: the exchange of SaslAuthenticate tokens in the
//! mechanism a client chose in its handshake, until it has proved who it
//! is. PLAIN checks the password against the user's stored SCRAM
//! credential, so one credential serves every mechanism; OAUTHBEARER
//! checks a JWT ([`super::oauth`]).

use std::time::Duration;

use super::Principal;
use super::oauth::{OAuthError, TokenValidator, bearer_token};
use super::scram::{Challenge, ClientFirst, ScramError};
use crate::config::SaslMechanism;
use crate::meta::{CredentialStore, ScramCredential, ScramMechanism};

/// What logins are checked against.
#[derive(Clone, Copy)]
pub struct Verifiers<'a> {
    pub credentials: &'a dyn CredentialStore,
    /// OAUTHBEARER's tokens, when configured.
    pub tokens: Option<&'a TokenValidator>,
}

/// Why an authentication failed; the message is for the client.
#[derive(Debug, thiserror::Error)]
pub enum SaslError {
    #[error(transparent)]
    Scram(#[from] ScramError),
    #[error("Authentication failed: Invalid username or password")]
    InvalidPassword,
    #[error("malformed PLAIN message: {0}")]
    MalformedPlain(&'static str),
    #[error("cannot read credentials: {0}")]
    Store(#[from] crate::error::Error),
    #[error(transparent)]
    OAuth(#[from] OAuthError),
}

/// Where one exchange is.
#[derive(Debug)]
pub enum Exchange {
    /// Waiting for the client's first token in the mechanism.
    Start(SaslMechanism),
    /// SCRAM: the challenge is sent, waiting for the client's proof.
    ScramProof {
        user: String,
        challenge: Box<Challenge>,
    },
}

/// What an exchange does after a client's token.
#[derive(Debug)]
pub enum Step {
    /// Send this token and wait for the client's next.
    Continue(Vec<u8>, Exchange),
    /// The client is `principal`; send the last token. The
    /// authentication lasts at most `valid_for` (a token's life).
    Done {
        principal: Principal,
        token: Vec<u8>,
        valid_for: Option<Duration>,
    },
}

impl Step {
    fn done(principal: Principal, token: Vec<u8>) -> Step {
        Step::Done {
            principal,
            token,
            valid_for: None,
        }
    }
}

impl Exchange {
    /// Takes the client's `token`, checked with `verifiers`.
    pub async fn step(self, token: &[u8], verifiers: Verifiers<'_>) -> Result<Step, SaslError> {
        let store = verifiers.credentials;
        match self {
            Exchange::Start(SaslMechanism::Plain) => {
                let user = plain(token, store).await?;
                Ok(Step::done(Principal::user(&user), Vec::new()))
            }
            Exchange::Start(SaslMechanism::OAuthBearer) => {
                let validator = verifiers
                    .tokens
                    .ok_or(OAuthError::Keys("OAUTHBEARER is not configured".into()))?;
                let jwt = bearer_token(token)?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let valid = validator.validate(&jwt, now).await?;
                Ok(Step::Done {
                    principal: Principal::user(&valid.name),
                    token: Vec::new(),
                    valid_for: Some(valid.remaining),
                })
            }
            Exchange::Start(SaslMechanism::ScramSha256) => {
                scram_first(ScramMechanism::Sha256, token, store).await
            }
            Exchange::Start(SaslMechanism::ScramSha512) => {
                scram_first(ScramMechanism::Sha512, token, store).await
            }
            Exchange::ScramProof { user, challenge } => {
                let last = challenge.verify(token)?;
                Ok(Step::done(Principal::user(&user), last))
            }
        }
    }
}

/// SCRAM's first round: the client's user and nonce, answered with the
/// salt and iterations of its stored credential.
async fn scram_first(
    mechanism: ScramMechanism,
    token: &[u8],
    store: &dyn CredentialStore,
) -> Result<Step, SaslError> {
    let first = ClientFirst::parse(token)?;
    let credential = store
        .scram_credential(&first.user, mechanism)
        .await?
        .ok_or(ScramError::InvalidCredentials)?;
    let user = first.user.clone();
    let (server_first, challenge) = first.challenge(credential);
    Ok(Step::Continue(
        server_first,
        Exchange::ScramProof {
            user,
            challenge: Box::new(challenge),
        },
    ))
}

/// PLAIN (RFC 4616): `[authzid] NUL user NUL password`, checked against
/// the user's strongest stored credential; the user, if it matches.
async fn plain(token: &[u8], store: &dyn CredentialStore) -> Result<String, SaslError> {
    let mut parts = token.split(|&b| b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::MalformedPlain(
            "expected authzid NUL user NUL password",
        ));
    };
    let user =
        std::str::from_utf8(user).map_err(|_| SaslError::MalformedPlain("user is not UTF-8"))?;
    if user.is_empty() || (!authzid.is_empty() && authzid != user.as_bytes()) {
        return Err(SaslError::MalformedPlain(
            "authorization id differs from the user",
        ));
    }
    let mut credential = None;
    for mechanism in [ScramMechanism::Sha512, ScramMechanism::Sha256] {
        credential = store.scram_credential(user, mechanism).await?;
        if credential.is_some() {
            break;
        }
    }
    let known = credential.is_some();
    // An unknown user's password is hashed all the same, so the time
    // taken does not tell which users exist.
    let credential = credential.unwrap_or_else(|| {
        ScramCredential::from_salted_password(user, ScramMechanism::Sha512, b"", Vec::new(), 8192)
    });
    let password = password.to_vec();
    // Hashing the password takes milliseconds: off the async workers.
    let matches = tokio::task::spawn_blocking(move || credential.matches_password(&password))
        .await
        .unwrap_or(false);
    if known && matches {
        Ok(user.to_string())
    } else {
        Err(SaslError::InvalidPassword)
    }
}
