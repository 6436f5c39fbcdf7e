//! DeleteRecords: moves partitions' log start offsets forward (Kafka's
//! "delete records before offset"), each at its leader, within the
//! request's timeout; -1 means the high watermark.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use tokio::time::{Duration, Instant};

use crate::broker::Broker;
use crate::error::Error;

/// The offset that stands for the high watermark.
const HIGH_WATERMARK: i64 = -1;

pub async fn handle(broker: &Broker, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let deadline = Instant::now() + Duration::from_millis(request.timeout_ms.max(0) as u64);
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let found = broker.topic(topic.name.as_str());
        let partitions = topic.partitions.into_iter().map(|p| {
            let found = found.clone();
            async move {
                let result = match found.as_ref().and_then(|t| t.partition(p.partition_index)) {
                    None => Err(ResponseError::UnknownTopicOrPartition),
                    Some(partition) => delete_before(broker, partition, p.offset, deadline).await,
                };
                let base =
                    DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
                match result {
                    Ok(low_watermark) => base.with_low_watermark(low_watermark),
                    Err(error) => base.with_low_watermark(-1).with_error_code(error.code()),
                }
            }
        });
        let partitions = futures::future::join_all(partitions).await;
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

/// Moves one partition's log start to `offset`; returns the new low
/// watermark.
async fn delete_before(
    broker: &Broker,
    partition: &crate::log::partition::Partition,
    offset: i64,
    deadline: Instant,
) -> Result<i64, ResponseError> {
    let offset = match offset {
        HIGH_WATERMARK => broker.log.offsets(partition).high_watermark,
        offset if offset < 0 => return Err(ResponseError::OffsetOutOfRange),
        offset => offset,
    };
    broker
        .log
        .advance_log_start(partition, offset, deadline)
        .await
        .map_err(|e: Error| e.response_error())
}
