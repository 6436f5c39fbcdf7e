//! Parquet export (DESIGN section 9), read as analysts read it: pyarrow
//! and DuckDB over the files in the bucket (tests/python/read_export.py),
//! checked against what librdkafka producers had acknowledged.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::transactions::transactional;
use common::*;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};
use serde_json::Value;

/// Files as soon as there is data: a pass every 100 ms, a file at most
/// 200 ms after the last.
const QUICK: [(&str, &str); 2] = [
    ("SILT_EXPORT__INTERVAL_MS", "100"),
    ("SILT_EXPORT__MAX_DELAY_MS", "200"),
];
const DEADLINE: Duration = Duration::from_secs(60);

/// A row of an export file.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    partition: i32,
    offset: i64,
    timestamp_type: String,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<(String, Option<String>)>,
    /// Every column, as JSON.
    columns: Value,
}

/// The rows of `topic`'s export files (pyarrow), in partition and offset
/// order, and DuckDB's count of rows and of distinct positions: in the
/// broker's local bucket, or under `s3` (`s3://BUCKET/PREFIX`).
fn exported(broker: &Broker, topic: &str) -> (Vec<Row>, (u64, u64)) {
    exported_from(broker, topic, None)
}

fn exported_from(broker: &Broker, topic: &str, s3: Option<&str>) -> (Vec<Row>, (u64, u64)) {
    let lines = match s3 {
        None => {
            let dir = broker.data_dir.join("objects/export").join(topic);
            run_python("read_export.py", &[dir.to_str().unwrap()])
        }
        Some(url) => {
            let root = format!("{url}/export/{topic}");
            run_python("read_export.py", &[&root, &common::s3::endpoint()])
        }
    };
    let (rows, counted) = rows_of(&lines, "duckdb");
    let count = |key: &str| counted[key].as_u64().unwrap();
    (rows, (count("rows"), count("distinct")))
}

/// The rows a reader script printed, and its summary line's
/// `{"<summary>": {...}}` object.
fn rows_of(lines: &[String], summary: &str) -> (Vec<Row>, Value) {
    let mut rows = Vec::new();
    let mut summarized = Value::Null;
    for line in lines {
        let v: Value = serde_json::from_str(line).expect("a JSON line");
        if let Some(found) = v.get(summary) {
            summarized = found.clone();
            continue;
        }
        let text = |v: &Value| v.as_str().map(str::to_string);
        rows.push(Row {
            partition: v["partition"].as_i64().unwrap() as i32,
            offset: v["offset"].as_i64().unwrap(),
            timestamp_type: v["timestamp_type"].as_str().unwrap().to_string(),
            key: text(&v["key"]),
            value: v.get("value").and_then(|v| v.as_str()).map(str::to_string),
            headers: v["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| (h[0].as_str().unwrap().to_string(), text(&h[1])))
                .collect(),
            columns: v,
        });
    }
    assert!(
        !summarized.is_null(),
        "the reader printed its {summary} line"
    );
    (rows, summarized)
}

/// Waits until `topic`'s export holds `count` rows; returns them.
fn wait_exported(broker: &Broker, topic: &str, count: usize) -> (Vec<Row>, (u64, u64)) {
    wait_exported_from(broker, topic, None, count)
}

fn wait_exported_from(
    broker: &Broker,
    topic: &str,
    s3: Option<&str>,
    count: usize,
) -> (Vec<Row>, (u64, u64)) {
    let mut last = (Vec::new(), (0, 0));
    wait_until(&format!("{count} rows exported"), DEADLINE, || {
        last = exported_from(broker, topic, s3);
        last.0.len() >= count
    });
    last
}

/// Creates `topic` with `partitions` and the topic `configs`
/// (`NAME=VALUE`) through `silt topic create`.
fn create_exported(broker: &Broker, topic: &str, partitions: u32, configs: &[&str]) {
    let partitions = partitions.to_string();
    let mut args = vec!["topic", "create", topic, "--partitions", &partitions];
    for config in configs {
        args.extend(["--config", config]);
    }
    args.extend(["--bootstrap-server", &broker.addr]);
    let (ok, _, err) = silt(&args);
    assert!(ok, "{err}");
}

/// Every row once, at the position its record was acknowledged at.
fn assert_exactly_once(rows: &[Row], acked: &BTreeMap<String, Ack>) {
    let exported: BTreeMap<String, (i32, i64)> = rows
        .iter()
        .map(|r| (r.key.clone().unwrap(), (r.partition, r.offset)))
        .collect();
    assert_eq!(exported.len(), rows.len(), "each key once");
    let expected: BTreeMap<String, (i32, i64)> = acked
        .iter()
        .map(|(k, a)| (k.clone(), (a.partition, a.offset)))
        .collect();
    assert_eq!(exported, expected);
}

/// What the i-th record of `codec` carries: a null value every tenth, an
/// empty one the next, headers (one with a null value every seventh).
fn value_of(i: usize, codec: &str) -> Option<String> {
    match i % 10 {
        0 => None,
        1 => Some(String::new()),
        _ => Some(format!("{codec} value {i}")),
    }
}

fn headers_of(i: usize, codec: &str) -> Vec<(String, Option<String>)> {
    let mut headers = vec![
        ("codec".to_string(), Some(codec.to_string())),
        ("i".to_string(), Some(i.to_string())),
    ];
    if i.is_multiple_of(7) {
        headers.push(("empty".to_string(), None));
    }
    headers
}

/// Produces 100 records in `codec` to `topic`; their acknowledgements.
fn produce(addr: &str, topic: &str, codec: &str) -> BTreeMap<String, Ack> {
    let deliveries = Deliveries::default();
    let producer = producer_with(addr, &deliveries, &[("compression.codec", codec)]);
    for i in 0..100 {
        let key = format!("{codec}-{i}");
        let value = value_of(i, codec);
        let mut headers = OwnedHeaders::new();
        for (k, v) in headers_of(i, codec) {
            headers = headers.insert(Header {
                key: &k,
                value: v.as_deref(),
            });
        }
        let mut record = BaseRecord::to(topic).key(&key).headers(headers);
        if let Some(value) = &value {
            record = record.payload(value);
        }
        producer.send(record).map_err(|(e, _)| e).expect("send");
    }
    producer.flush(DEADLINE).expect("flush");
    assert!(deliveries.failed.lock().unwrap().is_empty());
    let acked = deliveries.acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 100);
    acked
}

/// Every record acknowledged is exported once, at its partition and
/// offset, with its key, value (null and empty kept apart), headers and
/// timestamp type, in all five codecs; the records of an aborted
/// transaction are not, those of a committed one are; DuckDB counts the
/// same rows, each position once.
#[test]
fn committed_records_are_exported_once_with_every_field() {
    let broker = Broker::start_with_env(&["--admin-listen", "127.0.0.1:0"], &QUICK);
    create_exported(&broker, "orders", 3, &["silt.export.format=parquet"]);
    let mut acked = BTreeMap::new();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        acked.extend(produce(&broker.addr, "orders", codec));
    }
    let txn = Deliveries::default();
    let producer = transactional(&broker.addr, "exporter-test", &txn, &[]);
    for (outcome, prefix) in [("abort", "aborted"), ("commit", "committed")] {
        producer.begin_transaction().unwrap();
        for i in 0..20 {
            let key = format!("{prefix}-{i}");
            producer
                .send(BaseRecord::to("orders").key(&key).payload("txn"))
                .map_err(|(e, _)| e)
                .unwrap();
        }
        if outcome == "abort" {
            producer.abort_transaction(DEADLINE).unwrap();
        } else {
            producer.commit_transaction(DEADLINE).unwrap();
        }
    }
    let committed: BTreeMap<String, Ack> = txn
        .acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("committed-"))
        .map(|(k, a)| (k.clone(), *a))
        .collect();
    assert_eq!(committed.len(), 20);

    let (rows, duckdb) = wait_exported(&broker, "orders", 520);
    assert_eq!(
        rows.len(),
        520,
        "nothing more: no aborted record, no marker"
    );
    assert_eq!(duckdb, (520, 520), "DuckDB reads each position once");
    let by_key: BTreeMap<&str, &Row> = rows
        .iter()
        .map(|r| (r.key.as_deref().expect("keyed"), r))
        .collect();
    assert_eq!(by_key.len(), 520, "each record once");
    for (key, ack) in acked.iter().chain(&committed) {
        let row = by_key
            .get(key.as_str())
            .unwrap_or_else(|| panic!("{key} exported"));
        assert_eq!(
            (row.partition, row.offset),
            (ack.partition, ack.offset),
            "{key}"
        );
        assert_eq!(row.timestamp_type, "CreateTime");
        if let Some((codec, i)) = key.split_once('-').filter(|(c, _)| *c != "committed") {
            let i: usize = i.parse().unwrap();
            assert_eq!(row.value, value_of(i, codec), "{key}");
            assert_eq!(row.headers, headers_of(i, codec), "{key}");
        } else {
            assert_eq!(row.value.as_deref(), Some("txn"));
        }
    }
    let positions: BTreeSet<(i32, i64)> = rows.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(positions.len(), rows.len());

    // `silt export status`: every partition catches up (the last markers
    // too), the rows counted.
    let admin = broker.admin.clone().unwrap();
    let status = |topic: &str| silt(&["export", "status", topic, "--admin", &admin]);
    let caught_up = |out: &str| {
        out.lines()
            .skip(1)
            .all(|l| l.split_whitespace().nth(4) == Some("0"))
    };
    let mut out = String::new();
    wait_until("export status shows no lag", DEADLINE, || {
        let (ok, text, err) = status("orders");
        assert!(ok, "{err}");
        out = text;
        caught_up(&out)
    });
    let lines: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    let mut rows_counted = 0;
    for (p, line) in lines.iter().enumerate() {
        assert_eq!(line[..2], ["orders", p.to_string().as_str()], "{out}");
        assert_eq!(line[2], line[3], "exported to the end: {out}");
        assert_eq!((line[4], line[9]), ("0", "-"), "no lag, no error: {out}");
        rows_counted += line[7].parse::<usize>().unwrap();
    }
    assert_eq!(rows_counted, 520, "{out}");
    let metrics = http_get(&admin, "/metrics");
    let lags: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("silt_export_lag_records{") && l.contains(r#"topic="orders""#))
        .collect();
    assert_eq!(lags.len(), 3, "a lag per partition led: {lags:?}");
    assert!(lags.iter().all(|l| l.ends_with(" 0")), "{lags:?}");
    let (ok, _, err) = status("nothing");
    assert!(!ok && err.contains("no such topic"), "{err}");
    create_topic(&broker, "plain", 1);
    let (ok, _, err) = status("plain");
    assert!(!ok && err.contains("'plain' is not exported"), "{err}");
}

/// A broker killed (-9) after writing an export file and before
/// committing it: restarted, it takes the file over, and the export ends
/// with every record exactly once. Export is turned on (`silt topic
/// alter`) once the first records are acknowledged, so the crash comes
/// after them.
#[test]
fn a_crash_between_writing_and_committing_a_file_loses_and_repeats_nothing() {
    let mut env = QUICK.to_vec();
    env.push(("FAILPOINTS", "export.after_write"));
    let mut broker = Broker::start_with_env(&[], &env);
    create_topic(&broker, "crashy", 2);
    let mut acked = produce(&broker.addr, "crashy", "lz4");
    let (ok, out, err) = silt(&[
        "topic",
        "alter",
        "crashy",
        "--config",
        "silt.export.format=parquet",
        "--bootstrap-server",
        &broker.addr,
    ]);
    assert!(ok && out.contains("Altered topic crashy."), "{err}");
    broker.wait_exit(DEADLINE);
    let (written, _) = exported(&broker, "crashy");
    assert!(!written.is_empty(), "a file was written before the crash");
    broker.unset_env("FAILPOINTS");
    broker.restart();
    acked.extend(produce(&broker.addr, "crashy", "zstd"));
    let (rows, duckdb) = wait_exported(&broker, "crashy", 200);
    assert_eq!(rows.len(), 200);
    assert_eq!(duckdb, (200, 200));
    assert_exactly_once(&rows, &acked);
}

/// On S3 (the real server): the files are in the bucket, read from there
/// by pyarrow, exactly once.
#[test]
fn exports_to_an_s3_bucket() {
    let url = common::s3::bucket_url();
    let broker = common::s3::start(&common::s3::endpoint(), &url, &[], &QUICK);
    create_exported(&broker, "in-s3", 2, &["silt.export.format=parquet"]);
    let mut acked = produce(&broker.addr, "in-s3", "zstd");
    acked.extend(produce(&broker.addr, "in-s3", "snappy"));
    let (rows, duckdb) = wait_exported_from(&broker, "in-s3", Some(&url), 200);
    assert_eq!(rows.len(), 200);
    assert_eq!(duckdb, (200, 200));
    assert_exactly_once(&rows, &acked);
}

/// The low watermark of `topic`'s partition 0.
fn log_start(addr: &str, topic: &str) -> i64 {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .expect("consumer");
    consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks")
        .0
}

/// Retention never deletes records export has not written: with a file
/// not due yet, an exported topic keeps everything while a plain one with
/// the same retention loses its old records; once the file is written,
/// retention moves on, and every record it deleted is in the export.
#[test]
fn retention_waits_for_export() {
    let broker = Broker::start_with_env(
        &[],
        &[
            ("SILT_STORAGE__LIFECYCLE_INTERVAL_MS", "200"),
            ("SILT_EXPORT__INTERVAL_MS", "100"),
            ("SILT_EXPORT__MAX_DELAY_MS", "3600000"),
            ("SILT_EXPORT__FILE_BYTES", "200000"),
        ],
    );
    for (topic, export) in [("kept", "parquet"), ("plain", "none")] {
        let format = format!("silt.export.format={export}");
        create_exported(&broker, topic, 1, &["retention.ms=1000", &format]);
    }
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(&broker.addr, &deliveries);
    let send = |topic: &str, range: std::ops::Range<usize>, size: usize| {
        for i in range {
            let key = format!("{topic}-{i}");
            let value = "v".repeat(size);
            producer
                .send(BaseRecord::to(topic).key(&key).payload(&value))
                .map_err(|(e, _)| e)
                .expect("send");
        }
        producer.flush(DEADLINE).expect("flush");
    };
    send("kept", 0..100, 10);
    send("plain", 0..100, 10);
    wait_until("the plain topic's records expire", DEADLINE, || {
        log_start(&broker.addr, "plain") > 0
    });
    assert_eq!(log_start(&broker.addr, "kept"), 0, "nothing exported yet");
    assert!(exported(&broker, "kept").0.is_empty());

    send("kept", 100..400, 1000);
    wait_until("retention moves on once export did", DEADLINE, || {
        log_start(&broker.addr, "kept") > 0
    });
    let start = log_start(&broker.addr, "kept");
    let (rows, _) = exported(&broker, "kept");
    let offsets: BTreeSet<i64> = rows.iter().map(|r| r.offset).collect();
    assert!(
        (0..start).all(|o| offsets.contains(&o)),
        "every deleted record was exported (log start {start}, {} rows)",
        rows.len()
    );
}

/// `silt.export.value=json`: the fields of JSON objects become typed
/// columns, added as they appear (null before); a value that is not an
/// object or whose field has another type stays raw and is counted; every
/// row is there, and export never stops.
#[test]
fn json_values_become_columns_that_grow() {
    let broker = Broker::start_with_env(&["--admin-listen", "127.0.0.1:0"], &QUICK);
    create_exported(
        &broker,
        "events",
        1,
        &["silt.export.format=parquet", "silt.export.value=json"],
    );
    let values: [Option<&str>; 6] = [
        Some(r#"{"id": 1, "name": "a"}"#),
        Some(r#"{"id": 2, "name": "b", "price": 1.5, "tags": ["x"]}"#),
        Some(r#"{"id": "three"}"#),
        Some("not json"),
        Some(r#"{"id": 4, "price": 2}"#),
        None,
    ];
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(&broker.addr, &deliveries);
    for (i, value) in values.iter().enumerate() {
        let key = format!("e{i}");
        let mut record = BaseRecord::to("events").key(&key);
        if let Some(value) = value {
            record = record.payload(*value);
        }
        producer.send(record).map_err(|(e, _)| e).expect("send");
        // One at a time: the first type a field has is its column's.
        producer.flush(DEADLINE).expect("flush");
    }
    let (rows, duckdb) = wait_exported(&broker, "events", 6);
    assert_eq!(duckdb, (6, 6));
    let column = |row: usize, name: &str| rows[row].columns[name].clone();
    let ids: Vec<Value> = (0..6).map(|r| column(r, "id")).collect();
    assert_eq!(
        ids,
        [
            1.into(),
            2.into(),
            Value::Null,
            Value::Null,
            4.into(),
            Value::Null
        ]
    );
    assert_eq!(
        column(0, "price"),
        Value::Null,
        "a column added later is null before"
    );
    assert_eq!(
        (column(1, "price"), column(4, "price")),
        (1.5.into(), 2.0.into())
    );
    assert_eq!(column(1, "tags"), r#"["x"]"#);
    assert_eq!(column(2, "value_raw"), r#"{"id": "three"}"#);
    assert_eq!(column(3, "value_raw"), "not json");
    assert_eq!(
        column(5, "value_raw"),
        Value::Null,
        "a null value is no conflict"
    );
    assert!(rows.iter().all(|r| r.columns.get("value").is_none()));
    assert_eq!(
        broker.metric("silt_export_json_conflicts_total", r#"topic="events""#),
        2.0
    );
}

/// What pyiceberg reads of `topic`'s table through the broker's catalog
/// (tests/python/read_iceberg.py): its rows and summary; `None` while
/// there is no table yet. `s3`: the table is in the test S3 server.
fn table(broker: &Broker, topic: &str, s3: bool) -> Option<(Vec<Row>, Value)> {
    let admin = broker.admin.as_ref().expect("an admin port");
    let catalog = format!("http://{admin}/iceberg");
    let endpoint = common::s3::endpoint();
    let mut args = vec![catalog.as_str(), topic];
    if s3 {
        args.push(&endpoint);
    }
    let lines = try_python("read_iceberg.py", &args).ok()?;
    Some(rows_of(&lines, "iceberg"))
}

/// Waits until `topic`'s table holds `count` rows; returns them and the
/// table's summary.
fn wait_table(broker: &Broker, topic: &str, s3: bool, count: usize) -> (Vec<Row>, Value) {
    let mut last = None;
    wait_until(
        &format!("{count} rows in the Iceberg table"),
        DEADLINE,
        || {
            last = table(broker, topic, s3);
            last.as_ref().is_some_and(|(rows, _)| rows.len() >= count)
        },
    );
    last.unwrap()
}

/// Every acknowledged record once in the table, read through the catalog
/// and from the metadata file alone; a scan of partition 1 finds its rows
/// by the manifests' partition values.
fn assert_table_exactly_once(rows: &[Row], summary: &Value, acked: &BTreeMap<String, Ack>) {
    assert_exactly_once(rows, acked);
    assert_eq!(summary["static_rows"], rows.len(), "{summary}");
    assert_eq!(summary["static_distinct"], rows.len(), "{summary}");
    let in_1 = rows.iter().filter(|r| r.partition == 1).count();
    assert!(in_1 > 0);
    assert_eq!(summary["partition_1_rows"], in_1, "{summary}");
}

/// `silt.export.format = iceberg`: pyiceberg attaches to the broker's REST
/// catalog and reads the table, and loads it from its metadata file: the
/// same rows as the Parquet files hold, every field, every codec, each
/// record once. The catalog answers unknown names with the REST
/// specification's errors.
#[test]
fn iceberg_tables_read_through_the_catalog_and_their_metadata_file() {
    let broker = Broker::start_with_env(&["--admin-listen", "127.0.0.1:0"], &QUICK);
    create_exported(&broker, "lake", 2, &["silt.export.format=iceberg"]);
    let mut acked = BTreeMap::new();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        acked.extend(produce(&broker.addr, "lake", codec));
    }
    let (rows, summary) = wait_table(&broker, "lake", false, 500);
    assert_eq!(rows.len(), 500);
    assert_table_exactly_once(&rows, &summary, &acked);
    let (files, _) = exported(&broker, "lake");
    assert_eq!(rows, files, "the table's rows are the files' rows");
    for row in &rows {
        let (codec, i) = row.key.as_deref().unwrap().split_once('-').unwrap();
        let i: usize = i.parse().unwrap();
        assert_eq!(row.value, value_of(i, codec));
        assert_eq!(row.headers, headers_of(i, codec));
    }
    let location = summary["metadata_location"].as_str().unwrap();
    let metadata = broker.data_dir.join("objects/export/lake/metadata");
    assert!(
        location.starts_with(&format!("file://{}/v", metadata.display())),
        "{location}"
    );

    let admin = broker.admin.clone().unwrap();
    let missing = http_get(&admin, "/iceberg/v1/namespaces/silt/tables/nothing");
    let missing: Value = serde_json::from_str(&missing).unwrap();
    assert_eq!(missing["error"]["type"], "NoSuchTableException");
    assert_eq!(missing["error"]["code"], 404);
    let other = http_get(&admin, "/iceberg/v1/namespaces/other/tables");
    assert!(other.contains("NoSuchNamespaceException"), "{other}");
}

/// A broker killed (-9) after committing an export file's progress and
/// before committing it to the table: restarted, it appends the file the
/// table lacks, and the table ends with every record exactly once.
#[test]
fn a_crash_between_the_progress_and_the_table_commit_loses_and_repeats_nothing() {
    let mut env = QUICK.to_vec();
    env.push(("FAILPOINTS", "export.after_progress"));
    let mut broker = Broker::start_with_env(&["--admin-listen", "127.0.0.1:0"], &env);
    create_topic(&broker, "tidal", 2);
    let mut acked = produce(&broker.addr, "tidal", "snappy");
    let (ok, _, err) = silt(&[
        "topic",
        "alter",
        "tidal",
        "--config",
        "silt.export.format=iceberg",
        "--bootstrap-server",
        &broker.addr,
    ]);
    assert!(ok, "{err}");
    broker.wait_exit(DEADLINE);
    let metadata = broker.data_dir.join("objects/export/tidal/metadata");
    assert!(!metadata.exists(), "no table commit before the crash");
    broker.unset_env("FAILPOINTS");
    broker.restart();
    acked.extend(produce(&broker.addr, "tidal", "gzip"));
    let (rows, summary) = wait_table(&broker, "tidal", false, 200);
    assert_eq!(rows.len(), 200);
    assert_table_exactly_once(&rows, &summary, &acked);
}

/// On S3 (the real server): the table's files are in the bucket; pyiceberg
/// reaches them with the endpoint the catalog names and its own
/// credentials.
#[test]
fn iceberg_tables_in_an_s3_bucket() {
    let url = common::s3::bucket_url();
    let broker = common::s3::start(&common::s3::endpoint(), &url, &[], &QUICK);
    create_exported(&broker, "s3-lake", 2, &["silt.export.format=iceberg"]);
    let mut acked = produce(&broker.addr, "s3-lake", "lz4");
    acked.extend(produce(&broker.addr, "s3-lake", "zstd"));
    let (rows, summary) = wait_table(&broker, "s3-lake", true, 200);
    assert_eq!(rows.len(), 200);
    assert_table_exactly_once(&rows, &summary, &acked);
    let location = summary["metadata_location"].as_str().unwrap();
    assert!(
        location.starts_with(&format!("{url}/export/s3-lake/metadata/v")),
        "{location}"
    );
}

/// Snapshots older than `silt.export.snapshot.retention.ms` expire with
/// the metadata only they need: one manifest list per snapshot kept,
/// every data file still there and in the table, every row still read.
#[test]
fn snapshot_expiry_removes_old_metadata_only() {
    let broker = Broker::start_with_env(&["--admin-listen", "127.0.0.1:0"], &QUICK);
    create_exported(
        &broker,
        "brief",
        2,
        &[
            "silt.export.format=iceberg",
            "silt.export.snapshot.retention.ms=0",
        ],
    );
    let mut acked = BTreeMap::new();
    // A file, and so a snapshot, per partition per round.
    for (round, codec) in ["none", "zstd", "lz4"].into_iter().enumerate() {
        acked.extend(produce(&broker.addr, "brief", codec));
        wait_table(&broker, "brief", false, 100 * (round + 1));
    }
    let (rows, summary) = wait_table(&broker, "brief", false, 300);
    assert_table_exactly_once(&rows, &summary, &acked);
    let root = broker.data_dir.join("objects/export/brief");
    let count = |dir: &std::path::Path, prefix: &str, suffix: &str| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(prefix) && n.ends_with(suffix))
            .count()
    };
    let files: usize = (0..2)
        .map(|p| count(&root.join(format!("partition={p}")), "", ".parquet"))
        .sum();
    assert!(files >= 6, "a file per partition per round: {files}");
    assert_eq!(summary["files"], files, "every data file is in the table");
    assert_eq!(summary["snapshots"], 1, "older snapshots expired");
    let metadata = root.join("metadata");
    assert_eq!(
        count(&metadata, "snap-", ".avro"),
        1,
        "the expired snapshots' manifest lists are deleted"
    );
    assert!(
        count(&metadata, "v", ".metadata.json") >= 6,
        "earlier metadata files stay within the log's length"
    );
}

/// `silt.export.value=json` into an Iceberg table: the table's schema
/// grows with each new field, and a field has one type across partitions.
/// Here `x` comes first as an integer in partition 0 and as text in
/// partition 1: whichever file reaches the table second is built again
/// with the table's type, its value kept raw. Every row is read once.
#[test]
fn json_values_grow_the_iceberg_schema_with_one_type_per_field() {
    let broker = Broker::start_with_env(&["--admin-listen", "127.0.0.1:0"], &QUICK);
    create_exported(
        &broker,
        "events-ice",
        2,
        &["silt.export.format=iceberg", "silt.export.value=json"],
    );
    let values: [(i32, &str); 7] = [
        (0, r#"{"id": 1, "name": "a"}"#),
        (1, r#"{"id": 10, "kind": "k"}"#),
        (0, r#"{"id": 2, "price": 1.5}"#),
        (1, r#"{"id": "eleven"}"#),
        (1, "not json"),
        (0, r#"{"x": 1}"#),
        (1, r#"{"x": "one"}"#),
    ];
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(&broker.addr, &deliveries);
    for (i, (partition, value)) in values.iter().enumerate() {
        let key = format!("e{i}");
        let record = BaseRecord::to("events-ice")
            .key(&key)
            .payload(*value)
            .partition(*partition);
        producer.send(record).map_err(|(e, _)| e).expect("send");
    }
    producer.flush(DEADLINE).expect("flush");
    let acked = deliveries.acked.lock().unwrap().clone();
    let (rows, summary) = wait_table(&broker, "events-ice", false, 7);
    assert_eq!(rows.len(), 7);
    assert_table_exactly_once(&rows, &summary, &acked);
    let column = |key: &str, name: &str| {
        let row = rows.iter().find(|r| r.key.as_deref() == Some(key)).unwrap();
        row.columns[name].clone()
    };
    assert_eq!(column("e0", "id"), 1);
    assert_eq!(column("e1", "id"), 10);
    assert_eq!(column("e0", "name"), "a");
    assert_eq!(column("e1", "kind"), "k");
    assert_eq!(column("e2", "price"), 1.5);
    assert_eq!(column("e0", "price"), Value::Null, "null before the field");
    assert_eq!(column("e3", "id"), Value::Null);
    assert_eq!(column("e3", "value_raw"), r#"{"id": "eleven"}"#);
    assert_eq!(column("e4", "value_raw"), "not json");
    let x = (column("e5", "x"), column("e6", "x"));
    let raw = (column("e5", "value_raw"), column("e6", "value_raw"));
    assert!(
        (x == (1.into(), Value::Null) && raw == (Value::Null, r#"{"x": "one"}"#.into()))
            || (x == (Value::Null, "one".into()) && raw == (r#"{"x": 1}"#.into(), Value::Null)),
        "one type for x: {x:?} {raw:?}"
    );
}

/// `[[topics.by_name]]` in the broker's configuration exports the topics
/// whose names match its pattern without a config of their own: a topic
/// created plain becomes an Iceberg table; one of another name is not
/// exported, and one that says `silt.export.format=none` is not either.
#[test]
fn topics_matching_a_name_pattern_are_exported_without_a_config_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("silt.toml");
    std::fs::write(
        &file,
        "[[topics.by_name]]\npattern = \"lake-.*\"\n\
         configs = { \"silt.export.format\" = \"iceberg\" }\n",
    )
    .unwrap();
    let args = [
        "--admin-listen",
        "127.0.0.1:0",
        "--config",
        file.to_str().unwrap(),
    ];
    let broker = Broker::start_with_env(&args, &QUICK);
    create_topic(&broker, "lake-plain", 2);
    create_topic(&broker, "pond", 1);
    create_exported(&broker, "lake-opted-out", 1, &["silt.export.format=none"]);
    let mut acked = produce(&broker.addr, "lake-plain", "zstd");
    acked.extend(produce(&broker.addr, "lake-plain", "none"));
    let (rows, summary) = wait_table(&broker, "lake-plain", false, 200);
    assert_table_exactly_once(&rows, &summary, &acked);
    let admin = broker.admin.clone().unwrap();
    let status = |topic: &str| silt(&["export", "status", topic, "--admin", &admin]);
    for topic in ["pond", "lake-opted-out"] {
        let (ok, _, err) = status(topic);
        assert!(!ok && err.contains("is not exported"), "{topic}: {err}");
    }
}

/// `silt.export.retention.ms`: export files written longer ago leave the
/// bucket; an Iceberg table's leave the table first, then the bucket once
/// the snapshots listing them have expired. The topic's records stay, and
/// files written once the retention is lifted stay too.
#[test]
fn exported_files_expire_with_their_own_retention() {
    let mut env = QUICK.to_vec();
    env.push(("SILT_STORAGE__LIFECYCLE_INTERVAL_MS", "200"));
    let broker = Broker::start_with_env(&["--admin-listen", "127.0.0.1:0"], &env);
    let create = |topic: &str, format: &str| {
        let format = format!("silt.export.format={format}");
        let retention = [
            "silt.export.retention.ms=10000",
            "silt.export.snapshot.retention.ms=0",
        ];
        create_exported(&broker, topic, 2, &[&format, retention[0], retention[1]]);
    };
    create("old-files", "parquet");
    create("old-table", "iceberg");
    produce(&broker.addr, "old-files", "lz4");
    produce(&broker.addr, "old-table", "lz4");
    wait_exported(&broker, "old-files", 100);
    wait_table(&broker, "old-table", false, 100);

    let parquet_files = |topic: &str| {
        let root = broker.data_dir.join("objects/export").join(topic);
        (0..2)
            .filter_map(|p| std::fs::read_dir(root.join(format!("partition={p}"))).ok())
            .flatten()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().ends_with(".parquet")
            })
            .count()
    };
    wait_until("the Parquet export expires", DEADLINE, || {
        parquet_files("old-files") == 0
    });
    wait_until(
        "the table's files leave the table, then the bucket",
        DEADLINE,
        || parquet_files("old-table") == 0,
    );
    let (rows, summary) = table(&broker, "old-table", false).expect("the table stays");
    assert!(rows.is_empty(), "{rows:?}");
    assert_eq!(summary["files"], 0);
    assert_eq!(log_start(&broker.addr, "old-table"), 0, "the records stay");

    let (ok, _, err) = silt(&[
        "topic",
        "alter",
        "old-table",
        "--config",
        "silt.export.retention.ms=-1",
        "--bootstrap-server",
        &broker.addr,
    ]);
    assert!(ok, "{err}");
    let acked = produce(&broker.addr, "old-table", "zstd");
    let (rows, summary) = wait_table(&broker, "old-table", false, 100);
    assert_table_exactly_once(&rows, &summary, &acked);
}
