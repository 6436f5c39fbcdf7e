//! Metadata: brokers, topics with ids, partitions with leader and epoch;
//! creates unknown topics when auto-creation is on and the client allows it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};

use super::{node, str_bytes, topic_name};
use crate::broker::{Broker, Topic};

pub async fn handle(broker: &Broker, version: i16, request: MetadataRequest) -> MetadataResponse {
    let (node_id, host, port) = node(broker);
    let all_topics = match &request.topics {
        None => true,
        Some(list) => version == 0 && list.is_empty(),
    };
    let auto_create =
        broker.config.topics.auto_create && (version < 4 || request.allow_auto_topic_creation);
    let mut topics = Vec::new();
    if all_topics {
        topics.extend(broker.topics().iter().map(|t| describe(t, node_id)));
    } else {
        for wanted in request.topics.unwrap_or_default() {
            let topic = match &wanted.name {
                Some(name) => lookup_by_name(broker, name.as_str(), auto_create).await,
                None => broker
                    .topic_by_id(wanted.topic_id)
                    .ok_or(ResponseError::UnknownTopicId),
            };
            topics.push(match topic {
                Ok(topic) => describe(&topic, node_id),
                Err(error) => MetadataResponseTopic::default()
                    .with_name(wanted.name.clone())
                    .with_topic_id(wanted.topic_id)
                    .with_error_code(error.code()),
            });
        }
    }
    let mut response = MetadataResponse::default()
        .with_brokers(vec![
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(node_id))
                .with_host(str_bytes(&host))
                .with_port(port),
        ])
        .with_topics(topics);
    if version >= 1 {
        response.controller_id = BrokerId(node_id);
    }
    if version >= 2 {
        response.cluster_id = Some(str_bytes(&broker.config.broker.cluster_id));
    }
    response
}

async fn lookup_by_name(
    broker: &Broker,
    name: &str,
    auto_create: bool,
) -> Result<std::sync::Arc<Topic>, ResponseError> {
    if let Some(topic) = broker.topic(name) {
        return Ok(topic);
    }
    if !auto_create {
        return Err(ResponseError::UnknownTopicOrPartition);
    }
    broker.ensure_topic(name).await.map_err(|e| {
        tracing::info!(topic = name, error = %e, "auto-creation refused");
        e.response_error()
    })
}

fn describe(topic: &Topic, node_id: i32) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p.index)
                .with_leader_id(BrokerId(node_id))
                .with_leader_epoch(p.leader_epoch())
                .with_replica_nodes(vec![BrokerId(node_id)])
                .with_isr_nodes(vec![BrokerId(node_id)])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(topic.id)
        .with_partitions(partitions)
}
