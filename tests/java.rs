//! The Java client (Kafka's reference implementation), at the versions
//! users run (4.x, and 3.9 for the older protocol paths), against a real
//! broker: tests/java/src/silt/Clients.java runs each scenario and checks
//! what a user would; `scripts/test` fetches the jars from Maven Central
//! into `JAVA_CLIENTS_HOME` (default `/var/tmp/silt-java`).

mod common;

use common::java::{CURRENT, OLDER};
use common::ledger;
use common::*;

/// Runs `scenario` of Clients.java with kafka-clients `version` against
/// `bootstrap`; its output lines.
fn java(version: &str, scenario: &str, bootstrap: &str) -> Vec<String> {
    let out = common::java::java(version, "silt.Clients")
        .args([scenario, bootstrap])
        .output()
        .expect("java");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kafka-clients {version}, {scenario}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_string).collect()
}

fn produce_and_consume(version: &str) {
    let broker = Broker::start(&["--admin-listen", "127.0.0.1:0"]);
    let lines = java(version, "produce-consume", &broker.addr);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        assert!(
            lines.contains(&format!("produced 200 {codec}")),
            "{lines:?}"
        );
    }
    assert!(lines.contains(&"consumed 1000".to_string()), "{lines:?}");
    assert!(
        lines.contains(&"resumed at the committed offsets".to_string()),
        "{lines:?}"
    );
    ledger::verify(&format!("Java {version}"), &broker);
}

/// The producer's defaults (idempotent, acks=all) in every codec, keys and
/// headers; a group consumer reads each record once, commits by hand, and
/// the next member resumes at the commits.
#[test]
fn java_4_produces_and_consumes_in_every_codec() {
    produce_and_consume(CURRENT);
}

#[test]
fn java_3_9_produces_and_consumes_in_every_codec() {
    produce_and_consume(OLDER);
}

/// Static members with the range assignor share a topic, and the one left
/// takes every partition.
#[test]
fn java_static_members_share_partitions_and_rebalance() {
    let broker = Broker::start(&[]);
    let lines = java(CURRENT, "groups", &broker.addr);
    assert_eq!(lines, ["assigned 2 and 2", "rebalanced to 4"]);
}

fn admin(version: &str) {
    let broker = Broker::start(&["--admin-listen", "127.0.0.1:0"]);
    let lines = java(version, "admin", &broker.addr);
    assert_eq!(
        lines,
        [
            "describeCluster ok",
            "createTopics describeTopics ok",
            "configs ok",
            "createPartitions ok",
            "listOffsets deleteRecords ok",
            "describeProducers listTransactions ok",
            "describeLogDirs ok",
            "electLeaders ok",
            "consumer groups ok",
            "deleteTopics ok",
        ]
    );
    ledger::verify(&format!("Java {version}"), &broker);
}

/// The AdminClient calls of operators and tools: cluster, topics, configs,
/// partitions, offsets, records, producers, transactions, log dirs and
/// consumer groups.
#[test]
fn java_4_admin_client() {
    admin(CURRENT);
}

#[test]
fn java_3_9_admin_client() {
    admin(OLDER);
}

fn errors(version: &str) {
    let broker = Broker::start(&["--admin-listen", "127.0.0.1:0"]);
    let lines = java(version, "errors", &broker.addr);
    assert_eq!(
        lines,
        [
            "admin errors ok",
            "record too large ok",
            "offset out of range ok",
            "group errors ok",
            "deleted topic ok",
        ]
    );
    ledger::verify(&format!("Java {version}"), &broker);
}

/// The errors applications meet surface as the Java client's exceptions
/// for Kafka's codes: existing, invalid and unknown topics, partitions and
/// configs; a record over the topic's max.message.bytes; offsets out of
/// range with auto.offset.reset=none; a commit from outside an active
/// group; deleting a group with members; a deleted topic created again.
#[test]
fn java_4_errors_are_kafkas() {
    errors(CURRENT);
}

#[test]
fn java_3_9_errors_are_kafkas() {
    errors(OLDER);
}
