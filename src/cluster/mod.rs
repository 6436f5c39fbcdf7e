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
use crate::meta::etcd::keys::{partition_key, partition_of};
use crate::meta::etcd::{Keys, Member};
use crate::meta::{PartitionLeader, TopicMeta};
use mirror::Mirror;

/// This broker's membership of a cluster and its view of the others.
pub struct Cluster {
    me: i32,
    client: Client,
    keys: Keys,
    lease: i64,
    registration: std::sync::Mutex<Option<Registration>>,
    check: HoldCheck,
    lost: CancellationToken,
    brokers: Arc<Mirror<BrokerInfo>>,
    controller: Arc<Mirror<i32>>,
    leaders: Arc<Mirror<PartitionLeader>>,
    topics: Arc<Mirror<TopicMeta>>,
    pins: Arc<Mirror<i32>>,
    stop_mirrors: CancellationToken,
}

impl Cluster {
    /// Registers `me` in the cluster of `url` (waiting while a previous run
    /// is still registered) and starts mirroring it.
    pub async fn join(url: &str, me: &BrokerInfo, ttl: Duration) -> Result<Cluster> {
        let registration = Registration::register(url, me, ttl).await?;
        let (client, keys) = registration.client();
        let keys = keys.clone();
        let stop = CancellationToken::new();
        let brokers = Mirror::start(&client, keys.brokers(), &stop);
        let controller = Mirror::start(&client, keys.controller(), &stop);
        let leaders = Mirror::start(&client, keys.leaders(), &stop);
        let topics = Mirror::start(&client, keys.topics(), &stop);
        let pins = Mirror::start(&client, keys.pins(), &stop);
        brokers.wait_ready().await;
        controller.wait_ready().await;
        leaders.wait_ready().await;
        topics.wait_ready().await;
        pins.wait_ready().await;
        Ok(Cluster {
            me: me.id,
            client,
            keys,
            lease: registration.lease(),
            check: registration.check(),
            lost: registration.lost(),
            registration: std::sync::Mutex::new(Some(registration)),
            brokers,
            controller,
            leaders,
            topics,
            pins,
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
        let key = self.keys.controller();
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

    /// Keeps `partition` of `topic` on broker `to` while that broker is
    /// live (the controller moves its leadership there), as a replica
    /// assignment's first broker asks.
    pub async fn pin(&self, topic: Uuid, partition: i32, to: i32) -> Result<()> {
        let registered = self.keys.broker(self.me);
        let txn = Txn::new()
            .when([Compare::lease(
                registered.as_str(),
                CompareOp::Equal,
                self.lease,
            )])
            .and_then([TxnOp::put(
                self.keys.pin(topic, partition),
                to.to_string(),
                None,
            )]);
        let response = self
            .client
            .kv_client()
            .txn(txn)
            .await
            .map_err(|e| Error::Meta(format!("etcd: {e}")))?;
        if response.succeeded() {
            Ok(())
        } else {
            Err(Error::LeaseLost)
        }
    }

    /// A check of the registration for work that must not outlive it.
    pub fn check(&self) -> HoldCheck {
        self.check.clone()
    }

    /// Cancelled once the registration could have ended: stop serving.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// The live brokers that are ready, by id.
    pub fn live_brokers(&self) -> Vec<BrokerInfo> {
        let mut brokers = self
            .brokers
            .with(|b| b.values().filter(|b| b.ready).cloned().collect::<Vec<_>>());
        brokers.sort_by_key(|b| b.id);
        brokers
    }

    /// Marks this broker (`me`) ready: it serves, and may be given
    /// partitions and groups from now on; or, leaving, not ready: the
    /// controller gives it nothing more (see `PartitionStore::assign_leader`).
    pub async fn announce(&self, me: &BrokerInfo, ready: bool) -> Result<()> {
        let key = self.keys.broker(me.id);
        let ready = BrokerInfo {
            ready,
            ..me.clone()
        };
        let value = serde_json::to_vec(&ready).expect("broker info encodes");
        let txn = Txn::new()
            .when([Compare::lease(key.as_str(), CompareOp::Equal, self.lease)])
            .and_then([TxnOp::put(
                key.as_str(),
                value,
                Some(PutOptions::new().with_lease(self.lease)),
            )]);
        let response = self.client.kv_client().txn(txn).await;
        if response
            .map_err(|e| Error::Meta(format!("etcd: {e}")))?
            .succeeded()
        {
            Ok(())
        } else {
            Err(Error::LeaseLost)
        }
    }

    /// Every topic, as stored.
    pub fn topics(&self) -> Vec<TopicMeta> {
        self.topics.with(|t| t.values().cloned().collect())
    }

    /// Every partition's leader.
    pub fn leaders(&self) -> HashMap<(Uuid, i32), PartitionLeader> {
        by_partition(&self.leaders)
    }

    /// The broker each pinned partition should be led by.
    pub fn pins(&self) -> HashMap<(Uuid, i32), i32> {
        by_partition(&self.pins)
    }

    /// The controller's id, if one is elected.
    pub fn controller(&self) -> Option<i32> {
        self.controller.with(|c| c.values().next().copied())
    }

    /// The partition's leader, if it has one.
    pub fn leader(&self, topic: Uuid, partition: i32) -> Option<PartitionLeader> {
        self.leaders
            .with(|leaders| leaders.get(&partition_key(topic, partition)).copied())
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
    /// leaders, the topics and the pins, in that order.
    pub fn changes(&self) -> [watch::Receiver<u64>; 5] {
        [
            self.brokers.changes(),
            self.controller.changes(),
            self.leaders.changes(),
            self.topics.changes(),
            self.pins.changes(),
        ]
    }

    /// Gives up the partitions this broker leads, for a clean stop that
    /// uploaded everything: their leader records are removed (each only
    /// while it still names this broker at the same epoch), so the
    /// controller assigns them at once, even in `local` durability where a
    /// dead leader's partitions wait for it. Failures are logged: the
    /// partitions then wait as after a crash.
    pub async fn resign_leaderships(&self) {
        let mine: Vec<(String, PartitionLeader)> = self.leaders.with(|leaders| {
            leaders
                .iter()
                .filter(|(_, leader)| leader.broker == self.me)
                .map(|(key, leader)| (format!("{}{key}", self.keys.leaders()), *leader))
                .collect()
        });
        for (key, leader) in mine {
            let value = serde_json::to_vec(&leader).expect("a leader record encodes");
            let txn = Txn::new()
                .when([Compare::value(key.as_str(), CompareOp::Equal, value)])
                .and_then([TxnOp::delete(key.as_str(), None)]);
            match self.client.kv_client().txn(txn).await {
                Ok(response) if response.succeeded() => {}
                Ok(_) => tracing::warn!(
                    key,
                    "cannot give up a partition: its leader record changed; it waits as after a crash"
                ),
                Err(e) => {
                    tracing::warn!(key, error = %e, "cannot give up a partition; it waits as after a crash")
                }
            }
        }
    }

    /// Leaves the cluster: the controller moves this broker's partitions
    /// at once (in `local` durability only those it resigned, see
    /// [`Cluster::resign_leaderships`]; the others wait
    /// `storage.failover_grace_ms`).
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

/// A mirror of `TOPIC_ID/PARTITION` keys, by partition.
fn by_partition<T: Copy>(mirror: &Mirror<T>) -> HashMap<(Uuid, i32), T> {
    mirror.with(|entries| {
        entries
            .iter()
            .filter_map(|(key, value)| Some((partition_of(key)?, *value)))
            .collect()
    })
}

/// Pins partition `partition` of `topic` to broker `to` in the cluster of
/// `url` and waits (up to `deadline`) until the controller moved it there;
/// returns the new leader epoch and how long the move took.
pub async fn move_leader(
    url: &str,
    topic: &str,
    partition: i32,
    to: i32,
    deadline: Duration,
) -> Result<(i32, Duration)> {
    let (client, root) = crate::meta::etcd::connect(url).await?;
    let keys = Keys::new(&root);
    let kv = client.kv_client();
    let etcd = |e: etcd_client::Error| Error::Meta(format!("etcd: {e}"));
    let get = |key: String| {
        let mut kv = kv.clone();
        async move { kv.get(key, None).await.map_err(etcd) }
    };
    let stored = get(keys.topic(topic)).await?;
    let meta: TopicMeta = match stored.kvs().first() {
        Some(kv) => serde_json::from_slice(kv.value()).map_err(|e| Error::CorruptMetadata {
            key: keys.topic(topic),
            reason: e.to_string(),
        })?,
        None => return Err(Error::InvalidRequest(format!("no topic '{topic}'"))),
    };
    if !(0..meta.partitions).contains(&partition) {
        return Err(Error::InvalidRequest(format!(
            "topic '{topic}' has partitions 0 to {}",
            meta.partitions - 1
        )));
    }
    if get(keys.broker(to)).await?.kvs().is_empty() {
        return Err(Error::InvalidRequest(format!("broker {to} is not live")));
    }
    let started = tokio::time::Instant::now();
    kv.clone()
        .put(keys.pin(meta.id, partition), to.to_string(), None)
        .await
        .map_err(etcd)?;
    loop {
        let leader = get(keys.leader(meta.id, partition)).await?;
        let leader: Option<PartitionLeader> = leader
            .kvs()
            .first()
            .and_then(|kv| serde_json::from_slice(kv.value()).ok());
        if let Some(leader) = leader.filter(|l| l.broker == to) {
            return Ok((leader.epoch, started.elapsed()));
        }
        if started.elapsed() > deadline {
            return Err(Error::RequestTimedOut);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
