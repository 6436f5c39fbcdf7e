//! Metadata: brokers, topics with ids, partitions with leader and epoch;
//! creates unknown topics when auto-creation is on and the client allows it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};

use super::{str_bytes, topic_name};
use crate::broker::{Broker, Topic};
use crate::log::partition::Partition;

/// Metadata for a client of `listener` (told the brokers' addresses on it).
pub async fn handle(
    broker: &Broker,
    version: i16,
    request: MetadataRequest,
    listener: &str,
) -> MetadataResponse {
    let all_topics = match &request.topics {
        None => true,
        Some(list) => version == 0 && list.is_empty(),
    };
    let auto_create =
        broker.config.topics.auto_create && (version < 4 || request.allow_auto_topic_creation);
    let mut topics = Vec::new();
    if all_topics {
        topics.extend(broker.topics().iter().map(|t| describe(broker, t)));
    } else {
        for wanted in request.topics.unwrap_or_default() {
            let topic = match &wanted.name {
                Some(name) => lookup_by_name(broker, name.as_str(), auto_create).await,
                None => broker
                    .topic_by_id(wanted.topic_id)
                    .ok_or(ResponseError::UnknownTopicId),
            };
            topics.push(match topic {
                Ok(topic) => describe(broker, &topic),
                Err(error) => MetadataResponseTopic::default()
                    .with_name(wanted.name.clone())
                    .with_topic_id(wanted.topic_id)
                    .with_error_code(error.code()),
            });
        }
    }
    let brokers = broker
        .live_brokers()
        .iter()
        .map(|b| {
            let (host, port) = b.on(listener);
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(str_bytes(&host))
                .with_port(port)
                .with_rack(b.rack.as_deref().map(str_bytes))
        })
        .collect();
    let mut response = MetadataResponse::default()
        .with_brokers(brokers)
        .with_topics(topics);
    if version >= 1 {
        response.controller_id = BrokerId(broker.controller_id());
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

/// A partition's leadership as clients are told it: its leader is its only
/// replica (the data is in the object store); LEADER_NOT_AVAILABLE while
/// it has none.
pub struct Leadership {
    pub error_code: i16,
    pub leader: BrokerId,
    pub epoch: i32,
    /// The replicas and the in-sync replicas: the leader alone.
    pub replicas: Vec<BrokerId>,
}

impl Leadership {
    pub fn of(broker: &Broker, partition: &Partition) -> Leadership {
        match broker.leader_of(partition) {
            Some(leader) => Leadership {
                error_code: 0,
                leader: BrokerId(leader.broker),
                epoch: leader.epoch,
                replicas: vec![BrokerId(leader.broker)],
            },
            None => Leadership {
                error_code: ResponseError::LeaderNotAvailable.code(),
                leader: BrokerId(-1),
                epoch: -1,
                replicas: Vec::new(),
            },
        }
    }
}

/// A topic with each partition's [`Leadership`].
fn describe(broker: &Broker, topic: &Topic) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let l = Leadership::of(broker, p);
            MetadataResponsePartition::default()
                .with_partition_index(p.index)
                .with_error_code(l.error_code)
                .with_leader_id(l.leader)
                .with_leader_epoch(l.epoch)
                .with_replica_nodes(l.replicas.clone())
                .with_isr_nodes(l.replicas)
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(topic.id)
        .with_partitions(partitions)
}
