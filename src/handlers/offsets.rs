//! Committed offsets: OffsetCommit, OffsetFetch (one group, or many from
//! v8), OffsetDelete.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse,
};

use super::{str_bytes, topic_name};
use crate::broker::Broker;
use crate::group::MemberRef;
use crate::meta::CommittedOffset;

/// The largest metadata string stored with an offset (`offset.metadata.max.bytes`).
const MAX_METADATA_BYTES: usize = 4096;

pub async fn commit(broker: &Broker, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let now = broker.clock().now_ms();
    let mut valid = Vec::new();
    // (topic index, partition index, error code) of each partition, in order.
    let mut outcome: Vec<(usize, usize, i16)> = Vec::new();
    for (t, topic) in request.topics.iter().enumerate() {
        let known = broker.topic(topic.name.as_str());
        for (p, partition) in topic.partitions.iter().enumerate() {
            let exists = known
                .as_ref()
                .is_some_and(|k| k.partition(partition.partition_index).is_some());
            let metadata = partition.committed_metadata.as_ref().map(|m| m.to_string());
            let code = if !exists {
                ResponseError::UnknownTopicOrPartition.code()
            } else if metadata
                .as_ref()
                .is_some_and(|m| m.len() > MAX_METADATA_BYTES)
            {
                ResponseError::OffsetMetadataTooLarge.code()
            } else {
                valid.push(CommittedOffset {
                    topic: topic.name.to_string(),
                    partition: partition.partition_index,
                    offset: partition.committed_offset,
                    leader_epoch: partition.committed_leader_epoch,
                    metadata,
                    commit_time_ms: now,
                });
                0
            };
            outcome.push((t, p, code));
        }
    }
    let member = MemberRef {
        member_id: request.member_id.as_str(),
        instance_id: request.group_instance_id.as_deref(),
        generation: request.generation_id_or_member_epoch,
    };
    let group_error = if request.group_id.is_empty() {
        Some(ResponseError::InvalidGroupId.code())
    } else {
        broker
            .groups
            .commit_offsets(request.group_id.as_str(), member, valid)
            .await
            .err()
            .map(|e| e.response_error().code())
    };
    let mut topics: Vec<OffsetCommitResponseTopic> = request
        .topics
        .iter()
        .map(|t| OffsetCommitResponseTopic::default().with_name(t.name.clone()))
        .collect();
    for (t, p, code) in outcome {
        let partition_index = request.topics[t].partitions[p].partition_index;
        let code = if code == 0 {
            group_error.unwrap_or(0)
        } else {
            code
        };
        topics[t].partitions.push(
            OffsetCommitResponsePartition::default()
                .with_partition_index(partition_index)
                .with_error_code(code),
        );
    }
    OffsetCommitResponse::default().with_topics(topics)
}

/// Requested partitions, or `None` for all of the group's.
type Wanted = Option<Vec<(String, i32)>>;

pub async fn fetch(
    broker: &Broker,
    version: i16,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    if version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for group in request.groups {
            let wanted: Wanted = group.topics.as_ref().map(|topics| {
                topics
                    .iter()
                    .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
                    .collect()
            });
            let response =
                match lookup(broker, &group.group_id, wanted, request.require_stable).await {
                    Ok(found) => OffsetFetchResponseGroup::default().with_topics(found_v8(found)),
                    Err(e) => OffsetFetchResponseGroup::default().with_error_code(e.code()),
                };
            groups.push(response.with_group_id(group.group_id));
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted: Wanted = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
            .collect()
    });
    let require_stable = version >= 7 && request.require_stable;
    let found = match lookup(broker, &request.group_id, wanted, require_stable).await {
        Ok(found) => found,
        Err(e) => return OffsetFetchResponse::default().with_error_code(e.code()),
    };
    let mut topics: Vec<OffsetFetchResponseTopic> = Vec::new();
    for ((topic, partition), offset) in found {
        if topics.last().is_none_or(|t| t.name.as_str() != topic) {
            topics.push(OffsetFetchResponseTopic::default().with_name(topic_name(&topic)));
        }
        let (committed, epoch, metadata, error) = fields(offset);
        let entry = OffsetFetchResponsePartition::default()
            .with_partition_index(partition)
            .with_error_code(error)
            .with_committed_offset(committed)
            .with_metadata(Some(str_bytes(&metadata)));
        let entry = if version >= 5 {
            entry.with_committed_leader_epoch(epoch)
        } else {
            entry
        };
        topics
            .last_mut()
            .expect("pushed above")
            .partitions
            .push(entry);
    }
    OffsetFetchResponse::default().with_topics(topics)
}

/// A partition's committed offset, or why it is not given.
type Found = Vec<(
    (String, i32),
    Result<Option<CommittedOffset>, ResponseError>,
)>;

/// The group's committed offsets, sorted; with `require_stable` the
/// partitions a transaction holds offsets pending for answer
/// UNSTABLE_OFFSET_COMMIT (the consumer retries once it ended).
async fn lookup(
    broker: &Broker,
    group: &GroupId,
    wanted: Wanted,
    require_stable: bool,
) -> Result<Found, ResponseError> {
    let (offsets, pending) = broker
        .groups
        .offsets(group.as_str(), wanted.as_deref())
        .await
        .map_err(|e| e.response_error())?;
    let mut found: Found = offsets
        .into_iter()
        .map(|(p, offset)| {
            if require_stable && pending.contains(&p) {
                (p, Err(ResponseError::UnstableOffsetCommit))
            } else {
                (p, Ok(offset))
            }
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// (offset, leader epoch, metadata, error code) reported for a partition;
/// -1 when none.
fn fields(offset: Result<Option<CommittedOffset>, ResponseError>) -> (i64, i32, String, i16) {
    match offset {
        Ok(Some(o)) => (o.offset, o.leader_epoch, o.metadata.unwrap_or_default(), 0),
        Ok(None) => (-1, -1, String::new(), 0),
        Err(e) => (-1, -1, String::new(), e.code()),
    }
}

fn found_v8(found: Found) -> Vec<OffsetFetchResponseTopics> {
    let mut topics: Vec<OffsetFetchResponseTopics> = Vec::new();
    for ((topic, partition), offset) in found {
        if topics.last().is_none_or(|t| t.name.as_str() != topic) {
            topics.push(OffsetFetchResponseTopics::default().with_name(topic_name(&topic)));
        }
        let (committed, epoch, metadata, error) = fields(offset);
        topics.last_mut().expect("pushed above").partitions.push(
            OffsetFetchResponsePartitions::default()
                .with_partition_index(partition)
                .with_error_code(error)
                .with_committed_offset(committed)
                .with_committed_leader_epoch(epoch)
                .with_metadata(Some(str_bytes(&metadata))),
        );
    }
    topics
}

pub async fn delete(broker: &Broker, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let wanted: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.to_string(), p.partition_index))
        })
        .collect();
    let (known, unknown): (Vec<_>, Vec<_>) = wanted.into_iter().partition(|(topic, partition)| {
        broker
            .topic(topic)
            .is_some_and(|t| t.partition(*partition).is_some())
    });
    let results = match broker
        .groups
        .delete_offsets(request.group_id.as_str(), known)
        .await
    {
        Ok(results) => results,
        Err(e) => {
            return OffsetDeleteResponse::default().with_error_code(e.response_error().code());
        }
    };
    let mut codes: Vec<((String, i32), i16)> = results
        .into_iter()
        .map(|(p, r)| (p, r.err().map_or(0, |e| e.response_error().code())))
        .chain(
            unknown
                .into_iter()
                .map(|p| (p, ResponseError::UnknownTopicOrPartition.code())),
        )
        .collect();
    codes.sort();
    let mut topics: Vec<OffsetDeleteResponseTopic> = Vec::new();
    for ((topic, partition), code) in codes {
        if topics.last().is_none_or(|t| t.name.as_str() != topic) {
            topics.push(OffsetDeleteResponseTopic::default().with_name(topic_name(&topic)));
        }
        topics.last_mut().expect("pushed above").partitions.push(
            OffsetDeleteResponsePartition::default()
                .with_partition_index(partition)
                .with_error_code(code),
        );
    }
    OffsetDeleteResponse::default().with_topics(topics)
}
