//! Real Kafka clients against the real broker: librdkafka (idempotent,
//! acks=all) and kafka-python (default settings) produce and read back;
//! every acknowledged message is read exactly once, at its acknowledged
//! offset, in order, across graceful restarts and `kill -9`.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::producer::Producer;

#[test]
fn local_durability_clients_read_every_ack_exactly_once() {
    scenarios::produce_read_restart(Broker::start(&["--durability", "local"]));
}

#[test]
fn object_durability_clients_read_every_ack_exactly_once() {
    scenarios::produce_read_restart(Broker::start(&["--durability", "object"]));
}

#[test]
fn local_durability_kill9_loses_and_duplicates_nothing() {
    scenarios::kill9_mid_produce(Broker::start_with_env(
        &["--durability", "local"],
        &scenarios::SMALL_WAL,
    ));
}

#[test]
fn object_durability_kill9_loses_and_duplicates_nothing() {
    scenarios::kill9_mid_produce(Broker::start_with_env(
        &["--durability", "object"],
        &scenarios::SMALL_WAL,
    ));
}

/// acks=0 gets no response and acks=1 the mode's acknowledgement; both
/// kinds of messages are all readable (acks=0 has no delivery guarantee in
/// Kafka, but on a healthy broker nothing is dropped).
#[test]
fn acks_zero_and_one_are_served() {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{BaseRecord, ThreadedProducer};
    let broker = Broker::start(&[]);
    create_topic(&broker, "acks", 2);
    for acks in ["0", "1"] {
        let deliveries = Deliveries::default();
        let producer: ThreadedProducer<Deliveries> = ClientConfig::new()
            .set("bootstrap.servers", &broker.addr)
            .set("acks", acks)
            .set("enable.idempotence", "false")
            .create_with_context(deliveries.clone())
            .expect("producer");
        for i in 0..500 {
            let key = format!("acks{acks}-{i}");
            producer
                .send(BaseRecord::to("acks").key(&key).payload("v"))
                .map_err(|(e, _)| e)
                .expect("send");
        }
        producer.flush(Duration::from_secs(30)).expect("flush");
        assert!(deliveries.failed.lock().unwrap().is_empty(), "acks={acks}");
        assert_eq!(deliveries.acked.lock().unwrap().len(), 500, "acks={acks}");
    }
    let reads = read_all_rdkafka(&broker.addr, "acks", 2, 1000, Duration::from_secs(60));
    assert_eq!(reads.len(), 1000);
    let keys: std::collections::BTreeSet<&str> = reads.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys.len(), 1000, "every message once");
}
