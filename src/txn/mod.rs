//! The transaction coordinator: each transactional id's producer id and
//! epoch, its current transaction (partitions, groups, state) and the end
//! of it: the decision is stored first (PrepareCommit / PrepareAbort), then
//! the markers are written to every partition and group of the
//! transaction, then the transaction is complete. A decision stored but
//! not completed (the coordinator failed meanwhile) is completed by the
//! next request or the ticker; a transaction open longer than its timeout
//! is aborted, with the producer's epoch bumped so it is fenced.
//!
//! Placement is like the group coordinator's: hashed over the live
//! brokers, claimed in the metadata store under the broker's lease, every
//! state change written there before it is answered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use kafka_protocol::error::ResponseError;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::group::Owns;
use crate::meta::{MetaStore, TxnMeta, TxnState};
use crate::protocol::control::Outcome;

/// How often timed-out and unfinished transactions are looked for.
const TICK: Duration = Duration::from_secs(1);
/// Every this many ticks, the store is searched for transactions this
/// broker coordinates but has not loaded (it took them over).
const SCAN_EVERY_TICKS: u32 = 10;

/// Why a transaction request is refused (each a Kafka error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    #[error("this broker does not coordinate the transactional id")]
    NotCoordinator,
    #[error("the coordinator cannot reach its state: {0}")]
    Unavailable(String),
    #[error("the transaction timeout is not within 1..={0} ms")]
    InvalidTimeout(i32),
    #[error("the producer id does not match the transactional id's")]
    InvalidProducerIdMapping,
    #[error("a newer producer with the same transactional id fenced this one")]
    ProducerFenced,
    #[error("the previous transaction is still being completed")]
    ConcurrentTransactions,
    #[error("the transaction is not in a state that allows this")]
    InvalidTxnState,
}

impl TxnError {
    /// The Kafka error a client receives.
    pub fn response_error(&self) -> ResponseError {
        match self {
            TxnError::NotCoordinator => ResponseError::NotCoordinator,
            TxnError::Unavailable(_) => ResponseError::CoordinatorNotAvailable,
            TxnError::InvalidTimeout(_) => ResponseError::InvalidTransactionTimeout,
            TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
            TxnError::ProducerFenced => ResponseError::ProducerFenced,
            TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
            TxnError::InvalidTxnState => ResponseError::InvalidTxnState,
        }
    }
}

impl From<crate::error::Error> for TxnError {
    fn from(e: crate::error::Error) -> Self {
        match e {
            crate::error::Error::NotCoordinator(_) => TxnError::NotCoordinator,
            e => TxnError::Unavailable(e.to_string()),
        }
    }
}

type Result<T> = std::result::Result<T, TxnError>;

/// Writes a transaction's markers: to each of its partitions (at the
/// partition's leader) and to each of its groups (at the group's
/// coordinator); done once all are durable.
#[async_trait]
pub trait MarkerWriter: Send + Sync {
    async fn write_markers(&self, txn: &TxnMeta, outcome: Outcome) -> crate::error::Result<()>;
}

/// One transactional id's state, as loaded (`None`: none stored yet).
type Handle = Arc<tokio::sync::Mutex<Option<TxnMeta>>>;

/// Coordinates the transactional ids this broker owns.
pub struct TxnCoordinator {
    meta: Arc<dyn MetaStore>,
    owns: Owns,
    loaded: Mutex<HashMap<String, Handle>>,
    clock: Clock,
    /// The longest transaction timeout a producer may ask for.
    max_timeout_ms: i32,
}

impl TxnCoordinator {
    /// A coordinator of the transactional ids `owns` says are this broker's.
    pub fn new(meta: Arc<dyn MetaStore>, owns: Owns, clock: Clock, max_timeout_ms: i32) -> Self {
        TxnCoordinator {
            meta,
            owns,
            loaded: Mutex::new(HashMap::new()),
            clock,
            max_timeout_ms,
        }
    }

    /// The transactional id's state, loaded from the store (and claimed)
    /// on first use.
    async fn handle(&self, id: &str) -> Result<Handle> {
        if !(self.owns)(id) {
            return Err(TxnError::NotCoordinator);
        }
        if let Some(handle) = self.loaded.lock().expect("txn map poisoned").get(id) {
            return Ok(handle.clone());
        }
        // Another broker may still coordinate it (it has not seen the
        // change of live brokers yet): retriable.
        if !self.meta.claim_transaction(id).await? {
            return Err(TxnError::Unavailable(format!(
                "transactional id '{id}' is still claimed by another broker"
            )));
        }
        let stored = self.meta.transaction(id).await?;
        let mut loaded = self.loaded.lock().expect("txn map poisoned");
        let handle = loaded
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(stored)));
        Ok(handle.clone())
    }

    /// Stores `txn`, then makes it the loaded state.
    async fn persist(&self, slot: &mut Option<TxnMeta>, mut txn: TxnMeta) -> Result<()> {
        txn.updated_ms = self.clock.now_ms();
        self.meta.put_transaction(txn.clone()).await?;
        *slot = Some(txn);
        Ok(())
    }

    /// InitProducerId with a transactional id: completes or aborts what
    /// the previous producer left, then bumps the epoch (fencing it) and
    /// returns the producer id and epoch to use. `previous` is the id and
    /// epoch the producer had, if it names them (KIP-360).
    pub async fn init_producer(
        &self,
        id: &str,
        timeout_ms: i32,
        previous: Option<(i64, i16)>,
        markers: &dyn MarkerWriter,
    ) -> Result<(i64, i16)> {
        if !(1..=self.max_timeout_ms).contains(&timeout_ms) {
            return Err(TxnError::InvalidTimeout(self.max_timeout_ms));
        }
        let handle = self.handle(id).await?;
        let mut slot = handle.lock().await;
        let mut txn = match slot.clone() {
            Some(txn) => txn,
            None => TxnMeta {
                transactional_id: id.to_string(),
                producer_id: self.meta.allocate_producer_ids(1).await?,
                epoch: -1,
                timeout_ms,
                state: TxnState::Empty,
                partitions: Default::default(),
                groups: Default::default(),
                started_ms: 0,
                updated_ms: 0,
            },
        };
        if let Some((producer_id, epoch)) = previous
            && producer_id >= 0
            && (producer_id, epoch) != (txn.producer_id, txn.epoch)
        {
            return Err(TxnError::ProducerFenced);
        }
        match txn.state {
            TxnState::Ongoing => {
                // Fence the previous producer, then abort what it left.
                self.bump_epoch(&mut txn).await?;
                txn = self
                    .complete(&mut slot, txn, Outcome::Abort, markers)
                    .await?;
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                let outcome = prepared_outcome(txn.state);
                txn = self.complete(&mut slot, txn, outcome, markers).await?;
            }
            _ => {}
        }
        self.bump_epoch(&mut txn).await?;
        txn.state = TxnState::Empty;
        txn.timeout_ms = timeout_ms;
        txn.partitions.clear();
        txn.groups.clear();
        let answer = (txn.producer_id, txn.epoch);
        self.persist(&mut slot, txn).await?;
        Ok(answer)
    }

    /// The next epoch of `txn`'s producer id, or a new producer id at
    /// epoch 0 once the epochs run out.
    async fn bump_epoch(&self, txn: &mut TxnMeta) -> Result<()> {
        if txn.epoch >= i16::MAX - 1 {
            txn.producer_id = self.meta.allocate_producer_ids(1).await?;
            txn.epoch = 0;
        } else {
            txn.epoch += 1;
        }
        Ok(())
    }

    /// Stores the decision `outcome` for `txn`, writes its markers and
    /// stores it complete; returns it complete. If the markers fail the
    /// decision stays stored, for a retry or the ticker to complete.
    async fn complete(
        &self,
        slot: &mut Option<TxnMeta>,
        mut txn: TxnMeta,
        outcome: Outcome,
        markers: &dyn MarkerWriter,
    ) -> Result<TxnMeta> {
        let (prepared, completed) = match outcome {
            Outcome::Commit => (TxnState::PrepareCommit, TxnState::CompleteCommit),
            Outcome::Abort => (TxnState::PrepareAbort, TxnState::CompleteAbort),
        };
        if txn.state != prepared {
            txn.state = prepared;
            self.persist(slot, txn.clone()).await?;
        }
        crate::failpoint::hit("txn.after_prepare");
        if let Err(e) = markers.write_markers(&txn, outcome).await {
            tracing::warn!(transactional_id = %txn.transactional_id, error = %e, "cannot write the transaction's markers yet");
            return Err(TxnError::Unavailable(e.to_string()));
        }
        crate::failpoint::hit("txn.after_markers");
        txn.state = completed;
        txn.partitions.clear();
        txn.groups.clear();
        self.persist(slot, txn.clone()).await?;
        Ok(txn)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: adds `partitions` and
    /// `groups` to the producer's transaction (starting it), stored before
    /// this returns (partition leaders check it there).
    pub async fn add(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
        groups: Vec<String>,
    ) -> Result<()> {
        let handle = self.handle(id).await?;
        let mut slot = handle.lock().await;
        let mut txn = slot.clone().ok_or(TxnError::InvalidProducerIdMapping)?;
        check_producer(&txn, producer_id, epoch)?;
        match txn.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                return Err(TxnError::ConcurrentTransactions);
            }
            TxnState::Ongoing => {}
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                txn.state = TxnState::Ongoing;
                txn.started_ms = self.clock.now_ms();
                txn.partitions.clear();
                txn.groups.clear();
            }
        }
        let known = partitions.iter().all(|p| txn.partitions.contains(p))
            && groups.iter().all(|g| txn.groups.contains(g))
            && slot.as_ref().is_some_and(|s| s.state == TxnState::Ongoing);
        if known {
            return Ok(());
        }
        txn.partitions.extend(partitions);
        txn.groups.extend(groups);
        self.persist(&mut slot, txn).await
    }

    /// Whether `partition` is in the ongoing transaction of `producer_id`
    /// at `epoch` (checked without the coordinator's lock: the stored
    /// state is what any broker's leader checks).
    pub async fn partition_in_transaction(
        meta: &dyn MetaStore,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partition: &(String, i32),
    ) -> crate::error::Result<bool> {
        Ok(meta.transaction(id).await?.is_some_and(|txn| {
            txn.producer_id == producer_id
                && txn.epoch == epoch
                && txn.state == TxnState::Ongoing
                && txn.partitions.contains(partition)
        }))
    }

    /// EndTxn: commits or aborts the producer's transaction; a retry of
    /// an end already done succeeds again.
    pub async fn end(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        outcome: Outcome,
        markers: &dyn MarkerWriter,
    ) -> Result<()> {
        let handle = self.handle(id).await?;
        let mut slot = handle.lock().await;
        let txn = slot.clone().ok_or(TxnError::InvalidProducerIdMapping)?;
        check_producer(&txn, producer_id, epoch)?;
        match (txn.state, outcome) {
            (TxnState::Ongoing, _) => {}
            (TxnState::PrepareCommit, Outcome::Commit)
            | (TxnState::PrepareAbort, Outcome::Abort) => {}
            (TxnState::CompleteCommit, Outcome::Commit)
            | (TxnState::CompleteAbort, Outcome::Abort) => return Ok(()),
            (TxnState::PrepareCommit | TxnState::PrepareAbort, _) => {
                return Err(TxnError::ConcurrentTransactions);
            }
            _ => return Err(TxnError::InvalidTxnState),
        }
        self.complete(&mut slot, txn, outcome, markers).await?;
        Ok(())
    }

    /// The transactional ids this broker coordinates, as stored (each
    /// change is written there first): what ListTransactions answers.
    pub async fn list(&self) -> Result<Vec<TxnMeta>> {
        let mut stored = self.meta.transactions().await?;
        stored.retain(|txn| (self.owns)(&txn.transactional_id));
        Ok(stored)
    }

    /// One transactional id's state (`None`: unknown), if this broker
    /// coordinates it.
    pub async fn describe(&self, id: &str) -> Result<Option<TxnMeta>> {
        let handle = self.handle(id).await?;
        let txn = handle.lock().await.clone();
        Ok(txn)
    }

    /// Aborts `id`'s open transaction as if it had timed out (an operator
    /// ending a hanging transaction).
    pub async fn abort(&self, id: &str, markers: &dyn MarkerWriter) -> Result<()> {
        let handle = self.handle(id).await?;
        let mut slot = handle.lock().await;
        let mut txn = slot.clone().ok_or(TxnError::InvalidProducerIdMapping)?;
        match txn.state {
            TxnState::Ongoing => {
                self.bump_epoch(&mut txn).await?;
                self.complete(&mut slot, txn, Outcome::Abort, markers)
                    .await?;
                Ok(())
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                let outcome = prepared_outcome(txn.state);
                self.complete(&mut slot, txn, outcome, markers).await?;
                Ok(())
            }
            _ => Err(TxnError::InvalidTxnState),
        }
    }

    /// One round of the ticker: aborts transactions past their timeout
    /// and completes decided ones, among those loaded.
    pub async fn expire(&self, markers: &dyn MarkerWriter) {
        let handles: Vec<(String, Handle)> = {
            let loaded = self.loaded.lock().expect("txn map poisoned");
            loaded
                .iter()
                .map(|(id, h)| (id.clone(), h.clone()))
                .collect()
        };
        let now = self.clock.now_ms();
        for (id, handle) in handles {
            if !(self.owns)(&id) {
                continue;
            }
            let mut slot = handle.lock().await;
            let Some(mut txn) = slot.clone() else {
                continue;
            };
            let result = match txn.state {
                TxnState::Ongoing if now - txn.started_ms > i64::from(txn.timeout_ms) => {
                    tracing::info!(transactional_id = %id, "aborting a transaction past its timeout");
                    metrics::counter!("silt_transactions_timed_out_total").increment(1);
                    match self.bump_epoch(&mut txn).await {
                        Ok(()) => self
                            .complete(&mut slot, txn, Outcome::Abort, markers)
                            .await
                            .map(|_| ()),
                        Err(e) => Err(e),
                    }
                }
                TxnState::PrepareCommit | TxnState::PrepareAbort => {
                    let outcome = prepared_outcome(txn.state);
                    self.complete(&mut slot, txn, outcome, markers)
                        .await
                        .map(|_| ())
                }
                _ => Ok(()),
            };
            if let Err(e) = result {
                tracing::warn!(transactional_id = %id, error = %e, "cannot end the transaction yet");
            }
        }
    }

    /// Loads the unfinished transactions of the store this broker
    /// coordinates (after a start or a takeover), so the ticker ends them.
    async fn load_unfinished(&self) {
        let stored = match self.meta.transactions().await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list transactions");
                return;
            }
        };
        for txn in stored {
            let unfinished = matches!(
                txn.state,
                TxnState::Ongoing | TxnState::PrepareCommit | TxnState::PrepareAbort
            );
            let id = &txn.transactional_id;
            let loaded = self
                .loaded
                .lock()
                .expect("txn map poisoned")
                .contains_key(id);
            if unfinished
                && !loaded
                && (self.owns)(id)
                && let Err(e) = self.handle(id).await
            {
                tracing::debug!(transactional_id = %id, error = %e, "cannot load the transaction");
            }
        }
    }

    /// For the live brokers changed: forgets, and gives up in the store,
    /// the transactional ids this broker no longer coordinates.
    pub async fn place(&self) {
        let moved: Vec<String> = {
            let mut loaded = self.loaded.lock().expect("txn map poisoned");
            let moved: Vec<String> = loaded
                .keys()
                .filter(|id| !(self.owns)(id))
                .cloned()
                .collect();
            for id in &moved {
                loaded.remove(id);
            }
            moved
        };
        for id in moved {
            if let Err(e) = self.meta.release_transaction(&id).await {
                tracing::warn!(transactional_id = %id, error = %e, "cannot give the transactional id up; it frees with this broker's lease");
            }
        }
    }

    /// Ends timed-out and decided transactions until `shutdown`.
    pub async fn run_ticker(
        self: Arc<Self>,
        markers: Arc<dyn MarkerWriter>,
        shutdown: CancellationToken,
    ) {
        let mut ticks = 0u32;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(TICK) => {}
            }
            if ticks.is_multiple_of(SCAN_EVERY_TICKS) {
                self.load_unfinished().await;
            }
            ticks = ticks.wrapping_add(1);
            self.expire(markers.as_ref()).await;
        }
    }
}

/// The outcome a prepared state decided.
fn prepared_outcome(state: TxnState) -> Outcome {
    match state {
        TxnState::PrepareCommit => Outcome::Commit,
        _ => Outcome::Abort,
    }
}

/// An error unless `producer_id` at `epoch` is the transactional id's
/// current producer.
fn check_producer(txn: &TxnMeta, producer_id: i64, epoch: i16) -> Result<()> {
    if producer_id != txn.producer_id {
        return Err(TxnError::InvalidProducerIdMapping);
    }
    if epoch != txn.epoch {
        return Err(TxnError::ProducerFenced);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::embedded::EmbeddedStore;
    use std::sync::atomic::{AtomicI64, Ordering};

    /// A marker write: producer id, epoch, outcome, partitions.
    type Written = (i64, i16, Outcome, Vec<(String, i32)>);

    /// Records the markers it is asked to write.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Written>>);

    #[async_trait]
    impl MarkerWriter for Recorder {
        async fn write_markers(&self, txn: &TxnMeta, outcome: Outcome) -> crate::error::Result<()> {
            let partitions = txn.partitions.iter().cloned().collect();
            self.0
                .lock()
                .unwrap()
                .push((txn.producer_id, txn.epoch, outcome, partitions));
            Ok(())
        }
    }

    fn coordinator(dir: &std::path::Path) -> (TxnCoordinator, Arc<AtomicI64>) {
        let meta: Arc<dyn MetaStore> = Arc::new(EmbeddedStore::open(dir).unwrap());
        let (clock, hand) = Clock::manual(1_000);
        (
            TxnCoordinator::new(meta, Arc::new(|_| true), clock, 60_000),
            hand,
        )
    }

    fn partition(index: i32) -> Vec<(String, i32)> {
        vec![("t".to_string(), index)]
    }

    #[tokio::test]
    async fn a_transaction_commits_with_its_markers_and_a_retry_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _) = coordinator(dir.path());
        let markers = Recorder::default();
        let (id, epoch) = c.init_producer("tx", 10_000, None, &markers).await.unwrap();
        assert_eq!(epoch, 0);
        c.add("tx", id, epoch, partition(0), vec!["g".into()])
            .await
            .unwrap();
        c.add("tx", id, epoch, partition(1), Vec::new())
            .await
            .unwrap();
        assert!(
            TxnCoordinator::partition_in_transaction(
                c.meta.as_ref(),
                "tx",
                id,
                epoch,
                &("t".into(), 1)
            )
            .await
            .unwrap()
        );
        c.end("tx", id, epoch, Outcome::Commit, &markers)
            .await
            .unwrap();
        let written = markers.0.lock().unwrap().clone();
        assert_eq!(
            written,
            vec![(
                id,
                epoch,
                Outcome::Commit,
                vec![("t".into(), 0), ("t".into(), 1)]
            )]
        );
        // A retried EndTxn succeeds without writing again; the opposite fails.
        c.end("tx", id, epoch, Outcome::Commit, &markers)
            .await
            .unwrap();
        assert_eq!(markers.0.lock().unwrap().len(), 1);
        assert_eq!(
            c.end("tx", id, epoch, Outcome::Abort, &markers).await,
            Err(TxnError::InvalidTxnState)
        );
        let stored = c.meta.transaction("tx").await.unwrap().unwrap();
        assert_eq!(stored.state, TxnState::CompleteCommit);
    }

    #[tokio::test]
    async fn a_new_producer_fences_the_old_one_and_aborts_its_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _) = coordinator(dir.path());
        let markers = Recorder::default();
        let (id, old) = c.init_producer("tx", 10_000, None, &markers).await.unwrap();
        c.add("tx", id, old, partition(0), Vec::new())
            .await
            .unwrap();
        let (same_id, new) = c.init_producer("tx", 10_000, None, &markers).await.unwrap();
        assert_eq!(same_id, id);
        assert!(new > old);
        let written = markers.0.lock().unwrap().clone();
        assert_eq!(written.len(), 1);
        let (_, epoch, outcome, partitions) = &written[0];
        assert_eq!(
            (*outcome, partitions.clone()),
            (Outcome::Abort, partition(0))
        );
        assert!(*epoch > old, "the abort fences the old epoch");
        assert_eq!(
            c.add("tx", id, old, partition(1), Vec::new()).await,
            Err(TxnError::ProducerFenced)
        );
        assert_eq!(
            c.end("tx", id, old, Outcome::Commit, &markers).await,
            Err(TxnError::ProducerFenced)
        );
        assert_eq!(
            c.end("tx", id + 1, new, Outcome::Commit, &markers).await,
            Err(TxnError::InvalidProducerIdMapping)
        );
        assert_eq!(
            c.end("unknown", id, new, Outcome::Commit, &markers).await,
            Err(TxnError::InvalidProducerIdMapping)
        );
        assert_eq!(
            c.init_producer("tx", 60_001, None, &markers).await,
            Err(TxnError::InvalidTimeout(60_000))
        );
    }

    #[tokio::test]
    async fn a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced() {
        let dir = tempfile::tempdir().unwrap();
        let (c, hand) = coordinator(dir.path());
        let markers = Recorder::default();
        let (id, epoch) = c.init_producer("tx", 5_000, None, &markers).await.unwrap();
        c.add("tx", id, epoch, partition(2), Vec::new())
            .await
            .unwrap();
        hand.store(1_000 + 5_000, Ordering::SeqCst);
        c.expire(&markers).await;
        assert!(markers.0.lock().unwrap().is_empty(), "not past it yet");
        hand.store(1_000 + 5_001, Ordering::SeqCst);
        c.expire(&markers).await;
        let written = markers.0.lock().unwrap().clone();
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].2, Outcome::Abort);
        assert_eq!(
            c.end("tx", id, epoch, Outcome::Commit, &markers).await,
            Err(TxnError::ProducerFenced)
        );
    }

    #[tokio::test]
    async fn a_decision_whose_markers_failed_is_completed_later() {
        struct Failing;
        #[async_trait]
        impl MarkerWriter for Failing {
            async fn write_markers(&self, _: &TxnMeta, _: Outcome) -> crate::error::Result<()> {
                Err(crate::error::Error::NotLeaderOrFollower)
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let (c, _) = coordinator(dir.path());
        let markers = Recorder::default();
        let (id, epoch) = c.init_producer("tx", 10_000, None, &markers).await.unwrap();
        c.add("tx", id, epoch, partition(0), Vec::new())
            .await
            .unwrap();
        assert!(matches!(
            c.end("tx", id, epoch, Outcome::Commit, &Failing).await,
            Err(TxnError::Unavailable(_))
        ));
        let stored = c.meta.transaction("tx").await.unwrap().unwrap();
        assert_eq!(stored.state, TxnState::PrepareCommit);
        // A new coordinator (after a restart) finds and completes it.
        drop(c);
        let (c, _) = coordinator(dir.path());
        c.load_unfinished().await;
        c.expire(&markers).await;
        assert_eq!(markers.0.lock().unwrap()[0].2, Outcome::Commit);
        let stored = c.meta.transaction("tx").await.unwrap().unwrap();
        assert_eq!(stored.state, TxnState::CompleteCommit);
    }
}
