//! Request handlers: one file per Kafka API. `dispatch` is the one match
//! from a decoded request to its handler; handlers translate between Kafka
//! messages and the broker, and return a response value (never touching the
//! socket).
//!
//! `dispatch` runs in the connection task, in request order, and returns a
//! future for the response. Produce does its appends before returning, so a
//! connection's batches reach the log in the order they were sent; waiting
//! for durability happens in the future, concurrently with later requests.

mod acls;
mod api_versions;
mod authorize;
mod client_quotas;
mod configs;
mod create_partitions;
mod create_topics;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_log_dirs;
mod describe_topic_partitions;
mod elect_leaders;
mod fetch;
mod group_admin;
mod groups;
mod init_producer_id;
mod list_offsets;
mod metadata;
mod offset_for_leader_epoch;
mod offsets;
mod produce;
mod reassignments;
mod sasl;
mod scram_credentials;
mod telemetry;
mod transactions;
mod txn_admin;

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use kafka_protocol::messages::{RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::protocol::Request;
use crate::session::Session;

pub use api_versions::api_versions_response;

/// A response to come; `None` for requests answered with silence (acks=0).
pub type Reply = BoxFuture<'static, Option<ResponseKind>>;

/// Answers a produce request that waited too long for the log to have
/// room with REQUEST_TIMED_OUT (retriable), appending nothing.
pub fn produce_timed_out(broker: &Arc<Broker>, request: Request) -> Option<Reply> {
    let version = request.version();
    match request.body {
        RequestKind::Produce(r) => Some(produce::refuse(
            broker,
            version,
            r,
            kafka_protocol::error::ResponseError::RequestTimedOut,
        )),
        _ => None,
    }
}

/// Whether the connection must finish `request` before it starts the
/// next one: a produce that checks the transactions it opens before it
/// appends, so its batches are not overtaken; a SASL request, whose
/// outcome decides what the connection may send next.
pub fn holds_order(broker: &Arc<Broker>, request: &Request) -> bool {
    match &request.body {
        RequestKind::Produce(r) => produce::holds_order(broker, request.version(), r),
        RequestKind::SaslHandshake(_) | RequestKind::SaslAuthenticate(_) => true,
        _ => false,
    }
}

/// Starts handling `request`, once the authorizer (if on) let it through,
/// without the parts it denied (see [`authorize`]); `None` if the API is
/// not served (the decoder only lets served APIs through, so this closes
/// the connection defensively) or has no authorization rule.
pub fn dispatch(broker: &Arc<Broker>, request: Request, session: &Session) -> Option<Reply> {
    if !broker.authorizer.enabled() {
        return handle(broker, request, session);
    }
    let Request {
        header,
        api_key,
        body,
    } = request;
    match authorize::check(broker, session, header.request_api_version, body) {
        authorize::Checked::Run(body, amend) => {
            let request = Request {
                header,
                api_key,
                body,
            };
            let reply = handle(broker, request, session)?;
            Some(match amend {
                None => reply,
                Some(amend) => reply.map(|response| response.map(amend)).boxed(),
            })
        }
        authorize::Checked::Answer(response) => Some(ready(response)),
        authorize::Checked::Refuse => None,
    }
}

/// Runs `request`'s handler (after authorization).
fn handle(broker: &Arc<Broker>, request: Request, session: &Session) -> Option<Reply> {
    let v = request.version();
    let b = broker.clone();
    let (peer, listener) = (session.peer, session.listener.clone());
    let client_id = request
        .header
        .client_id
        .as_deref()
        .unwrap_or_default()
        .to_string();
    let reply = match request.body {
        RequestKind::ApiVersions(_) => ready(ResponseKind::ApiVersions(api_versions_response())),
        RequestKind::Produce(r) => produce::handle(broker, v, r),
        RequestKind::Fetch(r) => {
            later(async move { ResponseKind::Fetch(fetch::handle(&b, v, r).await) })
        }
        RequestKind::Metadata(r) => {
            later(
                async move { ResponseKind::Metadata(metadata::handle(&b, v, r, &listener).await) },
            )
        }
        RequestKind::ListOffsets(r) => {
            later(async move { ResponseKind::ListOffsets(list_offsets::handle(&b, v, r).await) })
        }
        RequestKind::OffsetForLeaderEpoch(r) => ready(ResponseKind::OffsetForLeaderEpoch(
            offset_for_leader_epoch::handle(broker, r),
        )),
        RequestKind::CreateTopics(r) => {
            later(async move { ResponseKind::CreateTopics(create_topics::handle(&b, v, r).await) })
        }
        RequestKind::DeleteRecords(r) => {
            later(async move { ResponseKind::DeleteRecords(delete_records::handle(&b, r).await) })
        }
        RequestKind::DeleteTopics(r) => {
            later(async move { ResponseKind::DeleteTopics(delete_topics::handle(&b, v, r).await) })
        }
        RequestKind::CreatePartitions(r) => {
            later(
                async move { ResponseKind::CreatePartitions(create_partitions::handle(&b, r).await) },
            )
        }
        RequestKind::DescribeConfigs(r) => ready(ResponseKind::DescribeConfigs(configs::describe(
            broker, v, r,
        ))),
        RequestKind::AlterConfigs(r) => {
            later(async move { ResponseKind::AlterConfigs(configs::alter_legacy(&b, r).await) })
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            later(async move { ResponseKind::IncrementalAlterConfigs(configs::alter(&b, r).await) })
        }
        RequestKind::DescribeCluster(r) => ready(ResponseKind::DescribeCluster(
            describe_cluster::handle(broker, r, &session.listener),
        )),
        RequestKind::DescribeTopicPartitions(r) => ready(ResponseKind::DescribeTopicPartitions(
            describe_topic_partitions::handle(broker, r),
        )),
        RequestKind::AlterPartitionReassignments(r) => later(async move {
            ResponseKind::AlterPartitionReassignments(reassignments::alter(&b, r).await)
        }),
        RequestKind::ListPartitionReassignments(_) => ready(
            ResponseKind::ListPartitionReassignments(reassignments::list()),
        ),
        RequestKind::ElectLeaders(r) => {
            ready(ResponseKind::ElectLeaders(elect_leaders::handle(broker, r)))
        }
        RequestKind::GetTelemetrySubscriptions(r) => ready(
            ResponseKind::GetTelemetrySubscriptions(telemetry::handle(r)),
        ),
        RequestKind::DescribeLogDirs(r) => ready(ResponseKind::DescribeLogDirs(
            describe_log_dirs::handle(broker, r),
        )),
        RequestKind::InitProducerId(r) => {
            later(
                async move { ResponseKind::InitProducerId(init_producer_id::handle(&b, v, r).await) },
            )
        }
        RequestKind::FindCoordinator(r) => ready(ResponseKind::FindCoordinator(
            groups::find_coordinator(broker, v, r, &session.listener),
        )),
        RequestKind::JoinGroup(r) => {
            later(
                async move { ResponseKind::JoinGroup(groups::join(&b, v, &client_id, peer, r).await) },
            )
        }
        RequestKind::SyncGroup(r) => {
            later(async move { ResponseKind::SyncGroup(groups::sync(&b, v, r).await) })
        }
        RequestKind::Heartbeat(r) => {
            later(async move { ResponseKind::Heartbeat(groups::heartbeat(&b, r).await) })
        }
        RequestKind::LeaveGroup(r) => {
            later(async move { ResponseKind::LeaveGroup(groups::leave(&b, v, r).await) })
        }
        RequestKind::OffsetCommit(r) => {
            later(async move { ResponseKind::OffsetCommit(offsets::commit(&b, r).await) })
        }
        RequestKind::OffsetFetch(r) => {
            later(async move { ResponseKind::OffsetFetch(offsets::fetch(&b, v, r).await) })
        }
        RequestKind::OffsetDelete(r) => {
            later(async move { ResponseKind::OffsetDelete(offsets::delete(&b, r).await) })
        }
        RequestKind::ListGroups(r) => {
            later(async move { ResponseKind::ListGroups(group_admin::list(&b, v, r).await) })
        }
        RequestKind::DescribeGroups(r) => {
            later(
                async move { ResponseKind::DescribeGroups(group_admin::describe(&b, v, r).await) },
            )
        }
        RequestKind::AddPartitionsToTxn(r) => later(async move {
            ResponseKind::AddPartitionsToTxn(transactions::add_partitions(&b, v, r).await)
        }),
        RequestKind::AddOffsetsToTxn(r) => {
            later(
                async move { ResponseKind::AddOffsetsToTxn(transactions::add_offsets(&b, r).await) },
            )
        }
        RequestKind::EndTxn(r) => {
            later(async move { ResponseKind::EndTxn(transactions::end(&b, r).await) })
        }
        RequestKind::TxnOffsetCommit(r) => later(async move {
            ResponseKind::TxnOffsetCommit(transactions::commit_offsets(&b, r).await)
        }),
        RequestKind::WriteTxnMarkers(r) => {
            later(
                async move { ResponseKind::WriteTxnMarkers(transactions::write_markers(&b, r).await) },
            )
        }
        RequestKind::ListTransactions(r) => {
            later(async move { ResponseKind::ListTransactions(txn_admin::list(&b, v, r).await) })
        }
        RequestKind::DescribeTransactions(r) => {
            later(
                async move { ResponseKind::DescribeTransactions(txn_admin::describe(&b, r).await) },
            )
        }
        RequestKind::DescribeProducers(r) => ready(ResponseKind::DescribeProducers(
            txn_admin::describe_producers(broker, r),
        )),
        RequestKind::DeleteGroups(r) => {
            later(async move { ResponseKind::DeleteGroups(group_admin::delete(&b, r).await) })
        }
        RequestKind::DescribeClientQuotas(r) => later(async move {
            ResponseKind::DescribeClientQuotas(client_quotas::describe(&b, r).await)
        }),
        RequestKind::AlterClientQuotas(r) => {
            later(async move { ResponseKind::AlterClientQuotas(client_quotas::alter(&b, r).await) })
        }
        RequestKind::CreateAcls(r) => {
            later(async move { ResponseKind::CreateAcls(acls::create(&b, r).await) })
        }
        RequestKind::DescribeAcls(r) => {
            later(async move { ResponseKind::DescribeAcls(acls::describe(&b, r).await) })
        }
        RequestKind::DeleteAcls(r) => {
            later(async move { ResponseKind::DeleteAcls(acls::delete(&b, r).await) })
        }
        RequestKind::SaslHandshake(r) => {
            ready(ResponseKind::SaslHandshake(sasl::handshake(session, r)))
        }
        RequestKind::SaslAuthenticate(r) => {
            let session = session.clone();
            later(async move {
                ResponseKind::SaslAuthenticate(sasl::authenticate(&b, &session, r).await)
            })
        }
        RequestKind::DescribeUserScramCredentials(r) => later(async move {
            ResponseKind::DescribeUserScramCredentials(scram_credentials::describe(&b, r).await)
        }),
        RequestKind::AlterUserScramCredentials(r) => later(async move {
            ResponseKind::AlterUserScramCredentials(scram_credentials::alter(&b, r).await)
        }),
        other => {
            tracing::warn!(request = ?std::mem::discriminant(&other), "request for an API that is not served");
            return None;
        }
    };
    Some(reply)
}

/// A response already computed.
fn ready(response: ResponseKind) -> Reply {
    futures::future::ready(Some(response)).boxed()
}

/// A response computed by `future`.
fn later(future: impl Future<Output = ResponseKind> + Send + 'static) -> Reply {
    future.map(Some).boxed()
}

/// A `StrBytes` from a string.
pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A `TopicName` from a string.
pub(crate) fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}
