//! Retention of exported files (`silt.export.retention.ms`): the export is
//! the analytics copy, which stays when the topic's own records expire,
//! until its own retention. Every `storage.lifecycle_interval_ms` the
//! leader of each partition of a topic with one deletes the partition's
//! committed export files written longer ago than it. An Iceberg table's
//! files first leave the table (a `delete` snapshot); they are deleted
//! from the bucket once `silt.export.snapshot.retention.ms` more has
//! passed, so that the snapshots that still list them have expired first.

use std::collections::BTreeSet;

use super::{Broker, Topic};
use crate::error::Result;
use crate::storage::ExportKey;

impl Broker {
    /// One pass over the exported partitions this broker leads; what
    /// fails is logged and tried again at the next pass.
    pub(super) async fn expire_exports(&self) {
        let dynamic = self.dynamic_configs();
        for topic in self.topics() {
            let configs = self.configs_of(&dynamic, &topic);
            let Some(retention_ms) = configs.export_retention_ms().filter(|_| configs.exported())
            else {
                continue;
            };
            let iceberg = configs.exported_to_iceberg();
            let snapshot_age_ms = configs.snapshot_retention_ms();
            for partition in &topic.partitions {
                if partition.leadership().is_none() {
                    continue;
                }
                let kept_ms = iceberg.then_some(snapshot_age_ms);
                if let Err(e) = self
                    .expire_partition_exports(&topic, partition.index, retention_ms, kept_ms)
                    .await
                {
                    tracing::warn!(
                        topic = %topic.name,
                        partition = partition.index,
                        error = %e,
                        "export retention failed; trying again at the next pass"
                    );
                }
            }
        }
    }

    /// Deletes the committed export files of `partition` written more than
    /// `retention_ms` ago; with an Iceberg table (`table_kept_ms`: how
    /// long its snapshots are kept), removes them from it first and
    /// deletes them that much later.
    async fn expire_partition_exports(
        &self,
        topic: &Topic,
        partition: i32,
        retention_ms: i64,
        table_kept_ms: Option<i64>,
    ) -> Result<()> {
        let now_ms = self.clock.now_ms();
        let exported = self
            .meta
            .partition(topic.id, partition)
            .await?
            .export
            .offset;
        let mut key = ExportKey {
            topic: &topic.name,
            topic_id: topic.id,
            partition,
            start: 0,
        };
        let old = |written_ms: i64, age_ms: i64| now_ms.saturating_sub(written_ms) > age_ms;
        // Committed files only: the one at the progress may be written
        // but not committed yet.
        let expired: Vec<_> = self
            .bucket
            .list_export_files(&key)
            .await?
            .into_iter()
            .filter(|f| f.start < exported && old(f.written_ms, retention_ms))
            .collect();
        if expired.is_empty() {
            return Ok(());
        }
        let mut deletable = Vec::new();
        match table_kept_ms {
            None => deletable = expired,
            Some(kept_ms) => {
                let uris: BTreeSet<String> = expired
                    .iter()
                    .map(|f| {
                        key.start = f.start;
                        self.bucket.export_file_uri(&key)
                    })
                    .collect();
                let listed = self.remove_from_table(topic, &uris).await?;
                let table_reaches = match self.iceberg_table(&topic.name).await? {
                    Some((_, table, _)) if table.exports(topic.id) => table.offset(partition),
                    _ => 0,
                };
                for file in expired {
                    key.start = file.start;
                    // Out of the table (not just added to it) long enough
                    // that no kept snapshot lists it.
                    let out = file.start < table_reaches
                        && !listed.contains(&self.bucket.export_file_uri(&key));
                    if out && old(file.written_ms, retention_ms.saturating_add(kept_ms)) {
                        deletable.push(file);
                    }
                }
            }
        }
        for file in &deletable {
            key.start = file.start;
            self.bucket.delete_export_file(&key).await?;
        }
        if !deletable.is_empty() {
            metrics::counter!("silt_export_files_expired_total", "topic" => topic.name.clone())
                .increment(deletable.len() as u64);
            tracing::info!(
                topic = %topic.name,
                partition,
                files = deletable.len(),
                "expired export files deleted"
            );
        }
        Ok(())
    }
}
