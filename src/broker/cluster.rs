//! The broker's side of cluster mode: it follows the topics other brokers
//! create, change and delete, leads the partitions the controller assigns
//! to it, gives up the others, and answers who leads what.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{Broker, Topic, load_topic};
use crate::cluster::{BrokerInfo, Cluster};
use crate::error::Result;
use crate::log::partition::Partition;
use crate::meta::PartitionLeader;

/// Partitions taken over at once.
const TAKEOVER_CONCURRENCY: usize = 32;
/// How often the broker looks again without a change (to retry failed
/// takeovers).
const RECHECK_INTERVAL: Duration = Duration::from_secs(1);

impl Broker {
    /// Follows the cluster until `stop`: topics, leaderships, and the
    /// placement of group coordinators.
    pub(super) async fn follow_cluster(
        self: Arc<Self>,
        cluster: Arc<Cluster>,
        stop: CancellationToken,
    ) {
        let [mut brokers, _, mut leaders, mut topics, _] = cluster.changes();
        let (mut brokers_changed, mut topics_changed) = (true, true);
        loop {
            if topics_changed {
                topics_changed = match self.sync_topics().await {
                    Ok(()) => false,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the topics from etcd; retrying");
                        true
                    }
                };
            }
            self.sync_leadership(&cluster).await;
            if brokers_changed {
                self.groups.place().await;
                self.txns.place().await;
                brokers_changed = false;
            }
            tokio::select! {
                _ = brokers.changed() => brokers_changed = true,
                _ = leaders.changed() => {}
                _ = topics.changed() => topics_changed = true,
                () = tokio::time::sleep(RECHECK_INTERVAL) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Brings the topic registry in line with the store: topics created,
    /// grown, reconfigured or deleted by other brokers. Reads the store
    /// (not the mirror) under the admin lock, so it never goes back behind
    /// a change this broker just made.
    async fn sync_topics(&self) -> Result<()> {
        let _admin = self.admin.lock().await;
        let stored = self.meta.topics().await?;
        let ids: HashSet<_> = stored.iter().map(|t| t.id).collect();
        for topic in self.topics() {
            if !ids.contains(&topic.id) {
                tracing::info!(topic = %topic.name, "topic deleted by another broker");
                self.forget_topic(&topic).await;
            }
        }
        for meta in stored {
            match self.topic_by_id(meta.id) {
                None => {
                    let topic = load_topic(&self.log, self.meta.as_ref(), meta, true).await?;
                    self.install(topic);
                }
                Some(topic) => {
                    if topic.configs != meta.configs {
                        self.install(Arc::new(Topic {
                            configs: meta.configs.clone(),
                            ..(*topic).clone()
                        }));
                    }
                    if meta.partitions > topic.partitions.len() as i32 {
                        let current = self.topic_by_id(meta.id).expect("installed");
                        self.grow(&current, meta.partitions).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Leads the partitions the controller assigned to this broker, at
    /// their new epochs, and gives up the others.
    async fn sync_leadership(&self, cluster: &Cluster) {
        let leaders = cluster.leaders();
        let me = cluster.me();
        let mut takeovers: Vec<(Arc<Partition>, i32)> = Vec::new();
        for topic in self.topics() {
            for partition in &topic.partitions {
                let leader = leaders.get(&(topic.id, partition.index));
                if leader.is_some_and(|l| l.broker != me) {
                    self.log.drop_replay(topic.id, partition.index);
                }
                let assigned = leader.filter(|l| l.broker == me).map(|l| l.epoch);
                match (assigned, partition.leadership()) {
                    (Some(epoch), current) if current != Some(epoch) => {
                        takeovers.push((partition.clone(), epoch));
                    }
                    (None, Some(_)) => {
                        tracing::info!(topic = %topic.name, partition = partition.index, "no longer leading");
                        self.log.resign(partition, None);
                    }
                    _ => {}
                }
            }
        }
        futures::stream::iter(takeovers)
            .for_each_concurrent(TAKEOVER_CONCURRENCY, |(partition, epoch)| async move {
                self.take_over(&partition, epoch).await;
            })
            .await;
    }

    /// Starts leading `partition` at `epoch`, from its committed state
    /// (read after the controller raised the epoch, so it holds everything
    /// the previous leader committed; that leader can commit no more).
    async fn take_over(&self, partition: &Partition, epoch: i32) {
        match self.meta.partition(partition.topic, partition.index).await {
            Ok(state) if state.leader_epoch == epoch => {
                tracing::info!(topic = %partition.topic, partition = partition.index, epoch, "leading");
                self.log.lead(partition, state);
            }
            // The controller moved it again meanwhile; the mirror will say.
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(topic = %partition.topic, partition = partition.index, error = %e, "cannot take the partition over; retrying");
            }
        }
    }

    /// This broker as clients reach it.
    pub fn me(&self) -> BrokerInfo {
        BrokerInfo::of(self.id, &self.config, true)
    }

    /// The live brokers: this one alone outside a cluster.
    pub fn live_brokers(&self) -> Vec<BrokerInfo> {
        match &self.cluster {
            Some(cluster) => cluster.live_brokers(),
            None => vec![self.me()],
        }
    }

    /// The controller's id (-1 while none is elected).
    pub fn controller_id(&self) -> i32 {
        match &self.cluster {
            Some(cluster) => cluster.controller().unwrap_or(-1),
            None => self.id,
        }
    }

    /// Who leads `partition`, at which epoch; `None` while nobody does.
    pub fn leader_of(&self, partition: &Partition) -> Option<PartitionLeader> {
        match &self.cluster {
            Some(cluster) => cluster.leader(partition.topic, partition.index),
            None => Some(PartitionLeader {
                broker: self.id,
                epoch: partition.leader_epoch(),
            }),
        }
    }

    /// The broker coordinating `group`; `None` while no broker is live.
    pub fn coordinator(&self, group: &str) -> Option<BrokerInfo> {
        match &self.cluster {
            Some(cluster) => cluster.coordinator(group),
            None => Some(self.me()),
        }
    }

    /// Whether this broker coordinates `group`.
    pub fn coordinates(&self, group: &str) -> bool {
        self.coordinator(group).is_some_and(|b| b.id == self.id)
    }
}
