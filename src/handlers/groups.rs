//! The consumer group membership APIs: FindCoordinator, JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup. They translate to the coordinator
//! (`group::Coordinator`), which waits for rebalance steps as needed.

use std::net::SocketAddr;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator as CoordinatorEntry;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, SyncGroupRequest,
    SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::broker::Broker;
use crate::group::MemberRef;
use crate::group::state::{GroupError, JoinRequest};

/// FindCoordinator key type of consumer groups (1 is transactions, not served).
const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

/// A coordinator: its broker id and address (host, port).
type Coordinator = (i32, (String, i32));

/// The coordinator of each key: its group id hashed over the live
/// brokers, the same on every broker; its address on `listener`.
pub fn find_coordinator(
    broker: &Broker,
    version: i16,
    request: FindCoordinatorRequest,
    listener: &str,
) -> FindCoordinatorResponse {
    let find = |key: &str| -> Result<Coordinator, (ResponseError, &'static str)> {
        // Transaction coordinators are placed like group coordinators.
        if request.key_type != GROUP_KEY && request.key_type != TRANSACTION_KEY {
            return Err((
                ResponseError::InvalidRequest,
                "only group and transaction coordinators exist",
            ));
        }
        broker
            .coordinator(key)
            .map(|b| (b.id, b.on(listener)))
            .ok_or((ResponseError::CoordinatorNotAvailable, "no broker is live"))
    };
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let entry = CoordinatorEntry::default().with_key(key.clone());
                match find(key.as_str()) {
                    Err((e, message)) => entry
                        .with_error_code(e.code())
                        .with_error_message(Some(str_bytes(message)))
                        .with_node_id(BrokerId(-1)),
                    Ok((id, (host, port))) => entry
                        .with_node_id(BrokerId(id))
                        .with_host(str_bytes(&host))
                        .with_port(port),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let response = FindCoordinatorResponse::default();
    match find(request.key.as_str()) {
        Err((e, message)) => response
            .with_error_code(e.code())
            .with_node_id(BrokerId(-1))
            .with_error_message(Some(str_bytes(message)).filter(|_| version >= 1)),
        Ok((id, (host, port))) => response
            .with_node_id(BrokerId(id))
            .with_host(str_bytes(&host))
            .with_port(port),
    }
}

pub async fn join(
    broker: &Broker,
    version: i16,
    client_id: &str,
    peer: SocketAddr,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let failed = |e: ResponseError, member_id: StrBytes| {
        JoinGroupResponse::default()
            .with_error_code(e.code())
            .with_generation_id(-1)
            .with_member_id(member_id)
    };
    if request.group_id.is_empty() {
        return failed(ResponseError::InvalidGroupId, request.member_id);
    }
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
        client_id: client_id.to_string(),
        client_host: format!("/{}", peer.ip()),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
        new_member_id: format!("{client_id}-{}", uuid::Uuid::new_v4()),
    };
    match broker.groups.join(request.group_id.as_str(), join).await {
        Ok(joined) => {
            let members = joined
                .members
                .into_iter()
                .map(|(member_id, instance_id, metadata)| {
                    JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(&member_id))
                        .with_group_instance_id(
                            instance_id.filter(|_| version >= 5).map(|i| str_bytes(&i)),
                        )
                        .with_metadata(metadata)
                })
                .collect();
            let response = JoinGroupResponse::default()
                .with_generation_id(joined.generation)
                .with_protocol_name(Some(str_bytes(&joined.protocol)))
                .with_leader(str_bytes(&joined.leader))
                .with_member_id(str_bytes(&joined.member_id))
                .with_members(members);
            let response = if version >= 7 {
                response.with_protocol_type(Some(str_bytes(&joined.protocol_type)))
            } else {
                response
            };
            if version >= 9 {
                response.with_skip_assignment(joined.skip_assignment)
            } else {
                response
            }
        }
        Err(GroupError::MemberIdRequired(member_id)) => {
            failed(ResponseError::MemberIdRequired, str_bytes(&member_id))
        }
        Err(e) => failed(e.response_error(), request.member_id),
    }
}

pub async fn sync(broker: &Broker, version: i16, request: SyncGroupRequest) -> SyncGroupResponse {
    let member = MemberRef {
        member_id: request.member_id.as_str(),
        instance_id: request.group_instance_id.as_deref(),
        generation: request.generation_id,
    };
    let assignments: Vec<(String, Bytes)> = request
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    match broker
        .groups
        .sync(
            request.group_id.as_str(),
            member,
            (
                request.protocol_type.as_deref(),
                request.protocol_name.as_deref(),
            ),
            assignments,
        )
        .await
    {
        Ok(synced) => {
            let response = SyncGroupResponse::default().with_assignment(synced.assignment);
            if version >= 5 {
                response
                    .with_protocol_type(Some(str_bytes(&synced.protocol_type)))
                    .with_protocol_name(Some(str_bytes(&synced.protocol)))
            } else {
                response
            }
        }
        Err(e) => SyncGroupResponse::default().with_error_code(e.response_error().code()),
    }
}

pub async fn heartbeat(broker: &Broker, request: HeartbeatRequest) -> HeartbeatResponse {
    let member = MemberRef {
        member_id: request.member_id.as_str(),
        instance_id: request.group_instance_id.as_deref(),
        generation: request.generation_id,
    };
    let code = match broker
        .groups
        .heartbeat(request.group_id.as_str(), member)
        .await
    {
        Ok(()) => 0,
        Err(e) => e.response_error().code(),
    };
    HeartbeatResponse::default().with_error_code(code)
}

pub async fn leave(
    broker: &Broker,
    version: i16,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let results = broker
        .groups
        .leave(request.group_id.as_str(), &members)
        .await
        .unwrap_or_else(|e| vec![Err(e); members.len()]);
    let code =
        |r: &Result<(), GroupError>| r.as_ref().err().map_or(0, |e| e.response_error().code());
    if version < 3 {
        return LeaveGroupResponse::default().with_error_code(results.first().map_or(0, code));
    }
    let members = members
        .into_iter()
        .zip(&results)
        .map(|((member_id, instance_id), result)| {
            MemberResponse::default()
                .with_member_id(str_bytes(&member_id))
                .with_group_instance_id(instance_id.map(|i| str_bytes(&i)))
                .with_error_code(code(result))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
