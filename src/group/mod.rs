//! The group coordinator: consumer groups and their committed offsets.
//!
//! [`state::Group`] is the protocol as a pure state machine; this module is
//! its async front: one lock per group, the requests waiting for a rebalance
//! step (JoinGroup, SyncGroup) and their replies, persistence of group
//! metadata and offsets in the metadata store, a ticker that expires
//! sessions and rounds, and offset retention for empty groups.

pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::error::Result;
use crate::meta::{CommittedOffset, GroupMemberMeta, GroupMeta, MetaStore, TxnOffsets};
use state::{
    Group, GroupError, GroupSettings, GroupState, JoinRequest, Joined, Member, Reply, Synced,
};

/// How often sessions, rounds and offset retention are checked.
const TICK: Duration = Duration::from_millis(100);
/// How long an unused group lingers before it is forgotten, so tools can
/// still describe or delete it (Kafka's offsets.retention.check.interval.ms).
const FORGET_UNUSED_AFTER_MS: i64 = 600_000;

/// Why an admin or offset request on a group is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminError {
    GroupIdNotFound,
    NonEmptyGroup,
    /// Offsets of a topic the active group consumes cannot be deleted.
    GroupSubscribedToTopic,
    Group(GroupError),
    Storage(String),
}

impl AdminError {
    /// The Kafka error a client receives for this group admin error.
    pub fn response_error(&self) -> ResponseError {
        match self {
            AdminError::GroupIdNotFound => ResponseError::GroupIdNotFound,
            AdminError::NonEmptyGroup => ResponseError::NonEmptyGroup,
            AdminError::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
            AdminError::Group(e) => e.response_error(),
            // Retriable for clients, as Kafka answers a failed offset write.
            AdminError::Storage(_) => ResponseError::CoordinatorNotAvailable,
        }
    }
}

impl From<crate::error::Error> for AdminError {
    /// A store error: another broker coordinates the group now, or the
    /// store failed.
    fn from(e: crate::error::Error) -> Self {
        match e {
            crate::error::Error::NotCoordinator(_) => AdminError::Group(GroupError::NotCoordinator),
            e => AdminError::Storage(e.to_string()),
        }
    }
}

/// A group as DescribeGroups and the CLI show it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub id: String,
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<Member>,
}

struct Entry {
    group: Group,
    offsets: BTreeMap<(String, i32), CommittedOffset>,
    joins: HashMap<String, oneshot::Sender<std::result::Result<Joined, GroupError>>>,
    syncs: HashMap<String, oneshot::Sender<std::result::Result<Synced, GroupError>>>,
    /// The group revision last persisted, to persist each change once.
    persisted_revision: Option<u64>,
    /// The producers with transactional offsets pending here, as last
    /// read from the store (`None`: not read since the group was loaded).
    txn_pending: Option<std::collections::BTreeSet<i64>>,
    /// Since when the group has had no members (offset retention counts
    /// from then, or from the last commit if that is later).
    empty_since: Option<i64>,
}

impl Entry {
    /// Delivers replies to the requests waiting for them.
    fn deliver(&mut self, replies: Vec<Reply>) {
        for reply in replies {
            match reply {
                Reply::Join(member, result) => {
                    if let Some(waiter) = self.joins.remove(&member) {
                        let _ = waiter.send(result);
                    }
                }
                Reply::Sync(member, result) => {
                    if let Some(waiter) = self.syncs.remove(&member) {
                        let _ = waiter.send(result);
                    }
                }
            }
        }
    }

    /// Takes a waiting request's own reply out of `replies`, if there.
    fn own_join(
        replies: &mut Vec<Reply>,
        member_id: &str,
    ) -> Option<std::result::Result<Joined, GroupError>> {
        let i = replies
            .iter()
            .position(|r| matches!(r, Reply::Join(id, _) if id == member_id))?;
        match replies.remove(i) {
            Reply::Join(_, result) => Some(result),
            Reply::Sync(..) => unreachable!("matched a join reply"),
        }
    }

    fn own_sync(
        replies: &mut Vec<Reply>,
        member_id: &str,
    ) -> Option<std::result::Result<Synced, GroupError>> {
        let i = replies
            .iter()
            .position(|r| matches!(r, Reply::Sync(id, _) if id == member_id))?;
        match replies.remove(i) {
            Reply::Sync(_, result) => Some(result),
            Reply::Join(..) => unreachable!("matched a sync reply"),
        }
    }

    /// Notes when the group last became empty.
    fn note_emptiness(&mut self, now: i64) {
        if !self.group.is_empty() {
            self.empty_since = None;
        } else if self.empty_since.is_none() {
            self.empty_since = Some(now);
        }
    }

    /// The group's metadata to persist, if it reached a new stable point
    /// (Stable, or emptied) since the last one persisted.
    fn snapshot(&self) -> Option<GroupMeta> {
        let g = &self.group;
        let settled = matches!(g.state(), GroupState::Stable | GroupState::Empty);
        if !settled || self.persisted_revision == Some(g.revision()) {
            return None;
        }
        Some(GroupMeta {
            id: g.id.clone(),
            generation: g.generation(),
            protocol_type: g.protocol_type().map(str::to_string),
            protocol: g.protocol().map(str::to_string),
            leader: g.leader().map(str::to_string),
            members: g
                .members()
                .map(|m| GroupMemberMeta {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: m
                        .protocols
                        .iter()
                        .map(|(n, b)| (n.clone(), b.to_vec()))
                        .collect(),
                    assignment: m.assignment.to_vec(),
                })
                .collect(),
        })
    }
}

type Handle = Arc<tokio::sync::Mutex<Entry>>;

/// Whether this broker coordinates a group (by id).
pub type Owns = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Coordinates every consumer group of this broker.
pub struct Coordinator {
    groups: Mutex<HashMap<String, Handle>>,
    owns: Owns,
    /// Groups claimed in the store (see [`GroupStore::claim_group`](crate::meta::GroupStore::claim_group)).
    claimed: Mutex<std::collections::HashSet<String>>,
    meta: Arc<dyn MetaStore>,
    settings: GroupSettings,
    clock: Clock,
    offsets_retention_ms: i64,
}

/// A member's identity in a request.
#[derive(Debug, Clone, Copy)]
pub struct MemberRef<'a> {
    pub member_id: &'a str,
    pub instance_id: Option<&'a str>,
    pub generation: i32,
}

impl Coordinator {
    /// Loads the persisted groups and offsets of the groups this broker
    /// coordinates (`owns`; requests for the others are answered
    /// NOT_COORDINATOR).
    pub async fn open(
        meta: Arc<dyn MetaStore>,
        owns: Owns,
        settings: GroupSettings,
        clock: Clock,
        offsets_retention_ms: i64,
    ) -> Result<Coordinator> {
        let coordinator = Coordinator {
            groups: Mutex::new(HashMap::new()),
            owns,
            claimed: Mutex::new(std::collections::HashSet::new()),
            meta,
            settings,
            clock,
            offsets_retention_ms,
        };
        for (group, id, offsets) in coordinator.meta.groups().await? {
            if (coordinator.owns)(&id) && coordinator.claim(&id).await {
                coordinator.keep(&id, group, offsets);
            }
        }
        Ok(coordinator)
    }

    /// The group `id`: in memory, or else as stored (it was coordinated
    /// elsewhere, or before this broker's start), or else, with `create`,
    /// a new empty group.
    async fn handle(
        &self,
        id: &str,
        create: bool,
    ) -> std::result::Result<Option<Handle>, GroupError> {
        if !(self.owns)(id) {
            return Err(GroupError::NotCoordinator);
        }
        if let Some(handle) = self.groups.lock().expect("group map poisoned").get(id) {
            return Ok(Some(handle.clone()));
        }
        let unavailable = |e: crate::error::Error| {
            tracing::warn!(group = id, error = %e, "cannot load the group from the store");
            GroupError::CoordinatorNotAvailable
        };
        // Another broker may still coordinate it (it has not seen the
        // change of live brokers yet): retriable.
        if !self.claim(id).await {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let (stored, offsets) = match self.meta.group(id).await {
            Ok(found) => found,
            Err(e) => {
                self.release(id).await;
                return Err(unavailable(e));
            }
        };
        if stored.is_none() && offsets.is_empty() && !create {
            self.release(id).await;
            return Ok(None);
        }
        Ok(Some(self.keep(id, stored, offsets)))
    }

    /// The group `id` in memory, or else as stored (one loaded meanwhile
    /// wins).
    fn keep(&self, id: &str, stored: Option<GroupMeta>, offsets: Vec<CommittedOffset>) -> Handle {
        let mut groups = self.groups.lock().expect("group map poisoned");
        if let Some(handle) = groups.get(id) {
            return handle.clone();
        }
        let entry = self.restored_entry(id, stored, offsets);
        let handle = Arc::new(tokio::sync::Mutex::new(entry));
        groups.insert(id.to_string(), handle.clone());
        handle
    }

    /// A group as stored (a new one if nothing is).
    fn restored_entry(
        &self,
        id: &str,
        stored: Option<GroupMeta>,
        offsets: Vec<CommittedOffset>,
    ) -> Entry {
        let now = self.clock.now_ms();
        let persisted = stored.is_some() || !offsets.is_empty();
        let group = match stored {
            Some(m) => restore(m, self.settings, now),
            None => Group::new(id, self.settings),
        };
        Entry {
            persisted_revision: persisted.then(|| group.revision()),
            empty_since: group.is_empty().then_some(now),
            group,
            offsets: offsets
                .into_iter()
                .map(|o| ((o.topic.clone(), o.partition), o))
                .collect(),
            txn_pending: None,
            joins: HashMap::new(),
            syncs: HashMap::new(),
        }
    }

    /// For the live brokers changed: drops from memory, and gives up in the
    /// store, the groups this broker no longer coordinates, so the broker
    /// coordinating them now can claim and load them. Requests waiting on a
    /// dropped group are answered COORDINATOR_NOT_AVAILABLE, so their
    /// clients look the coordinator up again. Groups it still coordinates
    /// stay: it held their claim throughout, so nobody else changed them.
    pub async fn place(&self) {
        let moved: Vec<String> = {
            let claimed = self.claimed.lock().expect("claim set poisoned");
            claimed
                .iter()
                .filter(|id| !(self.owns)(id))
                .cloned()
                .collect()
        };
        for id in moved {
            let dropped = self.groups.lock().expect("group map poisoned").remove(&id);
            if let Some(handle) = dropped {
                let mut entry = handle.lock().await;
                entry.joins.clear();
                entry.syncs.clear();
                entry.group.kill();
            }
            if !(self.owns)(&id) {
                self.release(&id).await;
            }
        }
    }

    /// Claims the group in the store; false (logged) if another broker
    /// coordinates it or the store fails.
    async fn claim(&self, id: &str) -> bool {
        match self.meta.claim_group(id).await {
            Ok(true) => {
                let mut claimed = self.claimed.lock().expect("claim set poisoned");
                claimed.insert(id.to_string());
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(group = id, error = %e, "cannot claim the group");
                false
            }
        }
    }

    /// Gives the group up in the store (best effort: the claim ends with
    /// this broker's lease anyway).
    async fn release(&self, id: &str) {
        self.claimed.lock().expect("claim set poisoned").remove(id);
        if let Err(e) = self.meta.release_group(id).await {
            tracing::warn!(group = id, error = %e, "cannot give the group up; it frees with this broker's lease");
        }
    }

    /// Persists the group if it reached a new stable point; false if that
    /// failed (the change is then not durable).
    async fn persist(&self, entry: &mut Entry) -> bool {
        entry.note_emptiness(self.clock.now_ms());
        let Some(snapshot) = entry.snapshot() else {
            return true;
        };
        match self.meta.put_group(snapshot).await {
            Ok(()) => {
                entry.persisted_revision = Some(entry.group.revision());
                true
            }
            Err(e) => {
                tracing::warn!(group = %entry.group.id, error = %e, "cannot persist group metadata");
                false
            }
        }
    }

    /// JoinGroup; waits until the join round completes.
    pub async fn join(
        &self,
        group_id: &str,
        request: JoinRequest,
    ) -> std::result::Result<Joined, GroupError> {
        let handle = self.handle(group_id, true).await?.expect("created");
        let waiter = {
            let mut entry = handle.lock().await;
            let (member_id, mut replies) = entry.group.join(request, self.clock.now_ms());
            let own = Entry::own_join(&mut replies, &member_id);
            entry.deliver(replies);
            self.persist(&mut entry).await;
            if let Some(result) = own {
                return result;
            }
            let (tx, rx) = oneshot::channel();
            if let Some(old) = entry.joins.insert(member_id, tx) {
                let _ = old.send(Err(GroupError::RebalanceInProgress));
            }
            rx
        };
        waiter
            .await
            .unwrap_or(Err(GroupError::CoordinatorNotAvailable))
    }

    /// SyncGroup; the leader's assignments, or waits for them. `expected`:
    /// the protocol type and protocol the member names (v5+), if any.
    pub async fn sync(
        &self,
        group_id: &str,
        member: MemberRef<'_>,
        expected: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
    ) -> std::result::Result<Synced, GroupError> {
        let handle = self
            .handle(group_id, false)
            .await?
            .ok_or(GroupError::UnknownMemberId)?;
        let waiter = {
            let mut entry = handle.lock().await;
            entry.group.check_protocol(expected.0, expected.1)?;
            let now = self.clock.now_ms();
            let mut replies = entry.group.sync(
                member.member_id,
                member.instance_id,
                member.generation,
                assignments,
                now,
            );
            // Persist before anyone learns the assignment, so a restart
            // never goes back to an older generation; if that fails, nobody
            // learns it and the group rebalances.
            if !self.persist(&mut entry).await {
                for reply in &mut replies {
                    if let Reply::Sync(_, result @ Ok(_)) = reply {
                        *result = Err(GroupError::CoordinatorNotAvailable);
                    }
                }
                let more = entry.group.force_rebalance(now);
                replies.extend(more);
            }
            let own = Entry::own_sync(&mut replies, member.member_id);
            entry.deliver(replies);
            if let Some(result) = own {
                return result;
            }
            let (tx, rx) = oneshot::channel();
            if let Some(old) = entry.syncs.insert(member.member_id.to_string(), tx) {
                let _ = old.send(Err(GroupError::RebalanceInProgress));
            }
            rx
        };
        waiter
            .await
            .unwrap_or(Err(GroupError::CoordinatorNotAvailable))
    }

    /// Heartbeat.
    pub async fn heartbeat(
        &self,
        group_id: &str,
        member: MemberRef<'_>,
    ) -> std::result::Result<(), GroupError> {
        let handle = self
            .handle(group_id, false)
            .await?
            .ok_or(GroupError::UnknownMemberId)?;
        let mut entry = handle.lock().await;
        let now = self.clock.now_ms();
        entry
            .group
            .heartbeat(member.member_id, member.instance_id, member.generation, now)
    }

    /// LeaveGroup of several members; a result per member.
    pub async fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> std::result::Result<Vec<std::result::Result<(), GroupError>>, GroupError> {
        let handle = self
            .handle(group_id, false)
            .await?
            .ok_or(GroupError::UnknownMemberId)?;
        let mut entry = handle.lock().await;
        let now = self.clock.now_ms();
        let mut results = Vec::with_capacity(members.len());
        for (member_id, instance_id) in members {
            let (result, replies) = entry.group.leave(member_id, instance_id.as_deref(), now);
            entry.deliver(replies);
            results.push(result);
        }
        self.persist(&mut entry).await;
        Ok(results)
    }

    /// The group's entry (created if new), locked, once `member` may
    /// commit offsets to it; with `if_named`, a member is checked only when
    /// it names a generation.
    async fn committing(
        &self,
        group_id: &str,
        member: MemberRef<'_>,
        if_named: bool,
    ) -> std::result::Result<tokio::sync::OwnedMutexGuard<Entry>, AdminError> {
        let handle = self
            .handle(group_id, true)
            .await
            .map_err(AdminError::Group)?
            .expect("created");
        let mut entry = handle.lock_owned().await;
        if !if_named || member.generation >= 0 {
            let now = self.clock.now_ms();
            entry
                .group
                .check_commit(member.member_id, member.instance_id, member.generation, now)
                .map_err(AdminError::Group)?;
        }
        Ok(entry)
    }

    /// OffsetCommit: checks the member, then stores the offsets.
    pub async fn commit_offsets(
        &self,
        group_id: &str,
        member: MemberRef<'_>,
        offsets: Vec<CommittedOffset>,
    ) -> std::result::Result<(), AdminError> {
        let mut entry = self.committing(group_id, member, false).await?;
        if offsets.is_empty() {
            return Ok(());
        }
        self.meta
            .commit_offsets(group_id, offsets.clone())
            .await
            .map_err(AdminError::from)?;
        for o in offsets {
            entry.offsets.insert((o.topic.clone(), o.partition), o);
        }
        Ok(())
    }

    /// TxnOffsetCommit: stores offsets a transactional producer commits,
    /// visible to the group once its transaction commits (its coordinator
    /// then moves them to the group's offsets in the store). A member is
    /// checked only when the request names a generation.
    pub async fn commit_txn_offsets(
        &self,
        group_id: &str,
        member: MemberRef<'_>,
        offsets: TxnOffsets,
    ) -> std::result::Result<(), AdminError> {
        let mut entry = self.committing(group_id, member, true).await?;
        if offsets.offsets.is_empty() {
            return Ok(());
        }
        let producer_id = offsets.producer_id;
        self.meta
            .put_txn_offsets(group_id, offsets)
            .await
            .map_err(AdminError::from)?;
        entry
            .txn_pending
            .get_or_insert_with(Default::default)
            .insert(producer_id);
        Ok(())
    }

    /// Brings the group's transactional offsets up to date with the store:
    /// once a transaction it knew pending has ended there, the committed
    /// offsets are read again. Returns the partitions still pending.
    async fn refresh_txn_offsets(
        &self,
        group_id: &str,
        entry: &mut Entry,
    ) -> std::result::Result<std::collections::BTreeSet<(String, i32)>, GroupError> {
        let unavailable = |e: crate::error::Error| {
            tracing::warn!(group = group_id, error = %e, "cannot read transactional offsets");
            GroupError::CoordinatorNotAvailable
        };
        let pending = self.meta.txn_offsets(group_id).await.map_err(unavailable)?;
        let producers: std::collections::BTreeSet<i64> =
            pending.iter().map(|t| t.producer_id).collect();
        let ended = entry
            .txn_pending
            .as_ref()
            .is_none_or(|known| known.iter().any(|p| !producers.contains(p)));
        if ended {
            let (_, offsets) = self.meta.group(group_id).await.map_err(unavailable)?;
            entry.offsets = offsets
                .into_iter()
                .map(|o| ((o.topic.clone(), o.partition), o))
                .collect();
        }
        entry.txn_pending = Some(producers);
        Ok(pending
            .iter()
            .flat_map(|t| t.offsets.iter().map(|o| (o.topic.clone(), o.partition)))
            .collect())
    }

    /// Committed offsets of a group: of `partitions`, or all when `None`;
    /// with the partitions whose offsets a transaction still holds
    /// pending (not yet committed nor aborted).
    pub async fn offsets(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> std::result::Result<
        (
            Vec<((String, i32), Option<CommittedOffset>)>,
            std::collections::BTreeSet<(String, i32)>,
        ),
        GroupError,
    > {
        let Some(handle) = self.handle(group_id, false).await? else {
            let offsets = partitions
                .unwrap_or_default()
                .iter()
                .map(|p| (p.clone(), None))
                .collect();
            return Ok((offsets, Default::default()));
        };
        let mut entry = handle.lock().await;
        let pending = self.refresh_txn_offsets(group_id, &mut entry).await?;
        let offsets = match partitions {
            Some(partitions) => partitions
                .iter()
                .map(|p| (p.clone(), entry.offsets.get(p).cloned()))
                .collect(),
            None => entry
                .offsets
                .iter()
                .map(|(k, o)| (k.clone(), Some(o.clone())))
                .collect(),
        };
        Ok((offsets, pending))
    }

    /// OffsetDelete: refused for topics an active member subscribes to.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> std::result::Result<Vec<((String, i32), std::result::Result<(), AdminError>)>, AdminError>
    {
        let handle = self
            .handle(group_id, false)
            .await
            .map_err(AdminError::Group)?
            .ok_or(AdminError::GroupIdNotFound)?;
        let mut entry = handle.lock().await;
        let consumer = entry.group.protocol_type() == Some("consumer");
        if !entry.group.is_empty() && !consumer {
            // Which topics a non-consumer group uses is unknown.
            return Err(AdminError::NonEmptyGroup);
        }
        let subscribed = subscribed_topics(&entry.group);
        let (allowed, refused): (Vec<_>, Vec<_>) = partitions
            .into_iter()
            .partition(|(topic, _)| !subscribed.contains(topic));
        if !allowed.is_empty() {
            self.meta
                .delete_offsets(group_id, allowed.clone())
                .await
                .map_err(AdminError::from)?;
            for p in &allowed {
                entry.offsets.remove(p);
            }
        }
        Ok(allowed
            .into_iter()
            .map(|p| (p, Ok(())))
            .chain(
                refused
                    .into_iter()
                    .map(|p| (p, Err(AdminError::GroupSubscribedToTopic))),
            )
            .collect())
    }

    /// Every group: (id, protocol type, state).
    pub async fn list(&self) -> Vec<(String, String, GroupState)> {
        // Those coordinated here but not asked for since they were loaded.
        match self.meta.groups().await {
            Ok(stored) => {
                for (group, id, offsets) in stored {
                    if (self.owns)(&id) && self.claim(&id).await {
                        self.keep(&id, group, offsets);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the groups from the store"),
        }
        let handles: Vec<(String, Handle)> = {
            let groups = self.groups.lock().expect("group map poisoned");
            groups
                .iter()
                .filter(|(id, _)| (self.owns)(id))
                .map(|(id, h)| (id.clone(), h.clone()))
                .collect()
        };
        let mut out = Vec::with_capacity(handles.len());
        for (id, handle) in handles {
            let entry = handle.lock().await;
            let protocol_type = entry.group.protocol_type().unwrap_or_default().to_string();
            out.push((id, protocol_type, entry.group.state()));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// A group's state and members, if the group exists.
    pub async fn describe(
        &self,
        group_id: &str,
    ) -> std::result::Result<Option<GroupDescription>, GroupError> {
        let Some(handle) = self.handle(group_id, false).await? else {
            return Ok(None);
        };
        let entry = handle.lock().await;
        let g = &entry.group;
        Ok(Some(GroupDescription {
            id: g.id.clone(),
            state: g.state(),
            protocol_type: g.protocol_type().unwrap_or_default().to_string(),
            protocol: g.protocol().unwrap_or_default().to_string(),
            members: g.members().cloned().collect(),
        }))
    }

    /// DeleteGroups: only groups without members.
    pub async fn delete(&self, group_id: &str) -> std::result::Result<(), AdminError> {
        let handle = self
            .handle(group_id, false)
            .await
            .map_err(AdminError::Group)?
            .ok_or(AdminError::GroupIdNotFound)?;
        let mut entry = handle.lock().await;
        if !entry.group.is_empty() {
            return Err(AdminError::NonEmptyGroup);
        }
        self.meta
            .delete_group(group_id)
            .await
            .map_err(AdminError::from)?;
        entry.group.kill();
        self.groups
            .lock()
            .expect("group map poisoned")
            .remove(group_id);
        self.release(group_id).await;
        Ok(())
    }

    /// Forgets the offsets of a deleted topic (the store drops them itself).
    pub async fn remove_topic(&self, topic: &str) {
        let handles: Vec<Handle> = self
            .groups
            .lock()
            .expect("group map poisoned")
            .values()
            .cloned()
            .collect();
        for handle in handles {
            handle.lock().await.offsets.retain(|(t, _), _| t != topic);
        }
    }

    /// Expires sessions and rounds every `TICK`, and offsets of long-empty
    /// groups, until `shutdown`. The broker's one coordinator task.
    pub async fn run_ticker(self: Arc<Self>, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.tick().await,
                () = shutdown.cancelled() => return,
            }
        }
    }

    async fn tick(&self) {
        let handles: Vec<(String, Handle)> = {
            let groups = self.groups.lock().expect("group map poisoned");
            groups
                .iter()
                .filter(|(id, _)| (self.owns)(id))
                .map(|(id, h)| (id.clone(), h.clone()))
                .collect()
        };
        let now = self.clock.now_ms();
        for (id, handle) in handles {
            let mut entry = handle.lock().await;
            let replies = entry.group.tick(now);
            entry.deliver(replies);
            self.persist(&mut entry).await;
            if entry.group.is_empty() {
                self.expire_offsets(&id, &mut entry, now).await;
                self.forget_if_unused(&id, &mut entry, now).await;
            }
        }
    }

    /// Offset retention (`offsets.retention.minutes`): an empty group's
    /// offsets go once the retention has passed since it emptied and since
    /// its last commit.
    async fn expire_offsets(&self, id: &str, entry: &mut Entry, now: i64) {
        let newest = entry.offsets.values().map(|o| o.commit_time_ms).max();
        let since = newest.max(entry.empty_since);
        let expired = !entry.offsets.is_empty()
            && since.is_some_and(|t| now - t >= self.offsets_retention_ms);
        if !expired {
            return;
        }
        let partitions: Vec<(String, i32)> = entry.offsets.keys().cloned().collect();
        match self.meta.delete_offsets(id, partitions).await {
            Ok(()) => {
                tracing::info!(group = id, "offsets of an empty group expired");
                entry.offsets.clear();
            }
            Err(e) => tracing::warn!(group = id, error = %e, "cannot expire group offsets"),
        }
    }

    /// Drops a group that has had no members, no offsets and nobody waiting
    /// for `FORGET_UNUSED_AFTER_MS`, from the store and from memory (Kafka
    /// marks such a group Dead).
    async fn forget_if_unused(&self, id: &str, entry: &mut Entry, now: i64) {
        let unused = entry.offsets.is_empty() && entry.joins.is_empty() && entry.syncs.is_empty();
        let long_empty = entry
            .empty_since
            .is_some_and(|t| now - t >= FORGET_UNUSED_AFTER_MS);
        if !unused || !long_empty || entry.group.state() != GroupState::Empty {
            return;
        }
        if entry.persisted_revision.is_some()
            && let Err(e) = self.meta.delete_group(id).await
        {
            tracing::warn!(group = id, error = %e, "cannot delete an unused group");
            return;
        }
        entry.group.kill();
        self.groups.lock().expect("group map poisoned").remove(id);
        self.release(id).await;
    }
}

/// Rebuilds a group persisted at a stable point.
fn restore(meta: GroupMeta, settings: GroupSettings, now: i64) -> Group {
    let members = meta
        .members
        .into_iter()
        .map(|m| {
            state::Member::restored(
                m.member_id,
                m.instance_id,
                (m.client_id, m.client_host),
                (m.session_timeout_ms, m.rebalance_timeout_ms),
                m.protocols
                    .into_iter()
                    .map(|(n, b)| (n, Bytes::from(b)))
                    .collect(),
                Bytes::from(m.assignment),
            )
        })
        .collect();
    let protocol = meta.protocol_type.zip(meta.protocol);
    Group::restore(
        &meta.id,
        settings,
        meta.generation,
        protocol,
        meta.leader,
        members,
        now,
    )
}

/// Topics the group's members subscribe to (consumer protocol metadata).
fn subscribed_topics(group: &Group) -> Vec<String> {
    let protocol = group.protocol().unwrap_or_default();
    group
        .members()
        .flat_map(|m| {
            let metadata = m
                .protocols
                .iter()
                .find(|(n, _)| n == protocol)
                .map(|(_, b)| b.clone())
                .unwrap_or_default();
            decode_subscription(metadata)
        })
        .collect()
}

/// The topics in a consumer protocol subscription (version-prefixed).
fn decode_subscription(mut metadata: Bytes) -> Vec<String> {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    if metadata.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([metadata[0], metadata[1]]);
    let _ = metadata.split_to(2);
    ConsumerProtocolSubscription::decode(&mut metadata, version.clamp(0, 3))
        .map(|s| s.topics.iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::meta::embedded::EmbeddedStore;

    const SETTINGS: GroupSettings = GroupSettings {
        min_session_timeout_ms: 1000,
        max_session_timeout_ms: 60_000,
        initial_rebalance_delay_ms: 0,
    };
    const RETENTION_MS: i64 = 3_600_000;

    async fn coordinator(dir: &std::path::Path, clock: Clock) -> Coordinator {
        let meta: Arc<dyn MetaStore> = Arc::new(EmbeddedStore::open(dir).unwrap());
        Coordinator::open(meta, Arc::new(|_| true), SETTINGS, clock, RETENTION_MS)
            .await
            .unwrap()
    }

    fn offset(partition: i32, offset: i64, at: i64) -> CommittedOffset {
        CommittedOffset {
            topic: "t".into(),
            partition,
            offset,
            leader_epoch: -1,
            metadata: None,
            commit_time_ms: at,
        }
    }

    const STANDALONE: MemberRef<'static> = MemberRef {
        member_id: "",
        instance_id: None,
        generation: -1,
    };

    /// Joins one member (no handshake) and syncs it; returns its id.
    async fn join_and_sync(c: &Coordinator) -> String {
        let request = JoinRequest {
            member_id: String::new(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"m"))],
            require_known_member_id: false,
            new_member_id: "m1".into(),
        };
        let joined = c.join("g", request).await.unwrap();
        let member = MemberRef {
            member_id: &joined.member_id,
            instance_id: None,
            generation: joined.generation,
        };
        let assignment = vec![(joined.member_id.clone(), Bytes::from_static(b"a"))];
        c.sync("g", member, (None, None), assignment).await.unwrap();
        joined.member_id
    }

    #[test]
    fn a_store_that_moved_the_group_answers_not_coordinator() {
        let moved = AdminError::from(crate::error::Error::NotCoordinator("g".into()));
        assert_eq!(moved, AdminError::Group(GroupError::NotCoordinator));
        assert_eq!(moved.response_error(), ResponseError::NotCoordinator);
        let failed = AdminError::from(crate::error::Error::Meta("etcd: down".into()));
        assert_eq!(
            failed.response_error(),
            ResponseError::CoordinatorNotAvailable
        );
    }

    #[tokio::test]
    async fn stable_groups_and_offsets_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (clock, _) = Clock::manual(1_000);
        let c = coordinator(dir.path(), clock.clone()).await;
        let member_id = join_and_sync(&c).await;
        let member = MemberRef {
            member_id: &member_id,
            instance_id: None,
            generation: 1,
        };
        c.commit_offsets("g", member, vec![offset(0, 42, 1_000)])
            .await
            .unwrap();
        drop(c);
        let c = coordinator(dir.path(), clock).await;
        // The member carries on in its generation: no rebalance needed.
        assert_eq!(c.heartbeat("g", member).await, Ok(()));
        let described = c.describe("g").await.unwrap().unwrap();
        assert_eq!(
            (described.state, described.members.len()),
            (GroupState::Stable, 1)
        );
        let wanted = [("t".to_string(), 0)];
        let (found, _) = c.offsets("g", Some(&wanted)).await.unwrap();
        assert_eq!(found[0].1.as_ref().map(|o| o.offset), Some(42));
    }

    #[tokio::test]
    async fn transactional_offsets_show_once_their_transaction_commits() {
        let dir = tempfile::tempdir().unwrap();
        let c = coordinator(dir.path(), Clock::manual(1_000).0).await;
        c.commit_offsets("g", STANDALONE, vec![offset(0, 5, 1_000)])
            .await
            .unwrap();
        let pending = |producer_id, at| TxnOffsets {
            producer_id,
            offsets: vec![offset(0, at, 1_000)],
        };
        c.commit_txn_offsets("g", STANDALONE, pending(7, 9))
            .await
            .unwrap();
        c.commit_txn_offsets("g", STANDALONE, pending(8, 11))
            .await
            .unwrap();
        let (found, unstable) = c.offsets("g", None).await.unwrap();
        assert_eq!(found[0].1.as_ref().map(|o| o.offset), Some(5));
        assert!(unstable.contains(&("t".to_string(), 0)));
        // The transactions' coordinators end them in the store.
        c.meta.end_txn_offsets("g", 7, true).await.unwrap();
        c.meta.end_txn_offsets("g", 8, false).await.unwrap();
        let (found, unstable) = c.offsets("g", None).await.unwrap();
        assert_eq!(found[0].1.as_ref().map(|o| o.offset), Some(9));
        assert!(unstable.is_empty());
    }

    #[tokio::test]
    async fn offsets_of_empty_groups_expire_after_the_retention() {
        let dir = tempfile::tempdir().unwrap();
        let (clock, hand) = Clock::manual(1_000);
        let c = coordinator(dir.path(), clock.clone()).await;
        c.commit_offsets("g", STANDALONE, vec![offset(0, 7, 1_000)])
            .await
            .unwrap();
        hand.store(1_000 + RETENTION_MS - 1, Ordering::SeqCst);
        c.tick().await;
        assert_eq!(
            c.offsets("g", None).await.unwrap().0.len(),
            1,
            "kept until the retention passes"
        );
        hand.store(1_000 + RETENTION_MS, Ordering::SeqCst);
        c.tick().await;
        assert!(c.offsets("g", None).await.unwrap().0.is_empty());
        drop(c);
        let c = coordinator(dir.path(), clock).await;
        assert!(
            c.offsets("g", None).await.unwrap().0.is_empty(),
            "gone from the store too"
        );
    }

    #[tokio::test]
    async fn retention_counts_from_when_the_group_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let (clock, hand) = Clock::manual(1_000);
        let c = coordinator(dir.path(), clock).await;
        let member_id = join_and_sync(&c).await;
        let member = MemberRef {
            member_id: &member_id,
            instance_id: None,
            generation: 1,
        };
        c.commit_offsets("g", member, vec![offset(0, 5, 1_000)])
            .await
            .unwrap();
        // Years later the consumer, which never re-committed, leaves.
        let later = 1_000 + 10 * RETENTION_MS;
        hand.store(later, Ordering::SeqCst);
        c.heartbeat("g", member).await.unwrap();
        c.leave("g", &[(member_id.clone(), None)]).await.unwrap();
        c.tick().await;
        assert_eq!(
            c.offsets("g", None).await.unwrap().0.len(),
            1,
            "kept: the group only just emptied"
        );
        hand.store(later + RETENTION_MS, Ordering::SeqCst);
        c.tick().await;
        assert!(c.offsets("g", None).await.unwrap().0.is_empty());
        c.tick().await;
        assert!(c.list().await.is_empty(), "the unused group is forgotten");
    }

    #[tokio::test]
    async fn an_unused_group_lingers_before_it_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let (clock, hand) = Clock::manual(1_000);
        let c = coordinator(dir.path(), clock).await;
        let member_id = join_and_sync(&c).await;
        c.leave("g", &[(member_id, None)]).await.unwrap();
        c.tick().await;
        assert_eq!(c.list().await.len(), 1, "still there for DeleteGroups");
        hand.store(1_000 + FORGET_UNUSED_AFTER_MS, Ordering::SeqCst);
        c.tick().await;
        assert!(c.list().await.is_empty());
    }

    #[tokio::test]
    async fn active_groups_refuse_standalone_commits_and_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let (clock, _) = Clock::manual(1_000);
        let c = coordinator(dir.path(), clock).await;
        join_and_sync(&c).await;
        let refused = c
            .commit_offsets("g", STANDALONE, vec![offset(0, 1, 1_000)])
            .await;
        assert_eq!(refused, Err(AdminError::Group(GroupError::UnknownMemberId)));
        assert_eq!(c.delete("g").await, Err(AdminError::NonEmptyGroup));
        assert_eq!(c.delete("nope").await, Err(AdminError::GroupIdNotFound));
    }
}
