//! Consumer lag: per group, topic and partition, the log end offset (high
//! watermark) minus the committed offset.

use super::Broker;

/// How far a group's committed position trails one partition's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    pub log_end: i64,
    pub lag: i64,
}

impl Broker {
    /// The lag of every partition the group has committed an offset for
    /// (partitions of deleted topics, and in a cluster those another broker
    /// leads or coordinates, are left out).
    pub async fn consumer_lag(&self, group: &str) -> Vec<PartitionLag> {
        let mut lags = Vec::new();
        let (offsets, _) = self.groups.offsets(group, None).await.unwrap_or_default();
        for ((topic, partition), committed) in offsets {
            let Some(committed) = committed else { continue };
            let Some(log) = self.topic(&topic) else {
                continue;
            };
            let Some(p) = log
                .partition(partition)
                .filter(|p| p.leadership().is_some())
            else {
                continue;
            };
            let log_end = self.log.offsets(p).high_watermark;
            lags.push(PartitionLag {
                topic,
                partition,
                committed: committed.offset,
                log_end,
                lag: (log_end - committed.offset).max(0),
            });
        }
        lags
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::broker::Broker;
    use crate::config::Config;
    use crate::group::MemberRef;
    use crate::meta::CommittedOffset;
    use crate::protocol::batch::{split_and_validate, tests::encode_batch};

    #[tokio::test]
    async fn lag_is_log_end_minus_committed() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.broker.data_dir = dir.path().to_owned();
        let broker = Broker::open(config).await.unwrap();
        broker
            .create_topic("t", 2, BTreeMap::new(), false)
            .await
            .unwrap();
        let topic = broker.topic("t").unwrap();
        let (header, batch) = split_and_validate(&encode_batch(10, -1, -1))
            .unwrap()
            .remove(0);
        let appended = broker
            .log
            .append(
                &topic.partitions[1],
                &header,
                batch,
                crate::protocol::batch::TimestampType::CreateTime,
            )
            .unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        broker
            .log
            .wait_durable(&topic.partitions[1], &appended, deadline)
            .await
            .unwrap();
        let standalone = MemberRef {
            member_id: "",
            instance_id: None,
            generation: -1,
        };
        let commit = |partition, offset| CommittedOffset {
            topic: "t".into(),
            partition,
            offset,
            leader_epoch: -1,
            metadata: None,
            commit_time_ms: 0,
        };
        broker
            .groups
            .commit_offsets("g", standalone, vec![commit(0, 0), commit(1, 4)])
            .await
            .unwrap();
        let lag: Vec<(i32, i64, i64, i64)> = broker
            .consumer_lag("g")
            .await
            .into_iter()
            .map(|l| (l.partition, l.committed, l.log_end, l.lag))
            .collect();
        assert_eq!(lag, vec![(0, 0, 0, 0), (1, 4, 10, 6)]);
        broker.shutdown().await;
    }
}
