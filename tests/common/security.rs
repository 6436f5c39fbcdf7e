//! Security test helpers: free ports, brokers from a config file, a test
//! PKI made with the openssl command line, and SCRAM users.

use super::{Broker, Deliveries, Read, producer_with, read_rdkafka_with};

/// A free loopback port (bound, then released for the broker to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A broker started with `config` (TOML) written to a file in its data
/// dir's parent.
pub fn start_with_config(config: &str) -> (Broker, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silt.toml");
    std::fs::write(&path, config).unwrap();
    let broker = Broker::start(&["--config", path.to_str().unwrap()]);
    (broker, dir)
}

/// A CA and certificates it signs, made with the openssl command line.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=silt-test-ca",
        ]);
        pki
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn openssl(&self, args: &[&str]) {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `NAME.pem` and `NAME.key`: a certificate for `cn` (also valid for
    /// localhost and 127.0.0.1) signed by the CA.
    pub fn issue(&self, name: &str, cn: &str) {
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(
            self.dir.path().join(&ext),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        let subject = format!("/CN={cn}");
        self.openssl(&[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj",
            &subject,
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "1",
            "-extfile",
            &ext,
        ]);
    }
}

/// Creates `user` with `password` (both SCRAM mechanisms) with
/// `silt user create`, through the listener at `addr`.
pub fn create_user(addr: &str, user: &str, password: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_silt"))
        .args([
            "user",
            "create",
            user,
            "--password-stdin",
            "--bootstrap-server",
            addr,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run silt");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{password}").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "silt user create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A librdkafka producer as [`producer_with`], with owned `settings`.
pub fn producer_over(
    addr: &str,
    deliveries: &Deliveries,
    settings: &[(&'static str, String)],
) -> rdkafka::producer::ThreadedProducer<Deliveries> {
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    producer_with(addr, deliveries, &settings)
}

/// Reads `count` messages of partition 0 of `topic` from the beginning,
/// with owned `settings`.
pub fn read_over(
    addr: &str,
    topic: &str,
    count: usize,
    settings: &[(&'static str, String)],
) -> Vec<Read> {
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    read_rdkafka_with(
        addr,
        topic,
        1,
        count,
        std::time::Duration::from_secs(30),
        &settings,
    )
}

/// A raw protocol client authenticated as `user` with SASL PLAIN.
pub async fn sasl_client(addr: &str, user: &str, password: &str) -> silt::client::Client {
    use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
    use kafka_protocol::protocol::StrBytes;
    let mut client = silt::client::Client::connect(addr).await.unwrap();
    let handshake =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    assert_eq!(client.call(handshake, 1).await.unwrap().error_code, 0);
    let token = bytes::Bytes::from(format!("\0{user}\0{password}"));
    let response = client
        .call(SaslAuthenticateRequest::default().with_auth_bytes(token), 2)
        .await
        .unwrap();
    assert_eq!(response.error_code, 0, "{user} authenticates");
    client
}

/// An identity provider for OAUTHBEARER tests: a P-256 key, the JWKS
/// naming it, and the tokens it signs.
pub struct Issuer {
    pair: aws_lc_rs::signature::EcdsaKeyPair,
    pub kid: String,
}

impl Issuer {
    pub fn new(kid: &str) -> Issuer {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Issuer {
            pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .unwrap(),
            kid: kid.into(),
        }
    }

    /// The JWKS with the issuer's public key.
    pub fn jwks(&self) -> String {
        use aws_lc_rs::signature::KeyPair;
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let point = self.pair.public_key().as_ref();
        format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256","use":"sig","kid":"{}","x":"{}","y":"{}"}}]}}"#,
            self.kid,
            b64.encode(&point[1..33]),
            b64.encode(&point[33..65])
        )
    }

    /// A token for `sub` expiring `expires_in_s` from now (negative: in
    /// the past), issued by `iss` for `aud`.
    pub fn token(&self, sub: &str, expires_in_s: i64, iss: &str, aud: &str) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let header = b64.encode(format!(
            r#"{{"alg":"ES256","typ":"JWT","kid":"{}"}}"#,
            self.kid
        ));
        let claims = format!(
            r#"{{"sub":"{sub}","iss":"{iss}","aud":"{aud}","iat":{now},"exp":{}}}"#,
            now + expires_in_s
        );
        let signed = format!("{header}.{}", b64.encode(claims));
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let signature = self.pair.sign(&rng, signed.as_bytes()).unwrap();
        format!("{signed}.{}", b64.encode(signature.as_ref()))
    }
}
