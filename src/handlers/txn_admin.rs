//! Transactions for operators: ListTransactions (those this broker
//! coordinates), DescribeTransactions and DescribeProducers (the
//! producers a partition this broker leads knows, with their open
//! transactions), as `kafka-transactions.sh` and `silt txn` use them.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::describe_transactions_response::{self, TopicData};
use kafka_protocol::messages::list_transactions_response;
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, DescribeTransactionsRequest,
    DescribeTransactionsResponse, ListTransactionsRequest, ListTransactionsResponse, ProducerId,
    TransactionalId,
};

use super::{str_bytes, topic_name};
use crate::broker::Broker;
use crate::meta::{TxnMeta, TxnState};

/// Kafka's name of a transaction state.
fn state_name(state: TxnState) -> &'static str {
    match state {
        TxnState::Empty => "Empty",
        TxnState::Ongoing => "Ongoing",
        TxnState::PrepareCommit => "PrepareCommit",
        TxnState::PrepareAbort => "PrepareAbort",
        TxnState::CompleteCommit => "CompleteCommit",
        TxnState::CompleteAbort => "CompleteAbort",
    }
}

/// Every state name Kafka knows, for the state filter.
const STATE_NAMES: [&str; 8] = [
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "Dead",
    "PrepareEpochFence",
];

pub async fn list(
    broker: &Broker,
    version: i16,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let txns = match broker.txns.list().await {
        Ok(txns) => txns,
        Err(e) => {
            return ListTransactionsResponse::default().with_error_code(e.response_error().code());
        }
    };
    let unknown_states = request
        .state_filters
        .iter()
        .filter(|s| !STATE_NAMES.contains(&s.as_str()))
        .cloned()
        .collect();
    let now = broker.clock().now_ms();
    let min_duration = if version >= 1 {
        request.duration_filter
    } else {
        -1
    };
    let states = txns
        .into_iter()
        .filter(|t| {
            let state = state_name(t.state);
            let ongoing_for = if t.state == TxnState::Ongoing {
                now - t.started_ms
            } else {
                0
            };
            (request.state_filters.is_empty()
                || request.state_filters.iter().any(|s| s.as_str() == state))
                && (request.producer_id_filters.is_empty()
                    || request
                        .producer_id_filters
                        .contains(&ProducerId(t.producer_id)))
                && (min_duration < 0 || ongoing_for > min_duration)
        })
        .map(|t| {
            list_transactions_response::TransactionState::default()
                .with_transactional_id(TransactionalId(str_bytes(&t.transactional_id)))
                .with_producer_id(ProducerId(t.producer_id))
                .with_transaction_state(str_bytes(state_name(t.state)))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown_states)
        .with_transaction_states(states)
}

pub async fn describe(
    broker: &Broker,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut states = Vec::with_capacity(request.transactional_ids.len());
    for id in request.transactional_ids {
        let state = describe_transactions_response::TransactionState::default()
            .with_transactional_id(id.clone())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
            .with_transaction_start_time_ms(-1);
        states.push(match broker.txns.describe(id.as_str()).await {
            Ok(Some(txn)) => described(state, &txn),
            Ok(None) => state.with_error_code(ResponseError::TransactionalIdNotFound.code()),
            Err(e) => state.with_error_code(e.response_error().code()),
        });
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

fn described(
    state: describe_transactions_response::TransactionState,
    txn: &TxnMeta,
) -> describe_transactions_response::TransactionState {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in &txn.partitions {
        topics.entry(topic).or_default().push(*partition);
    }
    let started = if txn.state == TxnState::Ongoing {
        txn.started_ms
    } else {
        -1
    };
    state
        .with_transaction_state(str_bytes(state_name(txn.state)))
        .with_transaction_timeout_ms(txn.timeout_ms)
        .with_transaction_start_time_ms(started)
        .with_producer_id(ProducerId(txn.producer_id))
        .with_producer_epoch(txn.epoch)
        .with_topics(
            topics
                .into_iter()
                .map(|(topic, partitions)| {
                    TopicData::default()
                        .with_topic(topic_name(topic))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

pub fn describe_producers(
    broker: &Broker,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let found = broker.topic(topic.name.as_str());
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|index| {
                    let response = PartitionResponse::default().with_partition_index(*index);
                    let partition = found.as_ref().and_then(|t| t.partition(*index));
                    let Some(partition) = partition else {
                        return response
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    if let Err(e) = partition.check_leader() {
                        return response.with_error_code(e.code());
                    }
                    let producers = partition
                        .producers()
                        .into_iter()
                        .map(|p| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(p.producer_id))
                                .with_producer_epoch(i32::from(p.epoch))
                                .with_last_sequence(p.last_sequence)
                                .with_last_timestamp(p.last_write_ms)
                                .with_coordinator_epoch(-1)
                                .with_current_txn_start_offset(p.txn_start_offset.unwrap_or(-1))
                        })
                        .collect();
                    response.with_active_producers(producers)
                })
                .collect();
            TopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
