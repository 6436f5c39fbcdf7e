//! CreateTopics: partition count (or the broker default for -1), topic
//! configs, `validate_only`. Replication is the object store's job, so any
//! replication factor is accepted and reported as 1; manual replica
//! assignments are refused.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::broker::configs::describe_topic;
use crate::error::Error;

pub async fn handle(
    broker: &Broker,
    version: i16,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.as_str().to_string();
        let partitions = match topic.num_partitions {
            -1 => broker.config.topics.default_partitions,
            n => n,
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
        } else if !topic.assignments.is_empty() {
            Err(Error::InvalidRequest(
                "manual replica assignment is not supported".into(),
            ))
        } else {
            broker
                .create_topic(&name, partitions, configs.clone(), request.validate_only)
                .await
        };
        let mut result = CreatableTopicResult::default().with_name(topic.name);
        match outcome {
            Ok(id) => {
                if version >= 7 {
                    result.topic_id = id;
                }
                if version >= 5 {
                    let entries =
                        describe_topic(&broker.config, &broker.dynamic_configs(), &configs);
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
