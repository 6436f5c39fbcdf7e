//! Moving a partition's log start forward: DeleteRecords and retention.
//! The new log start is committed to the metadata store under the
//! partition's leader epoch (a fenced leader changes nothing), and only
//! then applied in memory; the objects no extent refers to any more are
//! left to garbage collection. The log start never passes the committed
//! end: a request for an offset in the tail first waits for its upload.

use tokio::time::Instant;

use super::Log;
use super::partition::Partition;
use super::retention::{self, Retention};
use crate::error::{Error, Result};
use crate::meta::CommitOutcome;

impl Log {
    /// Moves the log start of `partition` (which this broker leads) to
    /// `offset`, at most the high watermark; an offset not uploaded yet
    /// waits for its upload (asked for at once) until `deadline`. Returns
    /// the log start.
    pub async fn advance_log_start(
        &self,
        partition: &Partition,
        offset: i64,
        deadline: Instant,
    ) -> Result<i64> {
        self.check_registration()?;
        let epoch = partition.leadership().ok_or(Error::NotLeaderOrFollower)?;
        let offsets = self.offsets(partition);
        if offset > offsets.high_watermark {
            return Err(Error::OffsetOutOfRange {
                offset,
                start: offsets.log_start,
                end: offsets.high_watermark,
            });
        }
        if offset <= offsets.log_start {
            return Ok(offsets.log_start);
        }
        tokio::time::timeout_at(deadline, self.wait_committed(partition, epoch, offset))
            .await
            .unwrap_or(Err(Error::RequestTimedOut))?;
        self.commit_log_start(partition, epoch, offset).await
    }

    /// Applies `retention` to `partition` (which this broker leads) at
    /// `now_ms`: moves its log start past the extents that expired, but
    /// never past `kept_from` (records not exported yet stay). Returns the
    /// new log start if it moved.
    pub async fn expire(
        &self,
        partition: &Partition,
        retention: Retention,
        now_ms: i64,
        kept_from: Option<i64>,
    ) -> Result<Option<i64>> {
        self.check_registration()?;
        let epoch = partition.leadership().ok_or(Error::NotLeaderOrFollower)?;
        let (extents, tail_bytes) = partition.retained();
        let expired = retention::expired_before(&extents, tail_bytes, retention, now_ms)
            .map(|offset| kept_from.map_or(offset, |kept| offset.min(kept)))
            .filter(|offset| *offset > self.offsets(partition).log_start);
        match expired {
            Some(offset) => Ok(Some(self.commit_log_start(partition, epoch, offset).await?)),
            None => Ok(None),
        }
    }

    /// Commits `offset`, at most the committed end, as the log start of
    /// `partition` led at `epoch`, then applies it. Returns the log start.
    async fn commit_log_start(
        &self,
        partition: &Partition,
        epoch: i32,
        offset: i64,
    ) -> Result<i64> {
        let (topic, index) = (partition.topic, partition.index);
        let advanced = self
            .meta
            .advance_log_start(topic, index, epoch, offset)
            .await;
        let outcome = self.adopt_on_error(partition, epoch, advanced).await?;
        match outcome {
            CommitOutcome::Committed => {
                partition.advance_log_start(epoch, offset);
                tracing::debug!(%topic, partition = index, offset, "log start moved");
                Ok(self.offsets(partition).log_start)
            }
            CommitOutcome::Fenced => {
                self.resign(partition, Some(epoch));
                Err(Error::NotLeaderOrFollower)
            }
            CommitOutcome::Gone => Err(Error::UnknownTopicOrPartition),
            CommitOutcome::Failed => Err(Error::Meta(format!(
                "the log start of {topic}/{index} could not be committed"
            ))),
        }
    }

    /// Passes on `result`, the answer of the metadata store to a change of
    /// `partition` at `epoch`; on an error first takes the stored state
    /// (the change may have been applied all the same, its answer lost).
    pub(super) async fn adopt_on_error<T>(
        &self,
        partition: &Partition,
        epoch: i32,
        result: Result<T>,
    ) -> Result<T> {
        if result.is_err() {
            self.adopt_stored(partition, epoch).await;
        }
        result
    }

    /// Takes the log start and extents the metadata store holds for
    /// `partition` at `epoch`, after a change whose outcome is not known
    /// (an error, or a run that changed): memory must never refer to
    /// objects the store no longer does, which garbage collection deletes.
    pub(super) async fn adopt_stored(&self, partition: &Partition, epoch: i32) {
        match self.meta.partition(partition.topic, partition.index).await {
            Ok(stored) => partition.adopt_stored(epoch, &stored),
            Err(e) => tracing::warn!(
                topic = %partition.topic,
                partition = partition.index,
                error = %e,
                "cannot re-read the partition's state; trying again at the next lifecycle pass"
            ),
        }
    }

    /// Waits until `partition`'s committed end reaches `offset`, asking
    /// the uploader to upload now; fails once the leadership at `epoch`
    /// ended.
    async fn wait_committed(&self, partition: &Partition, epoch: i32, offset: i64) -> Result<()> {
        let mut commits = self.commits.subscribe();
        while partition.committed_end() < offset {
            if partition.leadership() != Some(epoch) {
                return Err(Error::NotLeaderOrFollower);
            }
            self.flush_wanted.notify_one();
            if commits.changed().await.is_err() {
                return Err(Error::ShuttingDown);
            }
        }
        Ok(())
    }
}
