//! The embedded metadata store of a single-node broker: the state lives in
//! memory, every change is first appended to a journal in the data dir and
//! fsynced, and the journal is folded into a snapshot when it grows.
//!
//! Files: `meta/snapshot.json` (the state and the sequence number of the last
//! change it contains) and `meta/journal` (records `[len u32][crc32c u32][json]`
//! of numbered changes). Recovery loads the snapshot, replays the journal
//! records newer than it, and truncates a torn last record.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    AclStore, CommitOutcome, CommittedOffset, CredentialStore, ExportProgress, Extent, GroupMeta,
    GroupStore, PartitionCommit, PartitionMeta, PartitionStore, ProducerStore, QuotaStore,
    ScramCredential, ScramMechanism, TopicMeta, TopicStore, TransactionStore, TxnMeta, TxnOffsets,
    check_replacement, run_position,
};
use crate::acl::Acl;
use crate::error::{Error, Result};
use crate::quota::ClientQuota;

/// The journal is folded into a snapshot past this size.
const SNAPSHOT_AFTER_BYTES: u64 = 64 * 1024 * 1024;

/// A [`MetaStore`] kept in a directory on local disk.
pub struct EmbeddedStore {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    dir: PathBuf,
    state: State,
    journal: File,
    journal_len: u64,
    /// Set when the journal could not be repaired after a failed write.
    failure: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct State {
    /// Sequence number of the last change applied.
    seq: u64,
    topics: BTreeMap<String, TopicMeta>,
    partitions: BTreeMap<Uuid, Vec<PartitionMeta>>,
    next_producer_id: i64,
    broker_configs: BTreeMap<String, String>,
    groups: BTreeMap<String, GroupMeta>,
    /// group -> topic -> partition -> offset
    offsets: BTreeMap<String, BTreeMap<String, BTreeMap<i32, CommittedOffset>>>,
    #[serde(default)]
    transactions: BTreeMap<String, TxnMeta>,
    /// group -> producer id -> offsets of its open transaction
    #[serde(default)]
    txn_offsets: BTreeMap<String, BTreeMap<i64, TxnOffsets>>,
    /// user -> mechanism -> credential
    #[serde(default)]
    scram: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    #[serde(default)]
    acls: std::collections::BTreeSet<Acl>,
    /// Moves with every change of the ACLs.
    #[serde(default)]
    acl_version: u64,
    /// Client quotas by entity (its JSON).
    #[serde(default)]
    quotas: BTreeMap<String, ClientQuota>,
    /// Moves with every change of the quotas.
    #[serde(default)]
    quota_version: u64,
}

/// One durable change, as journaled.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Change {
    CreateTopic(TopicMeta),
    DeleteTopic(String),
    SetTopicConfigs {
        name: String,
        configs: BTreeMap<String, String>,
    },
    AddPartitions {
        name: String,
        count: i32,
    },
    Commit(Vec<PartitionCommit>),
    BumpLeaderEpoch {
        topic: Uuid,
        partition: i32,
    },
    AdvanceLogStart {
        topic: Uuid,
        partition: i32,
        offset: i64,
    },
    CommitExport {
        topic: Uuid,
        partition: i32,
        progress: ExportProgress,
    },
    ReplaceExtents {
        topic: Uuid,
        partition: i32,
        old: Vec<Extent>,
        new: Vec<Extent>,
    },
    AllocateProducerIds(u32),
    SetBrokerConfigs(BTreeMap<String, String>),
    PutGroup(GroupMeta),
    DeleteGroup(String),
    CommitOffsets {
        group: String,
        offsets: Vec<CommittedOffset>,
    },
    DeleteOffsets {
        group: String,
        partitions: Vec<(String, i32)>,
    },
    PutTransaction(TxnMeta),
    PutTxnOffsets {
        group: String,
        offsets: TxnOffsets,
    },
    EndTxnOffsets {
        group: String,
        producer_id: i64,
        commit: bool,
    },
    PutScramCredential(ScramCredential),
    DeleteScramCredential {
        user: String,
        mechanism: ScramMechanism,
    },
    CreateAcls(Vec<Acl>),
    DeleteAcls(Vec<Acl>),
    PutQuota(ClientQuota),
}

/// A journal record: a change and its sequence number.
#[derive(Deserialize)]
struct Record {
    seq: u64,
    change: Change,
}

/// The same record, borrowed for encoding.
#[derive(Serialize)]
struct RecordRef<'a> {
    seq: u64,
    change: &'a Change,
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`, recovering its state.
    pub fn open(dir: &Path) -> Result<EmbeddedStore> {
        let io_at = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::IoAt { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io_at(dir))?;
        let snapshot = dir.join("snapshot.json");
        let mut state = match std::fs::read(&snapshot) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::CorruptMetadata {
                key: snapshot.display().to_string(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(io_at(&snapshot)(e)),
        };
        let journal_path = dir.join("journal");
        let mut journal = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&journal_path)
            .map_err(io_at(&journal_path))?;
        let mut bytes = Vec::new();
        journal
            .read_to_end(&mut bytes)
            .map_err(io_at(&journal_path))?;
        let (records, valid_len) = parse_journal(&bytes)?;
        if valid_len < bytes.len() {
            tracing::warn!(
                dropped = bytes.len() - valid_len,
                "truncating a torn record at the end of the metadata journal"
            );
            journal
                .set_len(valid_len as u64)
                .and_then(|()| journal.sync_data())
                .map_err(io_at(&journal_path))?;
        }
        for record in records {
            if record.seq > state.seq {
                state.seq = record.seq;
                state.apply(&record.change);
            }
        }
        let journal = OpenOptions::new().append(true).open(&journal_path)?;
        Ok(EmbeddedStore {
            inner: Arc::new(Mutex::new(Inner {
                dir: dir.to_owned(),
                state,
                journal,
                journal_len: valid_len as u64,
                failure: None,
            })),
        })
    }

    /// Runs `f` on the state in a blocking thread (journal writes fsync).
    async fn with_inner<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = inner.lock().expect("metadata store lock poisoned");
            f(&mut guard)
        })
        .await
        .map_err(|e| Error::Meta(format!("metadata task failed: {e}")))?
    }

    async fn change<T: Send + 'static>(
        &self,
        change: Change,
        result: impl FnOnce(&State) -> T + Send + 'static,
    ) -> Result<T> {
        self.with_inner(move |inner| {
            inner.record(change)?;
            Ok(result(&inner.state))
        })
        .await
    }
}

impl Inner {
    /// Validates `change` against the state, journals it, then applies it.
    fn record(&mut self, change: Change) -> Result<()> {
        self.state.check(&change)?;
        let seq = self.state.seq + 1;
        let json = serde_json::to_vec(&RecordRef {
            seq,
            change: &change,
        })
        .map_err(|e| Error::Meta(format!("cannot encode change: {e}")))?;
        let mut frame = Vec::with_capacity(8 + json.len());
        frame.extend_from_slice(&(json.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32c::crc32c(&json).to_le_bytes());
        frame.extend_from_slice(&json);
        if let Some(failure) = &self.failure {
            return Err(Error::Meta(failure.clone()));
        }
        if let Err(e) = self.append(&frame) {
            self.roll_back(&e);
            return Err(e.into());
        }
        self.state.seq = seq;
        self.state.apply(&change);
        if self.journal_len > SNAPSHOT_AFTER_BYTES {
            // The change is durable in the journal already: a failed
            // snapshot only means the journal keeps growing until one works.
            if let Err(e) = self.snapshot() {
                tracing::error!(error = %e, "metadata snapshot failed; keeping the journal");
            }
        }
        Ok(())
    }

    fn append(&mut self, frame: &[u8]) -> std::io::Result<()> {
        self.journal.write_all(frame)?;
        self.journal.sync_data()?;
        self.journal_len += frame.len() as u64;
        Ok(())
    }

    /// Cuts a failed append off the journal so later records follow the
    /// last good one; if even that fails, refuses all further changes.
    fn roll_back(&mut self, cause: &std::io::Error) {
        let cut = self
            .journal
            .set_len(self.journal_len)
            .and_then(|()| self.journal.sync_all());
        if let Err(e) = cut {
            let failure =
                format!("metadata journal is damaged ({cause}; then {e}); restart the broker");
            tracing::error!("{failure}");
            self.failure = Some(failure);
        }
    }

    /// Writes the whole state as the snapshot, then empties the journal.
    fn snapshot(&mut self) -> Result<()> {
        let json = serde_json::to_vec(&self.state)
            .map_err(|e| Error::Meta(format!("cannot encode snapshot: {e}")))?;
        let tmp = self.dir.join("snapshot.json.tmp");
        let mut file = File::create(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        std::fs::rename(&tmp, self.dir.join("snapshot.json"))?;
        File::open(&self.dir)?.sync_all()?;
        // Records up to `seq` are in the snapshot; replay skips them even if
        // the truncation below never happens.
        self.journal.set_len(0)?;
        self.journal.sync_all()?;
        self.journal_len = 0;
        Ok(())
    }
}

impl State {
    /// A group's committed offsets, by topic and partition.
    fn offsets_of(&self, group: &str) -> Vec<CommittedOffset> {
        self.offsets
            .get(group)
            .map(|topics| topics.values().flat_map(|p| p.values().cloned()).collect())
            .unwrap_or_default()
    }

    /// Fails if `change` cannot be applied to this state.
    fn check(&self, change: &Change) -> Result<()> {
        let topic = |name: &str| self.topics.get(name).ok_or(Error::UnknownTopicOrPartition);
        match change {
            Change::CreateTopic(t) if self.topics.contains_key(&t.name) => {
                Err(Error::TopicAlreadyExists(t.name.clone()))
            }
            Change::DeleteTopic(name) | Change::SetTopicConfigs { name, .. } => {
                topic(name).map(|_| ())
            }
            Change::AddPartitions { name, count } => {
                let current = topic(name)?.partitions;
                if *count <= current {
                    return Err(Error::InvalidPartitions(format!(
                        "topic '{name}' has {current} partitions; the new count must be larger"
                    )));
                }
                Ok(())
            }
            Change::Commit(commits) => commits.iter().try_for_each(|c| self.check_contiguous(c)),
            Change::BumpLeaderEpoch { topic, partition } => self
                .partitions
                .get(topic)
                .and_then(|parts| parts.get(*partition as usize))
                .map(|_| ())
                .ok_or(Error::UnknownTopicOrPartition),
            Change::AdvanceLogStart {
                topic,
                partition,
                offset,
            } => self
                .partitions
                .get(topic)
                .and_then(|parts| parts.get(*partition as usize))
                .ok_or(Error::UnknownTopicOrPartition)?
                .check_log_start(*offset),
            _ => Ok(()),
        }
    }

    /// New extents must continue exactly where the partition's data ends.
    fn check_contiguous(&self, commit: &PartitionCommit) -> Result<()> {
        match self
            .partitions
            .get(&commit.topic)
            .and_then(|parts| parts.get(commit.partition as usize))
        {
            Some(partition) => commit.check_continues(partition.committed_end()),
            None => Ok(()),
        }
    }

    /// Applies a change that passed `check` (or was journaled after passing it).
    fn apply(&mut self, change: &Change) {
        match change {
            Change::CreateTopic(topic) => {
                self.topics.insert(topic.name.clone(), topic.clone());
                self.partitions.insert(
                    topic.id,
                    vec![PartitionMeta::default(); topic.partitions as usize],
                );
            }
            Change::DeleteTopic(name) => {
                if let Some(topic) = self.topics.remove(name) {
                    self.partitions.remove(&topic.id);
                }
                for topics in self.offsets.values_mut() {
                    topics.remove(name);
                }
                self.offsets.retain(|_, topics| !topics.is_empty());
            }
            Change::SetTopicConfigs { name, configs } => {
                if let Some(topic) = self.topics.get_mut(name) {
                    topic.configs = configs.clone();
                }
            }
            Change::AddPartitions { name, count } => {
                if let Some(topic) = self.topics.get_mut(name) {
                    topic.partitions = *count;
                    let parts = self.partitions.entry(topic.id).or_default();
                    parts.resize(*count as usize, PartitionMeta::default());
                }
            }
            Change::Commit(commits) => {
                for commit in commits {
                    self.apply_commit(commit);
                }
            }
            Change::BumpLeaderEpoch { topic, partition } => {
                if let Some(p) = self
                    .partitions
                    .get_mut(topic)
                    .and_then(|parts| parts.get_mut(*partition as usize))
                {
                    p.leader_epoch += 1;
                }
            }
            Change::AdvanceLogStart {
                topic,
                partition,
                offset,
            } => {
                if let Some(p) = self
                    .partitions
                    .get_mut(topic)
                    .and_then(|parts| parts.get_mut(*partition as usize))
                {
                    // Checked before it was journaled.
                    let _ = p.advance_log_start(*offset);
                }
            }
            Change::CommitExport {
                topic,
                partition,
                progress,
            } => {
                if let Some(p) = self
                    .partitions
                    .get_mut(topic)
                    .and_then(|parts| parts.get_mut(*partition as usize))
                {
                    p.export = progress.clone();
                }
            }
            Change::ReplaceExtents {
                topic,
                partition,
                old,
                new,
            } => {
                if let Some(p) = self
                    .partitions
                    .get_mut(topic)
                    .and_then(|parts| parts.get_mut(*partition as usize))
                {
                    // Checked before it was journaled.
                    let _ = p.replace_extents(old, new.clone());
                }
            }
            Change::AllocateProducerIds(count) => self.next_producer_id += i64::from(*count),
            Change::SetBrokerConfigs(configs) => self.broker_configs = configs.clone(),
            Change::PutGroup(group) => {
                let newer = self
                    .groups
                    .get(&group.id)
                    .is_none_or(|stored| stored.generation <= group.generation);
                if newer {
                    self.groups.insert(group.id.clone(), group.clone());
                }
            }
            Change::DeleteGroup(id) => {
                self.groups.remove(id);
                self.offsets.remove(id);
                self.txn_offsets.remove(id);
            }
            Change::CommitOffsets { group, offsets } => self.commit_offsets(group, offsets),
            Change::DeleteOffsets { group, partitions } => {
                if let Some(topics) = self.offsets.get_mut(group) {
                    for (topic, partition) in partitions {
                        if let Some(parts) = topics.get_mut(topic) {
                            parts.remove(partition);
                        }
                    }
                    topics.retain(|_, parts| !parts.is_empty());
                }
            }
            Change::PutTransaction(txn) => {
                self.transactions
                    .insert(txn.transactional_id.clone(), txn.clone());
            }
            Change::PutTxnOffsets { group, offsets } => {
                self.txn_offsets
                    .entry(group.clone())
                    .or_default()
                    .entry(offsets.producer_id)
                    .or_insert_with(|| TxnOffsets {
                        producer_id: offsets.producer_id,
                        offsets: Vec::new(),
                    })
                    .merge(offsets.offsets.clone());
            }
            Change::EndTxnOffsets {
                group,
                producer_id,
                commit,
            } => {
                let ended = self
                    .txn_offsets
                    .get_mut(group)
                    .and_then(|open| open.remove(producer_id));
                self.txn_offsets.retain(|_, open| !open.is_empty());
                if let Some(ended) = ended.filter(|_| *commit) {
                    self.commit_offsets(group, &ended.offsets);
                }
            }
            Change::PutScramCredential(credential) => {
                self.scram
                    .entry(credential.user.clone())
                    .or_default()
                    .insert(credential.mechanism, credential.clone());
            }
            Change::PutQuota(quota) => {
                let key = serde_json::to_string(&quota.entity).unwrap_or_default();
                if quota.values.is_empty() {
                    self.quotas.remove(&key);
                } else {
                    self.quotas.insert(key, quota.clone());
                }
                self.quota_version += 1;
            }
            Change::CreateAcls(acls) => {
                self.acls.extend(acls.iter().cloned());
                self.acl_version += 1;
            }
            Change::DeleteAcls(acls) => {
                for acl in acls {
                    self.acls.remove(acl);
                }
                self.acl_version += 1;
            }
            Change::DeleteScramCredential { user, mechanism } => {
                if let Some(held) = self.scram.get_mut(user) {
                    held.remove(mechanism);
                    if held.is_empty() {
                        self.scram.remove(user);
                    }
                }
            }
        }
    }

    fn commit_offsets(&mut self, group: &str, offsets: &[CommittedOffset]) {
        let topics = self.offsets.entry(group.to_string()).or_default();
        for o in offsets {
            topics
                .entry(o.topic.clone())
                .or_default()
                .insert(o.partition, o.clone());
        }
    }

    fn apply_commit(&mut self, commit: &PartitionCommit) -> CommitOutcome {
        let Some(partition) = self
            .partitions
            .get_mut(&commit.topic)
            .and_then(|parts| parts.get_mut(commit.partition as usize))
        else {
            return CommitOutcome::Gone;
        };
        if partition.leader_epoch != commit.leader_epoch {
            return CommitOutcome::Fenced;
        }
        partition.extents.extend(commit.extents.iter().cloned());
        commit.merge_producers(&mut partition.producers);
        commit.merge_aborted(&mut partition.aborted);
        CommitOutcome::Committed
    }

    /// What `apply` would answer for each commit, computed before applying.
    fn commit_outcomes(&self, commits: &[PartitionCommit]) -> Vec<CommitOutcome> {
        commits
            .iter()
            .map(
                |c| match self.led_partition(c.topic, c.partition, c.leader_epoch) {
                    Ok(_) => CommitOutcome::Committed,
                    Err(outcome) => outcome,
                },
            )
            .collect()
    }

    /// The partition if it still has `leader_epoch`; otherwise what a
    /// change made at that epoch gets (`Gone` or `Fenced`).
    fn led_partition(
        &self,
        topic: Uuid,
        partition: i32,
        leader_epoch: i32,
    ) -> std::result::Result<&PartitionMeta, CommitOutcome> {
        match self
            .partitions
            .get(&topic)
            .and_then(|parts| parts.get(partition as usize))
        {
            None => Err(CommitOutcome::Gone),
            Some(p) if p.leader_epoch != leader_epoch => Err(CommitOutcome::Fenced),
            Some(p) => Ok(p),
        }
    }
}

/// Parses journal records until the end or the first torn one; returns
/// them with the length of the valid prefix. A record whose CRC holds but
/// which does not decode is not a torn write: that is an error.
fn parse_journal(bytes: &[u8]) -> Result<(Vec<Record>, usize)> {
    let mut records = Vec::new();
    let mut pos = 0;
    while let Some(header) = bytes.get(pos..pos + 8) {
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let Some(body) = bytes.get(pos + 8..pos + 8 + len) else {
            break;
        };
        if crc32c::crc32c(body) != crc {
            break;
        }
        let record =
            serde_json::from_slice::<Record>(body).map_err(|e| Error::CorruptMetadata {
                key: format!("the metadata journal's record at byte {pos}"),
                reason: e.to_string(),
            })?;
        records.push(record);
        pos += 8 + len;
    }
    Ok((records, pos))
}

#[async_trait]
impl TopicStore for EmbeddedStore {
    async fn topics(&self) -> Result<Vec<TopicMeta>> {
        self.with_inner(|inner| Ok(inner.state.topics.values().cloned().collect()))
            .await
    }

    async fn create_topic(&self, topic: TopicMeta) -> Result<()> {
        self.change(Change::CreateTopic(topic), |_| ()).await
    }

    async fn delete_topic(&self, name: &str) -> Result<TopicMeta> {
        let name = name.to_string();
        self.with_inner(move |inner| {
            let topic = inner
                .state
                .topics
                .get(&name)
                .cloned()
                .ok_or(Error::UnknownTopicOrPartition)?;
            inner.record(Change::DeleteTopic(name))?;
            Ok(topic)
        })
        .await
    }

    async fn set_topic_configs(&self, name: &str, configs: BTreeMap<String, String>) -> Result<()> {
        let name = name.to_string();
        self.change(Change::SetTopicConfigs { name, configs }, |_| ())
            .await
    }

    async fn add_partitions(&self, name: &str, count: i32) -> Result<()> {
        let name = name.to_string();
        self.change(Change::AddPartitions { name, count }, |_| ())
            .await
    }

    async fn broker_configs(&self) -> Result<BTreeMap<String, String>> {
        self.with_inner(|inner| Ok(inner.state.broker_configs.clone()))
            .await
    }

    async fn set_broker_configs(&self, configs: BTreeMap<String, String>) -> Result<()> {
        self.change(Change::SetBrokerConfigs(configs), |_| ()).await
    }
}

#[async_trait]
impl PartitionStore for EmbeddedStore {
    async fn partition(&self, topic: Uuid, partition: i32) -> Result<PartitionMeta> {
        self.with_inner(move |inner| {
            inner
                .state
                .partitions
                .get(&topic)
                .and_then(|parts| parts.get(partition as usize))
                .cloned()
                .ok_or(Error::UnknownTopicOrPartition)
        })
        .await
    }

    async fn commit(&self, commits: Vec<PartitionCommit>) -> Result<Vec<CommitOutcome>> {
        self.with_inner(move |inner| {
            let outcomes = inner.state.commit_outcomes(&commits);
            let accepted: Vec<PartitionCommit> = commits
                .into_iter()
                .zip(&outcomes)
                .filter(|(_, o)| **o == CommitOutcome::Committed)
                .map(|(c, _)| c)
                .collect();
            if !accepted.is_empty() {
                inner.record(Change::Commit(accepted))?;
            }
            Ok(outcomes)
        })
        .await
    }

    async fn advance_log_start(
        &self,
        topic: Uuid,
        partition: i32,
        leader_epoch: i32,
        offset: i64,
    ) -> Result<CommitOutcome> {
        self.with_inner(move |inner| {
            let stored = match inner.state.led_partition(topic, partition, leader_epoch) {
                Ok(stored) => stored,
                Err(outcome) => return Ok(outcome),
            };
            if offset > stored.log_start_offset {
                inner.record(Change::AdvanceLogStart {
                    topic,
                    partition,
                    offset,
                })?;
            }
            Ok(CommitOutcome::Committed)
        })
        .await
    }

    async fn replace_extents(
        &self,
        topic: Uuid,
        partition: i32,
        leader_epoch: i32,
        old: Vec<Extent>,
        new: Vec<Extent>,
    ) -> Result<CommitOutcome> {
        self.with_inner(move |inner| {
            let stored = match inner.state.led_partition(topic, partition, leader_epoch) {
                Ok(stored) => stored,
                Err(outcome) => return Ok(outcome),
            };
            check_replacement(&old, &new)?;
            if run_position(&stored.extents, &old).is_none() {
                return Ok(CommitOutcome::Failed);
            }
            inner.record(Change::ReplaceExtents {
                topic,
                partition,
                old,
                new,
            })?;
            Ok(CommitOutcome::Committed)
        })
        .await
    }

    async fn commit_export(
        &self,
        topic: Uuid,
        partition: i32,
        leader_epoch: i32,
        expected: ExportProgress,
        progress: ExportProgress,
    ) -> Result<CommitOutcome> {
        self.with_inner(move |inner| {
            let stored = match inner.state.led_partition(topic, partition, leader_epoch) {
                Ok(stored) => stored,
                Err(outcome) => return Ok(outcome),
            };
            if stored.export != expected {
                return Ok(CommitOutcome::Failed);
            }
            inner.record(Change::CommitExport {
                topic,
                partition,
                progress,
            })?;
            Ok(CommitOutcome::Committed)
        })
        .await
    }

    async fn assign_leader(&self, topic: Uuid, partition: i32, _broker: i32) -> Result<i32> {
        self.change(Change::BumpLeaderEpoch { topic, partition }, move |state| {
            state.partitions[&topic][partition as usize].leader_epoch
        })
        .await
    }
}

#[async_trait]
impl ProducerStore for EmbeddedStore {
    async fn allocate_producer_ids(&self, count: u32) -> Result<i64> {
        self.with_inner(move |inner| {
            let first = inner.state.next_producer_id;
            inner.record(Change::AllocateProducerIds(count))?;
            Ok(first)
        })
        .await
    }
}

#[async_trait]
impl GroupStore for EmbeddedStore {
    async fn groups(&self) -> Result<Vec<(Option<GroupMeta>, String, Vec<CommittedOffset>)>> {
        self.with_inner(|inner| {
            let state = &inner.state;
            let ids: std::collections::BTreeSet<&String> =
                state.groups.keys().chain(state.offsets.keys()).collect();
            Ok(ids
                .into_iter()
                .map(|id| {
                    (
                        state.groups.get(id).cloned(),
                        id.clone(),
                        state.offsets_of(id),
                    )
                })
                .collect())
        })
        .await
    }

    async fn claim_group(&self, _group_id: &str) -> Result<bool> {
        Ok(true)
    }

    async fn release_group(&self, _group_id: &str) -> Result<()> {
        Ok(())
    }

    async fn group(&self, group_id: &str) -> Result<(Option<GroupMeta>, Vec<CommittedOffset>)> {
        let id = group_id.to_string();
        self.with_inner(move |inner| {
            let state = &inner.state;
            Ok((state.groups.get(&id).cloned(), state.offsets_of(&id)))
        })
        .await
    }

    async fn put_group(&self, group: GroupMeta) -> Result<()> {
        self.change(Change::PutGroup(group), |_| ()).await
    }

    async fn delete_group(&self, group_id: &str) -> Result<()> {
        self.change(Change::DeleteGroup(group_id.to_string()), |_| ())
            .await
    }

    async fn commit_offsets(&self, group_id: &str, offsets: Vec<CommittedOffset>) -> Result<()> {
        let group = group_id.to_string();
        self.change(Change::CommitOffsets { group, offsets }, |_| ())
            .await
    }

    async fn delete_offsets(&self, group_id: &str, partitions: Vec<(String, i32)>) -> Result<()> {
        let group = group_id.to_string();
        self.change(Change::DeleteOffsets { group, partitions }, |_| ())
            .await
    }
}

#[async_trait]
impl TransactionStore for EmbeddedStore {
    async fn transactions(&self) -> Result<Vec<TxnMeta>> {
        self.with_inner(|inner| Ok(inner.state.transactions.values().cloned().collect()))
            .await
    }

    async fn transaction(&self, transactional_id: &str) -> Result<Option<TxnMeta>> {
        let id = transactional_id.to_string();
        self.with_inner(move |inner| Ok(inner.state.transactions.get(&id).cloned()))
            .await
    }

    async fn claim_transaction(&self, _transactional_id: &str) -> Result<bool> {
        Ok(true)
    }

    async fn release_transaction(&self, _transactional_id: &str) -> Result<()> {
        Ok(())
    }

    async fn put_transaction(&self, txn: TxnMeta) -> Result<()> {
        self.change(Change::PutTransaction(txn), |_| ()).await
    }

    async fn txn_offsets(&self, group_id: &str) -> Result<Vec<TxnOffsets>> {
        let group = group_id.to_string();
        self.with_inner(move |inner| {
            let open = inner.state.txn_offsets.get(&group);
            Ok(open.into_iter().flat_map(|o| o.values().cloned()).collect())
        })
        .await
    }

    async fn put_txn_offsets(&self, group_id: &str, offsets: TxnOffsets) -> Result<()> {
        let group = group_id.to_string();
        self.change(Change::PutTxnOffsets { group, offsets }, |_| ())
            .await
    }

    async fn end_txn_offsets(&self, group_id: &str, producer_id: i64, commit: bool) -> Result<()> {
        let group = group_id.to_string();
        let change = Change::EndTxnOffsets {
            group,
            producer_id,
            commit,
        };
        self.change(change, |_| ()).await
    }
}

#[async_trait]
impl CredentialStore for EmbeddedStore {
    async fn scram_credentials(&self) -> Result<Vec<ScramCredential>> {
        self.with_inner(|inner| {
            let held = inner.state.scram.values();
            Ok(held.flat_map(|m| m.values().cloned()).collect())
        })
        .await
    }

    async fn scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Result<Option<ScramCredential>> {
        let user = user.to_string();
        self.with_inner(move |inner| {
            let held = inner.state.scram.get(&user);
            Ok(held.and_then(|m| m.get(&mechanism)).cloned())
        })
        .await
    }

    async fn put_scram_credential(&self, credential: ScramCredential) -> Result<()> {
        self.change(Change::PutScramCredential(credential), |_| ())
            .await
    }

    async fn delete_scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Result<bool> {
        let user = user.to_string();
        self.with_inner(move |inner| {
            let held = inner.state.scram.get(&user);
            if held.is_none_or(|m| !m.contains_key(&mechanism)) {
                return Ok(false);
            }
            inner.record(Change::DeleteScramCredential { user, mechanism })?;
            Ok(true)
        })
        .await
    }
}

#[async_trait]
impl AclStore for EmbeddedStore {
    async fn acls(&self) -> Result<(u64, Vec<Acl>)> {
        self.with_inner(|inner| {
            let state = &inner.state;
            Ok((state.acl_version, state.acls.iter().cloned().collect()))
        })
        .await
    }

    async fn acl_version(&self) -> Result<u64> {
        self.with_inner(|inner| Ok(inner.state.acl_version)).await
    }

    async fn create_acls(&self, acls: Vec<Acl>) -> Result<()> {
        self.change(Change::CreateAcls(acls), |_| ()).await
    }

    async fn delete_acls(&self, acls: Vec<Acl>) -> Result<()> {
        self.change(Change::DeleteAcls(acls), |_| ()).await
    }
}

#[async_trait]
impl QuotaStore for EmbeddedStore {
    async fn quotas(&self) -> Result<(u64, Vec<ClientQuota>)> {
        self.with_inner(|inner| {
            let state = &inner.state;
            Ok((
                state.quota_version,
                state.quotas.values().cloned().collect(),
            ))
        })
        .await
    }

    async fn quota_version(&self) -> Result<u64> {
        self.with_inner(|inner| Ok(inner.state.quota_version)).await
    }

    async fn put_quota(&self, quota: ClientQuota) -> Result<()> {
        self.change(Change::PutQuota(quota), |_| ()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::conformance;

    fn store(dir: &Path) -> EmbeddedStore {
        EmbeddedStore::open(dir).unwrap()
    }

    #[tokio::test]
    async fn conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        conformance::topics_lifecycle(&store(&dir.path().join("a"))).await;
        conformance::commits_are_epoch_guarded(&store(&dir.path().join("b"))).await;
        conformance::producer_ids_are_unique(&store(&dir.path().join("c"))).await;
        conformance::leader_epoch_bumps_fence_the_old_leader(&store(&dir.path().join("g"))).await;
        conformance::log_start_moves_forward_under_the_epoch(&store(&dir.path().join("i"))).await;
        conformance::extents_are_replaced_only_as_stored(&store(&dir.path().join("j"))).await;
        conformance::export_progress_moves_under_the_epoch(&store(&dir.path().join("o"))).await;
        conformance::partitions_beyond_the_count_do_not_exist(&store(&dir.path().join("h"))).await;
        conformance::broker_configs_round_trip(&store(&dir.path().join("d"))).await;
        conformance::groups_and_offsets(&store(&dir.path().join("e"))).await;
        conformance::deleting_a_topic_deletes_its_offsets(&store(&dir.path().join("f"))).await;
        conformance::transactions_and_their_offsets(&store(&dir.path().join("k"))).await;
        conformance::scram_credentials_by_user_and_mechanism(&store(&dir.path().join("l"))).await;
        conformance::acls_and_their_version(&store(&dir.path().join("m"))).await;
        conformance::quotas_by_entity(&store(&dir.path().join("n"))).await;
    }

    fn topic(name: &str) -> TopicMeta {
        TopicMeta {
            name: name.into(),
            id: Uuid::new_v4(),
            partitions: 3,
            configs: BTreeMap::new(),
        }
    }

    async fn topic_names(store: &EmbeddedStore) -> Vec<String> {
        let topics = store.topics().await.unwrap();
        topics.into_iter().map(|t| t.name).collect()
    }

    #[tokio::test]
    async fn state_survives_reopen_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = store(dir.path());
            s.create_topic(topic("a")).await.unwrap();
            s.create_topic(topic("b")).await.unwrap();
            s.allocate_producer_ids(5).await.unwrap();
        }
        // A crash mid-append leaves half a record.
        let mut journal = OpenOptions::new()
            .append(true)
            .open(dir.path().join("journal"))
            .unwrap();
        journal.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        drop(journal);
        let s = store(dir.path());
        assert_eq!(topic_names(&s).await, vec!["a", "b"]);
        assert_eq!(s.allocate_producer_ids(1).await.unwrap(), 5);
        s.create_topic(topic("c")).await.unwrap();
        drop(s);
        assert_eq!(store(dir.path()).topics().await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn snapshot_then_replay_skips_folded_records() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.create_topic(topic("a")).await.unwrap();
        let journal_before = std::fs::read(dir.path().join("journal")).unwrap();
        s.with_inner(|inner| inner.snapshot()).await.unwrap();
        s.create_topic(topic("b")).await.unwrap();
        drop(s);
        // Simulate a crash between the snapshot rename and the journal
        // truncation: the folded record is still in front of the new one.
        let mut journal = journal_before;
        journal.extend(std::fs::read(dir.path().join("journal")).unwrap());
        std::fs::write(dir.path().join("journal"), journal).unwrap();
        assert_eq!(topic_names(&store(dir.path())).await, vec!["a", "b"]);
    }
}
