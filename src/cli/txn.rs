//! `silt txn list|describe|producers|abort`: transactions as Kafka's
//! `kafka-transactions.sh` shows and ends them.

use anyhow::bail;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::describe_producers_response::ProducerState;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest, ProducerId,
    TopicName, TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::{Cluster, Coordinated, check};

/// Prints every transactional id with its producer id and state (each
/// broker lists those it coordinates).
pub async fn list(cluster: &mut Cluster) -> anyhow::Result<()> {
    let mut listed: Vec<(String, i64, String)> = Vec::new();
    for broker in cluster.broker_ids().await? {
        let client = cluster.leader(broker).await?;
        let response = client.call(ListTransactionsRequest::default(), 1).await?;
        check(response.error_code, "cannot list transactions")?;
        listed.extend(response.transaction_states.iter().map(|t| {
            (
                t.transactional_id.to_string(),
                t.producer_id.0,
                t.transaction_state.to_string(),
            )
        }));
    }
    listed.sort();
    println!("TransactionalId\tProducerId\tState");
    for (id, producer_id, state) in listed {
        println!("{id}\t{producer_id}\t{state}");
    }
    Ok(())
}

/// Prints one transactional id's state and the partitions of its
/// current transaction.
pub async fn describe(cluster: &mut Cluster, id: &str) -> anyhow::Result<()> {
    let request = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(StrBytes::from_string(id.into()))]);
    let response = cluster
        .coordinator_of(Coordinated::Transaction, id)
        .await?
        .call(request, 0)
        .await?;
    let Some(txn) = response.transaction_states.first() else {
        bail!("the broker did not describe transactional id '{id}'");
    };
    check(
        txn.error_code,
        &format!("cannot describe transactional id '{id}'"),
    )?;
    let partitions: Vec<String> = txn
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| format!("{}-{p}", t.topic.as_str()))
        })
        .collect();
    println!(
        "TransactionalId: {id}\tProducerId: {}\tProducerEpoch: {}\tState: {}\tTimeoutMs: {}\tStartTimeMs: {}\tPartitions: {}",
        txn.producer_id.0,
        txn.producer_epoch,
        txn.transaction_state.as_str(),
        txn.transaction_timeout_ms,
        txn.transaction_start_time_ms,
        partitions.join(",")
    );
    Ok(())
}

/// The producers the leader of `topic`'s `partition` knows.
async fn producers_of(
    cluster: &mut Cluster,
    topic: &str,
    partition: i32,
) -> anyhow::Result<(i32, Vec<ProducerState>)> {
    let info = cluster.topic(topic).await?;
    let Some(&(_, leader)) = info.partitions.iter().find(|(p, _)| *p == partition) else {
        bail!("topic '{topic}' has no partition {partition}");
    };
    let request = DescribeProducersRequest::default().with_topics(vec![
        TopicRequest::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_indexes(vec![partition]),
    ]);
    let response = cluster.leader(leader).await?.call(request, 0).await?;
    let Some(found) = response.topics.first().and_then(|t| t.partitions.first()) else {
        bail!("the leader did not describe {topic}-{partition}");
    };
    check(
        found.error_code,
        &format!("cannot describe the producers of {topic}-{partition}"),
    )?;
    Ok((leader, found.active_producers.clone()))
}

/// Prints the producers of a partition, with their open transactions.
pub async fn producers(cluster: &mut Cluster, topic: &str, partition: i32) -> anyhow::Result<()> {
    let (_, producers) = producers_of(cluster, topic, partition).await?;
    println!(
        "ProducerId\tProducerEpoch\tLastSequence\tLastTimestamp\tCurrentTransactionStartOffset"
    );
    for p in producers {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            p.producer_id.0,
            p.producer_epoch,
            p.last_sequence,
            p.last_timestamp,
            p.current_txn_start_offset
        );
    }
    Ok(())
}

/// Aborts the transaction open in `topic`'s `partition` from
/// `start_offset` (a hanging transaction its coordinator does not end):
/// an ABORT marker written at the partition's leader.
pub async fn abort(
    cluster: &mut Cluster,
    topic: &str,
    partition: i32,
    start_offset: i64,
) -> anyhow::Result<()> {
    let (leader, producers) = producers_of(cluster, topic, partition).await?;
    let Some(producer) = producers
        .iter()
        .find(|p| p.current_txn_start_offset == start_offset)
    else {
        bail!("no transaction open in {topic}-{partition} starts at offset {start_offset}");
    };
    let epoch = i16::try_from(producer.producer_epoch)?;
    let marker = WritableTxnMarker::default()
        .with_producer_id(ProducerId(producer.producer_id.0))
        .with_producer_epoch(epoch)
        .with_transaction_result(false)
        .with_topics(vec![
            WritableTxnMarkerTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partition_indexes(vec![partition]),
        ]);
    let request = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
    let response = cluster.leader(leader).await?.call(request, 1).await?;
    for result in response.markers.iter().flat_map(|m| &m.topics) {
        for p in &result.partitions {
            check(
                p.error_code,
                &format!("cannot abort the transaction in {topic}-{partition}"),
            )?;
        }
    }
    println!(
        "aborted the transaction of producer {} in {topic}-{partition} from offset {start_offset}",
        producer.producer_id.0
    );
    Ok(())
}
