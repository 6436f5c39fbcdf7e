//! Transactions: InitProducerId with a transactional id, AddPartitionsToTxn
//! (the clients' form and the batched v4+ one), AddOffsetsToTxn, EndTxn and
//! TxnOffsetCommit from clients; WriteTxnMarkers from other brokers'
//! transaction coordinators. The decisions are the coordinator's
//! ([`crate::txn`]); this translates.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, InitProducerIdResponse, ProducerId,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse, WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
};

use crate::broker::Broker;
use crate::group::MemberRef;
use crate::meta::{CommittedOffset, TxnOffsets};
use crate::protocol::control::Outcome;
use crate::txn::TxnError;

/// InitProducerId for `transactional_id`: the producer id and epoch to
/// use, the previous producer of the id fenced.
pub async fn init_producer(
    broker: &Broker,
    transactional_id: &str,
    timeout_ms: i32,
    previous: Option<(i64, i16)>,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default();
    match broker
        .txns
        .init_producer(transactional_id, timeout_ms, previous, broker)
        .await
    {
        Ok((producer_id, epoch)) => response
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch),
        Err(e) => {
            tracing::debug!(transactional_id, error = %e, "InitProducerId refused");
            response
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
                .with_error_code(e.response_error().code())
        }
    }
}

pub async fn add_partitions(
    broker: &Broker,
    version: i16,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if version <= 3 {
        let results = add_to_transaction(
            broker,
            request.v3_and_below_transactional_id.as_str(),
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
            &request.v3_and_below_topics,
            false,
        )
        .await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    let mut results = Vec::with_capacity(request.transactions.len());
    for txn in &request.transactions {
        let topics = add_to_transaction(
            broker,
            txn.transactional_id.as_str(),
            txn.producer_id.0,
            txn.producer_epoch,
            &txn.topics,
            txn.verify_only,
        )
        .await;
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(txn.transactional_id.clone())
                .with_topic_results(topics),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

/// Adds `topics` to one producer's transaction (or, with `verify_only`,
/// checks they are in it); the result of each partition. Unknown
/// partitions fail the whole request, the others are then not attempted.
async fn add_to_transaction(
    broker: &Broker,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let partitions: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), *p)))
        .collect();
    let exists = |(topic, index): &(String, i32)| {
        broker
            .topic(topic)
            .is_some_and(|t| t.partition(*index).is_some())
    };
    let codes: Vec<i16> = if !partitions.iter().all(exists) {
        partitions
            .iter()
            .map(|p| {
                if exists(p) {
                    ResponseError::OperationNotAttempted.code()
                } else {
                    ResponseError::UnknownTopicOrPartition.code()
                }
            })
            .collect()
    } else if verify_only {
        let mut codes = Vec::with_capacity(partitions.len());
        for p in &partitions {
            let included = broker
                .transaction_includes(transactional_id, producer_id, epoch, p)
                .await;
            codes.push(match included {
                Ok(true) => 0,
                Ok(false) => ResponseError::InvalidTxnState.code(),
                Err(e) => TxnError::from(e).response_error().code(),
            });
        }
        codes
    } else {
        let added = broker
            .txns
            .add(
                transactional_id,
                producer_id,
                epoch,
                partitions.clone(),
                Vec::new(),
            )
            .await;
        let code = added.err().map_or(0, |e| e.response_error().code());
        vec![code; partitions.len()]
    };
    let mut results: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, index), code) in partitions.into_iter().zip(codes) {
        if results.last().is_none_or(|r| r.name.as_str() != topic) {
            results.push(
                AddPartitionsToTxnTopicResult::default().with_name(super::topic_name(&topic)),
            );
        }
        results
            .last_mut()
            .expect("pushed above")
            .results_by_partition
            .push(
                AddPartitionsToTxnPartitionResult::default()
                    .with_partition_index(index)
                    .with_partition_error_code(code),
            );
    }
    results
}

pub async fn add_offsets(
    broker: &Broker,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let added = broker
        .txns
        .add(
            request.transactional_id.as_str(),
            request.producer_id.0,
            request.producer_epoch,
            Vec::new(),
            vec![request.group_id.to_string()],
        )
        .await;
    AddOffsetsToTxnResponse::default()
        .with_error_code(added.err().map_or(0, |e| e.response_error().code()))
}

pub async fn end(broker: &Broker, request: EndTxnRequest) -> EndTxnResponse {
    let outcome = if request.committed {
        Outcome::Commit
    } else {
        Outcome::Abort
    };
    let ended = broker
        .txns
        .end(
            request.transactional_id.as_str(),
            request.producer_id.0,
            request.producer_epoch,
            outcome,
            broker,
        )
        .await;
    EndTxnResponse::default().with_error_code(ended.err().map_or(0, |e| e.response_error().code()))
}

pub async fn commit_offsets(
    broker: &Broker,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let now = broker.clock().now_ms();
    let mut offsets = Vec::new();
    let mut unknown = std::collections::HashSet::new();
    for topic in &request.topics {
        let known = broker.topic(topic.name.as_str());
        for p in &topic.partitions {
            if known
                .as_ref()
                .is_none_or(|k| k.partition(p.partition_index).is_none())
            {
                unknown.insert((topic.name.to_string(), p.partition_index));
                continue;
            }
            offsets.push(CommittedOffset {
                topic: topic.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                commit_time_ms: now,
            });
        }
    }
    let member = MemberRef {
        member_id: request.member_id.as_str(),
        instance_id: request.group_instance_id.as_deref(),
        generation: request.generation_id,
    };
    let pending = TxnOffsets {
        producer_id: request.producer_id.0,
        offsets,
    };
    let code = broker
        .groups
        .commit_txn_offsets(request.group_id.as_str(), member, pending)
        .await
        .err()
        .map_or(0, |e| e.response_error().code());
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let unknown = unknown.contains(&(t.name.to_string(), p.partition_index));
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(if unknown {
                            ResponseError::UnknownTopicOrPartition.code()
                        } else {
                            code
                        })
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

pub async fn write_markers(
    broker: &Broker,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let mut results = Vec::with_capacity(request.markers.len());
    for marker in request.markers {
        let outcome = if marker.transaction_result {
            Outcome::Commit
        } else {
            Outcome::Abort
        };
        let mut topics = Vec::with_capacity(marker.topics.len());
        for topic in marker.topics {
            let found = broker.topic(topic.name.as_str());
            let mut codes = vec![0; topic.partition_indexes.len()];
            let mut local = Vec::new();
            let mut at = Vec::new();
            for (i, index) in topic.partition_indexes.iter().enumerate() {
                match found.as_ref().and_then(|t| t.partition(*index)) {
                    Some(partition) => {
                        local.push(partition.clone());
                        at.push(i);
                    }
                    None => codes[i] = ResponseError::UnknownTopicOrPartition.code(),
                }
            }
            let appended = broker
                .append_markers(&local, marker.producer_id.0, marker.producer_epoch, outcome)
                .await;
            for (i, result) in at.into_iter().zip(appended) {
                codes[i] = result.err().map_or(0, |e| e.code());
            }
            let partitions = topic
                .partition_indexes
                .iter()
                .zip(codes)
                .map(|(index, code)| {
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(*index)
                        .with_error_code(code)
                })
                .collect();
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(topic.name)
                    .with_partitions(partitions),
            );
        }
        results.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(results)
}
