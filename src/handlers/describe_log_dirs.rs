//! DescribeLogDirs (what `kafka-log-dirs` and AdminClient.describeLogDirs
//! ask): one log dir, the broker's data dir, holding every partition this
//! broker leads (all of them alone), each with its size: its committed
//! extents (in the bucket) and the tail not yet uploaded. Nothing lags, as
//! there are no replicas; the volume's size is not known (-1): partitions
//! live in the bucket.

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::str_bytes;
use crate::broker::Broker;

/// Answers `request`: the partitions asked for (all when `topics` is
/// null) that this broker leads.
pub fn handle(broker: &Broker, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let wanted = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect::<std::collections::HashMap<_, _>>()
    });
    let mut topics: Vec<DescribeLogDirsTopic> = Vec::new();
    for topic in broker.topics() {
        let asked = match &wanted {
            None => None,
            Some(wanted) => match wanted.get(topic.name.as_str()) {
                Some(partitions) => Some(partitions),
                None => continue,
            },
        };
        let partitions: Vec<DescribeLogDirsPartition> = topic
            .partitions
            .iter()
            .filter(|p| asked.is_none_or(|asked| asked.contains(&p.index)))
            .filter(|p| p.check_leader().is_ok())
            .map(|p| {
                DescribeLogDirsPartition::default()
                    .with_partition_index(p.index)
                    .with_partition_size(i64::try_from(p.size_bytes()).unwrap_or(i64::MAX))
                    .with_offset_lag(0)
            })
            .collect();
        if !partitions.is_empty() {
            topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(str_bytes(&topic.name)))
                    .with_partitions(partitions),
            );
        }
    }
    let dir = std::path::absolute(&broker.config.broker.data_dir)
        .unwrap_or_else(|_| broker.config.broker.data_dir.clone());
    DescribeLogDirsResponse::default().with_results(vec![
        DescribeLogDirsResult::default()
            .with_log_dir(str_bytes(&dir.display().to_string()))
            .with_topics(topics)
            .with_total_bytes(-1)
            .with_usable_bytes(-1),
    ])
}
