//! Produce: validates each partition's record batch, appends it (offsets
//! assigned now, in request order), then waits until the batches are durable
//! under the broker's durability mode before answering. `acks=0` gets no
//! response at all, as in Kafka.
//!
//! A transactional batch that would open its producer's transaction in a
//! partition is first checked against the coordinator's state (the
//! partition must have been added to the transaction); such a request
//! holds its connection's order (see [`holds_order`]) until it is appended.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};

use super::{Reply, str_bytes};
use crate::broker::configs::ProducePolicy;
use crate::broker::{Broker, Topic};
use crate::error::{Error, Result};
use crate::log::partition::{Appended, Partition};
use crate::protocol::batch::{self, BatchHeader};
use crate::protocol::records::{self, Codec, RecordsError};
use bytes::Bytes;

/// Appends now (after checking transactions it opens); the returned reply
/// waits for durability.
pub fn handle(broker: &Arc<Broker>, version: i16, request: ProduceRequest) -> Reply {
    let unverified = opening_transactions(broker, version, &request);
    if unverified.is_empty() {
        return respond(broker, version, request, None, &[]);
    }
    let broker = broker.clone();
    async move {
        let id = request
            .transactional_id
            .as_ref()
            .map(|id| id.to_string())
            .unwrap_or_default();
        let mut refused = Vec::new();
        for opening in unverified {
            let verified = broker
                .verify_transaction(
                    &id,
                    opening.producer_id,
                    opening.epoch,
                    &opening.topic,
                    &opening.partition,
                )
                .await;
            if let Err(e) = verified {
                tracing::debug!(transactional_id = %id, topic = %opening.topic, partition = opening.partition.index, error = %e, "transactional produce refused");
                refused.push((opening.partition, e.response_error()));
            }
        }
        respond(&broker, version, request, None, &refused).await
    }
    .boxed()
}

/// Whether `request` must be appended before the connection's next
/// request starts: a produce whose transactional batches open a
/// transaction in a partition (checked asynchronously first).
pub fn holds_order(broker: &Arc<Broker>, version: i16, request: &ProduceRequest) -> bool {
    !opening_transactions(broker, version, request).is_empty()
}

/// A transactional batch that opens its producer's transaction in a
/// partition not yet confirmed for it.
struct Opening {
    topic: String,
    partition: Arc<Partition>,
    producer_id: i64,
    epoch: i16,
}

/// The batches of `request` that open a transaction in their partition.
fn opening_transactions(
    broker: &Arc<Broker>,
    version: i16,
    request: &ProduceRequest,
) -> Vec<Opening> {
    let mut opening = Vec::new();
    if request.transactional_id.is_none() {
        // Its transactional batches, if any, are refused when appended.
        return opening;
    }
    for topic_data in &request.topic_data {
        let topic = if version >= 13 {
            broker.topic_by_id(topic_data.topic_id)
        } else {
            broker.topic(topic_data.name.as_str())
        };
        let Some(topic) = topic else { continue };
        for data in &topic_data.partition_data {
            let header = data
                .records
                .as_ref()
                .and_then(|r| BatchHeader::parse(r).ok());
            let (Some(header), Some(partition)) = (header, topic.partition(data.index)) else {
                continue;
            };
            if partition.needs_verification(&header) {
                opening.push(Opening {
                    topic: topic.name.clone(),
                    partition: partition.clone(),
                    producer_id: header.producer_id,
                    epoch: header.producer_epoch,
                });
            }
        }
    }
    opening
}

/// Answers every partition with `error`, appending nothing.
pub fn refuse(
    broker: &Arc<Broker>,
    version: i16,
    request: ProduceRequest,
    error: ResponseError,
) -> Reply {
    respond(broker, version, request, Some(error), &[])
}

/// Appends every partition's batch but those `refused` (or all, with a
/// `refusal`); the reply waits for durability.
fn respond(
    broker: &Arc<Broker>,
    version: i16,
    request: ProduceRequest,
    refusal: Option<ResponseError>,
    refused: &[(Arc<Partition>, ResponseError)],
) -> Reply {
    let acks = request.acks;
    // One deadline for the whole request, however many partitions it has.
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(request.timeout_ms.max(0) as u64);
    let refusal = if refusal.is_some() {
        refusal
    } else if !matches!(acks, -1..=1) {
        Some(ResponseError::InvalidRequiredAcks)
    } else {
        None
    };
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut pending: Vec<(usize, usize, Arc<Partition>, Appended)> = Vec::new();
    for topic_data in request.topic_data {
        let topic = if version >= 13 {
            broker.topic_by_id(topic_data.topic_id)
        } else {
            broker.topic(topic_data.name.as_str())
        };
        let mut partitions = Vec::with_capacity(topic_data.partition_data.len());
        for data in topic_data.partition_data {
            let outcome = match (refusal, &topic) {
                (Some(error), _) => Err(error),
                (None, None) if version >= 13 => Err(ResponseError::UnknownTopicId),
                (None, None) => Err(ResponseError::UnknownTopicOrPartition),
                (None, Some(topic)) => match refused.iter().find(|(p, _)| {
                    p.index == data.index && p.topic == topic.id
                }) {
                    Some((_, error)) => Err(*error),
                    None => append(broker, topic, data.index, data.records)
                    .map_err(|e| {
                        tracing::debug!(topic = %topic.name, partition = data.index, error = %e, "produce refused");
                        e.response_error()
                    }),
                },
            };
            let response = PartitionProduceResponse::default().with_index(data.index);
            partitions.push(match outcome {
                Ok((partition, appended)) => {
                    let log_start = broker.log.offsets(&partition).log_start;
                    pending.push((responses.len(), partitions.len(), partition, appended));
                    response
                        .with_base_offset(appended.base_offset)
                        .with_log_start_offset(log_start)
                        .with_log_append_time_ms(appended.log_append_time_ms)
                }
                Err(error) => response
                    .with_error_code(error.code())
                    .with_base_offset(-1)
                    .with_error_message((version >= 8).then(|| str_bytes(&error.to_string()))),
            });
        }
        let mut topic_response =
            TopicProduceResponse::default().with_partition_responses(partitions);
        if version >= 13 {
            topic_response.topic_id = topic_data.topic_id;
        } else {
            topic_response.name = topic_data.name;
        }
        responses.push(topic_response);
    }
    if acks == 0 {
        return futures::future::ready(None).boxed();
    }
    let broker = broker.clone();
    async move {
        for (t, p, partition, appended) in pending {
            if let Err(e) = broker
                .log
                .wait_durable(&partition, &appended, deadline)
                .await
            {
                let response = &mut responses[t].partition_responses[p];
                response.error_code = e.code();
                response.base_offset = -1;
            }
        }
        Some(ResponseKind::Produce(
            ProduceResponse::default().with_responses(responses),
        ))
    }
    .boxed()
}

/// Validates and appends one partition's records (taken by value: their
/// buffer is usually theirs alone, so offsets are written in place).
fn append(
    broker: &Broker,
    topic: &Topic,
    index: i32,
    records: Option<bytes::Bytes>,
) -> Result<(Arc<Partition>, Appended)> {
    let partition = topic
        .partition(index)
        .ok_or(Error::UnknownTopicOrPartition)?;
    let records = records
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Error::InvalidRecord("no records".into()))?;
    let policy = broker.produce_policy(topic);
    let max = policy.max_message_bytes;
    if records.len() > max {
        return Err(Error::MessageTooLarge {
            size: records.len(),
            max,
        });
    }
    let mut batches =
        batch::split_and_validate(&records).map_err(|e| Error::CorruptMessage(e.to_string()))?;
    if batches.len() != 1 {
        return Err(Error::InvalidRecord(format!(
            "expected exactly one record batch per partition, got {}",
            batches.len()
        )));
    }
    let (header, data) = batches.remove(0);
    // The batch is a slice of `records`: drop it so the slice is the
    // buffer's only reference.
    drop(records);
    let limit = broker.config.limits.max_inflated_batch_bytes;
    let (header, data) = conform(header, data, &policy, limit)?;
    let appended = broker
        .log
        .append(partition, &header, data, policy.timestamps)?;
    topic.traffic.produced(&header);
    Ok((partition.clone(), appended))
}

/// The batch as the topic stores it: every record keyed if the topic is
/// compacted (else INVALID_RECORD, as Kafka answers), in the topic's
/// `compression.type` (recompressed if the producer used another codec).
/// Records are inflated, within `limit` bytes, only when one of these asks.
fn conform(
    header: BatchHeader,
    data: Bytes,
    policy: &ProducePolicy,
    limit: usize,
) -> Result<(BatchHeader, Bytes)> {
    let corrupt = |e: RecordsError| Error::CorruptMessage(e.to_string());
    let codec = Codec::of(&header).map_err(corrupt)?;
    let recompress = policy.codec.filter(|target| *target != codec);
    if !policy.keys_required && recompress.is_none() {
        return Ok((header, data));
    }
    let records = records::records_of(&data, &header, limit).map_err(corrupt)?;
    let mut count = 0;
    for record in records::walk(&records.bytes) {
        let record = record.map_err(corrupt)?;
        if policy.keys_required && record.key.is_none() {
            return Err(Error::InvalidRecord(
                "compacted topic cannot accept a record without a key".into(),
            ));
        }
        count += 1;
    }
    if count != header.record_count {
        return Err(Error::CorruptMessage(format!(
            "the batch holds {count} records, its header says {}",
            header.record_count
        )));
    }
    let Some(target) = recompress else {
        return Ok((header, data));
    };
    let rebuilt = records::rebuild(&header, target, &records.bytes, count).map_err(corrupt)?;
    let header = BatchHeader::parse(&rebuilt).map_err(|e| Error::CorruptMessage(e.to_string()))?;
    Ok((header, rebuilt))
}
