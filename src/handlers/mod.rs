//! Request handlers: one file per Kafka API. `dispatch` is the one match
//! from a decoded request to its handler; handlers translate between Kafka
//! messages and the broker, and return a response value (never touching the
//! socket).
//!
//! `dispatch` runs in the connection task, in request order, and returns a
//! future for the response. Produce does its appends before returning, so a
//! connection's batches reach the log in the order they were sent; waiting
//! for durability happens in the future, concurrently with later requests.

mod api_versions;
mod configs;
mod create_partitions;
mod create_topics;
mod delete_topics;
mod describe_cluster;
mod fetch;
mod init_producer_id;
mod list_offsets;
mod metadata;
mod offset_for_leader_epoch;
mod produce;

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use kafka_protocol::messages::{RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::protocol::Request;

pub use api_versions::api_versions_response;

/// A response to come; `None` for requests answered with silence (acks=0).
pub type Reply = BoxFuture<'static, Option<ResponseKind>>;

/// Starts handling `request`; `None` if the API is not served (the decoder
/// only lets served APIs through, so this closes the connection defensively).
pub fn dispatch(broker: &Arc<Broker>, request: Request) -> Option<Reply> {
    let version = request.version();
    let broker = broker.clone();
    let reply: Reply = match request.body {
        RequestKind::ApiVersions(_) => {
            futures::future::ready(Some(ResponseKind::ApiVersions(api_versions_response()))).boxed()
        }
        RequestKind::Produce(r) => produce::handle(&broker, version, r),
        RequestKind::Fetch(r) => async move {
            Some(ResponseKind::Fetch(
                fetch::handle(&broker, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::Metadata(r) => async move {
            Some(ResponseKind::Metadata(
                metadata::handle(&broker, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::ListOffsets(r) => async move {
            Some(ResponseKind::ListOffsets(
                list_offsets::handle(&broker, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::OffsetForLeaderEpoch(r) => {
            let response = offset_for_leader_epoch::handle(&broker, r);
            futures::future::ready(Some(ResponseKind::OffsetForLeaderEpoch(response))).boxed()
        }
        RequestKind::CreateTopics(r) => async move {
            Some(ResponseKind::CreateTopics(
                create_topics::handle(&broker, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::DeleteTopics(r) => async move {
            Some(ResponseKind::DeleteTopics(
                delete_topics::handle(&broker, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::CreatePartitions(r) => async move {
            Some(ResponseKind::CreatePartitions(
                create_partitions::handle(&broker, r).await,
            ))
        }
        .boxed(),
        RequestKind::DescribeConfigs(r) => {
            let response = configs::describe(&broker, version, r);
            futures::future::ready(Some(ResponseKind::DescribeConfigs(response))).boxed()
        }
        RequestKind::IncrementalAlterConfigs(r) => async move {
            Some(ResponseKind::IncrementalAlterConfigs(
                configs::alter(&broker, r).await,
            ))
        }
        .boxed(),
        RequestKind::DescribeCluster(r) => {
            let response = describe_cluster::handle(&broker, r);
            futures::future::ready(Some(ResponseKind::DescribeCluster(response))).boxed()
        }
        RequestKind::InitProducerId(r) => async move {
            Some(ResponseKind::InitProducerId(
                init_producer_id::handle(&broker, r).await,
            ))
        }
        .boxed(),
        other => {
            tracing::warn!(request = ?std::mem::discriminant(&other), "request for an API that is not served");
            return None;
        }
    };
    Some(reply)
}

/// A `StrBytes` from a string.
pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A `TopicName` from a string.
pub(crate) fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

/// The broker's advertised `(node id, host, port)`.
pub(crate) fn node(broker: &Broker) -> (i32, String, i32) {
    let (host, port) = broker.config.advertised();
    (broker.config.broker.id, host, port)
}
