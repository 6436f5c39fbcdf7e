//! Topic and broker configs: the keys Silt knows, their validation, and how a
//! topic's effective value is resolved: topic override, then the first
//! `[[topics.by_name]]` entry matching the topic's name that sets it, then
//! dynamic broker config, then the static config file, then the built-in
//! default.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::log::compact::Compaction;
use crate::log::merge::MAX_MERGED_SECTION_BYTES;
use crate::log::retention::Retention;
use crate::protocol::batch::TimestampType;
use crate::protocol::records::Codec;

use super::topic_keys::{self, TOPIC_KEYS};

const TYPE_BOOLEAN: i8 = 1;
const TYPE_INT: i8 = 3;

/// Where an effective config value comes from (Kafka's `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic = 1,
    DynamicDefaultBroker = 3,
    /// Set in the broker's configuration (file, environment, flags).
    StaticBroker = 4,
    /// The built-in default (`kafka-topics --describe` leaves it out).
    Default = 5,
}

/// The value `key` has under `config`, and whether that is `config`'s own
/// choice or the built-in default (the value under `defaults`).
fn static_value(
    key: &topic_keys::TopicKey,
    config: &Config,
    defaults: &Config,
) -> (String, ConfigSource) {
    let value = (key.default)(config);
    let source = if value == (key.default)(defaults) {
        ConfigSource::Default
    } else {
        ConfigSource::StaticBroker
    };
    (value, source)
}

/// A config as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: String,
    pub source: ConfigSource,
    pub read_only: bool,
    /// Kafka's config type (see [`topic_keys::Kind::code`]).
    pub config_type: i8,
    pub documentation: &'static str,
}

/// Checks a topic config; returns the value as stored.
pub fn validate_topic_config(name: &str, value: &str) -> Result<String> {
    let key = topic_keys::by_topic_name(name)
        .ok_or_else(|| Error::InvalidConfig(format!("unknown topic config '{name}'")))?;
    topic_keys::validate(name, key, value)
}

/// Checks the configs of `[[topics.by_name]]` and stores them as topics
/// store theirs.
pub fn validate_topics_by_name(config: &mut Config) -> Result<()> {
    for (i, entry) in config.topics.by_name.iter_mut().enumerate() {
        for (name, value) in entry.configs.iter_mut() {
            *value = validate_topic_config(name, value).map_err(|e| match e {
                Error::InvalidConfig(why) => Error::InvalidConfig(format!(
                    "topics.by_name[{i}] ({:?}): {why}",
                    entry.pattern.as_str()
                )),
                other => other,
            })?;
        }
    }
    Ok(())
}

/// Checks a dynamic broker config; only the topic defaults can change at runtime.
pub fn validate_broker_config(name: &str, value: &str) -> Result<String> {
    let key = topic_keys::by_broker_name(name).ok_or_else(|| {
        Error::InvalidConfig(format!(
            "broker config '{name}' cannot be changed dynamically"
        ))
    })?;
    topic_keys::validate(name, key, value)
}

/// Every broker config of broker `id` with its effective value and source.
pub fn describe_broker(
    id: i32,
    config: &Config,
    dynamic_broker: &BTreeMap<String, String>,
) -> Vec<ConfigEntry> {
    let defaults = Config::default();
    let mut entries: Vec<ConfigEntry> = TOPIC_KEYS
        .iter()
        .map(|key| {
            let (value, source) = match dynamic_broker.get(key.broker) {
                Some(v) => (v.clone(), ConfigSource::DynamicDefaultBroker),
                None => static_value(key, config, &defaults),
            };
            ConfigEntry {
                name: key.broker.to_string(),
                value,
                source,
                read_only: false,
                config_type: key.kind.code(),
                documentation: key.documentation,
            }
        })
        .collect();
    let read_only = |name: &str, value: String, config_type, documentation| ConfigEntry {
        name: name.to_string(),
        value,
        source: ConfigSource::StaticBroker,
        read_only: true,
        config_type,
        documentation,
    };
    entries.push(read_only(
        "auto.create.topics.enable",
        config.topics.auto_create.to_string(),
        TYPE_BOOLEAN,
        "Create unknown topics requested in Metadata",
    ));
    entries.push(read_only(
        "broker.id",
        id.to_string(),
        TYPE_INT,
        "This broker's node id",
    ));
    entries.push(read_only(
        "num.partitions",
        config.topics.default_partitions.to_string(),
        TYPE_INT,
        "Partitions of auto-created topics",
    ));
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// A topic's configs as they resolve: its own, then those for its name
/// (`[[topics.by_name]]`), then the dynamic broker defaults, then the
/// static configuration, then the built-in defaults.
#[derive(Clone, Copy)]
pub struct TopicConfigs<'a> {
    pub config: &'a Config,
    pub dynamic_broker: &'a BTreeMap<String, String>,
    pub name: &'a str,
    /// The topic's own configs.
    pub topic: &'a BTreeMap<String, String>,
}

impl TopicConfigs<'_> {
    /// The effective value of the topic config `topic_key`, and where it
    /// comes from.
    fn resolve(&self, topic_key: &str) -> (String, ConfigSource) {
        let key = topic_keys::by_topic_name(topic_key).expect("a known topic config");
        let by_name = || {
            let entries = self.config.topics.by_name.iter();
            entries
                .filter(|e| e.pattern.matches(self.name))
                .find_map(|e| e.configs.get(key.topic))
        };
        if let Some(v) = self.topic.get(key.topic) {
            (v.clone(), ConfigSource::DynamicTopic)
        } else if let Some(v) = by_name() {
            (v.clone(), ConfigSource::StaticBroker)
        } else if let Some(v) = self.dynamic_broker.get(key.broker) {
            (v.clone(), ConfigSource::DynamicDefaultBroker)
        } else {
            static_value(key, self.config, &Config::default())
        }
    }

    fn value(&self, topic_key: &str) -> String {
        self.resolve(topic_key).0
    }

    /// Every topic config with its effective value and source.
    pub fn describe(&self) -> Vec<ConfigEntry> {
        TOPIC_KEYS
            .iter()
            .map(|key| {
                let (value, source) = self.resolve(key.topic);
                ConfigEntry {
                    name: key.topic.to_string(),
                    value,
                    source,
                    read_only: false,
                    config_type: key.kind.code(),
                    documentation: key.documentation,
                }
            })
            .collect()
    }

    /// What the topic asks of the batches produced to it.
    pub fn produce_policy(&self) -> ProducePolicy {
        ProducePolicy {
            max_message_bytes: self
                .value("max.message.bytes")
                .parse()
                .unwrap_or(self.config.topics.max_message_bytes as usize),
            timestamps: match self.value("message.timestamp.type").as_str() {
                "LogAppendTime" => TimestampType::LogAppendTime,
                _ => TimestampType::CreateTime,
            },
            keys_required: is_compacted(&self.value("cleanup.policy")),
            codec: Codec::for_topic(&self.value("compression.type")),
        }
    }

    /// The compaction settings: `None` unless `cleanup.policy` includes
    /// `compact`.
    pub fn compaction(&self) -> Option<Compaction> {
        if !is_compacted(&self.value("cleanup.policy")) {
            return None;
        }
        // Validated values; the defaults are Kafka's.
        let ms = |key, default| self.value(key).parse::<i64>().unwrap_or(default);
        Some(Compaction {
            min_dirty_ratio: self
                .value("min.cleanable.dirty.ratio")
                .parse()
                .unwrap_or(0.5),
            min_lag_ms: ms("min.compaction.lag.ms", 0),
            max_lag_ms: ms("max.compaction.lag.ms", i64::MAX),
            delete_retention_ms: ms("delete.retention.ms", 86_400_000),
        })
    }

    /// Whether the topic is exported to Parquet (`silt.export.format`:
    /// parquet, or iceberg).
    pub fn exported(&self) -> bool {
        self.value("silt.export.format") != "none"
    }

    /// Whether the export files are committed as an Iceberg table
    /// (`silt.export.format = iceberg`).
    pub fn exported_to_iceberg(&self) -> bool {
        self.value("silt.export.format") == "iceberg"
    }

    /// How long the Iceberg table's snapshots are kept
    /// (`silt.export.snapshot.retention.ms`).
    pub fn snapshot_retention_ms(&self) -> i64 {
        let value = self.value("silt.export.snapshot.retention.ms");
        value.parse().unwrap_or(432_000_000)
    }

    /// How long export files are kept (`silt.export.retention.ms`; `None`:
    /// forever).
    pub fn export_retention_ms(&self) -> Option<i64> {
        let value = self.value("silt.export.retention.ms");
        value.parse::<i64>().ok().filter(|ms| *ms >= 0)
    }

    /// Whether exported values are JSON objects written as typed columns
    /// (`silt.export.value = json`).
    pub fn exports_json(&self) -> bool {
        self.value("silt.export.value") == "json"
    }

    /// The size of the merged sections: `segment.bytes`, at most
    /// [`MAX_MERGED_SECTION_BYTES`].
    pub fn merged_section_bytes(&self) -> u64 {
        self.value("segment.bytes")
            .parse::<u64>()
            .map_or(MAX_MERGED_SECTION_BYTES, |v| {
                v.min(MAX_MERGED_SECTION_BYTES)
            })
    }

    /// The retention the data is subject to: `None` unless `cleanup.policy`
    /// includes `delete`.
    pub fn retention(&self) -> Option<Retention> {
        let policy = self.value("cleanup.policy");
        if !policy.split(',').any(|p| p == "delete") {
            return None;
        }
        // Validated values; -1 (or anything negative) means unlimited.
        let limit = |key| self.value(key).parse::<i64>().ok().filter(|v| *v >= 0);
        Some(Retention {
            ms: limit("retention.ms"),
            bytes: limit("retention.bytes").map(|b| b as u64),
        })
    }
}

/// What a topic asks of the batches produced to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducePolicy {
    /// The largest batch accepted (`max.message.bytes`).
    pub max_message_bytes: usize,
    /// Whose clock the batches' timestamps come from
    /// (`message.timestamp.type`).
    pub timestamps: TimestampType,
    /// Whether every record needs a key (`cleanup.policy` with `compact`).
    pub keys_required: bool,
    /// The codec batches are stored in (`compression.type`; `None` for
    /// `producer`: as they come).
    pub codec: Option<Codec>,
}

/// Whether a `cleanup.policy` value includes `compact`.
fn is_compacted(policy: &str) -> bool {
    policy.split(',').any(|p| p == "compact")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_by_name_come_after_the_topics_own_and_before_broker_defaults() {
        let mut config = Config::default();
        let entry = |pattern: &str, configs: &[(&str, &str)]| crate::config::TopicsByName {
            pattern: crate::config::NamePattern::new(pattern).unwrap(),
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        config.topics.by_name = vec![
            entry("orders\\..*", &[("silt.export.format", "iceberg")]),
            entry(
                "orders.*|audit",
                &[("silt.export.format", "parquet"), ("retention.ms", " 5")],
            ),
        ];
        validate_topics_by_name(&mut config).unwrap();
        assert_eq!(config.topics.by_name[1].configs["retention.ms"], "5");
        let dynamic = BTreeMap::from([("log.retention.ms".to_string(), "10".to_string())]);
        let own = BTreeMap::new();
        let of = |name| TopicConfigs {
            config: &config,
            dynamic_broker: &dynamic,
            name,
            topic: &own,
        };
        assert!(
            of("orders.eu").exported_to_iceberg(),
            "the first entry decides"
        );
        assert!(of("orders").exported() && !of("orders").exported_to_iceberg());
        assert!(of("audit").exported());
        assert!(!of("audit-log").exported(), "the whole name matches");
        assert!(!of("other").exported());
        assert_eq!(of("audit").retention().unwrap().ms, Some(5));
        assert_eq!(of("other").retention().unwrap().ms, Some(10));
        let entries = of("audit").describe();
        let format = entries
            .iter()
            .find(|e| e.name == "silt.export.format")
            .unwrap();
        assert_eq!(format.source, ConfigSource::StaticBroker);
        let own = BTreeMap::from([("silt.export.format".to_string(), "none".to_string())]);
        let mine = TopicConfigs {
            topic: &own,
            ..of("orders.eu")
        };
        assert!(!mine.exported(), "the topic's own config wins");
        config.topics.by_name[0]
            .configs
            .insert("retention.ms".into(), "soon".into());
        let e = validate_topics_by_name(&mut config)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("topics.by_name[0]") && e.contains("retention.ms=soon"),
            "{e}"
        );
    }

    #[test]
    fn values_are_validated_and_normalized() {
        assert_eq!(
            validate_topic_config("retention.ms", " 1000").unwrap(),
            "1000"
        );
        assert!(validate_topic_config("retention.ms", "-2").is_err());
        assert!(validate_topic_config("max.message.bytes", "0").is_err());
        assert_eq!(
            validate_topic_config("cleanup.policy", "delete, compact").unwrap(),
            "compact,delete"
        );
        assert!(validate_topic_config("cleanup.policy", "shred").is_err());
        assert!(validate_topic_config("segment.bytes", "1").is_err());
        assert!(validate_topic_config("segment.bytes", "1048576").is_ok());
        assert!(validate_topic_config("retention.ms", "abc").is_err());
        assert!(validate_topic_config("retention.bytes", "-5").is_err());
        assert!(validate_broker_config("log.retention.ms", "5").is_ok());
        assert!(validate_broker_config("broker.id", "5").is_err());
    }

    #[test]
    fn resolution_prefers_topic_then_dynamic_broker_then_static_then_default() {
        let config = Config::default();
        let dynamic = BTreeMap::from([("log.retention.ms".to_string(), "10".to_string())]);
        let topic = BTreeMap::from([("retention.bytes".to_string(), "20".to_string())]);
        let of = |config, dynamic, topic| TopicConfigs {
            config,
            dynamic_broker: dynamic,
            name: "t",
            topic,
        };
        let entries = of(&config, &dynamic, &topic).describe();
        let find = |n: &str| entries.iter().find(|e| e.name == n).unwrap().clone();
        assert_eq!(find("retention.ms").value, "10");
        assert_eq!(
            find("retention.ms").source,
            ConfigSource::DynamicDefaultBroker
        );
        assert_eq!(find("retention.bytes").source, ConfigSource::DynamicTopic);
        assert_eq!(find("cleanup.policy").value, "delete");
        assert_eq!(find("cleanup.policy").source, ConfigSource::Default);
        let mut configured = Config::default();
        configured.topics.retention_ms = 1000;
        let none = BTreeMap::new();
        let entries = of(&configured, &none, &none).describe();
        let entry = entries.iter().find(|e| e.name == "retention.ms").unwrap();
        assert_eq!(
            (entry.value.as_str(), entry.source),
            ("1000", ConfigSource::StaticBroker)
        );
        let policy = of(&config, &dynamic, &topic).produce_policy();
        assert_eq!(policy.max_message_bytes, 1_048_588);
        assert_eq!(policy.timestamps, TimestampType::CreateTime);
        assert!(!policy.keys_required);
        assert_eq!(policy.codec, None);
        let compacted_zstd = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact,delete".to_string()),
            ("compression.type".to_string(), "zstd".to_string()),
        ]);
        assert_eq!(of(&config, &dynamic, &topic).compaction(), None);
        assert_eq!(
            of(&config, &dynamic, &compacted_zstd).compaction(),
            Some(Compaction {
                min_dirty_ratio: 0.5,
                min_lag_ms: 0,
                max_lag_ms: i64::MAX,
                delete_retention_ms: 86_400_000
            })
        );
        let policy = of(&config, &dynamic, &compacted_zstd).produce_policy();
        assert!(policy.keys_required);
        assert_eq!(policy.codec, Some(Codec::Zstd));
        assert_eq!(
            of(&config, &dynamic, &topic).merged_section_bytes(),
            MAX_MERGED_SECTION_BYTES
        );
        let small = BTreeMap::from([("segment.bytes".to_string(), "2097152".to_string())]);
        assert_eq!(
            of(&config, &dynamic, &small).merged_section_bytes(),
            2_097_152
        );
        assert_eq!(
            of(&config, &dynamic, &topic).retention(),
            Some(Retention {
                ms: Some(10),
                bytes: Some(20)
            })
        );
        let compacted = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
        assert_eq!(of(&config, &dynamic, &compacted).retention(), None);
        let unlimited = BTreeMap::from([("retention.ms".to_string(), "-1".to_string())]);
        assert_eq!(
            of(&config, &none, &unlimited).retention(),
            Some(Retention::default())
        );
    }
}
