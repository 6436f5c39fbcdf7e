//! SCRAM credentials in etcd, one key per user and mechanism.

use async_trait::async_trait;
use etcd_client::{Compare, CompareOp, TxnOp};

use super::{EtcdStore, Read, encode};
use crate::error::Result;
use crate::meta::{CredentialStore, ScramCredential, ScramMechanism};

#[async_trait]
impl CredentialStore for EtcdStore {
    async fn scram_credentials(&self) -> Result<Vec<ScramCredential>> {
        self.list_decoded(&self.keys.scram_credentials()).await
    }

    async fn scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Result<Option<ScramCredential>> {
        let key = self.keys.scram_credential(user, mechanism.name());
        let read: Read<ScramCredential> = self.get(&key).await?;
        Ok(read.value)
    }

    async fn put_scram_credential(&self, credential: ScramCredential) -> Result<()> {
        let key = self
            .keys
            .scram_credential(&credential.user, credential.mechanism.name());
        self.write_all(vec![TxnOp::put(key, encode(&credential)?, None)])
            .await
    }

    async fn delete_scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Result<bool> {
        let key = self.keys.scram_credential(user, mechanism.name());
        let present = Compare::create_revision(key.as_str(), CompareOp::Greater, 0);
        self.txn(vec![present], vec![TxnOp::delete(key, None)])
            .await
    }
}
