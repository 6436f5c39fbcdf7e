//! Transaction markers: the control batches that end a transaction in a
//! partition (one COMMIT or ABORT record, keyed by its type), as Kafka
//! writes them.

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::{self, BatchHeader};
use super::records::{self, Codec};

/// Batch attribute bits of a marker: transactional and control.
const MARKER_ATTRIBUTES: i16 = 0x10 | 0x20;
/// Control record types (the second field of the record key).
const ABORT: i16 = 0;
const COMMIT: i16 = 1;

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Commit,
    Abort,
}

/// A marker ending `producer_id`'s transaction at `producer_epoch`, written
/// by the coordinator at `coordinator_epoch`, stamped `timestamp_ms`; its
/// offsets and leader epoch are set when appended.
pub fn marker(
    producer_id: i64,
    producer_epoch: i16,
    outcome: Outcome,
    coordinator_epoch: i32,
    timestamp_ms: i64,
) -> (BatchHeader, Bytes) {
    let kind = match outcome {
        Outcome::Commit => COMMIT,
        Outcome::Abort => ABORT,
    };
    let mut body = BytesMut::with_capacity(16);
    body.put_i8(0); // record attributes
    put_varint(&mut body, 0); // timestamp delta
    put_varint(&mut body, 0); // offset delta
    put_varint(&mut body, 4);
    body.put_i16(0); // key version
    body.put_i16(kind);
    put_varint(&mut body, 6);
    body.put_i16(0); // value version
    body.put_i32(coordinator_epoch);
    put_varint(&mut body, 0); // headers
    let mut record = BytesMut::with_capacity(1 + body.len());
    put_varint(&mut record, body.len() as i64);
    record.extend_from_slice(&body);
    let header = BatchHeader {
        base_offset: 0,
        batch_length: 0,
        partition_leader_epoch: 0,
        magic: 2,
        crc: 0,
        attributes: MARKER_ATTRIBUTES,
        last_offset_delta: 0,
        base_timestamp: timestamp_ms,
        max_timestamp: timestamp_ms,
        producer_id,
        producer_epoch,
        base_sequence: -1,
        record_count: 1,
    };
    let data = batch::assemble(&header, &record);
    let header = BatchHeader::parse(&data).expect("a batch just assembled parses");
    (header, data)
}

/// The outcome a control batch (`data`, `header` its header) records;
/// `None` if it is no transaction marker.
pub fn outcome_of(header: &BatchHeader, data: &Bytes) -> Option<Outcome> {
    if !header.is_control() || Codec::of(header).ok()? != Codec::None {
        return None;
    }
    let records = records::records_of(data, header, data.len()).ok()?;
    let record = records::walk(&records.bytes).next()?.ok()?;
    let key = &records.bytes[record.key?];
    match i16::from_be_bytes(key.get(2..4)?.try_into().ok()?) {
        ABORT => Some(Outcome::Abort),
        COMMIT => Some(Outcome::Commit),
        _ => None,
    }
}

/// A zig-zag varint, as records encode their fields.
fn put_varint(buf: &mut BytesMut, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn markers_decode_as_kafka_control_records() {
        for outcome in [Outcome::Commit, Outcome::Abort] {
            let (header, data) = marker(42, 3, outcome, 7, 1_700_000_000_000);
            assert!(header.is_control() && header.is_transactional());
            assert_eq!((header.producer_id, header.producer_epoch), (42, 3));
            assert_eq!(outcome_of(&header, &data), Some(outcome));
            let mut buf = data.clone();
            let decoded = RecordBatchDecoder::decode(&mut buf).unwrap();
            let record = &decoded.records[0];
            assert!(record.control && record.transactional);
            let kind = if outcome == Outcome::Commit { 1 } else { 0 };
            assert_eq!(record.key.as_deref(), Some(&[0, 0, 0, kind][..]));
            assert_eq!(record.value.as_deref(), Some(&[0, 0, 0, 0, 0, 7][..]));
        }
    }

    #[test]
    fn data_batches_are_no_markers() {
        let data = batch::tests::encode_batch(2, 5, 0);
        let header = BatchHeader::parse(&data).unwrap();
        assert_eq!(outcome_of(&header, &data), None);
    }
}
