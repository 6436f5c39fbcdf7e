//! Kafka's topic configs, each with the broker config that supplies its
//! default, what values it takes and what it means in Silt. Every name
//! Kafka knows is accepted: honoured, or stored and reported with its
//! meaning here; other names are refused.

use crate::config::Config;
use crate::error::{Error, Result};

/// What values a config takes.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Int {
        min: i64,
    },
    Long {
        min: i64,
    },
    Ratio,
    Boolean,
    OneOf(&'static [&'static str]),
    CleanupPolicy,
    /// A comma-separated list, stored as given.
    List,
}

impl Kind {
    /// Kafka's config type code (DescribeConfigs).
    pub fn code(self) -> i8 {
        match self {
            Kind::Boolean => 1,
            Kind::OneOf(_) => 2,
            Kind::Int { .. } => 3,
            Kind::Long { .. } => 5,
            Kind::Ratio => 6,
            Kind::CleanupPolicy | Kind::List => 7,
        }
    }
}

/// A topic config.
pub struct TopicKey {
    pub topic: &'static str,
    /// The broker config that supplies its default.
    pub broker: &'static str,
    pub kind: Kind,
    /// The built-in default (from `[topics]` of the config file for some).
    pub default: fn(&Config) -> String,
    pub documentation: &'static str,
}

const LONG_MAX: fn(&Config) -> String = |_| i64::MAX.to_string();
const STORED: &str = "Stored and reported";
const RECOMPRESSION_LEVEL: &str =
    "Stored and reported; recompression (compression.type) uses the codec's default level";
const NO_FOLLOWERS: &str =
    "Stored and reported; there are no follower replicas (the object store is the replica)";

/// Every topic config, by name.
pub const TOPIC_KEYS: &[TopicKey] = &[
    TopicKey {
        topic: "silt.export.format",
        broker: "silt.export.format",
        kind: Kind::OneOf(&["none", "parquet", "iceberg"]),
        default: |_| "none".into(),
        documentation: "Silt: parquet exports the topic's committed records as Parquet files under <prefix>/export/<topic>/ ([export] in the broker config); iceberg also commits them as an Iceberg table there, served by the admin port's catalog at /iceberg",
    },
    TopicKey {
        topic: "silt.export.retention.ms",
        broker: "silt.export.retention.ms",
        kind: Kind::Long { min: -1 },
        default: |_| "-1".into(),
        documentation: "Silt: how long export files are kept after they are written (-1: forever); then they leave the Iceberg table, and the bucket once silt.export.snapshot.retention.ms more has passed",
    },
    TopicKey {
        topic: "silt.export.snapshot.retention.ms",
        broker: "silt.export.snapshot.retention.ms",
        kind: Kind::Long { min: 0 },
        default: |_| "432000000".into(),
        documentation: "Silt: how long the Iceberg table's snapshots are kept (the current one always); older ones expire with the manifests only they list, never data files",
    },
    TopicKey {
        topic: "silt.export.value",
        broker: "silt.export.value",
        kind: Kind::OneOf(&["bytes", "json"]),
        default: |_| "bytes".into(),
        documentation: "Silt: how exported values are written; bytes: as produced; json: the fields of JSON objects as typed columns, growing with new fields, values that do not fit kept raw",
    },
    TopicKey {
        topic: "cleanup.policy",
        broker: "log.cleanup.policy",
        kind: Kind::CleanupPolicy,
        default: |c| c.topics.cleanup_policy.clone(),
        documentation: "delete: retention applies; compact: the latest record of each key is kept (records need a key); compact,delete: both",
    },
    TopicKey {
        topic: "compression.type",
        broker: "compression.type",
        kind: Kind::OneOf(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
        default: |_| "producer".into(),
        documentation: "producer: batches are kept as the producer compressed them; a codec: batches in another are recompressed on produce",
    },
    TopicKey {
        topic: "compression.gzip.level",
        broker: "compression.gzip.level",
        kind: Kind::Int { min: -1 },
        default: |_| "-1".into(),
        documentation: RECOMPRESSION_LEVEL,
    },
    TopicKey {
        topic: "compression.lz4.level",
        broker: "compression.lz4.level",
        kind: Kind::Int { min: 1 },
        default: |_| "9".into(),
        documentation: RECOMPRESSION_LEVEL,
    },
    TopicKey {
        topic: "compression.zstd.level",
        broker: "compression.zstd.level",
        kind: Kind::Int { min: -131_072 },
        default: |_| "3".into(),
        documentation: RECOMPRESSION_LEVEL,
    },
    TopicKey {
        topic: "delete.retention.ms",
        broker: "log.cleaner.delete.retention.ms",
        kind: Kind::Long { min: 0 },
        default: |_| "86400000".into(),
        documentation: "How long a tombstone stays after its timestamp, once compacted (compacted topics)",
    },
    TopicKey {
        topic: "file.delete.delay.ms",
        broker: "log.segment.delete.delay.ms",
        kind: Kind::Long { min: 0 },
        default: |_| "60000".into(),
        documentation: "Stored and reported; objects are deleted storage.gc_grace_ms after nothing refers to them",
    },
    TopicKey {
        topic: "flush.messages",
        broker: "log.flush.interval.messages",
        kind: Kind::Long { min: 1 },
        default: LONG_MAX,
        documentation: "Stored and reported; in local durability every acknowledged batch is fsynced (group commit)",
    },
    TopicKey {
        topic: "flush.ms",
        broker: "log.flush.interval.ms",
        kind: Kind::Long { min: 0 },
        default: LONG_MAX,
        documentation: "Stored and reported; in local durability every acknowledged batch is fsynced (group commit)",
    },
    TopicKey {
        topic: "follower.replication.throttled.replicas",
        broker: "follower.replication.throttled.replicas",
        kind: Kind::List,
        default: |_| String::new(),
        documentation: NO_FOLLOWERS,
    },
    TopicKey {
        topic: "index.interval.bytes",
        broker: "log.index.interval.bytes",
        kind: Kind::Int { min: 0 },
        default: |_| "4096".into(),
        documentation: "Stored and reported; data objects carry an index of their sections",
    },
    TopicKey {
        topic: "leader.replication.throttled.replicas",
        broker: "leader.replication.throttled.replicas",
        kind: Kind::List,
        default: |_| String::new(),
        documentation: NO_FOLLOWERS,
    },
    TopicKey {
        topic: "local.retention.bytes",
        broker: "log.local.retention.bytes",
        kind: Kind::Long { min: -2 },
        default: |_| "-2".into(),
        documentation: "Stored and reported; data lives in the object store, brokers keep no log of their own",
    },
    TopicKey {
        topic: "local.retention.ms",
        broker: "log.local.retention.ms",
        kind: Kind::Long { min: -2 },
        default: |_| "-2".into(),
        documentation: "Stored and reported; data lives in the object store, brokers keep no log of their own",
    },
    TopicKey {
        topic: "max.compaction.lag.ms",
        broker: "log.cleaner.max.compaction.lag.ms",
        kind: Kind::Long { min: 1 },
        default: LONG_MAX,
        documentation: "A partition whose oldest uncompacted data is this old is compacted whatever its dirty ratio",
    },
    TopicKey {
        topic: "max.message.bytes",
        broker: "message.max.bytes",
        kind: Kind::Int { min: 1 },
        default: |c| c.topics.max_message_bytes.to_string(),
        documentation: "The largest record batch the topic accepts",
    },
    TopicKey {
        topic: "message.timestamp.after.max.ms",
        broker: "log.message.timestamp.after.max.ms",
        kind: Kind::Long { min: 0 },
        default: LONG_MAX,
        documentation: STORED,
    },
    TopicKey {
        topic: "message.timestamp.before.max.ms",
        broker: "log.message.timestamp.before.max.ms",
        kind: Kind::Long { min: 0 },
        default: LONG_MAX,
        documentation: STORED,
    },
    TopicKey {
        topic: "message.timestamp.type",
        broker: "log.message.timestamp.type",
        kind: Kind::OneOf(&["CreateTime", "LogAppendTime"]),
        default: |_| "CreateTime".into(),
        documentation: "CreateTime: records keep the producer's timestamps; LogAppendTime: the broker stamps each batch with its time at the append",
    },
    TopicKey {
        topic: "min.cleanable.dirty.ratio",
        broker: "log.cleaner.min.cleanable.ratio",
        kind: Kind::Ratio,
        default: |_| "0.5".into(),
        documentation: "Uncompacted share of the compactable bytes that starts a compaction",
    },
    TopicKey {
        topic: "min.compaction.lag.ms",
        broker: "log.cleaner.min.compaction.lag.ms",
        kind: Kind::Long { min: 0 },
        default: |_| "0".into(),
        documentation: "Data younger than this (by its newest timestamp) is not compacted",
    },
    TopicKey {
        topic: "min.insync.replicas",
        broker: "min.insync.replicas",
        kind: Kind::Int { min: 1 },
        default: |_| "1".into(),
        documentation: "Stored and reported; the object store is the replica: acks=all waits for the durability mode's point",
    },
    TopicKey {
        topic: "preallocate",
        broker: "log.preallocate",
        kind: Kind::Boolean,
        default: |_| "false".into(),
        documentation: STORED,
    },
    TopicKey {
        topic: "remote.storage.enable",
        broker: "remote.storage.enable",
        kind: Kind::Boolean,
        default: |_| "false".into(),
        documentation: "Stored and reported; all data is in object storage already",
    },
    TopicKey {
        topic: "retention.bytes",
        broker: "log.retention.bytes",
        kind: Kind::Long { min: -1 },
        default: |c| c.topics.retention_bytes.to_string(),
        documentation: "Bytes kept per partition before the oldest units are deleted (-1: unlimited)",
    },
    TopicKey {
        topic: "retention.ms",
        broker: "log.retention.ms",
        kind: Kind::Long { min: -1 },
        default: |c| c.topics.retention_ms.to_string(),
        documentation: "How long data is kept (-1: forever)",
    },
    TopicKey {
        topic: "segment.bytes",
        broker: "log.segment.bytes",
        kind: Kind::Int { min: 1024 * 1024 },
        default: |c| c.topics.segment_bytes.to_string(),
        documentation: "The most data one merged unit of a partition holds (used up to 12 MiB): the unit retention removes whole and compaction writes",
    },
    TopicKey {
        topic: "segment.index.bytes",
        broker: "log.index.size.max.bytes",
        kind: Kind::Int { min: 4 },
        default: |_| "10485760".into(),
        documentation: "Stored and reported; data objects carry an index of their sections",
    },
    TopicKey {
        topic: "segment.jitter.ms",
        broker: "log.roll.jitter.ms",
        kind: Kind::Long { min: 0 },
        default: |_| "0".into(),
        documentation: STORED,
    },
    TopicKey {
        topic: "segment.ms",
        broker: "log.roll.ms",
        kind: Kind::Long { min: 1 },
        default: |c| c.topics.segment_ms.to_string(),
        documentation: "Stored and reported; uploads seal data within flush.interval_ms, so no unit stays open longer",
    },
    TopicKey {
        topic: "unclean.leader.election.enable",
        broker: "unclean.leader.election.enable",
        kind: Kind::Boolean,
        default: |_| "false".into(),
        documentation: "Stored and reported; in local durability a dead leader's partitions move after storage.failover_grace_ms (README, cluster mode)",
    },
];

/// The topic config `name`.
pub fn by_topic_name(name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|k| k.topic == name)
}

/// The topic config whose default the broker config `name` supplies.
pub fn by_broker_name(name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|k| k.broker == name)
}

/// Checks `value` for the config `key` (named `name` by the caller);
/// returns it as stored.
pub fn validate(name: &str, key: &TopicKey, value: &str) -> Result<String> {
    let invalid = |why: String| Err(Error::InvalidConfig(format!("{name}={value}: {why}")));
    let trimmed = value.trim();
    match key.kind {
        Kind::Long { min } => match trimmed.parse::<i64>() {
            Ok(v) if v >= min => Ok(v.to_string()),
            _ => invalid(format!("expected an integer >= {min}")),
        },
        Kind::Int { min } => match trimmed.parse::<i32>() {
            Ok(v) if i64::from(v) >= min => Ok(v.to_string()),
            _ => invalid(format!("expected an integer from {min} to {}", i32::MAX)),
        },
        Kind::Ratio => match trimmed.parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => Ok(v.to_string()),
            _ => invalid("expected a number from 0 to 1".into()),
        },
        Kind::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            b @ ("true" | "false") => Ok(b.to_string()),
            _ => invalid("expected true or false".into()),
        },
        Kind::OneOf(allowed) => match allowed.iter().find(|a| a.eq_ignore_ascii_case(trimmed)) {
            Some(a) => Ok(a.to_string()),
            None => invalid(format!("Silt serves only {}", allowed.join(", "))),
        },
        Kind::CleanupPolicy => {
            let mut policies: Vec<&str> = trimmed.split(',').map(str::trim).collect();
            policies.sort_unstable();
            policies.dedup();
            if policies.iter().any(|p| !matches!(*p, "delete" | "compact")) {
                return invalid("expected delete, compact or delete,compact".into());
            }
            Ok(policies.join(","))
        }
        Kind::List => Ok(trimmed.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka 4.x's topic configs (`kafka-configs --describe --all`).
    const KAFKA_TOPIC_CONFIGS: &[&str] = &[
        "cleanup.policy",
        "compression.gzip.level",
        "compression.lz4.level",
        "compression.type",
        "compression.zstd.level",
        "delete.retention.ms",
        "file.delete.delay.ms",
        "flush.messages",
        "flush.ms",
        "follower.replication.throttled.replicas",
        "index.interval.bytes",
        "leader.replication.throttled.replicas",
        "local.retention.bytes",
        "local.retention.ms",
        "max.compaction.lag.ms",
        "max.message.bytes",
        "message.timestamp.after.max.ms",
        "message.timestamp.before.max.ms",
        "message.timestamp.type",
        "min.cleanable.dirty.ratio",
        "min.compaction.lag.ms",
        "min.insync.replicas",
        "preallocate",
        "remote.storage.enable",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.index.bytes",
        "segment.jitter.ms",
        "segment.ms",
        "unclean.leader.election.enable",
    ];

    /// Silt's own topic configs.
    const SILT_TOPIC_CONFIGS: &[&str] = &[
        "silt.export.format",
        "silt.export.retention.ms",
        "silt.export.snapshot.retention.ms",
        "silt.export.value",
    ];

    #[test]
    fn every_kafka_topic_config_is_known_and_its_default_valid() {
        let config = Config::default();
        for name in KAFKA_TOPIC_CONFIGS.iter().chain(SILT_TOPIC_CONFIGS) {
            let key = by_topic_name(name).unwrap_or_else(|| panic!("{name} is not known"));
            let default = (key.default)(&config);
            assert_eq!(validate(name, key, &default).unwrap(), default, "{name}");
            assert_eq!(by_broker_name(key.broker).map(|k| k.topic), Some(key.topic));
        }
        assert_eq!(
            TOPIC_KEYS.len(),
            KAFKA_TOPIC_CONFIGS.len() + SILT_TOPIC_CONFIGS.len(),
            "every config is Kafka's or Silt's own (silt.*)"
        );
    }

    #[test]
    fn values_are_checked_against_their_kind() {
        let check = |name: &str, value: &str| validate(name, by_topic_name(name).unwrap(), value);
        assert_eq!(check("min.cleanable.dirty.ratio", "0.25").unwrap(), "0.25");
        assert!(check("min.cleanable.dirty.ratio", "1.5").is_err());
        assert_eq!(check("preallocate", "TRUE").unwrap(), "true");
        assert!(check("preallocate", "yes").is_err());
        assert_eq!(check("compression.type", "Producer").unwrap(), "producer");
        assert_eq!(check("compression.type", "ZSTD").unwrap(), "zstd");
        let refused = check("compression.type", "brotli").unwrap_err().to_string();
        assert!(refused.contains("compression.type=brotli"), "{refused}");
        assert_eq!(
            check("message.timestamp.type", "logappendtime").unwrap(),
            "LogAppendTime"
        );
        assert!(check("message.timestamp.type", "BrokerTime").is_err());
        assert!(check("local.retention.ms", "-3").is_err());
        assert_eq!(
            check("leader.replication.throttled.replicas", "*").unwrap(),
            "*"
        );
    }
}
