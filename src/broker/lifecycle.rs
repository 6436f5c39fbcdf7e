//! The broker's lifecycle task: every `storage.lifecycle_interval_ms` it
//! applies each topic's retention to the partitions this broker leads, so
//! expired data leaves the log, compacts those of compacted topics, then
//! merges their runs of small extents into objects of their own (the
//! objects no extent refers to any more are then deleted by garbage
//! collection). Export files expire on the same beat
//! ([`super::export_retention`]).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Broker;
use crate::log::merge::{MERGE_HORIZON_MS, MergeCandidate};

impl Broker {
    /// Applies retention and merges every `storage.lifecycle_interval_ms`
    /// until `shutdown`.
    pub(super) async fn run_lifecycle(self: Arc<Self>, shutdown: CancellationToken) {
        let interval = Duration::from_millis(self.config.storage.lifecycle_interval_ms);
        // The first pass one interval after start, like every other.
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    self.apply_retention().await;
                    self.expire_exports().await;
                    self.compact_logs().await;
                    self.merge_extents().await;
                }
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// One compaction pass over the partitions of compacted topics this
    /// broker leads; a partition that fails is logged and tried again
    /// next time.
    async fn compact_logs(&self) {
        let now_ms = self.clock.now_ms();
        let dynamic = self.dynamic_configs();
        for topic in self.topics() {
            let Some(compaction) = self.configs_of(&dynamic, &topic).compaction() else {
                continue;
            };
            let section_bytes = self.configs_of(&dynamic, &topic).merged_section_bytes();
            for partition in &topic.partitions {
                if partition.leadership().is_none() {
                    continue;
                }
                match self
                    .log
                    .compact(partition, &compaction, section_bytes, now_ms)
                    .await
                {
                    Ok(Some(done)) => tracing::info!(
                        topic = %topic.name,
                        partition = partition.index,
                        bytes_read = done.bytes_read,
                        bytes_written = done.bytes_written,
                        records_removed = done.records_removed,
                        "compacted"
                    ),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(
                        topic = %topic.name,
                        partition = partition.index,
                        error = %e,
                        "compaction failed; trying again at the next pass"
                    ),
                }
            }
        }
    }

    /// One merge pass over the partitions this broker leads (see
    /// [`crate::log::Log::merge`]; what fails is logged and tried again
    /// next time). Reports the extents they have after it
    /// (`silt_partition_extents`).
    async fn merge_extents(&self) {
        let now_ms = self.clock.now_ms();
        let dynamic = self.dynamic_configs();
        let topics = self.topics();
        let mut candidates = Vec::new();
        for topic in &topics {
            let section_bytes = self.configs_of(&dynamic, topic).merged_section_bytes();
            let retention = self.configs_of(&dynamic, topic).retention();
            let expiring_before_ms = match retention.and_then(|r| r.ms) {
                Some(ms) => now_ms.saturating_sub(ms).saturating_add(MERGE_HORIZON_MS),
                None => i64::MIN,
            };
            candidates.extend(topic.partitions.iter().map(|partition| MergeCandidate {
                partition,
                section_bytes,
                expiring_before_ms,
            }));
        }
        if let Err(e) = self.log.merge(&candidates).await {
            tracing::warn!(error = %e, "merging failed; trying again at the next pass");
        }
        let led = candidates
            .iter()
            .filter(|c| c.partition.leadership().is_some());
        let extents: usize = led.map(|c| c.partition.extent_count()).sum();
        metrics::gauge!("silt_partition_extents").set(extents as f64);
    }

    /// One retention pass over the partitions this broker leads; a
    /// partition that fails is logged and tried again next time.
    async fn apply_retention(&self) {
        let now_ms = self.clock.now_ms();
        let dynamic = self.dynamic_configs();
        for topic in self.topics() {
            let Some(retention) = self.configs_of(&dynamic, &topic).retention() else {
                continue;
            };
            let exported = self.configs_of(&dynamic, &topic).exported();
            for partition in &topic.partitions {
                if partition.leadership().is_none() {
                    continue;
                }
                // Retention never deletes what export has not written yet.
                let kept_from = if exported {
                    match self.meta.partition(topic.id, partition.index).await {
                        Ok(stored) => Some(stored.export.offset),
                        Err(e) => {
                            tracing::warn!(topic = %topic.name, partition = partition.index, error = %e, "cannot read the export progress; retention waits");
                            continue;
                        }
                    }
                } else {
                    None
                };
                match self
                    .log
                    .expire(partition, retention, now_ms, kept_from)
                    .await
                {
                    Ok(Some(log_start)) => tracing::info!(
                        topic = %topic.name,
                        partition = partition.index,
                        log_start,
                        "retention moved the log start"
                    ),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(
                        topic = %topic.name,
                        partition = partition.index,
                        error = %e,
                        "retention failed; trying again at the next pass"
                    ),
                }
            }
        }
    }
}
