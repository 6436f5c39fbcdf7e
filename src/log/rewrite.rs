//! Rewriting runs of a partition's extents, for merging and compaction.
//! The runs' new batches go into one new object of the partition's own
//! (each run in sections of its own), written create-only; then each run
//! is replaced in the metadata store under the leader epoch, and only
//! while it is stored as read (retention or DeleteRecords may have moved
//! on), then in memory. A crash before a commit leaves an object nothing
//! refers to; after it, old objects nothing refers to any more: garbage
//! collection deletes both. Offsets never change: a run's new extents
//! cover exactly its offsets.

use uuid::Uuid;

use super::Log;
use super::object::{ObjectBuilder, SealedBatch};
use super::partition::Partition;
use crate::error::{Error, Result};
use crate::meta::{CommitOutcome, Extent};

/// A run of a partition's extents and the batches that replace it.
pub(super) struct Rewrite<'a> {
    pub old: &'a [Extent],
    /// The new batches; their offsets (`base_offset..=last_offset` of
    /// each, gaps included) cover the run's exactly.
    pub batches: Vec<SealedBatch>,
    /// The compaction state of the new extents.
    pub compacted: bool,
    pub tombstones_due_ms: Option<i64>,
}

impl Log {
    /// Writes `runs` into one new object with sections of `section_bytes`
    /// and replaces each run with its new sections, the leader at `epoch`;
    /// `name` names the fail points `<name>.after_put` and
    /// `<name>.after_commit`. Returns how many extents were replaced. The
    /// object is laid out on a blocking thread (it may be tens of MiB).
    pub(super) async fn rewrite(
        &self,
        partition: &Partition,
        epoch: i32,
        mut runs: Vec<Rewrite<'_>>,
        section_bytes: u64,
        name: &str,
    ) -> Result<usize> {
        let batches: Vec<Vec<SealedBatch>> = runs
            .iter_mut()
            .map(|run| std::mem::take(&mut run.batches))
            .collect();
        let (topic, index) = (partition.topic, partition.index);
        let (object, sections, run_sections) = tokio::task::spawn_blocking(move || {
            let size = batches.iter().flatten().map(|b| b.data.len()).sum();
            let mut builder = ObjectBuilder::with_sections(size, section_bytes as usize);
            let mut run_sections = Vec::with_capacity(batches.len());
            for run in &batches {
                let before = builder.section_count();
                builder.add_partition(topic, index, run);
                run_sections.push(before..builder.section_count());
            }
            let (object, sections) = builder.finish();
            (object, sections, run_sections)
        })
        .await
        .map_err(super::blocking_failed)?;
        let id = Uuid::now_v7();
        self.bucket.put_data_object(id, object).await?;
        let put_done = std::time::Instant::now();
        crate::failpoint::hit(&format!("{name}.after_put"));
        let mut replaced = 0;
        for (run, range) in runs.iter().zip(run_sections) {
            if super::past_commit_window(put_done, self.settings.commit_window) {
                tracing::warn!(object = %id, "a rewritten object waited past the commit window; garbage collection deletes it");
                break;
            }
            let new = sections[range]
                .iter()
                .map(|section| Extent {
                    compacted: run.compacted,
                    tombstones_due_ms: run.tombstones_due_ms,
                    ..section.extent_in(id)
                })
                .collect();
            if self
                .replace_run(partition, epoch, run.old, new, name)
                .await?
            {
                replaced += run.old.len();
            }
        }
        Ok(replaced)
    }

    /// Replaces the run `old` with `new`; whether it was replaced (not if
    /// the run changed meanwhile: new sections are left to garbage
    /// collection). New sections are not cached: they hold old data, read
    /// by catch-up readers only, and filling the cache with them would
    /// evict what readers at the head need (and write it to the disk the
    /// WAL syncs on).
    pub(super) async fn replace_run(
        &self,
        partition: &Partition,
        epoch: i32,
        old: &[Extent],
        new: Vec<Extent>,
        name: &str,
    ) -> Result<bool> {
        let (topic, index) = (partition.topic, partition.index);
        let replaced = self
            .meta
            .replace_extents(topic, index, epoch, old.to_vec(), new.clone())
            .await;
        let outcome = self.adopt_on_error(partition, epoch, replaced).await?;
        match outcome {
            CommitOutcome::Committed => {
                crate::failpoint::hit(&format!("{name}.after_commit"));
                if !partition.replace_extents(epoch, old, new) {
                    // DeleteRecords or retention moved on in memory meanwhile.
                    self.adopt_stored(partition, epoch).await;
                }
                Ok(true)
            }
            CommitOutcome::Fenced => {
                self.resign(partition, Some(epoch));
                Err(Error::NotLeaderOrFollower)
            }
            CommitOutcome::Failed => {
                // The stored run changed: memory may be behind the store.
                self.adopt_stored(partition, epoch).await;
                Ok(false)
            }
            CommitOutcome::Gone => Ok(false),
        }
    }
}
