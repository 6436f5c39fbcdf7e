//! Transactions in etcd: a transactional id's state is written only by its
//! coordinator (its coordinator key, under the broker's lease, guards every
//! write); the offsets open transactions commit to a group only by the
//! group's coordinator.

use async_trait::async_trait;
use etcd_client::TxnOp;

use super::{EtcdStore, Read, encode};
use crate::error::{Error, Result};
use crate::meta::{TransactionStore, TxnMeta, TxnOffsets};

#[async_trait]
impl TransactionStore for EtcdStore {
    async fn transactions(&self) -> Result<Vec<TxnMeta>> {
        self.list_decoded(&self.keys.transactions()).await
    }

    async fn transaction(&self, transactional_id: &str) -> Result<Option<TxnMeta>> {
        let read: Read<TxnMeta> = self.get(&self.keys.transaction(transactional_id)).await?;
        Ok(read.value)
    }

    async fn claim_transaction(&self, transactional_id: &str) -> Result<bool> {
        self.claim(&self.keys.transaction_coordinator(transactional_id))
            .await
    }

    async fn release_transaction(&self, transactional_id: &str) -> Result<()> {
        self.release(&self.keys.transaction_coordinator(transactional_id))
            .await
    }

    async fn put_transaction(&self, txn: TxnMeta) -> Result<()> {
        let id = txn.transactional_id.clone();
        let guard = self
            .holding(&self.keys.transaction_coordinator(&id))
            .into_iter()
            .collect();
        let put = TxnOp::put(self.keys.transaction(&id), encode(&txn)?, None);
        if self.txn(guard, vec![put]).await? {
            Ok(())
        } else {
            Err(Error::NotCoordinator(id))
        }
    }

    async fn txn_offsets(&self, group_id: &str) -> Result<Vec<TxnOffsets>> {
        self.list_decoded(&self.keys.txn_offsets_of(group_id)).await
    }

    async fn put_txn_offsets(&self, group_id: &str, offsets: TxnOffsets) -> Result<()> {
        // Only the group's coordinator writes here, one request at a time.
        let key = self.keys.txn_offsets(group_id, offsets.producer_id);
        let read: Read<TxnOffsets> = self.get(&key).await?;
        let mut held = read.value.unwrap_or(TxnOffsets {
            producer_id: offsets.producer_id,
            offsets: Vec::new(),
        });
        held.merge(offsets.offsets);
        let put = TxnOp::put(key, encode(&held)?, None);
        self.write_group(group_id, vec![put]).await
    }

    async fn end_txn_offsets(&self, group_id: &str, producer_id: i64, commit: bool) -> Result<()> {
        let key = self.keys.txn_offsets(group_id, producer_id);
        let read: Read<TxnOffsets> = self.get(&key).await?;
        let Some(held) = read.value else {
            return Ok(());
        };
        let mut ops = Vec::new();
        if commit {
            for o in &held.offsets {
                let offset_key = self.keys.offset(group_id, &o.topic, o.partition);
                ops.push(TxnOp::put(offset_key, encode(o)?, None));
            }
        }
        // Last: should a later chunk fail, the offsets are still there to
        // end again. Written by the transaction's coordinator, which need
        // not coordinate the group: moving the offsets is idempotent, and
        // the group's coordinator reads them again (see
        // `group::Coordinator::offsets`).
        ops.push(TxnOp::delete(key, None));
        self.write_all(ops).await
    }
}
