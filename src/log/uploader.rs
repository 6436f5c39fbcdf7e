//! The uploader: seals the partitions' tails into one multi-partition data
//! object (paced by `flush.interval` and `flush.bytes`), PUTs it create-only,
//! commits the extents (epoch-guarded) to the metadata store, and only then
//! drops the tails, fills the cache and trims the WAL.
//!
//! Up to `flush.uploads_in_flight` PUTs overlap, so a slow PUT neither
//! holds back the data that arrives meanwhile nor caps the throughput at
//! one object per PUT latency; their commits happen one at a time, in the
//! order the objects were sealed, so each partition's extents always
//! continue the committed ones. An upload that fails hands its data back
//! (see [`Partition::unseal`]) for the next one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Log;
use super::object::{ObjectBuilder, Section};
use super::partition::{Partition, Sealed};
use crate::error::{Error, Result};
use crate::meta::{CommitOutcome, PartitionCommit};

/// One sealed data object on its way to the object store.
struct Upload {
    id: Uuid,
    object: Bytes,
    sections: Vec<Section>,
    partitions: Vec<(Arc<Partition>, Sealed)>,
    /// Tail bytes sealed into it (counted in `Log::uploading`).
    sealed_bytes: u64,
    started: std::time::Instant,
}

/// An upload whose PUT runs in its own task.
struct UnderWay {
    upload: Upload,
    /// The PUT; when it completed.
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
        let mut last_start = Instant::now()
            .checked_sub(interval)
            .unwrap_or_else(Instant::now);
        let mut under_way: VecDeque<UnderWay> = VecDeque::new();
        let mut changes = self.changes();
        // Nothing could be sealed last time (in `local` durability: not
        // durable in the WAL yet): wait for a change before trying again.
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
                () = self.upload_due(last_start, retry_at, stalled, &mut changes), if room => {
                    last_start = Instant::now();
                    let upload = self.seal_upload();
                    stalled = upload.is_none();
                    if let Some(upload) = upload {
                        let (log, object, id) = (self.clone(), upload.object.clone(), upload.id);
                        let put = tokio::spawn(async move {
                            log.bucket.put_data_object(id, object).await?;
                            Ok(std::time::Instant::now())
                        });
                        under_way.push_back(UnderWay { upload, put });
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

    /// Uploads everything appended so far (once the WAL has it durable).
    pub async fn flush_all(&self) -> Result<()> {
        let mut durable = self.wal.subscribe();
        let end = self.wal.end();
        if durable.wait_for(|d| *d >= end).await.is_err() {
            tracing::warn!("the WAL closed before everything appended was durable");
        }
        while let Some(upload) = self.seal_upload() {
            let put = self
                .bucket
                .put_data_object(upload.id, upload.object.clone())
                .await
                .map(|()| std::time::Instant::now());
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
    /// object; `None` if there is nothing to seal (in `local` durability,
    /// nothing durable in the WAL).
    fn seal_upload(&self) -> Option<Upload> {
        let wal_durable = self.wal_durable();
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
            if let Some(s) = partition.seal(wal_durable, budget) {
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
        Some(Upload {
            id: Uuid::now_v7(),
            object,
            sections,
            partitions: sealed,
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
                return Err(Error::RequestTimedOut);
            }
            Ok(())
        });
        let outcome = match put {
            Ok(()) => self.commit(&upload).await,
            Err(e) => {
                for (partition, s) in &upload.partitions {
                    partition.unseal(s.generation);
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
        let (commits, pending): (Vec<PartitionCommit>, Vec<&(Arc<Partition>, Sealed)>) = upload
            .partitions
            .iter()
            .filter(|(partition, s)| partition.seal_holds(s.generation))
            .map(|entry| (self.partition_commit(upload, entry), entry))
            .unzip();
        if commits.is_empty() {
            return Ok(false);
        }
        let outcomes = match self.meta.commit(commits.clone()).await {
            Ok(outcomes) => outcomes,
            Err(e) => {
                for (partition, s) in pending {
                    partition.unseal(s.generation);
                }
                return Err(e);
            }
        };
        metrics::counter!("silt_uploads_total").increment(1);
        metrics::histogram!("silt_upload_seconds").record(upload.started.elapsed().as_secs_f64());
        let progressed = outcomes.contains(&CommitOutcome::Committed);
        tracing::debug!(
            object = %upload.id,
            bytes = upload.object.len(),
            partitions = commits.len(),
            put_ms = put_done.as_millis() as u64,
            commit_ms = (upload.started.elapsed() - put_done).as_millis() as u64,
            "uploaded"
        );
        for (((partition, s), commit), outcome) in pending.into_iter().zip(commits).zip(outcomes) {
            match outcome {
                CommitOutcome::Committed => {
                    for extent in &commit.extents {
                        let range =
                            extent.position as usize..(extent.position + extent.length) as usize;
                        self.cache.insert(extent, upload.object.slice(range));
                    }
                    self.release(partition.apply_commit(s.leader_epoch, commit.extents, s.end));
                }
                CommitOutcome::Gone => {}
                CommitOutcome::Failed => {
                    self.adopt_if_committed(partition, s.leader_epoch).await;
                    partition.unseal(s.generation);
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

    /// The commit of one partition's sections of `upload`.
    fn partition_commit(
        &self,
        upload: &Upload,
        (partition, s): &(Arc<Partition>, Sealed),
    ) -> PartitionCommit {
        let extents = upload
            .sections
            .iter()
            .filter(|sec| sec.topic == partition.topic && sec.partition == partition.index)
            .map(|sec| sec.extent_in(upload.id))
            .collect();
        PartitionCommit {
            topic: partition.topic,
            partition: partition.index,
            leader_epoch: s.leader_epoch,
            extents,
            producers: s.producers.clone(),
        }
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
    use crate::config::{Config, Durability};
    use crate::log::LogSettings;
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

    fn append(log: &Log, partition: &Partition) {
        let (header, data) = split_and_validate(&encode_batch(3, -1, -1))
            .unwrap()
            .remove(0);
        log.append(partition, &header, data, TimestampType::CreateTime)
            .unwrap();
    }

    /// A log in `object` durability in `dir` over a [`GatedStore`], with a
    /// topic of `partitions` partitions in an embedded store; its settings
    /// as `settings` makes them.
    async fn object_log(
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
        let (log, meta, topic, store) = object_log(&dir, 1, None, |s| LogSettings {
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
        let (log, meta, topic, store) = object_log(&dir, 2, Some(10), |s| s).await;
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
}
