//! Topics and the cluster-wide broker configs in etcd: a key per topic,
//! and its `alive` key holding the partition count.

use std::collections::BTreeMap;

use async_trait::async_trait;
use etcd_client::{Compare, CompareOp, DeleteOptions, TxnOp};

use super::{EtcdStore, Read, decode, encode};
use crate::error::{Error, Result};
use crate::meta::{CommittedOffset, TopicMeta, TopicStore};

#[async_trait]
impl TopicStore for EtcdStore {
    async fn topics(&self) -> Result<Vec<TopicMeta>> {
        self.list_decoded(&self.keys.topics()).await
    }

    async fn create_topic(&self, topic: TopicMeta) -> Result<()> {
        let key = self.keys.topic(&topic.name);
        let absent = Compare::create_revision(key.as_str(), CompareOp::Equal, 0);
        let puts = vec![
            TxnOp::put(key.as_str(), encode(&topic)?, None),
            TxnOp::put(
                self.keys.alive(topic.id),
                topic.partitions.to_string(),
                None,
            ),
        ];
        if self.txn(vec![absent], puts).await? {
            Ok(())
        } else {
            Err(Error::TopicAlreadyExists(topic.name))
        }
    }

    async fn delete_topic(&self, name: &str) -> Result<TopicMeta> {
        let key = self.keys.topic(name);
        let read: Read<TopicMeta> = self.get(&key).await?;
        let topic = read.value.clone().ok_or(Error::UnknownTopicOrPartition)?;
        let prefix = Some(DeleteOptions::new().with_prefix());
        let deletes = vec![
            TxnOp::delete(key.as_str(), None),
            TxnOp::delete(self.keys.alive(topic.id), None),
            TxnOp::delete(self.keys.partitions_of(topic.id), prefix.clone()),
            TxnOp::delete(self.keys.leaders_of(topic.id), prefix.clone()),
            TxnOp::delete(self.keys.pins_of(topic.id), prefix),
        ];
        if !self.txn(vec![read.unchanged(&key)], deletes).await? {
            return Err(Error::Meta(format!(
                "topic '{name}' changed while it was deleted; try again"
            )));
        }
        // Its committed offsets, in every group.
        let mut deletes = Vec::new();
        for kv in self.list(&self.keys.offsets()).await? {
            let offset: CommittedOffset = decode(&kv)?;
            if offset.topic == name {
                deletes.push(TxnOp::delete(kv.key().to_vec(), None));
            }
        }
        self.write_all(deletes).await?;
        Ok(topic)
    }

    async fn set_topic_configs(&self, name: &str, configs: BTreeMap<String, String>) -> Result<()> {
        self.update(&self.keys.topic(name), |topic: Option<TopicMeta>| {
            let mut topic = topic.ok_or(Error::UnknownTopicOrPartition)?;
            topic.configs = configs.clone();
            Ok((Some(topic), ()))
        })
        .await
    }

    async fn add_partitions(&self, name: &str, count: i32) -> Result<()> {
        let key = self.keys.topic(name);
        loop {
            let read: Read<TopicMeta> = self.get(&key).await?;
            let mut topic = read.value.clone().ok_or(Error::UnknownTopicOrPartition)?;
            if count <= topic.partitions {
                return Err(Error::InvalidPartitions(format!(
                    "topic '{name}' has {} partitions; the new count must be larger",
                    topic.partitions
                )));
            }
            topic.partitions = count;
            let puts = vec![
                TxnOp::put(key.as_str(), encode(&topic)?, None),
                TxnOp::put(self.keys.alive(topic.id), count.to_string(), None),
            ];
            if self.txn(vec![read.unchanged(&key)], puts).await? {
                return Ok(());
            }
        }
    }

    async fn broker_configs(&self) -> Result<BTreeMap<String, String>> {
        Ok(self
            .get(&self.keys.broker_configs())
            .await?
            .value
            .unwrap_or_default())
    }

    async fn set_broker_configs(&self, configs: BTreeMap<String, String>) -> Result<()> {
        let put = TxnOp::put(self.keys.broker_configs(), encode(&configs)?, None);
        self.txn(Vec::new(), vec![put]).await.map(|_| ())
    }
}
