//! Retention: how far a partition's log start moves as its data expires
//! by time (`retention.ms`) or by size (`retention.bytes`). Like Kafka,
//! whole sealed units leave the log from the front (here extents, as Kafka
//! deletes whole segments); data in the tail, not committed yet, never
//! expires.

use crate::meta::Extent;

/// A topic's retention limits (`None`: unlimited, Kafka's -1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Data whose newest record is older than this (ms) expires.
    pub ms: Option<i64>,
    /// Oldest data beyond this many bytes per partition expires.
    pub bytes: Option<u64>,
}

/// The offset after the extents that expired: from the oldest, each whose
/// newest timestamp is older than `retention.ms` before `now_ms`, or
/// without which the partition (its extents and `tail_bytes`) still holds
/// `retention.bytes`; `None` if the first one stays.
pub fn expired_before(
    extents: &[Extent],
    tail_bytes: u64,
    retention: Retention,
    now_ms: i64,
) -> Option<i64> {
    let mut size = tail_bytes + extents.iter().map(|e| e.length).sum::<u64>();
    let mut cut = None;
    for extent in extents {
        let too_old = retention
            .ms
            .is_some_and(|ms| extent.max_timestamp < now_ms.saturating_sub(ms));
        let too_big = retention
            .bytes
            .is_some_and(|bytes| size - extent.length >= bytes);
        if !too_old && !too_big {
            break;
        }
        size -= extent.length;
        cut = Some(extent.last_offset + 1);
    }
    cut
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    /// Extents of 100 bytes and 10 offsets each, the i-th written at `i * 1000` ms.
    fn extents(count: i64) -> Vec<Extent> {
        (0..count)
            .map(|i| Extent {
                object: Uuid::nil(),
                position: 0,
                length: 100,
                base_offset: i * 10,
                last_offset: i * 10 + 9,
                max_timestamp: i * 1000,
                crc: None,
                compacted: false,
                tombstones_due_ms: None,
                entry_list: None,
            })
            .collect()
    }

    #[test]
    fn old_extents_expire_from_the_front() {
        let by_time = Retention {
            ms: Some(1500),
            bytes: None,
        };
        // At 3,000 ms the extents of 0 and 1,000 ms are older than 1.5 s.
        assert_eq!(expired_before(&extents(4), 0, by_time, 3000), Some(20));
        assert_eq!(expired_before(&extents(4), 0, by_time, 1000), None);
        assert_eq!(expired_before(&[], 0, by_time, 9000), None);
        let forever = Retention::default();
        assert_eq!(expired_before(&extents(4), 0, forever, i64::MAX), None);
    }

    #[test]
    fn the_oldest_bytes_beyond_the_limit_expire_in_whole_extents() {
        let by_size = |bytes| Retention {
            ms: None,
            bytes: Some(bytes),
        };
        // 400 bytes in extents plus 50 in the tail, at most 250 kept: two
        // extents go (350 then 250 left), a third would leave 150.
        assert_eq!(expired_before(&extents(4), 50, by_size(250), 0), Some(20));
        assert_eq!(expired_before(&extents(4), 50, by_size(450), 0), None);
        assert_eq!(
            expired_before(&extents(4), 0, by_size(0), 0),
            Some(40),
            "retention.bytes=0 keeps nothing committed"
        );
    }
}
