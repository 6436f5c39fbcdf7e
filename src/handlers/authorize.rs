//! The one place requests are authorized: before a handler runs, every
//! topic, group, transactional id and cluster action a request names is
//! checked against the authorizer for the session's principal, as Kafka
//! checks each API. Denied parts are taken out of the request and answered
//! with Kafka's error (TOPIC_, GROUP_, TRANSACTIONAL_ID_ or
//! CLUSTER_AUTHORIZATION_FAILED) next to the handler's answer for the
//! rest; a request denied as a whole is answered without running it.
//! Metadata, ListGroups, ListTransactions and OffsetFetch of all topics
//! leave out what the principal may not describe.
//!
//! Every served API has a rule here; one without a rule is refused (a
//! test checks every served API is covered).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::acl::{CLUSTER_NAME, Operation, ResourceType};
use crate::broker::Broker;
use crate::security::Principal;
use crate::security::authorizer::Authorizer;
use crate::session::Session;

/// Completes a handler's response with the answers for what was denied.
pub type Amend = Box<dyn FnOnce(ResponseKind) -> ResponseKind + Send>;

/// A request after authorization.
pub enum Checked {
    /// Run the request (without what was denied), then amend its response.
    Run(RequestKind, Option<Amend>),
    /// Denied as a whole: this is the answer.
    Answer(ResponseKind),
    /// No rule covers the API: refused.
    Refuse,
}

use ResponseError::{
    ClusterAuthorizationFailed as CLUSTER_DENIED, GroupAuthorizationFailed as GROUP_DENIED,
    TopicAuthorizationFailed as TOPIC_DENIED, TransactionalIdAuthorizationFailed as TXN_DENIED,
};

/// The principal of a request and what it may do.
struct Guard<'a> {
    authorizer: &'a Authorizer,
    broker: &'a Broker,
    /// `User:alice`.
    principal: String,
    host: String,
}

impl Guard<'_> {
    fn allows(&self, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        self.authorizer
            .allows(&self.principal, &self.host, operation, resource_type, name)
    }

    fn topic(&self, operation: Operation, name: &str) -> bool {
        self.allows(operation, ResourceType::Topic, name)
    }

    /// A topic named by id: checked by its name; an unknown id is left
    /// for the handler to answer.
    fn topic_id(&self, operation: Operation, id: uuid::Uuid) -> bool {
        self.broker
            .topic_by_id(id)
            .is_none_or(|t| self.topic(operation, &t.name))
    }

    fn group(&self, operation: Operation, name: &str) -> bool {
        self.allows(operation, ResourceType::Group, name)
    }

    fn txn(&self, operation: Operation, id: &str) -> bool {
        self.allows(operation, ResourceType::TransactionalId, id)
    }

    fn cluster(&self, operation: Operation) -> bool {
        self.allows(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Creating topic `name`: Create on the cluster or on the topic.
    fn create_topic(&self, name: &str) -> bool {
        self.cluster(Operation::Create) || self.topic(Operation::Create, name)
    }

    /// The names of the topics the principal may describe.
    fn describable_topics(&self) -> std::collections::HashSet<String> {
        self.broker
            .topics()
            .iter()
            .filter(|t| self.topic(Operation::Describe, &t.name))
            .map(|t| t.name.clone())
            .collect()
    }

    /// Altering the configs of a topic (resource type 2: AlterConfigs on
    /// it) or of the broker (AlterConfigs on the cluster).
    fn alters_configs(&self, resource_type: i8, name: &str) -> bool {
        match resource_type {
            2 => self.topic(Operation::AlterConfigs, name),
            _ => self.cluster(Operation::AlterConfigs),
        }
    }
}

/// The answer to a config change refused by [`Guard::alters_configs`].
fn config_denied(resource_type: i8) -> ResponseError {
    if resource_type == 2 {
        TOPIC_DENIED
    } else {
        CLUSTER_DENIED
    }
}

/// Splits `items` into those `allowed` keeps and the others.
fn split<T>(items: Vec<T>, allowed: impl FnMut(&T) -> bool) -> (Vec<T>, Vec<T>) {
    items.into_iter().partition(allowed)
}

/// Runs `request` unchanged.
fn run(request: RequestKind) -> Checked {
    Checked::Run(request, None)
}

/// Runs `request`, then lets `amend` change its response of kind
/// `unwrap` (a no-op on any other kind).
fn run_then<R: 'static>(
    request: RequestKind,
    unwrap: fn(&mut ResponseKind) -> Option<&mut R>,
    amend: impl FnOnce(&mut R) + Send + 'static,
) -> Checked {
    let amend: Amend = Box::new(move |mut response| {
        if let Some(r) = unwrap(&mut response) {
            amend(r);
        }
        response
    });
    Checked::Run(request, Some(amend))
}

macro_rules! kind {
    ($variant:ident) => {
        |r: &mut ResponseKind| match r {
            ResponseKind::$variant(r) => Some(r),
            _ => None,
        }
    };
}

/// Takes the items of `$request.$field` that `$allowed` denies out of
/// the request, runs the rest, and answers each denied one with
/// `$answer` among the response's `$answers`.
macro_rules! narrow {
    ($request:ident, $variant:ident, $field:ident, $answers:ident, $allowed:expr, $answer:expr) => {{
        let (kept, denied) = split(std::mem::take(&mut $request.$field), $allowed);
        $request.$field = kept;
        let denied: Vec<_> = denied.into_iter().map($answer).collect();
        run_then(
            RequestKind::$variant($request),
            kind!($variant),
            |response| response.$answers.extend(denied),
        )
    }};
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Authorizes `request` (of API `version`) for `session`'s principal.
pub fn check(broker: &Broker, session: &Session, version: i16, request: RequestKind) -> Checked {
    let guard = Guard {
        authorizer: &broker.authorizer,
        broker,
        principal: session
            .principal()
            .unwrap_or_else(Principal::anonymous)
            .to_string(),
        host: session.peer.ip().to_canonical().to_string(),
    };
    let g = &guard;
    use Operation::*;
    match request {
        RequestKind::ApiVersions(_)
        | RequestKind::SaslHandshake(_)
        | RequestKind::SaslAuthenticate(_)
        | RequestKind::DescribeCluster(_)
        | RequestKind::GetTelemetrySubscriptions(_) => run(request),

        RequestKind::DescribeTopicPartitions(mut r) => {
            if r.topics.is_empty() {
                // Every topic: only those the principal may describe.
                let visible = g.describable_topics();
                return run_then(
                    RequestKind::DescribeTopicPartitions(r),
                    kind!(DescribeTopicPartitions),
                    move |d| {
                        d.topics.retain(|t| {
                            t.name
                                .as_ref()
                                .is_some_and(|n| visible.contains(n.as_str()))
                        })
                    },
                );
            }
            narrow!(
                r,
                DescribeTopicPartitions,
                topics,
                topics,
                |t| g.topic(Describe, &t.name),
                |t| {
                    describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(t.name))
                    .with_error_code(TOPIC_DENIED.code())
                }
            )
        }

        RequestKind::AlterPartitionReassignments(r) => {
            if g.cluster(Alter) {
                return run(RequestKind::AlterPartitionReassignments(r));
            }
            Checked::Answer(ResponseKind::AlterPartitionReassignments(
                AlterPartitionReassignmentsResponse::default()
                    .with_error_code(CLUSTER_DENIED.code()),
            ))
        }

        RequestKind::ListPartitionReassignments(r) => {
            if g.cluster(Describe) {
                return run(RequestKind::ListPartitionReassignments(r));
            }
            Checked::Answer(ResponseKind::ListPartitionReassignments(
                ListPartitionReassignmentsResponse::default()
                    .with_error_code(CLUSTER_DENIED.code()),
            ))
        }

        RequestKind::ElectLeaders(r) => {
            if g.cluster(Alter) {
                return run(RequestKind::ElectLeaders(r));
            }
            Checked::Answer(ResponseKind::ElectLeaders(
                ElectLeadersResponse::default().with_error_code(CLUSTER_DENIED.code()),
            ))
        }

        RequestKind::Produce(mut r) => {
            let txn_allowed = r
                .transactional_id
                .as_ref()
                .is_none_or(|id| g.txn(Write, id));
            let (kept, denied) = split(std::mem::take(&mut r.topic_data), |t| {
                txn_allowed
                    && if version >= 13 {
                        g.topic_id(Write, t.topic_id)
                    } else {
                        g.topic(Write, &t.name)
                    }
            });
            r.topic_data = kept;
            let error = if txn_allowed {
                TOPIC_DENIED
            } else {
                TXN_DENIED
            };
            let denied: Vec<_> = denied
                .into_iter()
                .map(|t| {
                    produce_response::TopicProduceResponse::default()
                        .with_name(t.name)
                        .with_topic_id(t.topic_id)
                        .with_partition_responses(
                            t.partition_data
                                .iter()
                                .map(|p| {
                                    produce_response::PartitionProduceResponse::default()
                                        .with_index(p.index)
                                        .with_error_code(error.code())
                                        .with_base_offset(-1)
                                })
                                .collect(),
                        )
                })
                .collect();
            run_then(RequestKind::Produce(r), kind!(Produce), |p| {
                p.responses.extend(denied)
            })
        }

        RequestKind::Fetch(mut r) => {
            narrow!(
                r,
                Fetch,
                topics,
                responses,
                |t| {
                    if version >= 13 {
                        g.topic_id(Read, t.topic_id)
                    } else {
                        g.topic(Read, &t.topic)
                    }
                },
                |t| {
                    fetch_response::FetchableTopicResponse::default()
                        .with_topic(t.topic)
                        .with_topic_id(t.topic_id)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    fetch_response::PartitionData::default()
                                        .with_partition_index(p.partition)
                                        .with_error_code(TOPIC_DENIED.code())
                                        .with_high_watermark(-1)
                                        .with_last_stable_offset(-1)
                                        .with_log_start_offset(-1)
                                })
                                .collect(),
                        )
                }
            )
        }

        RequestKind::Metadata(mut r) => {
            // Every topic (no list; an empty one in v0): only those the
            // principal may describe.
            let all = r
                .topics
                .as_ref()
                .is_none_or(|t| version == 0 && t.is_empty());
            if all {
                let visible = g.describable_topics();
                return run_then(RequestKind::Metadata(r), kind!(Metadata), move |m| {
                    m.topics.retain(|t| {
                        t.name
                            .as_ref()
                            .is_some_and(|n| visible.contains(n.as_str()))
                    })
                });
            }
            let topics = r.topics.take().unwrap_or_default();
            let name_of = |t: &metadata_request::MetadataRequestTopic| -> Option<String> {
                match &t.name {
                    Some(name) => Some(name.to_string()),
                    None => broker.topic_by_id(t.topic_id).map(|t| t.name.clone()),
                }
            };
            // Asking for a topic that does not exist may create it (always
            // below v4): that needs Create, as in Kafka.
            let creates =
                broker.config.topics.auto_create && (version < 4 || r.allow_auto_topic_creation);
            let (kept, denied) = split(topics, |t| {
                name_of(t).is_none_or(|n| {
                    g.topic(Describe, &n)
                        && (!creates || broker.topic(&n).is_some() || g.create_topic(&n))
                })
            });
            r.topics = Some(kept);
            let denied: Vec<_> = denied
                .into_iter()
                .map(|t| {
                    metadata_response::MetadataResponseTopic::default()
                        .with_name(t.name)
                        .with_topic_id(t.topic_id)
                        .with_error_code(TOPIC_DENIED.code())
                })
                .collect();
            run_then(RequestKind::Metadata(r), kind!(Metadata), |m| {
                m.topics.extend(denied)
            })
        }

        RequestKind::ListOffsets(mut r) => {
            narrow!(
                r,
                ListOffsets,
                topics,
                topics,
                |t| g.topic(Describe, &t.name),
                |t| {
                    list_offsets_response::ListOffsetsTopicResponse::default()
                        .with_name(t.name)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    list_offsets_response::ListOffsetsPartitionResponse::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(TOPIC_DENIED.code())
                                        .with_timestamp(-1)
                                        .with_offset(-1)
                                })
                                .collect(),
                        )
                }
            )
        }

        RequestKind::OffsetForLeaderEpoch(mut r) => {
            narrow!(
                r,
                OffsetForLeaderEpoch,
                topics,
                topics,
                |t| g.topic(Describe, &t.topic),
                |t| {
                    offset_for_leader_epoch_response::OffsetForLeaderTopicResult::default()
                        .with_topic(t.topic)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    offset_for_leader_epoch_response::EpochEndOffset::default()
                                        .with_partition(p.partition)
                                        .with_error_code(TOPIC_DENIED.code())
                                        .with_leader_epoch(-1)
                                        .with_end_offset(-1)
                                })
                                .collect(),
                        )
                }
            )
        }

        RequestKind::CreateTopics(mut r) => {
            narrow!(
                r,
                CreateTopics,
                topics,
                topics,
                |t| g.create_topic(&t.name),
                |t| {
                    create_topics_response::CreatableTopicResult::default()
                        .with_name(t.name)
                        .with_error_code(TOPIC_DENIED.code())
                        .with_num_partitions(-1)
                        .with_replication_factor(-1)
                }
            )
        }

        RequestKind::DeleteTopics(mut r) => {
            let (names, denied_names) =
                split(std::mem::take(&mut r.topic_names), |n| g.topic(Delete, n));
            r.topic_names = names;
            let (kept, denied) = split(std::mem::take(&mut r.topics), |t| match &t.name {
                Some(name) => g.topic(Delete, name),
                None => g.topic_id(Delete, t.topic_id),
            });
            r.topics = kept;
            let denied: Vec<_> = denied_names
                .into_iter()
                .map(|n| (Some(n), uuid::Uuid::nil()))
                .chain(denied.into_iter().map(|t| (t.name, t.topic_id)))
                .map(|(name, id)| {
                    delete_topics_response::DeletableTopicResult::default()
                        .with_name(name)
                        .with_topic_id(id)
                        .with_error_code(TOPIC_DENIED.code())
                })
                .collect();
            run_then(RequestKind::DeleteTopics(r), kind!(DeleteTopics), |d| {
                d.responses.extend(denied)
            })
        }

        RequestKind::DeleteRecords(mut r) => {
            narrow!(
                r,
                DeleteRecords,
                topics,
                topics,
                |t| g.topic(Delete, &t.name),
                |t| {
                    delete_records_response::DeleteRecordsTopicResult::default()
                        .with_name(t.name)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    delete_records_response::DeleteRecordsPartitionResult::default()
                                        .with_partition_index(p.partition_index)
                                        .with_low_watermark(-1)
                                        .with_error_code(TOPIC_DENIED.code())
                                })
                                .collect(),
                        )
                }
            )
        }

        RequestKind::CreatePartitions(mut r) => {
            narrow!(
                r,
                CreatePartitions,
                topics,
                results,
                |t| g.topic(Alter, &t.name),
                |t| {
                    create_partitions_response::CreatePartitionsTopicResult::default()
                        .with_name(t.name)
                        .with_error_code(TOPIC_DENIED.code())
                }
            )
        }

        RequestKind::DescribeConfigs(mut r) => {
            let allowed = |resource_type: i8, name: &str, op| match resource_type {
                2 => g.topic(op, name),
                _ => g.cluster(op),
            };
            let (kept, denied) = split(std::mem::take(&mut r.resources), |c| {
                allowed(c.resource_type, &c.resource_name, DescribeConfigs)
            });
            r.resources = kept;
            let denied: Vec<_> = denied
                .into_iter()
                .map(|c| {
                    let error = if c.resource_type == 2 {
                        TOPIC_DENIED
                    } else {
                        CLUSTER_DENIED
                    };
                    describe_configs_response::DescribeConfigsResult::default()
                        .with_resource_type(c.resource_type)
                        .with_resource_name(c.resource_name)
                        .with_error_code(error.code())
                })
                .collect();
            run_then(
                RequestKind::DescribeConfigs(r),
                kind!(DescribeConfigs),
                |d| d.results.extend(denied),
            )
        }

        RequestKind::IncrementalAlterConfigs(mut r) => narrow!(
            r,
            IncrementalAlterConfigs,
            resources,
            responses,
            |c| g.alters_configs(c.resource_type, &c.resource_name),
            |c| incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(c.resource_type)
                .with_resource_name(c.resource_name)
                .with_error_code(config_denied(c.resource_type).code())
        ),

        RequestKind::AlterConfigs(mut r) => narrow!(
            r,
            AlterConfigs,
            resources,
            responses,
            |c| g.alters_configs(c.resource_type, &c.resource_name),
            |c| alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(c.resource_type)
                .with_resource_name(c.resource_name)
                .with_error_code(config_denied(c.resource_type).code())
        ),

        RequestKind::InitProducerId(r) => {
            let allowed = match &r.transactional_id {
                Some(id) => g.txn(Write, id),
                // KIP-679: Write on any topic implies IdempotentWrite.
                None => {
                    g.cluster(IdempotentWrite)
                        || broker.authorizer.allows_any(
                            &g.principal,
                            &g.host,
                            Write,
                            ResourceType::Topic,
                        )
                }
            };
            if allowed {
                return run(RequestKind::InitProducerId(r));
            }
            let error = if r.transactional_id.is_some() {
                TXN_DENIED
            } else {
                CLUSTER_DENIED
            };
            Checked::Answer(ResponseKind::InitProducerId(
                InitProducerIdResponse::default()
                    .with_error_code(error.code())
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            ))
        }

        RequestKind::FindCoordinator(mut r) => {
            let allowed = |key: &str| match r.key_type {
                1 => g.txn(Describe, key),
                _ => g.group(Describe, key),
            };
            let error = if r.key_type == 1 {
                TXN_DENIED
            } else {
                GROUP_DENIED
            };
            if version < 4 {
                if allowed(&r.key) {
                    return run(RequestKind::FindCoordinator(r));
                }
                return Checked::Answer(ResponseKind::FindCoordinator(
                    FindCoordinatorResponse::default()
                        .with_error_code(error.code())
                        .with_node_id(BrokerId(-1))
                        .with_port(-1),
                ));
            }
            narrow!(
                r,
                FindCoordinator,
                coordinator_keys,
                coordinators,
                |k| allowed(k),
                |key| {
                    find_coordinator_response::Coordinator::default()
                        .with_key(key)
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(error.code())
                }
            )
        }

        RequestKind::JoinGroup(r) => {
            if g.group(Read, &r.group_id) {
                return run(RequestKind::JoinGroup(r));
            }
            Checked::Answer(ResponseKind::JoinGroup(
                JoinGroupResponse::default()
                    .with_error_code(GROUP_DENIED.code())
                    .with_generation_id(-1),
            ))
        }
        RequestKind::SyncGroup(r) => {
            if g.group(Read, &r.group_id) {
                return run(RequestKind::SyncGroup(r));
            }
            Checked::Answer(ResponseKind::SyncGroup(
                SyncGroupResponse::default().with_error_code(GROUP_DENIED.code()),
            ))
        }
        RequestKind::Heartbeat(r) => {
            if g.group(Read, &r.group_id) {
                return run(RequestKind::Heartbeat(r));
            }
            Checked::Answer(ResponseKind::Heartbeat(
                HeartbeatResponse::default().with_error_code(GROUP_DENIED.code()),
            ))
        }
        RequestKind::LeaveGroup(r) => {
            if g.group(Read, &r.group_id) {
                return run(RequestKind::LeaveGroup(r));
            }
            Checked::Answer(ResponseKind::LeaveGroup(
                LeaveGroupResponse::default().with_error_code(GROUP_DENIED.code()),
            ))
        }

        RequestKind::OffsetCommit(mut r) => {
            let group_allowed = g.group(Read, &r.group_id);
            let (kept, denied) = split(std::mem::take(&mut r.topics), |t| {
                group_allowed && g.topic(Read, &t.name)
            });
            r.topics = kept;
            let error = if group_allowed {
                TOPIC_DENIED
            } else {
                GROUP_DENIED
            };
            let denied: Vec<_> = denied
                .into_iter()
                .map(|t| {
                    offset_commit_response::OffsetCommitResponseTopic::default()
                        .with_name(t.name)
                        .with_topic_id(t.topic_id)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    offset_commit_response::OffsetCommitResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(error.code())
                                })
                                .collect(),
                        )
                })
                .collect();
            if !group_allowed {
                return Checked::Answer(ResponseKind::OffsetCommit(
                    OffsetCommitResponse::default().with_topics(denied),
                ));
            }
            run_then(RequestKind::OffsetCommit(r), kind!(OffsetCommit), |o| {
                o.topics.extend(denied)
            })
        }

        RequestKind::OffsetFetch(r) => offset_fetch(g, version, r),

        RequestKind::OffsetDelete(mut r) => {
            if !g.group(Delete, &r.group_id) {
                return Checked::Answer(ResponseKind::OffsetDelete(
                    OffsetDeleteResponse::default().with_error_code(GROUP_DENIED.code()),
                ));
            }
            narrow!(
                r,
                OffsetDelete,
                topics,
                topics,
                |t| g.topic(Read, &t.name),
                |t| {
                    offset_delete_response::OffsetDeleteResponseTopic::default()
                        .with_name(t.name)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    offset_delete_response::OffsetDeleteResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(TOPIC_DENIED.code())
                                })
                                .collect(),
                        )
                }
            )
        }

        RequestKind::ListGroups(r) => {
            if g.cluster(Describe) {
                return run(RequestKind::ListGroups(r));
            }
            let principal = g.principal.clone();
            let host = g.host.clone();
            let authorizer = broker.authorizer.clone();
            run_then(RequestKind::ListGroups(r), kind!(ListGroups), move |l| {
                l.groups.retain(|group| {
                    authorizer.allows(
                        &principal,
                        &host,
                        Describe,
                        ResourceType::Group,
                        &group.group_id,
                    )
                })
            })
        }

        RequestKind::DescribeGroups(mut r) => {
            narrow!(
                r,
                DescribeGroups,
                groups,
                groups,
                |id| g.group(Describe, id),
                |id| {
                    describe_groups_response::DescribedGroup::default()
                        .with_group_id(id)
                        .with_error_code(GROUP_DENIED.code())
                }
            )
        }

        RequestKind::DeleteGroups(mut r) => {
            narrow!(
                r,
                DeleteGroups,
                groups_names,
                results,
                |id| { g.group(Delete, id) },
                |id| {
                    delete_groups_response::DeletableGroupResult::default()
                        .with_group_id(id)
                        .with_error_code(GROUP_DENIED.code())
                }
            )
        }

        RequestKind::AddPartitionsToTxn(r) => {
            if version >= 4 {
                // Batched, sent between brokers.
                if g.cluster(ClusterAction) {
                    return run(RequestKind::AddPartitionsToTxn(r));
                }
                return Checked::Answer(ResponseKind::AddPartitionsToTxn(
                    AddPartitionsToTxnResponse::default().with_error_code(CLUSTER_DENIED.code()),
                ));
            }
            let txn_allowed = g.txn(Write, &r.v3_and_below_transactional_id);
            let denied_topics: Vec<&str> = r
                .v3_and_below_topics
                .iter()
                .filter(|t| !g.topic(Write, &t.name))
                .map(|t| t.name.as_str())
                .collect();
            if txn_allowed && denied_topics.is_empty() {
                return run(RequestKind::AddPartitionsToTxn(r));
            }
            // As Kafka: nothing is added; the denied partitions say why,
            // the others that they were not attempted.
            let results = r
                .v3_and_below_topics
                .iter()
                .map(|t| {
                    let error = if !txn_allowed {
                        TXN_DENIED
                    } else if denied_topics.contains(&t.name.as_str()) {
                        TOPIC_DENIED
                    } else {
                        ResponseError::OperationNotAttempted
                    };
                    add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default()
                        .with_name(t.name.clone())
                        .with_results_by_partition(
                            t.partitions
                                .iter()
                                .map(|&p| {
                                    add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default()
                                        .with_partition_index(p)
                                        .with_partition_error_code(error.code())
                                })
                                .collect(),
                        )
                })
                .collect();
            Checked::Answer(ResponseKind::AddPartitionsToTxn(
                AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results),
            ))
        }

        RequestKind::AddOffsetsToTxn(r) => {
            let error = if !g.txn(Write, &r.transactional_id) {
                TXN_DENIED
            } else if !g.group(Read, &r.group_id) {
                GROUP_DENIED
            } else {
                return run(RequestKind::AddOffsetsToTxn(r));
            };
            Checked::Answer(ResponseKind::AddOffsetsToTxn(
                AddOffsetsToTxnResponse::default().with_error_code(error.code()),
            ))
        }

        RequestKind::EndTxn(r) => {
            if g.txn(Write, &r.transactional_id) {
                return run(RequestKind::EndTxn(r));
            }
            Checked::Answer(ResponseKind::EndTxn(
                EndTxnResponse::default()
                    .with_error_code(TXN_DENIED.code())
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            ))
        }

        RequestKind::TxnOffsetCommit(mut r) => {
            let whole = if !g.txn(Write, &r.transactional_id) {
                Some(TXN_DENIED)
            } else if !g.group(Read, &r.group_id) {
                Some(GROUP_DENIED)
            } else {
                None
            };
            let (kept, denied) = split(std::mem::take(&mut r.topics), |t| {
                whole.is_none() && g.topic(Read, &t.name)
            });
            r.topics = kept;
            let error = whole.unwrap_or(TOPIC_DENIED);
            let denied: Vec<_> = denied
                .into_iter()
                .map(|t| {
                    txn_offset_commit_response::TxnOffsetCommitResponseTopic::default()
                        .with_name(t.name)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    txn_offset_commit_response::TxnOffsetCommitResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(error.code())
                                })
                                .collect(),
                        )
                })
                .collect();
            if whole.is_some() {
                return Checked::Answer(ResponseKind::TxnOffsetCommit(
                    TxnOffsetCommitResponse::default().with_topics(denied),
                ));
            }
            run_then(
                RequestKind::TxnOffsetCommit(r),
                kind!(TxnOffsetCommit),
                |t| t.topics.extend(denied),
            )
        }

        RequestKind::WriteTxnMarkers(r) => {
            if g.cluster(ClusterAction) {
                return run(RequestKind::WriteTxnMarkers(r));
            }
            let markers = r
                .markers
                .iter()
                .map(|m| {
                    write_txn_markers_response::WritableTxnMarkerResult::default()
                        .with_producer_id(m.producer_id)
                        .with_topics(
                            m.topics
                                .iter()
                                .map(|t| {
                                    write_txn_markers_response::WritableTxnMarkerTopicResult::default()
                                        .with_name(t.name.clone())
                                        .with_partitions(
                                            t.partition_indexes
                                                .iter()
                                                .map(|&p| {
                                                    write_txn_markers_response::WritableTxnMarkerPartitionResult::default()
                                                        .with_partition_index(p)
                                                        .with_error_code(CLUSTER_DENIED.code())
                                                })
                                                .collect(),
                                        )
                                })
                                .collect(),
                        )
                })
                .collect();
            Checked::Answer(ResponseKind::WriteTxnMarkers(
                WriteTxnMarkersResponse::default().with_markers(markers),
            ))
        }

        RequestKind::ListTransactions(r) => {
            let principal = g.principal.clone();
            let host = g.host.clone();
            let authorizer = broker.authorizer.clone();
            run_then(
                RequestKind::ListTransactions(r),
                kind!(ListTransactions),
                move |l| {
                    l.transaction_states.retain(|t| {
                        authorizer.allows(
                            &principal,
                            &host,
                            Describe,
                            ResourceType::TransactionalId,
                            &t.transactional_id,
                        )
                    })
                },
            )
        }

        RequestKind::DescribeTransactions(mut r) => {
            narrow!(
                r,
                DescribeTransactions,
                transactional_ids,
                transaction_states,
                |id| { g.txn(Describe, id) },
                |id| {
                    describe_transactions_response::TransactionState::default()
                        .with_transactional_id(id)
                        .with_error_code(TXN_DENIED.code())
                }
            )
        }

        RequestKind::DescribeProducers(mut r) => {
            narrow!(
                r,
                DescribeProducers,
                topics,
                topics,
                |t| g.topic(Read, &t.name),
                |t| {
                    describe_producers_response::TopicResponse::default()
                        .with_name(t.name)
                        .with_partitions(
                            t.partition_indexes
                                .iter()
                                .map(|&p| {
                                    describe_producers_response::PartitionResponse::default()
                                        .with_partition_index(p)
                                        .with_error_code(TOPIC_DENIED.code())
                                })
                                .collect(),
                        )
                }
            )
        }

        RequestKind::DescribeUserScramCredentials(r) => {
            if g.cluster(Describe) {
                return run(RequestKind::DescribeUserScramCredentials(r));
            }
            Checked::Answer(ResponseKind::DescribeUserScramCredentials(
                DescribeUserScramCredentialsResponse::default()
                    .with_error_code(CLUSTER_DENIED.code()),
            ))
        }

        RequestKind::AlterUserScramCredentials(r) => {
            if g.cluster(Alter) {
                return run(RequestKind::AlterUserScramCredentials(r));
            }
            let users: std::collections::BTreeSet<StrBytes> = r
                .deletions
                .iter()
                .map(|d| d.name.clone())
                .chain(r.upsertions.iter().map(|u| u.name.clone()))
                .collect();
            let results = users
                .into_iter()
                .map(|user| {
                    alter_user_scram_credentials_response::AlterUserScramCredentialsResult::default(
                    )
                    .with_user(user)
                    .with_error_code(CLUSTER_DENIED.code())
                })
                .collect();
            Checked::Answer(ResponseKind::AlterUserScramCredentials(
                AlterUserScramCredentialsResponse::default().with_results(results),
            ))
        }

        RequestKind::DescribeLogDirs(r) => {
            if g.cluster(Describe) {
                return run(RequestKind::DescribeLogDirs(r));
            }
            Checked::Answer(ResponseKind::DescribeLogDirs(
                DescribeLogDirsResponse::default().with_error_code(CLUSTER_DENIED.code()),
            ))
        }

        RequestKind::DescribeClientQuotas(r) => {
            if g.cluster(DescribeConfigs) {
                return run(RequestKind::DescribeClientQuotas(r));
            }
            Checked::Answer(ResponseKind::DescribeClientQuotas(
                DescribeClientQuotasResponse::default().with_error_code(CLUSTER_DENIED.code()),
            ))
        }

        RequestKind::AlterClientQuotas(r) => {
            if g.cluster(AlterConfigs) {
                return run(RequestKind::AlterClientQuotas(r));
            }
            let entries = r
                .entries
                .iter()
                .map(|e| {
                    alter_client_quotas_response::EntryData::default()
                        .with_error_code(CLUSTER_DENIED.code())
                        .with_entity(super::client_quotas::response_entity(&e.entity))
                })
                .collect();
            Checked::Answer(ResponseKind::AlterClientQuotas(
                AlterClientQuotasResponse::default().with_entries(entries),
            ))
        }

        RequestKind::CreateAcls(r) => {
            if g.cluster(Alter) {
                return run(RequestKind::CreateAcls(r));
            }
            let results = r
                .creations
                .iter()
                .map(|_| {
                    create_acls_response::AclCreationResult::default()
                        .with_error_code(CLUSTER_DENIED.code())
                })
                .collect();
            Checked::Answer(ResponseKind::CreateAcls(
                CreateAclsResponse::default().with_results(results),
            ))
        }

        RequestKind::DescribeAcls(r) => {
            if g.cluster(Describe) {
                return run(RequestKind::DescribeAcls(r));
            }
            Checked::Answer(ResponseKind::DescribeAcls(
                DescribeAclsResponse::default()
                    .with_error_code(CLUSTER_DENIED.code())
                    .with_error_message(Some(text("Describe on the cluster is required"))),
            ))
        }

        RequestKind::DeleteAcls(r) => {
            if g.cluster(Alter) {
                return run(RequestKind::DeleteAcls(r));
            }
            let results = r
                .filters
                .iter()
                .map(|_| {
                    delete_acls_response::DeleteAclsFilterResult::default()
                        .with_error_code(CLUSTER_DENIED.code())
                })
                .collect();
            Checked::Answer(ResponseKind::DeleteAcls(
                DeleteAclsResponse::default().with_filter_results(results),
            ))
        }

        other => {
            tracing::warn!(request = ?std::mem::discriminant(&other), "no authorization rule: refused");
            Checked::Refuse
        }
    }
}

/// OffsetFetch: Describe on the group, and on each topic (of all the
/// group's topics, those the principal may describe); v8 asks for
/// several groups at once.
fn offset_fetch(g: &Guard, version: i16, mut r: OffsetFetchRequest) -> Checked {
    use Operation::Describe;
    let principal = g.principal.clone();
    let host = g.host.clone();
    let authorizer = g.broker.authorizer.clone();
    let may_describe = move |topic: &str| {
        authorizer.allows(&principal, &host, Describe, ResourceType::Topic, topic)
    };
    if version < 8 {
        if !g.group(Describe, &r.group_id) {
            return Checked::Answer(ResponseKind::OffsetFetch(
                OffsetFetchResponse::default().with_error_code(GROUP_DENIED.code()),
            ));
        }
        let Some(topics) = r.topics.take() else {
            return run_then(RequestKind::OffsetFetch(r), kind!(OffsetFetch), move |o| {
                o.topics.retain(|t| may_describe(&t.name))
            });
        };
        let (kept, denied) = split(topics, |t| g.topic(Describe, &t.name));
        r.topics = Some(kept);
        let denied: Vec<_> = denied
            .into_iter()
            .map(|t| {
                offset_fetch_response::OffsetFetchResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(
                        t.partition_indexes
                            .iter()
                            .map(|&p| {
                                offset_fetch_response::OffsetFetchResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(-1)
                                    .with_error_code(TOPIC_DENIED.code())
                            })
                            .collect(),
                    )
            })
            .collect();
        return run_then(RequestKind::OffsetFetch(r), kind!(OffsetFetch), |o| {
            o.topics.extend(denied)
        });
    }
    let (groups, denied_groups) = split(std::mem::take(&mut r.groups), |grp| {
        g.group(Describe, &grp.group_id)
    });
    let mut denied_topics = Vec::new();
    r.groups = groups
        .into_iter()
        .map(|mut grp| {
            if let Some(topics) = grp.topics.take() {
                let (kept, denied) = split(topics, |t| g.topic(Describe, &t.name));
                grp.topics = Some(kept);
                denied_topics.push((grp.group_id.clone(), denied));
            }
            grp
        })
        .collect();
    run_then(RequestKind::OffsetFetch(r), kind!(OffsetFetch), move |o| {
        for grp in &mut o.groups {
            let denied = denied_topics
                .iter()
                .find(|(id, _)| *id == grp.group_id)
                .map(|(_, denied)| denied.as_slice());
            match denied {
                None => grp.topics.retain(|t| may_describe(&t.name)),
                Some(denied) => grp.topics.extend(denied.iter().map(|t| {
                    offset_fetch_response::OffsetFetchResponseTopics::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partition_indexes
                                .iter()
                                .map(|&p| {
                                    offset_fetch_response::OffsetFetchResponsePartitions::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(-1)
                                        .with_error_code(TOPIC_DENIED.code())
                                })
                                .collect(),
                        )
                })),
            }
        }
        o.groups.extend(denied_groups.into_iter().map(|grp| {
            offset_fetch_response::OffsetFetchResponseGroup::default()
                .with_group_id(grp.group_id)
                .with_error_code(GROUP_DENIED.code())
        }));
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::versions::SUPPORTED;

    /// APIs anyone may call (authentication, and what Kafka leaves open).
    const OPEN: &[ApiKey] = &[
        ApiKey::ApiVersions,
        ApiKey::SaslHandshake,
        ApiKey::SaslAuthenticate,
        ApiKey::DescribeCluster,
    ];

    /// A rule in `check` for each served API not in `OPEN`: built from
    /// the source, so a new API cannot be served without one.
    #[test]
    fn every_served_api_has_a_rule() {
        let source = include_str!("authorize.rs");
        for &(api, _, _) in SUPPORTED {
            let arm = format!("RequestKind::{api:?}(");
            assert!(
                OPEN.contains(&api) || source.contains(&arm),
                "{api:?} has no authorization rule"
            );
        }
    }
}
