//! Garbage collection of data objects: an object no extent refers to (its
//! data expired or was merged, its topics were deleted, or its upload was
//! never committed) is deleted once it has been unreferenced for a grace
//! period and is at least that old: readers may still hold an object their
//! extents named a moment ago, and an upload may still be on its way to a
//! commit. In a cluster one broker collects at a time (the controller).
//!
//! Objects are named by UUIDv7, so their age is read from the id, written
//! by the broker's own clock; when an object was first seen unreferenced
//! is remembered by the collector (a new collector starts the wait again).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::cluster::HoldCheck;
use crate::error::{Error, Result};
use crate::meta::MetaStore;
use crate::storage::Bucket;

/// Objects deleted per request (S3 DeleteObjects takes up to 1,000 keys).
const DELETE_BATCH: usize = 1000;

/// Decides whether this broker collects now (the controller of a cluster).
pub type IsCollector = Arc<dyn Fn() -> bool + Send + Sync>;

/// The garbage collector's memory: since when each object has been
/// unreferenced.
#[derive(Debug, Default)]
pub struct Collector {
    unreferenced_since: HashMap<Uuid, i64>,
}

impl Collector {
    /// Deletes the objects unreferenced for `grace_ms` and at least that
    /// old at `now_ms`; returns how many. With `hold`, only while this
    /// broker holds its etcd registration: one that lost it may have
    /// stale references.
    pub async fn collect(
        &mut self,
        bucket: &Bucket,
        meta: &dyn MetaStore,
        grace_ms: i64,
        now_ms: i64,
        hold: Option<&HoldCheck>,
    ) -> Result<usize> {
        // Listing first: an object uploaded after the listing is not
        // considered, and one committed after the scan below is young.
        let objects = bucket.list_data_objects().await?;
        let mut referenced = HashSet::new();
        for topic in meta.topics().await? {
            for index in 0..topic.partitions {
                let partition = meta.partition(topic.id, index).await?;
                referenced.extend(partition.extents.iter().map(|e| e.object));
            }
        }
        let unreferenced: HashSet<Uuid> = objects
            .into_iter()
            .filter(|id| !referenced.contains(id))
            .collect();
        self.unreferenced_since
            .retain(|id, _| unreferenced.contains(id));
        let mut due = Vec::new();
        for id in unreferenced {
            let since = *self.unreferenced_since.entry(id).or_insert(now_ms);
            let created = created_ms(id).unwrap_or(now_ms);
            if now_ms - since >= grace_ms && now_ms - created >= grace_ms {
                due.push(id);
            }
        }
        for batch in due.chunks(DELETE_BATCH) {
            if hold.is_some_and(|h| !h.is_held()) {
                return Err(Error::Meta(
                    "garbage collection stopped: the hold on the etcd root may have ended".into(),
                ));
            }
            bucket.delete_data_objects(batch).await?;
            for id in batch {
                self.unreferenced_since.remove(id);
            }
        }
        if !due.is_empty() {
            tracing::info!(deleted = due.len(), "deleted unreferenced data objects");
            metrics::counter!("silt_gc_deleted_objects_total").increment(due.len() as u64);
        }
        Ok(due.len())
    }
}

/// Milliseconds since the epoch at which a UUIDv7 object id was made.
fn created_ms(id: Uuid) -> Option<i64> {
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    Some(secs as i64 * 1000 + i64::from(nanos / 1_000_000))
}

/// What garbage collection needs besides the bucket and the store.
pub struct GcSettings {
    pub interval: Duration,
    pub grace_ms: i64,
    pub clock: crate::clock::Clock,
    pub hold: Option<HoldCheck>,
    pub is_collector: IsCollector,
}

/// Runs [`Collector::collect`] every `interval` while this broker is the
/// collector, until `shutdown`.
pub async fn run(
    bucket: Bucket,
    meta: Arc<dyn MetaStore>,
    settings: GcSettings,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(settings.interval);
    ticker.tick().await;
    let mut collector = Collector::default();
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if !(settings.is_collector)() {
                    // Another broker collects; if this one does again
                    // later, its waits start anew.
                    collector = Collector::default();
                    continue;
                }
                let now_ms = settings.clock.now_ms();
                let hold = settings.hold.as_ref();
                if let Err(e) = collector.collect(&bucket, meta.as_ref(), settings.grace_ms, now_ms, hold).await {
                    tracing::warn!(error = %e, "garbage collection failed; trying again later");
                }
            }
            () = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bytes::Bytes;
    use uuid::{NoContext, Timestamp};

    use super::*;
    use crate::meta::embedded::EmbeddedStore;
    use crate::meta::{Extent, PartitionCommit, PartitionStore, TopicMeta, TopicStore};

    fn id_at(ms: u64) -> Uuid {
        Uuid::new_v7(Timestamp::from_unix(
            NoContext,
            ms / 1000,
            (ms % 1000) as u32 * 1_000_000,
        ))
    }

    #[tokio::test]
    async fn objects_go_a_grace_period_after_nothing_refers_to_them() {
        let dir = tempfile::tempdir().unwrap();
        let meta = EmbeddedStore::open(dir.path()).unwrap();
        let bucket = Bucket::in_memory();
        let topic = TopicMeta {
            name: "t".into(),
            id: Uuid::new_v4(),
            partitions: 1,
            configs: BTreeMap::new(),
        };
        meta.create_topic(topic.clone()).await.unwrap();
        let (referenced, old_orphan, young_orphan) = (id_at(1_000), id_at(2_000), id_at(10_500));
        for id in [referenced, old_orphan, young_orphan] {
            bucket
                .put_data_object(id, Bytes::from_static(b"data"))
                .await
                .unwrap();
        }
        let extent = Extent {
            object: referenced,
            position: 0,
            length: 4,
            base_offset: 0,
            last_offset: 0,
            max_timestamp: 0,
            crc: None,
            compacted: false,
            tombstones_due_ms: None,
            entry_list: None,
        };
        let commit = PartitionCommit {
            topic: topic.id,
            partition: 0,
            leader_epoch: 0,
            extents: vec![extent],
            producers: BTreeMap::new(),
            aborted: Vec::new(),
        };
        meta.commit(vec![commit]).await.unwrap();
        let mut collector = Collector::default();
        // Unreferenced from 10 s on: nothing is due before 11 s.
        assert_eq!(
            collector
                .collect(&bucket, &meta, 1_000, 10_000, None)
                .await
                .unwrap(),
            0
        );
        // The young orphan is not a grace period old yet.
        assert_eq!(
            collector
                .collect(&bucket, &meta, 1_000, 11_000, None)
                .await
                .unwrap(),
            1
        );
        let mut left = bucket.list_data_objects().await.unwrap();
        left.sort();
        assert_eq!(left, vec![referenced, young_orphan]);
        // The referenced object's data expires: it goes a grace period later.
        meta.advance_log_start(topic.id, 0, 0, 1).await.unwrap();
        let collect = async |collector: &mut Collector, now| {
            collector
                .collect(&bucket, &meta, 1_000, now, None)
                .await
                .unwrap()
        };
        assert_eq!(collect(&mut collector, 12_000).await, 1, "the young orphan");
        assert_eq!(collect(&mut collector, 12_999).await, 0);
        assert_eq!(collect(&mut collector, 13_000).await, 1);
        assert!(bucket.list_data_objects().await.unwrap().is_empty());
    }
}
