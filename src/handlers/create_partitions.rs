//! CreatePartitions: grows topics; manual assignments are refused.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::error::Error;

pub async fn handle(broker: &Broker, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let outcome = if topic.assignments.as_ref().is_some_and(|a| !a.is_empty()) {
            Err(Error::InvalidRequest(
                "manual replica assignment is not supported".into(),
            ))
        } else {
            broker
                .create_partitions(topic.name.as_str(), topic.count, request.validate_only)
                .await
        };
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
