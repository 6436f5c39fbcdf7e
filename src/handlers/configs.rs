//! DescribeConfigs and IncrementalAlterConfigs for topics and the broker.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};

use super::str_bytes;
use crate::broker::configs::{ConfigEntry, describe_broker, describe_topic};
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
            Ok(describe_topic(
                &broker.config,
                &broker.dynamic_configs(),
                &topic.configs,
            ))
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

pub async fn alter(
    broker: &Broker,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.as_str().to_string();
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
        let outcome = match (changes, resource.resource_type) {
            (Err(e), _) => Err(e),
            (Ok(changes), TOPIC) => {
                broker
                    .alter_topic_configs(&name, &changes, request.validate_only)
                    .await
            }
            (Ok(changes), BROKER) => match check_broker_name(broker, &name) {
                Ok(()) => {
                    broker
                        .alter_broker_configs(&changes, request.validate_only)
                        .await
                }
                Err(e) => Err(e),
            },
            (Ok(_), other) => Err(Error::InvalidRequest(format!(
                "resource type {other} is not served"
            ))),
        };
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        responses.push(match outcome {
            Ok(()) => response,
            Err(e) => response
                .with_error_code(e.code())
                .with_error_message(Some(str_bytes(&e.to_string()))),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
