//! DescribeCluster: the cluster id, controller and brokers.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::str_bytes;
use crate::broker::Broker;

/// Endpoint type 1: brokers (2, controllers, is not served).
const BROKERS: i8 = 1;

/// The cluster as a client of `listener` reaches it.
pub fn handle(
    broker: &Broker,
    request: DescribeClusterRequest,
    listener: &str,
) -> DescribeClusterResponse {
    if request.endpoint_type != BROKERS {
        return DescribeClusterResponse::default()
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(str_bytes("only broker endpoints are served")));
    }
    let brokers = broker
        .live_brokers()
        .iter()
        .map(|b| {
            let (host, port) = b.on(listener);
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(str_bytes(&host))
                .with_port(port)
                .with_rack(b.rack.as_deref().map(str_bytes))
        })
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(&broker.config.broker.cluster_id))
        .with_controller_id(BrokerId(broker.controller_id()))
        .with_brokers(brokers)
}
