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

/// A crash (abort) right after a WAL segment is sealed (its index written,
/// the next segment not started), and right after one is published as a
/// data object (its extents not committed): the restart seals, publishes
/// and commits again, losing and duplicating nothing.
#[test]
fn local_durability_crashes_at_upload_steps_lose_nothing() {
    for fail_point in ["wal.after_seal", "upload.after_publish"] {
        let mut env = scenarios::SMALL_WAL.to_vec();
        env.push(("FAILPOINTS", fail_point));
        scenarios::fail_point_mid_produce(Broker::start_with_env(&["--durability", "local"], &env));
    }
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
    let broker = Broker::start(&["--admin-listen", "127.0.0.1:0"]);
    create_topic(&broker, "acks", 2);
    let setup = common::ledger::Answered::by(&broker);
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
    common::ledger::verify_since(&common::ledger::librdkafka(), &broker, &setup);
}

/// A topic with `message.timestamp.type=LogAppendTime` gives every record
/// the broker's time at the append, whatever the producer stamped: in the
/// produce response and to consumers.
#[test]
fn log_append_time_topics_stamp_the_brokers_time() {
    use rdkafka::Timestamp;
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::producer::{BaseRecord, FutureProducer, FutureRecord};
    let broker = Broker::start(&[]);
    let (ok, _, err) = silt(&[
        "topic",
        "create",
        "stamped",
        "--config",
        "message.timestamp.type=LogAppendTime",
        "--bootstrap-server",
        &broker.addr,
    ]);
    assert!(ok, "{err}");
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let before = now();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .expect("producer");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let old = before - 86_400_000;
    let delivered = runtime.block_on(async {
        let record = FutureRecord::to("stamped")
            .key("k")
            .payload("v")
            .timestamp(old);
        producer.send(record, Duration::from_secs(30)).await
    });
    let delivered = delivered.map_err(|(e, _)| e).expect("delivered");
    let after = now();
    let in_window = |t: Timestamp| match t {
        Timestamp::LogAppendTime(ms) => (before..=after).contains(&ms),
        _ => false,
    };
    assert!(in_window(delivered.timestamp), "{:?}", delivered.timestamp);
    // A second batch, sent by a plain producer with its own timestamp.
    let plain = Deliveries::default();
    let second = producer_with(&broker.addr, &plain, &[]);
    second
        .send(
            BaseRecord::to("stamped")
                .key("k2")
                .payload("v")
                .timestamp(old),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    second.flush(Duration::from_secs(30)).unwrap();
    let after = now();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", "stamped-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&["stamped"]).unwrap();
    let mut stamps = Vec::new();
    let start = std::time::Instant::now();
    while stamps.len() < 2 && start.elapsed() < Duration::from_secs(60) {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            stamps.push(message.expect("consume").timestamp());
        }
    }
    assert_eq!(stamps.len(), 2);
    for stamp in stamps {
        match stamp {
            Timestamp::LogAppendTime(ms) => assert!((before..=after).contains(&ms), "{ms}"),
            other => panic!("expected the broker's time, got {other:?}"),
        }
    }
}

/// `/metrics` as an operator reads it: a topic's traffic in and out, the
/// cluster as the broker sees it, build and process figures, and consumer
/// lag, whose series goes with its group.
#[test]
fn metrics_show_traffic_cluster_and_lag() {
    let broker = Broker::start_with_env(
        &["--admin-listen", "127.0.0.1:0"],
        &[("SILT_ADMIN__PARTITION_METRICS", "true")],
    );
    create_topic(&broker, "watched", 3);
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(&broker.addr, &deliveries);
    produce_keyed(&producer, "watched", 0..300, 30);
    producer.flush(Duration::from_secs(30)).expect("flush");
    let reads = read_all_rdkafka(&broker.addr, "watched", 3, 300, Duration::from_secs(30));
    assert_eq!(reads.len(), 300);
    let watched = r#"topic="watched""#;
    assert_eq!(
        broker.metric("silt_topic_messages_in_total", watched),
        300.0
    );
    assert_eq!(
        broker.metric("silt_topic_messages_out_total", watched),
        300.0
    );
    let bytes_in = broker.metric("silt_topic_bytes_in_total", watched);
    assert!(bytes_in > 300.0 * 10.0, "{bytes_in}");
    assert!(broker.metric("silt_topic_bytes_out_total", watched) >= bytes_in);

    let body = http_get(broker.admin.as_ref().unwrap(), "/metrics");
    assert!(
        body.contains("# TYPE process_cpu_seconds_total counter"),
        "{body}"
    );
    assert!(body.contains(&format!(
        "silt_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
    assert_eq!(broker.metric("silt_live_brokers", ""), 1.0);
    assert!(broker.metric("silt_controller_id", "") >= 0.0);
    assert_eq!(broker.metric("silt_leader_partitions", ""), 3.0);
    assert_eq!(broker.metric("silt_leaderless_partitions", ""), 0.0);
    // Opted in: each partition's offsets; 300 messages in all.
    assert_eq!(
        broker.metric("silt_partition_log_end_offset", watched),
        300.0
    );
    assert_eq!(
        broker.metric("silt_partition_log_start_offset", watched),
        0.0
    );
    let partitions = body
        .lines()
        .filter(|l| l.starts_with("silt_partition_log_end_offset{") && l.contains(watched))
        .count();
    assert_eq!(partitions, 3, "{body}");
    for counter in ["silt_cache_hits_total", "silt_cache_misses_total"] {
        assert!(
            body.contains(&format!("# TYPE {counter} counter")),
            "{counter}: {body}"
        );
    }

    // A group that committed 40 of partition 0's messages.
    commit_group_offset(&broker.addr, "watchers", "watched", 0, 40);
    let on_partition_0 = reads.iter().filter(|r| r.partition == 0).count() as f64;
    let lag = r#"group="watchers",topic="watched",partition="0""#;
    assert_eq!(
        broker.metric("silt_consumer_lag", lag),
        on_partition_0 - 40.0
    );
    let (ok, _, err) = silt(&[
        "group",
        "delete",
        "watchers",
        "--bootstrap-server",
        &broker.addr,
    ]);
    assert!(ok, "{err}");
    let body = http_get(broker.admin.as_ref().unwrap(), "/metrics");
    assert!(!body.contains(r#"group="watchers""#), "{body}");
}
