//! One partition's log: committed extents in the object store, then the
//! in-memory tail of batches not yet uploaded.
//!
//! Offsets are assigned here, under the partition lock, by rewriting the
//! batch header; the WAL append happens under the same lock so the WAL holds
//! each partition's batches in offset order. Invariants:
//! `log_start <= committed_end <= high_watermark <= next_offset` and
//! `committed_end <= sealed_end <= next_offset`; extents cover
//! `[log_start, committed_end)` and the tail `[committed_end, next_offset)`,
//! of which `[committed_end, sealed_end)` is in uploads under way.
//!
//! Several uploads may be under way at once; they commit in the order they
//! were sealed. When one of them fails for this partition, the partition
//! is unsealed back to its committed end and its seal generation moves on,
//! so the later uploads still under way leave this partition out (their
//! extents would not continue the committed ones) and the next upload
//! seals the data again.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;
use tokio::sync::futures::Notified;
use uuid::Uuid;

use super::object::SealedBatch;
use super::producer::{ProducerTable, SequenceCheck};
use super::transactions::Transactions;
use super::wal::{Wal, WalRecord};
use crate::error::{Error, Result};
use crate::meta::{AbortedTxn, Extent, PartitionMeta, ProducerSnapshot};
use crate::protocol::batch::{self, BatchHeader, TimestampType};
use crate::protocol::control::{self, Outcome};

/// A partition of a topic.
pub struct Partition {
    pub topic: Uuid,
    pub index: i32,
    state: Mutex<State>,
    /// Fetches waiting for data here: woken when more may be readable or
    /// the partition's leadership ended.
    readers: Notify,
}

struct State {
    leader_epoch: i32,
    log_start: i64,
    committed_end: i64,
    high_watermark: i64,
    next_offset: i64,
    extents: Vec<Extent>,
    tail: VecDeque<TailBatch>,
    tail_bytes: u64,
    /// Offset after the last batch handed to an upload.
    sealed_end: i64,
    /// Changes whenever sealed data is handed back (see the module docs).
    seal_generation: u64,
    producers: ProducerTable,
    txns: Transactions,
    /// Producers whose next transaction the coordinator confirmed includes
    /// this partition (producer id -> epoch), so its first transactional
    /// batch here may open it.
    verified: std::collections::HashMap<i64, i16>,
    /// Whether this broker leads the partition: only a leader appends and
    /// serves reads.
    leading: bool,
    /// The topic was deleted: appends are refused.
    deleted: bool,
}

/// An appended batch not yet in the object store.
struct TailBatch {
    header: BatchHeader,
    data: Bytes,
    /// The batch's WAL entry (empty in `object` durability).
    wal: Range<u64>,
}

/// The result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: i64,
    /// The append is acknowledged once the high watermark reaches this...
    pub end_offset: i64,
    /// ...in the leadership it was appended in (a later one may not hold it).
    pub leader_epoch: i32,
    /// The WAL position that makes it durable (0 without the WAL).
    pub wal_end: u64,
    /// Bytes added to the tail (0 for a retried duplicate).
    pub bytes: u64,
    /// The broker's time stamped into the batch (LogAppendTime), or -1.
    pub log_append_time_ms: i64,
}

/// How many bytes a read may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimit {
    pub max_bytes: usize,
    /// Return the first batch even when it alone exceeds `max_bytes`, so a
    /// consumer always progresses (Kafka does this for the first partition
    /// with data in a fetch response).
    pub at_least_one: bool,
}

impl ReadLimit {
    /// Whether a batch of `next` bytes fits after `used` bytes.
    pub fn fits(&self, used: usize, next: usize) -> bool {
        (used == 0 && self.at_least_one) || used + next <= self.max_bytes
    }
}

/// Offsets of the partition, as reported to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    pub leader_epoch: i32,
    pub log_start: i64,
    pub high_watermark: i64,
    /// The last stable offset: read_committed consumers read up to it.
    pub last_stable: i64,
}

/// A producer as DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    pub producer_id: i64,
    pub epoch: i16,
    /// The last sequence it wrote (-1: none, only markers).
    pub last_sequence: i32,
    pub last_write_ms: i64,
    /// The first offset of its open transaction here, if one is.
    pub txn_start_offset: Option<i64>,
}

/// Which records a read may return (a fetch's `isolation_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Everything up to the high watermark.
    ReadUncommitted,
    /// Up to the last stable offset.
    ReadCommitted,
}

/// Where a read at some offset is served from.
#[derive(Debug, Clone)]
pub enum ReadSource {
    /// The offset is the high watermark: nothing to return yet.
    Nothing,
    /// Whole batches from the tail, in order.
    Tail(Vec<Bytes>),
    /// The batches are in this committed extent; those from `end` on
    /// are not readable (yet).
    Extent { extent: Extent, end: i64 },
}

/// A partition's batches ready for upload.
pub struct Sealed {
    pub leader_epoch: i32,
    /// The partition's seal generation when sealed: the upload may commit
    /// them only while it is unchanged.
    pub generation: u64,
    pub batches: Vec<SealedBatch>,
    /// Each batch's WAL entry (in `local` durability).
    pub wal: Vec<Range<u64>>,
    /// Offset after the last sealed batch.
    pub end: i64,
    pub producers: std::collections::BTreeMap<i64, ProducerSnapshot>,
    /// Transactions aborted by markers among the sealed batches.
    pub aborted: Vec<AbortedTxn>,
}

impl Partition {
    /// A partition this broker leads, restored to its committed state.
    pub fn new(topic: Uuid, index: i32, meta: PartitionMeta) -> Self {
        Partition {
            topic,
            index,
            state: Mutex::new(State::restored(meta, true)),
            readers: Notify::new(),
        }
    }

    /// A partition another broker leads (or nobody yet): it refuses appends
    /// and reads until [`Partition::lead`].
    pub fn follower(topic: Uuid, index: i32) -> Self {
        Partition {
            topic,
            index,
            state: Mutex::new(State::restored(PartitionMeta::default(), false)),
            readers: Notify::new(),
        }
    }

    /// Completes when [`Partition::wake_readers`] is called after it was
    /// created (enable it before looking for data, then wait).
    pub fn readers_woken(&self) -> Notified<'_> {
        self.readers.notified()
    }

    /// Wakes the fetches waiting for data here.
    pub fn wake_readers(&self) {
        self.readers.notify_waiters();
    }

    /// Starts leading at the committed state `meta` (read after the epoch
    /// was raised for this broker, so it holds everything committed
    /// before); returns the bytes of a tail left from an earlier
    /// leadership, dropped.
    pub fn lead(&self, meta: PartitionMeta) -> u64 {
        self.lead_with(meta, Vec::new(), 0).0
    }

    /// [`Partition::lead`], re-appending `wal` (this broker's WAL records
    /// of the partition, in order) written at the same epoch before anyone
    /// can append: returns the bytes dropped and the bytes re-appended.
    pub fn lead_with(&self, meta: PartitionMeta, wal: Vec<WalRecord>, now_ms: i64) -> (u64, u64) {
        let mut state = self.lock();
        if state.deleted {
            return (0, 0);
        }
        let dropped = state.tail_bytes;
        let generation = state.seal_generation + 1;
        *state = State::restored(meta, true);
        state.seal_generation = generation;
        let epoch = state.leader_epoch;
        let replayed = wal
            .into_iter()
            .map(|r| self.replay_locked(&mut state, r.batch, r.position, now_ms, epoch))
            .sum();
        (dropped, replayed)
    }

    /// Stops leading (another broker leads now, or this one was fenced at
    /// `epoch`, if given and still current): drops the tail, whose commit
    /// would be fenced; returns its bytes.
    pub fn resign(&self, epoch: Option<i32>) -> u64 {
        let mut state = self.lock();
        if epoch.is_some_and(|e| e != state.leader_epoch) {
            return 0;
        }
        state.leading = false;
        state.tail.clear();
        state.unseal();
        std::mem::take(&mut state.tail_bytes)
    }

    /// The leader epoch while this broker leads the partition.
    pub fn leadership(&self) -> Option<i32> {
        let state = self.lock();
        state.leading.then_some(state.leader_epoch)
    }

    /// `NotLeaderOrFollower` unless this broker leads the partition.
    pub fn check_leader(&self) -> Result<()> {
        self.lock().check_leader()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("partition lock poisoned")
    }

    /// Validates the producer sequence, assigns offsets and appends `data`
    /// (one validated batch) to the tail and, if given, the WAL. The offsets
    /// are written into the batch in place when `data` is its buffer's only
    /// reference (a produce request's records usually are), else into a
    /// copy.
    pub fn append(
        &self,
        header: &BatchHeader,
        data: Bytes,
        wal: Option<&Wal>,
        now_ms: i64,
        timestamps: TimestampType,
    ) -> Result<Appended> {
        let mut state = self.lock();
        state.check_leader()?;
        if header.is_control() {
            return Err(Error::InvalidRecord(
                "control batches are written by the transaction coordinator only".into(),
            ));
        }
        if let SequenceCheck::Duplicate(previous) = state.producers.check(header)? {
            return Ok(Appended {
                base_offset: previous.base_offset,
                end_offset: previous.last_offset + 1,
                leader_epoch: state.leader_epoch,
                wal_end: 0,
                bytes: 0,
                log_append_time_ms: -1,
            });
        }
        if header.is_transactional() {
            state.check_transactional(header)?;
        }
        self.write(&mut state, header, data, wal, now_ms, timestamps)
    }

    /// Whether `header`'s batch opens a transaction here the coordinator
    /// has not confirmed yet (see [`Partition::expect_transaction`]).
    pub fn needs_verification(&self, header: &BatchHeader) -> bool {
        let state = self.lock();
        header.is_transactional()
            && !state.txns.is_open(header.producer_id)
            && state.verified.get(&header.producer_id) != Some(&header.producer_epoch)
    }

    /// Lets `producer_id` at `epoch` open a transaction here with its next
    /// transactional batch: the coordinator has the partition in it.
    pub fn expect_transaction(&self, producer_id: i64, epoch: i16) {
        self.lock().verified.insert(producer_id, epoch);
    }

    /// Appends the marker ending `producer_id`'s transaction (written at
    /// `epoch` by the coordinator at `coordinator_epoch`); when no
    /// transaction of it is open (a retried marker) nothing is appended,
    /// and the result is durable once everything appended so far is.
    pub fn append_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        outcome: Outcome,
        coordinator_epoch: i32,
        wal: Option<&Wal>,
        now_ms: i64,
    ) -> Result<Appended> {
        let mut state = self.lock();
        state.check_leader()?;
        if let Some(current) = state.producers.epoch(producer_id)
            && epoch < current
        {
            return Err(Error::InvalidProducerEpoch {
                producer_id,
                got: epoch,
                current,
            });
        }
        state.verified.remove(&producer_id);
        if !state.txns.is_open(producer_id) {
            return Ok(Appended {
                base_offset: state.next_offset,
                end_offset: state.next_offset,
                leader_epoch: state.leader_epoch,
                wal_end: 0,
                bytes: 0,
                log_append_time_ms: -1,
            });
        }
        let (header, data) =
            control::marker(producer_id, epoch, outcome, coordinator_epoch, now_ms);
        self.write(
            &mut state,
            &header,
            data,
            wal,
            now_ms,
            TimestampType::CreateTime,
        )
    }

    /// Assigns offsets to a checked batch and appends it to the WAL, if
    /// given, and the tail.
    fn write(
        &self,
        state: &mut State,
        header: &BatchHeader,
        data: Bytes,
        wal: Option<&Wal>,
        now_ms: i64,
        timestamps: TimestampType,
    ) -> Result<Appended> {
        let base_offset = state.next_offset;
        let mut owned = data
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        batch::set_base_offset(&mut owned, base_offset);
        batch::set_leader_epoch(&mut owned, state.leader_epoch);
        let header = match timestamps {
            TimestampType::CreateTime => *header,
            TimestampType::LogAppendTime => batch::set_log_append_time(&mut owned, header, now_ms),
        };
        let data = owned.freeze();
        let wal = match wal {
            Some(wal) => wal.append(self.topic, self.index, &data)?,
            None => 0..0,
        };
        let header = BatchHeader {
            base_offset,
            partition_leader_epoch: state.leader_epoch,
            ..header
        };
        let appended = state.push(header, data, wal, now_ms);
        Ok(match timestamps {
            TimestampType::CreateTime => appended,
            TimestampType::LogAppendTime => Appended {
                log_append_time_ms: now_ms,
                ..appended
            },
        })
    }

    /// Re-appends a batch read back from the WAL at start-up; batches already
    /// committed, or written at a leader epoch other than `epoch`, are
    /// skipped. Returns the bytes added to the tail.
    pub fn replay(&self, data: Bytes, wal: Range<u64>, now_ms: i64, epoch: i32) -> u64 {
        self.replay_locked(&mut self.lock(), data, wal, now_ms, epoch)
    }

    fn replay_locked(
        &self,
        state: &mut State,
        data: Bytes,
        wal: Range<u64>,
        now_ms: i64,
        epoch: i32,
    ) -> u64 {
        let Ok(header) = BatchHeader::parse(&data) else {
            return 0;
        };
        if header.last_offset() < state.next_offset {
            return 0;
        }
        if header.partition_leader_epoch != epoch {
            // Written while this broker led at an epoch another broker
            // ended: those offsets are the other broker's now.
            tracing::warn!(
                topic = %self.topic,
                partition = self.index,
                offset = header.base_offset,
                "dropping a WAL batch of an earlier leadership"
            );
            metrics::counter!("silt_wal_batches_lost_total").increment(1);
            return 0;
        }
        if header.base_offset > state.next_offset {
            tracing::warn!(
                topic = %self.topic,
                partition = self.index,
                expected = state.next_offset,
                found = header.base_offset,
                "gap in the WAL; continuing at the later offset"
            );
            state.next_offset = header.base_offset;
        }
        let appended = state.push(header, data, wal, now_ms);
        // Everything in the WAL is on disk already.
        state.high_watermark = state.next_offset;
        appended.bytes
    }

    /// Current offsets; `wal_durable` advances the high watermark over the
    /// tail in `local` durability.
    pub fn offsets(&self, wal_durable: Option<u64>) -> Offsets {
        let mut state = self.lock();
        state.advance_high_watermark(wal_durable);
        Offsets {
            leader_epoch: state.leader_epoch,
            log_start: state.log_start,
            high_watermark: state.high_watermark,
            last_stable: state.last_stable(),
        }
    }

    /// The producers this partition knows, with their open transactions.
    pub fn producers(&self) -> Vec<ActiveProducer> {
        let state = self.lock();
        state
            .producers
            .producers()
            .map(
                |(producer_id, epoch, last_sequence, last_write_ms)| ActiveProducer {
                    producer_id,
                    epoch,
                    last_sequence,
                    last_write_ms,
                    txn_start_offset: state.txns.first_offset(producer_id),
                },
            )
            .collect()
    }

    /// The aborted transactions with records in `from..to`.
    pub fn aborted_within(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.lock().txns.aborted_within(from, to)
    }

    /// Whether `appended` is durable (the high watermark passed it); an
    /// error once the leadership it was appended in ended (its tail was
    /// dropped, and a later high watermark says nothing of it) or the
    /// topic was deleted.
    pub fn is_durable(&self, appended: &Appended, wal_durable: Option<u64>) -> Result<bool> {
        let mut state = self.lock();
        state.check_leader()?;
        if state.leader_epoch != appended.leader_epoch {
            return Err(Error::NotLeaderOrFollower);
        }
        state.advance_high_watermark(wal_durable);
        Ok(state.high_watermark >= appended.end_offset)
    }

    /// The partition's current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.lock().leader_epoch
    }

    /// Offset after the last committed batch.
    pub fn committed_end(&self) -> i64 {
        self.lock().committed_end
    }

    /// Offset after the last appended batch (durable or not).
    pub fn next_offset(&self) -> i64 {
        self.lock().next_offset
    }

    /// Where to read whole batches starting at `offset`, within `limit`
    /// when served from the tail, up to what `isolation` lets a reader see.
    pub fn read(
        &self,
        offset: i64,
        limit: ReadLimit,
        wal_durable: Option<u64>,
        isolation: Isolation,
    ) -> Result<ReadSource> {
        let mut state = self.lock();
        state.check_leader()?;
        state.advance_high_watermark(wal_durable);
        if offset < state.log_start || offset > state.high_watermark {
            return Err(Error::OffsetOutOfRange {
                offset,
                start: state.log_start,
                end: state.high_watermark,
            });
        }
        let end = match isolation {
            Isolation::ReadUncommitted => state.high_watermark,
            Isolation::ReadCommitted => state.last_stable(),
        };
        if offset >= end {
            return Ok(ReadSource::Nothing);
        }
        if offset < state.committed_end {
            let i = state.extents.partition_point(|e| e.last_offset < offset);
            let extent = state.extents[i].clone();
            return Ok(ReadSource::Extent { extent, end });
        }
        let first = state
            .tail
            .partition_point(|b| b.header.last_offset() < offset);
        // Only reference counts are taken under the lock; the caller copies.
        let mut batches = Vec::new();
        let mut size = 0;
        for batch in state.tail.range(first..) {
            let readable = batch.header.last_offset() < end;
            if !readable || !limit.fits(size, batch.data.len()) {
                break;
            }
            size += batch.data.len();
            batches.push(batch.data.clone());
        }
        Ok(ReadSource::Tail(batches))
    }

    /// The committed extent holding `offset` and the following ones up to
    /// `ahead_bytes` (see [`first_within`]): what a sequential reader
    /// wants next.
    pub fn extents_from(&self, offset: i64, ahead_bytes: u64) -> Vec<Extent> {
        let state = self.lock();
        let first = state.extents.partition_point(|e| e.last_offset < offset);
        let from = &state.extents[first..];
        let count = match from.split_first() {
            Some((_, following)) => 1 + first_within(following, ahead_bytes),
            None => 0,
        };
        from[..count].to_vec()
    }

    /// The committed extents and the tail batches' headers with their
    /// timestamps, for timestamp lookups.
    pub fn timestamp_index(
        &self,
        wal_durable: Option<u64>,
    ) -> (Vec<Extent>, Vec<(BatchHeader, Bytes)>) {
        let mut state = self.lock();
        state.advance_high_watermark(wal_durable);
        let hw = state.high_watermark;
        let tail = state
            .tail
            .iter()
            .filter(|b| b.header.last_offset() < hw)
            .map(|b| (b.header, b.data.clone()))
            .collect();
        (state.extents.clone(), tail)
    }

    /// The next tail batches to upload, after those already in uploads:
    /// in `local` durability those whose WAL entries end by `wal_bound`
    /// (in sealed segments), at most `max_bytes` (but at least one batch).
    pub fn seal(&self, wal_bound: Option<u64>, max_bytes: u64) -> Option<Sealed> {
        let mut state = self.lock();
        let sealed_end = state.sealed_end;
        let first = state
            .tail
            .partition_point(|b| b.header.base_offset < sealed_end);
        let mut size = 0;
        let batches: Vec<SealedBatch> = state
            .tail
            .range(first..)
            .take_while(|b| wal_bound.is_none_or(|bound| b.wal.end <= bound))
            .take_while(|b| {
                let take = size == 0 || size + b.data.len() as u64 <= max_bytes;
                size += b.data.len() as u64;
                take
            })
            .map(|b| SealedBatch {
                base_offset: b.header.base_offset,
                last_offset: b.header.last_offset(),
                max_timestamp: b.header.max_timestamp,
                data: b.data.clone(),
            })
            .collect();
        let end = batches.last()?.last_offset + 1;
        let sealed = state.tail.range(first..first + batches.len());
        let wal = sealed.clone().map(|b| b.wal.clone()).collect();
        let producer_ids = sealed
            .filter(|b| b.header.has_producer_id())
            .map(|b| b.header.producer_id);
        let mut producers = state.producers.snapshot(producer_ids, end);
        for (id, snapshot) in &mut producers {
            snapshot.txn_first_offset = state.txns.open_at(*id, end);
        }
        let aborted = state.txns.aborted_by_markers_in(sealed_end, end);
        state.sealed_end = end;
        Some(Sealed {
            leader_epoch: state.leader_epoch,
            generation: state.seal_generation,
            end,
            producers,
            aborted,
            batches,
            wal,
        })
    }

    /// Whether data sealed at `generation` may still be committed: nothing
    /// sealed before it was handed back since.
    pub fn seal_holds(&self, generation: u64) -> bool {
        self.lock().seal_generation == generation
    }

    /// Hands data sealed at `generation` back after its upload failed:
    /// everything not committed is sealed again by the next upload.
    pub fn unseal(&self, generation: u64) {
        let mut state = self.lock();
        if state.seal_generation == generation {
            state.unseal();
        }
    }

    /// Makes extents committed at `epoch` ending at `end` visible and drops
    /// the tail batches they hold; returns the bytes dropped. Nothing if
    /// the partition was taken over again meanwhile (its state, read
    /// afresh, holds them).
    pub fn apply_commit(&self, epoch: i32, extents: Vec<Extent>, end: i64) -> u64 {
        let mut state = self.lock();
        if state.leader_epoch != epoch {
            return 0;
        }
        state.extents.extend(extents);
        state.committed_end = state.committed_end.max(end);
        state.sealed_end = state.sealed_end.max(end);
        state.high_watermark = state.high_watermark.max(end);
        let mut dropped = 0;
        while let Some(front) = state.tail.front() {
            if front.header.last_offset() >= end {
                break;
            }
            dropped += front.data.len() as u64;
            state.tail.pop_front();
        }
        state.tail_bytes -= dropped;
        let (high_watermark, committed_end) = (state.high_watermark, state.committed_end);
        state.txns.forget_ended(high_watermark, committed_end);
        dropped
    }

    /// Moves the log start forward to `offset` (at most to the committed
    /// end) and forgets the extents wholly before it, as the metadata store
    /// did under `epoch`; nothing if the partition was taken over since.
    pub fn advance_log_start(&self, epoch: i32, offset: i64) {
        let mut state = self.lock();
        if state.leader_epoch != epoch || offset <= state.log_start {
            return;
        }
        state.log_start = offset.min(state.committed_end);
        let log_start = state.log_start;
        state.extents.retain(|e| e.last_offset >= log_start);
        state.txns.forget_before(log_start);
    }

    /// Replaces the run of extents `old` with `new` (same offsets), as
    /// the metadata store did under `epoch`; whether it did (not if the
    /// partition was taken over since or the run is no longer there).
    pub fn replace_extents(&self, epoch: i32, old: &[Extent], new: Vec<Extent>) -> bool {
        let mut state = self.lock();
        if state.leader_epoch != epoch {
            return false;
        }
        let Some(at) = crate::meta::run_position(&state.extents, old) else {
            return false;
        };
        state.extents.splice(at..at + old.len(), new);
        true
    }

    /// Takes the log start and the extents below the committed end from
    /// `stored`, the partition's state in the metadata store at `epoch`
    /// (after a lifecycle change whose outcome is not known here); nothing
    /// if the partition was taken over since.
    pub fn adopt_stored(&self, epoch: i32, stored: &PartitionMeta) {
        let mut state = self.lock();
        if state.leader_epoch != epoch || stored.leader_epoch != epoch {
            return;
        }
        // Below both ends the stored extents are the truth; above the
        // stored one, memory holds uploads committed after it was read.
        let boundary = state.committed_end.min(stored.committed_end());
        let log_start = state.log_start.max(stored.log_start_offset).min(boundary);
        let above: Vec<Extent> = state
            .extents
            .iter()
            .filter(|e| e.base_offset >= boundary)
            .cloned()
            .collect();
        state.extents = stored
            .extents
            .iter()
            .filter(|e| e.last_offset < boundary && e.last_offset >= log_start)
            .cloned()
            .chain(above)
            .collect();
        state.log_start = log_start;
    }

    /// How many committed extents the partition has.
    pub fn extent_count(&self) -> usize {
        self.lock().extents.len()
    }

    /// What retention weighs: the committed extents (oldest first) and the
    /// bytes in the tail.
    pub fn retained(&self) -> (Vec<Extent>, u64) {
        let state = self.lock();
        (state.extents.clone(), state.tail_bytes)
    }

    /// The bytes the partition holds: its committed extents and its tail.
    pub fn size_bytes(&self) -> u64 {
        let state = self.lock();
        state.extents.iter().map(|e| e.length).sum::<u64>() + state.tail_bytes
    }

    /// WAL position of the oldest entry this partition still needs.
    pub fn oldest_wal_position(&self) -> Option<u64> {
        self.lock()
            .tail
            .front()
            .filter(|b| !b.wal.is_empty())
            .map(|b| b.wal.start)
    }

    /// Drops the tail and refuses further appends (the partition is being
    /// deleted); returns the bytes dropped.
    pub fn clear_tail(&self) -> u64 {
        let mut state = self.lock();
        state.deleted = true;
        state.tail.clear();
        state.unseal();
        std::mem::take(&mut state.tail_bytes)
    }

    /// Where leader epoch `epoch` ends, for clients checking for log
    /// truncation; `None` for epochs after the current one. The log is never
    /// truncated and epochs only rise when a broker takes the partition
    /// over, so the log end bounds every earlier epoch's end: it is the
    /// answer for all of them (epoch starts are not recorded), and it never
    /// makes a client see truncation that did not happen.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let state = self.lock();
        (epoch <= state.leader_epoch).then_some((epoch, state.next_offset))
    }
}

impl State {
    fn restored(meta: PartitionMeta, leading: bool) -> State {
        let committed_end = meta.committed_end();
        let txns = Transactions::restored(&meta);
        State {
            leader_epoch: meta.leader_epoch,
            log_start: meta.log_start_offset,
            committed_end,
            high_watermark: committed_end,
            next_offset: committed_end,
            extents: meta.extents,
            tail: VecDeque::new(),
            tail_bytes: 0,
            sealed_end: committed_end,
            seal_generation: 0,
            producers: ProducerTable::from_snapshots(&meta.producers),
            txns,
            verified: std::collections::HashMap::new(),
            leading,
            deleted: false,
        }
    }

    /// Hands everything sealed and not committed back to the next upload.
    fn unseal(&mut self) {
        self.sealed_end = self.committed_end;
        self.seal_generation += 1;
    }

    fn check_leader(&self) -> Result<()> {
        if self.deleted {
            Err(Error::UnknownTopicOrPartition)
        } else if self.leading {
            Ok(())
        } else {
            Err(Error::NotLeaderOrFollower)
        }
    }

    /// `InvalidTxnState` unless a transactional batch may be appended: its
    /// producer has a transaction open here, or the coordinator confirmed
    /// the partition is in its next one.
    fn check_transactional(&mut self, header: &BatchHeader) -> Result<()> {
        let id = header.producer_id;
        if self.txns.is_open(id) || self.verified.get(&id) == Some(&header.producer_epoch) {
            return Ok(());
        }
        Err(Error::InvalidTxnState(
            id,
            "the partition was not added to the producer's transaction",
        ))
    }

    /// The last stable offset (never before the log start).
    fn last_stable(&self) -> i64 {
        self.txns
            .last_stable(self.high_watermark)
            .max(self.log_start)
    }

    fn push(&mut self, header: BatchHeader, data: Bytes, wal: Range<u64>, now_ms: i64) -> Appended {
        let (id, offset) = (header.producer_id, header.base_offset);
        if header.is_control() {
            self.producers
                .record_marker(id, header.producer_epoch, now_ms);
            if let Some(outcome) = control::outcome_of(&header, &data) {
                self.txns.record_marker(id, offset, outcome);
            }
        } else {
            self.producers.record(&header, offset, now_ms);
            if header.is_transactional() {
                self.txns.record_data(id, offset);
                self.verified.remove(&id);
            }
        }
        let bytes = data.len() as u64;
        self.next_offset = header.last_offset() + 1;
        self.tail.push_back(TailBatch { header, data, wal });
        self.tail_bytes += bytes;
        Appended {
            base_offset: header.base_offset,
            end_offset: self.next_offset,
            leader_epoch: self.leader_epoch,
            wal_end: self.tail.back().map_or(0, |b| b.wal.end),
            bytes,
            log_append_time_ms: -1,
        }
    }

    fn advance_high_watermark(&mut self, wal_durable: Option<u64>) {
        let Some(durable) = wal_durable else {
            return;
        };
        let durable_batches = self.tail.partition_point(|b| b.wal.end <= durable);
        if let Some(last) = durable_batches.checked_sub(1).map(|i| &self.tail[i]) {
            self.high_watermark = self.high_watermark.max(last.header.last_offset() + 1);
        }
    }
}

/// How many of `extents`, from the first, hold at most `bytes` together
/// (at least one, if there is one).
pub fn first_within(extents: &[Extent], bytes: u64) -> usize {
    let mut total = 0;
    let within = extents
        .iter()
        .take_while(|e| {
            total += e.length;
            total <= bytes
        })
        .count();
    within.max(extents.len().min(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::{split_and_validate, tests::encode_batch};

    const ANY: ReadLimit = ReadLimit {
        max_bytes: usize::MAX,
        at_least_one: true,
    };

    fn validated(n: i32, producer_id: i64, sequence: i32) -> (BatchHeader, Bytes) {
        split_and_validate(&encode_batch(n, producer_id, sequence))
            .unwrap()
            .remove(0)
    }

    /// A transactional batch of `n` records from `producer_id` at `epoch`.
    fn transactional(n: i32, producer_id: i64, epoch: i16, sequence: i32) -> (BatchHeader, Bytes) {
        let (header, data) = validated(n, producer_id, sequence);
        let header = BatchHeader {
            attributes: header.attributes | 0x10,
            producer_epoch: epoch,
            ..header
        };
        let data = batch::assemble(&header, &data[batch::HEADER_LEN..]);
        split_and_validate(&data).unwrap().remove(0)
    }

    #[test]
    fn transactions_hold_the_last_stable_offset_until_their_marker_is_durable() {
        let p = Partition::new(Uuid::nil(), 0, PartitionMeta::default());
        let append =
            |(h, d): (BatchHeader, Bytes)| p.append(&h, d, None, 1, TimestampType::CreateTime);
        append(validated(2, -1, -1)).unwrap();
        // Not added to the transaction by the coordinator: refused.
        assert!(matches!(
            append(transactional(2, 5, 0, 0)),
            Err(Error::InvalidTxnState(5, _))
        ));
        p.expect_transaction(5, 0);
        assert_eq!(append(transactional(2, 5, 0, 0)).unwrap().base_offset, 2);
        append(validated(2, -1, -1)).unwrap();
        let sealed = p.seal(None, u64::MAX).unwrap();
        assert_eq!(sealed.producers[&5].txn_first_offset, Some(2));
        p.apply_commit(0, Vec::new(), 6);
        let offsets = p.offsets(None);
        assert_eq!((offsets.high_watermark, offsets.last_stable), (6, 2));
        let marker = p.append_marker(5, 0, Outcome::Abort, 0, None, 1).unwrap();
        assert_eq!(marker.base_offset, 6);
        assert_eq!(
            p.offsets(None).last_stable,
            2,
            "the marker is not durable yet"
        );
        let sealed = p.seal(None, u64::MAX).unwrap();
        assert_eq!(sealed.producers[&5].txn_first_offset, None);
        let aborted = AbortedTxn {
            producer_id: 5,
            first_offset: 2,
            last_offset: 6,
        };
        assert_eq!(sealed.aborted, vec![aborted]);
        p.apply_commit(0, Vec::new(), 7);
        assert_eq!(p.offsets(None).last_stable, 7);
        assert_eq!(p.aborted_within(0, 7), vec![aborted]);
        assert!(p.aborted_within(7, 9).is_empty());
        // A retried marker appends nothing.
        let retried = p.append_marker(5, 0, Outcome::Abort, 0, None, 1).unwrap();
        assert_eq!((retried.bytes, retried.end_offset), (0, 7));
        // The coordinator fenced epoch 0 with a marker at epoch 1.
        p.expect_transaction(5, 0);
        append(transactional(1, 5, 0, 2)).unwrap();
        p.append_marker(5, 1, Outcome::Abort, 0, None, 1).unwrap();
        assert!(matches!(
            append(transactional(1, 5, 0, 3)),
            Err(Error::InvalidProducerEpoch { .. })
        ));
        assert!(matches!(
            p.append_marker(5, 0, Outcome::Commit, 0, None, 1),
            Err(Error::InvalidProducerEpoch { .. })
        ));
    }

    #[test]
    fn the_last_stable_offset_never_falls_behind_the_log_start() {
        let p = Partition::new(Uuid::nil(), 0, PartitionMeta::default());
        p.expect_transaction(5, 0);
        let (h, d) = transactional(2, 5, 0, 0);
        p.append(&h, d, None, 1, TimestampType::CreateTime).unwrap();
        let (h, d) = validated(4, -1, -1);
        p.append(&h, d, None, 1, TimestampType::CreateTime).unwrap();
        p.apply_commit(0, Vec::new(), 6);
        assert_eq!(p.offsets(None).last_stable, 0);
        // DeleteRecords (or retention) past the open transaction's start:
        // nothing after the log start is readable until it ends.
        p.advance_log_start(0, 4);
        let offsets = p.offsets(None);
        assert_eq!((offsets.log_start, offsets.last_stable), (4, 4));
        p.append_marker(5, 0, Outcome::Commit, 0, None, 1).unwrap();
        p.apply_commit(0, Vec::new(), 7);
        assert_eq!(p.offsets(None).last_stable, 7);
    }

    #[test]
    fn an_open_transaction_survives_a_restart() {
        let mut producers = std::collections::BTreeMap::new();
        producers.insert(
            9,
            ProducerSnapshot {
                epoch: 0,
                last_write_ms: 1,
                batches: Vec::new(),
                txn_first_offset: Some(3),
            },
        );
        let meta = PartitionMeta {
            extents: vec![Extent {
                base_offset: 0,
                last_offset: 9,
                ..Extent::default()
            }],
            producers,
            ..PartitionMeta::default()
        };
        let p = Partition::new(Uuid::nil(), 0, meta);
        assert_eq!(p.offsets(None).last_stable, 3);
        assert!(matches!(
            p.read(3, ANY, None, Isolation::ReadCommitted).unwrap(),
            ReadSource::Nothing
        ));
        match p.read(0, ANY, None, Isolation::ReadCommitted).unwrap() {
            ReadSource::Extent { end, .. } => assert_eq!(end, 3),
            other => panic!("expected the extent, got {other:?}"),
        }
    }

    #[test]
    fn replay_skips_batches_of_another_leadership() {
        let meta = PartitionMeta {
            leader_epoch: 2,
            ..PartitionMeta::default()
        };
        let p = Partition::new(Uuid::new_v4(), 0, meta);
        let stamped = |epoch| {
            let (_, b) = validated(3, -1, -1);
            let mut owned = b.to_vec();
            batch::set_leader_epoch(&mut owned, epoch);
            Bytes::from(owned)
        };
        assert_eq!(
            p.replay(stamped(1), 0..10, 0, 2),
            0,
            "an earlier leadership"
        );
        assert!(p.replay(stamped(2), 10..20, 0, 2) > 0);
        assert_eq!(p.next_offset(), 3);
    }

    #[test]
    fn only_the_current_leadership_serves_and_commits() {
        let p = Partition::follower(Uuid::new_v4(), 0);
        let (h, b) = validated(2, -1, -1);
        assert!(matches!(
            p.append(&h, b.clone(), None, 0, TimestampType::CreateTime),
            Err(Error::NotLeaderOrFollower)
        ));
        assert!(matches!(
            p.read(0, ANY, None, Isolation::ReadUncommitted),
            Err(Error::NotLeaderOrFollower)
        ));
        let committed = Extent {
            object: Uuid::now_v7(),
            position: 0,
            length: 10,
            base_offset: 0,
            last_offset: 9,
            max_timestamp: 0,
            crc: None,
            compacted: false,
            tombstones_due_ms: None,
            entry_list: None,
        };
        let meta = |epoch| PartitionMeta {
            leader_epoch: epoch,
            extents: vec![committed.clone()],
            ..PartitionMeta::default()
        };
        assert_eq!(p.lead(meta(1)), 0);
        assert_eq!(p.leadership(), Some(1));
        let appended = p
            .append(&h, b.clone(), None, 0, TimestampType::CreateTime)
            .unwrap();
        assert_eq!(
            appended.base_offset, 10,
            "continues after the committed data"
        );
        let sealed = p.seal(None, u64::MAX).unwrap();
        // Moved away and back meanwhile: the tail of epoch 1 is dropped...
        assert_eq!(p.lead(meta(3)), b.len() as u64);
        // ...and the epoch-1 upload's outcome no longer touches the state.
        assert_eq!(
            p.apply_commit(sealed.leader_epoch, Vec::new(), sealed.end),
            0
        );
        assert_eq!(p.resign(Some(1)), 0);
        assert_eq!(p.leadership(), Some(3));
        assert_eq!(p.next_offset(), 10);
        // Another broker's commits at epoch 2 pass the dropped append's
        // offsets: its producer must not be told it is durable.
        let longer = PartitionMeta {
            leader_epoch: 4,
            extents: vec![Extent {
                last_offset: 99,
                ..committed.clone()
            }],
            ..PartitionMeta::default()
        };
        p.lead(longer);
        assert!(matches!(
            p.is_durable(&appended, None),
            Err(Error::NotLeaderOrFollower)
        ));
        p.resign(None);
        assert_eq!(p.leadership(), None);
    }

    #[test]
    fn seals_continue_after_uploads_under_way_and_failures_hand_data_back() {
        let p = Partition::new(Uuid::new_v4(), 0, PartitionMeta::default());
        let (h, b) = validated(2, -1, -1);
        p.append(&h, b.clone(), None, 0, TimestampType::CreateTime)
            .unwrap();
        let first = p.seal(None, u64::MAX).unwrap();
        p.append(&h, b.clone(), None, 0, TimestampType::CreateTime)
            .unwrap();
        let second = p.seal(None, u64::MAX).unwrap();
        assert_eq!((first.end, second.batches[0].base_offset), (2, 2));
        assert!(p.seal(None, u64::MAX).is_none(), "everything is under way");
        // The first upload fails: the second may no longer commit, and
        // the next seal takes both batches again.
        p.unseal(first.generation);
        assert!(!p.seal_holds(second.generation));
        p.unseal(second.generation);
        let again = p.seal(None, u64::MAX).unwrap();
        assert_eq!((again.batches.len(), again.end), (2, 4));
        assert!(p.seal_holds(again.generation));
    }

    #[test]
    fn stored_extents_replace_memorys_below_both_ends() {
        let extent = |base: i64, last: i64, object: u128| Extent {
            object: Uuid::from_u128(object),
            position: 0,
            length: 10,
            base_offset: base,
            last_offset: last,
            max_timestamp: 0,
            crc: None,
            compacted: false,
            tombstones_due_ms: None,
            entry_list: None,
        };
        let in_memory = PartitionMeta {
            extents: vec![extent(0, 9, 1), extent(10, 19, 2), extent(20, 29, 3)],
            ..PartitionMeta::default()
        };
        let p = Partition::new(Uuid::new_v4(), 0, in_memory);
        // The store merged the first two and moved the log start; it was
        // read before the third extent was committed.
        let stored = PartitionMeta {
            log_start_offset: 5,
            extents: vec![extent(0, 19, 9)],
            ..PartitionMeta::default()
        };
        p.adopt_stored(0, &stored);
        assert_eq!(p.offsets(None).log_start, 5);
        assert_eq!(
            p.extents_from(0, u64::MAX),
            vec![extent(0, 19, 9), extent(20, 29, 3)]
        );
        // Another epoch's state is not taken.
        p.adopt_stored(1, &PartitionMeta::default());
        assert_eq!(p.extents_from(0, u64::MAX).len(), 2);
    }

    #[test]
    fn read_ahead_takes_what_fits_its_bytes_and_at_least_one_section() {
        let sized = |lengths: &[u64]| -> Vec<Extent> {
            lengths
                .iter()
                .map(|&length| Extent {
                    length,
                    ..Extent::default()
                })
                .collect()
        };
        assert_eq!(first_within(&sized(&[4, 4, 4]), 10), 2);
        assert_eq!(first_within(&sized(&[12, 4]), 10), 1, "one too large");
        assert_eq!(first_within(&sized(&[]), 10), 0);
        let meta = PartitionMeta {
            extents: vec![
                Extent {
                    base_offset: 0,
                    last_offset: 9,
                    length: 12,
                    ..Extent::default()
                },
                Extent {
                    base_offset: 10,
                    last_offset: 19,
                    length: 12,
                    ..Extent::default()
                },
                Extent {
                    base_offset: 20,
                    last_offset: 29,
                    length: 12,
                    ..Extent::default()
                },
            ],
            ..PartitionMeta::default()
        };
        let p = Partition::new(Uuid::new_v4(), 0, meta);
        let offsets = |from, bytes| -> Vec<i64> {
            p.extents_from(from, bytes)
                .iter()
                .map(|e| e.base_offset)
                .collect()
        };
        assert_eq!(offsets(15, 0), [10, 20], "the one holding it and the next");
        assert_eq!(offsets(0, 24), [0, 10, 20]);
        assert_eq!(offsets(30, 24), [] as [i64; 0]);
    }

    #[test]
    fn earlier_leader_epochs_end_at_the_log_end() {
        let meta = PartitionMeta {
            leader_epoch: 3,
            ..PartitionMeta::default()
        };
        let p = Partition::new(Uuid::new_v4(), 0, meta);
        let (h, b) = validated(4, -1, -1);
        p.append(&h, b.clone(), None, 0, TimestampType::CreateTime)
            .unwrap();
        // A consumer that read at epoch 1 sees no truncation.
        assert_eq!(p.end_offset_for_epoch(1), Some((1, 4)));
        assert_eq!(p.end_offset_for_epoch(3), Some((3, 4)));
        assert_eq!(p.end_offset_for_epoch(4), None);
    }

    #[test]
    fn offsets_are_assigned_and_reads_wait_for_durability() {
        let p = Partition::new(Uuid::new_v4(), 0, PartitionMeta::default());
        let (h, b) = validated(3, -1, -1);
        let a = p
            .append(&h, b.clone(), None, 0, TimestampType::CreateTime)
            .unwrap();
        let c = p
            .append(&h, b.clone(), None, 0, TimestampType::CreateTime)
            .unwrap();
        assert_eq!((a.base_offset, a.end_offset), (0, 3));
        assert_eq!((c.base_offset, c.end_offset), (3, 6));
        // Nothing durable yet in object durability: the end is out of range.
        assert!(matches!(
            p.read(0, ANY, None, Isolation::ReadUncommitted).unwrap(),
            ReadSource::Nothing
        ));
        assert!(p.read(1, ANY, None, Isolation::ReadUncommitted).is_err());
        let sealed = p.seal(None, u64::MAX).unwrap();
        assert_eq!((sealed.end, sealed.batches.len()), (6, 2));
        let extent = Extent {
            object: Uuid::now_v7(),
            position: 0,
            length: 2 * b.len() as u64,
            base_offset: 0,
            last_offset: 5,
            max_timestamp: 0,
            crc: None,
            compacted: false,
            tombstones_due_ms: None,
            entry_list: None,
        };
        assert_eq!(
            p.apply_commit(p.leader_epoch(), vec![extent.clone()], 6),
            2 * b.len() as u64
        );
        assert_eq!(p.offsets(None).high_watermark, 6);
        match p.read(4, ANY, None, Isolation::ReadUncommitted).unwrap() {
            ReadSource::Extent { extent: e, .. } => assert_eq!(e, extent),
            other => panic!("expected the extent, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn tail_reads_follow_the_wal_and_return_whole_batches() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), 1 << 20).unwrap();
        let p = Partition::new(Uuid::new_v4(), 2, PartitionMeta::default());
        let (h, b) = validated(2, -1, -1);
        let mut end = 0;
        for _ in 0..3 {
            p.append(&h, b.clone(), Some(&wal), 0, TimestampType::CreateTime)
                .unwrap();
            end = wal.end();
        }
        // Before the fsync nothing is visible.
        assert_eq!(p.offsets(Some(0)).high_watermark, 0);
        wal.subscribe().wait_for(|d| *d >= end).await.unwrap();
        let durable = Some(wal.durable());
        assert_eq!(p.offsets(durable).high_watermark, 6);
        // Offset 3 lies in the second batch; one batch fits the limit.
        let ReadSource::Tail(batches) = p
            .read(
                3,
                ReadLimit {
                    max_bytes: b.len() + 1,
                    at_least_one: true,
                },
                durable,
                Isolation::ReadUncommitted,
            )
            .unwrap()
        else {
            panic!("expected tail bytes");
        };
        let bases: Vec<i64> = batches
            .iter()
            .map(|b| BatchHeader::parse(b).unwrap().base_offset)
            .collect();
        assert_eq!(bases, vec![2]);
        // The WAL holds the rewritten batches, in offset order.
        drop(wal);
        let (_, records) = Wal::open(dir.path(), 1 << 20).unwrap();
        let bases: Vec<i64> = records
            .iter()
            .map(|r| BatchHeader::parse(&r.batch).unwrap().base_offset)
            .collect();
        assert_eq!(bases, vec![0, 2, 4]);
    }

    #[test]
    fn duplicates_get_the_original_offsets() {
        let p = Partition::new(Uuid::new_v4(), 0, PartitionMeta::default());
        let (h, b) = validated(4, 11, 0);
        let first = p
            .append(&h, b.clone(), None, 0, TimestampType::CreateTime)
            .unwrap();
        let retry = p
            .append(&h, b.clone(), None, 0, TimestampType::CreateTime)
            .unwrap();
        assert_eq!(retry.base_offset, first.base_offset);
        assert_eq!(retry.bytes, 0);
        assert_eq!(p.next_offset(), 4);
        let (gap, gap_bytes) = validated(1, 11, 9);
        assert!(matches!(
            p.append(&gap, gap_bytes.clone(), None, 0, TimestampType::CreateTime),
            Err(Error::OutOfOrderSequence { .. })
        ));
    }
}
