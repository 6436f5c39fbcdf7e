//! The partition log of a broker: appends go to a partition's in-memory tail
//! (and, in `local` durability, the WAL); the uploader seals tails into data
//! objects and commits their extents; reads come from the tail, the section
//! cache or the object store.
//!
//! Acknowledgement and visibility follow one rule: a batch is acknowledged
//! and readable once the partition's high watermark passes it. In `local`
//! durability the high watermark follows the WAL's fsyncs, in `object`
//! durability the uploader's commits.

pub mod cache;
pub mod compact;
pub mod gc;
pub mod merge;
pub mod object;
pub mod partition;
pub mod producer;
pub mod retention;
mod rewrite;
mod segment;
mod segment_file;
pub mod transactions;
mod trim;
mod uploader;
pub mod wal;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::cluster::HoldCheck;
use crate::config::{Config, Durability};
use crate::error::{Error, Result};
use crate::meta::{Extent, MetaStore, PartitionMeta};
use crate::protocol::batch::{self, BatchHeader, TimestampType};
use crate::protocol::records;
use crate::storage::Bucket;
use cache::SectionCache;
use partition::{Appended, Isolation, Offsets, Partition, ReadLimit, ReadSource};
use wal::{Wal, WalRecord};

/// At most this much is loaded ahead of each partition a fetch reads
/// (less when many are read at once: together at most a quarter of the
/// memory cache), and at least its next section.
const READ_AHEAD_BYTES: u64 = 32 * 1024 * 1024;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Settings the log needs, taken from [`Config`].
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub durability: Durability,
    pub flush_interval: Duration,
    pub flush_bytes: u64,
    /// Uploads under way at once (PUTs overlap; commits keep their order).
    pub uploads_in_flight: usize,
    pub max_unflushed_bytes: u64,
    /// The most a batch's records may inflate to when the log reads them.
    pub max_inflated_batch_bytes: usize,
    /// How long after its PUT a new object may still be committed: half
    /// `storage.gc_grace_ms`, so garbage collection, which deletes an
    /// object a grace period after it first saw it unreferenced, never
    /// deletes one a commit is about to refer to. An object older than
    /// that is left to it, and its data written again.
    pub commit_window: Duration,
    /// In a cluster, whether this broker's registration still certainly
    /// holds: a broker that may have lost it does not append, and in
    /// `local` durability (where reads may see data not in the bucket) does
    /// not read.
    pub registration: Option<HoldCheck>,
}

impl LogSettings {
    /// The log settings of a broker configuration.
    pub fn from_config(config: &Config) -> Self {
        LogSettings {
            durability: config.durability,
            flush_interval: config.flush_interval(),
            flush_bytes: config.flush.bytes,
            uploads_in_flight: config.flush.uploads_in_flight,
            max_unflushed_bytes: config.limits.max_unflushed_bytes,
            max_inflated_batch_bytes: config.limits.max_inflated_batch_bytes,
            commit_window: Duration::from_millis(config.storage.gc_grace_ms as u64 / 2),
            registration: None,
        }
    }
}

/// All partitions of this broker with their WAL, uploader state and cache.
pub struct Log {
    settings: LogSettings,
    wal: Wal,
    bucket: Bucket,
    cache: SectionCache,
    meta: Arc<dyn MetaStore>,
    partitions: RwLock<HashMap<(Uuid, i32), Arc<Partition>>>,
    /// WAL records of partitions this broker does not lead (yet): replayed
    /// if it leads them again at the epoch they were written at.
    pending_replay: std::sync::Mutex<HashMap<(Uuid, i32), Vec<WalRecord>>>,
    /// Bytes in tails, not yet committed to the object store.
    unflushed: AtomicU64,
    /// Of those, the bytes sealed into uploads under way.
    uploading: AtomicU64,
    /// Where the next upload starts sealing (round robin over partitions).
    upload_cursor: std::sync::atomic::AtomicUsize,
    flush_wanted: Notify,
    /// Woken by every append, for the idle uploader.
    data_arrived: Notify,
    space_freed: Notify,
    /// Bumped after every commit.
    commits: watch::Sender<u64>,
    /// The sealed WAL segments the uploader took in and the WAL still
    /// keeps, by start position (`local` durability).
    segments: std::sync::Mutex<std::collections::BTreeMap<u64, Arc<uploader::Segment>>>,
    /// The end of the last of them taken in.
    sealed_until: AtomicU64,
    /// In `local` durability, partitions with appends the WAL has not made
    /// durable yet, with the WAL position that will: their readers are
    /// woken once it is (see [`Log::run_reader_wakeups`]).
    unpublished: std::sync::Mutex<Vec<(u64, Arc<Partition>)>>,
}

/// What a fetch of one partition found.
#[derive(Debug, Clone)]
pub struct ReadResult {
    pub records: Option<Bytes>,
    pub offsets: Offsets,
}

impl Log {
    /// Opens the WAL and cache under `data_dir`; returns the log and the WAL
    /// records to [`Log::replay`] once partitions are added.
    pub async fn open(
        settings: LogSettings,
        config: &Config,
        meta: Arc<dyn MetaStore>,
        bucket: Bucket,
    ) -> Result<(Log, Vec<WalRecord>)> {
        let data_dir = &config.broker.data_dir;
        let (wal, records) = Wal::open(&data_dir.join("wal"), config.flush.bytes)?;
        let cache =
            SectionCache::open(&config.cache, &data_dir.join("cache"), bucket.clone()).await?;
        let (commits, _) = watch::channel(0);
        // Everything before the segments kept was sealed and committed.
        let sealed_until = AtomicU64::new(wal.kept_from());
        let log = Log {
            settings,
            wal,
            bucket,
            cache,
            meta,
            partitions: RwLock::new(HashMap::new()),
            pending_replay: std::sync::Mutex::new(HashMap::new()),
            unflushed: AtomicU64::new(0),
            uploading: AtomicU64::new(0),
            upload_cursor: std::sync::atomic::AtomicUsize::new(0),
            flush_wanted: Notify::new(),
            data_arrived: Notify::new(),
            space_freed: Notify::new(),
            commits,
            segments: std::sync::Mutex::default(),
            sealed_until,
            unpublished: std::sync::Mutex::default(),
        };
        Ok((log, records))
    }

    /// Registers a partition this broker leads, restored from its
    /// committed state.
    pub fn add_partition(&self, topic: Uuid, index: i32, meta: PartitionMeta) -> Arc<Partition> {
        self.register(Partition::new(topic, index, meta))
    }

    /// Registers a partition another broker leads (cluster mode).
    pub fn add_follower(&self, topic: Uuid, index: i32) -> Arc<Partition> {
        self.register(Partition::follower(topic, index))
    }

    fn register(&self, partition: Partition) -> Arc<Partition> {
        let partition = Arc::new(partition);
        self.partitions
            .write()
            .expect("partition map poisoned")
            .insert((partition.topic, partition.index), partition.clone());
        partition
    }

    /// Starts leading `partition` at its committed state `meta`, with what
    /// this broker's WAL holds of it beyond that at the same epoch (it led
    /// the partition before a restart, and nobody took over).
    pub fn lead(&self, partition: &Partition, meta: PartitionMeta) {
        // The records go from the kept ones to the tail under the lock the
        // uploader reads first, so its WAL trim always sees them.
        let (dropped, replayed) = {
            let mut pending = self.pending_replay.lock().expect("replay lock poisoned");
            let records = pending
                .remove(&(partition.topic, partition.index))
                .unwrap_or_default();
            partition.lead_with(meta, records, now_ms())
        };
        self.release(dropped);
        partition.wake_readers();
        if replayed > 0 {
            tracing::info!(topic = %partition.topic, partition = partition.index, bytes = replayed, "replayed uncommitted batches from the WAL");
            self.unflushed.fetch_add(replayed, Ordering::Relaxed);
            self.data_arrived.notify_one();
        }
        // Produce requests waiting on an earlier leadership's tail.
        self.wake_waiters();
    }

    /// Drops the WAL records kept for `partition`, which another broker
    /// leads now: in `local` durability, acknowledged writes this broker
    /// had not uploaded are lost (logged and counted).
    pub fn drop_replay(&self, topic: Uuid, index: i32) {
        let lost = self.take_replay(topic, index);
        if !lost.is_empty() {
            tracing::warn!(%topic, partition = index, batches = lost.len(), "another broker leads the partition: its batches not uploaded before this broker stopped are lost");
            metrics::counter!("silt_wal_batches_lost_total").increment(lost.len() as u64);
        }
    }

    fn take_replay(&self, topic: Uuid, index: i32) -> Vec<WalRecord> {
        let mut pending = self.pending_replay.lock().expect("replay lock poisoned");
        pending.remove(&(topic, index)).unwrap_or_default()
    }

    /// The WAL position of the oldest record kept for a later replay.
    fn oldest_pending_replay(&self) -> Option<u64> {
        let pending = self.pending_replay.lock().expect("replay lock poisoned");
        pending.values().flatten().map(|r| r.position.start).min()
    }

    /// Stops leading `partition` (if fenced at `epoch`: only while that is
    /// its epoch), dropping what it had not committed; produce requests
    /// waiting on it are answered NOT_LEADER_OR_FOLLOWER.
    pub fn resign(&self, partition: &Partition, epoch: Option<i32>) {
        self.release(partition.resign(epoch));
        partition.wake_readers();
        self.wake_waiters();
    }

    /// Wakes the requests waiting for durability, to look again.
    fn wake_waiters(&self) {
        self.commits.send_modify(|n| *n += 1);
        self.wal.wake_waiters();
    }

    /// Forgets a deleted topic's partitions and their unflushed data.
    pub fn remove_topic(&self, topic: Uuid) {
        let removed: Vec<Arc<Partition>> = {
            let mut map = self.partitions.write().expect("partition map poisoned");
            let keys: Vec<_> = map.keys().filter(|(t, _)| *t == topic).copied().collect();
            keys.iter().filter_map(|k| map.remove(k)).collect()
        };
        for partition in removed {
            self.release(partition.clear_tail());
            self.drop_replay(partition.topic, partition.index);
            partition.wake_readers();
        }
        self.wake_waiters();
    }

    /// Re-appends WAL records to the partitions this broker leads (skipping
    /// committed ones, deleted topics, and batches of an earlier leader
    /// epoch: another broker led the partition since); keeps those of the
    /// partitions it does not lead yet (a cluster's broker at start) for
    /// [`Log::lead`].
    pub fn replay(&self, records: Vec<WalRecord>) {
        let mut by_partition: HashMap<(Uuid, i32), Vec<WalRecord>> = HashMap::new();
        for record in records {
            by_partition
                .entry((record.topic, record.partition))
                .or_default()
                .push(record);
        }
        for ((topic, index), records) in by_partition {
            let Some(partition) = self.partition(topic, index) else {
                continue;
            };
            match partition.leadership() {
                Some(epoch) => self.replay_into(&partition, records, epoch),
                None => {
                    let mut pending = self.pending_replay.lock().expect("replay lock poisoned");
                    pending.insert((topic, index), records);
                }
            }
        }
    }

    /// Re-appends `records` (one partition's, in WAL order) written at
    /// leader epoch `epoch`.
    fn replay_into(&self, partition: &Partition, records: Vec<WalRecord>, epoch: i32) {
        let now = now_ms();
        let mut replayed = 0usize;
        for record in records {
            let bytes = partition.replay(record.batch, record.position, now, epoch);
            if bytes > 0 {
                replayed += 1;
                self.unflushed.fetch_add(bytes, Ordering::Relaxed);
                self.data_arrived.notify_one();
            }
        }
        if replayed > 0 {
            tracing::info!(
                topic = %partition.topic,
                partition = partition.index,
                batches = replayed,
                "replayed uncommitted batches from the WAL"
            );
        }
    }

    fn partition(&self, topic: Uuid, index: i32) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .expect("partition map poisoned")
            .get(&(topic, index))
            .cloned()
    }

    fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .expect("partition map poisoned")
            .values()
            .cloned()
            .collect()
    }

    /// The WAL position the high watermark follows, in `local` durability.
    fn wal_durable(&self) -> Option<u64> {
        match self.settings.durability {
            Durability::Local => Some(self.wal.durable()),
            Durability::Object => None,
        }
    }

    /// A receiver that changes whenever high watermarks may have moved.
    pub fn changes(&self) -> watch::Receiver<u64> {
        match self.settings.durability {
            Durability::Local => self.wal.subscribe(),
            Durability::Object => self.commits.subscribe(),
        }
    }

    /// Bytes accepted and not yet committed to the object store.
    pub fn unflushed_bytes(&self) -> u64 {
        self.unflushed.load(Ordering::Relaxed)
    }

    /// Bytes the WAL holds on disk (its segments not yet released).
    pub fn wal_bytes(&self) -> u64 {
        self.wal.bytes_kept()
    }

    /// Whether less than `limits.max_unflushed_bytes` awaits upload.
    pub fn has_capacity(&self) -> bool {
        self.unflushed.load(Ordering::Relaxed) < self.settings.max_unflushed_bytes
    }

    /// Waits until [`Log::has_capacity`]. Cancel-safe.
    pub async fn wait_for_capacity(&self) {
        loop {
            let freed = self.space_freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.has_capacity() {
                return;
            }
            self.flush_wanted.notify_one();
            freed.await;
        }
    }

    /// `NotLeaderOrFollower` once this broker's cluster registration may
    /// have ended (the controller may have given its partitions away).
    fn check_registration(&self) -> Result<()> {
        match &self.settings.registration {
            Some(check) if !check.is_held() => Err(Error::NotLeaderOrFollower),
            _ => Ok(()),
        }
    }

    /// Appends one validated batch to `partition`.
    pub fn append(
        &self,
        partition: &Arc<Partition>,
        header: &BatchHeader,
        data: Bytes,
        timestamps: TimestampType,
    ) -> Result<Appended> {
        self.check_registration()?;
        let appended = partition.append(header, data, self.wal(), now_ms(), timestamps)?;
        self.appended(partition, appended);
        Ok(appended)
    }

    /// Appends the marker ending `producer_id`'s transaction to `partition`
    /// (see [`Partition::append_marker`]).
    pub fn append_marker(
        &self,
        partition: &Arc<Partition>,
        producer_id: i64,
        epoch: i16,
        outcome: crate::protocol::control::Outcome,
        coordinator_epoch: i32,
    ) -> Result<Appended> {
        self.check_registration()?;
        let appended = partition.append_marker(
            producer_id,
            epoch,
            outcome,
            coordinator_epoch,
            self.wal(),
            now_ms(),
        )?;
        self.appended(partition, appended);
        Ok(appended)
    }

    /// The WAL appends go to (in `local` durability).
    fn wal(&self) -> Option<&Wal> {
        match self.settings.durability {
            Durability::Local => Some(&self.wal),
            Durability::Object => None,
        }
    }

    /// Accounts for an append: wakes readers once it is durable, and the
    /// uploader when there is data to flush.
    fn appended(&self, partition: &Arc<Partition>, appended: Appended) {
        // Readable once the WAL makes it durable (in `object` durability
        // once committed: the uploader wakes its readers then).
        if self.settings.durability == Durability::Local && appended.bytes > 0 {
            self.unpublished
                .lock()
                .expect("unpublished poisoned")
                .push((appended.wal_end, partition.clone()));
            // Durable already, perhaps before the wake-up task looked.
            if self.wal.durable() >= appended.wal_end {
                partition.wake_readers();
            }
        }
        let before = self.unflushed.fetch_add(appended.bytes, Ordering::Relaxed);
        let unsealed = before.saturating_sub(self.uploading.load(Ordering::Relaxed));
        if unsealed == 0 && appended.bytes > 0 {
            self.data_arrived.notify_one();
        }
        if unsealed + appended.bytes >= self.settings.flush_bytes {
            self.flush_wanted.notify_one();
        }
    }

    /// Waits until `appended` is durable in `partition`, or fails: with
    /// `RequestTimedOut` at `deadline`, NOT_LEADER_OR_FOLLOWER once the
    /// leadership it was appended in ended.
    pub async fn wait_durable(
        &self,
        partition: &Partition,
        appended: &Appended,
        deadline: tokio::time::Instant,
    ) -> Result<()> {
        let mut changes = self.changes();
        let wait = async {
            loop {
                if partition.is_durable(appended, self.wal_durable())? {
                    return Ok(());
                }
                if let Some(failure) = self.wal.failure() {
                    return Err(Error::WalFailed(failure));
                }
                if changes.changed().await.is_err() {
                    return Err(Error::ShuttingDown);
                }
            }
        };
        tokio::time::timeout_at(deadline, wait)
            .await
            .unwrap_or(Err(Error::RequestTimedOut))
    }

    /// In `local` durability, wakes the readers of each partition whose
    /// appends the WAL has just made durable (one wake-up per partition
    /// with new data, not one per fetch and sync), until `shutdown`. The
    /// broker's one reader wake-up task.
    pub async fn run_reader_wakeups(self: Arc<Self>, shutdown: CancellationToken) {
        let mut durable = self.wal.subscribe();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = durable.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            let up_to = *durable.borrow_and_update();
            let readable: Vec<Arc<Partition>> = {
                let mut unpublished = self.unpublished.lock().expect("unpublished poisoned");
                let (now, later) = std::mem::take(&mut *unpublished)
                    .into_iter()
                    .partition(|(end, _)| *end <= up_to);
                *unpublished = later;
                now.into_iter().map(|(_, partition)| partition).collect()
            };
            let mut woken = HashSet::new();
            for partition in readable {
                if woken.insert(Arc::as_ptr(&partition)) {
                    partition.wake_readers();
                }
            }
        }
    }

    /// The partition's offsets as clients see them.
    pub fn offsets(&self, partition: &Partition) -> Offsets {
        partition.offsets(self.wal_durable())
    }

    /// Reads whole batches from `offset` within `limit`: from the section
    /// or tail holding it, and on through the following sections already in
    /// memory and the tail while the limit leaves room, so a read does not
    /// stop short at every section boundary (and `min_bytes` of a fetch can
    /// be reached).
    pub async fn read(
        &self,
        partition: &Partition,
        offset: i64,
        limit: ReadLimit,
        isolation: Isolation,
    ) -> Result<ReadResult> {
        // Committed data never changes: serving it is safe whoever leads.
        let suspended = self.check_registration().is_err();
        if suspended && self.settings.durability == Durability::Local {
            return Err(Error::NotLeaderOrFollower);
        }
        let mut parts: Vec<Bytes> = Vec::new();
        let mut used = 0;
        let mut next = offset;
        loop {
            let remaining = ReadLimit {
                max_bytes: limit.max_bytes.saturating_sub(used),
                at_least_one: limit.at_least_one && used == 0,
            };
            // Past the first part, a failure ends the read with what it
            // has; the next read from there reports it.
            let source = match partition.read(next, remaining, self.wal_durable(), isolation) {
                Ok(source) => source,
                // Another broker may have appended past this one's end:
                // not out of range (a consumer would reset), just not here.
                Err(Error::OffsetOutOfRange { offset, end, .. })
                    if suspended && offset > end && parts.is_empty() =>
                {
                    return Err(Error::NotLeaderOrFollower);
                }
                Err(e) if parts.is_empty() => return Err(e),
                Err(_) => break,
            };
            match source {
                ReadSource::Nothing => break,
                ReadSource::Tail(batches) => {
                    parts.extend(batches);
                    break;
                }
                ReadSource::Extent { extent, end } => {
                    // Past the first section, only what is in memory: a
                    // read never waits on the object store for more.
                    let section = if parts.is_empty() {
                        self.cache.get(&extent).await?
                    } else {
                        match self.cache.get_in_memory(&extent) {
                            Some(section) => section,
                            None => break,
                        }
                    };
                    let (batches, whole) = batches_from(&section, next, end, remaining);
                    if batches.is_empty() && whole {
                        // Compaction left nothing here from `next` on.
                        next = extent.last_offset + 1;
                        continue;
                    }
                    if batches.is_empty() {
                        break;
                    }
                    used += batches.len();
                    parts.push(batches);
                    if !whole {
                        break;
                    }
                    next = extent.last_offset + 1;
                }
            }
        }
        let records = match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => Some(Bytes::from(parts.concat())),
        };
        Ok(ReadResult {
            records,
            offsets: self.offsets(partition),
        })
    }

    /// Loads the sections reads at these (partition, offset) positions
    /// need into the cache, reading each object once for all partitions,
    /// and reads ahead in the background. A partition reads ahead once less
    /// than half its budget (see [`READ_AHEAD_BYTES`]) of the sections
    /// after its current one is cached or loading: then the objects holding
    /// its next budget's worth, with every section there these partitions
    /// will reach soon (so one GET reads several sections of a merged
    /// object, and a partition a little behind the others does not read a
    /// shared object again later). Errors are left for the reads to report.
    pub async fn prefetch(&self, positions: impl IntoIterator<Item = (&Partition, i64)>) {
        let positions: Vec<(&Partition, i64)> = positions.into_iter().collect();
        let readers = positions.len().max(1) as u64;
        let budget = READ_AHEAD_BYTES.min(self.cache.memory_bytes() / 4 / readers);
        let (mut now, mut soon) = (Vec::new(), Vec::new());
        let mut ahead_objects = HashSet::new();
        for (partition, offset) in positions {
            let mut extents = partition.extents_from(offset, 2 * budget).into_iter();
            now.extend(extents.next());
            let soon_here: Vec<Extent> = extents.collect();
            let next = &soon_here[..partition::first_within(&soon_here, budget)];
            let ready: u64 = next
                .iter()
                .take_while(|e| self.cache.holds(e))
                .map(|e| e.length)
                .sum();
            if ready < budget / 2 {
                ahead_objects.extend(next.iter().map(|e| e.object));
                soon.extend(soon_here);
            }
        }
        soon.retain(|e| ahead_objects.contains(&e.object));
        self.cache.read_ahead(&soon);
        self.cache.load(&now).await;
    }

    /// The offset and timestamp of the first record with a timestamp at or
    /// after `timestamp`, if any.
    pub async fn offset_for_timestamp(
        &self,
        partition: &Partition,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>> {
        let (extents, tail) = partition.timestamp_index(self.wal_durable());
        if let Some(extent) = extents.iter().find(|e| e.max_timestamp >= timestamp) {
            let section = self.cache.get(extent).await?;
            for (header, range) in batch::iter_batches(&section) {
                if header.max_timestamp >= timestamp {
                    return self.first_record_at_or_after(&section.slice(range), timestamp);
                }
            }
        }
        for (header, data) in tail {
            if header.max_timestamp >= timestamp {
                return self.first_record_at_or_after(&data, timestamp);
            }
        }
        Ok(None)
    }

    /// The offset and timestamp of the record with the largest timestamp.
    pub async fn max_timestamp_offset(&self, partition: &Partition) -> Result<Option<(i64, i64)>> {
        let (extents, tail) = partition.timestamp_index(self.wal_durable());
        let best_extent = extents.iter().max_by_key(|e| e.max_timestamp);
        let best_tail = tail.iter().max_by_key(|(h, _)| h.max_timestamp);
        let extent_ts = best_extent.map_or(i64::MIN, |e| e.max_timestamp);
        match best_tail {
            Some((header, data)) if header.max_timestamp >= extent_ts => {
                self.first_record_at_or_after(data, header.max_timestamp)
            }
            _ => match best_extent {
                Some(extent) => {
                    let section = self.cache.get(extent).await?;
                    let best = batch::iter_batches(&section).max_by_key(|(h, _)| h.max_timestamp);
                    match best {
                        Some((header, range)) => self
                            .first_record_at_or_after(&section.slice(range), header.max_timestamp),
                        None => Ok(None),
                    }
                }
                None => Ok(None),
            },
        }
    }

    /// The offset and timestamp of the first record of `batch` with a
    /// timestamp at or after `timestamp`. A batch whose records inflate
    /// beyond `max_inflated_batch_bytes` answers with its first offset.
    fn first_record_at_or_after(
        &self,
        batch: &Bytes,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>> {
        let header = BatchHeader::parse(batch)
            .map_err(|e| Error::CorruptMessage(format!("stored batch: {e}")))?;
        let limit = self.settings.max_inflated_batch_bytes;
        let records = match records::records_of(batch, &header, limit) {
            Ok(records) => records,
            Err(records::RecordsError::TooLarge { .. }) => {
                tracing::warn!(
                    offset = header.base_offset,
                    limit,
                    "a stored batch inflates beyond limits.max_inflated_batch_bytes: its first offset answers the timestamp lookup"
                );
                return Ok(Some((header.base_offset, header.max_timestamp)));
            }
            Err(e) => return Err(Error::CorruptMessage(format!("stored batch: {e}"))),
        };
        for record in records::walk(&records.bytes) {
            let record = record.map_err(|e| Error::CorruptMessage(format!("stored batch: {e}")))?;
            let record_ts = if header.is_log_append_time() {
                header.max_timestamp
            } else {
                header.base_timestamp + record.timestamp_delta
            };
            if record_ts >= timestamp {
                let offset = header.base_offset + i64::from(record.offset_delta);
                return Ok(Some((offset, record_ts)));
            }
        }
        Ok(None)
    }

    fn release(&self, bytes: u64) {
        if bytes > 0 {
            self.unflushed.fetch_sub(bytes, Ordering::Relaxed);
            self.space_freed.notify_waiters();
        }
    }

    /// Stops accepting WAL writes and closes the cache (after the final
    /// upload, see [`Log::run_uploader`]).
    pub async fn close(&self) {
        self.wal.close();
        if let Err(e) = self.cache.close().await {
            tracing::warn!(error = %e, "closing the section cache failed");
        }
    }
}

/// Whether an object written at `put_done` is too old to be committed
/// within `window` (see [`LogSettings::commit_window`]).
fn past_commit_window(put_done: std::time::Instant, window: Duration) -> bool {
    put_done.elapsed() >= window
}

/// The error of a blocking task that did not finish: its panic goes on
/// (a bug), a task cancelled means the runtime is shutting down.
fn blocking_failed(e: tokio::task::JoinError) -> Error {
    match e.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(_) => Error::ShuttingDown,
    }
}

/// Whole batches of `section` from the one holding `offset`, within `limit`
/// and before offset `end`.
fn batches_from(section: &Bytes, offset: i64, end: i64, limit: ReadLimit) -> (Bytes, bool) {
    let mut batches = batch::iter_batches(section)
        .skip_while(|(h, _)| h.last_offset() < offset)
        .take_while(|(h, _)| h.base_offset < end);
    let Some((_, first)) = batches.next() else {
        return (Bytes::new(), true);
    };
    if !limit.fits(0, first.len()) {
        return (Bytes::new(), false);
    }
    let mut end = first.end;
    for (_, range) in batches {
        if !limit.fits(end - first.start, range.len()) {
            return (section.slice(first.start..end), false);
        }
        end = range.end;
    }
    (section.slice(first.start..end), true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::tests::encode_batch;

    /// Three 2-record batches at offsets 10, 12 and 14, as stored.
    fn section() -> (Bytes, usize) {
        let mut data = bytes::BytesMut::new();
        let mut len = 0;
        for base in [10, 12, 14] {
            let mut b = bytes::BytesMut::from(&encode_batch(2, -1, -1)[..]);
            batch::set_base_offset(&mut b, base);
            len = b.len();
            data.extend_from_slice(&b);
        }
        (data.freeze(), len)
    }

    fn bases(bytes: &Bytes) -> Vec<i64> {
        batch::iter_batches(bytes)
            .map(|(h, _)| h.base_offset)
            .collect()
    }

    #[test]
    fn section_reads_start_at_the_batch_holding_the_offset() {
        let (section, len) = section();
        let all = ReadLimit {
            max_bytes: usize::MAX,
            at_least_one: true,
        };
        let read = |offset, limit| {
            let (batches, whole) = batches_from(&section, offset, i64::MAX, limit);
            (bases(&batches), whole)
        };
        assert_eq!(read(10, all), (vec![10, 12, 14], true));
        assert_eq!(read(13, all), (vec![12, 14], true));
        assert_eq!(read(16, all), (vec![], true));
        let two = ReadLimit {
            max_bytes: 2 * len,
            at_least_one: false,
        };
        assert_eq!(read(10, two), (vec![10, 12], false));
        assert_eq!(read(12, two), (vec![12, 14], true));
        let tiny = ReadLimit {
            max_bytes: 1,
            at_least_one: true,
        };
        assert_eq!(read(12, tiny), (vec![12], false));
        let none = ReadLimit {
            at_least_one: false,
            ..tiny
        };
        assert_eq!(read(12, none), (vec![], false));
    }
}
