//! `silt produce TOPIC`: one message per stdin line, optionally keyed.
//! Keyed messages go to the partition Kafka's default partitioner picks;
//! unkeyed ones are spread round-robin, a batch at a time. Every batch is
//! acknowledged (acks=all) before the next is read.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use kafka_protocol::messages::ProduceRequest;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use silt::client::{Message, encode_batch, partition_for_key};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{Cluster, TopicInfo, check};

/// Lines sent in one request at most.
const BATCH_LINES: usize = 1000;
/// A pause this long in the input sends what was read.
const LINGER: Duration = Duration::from_millis(20);

pub async fn run(
    cluster: &mut Cluster,
    topic: &str,
    key_separator: Option<&str>,
    partition: Option<i32>,
) -> anyhow::Result<()> {
    let info = cluster.topic(topic).await?;
    if let Some(p) = partition
        && !info.partitions.iter().any(|(index, _)| *index == p)
    {
        anyhow::bail!("topic '{topic}' has no partition {p}");
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut next_partition = 0usize;
    let mut sent = 0u64;
    loop {
        let mut batch = Vec::new();
        let mut eof = false;
        while batch.len() < BATCH_LINES {
            let line = if batch.is_empty() {
                lines.next_line().await?
            } else {
                match tokio::time::timeout(LINGER, lines.next_line()).await {
                    Ok(line) => line?,
                    Err(_) => break,
                }
            };
            match line {
                Some(line) => batch.push(parse(&line, key_separator)?),
                None => {
                    eof = true;
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let round_robin = info.partitions[next_partition % info.partitions.len()].0;
            next_partition += 1;
            sent += batch.len() as u64;
            send(
                cluster,
                &info,
                batch,
                partition.unwrap_or(round_robin),
                partition.is_some(),
            )
            .await?;
        }
        if eof {
            break;
        }
    }
    eprintln!("Produced {sent} messages to {topic}.");
    Ok(())
}

fn parse(line: &str, key_separator: Option<&str>) -> anyhow::Result<Message> {
    match key_separator {
        None => Ok(Message {
            key: None,
            value: Bytes::from(line.to_string()),
        }),
        Some(sep) => {
            let (key, value) = line
                .split_once(sep)
                .with_context(|| format!("line has no key separator '{sep}': {line}"))?;
            Ok(Message {
                key: Some(Bytes::from(key.to_string())),
                value: Bytes::from(value.to_string()),
            })
        }
    }
}

/// Sends messages grouped by partition to each partition's leader.
async fn send(
    cluster: &mut Cluster,
    info: &TopicInfo,
    messages: Vec<Message>,
    default_partition: i32,
    fixed: bool,
) -> anyhow::Result<()> {
    let count = info.partitions.len() as i32;
    let mut by_partition: BTreeMap<i32, Vec<Message>> = BTreeMap::new();
    for message in messages {
        let partition = match &message.key {
            Some(key) if !fixed => partition_for_key(key, count),
            _ => default_partition,
        };
        by_partition.entry(partition).or_default().push(message);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    for (partition, messages) in by_partition {
        let leader = info.partitions[partition as usize].1;
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(kafka_protocol::messages::TopicName(
                        kafka_protocol::protocol::StrBytes::from_string(info.name.clone()),
                    ))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(encode_batch(&messages, now))),
                    ]),
            ]);
        let response = cluster.leader(leader).await?.call(request, 9).await?;
        let result = response
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .context("empty Produce response")?;
        check(
            result.error_code,
            &format!("produce to {}-{partition} failed", info.name),
        )?;
    }
    Ok(())
}
