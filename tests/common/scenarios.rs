//! Client scenarios shared by the local and the S3 test suites.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::producer::Producer;

use super::*;

/// Settings that make a short run seal, publish and trim many WAL
/// segments (uploads of 1 MiB).
pub const SMALL_WAL: [(&str, &str); 1] = [("SILT_FLUSH__BYTES", "1048576")];

pub const PARTITIONS: i32 = 8;
pub const MESSAGES: u64 = 100_000;
pub const VALUE_SIZE: usize = 100;
pub const READ_DEADLINE: Duration = Duration::from_secs(120);

pub fn acked_by_python(lines: &[String]) -> BTreeMap<String, Ack> {
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

/// 100k keyed idempotent messages over 8 partitions plus 2,000 from
/// kafka-python, read back by both clients, then again after a graceful
/// restart: every ack read exactly once at its offset.
pub fn produce_read_restart(mut broker: Broker) {
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

/// Kills the broker with SIGKILL while an idempotent producer is sending,
/// restarts it on the same data dir, and lets the producer finish. Small
/// uploads make the run seal, publish and trim WAL segments many times
/// before the crash (with `SMALL_WAL`).
pub fn kill9_mid_produce(broker: Broker) {
    crash_mid_produce(broker, |broker, deliveries| {
        wait_until(
            "a third of the messages acknowledged",
            Duration::from_secs(120),
            || deliveries.acked.lock().unwrap().len() as u64 >= MESSAGES / 3,
        );
        broker.kill9();
    });
}

/// Lets the broker, started with `FAILPOINTS` naming a fail point, abort
/// there while an idempotent producer is sending, restarts it without,
/// and lets the producer finish.
pub fn fail_point_mid_produce(broker: Broker) {
    crash_mid_produce(broker, |broker, _| {
        wait_until("the fail point", Duration::from_secs(120), || {
            !broker.is_running()
        });
        broker.wait_exit(Duration::from_secs(30));
        broker.unset_env("FAILPOINTS");
    });
}

/// Sends with an idempotent producer while `crash` brings the broker down,
/// restarts it on the same data dir, lets the producer finish, and reads
/// every message back exactly once, at its acknowledged offset.
fn crash_mid_produce(mut broker: Broker, crash: impl FnOnce(&mut Broker, &Deliveries)) {
    create_topic(&broker, "events", PARTITIONS as u32);
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(&broker.addr, &deliveries);
    let sender = {
        let topic = "events";
        std::thread::scope(|scope| {
            let handle = scope.spawn(|| produce_keyed(&producer, topic, 0..MESSAGES, VALUE_SIZE));
            crash(&mut broker, &deliveries);
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
