//! The console and admin commands (`silt topic`, `silt produce`,
//! `silt consume`): Kafka clients built on `silt::client`, so they work
//! against any Kafka-compatible broker.

pub mod acl;
pub mod cluster;
pub mod consume;
pub mod export;
pub mod group;
pub mod produce;
pub mod quota;
pub mod topic;
pub mod txn;
pub mod user;

use std::collections::HashMap;

use anyhow::{Context, bail};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    FindCoordinatorRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use silt::client::security::ClientSecurity;
use silt::client::{Client, ClientError};

/// Connections to the brokers of a cluster, found from a bootstrap server.
pub struct Cluster {
    security: ClientSecurity,
    bootstrap: Client,
    brokers: HashMap<i32, String>,
    leaders: HashMap<i32, Client>,
}

/// A topic's partitions and their leaders, from Metadata.
pub struct TopicInfo {
    pub name: String,
    pub id: uuid::Uuid,
    /// `(partition, leader node id)`, by partition.
    pub partitions: Vec<(i32, i32)>,
}

impl Cluster {
    /// Connects to the first of the comma-separated `bootstrap` servers
    /// that answers, as `security` says.
    pub async fn connect(bootstrap: &str, security: ClientSecurity) -> anyhow::Result<Cluster> {
        let mut last_error = None;
        for server in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match Client::connect_with(server, &security).await {
                Ok(client) => {
                    return Ok(Cluster {
                        security,
                        bootstrap: client,
                        brokers: HashMap::new(),
                        leaders: HashMap::new(),
                    });
                }
                // A wrong password is wrong on every broker.
                Err(e @ ClientError::Authentication(_)) => return Err(e.into()),
                Err(e) => last_error = Some(e),
            }
        }
        match last_error {
            Some(e) => Err(e.into()),
            None => bail!("no bootstrap server given"),
        }
    }

    /// The bootstrap connection, for cluster-wide requests.
    pub fn any(&mut self) -> &mut Client {
        &mut self.bootstrap
    }

    /// Metadata for `topics` (all topics when `None`), remembering brokers.
    pub async fn metadata(
        &mut self,
        topics: Option<&[String]>,
    ) -> anyhow::Result<MetadataResponse> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|n| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let response = self.bootstrap.call(request, 12).await?;
        for broker in &response.brokers {
            self.brokers.insert(
                broker.node_id.0,
                format!("{}:{}", broker.host.as_str(), broker.port),
            );
        }
        Ok(response)
    }

    /// One existing topic's partitions and leaders.
    pub async fn topic(&mut self, name: &str) -> anyhow::Result<TopicInfo> {
        let response = self.metadata(Some(&[name.to_string()])).await?;
        let topic = response
            .topics
            .into_iter()
            .next()
            .context("the broker returned no metadata for the topic")?;
        check(topic.error_code, &format!("topic '{name}'"))?;
        let mut partitions: Vec<(i32, i32)> = topic
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id.0))
            .collect();
        partitions.sort_unstable();
        Ok(TopicInfo {
            name: name.to_string(),
            id: topic.topic_id,
            partitions,
        })
    }

    /// Every broker's id, from Metadata.
    pub async fn broker_ids(&mut self) -> anyhow::Result<Vec<i32>> {
        let response = self.metadata(Some(&[])).await?;
        let mut ids: Vec<i32> = response.brokers.iter().map(|b| b.node_id.0).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// A connection to the coordinator of `group` (FindCoordinator).
    pub async fn coordinator(&mut self, group: &str) -> anyhow::Result<&mut Client> {
        self.coordinator_of(Coordinated::Group, group).await
    }

    /// A connection to the coordinator of `key`, a group id or a
    /// transactional id (FindCoordinator).
    pub async fn coordinator_of(
        &mut self,
        kind: Coordinated,
        key: &str,
    ) -> anyhow::Result<&mut Client> {
        let (key_type, what) = match kind {
            Coordinated::Group => (0, "group"),
            Coordinated::Transaction => (1, "transactional id"),
        };
        let request = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(key.to_string()))
            .with_key_type(key_type);
        let response = self.bootstrap.call(request, 3).await?;
        check(
            response.error_code,
            &format!("cannot find the coordinator of {what} '{key}'"),
        )?;
        let node_id = response.node_id.0;
        let addr = format!("{}:{}", response.host.as_str(), response.port);
        self.brokers.insert(node_id, addr);
        self.leader(node_id).await
    }

    /// A connection to broker `node_id` (the leader of some partition).
    pub async fn leader(&mut self, node_id: i32) -> anyhow::Result<&mut Client> {
        if !self.leaders.contains_key(&node_id) {
            let Some(addr) = self.brokers.get(&node_id) else {
                bail!("broker {node_id} is not among the brokers the cluster listed");
            };
            let client = Client::connect_with(addr, &self.security).await?;
            self.leaders.insert(node_id, client);
        }
        Ok(self.leaders.get_mut(&node_id).expect("inserted above"))
    }
}

/// What a coordinator coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coordinated {
    Group,
    Transaction,
}

/// Turns a Kafka error code into an error naming `what` failed.
pub fn check(code: i16, what: &str) -> anyhow::Result<()> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(error) => bail!("{what}: {error} ({})", describe(error)),
    }
}

/// As [`check`], with the broker's error message (if any) as context.
pub fn check_with_message(code: i16, message: Option<&StrBytes>, what: &str) -> anyhow::Result<()> {
    let message = message.map(|m| m.to_string()).unwrap_or_default();
    check(code, what).with_context(|| message)
}

/// A short explanation for the errors users meet most.
fn describe(error: ResponseError) -> String {
    match error {
        ResponseError::UnknownTopicOrPartition => "the topic or partition does not exist".into(),
        ResponseError::TopicAlreadyExists => "a topic with this name exists".into(),
        ResponseError::InvalidTopicException => "the name is not a valid topic name".into(),
        ResponseError::NonEmptyGroup => "the group still has members".into(),
        ResponseError::GroupIdNotFound => "the group does not exist".into(),
        ResponseError::TransactionalIdNotFound => "the transactional id does not exist".into(),
        ResponseError::OffsetOutOfRange => {
            "the offset is beyond the partition's end (its high watermark)".into()
        }
        other => format!("Kafka error code {}", other.code()),
    }
}
