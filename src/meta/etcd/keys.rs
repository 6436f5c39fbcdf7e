//! The etcd key layout of a cluster, in one place: every key under a
//! cluster's root is built here, by the metadata store and by
//! [`crate::cluster`] alike. Values are JSON.
//!
//! - `topics/NAME`: the topic; `alive/TOPIC_ID`: its partition count,
//!   present while it exists;
//! - `partitions/TOPIC_ID/PARTITION/state`: leader epoch, log start,
//!   committed end and producer state; absent until the first commit;
//! - `partitions/TOPIC_ID/PARTITION/extents/BASE_OFFSET`: one per extent
//!   (the offset zero-padded, so keys sort by offset), so no value grows
//!   with the log;
//! - `leaders/TOPIC_ID/PARTITION`: the partition's leader and its epoch,
//!   written by the controller with the epoch in the state;
//! - `pins/TOPIC_ID/PARTITION`: the broker an operator moved the
//!   partition to (`silt cluster move`), which the controller keeps it on;
//! - `live/brokers/ID`: a registered broker, under its lease;
//!   `live/controller`: the controller's id, under its lease;
//! - `producer_ids`: the next free producer id; `broker_ids`: the next id
//!   `broker.id = "auto"` gives out; `broker_configs`;
//! - `groups/GROUP_HEX` and `offsets/GROUP_HEX/TOPIC/PARTITION` (group ids
//!   are arbitrary strings, so they are hex-encoded in keys);
//!   `live/groups/GROUP_HEX`: the group's coordinator, under its lease;
//! - `transactions/ID_HEX`: a transactional id's coordinator state;
//!   `live/transactions/ID_HEX`: its coordinator, under its lease;
//!   `txn_offsets/GROUP_HEX/PRODUCER_ID`: offsets an open transaction
//!   commits to the group.
//! - `scram/USER_HEX/MECHANISM`: a user's SCRAM credential.
//! - `acls/ACL_HEX`: one ACL (its JSON, hex-encoded, is its identity);
//!   `acls_changed`: rewritten with every change of the ACLs, its
//!   revision their version.
//! - `quotas/ENTITY_HEX`: one entity's client quotas (keyed by the
//!   entity's JSON); `quotas_changed`: their version, as for ACLs.

use uuid::Uuid;

/// The keys under one cluster root (`etcd://HOST:PORT/ROOT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    root: String,
}

impl Keys {
    /// The keys under `root`.
    pub fn new(root: &str) -> Keys {
        Keys {
            root: root.to_string(),
        }
    }

    fn key(&self, path: std::fmt::Arguments) -> String {
        format!("{}/{path}", self.root)
    }

    /// Prefix of the registered brokers.
    pub fn brokers(&self) -> String {
        self.key(format_args!("live/brokers/"))
    }

    /// A registered broker.
    pub fn broker(&self, id: i32) -> String {
        self.key(format_args!("live/brokers/{id}"))
    }

    /// The controller's id.
    pub fn controller(&self) -> String {
        self.key(format_args!("live/controller"))
    }

    /// A group's coordinator.
    pub fn group_coordinator(&self, group: &str) -> String {
        self.key(format_args!("live/groups/{}", hex(group)))
    }

    /// A transactional id's coordinator.
    pub fn transaction_coordinator(&self, transactional_id: &str) -> String {
        self.key(format_args!("live/transactions/{}", hex(transactional_id)))
    }

    /// Prefix of every SCRAM credential.
    pub fn scram_credentials(&self) -> String {
        self.key(format_args!("scram/"))
    }

    /// A user's SCRAM credential for `mechanism` (`SCRAM-SHA-256`).
    pub fn scram_credential(&self, user: &str, mechanism: &str) -> String {
        self.key(format_args!("scram/{}/{mechanism}", hex(user)))
    }

    /// Prefix of every ACL.
    pub fn acls(&self) -> String {
        self.key(format_args!("acls/"))
    }

    /// The key of the ACL whose JSON is `json`.
    pub fn acl(&self, json: &str) -> String {
        self.key(format_args!("acls/{}", hex(json)))
    }

    /// The key rewritten with every change of the ACLs.
    pub fn acls_changed(&self) -> String {
        self.key(format_args!("acls_changed"))
    }

    /// Prefix of every entity's quotas.
    pub fn quotas(&self) -> String {
        self.key(format_args!("quotas/"))
    }

    /// The key of the quotas of the entity whose JSON is `json`.
    pub fn quota(&self, json: &str) -> String {
        self.key(format_args!("quotas/{}", hex(json)))
    }

    /// The key rewritten with every change of the quotas.
    pub fn quotas_changed(&self) -> String {
        self.key(format_args!("quotas_changed"))
    }

    /// Prefix of the transactional ids' states.
    pub fn transactions(&self) -> String {
        self.key(format_args!("transactions/"))
    }

    /// A transactional id's state.
    pub fn transaction(&self, transactional_id: &str) -> String {
        self.key(format_args!("transactions/{}", hex(transactional_id)))
    }

    /// Prefix of the offsets open transactions commit to a group.
    pub fn txn_offsets_of(&self, group: &str) -> String {
        self.key(format_args!("txn_offsets/{}/", hex(group)))
    }

    /// The offsets `producer_id`'s open transaction commits to a group.
    pub fn txn_offsets(&self, group: &str, producer_id: i64) -> String {
        self.key(format_args!("txn_offsets/{}/{producer_id}", hex(group)))
    }

    /// Prefix of the partitions' leaders (keys `TOPIC_ID/PARTITION`
    /// under it, see [`partition_of`]).
    pub fn leaders(&self) -> String {
        self.key(format_args!("leaders/"))
    }

    /// A partition's leader.
    pub fn leader(&self, topic: Uuid, partition: i32) -> String {
        self.key(format_args!("leaders/{}", partition_key(topic, partition)))
    }

    /// Prefix of a topic's leaders.
    pub fn leaders_of(&self, topic: Uuid) -> String {
        self.key(format_args!("leaders/{topic}/"))
    }

    /// Prefix of the pinned partitions (keys `TOPIC_ID/PARTITION`).
    pub fn pins(&self) -> String {
        self.key(format_args!("pins/"))
    }

    /// Where a partition is pinned.
    pub fn pin(&self, topic: Uuid, partition: i32) -> String {
        self.key(format_args!("pins/{}", partition_key(topic, partition)))
    }

    /// Prefix of a topic's pins.
    pub fn pins_of(&self, topic: Uuid) -> String {
        self.key(format_args!("pins/{topic}/"))
    }

    /// Prefix of the topics.
    pub fn topics(&self) -> String {
        self.key(format_args!("topics/"))
    }

    /// A topic, by name.
    pub fn topic(&self, name: &str) -> String {
        self.key(format_args!("topics/{name}"))
    }

    /// A topic's partition count, present while it exists.
    pub fn alive(&self, topic: Uuid) -> String {
        self.key(format_args!("alive/{topic}"))
    }

    /// Prefix of everything about a topic's partitions.
    pub fn partitions_of(&self, topic: Uuid) -> String {
        self.key(format_args!("partitions/{topic}/"))
    }

    /// A partition's state.
    pub fn partition_state(&self, topic: Uuid, partition: i32) -> String {
        self.key(format_args!("partitions/{topic}/{partition}/state"))
    }

    /// Prefix of a partition's extents.
    pub fn extents(&self, topic: Uuid, partition: i32) -> String {
        self.key(format_args!("partitions/{topic}/{partition}/extents/"))
    }

    /// The extent of a partition starting at `base_offset`.
    pub fn extent(&self, topic: Uuid, partition: i32, base_offset: i64) -> String {
        self.key(format_args!(
            "partitions/{topic}/{partition}/extents/{base_offset:020}"
        ))
    }

    /// The next free producer id.
    pub fn producer_ids(&self) -> String {
        self.key(format_args!("producer_ids"))
    }

    /// The next id `broker.id = "auto"` gives out.
    pub fn broker_ids(&self) -> String {
        self.key(format_args!("broker_ids"))
    }

    /// The dynamic broker configs.
    pub fn broker_configs(&self) -> String {
        self.key(format_args!("broker_configs"))
    }

    /// Prefix of the groups.
    pub fn groups(&self) -> String {
        self.key(format_args!("groups/"))
    }

    /// A group.
    pub fn group(&self, group: &str) -> String {
        self.key(format_args!("groups/{}", hex(group)))
    }

    /// Prefix of every group's committed offsets.
    pub fn offsets(&self) -> String {
        self.key(format_args!("offsets/"))
    }

    /// Prefix of a group's committed offsets.
    pub fn offsets_of(&self, group: &str) -> String {
        self.key(format_args!("offsets/{}/", hex(group)))
    }

    /// A group's committed offset of a partition.
    pub fn offset(&self, group: &str, topic: &str, partition: i32) -> String {
        self.key(format_args!("offsets/{}/{topic}/{partition}", hex(group)))
    }

    /// The group an offset key (under [`Keys::offsets`]) belongs to.
    pub fn group_of_offset(&self, key: &str) -> Option<String> {
        let rest = key.strip_prefix(&self.offsets())?;
        unhex(rest.split('/').next()?)
    }
}

/// A partition's key under [`Keys::leaders`] and [`Keys::pins`], the
/// prefix taken off (`TOPIC_ID/PARTITION`).
pub fn partition_key(topic: Uuid, partition: i32) -> String {
    format!("{topic}/{partition}")
}

/// The partition a key under [`Keys::leaders`] or [`Keys::pins`] names,
/// the prefix taken off (see [`partition_key`]).
pub fn partition_of(key: &str) -> Option<(Uuid, i32)> {
    let (topic, partition) = key.split_once('/')?;
    Some((topic.parse().ok()?, partition.parse().ok()?))
}

fn hex(id: &str) -> String {
    id.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_survive_the_key_encoding() {
        let keys = Keys::new("root");
        for id in ["g", "a/b", "ünïcode group", ""] {
            let key = keys.offset(id, "t", 3);
            assert_eq!(keys.group_of_offset(&key).as_deref(), Some(id), "{key}");
        }
    }

    #[test]
    fn extents_sort_by_offset_and_partitions_parse() {
        let keys = Keys::new("root");
        let topic = Uuid::new_v4();
        assert!(keys.extent(topic, 0, 9) < keys.extent(topic, 0, 10));
        assert!(
            keys.extent(topic, 0, 9)
                .starts_with(&keys.extents(topic, 0))
        );
        let leader = keys.leader(topic, 7);
        let relative = leader.strip_prefix(&keys.leaders()).unwrap();
        assert_eq!(relative, partition_key(topic, 7));
        assert_eq!(partition_of(relative), Some((topic, 7)));
        assert_eq!(partition_of("nonsense"), None);
    }
}
