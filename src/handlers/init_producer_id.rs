//! InitProducerId: a fresh producer id (epoch 0) for idempotent producers;
//! for a transactional id, the id and next epoch its coordinator gives.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::broker::Broker;

pub async fn handle(
    broker: &Broker,
    version: i16,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    if let Some(id) = request
        .transactional_id
        .as_ref()
        .filter(|id| !id.is_empty())
    {
        let previous = (version >= 3).then_some((request.producer_id.0, request.producer_epoch));
        return super::transactions::init_producer(
            broker,
            id.as_str(),
            request.transaction_timeout_ms,
            previous,
        )
        .await;
    }
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    // Like Kafka, a producer without a transactional id always gets a new
    // id (even when it names its old one to bump the epoch).
    match broker.allocate_producer_id().await {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            tracing::warn!(error = %e, "cannot allocate a producer id");
            response.with_error_code(e.code())
        }
    }
}
