//! DeleteTopics: by name (all versions) or by topic id (v6+).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use uuid::Uuid;

use super::str_bytes;
use crate::broker::Broker;

pub async fn handle(
    broker: &Broker,
    version: i16,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let wanted: Vec<(Option<TopicName>, Uuid)> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n), Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let resolved = match &name {
            Some(name) => Ok(name.as_str().to_string()),
            None => broker
                .topic_by_id(id)
                .map(|t| t.name.clone())
                .ok_or(ResponseError::UnknownTopicId),
        };
        let outcome = match resolved {
            Ok(resolved) => broker
                .delete_topic(&resolved)
                .await
                .map(|id| (resolved, id))
                .map_err(|e| e.response_error()),
            Err(e) => Err(e),
        };
        let result = DeletableTopicResult::default().with_name(name.clone());
        responses.push(match outcome {
            Ok((resolved, deleted_id)) => {
                let result = result.with_name(Some(str_bytes(&resolved).into()));
                if version >= 6 {
                    result.with_topic_id(deleted_id)
                } else {
                    result
                }
            }
            Err(error) => {
                let result = result.with_error_code(error.code());
                let result = if version >= 6 {
                    result.with_topic_id(id)
                } else {
                    result
                };
                if version >= 5 {
                    result.with_error_message(Some(str_bytes(&error.to_string())))
                } else {
                    result
                }
            }
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
