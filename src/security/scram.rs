//! SCRAM (RFC 5802 with RFC 7677's SHA-256 and SHA-512): the credential a
//! server keeps in place of a password, and the server's side of one
//! authentication exchange.
//!
//! The exchange is three messages: the client's first (user and nonce),
//! the server's first (the combined nonce, the salt and the iteration
//! count), the client's final (its proof), answered by the server's final
//! (the server's signature, so the client knows the server holds the key).

use aws_lc_rs::{constant_time, digest, hmac, pbkdf2, rand};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::meta::{ScramCredential, ScramMechanism};

/// Kafka's bounds on the iteration count of a credential.
pub const MIN_ITERATIONS: u32 = 4096;
pub const MAX_ITERATIONS: u32 = 16384;

/// Why an exchange failed; the message is for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("Authentication failed: Invalid user credentials")]
    InvalidCredentials,
}

impl ScramMechanism {
    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    /// RFC 5802's `Hi(password, salt, iterations)`.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0; self.digest().output_len()];
        let iterations = std::num::NonZeroU32::new(iterations.max(1)).expect("at least one");
        pbkdf2::derive(self.pbkdf2(), iterations, salt, password, &mut out);
        out
    }

    fn sign(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac(), key), data)
            .as_ref()
            .to_vec()
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest(), data).as_ref().to_vec()
    }
}

impl ScramCredential {
    /// The credential of `user` from a salted password (what Kafka's
    /// AlterUserScramCredentials carries; the password never leaves the
    /// client).
    pub fn from_salted_password(
        user: &str,
        mechanism: ScramMechanism,
        salted_password: &[u8],
        salt: Vec<u8>,
        iterations: u32,
    ) -> ScramCredential {
        let client_key = mechanism.sign(salted_password, b"Client Key");
        ScramCredential {
            user: user.to_string(),
            mechanism,
            salt,
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.sign(salted_password, b"Server Key"),
        }
    }

    /// The credential of `user` with `password`, under a new random salt.
    pub fn from_password(
        user: &str,
        mechanism: ScramMechanism,
        password: &[u8],
        iterations: u32,
    ) -> ScramCredential {
        let salt = random_bytes(16);
        let salted = mechanism.salted_password(password, &salt, iterations);
        ScramCredential::from_salted_password(user, mechanism, &salted, salt, iterations)
    }

    /// Whether `password` is this credential's (PLAIN logins).
    pub fn matches_password(&self, password: &[u8]) -> bool {
        let m = self.mechanism;
        let salted = m.salted_password(password, &self.salt, self.iterations);
        let stored_key = m.hash(&m.sign(&salted, b"Client Key"));
        constant_time::verify_slices_are_equal(&stored_key, &self.stored_key).is_ok()
    }
}

/// `n` random bytes.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    rand::fill(&mut bytes).expect("the system random source works");
    bytes
}

/// A client's first message, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The user to authenticate.
    pub user: String,
    nonce: String,
    /// The message without its GS2 header (part of the signed message).
    bare: String,
    /// The GS2 header, which the client's final message repeats.
    gs2_header: String,
}

impl ClientFirst {
    /// Parses `n,[a=authzid],n=user,r=nonce[,extensions]`.
    pub fn parse(message: &[u8]) -> Result<ClientFirst, ScramError> {
        let message =
            std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let mut parts = message.splitn(3, ',');
        let (Some(binding), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ScramError::Malformed("expected a GS2 header"));
        };
        // Channel binding is not offered: the client must say 'n' (or 'y').
        if binding != "n" && binding != "y" {
            return Err(ScramError::Malformed("channel binding is not supported"));
        }
        let mut user = None;
        let mut nonce = None;
        for attribute in bare.split(',') {
            match attribute.split_once('=') {
                Some(("n", v)) => user = Some(unescape(v)?),
                Some(("r", v)) => nonce = Some(v.to_string()),
                Some(("m", _)) => return Err(ScramError::Malformed("unknown mandatory extension")),
                _ => {}
            }
        }
        let (Some(user), Some(nonce)) = (user, nonce) else {
            return Err(ScramError::Malformed("expected n= and r="));
        };
        if let Some(authzid) = authzid.strip_prefix("a=")
            && unescape(authzid)? != user
        {
            return Err(ScramError::Malformed(
                "authorization id differs from the user",
            ));
        }
        if user.is_empty() || nonce.is_empty() {
            return Err(ScramError::Malformed("empty user or nonce"));
        }
        Ok(ClientFirst {
            user,
            nonce,
            bare: bare.to_string(),
            gs2_header: format!("{binding},{authzid},"),
        })
    }

    /// The server's first message for the user's stored `credential`, and
    /// the exchange waiting for the client's proof.
    pub fn challenge(self, credential: ScramCredential) -> (Vec<u8>, Challenge) {
        let nonce = format!("{}{}", self.nonce, BASE64.encode(random_bytes(18)));
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        let bytes = server_first.clone().into_bytes();
        let challenge = Challenge {
            client_first_bare: self.bare,
            gs2_header: self.gs2_header,
            server_first,
            nonce,
            credential,
        };
        (bytes, challenge)
    }
}

/// An exchange waiting for the client's final message.
#[derive(Debug, Clone)]
pub struct Challenge {
    client_first_bare: String,
    gs2_header: String,
    server_first: String,
    nonce: String,
    credential: ScramCredential,
}

impl Challenge {
    /// Checks the client's final message `c=...,r=...,p=proof`; the
    /// server's final message if the proof is right.
    pub fn verify(self, client_final: &[u8]) -> Result<Vec<u8>, ScramError> {
        let client_final =
            std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = client_final
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("expected p="))?;
        let mut binding = None;
        let mut nonce = None;
        for attribute in without_proof.split(',') {
            match attribute.split_once('=') {
                Some(("c", v)) => binding = Some(v),
                Some(("r", v)) => nonce = Some(v),
                _ => {}
            }
        }
        if binding != Some(BASE64.encode(&self.gs2_header).as_str()) {
            return Err(ScramError::Malformed(
                "channel binding differs from the first message",
            ));
        }
        if nonce != Some(self.nonce.as_str()) {
            return Err(ScramError::Malformed("nonce differs from the server's"));
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let m = self.credential.mechanism;
        let signature = m.sign(&self.credential.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err(ScramError::InvalidCredentials);
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        constant_time::verify_slices_are_equal(&m.hash(&client_key), &self.credential.stored_key)
            .map_err(|_| ScramError::InvalidCredentials)?;
        let server_signature = m.sign(&self.credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
    }
}

/// The client's side of an exchange (the `silt` commands log in with it).
#[derive(Debug, Clone)]
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: Vec<u8>,
    client_first_bare: String,
    nonce: String,
}

impl ScramClient {
    /// An exchange for `user` with `password`.
    pub fn new(mechanism: ScramMechanism, user: &str, password: &str) -> ScramClient {
        let nonce = BASE64.encode(random_bytes(18));
        let user = user.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            mechanism,
            password: password.as_bytes().to_vec(),
            client_first_bare: format!("n={user},r={nonce}"),
            nonce,
        }
    }

    /// The client's first message.
    pub fn first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// The client's final message for the server's first, and the
    /// server's final message to expect (proving the server holds the
    /// user's key).
    pub fn answer(&self, server_first: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ScramError> {
        let server_first =
            std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attribute in server_first.split(',') {
            match attribute.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = BASE64.decode(v).ok(),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(ScramError::Malformed("expected r=, s= and i="));
        };
        if !nonce.starts_with(&self.nonce) {
            return Err(ScramError::Malformed("the server's nonce is not ours"));
        }
        // Too few are cheap to brute-force from the proof; too many burn CPU.
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::Malformed("iterations out of 4096..=16384"));
        }
        let m = self.mechanism;
        let salted = m.salted_password(&self.password, &salt, iterations);
        let client_key = m.sign(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = m.sign(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = m.sign(&salted, b"Server Key");
        let server_signature = m.sign(&server_key, auth_message.as_bytes());
        Ok((
            format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes(),
            format!("v={}", BASE64.encode(server_signature)).into_bytes(),
        ))
    }
}

/// RFC 5802's escaping of ',' and '=' in names (`=2C`, `=3D`).
fn unescape(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in a name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_right_password_proves_itself_and_the_server() {
        for mechanism in ScramMechanism::ALL {
            let credential =
                ScramCredential::from_password("al,i=ce", mechanism, b"pencil", MIN_ITERATIONS);
            for (password, accepted) in [("pencil", true), ("pen", false)] {
                let client = ScramClient::new(mechanism, "al,i=ce", password);
                let first = ClientFirst::parse(&client.first()).unwrap();
                assert_eq!(first.user, "al,i=ce");
                let (server_first, challenge) = first.challenge(credential.clone());
                let (client_final, expected) = client.answer(&server_first).unwrap();
                match challenge.verify(&client_final) {
                    Ok(server_final) => {
                        assert!(accepted, "{password}");
                        assert_eq!(server_final, expected, "the client checks the server");
                    }
                    Err(e) => {
                        assert!(!accepted, "{password}");
                        assert_eq!(e, ScramError::InvalidCredentials);
                    }
                }
            }
            assert!(credential.matches_password(b"pencil"));
            assert!(!credential.matches_password(b"pencil2"));
        }
    }

    #[test]
    fn rfc_7677_test_vector() {
        // RFC 7677 section 3: user "user", password "pencil".
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let m = ScramMechanism::Sha256;
        let salted = m.salted_password(b"pencil", &salt, 4096);
        let credential = ScramCredential::from_salted_password("user", m, &salted, salt, 4096);
        let first = ClientFirst::parse(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        let (_, mut challenge) = first.challenge(credential);
        // The RFC's server nonce, in place of a random one.
        challenge.nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into();
        challenge.server_first = format!("r={},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", challenge.nonce);
        let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
            p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(
            challenge.verify(client_final.as_bytes()).unwrap(),
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec()
        );
    }

    #[test]
    fn malformed_messages_are_refused() {
        for bad in [
            &b"p=tls-unique,,n=u,r=x"[..],
            b"n,,r=x",
            b"n,,n=u",
            b"n,,n=u=2X,r=x",
            b"n,a=other,n=u,r=x",
            b"\xff",
        ] {
            assert!(ClientFirst::parse(bad).is_err(), "{bad:?}");
        }
    }
}
