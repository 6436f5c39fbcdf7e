//! Merging: a partition's runs of small extents (its sections of uploads,
//! which hold many partitions each) are rewritten into one object of its
//! own with large sections, so the partition's extent list follows the
//! data it retains, not the number of uploads ever made, and catch-up
//! reads touch few objects.
//!
//! A merge writes the new object create-only, then replaces the run in
//! the metadata store under the leader epoch and only while the run is
//! stored as read (retention or DeleteRecords may have moved on), then in
//! memory. A crash before the commit leaves an object nothing refers to;
//! after it, old objects nothing refers to any more: garbage collection
//! deletes both. Offsets never change.

use std::ops::Range;

use uuid::Uuid;

use super::Log;
use super::object::{ObjectBuilder, SealedBatch};
use super::partition::Partition;
use crate::error::{Error, Result};
use crate::meta::{CommitOutcome, Extent, MAX_REPLACED_EXTENTS};
use crate::protocol::batch;

/// Merged sections hold at most this much (a foyer disk block is 16 MiB).
pub const MAX_MERGED_SECTION_BYTES: u64 = 12 * 1024 * 1024;
/// A run of small extents is merged once it has this many...
const MIN_RUN_EXTENTS: usize = 8;
/// ...or a section's worth of bytes; it holds at most this many sections'
/// worth (bounding a merge's memory).
const MAX_RUN_SECTIONS: u64 = 4;

/// The runs of `extents` (a partition's, oldest first) to merge into
/// sections of `section_bytes`: consecutive extents under half that size,
/// each run of at least [`MIN_RUN_EXTENTS`] extents or `section_bytes`
/// bytes (a shorter one waits for more data), at most
/// [`MAX_REPLACED_EXTENTS`] extents and [`MAX_RUN_SECTIONS`] sections.
pub fn plan(extents: &[Extent], section_bytes: u64) -> Vec<Range<usize>> {
    let small = |e: &Extent| e.length < section_bytes / 2;
    let mut runs = Vec::new();
    let mut i = 0;
    while i < extents.len() {
        if !small(&extents[i]) {
            i += 1;
            continue;
        }
        let (start, mut bytes) = (i, 0);
        while i < extents.len()
            && small(&extents[i])
            && i - start < MAX_REPLACED_EXTENTS
            && bytes + extents[i].length <= MAX_RUN_SECTIONS * section_bytes
        {
            bytes += extents[i].length;
            i += 1;
        }
        if i - start >= MIN_RUN_EXTENTS || bytes >= section_bytes {
            runs.push(start..i);
        }
    }
    runs
}

impl Log {
    /// Merges `partition`'s runs of small extents (see [`plan`]) into
    /// objects of its own with sections of `section_bytes`; returns how
    /// many extents were replaced.
    pub async fn merge(&self, partition: &Partition, section_bytes: u64) -> Result<usize> {
        self.check_registration()?;
        let epoch = partition.leadership().ok_or(Error::NotLeaderOrFollower)?;
        let (extents, _) = partition.retained();
        let mut merged = 0;
        for run in plan(&extents, section_bytes) {
            let old = &extents[run];
            if self.merge_run(partition, epoch, old, section_bytes).await? {
                merged += old.len();
            }
        }
        Ok(merged)
    }

    /// Rewrites `old` into one new object and replaces it; whether it was
    /// replaced (not if the run changed meanwhile).
    async fn merge_run(
        &self,
        partition: &Partition,
        epoch: i32,
        old: &[Extent],
        section_bytes: u64,
    ) -> Result<bool> {
        self.cache.load(old).await;
        let mut batches = Vec::new();
        let mut size = 0;
        for extent in old {
            let section = self.cache.get(extent).await?;
            size += section.len();
            for (header, range) in batch::iter_batches(&section) {
                batches.push(SealedBatch {
                    base_offset: header.base_offset,
                    last_offset: header.last_offset(),
                    max_timestamp: header.max_timestamp,
                    data: section.slice(range),
                });
            }
        }
        let mut builder = ObjectBuilder::with_sections(size, section_bytes as usize);
        builder.add_partition(partition.topic, partition.index, &batches);
        let (object, sections) = builder.finish();
        let id = Uuid::now_v7();
        self.bucket.put_data_object(id, object.clone()).await?;
        crate::failpoint::hit("merge.after_put");
        let new: Vec<Extent> = sections
            .iter()
            .map(|s| Extent {
                object: id,
                position: s.position,
                length: s.length,
                base_offset: s.base_offset,
                last_offset: s.last_offset,
                max_timestamp: s.max_timestamp,
            })
            .collect();
        let (topic, index) = (partition.topic, partition.index);
        let outcome = self
            .meta
            .replace_extents(topic, index, epoch, old.to_vec(), new.clone())
            .await?;
        match outcome {
            CommitOutcome::Committed => {
                crate::failpoint::hit("merge.after_commit");
                for extent in &new {
                    let range =
                        extent.position as usize..(extent.position + extent.length) as usize;
                    self.cache.insert(extent, object.slice(range));
                }
                partition.replace_extents(epoch, old, new);
                metrics::counter!("silt_merged_extents_total").increment(old.len() as u64);
                tracing::debug!(%topic, partition = index, object = %id, extents = old.len(), bytes = size, "merged");
                Ok(true)
            }
            CommitOutcome::Fenced => {
                self.resign(partition, Some(epoch));
                Err(Error::NotLeaderOrFollower)
            }
            // The run changed or the topic is gone: the new object is
            // left to garbage collection.
            CommitOutcome::Failed | CommitOutcome::Gone => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extents(lengths: &[u64]) -> Vec<Extent> {
        lengths
            .iter()
            .enumerate()
            .map(|(i, &length)| Extent {
                object: Uuid::nil(),
                position: 0,
                length,
                base_offset: i as i64 * 10,
                last_offset: i as i64 * 10 + 9,
                max_timestamp: 0,
            })
            .collect()
    }

    #[test]
    fn runs_of_small_extents_are_merged_once_long_enough() {
        // Sections of 100 bytes: under 50 is small.
        let few = extents(&[10; 7]);
        assert!(plan(&few, 100).is_empty(), "seven small ones wait");
        let eight = extents(&[10; 8]);
        assert_eq!(plan(&eight, 100), vec![0..8]);
        // A large extent splits runs; a run of a section's worth of bytes
        // is merged however few its extents.
        let mixed = extents(&[60, 40, 40, 40, 90, 10, 10]);
        assert_eq!(plan(&mixed, 100), vec![1..4]);
        // Runs are bounded in bytes (four sections) and extents.
        let long = extents(&[45; 20]);
        assert_eq!(plan(&long, 100), vec![0..8, 8..16, 16..20]);
        let many = extents(&[1; 130]);
        assert_eq!(plan(&many, 1000), vec![0..60, 60..120, 120..130]);
    }
}
