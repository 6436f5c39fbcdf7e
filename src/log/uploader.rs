//! The uploader: seals the partitions' tails into one multi-partition data
//! object (paced by `flush.interval` and `flush.bytes`), PUTs it create-only,
//! commits the extents (epoch-guarded) to the metadata store, and only then
//! drops the tails, fills the cache and trims the WAL.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Log;
use super::object::ObjectBuilder;
use super::partition::Partition;
use crate::error::Result;
use crate::meta::{CommitOutcome, Extent, PartitionCommit};

impl Log {
    /// Uploads until `shutdown`, then uploads everything left. The broker's
    /// one uploader task. Pacing: an upload starts as soon as data is
    /// buffered, but at most once per `flush.interval` unless `flush.bytes`
    /// are waiting; so an idle broker uploads nothing, a lightly loaded one
    /// acknowledges after about one PUT, and a busy one uploads once per
    /// interval or per `flush.bytes`.
    pub async fn run_uploader(self: Arc<Self>, shutdown: CancellationToken) {
        let interval = self.settings.flush_interval;
        let mut last_start = Instant::now()
            .checked_sub(interval)
            .unwrap_or_else(Instant::now);
        let mut changes = self.changes();
        loop {
            if !self.wait_for_data(&shutdown).await {
                break;
            }
            if self.unflushed() < self.settings.flush_bytes {
                tokio::select! {
                    () = tokio::time::sleep_until(last_start + interval) => {}
                    () = self.flush_wanted.notified() => {}
                    () = shutdown.cancelled() => break,
                }
            }
            last_start = Instant::now();
            let pause = match self.upload_once().await {
                Ok(true) => continue,
                // Nothing sealable yet: the WAL has not made it durable.
                Ok(false) => interval,
                Err(e) => {
                    tracing::warn!(error = %e, "upload failed; retrying at the next flush");
                    interval
                }
            };
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep(pause) => {}
                () = shutdown.cancelled() => break,
            }
        }
        if let Err(e) = self.flush_all().await {
            tracing::error!(error = %e, "final upload failed; the WAL keeps the data for the next start");
        }
    }

    /// Waits until something is buffered; false on shutdown.
    async fn wait_for_data(&self, shutdown: &CancellationToken) -> bool {
        loop {
            let arrived = self.data_arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if self.unflushed() > 0 {
                return true;
            }
            tokio::select! {
                () = arrived => {}
                () = shutdown.cancelled() => return false,
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
        while self.upload_once().await? {}
        Ok(())
    }

    fn unflushed(&self) -> u64 {
        self.unflushed.load(Ordering::Relaxed)
    }

    /// Seals, uploads and commits one object; `false` if nothing was committed.
    async fn upload_once(&self) -> Result<bool> {
        let wal_durable = self.wal_durable();
        // Read before sealing: every entry appended later starts after it.
        let trim_limit = self.wal.durable();
        let mut partitions = self.all_partitions();
        partitions.sort_by_key(|p| (p.topic, p.index));
        // Start where the last upload stopped, so one busy partition cannot
        // take every upload's budget and starve the others.
        let start = self.upload_cursor.load(Ordering::Relaxed) % partitions.len().max(1);
        partitions.rotate_left(start);
        let partition_count = partitions.len();
        let mut budget = self.settings.flush_bytes;
        let mut sealed = Vec::new();
        for partition in partitions {
            if budget == 0 {
                break;
            }
            if let Some(s) = partition.seal(wal_durable, budget) {
                let size: u64 = s.batches.iter().map(|b| b.data.len() as u64).sum();
                budget = budget.saturating_sub(size);
                sealed.push((partition, s));
            }
        }
        if sealed.is_empty() {
            return Ok(false);
        }
        self.upload_cursor
            .store((start + sealed.len()) % partition_count, Ordering::Relaxed);
        let mut builder =
            ObjectBuilder::with_capacity((self.settings.flush_bytes - budget) as usize);
        for (partition, s) in &sealed {
            builder.add_partition(partition.topic, partition.index, &s.batches);
        }
        let (object, sections) = builder.finish();
        let id = Uuid::now_v7();
        let started = std::time::Instant::now();
        self.bucket.put_data_object(id, object.clone()).await?;
        let put_done = started.elapsed();

        let mut commits = Vec::with_capacity(sealed.len());
        for (partition, s) in &sealed {
            let extents = sections
                .iter()
                .filter(|sec| sec.topic == partition.topic && sec.partition == partition.index)
                .map(|sec| Extent {
                    object: id,
                    position: sec.position,
                    length: sec.length,
                    base_offset: sec.base_offset,
                    last_offset: sec.last_offset,
                    max_timestamp: sec.max_timestamp,
                })
                .collect();
            commits.push(PartitionCommit {
                topic: partition.topic,
                partition: partition.index,
                leader_epoch: s.leader_epoch,
                extents,
                producers: s.producers.clone(),
            });
        }
        let outcomes = self.meta.commit(commits.clone()).await?;
        metrics::counter!("silt_uploads_total").increment(1);
        metrics::histogram!("silt_upload_seconds").record(started.elapsed().as_secs_f64());
        let progressed = outcomes.contains(&CommitOutcome::Committed);
        tracing::debug!(
            object = %id,
            bytes = object.len(),
            partitions = commits.len(),
            put_ms = put_done.as_millis() as u64,
            commit_ms = (started.elapsed() - put_done).as_millis() as u64,
            "uploaded"
        );
        for (((partition, s), commit), outcome) in sealed.iter().zip(commits).zip(outcomes) {
            match outcome {
                CommitOutcome::Committed => {
                    for extent in &commit.extents {
                        let range =
                            extent.position as usize..(extent.position + extent.length) as usize;
                        self.cache.insert(extent, object.slice(range));
                    }
                    self.release(partition.apply_commit(s.leader_epoch, commit.extents, s.end));
                }
                CommitOutcome::Gone => {}
                CommitOutcome::Failed => self.adopt_if_committed(partition, s.leader_epoch).await,
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
        // Kept records first: one taking over moves them into its tail.
        let pending = self.oldest_pending_replay();
        let oldest_needed = self
            .all_partitions()
            .iter()
            .filter_map(|p| p.oldest_wal_position())
            .chain(pending)
            .min()
            .map_or(trim_limit, |oldest| oldest.min(trim_limit));
        self.wal.trim(oldest_needed)?;
        Ok(progressed)
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
