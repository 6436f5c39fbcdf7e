//! Client quotas with real clients: a user over its produce (fetch) byte
//! rate is throttled to it while another user is not; quotas are set and
//! shown with `silt quota`.

mod common;

use std::time::{Duration, Instant};

use common::security::*;
use common::*;

/// A broker with a PLAINTEXT listener for operators and a SASL one for
/// users alice and bob.
fn start_quota_broker() -> (Broker, String, tempfile::TempDir) {
    let sasl = free_port();
    let (broker, dir) = start_with_config(&format!(
        "[[listeners]]\nname = \"INTERNAL\"\nlisten = \"127.0.0.1:{}\"\n\n\
         [[listeners]]\nname = \"USERS\"\nlisten = \"127.0.0.1:{sasl}\"\n\
         protocol = \"SASL_PLAINTEXT\"\n",
        free_port()
    ));
    for user in ["alice", "bob"] {
        create_user(&broker.addr, user, &format!("{user}-pw"));
    }
    (broker, format!("127.0.0.1:{sasl}"), dir)
}

fn as_user(user: &str) -> Vec<(&'static str, String)> {
    vec![
        ("security.protocol", "sasl_plaintext".into()),
        ("sasl.mechanism", "SCRAM-SHA-256".into()),
        ("sasl.username", user.into()),
        ("sasl.password", format!("{user}-pw")),
    ]
}

fn quota(broker: &Broker, args: &[&str]) -> String {
    let mut all = vec!["quota"];
    all.extend(args);
    all.extend(["--bootstrap-server", &broker.addr]);
    let (ok, out, err) = silt(&all);
    assert!(ok, "silt {all:?}: {err}");
    out
}

const QUOTA: f64 = 1024.0 * 1024.0;
const MESSAGES: u64 = 8 * 1024;
const VALUE: usize = 1024;

/// Produces `MESSAGES` values of `VALUE` bytes as `user`; bytes per second.
fn produce_rate(addr: &str, user: &str, topic: &str) -> f64 {
    let deliveries = Deliveries::default();
    let producer = producer_over(addr, &deliveries, &as_user(user));
    let started = Instant::now();
    produce_keyed(&producer, topic, 0..MESSAGES, VALUE);
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(60)).unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(deliveries.acked.lock().unwrap().len() as u64, MESSAGES);
    (MESSAGES as usize * VALUE) as f64 / elapsed
}

#[test]
fn a_producer_over_its_byte_rate_is_throttled_to_it_while_another_is_not() {
    let (broker, addr, _dir) = start_quota_broker();
    create_topic(&broker, "limited", 1);
    let rate = QUOTA.to_string();
    quota(
        &broker,
        &["set", "--user", "alice", "--producer-byte-rate", &rate],
    );
    let alice = produce_rate(&addr, "alice", "limited");
    eprintln!(
        "alice produced {:.0} B/s against a quota of {QUOTA} B/s",
        alice
    );
    assert!(
        (0.8 * QUOTA..=1.2 * QUOTA).contains(&alice),
        "alice's rate {alice:.0} is not within 20% of {QUOTA}"
    );
    let bob = produce_rate(&addr, "bob", "limited");
    eprintln!("bob produced {bob:.0} B/s without a quota");
    assert!(bob > 2.0 * QUOTA, "bob is not throttled: {bob:.0}");
}

#[test]
fn a_consumer_over_its_byte_rate_is_throttled_to_it() {
    let (broker, addr, _dir) = start_quota_broker();
    create_topic(&broker, "read", 1);
    produce_rate(&addr, "bob", "read");
    let rate = QUOTA.to_string();
    quota(
        &broker,
        &["set", "--user-default", "--consumer-byte-rate", &rate],
    );
    let mut settings = as_user("alice");
    settings.push(("fetch.max.bytes", "262144".into()));
    settings.push(("message.max.bytes", "131072".into()));
    settings.push(("max.partition.fetch.bytes", "262144".into()));
    let started = Instant::now();
    let reads = read_over(&addr, "read", MESSAGES as usize, &settings);
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(reads.len() as u64, MESSAGES);
    let alice = (MESSAGES as usize * VALUE) as f64 / elapsed;
    eprintln!("alice fetched {alice:.0} B/s against a default quota of {QUOTA} B/s");
    assert!(
        (0.8 * QUOTA..=1.2 * QUOTA).contains(&alice),
        "alice's fetch rate {alice:.0} is not within 20% of {QUOTA}"
    );
}

#[test]
fn quotas_are_set_described_removed_and_checked() {
    let (broker, _addr, _dir) = start_quota_broker();
    quota(
        &broker,
        &[
            "set",
            "--user",
            "alice",
            "--client-id",
            "batch",
            "--producer-byte-rate",
            "1000",
        ],
    );
    quota(
        &broker,
        &["set", "--user-default", "--request-percentage", "50"],
    );
    let shown = quota(&broker, &["describe"]);
    assert!(
        shown.contains("user=alice,client-id=batch\tproducer_byte_rate\t1000"),
        "{shown}"
    );
    assert!(
        shown.contains("user=<default>\trequest_percentage\t50"),
        "{shown}"
    );
    let alice = quota(
        &broker,
        &["describe", "--user", "alice", "--client-id", "batch"],
    );
    assert!(!alice.contains("<default>"), "{alice}");
    quota(
        &broker,
        &["set", "--user-default", "--delete", "request_percentage"],
    );
    assert!(!quota(&broker, &["describe"]).contains("request_percentage"));
    for (args, message) in [
        (
            vec!["set", "--user", "a", "--delete", "bytes_per_fortnight"],
            "unknown quota key",
        ),
        (
            vec!["set", "--user", "a", "--producer-byte-rate=-5"],
            "positive",
        ),
        (vec!["set", "--producer-byte-rate", "5"], "give --user"),
    ] {
        let mut all = vec!["quota"];
        all.extend(args);
        all.extend(["--bootstrap-server", &broker.addr]);
        let (ok, _, err) = silt(&all);
        assert!(!ok && err.contains(message), "{all:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn quota_apis_at_every_advertised_version() {
    use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
    use kafka_protocol::messages::{AlterClientQuotasRequest, ApiKey, DescribeClientQuotasRequest};
    use kafka_protocol::protocol::StrBytes;
    use silt::protocol::versions::supported;
    let broker = Broker::start(&[]);
    let mut client = silt::client::Client::connect(&broker.addr).await.unwrap();
    let (min, max) = supported(ApiKey::AlterClientQuotas).unwrap();
    assert_eq!(supported(ApiKey::DescribeClientQuotas), Some((min, max)));
    for v in min..=max {
        let user = format!("user-v{v}");
        let entry = EntryData::default()
            .with_entity(vec![
                EntityData::default()
                    .with_entity_type(StrBytes::from_static_str("user"))
                    .with_entity_name(Some(StrBytes::from_string(user.clone()))),
            ])
            .with_ops(vec![
                OpData::default()
                    .with_key(StrBytes::from_static_str("consumer_byte_rate"))
                    .with_value(4096.0),
            ]);
        let response = client
            .call(
                AlterClientQuotasRequest::default().with_entries(vec![entry]),
                v,
            )
            .await
            .unwrap();
        assert_eq!(response.entries[0].error_code, 0, "AlterClientQuotas v{v}");
        let response = client
            .call(DescribeClientQuotasRequest::default(), v)
            .await
            .unwrap();
        let entries = response.entries.unwrap_or_default();
        let found = entries.iter().any(|e| {
            e.entity[0].entity_name.as_deref() == Some(user.as_str()) && e.values[0].value == 4096.0
        });
        assert!(found, "DescribeClientQuotas v{v}");
    }
}
