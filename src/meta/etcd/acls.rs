//! ACLs and client quotas in etcd: one key per ACL (per quota entity),
//! and a key rewritten in the same transaction as every change, whose
//! revision is the set's version, so brokers poll one key.

use std::collections::BTreeSet;

use async_trait::async_trait;
use etcd_client::TxnOp;

use super::{EtcdStore, OPS_PER_TXN, encode, meta_error};
use crate::acl::Acl;
use crate::error::Result;
use crate::meta::{AclStore, QuotaStore};
use crate::quota::ClientQuota;

impl EtcdStore {
    /// Runs `ops`, each chunk with a rewrite of the version key `marker`.
    async fn write_versioned(&self, ops: Vec<TxnOp>, marker: &str) -> Result<()> {
        for chunk in ops.chunks(OPS_PER_TXN - 1) {
            let mut chunk = chunk.to_vec();
            let changed = uuid::Uuid::new_v4().to_string();
            chunk.push(TxnOp::put(marker, changed, None));
            self.txn(Vec::new(), chunk).await?;
        }
        Ok(())
    }

    /// The version kept by the key `marker` (0 before any change).
    async fn version_of(&self, marker: &str) -> Result<u64> {
        let response = self
            .kv
            .clone()
            .get(marker, None)
            .await
            .map_err(meta_error)?;
        Ok(response
            .kvs()
            .first()
            .map_or(0, |kv| kv.mod_revision() as u64))
    }

    fn acl_key(&self, acl: &Acl) -> Result<String> {
        let json = encode(acl)?;
        Ok(self.keys.acl(&String::from_utf8_lossy(&json)))
    }
}

#[async_trait]
impl AclStore for EtcdStore {
    async fn acls(&self) -> Result<(u64, Vec<Acl>)> {
        // The version first: a change between the two reads is seen
        // again at the next poll.
        let version = self.acl_version().await?;
        Ok((version, self.list_decoded(&self.keys.acls()).await?))
    }

    async fn acl_version(&self) -> Result<u64> {
        self.version_of(&self.keys.acls_changed()).await
    }

    async fn create_acls(&self, acls: Vec<Acl>) -> Result<()> {
        // etcd refuses a transaction writing one key twice.
        let acls: BTreeSet<Acl> = acls.into_iter().collect();
        let mut ops = Vec::with_capacity(acls.len());
        for acl in &acls {
            ops.push(TxnOp::put(self.acl_key(acl)?, encode(acl)?, None));
        }
        self.write_versioned(ops, &self.keys.acls_changed()).await
    }

    async fn delete_acls(&self, acls: Vec<Acl>) -> Result<()> {
        let acls: BTreeSet<Acl> = acls.into_iter().collect();
        let mut ops = Vec::with_capacity(acls.len());
        for acl in &acls {
            ops.push(TxnOp::delete(self.acl_key(acl)?, None));
        }
        self.write_versioned(ops, &self.keys.acls_changed()).await
    }
}

#[async_trait]
impl QuotaStore for EtcdStore {
    async fn quotas(&self) -> Result<(u64, Vec<ClientQuota>)> {
        let version = self.quota_version().await?;
        Ok((version, self.list_decoded(&self.keys.quotas()).await?))
    }

    async fn quota_version(&self) -> Result<u64> {
        self.version_of(&self.keys.quotas_changed()).await
    }

    async fn put_quota(&self, quota: ClientQuota) -> Result<()> {
        let entity = encode(&quota.entity)?;
        let key = self.keys.quota(&String::from_utf8_lossy(&entity));
        let op = if quota.values.is_empty() {
            TxnOp::delete(key, None)
        } else {
            TxnOp::put(key, encode(&quota)?, None)
        };
        self.write_versioned(vec![op], &self.keys.quotas_changed())
            .await
    }
}
