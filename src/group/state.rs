//! One consumer group under the classic group protocol, as a pure state
//! machine: no I/O and no clock of its own (every call takes `now`).
//!
//! States: Empty -> PreparingRebalance (members join) -> CompletingRebalance
//! (the leader computes assignments) -> Stable (members heartbeat) and back.
//! A call returns the replies it completes: a JoinGroup or SyncGroup
//! request is answered either at once or later, by the call that completes
//! the rebalance step it waits for. The async front (`group::Coordinator`)
//! keeps the waiting requests and delivers the replies.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

/// Milliseconds of the coordinator's clock.
pub type Millis = i64;

/// The group's place in the rebalance protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka tools show.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Why a group request is refused; each maps to one Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupError {
    /// Join again with this member id (JoinGroup v4+ handshake).
    MemberIdRequired(String),
    UnknownMemberId,
    IllegalGeneration,
    RebalanceInProgress,
    InconsistentGroupProtocol,
    InvalidSessionTimeout,
    FencedInstanceId,
    CoordinatorNotAvailable,
    /// Another broker coordinates the group.
    NotCoordinator,
}

impl GroupError {
    /// The Kafka error a client receives for this group error.
    pub fn response_error(&self) -> ResponseError {
        match self {
            GroupError::MemberIdRequired(_) => ResponseError::MemberIdRequired,
            GroupError::UnknownMemberId => ResponseError::UnknownMemberId,
            GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
            GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
            GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
            GroupError::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
            GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
            GroupError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
            GroupError::NotCoordinator => ResponseError::NotCoordinator,
        }
    }
}

/// A member's protocols: (name, metadata), in the member's preference order.
pub type Protocols = Vec<(String, Bytes)>;

/// A JoinGroup request, with a fresh member id chosen by the caller in case
/// one is needed (the state machine has no randomness).
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Protocols,
    /// JoinGroup v4+: an unknown member must first get an id.
    pub require_known_member_id: bool,
    pub new_member_id: String,
}

/// A successful JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub generation: i32,
    pub protocol_type: String,
    pub protocol: String,
    pub leader: String,
    pub member_id: String,
    /// Every member's id, instance id and metadata; only for the leader.
    pub members: Vec<(String, Option<String>, Bytes)>,
    /// The leader must not compute a new assignment: it rejoined a stable
    /// group as a static member, which keeps the current one.
    pub skip_assignment: bool,
}

/// A successful SyncGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    pub protocol_type: String,
    pub protocol: String,
    pub assignment: Bytes,
}

/// A reply to a JoinGroup or SyncGroup of `member_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Join(String, Result<Joined, GroupError>),
    Sync(String, Result<Synced, GroupError>),
}

/// Limits and delays the coordinator applies.
#[derive(Debug, Clone, Copy)]
pub struct GroupSettings {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// How long the first rebalance of an empty group waits for more members.
    pub initial_rebalance_delay_ms: i32,
}

/// A member of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocols: Protocols,
    pub assignment: Bytes,
    session_deadline: Millis,
    awaiting_join: bool,
    awaiting_sync: bool,
}

impl Member {
    /// A member as persisted, before it heartbeats again.
    pub fn restored(
        member_id: String,
        instance_id: Option<String>,
        (client_id, client_host): (String, String),
        (session_timeout_ms, rebalance_timeout_ms): (i32, i32),
        protocols: Protocols,
        assignment: Bytes,
    ) -> Member {
        Member {
            member_id,
            instance_id,
            client_id,
            client_host,
            session_timeout_ms,
            rebalance_timeout_ms,
            protocols,
            assignment,
            session_deadline: 0,
            awaiting_join: false,
            awaiting_sync: false,
        }
    }

    fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// One consumer group.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED and the time they expire.
    pending_members: BTreeMap<String, Millis>,
    /// Static members: instance id -> member id.
    static_members: BTreeMap<String, String>,
    /// Join round deadline (PreparingRebalance) or sync deadline (CompletingRebalance).
    deadline: Option<Millis>,
    /// The first rebalance of an empty group waits until then for more members.
    initial_delay_until: Option<Millis>,
    /// Bumped by every change worth persisting (new generation, new
    /// assignments, a static member's new id).
    revision: u64,
    settings: GroupSettings,
}

impl Group {
    /// A new, empty group.
    pub fn new(id: &str, settings: GroupSettings) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            deadline: None,
            initial_delay_until: None,
            revision: 0,
            settings,
        }
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// Changes whenever the group reaches a state worth persisting.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// Whether the group has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Marks the group deleted.
    pub fn kill(&mut self) {
        self.state = GroupState::Dead;
    }

    /// Restores a group persisted as Stable: members get a full session
    /// from `now` to heartbeat again.
    pub fn restore(
        id: &str,
        settings: GroupSettings,
        generation: i32,
        protocol: Option<(String, String)>,
        leader: Option<String>,
        members: Vec<Member>,
        now: Millis,
    ) -> Group {
        let mut group = Group::new(id, settings);
        group.generation = generation;
        if let Some((protocol_type, name)) = protocol {
            group.protocol_type = Some(protocol_type);
            group.protocol = Some(name);
        }
        for mut member in members {
            member.session_deadline = now + i64::from(member.session_timeout_ms);
            member.awaiting_join = false;
            member.awaiting_sync = false;
            if let Some(instance) = &member.instance_id {
                group
                    .static_members
                    .insert(instance.clone(), member.member_id.clone());
            }
            group.members.insert(member.member_id.clone(), member);
        }
        if !group.members.is_empty() {
            group.leader = leader.filter(|l| group.members.contains_key(l));
            group.state = GroupState::Stable;
        }
        group
    }

    /// JoinGroup. Returns the replies completed by this call; the caller's
    /// own reply may be among them or come from a later call.
    pub fn join(&mut self, req: JoinRequest, now: Millis) -> (String, Vec<Reply>) {
        let fail = |member: &str, e| {
            (
                member.to_string(),
                vec![Reply::Join(member.to_string(), Err(e))],
            )
        };
        let s = self.settings;
        if req.session_timeout_ms < s.min_session_timeout_ms
            || req.session_timeout_ms > s.max_session_timeout_ms
        {
            return fail(&req.member_id, GroupError::InvalidSessionTimeout);
        }
        if self.state == GroupState::Dead {
            return fail(&req.member_id, GroupError::CoordinatorNotAvailable);
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() || !self.accepts_protocols(&req)
        {
            return fail(&req.member_id, GroupError::InconsistentGroupProtocol);
        }
        if req.member_id.is_empty() {
            return self.join_new(req, now);
        }
        let member_id = req.member_id.clone();
        if let Err(e) = self.check_instance(&member_id, req.instance_id.as_deref()) {
            return fail(&member_id, e);
        }
        if self.pending_members.remove(&member_id).is_some() {
            self.add_member(&req, member_id.clone(), now);
            return (member_id.clone(), self.after_join(&member_id, now));
        }
        let Some(member) = self.members.get(&member_id) else {
            return fail(&member_id, GroupError::UnknownMemberId);
        };
        if member.instance_id != req.instance_id {
            // A static member may not drop or change its instance id.
            return fail(&member_id, GroupError::FencedInstanceId);
        }
        let unchanged = member.protocols == req.protocols;
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        let resend = match self.state {
            GroupState::CompletingRebalance => unchanged,
            GroupState::Stable => unchanged && !is_leader,
            _ => false,
        };
        if resend {
            // A member that missed its answer: the current generation.
            let joined = self.joined(&member_id);
            return (member_id.clone(), vec![Reply::Join(member_id, Ok(joined))]);
        }
        self.add_member(&req, member_id.clone(), now);
        (member_id.clone(), self.after_join(&member_id, now))
    }

    /// A join without a member id: static rejoin, or a new member.
    fn join_new(&mut self, req: JoinRequest, now: Millis) -> (String, Vec<Reply>) {
        let new_id = req.new_member_id.clone();
        if let Some(instance) = &req.instance_id {
            if let Some(old_id) = self.static_members.get(instance).cloned() {
                return self.rejoin_static(req, old_id, now);
            }
            self.add_member(&req, new_id.clone(), now);
            return (new_id.clone(), self.after_join(&new_id, now));
        }
        if req.require_known_member_id {
            let deadline = now + i64::from(req.session_timeout_ms);
            self.pending_members.insert(new_id.clone(), deadline);
            return (
                new_id.clone(),
                vec![Reply::Join(
                    new_id.clone(),
                    Err(GroupError::MemberIdRequired(new_id)),
                )],
            );
        }
        self.add_member(&req, new_id.clone(), now);
        (new_id.clone(), self.after_join(&new_id, now))
    }

    /// A static member restarted: it takes a new member id, fencing the old
    /// one, and its new metadata. In a Stable group whose selected protocol
    /// stays the same it gets its place back without a rebalance (a leader
    /// is told to skip the assignment); anything else rebalances.
    fn rejoin_static(
        &mut self,
        req: JoinRequest,
        old_id: String,
        now: Millis,
    ) -> (String, Vec<Reply>) {
        let new_id = req.new_member_id.clone();
        let Some(mut member) = self.members.remove(&old_id) else {
            // A stale mapping: join as a new static member.
            self.static_members
                .remove(req.instance_id.as_deref().unwrap_or_default());
            self.add_member(&req, new_id.clone(), now);
            return (new_id.clone(), self.after_join(&new_id, now));
        };
        let was_leader = self.leader.as_deref() == Some(old_id.as_str());
        let mut replies = Vec::new();
        // The old incarnation's waiting requests are fenced.
        if std::mem::take(&mut member.awaiting_join) {
            replies.push(Reply::Join(
                old_id.clone(),
                Err(GroupError::FencedInstanceId),
            ));
        }
        if std::mem::take(&mut member.awaiting_sync) {
            replies.push(Reply::Sync(old_id, Err(GroupError::FencedInstanceId)));
        }
        member.member_id = new_id.clone();
        member.protocols = req.protocols.clone();
        member.client_id = req.client_id.clone();
        member.client_host = req.client_host.clone();
        member.session_timeout_ms = req.session_timeout_ms;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.session_deadline = now + i64::from(req.session_timeout_ms);
        self.members.insert(new_id.clone(), member);
        self.static_members.insert(
            req.instance_id.clone().expect("static join"),
            new_id.clone(),
        );
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        self.revision += 1;
        let same_protocol = self.protocol.as_ref() == Some(&self.select_protocol());
        if self.state == GroupState::Stable && same_protocol {
            let joined = Joined {
                skip_assignment: was_leader,
                ..self.joined(&new_id)
            };
            replies.push(Reply::Join(new_id.clone(), Ok(joined)));
            return (new_id, replies);
        }
        self.add_member(&req, new_id.clone(), now);
        replies.extend(self.after_join(&new_id, now));
        (new_id, replies)
    }

    fn accepts_protocols(&self, req: &JoinRequest) -> bool {
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(req.protocol_type.as_str()) {
            return false;
        }
        // Some protocol must remain supported by every member.
        req.protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .filter(|m| m.member_id != req.member_id)
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    fn add_member(&mut self, req: &JoinRequest, member_id: String, now: Millis) {
        let (assignment, awaiting_sync) = self
            .members
            .get(&member_id)
            .map(|m| (m.assignment.clone(), m.awaiting_sync))
            .unwrap_or_default();
        let member = Member {
            member_id: member_id.clone(),
            instance_id: req.instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocols: req.protocols.clone(),
            assignment,
            session_deadline: now + i64::from(req.session_timeout_ms),
            awaiting_join: true,
            // A pending SyncGroup is answered by the rebalance this starts.
            awaiting_sync,
        };
        if let Some(instance) = &req.instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        self.members.insert(member_id, member);
        if self.protocol_type.is_none() || self.members.len() == 1 {
            self.protocol_type = Some(req.protocol_type.clone());
        }
    }

    /// After a member (re)joined: start a rebalance or complete one.
    fn after_join(&mut self, _member_id: &str, now: Millis) -> Vec<Reply> {
        let mut replies = Vec::new();
        match self.state {
            GroupState::PreparingRebalance => {
                if let Some(until) = self.initial_delay_until {
                    let cap = self.deadline.unwrap_or(until);
                    let delay = i64::from(self.settings.initial_rebalance_delay_ms);
                    self.initial_delay_until = Some((now + delay).min(cap).max(until));
                }
            }
            _ => replies.extend(self.prepare_rebalance(now)),
        }
        replies.extend(self.try_complete_join(now));
        replies
    }

    /// Enters PreparingRebalance: every member must join again.
    fn prepare_rebalance(&mut self, now: Millis) -> Vec<Reply> {
        let mut replies = Vec::new();
        for member in self.members.values_mut() {
            if std::mem::take(&mut member.awaiting_sync) {
                replies.push(Reply::Sync(
                    member.member_id.clone(),
                    Err(GroupError::RebalanceInProgress),
                ));
            }
        }
        let rebalance_timeout = self
            .members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0);
        self.initial_delay_until = (self.state == GroupState::Empty).then(|| {
            now + i64::from(self.settings.initial_rebalance_delay_ms).min(rebalance_timeout)
        });
        self.deadline = Some(now + rebalance_timeout);
        self.state = GroupState::PreparingRebalance;
        replies
    }

    /// Completes the join round once every member has joined (and the
    /// initial delay is over) or the round's deadline passed.
    fn try_complete_join(&mut self, now: Millis) -> Vec<Reply> {
        if self.state != GroupState::PreparingRebalance {
            return Vec::new();
        }
        let all_joined =
            self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join);
        let delayed = self.initial_delay_until.is_some_and(|until| now < until);
        let overdue = self.deadline.is_some_and(|d| now >= d);
        if !(overdue || (all_joined && !delayed)) {
            return Vec::new();
        }
        // Dynamic members that did not rejoin in time leave the group; static
        // ones stay until their session expires.
        self.remove_members(|m| !m.awaiting_join && m.instance_id.is_none());
        self.initial_delay_until = None;
        self.generation += 1;
        self.revision += 1;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.leader = None;
            self.deadline = None;
            return Vec::new();
        }
        self.protocol = Some(self.select_protocol());
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = GroupState::CompletingRebalance;
        let sync_timeout = self
            .members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0);
        self.deadline = Some(now + sync_timeout);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        ids.into_iter()
            .map(|id| {
                let member = self.members.get_mut(&id).expect("listed above");
                member.awaiting_join = false;
                member.assignment = Bytes::new();
                member.session_deadline = now + i64::from(member.session_timeout_ms);
                let joined = self.joined(&id);
                Reply::Join(id, Ok(joined))
            })
            .collect()
    }

    /// The protocol every member supports with the most first-choice
    /// votes; ties go to the earliest in the first member's order.
    fn select_protocol(&self) -> String {
        let first = self.members.values().next();
        let supported: Vec<&String> = first
            .map(|m| m.protocols.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
            })
            .collect();
        let votes = |name: &String| {
            self.members
                .values()
                .filter(|m| {
                    let choice = m
                        .protocols
                        .iter()
                        .map(|(n, _)| n)
                        .find(|n| supported.contains(n));
                    choice == Some(name)
                })
                .count()
        };
        let mut best: Option<(&String, usize)> = None;
        for name in &supported {
            let v = votes(name);
            if best.is_none_or(|(_, most)| v > most) {
                best = Some((name, v));
            }
        }
        best.map(|(name, _)| name.clone()).unwrap_or_default()
    }

    fn joined(&self, member_id: &str) -> Joined {
        let protocol = self.protocol.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| {
                    (
                        m.member_id.clone(),
                        m.instance_id.clone(),
                        m.metadata(&protocol),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        Joined {
            generation: self.generation,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol,
            leader,
            member_id: member_id.to_string(),
            members,
            skip_assignment: false,
        }
    }

    fn synced(&self, member_id: &str) -> Synced {
        Synced {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: self.protocol.clone().unwrap_or_default(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    /// A request naming a static instance now held by another member id
    /// comes from a superseded process: it is fenced, not merely unknown.
    fn check_instance(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), GroupError> {
        match instance_id.and_then(|i| self.static_members.get(i)) {
            Some(current) if current != member_id => Err(GroupError::FencedInstanceId),
            _ => Ok(()),
        }
    }

    /// Removes every member `leaves` selects.
    fn remove_members(&mut self, leaves: impl Fn(&Member) -> bool) {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| leaves(m))
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
    }

    fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let member = self.members.remove(member_id)?;
        if let Some(instance) = &member.instance_id
            && self.static_members.get(instance).map(String::as_str) == Some(member_id)
        {
            self.static_members.remove(instance);
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
        Some(member)
    }

    /// Checks a member and generation (SyncGroup, Heartbeat, OffsetCommit).
    fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        self.check_instance(member_id, instance_id)?;
        let member = self
            .members
            .get(member_id)
            .ok_or(GroupError::UnknownMemberId)?;
        if instance_id.is_some() && member.instance_id.as_deref() != instance_id {
            return Err(GroupError::FencedInstanceId);
        }
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }

    /// SyncGroup v5+ names the protocol type and protocol the member
    /// expects: they must be the group's.
    pub fn check_protocol(
        &self,
        protocol_type: Option<&str>,
        protocol: Option<&str>,
    ) -> Result<(), GroupError> {
        let differs = |given: Option<&str>, ours: &Option<String>| {
            given.is_some_and(|g| ours.as_deref() != Some(g))
        };
        if differs(protocol_type, &self.protocol_type) || differs(protocol, &self.protocol) {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        Ok(())
    }

    /// SyncGroup: the leader brings the assignments; everyone gets theirs.
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now: Millis,
    ) -> Vec<Reply> {
        let reply = |e| vec![Reply::Sync(member_id.to_string(), Err(e))];
        if let Err(e) = self.check_member(member_id, instance_id, generation) {
            return reply(e);
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => reply(GroupError::UnknownMemberId),
            GroupState::PreparingRebalance => reply(GroupError::RebalanceInProgress),
            GroupState::Stable => vec![Reply::Sync(
                member_id.to_string(),
                Ok(self.synced(member_id)),
            )],
            GroupState::CompletingRebalance => {
                let member = self.members.get_mut(member_id).expect("checked");
                member.awaiting_sync = true;
                member.session_deadline = now + i64::from(member.session_timeout_ms);
                if self.leader.as_deref() != Some(member_id) {
                    return Vec::new();
                }
                let mut assignments: BTreeMap<String, Bytes> = assignments.into_iter().collect();
                for member in self.members.values_mut() {
                    member.assignment = assignments.remove(&member.member_id).unwrap_or_default();
                }
                self.state = GroupState::Stable;
                self.deadline = None;
                self.revision += 1;
                let waiting: Vec<String> = self
                    .members
                    .values_mut()
                    .filter_map(|m| {
                        std::mem::take(&mut m.awaiting_sync).then(|| m.member_id.clone())
                    })
                    .collect();
                waiting
                    .into_iter()
                    .map(|id| {
                        let synced = self.synced(&id);
                        Reply::Sync(id, Ok(synced))
                    })
                    .collect()
            }
        }
    }

    /// Heartbeat: keeps the member's session alive; tells it to rejoin when
    /// a rebalance is under way.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Millis,
    ) -> Result<(), GroupError> {
        if matches!(self.state, GroupState::Empty | GroupState::Dead) {
            return Err(GroupError::UnknownMemberId);
        }
        self.check_member(member_id, instance_id, generation)?;
        let member = self.members.get_mut(member_id).expect("checked");
        member.session_deadline = now + i64::from(member.session_timeout_ms);
        match self.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// LeaveGroup of one member, named by member id or (static) instance id.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Millis,
    ) -> (Result<(), GroupError>, Vec<Reply>) {
        let id = match (member_id.is_empty(), instance_id) {
            (true, Some(instance)) => match self.static_members.get(instance) {
                Some(id) => id.clone(),
                None => return (Err(GroupError::UnknownMemberId), Vec::new()),
            },
            _ => member_id.to_string(),
        };
        if let Err(e) = self.check_instance(&id, instance_id) {
            return (Err(e), Vec::new());
        }
        if self.pending_members.remove(&id).is_some() {
            // A member that got its id but never joined: the round need
            // not wait for it any more.
            return (Ok(()), self.try_complete_join(now));
        }
        let Some(member) = self.members.get(&id) else {
            return (Err(GroupError::UnknownMemberId), Vec::new());
        };
        if instance_id.is_some() && member.instance_id.as_deref() != instance_id {
            return (Err(GroupError::FencedInstanceId), Vec::new());
        }
        let mut replies = Vec::new();
        if member.awaiting_join {
            replies.push(Reply::Join(id.clone(), Err(GroupError::UnknownMemberId)));
        }
        if member.awaiting_sync {
            replies.push(Reply::Sync(id.clone(), Err(GroupError::UnknownMemberId)));
        }
        self.remove_member(&id);
        replies.extend(self.membership_changed(now));
        (Ok(()), replies)
    }

    /// After members left or expired: rebalance what remains.
    fn membership_changed(&mut self, now: Millis) -> Vec<Reply> {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                if self.members.is_empty() {
                    let replies = self.prepare_rebalance(now);
                    self.deadline = Some(now);
                    return [replies, self.try_complete_join(now)].concat();
                }
                self.prepare_rebalance(now)
            }
            GroupState::PreparingRebalance => self.try_complete_join(now),
            GroupState::Empty | GroupState::Dead => Vec::new(),
        }
    }

    /// Checks whether an OffsetCommit may write: a member of the current
    /// generation, or a standalone consumer (no member id, generation < 0)
    /// committing to a group without members.
    pub fn check_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Millis,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if generation < 0 && member_id.is_empty() {
            return if self.members.is_empty() {
                Ok(())
            } else {
                Err(GroupError::UnknownMemberId)
            };
        }
        self.check_member(member_id, instance_id, generation)?;
        if self.state == GroupState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        let member = self.members.get_mut(member_id).expect("checked");
        member.session_deadline = now + i64::from(member.session_timeout_ms);
        Ok(())
    }

    /// Starts over after a stable point could not be persisted.
    pub fn force_rebalance(&mut self, now: Millis) -> Vec<Reply> {
        if self.members.is_empty() {
            return Vec::new();
        }
        self.prepare_rebalance(now)
    }

    /// Expires sessions, pending member ids and round deadlines.
    pub fn tick(&mut self, now: Millis) -> Vec<Reply> {
        self.pending_members.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join && !m.awaiting_sync && m.session_deadline <= now)
            .map(|m| m.member_id.clone())
            .collect();
        let mut replies = Vec::new();
        if !expired.is_empty() {
            for id in &expired {
                self.remove_member(id);
            }
            replies.extend(self.membership_changed(now));
        }
        match self.state {
            GroupState::PreparingRebalance => replies.extend(self.try_complete_join(now)),
            GroupState::CompletingRebalance if self.deadline.is_some_and(|d| now >= d) => {
                // The leader never sent the assignments: members that did
                // not sync leave, the rest rebalance.
                self.remove_members(|m| !m.awaiting_sync);
                replies.extend(self.membership_changed(now));
            }
            _ => {}
        }
        replies
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: GroupSettings = GroupSettings {
        min_session_timeout_ms: 1000,
        max_session_timeout_ms: 60_000,
        initial_rebalance_delay_ms: 0,
    };

    fn join_request(member_id: &str, new_id: &str) -> JoinRequest {
        JoinRequest {
            member_id: member_id.into(),
            instance_id: None,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
            require_known_member_id: true,
            new_member_id: new_id.into(),
        }
    }

    fn joined(replies: &[Reply], member: &str) -> Joined {
        replies
            .iter()
            .find_map(|r| match r {
                Reply::Join(id, Ok(j)) if id == member => Some(j.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no successful join reply for {member} in {replies:?}"))
    }

    /// Joins through the member-id handshake; returns the member id.
    fn join_new(group: &mut Group, new_id: &str, now: Millis) -> Vec<Reply> {
        let (id, replies) = group.join(join_request("", new_id), now);
        assert_eq!(
            replies,
            vec![Reply::Join(
                id.clone(),
                Err(GroupError::MemberIdRequired(id.clone()))
            )]
        );
        group.join(join_request(&id, "unused"), now).1
    }

    fn assign(pairs: &[(&str, &str)]) -> Vec<(String, Bytes)> {
        pairs
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::from(a.to_string())))
            .collect()
    }

    #[test]
    fn sync_must_name_the_groups_protocol() {
        let mut g = Group::new("g", SETTINGS);
        join_new(&mut g, "m1", 0);
        assert_eq!(g.check_protocol(None, None), Ok(()));
        assert_eq!(g.check_protocol(Some("consumer"), Some("range")), Ok(()));
        assert_eq!(
            g.check_protocol(Some("connect"), Some("range")),
            Err(GroupError::InconsistentGroupProtocol)
        );
        assert_eq!(
            g.check_protocol(Some("consumer"), Some("roundrobin")),
            Err(GroupError::InconsistentGroupProtocol)
        );
    }

    #[test]
    fn single_member_joins_syncs_and_heartbeats() {
        let mut g = Group::new("g", SETTINGS);
        let replies = join_new(&mut g, "m1", 0);
        let j = joined(&replies, "m1");
        assert_eq!(
            (j.generation, j.leader.as_str(), j.protocol.as_str()),
            (1, "m1", "range")
        );
        assert_eq!(j.members.len(), 1, "the leader sees every member");
        assert_eq!(g.state(), GroupState::CompletingRebalance);
        let replies = g.sync("m1", None, 1, assign(&[("m1", "p0,p1")]), 10);
        assert_eq!(
            replies,
            vec![Reply::Sync(
                "m1".into(),
                Ok(Synced {
                    protocol_type: "consumer".into(),
                    protocol: "range".into(),
                    assignment: Bytes::from("p0,p1")
                })
            )]
        );
        assert_eq!(g.state(), GroupState::Stable);
        assert_eq!(g.heartbeat("m1", None, 1, 20), Ok(()));
        assert_eq!(
            g.heartbeat("m1", None, 0, 20),
            Err(GroupError::IllegalGeneration)
        );
        assert_eq!(
            g.heartbeat("nobody", None, 1, 20),
            Err(GroupError::UnknownMemberId)
        );
    }

    #[test]
    fn a_second_member_triggers_a_rebalance_both_must_rejoin() {
        let mut g = Group::new("g", SETTINGS);
        join_new(&mut g, "m1", 0);
        g.sync("m1", None, 1, assign(&[("m1", "all")]), 0);
        // m2 joins: the group prepares a rebalance and waits for m1.
        let replies = join_new(&mut g, "m2", 100);
        assert!(replies.is_empty(), "{replies:?}");
        assert_eq!(g.state(), GroupState::PreparingRebalance);
        assert_eq!(
            g.heartbeat("m1", None, 1, 200),
            Err(GroupError::RebalanceInProgress)
        );
        let replies = g.join(join_request("m1", "unused"), 300).1;
        assert_eq!(replies.len(), 2);
        let (j1, j2) = (joined(&replies, "m1"), joined(&replies, "m2"));
        assert_eq!((j1.generation, j2.generation), (2, 2));
        assert_eq!(j1.leader, "m1", "the leader stays the leader");
        assert_eq!((j1.members.len(), j2.members.len()), (2, 0));
        // The follower's sync waits for the leader's.
        assert!(g.sync("m2", None, 2, vec![], 400).is_empty());
        let replies = g.sync("m1", None, 2, assign(&[("m1", "a"), ("m2", "b")]), 500);
        let assignments: BTreeMap<String, Bytes> = replies
            .into_iter()
            .map(|r| match r {
                Reply::Sync(id, Ok(s)) => (id, s.assignment),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(assignments["m1"], Bytes::from("a"));
        assert_eq!(assignments["m2"], Bytes::from("b"));
        assert_eq!(g.state(), GroupState::Stable);
    }

    #[test]
    fn members_that_do_not_rejoin_in_time_are_dropped() {
        let mut g = Group::new("g", SETTINGS);
        join_new(&mut g, "m1", 0);
        g.sync("m1", None, 1, assign(&[("m1", "all")]), 0);
        join_new(&mut g, "m2", 1000);
        // m1 keeps heartbeating but never rejoins: the round ends at the
        // rebalance timeout (30 s after it started), without m1.
        for t in (5000..=30_000).step_by(5000) {
            assert_eq!(
                g.heartbeat("m1", None, 1, t),
                Err(GroupError::RebalanceInProgress)
            );
            assert!(g.tick(t).is_empty());
        }
        let replies = g.tick(31_000);
        let j = joined(&replies, "m2");
        assert_eq!((j.generation, j.leader.as_str()), (2, "m2"));
        assert_eq!(g.members().count(), 1);
    }

    #[test]
    fn silent_members_expire_and_the_group_rebalances() {
        let mut g = Group::new("g", SETTINGS);
        join_new(&mut g, "m1", 0);
        join_new(&mut g, "m2", 0);
        g.join(join_request("m1", "unused"), 0);
        g.sync("m2", None, 2, vec![], 0);
        g.sync("m1", None, 2, assign(&[("m1", "a"), ("m2", "b")]), 0);
        assert_eq!((g.generation(), g.state()), (2, GroupState::Stable));
        // m1 keeps heartbeating, m2 crashed.
        for t in (3000..=12_000).step_by(3000) {
            g.heartbeat("m1", None, 2, t).ok();
            g.tick(t);
        }
        assert_eq!(g.members().count(), 1);
        assert_eq!(g.state(), GroupState::PreparingRebalance);
        let replies = g.join(join_request("m1", "unused"), 12_500).1;
        assert_eq!(joined(&replies, "m1").generation, 3);
    }

    #[test]
    fn leaving_rebalances_and_the_last_leave_empties_the_group() {
        let mut g = Group::new("g", SETTINGS);
        join_new(&mut g, "m1", 0);
        g.sync("m1", None, 1, assign(&[("m1", "all")]), 0);
        let (result, replies) = g.leave("m1", None, 10);
        assert_eq!(result, Ok(()));
        assert!(replies.is_empty());
        assert_eq!(g.state(), GroupState::Empty);
        assert_eq!(g.leave("m1", None, 20).0, Err(GroupError::UnknownMemberId));
        assert_eq!(
            g.check_commit("", None, -1, 30),
            Ok(()),
            "standalone commits are fine when empty"
        );
    }

    #[test]
    fn static_follower_restart_keeps_its_assignment_without_rebalance() {
        let mut g = Group::new("g", SETTINGS);
        let static_join = |instance: &str, new_id: &str| JoinRequest {
            instance_id: Some(instance.into()),
            ..join_request("", new_id)
        };
        joined(&g.join(static_join("i1", "m1"), 0).1, "m1");
        g.sync("m1", None, 1, assign(&[("m1", "x")]), 0);
        g.join(static_join("i2", "m2"), 10);
        let replies = g
            .join(
                JoinRequest {
                    instance_id: Some("i1".into()),
                    ..join_request("m1", "")
                },
                10,
            )
            .1;
        assert_eq!(joined(&replies, "m2").generation, 2);
        g.sync("m2", Some("i2"), 2, vec![], 20);
        g.sync("m1", Some("i1"), 2, assign(&[("m1", "a"), ("m2", "b")]), 20);
        // i2 restarts with a new member id: same generation, no rebalance.
        let (id, replies) = g.join(static_join("i2", "m2-new"), 30);
        assert_eq!(id, "m2-new");
        assert_eq!(joined(&replies, "m2-new").generation, 2);
        assert_eq!(g.state(), GroupState::Stable);
        let synced = g.sync("m2-new", Some("i2"), 2, vec![], 40);
        assert!(matches!(&synced[0], Reply::Sync(_, Ok(s)) if s.assignment == "b"));
        // The old incarnation is fenced.
        assert_eq!(
            g.heartbeat("m2", None, 2, 50),
            Err(GroupError::UnknownMemberId)
        );
        assert_eq!(g.heartbeat("m1", Some("i1"), 2, 50), Ok(()));
    }

    #[test]
    fn superseded_and_malformed_static_requests_are_fenced() {
        let mut g = Group::new("g", SETTINGS);
        let static_join = |instance: &str, new_id: &str| JoinRequest {
            instance_id: Some(instance.into()),
            ..join_request("", new_id)
        };
        joined(&g.join(static_join("i1", "m1"), 0).1, "m1");
        g.sync("m1", Some("i1"), 1, assign(&[("m1", "x")]), 0);
        // A restart with new metadata but the same selected protocol: no rebalance.
        let restarted = JoinRequest {
            protocols: vec![("range".into(), Bytes::from_static(b"owned: none"))],
            ..static_join("i1", "m1b")
        };
        let j = joined(&g.join(restarted, 10).1, "m1b");
        assert_eq!((j.generation, g.state()), (1, GroupState::Stable));
        // The superseded process is fenced, not told to rejoin.
        assert_eq!(
            g.heartbeat("m1", Some("i1"), 1, 20),
            Err(GroupError::FencedInstanceId)
        );
        assert!(matches!(
            &g.join(
                JoinRequest {
                    instance_id: Some("i1".into()),
                    ..join_request("m1", "x")
                },
                20
            )
            .1[0],
            Reply::Join(_, Err(GroupError::FencedInstanceId))
        ));
        assert_eq!(
            g.leave("m1", Some("i1"), 20).0,
            Err(GroupError::FencedInstanceId)
        );
        // Dropping the instance id on rejoin is refused too.
        assert!(matches!(
            &g.join(join_request("m1b", "x"), 30).1[0],
            Reply::Join(_, Err(GroupError::FencedInstanceId))
        ));
        assert_eq!(g.heartbeat("m1b", Some("i1"), 1, 40), Ok(()));
    }

    #[test]
    fn a_pending_member_that_leaves_does_not_hold_up_the_round() {
        let mut g = Group::new("g", SETTINGS);
        join_new(&mut g, "m1", 0);
        g.sync("m1", None, 1, assign(&[("m1", "a")]), 0);
        // m2 gets an id but leaves instead of joining.
        let (m2, _) = g.join(join_request("", "m2"), 10);
        g.join(join_request("m1", "x"), 10);
        assert_eq!(g.state(), GroupState::PreparingRebalance);
        let (result, replies) = g.leave(&m2, None, 20);
        assert_eq!(result, Ok(()));
        assert_eq!(joined(&replies, "m1").generation, 2);
    }

    #[test]
    fn members_waiting_for_the_leaders_sync_do_not_expire() {
        let mut g = Group::new("g", SETTINGS);
        join_new(&mut g, "m1", 0);
        join_new(&mut g, "m2", 0);
        g.join(join_request("m1", "x"), 0);
        assert!(
            g.sync("m2", None, 2, vec![], 0).is_empty(),
            "m2 waits for the leader"
        );
        // Past m2's 10 s session but within the 30 s sync deadline; the
        // leader heartbeats meanwhile.
        assert_eq!(g.heartbeat("m1", None, 2, 8_000), Ok(()));
        assert!(g.tick(15_000).is_empty());
        let replies = g.sync("m1", None, 2, assign(&[("m1", "a"), ("m2", "b")]), 16_000);
        assert_eq!(replies.len(), 2, "both members get their assignment");
    }

    #[test]
    fn initial_delay_gathers_members_into_the_first_generation() {
        let settings = GroupSettings {
            initial_rebalance_delay_ms: 300,
            ..SETTINGS
        };
        let mut g = Group::new("g", settings);
        assert!(join_new(&mut g, "m1", 0).is_empty());
        assert!(join_new(&mut g, "m2", 100).is_empty());
        assert!(g.tick(350).is_empty(), "each join extends the delay");
        let replies = g.tick(400);
        assert_eq!(replies.len(), 2);
        assert_eq!(joined(&replies, "m1").generation, 1);
    }

    #[test]
    fn protocols_must_be_compatible() {
        let mut g = Group::new("g", SETTINGS);
        join_new(&mut g, "m1", 0);
        let other = JoinRequest {
            protocols: vec![("roundrobin".into(), Bytes::new())],
            ..join_request("", "m2")
        };
        let (_, replies) = g.join(other, 0);
        assert_eq!(
            replies,
            vec![Reply::Join(
                "".into(),
                Err(GroupError::InconsistentGroupProtocol)
            )]
        );
        let short = JoinRequest {
            session_timeout_ms: 10,
            ..join_request("", "m3")
        };
        assert!(matches!(
            &g.join(short, 0).1[0],
            Reply::Join(_, Err(GroupError::InvalidSessionTimeout))
        ));
    }

    #[test]
    fn commits_are_checked_against_the_generation() {
        let mut g = Group::new("g", SETTINGS);
        join_new(&mut g, "m1", 0);
        assert_eq!(
            g.check_commit("m1", None, 1, 0),
            Err(GroupError::RebalanceInProgress)
        );
        g.sync("m1", None, 1, assign(&[("m1", "all")]), 0);
        assert_eq!(g.check_commit("m1", None, 1, 0), Ok(()));
        assert_eq!(
            g.check_commit("m1", None, 0, 0),
            Err(GroupError::IllegalGeneration)
        );
        assert_eq!(
            g.check_commit("", None, -1, 0),
            Err(GroupError::UnknownMemberId)
        );
    }
}
