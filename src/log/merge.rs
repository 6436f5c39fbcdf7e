//! Merging: a partition's runs of small extents (its sections of uploads,
//! which hold many partitions each) are rewritten into one object of its
//! own with large sections, so the partition's extent list follows the
//! data it retains, not the number of uploads ever made, and catch-up
//! reads touch few objects.
//!
//! A pass writes one new object per partition (all its runs, each in
//! sections of its own) create-only, then replaces each run in the
//! metadata store under the leader epoch and only while the run is stored
//! as read (retention or DeleteRecords may have moved on), then in
//! memory. A crash before the commit leaves an object nothing refers to;
//! after it, old objects nothing refers to any more: garbage collection
//! deletes both. Offsets never change.

use std::ops::Range;

use bytes::Bytes;
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
/// worth, and so does one pass over a partition (bounding its memory).
const MAX_RUN_SECTIONS: u64 = 4;

/// The runs of `extents` (a partition's, oldest first) to merge into
/// sections of `section_bytes`: consecutive extents under half that size,
/// each run of at least [`MIN_RUN_EXTENTS`] extents or `section_bytes`
/// bytes (a shorter one waits for more data), at most
/// [`MAX_REPLACED_EXTENTS`] extents and [`MAX_RUN_SECTIONS`] sections.
/// No extent may hold more than half a run's bytes: an earlier merge's
/// result waits until as much new data follows it, so each byte is
/// rewritten about log2(section / upload size) times, not once per pass.
pub fn plan(extents: &[Extent], section_bytes: u64) -> Vec<Range<usize>> {
    let small = |e: &Extent| e.length < section_bytes / 2;
    let mut runs = Vec::new();
    let mut start = 0;
    while start < extents.len() {
        if !small(&extents[start]) {
            start += 1;
            continue;
        }
        let (mut end, mut bytes, mut largest) = (start, 0, 0);
        while end < extents.len()
            && small(&extents[end])
            && end - start < MAX_REPLACED_EXTENTS
            && bytes + extents[end].length <= MAX_RUN_SECTIONS * section_bytes
        {
            bytes += extents[end].length;
            largest = largest.max(extents[end].length);
            end += 1;
        }
        let worth_it = end - start >= MIN_RUN_EXTENTS || bytes >= section_bytes;
        if worth_it && largest * 2 <= bytes {
            runs.push(start..end);
            start = end;
        } else if worth_it {
            // Dominated by one extent: try again without the first.
            start += 1;
        } else {
            start = end;
        }
    }
    runs
}

impl Log {
    /// Merges `partition`'s runs of small extents (see [`plan`]) into one
    /// object of its own with sections of `section_bytes` (at most
    /// [`MAX_RUN_SECTIONS`] sections' worth per pass: one PUT); returns
    /// how many extents were replaced.
    pub async fn merge(&self, partition: &Partition, section_bytes: u64) -> Result<usize> {
        self.check_registration()?;
        let epoch = partition.leadership().ok_or(Error::NotLeaderOrFollower)?;
        let (extents, _) = partition.retained();
        let mut runs: Vec<&[Extent]> = Vec::new();
        let mut bytes = 0;
        for run in plan(&extents, section_bytes) {
            let run = &extents[run];
            let run_bytes: u64 = run.iter().map(|e| e.length).sum();
            if !runs.is_empty() && bytes + run_bytes > MAX_RUN_SECTIONS * section_bytes {
                break;
            }
            bytes += run_bytes;
            runs.push(run);
        }
        if runs.is_empty() {
            return Ok(0);
        }
        let (id, object, new_runs) = self.write_merged(partition, &runs, section_bytes).await?;
        crate::failpoint::hit("merge.after_put");
        let mut merged = 0;
        for (old, new) in runs.into_iter().zip(new_runs) {
            if self
                .replace_run(partition, epoch, old, new, &object)
                .await?
            {
                merged += old.len();
            }
        }
        metrics::counter!("silt_merged_extents_total").increment(merged as u64);
        tracing::debug!(topic = %partition.topic, partition = partition.index, object = %id, extents = merged, bytes, "merged");
        Ok(merged)
    }

    /// Writes the batches of `runs` into a new object, each run in
    /// sections of its own; returns its id, its bytes and each run's new
    /// extents.
    async fn write_merged(
        &self,
        partition: &Partition,
        runs: &[&[Extent]],
        section_bytes: u64,
    ) -> Result<(Uuid, Bytes, Vec<Vec<Extent>>)> {
        let all: Vec<Extent> = runs.iter().flat_map(|run| run.iter().cloned()).collect();
        self.cache.load(&all).await;
        let size: u64 = all.iter().map(|e| e.length).sum();
        let mut builder = ObjectBuilder::with_sections(size as usize, section_bytes as usize);
        let mut run_sections = Vec::with_capacity(runs.len());
        for run in runs {
            let mut batches = Vec::new();
            for extent in *run {
                let section = self.cache.get(extent).await?;
                for (header, range) in batch::iter_batches(&section) {
                    batches.push(SealedBatch {
                        base_offset: header.base_offset,
                        last_offset: header.last_offset(),
                        max_timestamp: header.max_timestamp,
                        data: section.slice(range),
                    });
                }
            }
            let before = builder.section_count();
            builder.add_partition(partition.topic, partition.index, &batches);
            run_sections.push(before..builder.section_count());
        }
        let (object, sections) = builder.finish();
        let id = Uuid::now_v7();
        self.bucket.put_data_object(id, object.clone()).await?;
        let new_runs = run_sections
            .into_iter()
            .map(|range| sections[range].iter().map(|s| s.extent_in(id)).collect())
            .collect();
        Ok((id, object, new_runs))
    }

    /// Replaces the run `old` with `new` (in `object`, written); whether
    /// it was replaced (not if the run changed meanwhile: the new
    /// sections are left to garbage collection).
    async fn replace_run(
        &self,
        partition: &Partition,
        epoch: i32,
        old: &[Extent],
        new: Vec<Extent>,
        object: &Bytes,
    ) -> Result<bool> {
        let (topic, index) = (partition.topic, partition.index);
        let replaced = self
            .meta
            .replace_extents(topic, index, epoch, old.to_vec(), new.clone())
            .await;
        let outcome = self.adopt_on_error(partition, epoch, replaced).await?;
        match outcome {
            CommitOutcome::Committed => {
                crate::failpoint::hit("merge.after_commit");
                for extent in &new {
                    let range =
                        extent.position as usize..(extent.position + extent.length) as usize;
                    // A copy, so the cache does not pin the whole object.
                    self.cache
                        .insert(extent, Bytes::copy_from_slice(&object[range]));
                }
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
                crc: None,
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

    #[test]
    fn an_earlier_merge_waits_for_as_much_new_data() {
        // A merged extent of 40 and seven uploads of 5: merging would
        // mostly rewrite the merged one, and the seven alone are too few.
        let mut lengths = vec![40];
        lengths.extend([5; 7]);
        assert!(plan(&extents(&lengths), 100).is_empty());
        // With as much new data after it, it is merged with them...
        lengths.push(5);
        assert_eq!(plan(&extents(&lengths), 100), vec![0..9]);
        // ...and two merged extents of about the same size together.
        assert_eq!(plan(&extents(&[40, 40, 30]), 100), vec![0..3]);
    }
}
