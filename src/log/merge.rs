//! Merging: a partition's runs of small extents (its sections of uploads,
//! which hold many partitions each) are rewritten into one object of its
//! own with large sections, so the partition's extent list follows the
//! data it retains, not the number of uploads ever made, and catch-up
//! reads touch few objects.
//!
//! A pass writes objects of up to [`MAX_MERGED_OBJECT_BYTES`]: a large
//! partition's runs fill one alone, the runs of quiet partitions share one
//! (so merging a thousand of them costs a PUT or two per pass, not a
//! thousand); each run has sections of its own, see [`super::rewrite`].

use std::ops::Range;

use super::Log;
use super::object::SealedBatch;
use super::partition::Partition;
use super::rewrite::Rewrite;
use crate::error::Result;
use crate::meta::{Extent, MAX_REPLACED_EXTENTS};
use crate::protocol::batch;

/// Merged sections hold at most this much (a foyer disk block is 16 MiB).
pub const MAX_MERGED_SECTION_BYTES: u64 = 12 * 1024 * 1024;
/// A run of small extents is merged once it has this many...
const MIN_RUN_EXTENTS: usize = 8;
/// ...or a section's worth of bytes; it holds at most this many sections'
/// worth, and so does one pass over a partition (bounding its memory).
const MAX_RUN_SECTIONS: u64 = 4;

/// One merged object holds at most this much.
pub const MAX_MERGED_OBJECT_BYTES: u64 = MAX_RUN_SECTIONS * MAX_MERGED_SECTION_BYTES;

/// Data that retention deletes within this long is not merged: rewriting
/// it would cost the disk and the bucket for nothing.
pub const MERGE_HORIZON_MS: i64 = 10 * 60 * 1000;

/// The runs of `extents` (a partition's, oldest first) to merge into
/// sections of `section_bytes`: consecutive extents under half that size
/// whose newest record is not older than `expiring_before_ms` (retention
/// deletes those soon, see [`MERGE_HORIZON_MS`]),
/// each run of at least [`MIN_RUN_EXTENTS`] extents or `section_bytes`
/// bytes (a shorter one waits for more data), at most
/// [`MAX_REPLACED_EXTENTS`] extents and [`MAX_RUN_SECTIONS`] sections.
/// No extent may hold more than half a run's bytes: an earlier merge's
/// result waits until as much new data follows it, so each byte is
/// rewritten about log2(section / upload size) times, not once per pass.
pub fn plan(extents: &[Extent], section_bytes: u64, expiring_before_ms: i64) -> Vec<Range<usize>> {
    let small = |e: &Extent| e.length < section_bytes / 2 && e.max_timestamp >= expiring_before_ms;
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

/// A partition to merge, with its topic's settings.
pub struct MergeCandidate<'a> {
    pub partition: &'a Partition,
    /// Merged sections hold at most this much.
    pub section_bytes: u64,
    /// Extents whose newest record is older are left to retention.
    pub expiring_before_ms: i64,
}

/// The runs of one partition a pass merges, read under `epoch`.
struct Planned<'a> {
    candidate: &'a MergeCandidate<'a>,
    epoch: i32,
    runs: Vec<Vec<Extent>>,
}

/// What of `candidate` a pass merges, if it is led here and has runs
/// (see [`plan`]); at most [`MAX_RUN_SECTIONS`] sections' worth.
fn plan_partition<'a>(candidate: &'a MergeCandidate<'a>) -> Option<Planned<'a>> {
    let epoch = candidate.partition.leadership()?;
    let (extents, _) = candidate.partition.retained();
    let limit = MAX_RUN_SECTIONS * candidate.section_bytes;
    let (mut runs, mut bytes) = (Vec::new(), 0);
    for run in plan(
        &extents,
        candidate.section_bytes,
        candidate.expiring_before_ms,
    ) {
        let run = &extents[run];
        let run_bytes: u64 = run.iter().map(|e| e.length).sum();
        if !runs.is_empty() && bytes + run_bytes > limit {
            break;
        }
        bytes += run_bytes;
        runs.push(run.to_vec());
    }
    (!runs.is_empty()).then_some(Planned {
        candidate,
        epoch,
        runs,
    })
}

impl Log {
    /// Merges the candidates' runs of small extents (see [`plan`]): at most
    /// [`MAX_RUN_SECTIONS`] sections' worth of each partition per pass,
    /// several partitions to an object of at most
    /// [`MAX_MERGED_OBJECT_BYTES`]. Returns how many extents were
    /// replaced; an object that fails is logged, and the others go on.
    pub async fn merge(&self, candidates: &[MergeCandidate<'_>]) -> Result<usize> {
        self.check_registration()?;
        let (mut merged, mut batch, mut batch_bytes) = (0, Vec::new(), 0);
        for candidate in candidates {
            let Some(planned) = plan_partition(candidate) else {
                continue;
            };
            let bytes: u64 = planned.runs.iter().flatten().map(|e| e.length).sum();
            if !batch.is_empty() && batch_bytes + bytes > MAX_MERGED_OBJECT_BYTES {
                merged += self.merge_batch(std::mem::take(&mut batch)).await;
                batch_bytes = 0;
            }
            batch_bytes += bytes;
            batch.push(planned);
        }
        if !batch.is_empty() {
            merged += self.merge_batch(batch).await;
        }
        metrics::counter!("silt_merged_extents_total").increment(merged as u64);
        Ok(merged)
    }

    /// Writes the runs of `batch` into one object; how many extents were
    /// replaced (failures are logged).
    async fn merge_batch(&self, batch: Vec<Planned<'_>>) -> usize {
        let all: Vec<Extent> = batch
            .iter()
            .flat_map(|p| p.runs.iter().flatten().cloned())
            .collect();
        self.cache.load(&all).await;
        let mut rewrites = Vec::new();
        for planned in &batch {
            for run in &planned.runs {
                let batches = match self.batches_of(run).await {
                    Ok(batches) => batches,
                    Err(e) => {
                        tracing::warn!(error = %e, "merging: a run could not be read; trying again at the next pass");
                        continue;
                    }
                };
                rewrites.push(Rewrite {
                    partition: planned.candidate.partition,
                    epoch: planned.epoch,
                    old: run.clone(),
                    batches,
                    section_bytes: planned.candidate.section_bytes,
                    // Compacted only if all of it was.
                    compacted: run.iter().all(|e| e.compacted),
                    tombstones_due_ms: run.iter().filter_map(|e| e.tombstones_due_ms).min(),
                });
            }
        }
        if rewrites.is_empty() {
            return 0;
        }
        let (partitions, extents) = (batch.len(), all.len());
        match self.rewrite(rewrites, "merge").await {
            Ok(merged) => {
                tracing::debug!(partitions, extents, merged, "merged");
                merged
            }
            Err(e) => {
                tracing::warn!(partitions, extents, error = %e, "merging failed; trying again at the next pass");
                0
            }
        }
    }

    /// The stored batches of `extents`, as they are.
    async fn batches_of(&self, extents: &[Extent]) -> Result<Vec<SealedBatch>> {
        let mut batches = Vec::new();
        for extent in extents {
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
        Ok(batches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

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
                compacted: false,
                tombstones_due_ms: None,
                entry_list: None,
            })
            .collect()
    }

    #[test]
    fn runs_of_small_extents_are_merged_once_long_enough() {
        // Sections of 100 bytes: under 50 is small.
        let few = extents(&[10; 7]);
        assert!(
            plan(&few, 100, i64::MIN).is_empty(),
            "seven small ones wait"
        );
        let eight = extents(&[10; 8]);
        assert_eq!(plan(&eight, 100, i64::MIN), vec![0..8]);
        // A large extent splits runs; a run of a section's worth of bytes
        // is merged however few its extents.
        let mixed = extents(&[60, 40, 40, 40, 90, 10, 10]);
        assert_eq!(plan(&mixed, 100, i64::MIN), vec![1..4]);
        // Runs are bounded in bytes (four sections) and extents.
        let long = extents(&[45; 20]);
        assert_eq!(plan(&long, 100, i64::MIN), vec![0..8, 8..16, 16..20]);
        let many = extents(&[1; 130]);
        assert_eq!(plan(&many, 1000, i64::MIN), vec![0..60, 60..120, 120..130]);
    }

    #[test]
    fn an_earlier_merge_waits_for_as_much_new_data() {
        // A merged extent of 40 and seven uploads of 5: merging would
        // mostly rewrite the merged one, and the seven alone are too few.
        let mut lengths = vec![40];
        lengths.extend([5; 7]);
        assert!(plan(&extents(&lengths), 100, i64::MIN).is_empty());
        // With as much new data after it, it is merged with them...
        lengths.push(5);
        assert_eq!(plan(&extents(&lengths), 100, i64::MIN), vec![0..9]);
        // ...and two merged extents of about the same size together.
        assert_eq!(plan(&extents(&[40, 40, 30]), 100, i64::MIN), vec![0..3]);
    }

    #[test]
    fn data_about_to_expire_is_not_merged() {
        // Extent i's newest record is at time i: those before 4 expire soon.
        let mut soon = extents(&[10; 12]);
        for (i, e) in soon.iter_mut().enumerate() {
            e.max_timestamp = i as i64;
        }
        assert_eq!(plan(&soon, 100, 4), vec![4..12]);
        assert!(plan(&soon, 100, 5).is_empty(), "seven left wait");
    }
}
