//! ListOffsets: the earliest, latest, max-timestamp offset, or the first
//! offset at or after a timestamp, per partition.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::broker::Broker;
use crate::log::partition::Partition;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

pub async fn handle(
    broker: &Broker,
    version: i16,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let read_committed = version >= 2 && request.isolation_level == 1;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let found = broker.topic(topic.name.as_str());
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let partition = found.as_ref().and_then(|t| t.partition(p.partition_index));
            let response = match partition {
                None => Err(ResponseError::UnknownTopicOrPartition),
                Some(partition) => {
                    lookup(
                        broker,
                        partition,
                        p.timestamp,
                        p.current_leader_epoch,
                        version,
                        read_committed,
                    )
                    .await
                }
            };
            let base =
                ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            partitions.push(match response {
                Ok((offset, timestamp, epoch)) => {
                    let mut r = base.with_offset(offset).with_timestamp(timestamp);
                    if version >= 4 {
                        r.leader_epoch = epoch;
                    }
                    r
                }
                Err(error) => base
                    .with_error_code(error.code())
                    .with_offset(-1)
                    .with_timestamp(-1),
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// `(offset, timestamp, leader epoch)` for one partition; a
/// `read_committed` client sees the log up to its last stable offset.
async fn lookup(
    broker: &Broker,
    partition: &Partition,
    timestamp: i64,
    current_leader_epoch: i32,
    version: i16,
    read_committed: bool,
) -> Result<(i64, i64, i32), ResponseError> {
    partition.check_leader().map_err(|e| e.response_error())?;
    let offsets = broker.log.offsets(partition);
    let epoch = offsets.leader_epoch;
    if current_leader_epoch >= 0 && current_leader_epoch != epoch {
        return Err(if current_leader_epoch < epoch {
            ResponseError::FencedLeaderEpoch
        } else {
            ResponseError::UnknownLeaderEpoch
        });
    }
    let not_found = (-1, -1, epoch);
    let end = if read_committed {
        offsets.last_stable
    } else {
        offsets.high_watermark
    };
    let found = match timestamp {
        LATEST => (end, -1, epoch),
        EARLIEST => (offsets.log_start, -1, epoch),
        EARLIEST_LOCAL if version >= 8 => (offsets.log_start, -1, epoch),
        MAX_TIMESTAMP if version >= 7 => match broker.log.max_timestamp_offset(partition).await {
            Ok(Some((offset, ts))) if offset < end => (offset, ts, epoch),
            Ok(_) => not_found,
            Err(e) => return Err(e.response_error()),
        },
        ts if ts >= 0 => match broker.log.offset_for_timestamp(partition, ts).await {
            // The batch found may begin before the log start.
            Ok(Some((offset, ts))) if offset < end => (offset.max(offsets.log_start), ts, epoch),
            Ok(_) => not_found,
            Err(e) => return Err(e.response_error()),
        },
        _ => return Err(ResponseError::UnsupportedVersion),
    };
    Ok(found)
}
