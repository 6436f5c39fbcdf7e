//! Group administration: ListGroups, DescribeGroups, DeleteGroups.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::group::state::GroupState;

/// Every group here uses the classic protocol (KIP-848 groups are not served).
const GROUP_TYPE: &str = "classic";

pub async fn list(broker: &Broker, version: i16, request: ListGroupsRequest) -> ListGroupsResponse {
    let wanted = |filter: &[kafka_protocol::protocol::StrBytes], value: &str| {
        filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
    };
    let groups = broker
        .groups
        .list()
        .await
        .into_iter()
        .filter(|(_, _, state)| version < 4 || wanted(&request.states_filter, state.name()))
        .filter(|_| version < 5 || wanted(&request.types_filter, GROUP_TYPE))
        .map(|(id, protocol_type, state)| {
            let group = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(&id)))
                .with_protocol_type(str_bytes(&protocol_type));
            let group = if version >= 4 {
                group.with_group_state(str_bytes(state.name()))
            } else {
                group
            };
            if version >= 5 {
                group.with_group_type(str_bytes(GROUP_TYPE))
            } else {
                group
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

pub async fn describe(
    broker: &Broker,
    version: i16,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut groups = Vec::with_capacity(request.groups.len());
    for id in request.groups {
        let group = match broker.groups.describe(id.as_str()).await {
            Ok(Some(group)) => group,
            // Kafka's answer for a group it does not know: Dead, no error.
            Ok(None) => {
                groups.push(
                    DescribedGroup::default()
                        .with_group_id(id)
                        .with_group_state(str_bytes("Dead")),
                );
                continue;
            }
            Err(e) => {
                groups.push(
                    DescribedGroup::default()
                        .with_group_id(id)
                        .with_error_code(e.response_error().code()),
                );
                continue;
            }
        };
        // Like Kafka, protocol and member data are shown only when Stable.
        let stable = group.state == GroupState::Stable;
        let members = group
            .members
            .iter()
            .map(|m| {
                let metadata = m
                    .protocols
                    .iter()
                    .find(|(name, _)| *name == group.protocol)
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default();
                let member = DescribedGroupMember::default()
                    .with_member_id(str_bytes(&m.member_id))
                    .with_client_id(str_bytes(&m.client_id))
                    .with_client_host(str_bytes(&m.client_host))
                    .with_member_metadata(if stable { metadata } else { Default::default() })
                    .with_member_assignment(if stable {
                        m.assignment.clone()
                    } else {
                        Default::default()
                    });
                if version >= 4 {
                    member.with_group_instance_id(m.instance_id.as_ref().map(|i| str_bytes(i)))
                } else {
                    member
                }
            })
            .collect();
        groups.push(
            DescribedGroup::default()
                .with_group_id(id)
                .with_group_state(str_bytes(group.state.name()))
                .with_protocol_type(str_bytes(&group.protocol_type))
                .with_protocol_data(str_bytes(if stable { &group.protocol } else { "" }))
                .with_members(members),
        );
    }
    DescribeGroupsResponse::default().with_groups(groups)
}

pub async fn delete(broker: &Broker, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for id in request.groups_names {
        let code = match broker.groups.delete(id.as_str()).await {
            Ok(()) => 0,
            Err(e) => e.response_error().code(),
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(code),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
