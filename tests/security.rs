//! Listeners and their security, with real clients: several listeners,
//! each telling its clients its own advertised addresses.

mod common;

use common::security::*;
use common::*;
use kafka_protocol::messages::{DescribeClusterRequest, FindCoordinatorRequest, MetadataRequest};
use kafka_protocol::protocol::StrBytes;
use silt::client::Client;

#[tokio::test(flavor = "multi_thread")]
async fn each_listener_tells_its_clients_its_own_addresses() {
    let (internal, external) = (free_port(), free_port());
    let (broker, _dir) = start_with_config(&format!(
        r#"
[[listeners]]
name = "INTERNAL"
listen = "127.0.0.1:{internal}"

[[listeners]]
name = "EXTERNAL"
listen = "127.0.0.1:{external}"
advertised = "localhost:{external}"
protocol = "PLAINTEXT"
"#
    ));
    assert_eq!(
        broker.addr,
        format!("127.0.0.1:{internal}"),
        "the first listener"
    );
    for (port, host) in [(internal, "127.0.0.1"), (external, "localhost")] {
        let mut client = Client::connect(&format!("127.0.0.1:{port}")).await.unwrap();
        let metadata = client.call(MetadataRequest::default(), 12).await.unwrap();
        let b = &metadata.brokers[0];
        assert_eq!(
            (b.host.as_str(), b.port),
            (host, i32::from(port)),
            "Metadata"
        );
        let cluster = client
            .call(DescribeClusterRequest::default().with_endpoint_type(1), 1)
            .await
            .unwrap();
        let b = &cluster.brokers[0];
        assert_eq!(
            (b.host.as_str(), b.port),
            (host, i32::from(port)),
            "DescribeCluster"
        );
        let request = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"));
        let found = client.call(request, 3).await.unwrap();
        assert_eq!(
            (found.host.as_str(), found.port),
            (host, i32::from(port)),
            "FindCoordinator"
        );
    }
    // Clients work on either.
    create_topic(&broker, "both", 1);
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(&format!("127.0.0.1:{external}"), &deliveries);
    produce_keyed(&producer, "both", 0..100, 10);
    rdkafka::producer::Producer::flush(&producer, std::time::Duration::from_secs(30)).unwrap();
    let reads = read_all_rdkafka(
        &format!("127.0.0.1:{internal}"),
        "both",
        1,
        100,
        std::time::Duration::from_secs(30),
    );
    assert_exactly_once(&deliveries.acked.lock().unwrap(), &reads);
}

#[test]
fn bad_listener_settings_are_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    for (config, expected) in [
        (
            "[[listeners]]\nname = \"A\"\nlisten = \"127.0.0.1:0\"\nprotocol = \"SSL\"\n",
            "needs tls_cert and tls_key",
        ),
        (
            "[[listeners]]\nname = \"A\"\nlisten = \"127.0.0.1:0\"\n[[listeners]]\nname = \"A\"\nlisten = \"127.0.0.1:0\"\n",
            "unique",
        ),
        (
            "[[listeners]]\nname = \"A\"\nlisten = \"127.0.0.1:0\"\nprotocol = \"SASL_PLAINTEXT\"\nsasl_mechanisms = []\n",
            "sasl_mechanisms is empty",
        ),
        (
            "[[listeners]]\nname = \"A\"\nlisten = \"127.0.0.1:0\"\nprotocol = \"SASL_PLAINTEXT\"\nsasl_mechanisms = [\"GSSAPI\"]\n",
            "unknown variant",
        ),
        (
            "[[listeners]]\nname = \"A\"\nlisten = \"127.0.0.1:0\"\nprotocol = \"TLS\"\n",
            "unknown variant",
        ),
    ] {
        let path = dir.path().join("silt.toml");
        std::fs::write(&path, config).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_silt"))
            .args(["serve", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(expected),
            "{config}: {err}"
        );
    }
}

/// A broker with a PLAINTEXT listener first, then an SSL one on `ssl`
/// port (`client_auth`: none, requested or required), its certificate
/// `server` issued by `pki`.
fn start_with_ssl(pki: &Pki, ssl: u16, client_auth: &str) -> (Broker, tempfile::TempDir) {
    start_with_ssl_and(pki, ssl, client_auth, "")
}

/// [`start_with_ssl`], with more settings (`extra`, TOML sections that
/// come before the listeners).
fn start_with_ssl_and(
    pki: &Pki,
    ssl: u16,
    client_auth: &str,
    extra: &str,
) -> (Broker, tempfile::TempDir) {
    pki.issue("server", "localhost");
    start_with_config(&format!(
        r#"
{extra}

[[listeners]]
name = "PLAIN"
listen = "127.0.0.1:{plain}"

[[listeners]]
name = "SECURE"
listen = "127.0.0.1:{ssl}"
protocol = "SSL"
tls_cert = "{cert}"
tls_key = "{key}"
tls_client_auth = "{client_auth}"
tls_client_ca = "{ca}"
"#,
        plain = free_port(),
        cert = pki.path("server.pem"),
        key = pki.path("server.key"),
        ca = pki.path("ca.pem"),
    ))
}

/// librdkafka settings for the SSL listener, trusting `pki`'s CA.
fn ssl_settings(pki: &Pki) -> Vec<(&'static str, String)> {
    vec![
        ("security.protocol", "ssl".into()),
        ("ssl.ca.location", pki.path("ca.pem")),
    ]
}

#[test]
fn librdkafka_produces_and_consumes_over_tls() {
    let pki = Pki::new();
    let ssl = free_port();
    let (broker, _dir) = start_with_ssl(&pki, ssl, "none");
    create_topic(&broker, "secure", 1);
    let secure = format!("localhost:{ssl}");
    let deliveries = Deliveries::default();
    let producer = producer_over(&secure, &deliveries, &ssl_settings(&pki));
    produce_keyed(&producer, "secure", 0..500, 100);
    rdkafka::producer::Producer::flush(&producer, std::time::Duration::from_secs(30)).unwrap();
    assert!(deliveries.failed.lock().unwrap().is_empty());
    let reads = read_over(&secure, "secure", 500, &ssl_settings(&pki));
    assert_exactly_once(&deliveries.acked.lock().unwrap(), &reads);
    // The same data over the plaintext listener.
    let plain = read_all_rdkafka(
        &broker.addr,
        "secure",
        1,
        500,
        std::time::Duration::from_secs(30),
    );
    assert_eq!(plain.len(), 500);
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_to_a_tls_port_is_refused_and_the_broker_carries_on() {
    let pki = Pki::new();
    let ssl = free_port();
    let (broker, _dir) = start_with_ssl(&pki, ssl, "none");
    let refused = Client::connect(&format!("127.0.0.1:{ssl}")).await;
    assert!(refused.is_err(), "a plaintext client gets no answer");
    let mut client = Client::connect(&broker.addr)
        .await
        .expect("the other listener serves");
    client.call(MetadataRequest::default(), 12).await.unwrap();
}

#[test]
fn client_certificates_are_required_where_configured() {
    let pki = Pki::new();
    let ssl = free_port();
    let (broker, _dir) = start_with_ssl(&pki, ssl, "required");
    create_topic(&broker, "mtls", 1);
    let secure = format!("localhost:{ssl}");
    // Without a client certificate: the handshake fails, nothing is produced.
    let anonymous: rdkafka::producer::BaseProducer = {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", &secure);
        for (k, v) in ssl_settings(&pki) {
            config.set(k, v);
        }
        config.create().unwrap()
    };
    let metadata = rdkafka::producer::Producer::client(&anonymous)
        .fetch_metadata(Some("mtls"), std::time::Duration::from_secs(3));
    assert!(metadata.is_err(), "no certificate, no connection");
    // With one the CA signed: served.
    pki.issue("alice", "alice");
    let mut settings = ssl_settings(&pki);
    settings.push(("ssl.certificate.location", pki.path("alice.pem")));
    settings.push(("ssl.key.location", pki.path("alice.key")));
    let deliveries = Deliveries::default();
    let producer = producer_over(&secure, &deliveries, &settings);
    produce_keyed(&producer, "mtls", 0..100, 10);
    rdkafka::producer::Producer::flush(&producer, std::time::Duration::from_secs(30)).unwrap();
    let reads = read_over(&secure, "mtls", 100, &settings);
    assert_exactly_once(&deliveries.acked.lock().unwrap(), &reads);
}

#[test]
fn renewed_certificates_are_used_without_a_restart() {
    let pki = Pki::new();
    let ssl = free_port();
    let (broker, _dir) = start_with_ssl(&pki, ssl, "none");
    create_topic(&broker, "renewed", 1);
    // A new CA and a new certificate from it, written over the old files.
    let renewed = Pki::new();
    renewed.issue("server", "localhost");
    std::fs::copy(renewed.path("server.pem"), pki.path("server.pem")).unwrap();
    std::fs::copy(renewed.path("server.key"), pki.path("server.key")).unwrap();
    let secure = format!("localhost:{ssl}");
    let deliveries = Deliveries::default();
    let producer = producer_over(&secure, &deliveries, &ssl_settings(&renewed));
    produce_keyed(&producer, "renewed", 0..10, 10);
    rdkafka::producer::Producer::flush(&producer, std::time::Duration::from_secs(30)).unwrap();
    assert_eq!(
        deliveries.acked.lock().unwrap().len(),
        10,
        "served with the new certificate"
    );
    let _ = broker;
}

#[test]
fn kafka_python_over_tls_with_and_without_a_client_certificate() {
    for auth in ["none", "required"] {
        let pki = Pki::new();
        let ssl = free_port();
        let (broker, _dir) = start_with_ssl(&pki, ssl, auth);
        create_topic(&broker, "py", 2);
        let secure = format!("localhost:{ssl}");
        let ca = pki.path("ca.pem");
        let mut args = vec![secure.as_str(), "py", "50", "30", ca.as_str()];
        pki.issue("client", "py-client");
        let (cert, key) = (pki.path("client.pem"), pki.path("client.key"));
        if auth == "required" {
            args.extend([cert.as_str(), key.as_str()]);
        }
        let read = run_python("tls_roundtrip.py", &args);
        let keys: std::collections::BTreeSet<String> = read.into_iter().collect();
        assert_eq!(
            keys.len(),
            50,
            "client auth {auth}: every message read back"
        );
    }
}

#[test]
fn a_client_certificate_names_the_principal_through_the_mapping_rules() {
    let pki = Pki::new();
    pki.issue("alice", "Alice/OU=eng");
    pki.issue("bob", "bob");
    let ssl = free_port();
    let (broker, _dir) = start_with_ssl_and(
        &pki,
        ssl,
        "required",
        r#"
[security]
authorizer = "acl"
super_users = ["User:ANONYMOUS"]
ssl_principal_mapping_rules = ["RULE:^OU=eng,CN=(.*)$/$1/L", "DEFAULT"]
"#,
    );
    create_topic(&broker, "certs", 1);
    for principal in ["User:alice", "User:CN=bob"] {
        let (ok, _, err) = silt(&[
            "acl",
            "create",
            "--allow-principal",
            principal,
            "--operation",
            "Describe",
            "--topic",
            "certs",
            "--bootstrap-server",
            &broker.addr,
        ]);
        assert!(ok, "{err}");
    }
    let (ok, _, err) = silt(&[
        "acl",
        "create",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Write",
        "--topic",
        "certs",
        "--bootstrap-server",
        &broker.addr,
    ]);
    assert!(ok, "{err}");
    let secure = format!("localhost:{ssl}");
    let produced = |who: &str| {
        let mut settings = ssl_settings(&pki);
        settings.push(("ssl.certificate.location", pki.path(&format!("{who}.pem"))));
        settings.push(("ssl.key.location", pki.path(&format!("{who}.key"))));
        settings.push(("message.timeout.ms", "10000".into()));
        let deliveries = Deliveries::default();
        let producer = producer_over(&secure, &deliveries, &settings);
        produce_keyed(&producer, "certs", 0..10, 10);
        let _ = rdkafka::producer::Producer::flush(&producer, std::time::Duration::from_secs(30));
        deliveries.acked.lock().unwrap().len()
    };
    assert_eq!(produced("alice"), 10, "CN=Alice,OU=eng is User:alice");
    assert_eq!(
        produced("bob"),
        0,
        "CN=bob is User:CN=bob, who may not write"
    );
}

#[test]
fn the_admin_port_serves_https_to_holders_of_the_token_or_password() {
    let pki = Pki::new();
    pki.issue("server", "localhost");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silt.toml");
    std::fs::write(
        &path,
        format!(
            "[admin]\nbasic_auth = \"ops:pw\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            pki.path("server.pem"),
            pki.path("server.key")
        ),
    )
    .unwrap();
    let broker = Broker::start_with_env(
        &[
            "--config",
            path.to_str().unwrap(),
            "--admin-listen",
            "127.0.0.1:0",
        ],
        &[("SILT_ADMIN__TOKEN", "t0ken")],
    );
    let port = broker
        .admin
        .clone()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1
        .to_string();
    let ca = pki.path("ca.pem");
    let status = |path: &str, extra: &[&str]| {
        let url = format!("https://localhost:{port}{path}");
        let mut args = vec![
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            &ca,
        ];
        args.extend(extra);
        args.push(&url);
        let out = std::process::Command::new("curl")
            .args(&args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(status("/metrics", &[]), "401", "no credentials");
    assert_eq!(
        status("/metrics", &["-H", "Authorization: Bearer wrong"]),
        "401"
    );
    assert_eq!(
        status("/metrics", &["-H", "Authorization: Bearer t0ken"]),
        "200"
    );
    assert_eq!(status("/metrics", &["-u", "ops:pw"]), "200");
    assert_eq!(status("/metrics", &["-u", "ops:nope"]), "401");
    assert_eq!(status("/health", &[]), "200", "open for load balancers");
    // Plain HTTP to the HTTPS port gets nothing.
    let plain = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg(format!("http://127.0.0.1:{port}/health"))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");
}
