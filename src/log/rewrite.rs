//! Rewriting runs of partitions' extents, for merging and compaction.
//! The runs' new batches go into one new object (each run in sections of
//! its own, so a partition's data stays together), written create-only;
//! then each run is replaced in the metadata store under its partition's
//! leader epoch, and only while it is stored as read (retention or
//! DeleteRecords may have moved on), then in memory. A crash before a commit leaves an object nothing
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
    pub partition: &'a Partition,
    /// The leader epoch the run was read under.
    pub epoch: i32,
    pub old: Vec<Extent>,
    /// The new sections hold at most this much each.
    pub section_bytes: u64,
    /// The new batches; their offsets (`base_offset..=last_offset` of
    /// each, gaps included) cover the run's exactly.
    pub batches: Vec<SealedBatch>,
    /// The compaction state of the new extents.
    pub compacted: bool,
    pub tombstones_due_ms: Option<i64>,
}

impl Log {
    /// Writes `runs` into one new object and replaces each run with its
    /// new sections; `name` names the fail points `<name>.after_put` and
    /// `<name>.after_commit`. Returns how many extents were replaced; a
    /// run that fails (its partition fenced, the store failing) leaves
    /// the others to go on, and the first such error is returned after
    /// them. The object is laid out on a blocking thread (it may be tens
    /// of MiB).
    pub(super) async fn rewrite(&self, mut runs: Vec<Rewrite<'_>>, name: &str) -> Result<usize> {
        let layout: Vec<(Uuid, i32, u64, Vec<SealedBatch>)> = runs
            .iter_mut()
            .map(|run| {
                let batches = std::mem::take(&mut run.batches);
                (
                    run.partition.topic,
                    run.partition.index,
                    run.section_bytes,
                    batches,
                )
            })
            .collect();
        let (object, sections, run_sections) = tokio::task::spawn_blocking(move || {
            let size = layout
                .iter()
                .flat_map(|(_, _, _, batches)| batches)
                .map(|b| b.data.len())
                .sum();
            let mut builder = ObjectBuilder::with_capacity(size);
            let mut run_sections = Vec::with_capacity(layout.len());
            for (topic, index, section_bytes, batches) in &layout {
                let before = builder.section_count();
                builder.add_partition_in(*topic, *index, batches, *section_bytes as usize);
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
        let (mut replaced, mut failure) = (0, None);
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
            match self
                .replace_run(run.partition, run.epoch, &run.old, new, name)
                .await
            {
                Ok(true) => replaced += run.old.len(),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(topic = %run.partition.topic, partition = run.partition.index, error = %e, "a rewritten run was not replaced");
                    failure.get_or_insert(e);
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(replaced),
        }
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
