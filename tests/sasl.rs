//! SASL authentication with real clients: SCRAM-SHA-256, SCRAM-SHA-512
//! and PLAIN over SASL_SSL and SASL_PLAINTEXT listeners, users managed
//! with `silt user`, and everything a client may get wrong refused with
//! Kafka's error or a closed connection while other clients carry on.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::security::*;
use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, ApiKey, DescribeUserScramCredentialsRequest, MetadataRequest,
    SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use silt::client::Client;

const PASSWORD: &str = "alice-secret";

/// A broker with a PLAINTEXT listener first (where users are created),
/// a SASL_SSL one and a SASL_PLAINTEXT one, with `extra` settings; user
/// `alice` exists.
struct SaslBroker {
    broker: Broker,
    pki: Pki,
    sasl_ssl: String,
    sasl_plaintext: String,
    _dir: tempfile::TempDir,
}

fn start_sasl(extra: &str) -> SaslBroker {
    let pki = Pki::new();
    pki.issue("server", "localhost");
    let (ssl, plaintext) = (free_port(), free_port());
    let (broker, dir) = start_with_config(&format!(
        r#"
{extra}

[[listeners]]
name = "INTERNAL"
listen = "127.0.0.1:{internal}"

[[listeners]]
name = "EXTERNAL"
listen = "127.0.0.1:{ssl}"
protocol = "SASL_SSL"
tls_cert = "{cert}"
tls_key = "{key}"

[[listeners]]
name = "CLIENTS"
listen = "127.0.0.1:{plaintext}"
protocol = "SASL_PLAINTEXT"
sasl_mechanisms = ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]
"#,
        internal = free_port(),
        cert = pki.path("server.pem"),
        key = pki.path("server.key"),
    ));
    create_user(&broker.addr, "alice", PASSWORD);
    SaslBroker {
        broker,
        pki,
        sasl_ssl: format!("localhost:{ssl}"),
        sasl_plaintext: format!("127.0.0.1:{plaintext}"),
        _dir: dir,
    }
}

/// librdkafka settings for `mechanism` as `user`; over TLS with `ca`.
fn sasl_settings(
    mechanism: &str,
    user: &str,
    password: &str,
    ca: Option<String>,
) -> Vec<(&'static str, String)> {
    let mut settings = vec![
        ("sasl.mechanism", mechanism.to_string()),
        ("sasl.username", user.to_string()),
        ("sasl.password", password.to_string()),
    ];
    match ca {
        Some(ca) => settings.extend([
            ("security.protocol", "sasl_ssl".to_string()),
            ("ssl.ca.location", ca),
        ]),
        None => settings.push(("security.protocol", "sasl_plaintext".to_string())),
    }
    settings
}

#[test]
fn librdkafka_authenticates_with_scram_and_plain_over_both_sasl_listeners() {
    let b = start_sasl("");
    for (i, mechanism) in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]
        .into_iter()
        .enumerate()
    {
        let topic = format!("sasl-{i}");
        create_topic(&b.broker, &topic, 1);
        let over_tls = sasl_settings(mechanism, "alice", PASSWORD, Some(b.pki.path("ca.pem")));
        let deliveries = Deliveries::default();
        let producer = producer_over(&b.sasl_ssl, &deliveries, &over_tls);
        produce_keyed(&producer, &topic, 0..200, 100);
        rdkafka::producer::Producer::flush(&producer, Duration::from_secs(30)).unwrap();
        assert!(deliveries.failed.lock().unwrap().is_empty(), "{mechanism}");
        let plain = sasl_settings(mechanism, "alice", PASSWORD, None);
        let reads = read_over(&b.sasl_plaintext, &topic, 200, &plain);
        assert_exactly_once(&deliveries.acked.lock().unwrap(), &reads);
    }
}

#[test]
fn kafka_python_authenticates_with_scram_and_plain() {
    let b = start_sasl("");
    create_topic(&b.broker, "py", 2);
    let ca = b.pki.path("ca.pem");
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] {
        for (addr, tls) in [(&b.sasl_plaintext, None), (&b.sasl_ssl, Some(ca.as_str()))] {
            let topic = format!("py-{mechanism}-{}", tls.is_some());
            create_topic(&b.broker, &topic, 2);
            let mut args = vec![
                addr.as_str(),
                &topic,
                "30",
                "30",
                mechanism,
                "alice",
                PASSWORD,
            ];
            args.extend(tls);
            let keys: std::collections::BTreeSet<String> =
                run_python("sasl_roundtrip.py", &args).into_iter().collect();
            assert_eq!(keys.len(), 30, "{mechanism} tls={}", tls.is_some());
        }
    }
}

/// Whether librdkafka with `settings` can fetch metadata at `addr`.
fn can_connect(addr: &str, settings: &[(&'static str, String)]) -> bool {
    let mut config = rdkafka::ClientConfig::new();
    config.set("bootstrap.servers", addr);
    for (k, v) in settings {
        config.set(*k, v);
    }
    let producer: rdkafka::producer::BaseProducer = config.create().unwrap();
    rdkafka::producer::Producer::client(&producer)
        .fetch_metadata(None, Duration::from_secs(5))
        .is_ok()
}

#[test]
fn wrong_passwords_and_unknown_users_are_refused_and_others_carry_on() {
    let b = start_sasl("");
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] {
        let wrong = sasl_settings(mechanism, "alice", "not-her-password", None);
        assert!(
            !can_connect(&b.sasl_plaintext, &wrong),
            "{mechanism}: wrong password"
        );
        let unknown = sasl_settings(mechanism, "mallory", PASSWORD, None);
        assert!(
            !can_connect(&b.sasl_plaintext, &unknown),
            "{mechanism}: unknown user"
        );
        let right = sasl_settings(mechanism, "alice", PASSWORD, None);
        assert!(can_connect(&b.sasl_plaintext, &right), "{mechanism}: alice");
    }
    // A listener that does not offer the mechanism.
    let plain_only = free_port();
    let (other, _dir) = start_with_config(&format!(
        "[[listeners]]\nname = \"A\"\nlisten = \"127.0.0.1:{}\"\n\n\
         [[listeners]]\nname = \"B\"\nlisten = \"127.0.0.1:{plain_only}\"\n\
         protocol = \"SASL_PLAINTEXT\"\nsasl_mechanisms = [\"PLAIN\"]\n",
        free_port()
    ));
    create_user(&other.addr, "alice", PASSWORD);
    let addr = format!("127.0.0.1:{plain_only}");
    let scram = sasl_settings("SCRAM-SHA-512", "alice", PASSWORD, None);
    assert!(!can_connect(&addr, &scram), "mechanism not offered");
    assert!(can_connect(
        &addr,
        &sasl_settings("PLAIN", "alice", PASSWORD, None)
    ));
}

/// A raw client on a SASL listener: handshake in `mechanism`.
async fn handshake(
    addr: &str,
    mechanism: &str,
) -> (Client, kafka_protocol::messages::SaslHandshakeResponse) {
    let mut client = Client::connect(addr).await.expect("ApiVersions is allowed");
    let request =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mechanism.into()));
    let response = client.call(request, 1).await.unwrap();
    (client, response)
}

/// PLAIN's token for `user` and `password`.
fn plain_token(user: &str, password: &str) -> Bytes {
    Bytes::from(format!("\0{user}\0{password}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_protocol_answers_each_mistake_with_kafkas_error() {
    let b = start_sasl("");
    let addr = &b.sasl_plaintext;
    // Unknown mechanism: UNSUPPORTED_SASL_MECHANISM with the offered ones,
    // then the connection closes.
    let (mut client, response) = handshake(addr, "GSSAPI").await;
    assert_eq!(response.error_code, 33);
    let offered: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
    assert_eq!(offered, ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]);
    assert!(client.call(MetadataRequest::default(), 12).await.is_err());
    // Wrong password: SASL_AUTHENTICATION_FAILED with a message, then closed.
    let (mut client, response) = handshake(addr, "PLAIN").await;
    assert_eq!(response.error_code, 0);
    let request = SaslAuthenticateRequest::default().with_auth_bytes(plain_token("alice", "nope"));
    let response = client.call(request, 2).await.unwrap();
    assert_eq!(response.error_code, 58);
    assert!(
        response
            .error_message
            .as_deref()
            .unwrap_or_default()
            .contains("Invalid username or password"),
        "{:?}",
        response.error_message
    );
    assert!(client.call(MetadataRequest::default(), 12).await.is_err());
    // A request before authenticating closes the connection.
    let mut client = Client::connect(addr).await.unwrap();
    assert!(client.call(MetadataRequest::default(), 12).await.is_err());
    // SaslAuthenticate without a handshake: ILLEGAL_SASL_STATE.
    let mut client = Client::connect(addr).await.unwrap();
    let request =
        SaslAuthenticateRequest::default().with_auth_bytes(plain_token("alice", PASSWORD));
    assert_eq!(client.call(request, 2).await.unwrap().error_code, 34);
    // A handshake on a listener without SASL: ILLEGAL_SASL_STATE.
    let (_, response) = handshake(&b.broker.addr, "PLAIN").await;
    assert_eq!(response.error_code, 34);
    // Right: authenticated, then served.
    let (mut client, _) = handshake(addr, "PLAIN").await;
    let request =
        SaslAuthenticateRequest::default().with_auth_bytes(plain_token("alice", PASSWORD));
    let response = client.call(request, 2).await.unwrap();
    assert_eq!(response.error_code, 0);
    assert_eq!(
        response.session_lifetime_ms, 0,
        "no re-authentication configured"
    );
    client.call(MetadataRequest::default(), 12).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_frame_before_authentication_is_refused_without_reading_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let b = start_sasl("");
    let mut socket = tokio::net::TcpStream::connect(&b.sasl_plaintext)
        .await
        .unwrap();
    // A 100 MiB request announced; the broker closes instead of reading it.
    socket
        .write_all(&(100u32 << 20).to_be_bytes())
        .await
        .unwrap();
    let _ = socket.write_all(&[0; 64 * 1024]).await;
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf))
        .await
        .expect("closed well before the frame could arrive");
    assert!(matches!(read, Ok(0) | Err(_)), "closed: {read:?}");
    // Others are served.
    let settings = sasl_settings("SCRAM-SHA-256", "alice", PASSWORD, None);
    let addr = b.sasl_plaintext.clone();
    assert!(
        tokio::task::spawn_blocking(move || can_connect(&addr, &settings))
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn authentication_expires_and_librdkafka_reauthenticates() {
    let b = start_sasl("[security]\nconnections_max_reauth_ms = 1500\n");
    // A raw client that does not re-authenticate is disconnected once its
    // authentication is over.
    let (mut client, _) = handshake(&b.sasl_plaintext, "PLAIN").await;
    let request =
        SaslAuthenticateRequest::default().with_auth_bytes(plain_token("alice", PASSWORD));
    let response = client.call(request, 2).await.unwrap();
    assert_eq!(response.session_lifetime_ms, 1500);
    let started = std::time::Instant::now();
    while client.call(MetadataRequest::default(), 12).await.is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never disconnected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "disconnected early"
    );
    // librdkafka re-authenticates on its connections and keeps producing
    // for several lifetimes without losing anything.
    create_topic(&b.broker, "reauth", 1);
    let settings = sasl_settings("SCRAM-SHA-512", "alice", PASSWORD, None);
    let addr = b.sasl_plaintext.clone();
    tokio::task::spawn_blocking(move || {
        let deliveries = Deliveries::default();
        let producer = producer_over(&addr, &deliveries, &settings);
        let started = std::time::Instant::now();
        let mut sent = 0;
        while started.elapsed() < Duration::from_secs(5) {
            produce_keyed(&producer, "reauth", sent..sent + 10, 10);
            sent += 10;
            rdkafka::producer::Producer::flush(&producer, Duration::from_secs(30)).unwrap();
        }
        assert!(deliveries.failed.lock().unwrap().is_empty());
        let reads = read_over(&addr, "reauth", sent as usize, &settings);
        assert_exactly_once(&deliveries.acked.lock().unwrap(), &reads);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn users_are_created_listed_and_deleted() {
    let b = start_sasl("");
    let addr = &b.broker.addr;
    let (ok, out, err) = silt(&["user", "list", "--bootstrap-server", addr]);
    assert!(ok, "{err}");
    assert!(out.contains("alice\tSCRAM-SHA-256\t8192"), "{out}");
    assert!(out.contains("alice\tSCRAM-SHA-512\t8192"), "{out}");
    // A deleted mechanism no longer logs in; the other still does.
    let (ok, _, err) = silt(&[
        "user",
        "delete",
        "alice",
        "--mechanism",
        "SCRAM-SHA-256",
        "--bootstrap-server",
        addr,
    ]);
    assert!(ok, "{err}");
    let gone = sasl_settings("SCRAM-SHA-256", "alice", PASSWORD, None);
    let kept = sasl_settings("SCRAM-SHA-512", "alice", PASSWORD, None);
    let sasl = b.sasl_plaintext.clone();
    let (refused, served) = tokio::task::spawn_blocking(move || {
        (!can_connect(&sasl, &gone), can_connect(&sasl, &kept))
    })
    .await
    .unwrap();
    assert!(refused && served);
    // Deleting what is not there, and iterations out of bounds, are refused.
    let (ok, _, err) = silt(&[
        "user",
        "delete",
        "alice",
        "--mechanism",
        "SCRAM-SHA-256",
        "--bootstrap-server",
        addr,
    ]);
    assert!(!ok && err.contains("does not exist"), "{err}");
    let (ok, _, err) = silt(&[
        "user",
        "create",
        "bob",
        "--password-stdin",
        "--iterations",
        "10",
        "--bootstrap-server",
        addr,
    ]);
    assert!(!ok && err.contains("4096..=16384"), "{err}");
    // The broker checks what other tools send.
    let mut client = Client::connect(addr).await.unwrap();
    let upsertion = ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_static_str("bob"))
        .with_mechanism(2)
        .with_iterations(10)
        .with_salt(Bytes::from_static(b"salt"))
        .with_salted_password(Bytes::from_static(b"salted"));
    let unknown = ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_static_str("carol"))
        .with_mechanism(7)
        .with_iterations(4096)
        .with_salt(Bytes::from_static(b"salt"))
        .with_salted_password(Bytes::from_static(b"salted"));
    let request =
        AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion, unknown]);
    let response = client.call(request, 0).await.unwrap();
    let codes: Vec<(&str, i16)> = response
        .results
        .iter()
        .map(|r| (r.user.as_str(), r.error_code))
        .collect();
    assert_eq!(
        codes,
        [
            ("bob", ResponseError::UnacceptableCredential.code()),
            ("carol", ResponseError::UnsupportedSaslMechanism.code())
        ]
    );
    let request = DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
        UserName::default().with_name(StrBytes::from_static_str("bob")),
    ]));
    let response = client.call(request, 0).await.unwrap();
    assert_eq!(
        response.results[0].error_code,
        ResponseError::ResourceNotFound.code()
    );
    let (ok, _, err) = silt(&["user", "create", "bob", "--bootstrap-server", addr]);
    assert!(!ok && err.contains("--password-stdin"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sasl_apis_at_every_advertised_version() {
    use silt::protocol::versions::supported;
    let b = start_sasl("[security]\nconnections_max_reauth_ms = 60000\n");
    let (min, max) = supported(ApiKey::SaslAuthenticate).unwrap();
    for v in min..=max {
        let (mut client, response) = handshake(&b.sasl_plaintext, "PLAIN").await;
        assert_eq!(response.error_code, 0);
        let request =
            SaslAuthenticateRequest::default().with_auth_bytes(plain_token("alice", PASSWORD));
        let response = client.call(request, v).await.unwrap();
        assert_eq!(response.error_code, 0, "SaslAuthenticate v{v}");
        let lifetime = if v >= 1 { 60_000 } else { 0 };
        assert_eq!(response.session_lifetime_ms, lifetime, "v{v}");
        client.call(MetadataRequest::default(), 12).await.unwrap();
    }
    assert_eq!(supported(ApiKey::SaslHandshake), Some((1, 1)));
    let mut client = Client::connect(&b.broker.addr).await.unwrap();
    for (api, v) in [
        (ApiKey::DescribeUserScramCredentials, 0),
        (ApiKey::AlterUserScramCredentials, 0),
    ] {
        assert_eq!(supported(api), Some((v, v)), "{api:?}");
    }
    let salt = b"0123456789abcdef".to_vec();
    let salted = silt::meta::ScramMechanism::Sha256.salted_password(b"pw", &salt, 4096);
    let upsertion = ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_static_str("dave"))
        .with_mechanism(1)
        .with_iterations(4096)
        .with_salt(Bytes::from(salt))
        .with_salted_password(Bytes::from(salted));
    let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]);
    let response = client.call(request, 0).await.unwrap();
    assert_eq!(response.results[0].error_code, 0);
    let response = client
        .call(
            DescribeUserScramCredentialsRequest::default().with_users(None),
            0,
        )
        .await
        .unwrap();
    let users: Vec<(&str, Vec<(i8, i32)>)> = response
        .results
        .iter()
        .map(|r| {
            let infos = r.credential_infos.iter();
            (
                r.user.as_str(),
                infos.map(|i| (i.mechanism, i.iterations)).collect(),
            )
        })
        .collect();
    assert_eq!(
        users,
        [
            ("alice", vec![(1, 8192), (2, 8192)]),
            ("dave", vec![(1, 4096)])
        ]
    );
    // dave logs in with the password the salted one came from.
    let (mut client, _) = handshake(&b.sasl_plaintext, "PLAIN").await;
    let request = SaslAuthenticateRequest::default().with_auth_bytes(plain_token("dave", "pw"));
    assert_eq!(client.call(request, 2).await.unwrap().error_code, 0);
}

#[test]
fn silt_commands_log_in_with_a_kafka_client_properties_file() {
    let b = start_sasl("");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    // As Kafka's Java tools write it: JAAS and a PEM truststore, over TLS.
    let java = write(
        "java.properties",
        format!(
            "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
             username=\"alice\" password=\"{PASSWORD}\";\n\
             ssl.truststore.type=PEM\nssl.truststore.location={}\n",
            b.pki.path("ca.pem")
        ),
    );
    // As librdkafka and kcat -F read it, without TLS; the first bootstrap
    // server does not answer.
    let rdkafka = write(
        "rdkafka.properties",
        format!(
            "security.protocol=sasl_plaintext\nsasl.mechanism=SCRAM-SHA-256\n\
             sasl.username=alice\nsasl.password={PASSWORD}\n"
        ),
    );
    let dead = format!("127.0.0.1:{}", free_port());
    for (config, servers) in [
        (&java, b.sasl_ssl.clone()),
        (&rdkafka, format!("{dead},{}", b.sasl_plaintext)),
    ] {
        let topic = format!("cli-{}", config.len());
        let (ok, out, err) = silt(&[
            "topic",
            "create",
            &topic,
            "--partitions",
            "2",
            "--bootstrap-server",
            &servers,
            "--command-config",
            config,
        ]);
        assert!(ok, "{config}: {err}");
        let (ok, out2, err) = silt(&[
            "topic",
            "list",
            "--bootstrap-server",
            &servers,
            "--command-config",
            config,
        ]);
        assert!(ok && out2.contains(&topic), "{out} {out2} {err}");
    }
    let wrong = write(
        "wrong.properties",
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=alice\nsasl.password=nope\n"
            .into(),
    );
    let (ok, _, err) = silt(&[
        "topic",
        "list",
        "--bootstrap-server",
        &b.sasl_plaintext,
        "--command-config",
        &wrong,
    ]);
    assert!(!ok && err.contains("Invalid username or password"), "{err}");
    let (ok, _, err) = silt(&["topic", "list", "--bootstrap-server", &b.sasl_plaintext]);
    assert!(!ok, "no login, no answer: {err}");
}
