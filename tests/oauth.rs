//! OAUTHBEARER with real clients: JWTs signed by a key the test makes,
//! checked against a JWKS file or URL, their issuer, audience and expiry;
//! the authentication ends with the token.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::security::*;
use common::*;
use kafka_protocol::messages::{MetadataRequest, SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use rdkafka::client::OAuthToken;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};

const ISSUER: &str = "https://login.example";
const AUDIENCE: &str = "silt";

/// A broker whose SASL_PLAINTEXT listener offers OAUTHBEARER, checking
/// tokens against `jwks` (`jwks_file = ...` or `jwks_url = ...`).
fn start_oauth(jwks: &str) -> (Broker, String, tempfile::TempDir) {
    let sasl = free_port();
    let (broker, dir) = start_with_config(&format!(
        r#"
[security.oauthbearer]
{jwks}
issuer = "{ISSUER}"
audience = "{AUDIENCE}"

[[listeners]]
name = "INTERNAL"
listen = "127.0.0.1:{internal}"

[[listeners]]
name = "USERS"
listen = "127.0.0.1:{sasl}"
protocol = "SASL_PLAINTEXT"
sasl_mechanisms = ["OAUTHBEARER"]
"#,
        internal = free_port(),
    ));
    (broker, format!("127.0.0.1:{sasl}"), dir)
}

/// A JWKS file for `issuer` in `dir`, as a config line.
fn jwks_file(issuer: &Issuer, dir: &std::path::Path) -> String {
    let path = dir.join("jwks.json");
    std::fs::write(&path, issuer.jwks()).unwrap();
    format!("jwks_file = \"{}\"", path.display())
}

/// librdkafka's OAUTHBEARER token source and delivery counter.
#[derive(Clone)]
struct Bearer {
    token: String,
    acked: Arc<AtomicUsize>,
}

impl ClientContext for Bearer {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let lifetime_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64
            + 600_000;
        Ok(OAuthToken {
            token: self.token.clone(),
            principal_name: "alice".into(),
            lifetime_ms,
        })
    }
}

impl ProducerContext for Bearer {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_ok() {
            self.acked.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl ConsumerContext for Bearer {}

fn bearer_config(addr: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("security.protocol", "sasl_plaintext")
        .set("sasl.mechanism", "OAUTHBEARER")
        .set("message.timeout.ms", "4000");
    config
}

/// Produces `count` messages with `token`; how many were acknowledged.
fn produce_with(addr: &str, token: &str, topic: &str, count: usize) -> usize {
    let bearer = Bearer {
        token: token.into(),
        acked: Arc::default(),
    };
    let producer: ThreadedProducer<Bearer> = bearer_config(addr)
        .create_with_context(bearer.clone())
        .unwrap();
    for i in 0..count {
        let key = format!("k{i}");
        producer
            .send(BaseRecord::to(topic).key(&key).payload("v"))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let _ = rdkafka::producer::Producer::flush(&producer, Duration::from_secs(30));
    bearer.acked.load(Ordering::SeqCst)
}

#[test]
fn librdkafka_and_kafka_python_authenticate_with_a_signed_token() {
    let issuer = Issuer::new("key-1");
    let keys = tempfile::tempdir().unwrap();
    let (broker, addr, _dir) = start_oauth(&jwks_file(&issuer, keys.path()));
    create_topic(&broker, "tokens", 1);
    let token = issuer.token("alice", 600, ISSUER, AUDIENCE);
    assert_eq!(produce_with(&addr, &token, "tokens", 50), 50);
    // Read back with a consumer holding the same token.
    let bearer = Bearer {
        token: token.clone(),
        acked: Arc::default(),
    };
    let mut config = bearer_config(&addr);
    config
        .set("group.id", "oauth")
        .set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer<Bearer> = config.create_with_context(bearer).unwrap();
    consumer.subscribe(&["tokens"]).unwrap();
    let mut read = 0;
    let started = std::time::Instant::now();
    while read < 50 && started.elapsed() < Duration::from_secs(30) {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            assert!(m.unwrap().key().is_some());
            read += 1;
        }
    }
    assert_eq!(read, 50);
    create_topic(&broker, "py-tokens", 1);
    let keys: std::collections::BTreeSet<String> = run_python(
        "oauth_roundtrip.py",
        &[&addr, "py-tokens", "20", "30", &token],
    )
    .into_iter()
    .collect();
    assert_eq!(keys.len(), 20);
}

#[test]
fn expired_wrongly_signed_and_misaddressed_tokens_are_refused() {
    let issuer = Issuer::new("key-1");
    let keys = tempfile::tempdir().unwrap();
    let (broker, addr, _dir) = start_oauth(&jwks_file(&issuer, keys.path()));
    create_topic(&broker, "tokens", 1);
    let impostor = Issuer::new("key-1");
    for (token, why) in [
        (issuer.token("alice", -120, ISSUER, AUDIENCE), "expired"),
        (
            impostor.token("alice", 600, ISSUER, AUDIENCE),
            "signed by another key",
        ),
        (
            issuer.token("alice", 600, "https://evil", AUDIENCE),
            "another issuer",
        ),
        (
            issuer.token("alice", 600, ISSUER, "other-service"),
            "another audience",
        ),
        ("not-a-jwt".to_string(), "not a JWT"),
    ] {
        assert_eq!(produce_with(&addr, &token, "tokens", 3), 0, "{why}");
    }
    assert_eq!(
        produce_with(
            &addr,
            &issuer.token("alice", 600, ISSUER, AUDIENCE),
            "tokens",
            3
        ),
        3,
        "the broker is unaffected"
    );
}

/// A `python3 -m http.server` serving `dir` on loopback.
struct StaticServer {
    child: std::process::Child,
    url: String,
}

impl StaticServer {
    fn start(dir: &std::path::Path) -> StaticServer {
        let port = free_port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let url = format!("http://127.0.0.1:{port}");
        wait_until("the JWKS server", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        StaticServer { child, url }
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_come_from_a_jwks_url_and_the_session_ends_with_the_token() {
    let issuer = Issuer::new("key-1");
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("jwks.json"), issuer.jwks()).unwrap();
    let server = StaticServer::start(keys.path());
    let (_broker, addr, _dir) = start_oauth(&format!("jwks_url = \"{}/jwks.json\"", server.url));
    let mut client = silt::client::Client::connect(&addr).await.unwrap();
    let handshake =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("OAUTHBEARER"));
    assert_eq!(client.call(handshake, 1).await.unwrap().error_code, 0);
    let token = issuer.token("carol", 120, ISSUER, AUDIENCE);
    let message = Bytes::from(format!("n,,\u{1}auth=Bearer {token}\u{1}\u{1}"));
    let response = client
        .call(
            SaslAuthenticateRequest::default().with_auth_bytes(message),
            2,
        )
        .await
        .unwrap();
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    assert!(
        (120_000..=150_000).contains(&response.session_lifetime_ms),
        "the session lasts as long as the token (and the 30 s skew): {}",
        response.session_lifetime_ms
    );
    client.call(MetadataRequest::default(), 12).await.unwrap();
}
