//! Criterion micro-benchmarks of the hot functions: produce-path batch
//! validation and offset rewrite, WAL append through group commit, and the
//! object index (parse, and finding a partition's extents by offset).
//!
//! ```text
//! cargo bench --bench hot_paths
//! ```

use std::collections::BTreeMap;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use silt::client::{Message, ProducerStamp, encode_idempotent_batch};
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
        })
        .collect();
    let meta = PartitionMeta {
        leader_epoch: 0,
        log_start_offset: 0,
        extents,
        producers: BTreeMap::new(),
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

criterion_group!(benches, batches, wal, object_index);
criterion_main!(benches);
