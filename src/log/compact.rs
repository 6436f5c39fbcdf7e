//! Log compaction (`cleanup.policy=compact`), as Kafka defines it: the
//! latest record of every key survives at its original offset (gaps are
//! normal), a tombstone (null value) goes once it was compacted and
//! `delete.retention.ms` passed its timestamp, records without a key go.
//!
//! Only committed extents are compacted, never the tail; extents whose
//! newest record is younger than `min.compaction.lag.ms` neither. The
//! extents a compaction wrote are marked (see [`Extent::compacted`]):
//! the others are the dirty part. A pass starts when the dirty part
//! holds `min.cleanable.dirty.ratio` of the cleanable bytes, when its
//! oldest extent is `max.compaction.lag.ms` old, or when a kept tombstone
//! is due. It reads the keys of the dirty part (at most [`MAX_KEYS`] of
//! them), then rewrites everything before the end of what it read in
//! chunks of at most [`MAX_REPLACED_EXTENTS`] extents, each chunk one new
//! object committed like a merge ([`super::rewrite`]); a chunk from which
//! nothing goes is only marked. Batches are copied whole where all their
//! records stay, else rebuilt from the kept records in their codec; a
//! batch emptied is dropped (a chunk emptied keeps its last batch with no
//! records, so its offsets stay covered). Producer state is kept in the
//! metadata store, never read back from batches, so idempotent producers
//! do not notice.
//!
//! Transactions: only extents below the last stable offset are compacted
//! (an open transaction's records may still be aborted); records of
//! aborted transactions go and never replace a key's committed record;
//! transaction markers stay.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::Log;
use super::object::SealedBatch;
use super::partition::Partition;
use super::rewrite::Rewrite;
use super::transactions::is_aborted;
use crate::error::{Error, Result};
use crate::meta::{AbortedTxn, Extent, MAX_REPLACED_EXTENTS};
use crate::protocol::batch::{self, BatchHeader};
use crate::protocol::records::{self, Codec};

/// Keys one pass reads at most (bounding its memory); the rest of the
/// dirty part waits for the next pass.
pub const MAX_KEYS: usize = 1_000_000;
/// A chunk holds at most this many merged sections' worth of input.
const MAX_CHUNK_SECTIONS: u64 = 4;

/// A topic's compaction settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compaction {
    pub min_dirty_ratio: f64,
    pub min_lag_ms: i64,
    pub max_lag_ms: i64,
    pub delete_retention_ms: i64,
}

/// The dirty extents a pass over `extents` (a partition's, oldest first)
/// reads keys from at `now_ms`, if one is due; the pass rewrites every
/// extent before the end of what it read.
pub fn plan(extents: &[Extent], compaction: &Compaction, now_ms: i64) -> Option<Range<usize>> {
    let lag_limit = now_ms.saturating_sub(compaction.min_lag_ms);
    let cleanable = extents
        .iter()
        .position(|e| e.max_timestamp > lag_limit)
        .unwrap_or(extents.len());
    let extents = &extents[..cleanable];
    let dirty_start = extents
        .iter()
        .position(|e| !e.compacted)
        .unwrap_or(cleanable);
    let bytes = |extents: &[Extent]| extents.iter().map(|e| e.length).sum::<u64>();
    let dirty_bytes = bytes(&extents[dirty_start..]);
    let ratio_due =
        dirty_bytes > 0 && dirty_bytes as f64 >= compaction.min_dirty_ratio * bytes(extents) as f64;
    let lag_due = extents
        .get(dirty_start)
        .is_some_and(|e| e.max_timestamp <= now_ms.saturating_sub(compaction.max_lag_ms));
    let tombstones_due = extents
        .iter()
        .any(|e| e.tombstones_due_ms.is_some_and(|due| due <= now_ms));
    (ratio_due || lag_due || tombstones_due).then_some(dirty_start..cleanable)
}

/// The latest offset of every key read.
pub type LatestOffsets = HashMap<Bytes, i64>;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_removed: u64,
}

/// A chunk's batches after filtering.
pub struct Filtered {
    pub batches: Vec<SealedBatch>,
    /// Whether any record went.
    pub changed: bool,
    pub records_removed: u64,
    /// When the earliest tombstone kept may go.
    pub tombstones_due_ms: Option<i64>,
}

impl Log {
    /// Compacts `partition` (which this broker leads) at `now_ms` if a
    /// pass is due (see [`plan`]), with merged sections of
    /// `section_bytes`.
    pub async fn compact(
        &self,
        partition: &Partition,
        compaction: &Compaction,
        section_bytes: u64,
        now_ms: i64,
    ) -> Result<Option<Compacted>> {
        self.check_registration()?;
        let epoch = partition.leadership().ok_or(Error::NotLeaderOrFollower)?;
        let (mut extents, _) = partition.retained();
        let stable = self.offsets(partition).last_stable;
        extents.retain(|e| e.last_offset < stable);
        let Some(dirty) = plan(&extents, compaction, now_ms) else {
            return Ok(None);
        };
        let aborted = partition.aborted_within(0, stable);
        let (latest, read_end) = self
            .latest_offsets(&extents[dirty.clone()], &aborted)
            .await?;
        let end = dirty.start + read_end;
        let cleaner = Arc::new(Cleaner {
            latest,
            aborted,
            compaction: *compaction,
            now_ms,
            limit: self.settings.max_inflated_batch_bytes,
        });
        let mut done = Compacted::default();
        for chunk in chunks(&extents[..end], section_bytes) {
            let filtered = self.filter(chunk, cleaner.clone()).await?;
            done.bytes_read += chunk.iter().map(|e| e.length).sum::<u64>();
            if filtered.changed {
                let written: u64 = filtered.batches.iter().map(|b| b.data.len() as u64).sum();
                let rewrite = Rewrite {
                    partition,
                    epoch,
                    old: chunk.to_vec(),
                    batches: filtered.batches,
                    section_bytes,
                    compacted: true,
                    tombstones_due_ms: filtered.tombstones_due_ms,
                };
                let replaced = self.rewrite(vec![rewrite], "compact").await?;
                // A chunk that changed meanwhile (retention got there
                // first) removed nothing: it is compacted again next time.
                if replaced > 0 {
                    done.bytes_written += written;
                    done.records_removed += filtered.records_removed;
                }
            } else if chunk
                .iter()
                .any(|e| !e.compacted || e.tombstones_due_ms != filtered.tombstones_due_ms)
            {
                // Nothing goes: the same bytes, marked compacted.
                let marked = chunk
                    .iter()
                    .map(|e| Extent {
                        compacted: true,
                        tombstones_due_ms: filtered.tombstones_due_ms,
                        ..e.clone()
                    })
                    .collect();
                self.replace_run(partition, epoch, chunk, marked, "compact")
                    .await?;
            }
        }
        metrics::counter!("silt_compacted_bytes_total").increment(done.bytes_read);
        metrics::counter!("silt_compaction_removed_records_total").increment(done.records_removed);
        Ok(Some(done))
    }

    /// The latest offset of each key in `dirty`, and how many of its
    /// extents were read (all, unless [`MAX_KEYS`] keys were reached).
    async fn latest_offsets(
        &self,
        dirty: &[Extent],
        aborted: &[AbortedTxn],
    ) -> Result<(LatestOffsets, usize)> {
        let mut latest = LatestOffsets::new();
        for (i, extent) in dirty.iter().enumerate() {
            if latest.len() >= MAX_KEYS {
                return Ok((latest, i));
            }
            let section = self.cache.get(extent).await?;
            read_keys(
                &section,
                self.settings.max_inflated_batch_bytes,
                aborted,
                &mut latest,
            );
        }
        Ok((latest, dirty.len()))
    }

    /// The batches of `chunk` without the records compaction removes
    /// (filtered on a blocking thread: it inflates and compresses).
    async fn filter(&self, chunk: &[Extent], cleaner: Arc<Cleaner>) -> Result<Filtered> {
        let mut sections = Vec::with_capacity(chunk.len());
        for extent in chunk {
            sections.push((extent.compacted, self.cache.get(extent).await?));
        }
        let chunk = chunk.to_vec();
        tokio::task::spawn_blocking(move || cleaner.filter(&sections, &chunk))
            .await
            .map_err(super::blocking_failed)?
    }
}

/// Records in `latest` the offset of every key in `section` (stored
/// batches, oldest first), inflating batches within `limit`; batches of
/// `aborted` transactions do not count. A batch that cannot be read adds
/// no keys: older records of its keys stay, and so does it (see
/// [`Cleaner::filter`]).
pub fn read_keys(
    section: &Bytes,
    limit: usize,
    aborted: &[AbortedTxn],
    latest: &mut LatestOffsets,
) {
    for (header, range) in batch::iter_batches(section) {
        if header.is_control() || is_aborted(&header, aborted) {
            continue;
        }
        let batch = section.slice(range);
        let Ok(records) = records::records_of(&batch, &header, limit) else {
            continue;
        };
        for record in records::walk(&records.bytes) {
            let Ok(record) = record else { break };
            if let Some(key) = record.key {
                let offset = header.base_offset + i64::from(record.offset_delta);
                let key = &records.bytes[key];
                match latest.get_mut(key) {
                    Some(latest) => *latest = offset,
                    None => {
                        latest.insert(Bytes::copy_from_slice(key), offset);
                    }
                }
            }
        }
    }
}

/// The records of a stored batch within `limit`; one that cannot be read
/// is logged and counted (compaction leaves it as it is).
fn readable(batch: &Bytes, header: &BatchHeader, limit: usize) -> Option<records::Records> {
    match records::records_of(batch, header, limit) {
        Ok(records) => Some(records),
        Err(e) => {
            tracing::warn!(offset = header.base_offset, error = %e, "compaction leaves a batch it cannot read as it is");
            metrics::counter!("silt_compaction_unreadable_batches_total").increment(1);
            None
        }
    }
}

/// What decides which records a pass keeps.
pub struct Cleaner {
    pub latest: LatestOffsets,
    /// The partition's aborted transactions: their records go.
    pub aborted: Vec<AbortedTxn>,
    pub compaction: Compaction,
    pub now_ms: i64,
    /// `limits.max_inflated_batch_bytes`.
    pub limit: usize,
}

impl Cleaner {
    /// The batches of `sections` (each with whether its extent was
    /// compacted before; together they hold `chunk`) without the records
    /// that go.
    pub fn filter(&self, sections: &[(bool, Bytes)], chunk: &[Extent]) -> Result<Filtered> {
        let mut filtered = Filtered {
            batches: Vec::new(),
            changed: false,
            records_removed: 0,
            tombstones_due_ms: None,
        };
        let mut last_header = None;
        for (compacted, section) in sections {
            for (header, range) in batch::iter_batches(section) {
                last_header = Some(header);
                let batch = section.slice(range);
                let kept = if header.is_control() {
                    Some(batch)
                } else if is_aborted(&header, &self.aborted) {
                    filtered.changed = true;
                    filtered.records_removed += header.record_count.max(0) as u64;
                    None
                } else {
                    self.filter_batch(batch, &header, *compacted, &mut filtered)?
                };
                if let Some(data) = kept {
                    let max_timestamp =
                        BatchHeader::parse(&data).map_or(header.max_timestamp, |h| h.max_timestamp);
                    filtered.batches.push(SealedBatch {
                        base_offset: header.base_offset,
                        last_offset: header.last_offset(),
                        max_timestamp,
                        data,
                    });
                }
            }
        }
        if filtered.batches.is_empty() {
            // Everything went: the last batch, emptied, keeps the offsets
            // covered.
            let header = last_header
                .ok_or_else(|| Error::CorruptMessage("a stored section holds no batch".into()))?;
            let empty = records::rebuild(&header, Codec::None, &[], 0)
                .map_err(|e| Error::CorruptMessage(e.to_string()))?;
            filtered.batches.push(SealedBatch {
                base_offset: header.base_offset,
                last_offset: header.last_offset(),
                max_timestamp: header.max_timestamp,
                data: empty,
            });
        }
        cover(&mut filtered.batches, chunk);
        Ok(filtered)
    }

    /// `batch` without the records that go (`None`: all go); `compacted`:
    /// whether it was compacted before (only then may its tombstones go).
    fn filter_batch(
        &self,
        batch: Bytes,
        header: &BatchHeader,
        compacted: bool,
        filtered: &mut Filtered,
    ) -> Result<Option<Bytes>> {
        let Some(records) = readable(&batch, header, self.limit) else {
            return Ok(Some(batch));
        };
        let mut kept = BytesMut::new();
        let mut count = 0;
        let mut due: Option<i64> = None;
        for record in records::walk(&records.bytes) {
            let Ok(record) = record else {
                tracing::warn!(
                    offset = header.base_offset,
                    "compaction leaves a batch with a malformed record as it is"
                );
                return Ok(Some(batch));
            };
            let offset = header.base_offset + i64::from(record.offset_delta);
            let timestamp = if header.is_log_append_time() {
                header.max_timestamp
            } else {
                header.base_timestamp + record.timestamp_delta
            };
            let tombstone_due = timestamp.saturating_add(self.compaction.delete_retention_ms);
            let keep = match &record.key {
                // Kafka's cleaner drops records without a key too.
                None => false,
                Some(key) => {
                    let newest = self
                        .latest
                        .get(&records.bytes[key.clone()])
                        .is_none_or(|&latest| latest <= offset);
                    let expired_tombstone =
                        record.value.is_none() && compacted && tombstone_due <= self.now_ms;
                    newest && !expired_tombstone
                }
            };
            if !keep {
                filtered.records_removed += 1;
                continue;
            }
            if record.value.is_none() {
                due = Some(due.map_or(tombstone_due, |d| d.min(tombstone_due)));
            }
            kept.extend_from_slice(&records.bytes[record.bytes]);
            count += 1;
        }
        if let Some(due) = due {
            let earliest = filtered.tombstones_due_ms.map_or(due, |d| d.min(due));
            filtered.tombstones_due_ms = Some(earliest);
        }
        if count == header.record_count {
            return Ok(Some(batch));
        }
        filtered.changed = true;
        if count == 0 {
            return Ok(None);
        }
        let rebuilt = records::rebuild(header, records.codec, &kept, count)
            .map_err(|e| Error::CorruptMessage(e.to_string()))?;
        Ok(Some(rebuilt))
    }
}

/// Consecutive runs of `extents` of at most [`MAX_REPLACED_EXTENTS`]
/// extents and [`MAX_CHUNK_SECTIONS`] sections' worth of bytes (at least
/// one extent each).
fn chunks(extents: &[Extent], section_bytes: u64) -> Vec<&[Extent]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < extents.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < extents.len()
            && end - start < MAX_REPLACED_EXTENTS
            && (end == start || bytes + extents[end].length <= MAX_CHUNK_SECTIONS * section_bytes)
        {
            bytes += extents[end].length;
            end += 1;
        }
        chunks.push(&extents[start..end]);
        start = end;
    }
    chunks
}

/// Widens the offsets of `batches` (what is kept of `chunk`, in order)
/// over the gaps compaction left, so their sections cover the chunk's
/// offsets exactly and without holes.
fn cover(batches: &mut [SealedBatch], chunk: &[Extent]) {
    let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
        return;
    };
    let mut next = first.base_offset;
    for batch in batches.iter_mut() {
        batch.base_offset = next;
        next = batch.last_offset + 1;
    }
    if let Some(batch) = batches.last_mut() {
        batch.last_offset = last.last_offset;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };
    use uuid::Uuid;

    const SETTINGS: Compaction = Compaction {
        min_dirty_ratio: 0.5,
        min_lag_ms: 0,
        max_lag_ms: i64::MAX,
        delete_retention_ms: 1000,
    };

    fn extent(length: u64, max_timestamp: i64, compacted: bool) -> Extent {
        Extent {
            object: Uuid::nil(),
            position: 0,
            length,
            base_offset: 0,
            last_offset: 0,
            max_timestamp,
            crc: None,
            compacted,
            tombstones_due_ms: None,
            entry_list: None,
        }
    }

    #[test]
    fn a_pass_is_due_by_dirty_ratio_lag_or_tombstones() {
        let clean = |n| extent(n, 100, true);
        let dirty = |n, ts| extent(n, ts, false);
        // Half the bytes dirty: due; less: not.
        assert_eq!(
            plan(&[clean(50), dirty(50, 100)], &SETTINGS, 1000),
            Some(1..2)
        );
        assert_eq!(plan(&[clean(60), dirty(40, 100)], &SETTINGS, 1000), None);
        assert_eq!(plan(&[clean(60)], &SETTINGS, 1000), None);
        // Data younger than min.compaction.lag.ms is not cleanable.
        let lagging = Compaction {
            min_lag_ms: 500,
            ..SETTINGS
        };
        let young = [clean(10), dirty(50, 100), dirty(50, 800)];
        assert_eq!(plan(&young, &lagging, 1000), Some(1..2));
        assert_eq!(plan(&young, &lagging, 550), None);
        // max.compaction.lag.ms forces a pass below the ratio.
        let forced = Compaction {
            max_lag_ms: 800,
            ..SETTINGS
        };
        assert_eq!(
            plan(&[clean(90), dirty(10, 100)], &forced, 1000),
            Some(1..2)
        );
        assert_eq!(plan(&[clean(90), dirty(10, 300)], &forced, 1000), None);
        // A kept tombstone that is due.
        let mut with_tombstone = clean(90);
        with_tombstone.tombstones_due_ms = Some(900);
        assert_eq!(plan(&[with_tombstone.clone()], &SETTINGS, 1000), Some(1..1));
        assert_eq!(plan(&[with_tombstone], &SETTINGS, 800), None);
    }

    /// One batch at `base` of `records` (key, value), timestamps `ts`,
    /// `ts + 1`, ...
    fn batch(
        base: i64,
        ts: i64,
        records: &[(Option<&str>, Option<&str>)],
        c: Compression,
    ) -> Bytes {
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, (key, value))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 3,
                producer_epoch: 0,
                timestamp_type: TimestampType::Creation,
                offset: base + i as i64,
                sequence: base as i32 + i as i32,
                timestamp: ts + i as i64,
                key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
                value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: c,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf.freeze()
    }

    /// (offset, key, value) of every record in `batches`.
    fn contents(batches: &[SealedBatch]) -> Vec<(i64, String, Option<String>)> {
        let text = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
        batches
            .iter()
            .flat_map(|b| {
                RecordBatchDecoder::decode(&mut b.data.clone())
                    .unwrap()
                    .records
            })
            .map(|r| (r.offset, text(&r.key).unwrap_or_default(), text(&r.value)))
            .collect()
    }

    #[test]
    fn the_latest_record_of_each_key_survives_at_its_offset_in_every_codec() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let first = batch(
                0,
                100,
                &[
                    (Some("a"), Some("1")),
                    (Some("b"), Some("1")),
                    (None, Some("x")),
                ],
                c,
            );
            let second = batch(3, 200, &[(Some("a"), Some("2")), (Some("c"), None)], c);
            let third = batch(5, 300, &[(Some("a"), Some("3"))], c);
            let mut section = BytesMut::new();
            section.extend_from_slice(&first);
            section.extend_from_slice(&second);
            let sections = vec![(false, section.freeze()), (false, third)];
            let mut chunk = vec![extent(1, 201, false), extent(1, 300, false)];
            chunk[0].base_offset = 0;
            chunk[0].last_offset = 4;
            chunk[1].base_offset = 5;
            chunk[1].last_offset = 5;
            let latest = LatestOffsets::from([
                (Bytes::from_static(b"a"), 5),
                (Bytes::from_static(b"b"), 1),
                (Bytes::from_static(b"c"), 4),
            ]);
            let cleaner = Cleaner {
                aborted: Vec::new(),
                latest,
                compaction: SETTINGS,
                now_ms: 10_000,
                limit: 1 << 20,
            };
            let filtered = cleaner.filter(&sections, &chunk).unwrap();
            assert!(filtered.changed);
            assert_eq!(filtered.records_removed, 3, "{c:?}");
            assert_eq!(
                contents(&filtered.batches),
                vec![
                    (1, "b".into(), Some("1".into())),
                    (4, "c".into(), None),
                    (5, "a".into(), Some("3".into())),
                ],
                "{c:?}"
            );
            // A tombstone, seen by a pass for the first time, stays.
            assert_eq!(filtered.tombstones_due_ms, Some(1201));
            // The batches cover the chunk's offsets without holes.
            let ranges: Vec<(i64, i64)> = filtered
                .batches
                .iter()
                .map(|b| (b.base_offset, b.last_offset))
                .collect();
            assert_eq!(ranges, vec![(0, 2), (3, 4), (5, 5)]);
            // Their codec stays.
            let header = BatchHeader::parse(&filtered.batches[1].data).unwrap();
            assert_eq!(records::Codec::of(&header).unwrap(), {
                let original = BatchHeader::parse(&second).unwrap();
                records::Codec::of(&original).unwrap()
            });
        }
    }

    #[test]
    fn aborted_records_go_and_never_replace_a_committed_one() {
        use crate::protocol::control::{self, Outcome};
        let committed = batch(0, 100, &[(Some("k"), Some("committed"))], Compression::None);
        // A transactional batch of producer 3 at offset 1, aborted by the
        // marker at offset 2.
        let aborted_batch = {
            let plain = batch(1, 101, &[(Some("k"), Some("aborted"))], Compression::None);
            let header = BatchHeader::parse(&plain).unwrap();
            let header = BatchHeader {
                attributes: header.attributes | 0x10,
                ..header
            };
            batch::assemble(&header, &plain[batch::HEADER_LEN..])
        };
        let (_, marker) = control::marker(3, 0, Outcome::Abort, 0, 102);
        let mut marker = BytesMut::from(&marker[..]);
        batch::set_base_offset(&mut marker, 2);
        let section: Bytes = [committed, aborted_batch, marker.freeze()].concat().into();
        let aborted = vec![AbortedTxn {
            producer_id: 3,
            first_offset: 1,
            last_offset: 2,
        }];
        let mut latest = LatestOffsets::new();
        read_keys(&section, 1 << 20, &aborted, &mut latest);
        assert_eq!(
            latest.get(&b"k"[..]),
            Some(&0),
            "the aborted record does not count"
        );
        let mut chunk = vec![extent(section.len() as u64, 102, false)];
        chunk[0].base_offset = 0;
        chunk[0].last_offset = 2;
        let cleaner = Cleaner {
            aborted,
            latest,
            compaction: SETTINGS,
            now_ms: 1_000,
            limit: 1 << 20,
        };
        let filtered = cleaner.filter(&[(false, section)], &chunk).unwrap();
        assert!(filtered.changed);
        assert_eq!(filtered.records_removed, 1);
        let offsets: Vec<i64> = filtered
            .batches
            .iter()
            .map(|b| BatchHeader::parse(&b.data).unwrap().base_offset)
            .collect();
        assert_eq!(
            offsets,
            vec![0, 2],
            "the committed record and the marker stay"
        );
        assert_eq!(
            contents(&filtered.batches)[0],
            (0, "k".to_string(), Some("committed".to_string()))
        );
    }

    #[test]
    fn tombstones_go_once_compacted_and_due_and_an_emptied_chunk_keeps_its_offsets() {
        let tombstone = batch(7, 100, &[(Some("gone"), None)], Compression::None);
        let mut chunk = vec![extent(1, 100, true)];
        chunk[0].base_offset = 5;
        chunk[0].last_offset = 9;
        let cleaner = |now_ms| Cleaner {
            aborted: Vec::new(),
            latest: LatestOffsets::new(),
            compaction: SETTINGS,
            now_ms,
            limit: 1 << 20,
        };
        // Not yet due: kept, nothing changes.
        let kept = cleaner(1000)
            .filter(&[(true, tombstone.clone())], &chunk)
            .unwrap();
        assert!(!kept.changed);
        assert_eq!(kept.tombstones_due_ms, Some(1100));
        // Due, but never compacted before: kept.
        let first_seen = cleaner(5000)
            .filter(&[(false, tombstone.clone())], &chunk)
            .unwrap();
        assert!(!first_seen.changed);
        // Due and compacted before: gone; an empty batch keeps 5..=9.
        let gone = cleaner(5000).filter(&[(true, tombstone)], &chunk).unwrap();
        assert!(gone.changed);
        assert_eq!(gone.tombstones_due_ms, None);
        assert_eq!(contents(&gone.batches), vec![]);
        assert_eq!(gone.batches.len(), 1);
        assert_eq!(
            (gone.batches[0].base_offset, gone.batches[0].last_offset),
            (5, 9)
        );
        let header = BatchHeader::parse(&gone.batches[0].data).unwrap();
        assert_eq!((header.record_count, header.last_offset()), (0, 7));
    }

    #[test]
    fn chunks_are_bounded_in_extents_and_bytes() {
        let extents: Vec<Extent> = (0..130).map(|_| extent(10, 0, false)).collect();
        let lengths: Vec<usize> = chunks(&extents, 1000).iter().map(|c| c.len()).collect();
        assert_eq!(lengths, vec![60, 60, 10]);
        let lengths: Vec<usize> = chunks(&extents[..10], 10).iter().map(|c| c.len()).collect();
        assert_eq!(lengths, vec![4, 4, 2]);
    }
}
