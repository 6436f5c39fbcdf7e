//! Partitions in etcd: a state key (leader epoch, log start, end, producer
//! state) and a key per extent; every change compares the state's
//! revision and the topic's `alive` key, so a stale leader changes nothing.

use std::collections::BTreeMap;

use async_trait::async_trait;
use etcd_client::{Compare, CompareOp, DeleteOptions, GetOptions, SortOrder, SortTarget, TxnOp};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{EtcdStore, Read, decode, encode, meta_error};
use crate::error::{Error, Result};
use crate::meta::{
    AbortedTxn, CommitOutcome, ExportProgress, Extent, PartitionCommit, PartitionLeader,
    PartitionMeta, PartitionStore, ProducerSnapshot, ProducerStore, check_replacement,
    forget_aborted_before,
};

/// Partition commits of one flush in flight at once.
const COMMIT_CONCURRENCY: usize = 32;

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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    aborted: Vec<AbortedTxn>,
    #[serde(default, skip_serializing_if = "ExportProgress::is_none")]
    export: ExportProgress,
}

impl EtcdStore {
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
            commit.merge_aborted(&mut state.aborted);
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
impl PartitionStore for EtcdStore {
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
            aborted: state.aborted,
            export: state.export,
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
            forget_aborted_before(&mut state.aborted, offset);
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

    async fn commit_export(
        &self,
        topic: Uuid,
        partition: i32,
        leader_epoch: i32,
        expected: ExportProgress,
        progress: ExportProgress,
    ) -> Result<CommitOutcome> {
        loop {
            let (read, mut state) = match self.read_led(topic, partition, leader_epoch).await? {
                Ok(led) => led,
                Err(outcome) => return Ok(outcome),
            };
            if state.export != expected {
                return Ok(CommitOutcome::Failed);
            }
            state.export = progress.clone();
            if let Some(outcome) = self
                .write_led(topic, partition, &read, &state, Vec::new())
                .await?
            {
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
}

#[async_trait]
impl ProducerStore for EtcdStore {
    async fn allocate_producer_ids(&self, count: u32) -> Result<i64> {
        self.update(&self.keys.producer_ids(), |next: Option<i64>| {
            let first = next.unwrap_or(0);
            Ok((Some(first + i64::from(count)), first))
        })
        .await
    }
}
