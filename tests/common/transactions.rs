//! Transactional clients for the tests: a librdkafka transactional
//! producer, and a consume-transform-produce service built on it.

use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::{Deliveries, producer_with};

pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A librdkafka producer with `transactional.id` `id`, initialized.
pub fn transactional(
    addr: &str,
    id: &str,
    deliveries: &Deliveries,
    extra: &[(&str, &str)],
) -> ThreadedProducer<Deliveries> {
    let mut settings = vec![("transactional.id", id)];
    settings.extend_from_slice(extra);
    let producer = producer_with(addr, deliveries, &settings);
    producer
        .init_transactions(TIMEOUT)
        .expect("init transactions");
    producer
}

/// A consume-transform-produce service: copies `input` to `output` in
/// transactions of at most 100 records with its group's offsets.
pub struct Copier {
    pub bootstrap: String,
    pub input: &'static str,
    pub output: &'static str,
    pub transactional_id: String,
    pub group: String,
    /// The input partitions' end offsets: the copy is done when the
    /// group's committed offsets reach them.
    pub ends: Vec<i64>,
    /// It must be done by then.
    pub stop: Instant,
    /// In its fifth transaction, with the records sent, it tells `paused`
    /// and waits for `resume` before committing.
    pub paused: Sender<()>,
    pub resume: Receiver<()>,
}

/// Runs `copier` to the end; starts over (a new consumer and producer,
/// the old transaction fenced) after any failure.
pub fn copy_exactly_once(copier: Copier) {
    let Copier {
        bootstrap,
        input,
        output,
        transactional_id,
        group,
        ends,
        stop,
        paused,
        resume,
    } = copier;
    let addr = bootstrap.as_str();
    let committed_all = |consumer: &BaseConsumer| {
        let mut wanted = TopicPartitionList::new();
        for p in 0..ends.len() as i32 {
            wanted.add_partition(input, p);
        }
        consumer
            .committed_offsets(wanted, Duration::from_secs(5))
            .is_ok_and(|c| {
                c.elements().iter().all(|e| {
                    matches!(e.offset(), Offset::Offset(o) if o == ends[e.partition() as usize])
                })
            })
    };
    let mut transactions = 0;
    'restart: loop {
        assert!(
            std::time::Instant::now() < stop,
            "copying did not finish in time"
        );
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", addr)
            .set("group.id", &group)
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .create()
            .expect("consumer");
        consumer.subscribe(&[input]).expect("subscribe");
        let producer = match std::panic::catch_unwind(|| {
            transactional(addr, &transactional_id, &Deliveries::default(), &[])
        }) {
            Ok(producer) => producer,
            Err(_) => continue 'restart,
        };
        loop {
            if committed_all(&consumer) {
                return;
            }
            assert!(
                std::time::Instant::now() < stop,
                "copying did not finish in time"
            );
            let mut batch = Vec::new();
            while batch.len() < 100 {
                match consumer.poll(Duration::from_millis(200)) {
                    Some(Ok(m)) => batch.push(m.detach()),
                    Some(Err(_)) => continue 'restart,
                    None => break,
                }
            }
            if batch.is_empty() {
                continue;
            }
            if producer.begin_transaction().is_err() {
                continue 'restart;
            }
            for m in &batch {
                let record = rdkafka::producer::BaseRecord::to(output)
                    .key(m.key().unwrap_or_default())
                    .payload(m.payload().unwrap_or_default());
                if producer.send(record).is_err() {
                    continue 'restart;
                }
            }
            let Ok(position) = consumer.position() else {
                continue 'restart;
            };
            let Some(group) = consumer.group_metadata() else {
                continue 'restart;
            };
            let offsets = producer.send_offsets_to_transaction(&position, &group, TIMEOUT);
            transactions += 1;
            if transactions == 5 {
                producer.flush(TIMEOUT).expect("flush");
                paused.send(()).unwrap();
                resume.recv().unwrap();
            }
            if offsets.is_err() || producer.commit_transaction(TIMEOUT).is_err() {
                continue 'restart;
            }
        }
    }
}

/// A transactional batch of one record from `producer_id` at `epoch`,
/// with sequence number `sequence`.
pub fn transactional_batch(producer_id: i64, epoch: i16, sequence: i32) -> bytes::Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let record = Record {
        transactional: true,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch: epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence,
        timestamp: 1_700_000_000_000,
        key: Some(bytes::Bytes::from_static(b"k")),
        value: Some(bytes::Bytes::from_static(b"v")),
        headers: Default::default(),
    };
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &[record], &options).unwrap();
    buf.freeze()
}
