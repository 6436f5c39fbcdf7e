//! The broker's export task: every `export.interval_ms` the leader of each
//! partition of an exported topic (`silt.export.format = parquet` or
//! `iceberg`) writes
//! the next Parquet file ([`crate::export`]) once `export.file_bytes` of
//! committed data wait or the oldest has waited `export.max_delay_ms`,
//! then commits the offset the file ends at with the partition's export
//! progress, under its leader epoch; for `iceberg`, then also to the
//! topic's table ([`super::iceberg`]).
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

use super::{Broker, Topic};
use crate::error::{Error, Result};
use crate::export::iceberg::DataFile;
use crate::export::{ExportFile, FileBuilder, Values, covered};
use crate::log::partition::{Isolation, Partition, ReadLimit};
use crate::meta::{CommitOutcome, ExportProgress, JsonField};
use crate::storage::ExportKey;

/// Bytes read from the log at a time while building a file.
const READ_BYTES: usize = 8 * 1024 * 1024;
/// The most files one pass writes for a partition.
const FILES_PER_PASS: usize = 8;

/// What a pass over one partition did.
struct Pass {
    /// The progress committed as of the pass, at its epoch (`None` where
    /// this broker does not lead, or must read it again).
    committed: Option<(i32, ExportProgress)>,
    /// Whether it wrote a file and more records wait.
    more: bool,
}

/// What the exporter keeps between passes for each partition: the
/// progress it committed last at a leader epoch (while it leads, it alone
/// moves it, so the metadata store is read once per leadership, not every
/// pass), and the last pass's error for the export status.
#[derive(Default)]
pub struct ExportState(Mutex<HashMap<(Uuid, i32), Known>>);

#[derive(Default)]
struct Known {
    committed: Option<(i32, ExportProgress)>,
    error: Option<String>,
    /// The offset the topic's Iceberg table is known to reach in the
    /// partition.
    table: i64,
}

impl ExportState {
    fn with<T>(&self, topic: Uuid, partition: i32, f: impl FnOnce(&mut Known) -> T) -> T {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(known.entry((topic, partition)).or_default())
    }

    /// The progress committed at `epoch`, if this exporter knows it.
    fn progress(&self, topic: Uuid, partition: i32, epoch: i32) -> Option<ExportProgress> {
        self.with(topic, partition, |k| match &k.committed {
            Some((at, progress)) if *at == epoch => Some(progress.clone()),
            _ => None,
        })
    }

    /// Records the progress committed at `epoch` (`None`: not known, read
    /// it again), and the pass's error.
    fn record(
        &self,
        topic: Uuid,
        partition: i32,
        committed: Option<(i32, ExportProgress)>,
        error: Option<String>,
    ) {
        self.with(topic, partition, |k| {
            k.committed = committed;
            k.error = error;
        });
    }

    fn table(&self, topic: Uuid, partition: i32) -> i64 {
        self.with(topic, partition, |k| k.table)
    }

    fn set_table(&self, topic: Uuid, partition: i32, offset: i64) {
        self.with(topic, partition, |k| k.table = k.table.max(offset));
    }

    fn error(&self, topic: Uuid, partition: i32) -> Option<String> {
        self.with(topic, partition, |k| k.error.clone())
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
            if !self.configs_of(&dynamic, &topic).exported() {
                continue;
            }
            for partition in &topic.partitions {
                // While whole files wait (catching up), a few in a row.
                for _ in 0..FILES_PER_PASS {
                    match self.export_partition(&topic, partition).await {
                        Ok(pass) => {
                            self.exports
                                .record(topic.id, partition.index, pass.committed, None);
                            if !pass.more {
                                break;
                            }
                        }
                        Err(e) => {
                            metrics::counter!("silt_export_errors_total", "topic" => topic.name.clone())
                            .increment(1);
                            tracing::warn!(
                                topic = %topic.name,
                                partition = partition.index,
                                error = %e,
                                "export failed; trying again at the next pass"
                            );
                            let error = Some(e.to_string());
                            self.exports.record(topic.id, partition.index, None, error);
                            break;
                        }
                    }
                }
            }
        }
    }

    /// The export lag in records of each exported partition this broker
    /// leads and knows the progress of, from memory (for `/metrics`).
    pub fn export_lags(&self) -> Vec<(String, i32, i64)> {
        let dynamic = self.dynamic_configs();
        let mut lags = Vec::new();
        for topic in self.topics() {
            if !self.configs_of(&dynamic, &topic).exported() {
                continue;
            }
            for partition in &topic.partitions {
                let Some(epoch) = partition.leadership() else {
                    continue;
                };
                let Some(progress) = self.exports.progress(topic.id, partition.index, epoch) else {
                    continue;
                };
                let offsets = self.log.offsets(partition);
                let end = partition.committed_end().min(offsets.last_stable);
                let lag = end - progress.offset.max(offsets.log_start);
                lags.push((topic.name.clone(), partition.index, lag.max(0)));
            }
        }
        lags
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
            if !self.configs_of(&dynamic, &topic).exported() {
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
                    last_error: self.exports.error(topic.id, partition.index),
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
    async fn export_partition(&self, topic: &Topic, partition: &Arc<Partition>) -> Result<Pass> {
        let Some(epoch) = partition.leadership() else {
            return Ok(Pass {
                committed: None,
                more: false,
            });
        };
        let progress = match self.exports.progress(topic.id, partition.index, epoch) {
            Some(known) => known,
            None => self.meta.partition(topic.id, partition.index).await?.export,
        };
        let dynamic = self.dynamic_configs();
        let json = self.configs_of(&dynamic, topic).exports_json();
        let iceberg = self.configs_of(&dynamic, topic).exported_to_iceberg();
        // The files committed before go into the table before the next.
        if iceberg && self.exports.table(topic.id, partition.index) < progress.offset {
            self.sync_table(topic, partition.index, progress.offset, None)
                .await?;
            self.exports
                .set_table(topic.id, partition.index, progress.offset);
        }
        let offsets = self.log.offsets(partition);
        let log_start = offsets.log_start;
        let mut start = progress.offset;
        if start < log_start {
            // Records deleted before they were exported (DeleteRecords,
            // or retention before export was turned on): counted, never
            // waited for.
            metrics::counter!("silt_export_skipped_records_total", "topic" => topic.name.clone())
                .increment((log_start - start) as u64);
            // A file written at the progress was never committed: gone,
            // so that the partition's folder holds committed files alone.
            let orphan = ExportKey {
                topic: &topic.name,
                topic_id: topic.id,
                partition: partition.index,
                start,
            };
            self.bucket.delete_export_file(&orphan).await?;
            tracing::warn!(
                topic = %topic.name,
                partition = partition.index,
                from = start,
                to = log_start,
                "records deleted before export; export goes on from the log start"
            );
            start = log_start;
        }
        let end = partition.committed_end().min(offsets.last_stable);
        let lag = (end - start).max(0);
        let unchanged = Pass {
            committed: Some((epoch, progress.clone())),
            more: false,
        };
        if lag == 0 {
            return Ok(unchanged);
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
            return Ok(unchanged);
        }
        let key = ExportKey {
            topic: &topic.name,
            topic_id: topic.id,
            partition: partition.index,
            start,
        };
        let values = if json {
            Values::Json(progress.json_fields.clone())
        } else {
            Values::Bytes
        };
        let mut file = self.build_file(topic, partition, &key, end, values).await?;
        if iceberg && json {
            // The table gets the file's columns before the file is
            // written, so that each JSON field has one type in the files
            // of every partition: a field another partition added first
            // with another type makes this file be built again with the
            // table's.
            if let Err(table_fields) = self.add_table_columns(topic, &file.columns).await? {
                tracing::info!(
                    topic = %topic.name,
                    partition = partition.index,
                    "a JSON field has another type in the Iceberg table: the file is built again with the table's"
                );
                let fields = seeded(table_fields, &progress.json_fields);
                file = self
                    .build_file(topic, partition, &key, end, Values::Json(fields))
                    .await?;
                if let Err(fields) = self.add_table_columns(topic, &file.columns).await? {
                    return Err(Error::Meta(format!(
                        "the JSON fields of the Iceberg table of '{}' changed while a file was built ({} fields); trying again",
                        topic.name,
                        fields.len()
                    )));
                }
            }
        }
        let file = self.put_file(&key, file).await?;
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
            .commit_export(topic.id, partition.index, epoch, progress, next.clone())
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
                crate::failpoint::hit("export.after_progress");
                if iceberg {
                    let fresh = DataFile {
                        path: self.bucket.export_file_uri(&key),
                        partition: partition.index,
                        rows: file.rows,
                        bytes: file.bytes.len() as u64,
                        start,
                        end: file.end,
                    };
                    let fresh = (&fresh, file.columns.as_slice());
                    self.sync_table(topic, partition.index, file.end, Some(fresh))
                        .await?;
                    self.exports.set_table(topic.id, partition.index, file.end);
                }
                Ok(Pass {
                    more: file.end < end,
                    committed: Some((epoch, next)),
                })
            }
            CommitOutcome::Gone | CommitOutcome::Fenced => Ok(Pass {
                committed: None,
                more: false,
            }),
            CommitOutcome::Failed => Err(Error::Meta(
                "the export progress moved under this exporter".into(),
            )),
        }
    }

    /// Builds the file of the partition's committed records from `start`
    /// (before `end`, about `export.file_bytes` at most). The batches are
    /// read here; decoding and encoding them run on a thread of lower
    /// priority ([`in_background`]).
    async fn build_file(
        &self,
        topic: &Topic,
        partition: &Arc<Partition>,
        key: &ExportKey<'_>,
        end: i64,
        values: Values,
    ) -> Result<ExportFile> {
        let limit = ReadLimit {
            max_bytes: READ_BYTES,
            at_least_one: true,
        };
        let started = std::time::Instant::now();
        let (mut next, mut bytes, mut parts) = (key.start, 0, Vec::new());
        while next < end && bytes < self.config.export.file_bytes {
            // As a catching-up consumer: the sections ahead are loaded
            // together, in the background, while these are decoded.
            self.log
                .prefetch(std::iter::once((partition.as_ref(), next)))
                .await;
            let read = self
                .log
                .read(partition, next, limit, Isolation::ReadCommitted)
                .await?;
            let Some(records) = read.records else { break };
            let Some((within, after)) = before(&records, end) else {
                break;
            };
            bytes += within.len() as u64;
            next = after;
            parts.push(within);
        }
        if next == key.start {
            return Err(Error::Meta(format!(
                "no committed records to export at offset {}",
                key.start
            )));
        }
        let read = started.elapsed();
        let aborted = partition.aborted_within(key.start, next);
        let inflate_limit = self.config.limits.max_inflated_batch_bytes;
        let (index, start, name) = (partition.index, key.start, topic.name.clone());
        let (file, unreadable) = in_background(move || {
            let mut builder = FileBuilder::new(index, start, values);
            let unreadable: u64 = parts
                .iter()
                .map(|part| builder.add(part, &aborted, inflate_limit))
                .sum();
            builder.finish(&name).map(|file| (file, unreadable))
        })
        .await?
        .map_err(|e| Error::Meta(e.to_string()))?;
        let built = started.elapsed() - read;
        if unreadable > 0 {
            metrics::counter!("silt_export_unreadable_batches_total", "topic" => topic.name.clone())
                .increment(unreadable);
        }
        tracing::debug!(
            topic = %topic.name,
            partition = partition.index,
            read_ms = read.as_millis() as u64,
            build_ms = built.as_millis() as u64,
            "export file built"
        );
        Ok(file)
    }

    /// Writes `file` create-only; the file already there if another got
    /// there first.
    async fn put_file(&self, key: &ExportKey<'_>, file: ExportFile) -> Result<ExportFile> {
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

/// The JSON fields to build a file with: the table's, then the
/// partition's own that the table lacks.
fn seeded(table: Vec<JsonField>, partition: &[JsonField]) -> Vec<JsonField> {
    let mut fields = table;
    for field in partition {
        if !fields.iter().any(|f| f.name == field.name) {
            fields.push(field.clone());
        }
    }
    fields
}

/// The whole batches of `records` that start before `end`, and the offset
/// after them; `None` if there are none.
fn before(records: &bytes::Bytes, end: i64) -> Option<(bytes::Bytes, i64)> {
    let (last, range) = crate::protocol::batch::iter_batches(records)
        .take_while(|(header, _)| header.base_offset < end)
        .last()?;
    Some((records.slice(..range.end), last.last_offset() + 1))
}

/// Runs `f` on a thread of its own at a lower CPU priority (nice 10), so
/// that building export files yields the cores to serving clients.
async fn in_background<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("silt-export".into())
        .spawn(move || {
            // SAFETY: setpriority only reads its arguments; on Linux a
            // thread id names that thread alone.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
            }
            let _ = sender.send(f());
        })?;
    receiver
        .await
        .map_err(|_| Error::Meta("the export thread failed".into()))
}
