//! The records inside a v2 batch: its codec, decompression bounded by a
//! limit (a small batch cannot make the broker allocate gigabytes), a walk
//! over the records that reads only what the broker needs (offset,
//! timestamp, key, value), and rebuilding a batch from the records it
//! keeps, in the same or another codec. Kept records are copied byte for
//! byte: their headers, timestamps and offsets never change.

use std::io::Read;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use super::batch::{self, BatchHeader, HEADER_LEN};

const CODEC_MASK: i16 = 0x07;
/// The stream header snappy-java writes (Kafka's snappy framing).
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;

/// A record batch compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// Why a batch's records cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    #[error("unknown compression codec {0}")]
    UnknownCodec(i16),
    #[error("the records inflate beyond {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{codec:?} records do not decompress: {reason}")]
    Decompress { codec: Codec, reason: String },
    #[error("{codec:?} compression failed: {reason}")]
    Compress { codec: Codec, reason: String },
    #[error("malformed record: {0}")]
    Malformed(&'static str),
}

impl Codec {
    /// The codec named by a batch's attributes.
    pub fn of(header: &BatchHeader) -> Result<Codec, RecordsError> {
        match header.attributes & CODEC_MASK {
            0 => Ok(Codec::None),
            1 => Ok(Codec::Gzip),
            2 => Ok(Codec::Snappy),
            3 => Ok(Codec::Lz4),
            4 => Ok(Codec::Zstd),
            other => Err(RecordsError::UnknownCodec(other)),
        }
    }

    /// The codec a topic's `compression.type` asks for (`None` for
    /// `producer`: batches stay as the producer compressed them).
    pub fn for_topic(compression_type: &str) -> Option<Codec> {
        match compression_type {
            "uncompressed" => Some(Codec::None),
            "gzip" => Some(Codec::Gzip),
            "snappy" => Some(Codec::Snappy),
            "lz4" => Some(Codec::Lz4),
            "zstd" => Some(Codec::Zstd),
            _ => None,
        }
    }

    fn attribute(self) -> i16 {
        match self {
            Codec::None => 0,
            Codec::Gzip => 1,
            Codec::Snappy => 2,
            Codec::Lz4 => 3,
            Codec::Zstd => 4,
        }
    }

    /// `raw` compressed with this codec.
    fn compress(self, raw: &[u8]) -> Result<Bytes, RecordsError> {
        let mut out = BytesMut::with_capacity(raw.len() / 2 + 64);
        let fill = |tmp: &mut BytesMut| {
            tmp.extend_from_slice(raw);
            Ok(())
        };
        let done = match self {
            Codec::None => return Ok(Bytes::copy_from_slice(raw)),
            Codec::Gzip => Gzip::compress(&mut out, fill),
            Codec::Snappy => Snappy::compress(&mut out, fill),
            Codec::Lz4 => Lz4::compress(&mut out, fill),
            Codec::Zstd => Zstd::compress(&mut out, fill),
        };
        done.map_err(|e| RecordsError::Compress {
            codec: self,
            reason: e.to_string(),
        })?;
        Ok(out.freeze())
    }

    /// `data` decompressed, refused once it passes `limit` bytes (before
    /// allocating them).
    fn decompress(self, data: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
        let failed = |e: &dyn std::fmt::Display| RecordsError::Decompress {
            codec: self,
            reason: e.to_string(),
        };
        let read_bounded = |mut reader: Box<dyn Read + '_>| {
            let mut out = Vec::new();
            reader
                .by_ref()
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| failed(&e))?;
            if out.len() > limit {
                return Err(RecordsError::TooLarge { limit });
            }
            Ok(out)
        };
        match self {
            Codec::None => Ok(data.to_vec()),
            Codec::Gzip => read_bounded(Box::new(flate2::read::MultiGzDecoder::new(data))),
            Codec::Zstd => {
                let decoder =
                    zstd::stream::read::Decoder::with_buffer(data).map_err(|e| failed(&e))?;
                read_bounded(Box::new(decoder))
            }
            Codec::Lz4 => {
                let decoder = lz4::Decoder::new(data).map_err(|e| failed(&e))?;
                read_bounded(Box::new(decoder))
            }
            Codec::Snappy => snappy_decompress(data, limit).map_err(|e| match e {
                SnappyError::TooLarge => RecordsError::TooLarge { limit },
                SnappyError::Bad(reason) => failed(&reason),
            }),
        }
    }
}

enum SnappyError {
    TooLarge,
    Bad(String),
}

/// Snappy as Kafka clients write it: snappy-java's framing (a header, then
/// blocks each prefixed by its length), or one raw block.
fn snappy_decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, SnappyError> {
    let blocks: Vec<&[u8]> = if data.starts_with(XERIAL_MAGIC) && data.len() >= XERIAL_HEADER_LEN {
        let mut blocks = Vec::new();
        let mut rest = &data[XERIAL_HEADER_LEN..];
        while !rest.is_empty() {
            let (len, tail) = rest
                .split_first_chunk::<4>()
                .ok_or_else(|| SnappyError::Bad("truncated block length".into()))?;
            let len = u32::from_be_bytes(*len) as usize;
            if len > tail.len() {
                return Err(SnappyError::Bad("truncated block".into()));
            }
            blocks.push(&tail[..len]);
            rest = &tail[len..];
        }
        blocks
    } else {
        vec![data]
    };
    let mut out = Vec::new();
    for block in blocks {
        let len = snap::raw::decompress_len(block).map_err(|e| SnappyError::Bad(e.to_string()))?;
        let start = out.len();
        if start + len > limit {
            return Err(SnappyError::TooLarge);
        }
        out.resize(start + len, 0);
        snap::raw::Decoder::new()
            .decompress(block, &mut out[start..])
            .map_err(|e| SnappyError::Bad(e.to_string()))?;
    }
    Ok(out)
}

/// The records of a batch, uncompressed.
#[derive(Debug, Clone)]
pub struct Records {
    pub codec: Codec,
    /// The records' bytes, one after another.
    pub bytes: Bytes,
}

/// The records of `batch` (a whole stored or produced batch, `header` its
/// header), decompressed within `limit` bytes.
pub fn records_of(
    batch: &Bytes,
    header: &BatchHeader,
    limit: usize,
) -> Result<Records, RecordsError> {
    let codec = Codec::of(header)?;
    let data = batch.slice(HEADER_LEN.min(batch.len())..header.total_len().min(batch.len()));
    let bytes = match codec {
        Codec::None => data,
        _ => Bytes::from(codec.decompress(&data, limit)?),
    };
    Ok(Records { codec, bytes })
}

/// What the broker reads of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    /// Where the key is in the records' bytes (`None`: a null key).
    pub key: Option<Range<usize>>,
    /// Where the value is (`None`: a null value, a tombstone).
    pub value: Option<Range<usize>>,
    /// The headers' count and headers, as [`headers`] reads them.
    pub headers: Range<usize>,
    /// The whole record, its length prefix included.
    pub bytes: Range<usize>,
}

/// Walks the records in `records` (a batch's uncompressed records),
/// reading each one's offset, timestamp, key and value positions; a record
/// that does not fit its bytes is an error.
pub fn walk(records: &[u8]) -> impl Iterator<Item = Result<RecordView, RecordsError>> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= records.len() {
            return None;
        }
        let record = read_record(records, pos);
        match &record {
            Ok(view) => pos = view.bytes.end,
            Err(_) => pos = records.len(),
        }
        Some(record)
    })
}

fn read_record(records: &[u8], start: usize) -> Result<RecordView, RecordsError> {
    let mut reader = Reader {
        data: records,
        pos: start,
    };
    let length = reader.varint()?;
    let body = reader.pos;
    let end = usize::try_from(length)
        .ok()
        .and_then(|l| body.checked_add(l))
        .filter(|end| *end <= records.len())
        .ok_or(RecordsError::Malformed("record length past its batch"))?;
    reader.data = &records[..end];
    reader.skip(1)?; // attributes
    let timestamp_delta = reader.varint()?;
    let offset_delta = i32::try_from(reader.varint()?)
        .map_err(|_| RecordsError::Malformed("offset delta out of range"))?;
    let key = reader.bytes()?;
    let value = reader.bytes()?;
    Ok(RecordView {
        offset_delta,
        timestamp_delta,
        key,
        value,
        headers: reader.pos..end,
        bytes: start..end,
    })
}

/// Where a record header's key and value are (`None`: a null value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderView {
    pub key: Range<usize>,
    pub value: Option<Range<usize>>,
}

/// A record's headers (`records[headers]`, from its [`RecordView`]).
pub fn headers(records: &[u8], headers: Range<usize>) -> Result<Vec<HeaderView>, RecordsError> {
    let mut reader = Reader {
        data: &records[..headers.end],
        pos: headers.start,
    };
    let count = reader.varint()?;
    let mut found = Vec::new();
    for _ in 0..count.max(0) {
        let key = reader
            .bytes()?
            .ok_or(RecordsError::Malformed("a header without a key"))?;
        found.push(HeaderView {
            key,
            value: reader.bytes()?,
        });
    }
    Ok(found)
}

/// A cursor over record bytes.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    /// A zig-zag varint (Kafka's varint and varlong).
    fn varint(&mut self) -> Result<i64, RecordsError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .data
                .get(self.pos)
                .ok_or(RecordsError::Malformed("truncated varint"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        Err(RecordsError::Malformed("varint longer than 10 bytes"))
    }

    fn skip(&mut self, n: usize) -> Result<(), RecordsError> {
        if self.pos + n > self.data.len() {
            return Err(RecordsError::Malformed("truncated record"));
        }
        self.pos += n;
        Ok(())
    }

    /// A length-prefixed byte string; `None` for length -1.
    fn bytes(&mut self) -> Result<Option<Range<usize>>, RecordsError> {
        let len = self.varint()?;
        if len < 0 {
            return Ok(None);
        }
        let start = self.pos;
        self.skip(usize::try_from(len).map_err(|_| RecordsError::Malformed("length"))?)?;
        Ok(Some(start..self.pos))
    }
}

/// A batch like the one `header` describes holding only `kept` (whole
/// records, one after another, `count` of them) compressed with `codec`:
/// offsets, timestamps, producer fields and the last offset stay; the
/// batch's largest timestamp becomes that of the records kept.
pub fn rebuild(
    header: &BatchHeader,
    codec: Codec,
    kept: &[u8],
    count: i32,
) -> Result<Bytes, RecordsError> {
    let mut max_timestamp = header.max_timestamp;
    if !header.is_log_append_time() && count > 0 {
        max_timestamp = i64::MIN;
        for record in walk(kept) {
            max_timestamp = max_timestamp.max(header.base_timestamp + record?.timestamp_delta);
        }
    }
    let compressed = codec.compress(kept)?;
    let rebuilt = BatchHeader {
        attributes: (header.attributes & !CODEC_MASK) | codec.attribute(),
        record_count: count,
        max_timestamp,
        ..*header
    };
    Ok(batch::assemble(&rebuilt, &compressed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };

    /// A batch of `n` records (record 2's value null) at offset 100.
    fn encoded(n: i64, compression: Compression) -> Bytes {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 7,
                producer_epoch: 1,
                timestamp_type: TimestampType::Creation,
                offset: 100 + i,
                sequence: 5 + i as i32,
                timestamp: 1_700_000_000_000 + i,
                key: (i != 3).then(|| Bytes::from(format!("key-{i}"))),
                value: (i != 2).then(|| Bytes::from(format!("value-{i}").repeat(50))),
                headers: IndexMap::from([(
                    kafka_protocol::protocol::StrBytes::from_static_str("h"),
                    Some(Bytes::from_static(b"v")),
                )]),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf.freeze()
    }

    const ALL: [(Compression, Codec); 5] = [
        (Compression::None, Codec::None),
        (Compression::Gzip, Codec::Gzip),
        (Compression::Snappy, Codec::Snappy),
        (Compression::Lz4, Codec::Lz4),
        (Compression::Zstd, Codec::Zstd),
    ];

    #[test]
    fn every_codec_is_read_and_rebuilt_in_any_other() {
        for (compression, codec) in ALL {
            let batch = encoded(6, compression);
            let (header, _) = batch::split_and_validate(&batch).unwrap().remove(0);
            let records = records_of(&batch, &header, 1 << 20).unwrap();
            assert_eq!(records.codec, codec);
            let views: Vec<RecordView> = walk(&records.bytes).collect::<Result<_, _>>().unwrap();
            assert_eq!(views.len(), 6);
            assert_eq!(views[4].offset_delta, 4);
            assert_eq!(views[4].timestamp_delta, 4);
            assert_eq!(&records.bytes[views[4].key.clone().unwrap()], b"key-4");
            let headers = headers(&records.bytes, views[4].headers.clone()).unwrap();
            assert_eq!(headers.len(), 1);
            assert_eq!(&records.bytes[headers[0].key.clone()], b"h");
            assert_eq!(&records.bytes[headers[0].value.clone().unwrap()], b"v");
            assert_eq!(views[3].key, None);
            assert_eq!(views[2].value, None);
            // Keep records 1 and 4, in every codec.
            for (_, target) in ALL {
                let mut kept = Vec::new();
                for view in [&views[1], &views[4]] {
                    kept.extend_from_slice(&records.bytes[view.bytes.clone()]);
                }
                let rebuilt = rebuild(&header, target, &kept, 2).unwrap();
                let new_header = BatchHeader::parse(&rebuilt).unwrap();
                assert_eq!(new_header.total_len(), rebuilt.len());
                assert_eq!(new_header.crc, crc32c::crc32c(&rebuilt[21..]));
                assert_eq!(new_header.base_offset, 100);
                assert_eq!(new_header.last_offset(), 105, "the last offset stays");
                assert_eq!(new_header.base_sequence, 5);
                assert_eq!(new_header.max_timestamp, 1_700_000_000_004);
                let decoded = RecordBatchDecoder::decode(&mut rebuilt.clone()).unwrap();
                let offsets: Vec<i64> = decoded.records.iter().map(|r| r.offset).collect();
                assert_eq!(offsets, vec![101, 104]);
                assert_eq!(decoded.records[1].key.as_deref(), Some(&b"key-4"[..]));
                assert_eq!(decoded.records[1].timestamp, 1_700_000_000_004);
                assert_eq!(decoded.records[1].headers.len(), 1);
            }
        }
    }

    #[test]
    fn a_batch_that_inflates_past_the_limit_is_refused() {
        for (compression, codec) in ALL.into_iter().skip(1) {
            let batch = encoded(200, compression);
            let (header, _) = batch::split_and_validate(&batch).unwrap().remove(0);
            let err = records_of(&batch, &header, 10_000).unwrap_err();
            assert_eq!(err, RecordsError::TooLarge { limit: 10_000 }, "{codec:?}");
        }
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let batch = encoded(3, Compression::None);
        let (header, _) = batch::split_and_validate(&batch).unwrap().remove(0);
        let records = records_of(&batch, &header, 1 << 20).unwrap().bytes;
        for cut in 0..records.len() {
            let _ = walk(&records[..cut]).count();
        }
        let mut bad = records.to_vec();
        bad[0] = 0x7f; // a length past the end
        assert!(walk(&bad).next().unwrap().is_err());
        let garbage = Bytes::from_static(b"not compressed at all");
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            assert!(codec.decompress(&garbage, 1 << 20).is_err(), "{codec:?}");
        }
    }
}
