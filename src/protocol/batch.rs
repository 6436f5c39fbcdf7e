//! A view of the Kafka v2 record batch header, without decoding records.
//!
//! The produce path validates batches here (magic, length, CRC-32C, offsets)
//! and rewrites `baseOffset` and `partitionLeaderEpoch` in place: both lie
//! outside the CRC, so the batch is never decoded or re-encoded.

use bytes::{Buf, BufMut, Bytes};

/// Bytes before the records of a v2 batch.
pub const HEADER_LEN: usize = 61;
/// `baseOffset` (8) and `batchLength` (4) precede the part `batchLength` counts.
const LOG_OVERHEAD: usize = 12;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const MAX_TIMESTAMP_AT: usize = 35;

const LOG_APPEND_TIME_FLAG: i16 = 1 << 3;
const TRANSACTIONAL_FLAG: i16 = 1 << 4;
const CONTROL_FLAG: i16 = 1 << 5;

/// Whose clock a batch's timestamps come from (a topic's
/// `message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's, as sent.
    CreateTime,
    /// The broker's at the append.
    LogAppendTime,
}

/// The fields of a v2 batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Bytes after the `batchLength` field.
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

/// Why bytes are not a usable record batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("truncated record batch ({0} bytes left)")]
    Truncated(usize),
    #[error("batch length {0} is invalid")]
    BadLength(i32),
    #[error("unsupported record batch magic {0} (only v2 is accepted)")]
    BadMagic(i8),
    #[error("CRC mismatch: header says {expected:#010x}, data has {actual:#010x}")]
    BadCrc { expected: u32, actual: u32 },
    #[error("record count {count} does not match last offset delta {delta}")]
    BadCount { count: i32, delta: i32 },
}

impl BatchHeader {
    /// Reads the header at the start of `buf` (no CRC check).
    pub fn parse(mut buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Truncated(buf.len()));
        }
        Ok(BatchHeader {
            base_offset: buf.get_i64(),
            batch_length: buf.get_i32(),
            partition_leader_epoch: buf.get_i32(),
            magic: buf.get_i8(),
            crc: buf.get_u32(),
            attributes: buf.get_i16(),
            last_offset_delta: buf.get_i32(),
            base_timestamp: buf.get_i64(),
            max_timestamp: buf.get_i64(),
            producer_id: buf.get_i64(),
            producer_epoch: buf.get_i16(),
            base_sequence: buf.get_i32(),
            record_count: buf.get_i32(),
        })
    }

    /// Size of the whole batch on the wire.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// Offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Sequence number of the batch's last record (sequences wrap at i32::MAX).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        (last % (i64::from(i32::MAX) + 1)) as i32
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    /// Whether the batch holds control records (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }

    /// Whether the broker stamped the batch (every record's timestamp is
    /// `max_timestamp`).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & LOG_APPEND_TIME_FLAG != 0
    }

    /// Whether the batch was written by an idempotent producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
}

/// Splits `records` (as sent in a produce request) into batches, checking
/// each completely: length, magic, CRC-32C and record count.
pub fn split_and_validate(records: &Bytes) -> Result<Vec<(BatchHeader, Bytes)>, BatchError> {
    let mut batches = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let rest = &records[pos..];
        let header = BatchHeader::parse(rest)?;
        if header.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchError::BadLength(header.batch_length));
        }
        if header.magic != 2 {
            return Err(BatchError::BadMagic(header.magic));
        }
        let len = header.total_len();
        if len > rest.len() {
            return Err(BatchError::Truncated(rest.len()));
        }
        let actual = crc32c::crc32c(&rest[ATTRIBUTES_AT..len]);
        if actual != header.crc {
            return Err(BatchError::BadCrc {
                expected: header.crc,
                actual,
            });
        }
        if header.record_count < 1 || header.last_offset_delta != header.record_count - 1 {
            return Err(BatchError::BadCount {
                count: header.record_count,
                delta: header.last_offset_delta,
            });
        }
        batches.push((header, records.slice(pos..pos + len)));
        pos += len;
    }
    Ok(batches)
}

/// Walks stored batches (already validated on produce) in `data`,
/// yielding each header with its byte range. Stops at the first batch that
/// does not fit, so a damaged buffer cannot make it read out of bounds.
pub fn iter_batches(
    data: &[u8],
) -> impl Iterator<Item = (BatchHeader, std::ops::Range<usize>)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let header = BatchHeader::parse(data.get(pos..)?).ok()?;
        let end = pos.checked_add(header.total_len())?;
        if header.batch_length < 0 || end > data.len() {
            return None;
        }
        let range = pos..end;
        pos = end;
        Some((header, range))
    })
}

/// Sets `baseOffset` of the batch at the start of `batch` (not under the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Sets `partitionLeaderEpoch` of the batch (not under the CRC).
pub fn set_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[LEADER_EPOCH_AT..MAGIC_AT].copy_from_slice(&epoch.to_be_bytes());
}

/// Stamps a validated batch with the broker's time, `now_ms`
/// (LogAppendTime): sets the timestamp-type attribute and `maxTimestamp`
/// (consumers give every record that time), then the CRC that covers
/// them. Returns the header as stamped.
pub fn set_log_append_time(batch: &mut [u8], header: &BatchHeader, now_ms: i64) -> BatchHeader {
    let attributes = header.attributes | LOG_APPEND_TIME_FLAG;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..ATTRIBUTES_AT].copy_from_slice(&crc.to_be_bytes());
    BatchHeader {
        attributes,
        max_timestamp: now_ms,
        crc,
        ..*header
    }
}

/// A whole batch: `header` (its length and CRC computed here) followed by
/// `records`, as the header's attributes say they are encoded.
pub fn assemble(header: &BatchHeader, records: &[u8]) -> Bytes {
    let mut out = bytes::BytesMut::with_capacity(HEADER_LEN + records.len());
    let batch_length = (HEADER_LEN - LOG_OVERHEAD + records.len()) as i32;
    out.put_i64(header.base_offset);
    out.put_i32(batch_length);
    out.put_i32(header.partition_leader_epoch);
    out.put_i8(header.magic);
    out.put_u32(0); // the CRC, below
    out.put_i16(header.attributes);
    out.put_i32(header.last_offset_delta);
    out.put_i64(header.base_timestamp);
    out.put_i64(header.max_timestamp);
    out.put_i64(header.producer_id);
    out.put_i16(header.producer_epoch);
    out.put_i32(header.base_sequence);
    out.put_i32(header.record_count);
    out.extend_from_slice(records);
    let crc = crc32c::crc32c(&out[ATTRIBUTES_AT..]);
    out[CRC_AT..ATTRIBUTES_AT].copy_from_slice(&crc.to_be_bytes());
    out.freeze()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::client::{
        Message, ProducerStamp, encode_batch as encode_messages, encode_idempotent_batch,
    };
    use bytes::BytesMut;
    use kafka_protocol::records::RecordBatchDecoder;

    /// Encodes `n` records into one batch (idempotent when `producer_id >= 0`).
    pub(crate) fn encode_batch(n: i32, producer_id: i64, base_sequence: i32) -> Bytes {
        let messages: Vec<Message> = (0..n)
            .map(|i| Message {
                key: Some(Bytes::from(format!("k{i}"))),
                value: Bytes::from(format!("value {i}")),
            })
            .collect();
        let timestamp = 1_700_000_000_000;
        if producer_id < 0 {
            return encode_messages(&messages, timestamp);
        }
        let stamp = ProducerStamp {
            id: producer_id,
            epoch: 0,
            base_sequence,
        };
        encode_idempotent_batch(&messages, timestamp, stamp)
    }

    #[test]
    fn validates_a_well_formed_batch() {
        let batch = encode_batch(3, 7, 10);
        let parsed = split_and_validate(&batch).unwrap();
        assert_eq!(parsed.len(), 1);
        let (header, bytes) = &parsed[0];
        assert_eq!(header.record_count, 3);
        assert_eq!(header.producer_id, 7);
        assert_eq!(header.base_sequence, 10);
        assert_eq!(header.last_sequence(), 12);
        assert_eq!(bytes.len(), batch.len());
    }

    #[test]
    fn rewrite_keeps_crc_valid_and_records_intact() {
        let batch = encode_batch(5, -1, -1);
        let mut owned = BytesMut::from(&batch[..]);
        set_base_offset(&mut owned, 1000);
        set_leader_epoch(&mut owned, 4);
        let rewritten = owned.freeze();
        let (header, _) = split_and_validate(&rewritten).unwrap().remove(0);
        assert_eq!(header.base_offset, 1000);
        assert_eq!(header.partition_leader_epoch, 4);
        assert_eq!(header.last_offset(), 1004);
        let decoded = RecordBatchDecoder::decode(&mut rewritten.clone()).unwrap();
        let offsets: Vec<i64> = decoded.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![1000, 1001, 1002, 1003, 1004]);
        assert_eq!(decoded.records[2].value.as_deref(), Some(&b"value 2"[..]));
    }

    #[test]
    fn log_append_time_stamps_every_record_and_keeps_the_crc_valid() {
        let batch = encode_batch(3, -1, -1);
        let (header, _) = split_and_validate(&batch).unwrap().remove(0);
        let mut owned = BytesMut::from(&batch[..]);
        let stamped = set_log_append_time(&mut owned, &header, 1_800_000_000_000);
        let owned = owned.freeze();
        let (parsed, _) = split_and_validate(&owned).unwrap().remove(0);
        assert_eq!(parsed, stamped);
        assert_eq!(parsed.max_timestamp, 1_800_000_000_000);
        // Clients give every record of such a batch its maxTimestamp.
        let decoded = RecordBatchDecoder::decode(&mut owned.clone()).unwrap();
        assert!(
            decoded
                .records
                .iter()
                .all(|r| r.timestamp_type == kafka_protocol::records::TimestampType::LogAppend)
        );
        assert_eq!(decoded.records[2].value.as_deref(), Some(&b"value 2"[..]));
    }

    #[test]
    fn rejects_bad_crc_magic_and_truncation() {
        let batch = encode_batch(2, -1, -1);
        let mut bad_crc = BytesMut::from(&batch[..]);
        bad_crc[17] ^= 0xff; // the CRC field
        assert!(matches!(
            split_and_validate(&bad_crc.freeze()),
            Err(BatchError::BadCrc { .. })
        ));
        let mut bad_magic = BytesMut::from(&batch[..]);
        bad_magic[MAGIC_AT] = 1;
        assert_eq!(
            split_and_validate(&bad_magic.freeze()),
            Err(BatchError::BadMagic(1))
        );
        let truncated = batch.slice(..batch.len() - 1);
        assert!(matches!(
            split_and_validate(&truncated),
            Err(BatchError::Truncated(_))
        ));
        let mut bad_length = BytesMut::from(&batch[..]);
        bad_length[8..12].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(
            split_and_validate(&bad_length.freeze()),
            Err(BatchError::BadLength(-1))
        );
    }

    #[test]
    fn iterates_concatenated_batches_and_stops_at_damage() {
        let mut data = BytesMut::new();
        data.extend_from_slice(&encode_batch(2, -1, -1));
        data.extend_from_slice(&encode_batch(3, -1, -1));
        let ranges: Vec<_> = iter_batches(&data)
            .map(|(h, r)| (h.record_count, r))
            .collect();
        assert_eq!(ranges.len(), 2);
        assert_eq!(ranges[1].1.end, data.len());
        let cut = &data[..data.len() - 3];
        assert_eq!(iter_batches(cut).count(), 1);
    }
}
