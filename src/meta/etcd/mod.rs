//! The metadata store of cluster mode, in etcd (v3 API; etcd 3.4 works).
//!
//! Keys live under a root prefix (`etcd://HOST:PORT,.../ROOT`, default
//! `silt`), laid out in [`keys`].
//!
//! Every read-modify-write is a transaction comparing the revision it read,
//! retried on conflict. A partition commit compares the partition state's
//! revision and the topic's `alive` key, so a leader whose epoch is stale
//! can never commit. Partitions of one flush commit in separate
//! transactions (etcd allows 128 operations per transaction by default);
//! a commit retried after a partial failure is recognised and answered
//! as committed.

use std::collections::BTreeMap;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, KeyValue, KvClient, PutOptions,
    SortOrder, SortTarget, Txn, TxnOp,
};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    CommitOutcome, CommittedOffset, Extent, GroupMeta, MetaStore, PartitionCommit, PartitionLeader,
    PartitionMeta, ProducerSnapshot, TopicMeta, check_replacement,
};
use crate::error::{Error, Result};

pub mod keys;

pub use keys::Keys;

/// Partition commits of one flush in flight at once.
const COMMIT_CONCURRENCY: usize = 32;
/// Operations per transaction, under etcd's default limit of 128.
const OPS_PER_TXN: usize = 100;
/// Keys per page of a range read.
const LIST_PAGE: i64 = 1000;

/// A [`MetaStore`] in an etcd cluster.
pub struct EtcdStore {
    kv: KvClient,
    keys: Keys,
    /// The registration of the broker writing ([`crate::cluster`]): every
    /// write requires it still to hold, so a broker that left the cluster
    /// writes nothing more.
    member: Option<Member>,
}

/// A registered broker: its id and the lease of its registration.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    pub id: i32,
    pub lease: i64,
}

/// What the controller reads of a broker's registration.
#[derive(Debug, Deserialize)]
struct Registration {
    /// Registrations written before readiness was recorded are ready.
    #[serde(default = "ready_when_absent")]
    ready: bool,
}

fn ready_when_absent() -> bool {
    true
}

/// A partition's state apart from its extents.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PartitionState {
    leader_epoch: i32,
    log_start_offset: i64,
    /// The offset after the last committed record.
    end: i64,
    producers: BTreeMap<i64, ProducerSnapshot>,
}

/// A value as read, with the revision to compare when writing it back
/// (`None`: the key does not exist).
struct Read<T> {
    value: Option<T>,
    revision: Option<i64>,
}

impl<T> Read<T> {
    /// The comparison that holds while the key is as it was read.
    fn unchanged(&self, key: &str) -> Compare {
        match self.revision {
            Some(revision) => Compare::mod_revision(key, CompareOp::Equal, revision),
            None => Compare::create_revision(key, CompareOp::Equal, 0),
        }
    }
}

/// A client for `url` (`etcd://HOST:PORT[,HOST:PORT...][/ROOT]`) and the
/// root its keys live under (default `silt`).
pub async fn connect(url: &str) -> Result<(Client, String)> {
    let bad = || {
        Error::InvalidConfig(format!(
            "expected etcd://HOST:PORT[,HOST:PORT...][/ROOT], got '{url}'"
        ))
    };
    let rest = url.strip_prefix("etcd://").ok_or_else(bad)?;
    let (hosts, root) = rest.split_once('/').unwrap_or((rest, "silt"));
    let endpoints: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| format!("http://{h}"))
        .collect();
    let root = root.trim_end_matches('/');
    if endpoints.is_empty() || root.is_empty() {
        return Err(bad());
    }
    let options = etcd_client::ConnectOptions::new()
        .with_connect_timeout(std::time::Duration::from_secs(5))
        .with_timeout(std::time::Duration::from_secs(10));
    let client = Client::connect(&endpoints, Some(options))
        .await
        .map_err(|e| Error::InvalidConfig(format!("cannot reach etcd at {hosts}: {e}")))?;
    Ok((client, root.to_string()))
}

fn meta_error(e: impl std::fmt::Display) -> Error {
    Error::Meta(format!("etcd: {e}"))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Meta(format!("cannot encode metadata: {e}")))
}

fn decode<T: DeserializeOwned>(kv: &KeyValue) -> Result<T> {
    serde_json::from_slice(kv.value()).map_err(|e| Error::CorruptMetadata {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        reason: e.to_string(),
    })
}

impl EtcdStore {
    /// Connects to `url`: `etcd://HOST:PORT[,HOST:PORT...][/ROOT]`; with
    /// `member`, writes succeed only while that registration holds.
    pub async fn connect(url: &str, member: Option<Member>) -> Result<EtcdStore> {
        let (client, root) = connect(url).await?;
        let store = EtcdStore {
            kv: client.kv_client(),
            keys: Keys::new(&root),
            member,
        };
        // A first request proves the cluster answers.
        store
            .get::<serde_json::Value>(&store.keys.producer_ids())
            .await
            .map_err(|e| Error::InvalidConfig(format!("etcd at {url} does not answer: {e}")))?;
        Ok(store)
    }

    async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Read<T>> {
        let response = self.kv.clone().get(key, None).await.map_err(meta_error)?;
        match response.kvs().first() {
            Some(kv) => Ok(Read {
                value: Some(decode(kv)?),
                revision: Some(kv.mod_revision()),
            }),
            None => Ok(Read {
                value: None,
                revision: None,
            }),
        }
    }

    /// Every key and value under `prefix` (ending in '/'), in key order,
    /// read in pages so that no response outgrows the gRPC message limit.
    async fn list(&self, prefix: &str) -> Result<Vec<KeyValue>> {
        let prefix = prefix.to_string();
        // The first key after every key starting with `prefix` ('/' + 1).
        let end = format!("{}0", prefix.trim_end_matches('/'));
        let mut all = Vec::new();
        let mut from = prefix.into_bytes();
        loop {
            let options = GetOptions::new()
                .with_range(end.as_str())
                .with_limit(LIST_PAGE);
            let mut page = self
                .kv
                .clone()
                .get(from.clone(), Some(options))
                .await
                .map_err(meta_error)?;
            let more = page.more();
            let kvs = page.take_kvs();
            match kvs.last() {
                Some(last) if more => {
                    // The next page starts right after the last key.
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => {
                    all.extend(kvs);
                    return Ok(all);
                }
            }
            all.extend(kvs);
        }
    }

    /// Every value under `prefix`, decoded, in key order.
    async fn list_decoded<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>> {
        self.list(prefix).await?.iter().map(decode).collect()
    }

    /// Runs `ops` if every one of `compares` holds (and this broker is
    /// still registered); whether they ran.
    async fn txn(&self, compares: Vec<Compare>, ops: Vec<TxnOp>) -> Result<bool> {
        let mut compares = compares;
        let registration = self.member.map(|m| (self.keys.broker(m.id), m));
        if let Some((key, member)) = &registration {
            compares.push(Compare::lease(key.as_str(), CompareOp::Equal, member.lease));
        }
        let txn = Txn::new().when(compares).and_then(ops);
        let response = self.kv.clone().txn(txn).await.map_err(meta_error)?;
        if response.succeeded() {
            return Ok(true);
        }
        if let Some((key, member)) = registration {
            let held = self.kv.clone().get(key, None).await.map_err(meta_error)?;
            if held
                .kvs()
                .first()
                .is_none_or(|kv| kv.lease() != member.lease)
            {
                return Err(Error::LeaseLost);
            }
        }
        Ok(false)
    }

    /// Runs `ops` in transactions of at most [`OPS_PER_TXN`] operations.
    async fn write_all(&self, ops: Vec<TxnOp>) -> Result<()> {
        for chunk in ops.chunks(OPS_PER_TXN) {
            self.txn(Vec::new(), chunk.to_vec()).await?;
        }
        Ok(())
    }

    /// Reads the value at `path`, lets `change` turn it into the value to
    /// store, and writes it if the key did not change meanwhile; retries
    /// otherwise. `change` returns `Ok(None)` to write nothing.
    async fn update<T, R>(
        &self,
        key: &str,
        mut change: impl FnMut(Option<T>) -> Result<(Option<T>, R)>,
    ) -> Result<R>
    where
        T: Serialize + DeserializeOwned,
    {
        loop {
            let read: Read<T> = self.get(key).await?;
            let compare = read.unchanged(key);
            let (new, result) = change(read.value)?;
            let Some(new) = new else {
                return Ok(result);
            };
            let put = TxnOp::put(key, encode(&new)?, None);
            if self.txn(vec![compare], vec![put]).await? {
                return Ok(result);
            }
        }
    }

    /// The comparison that holds while this broker coordinates the group.
    fn group_guard(&self, group_id: &str) -> Option<Compare> {
        let member = self.member?;
        let key = self.keys.group_coordinator(group_id);
        Some(Compare::lease(key, CompareOp::Equal, member.lease))
    }

    /// Whether this broker holds the group owner key `key`.
    async fn owns_group(&self, key: &str) -> Result<bool> {
        let Some(member) = self.member else {
            return Ok(true);
        };
        let held = self.kv.clone().get(key, None).await.map_err(meta_error)?;
        Ok(held
            .kvs()
            .first()
            .is_some_and(|kv| kv.lease() == member.lease))
    }

    /// An error unless this broker coordinates the group.
    async fn check_owns_group(&self, group_id: &str) -> Result<()> {
        if self
            .owns_group(&self.keys.group_coordinator(group_id))
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotCoordinator(group_id.to_string()))
        }
    }

    /// Runs `ops` on a group's keys, in transactions of at most
    /// [`OPS_PER_TXN`] operations, each only while this broker coordinates
    /// the group.
    async fn write_group(&self, group_id: &str, ops: Vec<TxnOp>) -> Result<()> {
        for chunk in ops.chunks(OPS_PER_TXN) {
            let guard = self.group_guard(group_id).into_iter().collect();
            if !self.txn(guard, chunk.to_vec()).await? {
                return Err(Error::NotCoordinator(group_id.to_string()));
            }
        }
        Ok(())
    }

    /// Whether this broker holds the controller key.
    async fn is_controller(&self) -> Result<bool> {
        let Some(member) = self.member else {
            return Ok(false);
        };
        let held = self
            .kv
            .clone()
            .get(self.keys.controller(), None)
            .await
            .map_err(meta_error)?;
        Ok(held
            .kvs()
            .first()
            .is_some_and(|kv| kv.lease() == member.lease))
    }

    /// Whether the topic exists with this partition: its `alive` key holds
    /// the partition count.
    async fn partition_exists(&self, topic: Uuid, partition: i32) -> Result<bool> {
        let count: Read<i32> = self.get(&self.keys.alive(topic)).await?;
        Ok(count.value.is_some_and(|n| (0..n).contains(&partition)))
    }

    /// Commits one partition, reading again while its state moves under it.
    async fn commit_partition(&self, commit: &PartitionCommit) -> Result<CommitOutcome> {
        let (topic, partition) = (commit.topic, commit.partition);
        loop {
            let (read, mut state) =
                match self.read_led(topic, partition, commit.leader_epoch).await? {
                    Ok(led) => led,
                    Err(outcome) => return Ok(outcome),
                };
            if self.is_retry(commit, state.end).await? {
                return Ok(CommitOutcome::Committed);
            }
            commit.check_continues(state.end)?;
            let mut ops = Vec::with_capacity(commit.extents.len() + 1);
            for extent in &commit.extents {
                let key = self.keys.extent(topic, partition, extent.base_offset);
                ops.push(TxnOp::put(key, encode(extent)?, None));
                state.end = extent.last_offset + 1;
            }
            commit.merge_producers(&mut state.producers);
            if let Some(outcome) = self.write_led(topic, partition, &read, &state, ops).await? {
                return Ok(outcome);
            }
        }
    }

    /// A partition's state (and the read, to compare) for a change made at
    /// `leader_epoch`; `Err` with the outcome if the partition is gone or
    /// has another epoch.
    async fn read_led(
        &self,
        topic: Uuid,
        partition: i32,
        leader_epoch: i32,
    ) -> Result<std::result::Result<(Read<PartitionState>, PartitionState), CommitOutcome>> {
        let read: Read<PartitionState> = self
            .get(&self.keys.partition_state(topic, partition))
            .await?;
        if read.value.is_none() && !self.partition_exists(topic, partition).await? {
            return Ok(Err(CommitOutcome::Gone));
        }
        let state = read.value.clone().unwrap_or_default();
        if state.leader_epoch != leader_epoch {
            return Ok(Err(CommitOutcome::Fenced));
        }
        Ok(Ok((read, state)))
    }

    /// Writes `state` and runs `ops` if the partition state is still as
    /// `read` and its topic alive. `None` if the state moved on (read
    /// again); the outcome otherwise.
    async fn write_led(
        &self,
        topic: Uuid,
        partition: i32,
        read: &Read<PartitionState>,
        state: &PartitionState,
        mut ops: Vec<TxnOp>,
    ) -> Result<Option<CommitOutcome>> {
        let state_key = self.keys.partition_state(topic, partition);
        let alive_key = self.keys.alive(topic);
        ops.push(TxnOp::put(state_key.as_str(), encode(state)?, None));
        let compares = vec![
            read.unchanged(&state_key),
            Compare::version(alive_key.as_str(), CompareOp::Greater, 0),
        ];
        if self.txn(compares, ops).await? {
            return Ok(Some(CommitOutcome::Committed));
        }
        if !self.partition_exists(topic, partition).await? {
            return Ok(Some(CommitOutcome::Gone));
        }
        Ok(None)
    }

    /// The base offset of the stored extent holding `offset`, or `offset`
    /// if none does (it is where an extent starts, or the end).
    async fn extent_start(&self, topic: Uuid, partition: i32, offset: i64) -> Result<i64> {
        let options = GetOptions::new()
            .with_range(self.keys.extent(topic, partition, offset + 1))
            .with_sort(SortTarget::Key, SortOrder::Descend)
            .with_limit(1);
        let response = self
            .kv
            .clone()
            .get(self.keys.extent(topic, partition, 0), Some(options))
            .await
            .map_err(meta_error)?;
        let before = response.kvs().first().map(decode::<Extent>).transpose()?;
        Ok(before
            .filter(|e| e.last_offset >= offset)
            .map_or(offset, |e| e.base_offset))
    }

    /// Whether `commit` was already applied (an earlier attempt succeeded
    /// but its answer was lost): its first extent is stored, from the same
    /// object.
    async fn is_retry(&self, commit: &PartitionCommit, end: i64) -> Result<bool> {
        let Some(first) = commit.extents.first() else {
            return Ok(false);
        };
        if first.base_offset >= end {
            return Ok(false);
        }
        let key = self
            .keys
            .extent(commit.topic, commit.partition, first.base_offset);
        let stored: Read<Extent> = self.get(&key).await?;
        Ok(stored.value.is_some_and(|e| e == *first))
    }
}

#[async_trait]
impl MetaStore for EtcdStore {
    async fn topics(&self) -> Result<Vec<TopicMeta>> {
        self.list_decoded(&self.keys.topics()).await
    }

    async fn create_topic(&self, topic: TopicMeta) -> Result<()> {
        let key = self.keys.topic(&topic.name);
        let absent = Compare::create_revision(key.as_str(), CompareOp::Equal, 0);
        let puts = vec![
            TxnOp::put(key.as_str(), encode(&topic)?, None),
            TxnOp::put(
                self.keys.alive(topic.id),
                topic.partitions.to_string(),
                None,
            ),
        ];
        if self.txn(vec![absent], puts).await? {
            Ok(())
        } else {
            Err(Error::TopicAlreadyExists(topic.name))
        }
    }

    async fn delete_topic(&self, name: &str) -> Result<TopicMeta> {
        let key = self.keys.topic(name);
        let read: Read<TopicMeta> = self.get(&key).await?;
        let topic = read.value.clone().ok_or(Error::UnknownTopicOrPartition)?;
        let prefix = Some(DeleteOptions::new().with_prefix());
        let deletes = vec![
            TxnOp::delete(key.as_str(), None),
            TxnOp::delete(self.keys.alive(topic.id), None),
            TxnOp::delete(self.keys.partitions_of(topic.id), prefix.clone()),
            TxnOp::delete(self.keys.leaders_of(topic.id), prefix.clone()),
            TxnOp::delete(self.keys.pins_of(topic.id), prefix),
        ];
        if !self.txn(vec![read.unchanged(&key)], deletes).await? {
            return Err(Error::Meta(format!(
                "topic '{name}' changed while it was deleted; try again"
            )));
        }
        // Its committed offsets, in every group.
        let mut deletes = Vec::new();
        for kv in self.list(&self.keys.offsets()).await? {
            let offset: CommittedOffset = decode(&kv)?;
            if offset.topic == name {
                deletes.push(TxnOp::delete(kv.key().to_vec(), None));
            }
        }
        self.write_all(deletes).await?;
        Ok(topic)
    }

    async fn set_topic_configs(&self, name: &str, configs: BTreeMap<String, String>) -> Result<()> {
        self.update(&self.keys.topic(name), |topic: Option<TopicMeta>| {
            let mut topic = topic.ok_or(Error::UnknownTopicOrPartition)?;
            topic.configs = configs.clone();
            Ok((Some(topic), ()))
        })
        .await
    }

    async fn add_partitions(&self, name: &str, count: i32) -> Result<()> {
        let key = self.keys.topic(name);
        loop {
            let read: Read<TopicMeta> = self.get(&key).await?;
            let mut topic = read.value.clone().ok_or(Error::UnknownTopicOrPartition)?;
            if count <= topic.partitions {
                return Err(Error::InvalidPartitions(format!(
                    "topic '{name}' has {} partitions; the new count must be larger",
                    topic.partitions
                )));
            }
            topic.partitions = count;
            let puts = vec![
                TxnOp::put(key.as_str(), encode(&topic)?, None),
                TxnOp::put(self.keys.alive(topic.id), count.to_string(), None),
            ];
            if self.txn(vec![read.unchanged(&key)], puts).await? {
                return Ok(());
            }
        }
    }

    async fn partition(&self, topic: Uuid, partition: i32) -> Result<PartitionMeta> {
        if !self.partition_exists(topic, partition).await? {
            return Err(Error::UnknownTopicOrPartition);
        }
        let state: Read<PartitionState> = self
            .get(&self.keys.partition_state(topic, partition))
            .await?;
        let state = state.value.unwrap_or_default();
        let extents = self
            .list_decoded(&self.keys.extents(topic, partition))
            .await?;
        Ok(PartitionMeta {
            leader_epoch: state.leader_epoch,
            log_start_offset: state.log_start_offset,
            extents,
            producers: state.producers,
        })
    }

    async fn commit(&self, commits: Vec<PartitionCommit>) -> Result<Vec<CommitOutcome>> {
        let commits = commits
            .into_iter()
            .map(|commit| async move { self.commit_partition(&commit).await });
        let outcomes = futures::stream::iter(commits)
            .buffered(COMMIT_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        // Partitions commit separately: one failing must not undo, or
        // hide, the others.
        Ok(outcomes
            .into_iter()
            .map(|outcome| {
                outcome.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "partition commit failed; retried at the next upload");
                    CommitOutcome::Failed
                })
            })
            .collect())
    }

    async fn advance_log_start(
        &self,
        topic: Uuid,
        partition: i32,
        leader_epoch: i32,
        offset: i64,
    ) -> Result<CommitOutcome> {
        loop {
            let (read, mut state) = match self.read_led(topic, partition, leader_epoch).await? {
                Ok(led) => led,
                Err(outcome) => return Ok(outcome),
            };
            if offset > state.end {
                return Err(Error::OffsetOutOfRange {
                    offset,
                    start: state.log_start_offset,
                    end: state.end,
                });
            }
            if offset <= state.log_start_offset {
                return Ok(CommitOutcome::Committed);
            }
            state.log_start_offset = offset;
            // Read outside the transaction, but every extent change also
            // changes the state the transaction compares.
            let first_kept = self.extent_start(topic, partition, offset).await?;
            let forget =
                DeleteOptions::new().with_range(self.keys.extent(topic, partition, first_kept));
            let ops = vec![TxnOp::delete(
                self.keys.extent(topic, partition, 0),
                Some(forget),
            )];
            if let Some(outcome) = self.write_led(topic, partition, &read, &state, ops).await? {
                return Ok(outcome);
            }
        }
    }

    async fn replace_extents(
        &self,
        topic: Uuid,
        partition: i32,
        leader_epoch: i32,
        old: Vec<Extent>,
        new: Vec<Extent>,
    ) -> Result<CommitOutcome> {
        check_replacement(&old, &new)?;
        let (Some(first), Some(last)) = (old.first(), old.last()) else {
            return Ok(CommitOutcome::Failed);
        };
        let run_start = self.keys.extent(topic, partition, first.base_offset);
        let run_end = self.keys.extent(topic, partition, last.base_offset + 1);
        loop {
            let (read, state) = match self.read_led(topic, partition, leader_epoch).await? {
                Ok(led) => led,
                Err(outcome) => return Ok(outcome),
            };
            // Read outside the transaction, but every extent change also
            // changes the state the transaction compares.
            let options = GetOptions::new()
                .with_range(run_end.as_str())
                .with_limit(old.len() as i64 + 1);
            let response = self
                .kv
                .clone()
                .get(run_start.as_str(), Some(options))
                .await
                .map_err(meta_error)?;
            let stored: Vec<Extent> = response.kvs().iter().map(decode).collect::<Result<_>>()?;
            if stored != old {
                return Ok(CommitOutcome::Failed);
            }
            // (etcd refuses a transaction touching a key twice.)
            let kept: std::collections::HashSet<i64> = new.iter().map(|e| e.base_offset).collect();
            let mut ops: Vec<TxnOp> = old
                .iter()
                .filter(|e| !kept.contains(&e.base_offset))
                .map(|e| TxnOp::delete(self.keys.extent(topic, partition, e.base_offset), None))
                .collect();
            for extent in &new {
                let key = self.keys.extent(topic, partition, extent.base_offset);
                ops.push(TxnOp::put(key, encode(extent)?, None));
            }
            // The state is written as it is, so that its revision tells of
            // the change.
            if let Some(outcome) = self.write_led(topic, partition, &read, &state, ops).await? {
                return Ok(outcome);
            }
        }
    }

    async fn assign_leader(&self, topic: Uuid, partition: i32, broker: i32) -> Result<i32> {
        let state_key = self.keys.partition_state(topic, partition);
        let alive_key = self.keys.alive(topic);
        let leader_key = self.keys.leader(topic, partition);
        let controller_key = self.keys.controller();
        let broker_key = self.keys.broker(broker);
        loop {
            // Read afresh, not from a mirror that may lag: a broker that
            // left or is leaving must not be given a partition.
            let registration: Read<Registration> = self.get(&broker_key).await?;
            if self.member.is_some() && !registration.value.as_ref().is_some_and(|r| r.ready) {
                return Err(Error::Meta(format!(
                    "broker {broker} is not a ready member of the cluster"
                )));
            }
            let read: Read<PartitionState> = self.get(&state_key).await?;
            if read.value.is_none() && !self.partition_exists(topic, partition).await? {
                return Err(Error::UnknownTopicOrPartition);
            }
            let mut state = read.value.clone().unwrap_or_default();
            state.leader_epoch += 1;
            let leader = PartitionLeader {
                broker,
                epoch: state.leader_epoch,
            };
            let mut compares = vec![
                read.unchanged(&state_key),
                Compare::version(alive_key.as_str(), CompareOp::Greater, 0),
            ];
            if let Some(member) = self.member {
                compares.push(Compare::lease(
                    controller_key.as_str(),
                    CompareOp::Equal,
                    member.lease,
                ));
                compares.push(registration.unchanged(&broker_key));
            }
            let puts = vec![
                TxnOp::put(state_key.as_str(), encode(&state)?, None),
                TxnOp::put(leader_key.as_str(), encode(&leader)?, None),
            ];
            if self.txn(compares, puts).await? {
                return Ok(state.leader_epoch);
            }
            if !self.partition_exists(topic, partition).await? {
                return Err(Error::UnknownTopicOrPartition);
            }
            if self.member.is_some() && !self.is_controller().await? {
                return Err(Error::NotController);
            }
        }
    }

    async fn allocate_producer_ids(&self, count: u32) -> Result<i64> {
        self.update(&self.keys.producer_ids(), |next: Option<i64>| {
            let first = next.unwrap_or(0);
            Ok((Some(first + i64::from(count)), first))
        })
        .await
    }

    async fn broker_configs(&self) -> Result<BTreeMap<String, String>> {
        Ok(self
            .get(&self.keys.broker_configs())
            .await?
            .value
            .unwrap_or_default())
    }

    async fn set_broker_configs(&self, configs: BTreeMap<String, String>) -> Result<()> {
        let put = TxnOp::put(self.keys.broker_configs(), encode(&configs)?, None);
        self.txn(Vec::new(), vec![put]).await.map(|_| ())
    }

    async fn groups(&self) -> Result<Vec<(Option<GroupMeta>, String, Vec<CommittedOffset>)>> {
        let mut groups: BTreeMap<String, (Option<GroupMeta>, Vec<CommittedOffset>)> =
            BTreeMap::new();
        for kv in self.list(&self.keys.groups()).await? {
            let group: GroupMeta = decode(&kv)?;
            let id = group.id.clone();
            groups.entry(id).or_default().0 = Some(group);
        }
        for kv in self.list(&self.keys.offsets()).await? {
            let offset: CommittedOffset = decode(&kv)?;
            let key = String::from_utf8_lossy(kv.key());
            let id = self
                .keys
                .group_of_offset(&key)
                .ok_or_else(|| Error::CorruptMetadata {
                    key: key.to_string(),
                    reason: "the key names no group".into(),
                })?;
            groups.entry(id).or_default().1.push(offset);
        }
        Ok(groups
            .into_iter()
            .map(|(id, (group, offsets))| (group, id, offsets))
            .collect())
    }

    async fn group(&self, group_id: &str) -> Result<(Option<GroupMeta>, Vec<CommittedOffset>)> {
        let group = self.get(&self.keys.group(group_id)).await?.value;
        let offsets = self.list_decoded(&self.keys.offsets_of(group_id)).await?;
        Ok((group, offsets))
    }

    async fn claim_group(&self, group_id: &str) -> Result<bool> {
        let Some(member) = self.member else {
            return Ok(true);
        };
        let key = self.keys.group_coordinator(group_id);
        let put = TxnOp::put(
            key.as_str(),
            member.id.to_string(),
            Some(PutOptions::new().with_lease(member.lease)),
        );
        let absent = Compare::create_revision(key.as_str(), CompareOp::Equal, 0);
        Ok(self.txn(vec![absent], vec![put]).await? || self.owns_group(&key).await?)
    }

    async fn release_group(&self, group_id: &str) -> Result<()> {
        let Some(member) = self.member else {
            return Ok(());
        };
        let key = self.keys.group_coordinator(group_id);
        let mine = Compare::lease(key.as_str(), CompareOp::Equal, member.lease);
        self.txn(vec![mine], vec![TxnOp::delete(key.as_str(), None)])
            .await
            .map(|_| ())
    }

    async fn put_group(&self, group: GroupMeta) -> Result<()> {
        let key = self.keys.group(&group.id);
        loop {
            let read: Read<GroupMeta> = self.get(&key).await?;
            // An older generation never replaces a newer one.
            if read
                .value
                .as_ref()
                .is_some_and(|s| s.generation > group.generation)
            {
                return self.check_owns_group(&group.id).await;
            }
            let mut compares = vec![read.unchanged(&key)];
            compares.extend(self.group_guard(&group.id));
            let put = TxnOp::put(key.as_str(), encode(&group)?, None);
            if self.txn(compares, vec![put]).await? {
                return Ok(());
            }
            self.check_owns_group(&group.id).await?;
        }
    }

    async fn delete_group(&self, group_id: &str) -> Result<()> {
        let prefix = Some(DeleteOptions::new().with_prefix());
        let deletes = vec![
            TxnOp::delete(self.keys.group(group_id), None),
            TxnOp::delete(self.keys.offsets_of(group_id), prefix),
        ];
        self.write_group(group_id, deletes).await
    }

    async fn commit_offsets(&self, group_id: &str, offsets: Vec<CommittedOffset>) -> Result<()> {
        let mut puts = Vec::with_capacity(offsets.len());
        for o in &offsets {
            let key = self.keys.offset(group_id, &o.topic, o.partition);
            puts.push(TxnOp::put(key, encode(o)?, None));
        }
        self.write_group(group_id, puts).await
    }

    async fn delete_offsets(&self, group_id: &str, partitions: Vec<(String, i32)>) -> Result<()> {
        let deletes = partitions
            .iter()
            .map(|(topic, p)| TxnOp::delete(self.keys.offset(group_id, topic, *p), None))
            .collect();
        self.write_group(group_id, deletes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::conformance;

    /// The etcd the tests run against (`.ci/run` starts one).
    fn endpoint() -> String {
        std::env::var("ETCD_TEST_ENDPOINT").unwrap_or_else(|_| "127.0.0.1:23790".into())
    }

    /// A fresh root, so tests never see each other's keys.
    fn fresh_root() -> String {
        format!(
            "etcd://{}/silt-test-{}",
            endpoint(),
            Uuid::new_v4().simple()
        )
    }

    async fn store() -> EtcdStore {
        EtcdStore::connect(&fresh_root(), None)
            .await
            .expect("etcd is running (ETCD_TEST_ENDPOINT)")
    }

    #[tokio::test]
    async fn writes_need_the_registration_and_assignments_the_controller() {
        let url = fresh_root();
        let ttl = std::time::Duration::from_secs(5);
        let me = crate::cluster::BrokerInfo {
            id: 1,
            host: "127.0.0.1".into(),
            port: 9092,
            ready: true,
        };
        let cluster = crate::cluster::Cluster::join(&url, &me, ttl).await.unwrap();
        let store = EtcdStore::connect(&url, Some(cluster.member()))
            .await
            .unwrap();
        let configs = BTreeMap::from([("k".to_string(), "v".to_string())]);
        store.set_broker_configs(configs.clone()).await.unwrap();
        let t = conformance::topic("assigned", 1);
        store.create_topic(t.clone()).await.unwrap();
        let refused = store.assign_leader(t.id, 0, 1).await.unwrap_err();
        assert!(
            refused.to_string().contains("not the controller"),
            "{refused}"
        );
        assert!(cluster.campaign().await.unwrap());
        // Only a ready member is given a partition: not one that never
        // joined, nor one leaving.
        let absent = store.assign_leader(t.id, 0, 2).await.unwrap_err();
        assert!(
            absent.to_string().contains("not a ready member"),
            "{absent}"
        );
        cluster.announce(&me, false).await.unwrap();
        let leaving = store.assign_leader(t.id, 0, 1).await.unwrap_err();
        assert!(
            leaving.to_string().contains("not a ready member"),
            "{leaving}"
        );
        cluster.announce(&me, true).await.unwrap();
        assert_eq!(store.assign_leader(t.id, 0, 1).await.unwrap(), 1);
        let check = cluster.check();
        assert!(check.is_held());
        // As when the lease ends and the controller moves the partitions.
        cluster.leave().await;
        assert!(!check.is_held());
        let refused = store.set_broker_configs(BTreeMap::new()).await.unwrap_err();
        assert!(
            refused.to_string().contains("no longer registered"),
            "{refused}"
        );
        assert_eq!(store.broker_configs().await.unwrap(), configs);
    }

    /// A broker `id` registered on `url`, and its store.
    async fn member(url: &str, id: i32) -> (crate::cluster::Cluster, EtcdStore) {
        let me = crate::cluster::BrokerInfo {
            id,
            host: "127.0.0.1".into(),
            port: 9092,
            ready: true,
        };
        let ttl = std::time::Duration::from_secs(5);
        let cluster = crate::cluster::Cluster::join(url, &me, ttl).await.unwrap();
        let store = EtcdStore::connect(url, Some(cluster.member()))
            .await
            .unwrap();
        (cluster, store)
    }

    #[tokio::test]
    async fn one_coordinator_at_a_time_writes_a_group() {
        let url = fresh_root();
        let (_a_cluster, a) = member(&url, 1).await;
        let (_b_cluster, b) = member(&url, 2).await;
        let offset = CommittedOffset {
            topic: "t".into(),
            partition: 0,
            offset: 5,
            leader_epoch: 0,
            metadata: None,
            commit_time_ms: 1,
        };
        assert!(a.claim_group("g").await.unwrap());
        assert!(a.claim_group("g").await.unwrap(), "claimed again");
        assert!(!b.claim_group("g").await.unwrap());
        a.commit_offsets("g", vec![offset.clone()]).await.unwrap();
        let refused = b.commit_offsets("g", vec![offset.clone()]).await;
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("no longer coordinates")
        );
        a.release_group("g").await.unwrap();
        assert!(b.claim_group("g").await.unwrap());
        assert!(a.delete_offsets("g", vec![("t".into(), 0)]).await.is_err());
        b.delete_group("g").await.unwrap();
        assert_eq!(b.group("g").await.unwrap(), (None, Vec::new()));
    }

    #[tokio::test]
    async fn conformance_suite() {
        conformance::topics_lifecycle(&store().await).await;
        conformance::commits_are_epoch_guarded(&store().await).await;
        conformance::producer_ids_are_unique(&store().await).await;
        conformance::leader_epoch_bumps_fence_the_old_leader(&store().await).await;
        conformance::log_start_moves_forward_under_the_epoch(&store().await).await;
        conformance::extents_are_replaced_only_as_stored(&store().await).await;
        conformance::partitions_beyond_the_count_do_not_exist(&store().await).await;
        conformance::broker_configs_round_trip(&store().await).await;
        conformance::groups_and_offsets(&store().await).await;
        conformance::deleting_a_topic_deletes_its_offsets(&store().await).await;
    }

    #[tokio::test]
    async fn bad_urls_and_unreachable_clusters_are_named() {
        let Err(e) = EtcdStore::connect("http://127.0.0.1:2379", None).await else {
            panic!("accepted a non-etcd URL");
        };
        assert!(e.to_string().contains("expected etcd://"), "{e}");
        let Err(e) = EtcdStore::connect("etcd://127.0.0.1:1", None).await else {
            panic!("connected to nothing");
        };
        assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
    }

    #[tokio::test]
    async fn long_partitions_are_read_in_pages() {
        let store = store().await;
        let topic = conformance::topic("long", 1);
        store.create_topic(topic.clone()).await.unwrap();
        let extents: Vec<Extent> = (0..2_500)
            .map(|i| Extent {
                object: Uuid::now_v7(),
                position: 0,
                length: 10,
                base_offset: i,
                last_offset: i,
                max_timestamp: i,
                crc: None,
                compacted: false,
                tombstones_due_ms: None,
            })
            .collect();
        for chunk in extents.chunks(50) {
            let commit = PartitionCommit {
                topic: topic.id,
                partition: 0,
                leader_epoch: 0,
                extents: chunk.to_vec(),
                producers: BTreeMap::new(),
            };
            let outcomes = store.commit(vec![commit]).await.unwrap();
            assert_eq!(outcomes, vec![CommitOutcome::Committed]);
        }
        assert_eq!(store.partition(topic.id, 0).await.unwrap().extents, extents);
    }

    #[tokio::test]
    async fn a_thousand_partitions_commit_and_a_retry_is_recognised() {
        let store = store().await;
        let topic = conformance::topic("wide", 1000);
        store.create_topic(topic.clone()).await.unwrap();
        let object = Uuid::now_v7();
        let commits: Vec<PartitionCommit> = (0..1000)
            .map(|p| PartitionCommit {
                topic: topic.id,
                partition: p,
                leader_epoch: 0,
                extents: vec![Extent {
                    object,
                    position: p as u64 * 10,
                    length: 10,
                    base_offset: 0,
                    last_offset: 4,
                    max_timestamp: 1,
                    crc: None,
                    compacted: false,
                    tombstones_due_ms: None,
                }],
                producers: BTreeMap::new(),
            })
            .collect();
        let outcomes = store.commit(commits.clone()).await.unwrap();
        assert!(outcomes.iter().all(|o| *o == CommitOutcome::Committed));
        // The same commit again (its answer was lost): committed, not doubled.
        let outcomes = store.commit(commits[..10].to_vec()).await.unwrap();
        assert!(outcomes.iter().all(|o| *o == CommitOutcome::Committed));
        let p = store.partition(topic.id, 999).await.unwrap();
        assert_eq!(p.extents, commits[999].extents);
        assert_eq!(p.committed_end(), 5);
    }
}
