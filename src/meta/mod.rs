//! The metadata store: topics, per-partition state (leader epoch, log start,
//! extents, producer state), producer ids and dynamic broker configs.
//!
//! [`MetaStore`] has two implementations: [`embedded::EmbeddedStore`] (one
//! node, a journal in the data dir) and the etcd store of cluster mode. Both
//! run the shared [`conformance`] suite. Every extent commit compares the
//! partition's leader epoch, so a fenced leader can never commit.

pub mod cache;
pub mod embedded;
pub mod etcd;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::acl::Acl;
use crate::error::Result;
use crate::quota::ClientQuota;

/// A topic as stored: its name, id, partition count and config overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    /// Topic-level config overrides (`retention.ms`, ...); absent keys inherit.
    pub configs: BTreeMap<String, String>,
}

/// The durable state of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMeta {
    pub leader_epoch: i32,
    pub log_start_offset: i64,
    /// Committed data, contiguous and ordered by offset.
    pub extents: Vec<Extent>,
    /// Idempotent producer state as of the last committed extent.
    pub producers: BTreeMap<i64, ProducerSnapshot>,
    /// Aborted transactions ending in the committed log, by marker offset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aborted: Vec<AbortedTxn>,
    /// How far the partition is exported (topics with export on).
    #[serde(default, skip_serializing_if = "ExportProgress::is_none")]
    pub export: ExportProgress,
}

/// How far a partition is exported to Parquet (`crate::export`): every
/// committed record before `offset` is in the export files, and none
/// after it. Committed, fenced by the leader epoch, once the file that
/// ends at `offset` is written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportProgress {
    /// The offset the next export file starts at.
    pub offset: i64,
    /// Files, rows and file bytes exported so far.
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    /// When the last file was committed (ms since the epoch; 0: none yet).
    pub committed_ms: i64,
    /// With `silt.export.value = json`: the value fields with a column so
    /// far, in column order (the schema only grows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json_fields: Vec<JsonField>,
}

/// The type of an exported JSON field's column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonKind {
    Bool,
    Int,
    Float,
    Text,
}

/// A field of exported JSON values and the type of its column
/// (`crate::export::json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonField {
    pub name: String,
    pub kind: JsonKind,
}

impl ExportProgress {
    /// Whether nothing was exported yet.
    pub fn is_none(&self) -> bool {
        *self == ExportProgress::default()
    }
}

impl PartitionMeta {
    /// The offset after the last committed record.
    pub fn committed_end(&self) -> i64 {
        self.extents
            .last()
            .map_or(self.log_start_offset, |e| e.last_offset + 1)
    }

    /// Replaces the run `old` of the stored extents with `new` (see
    /// [`PartitionStore::replace_extents`]); whether `old` was stored as given.
    pub fn replace_extents(&mut self, old: &[Extent], new: Vec<Extent>) -> Result<bool> {
        check_replacement(old, &new)?;
        let Some(at) = run_position(&self.extents, old) else {
            return Ok(false);
        };
        self.extents.splice(at..at + old.len(), new);
        Ok(true)
    }

    /// Fails if the log start may not move to `offset`: past the
    /// committed end (it never passes it, so the end stays known without
    /// extents).
    pub fn check_log_start(&self, offset: i64) -> Result<()> {
        let end = self.committed_end();
        if offset > end {
            return Err(crate::error::Error::OffsetOutOfRange {
                offset,
                start: self.log_start_offset,
                end,
            });
        }
        Ok(())
    }

    /// Moves the log start forward to `offset` (see
    /// [`PartitionMeta::check_log_start`]) and forgets the extents wholly
    /// before it; an offset at or before the log start changes nothing.
    /// Whether it moved.
    pub fn advance_log_start(&mut self, offset: i64) -> Result<bool> {
        self.check_log_start(offset)?;
        if offset <= self.log_start_offset {
            return Ok(false);
        }
        self.log_start_offset = offset;
        self.extents.retain(|e| e.last_offset >= offset);
        forget_aborted_before(&mut self.aborted, offset);
        Ok(true)
    }
}

/// Forgets the aborted transactions whose markers lie before `log_start`:
/// no read can reach their records any more.
pub fn forget_aborted_before(aborted: &mut Vec<AbortedTxn>, log_start: i64) {
    aborted.retain(|a| a.last_offset >= log_start);
}

/// A transaction that was aborted in one partition: its records from
/// `first_offset` on, up to its ABORT marker at `last_offset`, are skipped
/// by read_committed consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// Fails unless `new` may replace the run `old`: it covers exactly the
/// same offsets, and neither holds more than [`MAX_REPLACED_EXTENTS`].
pub fn check_replacement(old: &[Extent], new: &[Extent]) -> Result<()> {
    let meta_error = |why: String| Err(crate::error::Error::Meta(why));
    if old.len() > MAX_REPLACED_EXTENTS || new.len() > MAX_REPLACED_EXTENTS {
        return meta_error(format!(
            "at most {MAX_REPLACED_EXTENTS} extents are replaced at once"
        ));
    }
    let (Some(first), Some(last)) = (old.first(), old.last()) else {
        return meta_error("an empty run of extents cannot be replaced".into());
    };
    let same_range = new.first().map(|e| e.base_offset) == Some(first.base_offset)
        && new.last().map(|e| e.last_offset) == Some(last.last_offset);
    if !same_range {
        return meta_error(format!(
            "new extents must cover offsets {}..={} exactly",
            first.base_offset, last.last_offset
        ));
    }
    Ok(())
}

/// Where the run `old` starts in `extents`, if they hold it as given.
pub fn run_position(extents: &[Extent], old: &[Extent]) -> Option<usize> {
    let at = extents.iter().position(|e| Some(e) == old.first())?;
    (extents.get(at..at + old.len()) == Some(old)).then_some(at)
}

/// The most extents one [`PartitionStore::replace_extents`] takes, and gives.
pub const MAX_REPLACED_EXTENTS: usize = 60;

/// Which broker leads a partition, at which leader epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionLeader {
    pub broker: i32,
    pub epoch: i32,
}

/// A run of whole record batches of one partition inside a data object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    /// The data object holding the bytes.
    pub object: Uuid,
    /// Byte range within the object.
    pub position: u64,
    pub length: u64,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    /// CRC-32C of the bytes, checked when they are read from the bucket
    /// (absent in extents committed before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc: Option<u32>,
    /// Written by log compaction: its batches hold no record a later one
    /// of the same key replaces (as of that compaction).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compacted: bool,
    /// When the earliest tombstone compaction kept here may be removed
    /// (its timestamp plus the topic's `delete.retention.ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstones_due_ms: Option<i64>,
    /// In a sealed WAL segment (`local` durability's uploads, until
    /// merged): where this partition's entry list lies in the object. The
    /// extent's batches are then its entries within `position..position +
    /// length`, among other partitions' ones, and `crc` is the list's (see
    /// `log::segment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_list: Option<std::ops::Range<u64>>,
}

/// Producers silent this long are forgotten (Kafka's
/// `producer.id.expiration.ms` default); a forgotten producer that comes
/// back is accepted at whatever sequence it continues with.
pub const PRODUCER_EXPIRY_MS: i64 = 24 * 3600 * 1000;

/// Idempotent producers remembered per partition at most: a bound on the
/// partition's stored state (one etcd value), which many short-lived
/// producers would otherwise grow for a day. A forgotten producer that
/// comes back is accepted at whatever sequence it continues with.
pub const MAX_PRODUCERS_PER_PARTITION: usize = 2_000;

/// What the broker remembers of an idempotent producer on one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerSnapshot {
    pub epoch: i16,
    /// Wall-clock time of the producer's last write, for expiry.
    pub last_write_ms: i64,
    /// The most recent batches (oldest first), to answer retries.
    pub batches: Vec<ProducedBatch>,
    /// The first offset of the producer's transaction still open in the
    /// partition, if one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn_first_offset: Option<i64>,
}

/// Sequence and offset range of one batch an idempotent producer wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducedBatch {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

/// New extents and producer state for one partition, committed only if the
/// partition still has `leader_epoch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionCommit {
    pub topic: Uuid,
    pub partition: i32,
    pub leader_epoch: i32,
    pub extents: Vec<Extent>,
    pub producers: BTreeMap<i64, ProducerSnapshot>,
    /// Transactions aborted by markers in these extents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aborted: Vec<AbortedTxn>,
}

impl PartitionCommit {
    /// Fails unless the new extents continue exactly at offset `end`, where
    /// the partition's committed data ends.
    pub fn check_continues(&self, mut end: i64) -> Result<()> {
        for extent in &self.extents {
            if extent.base_offset != end || extent.last_offset < extent.base_offset {
                return Err(crate::error::Error::Meta(format!(
                    "extent {}..={} does not continue partition {} at offset {end}",
                    extent.base_offset, extent.last_offset, self.partition
                )));
            }
            end = extent.last_offset + 1;
        }
        Ok(())
    }

    /// Adds the commit's aborted transactions to the partition's `aborted`
    /// (a retried commit adds nothing twice).
    pub fn merge_aborted(&self, aborted: &mut Vec<AbortedTxn>) {
        for txn in &self.aborted {
            if !aborted.contains(txn) {
                aborted.push(*txn);
            }
        }
    }

    /// Merges the commit's producer state into `producers`, forgetting
    /// producers silent for [`PRODUCER_EXPIRY_MS`] before the newest write,
    /// and the longest silent beyond [`MAX_PRODUCERS_PER_PARTITION`].
    pub fn merge_producers(&self, producers: &mut BTreeMap<i64, ProducerSnapshot>) {
        let newest = self
            .producers
            .values()
            .map(|p| p.last_write_ms)
            .max()
            .unwrap_or(0);
        producers.extend(self.producers.iter().map(|(id, p)| (*id, p.clone())));
        producers.retain(|_, p| {
            newest - p.last_write_ms < PRODUCER_EXPIRY_MS || p.txn_first_offset.is_some()
        });
        if producers.len() > MAX_PRODUCERS_PER_PARTITION {
            let mut by_age: Vec<(i64, i64)> = producers
                .iter()
                .map(|(id, p)| (p.last_write_ms, *id))
                .collect();
            by_age.sort_unstable();
            let excess = producers.len() - MAX_PRODUCERS_PER_PARTITION;
            for (_, id) in &by_age[..excess] {
                producers.remove(id);
            }
        }
    }
}

/// A consumer group as persisted at its last stable point (or when it
/// emptied), so members keep their generation across a broker restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMeta {
    pub id: String,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<GroupMemberMeta>,
}

/// A group member as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMemberMeta {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// (protocol name, member metadata) in the member's preference order.
    pub protocols: Vec<(String, Vec<u8>)>,
    pub assignment: Vec<u8>,
}

/// A committed consumer offset of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    /// Wall-clock time of the commit, for offset retention.
    pub commit_time_ms: i64,
}

/// Where a transaction is in its life (Kafka's coordinator states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnState {
    /// No transaction since the producer id was given out.
    Empty,
    Ongoing,
    /// Decided: its markers are being written.
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
}

/// A transactional producer as its coordinator keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnMeta {
    pub transactional_id: String,
    pub producer_id: i64,
    pub epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// The partitions (topic name, index) of the current transaction.
    pub partitions: std::collections::BTreeSet<(String, i32)>,
    /// The groups whose offsets the current transaction commits.
    pub groups: std::collections::BTreeSet<String>,
    /// When the current transaction started (wall clock, ms).
    pub started_ms: i64,
    /// When the state last changed (wall clock, ms).
    pub updated_ms: i64,
}

/// Offsets a transactional producer committed to a group, visible only
/// once its transaction commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnOffsets {
    pub producer_id: i64,
    pub offsets: Vec<CommittedOffset>,
}

impl TxnOffsets {
    /// Adds `offsets`, replacing those held of the same partitions.
    pub fn merge(&mut self, offsets: Vec<CommittedOffset>) {
        for o in offsets {
            self.offsets
                .retain(|held| (&held.topic, held.partition) != (&o.topic, o.partition));
            self.offsets.push(o);
        }
    }
}

/// A SCRAM mechanism (RFC 5802 with RFC 7677's hashes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    /// Both mechanisms.
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name (`SCRAM-SHA-256`).
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism named `name`.
    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The code Kafka's credential APIs use (1: SHA-256, 2: SHA-512).
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// The mechanism of Kafka's code `code`.
    pub fn from_code(code: i8) -> Option<ScramMechanism> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }
}

/// A user's SCRAM credential: what the server keeps instead of the
/// password (RFC 5802's StoredKey and ServerKey, with the salt and
/// iteration count the client needs to prove it knows the password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub user: String,
    pub mechanism: ScramMechanism,
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// The fate of one [`PartitionCommit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed,
    /// The partition has a newer leader epoch: this broker must step down.
    Fenced,
    /// The topic or partition was deleted meanwhile; the data is dropped.
    Gone,
    /// Not committed this time (the store failed); the data stays buffered
    /// for the next upload.
    Failed,
}

/// The topic registry and the dynamic broker configs.
#[async_trait]
pub trait TopicStore: Send + Sync + 'static {
    /// All topics.
    async fn topics(&self) -> Result<Vec<TopicMeta>>;
    /// Creates a topic and its partitions; `TopicAlreadyExists` if the name is taken.
    async fn create_topic(&self, topic: TopicMeta) -> Result<()>;
    /// Deletes a topic with its partition state; returns what was deleted.
    async fn delete_topic(&self, name: &str) -> Result<TopicMeta>;
    /// Replaces the topic's config overrides.
    async fn set_topic_configs(&self, name: &str, configs: BTreeMap<String, String>) -> Result<()>;
    /// Grows the topic to `count` partitions.
    async fn add_partitions(&self, name: &str, count: i32) -> Result<()>;
    /// Dynamic broker config overrides (set with IncrementalAlterConfigs).
    async fn broker_configs(&self) -> Result<BTreeMap<String, String>>;
    /// Replaces the dynamic broker config overrides.
    async fn set_broker_configs(&self, configs: BTreeMap<String, String>) -> Result<()>;
}

/// Partitions' logs: their extents, log start, producer state and
/// leader epochs, every change fenced by the epoch.
#[async_trait]
pub trait PartitionStore: Send + Sync + 'static {
    /// The state of one partition.
    async fn partition(&self, topic: Uuid, partition: i32) -> Result<PartitionMeta>;
    /// Appends extents and producer state to partitions, each guarded by
    /// its leader epoch; each partition's commit is atomic. `Err` means
    /// nothing was committed.
    async fn commit(&self, commits: Vec<PartitionCommit>) -> Result<Vec<CommitOutcome>>;
    /// Moves a partition's log start forward to `offset` (retention,
    /// DeleteRecords) and forgets its extents wholly before it, if the
    /// partition still has `leader_epoch`; see
    /// [`PartitionMeta::advance_log_start`].
    async fn advance_log_start(
        &self,
        topic: Uuid,
        partition: i32,
        leader_epoch: i32,
        offset: i64,
    ) -> Result<CommitOutcome>;
    /// Replaces the run of extents `old` (consecutive, as stored) with
    /// `new`, which must cover the same offsets (merging, compaction), if
    /// the partition still has `leader_epoch`; `Failed` if `old` is no
    /// longer stored as given (retention or another rewrite got there
    /// first), and nothing changes. At most [`MAX_REPLACED_EXTENTS`] old
    /// and as many new extents (an etcd transaction's bound).
    async fn replace_extents(
        &self,
        topic: Uuid,
        partition: i32,
        leader_epoch: i32,
        old: Vec<Extent>,
        new: Vec<Extent>,
    ) -> Result<CommitOutcome>;
    /// Records the partition's export progress, if the partition still has
    /// `leader_epoch` and its progress is still `expected` (one exporter
    /// at a time moves it).
    async fn commit_export(
        &self,
        topic: Uuid,
        partition: i32,
        leader_epoch: i32,
        expected: ExportProgress,
        progress: ExportProgress,
    ) -> Result<CommitOutcome>;
    /// Makes `broker` the partition's leader: raises its leader epoch by
    /// one and returns the new epoch; from then on commits at the old epoch
    /// are fenced. In etcd only the controller may, and the leader is
    /// recorded for every broker to see; the embedded store has one broker
    /// and records only the epoch.
    async fn assign_leader(&self, topic: Uuid, partition: i32, broker: i32) -> Result<i32>;
}

/// Producer ids for idempotent producers.
#[async_trait]
pub trait ProducerStore: Send + Sync + 'static {
    /// Reserves `count` producer ids and returns the first.
    async fn allocate_producer_ids(&self, count: u32) -> Result<i64>;
}

/// Consumer groups: which broker coordinates each, their metadata and
/// committed offsets.
#[async_trait]
pub trait GroupStore: Send + Sync + 'static {
    /// Every group with metadata or committed offsets, with its offsets.
    async fn groups(&self) -> Result<Vec<(Option<GroupMeta>, String, Vec<CommittedOffset>)>>;
    /// Makes this broker the coordinator of `group_id` in the store, unless
    /// another live broker is (then `false`); from then on, until
    /// [`GroupStore::release_group`] or this broker's end, only it can write
    /// the group. The embedded store has one broker: always `true`.
    async fn claim_group(&self, group_id: &str) -> Result<bool>;
    /// Gives up coordinating `group_id`, so another broker can claim it.
    async fn release_group(&self, group_id: &str) -> Result<()>;
    /// One group's metadata (if stored) and committed offsets.
    async fn group(&self, group_id: &str) -> Result<(Option<GroupMeta>, Vec<CommittedOffset>)>;
    /// Stores a group's metadata unless a newer generation is stored.
    async fn put_group(&self, group: GroupMeta) -> Result<()>;
    /// Deletes a group's metadata and offsets.
    async fn delete_group(&self, group_id: &str) -> Result<()>;
    /// Stores committed offsets of a group (replacing earlier ones).
    async fn commit_offsets(&self, group_id: &str, offsets: Vec<CommittedOffset>) -> Result<()>;
    /// Deletes committed offsets of a group, by (topic, partition).
    async fn delete_offsets(&self, group_id: &str, partitions: Vec<(String, i32)>) -> Result<()>;
}

/// Transactions: each transactional id's coordinator state, written by
/// the broker coordinating it, and the offsets transactions commit to
/// groups until they end, written by the group's coordinator.
#[async_trait]
pub trait TransactionStore: Send + Sync + 'static {
    /// Every transactional id's state.
    async fn transactions(&self) -> Result<Vec<TxnMeta>>;
    /// One transactional id's state, if stored.
    async fn transaction(&self, transactional_id: &str) -> Result<Option<TxnMeta>>;
    /// Makes this broker the coordinator of `transactional_id`, unless
    /// another live broker is (then `false`); as [`GroupStore::claim_group`].
    async fn claim_transaction(&self, transactional_id: &str) -> Result<bool>;
    /// Gives up coordinating `transactional_id`.
    async fn release_transaction(&self, transactional_id: &str) -> Result<()>;
    /// Stores a transactional id's state (only while this broker
    /// coordinates it: `NotCoordinator` otherwise).
    async fn put_transaction(&self, txn: TxnMeta) -> Result<()>;
    /// The offsets transactions still open committed to `group_id`.
    async fn txn_offsets(&self, group_id: &str) -> Result<Vec<TxnOffsets>>;
    /// Adds offsets `producer_id`'s open transaction commits to
    /// `group_id` (replacing its earlier ones of the same partitions).
    async fn put_txn_offsets(&self, group_id: &str, offsets: TxnOffsets) -> Result<()>;
    /// Ends `producer_id`'s transaction in `group_id`: its offsets become
    /// the group's committed offsets (`commit`) or are dropped.
    async fn end_txn_offsets(&self, group_id: &str, producer_id: i64, commit: bool) -> Result<()>;
}

/// Users' SCRAM credentials (PLAIN logins are checked against them too).
#[async_trait]
pub trait CredentialStore: Send + Sync + 'static {
    /// Every stored credential, by user and mechanism.
    async fn scram_credentials(&self) -> Result<Vec<ScramCredential>>;
    /// `user`'s credential for `mechanism`, if stored.
    async fn scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Result<Option<ScramCredential>>;
    /// Stores a credential, replacing the user's earlier one of its mechanism.
    async fn put_scram_credential(&self, credential: ScramCredential) -> Result<()>;
    /// Deletes `user`'s credential for `mechanism`; whether there was one.
    async fn delete_scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Result<bool>;
}

/// Access control lists, with a version that changes with every change,
/// so brokers can poll it cheaply and reload the ACLs when it moves.
#[async_trait]
pub trait AclStore: Send + Sync + 'static {
    /// Every ACL, and the version of the set.
    async fn acls(&self) -> Result<(u64, Vec<Acl>)>;
    /// The version of the set.
    async fn acl_version(&self) -> Result<u64>;
    /// Adds ACLs (one already stored stays as it is).
    async fn create_acls(&self, acls: Vec<Acl>) -> Result<()>;
    /// Removes ACLs (one not stored is ignored).
    async fn delete_acls(&self, acls: Vec<Acl>) -> Result<()>;
}

/// Client quotas, versioned like the ACLs.
#[async_trait]
pub trait QuotaStore: Send + Sync + 'static {
    /// Every entity's quotas, and the version of the set.
    async fn quotas(&self) -> Result<(u64, Vec<ClientQuota>)>;
    /// The version of the set.
    async fn quota_version(&self) -> Result<u64>;
    /// Sets an entity's quotas (none: removes the entity).
    async fn put_quota(&self, quota: ClientQuota) -> Result<()>;
}

/// The metadata a broker needs, shared by every broker of a cluster: one
/// store in each role (an embedded journal, or etcd).
pub trait MetaStore:
    TopicStore
    + PartitionStore
    + ProducerStore
    + GroupStore
    + TransactionStore
    + CredentialStore
    + AclStore
    + QuotaStore
{
}

impl<
    T: TopicStore
        + PartitionStore
        + ProducerStore
        + GroupStore
        + TransactionStore
        + CredentialStore
        + AclStore
        + QuotaStore,
> MetaStore for T
{
}

/// The shared test suite every [`MetaStore`] implementation must pass.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;
    use crate::error::Error;

    /// A new topic's metadata.
    pub fn topic(name: &str, partitions: i32) -> TopicMeta {
        TopicMeta {
            name: name.into(),
            id: Uuid::new_v4(),
            partitions,
            configs: BTreeMap::new(),
        }
    }

    fn extent(base: i64, last: i64) -> Extent {
        Extent {
            object: Uuid::now_v7(),
            position: 0,
            length: 100,
            base_offset: base,
            last_offset: last,
            max_timestamp: 5,
            crc: None,
            compacted: false,
            tombstones_due_ms: None,
            entry_list: None,
        }
    }

    pub async fn topics_lifecycle(store: &dyn MetaStore) {
        let t = topic("orders", 2);
        store.create_topic(t.clone()).await.unwrap();
        assert!(matches!(
            store.create_topic(topic("orders", 1)).await,
            Err(Error::TopicAlreadyExists(_))
        ));
        assert_eq!(store.topics().await.unwrap(), vec![t.clone()]);
        let configs = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        store
            .set_topic_configs("orders", configs.clone())
            .await
            .unwrap();
        store.add_partitions("orders", 5).await.unwrap();
        let stored = store.topics().await.unwrap().remove(0);
        assert_eq!((stored.partitions, stored.configs), (5, configs));
        assert_eq!(
            store.partition(t.id, 4).await.unwrap(),
            PartitionMeta::default()
        );
        assert_eq!(store.delete_topic("orders").await.unwrap().id, t.id);
        assert!(store.topics().await.unwrap().is_empty());
        assert!(matches!(
            store.delete_topic("orders").await,
            Err(Error::UnknownTopicOrPartition)
        ));
        assert!(matches!(
            store.partition(t.id, 0).await,
            Err(Error::UnknownTopicOrPartition)
        ));
    }

    pub async fn commits_are_epoch_guarded(store: &dyn MetaStore) {
        let t = topic("events", 1);
        store.create_topic(t.clone()).await.unwrap();
        let snapshot = ProducerSnapshot {
            epoch: 0,
            last_write_ms: 1,
            batches: vec![ProducedBatch {
                first_sequence: 0,
                last_sequence: 9,
                base_offset: 0,
                last_offset: 9,
            }],
            txn_first_offset: Some(3),
        };
        let commit = |epoch, extents| PartitionCommit {
            topic: t.id,
            partition: 0,
            leader_epoch: epoch,
            extents,
            producers: BTreeMap::from([(7, snapshot.clone())]),
            aborted: Vec::new(),
        };
        let outcomes = store
            .commit(vec![
                commit(0, vec![extent(0, 9)]),
                PartitionCommit {
                    topic: Uuid::new_v4(),
                    ..commit(0, vec![extent(0, 1)])
                },
            ])
            .await
            .unwrap();
        assert_eq!(
            outcomes,
            vec![CommitOutcome::Committed, CommitOutcome::Gone]
        );
        let fenced = store.commit(vec![commit(3, vec![extent(10, 19)])]).await;
        assert_eq!(fenced.unwrap(), vec![CommitOutcome::Fenced]);
        // Extents must continue at the committed end: refused, as a whole
        // (an error) or for that partition (`Failed`).
        let gap = store.commit(vec![commit(0, vec![extent(20, 29)])]).await;
        assert!(
            gap.as_ref().is_err() || gap.as_ref().unwrap() == &[CommitOutcome::Failed],
            "{gap:?}"
        );
        let state = store.partition(t.id, 0).await.unwrap();
        assert_eq!(state.extents.len(), 1);
        assert_eq!(state.committed_end(), 10);
        assert_eq!(state.producers.get(&7), Some(&snapshot));
    }

    pub async fn log_start_moves_forward_under_the_epoch(store: &dyn MetaStore) {
        let t = topic("trimmed", 1);
        store.create_topic(t.clone()).await.unwrap();
        let commit = PartitionCommit {
            topic: t.id,
            partition: 0,
            leader_epoch: 0,
            extents: vec![extent(0, 9), extent(10, 19), extent(20, 29)],
            producers: BTreeMap::new(),
            aborted: Vec::new(),
        };
        store.commit(vec![commit]).await.unwrap();
        let advance = |epoch, offset| store.advance_log_start(t.id, 0, epoch, offset);
        assert_eq!(advance(0, 15).await.unwrap(), CommitOutcome::Committed);
        let state = store.partition(t.id, 0).await.unwrap();
        assert_eq!(state.log_start_offset, 15);
        let bases: Vec<i64> = state.extents.iter().map(|e| e.base_offset).collect();
        assert_eq!(bases, vec![10, 20], "the extent holding 15 stays");
        assert_eq!(advance(0, 12).await.unwrap(), CommitOutcome::Committed);
        assert_eq!(store.partition(t.id, 0).await.unwrap().log_start_offset, 15);
        assert_eq!(advance(1, 20).await.unwrap(), CommitOutcome::Fenced);
        assert!(advance(0, 31).await.is_err(), "past the committed end");
        assert_eq!(
            store
                .advance_log_start(Uuid::new_v4(), 0, 0, 1)
                .await
                .unwrap(),
            CommitOutcome::Gone
        );
        // Everything gone: the end stays where it was, and commits go on.
        assert_eq!(advance(0, 30).await.unwrap(), CommitOutcome::Committed);
        let state = store.partition(t.id, 0).await.unwrap();
        assert_eq!((state.extents.len(), state.committed_end()), (0, 30));
        let next = PartitionCommit {
            topic: t.id,
            partition: 0,
            leader_epoch: 0,
            extents: vec![extent(30, 39)],
            producers: BTreeMap::new(),
            aborted: Vec::new(),
        };
        assert_eq!(
            store.commit(vec![next]).await.unwrap(),
            vec![CommitOutcome::Committed]
        );
        let state = store.partition(t.id, 0).await.unwrap();
        assert_eq!((state.log_start_offset, state.committed_end()), (30, 40));
    }

    pub async fn export_progress_moves_under_the_epoch(store: &dyn MetaStore) {
        let t = topic("exported", 1);
        store.create_topic(t.clone()).await.unwrap();
        let none = ExportProgress::default();
        let first = ExportProgress {
            offset: 100,
            files: 1,
            rows: 100,
            bytes: 4096,
            committed_ms: 1_700_000_000_000,
            json_fields: Vec::new(),
        };
        let commit = |epoch, expected: &ExportProgress, progress: &ExportProgress| {
            store.commit_export(t.id, 0, epoch, expected.clone(), progress.clone())
        };
        assert_eq!(
            commit(1, &none, &first).await.unwrap(),
            CommitOutcome::Fenced
        );
        assert_eq!(
            commit(0, &none, &first).await.unwrap(),
            CommitOutcome::Committed
        );
        assert_eq!(store.partition(t.id, 0).await.unwrap().export, first);
        // Another exporter's view of the progress is stale: nothing moves.
        let second = ExportProgress {
            offset: 200,
            files: 2,
            ..first.clone()
        };
        assert_eq!(
            commit(0, &none, &second).await.unwrap(),
            CommitOutcome::Failed
        );
        assert_eq!(
            commit(0, &first, &second).await.unwrap(),
            CommitOutcome::Committed
        );
        // Data commits keep it.
        let data = PartitionCommit {
            topic: t.id,
            partition: 0,
            leader_epoch: 0,
            extents: vec![extent(0, 9)],
            producers: BTreeMap::new(),
            aborted: Vec::new(),
        };
        store.commit(vec![data]).await.unwrap();
        assert_eq!(store.partition(t.id, 0).await.unwrap().export, second);
        assert_eq!(
            store
                .commit_export(Uuid::new_v4(), 0, 0, none.clone(), first.clone())
                .await
                .unwrap(),
            CommitOutcome::Gone
        );
    }

    pub async fn extents_are_replaced_only_as_stored(store: &dyn MetaStore) {
        let t = topic("merged", 1);
        store.create_topic(t.clone()).await.unwrap();
        let small = vec![extent(0, 4), extent(5, 9), extent(10, 14), extent(15, 19)];
        let commit = PartitionCommit {
            topic: t.id,
            partition: 0,
            leader_epoch: 0,
            extents: small.clone(),
            producers: BTreeMap::new(),
            aborted: Vec::new(),
        };
        store.commit(vec![commit]).await.unwrap();
        let merged = vec![extent(5, 12), extent(13, 14)];
        let replace = |epoch, old: &[Extent], new: &[Extent]| {
            store.replace_extents(t.id, 0, epoch, old.to_vec(), new.to_vec())
        };
        assert_eq!(
            replace(1, &small[1..3], &merged).await.unwrap(),
            CommitOutcome::Fenced
        );
        assert_eq!(
            replace(0, &small[1..3], &merged).await.unwrap(),
            CommitOutcome::Committed
        );
        let stored = store.partition(t.id, 0).await.unwrap().extents;
        let expected = [&small[..1], &merged[..], &small[3..]].concat();
        assert_eq!(stored, expected);
        // The old run is gone: a second replacement of it changes nothing.
        assert_eq!(
            replace(0, &small[1..3], &[extent(5, 14)]).await.unwrap(),
            CommitOutcome::Failed
        );
        assert!(
            replace(0, &merged, &[extent(5, 13)]).await.is_err(),
            "offsets differ"
        );
        assert_eq!(store.partition(t.id, 0).await.unwrap().extents, expected);
        // Commits continue after the replaced extents.
        let next = PartitionCommit {
            topic: t.id,
            partition: 0,
            leader_epoch: 0,
            extents: vec![extent(20, 24)],
            producers: BTreeMap::new(),
            aborted: Vec::new(),
        };
        let outcomes = store.commit(vec![next]).await.unwrap();
        assert_eq!(outcomes, vec![CommitOutcome::Committed]);
        assert_eq!(store.partition(t.id, 0).await.unwrap().committed_end(), 25);
    }

    pub async fn leader_epoch_bumps_fence_the_old_leader(store: &dyn MetaStore) {
        let t = topic("moving", 2);
        store.create_topic(t.clone()).await.unwrap();
        let commit = |epoch, extents| PartitionCommit {
            topic: t.id,
            partition: 1,
            leader_epoch: epoch,
            extents,
            producers: BTreeMap::new(),
            aborted: Vec::new(),
        };
        let first = store.commit(vec![commit(0, vec![extent(0, 4)])]).await;
        assert_eq!(first.unwrap(), vec![CommitOutcome::Committed]);
        assert_eq!(store.assign_leader(t.id, 1, 1).await.unwrap(), 1);
        assert_eq!(store.assign_leader(t.id, 1, 1).await.unwrap(), 2);
        let stale = store.commit(vec![commit(1, vec![extent(5, 9)])]).await;
        assert_eq!(stale.unwrap(), vec![CommitOutcome::Fenced]);
        let current = store.commit(vec![commit(2, vec![extent(5, 9)])]).await;
        assert_eq!(current.unwrap(), vec![CommitOutcome::Committed]);
        let state = store.partition(t.id, 1).await.unwrap();
        assert_eq!((state.leader_epoch, state.committed_end()), (2, 10));
        assert_eq!(store.partition(t.id, 0).await.unwrap().leader_epoch, 0);
        assert!(matches!(
            store.assign_leader(Uuid::new_v4(), 0, 1).await,
            Err(Error::UnknownTopicOrPartition)
        ));
    }

    pub async fn partitions_beyond_the_count_do_not_exist(store: &dyn MetaStore) {
        let t = topic("growing", 2);
        store.create_topic(t.clone()).await.unwrap();
        let commit = PartitionCommit {
            topic: t.id,
            partition: 2,
            leader_epoch: 0,
            extents: vec![extent(0, 0)],
            producers: BTreeMap::new(),
            aborted: Vec::new(),
        };
        let beyond = store.commit(vec![commit.clone()]).await.unwrap();
        assert_eq!(beyond, vec![CommitOutcome::Gone]);
        assert!(matches!(
            store.assign_leader(t.id, 2, 1).await,
            Err(Error::UnknownTopicOrPartition)
        ));
        store.add_partitions("growing", 3).await.unwrap();
        let grown = store.commit(vec![commit]).await.unwrap();
        assert_eq!(grown, vec![CommitOutcome::Committed]);
        assert_eq!(store.assign_leader(t.id, 2, 1).await.unwrap(), 1);
    }

    pub async fn producer_ids_are_unique(store: &dyn MetaStore) {
        let a = store.allocate_producer_ids(10).await.unwrap();
        let b = store.allocate_producer_ids(1).await.unwrap();
        assert!(a >= 0 && b >= a + 10);
    }

    fn offset(topic: &str, partition: i32, offset: i64) -> CommittedOffset {
        CommittedOffset {
            topic: topic.into(),
            partition,
            offset,
            leader_epoch: 0,
            metadata: Some("m".into()),
            commit_time_ms: 7,
        }
    }

    pub async fn groups_and_offsets(store: &dyn MetaStore) {
        let group = |generation| GroupMeta {
            id: "g".into(),
            generation,
            protocol_type: Some("consumer".into()),
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            members: vec![GroupMemberMeta {
                member_id: "m1".into(),
                instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 30_000,
                protocols: vec![("range".into(), vec![1, 2])],
                assignment: vec![3],
            }],
        };
        store.put_group(group(2)).await.unwrap();
        store.put_group(group(1)).await.unwrap();
        store
            .commit_offsets("g", vec![offset("t", 0, 5), offset("t", 1, 6)])
            .await
            .unwrap();
        store
            .commit_offsets("g", vec![offset("t", 0, 9)])
            .await
            .unwrap();
        store
            .commit_offsets("standalone", vec![offset("u", 0, 1)])
            .await
            .unwrap();
        let all = store.groups().await.unwrap();
        assert_eq!(all.len(), 2);
        let (meta, id, offsets) = all.iter().find(|(_, id, _)| id == "g").unwrap();
        assert_eq!(
            (id.as_str(), meta.as_ref().map(|m| m.generation)),
            ("g", Some(2)),
            "older generations never overwrite"
        );
        assert_eq!(offsets, &vec![offset("t", 0, 9), offset("t", 1, 6)]);
        let (meta, _, _) = all.iter().find(|(_, id, _)| id == "standalone").unwrap();
        assert!(meta.is_none());
        let (one, one_offsets) = store.group("g").await.unwrap();
        assert_eq!(one.map(|m| m.generation), Some(2));
        assert_eq!(one_offsets, vec![offset("t", 0, 9), offset("t", 1, 6)]);
        assert_eq!(store.group("none").await.unwrap(), (None, Vec::new()));
        store
            .delete_offsets("g", vec![("t".into(), 1)])
            .await
            .unwrap();
        store.delete_group("standalone").await.unwrap();
        let all = store.groups().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].2, vec![offset("t", 0, 9)]);
    }

    pub async fn deleting_a_topic_deletes_its_offsets(store: &dyn MetaStore) {
        let t = topic("gone", 1);
        store.create_topic(t).await.unwrap();
        store
            .commit_offsets("g", vec![offset("gone", 0, 3), offset("kept", 0, 4)])
            .await
            .unwrap();
        store.delete_topic("gone").await.unwrap();
        let all = store.groups().await.unwrap();
        assert_eq!(all[0].2, vec![offset("kept", 0, 4)]);
    }

    pub async fn transactions_and_their_offsets(store: &dyn MetaStore) {
        assert_eq!(store.transaction("t").await.unwrap(), None);
        assert!(store.claim_transaction("t").await.unwrap());
        let txn = TxnMeta {
            transactional_id: "t".into(),
            producer_id: 4,
            epoch: 2,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [("orders".to_string(), 1)].into(),
            groups: ["g".to_string()].into(),
            started_ms: 10,
            updated_ms: 11,
        };
        store.put_transaction(txn.clone()).await.unwrap();
        let ended = TxnMeta {
            state: TxnState::CompleteCommit,
            ..txn.clone()
        };
        store.put_transaction(ended.clone()).await.unwrap();
        assert_eq!(store.transaction("t").await.unwrap(), Some(ended.clone()));
        assert_eq!(store.transactions().await.unwrap(), vec![ended]);
        store.release_transaction("t").await.unwrap();

        assert!(store.claim_group("g").await.unwrap());
        let pending = |producer_id, offsets| TxnOffsets {
            producer_id,
            offsets,
        };
        store
            .put_txn_offsets("g", pending(4, vec![offset("t", 0, 5), offset("t", 1, 6)]))
            .await
            .unwrap();
        store
            .put_txn_offsets("g", pending(4, vec![offset("t", 0, 7)]))
            .await
            .unwrap();
        store
            .put_txn_offsets("g", pending(5, vec![offset("t", 2, 1)]))
            .await
            .unwrap();
        let mut open = store.txn_offsets("g").await.unwrap();
        open.sort_by_key(|o| o.producer_id);
        assert_eq!(open.len(), 2);
        let mut four = open[0].offsets.clone();
        four.sort_by_key(|o| o.partition);
        assert_eq!(four, vec![offset("t", 0, 7), offset("t", 1, 6)]);
        // Nothing is visible to the group before the transaction commits.
        assert_eq!(store.group("g").await.unwrap().1, Vec::new());
        store.end_txn_offsets("g", 4, true).await.unwrap();
        store.end_txn_offsets("g", 5, false).await.unwrap();
        assert!(store.txn_offsets("g").await.unwrap().is_empty());
        let (_, committed) = store.group("g").await.unwrap();
        assert_eq!(committed, vec![offset("t", 0, 7), offset("t", 1, 6)]);
    }

    pub async fn scram_credentials_by_user_and_mechanism(store: &dyn MetaStore) {
        let credential = |user: &str, mechanism, iterations| ScramCredential {
            user: user.into(),
            mechanism,
            salt: vec![1, 2, 3],
            iterations,
            stored_key: vec![4; 32],
            server_key: vec![5; 32],
        };
        assert!(store.scram_credentials().await.unwrap().is_empty());
        let alice = credential("alice", ScramMechanism::Sha256, 4096);
        // A user name that is not a valid key segment as it is.
        let odd = credential("o/dd=,user", ScramMechanism::Sha512, 8192);
        store.put_scram_credential(alice.clone()).await.unwrap();
        store.put_scram_credential(odd.clone()).await.unwrap();
        let renewed = credential("alice", ScramMechanism::Sha256, 10_000);
        store.put_scram_credential(renewed.clone()).await.unwrap();
        assert_eq!(
            store
                .scram_credential("alice", ScramMechanism::Sha256)
                .await
                .unwrap(),
            Some(renewed.clone())
        );
        assert_eq!(
            store
                .scram_credential("alice", ScramMechanism::Sha512)
                .await
                .unwrap(),
            None
        );
        let mut all = store.scram_credentials().await.unwrap();
        all.sort_by(|a, b| a.user.cmp(&b.user));
        assert_eq!(all, vec![renewed, odd.clone()]);
        assert!(
            store
                .delete_scram_credential("alice", ScramMechanism::Sha256)
                .await
                .unwrap()
        );
        assert!(
            !store
                .delete_scram_credential("alice", ScramMechanism::Sha256)
                .await
                .unwrap()
        );
        assert_eq!(store.scram_credentials().await.unwrap(), vec![odd]);
    }

    pub async fn acls_and_their_version(store: &dyn MetaStore) {
        use crate::acl::{Operation, PatternType, Permission, ResourceType};
        let acl = |name: &str, operation| Acl {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation,
            permission: Permission::Allow,
        };
        let (start, none) = store.acls().await.unwrap();
        assert!(none.is_empty());
        assert_eq!(store.acl_version().await.unwrap(), start);
        let (read, write) = (
            acl("orders", Operation::Read),
            acl("o/dd,name", Operation::Write),
        );
        store
            .create_acls(vec![read.clone(), write.clone(), read.clone()])
            .await
            .unwrap();
        let (created, mut all) = store.acls().await.unwrap();
        assert_ne!(created, start, "the version moves");
        all.sort();
        let mut expected = vec![read.clone(), write.clone()];
        expected.sort();
        assert_eq!(all, expected);
        store
            .delete_acls(vec![read, acl("absent", Operation::All)])
            .await
            .unwrap();
        assert_ne!(store.acl_version().await.unwrap(), created);
        assert_eq!(store.acls().await.unwrap().1, vec![write]);
    }

    pub async fn quotas_by_entity(store: &dyn MetaStore) {
        use crate::quota::{QuotaEntity, QuotaName};
        let quota = |user: Option<QuotaName>, rate: Option<f64>| ClientQuota {
            entity: QuotaEntity {
                user,
                client_id: None,
            },
            values: rate
                .map(|r| ("producer_byte_rate".to_string(), r))
                .into_iter()
                .collect(),
        };
        let (start, none) = store.quotas().await.unwrap();
        assert!(none.is_empty());
        let alice = quota(Some(QuotaName::Named("al/ice".into())), Some(1024.0));
        let default = quota(Some(QuotaName::Default), Some(2048.0));
        store.put_quota(alice.clone()).await.unwrap();
        store.put_quota(default.clone()).await.unwrap();
        let (version, mut all) = store.quotas().await.unwrap();
        assert_ne!(version, start);
        all.sort_by(|a, b| a.entity.cmp(&b.entity));
        assert_eq!(all, vec![alice.clone(), default.clone()]);
        store
            .put_quota(quota(alice.entity.user.clone(), None))
            .await
            .unwrap();
        assert_ne!(store.quota_version().await.unwrap(), version);
        assert_eq!(store.quotas().await.unwrap().1, vec![default]);
    }

    pub async fn broker_configs_round_trip(store: &dyn MetaStore) {
        assert!(store.broker_configs().await.unwrap().is_empty());
        let configs = BTreeMap::from([("log.retention.ms".to_string(), "5".to_string())]);
        store.set_broker_configs(configs.clone()).await.unwrap();
        assert_eq!(store.broker_configs().await.unwrap(), configs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(last_write_ms: i64) -> ProducerSnapshot {
        ProducerSnapshot {
            epoch: 0,
            last_write_ms,
            batches: Vec::new(),
            txn_first_offset: None,
        }
    }

    #[test]
    fn producer_state_forgets_the_expired_and_the_longest_silent() {
        let mut stored: BTreeMap<i64, ProducerSnapshot> = (0..MAX_PRODUCERS_PER_PARTITION as i64)
            .map(|id| (id, snapshot(1_000 + id)))
            .collect();
        stored.insert(-1, snapshot(0));
        let commit = PartitionCommit {
            topic: Uuid::nil(),
            partition: 0,
            leader_epoch: 0,
            extents: Vec::new(),
            producers: BTreeMap::from([(99_999, snapshot(PRODUCER_EXPIRY_MS))]),
            aborted: Vec::new(),
        };
        commit.merge_producers(&mut stored);
        assert_eq!(stored.len(), MAX_PRODUCERS_PER_PARTITION);
        assert!(!stored.contains_key(&-1), "expired");
        assert!(
            !stored.contains_key(&0),
            "the longest silent beyond the bound"
        );
        assert!(stored.contains_key(&1) && stored.contains_key(&99_999));
    }
}
