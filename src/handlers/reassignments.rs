//! AlterPartitionReassignments and ListPartitionReassignments
//! (kafka-reassign-partitions, AdminClient): no data moves in Silt, so a
//! reassignment names a partition's new leader, its first replica, which
//! the controller moves it to and keeps it on while that broker is live
//! (as `silt cluster move`); the other replicas named are not used (the
//! bucket replicates). Such a move completes by itself within moments, so
//! none is ever listed as ongoing, and cancelling finds none in progress.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
    ListPartitionReassignmentsResponse,
};

use super::str_bytes;
use crate::broker::Broker;

pub async fn alter(
    broker: &Broker,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let mut responses = Vec::with_capacity(request.topics.len());
    for wanted in request.topics {
        let topic = broker.topic(wanted.name.as_str());
        let mut partitions = Vec::with_capacity(wanted.partitions.len());
        for p in wanted.partitions {
            let outcome = match (&topic, p.replicas) {
                (Some(t), Some(replicas)) if t.partition(p.partition_index).is_some() => {
                    let replicas: Vec<i32> = replicas.iter().map(|b| b.0).collect();
                    let placed = match broker.preferred_leaders(&[replicas]) {
                        Ok(leader) => broker.place(t.id, p.partition_index, &leader).await,
                        Err(e) => Err(e),
                    };
                    placed.map_err(|e| (e.code(), e.to_string()))
                }
                (Some(t), None) if t.partition(p.partition_index).is_some() => Err((
                    ResponseError::NoReassignmentInProgress.code(),
                    "no reassignment is in progress to cancel".to_string(),
                )),
                _ => Err((
                    ResponseError::UnknownTopicOrPartition.code(),
                    "no such partition".to_string(),
                )),
            };
            let response =
                ReassignablePartitionResponse::default().with_partition_index(p.partition_index);
            partitions.push(match outcome {
                Ok(()) => response,
                Err((code, message)) => response
                    .with_error_code(code)
                    .with_error_message(Some(str_bytes(&message))),
            });
        }
        responses.push(
            ReassignableTopicResponse::default()
                .with_name(wanted.name)
                .with_partitions(partitions),
        );
    }
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(request.allow_replication_factor_change)
        .with_responses(responses)
}

/// None is ever ongoing.
pub fn list() -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse::default()
}
