//! OAUTHBEARER (RFC 7628, Kafka's KIP-255 and KIP-768): the client sends a
//! JWT; the broker checks its signature against the keys of a JWKS (a file,
//! or a URL fetched again when an unknown key id appears), its expiry and
//! not-before times, issuer and audience, and takes the principal from a
//! claim (`sub` by default). The authentication lasts until the token
//! expires (KIP-368).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::Deserialize;

use crate::config::OAuthConfig;

/// Why a token is refused; the message is for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("malformed OAUTHBEARER message: {0}")]
    Malformed(&'static str),
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("cannot load the JWKS: {0}")]
    Keys(String),
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// The principal claim's value.
    pub name: String,
    /// How long the token is still valid.
    pub remaining: Duration,
}

/// A verification key from a JWKS.
#[derive(Debug, Clone)]
enum Key {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed point (0x04 || x || y) of a P-256 or P-384 key.
    Ec {
        curve: String,
        point: Vec<u8>,
    },
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

/// How often a JWKS URL may be fetched again for an unknown key id.
const REFETCH_AFTER: Duration = Duration::from_secs(10);
/// How long fetching a JWKS may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks tokens against the configured JWKS and claims.
pub struct TokenValidator {
    config: OAuthConfig,
    /// Keys by id (`""` for keys without one), and when they were last
    /// loaded (or tried).
    keys: RwLock<(HashMap<String, Key>, Instant)>,
    refetching: tokio::sync::Mutex<()>,
}

impl TokenValidator {
    /// Loads the JWKS `config` names.
    pub async fn load(config: &OAuthConfig) -> Result<TokenValidator, OAuthError> {
        let keys = fetch(config).await?;
        Ok(TokenValidator {
            config: config.clone(),
            keys: RwLock::new((keys, Instant::now())),
            refetching: tokio::sync::Mutex::new(()),
        })
    }

    /// Checks `jwt` at wall-clock time `now_s` (seconds since the epoch).
    pub async fn validate(&self, jwt: &str, now_s: i64) -> Result<Validated, OAuthError> {
        let invalid = |m: &str| OAuthError::Invalid(m.to_string());
        let mut parts = jwt.split('.');
        let (Some(header64), Some(payload64), Some(signature64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("not a signed JWT (header.payload.signature)"));
        };
        let decode = |part: &str| B64URL.decode(part).map_err(|_| invalid("bad base64url"));
        let header: Header = serde_json::from_slice(&decode(header64)?)
            .map_err(|_| invalid("the header is not JSON with alg"))?;
        let claims: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&decode(payload64)?)
                .map_err(|_| invalid("the claims are not a JSON object"))?;
        let signature = decode(signature64)?;
        let kid = header.kid.clone().unwrap_or_default();
        let key = match self.key(&kid) {
            Some(key) => key,
            None => {
                self.refetch().await;
                self.key(&kid)
                    .ok_or_else(|| invalid(&format!("no key '{kid}' in the JWKS")))?
            }
        };
        let signed = format!("{header64}.{payload64}");
        verify(&header.alg, &key, signed.as_bytes(), &signature)?;
        let skew = self.config.clock_skew_seconds as i64;
        let number = |claim: &str| claims.get(claim).and_then(serde_json::Value::as_i64);
        let exp = number("exp").ok_or_else(|| invalid("no exp claim"))?;
        if exp + skew <= now_s {
            return Err(invalid("the token expired"));
        }
        if number("nbf").is_some_and(|nbf| nbf - skew > now_s) {
            return Err(invalid("the token is not valid yet (nbf)"));
        }
        if let Some(issuer) = &self.config.issuer
            && claims.get("iss").and_then(|v| v.as_str()) != Some(issuer.as_str())
        {
            return Err(invalid("wrong issuer (iss)"));
        }
        if let Some(audience) = &self.config.audience {
            let listed = match claims.get("aud") {
                Some(serde_json::Value::String(a)) => a == audience,
                Some(serde_json::Value::Array(all)) => {
                    all.iter().any(|a| a.as_str() == Some(audience.as_str()))
                }
                _ => false,
            };
            if !listed {
                return Err(invalid("wrong audience (aud)"));
            }
        }
        let claim = &self.config.principal_claim;
        let name = claims
            .get(claim)
            .and_then(|v| v.as_str())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid(&format!("no {claim} claim")))?;
        Ok(Validated {
            name: name.to_string(),
            // Within the skew the token is still good for the rest of it.
            remaining: Duration::from_secs((exp + skew - now_s).max(1) as u64),
        })
    }

    fn key(&self, kid: &str) -> Option<Key> {
        let keys = self.keys.read().expect("JWKS poisoned");
        keys.0.get(kid).cloned().or_else(|| {
            // A token without a kid may use the only key there is.
            (kid.is_empty() && keys.0.len() == 1).then(|| keys.0.values().next().cloned())?
        })
    }

    /// Loads the JWKS again (keys rotate): one load at a time, at most
    /// every [`REFETCH_AFTER`] whether it worked or not, so clients with
    /// unknown key ids cannot make the broker hammer the key server.
    async fn refetch(&self) {
        let _one_at_a_time = self.refetching.lock().await;
        {
            let mut keys = self.keys.write().expect("JWKS poisoned");
            if keys.1.elapsed() < REFETCH_AFTER {
                return;
            }
            keys.1 = Instant::now();
        }
        match fetch(&self.config).await {
            Ok(keys) => *self.keys.write().expect("JWKS poisoned") = (keys, Instant::now()),
            Err(e) => tracing::warn!(error = %e, "cannot reload the JWKS"),
        }
    }
}

/// Reads the JWKS from its file or URL.
async fn fetch(config: &OAuthConfig) -> Result<HashMap<String, Key>, OAuthError> {
    let text = match (&config.jwks_file, &config.jwks_url) {
        (Some(path), _) => tokio::fs::read(path)
            .await
            .map_err(|e| OAuthError::Keys(format!("{}: {e}", path.display())))?,
        (None, Some(url)) => {
            let client = reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .build()
                .map_err(|e| OAuthError::Keys(e.to_string()))?;
            let response = client
                .get(url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| OAuthError::Keys(format!("{url}: {e}")))?;
            response
                .bytes()
                .await
                .map_err(|e| OAuthError::Keys(format!("{url}: {e}")))?
                .to_vec()
        }
        (None, None) => return Err(OAuthError::Keys("neither jwks_file nor jwks_url".into())),
    };
    parse_jwks(&text)
}

fn parse_jwks(text: &[u8]) -> Result<HashMap<String, Key>, OAuthError> {
    let jwks: Jwks =
        serde_json::from_slice(text).map_err(|e| OAuthError::Keys(format!("not a JWKS: {e}")))?;
    let b64 = |v: &Option<String>| v.as_deref().and_then(|v| B64URL.decode(v).ok());
    let mut keys = HashMap::new();
    for jwk in jwks.keys {
        let key = match jwk.kty.as_str() {
            "RSA" => match (b64(&jwk.n), b64(&jwk.e)) {
                (Some(n), Some(e)) => Key::Rsa { n, e },
                _ => continue,
            },
            "EC" => match (b64(&jwk.x), b64(&jwk.y), jwk.crv) {
                (Some(x), Some(y), Some(curve)) => {
                    let mut point = vec![0x04];
                    point.extend(x);
                    point.extend(y);
                    Key::Ec { curve, point }
                }
                _ => continue,
            },
            _ => continue,
        };
        keys.insert(jwk.kid.unwrap_or_default(), key);
    }
    if keys.is_empty() {
        return Err(OAuthError::Keys("no RSA or EC key in the JWKS".into()));
    }
    Ok(keys)
}

/// Checks a JWS signature with algorithm `alg`.
fn verify(alg: &str, key: &Key, signed: &[u8], sig: &[u8]) -> Result<(), OAuthError> {
    let bad = || OAuthError::Invalid("the signature does not verify".into());
    match (alg, key) {
        ("RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512", Key::Rsa { n, e }) => {
            let params = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                _ => &signature::RSA_PSS_2048_8192_SHA512,
            };
            RsaPublicKeyComponents { n, e }
                .verify(params, signed, sig)
                .map_err(|_| bad())
        }
        ("ES256", Key::Ec { curve, point }) if curve == "P-256" => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(signed, sig)
                .map_err(|_| bad())
        }
        ("ES384", Key::Ec { curve, point }) if curve == "P-384" => {
            UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                .verify(signed, sig)
                .map_err(|_| bad())
        }
        _ => Err(OAuthError::Invalid(format!(
            "algorithm {alg} does not fit the key (RS*, PS*, ES256, ES384 are accepted)"
        ))),
    }
}

/// The token of a client's first message (RFC 7628:
/// `n,[a=authzid],<SOH>auth=Bearer TOKEN<SOH>[key=value<SOH>]*<SOH>`).
pub fn bearer_token(message: &[u8]) -> Result<String, OAuthError> {
    let text = std::str::from_utf8(message).map_err(|_| OAuthError::Malformed("not UTF-8"))?;
    let (gs2, rest) = text
        .split_once('\u{1}')
        .ok_or(OAuthError::Malformed("expected a GS2 header"))?;
    if !(gs2.starts_with("n,") || gs2.starts_with("y,")) {
        return Err(OAuthError::Malformed("channel binding is not supported"));
    }
    rest.split('\u{1}')
        .find_map(|kv| kv.strip_prefix("auth="))
        .and_then(|auth| {
            let (scheme, token) = auth.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        })
        .filter(|t| !t.is_empty())
        .ok_or(OAuthError::Malformed("expected auth=Bearer TOKEN"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    fn key_pair() -> EcdsaKeyPair {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap()
    }

    fn jwks(pair: &EcdsaKeyPair, kid: &str) -> String {
        let point = pair.public_key().as_ref();
        format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256","kid":"{kid}","x":"{}","y":"{}"}}]}}"#,
            B64URL.encode(&point[1..33]),
            B64URL.encode(&point[33..65])
        )
    }

    fn token(pair: &EcdsaKeyPair, kid: &str, claims: serde_json::Value) -> String {
        let header = B64URL.encode(format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#));
        let payload = B64URL.encode(claims.to_string());
        let signed = format!("{header}.{payload}");
        let sig = pair.sign(&SystemRandom::new(), signed.as_bytes()).unwrap();
        format!("{signed}.{}", B64URL.encode(sig.as_ref()))
    }

    async fn validator(jwks: &str) -> (TokenValidator, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, jwks).unwrap();
        let config = OAuthConfig {
            jwks_file: Some(path),
            issuer: Some("https://issuer".into()),
            audience: Some("silt".into()),
            ..OAuthConfig::default()
        };
        (TokenValidator::load(&config).await.unwrap(), dir)
    }

    #[tokio::test]
    async fn checks_signature_expiry_issuer_and_audience() {
        let pair = key_pair();
        // The default clock skew, 30 s, counts in the remaining time.
        let (v, _dir) = validator(&jwks(&pair, "k1")).await;
        let now = 1_800_000_000;
        let claims = |exp: i64, iss: &str, aud: serde_json::Value| serde_json::json!({"sub": "alice", "exp": exp, "iss": iss, "aud": aud});
        let good = token(
            &pair,
            "k1",
            claims(now + 60, "https://issuer", "silt".into()),
        );
        assert_eq!(
            v.validate(&good, now).await,
            Ok(Validated {
                name: "alice".into(),
                remaining: Duration::from_secs(90)
            })
        );
        let listed = token(
            &pair,
            "k1",
            claims(now + 60, "https://issuer", serde_json::json!(["x", "silt"])),
        );
        assert!(v.validate(&listed, now).await.is_ok());
        for (bad, why) in [
            (
                token(
                    &pair,
                    "k1",
                    claims(now - 60, "https://issuer", "silt".into()),
                ),
                "expired",
            ),
            (
                token(
                    &pair,
                    "k1",
                    claims(now + 60, "https://other", "silt".into()),
                ),
                "issuer",
            ),
            (
                token(
                    &pair,
                    "k1",
                    claims(now + 60, "https://issuer", "else".into()),
                ),
                "audience",
            ),
            (
                token(
                    &key_pair(),
                    "k1",
                    claims(now + 60, "https://issuer", "silt".into()),
                ),
                "signature",
            ),
            (
                token(
                    &pair,
                    "k2",
                    claims(now + 60, "https://issuer", "silt".into()),
                ),
                "no key",
            ),
            ("a.b".to_string(), "signed JWT"),
        ] {
            let e = v.validate(&bad, now).await.unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn the_client_message_carries_the_token() {
        assert_eq!(
            bearer_token(b"n,,\x01auth=Bearer abc.def.ghi\x01\x01").unwrap(),
            "abc.def.ghi"
        );
        assert_eq!(
            bearer_token(b"n,a=alice,\x01host=h\x01auth=bearer t\x01\x01").unwrap(),
            "t"
        );
        assert!(bearer_token(b"n,,\x01auth=Basic x\x01\x01").is_err());
        assert!(bearer_token(b"p=x,,\x01auth=Bearer t\x01\x01").is_err());
    }
}
