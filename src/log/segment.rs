//! The WAL segment file format, and how a sealed segment serves as a data
//! object as it is: in `local` durability each byte is written once, to
//! the WAL, and the uploader publishes sealed segments (a hard link in a
//! local directory, a PUT of the bytes as written on S3); merging later
//! turns their extents into per-partition sections.
//!
//! ```text
//! [entry]...      [len u32 LE][crc32c u32 LE][position u64][topic id 16][partition i32][record batch]
//! [seal mark]     len u32::MAX, 4 zero bytes: recovery stops reading entries here
//! [entry list]... per partition: (file offset u64, entry length u32) of each of its entries
//! [table]         per partition: topic 16, partition i32, list offset u64, entry count u32, list crc32c u32
//! [footer]        table offset u64, partition count u32, table crc32c u32, object id 16,
//!                 format version u16, magic "SILTSEGM"
//! ```
//! An entry's `len` and CRC cover everything after the CRC; its position is
//! where it lies in the stream of all segments. Integers after the entry
//! header are big-endian.
//!
//! An extent in a sealed segment ([`Extent::entry_list`]) spans its
//! partition's entries between other partitions' ones: a reader reads the
//! partition's entry list (checked against the extent's CRC), then just
//! those entries (each checked against its own), and hands out their
//! batches back to back, as a section of a data object holds them.

use std::collections::HashMap;
use std::ops::Range;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::meta::Extent;
use crate::protocol::batch::BatchHeader;
use crate::storage::Bucket;

/// `len` and CRC.
const ENTRY_HEADER: usize = 8;
/// Position, topic id and partition, before the batch.
const PAYLOAD_PREFIX: usize = 28;
const SEAL_MARK: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
const LIST_ITEM_LEN: usize = 8 + 4;
const TABLE_ROW_LEN: usize = 16 + 4 + 8 + 4 + 4;
const FOOTER_LEN: usize = 8 + 4 + 4 + 16 + 2 + 8;
const MAGIC: &[u8; 8] = b"SILTSEGM";
const VERSION: u16 = 1;

/// Appends one entry holding `batch` at WAL position `position`.
pub fn put_entry(buf: &mut BytesMut, position: u64, topic: Uuid, partition: i32, batch: &[u8]) {
    let payload_len = PAYLOAD_PREFIX + batch.len();
    let mut crc = crc32c::crc32c(&position.to_be_bytes());
    crc = crc32c::crc32c_append(crc, topic.as_bytes());
    crc = crc32c::crc32c_append(crc, &partition.to_be_bytes());
    crc = crc32c::crc32c_append(crc, batch);
    buf.reserve(ENTRY_HEADER + payload_len);
    buf.put_u32_le(payload_len as u32);
    buf.put_u32_le(crc);
    buf.put_u64(position);
    buf.put_slice(topic.as_bytes());
    buf.put_i32(partition);
    buf.put_slice(batch);
}

/// The bytes an entry holding a batch of `batch_len` bytes takes.
pub fn entry_len(batch_len: usize) -> usize {
    ENTRY_HEADER + PAYLOAD_PREFIX + batch_len
}

/// One entry read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub position: u64,
    pub topic: Uuid,
    pub partition: i32,
    /// Where the batch lies in the buffer parsed.
    pub batch: Range<usize>,
    /// The entry's length.
    pub len: usize,
}

/// What lies at the start of `data`.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Entry(Entry),
    /// The segment was sealed: its index follows.
    Sealed,
    /// A torn or corrupt entry, or the end of the data.
    End,
}

/// Parses the entry at the start of `data`.
pub fn parse_entry(data: &[u8]) -> Parsed {
    let Some(header) = data.get(..ENTRY_HEADER) else {
        return Parsed::End;
    };
    if header == SEAL_MARK {
        return Parsed::Sealed;
    }
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    let Some(body) = data.get(ENTRY_HEADER..ENTRY_HEADER + len) else {
        return Parsed::End;
    };
    if len < PAYLOAD_PREFIX || crc32c::crc32c(body) != crc {
        return Parsed::End;
    }
    Parsed::Entry(Entry {
        position: u64::from_be_bytes(body[..8].try_into().expect("8 bytes")),
        topic: Uuid::from_slice(&body[8..24]).expect("16 bytes"),
        partition: i32::from_be_bytes(body[24..28].try_into().expect("4 bytes")),
        batch: ENTRY_HEADER + PAYLOAD_PREFIX..ENTRY_HEADER + len,
        len: ENTRY_HEADER + len,
    })
}

/// Where one entry lies in its segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    pub topic: Uuid,
    pub partition: i32,
    pub offset: u64,
    pub len: u32,
}

/// A partition's entry list in a sealed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryList {
    /// Its bytes in the file.
    pub range: Range<u64>,
    pub crc: u32,
}

/// The index of a sealed segment: its object id and each partition's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentIndex {
    pub id: Uuid,
    pub lists: HashMap<(Uuid, i32), EntryList>,
}

/// The seal mark, entry lists, table and footer that seal a segment whose
/// entries (in file order) end at file offset `entries_end`.
pub fn seal(id: Uuid, entries_end: u64, entries: &[Located]) -> (Bytes, SegmentIndex) {
    let mut by_partition: Vec<((Uuid, i32), Vec<&Located>)> = Vec::new();
    let mut slot: HashMap<(Uuid, i32), usize> = HashMap::new();
    for entry in entries {
        let key = (entry.topic, entry.partition);
        let i = *slot.entry(key).or_insert_with(|| {
            by_partition.push((key, Vec::new()));
            by_partition.len() - 1
        });
        by_partition[i].1.push(entry);
    }
    let mut buf = BytesMut::with_capacity(
        SEAL_MARK.len()
            + entries.len() * LIST_ITEM_LEN
            + by_partition.len() * TABLE_ROW_LEN
            + FOOTER_LEN,
    );
    buf.put_slice(&SEAL_MARK);
    let mut lists = HashMap::new();
    let mut table = BytesMut::new();
    for ((topic, partition), located) in &by_partition {
        let start = buf.len();
        for entry in located {
            buf.put_u64(entry.offset);
            buf.put_u32(entry.len);
        }
        let crc = crc32c::crc32c(&buf[start..]);
        let range = entries_end + start as u64..entries_end + buf.len() as u64;
        table.put_slice(topic.as_bytes());
        table.put_i32(*partition);
        table.put_u64(range.start);
        table.put_u32(located.len() as u32);
        table.put_u32(crc);
        lists.insert((*topic, *partition), EntryList { range, crc });
    }
    let table_offset = entries_end + buf.len() as u64;
    let table_crc = crc32c::crc32c(&table);
    buf.put_slice(&table);
    buf.put_u64(table_offset);
    buf.put_u32(by_partition.len() as u32);
    buf.put_u32(table_crc);
    buf.put_slice(id.as_bytes());
    buf.put_u16(VERSION);
    buf.put_slice(MAGIC);
    (buf.freeze(), SegmentIndex { id, lists })
}

/// Reads the index of a sealed segment file's bytes.
pub fn read_index(file: &[u8]) -> Result<SegmentIndex> {
    let corrupt = |what: &str| Error::CorruptMessage(format!("WAL segment: {what}"));
    let footer_at = file
        .len()
        .checked_sub(FOOTER_LEN)
        .ok_or_else(|| corrupt("shorter than its footer"))?;
    let mut footer = &file[footer_at..];
    let table_offset = footer.get_u64() as usize;
    let count = footer.get_u32() as usize;
    let table_crc = footer.get_u32();
    let id = Uuid::from_slice(&footer[..16]).expect("16 bytes");
    footer.advance(16);
    let version = footer.get_u16();
    if footer != MAGIC {
        return Err(corrupt("bad magic"));
    }
    if version != VERSION {
        return Err(corrupt(&format!("unknown format version {version}")));
    }
    let mut table = count
        .checked_mul(TABLE_ROW_LEN)
        .and_then(|len| file.get(table_offset..table_offset.checked_add(len)?))
        .filter(|table| table_offset + table.len() == footer_at)
        .ok_or_else(|| corrupt("index out of bounds"))?;
    if crc32c::crc32c(table) != table_crc {
        return Err(corrupt("index CRC mismatch"));
    }
    let mut lists = HashMap::with_capacity(count);
    for _ in 0..count {
        let topic = Uuid::from_slice(&table[..16]).expect("16 bytes");
        table.advance(16);
        let partition = table.get_i32();
        let start = table.get_u64();
        let entries = u64::from(table.get_u32());
        let crc = table.get_u32();
        let range = start..start + entries * LIST_ITEM_LEN as u64;
        lists.insert((topic, partition), EntryList { range, crc });
    }
    Ok(SegmentIndex { id, lists })
}

/// The batches of an extent in a sealed segment, back to back: its
/// partition's entries within the extent's byte range.
pub async fn read_batches(bucket: &Bucket, extent: &Extent, list: &Range<u64>) -> Result<Bytes> {
    let corrupt = |what: &str| {
        Error::CorruptMessage(format!(
            "data object {}: extent at {}: {what}",
            extent.object, extent.position
        ))
    };
    let items = bucket.read_data_range(extent.object, list.clone()).await?;
    if extent.crc.is_some_and(|crc| crc32c::crc32c(&items) != crc) {
        return Err(corrupt("entry list CRC mismatch"));
    }
    let span = extent.position..extent.position + extent.length;
    let ranges: Vec<Range<u64>> = items
        .chunks_exact(LIST_ITEM_LEN)
        .map(|mut item| {
            let offset = item.get_u64();
            offset..offset + u64::from(item.get_u32())
        })
        .filter(|r| span.start <= r.start && r.end <= span.end)
        .collect();
    let entries = bucket.read_data_ranges(extent.object, &ranges).await?;
    let mut batches = BytesMut::with_capacity(extent.length as usize);
    let mut next_offset = extent.base_offset;
    for entry in &entries {
        let Parsed::Entry(parsed) = parse_entry(entry) else {
            return Err(corrupt("damaged entry"));
        };
        let batch = &entry[parsed.batch];
        let header = BatchHeader::parse(batch).map_err(|_| corrupt("damaged batch"))?;
        if header.base_offset != next_offset {
            return Err(corrupt("entries do not continue the extent's offsets"));
        }
        next_offset = header.last_offset() + 1;
        batches.put_slice(batch);
    }
    if next_offset != extent.last_offset + 1 {
        return Err(corrupt("entries end short of the extent"));
    }
    Ok(batches.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_damage_ends_them() {
        let topic = Uuid::new_v4();
        let mut buf = BytesMut::new();
        put_entry(&mut buf, 100, topic, 3, b"batch");
        assert_eq!(buf.len(), entry_len(5));
        let Parsed::Entry(entry) = parse_entry(&buf) else {
            panic!("an entry")
        };
        assert_eq!(
            (entry.position, entry.topic, entry.partition),
            (100, topic, 3)
        );
        assert_eq!(&buf[entry.batch], b"batch");
        assert_eq!(parse_entry(&buf[..buf.len() - 1]), Parsed::End);
        let mut damaged = buf.to_vec();
        damaged[20] ^= 1;
        assert_eq!(parse_entry(&damaged), Parsed::End);
        assert_eq!(parse_entry(&SEAL_MARK), Parsed::Sealed);
    }

    #[test]
    fn the_index_lists_each_partitions_entries() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let at = |topic, partition, offset, len| Located {
            topic,
            partition,
            offset,
            len,
        };
        let entries = [at(a, 0, 0, 50), at(b, 1, 50, 70), at(a, 0, 120, 30)];
        let id = Uuid::now_v7();
        let (tail, index) = seal(id, 150, &entries);
        let mut file = vec![0u8; 150];
        file.extend_from_slice(&tail);
        assert_eq!(read_index(&file).unwrap(), index);
        assert_eq!(index.id, id);
        let list = &index.lists[&(a, 0)];
        let items = &file[list.range.start as usize..list.range.end as usize];
        assert_eq!(crc32c::crc32c(items), list.crc);
        let mut items = items;
        assert_eq!((items.get_u64(), items.get_u32()), (0, 50));
        assert_eq!((items.get_u64(), items.get_u32()), (120, 30));
        file[160] ^= 1;
        let table_damaged = read_index(&file);
        assert!(table_damaged.is_ok(), "lists are checked by their readers");
        let in_table = file.len() - FOOTER_LEN - 1;
        file[in_table] ^= 1;
        assert!(read_index(&file).is_err());
    }
}
