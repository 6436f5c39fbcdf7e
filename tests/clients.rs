//! Real Kafka clients against the real broker: librdkafka (idempotent,
//! acks=all) and kafka-python (default settings) produce and read back;
//! every acknowledged message is read exactly once, at its acknowledged
//! offset, in order, across graceful restarts and `kill -9`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use rdkafka::producer::Producer;

const PARTITIONS: i32 = 8;
const MESSAGES: u64 = 100_000;
const VALUE_SIZE: usize = 100;
const READ_DEADLINE: Duration = Duration::from_secs(120);

fn acked_by_python(lines: &[String]) -> BTreeMap<String, Ack> {
    lines
        .iter()
        .map(|line| {
            let mut parts = line.split(' ');
            let key = parts.next().expect("key").to_string();
            let partition = parts
                .next()
                .and_then(|p| p.parse().ok())
                .expect("partition");
            let offset = parts.next().and_then(|p| p.parse().ok()).expect("offset");
            (key, Ack { partition, offset })
        })
        .collect()
}

fn produce_read_restart(durability: &str) {
    let mut broker = Broker::start(&["--durability", durability]);
    create_topic(&broker, "orders", PARTITIONS as u32);

    let deliveries = Deliveries::default();
    let producer = idempotent_producer(&broker.addr, &deliveries);
    produce_keyed(&producer, "orders", 0..MESSAGES, VALUE_SIZE);
    producer.flush(Duration::from_secs(120)).expect("flush");
    assert!(
        deliveries.failed.lock().unwrap().is_empty(),
        "deliveries failed"
    );
    let mut acked = deliveries.acked.lock().unwrap().clone();
    assert_eq!(acked.len() as u64, MESSAGES);
    let used: std::collections::BTreeSet<i32> = acked.values().map(|a| a.partition).collect();
    assert_eq!(
        used.len() as i32,
        PARTITIONS,
        "keys spread over every partition"
    );

    let python_acks = acked_by_python(&run_python(
        "produce.py",
        &[&broker.addr, "orders", "py", "2000"],
    ));
    assert_eq!(python_acks.len(), 2000);
    acked.extend(python_acks);
    let total = acked.len();

    let reads = read_all_rdkafka(&broker.addr, "orders", PARTITIONS, total, READ_DEADLINE);
    assert_exactly_once(&acked, &reads);
    let reads = read_all_kafka_python(&broker.addr, "orders", total, READ_DEADLINE);
    assert_exactly_once(&acked, &reads);

    broker.terminate(Duration::from_secs(10));
    broker.restart();
    let reads = read_all_rdkafka(&broker.addr, "orders", PARTITIONS, total, READ_DEADLINE);
    assert_exactly_once(&acked, &reads);
}

#[test]
fn local_durability_clients_read_every_ack_exactly_once() {
    produce_read_restart("local");
}

#[test]
fn object_durability_clients_read_every_ack_exactly_once() {
    produce_read_restart("object");
}

/// Kills the broker with SIGKILL while an idempotent producer is sending,
/// restarts it on the same data dir, and lets the producer finish. Small
/// WAL segments and uploads make the run roll, trim and recycle WAL
/// segments many times before the crash.
fn kill9_mid_produce(durability: &str) {
    let small = [
        ("SILT_WAL__SEGMENT_BYTES", "1048576"),
        ("SILT_FLUSH__BYTES", "1048576"),
    ];
    let mut broker = Broker::start_with_env(&["--durability", durability], &small);
    create_topic(&broker, "events", PARTITIONS as u32);
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(&broker.addr, &deliveries);
    let sender = {
        let topic = "events";
        let deliveries_ref = deliveries.clone();
        std::thread::scope(|scope| {
            let handle = scope.spawn(|| produce_keyed(&producer, topic, 0..MESSAGES, VALUE_SIZE));
            wait_until(
                "a third of the messages acknowledged",
                Duration::from_secs(120),
                || deliveries_ref.acked.lock().unwrap().len() as u64 >= MESSAGES / 3,
            );
            broker.kill9();
            broker.restart();
            handle.join()
        })
    };
    sender.expect("producer thread");
    producer
        .flush(Duration::from_secs(120))
        .expect("flush after restart");
    let acked = deliveries.acked.lock().unwrap().clone();
    let failed = deliveries.failed.lock().unwrap().clone();
    assert!(
        failed.is_empty(),
        "{} deliveries failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    assert_eq!(acked.len() as u64, MESSAGES);
    let reads = read_all_rdkafka(
        &broker.addr,
        "events",
        PARTITIONS,
        acked.len(),
        READ_DEADLINE,
    );
    assert_exactly_once(&acked, &reads);
    let reads = read_all_kafka_python(&broker.addr, "events", acked.len(), READ_DEADLINE);
    assert_exactly_once(&acked, &reads);
}

#[test]
fn local_durability_kill9_loses_and_duplicates_nothing() {
    kill9_mid_produce("local");
}

#[test]
fn object_durability_kill9_loses_and_duplicates_nothing() {
    kill9_mid_produce("object");
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
    let reads = read_all_rdkafka(&broker.addr, "acks", 2, 1000, READ_DEADLINE);
    assert_eq!(reads.len(), 1000);
    let keys: std::collections::BTreeSet<&str> = reads.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys.len(), 1000, "every message once");
}
