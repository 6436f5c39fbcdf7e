//! The uploader: turns the partitions' tails into data objects (paced by
//! `flush.interval` and `flush.bytes`), commits their extents
//! (epoch-guarded) to the metadata store, and only then drops the tails,
//! fills the cache and trims the WAL.
//!
//! In `object` durability an upload seals the tails into one new
//! multi-partition object and PUTs it create-only. In `local` durability
//! the data is in the WAL already: an upload publishes the sealed WAL
//! segments holding it as they are (see [`super::segment`]), so each byte
//! is written once; the WAL seals a segment when it is full, or when a
//! flush interval passed with data in it.
//!
//! Up to `flush.uploads_in_flight` uploads overlap, so a slow PUT neither
//! holds back the data that arrives meanwhile nor caps the throughput at
//! one object per PUT latency; their commits happen one at a time, in the
//! order they were sealed, so each partition's extents always continue
//! the committed ones. An upload that fails hands its data back (see
//! [`Partition::unseal`]) for the next one.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Log;
use super::object::ObjectBuilder;
use super::partition::{Partition, Sealed};
use super::segment::EntryList;
use super::wal::SealedSegment;
use crate::config::Durability;
use crate::error::{Error, Result};
use crate::meta::{CommitOutcome, Extent, PartitionCommit};

/// One upload on its way to the object store.
struct Upload {
    /// The data object written (the newest segment's, when several).
    id: Uuid,
    payload: Payload,
    partitions: Vec<SealedPartition>,
    /// Tail bytes sealed into it (counted in `Log::uploading`).
    sealed_bytes: u64,
    started: std::time::Instant,
}

/// What an upload writes.
#[derive(Clone)]
enum Payload {
    /// A data object built from the tails (`object` durability).
    Object(Bytes),
    /// Sealed WAL segments as they are (`local` durability); one already
    /// published is not written again.
    Segments(Vec<Arc<Segment>>),
}

/// A partition's batches in an upload, and the extents they make.
struct SealedPartition {
    partition: Arc<Partition>,
    sealed: Sealed,
    /// Each extent with its batches back to back, for the cache once
    /// committed.
    extents: Vec<(Extent, Bytes)>,
}

/// A sealed WAL segment the uploader knows, until the WAL deletes it.
pub(super) struct Segment {
    positions: Range<u64>,
    path: PathBuf,
    lists: HashMap<(Uuid, i32), EntryList>,
    publication: Mutex<Publication>,
}

/// Under which object id a segment is (to be) published, and when it was.
struct Publication {
    id: Uuid,
    /// The bytes as written, until published (none to keep in a local
    /// directory, where publishing is a hard link).
    chunks: Vec<Bytes>,
    published: Option<std::time::Instant>,
}

impl Segment {
    fn id(&self) -> Uuid {
        self.publication.lock().expect("segment lock poisoned").id
    }

    /// Publishes again under a new id: the object under the old one
    /// waited past the commit window, and garbage collection may delete it.
    fn retire(&self) {
        let mut publication = self.publication.lock().expect("segment lock poisoned");
        if publication.published.is_some() {
            publication.id = Uuid::now_v7();
            publication.published = None;
        }
    }
}

/// An upload whose PUT runs in its own task.
struct UnderWay {
    upload: Upload,
    /// The PUT; when it completed (for segments published earlier, when
    /// the first of them was).
    put: JoinHandle<Result<std::time::Instant>>,
}

impl Log {
    /// Uploads until `shutdown`, then commits the uploads under way and
    /// uploads everything left. The broker's one uploader task. Pacing: an
    /// upload starts as soon as data is buffered, but at most once per
    /// `flush.interval` unless `flush.bytes` are waiting; so an idle broker
    /// uploads nothing, a lightly loaded one acknowledges after about one
    /// PUT, and a busy one uploads once per interval or per `flush.bytes`.
    pub async fn run_uploader(self: Arc<Self>, shutdown: CancellationToken) {
        let interval = self.settings.flush_interval;
        let local = self.settings.durability == Durability::Local;
        let mut last_start = Instant::now()
            .checked_sub(interval)
            .unwrap_or_else(Instant::now);
        let mut under_way: VecDeque<UnderWay> = VecDeque::new();
        let mut changes = self.changes();
        // Nothing could be sealed last time: wait for a change before
        // trying again.
        let mut stalled = false;
        // After a failed upload, the next one waits an interval.
        let mut retry_at = Instant::now();
        loop {
            let room = under_way.len() < self.settings.uploads_in_flight;
            tokio::select! {
                () = shutdown.cancelled() => break,
                put = async { (&mut under_way.front_mut().expect("not empty").put).await },
                    if !under_way.is_empty() =>
                {
                    let done = under_way.pop_front().expect("not empty");
                    if !self.finish_logged(done.upload, put).await {
                        retry_at = Instant::now() + interval;
                    }
                }
                () = self.upload_due(last_start, retry_at, stalled, &mut changes), if room && !local => {
                    last_start = Instant::now();
                    let upload = self.seal_upload();
                    stalled = upload.is_none();
                    if let Some(upload) = upload {
                        under_way.push_back(self.start_put(upload));
                    }
                }
                bound = self.segments_due(retry_at), if room && local => {
                    if let Some(upload) = self.segment_upload(bound) {
                        under_way.push_back(self.start_put(upload));
                    }
                }
            }
        }
        for done in under_way {
            let put = done.put.await;
            self.finish_logged(done.upload, put).await;
        }
        if let Err(e) = self.flush_all().await {
            tracing::error!(error = %e, "final upload failed; the WAL keeps the data for the next start");
        }
    }

    /// Starts writing `upload` in a task of its own.
    fn start_put(self: &Arc<Self>, upload: Upload) -> UnderWay {
        let (log, payload, id) = (self.clone(), upload.payload.clone(), upload.id);
        let put = tokio::spawn(async move { log.write(id, &payload).await });
        UnderWay { upload, put }
    }

    /// Writes an upload's payload; when it was written.
    async fn write(&self, id: Uuid, payload: &Payload) -> Result<std::time::Instant> {
        match payload {
            Payload::Object(object) => {
                self.bucket.put_data_object(id, object.clone()).await?;
                Ok(std::time::Instant::now())
            }
            Payload::Segments(segments) => {
                let mut first = std::time::Instant::now();
                for segment in segments {
                    first = first.min(self.publish(segment).await?);
                }
                Ok(first)
            }
        }
    }

    /// Makes `segment` a data object, unless it is one; when it became one.
    async fn publish(&self, segment: &Segment) -> Result<std::time::Instant> {
        let (id, chunks) = {
            let publication = segment.publication.lock().expect("segment lock poisoned");
            if let Some(published) = publication.published {
                return Ok(published);
            }
            (publication.id, publication.chunks.clone())
        };
        self.bucket.put_data_file(id, &segment.path, chunks).await?;
        crate::failpoint::hit("upload.after_publish");
        let now = std::time::Instant::now();
        let mut publication = segment.publication.lock().expect("segment lock poisoned");
        if publication.id == id {
            publication.published = Some(now);
            publication.chunks = Vec::new();
        }
        Ok(now)
    }

    /// Waits until an upload should start: something is buffered and not
    /// sealed yet, not before `retry_at`, and `flush.bytes` of it are
    /// waiting or `flush.interval` has passed since `last_start`.
    /// Cancel-safe.
    async fn upload_due(
        &self,
        last_start: Instant,
        retry_at: Instant,
        stalled: bool,
        changes: &mut watch::Receiver<u64>,
    ) {
        let interval = self.settings.flush_interval;
        tokio::time::sleep_until(retry_at).await;
        if stalled {
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep(interval) => {}
            }
        }
        loop {
            let arrived = self.data_arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if self.unsealed() > 0 {
                break;
            }
            arrived.await;
        }
        if self.unsealed() < self.settings.flush_bytes {
            tokio::select! {
                () = tokio::time::sleep_until(last_start + interval) => {}
                () = self.flush_wanted.notified() => {}
            }
        }
    }

    /// In `local` durability: waits, not before `retry_at`, for the WAL to
    /// seal a segment (asking it to once `flush.interval` passed or room
    /// is short), or for data in segments sealed earlier (replayed, or
    /// handed back by a failed upload); the WAL position below which
    /// everything is sealed. Cancel-safe.
    async fn segments_due(&self, retry_at: Instant) -> u64 {
        tokio::time::sleep_until(retry_at).await;
        loop {
            let mut sealed = self.wal.sealed_segments().lock().await;
            tokio::select! {
                segment = sealed.recv() => match segment {
                    Some(segment) => return self.take_in(segment),
                    None => std::future::pending().await,
                },
                () = tokio::time::sleep(self.settings.flush_interval) => {}
                () = self.flush_wanted.notified() => {}
            }
            drop(sealed);
            if !self.wal.seal_active() && self.unsealed() > 0 {
                return self.sealed_until();
            }
        }
    }

    /// Takes in a segment the WAL sealed; the position it ends at.
    fn take_in(&self, sealed: SealedSegment) -> u64 {
        let end = sealed.positions.end;
        let chunks = if self.bucket.is_local() {
            Vec::new()
        } else {
            sealed.chunks
        };
        let segment = Segment {
            positions: sealed.positions,
            path: sealed.path,
            lists: sealed.index.lists,
            publication: Mutex::new(Publication {
                id: sealed.index.id,
                chunks,
                published: None,
            }),
        };
        self.segments
            .lock()
            .expect("segment map poisoned")
            .insert(segment.positions.start, Arc::new(segment));
        self.sealed_until.fetch_max(end, Ordering::Relaxed);
        end
    }

    /// The end of the last segment taken in.
    fn sealed_until(&self) -> u64 {
        self.sealed_until.load(Ordering::Relaxed)
    }

    /// Uploads everything appended so far (once the WAL has it durable).
    pub async fn flush_all(&self) -> Result<()> {
        let mut durable = self.wal.subscribe();
        let end = self.wal.end();
        if durable.wait_for(|d| *d >= end).await.is_err() {
            tracing::warn!("the WAL closed before everything appended was durable");
        }
        if self.settings.durability == Durability::Local {
            // Everything up to `end` is in a segment sealed, or sealed
            // now, which the WAL hands over once its index is synced.
            self.wal.seal_active();
            let mut sealed = self.wal.sealed_segments().lock().await;
            while self.sealed_until() < end {
                tokio::select! {
                    segment = sealed.recv() => match segment {
                        Some(segment) => {
                            self.take_in(segment);
                        }
                        None => break,
                    },
                    _ = durable.changed() => {}
                }
                if let Some(failure) = self.wal.failure() {
                    return Err(Error::WalFailed(failure));
                }
            }
        }
        loop {
            let upload = match self.settings.durability {
                Durability::Local => self.segment_upload(self.sealed_until()),
                Durability::Object => self.seal_upload(),
            };
            let Some(upload) = upload else { break };
            let put = self.write(upload.id, &upload.payload).await;
            if !self.finish(upload, put).await? {
                break;
            }
        }
        Ok(())
    }

    /// Bytes buffered and not yet sealed into an upload.
    fn unsealed(&self) -> u64 {
        let unflushed = self.unflushed.load(Ordering::Relaxed);
        unflushed.saturating_sub(self.uploading.load(Ordering::Relaxed))
    }

    /// Seals up to `flush.bytes` of the partitions' unsealed data into one
    /// object (`object` durability); `None` if there is nothing to seal.
    fn seal_upload(&self) -> Option<Upload> {
        let mut partitions = self.all_partitions();
        partitions.sort_by_key(|p| (p.topic, p.index));
        // Start where the last upload stopped, so one busy partition cannot
        // take every upload's budget and starve the others.
        let start = self.upload_cursor.load(Ordering::Relaxed) % partitions.len().max(1);
        partitions.rotate_left(start);
        let partition_count = partitions.len();
        let mut sealed_bytes = 0;
        let mut sealed = Vec::new();
        for partition in partitions {
            let budget = self.settings.flush_bytes.saturating_sub(sealed_bytes);
            if budget == 0 {
                break;
            }
            if let Some(s) = partition.seal(None, budget) {
                sealed_bytes += s.batches.iter().map(|b| b.data.len() as u64).sum::<u64>();
                sealed.push((partition, s));
            }
        }
        if sealed.is_empty() {
            return None;
        }
        self.upload_cursor
            .store((start + sealed.len()) % partition_count, Ordering::Relaxed);
        self.uploading.fetch_add(sealed_bytes, Ordering::Relaxed);
        let mut builder = ObjectBuilder::with_capacity(sealed_bytes as usize);
        for (partition, s) in &sealed {
            builder.add_partition(partition.topic, partition.index, &s.batches);
        }
        let (object, sections) = builder.finish();
        let id = Uuid::now_v7();
        let partitions = sealed
            .into_iter()
            .map(|(partition, sealed)| {
                let extents = sections
                    .iter()
                    .filter(|sec| sec.topic == partition.topic && sec.partition == partition.index)
                    .map(|sec| {
                        let range = sec.position as usize..(sec.position + sec.length) as usize;
                        (sec.extent_in(id), object.slice(range))
                    })
                    .collect();
                SealedPartition {
                    partition,
                    sealed,
                    extents,
                }
            })
            .collect();
        Some(Upload {
            id,
            payload: Payload::Object(object),
            partitions,
            sealed_bytes,
            started: std::time::Instant::now(),
        })
    }

    /// Seals the partitions' batches in WAL segments ending by `bound`
    /// (`local` durability) into an upload of those segments; `None` if
    /// there is nothing to seal.
    fn segment_upload(&self, bound: u64) -> Option<Upload> {
        let segments = self.segments.lock().expect("segment map poisoned").clone();
        let mut used: BTreeMap<u64, Arc<Segment>> = BTreeMap::new();
        let mut partitions = Vec::new();
        let mut sealed_bytes = 0;
        for partition in self.all_partitions() {
            let Some(sealed) = partition.seal(Some(bound), u64::MAX) else {
                continue;
            };
            let Some(extents) = segment_extents(&segments, &partition, &sealed, &mut used) else {
                tracing::error!(topic = %partition.topic, partition = partition.index, "batches sealed outside the WAL segments known: left for the next upload");
                partition.unseal(sealed.generation);
                continue;
            };
            sealed_bytes += sealed
                .batches
                .iter()
                .map(|b| b.data.len() as u64)
                .sum::<u64>();
            partitions.push(SealedPartition {
                partition,
                sealed,
                extents,
            });
        }
        let newest = used.values().next_back()?.id();
        self.uploading.fetch_add(sealed_bytes, Ordering::Relaxed);
        Some(Upload {
            id: newest,
            payload: Payload::Segments(used.into_values().collect()),
            partitions,
            sealed_bytes,
            started: std::time::Instant::now(),
        })
    }

    /// [`Log::finish`] for an upload whose PUT ran in a task; a failure is
    /// logged (the data waits for the next upload). Whether it succeeded.
    async fn finish_logged(
        &self,
        upload: Upload,
        put: std::result::Result<Result<std::time::Instant>, JoinError>,
    ) -> bool {
        let put = put.unwrap_or_else(|e| Err(Error::Io(e.into())));
        match self.finish(upload, put).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "upload failed; retrying after a flush interval");
                false
            }
        }
    }

    /// Completes an upload whose PUT ended with `put` (when it completed):
    /// commits it, or hands its data back to the next upload (also when
    /// its object waited past the commit window, behind earlier uploads).
    /// Whether anything committed.
    async fn finish(&self, upload: Upload, put: Result<std::time::Instant>) -> Result<bool> {
        let window = self.settings.commit_window;
        let put = put.and_then(|done| {
            if super::past_commit_window(done, window) {
                tracing::warn!(object = %upload.id, "the upload's object waited past the commit window behind earlier uploads: its data goes into the next upload, garbage collection deletes the object");
                if let Payload::Segments(segments) = &upload.payload {
                    segments.iter().for_each(|s| s.retire());
                }
                return Err(Error::RequestTimedOut);
            }
            Ok(())
        });
        let outcome = match put {
            Ok(()) => self.commit(&upload).await,
            Err(e) => {
                for p in &upload.partitions {
                    p.partition.unseal(p.sealed.generation);
                }
                Err(e)
            }
        };
        self.uploading
            .fetch_sub(upload.sealed_bytes, Ordering::Relaxed);
        outcome
    }

    /// Commits the extents of an upload whose object is written, for the
    /// partitions whose earlier uploads did not fail meanwhile; applies
    /// each partition's outcome and trims the WAL. Whether anything
    /// committed.
    async fn commit(&self, upload: &Upload) -> Result<bool> {
        let put_done = upload.started.elapsed();
        let pending: Vec<&SealedPartition> = upload
            .partitions
            .iter()
            .filter(|p| p.partition.seal_holds(p.sealed.generation))
            .collect();
        if pending.is_empty() {
            return Ok(false);
        }
        let commits: Vec<PartitionCommit> = pending
            .iter()
            .map(|p| PartitionCommit {
                topic: p.partition.topic,
                partition: p.partition.index,
                leader_epoch: p.sealed.leader_epoch,
                extents: p.extents.iter().map(|(e, _)| e.clone()).collect(),
                producers: p.sealed.producers.clone(),
                aborted: p.sealed.aborted.clone(),
            })
            .collect();
        let outcomes = match self.meta.commit(commits).await {
            Ok(outcomes) => outcomes,
            Err(e) => {
                for p in pending {
                    p.partition.unseal(p.sealed.generation);
                }
                return Err(e);
            }
        };
        metrics::counter!("silt_uploads_total").increment(1);
        metrics::histogram!("silt_upload_seconds").record(upload.started.elapsed().as_secs_f64());
        let progressed = outcomes.contains(&CommitOutcome::Committed);
        tracing::debug!(
            object = %upload.id,
            bytes = upload.sealed_bytes,
            partitions = pending.len(),
            put_ms = put_done.as_millis() as u64,
            commit_ms = (upload.started.elapsed() - put_done).as_millis() as u64,
            "uploaded"
        );
        for (p, outcome) in pending.into_iter().zip(outcomes) {
            let (partition, s) = (&p.partition, &p.sealed);
            match outcome {
                CommitOutcome::Committed => {
                    for (extent, bytes) in &p.extents {
                        self.cache.insert(extent, bytes.clone());
                    }
                    let extents = p.extents.iter().map(|(e, _)| e.clone()).collect();
                    self.release(partition.apply_commit(s.leader_epoch, extents, s.end));
                    // In `object` durability the new data is readable now.
                    partition.wake_readers();
                }
                CommitOutcome::Gone => {}
                CommitOutcome::Failed => {
                    self.adopt_if_committed(partition, s.leader_epoch).await;
                    partition.unseal(s.generation);
                    partition.wake_readers();
                }
                CommitOutcome::Fenced => {
                    tracing::warn!(
                        topic = %partition.topic,
                        partition = partition.index,
                        "extent commit fenced: another broker leads this partition; stepping down"
                    );
                    self.resign(partition, Some(s.leader_epoch));
                }
            }
        }
        self.commits.send_modify(|n| *n += 1);
        self.trim_wal()?;
        Ok(progressed)
    }

    /// Releases the WAL segments no tail and no kept record needs.
    fn trim_wal(&self) -> Result<()> {
        // Read before looking at the tails: every entry appended later
        // starts after it.
        let trim_limit = self.wal.durable();
        // Kept records first: one taking over moves them into its tail.
        let pending = self.oldest_pending_replay();
        let oldest_needed = self
            .all_partitions()
            .iter()
            .filter_map(|p| p.oldest_wal_position())
            .chain(pending)
            .min()
            .map_or(trim_limit, |oldest| oldest.min(trim_limit));
        self.segments
            .lock()
            .expect("segment map poisoned")
            .retain(|_, s| s.positions.end > oldest_needed);
        self.wal.trim(oldest_needed)
    }

    /// After a commit reported failed: if it was applied all the same (its
    /// answer was lost), takes the stored extents, so the tail is not
    /// uploaded again at offsets the store has already.
    async fn adopt_if_committed(&self, partition: &Partition, epoch: i32) {
        let Ok(stored) = self.meta.partition(partition.topic, partition.index).await else {
            return;
        };
        let ours = partition.committed_end();
        let end = stored.committed_end();
        if stored.leader_epoch != epoch || end <= ours {
            return;
        }
        tracing::info!(
            topic = %partition.topic,
            partition = partition.index,
            end,
            "a commit reported failed was applied; taking the stored extents"
        );
        let extents = stored
            .extents
            .into_iter()
            .filter(|e| e.base_offset >= ours)
            .collect();
        self.release(partition.apply_commit(epoch, extents, end));
    }
}

/// The extents of a partition's sealed batches in the WAL segments that
/// hold them (one per segment), each with its batches back to back; the
/// segments used are added to `used`. `None` if a batch is in none of
/// `segments`.
fn segment_extents(
    segments: &BTreeMap<u64, Arc<Segment>>,
    partition: &Partition,
    sealed: &Sealed,
    used: &mut BTreeMap<u64, Arc<Segment>>,
) -> Option<Vec<(Extent, Bytes)>> {
    let mut extents = Vec::new();
    let mut rest = sealed.batches.iter().zip(&sealed.wal).peekable();
    while let Some(&(_, first_wal)) = rest.peek() {
        let (&start, segment) = segments.range(..=first_wal.start).next_back()?;
        let list = segment.lists.get(&(partition.topic, partition.index))?;
        let mut bytes = BytesMut::new();
        let mut run = Vec::new();
        while let Some((batch, wal)) = rest.next_if(|(_, wal)| wal.end <= segment.positions.end) {
            bytes.put_slice(&batch.data);
            run.push((batch, wal));
        }
        let (&(first, first_wal), &(last, last_wal)) = (run.first()?, run.last()?);
        extents.push((
            Extent {
                object: segment.id(),
                position: first_wal.start - start,
                length: last_wal.end - first_wal.start,
                base_offset: first.base_offset,
                last_offset: last.last_offset,
                max_timestamp: run.iter().map(|(b, _)| b.max_timestamp).max()?,
                crc: Some(list.crc),
                entry_list: Some(list.range.clone()),
                ..Extent::default()
            },
            bytes.freeze(),
        ));
        used.insert(start, segment.clone());
    }
    Some(extents)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::fmt;
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;
    use futures::StreamExt;
    use futures::stream::BoxStream;
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
        ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    };
    use tokio::sync::oneshot;

    use super::*;
    use crate::config::Config;
    use crate::log::LogSettings;
    use crate::log::object::Section;
    use crate::meta::embedded::EmbeddedStore;
    use crate::meta::{MetaStore, PartitionMeta, TopicMeta};
    use crate::protocol::batch::{TimestampType, split_and_validate, tests::encode_batch};
    use crate::storage::Bucket;

    /// An in-memory store whose PUTs wait, in the order they arrive, for
    /// the verdicts the test queued (`true`: write, `false`: fail); PUTs
    /// beyond the queue write at once.
    #[derive(Debug, Default)]
    struct GatedStore {
        inner: InMemory,
        verdicts: Mutex<VecDeque<oneshot::Receiver<bool>>>,
        /// Where each PUT went, in the order they started.
        puts: Mutex<Vec<Path>>,
    }

    impl fmt::Display for GatedStore {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "Gated")
        }
    }

    #[async_trait]
    impl ObjectStore for GatedStore {
        async fn put_opts(
            &self,
            location: &Path,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            let verdict = self.verdicts.lock().unwrap().pop_front();
            self.puts.lock().unwrap().push(location.clone());
            if let Some(verdict) = verdict
                && !verdict.await.unwrap_or(false)
            {
                return Err(object_store::Error::Generic {
                    store: "gated",
                    source: "refused by the test".into(),
                });
            }
            self.inner.put_opts(location, payload, opts).await
        }

        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }

        async fn get_opts(
            &self,
            location: &Path,
            options: GetOptions,
        ) -> object_store::Result<GetResult> {
            self.inner.get_opts(location, options).await
        }

        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<Path>>,
        ) -> BoxStream<'static, object_store::Result<Path>> {
            self.inner.delete_stream(locations)
        }

        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(
            &self,
            prefix: Option<&Path>,
        ) -> object_store::Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(
            &self,
            from: &Path,
            to: &Path,
            options: CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }

        async fn rename_opts(
            &self,
            from: &Path,
            to: &Path,
            options: RenameOptions,
        ) -> object_store::Result<()> {
            self.inner.rename_opts(from, to, options).await
        }
    }

    /// Polls `condition` every few milliseconds until it holds (or fails
    /// the test after 10 s).
    async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !condition().await {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The sections of every object written to `store`, with its path.
    async fn written_sections(store: &InMemory) -> Vec<(Path, Section)> {
        let mut sections = Vec::new();
        for meta in store
            .list(None)
            .map(Result::unwrap)
            .collect::<Vec<_>>()
            .await
        {
            let object = store
                .get(&meta.location)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let index = crate::log::object::read_index(&object).unwrap();
            sections.extend(index.into_iter().map(|s| (meta.location.clone(), s)));
        }
        sections
    }

    fn append(log: &Log, partition: &Arc<Partition>) {
        let (header, data) = split_and_validate(&encode_batch(3, -1, -1))
            .unwrap()
            .remove(0);
        log.append(partition, &header, data, TimestampType::CreateTime)
            .unwrap();
    }

    /// A log in `dir` over a [`GatedStore`], with a topic of `partitions`
    /// partitions in an embedded store; in `object` durability, its
    /// settings as `settings` makes them (which may change that).
    async fn gated_log(
        dir: &tempfile::TempDir,
        partitions: i32,
        flush_interval_ms: Option<u64>,
        settings: impl FnOnce(LogSettings) -> LogSettings,
    ) -> (Log, Arc<dyn MetaStore>, TopicMeta, Arc<GatedStore>) {
        let mut config = Config::default();
        config.broker.data_dir = dir.path().to_owned();
        config.durability = Durability::Object;
        config.flush.interval_ms = flush_interval_ms;
        let meta: Arc<dyn MetaStore> =
            Arc::new(EmbeddedStore::open(&dir.path().join("meta")).unwrap());
        let topic = TopicMeta {
            name: "t".into(),
            id: Uuid::new_v4(),
            partitions,
            configs: Default::default(),
        };
        meta.create_topic(topic.clone()).await.unwrap();
        let store = Arc::new(GatedStore::default());
        let settings = settings(LogSettings::from_config(&config));
        let (log, _) = Log::open(settings, &config, meta.clone(), Bucket::over(store.clone()))
            .await
            .unwrap();
        (log, meta, topic, store)
    }

    /// An object whose commit would come after the commit window (behind
    /// earlier uploads, or a slow store) is left to garbage collection,
    /// and its data stays for the next upload.
    #[tokio::test]
    async fn an_object_past_the_commit_window_is_not_committed() {
        let dir = tempfile::tempdir().unwrap();
        let (log, meta, topic, store) = gated_log(&dir, 1, None, |s| LogSettings {
            commit_window: Duration::ZERO,
            ..s
        })
        .await;
        let p = log.add_partition(topic.id, 0, PartitionMeta::default());
        append(&log, &p);
        let unflushed = log.unflushed_bytes();
        assert!(matches!(log.flush_all().await, Err(Error::RequestTimedOut)));
        assert_eq!(written_sections(&store.inner).await.len(), 1, "written");
        assert_eq!(
            meta.partition(topic.id, 0).await.unwrap().committed_end(),
            0
        );
        assert_eq!(p.committed_end(), 0);
        assert_eq!(log.unflushed_bytes(), unflushed, "kept for the next upload");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn uploads_overlap_commit_in_order_and_hand_failed_data_back() {
        let dir = tempfile::tempdir().unwrap();
        let (log, meta, topic, store) = gated_log(&dir, 2, Some(10), |s| s).await;
        let log = Arc::new(log);
        let [p, q] = [0, 1].map(|i| log.add_partition(topic.id, i, PartitionMeta::default()));
        let shutdown = CancellationToken::new();
        let uploader = tokio::spawn(log.clone().run_uploader(shutdown.clone()));

        // The first upload (p's first batch) hangs in its PUT...
        let (first_verdict, gate) = oneshot::channel();
        store.verdicts.lock().unwrap().push_back(gate);
        append(&log, &p);
        eventually("the first PUT started", async || {
            store.puts.lock().unwrap().len() == 1
        })
        .await;
        // ...while the next one (p's second batch and q's first) is written.
        append(&log, &p);
        append(&log, &q);
        eventually(
            "p's second batch and q's first are in objects written",
            async || {
                let sections = written_sections(&store.inner).await;
                let holds = |partition, base| {
                    sections
                        .iter()
                        .any(|(_, s)| s.partition == partition && s.base_offset == base)
                };
                holds(0, 3) && holds(1, 0)
            },
        )
        .await;
        let written_before_the_failure: Vec<Path> = written_sections(&store.inner)
            .await
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        // Nothing commits ahead of the first upload.
        assert_eq!(
            meta.partition(topic.id, 1).await.unwrap().committed_end(),
            0
        );
        assert_eq!(q.committed_end(), 0);

        // The first PUT fails: q's data commits from an object written
        // meanwhile; p's
        // second batch does not (it would not continue p's committed
        // data); p's two batches commit together in a later upload.
        first_verdict.send(false).unwrap();
        // (The commit is applied before the upload's bytes are released.)
        eventually("everything is committed and released", async || {
            p.committed_end() == 6
                && q.committed_end() == 3
                && log.unflushed_bytes() == 0
                && log.uploading.load(Ordering::SeqCst) == 0
        })
        .await;
        let stored = meta.partition(topic.id, 0).await.unwrap();
        let offsets: Vec<(i64, i64)> = stored
            .extents
            .iter()
            .map(|e| (e.base_offset, e.last_offset))
            .collect();
        assert_eq!(offsets, vec![(0, 5)], "p's data, once and in order");
        let q_extents = meta.partition(topic.id, 1).await.unwrap().extents;
        assert_eq!(q_extents.len(), 1);
        let q_object = format!("{}.silt", q_extents[0].object.simple());
        assert!(
            written_before_the_failure
                .iter()
                .any(|path| path.filename() == Some(q_object.as_str())),
            "q committed from an object written before the failure"
        );
        shutdown.cancel();
        uploader.await.unwrap();
    }

    /// In `local` durability a parked reader of one partition is woken once
    /// an append to it is durable, not by appends to other partitions.
    #[tokio::test]
    async fn readers_are_woken_by_their_partitions_data_only() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _, topic, _) = gated_log(&dir, 2, None, |s| LogSettings {
            durability: Durability::Local,
            ..s
        })
        .await;
        let log = Arc::new(log);
        let [p, q] = [0, 1].map(|i| log.add_partition(topic.id, i, PartitionMeta::default()));
        let shutdown = CancellationToken::new();
        let wakeups = tokio::spawn(log.clone().run_reader_wakeups(shutdown.clone()));
        let reader = p.readers_woken();
        tokio::pin!(reader);
        reader.as_mut().enable();
        append(&log, &q);
        let q_end = log.wal.end();
        eventually("q's append is durable", async || log.wal.durable() >= q_end).await;
        let other = tokio::time::timeout(Duration::from_millis(100), reader.as_mut()).await;
        assert!(other.is_err(), "woken by another partition's data");
        append(&log, &p);
        tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .expect("woken by its own data");
        shutdown.cancel();
        wakeups.await.unwrap();
    }
}
