//! Criterion micro-benchmarks of the hot functions: produce-path batch
//! validation and offset rewrite, WAL append through group commit, the
//! object index (parse, and finding a partition's extents by offset), and
//! compaction (reading keys and rewriting, per input byte on one core).
//!
//! ```text
//! cargo bench --bench hot_paths
//! ```

use std::collections::BTreeMap;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use silt::client::{Message, ProducerStamp, encode_idempotent_batch};
use silt::log::compact::{Cleaner, Compaction, LatestOffsets, read_keys};
use silt::log::object::{ObjectBuilder, SealedBatch, read_index};
use silt::log::partition::Partition;
use silt::log::wal::Wal;
use silt::meta::{Extent, PartitionMeta};
use silt::protocol::batch;
use uuid::Uuid;

/// A v2 record batch of `count` records of `size` bytes from an idempotent
/// producer, as it arrives in a produce request.
fn record_batch(count: usize, size: usize) -> Bytes {
    let messages: Vec<Message> = (0..count)
        .map(|i| Message {
            key: None,
            value: Bytes::from(vec![i as u8; size]),
        })
        .collect();
    let producer = ProducerStamp {
        id: 7,
        epoch: 0,
        base_sequence: 0,
    };
    encode_idempotent_batch(&messages, 1_700_000_000_000, producer)
}

fn batches(c: &mut Criterion) {
    let records = record_batch(16, 1024);
    let mut group = c.benchmark_group("batch");
    group.throughput(Throughput::Bytes(records.len() as u64));
    group.bench_function("validate 16 x 1 KiB", |b| {
        b.iter(|| batch::split_and_validate(&records).expect("valid"))
    });
    let mut copy = records.to_vec();
    group.throughput(Throughput::Elements(1));
    group.bench_function("rewrite base offset and epoch", |b| {
        b.iter(|| {
            batch::set_base_offset(&mut copy, 42);
            batch::set_leader_epoch(&mut copy, 3);
        })
    });
    group.finish();
}

fn wal(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (wal, _) = Wal::open(dir.path(), 64 << 20).expect("open WAL");
    let entry = record_batch(16, 1024);
    let topic = Uuid::new_v4();
    let mut group = c.benchmark_group("wal");
    group.throughput(Throughput::Bytes(100 * entry.len() as u64));
    group.bench_function("append 100 x 16 KiB, until durable", |b| {
        b.iter(|| {
            let mut end = 0;
            for partition in 0..100 {
                end = wal
                    .append(topic, partition % 8, &entry)
                    .expect("append")
                    .end;
            }
            while wal.durable() < end {
                std::thread::yield_now();
            }
            // Keep the log from growing across iterations.
            wal.trim(end).expect("trim");
        })
    });
    group.finish();
}

fn object_index(c: &mut Criterion) {
    let topic = Uuid::new_v4();
    let data = record_batch(1, 100);
    let mut builder = ObjectBuilder::with_capacity(1000 * data.len());
    for partition in 0..1000 {
        let sealed = SealedBatch {
            base_offset: 0,
            last_offset: 0,
            max_timestamp: 0,
            data: data.clone(),
        };
        builder.add_partition(topic, partition, &[sealed]);
    }
    let (object, _) = builder.finish();
    c.bench_function("object index: parse 1,000 sections", |b| {
        b.iter(|| read_index(&object).expect("index"))
    });

    let extents: Vec<Extent> = (0..100_000i64)
        .map(|i| Extent {
            object: Uuid::nil(),
            position: 0,
            length: 1 << 20,
            base_offset: i * 1000,
            last_offset: i * 1000 + 999,
            max_timestamp: i,
            crc: Some(0),
            compacted: false,
            tombstones_due_ms: None,
            entry_list: None,
        })
        .collect();
    let meta = PartitionMeta {
        leader_epoch: 0,
        log_start_offset: 0,
        extents,
        producers: BTreeMap::new(),
        aborted: Vec::new(),
        export: Default::default(),
    };
    let partition = Partition::new(topic, 0, meta);
    c.bench_function("extents from an offset, 100,000 extents", |b| {
        let mut offset = 0;
        b.iter(|| {
            offset = (offset + 7_777_777) % 100_000_000;
            partition.extents_from(offset, 4)
        })
    });
}

/// 10 MiB of stored batches (16 records of 1 KiB of noise each) in
/// `compression`, keyed at random among 4,000 keys: most batches keep
/// some of their records, so they are rebuilt.
fn compactable_section(compression: Compression) -> (Bytes, i64) {
    let mut section = bytes::BytesMut::new();
    let mut offset = 0i64;
    let mut noise = 0x9e37_79b9_7f4a_7c15u64;
    while section.len() < 10 << 20 {
        let records: Vec<Record> = (0..16)
            .map(|i| {
                let value: Vec<u8> = (0..1024)
                    .map(|_| {
                        noise ^= noise << 13;
                        noise ^= noise >> 7;
                        noise ^= noise << 17;
                        noise as u8
                    })
                    .collect();
                Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: 0,
                    producer_id: 7,
                    producer_epoch: 0,
                    timestamp_type: TimestampType::Creation,
                    offset: offset + i,
                    sequence: (offset + i) as i32,
                    timestamp: 1_700_000_000_000,
                    key: Some(Bytes::from(format!("key-{}", noise % 4000))),
                    value: Some(value.into()),
                    headers: Default::default(),
                }
            })
            .collect();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut section, &records, &options).expect("encode");
        offset += 16;
    }
    (section.freeze(), offset)
}

fn compaction(c: &mut Criterion) {
    let settings = Compaction {
        min_dirty_ratio: 0.5,
        min_lag_ms: 0,
        max_lag_ms: i64::MAX,
        delete_retention_ms: 86_400_000,
    };
    let mut group = c.benchmark_group("compaction");
    group.sample_size(10);
    for (name, compression) in [
        ("uncompressed", Compression::None),
        ("lz4", Compression::Lz4),
    ] {
        let (section, records) = compactable_section(compression);
        let chunk = [Extent {
            object: Uuid::nil(),
            position: 0,
            length: section.len() as u64,
            base_offset: 0,
            last_offset: records - 1,
            max_timestamp: 1_700_000_000_000,
            crc: None,
            compacted: false,
            tombstones_due_ms: None,
            entry_list: None,
        }];
        let sections = [(false, section.clone())];
        group.throughput(Throughput::Bytes(section.len() as u64));
        group.bench_function(format!("read keys and rewrite 10 MiB, {name}"), |b| {
            b.iter(|| {
                let mut latest = LatestOffsets::new();
                read_keys(&section, 64 << 20, &[], &mut latest);
                let kept = latest.len() as i64;
                let cleaner = Cleaner {
                    aborted: Vec::new(),
                    latest,
                    compaction: settings,
                    now_ms: 1_700_000_000_000,
                    limit: 64 << 20,
                };
                let filtered = cleaner.filter(&sections, &chunk).expect("filter");
                assert_eq!(filtered.records_removed as i64, records - kept);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, batches, wal, object_index, compaction);
criterion_main!(benches);
