//! The data object format (DESIGN section 6).
//!
//! ```text
//! [section]...            raw Kafka v2 record batches, one partition each
//! [index entry]...        one per section, INDEX_ENTRY_LEN bytes
//! [footer]                index position u64, entry count u32, index crc32c u32,
//!                         format version u16, magic "SILTDATA"
//! ```
//! A partition's data in one upload is cut into sections of at most
//! `MAX_SECTION_BYTES` (at batch boundaries; merged objects use larger
//! ones), the unit a reader fetches and caches. All integers are big-endian.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::meta::Extent;

/// Sections are cut at the first batch boundary past this size.
pub const MAX_SECTION_BYTES: usize = 4 * 1024 * 1024;
const INDEX_ENTRY_LEN: usize = 16 + 4 + 8 + 8 + 8 + 8 + 8 + 4;
const FOOTER_LEN: usize = 8 + 4 + 4 + 2 + 8;
const MAGIC: &[u8; 8] = b"SILTDATA";
const VERSION: u16 = 1;

/// Where one section lives in an object, and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    pub topic: Uuid,
    pub partition: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub position: u64,
    pub length: u64,
    pub crc: u32,
}

impl Section {
    /// The extent of this section once its object is written as `object`.
    pub fn extent_in(&self, object: Uuid) -> Extent {
        Extent {
            object,
            position: self.position,
            length: self.length,
            base_offset: self.base_offset,
            last_offset: self.last_offset,
            max_timestamp: self.max_timestamp,
            crc: Some(self.crc),
            compacted: false,
            tombstones_due_ms: None,
            entry_list: None,
        }
    }
}

/// A record batch to be placed in an object.
#[derive(Debug, Clone)]
pub struct SealedBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub data: Bytes,
}

/// Accumulates sections, then lays out the object.
pub struct ObjectBuilder {
    buf: BytesMut,
    sections: Vec<Section>,
}

impl ObjectBuilder {
    /// A builder sized for about `capacity` bytes of batches.
    pub fn with_capacity(capacity: usize) -> Self {
        ObjectBuilder {
            buf: BytesMut::with_capacity(capacity + 64 * 1024),
            sections: Vec::new(),
        }
    }

    /// Appends one partition's consecutive batches as one or more sections
    /// of at most `MAX_SECTION_BYTES` (uploads).
    pub fn add_partition(&mut self, topic: Uuid, partition: i32, batches: &[SealedBatch]) {
        self.add_partition_in(topic, partition, batches, MAX_SECTION_BYTES);
    }

    /// Appends one partition's consecutive batches as sections cut at the
    /// first batch boundary past `section_bytes` (merged objects).
    pub fn add_partition_in(
        &mut self,
        topic: Uuid,
        partition: i32,
        batches: &[SealedBatch],
        section_bytes: usize,
    ) {
        let mut rest = batches;
        while let Some(first) = rest.first() {
            let mut size = 0;
            let count = rest
                .iter()
                .take_while(|b| {
                    let take = size == 0 || size + b.data.len() <= section_bytes;
                    size += b.data.len();
                    take
                })
                .count();
            let (chunk, tail) = rest.split_at(count);
            let position = self.buf.len();
            for batch in chunk {
                self.buf.put_slice(&batch.data);
            }
            let last = chunk.last().expect("a section has at least one batch");
            self.sections.push(Section {
                topic,
                partition,
                base_offset: first.base_offset,
                last_offset: last.last_offset,
                max_timestamp: chunk.iter().map(|b| b.max_timestamp).max().unwrap_or(-1),
                position: position as u64,
                length: (self.buf.len() - position) as u64,
                crc: crc32c::crc32c(&self.buf[position..]),
            });
            rest = tail;
        }
    }

    /// Sections added so far.
    pub fn section_count(&self) -> usize {
        self.sections.len()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }

    /// Appends index and footer; returns the object and its sections.
    pub fn finish(mut self) -> (Bytes, Vec<Section>) {
        let index_position = self.buf.len() as u64;
        for s in &self.sections {
            self.buf.put_slice(s.topic.as_bytes());
            self.buf.put_i32(s.partition);
            self.buf.put_i64(s.base_offset);
            self.buf.put_i64(s.last_offset);
            self.buf.put_i64(s.max_timestamp);
            self.buf.put_u64(s.position);
            self.buf.put_u64(s.length);
            self.buf.put_u32(s.crc);
        }
        let index_crc = crc32c::crc32c(&self.buf[index_position as usize..]);
        self.buf.put_u64(index_position);
        self.buf.put_u32(self.sections.len() as u32);
        self.buf.put_u32(index_crc);
        self.buf.put_u16(VERSION);
        self.buf.put_slice(MAGIC);
        (self.buf.freeze(), self.sections)
    }
}

/// Reads the index of a complete object.
pub fn read_index(object: &[u8]) -> Result<Vec<Section>> {
    let corrupt = |what: &str| Error::CorruptMessage(format!("data object: {what}"));
    let footer_at = object
        .len()
        .checked_sub(FOOTER_LEN)
        .ok_or_else(|| corrupt("shorter than its footer"))?;
    let mut footer = &object[footer_at..];
    let index_position = footer.get_u64() as usize;
    let count = footer.get_u32() as usize;
    let index_crc = footer.get_u32();
    let version = footer.get_u16();
    if footer != MAGIC {
        return Err(corrupt("bad magic"));
    }
    if version != VERSION {
        return Err(corrupt(&format!("unknown format version {version}")));
    }
    let index = count
        .checked_mul(INDEX_ENTRY_LEN)
        .and_then(|len| object.get(index_position..index_position.checked_add(len)?))
        .filter(|index| index_position + index.len() == footer_at)
        .ok_or_else(|| corrupt("index out of bounds"))?;
    if crc32c::crc32c(index) != index_crc {
        return Err(corrupt("index CRC mismatch"));
    }
    let mut sections = Vec::with_capacity(count);
    let mut buf = index;
    for _ in 0..count {
        let topic = Uuid::from_slice(&buf[..16]).expect("16 bytes");
        buf.advance(16);
        sections.push(Section {
            topic,
            partition: buf.get_i32(),
            base_offset: buf.get_i64(),
            last_offset: buf.get_i64(),
            max_timestamp: buf.get_i64(),
            position: buf.get_u64(),
            length: buf.get_u64(),
            crc: buf.get_u32(),
        });
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(base: i64, count: i64, size: usize) -> SealedBatch {
        SealedBatch {
            base_offset: base,
            last_offset: base + count - 1,
            max_timestamp: base * 10,
            data: Bytes::from(vec![base as u8; size]),
        }
    }

    #[test]
    fn round_trip_with_sections_per_partition() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut builder = ObjectBuilder::with_capacity(0);
        builder.add_partition(a, 0, &[batch(0, 5, 100), batch(5, 5, 50)]);
        builder.add_partition(b, 3, &[batch(7, 1, 10)]);
        let (object, sections) = builder.finish();
        assert_eq!(read_index(&object).unwrap(), sections);
        assert_eq!(sections.len(), 2);
        assert_eq!((sections[0].base_offset, sections[0].last_offset), (0, 9));
        assert_eq!(sections[0].max_timestamp, 50);
        let second = &object[sections[1].position as usize..][..sections[1].length as usize];
        assert_eq!(second, &[7u8; 10][..]);
        assert_eq!(crc32c::crc32c(second), sections[1].crc);
    }

    #[test]
    fn large_partitions_are_cut_at_batch_boundaries() {
        let big = MAX_SECTION_BYTES / 2 + 1;
        let batches = [batch(0, 1, big), batch(1, 1, big), batch(2, 1, big)];
        let mut builder = ObjectBuilder::with_capacity(0);
        builder.add_partition(Uuid::new_v4(), 0, &batches);
        let (_, sections) = builder.finish();
        let ranges: Vec<_> = sections
            .iter()
            .map(|s| (s.base_offset, s.last_offset))
            .collect();
        assert_eq!(ranges, vec![(0, 0), (1, 1), (2, 2)]);
    }

    #[test]
    fn damaged_objects_are_rejected() {
        let mut builder = ObjectBuilder::with_capacity(0);
        builder.add_partition(Uuid::new_v4(), 0, &[batch(0, 1, 10)]);
        let (object, _) = builder.finish();
        let mut damaged = object.to_vec();
        damaged[12] ^= 1;
        assert!(read_index(&damaged).is_err());
        assert!(read_index(&object[5..]).is_err());
        assert!(read_index(b"short").is_err());
    }
}
