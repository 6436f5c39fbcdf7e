//! DescribeTopicPartitions (KIP-966; the Java AdminClient's describeTopics
//! from 3.8 on): the topics asked for, or every topic, in name order, each
//! partition with its leader (the only replica: the data is in the object
//! store), at most `response_partition_limit` partitions per response,
//! resumed from the cursor.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse};

use super::metadata::Leadership;
use super::topic_name;
use crate::broker::Broker;

/// The value of `topic_authorized_operations` when they are not given.
const OPERATIONS_NOT_GIVEN: i32 = i32::MIN;

pub fn handle(
    broker: &Broker,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let mut names: Vec<String> = if request.topics.is_empty() {
        broker.topics().iter().map(|t| t.name.clone()).collect()
    } else {
        request.topics.iter().map(|t| t.name.to_string()).collect()
    };
    names.sort();
    names.dedup();
    let (from_topic, mut from_partition) = request.cursor.map_or((String::new(), 0), |c| {
        (c.topic_name.to_string(), c.partition_index)
    });
    let mut room = usize::try_from(request.response_partition_limit.max(1)).unwrap_or(1);
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names.into_iter().filter(|n| *n >= from_topic) {
        let first = if name == from_topic {
            from_partition
        } else {
            0
        };
        from_partition = 0;
        let Some(topic) = broker.topic(&name) else {
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(topic_name(&name)))
                    .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                    .with_topic_authorized_operations(OPERATIONS_NOT_GIVEN),
            );
            continue;
        };
        if room == 0 {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(topic_name(&name))
                    .with_partition_index(first),
            );
            break;
        }
        let mut partitions = Vec::new();
        for p in topic
            .partitions
            .iter()
            .skip(usize::try_from(first).unwrap_or(0))
        {
            if room == 0 {
                next_cursor = Some(
                    Cursor::default()
                        .with_topic_name(topic_name(&name))
                        .with_partition_index(p.index),
                );
                break;
            }
            room -= 1;
            let l = Leadership::of(broker, p);
            partitions.push(
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(p.index)
                    .with_error_code(l.error_code)
                    .with_leader_id(l.leader)
                    .with_leader_epoch(l.epoch)
                    .with_replica_nodes(l.replicas.clone())
                    .with_isr_nodes(l.replicas)
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new())),
            );
        }
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(topic_name(&name)))
                .with_topic_id(topic.id)
                .with_partitions(partitions)
                .with_topic_authorized_operations(OPERATIONS_NOT_GIVEN),
        );
        if next_cursor.is_some() {
            break;
        }
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}
