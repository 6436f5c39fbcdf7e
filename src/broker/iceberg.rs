//! Iceberg commits (`silt.export.format = iceberg`): once the leader of a
//! partition has committed export files, it appends those the topic's
//! table lacks as one snapshot ([`crate::export::iceberg`]), before it
//! writes the partition's next file. Each snapshot records how far it
//! reaches in every partition, so a leader that crashed between the two
//! commits, or its successor, appends exactly the files missing.
//!
//! The table's metadata files are versioned (`v<N>.metadata.json`) and
//! written create-only: of two brokers committing at once one wins, the
//! other reads the new version and tries again. `version-hint.text` names
//! the newest for readers of the folder. After each commit the snapshots
//! older than `silt.export.snapshot.retention.ms` expire: their manifest
//! lists, the manifests no kept snapshot lists, and metadata files beyond
//! the last [`PREVIOUS_VERSIONS`](crate::export::iceberg::PREVIOUS_VERSIONS)
//! are deleted. Data files stay: they are
//! the export.

use std::collections::{BTreeSet, HashMap};

use arrow_schema::Field;
use bytes::Bytes;

use super::{Broker, Topic};
use crate::error::{Error, Result};
use crate::export::iceberg::{
    Append, DataFile, Entry, IcebergError, MERGE_MANIFESTS, ManifestFile, Snapshot, Status,
    TableMetadata, read_manifest, read_manifest_list,
};
use crate::export::{covered, json};
use crate::meta::JsonField;
use crate::storage::ExportKey;

/// The file naming the newest metadata version.
const VERSION_HINT: &str = "version-hint.text";
/// Commits tried before giving up until the next pass.
const TRIES: usize = 8;

/// A metadata file's name.
fn metadata_name(version: u64) -> String {
    format!("v{version}.metadata.json")
}

/// A metadata file's version, from its name.
fn version_of(name: &str) -> Option<u64> {
    name.strip_prefix('v')?
        .strip_suffix(".metadata.json")?
        .parse()
        .ok()
}

/// A file of the table's metadata folder, by its URI.
fn name_of(uri: &str) -> &str {
    uri.rsplit('/').next().unwrap_or(uri)
}

fn iceberg_error(e: IcebergError) -> Error {
    Error::Meta(e.to_string())
}

impl Broker {
    /// The topics whose export is committed to an Iceberg table.
    pub fn iceberg_topics(&self) -> Vec<String> {
        let dynamic = self.dynamic_configs();
        self.topics()
            .into_iter()
            .filter(|t| self.configs_of(&dynamic, t).exported_to_iceberg())
            .map(|t| t.name.clone())
            .collect()
    }

    /// What engines need to read the tables' files besides their own
    /// credentials: the bucket's S3 endpoint and region, in Iceberg's
    /// FileIO property names.
    pub fn table_io_settings(&self) -> Vec<(&'static str, String)> {
        self.bucket.s3_settings()
    }

    /// The newest version of `topic`'s table, its metadata and the
    /// metadata file's URI; `None` before its first commit.
    pub async fn iceberg_table(&self, topic: &str) -> Result<Option<(u64, TableMetadata, String)>> {
        let hint = self.bucket.read_table_file(topic, VERSION_HINT).await?;
        let hinted = hint.and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse::<u64>().ok());
        let mut newest = match hinted {
            Some(version) => self
                .bucket
                .read_table_file(topic, &metadata_name(version))
                .await?
                .map(|bytes| (version, bytes)),
            None => None,
        };
        if newest.is_none() {
            // No hint yet, or a stale one: the newest file listed.
            let listed = self.bucket.list_table_files(topic).await?;
            if let Some(version) = listed.iter().filter_map(|n| version_of(n)).max() {
                let bytes = self
                    .bucket
                    .read_table_file(topic, &metadata_name(version))
                    .await?;
                newest = bytes.map(|bytes| (version, bytes));
            }
        }
        let Some((mut version, mut bytes)) = newest else {
            return Ok(None);
        };
        // The hint may lag: newer versions follow it.
        while let Some(next) = self
            .bucket
            .read_table_file(topic, &metadata_name(version + 1))
            .await?
        {
            (version, bytes) = (version + 1, next);
        }
        let metadata = TableMetadata::from_json(&bytes).map_err(iceberg_error)?;
        let uri = format!("{}/metadata/{}", metadata.location, metadata_name(version));
        Ok(Some((version, metadata, uri)))
    }

    /// Appends to `topic`'s table the export files of `partition` it lacks
    /// below `through` (the partition's committed export progress);
    /// `fresh` is the file just committed and its columns, when known.
    pub(super) async fn sync_table(
        &self,
        topic: &Topic,
        partition: i32,
        through: i64,
        fresh: Option<(&DataFile, &[Field])>,
    ) -> Result<()> {
        let dynamic = self.dynamic_configs();
        let age = self.configs_of(&dynamic, topic).snapshot_retention_ms();
        for _ in 0..TRIES {
            let now_ms = self.clock.now_ms();
            let (version, previous, table) = self.own_table(topic).await?;
            let from = table.as_ref().map_or(0, |t| t.offset(partition));
            if from >= through {
                return Ok(());
            }
            let files = match fresh {
                Some((file, columns)) if file.start == from && file.end == through => {
                    vec![(file.clone(), columns.to_vec())]
                }
                _ => {
                    self.committed_files(topic, partition, from, through)
                        .await?
                }
            };
            let Some((_, first_columns)) = files.first() else {
                return Ok(());
            };
            let mut base = table.unwrap_or_else(|| {
                let location = self.bucket.export_uri(&topic.name);
                TableMetadata::new(location, topic.id, first_columns, age, now_ms)
            });
            for (_, columns) in &files {
                base.add_columns(columns).map_err(|names| {
                    Error::Meta(format!(
                        "export files of '{}' have columns {names:?} of another type than its Iceberg table's",
                        topic.name
                    ))
                })?;
            }
            let manifests = self.manifests(&topic.name, &base).await?;
            let mut read = HashMap::new();
            if manifests.len() >= MERGE_MANIFESTS {
                read = self.read_manifests(&topic.name, &manifests).await?;
            }
            let read_manifest =
                |m: &ManifestFile| -> std::result::Result<Vec<Entry>, IcebergError> {
                    read_manifest(&read[&m.path], m)
                };
            let data_files: Vec<DataFile> = files.into_iter().map(|(file, _)| file).collect();
            let append = base
                .append(manifests, read_manifest, &data_files, previous, now_ms)
                .map_err(iceberg_error)?;
            if !self.commit_snapshot(topic, version, append, now_ms).await? {
                continue;
            }
            let rows: u64 = data_files.iter().map(|f| f.rows).sum();
            tracing::info!(
                topic = %topic.name,
                partition,
                version = version + 1,
                files = data_files.len(),
                rows,
                "Iceberg snapshot committed"
            );
            return Ok(());
        }
        Err(Error::Meta(format!(
            "the Iceberg table of '{}' kept changing under this exporter",
            topic.name
        )))
    }

    /// Removes the files `paths` from `topic`'s table, as one snapshot;
    /// returns the paths the table listed before (those removed among
    /// them).
    pub(super) async fn remove_from_table(
        &self,
        topic: &Topic,
        paths: &BTreeSet<String>,
    ) -> Result<BTreeSet<String>> {
        for _ in 0..TRIES {
            let now_ms = self.clock.now_ms();
            let (version, previous, Some(table)) = self.own_table(topic).await? else {
                return Ok(BTreeSet::new());
            };
            let manifests = self.manifests(&topic.name, &table).await?;
            let read = self.read_manifests(&topic.name, &manifests).await?;
            let mut listed = BTreeSet::new();
            for manifest in &manifests {
                let entries =
                    read_manifest(&read[&manifest.path], manifest).map_err(iceberg_error)?;
                let live = entries.into_iter().filter(|e| e.status != Status::Deleted);
                listed.extend(live.map(|e| e.file.path));
            }
            if listed.is_disjoint(paths) {
                return Ok(listed);
            }
            let read_manifest =
                |m: &ManifestFile| -> std::result::Result<Vec<Entry>, IcebergError> {
                    read_manifest(&read[&m.path], m)
                };
            let removal = table
                .remove(&manifests, read_manifest, paths, previous, now_ms)
                .map_err(iceberg_error)?;
            if self
                .commit_snapshot(topic, version, removal, now_ms)
                .await?
            {
                let removed = listed.intersection(paths).count();
                tracing::info!(
                    topic = %topic.name,
                    version = version + 1,
                    files = removed,
                    "expired export files left the Iceberg table"
                );
                return Ok(listed);
            }
        }
        Err(Error::Meta(format!(
            "the Iceberg table of '{}' kept changing under this exporter",
            topic.name
        )))
    }

    /// The manifests of `table`'s current snapshot.
    async fn manifests(&self, topic: &str, table: &TableMetadata) -> Result<Vec<ManifestFile>> {
        match table.current_snapshot() {
            Some(snapshot) => {
                let list = self.table_file(topic, &snapshot.manifest_list).await?;
                read_manifest_list(&list).map_err(iceberg_error)
            }
            None => Ok(Vec::new()),
        }
    }

    /// The bytes of `manifests`, by path.
    async fn read_manifests(
        &self,
        topic: &str,
        manifests: &[ManifestFile],
    ) -> Result<HashMap<String, Bytes>> {
        let mut read = HashMap::new();
        for manifest in manifests {
            let bytes = self.table_file(topic, &manifest.path).await?;
            read.insert(manifest.path.clone(), bytes);
        }
        Ok(read)
    }

    /// Writes a new snapshot's files and commits its metadata (with the
    /// snapshots it expires) as the version after `version`: `false` if
    /// another broker wrote that version first. What expired is then
    /// deleted.
    async fn commit_snapshot(
        &self,
        topic: &Topic,
        version: u64,
        snapshot: Append,
        now_ms: i64,
    ) -> Result<bool> {
        let dynamic = self.dynamic_configs();
        let age = self.configs_of(&dynamic, topic).snapshot_retention_ms();
        let mut metadata = snapshot.metadata;
        metadata.set_snapshot_age(age);
        let (expired, old_metadata) = metadata.expire(now_ms);
        for (name, bytes) in snapshot.files {
            self.bucket
                .put_table_file(&topic.name, &name, Bytes::from(bytes), false)
                .await?;
        }
        if !self.commit_metadata(topic, version, &metadata).await? {
            return Ok(false);
        }
        if let Err(e) = self
            .delete_expired(&topic.name, &metadata, &expired, &old_metadata)
            .await
        {
            // Left behind, never read, as Iceberg's own writers leave what
            // a failure orphans.
            tracing::warn!(topic = %topic.name, error = %e, "expired Iceberg files not deleted");
        }
        Ok(true)
    }

    /// Gives `topic`'s table the `columns` of a file before it is written
    /// (a new schema when some are new): `Ok(())` once it has them, or
    /// the table's JSON fields when one of them has another type there
    /// (another partition's file added it first), to build the file with.
    pub(super) async fn add_table_columns(
        &self,
        topic: &Topic,
        columns: &[Field],
    ) -> Result<std::result::Result<(), Vec<JsonField>>> {
        let dynamic = self.dynamic_configs();
        let age = self.configs_of(&dynamic, topic).snapshot_retention_ms();
        for _ in 0..TRIES {
            let now_ms = self.clock.now_ms();
            let (version, previous, table) = self.own_table(topic).await?;
            let mut next = match &table {
                Some(table) => table.next_version(previous, now_ms),
                None => {
                    let location = self.bucket.export_uri(&topic.name);
                    TableMetadata::new(location, topic.id, columns, age, now_ms)
                }
            };
            match next.add_columns(columns) {
                Err(_) => return Ok(Err(json::fields_of(&next.columns()))),
                Ok(false) if table.is_some() => return Ok(Ok(())),
                Ok(_) => {}
            }
            if self.commit_metadata(topic, version, &next).await? {
                tracing::info!(topic = %topic.name, version = version + 1, "Iceberg schema grew");
                return Ok(Ok(()));
            }
        }
        Err(Error::Meta(format!(
            "the Iceberg table of '{}' kept changing under this exporter",
            topic.name
        )))
    }

    /// The newest version of `topic`'s table (0: none), its metadata
    /// file's URI, and the table unless there is none or it is of a topic
    /// of the same name deleted before (a new table replaces that one).
    async fn own_table(
        &self,
        topic: &Topic,
    ) -> Result<(u64, Option<String>, Option<TableMetadata>)> {
        Ok(match self.iceberg_table(&topic.name).await? {
            Some((version, table, uri)) => {
                (version, Some(uri), table.exports(topic.id).then_some(table))
            }
            None => (0, None, None),
        })
    }

    /// Writes `metadata` as the version after `version`, create-only:
    /// `false` if another broker wrote that version first.
    async fn commit_metadata(
        &self,
        topic: &Topic,
        version: u64,
        metadata: &TableMetadata,
    ) -> Result<bool> {
        let name = metadata_name(version + 1);
        let json = Bytes::from(metadata.to_json());
        if !self
            .bucket
            .put_table_file(&topic.name, &name, json, true)
            .await?
        {
            return Ok(false);
        }
        crate::failpoint::hit("export.after_table_commit");
        let hint = Bytes::from((version + 1).to_string());
        self.bucket
            .put_table_file(&topic.name, VERSION_HINT, hint, false)
            .await?;
        Ok(true)
    }

    /// A file of `topic`'s table metadata folder, by its URI.
    async fn table_file(&self, topic: &str, uri: &str) -> Result<Bytes> {
        self.bucket
            .read_table_file(topic, name_of(uri))
            .await?
            .ok_or_else(|| Error::Meta(format!("the Iceberg table of '{topic}' lacks {uri}")))
    }

    /// The committed export files of `partition` from offset `from` to
    /// `through`, as the table lists them. The partition's folder holds
    /// only committed files below the progress (the exporter deletes a
    /// file it gives up on), so each listed there is one.
    async fn committed_files(
        &self,
        topic: &Topic,
        partition: i32,
        from: i64,
        through: i64,
    ) -> Result<Vec<(DataFile, Vec<Field>)>> {
        let mut key = ExportKey {
            topic: &topic.name,
            topic_id: topic.id,
            partition,
            start: from,
        };
        let mut files = Vec::new();
        for listed in self.bucket.list_export_files(&key).await? {
            let (start, bytes) = (listed.start, listed.size);
            if start < from || start >= through {
                continue;
            }
            key.start = start;
            let file = self.bucket.read_export_file(&key).await?;
            let covered = covered(file).map_err(|e| Error::Meta(e.to_string()))?;
            let file = DataFile {
                path: self.bucket.export_file_uri(&key),
                partition,
                rows: covered.rows,
                bytes,
                start,
                end: covered.end,
            };
            files.push((file, covered.columns));
        }
        Ok(files)
    }

    /// Deletes what expired with a commit: the manifest lists of the
    /// `expired` snapshots, the manifests they list that the oldest kept
    /// snapshot (and so every later one) no longer does, and the metadata
    /// files dropped from the log.
    async fn delete_expired(
        &self,
        topic: &str,
        metadata: &TableMetadata,
        expired: &[Snapshot],
        old_metadata: &[String],
    ) -> Result<()> {
        if !expired.is_empty() {
            let kept: BTreeSet<String> = match metadata.snapshots.first() {
                Some(oldest) => {
                    let list = self.table_file(topic, &oldest.manifest_list).await?;
                    read_manifest_list(&list)
                        .map_err(iceberg_error)?
                        .into_iter()
                        .map(|m| m.path)
                        .collect()
                }
                None => BTreeSet::new(),
            };
            let mut unlisted = BTreeSet::new();
            for snapshot in expired {
                if let Some(list) = self
                    .bucket
                    .read_table_file(topic, name_of(&snapshot.manifest_list))
                    .await?
                {
                    for manifest in read_manifest_list(&list).map_err(iceberg_error)? {
                        if !kept.contains(&manifest.path) {
                            unlisted.insert(manifest.path);
                        }
                    }
                }
                self.bucket
                    .delete_table_file(topic, name_of(&snapshot.manifest_list))
                    .await?;
            }
            for manifest in unlisted {
                self.bucket
                    .delete_table_file(topic, name_of(&manifest))
                    .await?;
            }
        }
        for file in old_metadata {
            self.bucket.delete_table_file(topic, name_of(file)).await?;
        }
        Ok(())
    }
}
