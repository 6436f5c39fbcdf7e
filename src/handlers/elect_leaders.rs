//! ElectLeaders (kafka-leader-election, AdminClient.electLeaders): a
//! partition's only replica is its leader, so there is never a better one
//! to elect: ELECTION_NOT_NEEDED for each partition that has a leader, as
//! Kafka answers for a partition already led by its preferred replica. A
//! partition waiting for the controller to give it a leader gets
//! ELIGIBLE_LEADERS_NOT_AVAILABLE; the controller elects it by itself.
//! Asked for every partition (no list), nothing needed an election: an
//! empty answer, as Kafka's.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};

use super::str_bytes;
use crate::broker::Broker;

pub fn handle(broker: &Broker, request: ElectLeadersRequest) -> ElectLeadersResponse {
    let results = request
        .topic_partitions
        .unwrap_or_default()
        .into_iter()
        .map(|wanted| {
            let topic = broker.topic(wanted.topic.as_str());
            let partition_result = wanted
                .partitions
                .iter()
                .map(|&index| {
                    let (error, message) = match topic.as_ref().and_then(|t| t.partition(index)) {
                        None => (ResponseError::UnknownTopicOrPartition, "no such partition"),
                        Some(p) if broker.leader_of(p).is_some() => (
                            ResponseError::ElectionNotNeeded,
                            "the partition's leader is its only replica",
                        ),
                        Some(_) => (
                            ResponseError::EligibleLeadersNotAvailable,
                            "the controller has not given the partition a leader yet",
                        ),
                    };
                    PartitionResult::default()
                        .with_partition_id(index)
                        .with_error_code(error.code())
                        .with_error_message(Some(str_bytes(message)))
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(wanted.topic)
                .with_partition_result(partition_result)
        })
        .collect();
    ElectLeadersResponse::default().with_replica_election_results(results)
}
