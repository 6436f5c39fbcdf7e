//! Apache Iceberg (format v2) tables of exported topics
//! (`silt.export.format = iceberg`): the export files of every partition
//! listed in manifests (Avro, [`avro`](super::avro)), the manifests in a
//! manifest list per snapshot, and the snapshots in the table's metadata
//! JSON, all under `<prefix>/export/<topic>/metadata/`. The table is
//! partitioned by `partition` (identity), which the files leave to their
//! folder: readers take it from the manifests. The files carry Iceberg's
//! field ids; a name mapping covers files written without them.
//!
//! Each snapshot's summary carries, per partition, the offset its files
//! reach (`silt.offsets.<p>`), so an exporter knows which committed files
//! the table still lacks. This module builds and reads the table's files;
//! the broker writes them ([`crate::broker`]'s Iceberg commits).

use std::collections::{BTreeMap, BTreeSet};

use arrow_schema::{DataType, Field};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::avro::{self, AvroError, Decoder, Encoder};

/// The catalog namespace of exported tables.
pub const NAMESPACE: &str = "silt";
/// The field id of the table's `partition` column (not in the files).
const PARTITION_ID: i32 = 1;
/// The field id of the partition spec's field.
const PARTITION_SPEC_FIELD_ID: i32 = 1000;
/// The field id of the files' `offset` column (bounds in the manifests).
const OFFSET_ID: i32 = 2;
/// Manifests in a snapshot after which they are merged into one.
pub const MERGE_MANIFESTS: usize = 32;
/// Earlier metadata files the metadata log keeps (older ones are deleted).
pub const PREVIOUS_VERSIONS: usize = 20;
/// The summary key of a partition's offset.
const OFFSETS_KEY: &str = "silt.offsets.";
/// The table property naming the topic (its id) the table exports.
const TOPIC_ID_PROPERTY: &str = "silt.topic-id";

/// Why a table's file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum IcebergError {
    #[error("cannot read an Iceberg manifest: {0}")]
    Avro(#[from] AvroError),
    #[error("cannot read the Iceberg table metadata: {0}")]
    Json(#[from] serde_json::Error),
}

/// An export file as the table lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct DataFile {
    /// Its URI (`s3://...`, `file:///...`).
    pub path: String,
    pub partition: i32,
    pub rows: u64,
    pub bytes: u64,
    /// The offsets it covers: `start..end`.
    pub start: i64,
    pub end: i64,
}

/// What a manifest entry says of its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Listed before this manifest's snapshot.
    Existing = 0,
    /// Added by this manifest's snapshot.
    Added = 1,
    /// Removed by this manifest's snapshot.
    Deleted = 2,
}

/// A manifest's entry: a file, added by a snapshot at a sequence number
/// (or removed by the snapshot `snapshot_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub status: Status,
    pub snapshot_id: i64,
    pub sequence_number: i64,
    pub file: DataFile,
}

/// A manifest list's entry: one manifest and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestFile {
    pub path: String,
    pub length: i64,
    pub sequence_number: i64,
    pub min_sequence_number: i64,
    pub added_snapshot_id: i64,
    /// Files and rows the snapshot that wrote it added, those it carries
    /// over (a merged manifest), and those it removed.
    pub added_files: i32,
    pub existing_files: i32,
    pub deleted_files: i32,
    pub added_rows: i64,
    pub existing_rows: i64,
    pub deleted_rows: i64,
    /// The lowest and highest partition it holds files of.
    pub partitions: (i32, i32),
}

/// A table's metadata file (the fields of the Iceberg v2 spec).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TableMetadata {
    pub format_version: u8,
    pub table_uuid: uuid::Uuid,
    pub location: String,
    pub last_sequence_number: i64,
    pub last_updated_ms: i64,
    pub last_column_id: i32,
    pub current_schema_id: i32,
    pub schemas: Vec<Value>,
    pub default_spec_id: i32,
    pub partition_specs: Vec<Value>,
    pub last_partition_id: i32,
    pub default_sort_order_id: i32,
    pub sort_orders: Vec<Value>,
    pub properties: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_snapshot_id: Option<i64>,
    #[serde(default)]
    pub refs: BTreeMap<String, Value>,
    #[serde(default)]
    pub snapshots: Vec<Snapshot>,
    #[serde(default)]
    pub snapshot_log: Vec<LogEntry>,
    #[serde(default)]
    pub metadata_log: Vec<MetadataLogEntry>,
}

/// A snapshot of the table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Snapshot {
    pub snapshot_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_snapshot_id: Option<i64>,
    pub sequence_number: i64,
    pub timestamp_ms: i64,
    pub manifest_list: String,
    pub summary: BTreeMap<String, String>,
    pub schema_id: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LogEntry {
    pub timestamp_ms: i64,
    pub snapshot_id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MetadataLogEntry {
    pub timestamp_ms: i64,
    pub metadata_file: String,
}

/// The new snapshot's files, to be written before its metadata.
pub struct Append {
    pub metadata: TableMetadata,
    /// `(name, bytes)` in the metadata folder: the new manifests, then the
    /// manifest list.
    pub files: Vec<(String, Vec<u8>)>,
}

impl TableMetadata {
    /// A table at `location` for the topic `topic_id`, with no snapshot,
    /// of files with the Arrow `columns` (field ids in their metadata);
    /// its snapshots expire after `snapshot_age_ms`.
    pub fn new(
        location: String,
        topic_id: uuid::Uuid,
        columns: &[Field],
        snapshot_age_ms: i64,
        now_ms: i64,
    ) -> TableMetadata {
        // Optional for readers, which fill it from the manifests: no file
        // has the column.
        let partition = json!({
            "id": PARTITION_ID, "name": "partition", "required": false, "type": "int"
        });
        let mut ids = Ids::default();
        ids.take(Some(PARTITION_ID));
        let (mut fields, mut mapping) = columns_json(columns, &mut ids);
        fields.insert(0, partition);
        mapping.insert(0, json!({"field-id": PARTITION_ID, "names": ["partition"]}));
        let properties = BTreeMap::from([
            (TOPIC_ID_PROPERTY.to_string(), topic_id.to_string()),
            (
                "schema.name-mapping.default".to_string(),
                Value::Array(mapping).to_string(),
            ),
            (
                "history.expire.max-snapshot-age-ms".to_string(),
                snapshot_age_ms.to_string(),
            ),
            (
                "write.metadata.previous-versions-max".to_string(),
                PREVIOUS_VERSIONS.to_string(),
            ),
            (
                "write.metadata.delete-after-commit.enabled".to_string(),
                "true".to_string(),
            ),
        ]);
        TableMetadata {
            format_version: 2,
            table_uuid: uuid::Uuid::new_v4(),
            location,
            last_sequence_number: 0,
            last_updated_ms: now_ms,
            last_column_id: ids.last,
            current_schema_id: 0,
            schemas: vec![json!({"type": "struct", "schema-id": 0, "fields": fields})],
            default_spec_id: 0,
            partition_specs: vec![json!({"spec-id": 0, "fields": [{
                "name": "partition", "transform": "identity",
                "source-id": PARTITION_ID, "field-id": PARTITION_SPEC_FIELD_ID
            }]})],
            last_partition_id: PARTITION_SPEC_FIELD_ID,
            default_sort_order_id: 0,
            sort_orders: vec![json!({"order-id": 0, "fields": []})],
            properties,
            current_snapshot_id: None,
            refs: BTreeMap::new(),
            snapshots: Vec::new(),
            snapshot_log: Vec::new(),
            metadata_log: Vec::new(),
        }
    }

    pub fn from_json(bytes: &[u8]) -> Result<TableMetadata, IcebergError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("table metadata serializes")
    }

    /// Whether the table exports the topic `topic_id` (not one of the same
    /// name deleted before).
    pub fn exports(&self, topic_id: uuid::Uuid) -> bool {
        self.properties.get(TOPIC_ID_PROPERTY) == Some(&topic_id.to_string())
    }

    /// Sets how long snapshots are kept.
    pub fn set_snapshot_age(&mut self, snapshot_age_ms: i64) {
        self.properties.insert(
            "history.expire.max-snapshot-age-ms".into(),
            snapshot_age_ms.to_string(),
        );
    }

    fn current_schema(&self) -> &Value {
        let id = self.current_schema_id;
        self.schemas
            .iter()
            .find(|s| s["schema-id"] == id)
            .unwrap_or(&self.schemas[0])
    }

    /// The current schema's columns: name and type (`nested` for lists
    /// and structs).
    pub fn columns(&self) -> Vec<(String, String)> {
        let fields = self.current_schema()["fields"].as_array();
        fields
            .into_iter()
            .flatten()
            .map(|f| {
                let name = f["name"].as_str().unwrap_or_default().to_string();
                (name, f["type"].as_str().unwrap_or("nested").to_string())
            })
            .collect()
    }

    /// Adds the Arrow `columns` the current schema lacks (by name) as
    /// optional columns of a new current schema, with the field ids they
    /// carry where no column has them (else new ones), and to the name
    /// mapping. Returns whether any was added; `Err` names those whose
    /// type differs from the table's column of the same name.
    pub fn add_columns(&mut self, columns: &[Field]) -> Result<bool, Vec<String>> {
        let schema = self.current_schema().clone();
        let fields = schema["fields"].as_array().cloned().unwrap_or_default();
        let mut ids = Ids::default();
        for field in &fields {
            ids.collect(field);
        }
        ids.last = ids.last.max(self.last_column_id);
        let mut conflicts = Vec::new();
        let mut new = Vec::new();
        for column in columns {
            match fields.iter().find(|f| f["name"] == column.name().as_str()) {
                Some(field) => {
                    let (kind, _) = type_json(column.data_type(), &mut Ids::default());
                    if without_ids(&field["type"]) != without_ids(&kind) {
                        conflicts.push(column.name().clone());
                    }
                }
                None => new.push(column.clone()),
            }
        }
        if !conflicts.is_empty() {
            return Err(conflicts);
        }
        if new.is_empty() {
            return Ok(false);
        }
        let (mut added, mapping) = columns_json(&new, &mut ids);
        for field in &mut added {
            field["required"] = json!(false);
        }
        let schema_id = self
            .schemas
            .iter()
            .filter_map(|s| s["schema-id"].as_i64())
            .max()
            .unwrap_or(0) as i32
            + 1;
        let all: Vec<Value> = fields.into_iter().chain(added).collect();
        self.schemas
            .push(json!({"type": "struct", "schema-id": schema_id, "fields": all}));
        self.current_schema_id = schema_id;
        self.last_column_id = ids.last;
        let key = "schema.name-mapping.default";
        let mut names: Vec<Value> = self
            .properties
            .get(key)
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default();
        names.extend(mapping);
        self.properties
            .insert(key.to_string(), Value::Array(names).to_string());
        Ok(true)
    }

    /// The next version of this metadata, written at `now_ms`, which
    /// follows the file `previous` (none for the first).
    pub fn next_version(&self, previous: Option<String>, now_ms: i64) -> TableMetadata {
        let mut next = self.clone();
        next.last_updated_ms = now_ms;
        if let Some(previous) = previous {
            next.metadata_log.push(MetadataLogEntry {
                timestamp_ms: self.last_updated_ms,
                metadata_file: previous,
            });
        }
        next
    }

    pub fn current_snapshot(&self) -> Option<&Snapshot> {
        let id = self.current_snapshot_id?;
        self.snapshots.iter().find(|s| s.snapshot_id == id)
    }

    /// The offset the table's files of `partition` reach (0: none yet).
    pub fn offset(&self, partition: i32) -> i64 {
        self.current_snapshot()
            .and_then(|s| s.summary.get(&format!("{OFFSETS_KEY}{partition}")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// A snapshot that adds `files` to the current one's `manifests`
    /// (the current snapshot's manifest list), merging them into one
    /// manifest once there are many ([`MERGE_MANIFESTS`]; `read_manifest`
    /// reads one for that). `previous` is the metadata file this one
    /// follows.
    pub fn append(
        &self,
        manifests: Vec<ManifestFile>,
        mut read_manifest: impl FnMut(&ManifestFile) -> Result<Vec<Entry>, IcebergError>,
        files: &[DataFile],
        previous: Option<String>,
        now_ms: i64,
    ) -> Result<Append, IcebergError> {
        let next = self.next_snapshot();
        let mut out = Vec::new();
        let mut list = if manifests.len() >= MERGE_MANIFESTS {
            let mut existing = Vec::new();
            for manifest in &manifests {
                existing.extend(live(read_manifest(manifest)?));
            }
            let (name, bytes, merged) = self.write_manifest(&existing, next);
            out.push((name, bytes));
            vec![merged]
        } else {
            manifests
        };
        let added: Vec<Entry> = files
            .iter()
            .map(|file| Entry {
                status: Status::Added,
                snapshot_id: next.0,
                sequence_number: next.1,
                file: file.clone(),
            })
            .collect();
        let (name, bytes, manifest) = self.write_manifest(&added, next);
        out.push((name, bytes));
        list.insert(0, manifest);
        let change = Change {
            operation: "append",
            files: files.len() as u64,
            rows: files.iter().map(|f| f.rows).sum(),
            bytes: files.iter().map(|f| f.bytes).sum(),
        };
        let offsets = files.iter().map(|f| (f.partition, f.end));
        Ok(self.snapshot(next, list, out, change, offsets, previous, now_ms))
    }

    /// A snapshot that removes the files `paths` from the current one's
    /// (`manifests`, each read by `read_manifest`): one manifest of the
    /// files kept and those removed. The offsets the table reaches stay.
    pub fn remove(
        &self,
        manifests: &[ManifestFile],
        mut read_manifest: impl FnMut(&ManifestFile) -> Result<Vec<Entry>, IcebergError>,
        paths: &BTreeSet<String>,
        previous: Option<String>,
        now_ms: i64,
    ) -> Result<Append, IcebergError> {
        let next = self.next_snapshot();
        let mut entries = Vec::new();
        for manifest in manifests {
            entries.extend(live(read_manifest(manifest)?));
        }
        let (mut files, mut rows, mut bytes) = (0, 0, 0);
        for entry in &mut entries {
            if paths.contains(&entry.file.path) {
                (entry.status, entry.snapshot_id) = (Status::Deleted, next.0);
                (files, rows, bytes) =
                    (files + 1, rows + entry.file.rows, bytes + entry.file.bytes);
            }
        }
        let (name, bytes_written, manifest) = self.write_manifest(&entries, next);
        let change = Change {
            operation: "delete",
            files,
            rows,
            bytes,
        };
        let out = vec![(name, bytes_written)];
        let none = std::iter::empty();
        Ok(self.snapshot(next, vec![manifest], out, change, none, previous, now_ms))
    }

    /// The id and sequence number of the next snapshot.
    fn next_snapshot(&self) -> (i64, i64) {
        let id = (uuid::Uuid::new_v4().as_u64_pair().0 >> 1) as i64;
        (id, self.last_sequence_number + 1)
    }

    /// The metadata with the snapshot `next` of the manifests `list` as
    /// current, after the change it makes; `out` are the manifests
    /// written for it, to which its manifest list is added.
    #[allow(clippy::too_many_arguments)]
    fn snapshot(
        &self,
        (snapshot_id, sequence_number): (i64, i64),
        list: Vec<ManifestFile>,
        mut out: Vec<(String, Vec<u8>)>,
        change: Change,
        offsets: impl Iterator<Item = (i32, i64)>,
        previous: Option<String>,
        now_ms: i64,
    ) -> Append {
        let parent = self.current_snapshot();
        let list_name = format!("snap-{snapshot_id}-1-{}.avro", uuid::Uuid::new_v4());
        let parent_id = parent.map(|p| p.snapshot_id);
        out.push((
            list_name.clone(),
            manifest_list(&list, snapshot_id, parent_id, sequence_number),
        ));
        let mut summary: BTreeMap<String, String> = parent
            .map(|p| {
                p.summary
                    .iter()
                    .filter(|(k, _)| k.starts_with(OFFSETS_KEY))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let total = |key: &str, delta: u64| {
            let before = parent
                .and_then(|p| p.summary.get(key))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let after = if change.operation == "delete" {
                before.saturating_sub(delta)
            } else {
                before + delta
            };
            after.to_string()
        };
        let (files, rows, bytes) = match change.operation {
            "delete" => (
                "deleted-data-files",
                "deleted-records",
                "removed-files-size",
            ),
            _ => ("added-data-files", "added-records", "added-files-size"),
        };
        for (key, value) in [
            ("operation", change.operation.to_string()),
            (files, change.files.to_string()),
            (rows, change.rows.to_string()),
            (bytes, change.bytes.to_string()),
            ("total-data-files", total("total-data-files", change.files)),
            ("total-records", total("total-records", change.rows)),
            ("total-files-size", total("total-files-size", change.bytes)),
            ("total-delete-files", "0".into()),
            ("total-position-deletes", "0".into()),
            ("total-equality-deletes", "0".into()),
        ] {
            summary.insert(key.to_string(), value);
        }
        for (partition, end) in offsets {
            summary.insert(format!("{OFFSETS_KEY}{partition}"), end.to_string());
        }
        let mut metadata = self.next_version(previous, now_ms);
        metadata.last_sequence_number = sequence_number;
        metadata.current_snapshot_id = Some(snapshot_id);
        metadata.refs = BTreeMap::from([(
            "main".to_string(),
            json!({"snapshot-id": snapshot_id, "type": "branch"}),
        )]);
        metadata.snapshots.push(Snapshot {
            snapshot_id,
            parent_snapshot_id: parent_id,
            sequence_number,
            timestamp_ms: now_ms,
            manifest_list: format!("{}/metadata/{list_name}", self.location),
            summary,
            schema_id: self.current_schema_id,
        });
        metadata.snapshot_log.push(LogEntry {
            timestamp_ms: now_ms,
            snapshot_id,
        });
        Append {
            metadata,
            files: out,
        }
    }

    /// Drops the snapshots older than the table's snapshot age (never the
    /// current one) and the metadata log beyond [`PREVIOUS_VERSIONS`];
    /// returns the snapshots dropped, oldest first, and the metadata files.
    pub fn expire(&mut self, now_ms: i64) -> (Vec<Snapshot>, Vec<String>) {
        let max_age = self
            .properties
            .get("history.expire.max-snapshot-age-ms")
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(i64::MAX);
        let current = self.current_snapshot_id;
        let (expired, kept): (Vec<Snapshot>, Vec<Snapshot>) = std::mem::take(&mut self.snapshots)
            .into_iter()
            .partition(|s| {
                Some(s.snapshot_id) != current && now_ms.saturating_sub(s.timestamp_ms) > max_age
            });
        self.snapshots = kept;
        let live: Vec<i64> = self.snapshots.iter().map(|s| s.snapshot_id).collect();
        self.snapshot_log.retain(|l| live.contains(&l.snapshot_id));
        if let Some(oldest) = self.snapshots.first_mut() {
            oldest.parent_snapshot_id.take_if(|p| !live.contains(p));
        }
        let over = self.metadata_log.len().saturating_sub(PREVIOUS_VERSIONS);
        let dropped = self
            .metadata_log
            .drain(..over)
            .map(|m| m.metadata_file)
            .collect();
        (expired, dropped)
    }

    fn partition_type(&self) -> Value {
        json!({"type": "record", "name": "r102", "fields": [
            optional("partition", json!("int"), PARTITION_SPEC_FIELD_ID)
        ]})
    }

    /// A manifest of `entries` for the snapshot `next`, its name and its
    /// manifest list entry.
    fn write_manifest(
        &self,
        entries: &[Entry],
        (snapshot_id, sequence_number): (i64, i64),
    ) -> (String, Vec<u8>, ManifestFile) {
        let name = format!("{}-m0.avro", uuid::Uuid::new_v4());
        let mut encoder = Encoder::default();
        for entry in entries {
            encoder.int(entry.status as i32);
            encoder.optional(Some(entry.snapshot_id), Encoder::long);
            // Added entries inherit the manifest's sequence number.
            let sequence = (entry.status != Status::Added).then_some(entry.sequence_number);
            encoder.optional(sequence, Encoder::long);
            encoder.optional(sequence, Encoder::long);
            let file = &entry.file;
            encoder.int(0);
            encoder.string(&file.path);
            encoder.string("PARQUET");
            encoder.optional(Some(file.partition), Encoder::int);
            encoder.long(file.rows as i64);
            encoder.long(file.bytes as i64);
            for bound in [file.start, file.end - 1] {
                encoder.optional(Some(bound), |e, bound| {
                    e.array(&[bound], |e, bound| {
                        e.int(OFFSET_ID);
                        e.bytes(&bound.to_le_bytes());
                    })
                });
            }
        }
        let spec = &self.partition_specs[0]["fields"];
        let metadata = [
            ("schema", self.current_schema().to_string()),
            ("schema-id", self.current_schema_id.to_string()),
            ("partition-spec", spec.to_string()),
            ("partition-spec-id", "0".to_string()),
            ("format-version", "2".to_string()),
            ("content", "data".to_string()),
        ];
        let bytes = avro::write_file(
            &manifest_entry_schema(self.partition_type()),
            &metadata,
            entries.len(),
            encoder,
        );
        let count = |status: Status| {
            let of: Vec<&Entry> = entries.iter().filter(|e| e.status == status).collect();
            (of.len() as i32, of.iter().map(|e| e.file.rows as i64).sum())
        };
        let (added_files, added_rows) = count(Status::Added);
        let (existing_files, existing_rows) = count(Status::Existing);
        let (deleted_files, deleted_rows) = count(Status::Deleted);
        let partitions = entries.iter().map(|e| e.file.partition);
        let manifest = ManifestFile {
            path: format!("{}/metadata/{name}", self.location),
            length: bytes.len() as i64,
            sequence_number,
            min_sequence_number: entries
                .iter()
                .map(|e| e.sequence_number)
                .min()
                .unwrap_or(sequence_number),
            added_snapshot_id: snapshot_id,
            added_files,
            existing_files,
            deleted_files,
            added_rows,
            existing_rows,
            deleted_rows,
            partitions: (
                partitions.clone().min().unwrap_or(0),
                partitions.max().unwrap_or(0),
            ),
        };
        (name, bytes, manifest)
    }
}

/// What a snapshot changes: files, rows and bytes added (or removed).
struct Change {
    operation: &'static str,
    files: u64,
    rows: u64,
    bytes: u64,
}

/// The entries of files a snapshot lists (not those removed), carried
/// over as existing.
fn live(entries: Vec<Entry>) -> impl Iterator<Item = Entry> {
    entries
        .into_iter()
        .filter(|e| e.status != Status::Deleted)
        .map(|e| Entry {
            status: Status::Existing,
            ..e
        })
}

/// The entries of a manifest written by [`TableMetadata::append`]; added
/// ones take the sequence number of `manifest`.
pub fn read_manifest(bytes: &[u8], manifest: &ManifestFile) -> Result<Vec<Entry>, IcebergError> {
    let (_, records) = avro::read_file(bytes)?;
    let mut d = Decoder::new(&records);
    let mut entries = Vec::new();
    while !d.is_empty() {
        let status = match d.int()? {
            0 => Status::Existing,
            1 => Status::Added,
            2 => Status::Deleted,
            _ => return Err(AvroError::Bad("an entry status other than 0, 1 or 2").into()),
        };
        let snapshot_id = d
            .optional(Decoder::long)?
            .unwrap_or(manifest.added_snapshot_id);
        let sequence_number = d
            .optional(Decoder::long)?
            .unwrap_or(manifest.sequence_number);
        d.optional(Decoder::long)?;
        d.int()?;
        let path = d.string()?;
        d.string()?;
        let partition = d.optional(Decoder::int)?.unwrap_or(0);
        let rows = d.long()? as u64;
        let bytes = d.long()? as u64;
        let mut bound = || -> Result<i64, IcebergError> {
            let pairs = d
                .optional(|d| d.array(|d| Ok((d.int()?, d.bytes()?.to_vec()))))?
                .unwrap_or_default();
            let value = pairs
                .into_iter()
                .find(|(id, _)| *id == OFFSET_ID)
                .and_then(|(_, v)| <[u8; 8]>::try_from(v).ok())
                .ok_or(AvroError::Bad("a file without its offset bounds"))?;
            Ok(i64::from_le_bytes(value))
        };
        let start = bound()?;
        let end = bound()? + 1;
        entries.push(Entry {
            status,
            snapshot_id,
            sequence_number,
            file: DataFile {
                path,
                partition,
                rows,
                bytes,
                start,
                end,
            },
        });
    }
    Ok(entries)
}

/// A manifest list of `manifests`.
fn manifest_list(
    manifests: &[ManifestFile],
    snapshot_id: i64,
    parent: Option<i64>,
    sequence_number: i64,
) -> Vec<u8> {
    let mut e = Encoder::default();
    for m in manifests {
        e.string(&m.path);
        e.long(m.length);
        e.int(0);
        e.int(0);
        e.long(m.sequence_number);
        e.long(m.min_sequence_number);
        e.long(m.added_snapshot_id);
        e.int(m.added_files);
        e.int(m.existing_files);
        e.int(m.deleted_files);
        e.long(m.added_rows);
        e.long(m.existing_rows);
        e.long(m.deleted_rows);
        e.optional(Some(m.partitions), |e, (low, high)| {
            e.array(&[(low, high)], |e, (low, high)| {
                e.boolean(false);
                e.optional(Some(low.to_le_bytes()), |e, b| e.bytes(&b));
                e.optional(Some(high.to_le_bytes()), |e, b| e.bytes(&b));
            })
        });
    }
    let mut metadata = vec![
        ("snapshot-id", snapshot_id.to_string()),
        ("sequence-number", sequence_number.to_string()),
        ("format-version", "2".to_string()),
    ];
    if let Some(parent) = parent {
        metadata.push(("parent-snapshot-id", parent.to_string()));
    }
    avro::write_file(&manifest_list_schema(), &metadata, manifests.len(), e)
}

/// The manifests of a manifest list written by [`manifest_list`].
pub fn read_manifest_list(bytes: &[u8]) -> Result<Vec<ManifestFile>, IcebergError> {
    let (_, records) = avro::read_file(bytes)?;
    let mut d = Decoder::new(&records);
    let mut manifests = Vec::new();
    while !d.is_empty() {
        let path = d.string()?;
        let length = d.long()?;
        d.int()?;
        d.int()?;
        let sequence_number = d.long()?;
        let min_sequence_number = d.long()?;
        let added_snapshot_id = d.long()?;
        let added_files = d.int()?;
        let existing_files = d.int()?;
        let deleted_files = d.int()?;
        let added_rows = d.long()?;
        let existing_rows = d.long()?;
        let deleted_rows = d.long()?;
        let summaries = d
            .optional(|d| {
                d.array(|d| {
                    d.boolean()?;
                    let mut bound = || -> Result<i32, AvroError> {
                        let bytes = d.optional(|d| d.bytes().map(<[u8]>::to_vec))?;
                        let bytes = bytes.and_then(|b| <[u8; 4]>::try_from(b).ok());
                        Ok(bytes.map_or(0, i32::from_le_bytes))
                    };
                    Ok((bound()?, bound()?))
                })
            })?
            .unwrap_or_default();
        manifests.push(ManifestFile {
            path,
            length,
            sequence_number,
            min_sequence_number,
            added_snapshot_id,
            added_files,
            existing_files,
            deleted_files,
            added_rows,
            existing_rows,
            deleted_rows,
            partitions: summaries.first().copied().unwrap_or((0, 0)),
        });
    }
    Ok(manifests)
}

/// Field ids given out: the highest, and all in use.
#[derive(Default)]
struct Ids {
    last: i32,
    used: std::collections::BTreeSet<i32>,
}

impl Ids {
    /// `wanted` if it is free, else the next id.
    fn take(&mut self, wanted: Option<i32>) -> i32 {
        let id = match wanted {
            Some(id) if !self.used.contains(&id) => id,
            _ => self.last + 1,
        };
        self.used.insert(id);
        self.last = self.last.max(id);
        id
    }

    /// Marks the ids of a schema field (and its nested ones) as used.
    fn collect(&mut self, value: &Value) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    if let ("id" | "element-id", Some(id)) = (key.as_str(), v.as_i64()) {
                        self.take(Some(id as i32));
                    }
                    self.collect(v);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| self.collect(v)),
            _ => {}
        }
    }
}

/// A type with its field ids left out, to compare shapes.
fn without_ids(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "id" | "element-id"))
                .map(|(k, v)| (k.clone(), without_ids(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_ids).collect()),
        other => other.clone(),
    }
}

/// Iceberg schema fields for Arrow columns, and their name mapping.
fn columns_json(columns: &[Field], ids: &mut Ids) -> (Vec<Value>, Vec<Value>) {
    columns.iter().map(|c| field_json(c, ids)).unzip()
}

/// An Iceberg schema field for an Arrow column (with the field id in its
/// metadata where it is free, else the next), and its name mapping.
fn field_json(column: &Field, ids: &mut Ids) -> (Value, Value) {
    let id = ids.take(field_id(column));
    let (kind, nested) = type_json(column.data_type(), ids);
    let mut names = json!({"field-id": id, "names": [column.name()]});
    if let Some(nested) = nested {
        names["fields"] = nested;
    }
    let field = json!({
        "id": id, "name": column.name(), "required": !column.is_nullable(), "type": kind
    });
    (field, names)
}

/// The field id an Arrow column carries.
fn field_id(column: &Field) -> Option<i32> {
    column
        .metadata()
        .get(parquet::arrow::PARQUET_FIELD_ID_META_KEY)
        .and_then(|v| v.parse().ok())
}

/// An Arrow type as an Iceberg type, and the name mapping of its nested
/// fields.
fn type_json(data_type: &DataType, ids: &mut Ids) -> (Value, Option<Value>) {
    let primitive = |name: &str| (json!(name), None);
    match data_type {
        DataType::Boolean => primitive("boolean"),
        DataType::Int32 => primitive("int"),
        DataType::Int64 => primitive("long"),
        DataType::Float64 => primitive("double"),
        DataType::Timestamp(_, Some(_)) => primitive("timestamptz"),
        DataType::Timestamp(_, None) => primitive("timestamp"),
        DataType::Binary | DataType::LargeBinary => primitive("binary"),
        DataType::List(element) => {
            let id = ids.take(field_id(element));
            let (kind, nested) = type_json(element.data_type(), ids);
            let mut names = json!({"field-id": id, "names": ["element"]});
            if let Some(nested) = nested {
                names["fields"] = nested;
            }
            let list = json!({
                "type": "list", "element-id": id,
                "element-required": !element.is_nullable(), "element": kind
            });
            (list, Some(json!([names])))
        }
        DataType::Struct(fields) => {
            let (fields, names): (Vec<Value>, Vec<Value>) =
                fields.iter().map(|f| field_json(f, ids)).unzip();
            (
                json!({"type": "struct", "fields": fields}),
                Some(Value::Array(names)),
            )
        }
        _ => primitive("string"),
    }
}

/// An Avro record field with its Iceberg field id.
fn required(name: &str, kind: Value, id: i32) -> Value {
    json!({"name": name, "type": kind, "field-id": id})
}

/// A nullable Avro record field with its Iceberg field id.
fn optional(name: &str, kind: Value, id: i32) -> Value {
    json!({"name": name, "type": ["null", kind], "default": null, "field-id": id})
}

/// The Avro schema of manifest entries (Iceberg v2, with field ids).
fn manifest_entry_schema(partition: Value) -> Value {
    let bounds = |name: &str, id: i32, key: i32, value: i32| {
        optional(
            name,
            json!({"type": "array", "logicalType": "map", "items": {
                "type": "record", "name": format!("k{key}_v{value}"), "fields": [
                    required("key", json!("int"), key),
                    required("value", json!("bytes"), value),
                ]
            }}),
            id,
        )
    };
    json!({"type": "record", "name": "manifest_entry", "fields": [
        required("status", json!("int"), 0),
        optional("snapshot_id", json!("long"), 1),
        optional("sequence_number", json!("long"), 3),
        optional("file_sequence_number", json!("long"), 4),
        required("data_file", json!({"type": "record", "name": "r2", "fields": [
            required("content", json!("int"), 134),
            required("file_path", json!("string"), 100),
            required("file_format", json!("string"), 101),
            required("partition", partition, 102),
            required("record_count", json!("long"), 103),
            required("file_size_in_bytes", json!("long"), 104),
            bounds("lower_bounds", 125, 126, 127),
            bounds("upper_bounds", 128, 129, 130),
        ]}), 2),
    ]})
}

/// The Avro schema of manifest lists (Iceberg v2, with field ids).
fn manifest_list_schema() -> Value {
    let field = |name: &str, kind: &str, id: i32| required(name, json!(kind), id);
    let summary = json!({"type": "record", "name": "r508", "fields": [
        field("contains_null", "boolean", 509),
        optional("lower_bound", json!("bytes"), 510),
        optional("upper_bound", json!("bytes"), 511),
    ]});
    json!({"type": "record", "name": "manifest_file", "fields": [
        field("manifest_path", "string", 500),
        field("manifest_length", "long", 501),
        field("partition_spec_id", "int", 502),
        field("content", "int", 517),
        field("sequence_number", "long", 515),
        field("min_sequence_number", "long", 516),
        field("added_snapshot_id", "long", 503),
        field("added_files_count", "int", 504),
        field("existing_files_count", "int", 505),
        field("deleted_files_count", "int", 506),
        field("added_rows_count", "long", 512),
        field("existing_rows_count", "long", 513),
        field("deleted_rows_count", "long", 514),
        optional("partitions", json!({"type": "array", "element-id": 508, "items": summary}), 507),
    ]})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(partition: i32, start: i64, end: i64) -> DataFile {
        DataFile {
            path: format!("file:///t/partition={partition}/{start:020}.parquet"),
            partition,
            rows: (end - start) as u64,
            bytes: 100,
            start,
            end,
        }
    }

    fn table() -> TableMetadata {
        let columns = crate::export::bytes_columns();
        TableMetadata::new("file:///t".into(), uuid::Uuid::nil(), &columns, 1000, 0)
    }

    /// Appends `files` to `table` as the broker does, keeping the written
    /// files in `store`.
    fn append(
        table: &TableMetadata,
        store: &mut BTreeMap<String, Vec<u8>>,
        files: &[DataFile],
        now_ms: i64,
    ) -> TableMetadata {
        let manifests = match table.current_snapshot() {
            Some(s) => read_manifest_list(&store[&s.manifest_list]).unwrap(),
            None => Vec::new(),
        };
        let read = |m: &ManifestFile| read_manifest(&store[&m.path], m);
        let append = table.append(manifests, read, files, None, now_ms).unwrap();
        for (name, bytes) in append.files {
            store.insert(format!("file:///t/metadata/{name}"), bytes);
        }
        append.metadata
    }

    /// The files of the current snapshot.
    fn files_of(table: &TableMetadata, store: &BTreeMap<String, Vec<u8>>) -> Vec<DataFile> {
        let list = &store[&table.current_snapshot().unwrap().manifest_list];
        let mut files: Vec<DataFile> = read_manifest_list(list)
            .unwrap()
            .iter()
            .flat_map(|m| read_manifest(&store[&m.path], m).unwrap())
            .filter(|e| e.status != Status::Deleted)
            .map(|e| e.file)
            .collect();
        files.sort_by_key(|f| (f.partition, f.start));
        files
    }

    #[test]
    fn appends_keep_every_file_once_and_merge_manifests() {
        let mut store = BTreeMap::new();
        let mut table = table();
        assert_eq!(table.offset(0), 0);
        let mut expected = Vec::new();
        for i in 0..(MERGE_MANIFESTS as i64 + 3) {
            let files = [file(0, i * 10, i * 10 + 10), file(1, i * 5, i * 5 + 5)];
            table = append(&table, &mut store, &files, i);
            expected.extend(files);
        }
        expected.sort_by_key(|f| (f.partition, f.start));
        assert_eq!(files_of(&table, &store), expected);
        let n = MERGE_MANIFESTS as i64 + 3;
        assert_eq!((table.offset(0), table.offset(1)), (n * 10, n * 5));
        let summary = &table.current_snapshot().unwrap().summary;
        assert_eq!(summary["total-data-files"], (2 * n).to_string());
        let list = &store[&table.current_snapshot().unwrap().manifest_list];
        assert!(read_manifest_list(list).unwrap().len() < MERGE_MANIFESTS);
        assert_eq!(table.snapshots.len() as i64, n);
        assert_eq!(table.last_sequence_number, n);
        let again = TableMetadata::from_json(&table.to_json()).unwrap();
        assert_eq!(again.offset(0), n * 10);
    }

    #[test]
    fn removed_files_leave_the_table_and_the_offsets_stay() {
        let mut store = BTreeMap::new();
        let mut table = table();
        let files = [file(0, 0, 10), file(0, 10, 20), file(1, 0, 5)];
        for f in &files {
            table = append(&table, &mut store, std::slice::from_ref(f), 0);
        }
        let list = &store[&table.current_snapshot().unwrap().manifest_list];
        let manifests = read_manifest_list(list).unwrap();
        let read = |m: &ManifestFile| read_manifest(&store[&m.path], m);
        let gone = BTreeSet::from([files[0].path.clone(), files[2].path.clone()]);
        let removal = table.remove(&manifests, read, &gone, None, 5).unwrap();
        for (name, bytes) in removal.files {
            store.insert(format!("file:///t/metadata/{name}"), bytes);
        }
        let table = removal.metadata;
        assert_eq!(files_of(&table, &store), vec![files[1].clone()]);
        let summary = &table.current_snapshot().unwrap().summary;
        assert_eq!(summary["operation"], "delete");
        assert_eq!(summary["deleted-data-files"], "2");
        assert_eq!(summary["total-data-files"], "1");
        assert_eq!(summary["total-records"], "10");
        assert_eq!((table.offset(0), table.offset(1)), (20, 5));
        let list = &store[&table.current_snapshot().unwrap().manifest_list];
        let manifests = read_manifest_list(list).unwrap();
        assert_eq!(manifests.len(), 1);
        assert_eq!(
            (manifests[0].deleted_files, manifests[0].existing_files),
            (2, 1)
        );
    }

    #[test]
    fn expiry_keeps_the_current_snapshot_and_recent_ones() {
        let mut store = BTreeMap::new();
        let mut table = table();
        for (i, now) in [0, 500, 1800, 2000].into_iter().enumerate() {
            table = append(&table, &mut store, &[file(0, i as i64, i as i64 + 1)], now);
        }
        let (expired, _) = table.expire(2000);
        let times: Vec<i64> = expired.iter().map(|s| s.timestamp_ms).collect();
        assert_eq!(times, vec![0, 500], "older than 1000 ms");
        assert_eq!(table.snapshots.len(), 2);
        assert_eq!(table.snapshots[0].parent_snapshot_id, None);
        let (expired, _) = table.expire(1_000_000);
        assert_eq!(expired.len(), 1);
        assert_eq!(table.snapshots.len(), 1, "the current one stays");
        assert_eq!(files_of(&table, &store).len(), 4, "its files all stay");
    }

    #[test]
    fn new_columns_grow_the_schema_and_a_type_change_is_refused() {
        let mut table = table();
        let json = crate::export::json::fields_of;
        assert!(json(&table.columns()).is_empty(), "no JSON field yet");
        let raw = crate::export::with_id(Field::new("value_raw", DataType::Binary, true), 11);
        let amount = Field::new("amount", DataType::Int64, true);
        assert_eq!(table.add_columns(&[raw.clone(), amount.clone()]), Ok(true));
        assert_eq!(table.add_columns(&[raw, amount]), Ok(false), "no change");
        assert_eq!((table.current_schema_id, table.last_column_id), (1, 12));
        let fields = json(&table.columns());
        assert_eq!(fields.len(), 1);
        assert_eq!(
            (fields[0].name.as_str(), fields[0].kind),
            ("amount", crate::meta::JsonKind::Int)
        );
        let text = Field::new("amount", DataType::Utf8, true);
        assert_eq!(table.add_columns(&[text]), Err(vec!["amount".to_string()]));
        let mapping = &table.properties["schema.name-mapping.default"];
        assert!(
            mapping.contains(r#"{"field-id":12,"names":["amount"]}"#),
            "{mapping}"
        );
    }

    #[test]
    fn the_schema_carries_the_files_field_ids() {
        let table = table();
        let fields = table.schemas[0]["fields"].as_array().unwrap();
        let named = |name: &str| fields.iter().find(|f| f["name"] == name).unwrap();
        assert_eq!(named("partition")["id"], 1);
        assert_eq!(named("offset")["id"], OFFSET_ID);
        assert_eq!(named("timestamp")["type"], "timestamptz");
        let headers = &named("headers")["type"];
        assert_eq!(headers["element-id"], 7);
        assert_eq!(headers["element"]["fields"][1]["id"], 9);
        assert_eq!(named("value")["id"], 10);
        assert_eq!(table.last_column_id, 10);
    }
}
