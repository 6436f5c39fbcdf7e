//! The broker's single write-ahead log: all partitions interleaved, written
//! by one thread that group-commits (one write and one `fdatasync` for
//! everything that arrived meanwhile).
//!
//! Positions are logical byte offsets in the stream of all segments. A
//! segment file is named by the position of its first byte. An entry is
//! `[len u32][crc32c u32][position u64][topic id 16][partition i32][record batch]`,
//! with `len` and the CRC over everything after the CRC. Recovery reads
//! every segment and stops at the first torn or corrupt entry, or one whose
//! position is not where it lies. Segments are released (`trim`) only once
//! every entry in them is committed to the object store.
//!
//! Released segments are recycled: renamed to the next segment's name and
//! overwritten in place. Overwriting allocated blocks lets `fdatasync`
//! skip the file system journal, which keeps group commits short while
//! uploads write to the same disk; the position in each entry tells stale
//! recycled data from new.

use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::{Error, Result};

const ENTRY_HEADER: usize = 8;
/// Group commits slower than this are logged (at debug level).
const SLOW_SYNC: std::time::Duration = std::time::Duration::from_millis(5);
const PAYLOAD_PREFIX: usize = 28;
/// Released segments kept for recycling.
const MAX_SPARES: usize = 2;
const SPARE_SUFFIX: &str = ".spare";

/// A batch read back from the WAL during recovery.
#[derive(Debug, Clone)]
pub struct WalRecord {
    /// Where the entry lies in the WAL.
    pub position: Range<u64>,
    pub topic: Uuid,
    pub partition: i32,
    pub batch: Bytes,
}

/// Handle to the WAL; appends are synchronous and cheap, durability is
/// observed through [`Wal::subscribe`].
pub struct Wal {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    dir: PathBuf,
    segment_bytes: u64,
    pending: Mutex<Pending>,
    wakeup: Condvar,
    /// Position up to which everything is fsynced.
    durable: watch::Sender<u64>,
    failure: Mutex<Option<String>>,
    /// Segment start positions, oldest first; the last is being written.
    segments: Mutex<Vec<u64>>,
    /// Released segment files waiting to be recycled.
    spares: Mutex<Vec<PathBuf>>,
}

struct Pending {
    buf: BytesMut,
    /// Position after the last appended entry.
    end: u64,
    closing: bool,
}

impl Wal {
    /// Opens the WAL in `dir`, returning it with every intact entry, in order.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<(Wal, Vec<WalRecord>)> {
        std::fs::create_dir_all(dir)?;
        let (segments, records, end) = recover(dir)?;
        let active = match segments.last() {
            Some(&start) => OpenOptions::new()
                .write(true)
                .open(segment_path(dir, start))?,
            None => create_segment(dir, 0)?,
        };
        let active_len = end - segments.last().copied().unwrap_or(0);
        let spares = std::fs::read_dir(dir)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.to_string_lossy().ends_with(SPARE_SUFFIX))
            .collect();
        let segments = if segments.is_empty() {
            vec![0]
        } else {
            segments
        };
        let (durable, _) = watch::channel(end);
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            segment_bytes,
            pending: Mutex::new(Pending {
                buf: BytesMut::new(),
                end,
                closing: false,
            }),
            wakeup: Condvar::new(),
            durable,
            failure: Mutex::new(None),
            segments: Mutex::new(segments),
            spares: Mutex::new(spares),
        });
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("silt-wal-writer".into())
            .spawn(move || writer_shared.run_writer(active, active_len))?;
        Ok((
            Wal {
                shared,
                writer: Mutex::new(Some(writer)),
            },
            records,
        ))
    }

    /// Queues a batch; returns where its entry lies, durable once
    /// [`Wal::durable`] reaches the end.
    pub fn append(&self, topic: Uuid, partition: i32, batch: &[u8]) -> Result<Range<u64>> {
        if let Some(failure) = self.failure() {
            return Err(Error::WalFailed(failure));
        }
        let payload_len = PAYLOAD_PREFIX + batch.len();
        let mut pending = self.shared.pending.lock().expect("WAL lock poisoned");
        if pending.closing {
            return Err(Error::ShuttingDown);
        }
        let position = pending.end;
        let mut crc = crc32c::crc32c(&position.to_be_bytes());
        crc = crc32c::crc32c_append(crc, topic.as_bytes());
        crc = crc32c::crc32c_append(crc, &partition.to_be_bytes());
        crc = crc32c::crc32c_append(crc, batch);
        pending.buf.reserve(ENTRY_HEADER + payload_len);
        pending.buf.put_u32_le(payload_len as u32);
        pending.buf.put_u32_le(crc);
        pending.buf.put_u64(position);
        pending.buf.put_slice(topic.as_bytes());
        pending.buf.put_i32(partition);
        pending.buf.put_slice(batch);
        let start = pending.end;
        pending.end += (ENTRY_HEADER + payload_len) as u64;
        let end = pending.end;
        drop(pending);
        self.shared.wakeup.notify_one();
        Ok(start..end)
    }

    /// Position up to which everything is fsynced.
    pub fn durable(&self) -> u64 {
        *self.shared.durable.borrow()
    }

    /// Position after the last appended entry (durable or not).
    pub fn end(&self) -> u64 {
        self.shared.pending.lock().expect("WAL lock poisoned").end
    }

    /// Bytes from the oldest kept segment to the end.
    pub fn bytes_kept(&self) -> u64 {
        let first = self.shared.segments.lock().expect("WAL lock poisoned")[0];
        self.end() - first
    }

    /// A receiver that changes whenever more of the WAL becomes durable.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.durable.subscribe()
    }

    /// Wakes every [`Wal::subscribe`] receiver, though nothing new is durable.
    pub fn wake_waiters(&self) {
        self.shared.durable.send_modify(|_| {});
    }

    /// Why the WAL stopped accepting writes, if it did.
    pub fn failure(&self) -> Option<String> {
        self.shared
            .failure
            .lock()
            .expect("WAL lock poisoned")
            .clone()
    }

    /// Releases segments holding only entries before `position`: up to
    /// `MAX_SPARES` are kept for recycling, the rest deleted.
    pub fn trim(&self, position: u64) -> Result<()> {
        let doomed: Vec<u64> = {
            let mut segments = self.shared.segments.lock().expect("WAL lock poisoned");
            // Segment i ends where segment i+1 starts; the last one is active.
            let keep_from = segments
                .windows(2)
                .take_while(|pair| pair[1] <= position)
                .count();
            segments.drain(..keep_from).collect()
        };
        for start in doomed {
            let path = segment_path(&self.shared.dir, start);
            let mut spares = self.shared.spares.lock().expect("WAL lock poisoned");
            if spares.len() < MAX_SPARES {
                // Losing this rename in a crash only brings back a segment
                // whose entries are all committed: replay skips them.
                let spare = self.shared.dir.join(format!("{start:020}{SPARE_SUFFIX}"));
                std::fs::rename(&path, &spare)?;
                spares.push(spare);
            } else {
                std::fs::remove_file(path)?;
            }
        }
        Ok(())
    }

    /// Writes what is queued, stops the writer thread and refuses appends.
    pub fn close(&self) {
        self.shared
            .pending
            .lock()
            .expect("WAL lock poisoned")
            .closing = true;
        self.shared.wakeup.notify_one();
        if let Some(handle) = self.writer.lock().expect("WAL lock poisoned").take()
            && handle.join().is_err()
        {
            tracing::error!("the WAL writer thread panicked");
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    /// The writer thread: take everything queued, write it, fsync, publish.
    fn run_writer(&self, mut file: File, mut written: u64) {
        loop {
            let (buf, end) = {
                let mut pending = self.pending.lock().expect("WAL lock poisoned");
                while pending.buf.is_empty() && !pending.closing {
                    pending = self.wakeup.wait(pending).expect("WAL lock poisoned");
                }
                if pending.buf.is_empty() {
                    return;
                }
                (pending.buf.split().freeze(), pending.end)
            };
            let start = end - buf.len() as u64;
            let began = std::time::Instant::now();
            let outcome = self
                .roll_if_full(&mut file, &mut written, start)
                .and_then(|()| file.write_all_at(&buf, written))
                .and_then(|()| file.sync_data());
            if let Err(e) = outcome {
                tracing::error!(error = %e, "WAL write failed; the broker stops accepting writes");
                *self.failure.lock().expect("WAL lock poisoned") = Some(e.to_string());
                self.durable.send_modify(|_| {});
                return;
            }
            written += buf.len() as u64;
            self.durable.send_replace(end);
            let took = began.elapsed();
            metrics::counter!("silt_wal_fsyncs_total").increment(1);
            metrics::counter!("silt_wal_bytes_written_total").increment(buf.len() as u64);
            metrics::histogram!("silt_wal_fsync_seconds").record(took.as_secs_f64());
            if took > SLOW_SYNC {
                tracing::debug!(
                    bytes = buf.len(),
                    ms = took.as_millis() as u64,
                    "slow WAL write"
                );
            }
        }
    }

    /// Starts a new segment at `start` once the active one is full,
    /// recycling a released segment file when there is one.
    fn roll_if_full(&self, file: &mut File, written: &mut u64, start: u64) -> std::io::Result<()> {
        if *written < self.segment_bytes {
            return Ok(());
        }
        let spare = self.spares.lock().expect("WAL lock poisoned").pop();
        *file = match spare {
            Some(spare) => {
                let path = segment_path(&self.dir, start);
                std::fs::rename(&spare, &path)?;
                // The new name must be durable before data is written under it.
                File::open(&self.dir)?.sync_all()?;
                OpenOptions::new().write(true).open(path)?
            }
            None => create_segment(&self.dir, start)?,
        };
        *written = 0;
        self.segments.lock().expect("WAL lock poisoned").push(start);
        Ok(())
    }
}

fn segment_path(dir: &Path, start: u64) -> PathBuf {
    dir.join(format!("{start:020}.wal"))
}

/// Creates a segment file and makes its directory entry durable.
fn create_segment(dir: &Path, start: u64) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(segment_path(dir, start))?;
    File::open(dir)?.sync_all()?;
    Ok(file)
}

/// Reads all segments. A segment is complete when its entries reach the
/// next segment's start (a recycled file may hold old data after that);
/// the first segment that falls short ends the WAL: it is truncated there
/// and any later segment deleted. Returns the segment starts, the records
/// and the end.
fn recover(dir: &Path) -> Result<(Vec<u64>, Vec<WalRecord>, u64)> {
    let mut starts: Vec<u64> = std::fs::read_dir(dir)?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".wal")?.parse().ok()
        })
        .collect();
    starts.sort_unstable();
    let mut records = Vec::new();
    let mut end = starts.first().copied().unwrap_or(0);
    for (i, &start) in starts.iter().enumerate() {
        if start != end {
            tracing::warn!(
                expected = end,
                found = start,
                "WAL segments are not contiguous"
            );
        }
        let path = segment_path(dir, start);
        let data = Bytes::from(std::fs::read(&path)?);
        let valid = parse_segment(&data, start, &mut records);
        end = start + valid as u64;
        let next = starts.get(i + 1).copied();
        if next.is_some_and(|next| end >= next) || valid == data.len() {
            continue;
        }
        if next.is_some() {
            tracing::warn!(
                segment = %path.display(),
                later_segments = starts.len() - i - 1,
                "corrupt WAL entry before the last segment: the WAL ends here"
            );
        } else {
            tracing::info!(
                segment = %path.display(),
                dropped_bytes = data.len() - valid,
                "the WAL ends here: dropping a torn write or a recycled segment's old data"
            );
        }
        let file = OpenOptions::new().write(true).open(&path)?;
        file.set_len(valid as u64)?;
        file.sync_all()?;
        for &later in &starts[i + 1..] {
            std::fs::remove_file(segment_path(dir, later))?;
        }
        starts.truncate(i + 1);
        break;
    }
    Ok((starts, records, end))
}

/// Parses entries from `data` (a segment starting at `start`); returns the
/// length of the intact prefix.
fn parse_segment(data: &Bytes, start: u64, out: &mut Vec<WalRecord>) -> usize {
    let mut pos = 0;
    while let Some(header) = data.get(pos..pos + ENTRY_HEADER) {
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let body_start = pos + ENTRY_HEADER;
        let Some(body) = data.get(body_start..body_start + len) else {
            break;
        };
        if len < PAYLOAD_PREFIX || crc32c::crc32c(body) != crc {
            break;
        }
        let entry_start = start + pos as u64;
        let position = u64::from_be_bytes(body[..8].try_into().expect("8 bytes"));
        if position != entry_start {
            // Intact, but left over from the segment's previous life.
            break;
        }
        let topic = Uuid::from_slice(&body[8..24]).expect("16 bytes");
        let partition = i32::from_be_bytes(body[24..28].try_into().expect("4 bytes"));
        pos = body_start + len;
        out.push(WalRecord {
            position: entry_start..start + pos as u64,
            topic,
            partition,
            batch: data.slice(body_start + PAYLOAD_PREFIX..pos),
        });
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn wait_durable(wal: &Wal, position: u64) {
        let mut rx = wal.subscribe();
        rx.wait_for(|d| *d >= position).await.unwrap();
    }

    #[tokio::test]
    async fn appends_become_durable_and_are_recovered_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let topic = Uuid::new_v4();
        let (wal, records) = Wal::open(dir.path(), 1 << 20).unwrap();
        assert!(records.is_empty());
        let mut last = 0;
        for i in 0..100u8 {
            last = wal.append(topic, i32::from(i % 3), &[i; 50]).unwrap().end;
        }
        wait_durable(&wal, last).await;
        drop(wal);
        let (wal, records) = Wal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(records.len(), 100);
        assert_eq!(records[7].partition, 1);
        assert_eq!(&records[7].batch[..], &[7u8; 50][..]);
        assert_eq!(records.last().unwrap().position.end, last);
        assert_eq!(wal.durable(), last);
    }

    #[tokio::test]
    async fn torn_tail_is_truncated_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let topic = Uuid::new_v4();
        let (wal, _) = Wal::open(dir.path(), 1 << 20).unwrap();
        let first = wal.append(topic, 0, b"first").unwrap().end;
        let second = wal.append(topic, 0, b"second").unwrap().end;
        wait_durable(&wal, second).await;
        drop(wal);
        let path = segment_path(dir.path(), 0);
        let len = std::fs::metadata(&path).unwrap().len();
        // Cut the second entry in half, as a crash mid-write would.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (wal, records) = Wal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(&records[0].batch[..], b"first");
        assert_eq!(wal.end(), first);
        let third = wal.append(topic, 0, b"third").unwrap().end;
        wait_durable(&wal, third).await;
        drop(wal);
        let (_, records) = Wal::open(dir.path(), 1 << 20).unwrap();
        let batches: Vec<&[u8]> = records.iter().map(|r| &r.batch[..]).collect();
        assert_eq!(batches, vec![&b"first"[..], b"third"]);
    }

    #[tokio::test]
    async fn corrupt_entry_stops_recovery_there() {
        let dir = tempfile::tempdir().unwrap();
        let topic = Uuid::new_v4();
        let (wal, _) = Wal::open(dir.path(), 1 << 20).unwrap();
        wal.append(topic, 0, b"good").unwrap();
        let end = wal.append(topic, 0, b"flipped").unwrap().end;
        wait_durable(&wal, end).await;
        drop(wal);
        let path = segment_path(dir.path(), 0);
        let mut data = std::fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(&path, data).unwrap();
        let (_, records) = Wal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(&records[0].batch[..], b"good");
    }

    #[tokio::test]
    async fn segments_roll_and_trim_keeps_unfinished_entries() {
        let dir = tempfile::tempdir().unwrap();
        let topic = Uuid::new_v4();
        let (wal, _) = Wal::open(dir.path(), 100).unwrap();
        let mut ends = Vec::new();
        for i in 0..10u8 {
            let end = wal.append(topic, 0, &[i; 80]).unwrap().end;
            wait_durable(&wal, end).await;
            ends.push(end);
        }
        assert_eq!(count_files(dir.path(), ".wal"), 10);
        // Entries up to the fifth are committed: segments before it go,
        // two of them kept for recycling.
        wal.trim(ends[4]).unwrap();
        assert_eq!(count_files(dir.path(), ".wal"), 5);
        assert_eq!(count_files(dir.path(), SPARE_SUFFIX), 2);
        drop(wal);
        let (_, records) = Wal::open(dir.path(), 100).unwrap();
        assert_eq!(records.len(), 5);
        assert_eq!(records[0].batch[0], 5);
    }

    fn count_files(dir: &Path, suffix: &str) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(suffix)
            })
            .count()
    }

    #[tokio::test]
    async fn recycled_segments_never_replay_their_old_entries() {
        let dir = tempfile::tempdir().unwrap();
        let topic = Uuid::new_v4();
        let (wal, _) = Wal::open(dir.path(), 300).unwrap();
        // Fill three segments with large entries, then release the first two.
        let mut end = 0;
        for i in 0..9u8 {
            end = wal.append(topic, 0, &[i; 200]).unwrap().end;
            wait_durable(&wal, end).await;
        }
        wal.trim(end).unwrap();
        assert_eq!(count_files(dir.path(), SPARE_SUFFIX), 2);
        // Small entries now land in recycled files over the old large ones.
        let mut small_end = 0;
        for i in 0..30u8 {
            small_end = wal.append(topic, 1, &[100 + i; 10]).unwrap().end;
            wait_durable(&wal, small_end).await;
        }
        assert!(
            count_files(dir.path(), SPARE_SUFFIX) < 2,
            "a spare was reused"
        );
        drop(wal);
        let (wal, records) = Wal::open(dir.path(), 300).unwrap();
        let small: Vec<u8> = records
            .iter()
            .filter(|r| r.partition == 1)
            .map(|r| r.batch[0])
            .collect();
        assert_eq!(small, (100..130).collect::<Vec<u8>>());
        assert!(
            records
                .iter()
                .all(|r| r.batch.len() == 10 || r.position.end <= end)
        );
        assert_eq!(wal.end(), small_end);
    }
}
