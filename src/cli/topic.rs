//! `silt topic create|list|describe|delete|trim`.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteRecordsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, ListOffsetsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{Cluster, check, check_with_message};

const EARLIEST: i64 = -2;
const LATEST: i64 = -1;
/// DescribeConfigs source of a topic-level override.
const TOPIC_OVERRIDE: i8 = 1;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Sets `configs` (`key=value` strings) of a topic and removes `deleted`.
pub async fn alter(
    cluster: &mut Cluster,
    topic: &str,
    configs: &[String],
    deleted: &[String],
) -> anyhow::Result<()> {
    if configs.is_empty() && deleted.is_empty() {
        bail!("nothing to alter: give --config KEY=VALUE or --delete-config KEY");
    }
    let mut changes = Vec::new();
    for kv in configs {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--config {kv}: expected KEY=VALUE"))?;
        changes.push(
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k.to_string()))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_string(v.to_string()))),
        );
    }
    for k in deleted {
        changes.push(
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k.to_string()))
                .with_config_operation(1),
        );
    }
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(topic.to_string()))
            .with_configs(changes),
    ]);
    let response = cluster.any().call(request, 1).await?;
    let result = response
        .responses
        .first()
        .context("empty IncrementalAlterConfigs response")?;
    check_with_message(
        result.error_code,
        result.error_message.as_ref(),
        &format!("cannot alter topic '{topic}'"),
    )?;
    println!("Altered topic {topic}.");
    Ok(())
}

/// Creates a topic; `configs` are `key=value` strings.
pub async fn create(
    cluster: &mut Cluster,
    topic: &str,
    partitions: i32,
    configs: &[String],
) -> anyhow::Result<()> {
    let configs = configs
        .iter()
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--config {kv}: expected KEY=VALUE"))?;
            Ok(CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.to_string()))
                .with_value(Some(StrBytes::from_string(v.to_string()))))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let request = CreateTopicsRequest::default()
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(-1)
                .with_configs(configs),
        ])
        .with_timeout_ms(30_000);
    let response = cluster.any().call(request, 7).await?;
    let result = response
        .topics
        .first()
        .context("empty CreateTopics response")?;
    check_with_message(
        result.error_code,
        result.error_message.as_ref(),
        &format!("cannot create topic '{topic}'"),
    )?;
    println!("Created topic {topic}.");
    Ok(())
}

/// Prints every topic name.
pub async fn list(cluster: &mut Cluster) -> anyhow::Result<()> {
    let response = cluster.metadata(None).await?;
    let mut names: Vec<String> = response
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    names.sort();
    for n in names {
        println!("{n}");
    }
    Ok(())
}

/// Prints a topic's id, config overrides, and each partition's leader and
/// log start and end offsets.
pub async fn describe(cluster: &mut Cluster, topic: &str) -> anyhow::Result<()> {
    let info = cluster.topic(topic).await?;
    let configs = overrides(cluster, topic).await?;
    let configs: Vec<String> = configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "Topic: {}\tTopicId: {}\tPartitionCount: {}\tConfigs: {}",
        info.name,
        info.id,
        info.partitions.len(),
        configs.join(",")
    );
    let starts = offsets(cluster, &info.name, &info.partitions, EARLIEST).await?;
    let ends = offsets(cluster, &info.name, &info.partitions, LATEST).await?;
    for &(partition, leader) in &info.partitions {
        println!(
            "\tPartition: {partition}\tLeader: {leader}\tLogStartOffset: {}\tLogEndOffset: {}",
            starts[&partition], ends[&partition]
        );
    }
    Ok(())
}

/// Deletes a topic.
pub async fn delete(cluster: &mut Cluster, topic: &str) -> anyhow::Result<()> {
    let request = DeleteTopicsRequest::default()
        .with_topic_names(vec![name(topic)])
        .with_topics(vec![
            DeleteTopicState::default().with_name(Some(name(topic))),
        ])
        .with_timeout_ms(30_000);
    // Versions below 6 name topics in `topic_names`, 6 in `topics`: send
    // both, the encoder writes the one of the negotiated version.
    let response = cluster.any().call(request, 6).await?;
    let result = response
        .responses
        .first()
        .context("empty DeleteTopics response")?;
    check(result.error_code, &format!("cannot delete topic '{topic}'"))?;
    println!("Deleted topic {topic}.");
    Ok(())
}

/// Where `silt topic trim` cuts a partition.
pub enum TrimBefore {
    /// The new log start offset (-1: the high watermark).
    Offset(i64),
    /// The first record with a timestamp at or after this (ms); everything
    /// if there is none.
    Timestamp(i64),
}

/// Deletes a partition's records before `before` (DeleteRecords at its
/// leader) and prints the new log start offset.
pub async fn trim(
    cluster: &mut Cluster,
    topic: &str,
    partition: i32,
    before: TrimBefore,
) -> anyhow::Result<()> {
    let info = cluster.topic(topic).await?;
    let Some(&(_, leader)) = info.partitions.iter().find(|(p, _)| *p == partition) else {
        bail!("topic '{topic}' has no partition {partition}");
    };
    let offset = match before {
        TrimBefore::Offset(offset) => offset,
        TrimBefore::Timestamp(ts) => {
            // Read first: records produced after the lookup stay.
            let end = offsets(cluster, topic, &[(partition, leader)], LATEST).await?;
            let found = offsets(cluster, topic, &[(partition, leader)], ts).await?;
            // No record at or after the timestamp: all were before it.
            match (found.get(&partition), end.get(&partition)) {
                (Some(&at), _) if at >= 0 => at,
                (_, Some(&end)) => end,
                _ => bail!("the broker listed no offsets for {topic}-{partition}"),
            }
        }
    };
    let request = DeleteRecordsRequest::default()
        .with_topics(vec![
            DeleteRecordsTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![
                    DeleteRecordsPartition::default()
                        .with_partition_index(partition)
                        .with_offset(offset),
                ]),
        ])
        .with_timeout_ms(30_000);
    let response = cluster.leader(leader).await?.call(request, 2).await?;
    let Some(p) = response.topics.first().and_then(|t| t.partitions.first()) else {
        bail!("empty DeleteRecords response for {topic}-{partition}");
    };
    check(
        p.error_code,
        &format!("cannot delete records of {topic}-{partition} before offset {offset}"),
    )?;
    println!(
        "Trimmed {topic} partition {partition}: its log start offset is {}.",
        p.low_watermark
    );
    Ok(())
}

async fn overrides(cluster: &mut Cluster, topic: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let request = DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(topic.to_string()))
            .with_configuration_keys(None),
    ]);
    let response = cluster.any().call(request, 4).await?;
    let result = response
        .results
        .first()
        .context("empty DescribeConfigs response")?;
    check(
        result.error_code,
        &format!("cannot describe configs of '{topic}'"),
    )?;
    Ok(result
        .configs
        .iter()
        .filter(|c| c.config_source == TOPIC_OVERRIDE)
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
            )
        })
        .collect())
}

/// ListOffsets at `timestamp` for each partition, asked of its leader.
pub async fn offsets(
    cluster: &mut Cluster,
    topic: &str,
    partitions: &[(i32, i32)],
    timestamp: i64,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let mut found = BTreeMap::new();
    for &(partition, leader) in partitions {
        let request = ListOffsetsRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(name(topic))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(partition)
                            .with_timestamp(timestamp),
                    ]),
            ]);
        let response = cluster.leader(leader).await?.call(request, 7).await?;
        let Some(p) = response.topics.first().and_then(|t| t.partitions.first()) else {
            bail!("empty ListOffsets response for {topic}-{partition}");
        };
        check(
            p.error_code,
            &format!("cannot list offsets of {topic}-{partition}"),
        )?;
        found.insert(partition, p.offset);
    }
    Ok(found)
}
