//! DescribeConfigs, IncrementalAlterConfigs and the legacy AlterConfigs for
//! topics and the broker.

use kafka_protocol::messages::alter_configs_response;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

use super::str_bytes;
use crate::broker::configs::{ConfigEntry, describe_broker};
use crate::broker::{Broker, ConfigChange};
use crate::error::{Error, Result};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

const SET: i8 = 0;
const DELETE: i8 = 1;

pub fn describe(
    broker: &Broker,
    version: i16,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let entries = match entries(
                broker,
                resource.resource_type,
                resource.resource_name.as_str(),
            ) {
                Ok(entries) => entries,
                Err(e) => {
                    return result
                        .with_error_code(e.code())
                        .with_error_message(Some(str_bytes(&e.to_string())));
                }
            };
            let keys = resource.configuration_keys;
            let configs = entries
                .into_iter()
                // Null or empty asks for every config, as in Kafka.
                .filter(|e| {
                    keys.as_ref()
                        .is_none_or(|k| k.is_empty() || k.iter().any(|k| k.as_str() == e.name))
                })
                .map(|e| {
                    let mut config = DescribeConfigsResourceResult::default()
                        .with_name(str_bytes(&e.name))
                        .with_value(Some(str_bytes(&e.value)))
                        .with_read_only(e.read_only)
                        .with_config_source(e.source as i8);
                    if version >= 3 {
                        config.config_type = e.config_type;
                        if request.include_documentation {
                            config.documentation = Some(str_bytes(e.documentation));
                        }
                    }
                    config
                })
                .collect();
            result.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn entries(broker: &Broker, resource_type: i8, name: &str) -> Result<Vec<ConfigEntry>> {
    match resource_type {
        TOPIC => {
            let topic = broker.topic(name).ok_or(Error::UnknownTopicOrPartition)?;
            let dynamic = broker.dynamic_configs();
            Ok(broker.configs_of(&dynamic, &topic).describe())
        }
        BROKER => {
            check_broker_name(broker, name)?;
            Ok(describe_broker(
                broker.id,
                &broker.config,
                &broker.dynamic_configs(),
            ))
        }
        other => Err(Error::InvalidRequest(format!(
            "resource type {other} is not served"
        ))),
    }
}

/// Broker resources are this broker's id, or "" for the cluster default.
fn check_broker_name(broker: &Broker, name: &str) -> Result<()> {
    if name.is_empty() || name == broker.id.to_string() {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!("unknown broker '{name}'")))
    }
}

/// IncrementalAlterConfigs: SET and DELETE per key.
pub async fn alter(
    broker: &Broker,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let changes: Result<Vec<ConfigChange>> = resource
            .configs
            .iter()
            .map(|c| {
                let key = c.name.to_string();
                match (c.config_operation, &c.value) {
                    (SET, Some(value)) => Ok(ConfigChange::Set(key, value.to_string())),
                    (DELETE, _) => Ok(ConfigChange::Delete(key)),
                    (SET, None) => Err(Error::InvalidConfig(format!("{key}: SET needs a value"))),
                    (op, _) => Err(Error::InvalidConfig(format!(
                        "{key}: operation {op} (append/subtract) is not supported"
                    ))),
                }
            })
            .collect();
        let outcome = apply(
            broker,
            resource.resource_type,
            resource.resource_name.as_str(),
            changes,
            request.validate_only,
        )
        .await;
        let (error_code, error_message) = outcome_codes(outcome);
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
                .with_error_code(error_code)
                .with_error_message(error_message),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// The legacy AlterConfigs (kafka-configs before 2.3, and tools still
/// using it): the given configs replace all of the resource's dynamic
/// configs; a key left out goes back to its default.
pub async fn alter_legacy(broker: &Broker, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let changes: Result<Vec<ConfigChange>> = std::iter::once(Ok(ConfigChange::ClearAll))
            .chain(resource.configs.iter().map(|c| {
                let key = c.name.to_string();
                match &c.value {
                    Some(value) => Ok(ConfigChange::Set(key, value.to_string())),
                    None => Err(Error::InvalidConfig(format!("{key}: a value is needed"))),
                }
            }))
            .collect();
        let outcome = apply(
            broker,
            resource.resource_type,
            resource.resource_name.as_str(),
            changes,
            request.validate_only,
        )
        .await;
        let (error_code, error_message) = outcome_codes(outcome);
        responses.push(
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
                .with_error_code(error_code)
                .with_error_message(error_message),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// Applies `changes` to the topic or broker resource named.
async fn apply(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    changes: Result<Vec<ConfigChange>>,
    validate_only: bool,
) -> Result<()> {
    let changes = changes?;
    match resource_type {
        TOPIC => {
            broker
                .alter_topic_configs(name, &changes, validate_only)
                .await
        }
        BROKER => {
            check_broker_name(broker, name)?;
            broker.alter_broker_configs(&changes, validate_only).await
        }
        other => Err(Error::InvalidRequest(format!(
            "resource type {other} is not served"
        ))),
    }
}

/// A resource's error code and message.
fn outcome_codes(outcome: Result<()>) -> (i16, Option<kafka_protocol::protocol::StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err(e) => (e.code(), Some(str_bytes(&e.to_string()))),
    }
}
