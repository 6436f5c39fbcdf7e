//! The storage lifecycle with real clients: retention by time and by size
//! moves the log start (consumers below it reset, the data objects no
//! longer referenced leave the bucket), DeleteRecords through librdkafka's
//! and kafka-python's admin clients and `silt topic trim`, and log starts
//! that survive kill -9.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

const DEADLINE: Duration = Duration::from_secs(120);
const DAY_MS: i64 = 24 * 3600 * 1000;

/// Retention every 200 ms, uploads every 100 ms, garbage collection every
/// second with the shortest grace allowed.
const QUICK_LIFECYCLE: [(&str, &str); 4] = [
    ("SILT_STORAGE__LIFECYCLE_INTERVAL_MS", "200"),
    ("SILT_STORAGE__GC_INTERVAL_MS", "1000"),
    ("SILT_STORAGE__GC_GRACE_MS", "60000"),
    ("SILT_FLUSH__INTERVAL_MS", "100"),
];

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Sends keyed messages `key-<i>` for `range`, stamped `timestamp`, and
/// waits until all are acknowledged.
fn produce_stamped(
    addr: &str,
    topic: &str,
    range: std::ops::Range<u64>,
    timestamp: i64,
) -> BTreeMap<String, Ack> {
    let deliveries = Deliveries::default();
    let producer: ThreadedProducer<Deliveries> = idempotent_producer(addr, &deliveries);
    for i in range {
        let key = format!("key-{i}");
        let value = format!("value-{i}-{}", "x".repeat(200));
        let record = BaseRecord::to(topic)
            .key(&key)
            .payload(&value)
            .timestamp(timestamp);
        producer.send(record).map_err(|(e, _)| e).expect("send");
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    assert!(deliveries.failed.lock().unwrap().is_empty());
    deliveries.acked.lock().unwrap().clone()
}

/// Each partition's (log start, log end) offsets, from `silt topic describe`.
fn log_offsets(addr: &str, topic: &str) -> BTreeMap<i32, (i64, i64)> {
    let (ok, out, err) = silt(&["topic", "describe", topic, "--bootstrap-server", addr]);
    assert!(ok, "{err}");
    out.lines()
        .filter_map(|line| {
            let fields: BTreeMap<&str, &str> = line
                .split('\t')
                .filter_map(|f| f.split_once(": "))
                .collect();
            let number = |name: &str| fields.get(name)?.parse::<i64>().ok();
            Some((
                number("Partition")? as i32,
                (number("LogStartOffset")?, number("LogEndOffset")?),
            ))
        })
        .collect()
}

/// The data objects in a broker's local bucket directory.
fn local_objects(broker: &Broker) -> BTreeSet<String> {
    let dir = broker.data_dir.join("objects").join("data");
    std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|name| name.ends_with(".silt"))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads `partition` with librdkafka starting at `offset`, resetting to
/// the earliest offset if it is out of range, until `count` messages came.
fn read_from(addr: &str, topic: &str, partition: i32, offset: i64, count: usize) -> Vec<Read> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "lifecycle-reader")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Offset(offset))
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let start = Instant::now();
    let mut reads = Vec::new();
    while reads.len() < count && start.elapsed() < DEADLINE {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("consume");
            reads.push(Read {
                partition: message.partition(),
                offset: message.offset(),
                key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
            });
        }
    }
    reads
}

/// `silt topic trim TOPIC --partition P FLAG VALUE` through `addr`;
/// returns (success, stdout, stderr).
fn trim(
    addr: &str,
    topic: &str,
    partition: i32,
    flag: &str,
    value: &str,
) -> (bool, String, String) {
    let partition = partition.to_string();
    silt(&[
        "topic",
        "trim",
        topic,
        "--partition",
        &partition,
        flag,
        value,
        "--bootstrap-server",
        addr,
    ])
}

fn create_with_configs(addr: &str, topic: &str, partitions: u32, configs: &[&str]) {
    let p = partitions.to_string();
    let mut args = vec!["topic", "create", topic, "--partitions", &p];
    for config in configs {
        args.extend(["--config", config]);
    }
    args.extend(["--bootstrap-server", addr]);
    let (ok, _, err) = silt(&args);
    assert!(ok, "{err}");
}

/// Data older than `retention.ms` leaves the log: the log start moves to
/// the end, readers below it (librdkafka, kafka-python) reset to it and
/// read only what came after; the objects that held the expired data
/// leave the bucket a grace period later; the log start survives kill -9.
#[test]
fn expired_data_leaves_the_log_and_its_objects_the_bucket() {
    let mut broker = Broker::start_with_env(&[], &QUICK_LIFECYCLE);
    let addr = broker.addr.clone();
    create_with_configs(&addr, "expiring", 2, &["retention.ms=86400000"]);
    let old = produce_stamped(&addr, "expiring", 0..2000, now_ms() - 2 * DAY_MS);
    wait_until("the old data expired", DEADLINE, || {
        log_offsets(&addr, "expiring")
            .values()
            .all(|&(start, end)| end > 0 && start == end)
    });
    let expired_objects = local_objects(&broker);
    assert!(!expired_objects.is_empty());
    let ends = log_offsets(&addr, "expiring");
    assert_eq!(
        ends.values().map(|(_, end)| *end as usize).sum::<usize>(),
        old.len()
    );

    let fresh = produce_stamped(&addr, "expiring", 2000..3000, now_ms());
    let reads = read_all_kafka_python(&addr, "expiring", fresh.len(), DEADLINE);
    assert_exactly_once(&fresh, &reads);
    // A reader at offset 0, below the log start, resets to it.
    let on_first: BTreeMap<String, Ack> = fresh
        .clone()
        .into_iter()
        .filter(|(_, a)| a.partition == 0)
        .collect();
    let reads = read_from(&addr, "expiring", 0, 0, on_first.len());
    assert_eq!(reads.first().map(|r| r.offset), Some(ends[&0].0));
    assert_exactly_once(&on_first, &reads);

    broker.kill9();
    broker.restart();
    let addr = broker.addr.clone();
    let after = log_offsets(&addr, "expiring");
    for (partition, (start, _)) in &ends {
        assert!(after[partition].0 >= *start, "{after:?} after {ends:?}");
    }
    let reads = read_all_rdkafka(&addr, "expiring", 2, fresh.len(), DEADLINE);
    assert_exactly_once(&fresh, &reads);
    wait_until("the expired objects are deleted", DEADLINE, || {
        local_objects(&broker).is_disjoint(&expired_objects)
    });
}

/// With `retention.bytes`, the oldest data beyond the limit leaves the
/// log in whole units of `segment.bytes`; what stays is the newest,
/// contiguous to the end.
#[test]
fn retention_bytes_keeps_the_newest_data() {
    let broker = Broker::start_with_env(&["--admin-listen", "127.0.0.1:0"], &QUICK_LIFECYCLE);
    let addr = broker.addr.clone();
    let configs = ["retention.bytes=1500000", "segment.bytes=1048576"];
    create_with_configs(&addr, "bounded", 1, &configs);
    // Ten rounds of about 480 KB, each uploaded before the next.
    let mut acked = BTreeMap::new();
    for round in 0..10u64 {
        let before = uploads(&broker);
        let range = round * 2000..(round + 1) * 2000;
        acked.extend(produce_stamped(&addr, "bounded", range, now_ms()));
        wait_until("the round is uploaded", DEADLINE, || {
            uploads(&broker) > before
        });
    }
    wait_until("the oldest data expired", DEADLINE, || {
        log_offsets(&addr, "bounded")[&0].0 > 0
    });
    let (start, end) = log_offsets(&addr, "bounded")[&0];
    assert_eq!(end, 20_000);
    // Records take more than 200 bytes each.
    assert!((end - start) * 200 >= 1_500_000, "kept only {start}..{end}");
    let kept: BTreeMap<String, Ack> = acked
        .into_iter()
        .filter(|(_, ack)| ack.offset >= start)
        .collect();
    let reads = read_all_rdkafka(&addr, "bounded", 1, kept.len(), DEADLINE);
    assert_eq!(reads.first().map(|r| r.offset), Some(start));
    assert_exactly_once(&kept, &reads);
}

/// Uploads the broker committed so far (its admin port's metric).
fn uploads(broker: &Broker) -> f64 {
    broker.metric("silt_uploads_total", "")
}

/// Produces `rounds` rounds of 100 messages to `topic`, each uploaded
/// before the next; returns the acks.
fn produce_in_uploads(broker: &Broker, topic: &str, rounds: u64) -> BTreeMap<String, Ack> {
    let mut acked = BTreeMap::new();
    for round in 0..rounds {
        let before = uploads(broker);
        let range = round * 100..(round + 1) * 100;
        acked.extend(produce_stamped(&broker.addr, topic, range, now_ms()));
        wait_until("the round is uploaded", DEADLINE, || {
            uploads(broker) > before
        });
    }
    acked
}

/// Many small uploads are merged into a few objects per partition (the
/// others leave the bucket), and every message is still read exactly once
/// at its offset, by both clients, also after kill -9.
#[test]
fn small_uploads_are_merged_and_nothing_is_lost() {
    let mut broker = Broker::start_with_env(&["--admin-listen", "127.0.0.1:0"], &QUICK_LIFECYCLE);
    create_topic(&broker, "merging", 2);
    let acked = produce_in_uploads(&broker, "merging", 64);
    // Whatever the passes saw: at most 7 uploads wait for more data, and
    // each partition keeps a few merged objects of halving sizes (an
    // earlier merge waits for as much new data), not one per upload.
    wait_until("the uploads are merged and collected", DEADLINE, || {
        local_objects(&broker).len() <= 20
    });
    assert!(broker.metric("silt_merged_extents_total", "") >= 64.0);
    let addr = broker.addr.clone();
    let reads = read_all_kafka_python(&addr, "merging", acked.len(), DEADLINE);
    assert_exactly_once(&acked, &reads);
    broker.kill9();
    broker.restart();
    let reads = read_all_rdkafka(&broker.addr, "merging", 2, acked.len(), DEADLINE);
    assert_exactly_once(&acked, &reads);
}

/// Quiet partitions share merged objects: forty partitions with a few
/// records per upload are merged a pass at a time into objects holding
/// many of them (one object per partition would be a PUT per partition and
/// pass, and forty objects at least), and nothing is lost.
#[test]
fn quiet_partitions_share_merged_objects() {
    let broker = Broker::start_with_env(&["--admin-listen", "127.0.0.1:0"], &QUICK_LIFECYCLE);
    create_topic(&broker, "quiet", 40);
    let acked = produce_in_uploads(&broker, "quiet", 16);
    wait_until("the uploads are merged and collected", DEADLINE, || {
        local_objects(&broker).len() <= 20
    });
    assert!(broker.metric("silt_merged_extents_total", "") >= 300.0);
    let reads = read_all_rdkafka(&broker.addr, "quiet", 40, acked.len(), DEADLINE);
    assert_exactly_once(&acked, &reads);
}

/// kill -9 at a merge's fail point (`after_put`: its object written, not
/// committed; `after_commit`: committed, nothing else done), then a
/// restart: nothing acknowledged is lost or duplicated, the merge is done
/// again or stands, and every object nothing refers to leaves the bucket.
fn crash_mid_merge(fail_point: &str) {
    let mut env = QUICK_LIFECYCLE.to_vec();
    env.push(("FAILPOINTS", fail_point));
    let mut broker = Broker::start_with_env(&["--admin-listen", "127.0.0.1:0"], &env);
    create_topic(&broker, "crashing", 1);
    // Rounds of 100 messages, each uploaded before the next (a new object
    // appears), until eight small uploads make a merge that stops the
    // broker; a round cut short by the crash is acknowledged only in part.
    let deliveries = Deliveries::default();
    let producer = producer_with(
        &broker.addr,
        &deliveries,
        &[("message.timeout.ms", "10000")],
    );
    let mut seen = local_objects(&broker);
    for round in 0.. {
        assert!(round < 40, "the merge never reached {fail_point}");
        let before = seen.len();
        produce_keyed(&producer, "crashing", round * 100..(round + 1) * 100, 200);
        let _ = producer.flush(Duration::from_secs(30));
        wait_until("an upload, or the fail point", DEADLINE, || {
            seen.extend(local_objects(&broker));
            seen.len() > before || !broker.is_running()
        });
        if !broker.is_running() {
            break;
        }
    }
    drop(producer);
    let acked = deliveries.acked.lock().unwrap().clone();
    broker.wait_exit(DEADLINE);
    let at_crash = local_objects(&broker);
    broker.unset_env("FAILPOINTS");
    broker.restart();
    // Messages written but not acknowledged before the crash may be there
    // too: read to the end.
    let end = log_offsets(&broker.addr, "crashing")[&0].1 as usize;
    assert!(end >= acked.len());
    let reads = read_all_rdkafka(&broker.addr, "crashing", 1, end, DEADLINE);
    assert_exactly_once(&acked, &reads);
    // The uploads merged, and an orphaned merged object, are deleted: what
    // is left of the objects there at the crash is referenced, so no more
    // of them than the partition has extents (a merged object committed
    // before the crash stays, and so do uploads after the merged run; the
    // run's uploads, eight or more, are one extent now).
    wait_until(
        "the objects nothing refers to are deleted",
        DEADLINE,
        || {
            let left = local_objects(&broker).intersection(&at_crash).count();
            left as f64 <= broker.metric("silt_partition_extents", "")
        },
    );
    let reads = read_all_kafka_python(&broker.addr, "crashing", end, DEADLINE);
    assert_exactly_once(&acked, &reads);
}

#[test]
fn a_crash_after_a_merged_object_is_written_loses_nothing() {
    crash_mid_merge("merge.after_put");
}

#[test]
fn a_crash_after_a_merge_is_committed_loses_nothing() {
    crash_mid_merge("merge.after_commit");
}

/// DeleteRecords through librdkafka's and kafka-python's admin clients
/// and `silt topic trim` (by offset and by timestamp) moves each
/// partition's log start; offsets past the end are refused, and readers
/// start at the new log start.
#[test]
fn delete_records_by_both_clients_and_the_cli() {
    let broker = Broker::start(&[]);
    let addr = broker.addr.clone();
    create_topic(&broker, "trimmed", 4);
    let stamp = now_ms() - 60_000;
    let acked = produce_stamped(&addr, "trimmed", 0..4000, stamp);
    let later = produce_stamped(&addr, "trimmed", 4000..4400, stamp + 30_000);
    let ends = log_offsets(&addr, "trimmed");

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &addr)
        .create()
        .expect("admin client");
    let mut wanted = TopicPartitionList::new();
    wanted
        .add_partition_offset("trimmed", 0, Offset::Offset(10))
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let result = runtime
        .block_on(admin.delete_records(&wanted, &AdminOptions::new()))
        .expect("delete records");
    let element = result.find_partition("trimmed", 0).unwrap();
    assert!(element.error().is_ok(), "{:?}", element.error());
    assert_eq!(element.offset(), Offset::Offset(10));

    let out = run_python("delete_records.py", &[&addr, "trimmed", "1", "20"]);
    assert_eq!(out, vec!["20"]);
    let past = (ends[&1].1 + 1).to_string();
    let out = run_python("delete_records.py", &[&addr, "trimmed", "1", &past]);
    assert_eq!(out, vec!["OffsetOutOfRangeError"]);

    let (ok, out, err) = trim(&addr, "trimmed", 2, "--offset", "30");
    assert!(ok, "{err}");
    assert!(out.contains("log start offset is 30"), "{out}");
    let past = (ends[&2].1 + 5).to_string();
    let (ok, _, err) = trim(&addr, "trimmed", 2, "--offset", &past);
    assert!(!ok && err.contains("beyond the partition's end"), "{err}");
    // Before the later messages' timestamp: the first of them is the start.
    let first_later = later
        .values()
        .filter(|a| a.partition == 3)
        .map(|a| a.offset)
        .min()
        .unwrap();
    let at = (stamp + 30_000).to_string();
    let (ok, _, err) = trim(&addr, "trimmed", 3, "--before-timestamp", &at);
    assert!(ok, "{err}");

    let starts: Vec<i64> = log_offsets(&addr, "trimmed")
        .values()
        .map(|o| o.0)
        .collect();
    assert_eq!(starts, vec![10, 20, 30, first_later]);
    let mut all = acked;
    all.extend(later);
    let kept: BTreeMap<String, Ack> = all
        .into_iter()
        .filter(|(_, a)| a.offset >= starts[a.partition as usize])
        .collect();
    let reads = read_all_rdkafka(&addr, "trimmed", 4, kept.len(), DEADLINE);
    assert_exactly_once(&kept, &reads);
    // -1 deletes everything up to the end.
    let (ok, out, err) = trim(&addr, "trimmed", 0, "--offset", "-1");
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("log start offset is {}", ends[&0].1)),
        "{out}"
    );
}

/// The data objects under `url` (`s3://BUCKET/PREFIX`) on the test S3
/// server (LocalStack answers unsigned listings).
fn bucket_objects(url: &str) -> BTreeSet<String> {
    let (bucket, prefix) = url
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .expect("s3://BUCKET/PREFIX");
    let listing = format!(
        "{}/{bucket}?list-type=2&max-keys=1000&prefix={prefix}/data/",
        common::s3::endpoint()
    );
    let out = std::process::Command::new("curl")
        .args(["-sf", &listing])
        .output()
        .expect("curl");
    assert!(out.status.success(), "listing {listing} failed");
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    body.split("<Key>")
        .skip(1)
        .filter_map(|part| part.split_once("</Key>").map(|(key, _)| key.to_string()))
        .collect()
}

/// In a cluster (etcd and LocalStack): each partition's leader applies
/// retention and DeleteRecords, every broker reports the new log starts,
/// and the controller deletes the expired objects from the bucket.
#[test]
fn retention_and_delete_records_in_a_cluster() {
    use common::s3::{LEASE_SECONDS, bucket_url, endpoint, etcd_root};
    let (meta, url) = (etcd_root(), bucket_url());
    let mut env = QUICK_LIFECYCLE.to_vec();
    env.push(("SILT_STORAGE__META_LEASE_SECONDS", LEASE_SECONDS));
    let start = |id: &str| {
        common::s3::start(
            &endpoint(),
            &url,
            &["--broker-id", id, "--meta", &meta],
            &env,
        )
    };
    let (one, two) = (start("1"), start("2"));
    create_with_configs(&one.addr, "shared", 4, &["retention.ms=86400000"]);
    let bootstrap = format!("{},{}", one.addr, two.addr);
    wait_until("both brokers lead partitions", DEADLINE, || {
        let (ok, out, _) = silt(&[
            "topic",
            "describe",
            "shared",
            "--bootstrap-server",
            &one.addr,
        ]);
        ok && out.contains("Leader: 1\t") && out.contains("Leader: 2\t")
    });
    let old = produce_stamped(&bootstrap, "shared", 0..2000, now_ms() - 2 * DAY_MS);
    wait_until("the old data expired", DEADLINE, || {
        let offsets = log_offsets(&two.addr, "shared");
        offsets.len() == 4
            && offsets
                .values()
                .all(|&(start, end)| end > 0 && start == end)
    });
    let ends = log_offsets(&one.addr, "shared");
    assert_eq!(
        ends.values().map(|(_, end)| *end as usize).sum::<usize>(),
        old.len()
    );
    let expired_objects = bucket_objects(&url);
    assert!(!expired_objects.is_empty());

    let fresh = produce_stamped(&bootstrap, "shared", 2000..3000, now_ms());
    let first = fresh
        .values()
        .filter(|a| a.partition == 1)
        .map(|a| a.offset)
        .min()
        .unwrap();
    let to = (first + 5).to_string();
    let (ok, _, err) = trim(&two.addr, "shared", 1, "--offset", &to);
    assert!(ok, "{err}");
    assert_eq!(log_offsets(&one.addr, "shared")[&1].0, first + 5);
    let kept: BTreeMap<String, Ack> = fresh
        .into_iter()
        .filter(|(_, a)| a.partition != 1 || a.offset >= first + 5)
        .collect();
    let reads = read_all_rdkafka(&bootstrap, "shared", 4, kept.len(), DEADLINE);
    assert_exactly_once(&kept, &reads);
    wait_until("the expired objects are deleted", DEADLINE, || {
        bucket_objects(&url).is_disjoint(&expired_objects)
    });
}

/// Every acknowledged record of a producer: (key, partition, offset)
/// (failures are left to the callers' counts).
#[derive(Default, Clone)]
struct Updates(std::sync::Arc<std::sync::Mutex<Vec<(String, i32, i64)>>>);

impl rdkafka::ClientContext for Updates {}

impl rdkafka::producer::ProducerContext for Updates {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        let Ok(message) = result else { return };
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        let ack = (key, message.partition(), message.offset());
        self.0.lock().unwrap().push(ack);
    }
}

impl Updates {
    /// The latest acknowledged position of each key.
    fn latest(&self) -> BTreeMap<String, Ack> {
        let acks = self.0.lock().unwrap();
        let mut latest: BTreeMap<String, Ack> = BTreeMap::new();
        for (key, partition, offset) in acks.iter() {
            let ack = Ack {
                partition: *partition,
                offset: *offset,
            };
            let entry = latest.entry(key.clone()).or_insert(ack);
            if entry.offset < *offset {
                *entry = ack;
            }
        }
        latest
    }
}

/// An idempotent librdkafka producer (acks=all) with `codec`.
fn updating_producer(addr: &str, updates: &Updates, codec: &str) -> ThreadedProducer<Updates> {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("enable.idempotence", "true")
        .set("compression.codec", codec)
        .set("linger.ms", "5")
        .create_with_context(updates.clone())
        .expect("producer")
}

/// Sends `keys` (`key-<i>`) with `value` (`None`: tombstones) stamped
/// `timestamp`, and waits for their acknowledgements.
fn update(
    producer: &ThreadedProducer<Updates>,
    topic: &str,
    keys: std::ops::Range<u64>,
    value: Option<&str>,
    timestamp: i64,
) {
    for i in keys {
        let key = format!("key-{i}");
        let mut record = BaseRecord::<String, str>::to(topic)
            .key(&key)
            .timestamp(timestamp);
        if let Some(value) = value {
            record = record.payload(value);
        }
        producer.send(record).map_err(|(e, _)| e).expect("send");
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
}

fn compacted_records(broker: &Broker) -> f64 {
    broker.metric("silt_compaction_removed_records_total", "")
}

/// A compacted topic with many updates of a few hundred keys in all four
/// codecs, and tombstones: once compacted, a reader from the beginning
/// (librdkafka, kafka-python) sees exactly the latest record of each key
/// at its original offset; a tombstone whose `delete.retention.ms` passed
/// is gone, a fresh one stays; the idempotent producers go on after
/// compaction; a record without a key is refused (INVALID_RECORD).
#[test]
fn compaction_keeps_the_latest_record_of_each_key() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let mut broker = Broker::start_with_env(&["--admin-listen", "127.0.0.1:0"], &QUICK_LIFECYCLE);
    let addr = broker.addr.clone();
    create_with_configs(
        &addr,
        "table",
        2,
        &[
            "cleanup.policy=compact",
            "min.cleanable.dirty.ratio=0.01",
            "delete.retention.ms=86400000",
        ],
    );
    let updates = Updates::default();
    let codecs = ["gzip", "snappy", "lz4", "zstd"];
    let producers: Vec<_> = codecs
        .iter()
        .map(|codec| updating_producer(&addr, &updates, codec))
        .collect();
    let value = "v".repeat(200);
    for round in 0..8 {
        update(
            &producers[round % 4],
            "table",
            0..300,
            Some(&value),
            now_ms(),
        );
    }
    // Tombstones: keys 10..35 deleted two days ago (due), 35..60 now; keys
    // 0..10 deleted and set again.
    update(&producers[3], "table", 0..35, None, now_ms() - 2 * DAY_MS);
    update(&producers[0], "table", 35..60, None, now_ms());
    update(&producers[1], "table", 0..10, Some("again"), now_ms());
    let produced = updates.0.lock().unwrap().len();
    assert_eq!(produced, 8 * 300 + 60 + 10);

    let mut expected = updates.latest();
    for i in 10..35 {
        expected.remove(&format!("key-{i}"));
    }
    let removed = produced - expected.len();
    wait_until("the topic is compacted", DEADLINE, || {
        compacted_records(&broker) >= removed as f64
    });
    assert_eq!(compacted_records(&broker), removed as f64);
    let ends = log_offsets(&addr, "table");
    assert_eq!(
        ends.values().map(|(_, end)| *end as usize).sum::<usize>(),
        produced,
        "offsets never change"
    );
    let reads = read_all_rdkafka(&addr, "table", 2, expected.len(), DEADLINE);
    assert_exactly_once(&expected, &reads);
    let reads = read_all_kafka_python(&addr, "table", expected.len(), DEADLINE);
    assert_exactly_once(&expected, &reads);

    // The idempotent producers go on; compaction follows.
    update(&producers[2], "table", 60..80, Some("later"), now_ms());
    let expected: BTreeMap<String, Ack> = updates
        .latest()
        .into_iter()
        .filter(|(key, _)| expected.contains_key(key))
        .collect();
    wait_until("the updates are compacted", DEADLINE, || {
        compacted_records(&broker) >= (removed + 20) as f64
    });
    broker.kill9();
    broker.restart();
    let reads = read_all_rdkafka(&broker.addr, "table", 2, expected.len(), DEADLINE);
    assert_exactly_once(&expected, &reads);

    let plain: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("message.send.max.retries", "0")
        .create()
        .expect("producer");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let unkeyed = runtime.block_on(async {
        let record = FutureRecord::<(), str>::to("table").payload("no key");
        plain.send(record, Duration::from_secs(30)).await
    });
    let error = unkeyed.map_err(|(e, _)| e).expect_err("refused");
    assert_eq!(
        error.rdkafka_error_code(),
        Some(rdkafka::types::RDKafkaErrorCode::InvalidRecord),
        "{error}"
    );
}

/// kill -9 at a compaction's fail point (`after_put`: its object written,
/// not committed; `after_commit`: committed, nothing else done), then a
/// restart: every key is still there, at its latest acknowledged record
/// or a later one, and once compacted again exactly once.
fn crash_mid_compaction(fail_point: &str) {
    let mut env = QUICK_LIFECYCLE.to_vec();
    env.push(("FAILPOINTS", fail_point));
    let mut broker = Broker::start_with_env(&[], &env);
    create_with_configs(
        &broker.addr,
        "crashing",
        1,
        &["cleanup.policy=compact", "min.cleanable.dirty.ratio=0.01"],
    );
    let updates = Updates::default();
    let producer = updating_producer(&broker.addr, &updates, "lz4");
    let value = "v".repeat(200);
    for round in 0.. {
        assert!(round < 40, "compaction never reached {fail_point}");
        for i in 0..100 {
            let key = format!("key-{i}");
            let record = BaseRecord::to("crashing").key(&key).payload(&value);
            if producer.send(record).is_err() {
                break;
            }
        }
        let _ = producer.flush(Duration::from_secs(10));
        wait_until("an upload, or the fail point", DEADLINE, || {
            !broker.is_running() || producer.in_flight_count() == 0
        });
        if !broker.is_running() {
            break;
        }
    }
    drop(producer);
    let acked = updates.latest();
    assert_eq!(acked.len(), 100);
    broker.wait_exit(DEADLINE);
    broker.unset_env("FAILPOINTS");
    broker.restart();
    let addr = broker.addr.clone();
    let mut reads = Vec::new();
    wait_until("the log is compacted again", DEADLINE, || {
        reads = read_all_rdkafka(&addr, "crashing", 1, 100, Duration::from_secs(10));
        reads.len() == 100 && reads.iter().map(|r| &r.key).collect::<BTreeSet<_>>().len() == 100
    });
    for read in &reads {
        assert!(
            read.offset >= acked[&read.key].offset,
            "{read:?} is older than acknowledged"
        );
    }
}

#[test]
fn a_crash_after_a_compacted_object_is_written_loses_nothing() {
    crash_mid_compaction("compact.after_put");
}

#[test]
fn a_crash_after_a_compaction_is_committed_loses_nothing() {
    crash_mid_compaction("compact.after_commit");
}

/// Runs a steady load (about 400 KB/s of 200-byte messages to 4
/// partitions with `retention.ms=5000`) through `addr` for 150 s, taking
/// `measure`'s figures every 10 s; once retention and the garbage
/// collection grace (60 s) have come round, no figure may grow with
/// uptime: each one's largest value in the last 30 s is at most 1.1 times
/// (plus `slack`) its largest in the 30 s before (without deletions the
/// bucket grows by a third between them).
fn assert_flat_under_steady_load(
    addr: &str,
    slack: f64,
    measure: impl Fn() -> Vec<(&'static str, f64)>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    create_with_configs(addr, "steady", 4, &["retention.ms=5000"]);
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let load = {
        let (addr, stop) = (addr.to_string(), stop.clone());
        std::thread::spawn(move || {
            let deliveries = Deliveries::default();
            let producer = producer_with(&addr, &deliveries, &[]);
            let mut next = 0;
            while !stop.load(Ordering::Relaxed) {
                produce_keyed(&producer, "steady", next..next + 200, 200);
                next += 200;
                std::thread::sleep(Duration::from_millis(100)); // the pace of the load
            }
            producer.flush(Duration::from_secs(60)).expect("flush");
            assert!(deliveries.failed.lock().unwrap().is_empty());
        })
    };
    let start = Instant::now();
    let mut samples: Vec<(u64, Vec<(&'static str, f64)>)> = Vec::new();
    while start.elapsed() < Duration::from_secs(150) {
        std::thread::sleep(Duration::from_secs(10)); // the sampling period
        samples.push((start.elapsed().as_secs(), measure()));
    }
    stop.store(true, Ordering::Relaxed);
    load.join().expect("the load ran");
    let largest = |name: &str, from: u64, to: u64| {
        samples
            .iter()
            .filter(|(t, _)| (from..to).contains(t))
            .flat_map(|(_, figures)| figures.iter().filter(|(n, _)| *n == name))
            .map(|(_, v)| *v)
            .fold(0.0, f64::max)
    };
    for (name, _) in &samples[0].1 {
        let (before, last) = (largest(name, 85, 118), largest(name, 118, 160));
        assert!(before > 0.0, "{name} measured nothing: {samples:?}");
        assert!(
            last <= before * 1.1 + slack,
            "{name} grew with uptime: {before} -> {last}; {samples:?}"
        );
    }
}

/// The local directory's data objects: how many, and their bytes.
fn local_bucket(broker: &Broker) -> (f64, f64) {
    let dir = broker.data_dir.join("objects").join("data");
    let sizes: Vec<u64> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .collect()
        })
        .unwrap_or_default();
    (sizes.len() as f64, sizes.iter().sum::<u64>() as f64)
}

/// A steady load with short retention on the embedded store and a local
/// bucket: the partitions' extents (the metadata that would grow) and the
/// bucket's objects and bytes stay flat.
#[test]
fn a_steady_load_keeps_metadata_and_bucket_flat() {
    let env = [
        ("SILT_STORAGE__LIFECYCLE_INTERVAL_MS", "200"),
        ("SILT_STORAGE__GC_INTERVAL_MS", "1000"),
        ("SILT_STORAGE__GC_GRACE_MS", "60000"),
        ("SILT_FLUSH__INTERVAL_MS", "500"),
    ];
    let broker = Broker::start_with_env(&["--admin-listen", "127.0.0.1:0"], &env);
    assert_flat_under_steady_load(&broker.addr, 4.0, || {
        let (objects, bytes) = local_bucket(&broker);
        vec![
            ("extents", broker.metric("silt_partition_extents", "")),
            ("bucket objects", objects),
            ("bucket bytes", bytes),
        ]
    });
}

/// The keys under an etcd root (`etcd://HOST:PORT/ROOT`): how many, and
/// the bytes of their keys and values.
fn etcd_keys(meta: &str) -> (f64, f64) {
    let out = common::s3::etcd_get(meta, "", false);
    let lines = out.lines().filter(|l| !l.is_empty()).count();
    ((lines / 2) as f64, out.len() as f64)
}

/// The same with etcd and LocalStack: the keys and bytes under the etcd
/// root and the bucket's objects stay flat.
#[test]
fn a_steady_load_keeps_etcd_and_the_s3_bucket_flat() {
    use common::s3::{LEASE_SECONDS, bucket_url, endpoint, etcd_root};
    let (meta, url) = (etcd_root(), bucket_url());
    let env = [
        ("SILT_STORAGE__LIFECYCLE_INTERVAL_MS", "200"),
        ("SILT_STORAGE__GC_INTERVAL_MS", "1000"),
        ("SILT_STORAGE__GC_GRACE_MS", "60000"),
        ("SILT_FLUSH__INTERVAL_MS", "500"),
        ("SILT_STORAGE__META_LEASE_SECONDS", LEASE_SECONDS),
    ];
    let broker = common::s3::start(
        &endpoint(),
        &url,
        &["--broker-id", "1", "--meta", &meta],
        &env,
    );
    assert_flat_under_steady_load(&broker.addr, 4.0, || {
        let (keys, bytes) = etcd_keys(&meta);
        vec![
            ("etcd keys", keys),
            ("etcd bytes", bytes),
            ("bucket objects", bucket_objects(&url).len() as f64),
        ]
    });
}
