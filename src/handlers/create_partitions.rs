//! CreatePartitions: grows topics; a manual replica assignment of the new
//! partitions makes each one's first broker its leader (see CreateTopics).

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::error::{Error, Result};

pub async fn handle(broker: &Broker, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let outcome = grow(broker, &topic, request.validate_only).await;
        let result = CreatePartitionsTopicResult::default().with_name(topic.name);
        results.push(match outcome {
            Ok(()) => result,
            Err(e) => result
                .with_error_code(e.code())
                .with_error_message(Some(str_bytes(&e.to_string()))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// Grows `topic` to its count, placing the new partitions as assigned.
async fn grow(broker: &Broker, topic: &CreatePartitionsTopic, validate_only: bool) -> Result<()> {
    let name = topic.name.as_str();
    let current = broker
        .topic(name)
        .ok_or(Error::UnknownTopicOrPartition)?
        .partitions
        .len() as i32;
    let leaders = match &topic.assignments {
        Some(assignments) if !assignments.is_empty() => {
            if assignments.len() as i32 != topic.count - current {
                return Err(Error::InvalidReplicaAssignment(format!(
                    "{} assignments for {} new partitions",
                    assignments.len(),
                    topic.count - current
                )));
            }
            let replicas: Vec<Vec<i32>> = assignments
                .iter()
                .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                .collect();
            Some(broker.preferred_leaders(&replicas)?)
        }
        _ => None,
    };
    broker
        .create_partitions(name, topic.count, validate_only)
        .await?;
    match (leaders, broker.topic(name)) {
        (Some(leaders), Some(grown)) if !validate_only => {
            broker.place(grown.id, current, &leaders).await
        }
        _ => Ok(()),
    }
}
