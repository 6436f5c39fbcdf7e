//! CreateTopics: partition count (or the broker default for -1), topic
//! configs, `validate_only`. Replication is the object store's job, so any
//! replication factor is accepted and reported as 1; a manual replica
//! assignment gives the partition count, and each partition's first
//! broker becomes its leader (kept there while it is live).

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::error::{Error, Result};

pub async fn handle(
    broker: &Broker,
    version: i16,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.as_str().to_string();
        let leaders = placement(broker, &topic);
        let partitions = match (&leaders, topic.num_partitions) {
            (Ok(Some(leaders)), _) => leaders.len() as i32,
            (_, -1) => broker.config.topics.default_partitions,
            (_, n) => n,
        };
        let configs: BTreeMap<String, String> = topic
            .configs
            .iter()
            .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
            .collect();
        let outcome = if topic.replication_factor == 0 || topic.replication_factor < -1 {
            Err(Error::InvalidReplicationFactor(format!(
                "{} is not a replication factor",
                topic.replication_factor
            )))
        } else {
            match leaders {
                Err(e) => Err(e),
                Ok(leaders) => {
                    let created = broker
                        .create_topic(&name, partitions, configs.clone(), request.validate_only)
                        .await;
                    match (created, leaders) {
                        (Ok(id), Some(leaders)) if !request.validate_only => {
                            broker.place(id, 0, &leaders).await.map(|()| id)
                        }
                        (created, _) => created,
                    }
                }
            }
        };
        let mut result = CreatableTopicResult::default().with_name(topic.name);
        match outcome {
            Ok(id) => {
                if version >= 7 {
                    result.topic_id = id;
                }
                if version >= 5 {
                    let dynamic = broker.dynamic_configs();
                    let entries = broker.topic_configs(&dynamic, &name, &configs).describe();
                    result.num_partitions = partitions;
                    result.replication_factor = 1;
                    result.configs = Some(
                        entries
                            .into_iter()
                            .map(|e| {
                                CreatableTopicConfigs::default()
                                    .with_name(str_bytes(&e.name))
                                    .with_value(Some(str_bytes(&e.value)))
                                    .with_config_source(e.source as i8)
                            })
                            .collect(),
                    );
                }
            }
            Err(e) => {
                result.error_code = e.code();
                result.error_message = Some(str_bytes(&e.to_string()));
                if version >= 5 {
                    result.num_partitions = -1;
                    result.replication_factor = -1;
                }
            }
        }
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// The preferred leaders of a manual replica assignment (partitions 0 to
/// n-1, each once), or `None` without one.
fn placement(broker: &Broker, topic: &CreatableTopic) -> Result<Option<Vec<i32>>> {
    if topic.assignments.is_empty() {
        return Ok(None);
    }
    if topic.num_partitions != -1 || topic.replication_factor != -1 {
        return Err(Error::InvalidRequest(
            "give num_partitions and replication_factor, or assignments (with -1 for both)".into(),
        ));
    }
    let mut assignments: Vec<_> = topic.assignments.iter().collect();
    assignments.sort_by_key(|a| a.partition_index);
    if assignments
        .iter()
        .enumerate()
        .any(|(i, a)| a.partition_index != i as i32)
    {
        return Err(Error::InvalidReplicaAssignment(
            "partitions must be numbered 0 to n-1, each once".into(),
        ));
    }
    let replicas: Vec<Vec<i32>> = assignments
        .iter()
        .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
        .collect();
    broker.preferred_leaders(&replicas).map(Some)
}
