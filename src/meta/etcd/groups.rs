//! Consumer groups in etcd: one coordinator at a time writes a group (its
//! coordinator key, under the broker's lease, guards every write).

use std::collections::BTreeMap;

use async_trait::async_trait;
use etcd_client::{Compare, DeleteOptions, TxnOp};

use super::{EtcdStore, OPS_PER_TXN, Read, decode, encode};
use crate::error::{Error, Result};
use crate::meta::{CommittedOffset, GroupMeta, GroupStore};

impl EtcdStore {
    /// The comparison that holds while this broker coordinates the group.
    fn group_guard(&self, group_id: &str) -> Option<Compare> {
        self.holding(&self.keys.group_coordinator(group_id))
    }

    /// An error unless this broker coordinates the group.
    async fn check_owns_group(&self, group_id: &str) -> Result<()> {
        if self.holds(&self.keys.group_coordinator(group_id)).await? {
            Ok(())
        } else {
            Err(Error::NotCoordinator(group_id.to_string()))
        }
    }

    /// Runs `ops` on a group's keys, in transactions of at most
    /// [`OPS_PER_TXN`] operations, each only while this broker coordinates
    /// the group.
    pub(super) async fn write_group(&self, group_id: &str, ops: Vec<TxnOp>) -> Result<()> {
        for chunk in ops.chunks(OPS_PER_TXN) {
            let guard = self.group_guard(group_id).into_iter().collect();
            if !self.txn(guard, chunk.to_vec()).await? {
                return Err(Error::NotCoordinator(group_id.to_string()));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl GroupStore for EtcdStore {
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
        self.claim(&self.keys.group_coordinator(group_id)).await
    }

    async fn release_group(&self, group_id: &str) -> Result<()> {
        self.release(&self.keys.group_coordinator(group_id)).await
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
            TxnOp::delete(self.keys.offsets_of(group_id), prefix.clone()),
            TxnOp::delete(self.keys.txn_offsets_of(group_id), prefix),
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
