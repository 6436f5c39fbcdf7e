//! Fetch: whole batches from each requested partition, within the request's
//! and each partition's byte limits; long-polls (woken by new durable data
//! in its partitions, see [`crate::log::partition::Partition::readers_woken`])
//! until `min_bytes` are available or `max_wait_ms` passes. Fetch sessions
//! are declined (session id 0), so clients send full requests.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use uuid::Uuid;

use crate::broker::{Broker, Topic};
use crate::error::Error;
use crate::log::partition::{Isolation, Partition, ReadLimit};
use crate::protocol::batch;

/// One requested partition, resolved.
struct Target {
    topic: usize,
    partition: Result<Arc<Partition>, ResponseError>,
    index: i32,
    offset: i64,
    max_bytes: usize,
    leader_epoch: i32,
}

pub async fn handle(broker: &Broker, version: i16, request: FetchRequest) -> FetchResponse {
    if version >= 7 && request.session_id != 0 {
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code());
    }
    if version >= 7 && request.session_epoch > 0 {
        return FetchResponse::default()
            .with_error_code(ResponseError::InvalidFetchSessionEpoch.code());
    }
    let isolation = match request.isolation_level {
        1 => Isolation::ReadCommitted,
        _ => Isolation::ReadUncommitted,
    };
    let mut topics: Vec<(TopicName, Uuid, Option<Arc<Topic>>)> = Vec::new();
    let mut targets = Vec::new();
    for fetch_topic in request.topics {
        let topic = if version >= 13 {
            broker.topic_by_id(fetch_topic.topic_id)
        } else {
            broker.topic(fetch_topic.topic.as_str())
        };
        let unknown = if version >= 13 {
            ResponseError::UnknownTopicId
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        for p in fetch_topic.partitions {
            let partition = match &topic {
                None => Err(unknown),
                Some(t) => t
                    .partition(p.partition)
                    .cloned()
                    .ok_or(ResponseError::UnknownTopicOrPartition),
            };
            targets.push(Target {
                topic: topics.len(),
                partition,
                index: p.partition,
                offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(0) as usize,
                leader_epoch: p.current_leader_epoch,
            });
        }
        topics.push((fetch_topic.topic, fetch_topic.topic_id, topic));
    }

    let broker_max = broker.config.limits.fetch_max_bytes as usize;
    let max_bytes = match usize::try_from(request.max_bytes) {
        Ok(asked) if asked > 0 => asked.min(broker_max),
        _ => broker_max,
    };
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let deadline = tokio::time::Instant::now() + max_wait;
    // Sections in the object store are fetched for all partitions at once
    // (and a little ahead), so the reads below hit the cache.
    let positions = targets
        .iter()
        .filter_map(|t| Some((t.partition.as_ref().ok()?.as_ref(), t.offset)));
    broker.log.prefetch(positions).await;
    let partitions = loop {
        // Armed before reading: data that arrives meanwhile wakes this.
        let mut woken: Vec<_> = targets
            .iter()
            .filter_map(|t| Some(Box::pin(t.partition.as_ref().ok()?.readers_woken())))
            .collect();
        for notified in &mut woken {
            notified.as_mut().enable();
        }
        let (partitions, bytes, errors) = read_all(broker, &targets, max_bytes, isolation).await;
        if bytes >= min_bytes || errors || tokio::time::Instant::now() >= deadline {
            break partitions;
        }
        let any_woken = async {
            if woken.is_empty() {
                std::future::pending().await
            } else {
                futures::future::select_all(woken).await;
            }
        };
        if tokio::time::timeout_at(deadline, any_woken).await.is_err() {
            let (partitions, _, _) = read_all(broker, &targets, max_bytes, isolation).await;
            break partitions;
        }
    };

    for (target, data) in targets.iter().zip(&partitions) {
        if let (Some(topic), Some(records)) = (&topics[target.topic].2, &data.records) {
            topic.traffic.fetched(records);
        }
    }
    let mut responses: Vec<FetchableTopicResponse> = topics
        .into_iter()
        .map(|(name, id, _)| {
            let response = FetchableTopicResponse::default();
            if version >= 13 {
                response.with_topic_id(id)
            } else {
                response.with_topic(name)
            }
        })
        .collect();
    for (target, data) in targets.iter().zip(partitions) {
        responses[target.topic].partitions.push(data);
    }
    FetchResponse::default().with_responses(responses)
}

/// Reads every target once; returns the partition responses, the record
/// bytes found and whether any partition had an error.
async fn read_all(
    broker: &Broker,
    targets: &[Target],
    max_bytes: usize,
    isolation: Isolation,
) -> (Vec<PartitionData>, usize, bool) {
    let mut out = Vec::with_capacity(targets.len());
    let mut total = 0;
    let mut errors = false;
    for target in targets {
        let budget = target.max_bytes.min(max_bytes.saturating_sub(total));
        let data = match read_one(broker, target, budget, total == 0, isolation).await {
            Ok(data) => data,
            Err(error) => {
                errors = true;
                PartitionData::default()
                    .with_error_code(error.code())
                    .with_high_watermark(-1)
                    .with_last_stable_offset(-1)
                    .with_log_start_offset(-1)
                    .with_records(Some(Bytes::new()))
            }
        };
        total += data.records.as_ref().map_or(0, Bytes::len);
        out.push(data.with_partition_index(target.index));
    }
    (out, total, errors)
}

async fn read_one(
    broker: &Broker,
    target: &Target,
    budget: usize,
    first: bool,
    isolation: Isolation,
) -> Result<PartitionData, ResponseError> {
    let partition = target.partition.as_ref().map_err(|e| *e)?;
    let offsets = broker.log.offsets(partition);
    if target.leader_epoch >= 0 && target.leader_epoch != offsets.leader_epoch {
        return Err(if target.leader_epoch < offsets.leader_epoch {
            ResponseError::FencedLeaderEpoch
        } else {
            ResponseError::UnknownLeaderEpoch
        });
    }
    // Only the first partition with data may exceed the budget (by one
    // whole batch); the others wait for the next fetch.
    let limit = ReadLimit {
        max_bytes: budget,
        at_least_one: first,
    };
    let records = match broker
        .log
        .read(partition, target.offset, limit, isolation)
        .await
    {
        Ok(read) => read.records.unwrap_or_default(),
        Err(e @ Error::OffsetOutOfRange { .. }) => return Err(e.response_error()),
        Err(e) => {
            tracing::warn!(partition = target.index, error = %e, "fetch read failed");
            return Err(e.response_error());
        }
    };
    let offsets = broker.log.offsets(partition);
    let data = PartitionData::default()
        .with_high_watermark(offsets.high_watermark)
        .with_last_stable_offset(offsets.last_stable)
        .with_log_start_offset(offsets.log_start);
    if isolation == Isolation::ReadUncommitted {
        return Ok(data.with_records(Some(records)));
    }
    // The transactions aborted within what is returned, so the consumer
    // drops their records.
    let end = batch::iter_batches(&records)
        .last()
        .map_or(target.offset, |(h, _)| h.last_offset() + 1);
    let aborted = partition
        .aborted_within(target.offset, end)
        .into_iter()
        .map(|a| {
            AbortedTransaction::default()
                .with_producer_id(ProducerId(a.producer_id))
                .with_first_offset(a.first_offset)
        })
        .collect();
    Ok(data
        .with_aborted_transactions(Some(aborted))
        .with_records(Some(records)))
}
