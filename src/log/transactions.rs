//! Transactions in one partition: which producers have one open (from
//! their first transactional batch to their marker), the last stable offset
//! (LSO) read_committed consumers read up to, and the aborted transactions
//! they skip.
//!
//! A transaction stays in the way of the LSO until its marker is below the
//! high watermark (a consumer must see the marker before the records after
//! it), and is remembered until its marker is committed too, so snapshots
//! of an earlier end still see it open.

use std::collections::BTreeMap;

use crate::meta::{AbortedTxn, PartitionMeta, forget_aborted_before};
use crate::protocol::batch::BatchHeader;
use crate::protocol::control::Outcome;

/// Whether `header`'s batch belongs to one of the `aborted` transactions
/// (read_committed readers skip it).
pub fn is_aborted(header: &BatchHeader, aborted: &[AbortedTxn]) -> bool {
    header.is_transactional()
        && aborted.iter().any(|a| {
            a.producer_id == header.producer_id
                && (a.first_offset..a.last_offset).contains(&header.base_offset)
        })
}

/// A transaction whose marker is appended.
#[derive(Debug, Clone, Copy)]
struct Ended {
    producer_id: i64,
    first_offset: i64,
    marker_offset: i64,
}

/// The transaction state of one partition.
#[derive(Debug, Default)]
pub struct Transactions {
    /// Producer id -> first offset of its open transaction.
    open: BTreeMap<i64, i64>,
    ended: Vec<Ended>,
    /// Aborted transactions, in marker order.
    aborted: Vec<AbortedTxn>,
}

impl Transactions {
    /// The state committed in `meta`.
    pub fn restored(meta: &PartitionMeta) -> Self {
        Transactions {
            open: meta
                .producers
                .iter()
                .filter_map(|(id, p)| Some((*id, p.txn_first_offset?)))
                .collect(),
            ended: Vec::new(),
            aborted: meta.aborted.clone(),
        }
    }

    /// Whether `producer_id` has a transaction open here.
    pub fn is_open(&self, producer_id: i64) -> bool {
        self.open.contains_key(&producer_id)
    }

    /// The first offset of `producer_id`'s open transaction here.
    pub fn first_offset(&self, producer_id: i64) -> Option<i64> {
        self.open.get(&producer_id).copied()
    }

    /// Records a transactional data batch at `offset`.
    pub fn record_data(&mut self, producer_id: i64, offset: i64) {
        self.open.entry(producer_id).or_insert(offset);
    }

    /// Records the marker at `offset` ending `producer_id`'s transaction
    /// (nothing if none is open: a retried marker).
    pub fn record_marker(&mut self, producer_id: i64, offset: i64, outcome: Outcome) {
        let Some(first_offset) = self.open.remove(&producer_id) else {
            return;
        };
        self.ended.push(Ended {
            producer_id,
            first_offset,
            marker_offset: offset,
        });
        if outcome == Outcome::Abort {
            self.aborted.push(AbortedTxn {
                producer_id,
                first_offset,
                last_offset: offset,
            });
        }
    }

    /// The last stable offset under `high_watermark`: no record from it on
    /// belongs to a transaction whose outcome a consumer could not know.
    pub fn last_stable(&self, high_watermark: i64) -> i64 {
        let open = self.open.values().copied();
        let ending = self
            .ended
            .iter()
            .filter(|e| e.marker_offset >= high_watermark)
            .map(|e| e.first_offset);
        open.chain(ending).fold(high_watermark, i64::min)
    }

    /// Forgets ended transactions whose markers are below both the high
    /// watermark and the committed end.
    pub fn forget_ended(&mut self, high_watermark: i64, committed_end: i64) {
        let bound = high_watermark.min(committed_end);
        self.ended.retain(|e| e.marker_offset >= bound);
    }

    /// The first offset of `producer_id`'s transaction open at `end` (the
    /// offsets before it written, the ones from it not).
    pub fn open_at(&self, producer_id: i64, end: i64) -> Option<i64> {
        let ended = self.ended.iter().find(|e| {
            e.producer_id == producer_id && e.first_offset < end && end <= e.marker_offset
        });
        match ended {
            Some(e) => Some(e.first_offset),
            None => self.open.get(&producer_id).copied().filter(|f| *f < end),
        }
    }

    /// The aborted transactions with records in `from..to`, for a
    /// read_committed fetch of that range.
    pub fn aborted_within(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.aborted
            .iter()
            .filter(|a| a.last_offset >= from && a.first_offset < to)
            .copied()
            .collect()
    }

    /// The aborted transactions whose markers are in `from..to`, to commit
    /// with the extents holding them.
    pub fn aborted_by_markers_in(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.aborted
            .iter()
            .filter(|a| (from..to).contains(&a.last_offset))
            .copied()
            .collect()
    }

    /// Forgets aborted transactions no read can reach: their markers are
    /// before `log_start`.
    pub fn forget_before(&mut self, log_start: i64) {
        forget_aborted_before(&mut self.aborted, log_start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lso_waits_for_open_transactions_and_undurable_markers() {
        let mut txns = Transactions::default();
        txns.record_data(1, 10);
        txns.record_data(1, 12);
        txns.record_data(2, 15);
        assert_eq!(txns.last_stable(20), 10);
        txns.record_marker(1, 20, Outcome::Commit);
        // The marker is not below the high watermark yet.
        assert_eq!(txns.last_stable(20), 10);
        assert_eq!(txns.last_stable(21), 15);
        txns.record_marker(2, 21, Outcome::Abort);
        assert_eq!(txns.last_stable(22), 22);
        assert_eq!(
            txns.aborted_within(0, 22),
            vec![AbortedTxn {
                producer_id: 2,
                first_offset: 15,
                last_offset: 21
            }]
        );
        assert!(txns.aborted_within(22, 30).is_empty());
        assert!(txns.aborted_within(0, 15).is_empty());
    }

    #[test]
    fn snapshots_see_transactions_open_at_their_end() {
        let mut txns = Transactions::default();
        txns.record_data(7, 5);
        txns.record_marker(7, 9, Outcome::Abort);
        txns.record_data(7, 12);
        assert_eq!(txns.open_at(7, 5), None);
        assert_eq!(txns.open_at(7, 9), Some(5));
        assert_eq!(txns.open_at(7, 10), None);
        assert_eq!(txns.open_at(7, 13), Some(12));
        assert_eq!(txns.aborted_by_markers_in(0, 9).len(), 0);
        assert_eq!(txns.aborted_by_markers_in(9, 10).len(), 1);
        txns.forget_ended(20, 10);
        assert_eq!(txns.open_at(7, 9), None, "committed past its marker");
        txns.forget_before(10);
        assert!(txns.aborted_within(0, 100).is_empty());
    }
}
