//! Transactions with real clients: librdkafka transactional producers
//! commit and abort (interleaved on the same partitions), read_committed
//! consumers see only what was committed and wait at the last stable
//! offset, a second producer with the same transactional id fences the
//! first, a stalled transaction is aborted after its timeout, and the
//! protocol refuses what Kafka refuses.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::ledger;
use common::transactions::{
    Copier, TIMEOUT, copy_exactly_once, transactional, transactional_batch,
};
use common::{
    Broker, Deliveries, create_topic, produce_keyed, producer_with, read_rdkafka_with, wait_until,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::{Producer, ThreadedProducer};

const READ_COMMITTED: &[(&str, &str)] = &[("isolation.level", "read_committed")];
const READ_UNCOMMITTED: &[(&str, &str)] = &[("isolation.level", "read_uncommitted")];

/// The keys read, as a set.
fn keys(reads: &[common::Read]) -> BTreeSet<String> {
    reads.iter().map(|r| r.key.clone()).collect()
}

/// `prefix-i` for i in `range`.
fn named(prefix: &str, range: std::ops::Range<u64>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

/// Sends keys `prefix-i` (as produce_keyed names them `key-i`, renamed).
fn send(
    producer: &ThreadedProducer<Deliveries>,
    topic: &str,
    prefix: &str,
    range: std::ops::Range<u64>,
) {
    for key in named(prefix, range) {
        let record = rdkafka::producer::BaseRecord::to(topic)
            .key(&key)
            .payload("v");
        producer.send(record).map_err(|(e, _)| e).expect("send");
    }
    producer.flush(TIMEOUT).expect("flush");
}

#[test]
fn local_durability_read_committed_sees_commits_only_and_read_uncommitted_all() {
    commits_and_aborts(Broker::start(&[
        "--durability",
        "local",
        "--admin-listen",
        "127.0.0.1:0",
    ]));
}

#[test]
fn object_durability_read_committed_sees_commits_only_and_read_uncommitted_all() {
    commits_and_aborts(Broker::start(&[
        "--durability",
        "object",
        "--admin-listen",
        "127.0.0.1:0",
    ]));
}

/// Two transactional producers commit and abort, interleaved on the same
/// partitions, beside a plain one; read_committed consumers see the
/// commits only, read_uncommitted ones everything; the same after a
/// restart, read from the objects.
fn commits_and_aborts(mut broker: Broker) {
    create_topic(&broker, "tx", 3);
    let setup = ledger::Answered::by(&broker);
    let (da, db) = (Deliveries::default(), Deliveries::default());
    let a = transactional(&broker.addr, "txn-a", &da, &[]);
    let b = transactional(&broker.addr, "txn-b", &db, &[]);
    // Interleaved on the same partitions: a aborts, b commits, a commits.
    a.begin_transaction().unwrap();
    send(&a, "tx", "aborted", 0..30);
    b.begin_transaction().unwrap();
    send(&b, "tx", "b-committed", 0..30);
    a.abort_transaction(TIMEOUT).expect("abort");
    b.commit_transaction(TIMEOUT).expect("commit");
    a.begin_transaction().unwrap();
    send(&a, "tx", "a-committed", 0..30);
    a.commit_transaction(TIMEOUT).expect("commit");
    let plain = producer_with(&broker.addr, &Deliveries::default(), &[]);
    produce_keyed(&plain, "tx", 0..10, 10);
    plain.flush(TIMEOUT).unwrap();

    let committed = read_rdkafka_with(&broker.addr, "tx", 3, 70, TIMEOUT, READ_COMMITTED);
    let expected: BTreeSet<String> = named("b-committed", 0..30)
        .into_iter()
        .chain(named("a-committed", 0..30))
        .chain(named("key", 0..10))
        .collect();
    assert_eq!(keys(&committed), expected);
    assert_eq!(committed.len(), 70, "nothing read twice");
    let all = read_rdkafka_with(&broker.addr, "tx", 3, 100, TIMEOUT, READ_UNCOMMITTED);
    let aborted: BTreeSet<String> = named("aborted", 0..30).into_iter().collect();
    assert!(
        aborted.is_subset(&keys(&all)),
        "read_uncommitted sees aborted records"
    );
    assert_eq!(all.len(), 100);
    ledger::verify_since(&ledger::librdkafka(), &broker, &setup);
    // After a restart the data and the aborted transactions come from the
    // committed state.
    broker.terminate(TIMEOUT);
    broker.restart();
    let again = read_rdkafka_with(&broker.addr, "tx", 3, 70, TIMEOUT, READ_COMMITTED);
    assert_eq!(keys(&again), expected);
    assert_eq!(again.len(), 70);
}

/// What a read_committed fetch of partition 0 from offset 0 answered.
struct Fetched {
    high_watermark: i64,
    last_stable: i64,
    /// Record bytes returned.
    bytes: usize,
    /// Producer ids of the aborted transactions listed.
    aborted: Vec<i64>,
}

async fn fetch_committed(addr: &str, topic: &str) -> Fetched {
    let mut client = silt::client::Client::connect(addr).await.unwrap();
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_isolation_level(1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.into())))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let response = client.call(request, 12).await.unwrap();
    let data = &response.responses[0].partitions[0];
    Fetched {
        high_watermark: data.high_watermark,
        last_stable: data.last_stable_offset,
        bytes: data.records.as_ref().map_or(0, |r| r.len()),
        aborted: data
            .aborted_transactions
            .iter()
            .flatten()
            .map(|a| a.producer_id.0)
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_stable_offset_holds_read_committed_consumers_while_a_transaction_is_open() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "open", 1);
    let addr = broker.addr.clone();
    let producer = tokio::task::spawn_blocking(move || {
        let deliveries = Deliveries::default();
        let producer = transactional(&addr, "txn-open", &deliveries, &[]);
        producer.begin_transaction().unwrap();
        send(&producer, "open", "open", 0..5);
        let plain = producer_with(&addr, &Deliveries::default(), &[]);
        produce_keyed(&plain, "open", 0..5, 10);
        plain.flush(TIMEOUT).unwrap();
        producer
    })
    .await
    .unwrap();
    // Everything is durable, but the open transaction's first record
    // (offset 0) bounds what read_committed consumers may see.
    let fetched = fetch_committed(&broker.addr, "open").await;
    assert_eq!(
        (fetched.high_watermark, fetched.last_stable, fetched.bytes),
        (10, 0, 0)
    );
    tokio::task::spawn_blocking(move || producer.commit_transaction(TIMEOUT))
        .await
        .unwrap()
        .expect("commit");
    let fetched = fetch_committed(&broker.addr, "open").await;
    assert_eq!(
        (fetched.high_watermark, fetched.last_stable),
        (11, 11),
        "the marker moved both"
    );
    assert!(fetched.bytes > 0 && fetched.aborted.is_empty());
}

#[test]
fn a_second_producer_with_the_same_id_fences_the_first_and_aborts_its_transaction() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "fenced", 2);
    let first = transactional(&broker.addr, "txn-f", &Deliveries::default(), &[]);
    first.begin_transaction().unwrap();
    send(&first, "fenced", "zombie", 0..10);
    let second = transactional(&broker.addr, "txn-f", &Deliveries::default(), &[]);
    let refused = first
        .commit_transaction(TIMEOUT)
        .expect_err("the first is fenced");
    match &refused {
        rdkafka::error::KafkaError::Transaction(e) => assert!(e.is_fatal(), "fenced: {e}"),
        other => panic!("expected a fatal transaction error, got {other}"),
    }
    second.begin_transaction().unwrap();
    send(&second, "fenced", "successor", 0..10);
    second.commit_transaction(TIMEOUT).expect("commit");
    let read = read_rdkafka_with(&broker.addr, "fenced", 2, 10, TIMEOUT, READ_COMMITTED);
    let expected: BTreeSet<String> = named("successor", 0..10).into_iter().collect();
    assert_eq!(keys(&read), expected);
}

#[test]
fn a_stalled_transaction_is_aborted_after_its_timeout_and_consumers_move_on() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "stalled", 1);
    let stalled = transactional(
        &broker.addr,
        "txn-stalled",
        &Deliveries::default(),
        &[
            ("transaction.timeout.ms", "3000"),
            ("message.timeout.ms", "3000"),
        ],
    );
    stalled.begin_transaction().unwrap();
    send(&stalled, "stalled", "stalled", 0..5);
    let plain = producer_with(&broker.addr, &Deliveries::default(), &[]);
    produce_keyed(&plain, "stalled", 0..5, 10);
    plain.flush(TIMEOUT).unwrap();
    // The coordinator aborts it: read_committed consumers get the plain
    // records after it, and never the stalled ones.
    let read = read_rdkafka_with(&broker.addr, "stalled", 1, 5, TIMEOUT, READ_COMMITTED);
    let expected: BTreeSet<String> = named("key", 0..5).into_iter().collect();
    assert_eq!(keys(&read), expected);
    wait_until(
        "the stalled producer learns it was aborted",
        TIMEOUT,
        || stalled.commit_transaction(Duration::from_secs(5)).is_err(),
    );
}

#[test]
fn consume_transform_produce_is_exactly_once_across_a_broker_kill9() {
    copy_through_a_crash(Broker::start(&[]), |broker, wait_paused| {
        // Killed in the middle of the fifth transaction.
        wait_paused
            .recv_timeout(TIMEOUT)
            .expect("the copier paused");
        broker.kill9();
        broker.restart();
    });
}

#[test]
fn a_coordinator_crashing_between_its_decision_and_the_markers_completes_it_after_restart() {
    copy_after_fail_point("txn.after_prepare");
}

#[test]
fn a_coordinator_crashing_after_the_markers_completes_the_transaction_after_restart() {
    copy_after_fail_point("txn.after_markers");
}

/// The copy with the broker aborting at the fail point `name` (at the
/// first transaction's end), restarted on its data dir.
fn copy_after_fail_point(name: &str) {
    let broker = Broker::start_with_env(&[], &[("FAILPOINTS", name)]);
    copy_through_a_crash(broker, |broker, wait_paused| {
        wait_until("the fail point", TIMEOUT, || !broker.is_running());
        broker.wait_exit(TIMEOUT);
        broker.unset_env("FAILPOINTS");
        broker.restart();
        wait_paused
            .recv_timeout(TIMEOUT)
            .expect("the copier paused");
    });
}

/// Copies 3000 records with a [`Copier`] while `crash` brings the broker
/// down and restarts it (it gets the copier's signal that it paused in
/// its fifth transaction, which goes on when `crash` returns); the
/// output, read with read_committed, holds every input record once.
fn copy_through_a_crash(
    mut broker: Broker,
    crash: impl FnOnce(&mut Broker, &std::sync::mpsc::Receiver<()>),
) {
    create_topic(&broker, "input", 2);
    create_topic(&broker, "output", 2);
    let input = Deliveries::default();
    let plain = producer_with(&broker.addr, &input, &[]);
    produce_keyed(&plain, "input", 0..3000, 100);
    plain.flush(TIMEOUT).unwrap();
    let acked = input.acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 3000);
    let mut ends = vec![0i64; 2];
    for ack in acked.values() {
        let end = &mut ends[ack.partition as usize];
        *end = (*end).max(ack.offset + 1);
    }
    let stop = std::time::Instant::now() + Duration::from_secs(180);
    let addr = broker.addr.clone();
    let (paused, wait_paused) = std::sync::mpsc::channel();
    let (resume, wait_resume) = std::sync::mpsc::channel();
    let copier = Copier {
        bootstrap: addr,
        input: "input",
        output: "output",
        transactional_id: "copier-tx".into(),
        group: "copier".into(),
        ends,
        stop,
        paused,
        resume: wait_resume,
    };
    let copier = std::thread::spawn(move || copy_exactly_once(copier));
    crash(&mut broker, &wait_paused);
    resume.send(()).unwrap();
    copier.join().expect("copying finished");
    let copied = read_rdkafka_with(&broker.addr, "output", 2, 3000, TIMEOUT, READ_COMMITTED);
    let expected: BTreeSet<String> = named("key", 0..3000).into_iter().collect();
    assert_eq!(keys(&copied), expected);
    assert_eq!(copied.len(), 3000, "every input record copied exactly once");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_transactional_requests_get_kafkas_errors_and_store_nothing() {
    use kafka_protocol::error::ResponseError;
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{
        AddPartitionsToTxnRequest, EndTxnRequest, InitProducerIdRequest, ProduceRequest,
        ProducerId, TransactionalId,
    };
    let broker = Broker::start(&[]);
    create_topic(&broker, "bad", 1);
    let mut client = silt::client::Client::connect(&broker.addr).await.unwrap();
    let txn_id = |id: &str| TransactionalId(StrBytes::from_string(id.into()));
    let name = |n: &str| TopicName(StrBytes::from_string(n.into()));

    let too_long = InitProducerIdRequest::default()
        .with_transactional_id(Some(txn_id("t")))
        .with_transaction_timeout_ms(900_001);
    let response = client.call(too_long, 4).await.unwrap();
    assert_eq!(
        response.error_code,
        ResponseError::InvalidTransactionTimeout.code()
    );

    let end_unknown = EndTxnRequest::default()
        .with_transactional_id(txn_id("nobody"))
        .with_producer_id(ProducerId(5))
        .with_committed(true);
    let response = client.call(end_unknown, 4).await.unwrap();
    assert_eq!(
        response.error_code,
        ResponseError::InvalidProducerIdMapping.code()
    );

    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(txn_id("t")))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let response = client.call(init, 4).await.unwrap();
    assert_eq!(response.error_code, 0);
    let (producer_id, epoch) = (response.producer_id, response.producer_epoch);

    // Produced before the partition was added: refused, nothing stored.
    let produce = ProduceRequest::default()
        .with_transactional_id(Some(txn_id("t")))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name("bad"))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(transactional_batch(producer_id.0, epoch, 0))),
                ]),
        ]);
    let response = client.call(produce, 9).await.unwrap();
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, ResponseError::InvalidTxnState.code());
    let fetched = fetch_committed(&broker.addr, "bad").await;
    assert_eq!(fetched.high_watermark, 0, "nothing stored");

    let add = |topics: Vec<(&str, i32)>, epoch: i16| {
        AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(txn_id("t"))
            .with_v3_and_below_producer_id(producer_id)
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(
                topics
                    .into_iter()
                    .map(|(t, p)| {
                        AddPartitionsToTxnTopic::default()
                            .with_name(name(t))
                            .with_partitions(vec![p])
                    })
                    .collect(),
            )
    };
    let codes = |response: kafka_protocol::messages::AddPartitionsToTxnResponse| -> Vec<i16> {
        response
            .results_by_topic_v3_and_below
            .iter()
            .flat_map(|t| {
                t.results_by_partition
                    .iter()
                    .map(|p| p.partition_error_code)
            })
            .collect()
    };
    let response = client
        .call(add(vec![("bad", 0), ("missing", 0)], epoch), 3)
        .await
        .unwrap();
    assert_eq!(
        codes(response),
        vec![
            ResponseError::OperationNotAttempted.code(),
            ResponseError::UnknownTopicOrPartition.code()
        ]
    );
    let response = client
        .call(add(vec![("bad", 0)], epoch - 1), 3)
        .await
        .unwrap();
    assert_eq!(codes(response), vec![ResponseError::ProducerFenced.code()]);
    let wrong_producer = EndTxnRequest::default()
        .with_transactional_id(txn_id("t"))
        .with_producer_id(ProducerId(producer_id.0 + 1))
        .with_producer_epoch(epoch)
        .with_committed(true);
    let response = client.call(wrong_producer, 4).await.unwrap();
    assert_eq!(
        response.error_code,
        ResponseError::InvalidProducerIdMapping.code()
    );
    let nothing_to_end = EndTxnRequest::default()
        .with_transactional_id(txn_id("t"))
        .with_producer_id(producer_id)
        .with_producer_epoch(epoch)
        .with_committed(true);
    let response = client.call(nothing_to_end, 4).await.unwrap();
    assert_eq!(response.error_code, ResponseError::InvalidTxnState.code());
    let fetched = fetch_committed(&broker.addr, "bad").await;
    assert_eq!(fetched.high_watermark, 0, "still nothing stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_list_describe_and_abort_transactions_with_the_cli() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "admin", 1);
    let addr = broker.addr.clone();
    let producer = tokio::task::spawn_blocking(move || {
        let producer = transactional(&addr, "txn-admin", &Deliveries::default(), &[]);
        producer.begin_transaction().unwrap();
        send(&producer, "admin", "open", 0..3);
        producer
    })
    .await
    .unwrap();
    let bootstrap = ["--bootstrap-server", broker.addr.as_str()];
    let run = |args: &[&str]| {
        let (ok, out, err) = common::silt(&[args, &bootstrap[..]].concat());
        assert!(ok, "silt {args:?}: {err}");
        out
    };
    let listed = run(&["txn", "list"]);
    let line = listed
        .lines()
        .find(|l| l.starts_with("txn-admin\t"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(line.ends_with("\tOngoing"), "{line}");
    let described = run(&["txn", "describe", "txn-admin"]);
    assert!(
        described.contains("State: Ongoing") && described.contains("Partitions: admin-0"),
        "{described}"
    );
    let (ok, _, err) = common::silt(&[&["txn", "describe", "nobody"][..], &bootstrap].concat());
    assert!(!ok && err.contains("does not exist"), "{err}");
    let producers = run(&["txn", "producers", "admin", "--partition", "0"]);
    let open: Vec<&str> = producers
        .lines()
        .skip(1)
        .filter(|l| l.ends_with("\t0"))
        .collect();
    assert_eq!(
        open.len(),
        1,
        "one producer with a transaction from offset 0: {producers}"
    );
    assert_eq!(fetch_committed(&broker.addr, "admin").await.last_stable, 0);
    // An operator aborts it as a hanging transaction.
    let aborted = run(&[
        "txn",
        "abort",
        "--topic",
        "admin",
        "--partition",
        "0",
        "--start-offset",
        "0",
    ]);
    assert!(aborted.contains("aborted"), "{aborted}");
    let fetched = fetch_committed(&broker.addr, "admin").await;
    assert_eq!(
        (fetched.high_watermark, fetched.last_stable),
        (4, 4),
        "the marker at 3 ends it"
    );
    assert!(fetched.bytes > 0);
    assert_eq!(
        fetched.aborted.len(),
        1,
        "listed as aborted: consumers drop them"
    );
    drop(producer);
}

#[test]
fn kafka_python_transactions_commit_and_abort() {
    let broker = Broker::start(&["--admin-listen", "127.0.0.1:0"]);
    create_topic(&broker, "py", 2);
    let setup = ledger::Answered::by(&broker);
    let read = common::run_python("transactional.py", &[&broker.addr, "py", "20", "30"]);
    ledger::verify_since(&ledger::kafka_python(), &broker, &setup);
    let expected: BTreeSet<String> = named("py-committed", 0..20).into_iter().collect();
    let read_keys: BTreeSet<String> = read.iter().cloned().collect();
    assert_eq!(read_keys, expected, "read_committed sees the commits only");
    assert_eq!(read.len(), 20);
    let all = read_rdkafka_with(&broker.addr, "py", 2, 40, TIMEOUT, READ_UNCOMMITTED);
    assert_eq!(all.len(), 40, "the aborted ones are in the log");
}

/// A compacted topic written in transactions, some aborted: compaction
/// removes the aborted records (they never replace the committed record
/// of their key) and keeps the markers; read_committed consumers see each
/// key's committed record, before and after compaction and after a
/// restart (read from the compacted objects).
#[test]
fn compaction_removes_aborted_records_and_keeps_the_committed_ones() {
    let mut broker = Broker::start_with_env(
        &["--admin-listen", "127.0.0.1:0"],
        &[
            ("SILT_STORAGE__LIFECYCLE_INTERVAL_MS", "200"),
            ("SILT_FLUSH__INTERVAL_MS", "100"),
        ],
    );
    let (ok, _, err) = common::silt(&[
        "topic",
        "create",
        "table",
        "--partitions",
        "1",
        "--config",
        "cleanup.policy=compact",
        "--config",
        "min.cleanable.dirty.ratio=0.01",
        "--bootstrap-server",
        &broker.addr,
    ]);
    assert!(ok, "{err}");
    let producer = transactional(&broker.addr, "txn-table", &Deliveries::default(), &[]);
    producer.begin_transaction().unwrap();
    send(&producer, "table", "k", 0..10);
    producer.commit_transaction(TIMEOUT).expect("commit");
    producer.begin_transaction().unwrap();
    send(&producer, "table", "k", 0..10);
    producer.abort_transaction(TIMEOUT).expect("abort");
    producer.begin_transaction().unwrap();
    send(&producer, "table", "k", 10..20);
    producer.commit_transaction(TIMEOUT).expect("commit");
    let expected: BTreeSet<String> = named("k", 0..20).into_iter().collect();
    let read = read_rdkafka_with(&broker.addr, "table", 1, 20, TIMEOUT, READ_COMMITTED);
    assert_eq!((keys(&read), read.len()), (expected.clone(), 20));
    wait_until("the aborted records are compacted away", TIMEOUT, || {
        broker.metric("silt_compaction_removed_records_total", "") >= 10.0
    });
    assert_eq!(
        broker.metric("silt_compaction_removed_records_total", ""),
        10.0,
        "only the aborted records go"
    );
    broker.terminate(TIMEOUT);
    broker.restart();
    let read = read_rdkafka_with(&broker.addr, "table", 1, 20, TIMEOUT, READ_COMMITTED);
    assert_eq!((keys(&read), read.len()), (expected.clone(), 20));
    // Nothing aborted is left for read_uncommitted consumers either.
    let all = read_rdkafka_with(&broker.addr, "table", 1, 20, TIMEOUT, READ_UNCOMMITTED);
    assert_eq!((keys(&all), all.len()), (expected, 20));
}
