//! The broker's export task: every `export.interval_ms` the leader of each
//! partition of an exported topic (`silt.export.format = parquet`) writes
//! the next Parquet file ([`crate::export`]) once `export.file_bytes` of
//! committed data wait or the oldest has waited `export.max_delay_ms`,
//! then commits the offset the file ends at with the partition's export
//! progress, under its leader epoch.
//!
//! Exactly once: a file is named by the offset it starts at, which is the
//! committed progress, and written create-only. An exporter that finds
//! the file already there (its predecessor crashed between writing and
//! committing it, or is a stale leader) takes it over as it is, and the
//! commit, compared with the progress it read, lets one of them move on.
//! Files never overlap, and none is left out.
//!
//! What is exported: records committed to the metadata store (never the
//! tail a `local` WAL alone holds) below the last stable offset, without
//! aborted transactions and markers.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Broker, Topic, configs};
use crate::error::{Error, Result};
use crate::export::{ExportFile, FileBuilder, covered};
use crate::log::partition::{Isolation, Partition, ReadLimit};
use crate::meta::{CommitOutcome, ExportProgress};
use crate::storage::ExportKey;

/// Bytes read from the log at a time while building a file.
const READ_BYTES: usize = 8 * 1024 * 1024;

impl Broker {
    /// Exports every `export.interval_ms` until `shutdown`.
    pub(super) async fn run_export(self: Arc<Self>, shutdown: CancellationToken) {
        let interval = Duration::from_millis(self.config.export.interval_ms);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.export_topics().await,
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// One pass over the exported topics' partitions this broker leads;
    /// what fails is logged, counted and tried again at the next pass.
    async fn export_topics(&self) {
        let dynamic = self.dynamic_configs();
        for topic in self.topics() {
            if !configs::exported(&self.config, &dynamic, &topic.configs) {
                continue;
            }
            for partition in &topic.partitions {
                if let Err(e) = self.export_partition(&topic, partition).await {
                    metrics::counter!("silt_export_errors_total", "topic" => topic.name.clone())
                        .increment(1);
                    tracing::warn!(
                        topic = %topic.name,
                        partition = partition.index,
                        error = %e,
                        "export failed; trying again at the next pass"
                    );
                }
            }
        }
    }

    /// Writes and commits the partition's next file if one is due.
    async fn export_partition(&self, topic: &Topic, partition: &Arc<Partition>) -> Result<()> {
        let Some(epoch) = partition.leadership() else {
            return Ok(());
        };
        let stored = self.meta.partition(topic.id, partition.index).await?;
        let progress = stored.export.clone();
        let mut start = progress.offset;
        if start < stored.log_start_offset {
            // Records deleted before they were exported (DeleteRecords,
            // or retention before export was turned on): counted, never
            // waited for.
            metrics::counter!("silt_export_skipped_records_total", "topic" => topic.name.clone())
                .increment((stored.log_start_offset - start) as u64);
            tracing::warn!(
                topic = %topic.name,
                partition = partition.index,
                from = start,
                to = stored.log_start_offset,
                "records deleted before export; export goes on from the log start"
            );
            start = stored.log_start_offset;
        }
        let end = stored
            .committed_end()
            .min(self.log.offsets(partition).last_stable);
        let lag = (end - start).max(0);
        metrics::gauge!(
            "silt_export_lag_records",
            "topic" => topic.name.clone(),
            "partition" => partition.index.to_string()
        )
        .set(lag as f64);
        if lag == 0 {
            return Ok(());
        }
        // Due once a file's worth waits, or the oldest data waiting (the
        // newest record of its first extent) is `max_delay_ms` old.
        let waiting = partition.extents_from(start, self.config.export.file_bytes);
        let bytes: u64 = waiting.iter().map(|e| e.length).sum();
        let oldest_ms = waiting.first().map_or(i64::MAX, |e| e.max_timestamp);
        let now_ms = self.clock.now_ms();
        if bytes < self.config.export.file_bytes
            && now_ms.saturating_sub(oldest_ms) < self.config.export.max_delay_ms as i64
        {
            return Ok(());
        }
        let key = ExportKey {
            topic: &topic.name,
            topic_id: topic.id,
            partition: partition.index,
            start,
        };
        let file = match self.written_file(&key).await? {
            Some(written) => written,
            None => self.write_file(topic, partition, &key, end).await?,
        };
        crate::failpoint::hit("export.after_write");
        let next = ExportProgress {
            offset: file.end,
            files: progress.files + 1,
            rows: progress.rows + file.rows,
            bytes: progress.bytes + file.bytes.len() as u64,
            committed_ms: now_ms,
        };
        let outcome = self
            .meta
            .commit_export(topic.id, partition.index, epoch, progress, next)
            .await?;
        match outcome {
            CommitOutcome::Committed => {
                let name = topic.name.clone();
                metrics::counter!("silt_export_files_total", "topic" => name.clone()).increment(1);
                metrics::counter!("silt_export_rows_total", "topic" => name.clone())
                    .increment(file.rows);
                metrics::counter!("silt_export_bytes_total", "topic" => name)
                    .increment(file.bytes.len() as u64);
                tracing::info!(
                    topic = %topic.name,
                    partition = partition.index,
                    start,
                    end = file.end,
                    rows = file.rows,
                    bytes = file.bytes.len(),
                    "exported"
                );
                Ok(())
            }
            CommitOutcome::Gone | CommitOutcome::Fenced => Ok(()),
            CommitOutcome::Failed => Err(Error::Meta(
                "the export progress moved under this exporter".into(),
            )),
        }
    }

    /// Builds the file of the partition's committed records from `start`
    /// (before `end`, at most about `export.file_bytes`) and writes it
    /// create-only; the file already there if another got there first.
    async fn write_file(
        &self,
        topic: &Topic,
        partition: &Arc<Partition>,
        key: &ExportKey<'_>,
        end: i64,
    ) -> Result<ExportFile> {
        let mut builder = FileBuilder::new(partition.index, key.start);
        let limit = ReadLimit {
            max_bytes: READ_BYTES,
            at_least_one: true,
        };
        let inflate_limit = self.config.limits.max_inflated_batch_bytes;
        while builder.end() < end && builder.data_bytes() < self.config.export.file_bytes {
            let read = self
                .log
                .read(partition, builder.end(), limit, Isolation::ReadCommitted)
                .await?;
            let Some(records) = read.records else { break };
            let within = before(&records, end);
            if within.is_empty() {
                break;
            }
            let aborted = partition.aborted_within(builder.end(), end);
            let unreadable = builder.add(&within, &aborted, inflate_limit);
            if unreadable > 0 {
                metrics::counter!("silt_export_unreadable_batches_total", "topic" => topic.name.clone())
                    .increment(unreadable);
            }
        }
        let file = tokio::task::spawn_blocking({
            let name = topic.name.clone();
            move || builder.finish(&name)
        })
        .await
        .map_err(|e| Error::Meta(format!("export task failed: {e}")))?
        .map_err(|e| Error::Meta(e.to_string()))?;
        if self.bucket.put_export_file(key, file.bytes.clone()).await? {
            return Ok(file);
        }
        self.written_file(key)
            .await?
            .ok_or_else(|| Error::Meta("an export file vanished".into()))
    }

    /// The file `key` if one was written before, which an exporter takes
    /// over as it is.
    async fn written_file(&self, key: &ExportKey<'_>) -> Result<Option<ExportFile>> {
        match self.bucket.read_export_file(key).await {
            Ok(bytes) => covered(bytes)
                .map(Some)
                .map_err(|e| Error::Meta(e.to_string())),
            Err(Error::ObjectStore(object_store::Error::NotFound { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The whole batches of `records` that start before `end`.
fn before(records: &bytes::Bytes, end: i64) -> bytes::Bytes {
    let cut = crate::protocol::batch::iter_batches(records)
        .take_while(|(header, _)| header.base_offset < end)
        .last()
        .map_or(0, |(_, range)| range.end);
    records.slice(..cut)
}
