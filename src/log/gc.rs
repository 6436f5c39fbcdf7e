//! Garbage collection of data objects: an object no extent refers to (its
//! upload was never committed, or its topics were deleted) is deleted once
//! it is older than a grace period, which covers uploads still on their way
//! to a commit and readers still holding the object.
//!
//! Objects are named by UUIDv7, so their age is read from the id, written
//! by the broker's own clock.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::cluster::HoldCheck;
use crate::error::{Error, Result};
use crate::meta::MetaStore;
use crate::storage::Bucket;

/// Deletes unreferenced objects older than `grace` (milliseconds, against
/// `now_ms`); returns how many were deleted. With `hold`, only while this
/// broker holds its etcd root: a broker that lost it has stale references.
pub async fn collect(
    bucket: &Bucket,
    meta: &dyn MetaStore,
    grace_ms: i64,
    now_ms: i64,
    hold: Option<&HoldCheck>,
) -> Result<usize> {
    // Listing first: an object uploaded after the listing is not considered,
    // and one committed after the scan below is young, so within the grace.
    let objects = bucket.list_data_objects().await?;
    let mut referenced = HashSet::new();
    for topic in meta.topics().await? {
        for index in 0..topic.partitions {
            let partition = meta.partition(topic.id, index).await?;
            referenced.extend(partition.extents.iter().map(|e| e.object));
        }
    }
    let mut deleted = 0;
    for id in objects {
        let old_enough = created_ms(id).is_some_and(|created| now_ms - created >= grace_ms);
        if !referenced.contains(&id) && old_enough {
            if hold.is_some_and(|h| !h.is_held()) {
                return Err(Error::Meta(
                    "garbage collection stopped: the hold on the etcd root may have ended".into(),
                ));
            }
            bucket.delete_data_object(id).await?;
            deleted += 1;
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, "deleted unreferenced data objects");
        metrics::counter!("silt_gc_deleted_objects_total").increment(deleted as u64);
    }
    Ok(deleted)
}

/// Milliseconds since the epoch at which a UUIDv7 object id was made.
fn created_ms(id: Uuid) -> Option<i64> {
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    Some(secs as i64 * 1000 + i64::from(nanos / 1_000_000))
}

/// Runs [`collect`] every `interval` until `shutdown`.
pub async fn run(
    bucket: Bucket,
    meta: Arc<dyn MetaStore>,
    interval: Duration,
    grace_ms: i64,
    clock: crate::clock::Clock,
    hold: Option<HoldCheck>,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let now_ms = clock.now_ms();
                if let Err(e) = collect(&bucket, meta.as_ref(), grace_ms, now_ms, hold.as_ref()).await {
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
    use crate::meta::{Extent, PartitionCommit, TopicMeta};

    fn id_at(ms: u64) -> Uuid {
        Uuid::new_v7(Timestamp::from_unix(
            NoContext,
            ms / 1000,
            (ms % 1000) as u32 * 1_000_000,
        ))
    }

    #[tokio::test]
    async fn only_old_unreferenced_objects_go() {
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
        let (referenced, old_orphan, young_orphan) = (id_at(1_000), id_at(2_000), id_at(9_500));
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
        };
        let commit = PartitionCommit {
            topic: topic.id,
            partition: 0,
            leader_epoch: 0,
            extents: vec![extent],
            producers: BTreeMap::new(),
        };
        meta.commit(vec![commit]).await.unwrap();
        assert_eq!(
            collect(&bucket, &meta, 1_000, 10_000, None).await.unwrap(),
            1
        );
        let mut left = bucket.list_data_objects().await.unwrap();
        left.sort();
        assert_eq!(left, vec![referenced, young_orphan]);
    }
}
