//! `silt consume TOPIC`: prints messages, one per line, from every
//! partition (or one), starting at the end, the beginning, or an offset.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::topic::offsets;
use super::{Cluster, check};
use silt::config::Limits;
use silt::protocol::{batch, records};

/// Where to start reading.
pub enum Start {
    Latest,
    Earliest,
    Offset(i64),
}

/// What to read and when to stop.
pub struct Options {
    pub partition: Option<i32>,
    pub start: Start,
    pub max_messages: Option<u64>,
    /// Stop after this long without a new message.
    pub idle_timeout: Option<Duration>,
    pub print_key: bool,
}

pub async fn run(cluster: &mut Cluster, topic: &str, options: Options) -> anyhow::Result<()> {
    let info = cluster.topic(topic).await?;
    let partitions: Vec<(i32, i32)> = match options.partition {
        Some(p) => vec![
            *info
                .partitions
                .iter()
                .find(|(index, _)| *index == p)
                .with_context(|| format!("topic '{topic}' has no partition {p}"))?,
        ],
        None => info.partitions.clone(),
    };
    let mut positions: BTreeMap<i32, i64> = match options.start {
        Start::Offset(offset) => {
            if options.partition.is_none() {
                bail!("--offset needs --partition");
            }
            partitions.iter().map(|(p, _)| (*p, offset)).collect()
        }
        Start::Earliest => offsets(cluster, topic, &partitions, -2).await?,
        Start::Latest => offsets(cluster, topic, &partitions, -1).await?,
    };
    let leaders: BTreeMap<i32, Vec<i32>> =
        partitions.iter().fold(BTreeMap::new(), |mut m, (p, l)| {
            m.entry(*l).or_default().push(*p);
            m
        });
    let max_inflated = Limits::default().max_inflated_batch_bytes;
    let mut printed = 0u64;
    let mut last_message = Instant::now();
    let stdout = std::io::stdout();
    loop {
        for (&leader, leader_partitions) in &leaders {
            let fetch_partitions = leader_partitions
                .iter()
                .map(|p| {
                    FetchPartition::default()
                        .with_partition(*p)
                        .with_fetch_offset(positions[p])
                        .with_partition_max_bytes(1024 * 1024)
                })
                .collect();
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(500)
                .with_min_bytes(1)
                .with_max_bytes(16 * 1024 * 1024)
                .with_session_epoch(-1)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(fetch_partitions),
                ]);
            let response = cluster.leader(leader).await?.call(request, 12).await?;
            check(response.error_code, "fetch failed")?;
            let mut out = stdout.lock();
            for data in response.responses.iter().flat_map(|t| &t.partitions) {
                let partition = data.partition_index;
                check(
                    data.error_code,
                    &format!("fetch from {topic}-{partition} failed"),
                )?;
                let Some(records) = data.records.clone() else {
                    continue;
                };
                for (header, range) in batch::iter_batches(&records) {
                    let position = positions
                        .get_mut(&partition)
                        .expect("fetched partitions are tracked");
                    if header.last_offset() < *position {
                        continue;
                    }
                    if !header.is_control() {
                        let batch = records.slice(range);
                        let decoded =
                            records::records_of(&batch, &header, max_inflated).map_err(|e| {
                                anyhow::anyhow!(
                                    "cannot read the batch at {topic}-{partition}@{}: {e}",
                                    header.base_offset
                                )
                            })?;
                        for record in records::walk(&decoded.bytes) {
                            let record = record.map_err(|e| {
                                anyhow::anyhow!("a record of {topic}-{partition}: {e}")
                            })?;
                            let offset = header.base_offset + i64::from(record.offset_delta);
                            if offset < *position {
                                continue;
                            }
                            *position = offset + 1;
                            let text = |range: Option<std::ops::Range<usize>>| {
                                range.map_or_else(String::new, |r| {
                                    String::from_utf8_lossy(&decoded.bytes[r]).into_owned()
                                })
                            };
                            if options.print_key {
                                write!(out, "{}\t", text(record.key))?;
                            }
                            writeln!(out, "{}", text(record.value))?;
                            printed += 1;
                            last_message = Instant::now();
                            if options.max_messages.is_some_and(|max| printed >= max) {
                                out.flush()?;
                                return Ok(());
                            }
                        }
                    }
                    // Compaction leaves gaps, and batches it emptied.
                    *position = header.last_offset() + 1;
                }
            }
            out.flush()?;
        }
        if options
            .idle_timeout
            .is_some_and(|t| last_message.elapsed() >= t)
        {
            return Ok(());
        }
    }
}
