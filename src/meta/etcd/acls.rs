//! ACLs in etcd: one key per ACL, and a key rewritten in the same
//! transaction as every change, whose revision is the ACLs' version.

use std::collections::BTreeSet;

use async_trait::async_trait;
use etcd_client::TxnOp;

use super::{EtcdStore, OPS_PER_TXN, encode, meta_error};
use crate::acl::Acl;
use crate::error::Result;
use crate::meta::AclStore;

impl EtcdStore {
    /// Runs `ops` on ACL keys, each chunk with a rewrite of the version key.
    async fn change_acls(&self, ops: Vec<TxnOp>) -> Result<()> {
        for chunk in ops.chunks(OPS_PER_TXN - 1) {
            let mut chunk = chunk.to_vec();
            let marker = uuid::Uuid::new_v4().to_string();
            chunk.push(TxnOp::put(self.keys.acls_changed(), marker, None));
            self.txn(Vec::new(), chunk).await?;
        }
        Ok(())
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
        let key = self.keys.acls_changed();
        let response = self.kv.clone().get(key, None).await.map_err(meta_error)?;
        Ok(response
            .kvs()
            .first()
            .map_or(0, |kv| kv.mod_revision() as u64))
    }

    async fn create_acls(&self, acls: Vec<Acl>) -> Result<()> {
        // etcd refuses a transaction writing one key twice.
        let acls: BTreeSet<Acl> = acls.into_iter().collect();
        let mut ops = Vec::with_capacity(acls.len());
        for acl in &acls {
            ops.push(TxnOp::put(self.acl_key(acl)?, encode(acl)?, None));
        }
        self.change_acls(ops).await
    }

    async fn delete_acls(&self, acls: Vec<Acl>) -> Result<()> {
        let acls: BTreeSet<Acl> = acls.into_iter().collect();
        let mut ops = Vec::with_capacity(acls.len());
        for acl in &acls {
            ops.push(TxnOp::delete(self.acl_key(acl)?, None));
        }
        self.change_acls(ops).await
    }
}
