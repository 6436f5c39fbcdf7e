//! The broker: the shared handle every request handler receives. It owns the
//! topic registry, the partition log, the group coordinator, the metadata
//! store and the settings, and performs the admin operations (create/delete
//! topics, partitions, configs) that must change metadata and the log
//! together.
//!
//! Start-up order: metadata store, bucket, log (WAL recovery), topics and
//! partitions from metadata, WAL replay, upload of what was replayed, group
//! coordinator, then the uploader, coordinator and garbage collector tasks.
//! Shutdown: those tasks (the uploader's final upload), then WAL and cache.

mod cluster;
pub mod configs;
mod export;
mod export_retention;
mod iceberg;
mod id;
mod lag;
mod lifecycle;
pub mod quotas;
mod topic_keys;
mod traffic;
mod transactions;

pub use export::PartitionExport;
pub use lag::PartitionLag;
pub use traffic::Traffic;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::sync::{Arc, RwLock};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::clock::Clock;
use crate::cluster::{BrokerInfo, Cluster};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::group::Coordinator;
use crate::group::state::GroupSettings;
use crate::log::partition::Partition;
use crate::log::{Log, LogSettings};
use crate::meta::embedded::EmbeddedStore;
use crate::meta::etcd::EtcdStore;
use crate::meta::{MetaStore, TopicMeta};
use crate::security::authorizer::Authorizer;
use crate::security::certificate::PrincipalMapper;
use crate::security::oauth::TokenValidator;
use crate::storage::Bucket;

/// How often a broker checks whether the ACLs or client quotas changed
/// (a change made on any broker applies everywhere within a second).
const ACL_AND_QUOTA_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// The most partitions one topic may have; bounds what a request can allocate.
pub const MAX_PARTITIONS: i32 = 10_000;

/// A topic with its partitions. Immutable: changes replace the whole value.
#[derive(Clone)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub partitions: Vec<Arc<Partition>>,
    pub configs: BTreeMap<String, String>,
    pub traffic: Traffic,
}

impl Topic {
    /// The partition with this index, if it exists.
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }
}

#[derive(Default)]
struct Topics {
    by_name: HashMap<String, Arc<Topic>>,
    by_id: HashMap<Uuid, Arc<Topic>>,
}

/// A change to a resource's configs (IncrementalAlterConfigs changes
/// keys; the legacy AlterConfigs clears them all, then sets its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    Set(String, String),
    Delete(String),
    ClearAll,
}

/// Shared state of a running broker.
pub struct Broker {
    /// This broker's node id (`broker.id`, resolved when it opened).
    pub id: i32,
    pub config: Config,
    pub log: Arc<Log>,
    pub groups: Arc<Coordinator>,
    pub txns: Arc<crate::txn::TxnCoordinator>,
    /// Decides what each principal may do (everything, without ACLs).
    pub authorizer: Arc<Authorizer>,
    /// Names the principals of client certificates.
    pub principals: PrincipalMapper,
    /// Checks OAUTHBEARER tokens, when configured.
    pub tokens: Option<Arc<TokenValidator>>,
    /// Client quotas and the usage counted against them.
    pub quotas: Arc<quotas::Quotas>,
    clock: Clock,
    meta: Arc<dyn MetaStore>,
    /// The object store, for export files (the log has its own handle).
    bucket: Bucket,
    /// The exporter's memory of the partitions it leads.
    exports: export::ExportState,
    topics: RwLock<Topics>,
    dynamic_configs: RwLock<BTreeMap<String, String>>,
    /// Serializes admin changes so check-then-act on topics is atomic.
    admin: tokio::sync::Mutex<()>,
    request_memory: Arc<tokio::sync::Semaphore>,
    tasks: TaskTracker,
    stop_tasks: CancellationToken,
    /// With metadata in etcd, this broker's membership of the cluster.
    cluster: Option<Arc<Cluster>>,
    hold_lost: CancellationToken,
    _data_dir_lock: File,
}

impl Broker {
    /// Opens the data dir, recovers, and starts the background tasks.
    pub async fn open(config: Config) -> Result<Arc<Broker>> {
        let data_dir = config.broker.data_dir.clone();
        std::fs::create_dir_all(&data_dir)?;
        let lock = File::create(data_dir.join("lock"))?;
        lock.try_lock().map_err(|_| {
            Error::Io(std::io::Error::other(format!(
                "data dir {} is in use by another broker",
                data_dir.display()
            )))
        })?;
        let bucket = Bucket::open(
            config.storage.object_store.as_deref(),
            &data_dir.join("objects"),
        )?;
        if config.storage.create_bucket {
            bucket
                .create()
                .await
                .map_err(|e| Error::InvalidConfig(e.to_string()))?;
        }
        bucket
            .check()
            .await
            .map_err(|e| Error::InvalidConfig(e.to_string()))?;
        let id = id::resolve(&config).await?;
        let (meta, cluster) = open_meta(&config, id).await?;
        let settings = LogSettings {
            registration: cluster.as_ref().map(|c| c.check()),
            ..LogSettings::from_config(&config)
        };
        let (log, wal_records) = Log::open(settings, &config, meta.clone(), bucket.clone()).await?;
        let log = Arc::new(log);
        let mut topics = Topics::default();
        let in_cluster = cluster.is_some();
        for topic in meta.topics().await? {
            let loaded = load_topic(&log, meta.as_ref(), topic, in_cluster).await?;
            topics.by_id.insert(loaded.id, loaded.clone());
            topics.by_name.insert(loaded.name.clone(), loaded);
        }
        // In a cluster this broker leads nothing yet: the records wait for
        // the partitions the controller gives it back at the same epoch.
        log.replay(wal_records);
        log.flush_all().await?;
        let dynamic_configs = meta.broker_configs().await?;
        let group_settings = GroupSettings {
            min_session_timeout_ms: config.groups.min_session_timeout_ms,
            max_session_timeout_ms: config.groups.max_session_timeout_ms,
            initial_rebalance_delay_ms: config.groups.initial_rebalance_delay_ms,
        };
        let retention_ms = config.groups.offsets_retention_minutes * 60_000;
        let clock = Clock::system();
        let owns: crate::group::Owns = match &cluster {
            // Not while the registration may have ended: another broker
            // may coordinate the group by then.
            Some(cluster) => {
                let (cluster, me, check) = (cluster.clone(), id, cluster.check());
                Arc::new(move |group| {
                    check.is_held() && cluster.coordinator(group).is_some_and(|b| b.id == me)
                })
            }
            None => Arc::new(|_| true),
        };
        let txns = Arc::new(crate::txn::TxnCoordinator::new(
            meta.clone(),
            owns.clone(),
            clock.clone(),
            config.transactions.max_timeout_ms,
        ));
        let groups = Arc::new(
            Coordinator::open(
                meta.clone(),
                owns,
                group_settings,
                clock.clone(),
                retention_ms,
            )
            .await?,
        );
        let request_memory = Arc::new(tokio::sync::Semaphore::new(
            config.limits.queued_max_request_bytes as usize,
        ));
        let hold_lost = cluster
            .as_ref()
            .map_or_else(CancellationToken::new, |c| c.lost());
        let hold_check = cluster.as_ref().map(|c| c.check());
        let principals = PrincipalMapper::new(&config.security.ssl_principal_mapping_rules)
            .map_err(|e| Error::InvalidConfig(e.to_string()))?;
        let tokens = match &config.security.oauthbearer {
            Some(oauth) => {
                Some(Arc::new(TokenValidator::load(oauth).await.map_err(
                    |e| Error::InvalidConfig(format!("security.oauthbearer: {e}")),
                )?))
            }
            None => None,
        };
        let authorizer = Arc::new(Authorizer::new(&config.security));
        authorizer.refresh(&*meta).await?;
        let quotas = Arc::new(quotas::Quotas::default());
        quotas.refresh(&*meta).await?;
        let broker = Arc::new(Broker {
            id,
            authorizer: authorizer.clone(),
            principals,
            tokens,
            quotas,
            config,
            cluster: cluster.clone(),
            hold_lost,
            request_memory,
            log: log.clone(),
            groups: groups.clone(),
            txns: txns.clone(),
            clock,
            meta,
            bucket: bucket.clone(),
            exports: Default::default(),
            topics: RwLock::new(topics),
            dynamic_configs: RwLock::new(dynamic_configs),
            admin: tokio::sync::Mutex::new(()),
            tasks: TaskTracker::new(),
            stop_tasks: CancellationToken::new(),
            _data_dir_lock: lock,
        });
        broker
            .tasks
            .spawn(log.clone().run_reader_wakeups(broker.stop_tasks.clone()));
        broker
            .tasks
            .spawn(log.run_uploader(broker.stop_tasks.clone()));
        broker
            .tasks
            .spawn(groups.run_ticker(broker.stop_tasks.clone()));
        broker.tasks.spawn(
            broker
                .clone()
                .follow_acls_and_quotas(broker.stop_tasks.clone()),
        );
        let markers: Arc<dyn crate::txn::MarkerWriter> = broker.clone();
        broker
            .tasks
            .spawn(txns.run_ticker(markers, broker.stop_tasks.clone()));
        broker
            .tasks
            .spawn(broker.clone().run_lifecycle(broker.stop_tasks.clone()));
        broker
            .tasks
            .spawn(broker.clone().run_export(broker.stop_tasks.clone()));
        // In a cluster the controller collects.
        let is_collector: crate::log::gc::IsCollector = match &cluster {
            Some(cluster) => {
                let cluster = cluster.clone();
                Arc::new(move || cluster.controller() == Some(cluster.me()))
            }
            None => Arc::new(|| true),
        };
        let gc = crate::log::gc::GcSettings {
            interval: std::time::Duration::from_millis(broker.config.storage.gc_interval_ms),
            grace_ms: broker.config.storage.gc_grace_ms,
            clock: broker.clock.clone(),
            hold: hold_check,
            is_collector,
        };
        broker.tasks.spawn(crate::log::gc::run(
            bucket,
            broker.meta.clone(),
            gc,
            broker.stop_tasks.clone(),
        ));
        if let Some(cluster) = cluster {
            broker.tasks.spawn(crate::cluster::controller::run(
                cluster.clone(),
                broker.meta.clone(),
                broker.config.failover_grace(),
                broker.stop_tasks.clone(),
            ));
            broker.tasks.spawn(
                broker
                    .clone()
                    .follow_cluster(cluster.clone(), broker.stop_tasks.clone()),
            );
            // Only now is it given partitions and groups.
            cluster.announce(&broker.me(), true).await?;
        }
        Ok(broker)
    }

    /// Stops the uploader after a final upload, then closes the log; in a
    /// cluster, gives up its partitions if everything was uploaded, and
    /// leaves.
    pub async fn shutdown(&self) {
        self.stop_tasks.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        self.log.close().await;
        if let Some(cluster) = &self.cluster {
            // Everything is in the bucket: nothing needs this broker back.
            let unflushed = self.log.unflushed_bytes();
            if unflushed == 0 {
                // Not ready first: the controller must not give a
                // partition given up back to this broker.
                if let Err(e) = cluster.announce(&self.me(), false).await {
                    tracing::warn!(error = %e, "cannot announce leaving");
                }
                cluster.resign_leaderships().await;
            } else {
                tracing::warn!(
                    bytes = unflushed,
                    "not everything was uploaded: this broker's partitions wait for it as after a crash"
                );
            }
            cluster.leave().await;
        }
    }

    /// Cancelled when this broker's registration in its cluster may have
    /// ended: it must stop serving (never cancelled with the embedded
    /// store).
    pub fn hold_lost(&self) -> CancellationToken {
        self.hold_lost.clone()
    }

    /// Whether the broker serves: always alone; in a cluster while etcd
    /// confirms its registration (a load balancer's health check).
    pub fn serving(&self) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.check().is_held())
    }

    /// Reloads the ACLs and client quotas when they change, until `stop`.
    async fn follow_acls_and_quotas(self: Arc<Self>, stop: CancellationToken) {
        loop {
            if let Err(e) = self.authorizer.refresh(&*self.meta).await {
                tracing::warn!(error = %e, "cannot reload the ACLs");
            }
            if let Err(e) = self.quotas.refresh(&*self.meta).await {
                tracing::warn!(error = %e, "cannot reload the client quotas");
            }
            tokio::select! {
                () = tokio::time::sleep(ACL_AND_QUOTA_POLL) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Client quotas as stored (the broker keeps a copy).
    pub fn quota_store(&self) -> &dyn crate::meta::QuotaStore {
        &*self.meta
    }

    /// Users' SCRAM credentials.
    pub fn credentials(&self) -> &dyn crate::meta::CredentialStore {
        &*self.meta
    }

    /// The ACLs as stored (the authorizer keeps a copy).
    pub fn acl_store(&self) -> &dyn crate::meta::AclStore {
        &*self.meta
    }

    /// The budget of request bytes in memory, in bytes (see
    /// `limits.queued_max_request_bytes`).
    pub fn request_memory(&self) -> Arc<tokio::sync::Semaphore> {
        self.request_memory.clone()
    }

    /// The broker's wall clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The topic named `name`.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.read_topics().by_name.get(name).cloned()
    }

    /// The topic with id `id`.
    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.read_topics().by_id.get(&id).cloned()
    }

    /// All topics, by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut all: Vec<_> = self.read_topics().by_name.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    fn read_topics(&self) -> std::sync::RwLockReadGuard<'_, Topics> {
        self.topics.read().expect("topic registry poisoned")
    }

    fn install(&self, topic: Arc<Topic>) {
        let mut topics = self.topics.write().expect("topic registry poisoned");
        topics.by_id.insert(topic.id, topic.clone());
        topics.by_name.insert(topic.name.clone(), topic);
    }

    /// Dynamic broker config overrides.
    /// How `topic`'s configs resolve here, with the dynamic broker
    /// defaults `dynamic`.
    pub fn configs_of<'a>(
        &'a self,
        dynamic: &'a BTreeMap<String, String>,
        topic: &'a Topic,
    ) -> configs::TopicConfigs<'a> {
        self.topic_configs(dynamic, &topic.name, &topic.configs)
    }

    /// How the configs of the topic `name` resolve here, with its own
    /// `topic` configs and the dynamic broker defaults `dynamic`.
    pub fn topic_configs<'a>(
        &'a self,
        dynamic: &'a BTreeMap<String, String>,
        name: &'a str,
        topic: &'a BTreeMap<String, String>,
    ) -> configs::TopicConfigs<'a> {
        configs::TopicConfigs {
            config: &self.config,
            dynamic_broker: dynamic,
            name,
            topic,
        }
    }

    pub fn dynamic_configs(&self) -> BTreeMap<String, String> {
        self.dynamic_configs
            .read()
            .expect("config lock poisoned")
            .clone()
    }

    /// What `topic` asks of the batches produced to it.
    pub fn produce_policy(&self, topic: &Topic) -> configs::ProducePolicy {
        let dynamic = self.dynamic_configs.read().expect("config lock poisoned");
        self.configs_of(&dynamic, topic).produce_policy()
    }

    /// Creates a topic (or only checks that it could be, if `validate_only`).
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Uuid> {
        validate_topic_name(name)?;
        validate_partition_count(partitions)?;
        let configs = configs
            .into_iter()
            .map(|(k, v)| Ok((k.clone(), configs::validate_topic_config(&k, &v)?)))
            .collect::<Result<BTreeMap<_, _>>>()?;
        let _admin = self.admin.lock().await;
        if self.topic(name).is_some() {
            return Err(Error::TopicAlreadyExists(name.to_string()));
        }
        if validate_only {
            return Ok(Uuid::nil());
        }
        let meta = TopicMeta {
            name: name.to_string(),
            id: Uuid::new_v4(),
            partitions,
            configs,
        };
        self.meta.create_topic(meta.clone()).await?;
        let topic = load_topic(&self.log, self.meta.as_ref(), meta, self.cluster.is_some()).await?;
        tracing::info!(topic = name, partitions, "created topic");
        let id = topic.id;
        self.install(topic);
        Ok(id)
    }

    /// Creates `name` with the default partition count unless it exists;
    /// used by Metadata's auto-creation.
    pub async fn ensure_topic(&self, name: &str) -> Result<Arc<Topic>> {
        let partitions = self.config.topics.default_partitions;
        match self
            .create_topic(name, partitions, BTreeMap::new(), false)
            .await
        {
            Ok(_) | Err(Error::TopicAlreadyExists(_)) => {
                self.topic(name).ok_or(Error::UnknownTopicOrPartition)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes a topic and its data.
    pub async fn delete_topic(&self, name: &str) -> Result<Uuid> {
        let _admin = self.admin.lock().await;
        let topic = self.topic(name).ok_or(Error::UnknownTopicOrPartition)?;
        self.meta.delete_topic(name).await?;
        self.forget_topic(&topic).await;
        tracing::info!(topic = name, "deleted topic");
        Ok(topic.id)
    }

    /// Removes a deleted topic from the registry, the log and the groups.
    async fn forget_topic(&self, topic: &Topic) {
        {
            let mut topics = self.topics.write().expect("topic registry poisoned");
            topics.by_name.remove(&topic.name);
            topics.by_id.remove(&topic.id);
        }
        self.log.remove_topic(topic.id);
        self.groups.remove_topic(&topic.name).await;
    }

    /// Grows a topic to `count` partitions.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<()> {
        validate_partition_count(count)?;
        let _admin = self.admin.lock().await;
        let topic = self.topic(name).ok_or(Error::UnknownTopicOrPartition)?;
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Err(Error::InvalidPartitions(format!(
                "topic '{name}' has {current} partitions; the new count must be larger"
            )));
        }
        if validate_only {
            return Ok(());
        }
        self.meta.add_partitions(name, count).await?;
        self.grow(&topic, count).await
    }

    /// Installs `topic` grown to `count` partitions.
    async fn grow(&self, topic: &Topic, count: i32) -> Result<()> {
        let mut grown = topic.clone();
        for index in topic.partitions.len() as i32..count {
            grown.partitions.push(
                add_partition(
                    &self.log,
                    self.meta.as_ref(),
                    topic.id,
                    index,
                    self.cluster.is_some(),
                )
                .await?,
            );
        }
        self.install(Arc::new(grown));
        Ok(())
    }

    /// Applies config changes to a topic.
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        changes: &[ConfigChange],
        validate_only: bool,
    ) -> Result<()> {
        let _admin = self.admin.lock().await;
        let topic = self.topic(name).ok_or(Error::UnknownTopicOrPartition)?;
        let configs = apply_changes(&topic.configs, changes, configs::validate_topic_config)?;
        if validate_only {
            return Ok(());
        }
        self.meta.set_topic_configs(name, configs.clone()).await?;
        self.install(Arc::new(Topic {
            configs,
            ..(*topic).clone()
        }));
        Ok(())
    }

    /// Applies dynamic broker config changes (cluster-wide defaults).
    pub async fn alter_broker_configs(
        &self,
        changes: &[ConfigChange],
        validate_only: bool,
    ) -> Result<()> {
        let _admin = self.admin.lock().await;
        let configs = apply_changes(
            &self.dynamic_configs(),
            changes,
            configs::validate_broker_config,
        )?;
        if validate_only {
            return Ok(());
        }
        self.meta.set_broker_configs(configs.clone()).await?;
        *self.dynamic_configs.write().expect("config lock poisoned") = configs;
        Ok(())
    }

    /// A new producer id for InitProducerId.
    pub async fn allocate_producer_id(&self) -> Result<i64> {
        self.meta.allocate_producer_ids(1).await
    }
}

/// The metadata store `config` names, and with etcd this broker's
/// membership of the cluster (joined first: the store writes only while
/// it lasts).
async fn open_meta(config: &Config, id: i32) -> Result<(Arc<dyn MetaStore>, Option<Arc<Cluster>>)> {
    let Some(url) = config
        .storage
        .meta
        .as_deref()
        .filter(|_| config.in_cluster())
    else {
        return Ok((Arc::new(EmbeddedStore::open(&config.meta_dir())?), None));
    };
    let ttl = std::time::Duration::from_secs(config.storage.meta_lease_seconds);
    let me = BrokerInfo::of(id, config, false);
    let cluster = Cluster::join(url, &me, ttl).await?;
    match EtcdStore::connect(url, Some(cluster.member())).await {
        Ok(store) => Ok((Arc::new(store), Some(Arc::new(cluster)))),
        Err(e) => {
            cluster.leave().await;
            Err(e)
        }
    }
}

/// A topic's partitions: led by this broker, restored from their committed
/// state; or in a cluster, led by whoever the controller names.
async fn load_topic(
    log: &Log,
    meta: &dyn MetaStore,
    topic: TopicMeta,
    in_cluster: bool,
) -> Result<Arc<Topic>> {
    let mut partitions = Vec::with_capacity(topic.partitions as usize);
    for index in 0..topic.partitions {
        partitions.push(add_partition(log, meta, topic.id, index, in_cluster).await?);
    }
    Ok(Arc::new(Topic {
        traffic: Traffic::of(&topic.name),
        name: topic.name,
        id: topic.id,
        partitions,
        configs: topic.configs,
    }))
}

async fn add_partition(
    log: &Log,
    meta: &dyn MetaStore,
    topic: Uuid,
    index: i32,
    in_cluster: bool,
) -> Result<Arc<Partition>> {
    if in_cluster {
        return Ok(log.add_follower(topic, index));
    }
    let state = meta.partition(topic, index).await?;
    Ok(log.add_partition(topic, index, state))
}

fn apply_changes(
    current: &BTreeMap<String, String>,
    changes: &[ConfigChange],
    validate: fn(&str, &str) -> Result<String>,
) -> Result<BTreeMap<String, String>> {
    let mut next = current.clone();
    for change in changes {
        match change {
            ConfigChange::Set(key, value) => {
                next.insert(key.clone(), validate(key, value)?);
            }
            ConfigChange::Delete(key) => {
                next.remove(key);
            }
            ConfigChange::ClearAll => next.clear(),
        }
    }
    Ok(next)
}

/// Kafka's rule: 1-249 characters from `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let invalid = |why: &str| Err(Error::InvalidTopic(format!("'{name}' {why}")));
    if name.is_empty() || name.len() > 249 {
        return invalid("must have 1 to 249 characters");
    }
    if name == "." || name == ".." {
        return invalid("is reserved");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return invalid("may only contain ASCII letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

impl Broker {
    /// The preferred leader of each partition of a manual replica
    /// assignment (its first broker), checked: every partition names
    /// distinct live brokers. Replication is the bucket's job, so the
    /// other brokers named are not used.
    pub fn preferred_leaders(&self, replicas: &[Vec<i32>]) -> Result<Vec<i32>> {
        let live: Vec<i32> = self.live_brokers().iter().map(|b| b.id).collect();
        replicas
            .iter()
            .enumerate()
            .map(|(i, brokers)| {
                let invalid = |why: String| {
                    Err(Error::InvalidReplicaAssignment(format!(
                        "partition {i}: {why}"
                    )))
                };
                let Some(&first) = brokers.first() else {
                    return invalid("no broker named".into());
                };
                if let Some(unknown) = brokers.iter().find(|b| !live.contains(b)) {
                    return invalid(format!("broker {unknown} is not live"));
                }
                if brokers
                    .iter()
                    .enumerate()
                    .any(|(j, b)| brokers[..j].contains(b))
                {
                    return invalid("a broker is named twice".into());
                }
                Ok(first)
            })
            .collect()
    }

    /// Places partitions `first..` of `topic` on their preferred leaders
    /// (in a cluster; alone, every one is this broker's already).
    pub async fn place(&self, topic: Uuid, first: i32, leaders: &[i32]) -> Result<()> {
        if let Some(cluster) = &self.cluster {
            for (partition, &leader) in (first..).zip(leaders) {
                cluster.pin(topic, partition, leader).await?;
            }
        }
        Ok(())
    }
}

fn validate_partition_count(count: i32) -> Result<()> {
    if !(1..=MAX_PARTITIONS).contains(&count) {
        return Err(Error::InvalidPartitions(format!(
            "{count} is not between 1 and {MAX_PARTITIONS}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_eu-west").is_ok());
        for bad in ["", ".", "..", "has space", "ünïcode", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
