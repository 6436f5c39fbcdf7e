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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use tokio_util::sync::CancellationToken;

use super::{Broker, Topic, configs};
use crate::error::{Error, Result};
use crate::export::{ExportFile, FileBuilder, Values, covered};
use crate::log::partition::{Isolation, Partition, ReadLimit};
use crate::meta::{CommitOutcome, ExportProgress};
use crate::storage::ExportKey;

/// Bytes read from the log at a time while building a file.
const READ_BYTES: usize = 8 * 1024 * 1024;

/// The last export error of each partition this broker leads (cleared by
/// a pass that succeeds), for the export status.
#[derive(Default)]
pub struct ExportErrors(Mutex<HashMap<(Uuid, i32), String>>);

impl ExportErrors {
    fn set(&self, topic: Uuid, partition: i32, error: Option<String>) {
        let mut errors = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match error {
            Some(error) => errors.insert((topic, partition), error),
            None => errors.remove(&(topic, partition)),
        };
    }

    fn get(&self, topic: Uuid, partition: i32) -> Option<String> {
        let errors = self.0.lock().unwrap_or_else(|e| e.into_inner());
        errors.get(&(topic, partition)).cloned()
    }
}

/// How far one partition is exported (`GET /api/v1/export`,
/// `silt export status`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartitionExport {
    pub topic: String,
    pub partition: i32,
    /// Every committed record before it is exported.
    pub exported_offset: i64,
    /// The end of what may be exported: committed, below the last stable
    /// offset.
    pub end_offset: i64,
    pub lag_records: i64,
    /// How old the oldest record not exported is (by the newest record
    /// of its upload); 0 without lag.
    pub lag_seconds: f64,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    /// When the last file was committed (ms since the epoch; 0: none).
    pub last_export_ms: i64,
    /// The last pass's error, when this broker leads the partition.
    pub last_error: Option<String>,
}

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
                let exported = self.export_partition(&topic, partition).await;
                if let Err(e) = &exported {
                    metrics::counter!("silt_export_errors_total", "topic" => topic.name.clone())
                        .increment(1);
                    tracing::warn!(
                        topic = %topic.name,
                        partition = partition.index,
                        error = %e,
                        "export failed; trying again at the next pass"
                    );
                }
                let error = exported.err().map(|e| e.to_string());
                self.export_errors.set(topic.id, partition.index, error);
            }
        }
    }

    /// The export status of every partition of the exported topics, or of
    /// `topic` alone; `UnknownTopicOrPartition` for a topic that does not
    /// exist or is not exported.
    pub async fn export_status(&self, topic: Option<&str>) -> Result<Vec<PartitionExport>> {
        let dynamic = self.dynamic_configs();
        let topics: Vec<Arc<Topic>> = match topic {
            Some(name) => vec![self.topic(name).ok_or(Error::UnknownTopicOrPartition)?],
            None => self.topics(),
        };
        let now_ms = self.clock.now_ms();
        let mut status = Vec::new();
        for topic in topics {
            if !configs::exported(&self.config, &dynamic, &topic.configs) {
                continue;
            }
            for partition in &topic.partitions {
                let stored = self.meta.partition(topic.id, partition.index).await?;
                let exported_offset = stored.export.offset.max(stored.log_start_offset);
                let end_offset = stored
                    .committed_end()
                    .min(self.log.offsets(partition).last_stable)
                    .max(exported_offset);
                let oldest_ms = stored
                    .extents
                    .iter()
                    .find(|e| e.last_offset >= exported_offset)
                    .map(|e| e.max_timestamp);
                let lag_records = end_offset - exported_offset;
                let lag_seconds = match oldest_ms {
                    Some(ms) if lag_records > 0 => now_ms.saturating_sub(ms).max(0) as f64 / 1000.0,
                    _ => 0.0,
                };
                status.push(PartitionExport {
                    topic: topic.name.clone(),
                    partition: partition.index,
                    exported_offset,
                    end_offset,
                    lag_records,
                    lag_seconds,
                    files: stored.export.files,
                    rows: stored.export.rows,
                    bytes: stored.export.bytes,
                    last_export_ms: stored.export.committed_ms,
                    last_error: self.export_errors.get(topic.id, partition.index),
                });
            }
        }
        if let Some(name) = topic
            && status.is_empty()
        {
            return Err(Error::InvalidConfig(format!(
                "topic '{name}' is not exported (silt.export.format is none)"
            )));
        }
        Ok(status)
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
        let values = if configs::exports_json(&self.config, &self.dynamic_configs(), &topic.configs)
        {
            Values::Json(progress.json_fields.clone())
        } else {
            Values::Bytes
        };
        let file = match self.written_file(&key).await? {
            Some(written) => written,
            None => self.write_file(topic, partition, &key, end, values).await?,
        };
        crate::failpoint::hit("export.after_write");
        let next = ExportProgress {
            offset: file.end,
            files: progress.files + 1,
            rows: progress.rows + file.rows,
            bytes: progress.bytes + file.bytes.len() as u64,
            committed_ms: now_ms,
            json_fields: file.json_fields.clone(),
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
                metrics::counter!("silt_export_bytes_total", "topic" => name.clone())
                    .increment(file.bytes.len() as u64);
                metrics::counter!("silt_export_json_conflicts_total", "topic" => name)
                    .increment(file.json_conflicts);
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
        values: Values,
    ) -> Result<ExportFile> {
        let mut builder = FileBuilder::new(partition.index, key.start, values);
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
