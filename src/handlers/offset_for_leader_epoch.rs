//! OffsetForLeaderEpoch: the end offset of a leader epoch, used by clients to
//! detect log truncation after a leader change.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::broker::Broker;

pub fn handle(
    broker: &Broker,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let found = broker.topic(topic.topic.as_str());
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let base = EpochEndOffset::default().with_partition(p.partition);
                    let Some(partition) = found.as_ref().and_then(|t| t.partition(p.partition))
                    else {
                        return base.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    if let Err(e) = partition.check_leader() {
                        return base.with_error_code(e.code());
                    }
                    let current = partition.leader_epoch();
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch != current {
                        let error = if p.current_leader_epoch < current {
                            ResponseError::FencedLeaderEpoch
                        } else {
                            ResponseError::UnknownLeaderEpoch
                        };
                        return base.with_error_code(error.code());
                    }
                    match partition.end_offset_for_epoch(p.leader_epoch) {
                        Some((epoch, end)) => base.with_leader_epoch(epoch).with_end_offset(end),
                        None => base.with_leader_epoch(-1).with_end_offset(-1),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
