//! Listeners and their security, with real clients: several listeners,
//! each telling its clients its own advertised addresses.

mod common;

use common::*;
use kafka_protocol::messages::{DescribeClusterRequest, FindCoordinatorRequest, MetadataRequest};
use kafka_protocol::protocol::StrBytes;
use silt::client::Client;

/// A free loopback port (bound, then released for the broker to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A broker started with `config` (TOML) written to a file in its data
/// dir's parent.
fn start_with_config(config: &str) -> (Broker, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silt.toml");
    std::fs::write(&path, config).unwrap();
    let broker = Broker::start(&["--config", path.to_str().unwrap()]);
    (broker, dir)
}

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
            "[[listeners]]\nname = \"A\"\nlisten = \"127.0.0.1:0\"\nprotocol = \"SASL_SSL\"\n",
            "SASL is not served yet",
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
