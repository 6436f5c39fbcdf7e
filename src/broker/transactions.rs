//! The broker's side of transactions: writing a transaction's markers to
//! the leaders of its partitions (appended here, or sent to another broker
//! with WriteTxnMarkers) and ending its offsets in its groups, and the
//! check a transactional produce makes before it opens a transaction in a
//! partition.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, WriteTxnMarkersRequest};

use super::Broker;
use crate::error::{Error, Result};
use crate::handlers::topic_name;
use crate::log::partition::{Appended, Partition};
use crate::meta::TxnMeta;
use crate::protocol::control::Outcome;
use crate::txn::MarkerWriter;

/// How long the markers of one transaction may take to become durable.
const MARKER_TIMEOUT: Duration = Duration::from_secs(30);

#[async_trait]
impl MarkerWriter for Broker {
    async fn write_markers(&self, txn: &TxnMeta, outcome: Outcome) -> Result<()> {
        let mut remote: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
        let mut local = Vec::new();
        for (name, index) in &txn.partitions {
            // A deleted topic has nothing left to mark.
            let Some(partition) = self.topic(name).and_then(|t| t.partition(*index).cloned())
            else {
                continue;
            };
            match self.leader_of(&partition) {
                Some(leader) if leader.broker == self.id => local.push(partition),
                Some(leader) => remote
                    .entry(leader.broker)
                    .or_default()
                    .push((name.clone(), *index)),
                None => return Err(Error::NotLeaderOrFollower),
            }
        }
        let (producer_id, epoch) = (txn.producer_id, txn.epoch);
        for result in self
            .append_markers(&local, producer_id, epoch, outcome)
            .await
        {
            result?;
        }
        for (broker, partitions) in remote {
            self.send_markers(broker, producer_id, epoch, outcome, partitions)
                .await?;
        }
        for group in &txn.groups {
            self.meta
                .end_txn_offsets(group, producer_id, outcome == Outcome::Commit)
                .await?;
        }
        Ok(())
    }
}

impl Broker {
    /// Appends the markers to partitions this broker leads and waits until
    /// they are durable; the outcome of each partition, in order.
    pub async fn append_markers(
        &self,
        partitions: &[Arc<Partition>],
        producer_id: i64,
        epoch: i16,
        outcome: Outcome,
    ) -> Vec<Result<()>> {
        let deadline = tokio::time::Instant::now() + MARKER_TIMEOUT;
        let appended: Vec<Result<Appended>> = partitions
            .iter()
            .map(|p| self.log.append_marker(p, producer_id, epoch, outcome, 0))
            .collect();
        let mut results = Vec::with_capacity(partitions.len());
        for (partition, appended) in partitions.iter().zip(appended) {
            let durable = match appended {
                Ok(appended) => self.log.wait_durable(partition, &appended, deadline).await,
                Err(e) => Err(e),
            };
            results.push(durable);
        }
        results
    }

    /// Has broker `broker` append the markers to `partitions` it leads.
    async fn send_markers(
        &self,
        broker: i32,
        producer_id: i64,
        epoch: i16,
        outcome: Outcome,
        partitions: Vec<(String, i32)>,
    ) -> Result<()> {
        let address = self
            .live_brokers()
            .into_iter()
            .find(|b| b.id == broker)
            .map(|b| format!("{}:{}", b.host, b.port))
            .ok_or(Error::NotLeaderOrFollower)?;
        let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (name, index) in partitions {
            topics.entry(name).or_default().push(index);
        }
        let marker = WritableTxnMarker::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_transaction_result(outcome == Outcome::Commit)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(name, indexes)| {
                        WritableTxnMarkerTopic::default()
                            .with_name(topic_name(&name))
                            .with_partition_indexes(indexes)
                    })
                    .collect(),
            );
        let request = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
        let remote_error = |e: crate::client::ClientError| {
            Error::Meta(format!("cannot write markers at broker {broker}: {e}"))
        };
        let call = async {
            let mut client = crate::client::Client::connect(&address)
                .await
                .map_err(remote_error)?;
            client.call(request, 1).await.map_err(remote_error)
        };
        let response = tokio::time::timeout(MARKER_TIMEOUT, call)
            .await
            .map_err(|_| Error::RequestTimedOut)??;
        let failed = response
            .markers
            .iter()
            .flat_map(|m| &m.topics)
            .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
            .find(|(_, p)| p.error_code != 0);
        match failed {
            None => Ok(()),
            Some((topic, partition)) => Err(Error::Meta(format!(
                "broker {broker} refused the marker of {}-{}: error {}",
                topic.name.as_str(),
                partition.partition_index,
                partition.error_code
            ))),
        }
    }

    /// Whether `partition` (topic name, index) is in the ongoing
    /// transaction of `producer_id` at `epoch`, as its coordinator stored it.
    pub async fn transaction_includes(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partition: &(String, i32),
    ) -> Result<bool> {
        crate::txn::TxnCoordinator::partition_in_transaction(
            self.meta.as_ref(),
            transactional_id,
            producer_id,
            epoch,
            partition,
        )
        .await
    }

    /// Lets `partition` accept the first transactional batch of
    /// `producer_id` at `epoch` if the coordinator has the partition in
    /// that producer's ongoing transaction (read from the store, where the
    /// coordinator writes it before answering AddPartitionsToTxn); else
    /// `InvalidTxnState`.
    pub async fn verify_transaction(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: &Partition,
    ) -> Result<()> {
        let key = (topic.to_string(), partition.index);
        if !self
            .transaction_includes(transactional_id, producer_id, epoch, &key)
            .await?
        {
            return Err(Error::InvalidTxnState(
                producer_id,
                "the partition was not added to the producer's transaction",
            ));
        }
        partition.expect_transaction(producer_id, epoch);
        Ok(())
    }
}
