//! Cluster mode: brokers sharing one etcd root (and one bucket).
//!
//! Each broker registers under a lease ([`registration`]); one of them is
//! the controller ([`controller`]), which assigns every partition a leader
//! among the live brokers and raises the partition's leader epoch with each
//! change. Every broker mirrors the live brokers, the controller, the
//! partition leaders and the topics ([`mirror`]) to answer Metadata and
//! FindCoordinator, and leads the partitions assigned to it. Group
//! coordinators are placed by hashing the group id onto the live brokers.

pub mod controller;
mod mirror;
mod registration;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use registration::{BrokerInfo, HoldCheck, Registration};

use crate::error::{Error, Result};
use crate::meta::etcd::{BROKERS, CONTROLLER, LEADERS, Member, TOPICS};
use crate::meta::{PartitionLeader, TopicMeta};
use mirror::Mirror;

/// This broker's membership of a cluster and its view of the others.
pub struct Cluster {
    me: i32,
    client: Client,
    root: String,
    lease: i64,
    registration: std::sync::Mutex<Option<Registration>>,
    check: HoldCheck,
    lost: CancellationToken,
    brokers: Arc<Mirror<BrokerInfo>>,
    controller: Arc<Mirror<i32>>,
    leaders: Arc<Mirror<PartitionLeader>>,
    topics: Arc<Mirror<TopicMeta>>,
    stop_mirrors: CancellationToken,
}

impl Cluster {
    /// Registers `me` in the cluster of `url` (waiting while a previous run
    /// is still registered) and starts mirroring it.
    pub async fn join(url: &str, me: &BrokerInfo, ttl: Duration) -> Result<Cluster> {
        let registration = Registration::register(url, me, ttl).await?;
        let (client, root) = registration.client();
        let root = root.to_string();
        let stop = CancellationToken::new();
        let mirror = |path: &str| (client.clone(), format!("{root}/{path}"), stop.clone());
        let (c, p, s) = mirror(BROKERS);
        let brokers = Mirror::start(c, p, s);
        let (c, p, s) = mirror(CONTROLLER);
        let controller = Mirror::start(c, p, s);
        let (c, p, s) = mirror(LEADERS);
        let leaders = Mirror::start(c, p, s);
        let (c, p, s) = mirror(TOPICS);
        let topics = Mirror::start(c, p, s);
        brokers.wait_ready().await;
        controller.wait_ready().await;
        leaders.wait_ready().await;
        topics.wait_ready().await;
        Ok(Cluster {
            me: me.id,
            client,
            root,
            lease: registration.lease(),
            check: registration.check(),
            lost: registration.lost(),
            registration: std::sync::Mutex::new(Some(registration)),
            brokers,
            controller,
            leaders,
            topics,
            stop_mirrors: stop,
        })
    }

    /// This broker's id.
    pub fn me(&self) -> i32 {
        self.me
    }

    /// This broker as a writer of the metadata store.
    pub fn member(&self) -> Member {
        Member {
            id: self.me,
            lease: self.lease,
        }
    }

    /// Tries to become the controller (under this broker's lease); whether
    /// this broker is the controller now.
    pub async fn campaign(&self) -> Result<bool> {
        let key = format!("{}/{CONTROLLER}", self.root);
        let txn = Txn::new()
            .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key.as_str(),
                self.me.to_string(),
                Some(PutOptions::new().with_lease(self.lease)),
            )]);
        let response = self
            .client
            .kv_client()
            .txn(txn)
            .await
            .map_err(|e| Error::Meta(format!("etcd: {e}")))?;
        Ok(response.succeeded() || self.controller() == Some(self.me))
    }

    /// A check of the registration for work that must not outlive it.
    pub fn check(&self) -> HoldCheck {
        self.check.clone()
    }

    /// Cancelled once the registration could have ended: stop serving.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// The live brokers, by id.
    pub fn live_brokers(&self) -> Vec<BrokerInfo> {
        let mut brokers = self
            .brokers
            .with(|b| b.values().cloned().collect::<Vec<_>>());
        brokers.sort_by_key(|b| b.id);
        brokers
    }

    /// Every topic, as stored.
    pub fn topics(&self) -> Vec<TopicMeta> {
        self.topics.with(|t| t.values().cloned().collect())
    }

    /// Every partition's leader.
    pub fn leaders(&self) -> HashMap<(Uuid, i32), PartitionLeader> {
        self.leaders.with(|leaders| {
            leaders
                .iter()
                .filter_map(|(key, leader)| Some((parse_leader_key(key)?, *leader)))
                .collect()
        })
    }

    /// The controller's id, if one is elected.
    pub fn controller(&self) -> Option<i32> {
        self.controller.with(|c| c.values().next().copied())
    }

    /// The partition's leader, if it has one.
    pub fn leader(&self, topic: Uuid, partition: i32) -> Option<PartitionLeader> {
        self.leaders
            .with(|leaders| leaders.get(&leader_key(topic, partition)).copied())
    }

    /// The live broker coordinating `group`: the group id's hash over the
    /// live brokers in id order, the same on every broker.
    pub fn coordinator(&self, group: &str) -> Option<BrokerInfo> {
        let brokers = self.live_brokers();
        brokers
            .get(coordinator_index(group, brokers.len()))
            .cloned()
    }

    /// Receivers that change with the live brokers, the controller, the
    /// leaders and the topics, in that order.
    pub fn changes(&self) -> [watch::Receiver<u64>; 4] {
        [
            self.brokers.changes(),
            self.controller.changes(),
            self.leaders.changes(),
            self.topics.changes(),
        ]
    }

    /// Leaves the cluster: the controller moves this broker's partitions
    /// at once.
    pub async fn leave(&self) {
        self.stop_mirrors.cancel();
        let registration = self.registration.lock().expect("registration lock").take();
        if let Some(registration) = registration {
            registration.release().await;
        }
    }
}

/// Which of `brokers` live brokers (in id order) coordinates `group`.
pub fn coordinator_index(group: &str, brokers: usize) -> usize {
    crc32c::crc32c(group.as_bytes()) as usize % brokers.max(1)
}

/// The key (under `leaders/`) of a partition's leader.
fn leader_key(topic: Uuid, partition: i32) -> String {
    format!("{topic}/{partition}")
}

fn parse_leader_key(key: &str) -> Option<(Uuid, i32)> {
    let (topic, partition) = key.split_once('/')?;
    Some((topic.parse().ok()?, partition.parse().ok()?))
}
