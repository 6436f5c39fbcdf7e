//! Parquet export files (DESIGN section 9): a run of a partition's
//! committed records as one Parquet file, zstd-compressed, with the columns
//! analytics engines read (`offset`, `timestamp`, `timestamp_type`, `key`,
//! `value`, `headers`), sorted by offset. The partition is the file's
//! hive-style folder (`partition=N`), as Hive and Spark lay tables out:
//! pyarrow, DuckDB, Spark, Trino and Athena read it from there as the
//! `partition` column (a column of the same name in the file would clash
//! with it), and Iceberg from its manifests. Records
//! of aborted transactions and transaction markers are left out; batches
//! in every codec are decoded. The file records the offsets it covers in
//! its key-value metadata (`silt.start_offset`, `silt.end_offset`), so an
//! exporter that finds a file already written (by a predecessor that
//! crashed before committing it) can take it over as it is.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, Int64Builder, ListBuilder, StringBuilder, StructBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use bytes::Bytes;
use parquet::arrow::{ArrowWriter, PARQUET_FIELD_ID_META_KEY};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::schema::types::ColumnPath;

use crate::log::transactions::is_aborted;
use crate::meta::{AbortedTxn, JsonField};
use crate::protocol::batch::iter_batches;
use crate::protocol::records::{self, RecordsError};

/// Why an export file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write the Parquet file: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("cannot build the export columns: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("export file lacks its {0} metadata")]
    NoOffsets(&'static str),
}

pub mod avro;
pub mod iceberg;
pub mod json;

use json::JsonColumns;

/// The metadata key of the first offset a file covers.
const START_KEY: &str = "silt.start_offset";
/// The metadata key of the offset after the last one it covers.
const END_KEY: &str = "silt.end_offset";
/// The metadata key of the JSON fields with a column as of the file.
const JSON_FIELDS_KEY: &str = "silt.json_fields";

/// A written export file.
#[derive(Debug)]
pub struct ExportFile {
    pub bytes: Bytes,
    pub rows: u64,
    /// The offset after the last one the file covers.
    pub end: i64,
    /// With JSON values: the fields with a column as of this file, and the
    /// values that did not fit (kept raw).
    pub json_fields: Vec<JsonField>,
    pub json_conflicts: u64,
    /// Its columns, as in its schema.
    pub columns: Vec<Field>,
}

/// How values are written.
#[derive(Debug, Clone)]
pub enum Values {
    /// As produced, in the `value` column.
    Bytes,
    /// JSON objects as typed columns ([`json`]), starting from these
    /// fields.
    Json(Vec<JsonField>),
}

/// `field` with its Iceberg field id (in the Parquet schema): 2 to 10 for
/// the columns of values written as produced, 11 for `value_raw`; the
/// table's `partition` column, which the files leave to their folder, is
/// id 1 ([`iceberg`]). JSON fields' columns have none: the table numbers
/// them and maps them by name.
fn with_id(field: Field, id: i32) -> Field {
    let id = HashMap::from([(PARQUET_FIELD_ID_META_KEY.to_string(), id.to_string())]);
    field.with_metadata(id)
}

/// The columns every export file starts with, in order; the value's
/// column (or, with JSON values, columns) follow.
fn fixed_fields() -> Vec<Field> {
    vec![
        with_id(Field::new("offset", DataType::Int64, false), 2),
        with_id(
            Field::new(
                "timestamp",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            3,
        ),
        with_id(Field::new("timestamp_type", DataType::Utf8, false), 4),
        with_id(Field::new("key", DataType::Binary, true), 5),
        with_id(
            Field::new("headers", DataType::List(Arc::new(header_field())), false),
            6,
        ),
    ]
}

/// The value's column when values are written as produced.
fn value_field() -> Field {
    with_id(Field::new("value", DataType::Binary, true), 10)
}

/// The columns of a file of values written as produced, in order.
#[cfg(test)]
pub fn bytes_columns() -> Vec<Field> {
    let mut fields = fixed_fields();
    fields.push(value_field());
    fields
}

/// The column or columns of the values.
enum ValueColumns {
    Bytes(BinaryBuilder),
    Json(JsonColumns),
}

/// One header: its key (text, as Kafka clients write it) and value.
fn header_field() -> Field {
    with_id(
        Field::new("item", DataType::Struct(header_fields()), false),
        7,
    )
}

fn header_fields() -> Fields {
    Fields::from(vec![
        with_id(Field::new("key", DataType::Utf8, false), 8),
        with_id(Field::new("value", DataType::Binary, true), 9),
    ])
}

/// Builds one export file from a partition's batches, in offset order.
pub struct FileBuilder {
    partition: i32,
    start: i64,
    end: i64,
    offsets: Int64Builder,
    timestamps: TimestampMillisecondBuilder,
    timestamp_types: StringBuilder,
    keys: BinaryBuilder,
    values: ValueColumns,
    headers: ListBuilder<StructBuilder>,
}

impl FileBuilder {
    /// A file of `partition`'s records from offset `start`.
    pub fn new(partition: i32, start: i64, values: Values) -> FileBuilder {
        let header = StructBuilder::new(
            header_fields(),
            vec![
                Box::new(StringBuilder::new()),
                Box::new(BinaryBuilder::new()),
            ],
        );
        FileBuilder {
            partition,
            start,
            end: start,
            offsets: Int64Builder::new(),
            timestamps: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            timestamp_types: StringBuilder::new(),
            keys: BinaryBuilder::new(),
            values: match values {
                Values::Bytes => ValueColumns::Bytes(BinaryBuilder::new()),
                Values::Json(fields) => ValueColumns::Json(JsonColumns::new(fields)),
            },
            headers: ListBuilder::new(header).with_field(Arc::new(header_field())),
        }
    }

    /// The offset after the last batch added.
    pub fn end(&self) -> i64 {
        self.end
    }

    /// Adds the records of `batches` (whole stored batches from
    /// [`FileBuilder::end`] on) but those of `aborted` transactions and the
    /// markers, each batch inflated within `limit` bytes. Returns the
    /// batches that could not be read (left out, never blocking export).
    pub fn add(&mut self, batches: &Bytes, aborted: &[AbortedTxn], limit: usize) -> u64 {
        let mut unreadable = 0;
        for (header, range) in iter_batches(batches) {
            self.end = header.last_offset() + 1;
            if header.is_control() || is_aborted(&header, aborted) {
                continue;
            }
            let batch = batches.slice(range);
            if let Err(e) = self.add_records(&batch, &header, limit) {
                tracing::warn!(
                    partition = self.partition,
                    offset = header.base_offset,
                    error = %e,
                    "a batch cannot be exported; left out"
                );
                unreadable += 1;
            }
        }
        unreadable
    }

    fn add_records(
        &mut self,
        batch: &Bytes,
        header: &crate::protocol::batch::BatchHeader,
        limit: usize,
    ) -> Result<(), RecordsError> {
        let records = records::records_of(batch, header, limit)?;
        let bytes = &records.bytes;
        // Checked whole before any row is added, so a bad batch adds none.
        let views = records::walk(bytes).collect::<Result<Vec<_>, _>>()?;
        let headers = views
            .iter()
            .map(|v| records::headers(bytes, v.headers.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let log_append = header.is_log_append_time();
        let timestamp_type = if log_append {
            "LogAppendTime"
        } else {
            "CreateTime"
        };
        for (view, record_headers) in views.iter().zip(headers) {
            self.offsets
                .append_value(header.base_offset + i64::from(view.offset_delta));
            self.timestamps.append_value(if log_append {
                header.max_timestamp
            } else {
                header.base_timestamp + view.timestamp_delta
            });
            self.timestamp_types.append_value(timestamp_type);
            let field = |range: &Option<std::ops::Range<usize>>| range.clone().map(|r| &bytes[r]);
            self.keys.append_option(field(&view.key));
            match &mut self.values {
                ValueColumns::Bytes(values) => values.append_option(field(&view.value)),
                ValueColumns::Json(columns) => columns.push(field(&view.value)),
            }
            let list = self.headers.values();
            for h in &record_headers {
                let key = String::from_utf8_lossy(&bytes[h.key.clone()]);
                list.field_builder::<StringBuilder>(0)
                    .expect("the key column")
                    .append_value(key);
                list.field_builder::<BinaryBuilder>(1)
                    .expect("the value column")
                    .append_option(field(&h.value));
                list.append(true);
            }
            self.headers.append(true);
        }
        Ok(())
    }

    /// The Parquet file of the rows added, for `topic`.
    pub fn finish(mut self, topic: &str) -> Result<ExportFile, ExportError> {
        let rows = self.offsets.len();
        let mut fields = fixed_fields();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.offsets.finish()),
            Arc::new(self.timestamps.finish()),
            Arc::new(self.timestamp_types.finish()),
            Arc::new(self.keys.finish()),
            Arc::new(self.headers.finish()),
        ];
        let (mut json_fields, mut json_conflicts) = (Vec::new(), 0);
        match self.values {
            ValueColumns::Bytes(mut values) => {
                fields.push(value_field());
                columns.push(Arc::new(values.finish()));
            }
            ValueColumns::Json(values) => {
                json_fields = values.fields().to_vec();
                json_conflicts = values.conflicts();
                for (field, column) in values.finish() {
                    fields.push(field);
                    columns.push(column);
                }
            }
        }
        let schema = Arc::new(Schema::new(fields.clone()));
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        let mut metadata: Vec<KeyValue> = [
            ("silt.topic", topic.to_string()),
            ("silt.partition", self.partition.to_string()),
            (START_KEY, self.start.to_string()),
            (END_KEY, self.end.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| KeyValue::new(k.to_string(), v))
        .collect();
        if !json_fields.is_empty() {
            let text = serde_json::to_string(&json_fields).unwrap_or_default();
            metadata.push(KeyValue::new(JSON_FIELDS_KEY.to_string(), text));
        }
        // Keys and values are mostly distinct: a dictionary would only be
        // tried and dropped.
        let no_dictionary = ["key", "value", json::RAW_COLUMN].map(ColumnPath::from);
        let properties = no_dictionary
            .into_iter()
            .fold(WriterProperties::builder(), |builder, column| {
                builder.set_column_dictionary_enabled(column, false)
            })
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_key_value_metadata(Some(metadata))
            .build();
        let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(properties))?;
        writer.write(&batch)?;
        let bytes = writer.into_inner()?;
        Ok(ExportFile {
            bytes: Bytes::from(bytes),
            rows: rows as u64,
            end: self.end,
            json_fields,
            json_conflicts,
            columns: fields,
        })
    }
}

/// What an export file written before says it covers: its rows and the
/// offset after its last.
pub fn covered(file: Bytes) -> Result<ExportFile, ExportError> {
    let reader = SerializedFileReader::new(file.clone())?;
    let metadata = reader.metadata().file_metadata();
    let value = |key: &str| {
        metadata
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|k| k.key == key))
            .and_then(|k| k.value.clone())
    };
    let end = value(END_KEY)
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or(ExportError::NoOffsets(END_KEY))?;
    let json_fields = value(JSON_FIELDS_KEY)
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default();
    let schema = parquet::arrow::parquet_to_arrow_schema(
        metadata.schema_descr(),
        metadata.key_value_metadata(),
    )?;
    Ok(ExportFile {
        rows: metadata.num_rows().max(0) as u64,
        end,
        bytes: file,
        json_fields,
        json_conflicts: 0,
        columns: schema.fields().iter().map(|f| f.as_ref().clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMillisecondType};
    use bytes::BytesMut;
    use indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression as Codec, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// A batch of `values` at `offset` (producer 7), transactional or not.
    fn batch(offset: i64, values: &[Option<&str>], transactional: bool, codec: Codec) -> Bytes {
        let records: Vec<Record> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Record {
                transactional,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 7,
                producer_epoch: 0,
                timestamp_type: TimestampType::Creation,
                offset: offset + i as i64,
                sequence: i as i32,
                timestamp: 1_700_000_000_000 + i as i64,
                key: Some(Bytes::from(format!("k{}", offset + i as i64))),
                value: v.map(|v| Bytes::from(v.to_string())),
                headers: IndexMap::from([(
                    StrBytes::from_static_str("h"),
                    Some(Bytes::from_static(b"hv")),
                )]),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: codec,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf.freeze()
    }

    fn read(file: &ExportFile) -> RecordBatch {
        let reader = ParquetRecordBatchReaderBuilder::try_new(file.bytes.clone())
            .unwrap()
            .build()
            .unwrap();
        let mut batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        assert_eq!(batches.len(), 1, "one record batch");
        batches.remove(0)
    }

    #[test]
    fn rows_in_offset_order_without_aborted_records() {
        let aborted_batch = batch(3, &[Some("aborted")], true, Codec::None);
        let batches: Bytes = [
            batch(0, &[Some("a"), None, Some("")], false, Codec::Zstd),
            aborted_batch,
            batch(4, &[Some("b")], false, Codec::Lz4),
        ]
        .concat()
        .into();
        let aborted = [AbortedTxn {
            producer_id: 7,
            first_offset: 3,
            last_offset: 4,
        }];
        let mut builder = FileBuilder::new(2, 0, Values::Bytes);
        assert_eq!(builder.add(&batches, &aborted, 1 << 20), 0);
        assert_eq!(builder.end(), 5);
        let file = builder.finish("t").unwrap();
        assert_eq!((file.rows, file.end), (4, 5));
        let rows = read(&file);
        let offsets: Vec<i64> = rows.column(0).as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(offsets, vec![0, 1, 2, 4]);
        let values = rows.column(5).as_binary::<i32>();
        assert_eq!(values.value(0), b"a");
        assert!(values.is_null(1), "a null value stays null");
        assert_eq!(values.value(2), b"", "an empty value stays empty");
        let timestamps = rows.column(1).as_primitive::<TimestampMillisecondType>();
        assert_eq!(timestamps.value(1), 1_700_000_000_001);
        let headers = rows.column(4).as_list::<i32>().value(3);
        let header = headers.as_struct();
        assert_eq!(header.column(0).as_string::<i32>().value(0), "h");
        assert_eq!(header.column(1).as_binary::<i32>().value(0), b"hv");
        let again = covered(file.bytes.clone()).unwrap();
        assert_eq!((again.rows, again.end), (4, 5));
    }

    #[test]
    fn an_unreadable_batch_is_left_out_and_counted() {
        let good = batch(0, &[Some("a")], false, Codec::None);
        let big = batch(1, &[Some(&"x".repeat(10_000))], false, Codec::Gzip);
        let batches: Bytes = [good, big].concat().into();
        let mut builder = FileBuilder::new(0, 0, Values::Bytes);
        assert_eq!(
            builder.add(&batches, &[], 1_000),
            1,
            "over the inflate limit"
        );
        assert_eq!(builder.end(), 2, "its offsets are passed all the same");
        assert_eq!(builder.finish("t").unwrap().rows, 1);
    }
}
