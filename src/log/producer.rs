//! Idempotent producer state of one partition: per producer id, its epoch and
//! its last few batches, so a retried batch is answered with its original
//! offset and a gap in sequence numbers is refused.
//!
//! The state is rebuilt on start from the last committed snapshot (metadata
//! store) plus the batches replayed from the WAL.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::error::{Error, Result};
use crate::meta::{PRODUCER_EXPIRY_MS, ProducedBatch, ProducerSnapshot};
use crate::protocol::batch::BatchHeader;

/// Batches remembered per producer, as Kafka does (max.in.flight <= 5).
const REMEMBERED_BATCHES: usize = 5;
/// How often the table looks for expired producers.
const EXPIRY_CHECK_MS: i64 = 60 * 1000;

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// A new batch: append it.
    Append,
    /// A retry of a batch already appended: answer with its offsets.
    Duplicate(ProducedBatch),
}

#[derive(Debug, Clone, Default)]
struct ProducerState {
    epoch: i16,
    last_write_ms: i64,
    batches: VecDeque<ProducedBatch>,
}

/// The producer states of one partition.
#[derive(Debug, Default)]
pub struct ProducerTable {
    producers: HashMap<i64, ProducerState>,
    /// When expired producers were last removed.
    last_expiry_ms: i64,
}

impl ProducerTable {
    /// A table holding the committed `snapshots`.
    pub fn from_snapshots(snapshots: &BTreeMap<i64, ProducerSnapshot>) -> Self {
        let producers = snapshots
            .iter()
            .map(|(&id, s)| {
                let state = ProducerState {
                    epoch: s.epoch,
                    last_write_ms: s.last_write_ms,
                    batches: s.batches.iter().copied().collect(),
                };
                (id, state)
            })
            .collect();
        ProducerTable {
            producers,
            last_expiry_ms: 0,
        }
    }

    /// Decides whether `header` is new, a retry, or out of order.
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceCheck> {
        if !header.has_producer_id() {
            return Ok(SequenceCheck::Append);
        }
        let producer_id = header.producer_id;
        let Some(state) = self.producers.get(&producer_id) else {
            // Unknown (new, or expired): accept whatever sequence it continues at.
            return Ok(SequenceCheck::Append);
        };
        if header.producer_epoch < state.epoch {
            return Err(Error::InvalidProducerEpoch {
                producer_id,
                got: header.producer_epoch,
                current: state.epoch,
            });
        }
        if header.producer_epoch > state.epoch {
            if header.base_sequence != 0 {
                return Err(Error::OutOfOrderSequence {
                    producer_id,
                    expected: 0,
                    got: header.base_sequence,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        if let Some(previous) = state.batches.iter().find(|b| {
            b.first_sequence == header.base_sequence && b.last_sequence == header.last_sequence()
        }) {
            return Ok(SequenceCheck::Duplicate(*previous));
        }
        match state.batches.back() {
            Some(last) if header.base_sequence != next_sequence(last.last_sequence) => {
                Err(Error::OutOfOrderSequence {
                    producer_id,
                    expected: next_sequence(last.last_sequence),
                    got: header.base_sequence,
                })
            }
            _ => Ok(SequenceCheck::Append),
        }
    }

    /// Records an appended batch (checked with [`ProducerTable::check`]).
    pub fn record(&mut self, header: &BatchHeader, base_offset: i64, now_ms: i64) {
        if !header.has_producer_id() {
            return;
        }
        if now_ms - self.last_expiry_ms >= EXPIRY_CHECK_MS {
            self.last_expiry_ms = now_ms;
            self.producers
                .retain(|_, p| now_ms - p.last_write_ms < PRODUCER_EXPIRY_MS);
        }
        let state = self.producers.entry(header.producer_id).or_default();
        if header.producer_epoch != state.epoch {
            state.epoch = header.producer_epoch;
            state.batches.clear();
        }
        state.last_write_ms = now_ms;
        state.batches.push_back(ProducedBatch {
            first_sequence: header.base_sequence,
            last_sequence: header.last_sequence(),
            base_offset,
            last_offset: base_offset + i64::from(header.last_offset_delta),
        });
        if state.batches.len() > REMEMBERED_BATCHES {
            state.batches.pop_front();
        }
    }

    /// Every producer known here: id, epoch, last sequence written (-1
    /// when none) and the time of its last write.
    pub fn producers(&self) -> impl Iterator<Item = (i64, i16, i32, i64)> + '_ {
        self.producers.iter().map(|(id, p)| {
            let last_sequence = p.batches.back().map_or(-1, |b| b.last_sequence);
            (*id, p.epoch, last_sequence, p.last_write_ms)
        })
    }

    /// The epoch `producer_id` last wrote at, if it is known here.
    pub fn epoch(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|p| p.epoch)
    }

    /// Records a transaction marker for the producer written at `epoch`
    /// (the coordinator's, at least the producer's): batches of older
    /// epochs are refused from now on.
    pub fn record_marker(&mut self, producer_id: i64, epoch: i16, now_ms: i64) {
        let state = self.producers.entry(producer_id).or_default();
        if epoch > state.epoch {
            state.epoch = epoch;
            state.batches.clear();
        }
        state.last_write_ms = now_ms;
    }

    /// Snapshots of `producer_ids` as of the end of offset `end` (exclusive),
    /// to commit alongside the extents ending there.
    pub fn snapshot(
        &self,
        producer_ids: impl IntoIterator<Item = i64>,
        end: i64,
    ) -> BTreeMap<i64, ProducerSnapshot> {
        producer_ids
            .into_iter()
            .filter_map(|id| {
                let state = self.producers.get(&id)?;
                let snapshot = ProducerSnapshot {
                    epoch: state.epoch,
                    last_write_ms: state.last_write_ms,
                    batches: state
                        .batches
                        .iter()
                        .filter(|b| b.last_offset < end)
                        .copied()
                        .collect(),
                    txn_first_offset: None,
                };
                Some((id, snapshot))
            })
            .collect()
    }
}

/// The sequence after `sequence`; sequences wrap from i32::MAX to 0.
fn next_sequence(sequence: i32) -> i32 {
    sequence.checked_add(1).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(producer_id: i64, epoch: i16, base_sequence: i32, count: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            record_count: count,
        }
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut table = ProducerTable::default();
        let first = header(9, 0, 0, 10);
        assert_eq!(table.check(&first).unwrap(), SequenceCheck::Append);
        table.record(&first, 100, 1);
        let second = header(9, 0, 10, 5);
        assert_eq!(table.check(&second).unwrap(), SequenceCheck::Append);
        table.record(&second, 110, 2);
        match table.check(&first).unwrap() {
            SequenceCheck::Duplicate(b) => assert_eq!((b.base_offset, b.last_offset), (100, 109)),
            other => panic!("expected a duplicate, got {other:?}"),
        }
    }

    #[test]
    fn gaps_and_stale_epochs_are_refused() {
        let mut table = ProducerTable::default();
        table.record(&header(9, 2, 0, 10), 0, 1);
        assert!(matches!(
            table.check(&header(9, 2, 11, 1)),
            Err(Error::OutOfOrderSequence {
                expected: 10,
                got: 11,
                ..
            })
        ));
        assert!(matches!(
            table.check(&header(9, 1, 10, 1)),
            Err(Error::InvalidProducerEpoch { .. })
        ));
        // A new epoch restarts at sequence 0, and only there.
        assert!(table.check(&header(9, 3, 5, 1)).is_err());
        assert_eq!(
            table.check(&header(9, 3, 0, 1)).unwrap(),
            SequenceCheck::Append
        );
        // Non-idempotent batches are never checked.
        assert_eq!(
            table.check(&header(-1, -1, -1, 1)).unwrap(),
            SequenceCheck::Append
        );
    }

    #[test]
    fn silent_producers_expire() {
        let mut table = ProducerTable::default();
        table.record(&header(1, 0, 0, 1), 0, 1_000);
        table.record(&header(2, 0, 0, 1), 0, 1_000 + PRODUCER_EXPIRY_MS);
        // Producer 1 was forgotten: any sequence is accepted again.
        assert_eq!(
            table.check(&header(1, 0, 7, 1)).unwrap(),
            SequenceCheck::Append
        );
        assert!(table.check(&header(2, 0, 7, 1)).is_err());
    }

    #[test]
    fn sequences_wrap_around() {
        let mut table = ProducerTable::default();
        table.record(&header(1, 0, i32::MAX - 1, 2), 0, 1);
        assert_eq!(
            table.check(&header(1, 0, 0, 1)).unwrap(),
            SequenceCheck::Append
        );
    }

    #[test]
    fn snapshots_stop_at_the_committed_end_and_restore() {
        let mut table = ProducerTable::default();
        table.record(&header(4, 0, 0, 10), 0, 1);
        table.record(&header(4, 0, 10, 10), 10, 2);
        let snapshot = table.snapshot([4], 10);
        assert_eq!(snapshot[&4].batches.len(), 1);
        let restored = ProducerTable::from_snapshots(&snapshot);
        assert_eq!(
            restored.check(&header(4, 0, 10, 10)).unwrap(),
            SequenceCheck::Append
        );
        assert!(matches!(
            restored.check(&header(4, 0, 0, 10)).unwrap(),
            SequenceCheck::Duplicate(_)
        ));
    }
}
