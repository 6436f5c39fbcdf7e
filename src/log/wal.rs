//! The broker's single write-ahead log: all partitions interleaved, written
//! by one thread that group-commits (one write for everything that arrived
//! meanwhile) and synced by another (one `fdatasync` for every write done
//! meanwhile), so a commit's write overlaps the previous one's sync.
//!
//! Positions are logical byte offsets in the stream of all segments. A
//! segment file is named by the position of its first byte; its format is
//! in [`super::segment`]. The writer seals the active segment (appends its
//! index) once it reaches the segment size, or when asked
//! ([`Wal::seal_active`]), and hands it over ([`Wal::sealed_segments`]): a
//! sealed segment becomes a data object as it is. Recovery reads every
//! segment up to its seal, or to the first torn or corrupt entry (or one
//! whose position is not where it lies), and seals what it found unsealed.
//! Segments are deleted (`trim`) only once every entry in them is
//! committed to the object store.

use std::fs::OpenOptions;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use super::segment::{self, Located, Parsed, SegmentIndex};
use super::segment_file::{SegmentFile, SyncHandle};
use crate::error::{Error, Result};

/// Group commits slower than this are logged (at debug level).
const SLOW_SYNC: std::time::Duration = std::time::Duration::from_millis(5);

/// A batch read back from the WAL during recovery.
#[derive(Debug, Clone)]
pub struct WalRecord {
    /// Where the entry lies in the WAL.
    pub position: Range<u64>,
    pub topic: Uuid,
    pub partition: i32,
    pub batch: Bytes,
}

/// A segment the writer sealed: ready to become the data object
/// `index.id`.
#[derive(Debug)]
pub struct SealedSegment {
    pub index: SegmentIndex,
    /// The WAL positions of its entries.
    pub positions: Range<u64>,
    pub path: PathBuf,
    /// The file's bytes as written (empty for a segment found at start).
    pub chunks: Vec<Bytes>,
}

/// Handle to the WAL; appends are synchronous and cheap, durability is
/// observed through [`Wal::subscribe`].
pub struct Wal {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    sealed: tokio::sync::Mutex<mpsc::UnboundedReceiver<SealedSegment>>,
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
    sealed: mpsc::UnboundedSender<SealedSegment>,
}

struct Pending {
    buf: BytesMut,
    /// The entries in `buf` (`offset`: their WAL position).
    entries: Vec<Located>,
    /// Position after the last appended entry.
    end: u64,
    seal_wanted: bool,
    closing: bool,
}

/// What the writer hands the syncer, in order.
enum Job {
    /// A write waiting for its sync.
    Written {
        file: SyncHandle,
        /// The WAL position durable once synced.
        end: u64,
        bytes: usize,
    },
    /// A full segment to seal (its index appended and synced) and hand
    /// over.
    Seal(Box<Sealing>),
}

struct Sealing {
    file: SegmentFile,
    tail: Bytes,
    segment: SealedSegment,
}

/// The segment being written.
struct Active {
    file: SegmentFile,
    start: u64,
    entries: Vec<Located>,
    chunks: Vec<Bytes>,
}

impl Wal {
    /// Opens the WAL in `dir` (segments sealed past `segment_bytes`),
    /// returning it with every intact entry, in order. The segments found
    /// are sealed and handed over first.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<(Wal, Vec<WalRecord>)> {
        std::fs::create_dir_all(dir)?;
        let Recovered {
            starts: mut segments,
            records,
            sealed,
            end,
        } = recover(dir)?;
        segments.push(end);
        let active = SegmentFile::create(&segment_path(dir, end))?;
        let (durable, _) = watch::channel(end);
        let (sender, receiver) = mpsc::unbounded_channel();
        for segment in sealed {
            sender.send(segment).expect("the receiver is here");
        }
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            segment_bytes,
            pending: Mutex::new(Pending {
                buf: BytesMut::new(),
                entries: Vec::new(),
                end,
                seal_wanted: false,
                closing: false,
            }),
            wakeup: Condvar::new(),
            durable,
            failure: Mutex::new(None),
            segments: Mutex::new(segments),
            sealed: sender,
        });
        let writer_shared = shared.clone();
        let active = Active {
            file: active,
            start: end,
            entries: Vec::new(),
            chunks: Vec::new(),
        };
        let writer = std::thread::Builder::new()
            .name("silt-wal-writer".into())
            .spawn(move || writer_shared.run_writer(active))?;
        Ok((
            Wal {
                shared,
                writer: Mutex::new(Some(writer)),
                sealed: tokio::sync::Mutex::new(receiver),
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
        let mut pending = self.shared.pending.lock().expect("WAL lock poisoned");
        if pending.closing {
            return Err(Error::ShuttingDown);
        }
        let start = pending.end;
        segment::put_entry(&mut pending.buf, start, topic, partition, batch);
        let len = segment::entry_len(batch.len());
        pending.entries.push(Located {
            topic,
            partition,
            offset: start,
            len: len as u32,
        });
        pending.end += len as u64;
        let end = pending.end;
        drop(pending);
        self.shared.wakeup.notify_one();
        Ok(start..end)
    }

    /// Asks the writer to seal the active segment once what is queued is
    /// written; whether it holds anything to seal (if not, every entry
    /// appended so far is in a segment [`Wal::sealed_segments`] hands over,
    /// or is about to).
    pub fn seal_active(&self) -> bool {
        let active_start = *self
            .shared
            .segments
            .lock()
            .expect("WAL lock poisoned")
            .last()
            .expect("there is an active segment");
        let mut pending = self.shared.pending.lock().expect("WAL lock poisoned");
        if pending.end == active_start {
            return false;
        }
        pending.seal_wanted = true;
        drop(pending);
        self.shared.wakeup.notify_one();
        true
    }

    /// The segments sealed since the WAL opened (those found at start
    /// first), in order.
    pub fn sealed_segments(&self) -> &tokio::sync::Mutex<mpsc::UnboundedReceiver<SealedSegment>> {
        &self.sealed
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
        self.end() - self.kept_from()
    }

    /// Where the oldest kept segment starts: everything before it was
    /// committed and released.
    pub fn kept_from(&self) -> u64 {
        self.shared.segments.lock().expect("WAL lock poisoned")[0]
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

    /// Deletes the sealed segments holding only entries before `position`
    /// (a published segment lives on as its data object).
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
            std::fs::remove_file(segment_path(&self.shared.dir, start))?;
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
    /// The writer thread: take everything queued and write it, for the
    /// syncer thread to make durable while the next is written; seal the
    /// segment when it is full or sealing is wanted.
    fn run_writer(&self, active: Active) {
        let (to_syncer, syncs) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            let syncer = std::thread::Builder::new()
                .name("silt-wal-syncer".into())
                .spawn_scoped(scope, || self.run_syncer(syncs));
            if let Err(e) = syncer {
                self.fail(&e);
                return;
            }
            self.write_queued(active, to_syncer);
        });
    }

    fn write_queued(&self, mut active: Active, to_syncer: std::sync::mpsc::Sender<Job>) {
        loop {
            let (buf, entries, end, seal_wanted) = {
                let mut pending = self.pending.lock().expect("WAL lock poisoned");
                while pending.buf.is_empty() && !pending.seal_wanted && !pending.closing {
                    pending = self.wakeup.wait(pending).expect("WAL lock poisoned");
                }
                if pending.buf.is_empty() && pending.closing {
                    return;
                }
                let seal_wanted = std::mem::take(&mut pending.seal_wanted);
                let entries = std::mem::take(&mut pending.entries);
                (
                    pending.buf.split().freeze(),
                    entries,
                    pending.end,
                    seal_wanted,
                )
            };
            let outcome = self
                .write(&mut active, buf, entries, end, &to_syncer)
                .and_then(|()| {
                    let written = active.file.len();
                    if written > 0 && (seal_wanted || written >= self.segment_bytes) {
                        self.seal(&mut active, &to_syncer)
                    } else {
                        Ok(())
                    }
                });
            if let Err(e) = outcome {
                self.fail(&e);
                return;
            }
        }
    }

    /// Stops the WAL after a failed write or sync: appends are refused and
    /// those waiting for durability are told.
    fn fail(&self, e: &std::io::Error) {
        tracing::error!(error = %e, "WAL write failed; the broker stops accepting writes");
        *self.failure.lock().expect("WAL lock poisoned") = Some(e.to_string());
        self.durable.send_modify(|_| {});
    }

    /// Writes `buf` (the entries up to `end`) and hands it to the syncer.
    fn write(
        &self,
        active: &mut Active,
        buf: Bytes,
        entries: Vec<Located>,
        end: u64,
        to_syncer: &std::sync::mpsc::Sender<Job>,
    ) -> std::io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        active.file.append(&buf)?;
        active.entries.extend(entries.into_iter().map(|e| Located {
            offset: e.offset - active.start,
            ..e
        }));
        let written = Job::Written {
            file: active.file.handle(),
            end,
            bytes: buf.len(),
        };
        active.chunks.push(buf);
        to_syncer
            .send(written)
            .map_err(|_| std::io::Error::other("the WAL syncer stopped"))
    }

    /// The syncer thread: syncs what the writer wrote (all that is
    /// waiting at once) and publishes the new durable position, while the
    /// writer writes what arrived meanwhile; seals full segments.
    fn run_syncer(&self, jobs: std::sync::mpsc::Receiver<Job>) {
        while let Ok(first) = jobs.recv() {
            let mut writes = Vec::new();
            for job in std::iter::once(first).chain(jobs.try_iter()) {
                let outcome = match job {
                    Job::Written { file, end, bytes } => {
                        writes.push((file, end, bytes));
                        Ok(())
                    }
                    Job::Seal(sealing) => self
                        .sync_writes(&mut writes)
                        .and_then(|()| self.seal_segment(*sealing)),
                };
                if let Err(e) = outcome {
                    self.fail(&e);
                    return;
                }
            }
            if let Err(e) = self.sync_writes(&mut writes) {
                self.fail(&e);
                return;
            }
        }
    }

    /// Syncs `writes` (each file once) and publishes the durable position
    /// after the last.
    fn sync_writes(&self, writes: &mut Vec<(SyncHandle, u64, usize)>) -> std::io::Result<()> {
        let Some(&(_, end, _)) = writes.last() else {
            return Ok(());
        };
        let began = std::time::Instant::now();
        let mut synced: Option<&SyncHandle> = None;
        for (file, _, _) in writes.iter() {
            if synced.is_some_and(|done| done.same_file(file)) {
                continue;
            }
            file.sync()?;
            synced = Some(file);
        }
        self.durable.send_replace(end);
        let took = began.elapsed();
        let bytes: usize = writes.iter().map(|(_, _, bytes)| bytes).sum();
        writes.clear();
        metrics::counter!("silt_wal_fsyncs_total").increment(1);
        metrics::counter!("silt_wal_bytes_written_total").increment(bytes as u64);
        metrics::histogram!("silt_wal_fsync_seconds").record(took.as_secs_f64());
        if took > SLOW_SYNC {
            tracing::debug!(bytes, ms = took.as_millis() as u64, "slow WAL sync");
        }
        Ok(())
    }

    /// Appends a full segment's index, syncs it and hands it over.
    fn seal_segment(&self, sealing: Sealing) -> std::io::Result<()> {
        let Sealing {
            mut file,
            tail,
            segment,
        } = sealing;
        file.finish(&tail)?;
        crate::failpoint::hit("wal.after_seal");
        // Nobody to hand it to only while the broker stops: the next start
        // finds it.
        let _ = self.sealed.send(segment);
        Ok(())
    }

    /// Starts the next segment and has the syncer seal the full one (its
    /// index appended and synced) and hand it over, so the next commits'
    /// writes need not wait for that.
    fn seal(
        &self,
        active: &mut Active,
        to_syncer: &std::sync::mpsc::Sender<Job>,
    ) -> std::io::Result<()> {
        let written = active.file.len();
        let (tail, index) = segment::seal(Uuid::now_v7(), written, &active.entries);
        let end = active.start + written;
        let next = Active {
            file: SegmentFile::create(&segment_path(&self.dir, end))?,
            start: end,
            entries: Vec::new(),
            chunks: Vec::new(),
        };
        self.segments.lock().expect("WAL lock poisoned").push(end);
        let full = std::mem::replace(active, next);
        let mut chunks = full.chunks;
        chunks.push(tail.clone());
        let segment = SealedSegment {
            index,
            positions: full.start..end,
            path: segment_path(&self.dir, full.start),
            chunks,
        };
        to_syncer
            .send(Job::Seal(Box::new(Sealing {
                file: full.file,
                tail,
                segment,
            })))
            .map_err(|_| std::io::Error::other("the WAL syncer stopped"))
    }
}

fn segment_path(dir: &Path, start: u64) -> PathBuf {
    dir.join(format!("{start:020}.wal"))
}

/// What recovery found in a WAL directory.
struct Recovered {
    /// Segment start positions, oldest first.
    starts: Vec<u64>,
    records: Vec<WalRecord>,
    sealed: Vec<SealedSegment>,
    /// Position after the last intact entry.
    end: u64,
}

/// Reads all segments, sealing those found unsealed (an empty last one is
/// deleted: the active segment is made anew). A segment that ends short
/// of the next one's start ends the WAL: later segments are deleted.
fn recover(dir: &Path) -> Result<Recovered> {
    let mut starts: Vec<u64> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(start) = name.strip_suffix(".wal").and_then(|s| s.parse().ok()) {
            starts.push(start);
        }
    }
    starts.sort_unstable();
    let mut records = Vec::new();
    let mut sealed = Vec::new();
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
        let first = records.len();
        let (valid, index) = parse_segment(&data, start, &mut records);
        end = start + valid as u64;
        let last = i + 1 == starts.len();
        if valid == 0 && last && index.is_none() {
            // The active segment, empty.
            std::fs::remove_file(&path)?;
            starts.pop();
            break;
        }
        let index = match index {
            Some(index) => index,
            None => seal_found(&path, start, valid, &records[first..])?,
        };
        sealed.push(SealedSegment {
            index,
            positions: start..end,
            path: path.clone(),
            chunks: Vec::new(),
        });
        if starts.get(i + 1).is_none_or(|&next| next == end) {
            continue;
        }
        tracing::warn!(
            segment = %path.display(),
            later_segments = starts.len() - i - 1,
            "corrupt WAL entry before the last segment: the WAL ends here"
        );
        for &later in &starts[i + 1..] {
            std::fs::remove_file(segment_path(dir, later))?;
        }
        starts.truncate(i + 1);
        break;
    }
    Ok(Recovered {
        starts,
        records,
        sealed,
        end,
    })
}

/// Seals a segment found unsealed: cut after its `valid` bytes of intact
/// entries (a torn write, or data of earlier versions' recycling), then
/// indexed.
fn seal_found(
    path: &Path,
    start: u64,
    valid: usize,
    records: &[WalRecord],
) -> Result<SegmentIndex> {
    let located: Vec<Located> = records
        .iter()
        .map(|r| Located {
            topic: r.topic,
            partition: r.partition,
            offset: r.position.start - start,
            len: (r.position.end - r.position.start) as u32,
        })
        .collect();
    let (tail, index) = segment::seal(Uuid::now_v7(), valid as u64, &located);
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(valid as u64)?;
    file.write_all_at(&tail, valid as u64)?;
    file.sync_all()?;
    tracing::info!(segment = %path.display(), entries = records.len(), "sealed a WAL segment found unsealed");
    Ok(index)
}

/// Parses entries from `data` (a segment starting at `start`); returns the
/// length of the intact prefix and, if the segment is sealed, its index.
fn parse_segment(
    data: &Bytes,
    start: u64,
    out: &mut Vec<WalRecord>,
) -> (usize, Option<SegmentIndex>) {
    let mut pos = 0;
    loop {
        match segment::parse_entry(&data[pos..]) {
            Parsed::Entry(entry) => {
                let entry_start = start + pos as u64;
                if entry.position != entry_start {
                    // Intact, but left over from an earlier life of the file.
                    return (pos, None);
                }
                out.push(WalRecord {
                    position: entry_start..entry_start + entry.len as u64,
                    topic: entry.topic,
                    partition: entry.partition,
                    batch: data.slice(pos + entry.batch.start..pos + entry.batch.end),
                });
                pos += entry.len;
            }
            Parsed::Sealed => return (pos, segment::read_index(data).ok()),
            Parsed::End => return (pos, None),
        }
    }
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
        // Cut the second entry short, as a crash mid-write would (the
        // segment starts at position 0).
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(second - 3)
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
        data[end as usize - 1] ^= 0xff;
        std::fs::write(&path, data).unwrap();
        let (_, records) = Wal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(&records[0].batch[..], b"good");
    }

    /// The next sealed segment, within a deadline.
    async fn next_sealed(wal: &Wal) -> SealedSegment {
        let mut sealed = wal.sealed_segments().lock().await;
        tokio::time::timeout(std::time::Duration::from_secs(10), sealed.recv())
            .await
            .expect("a segment sealed in time")
            .expect("the WAL is open")
    }

    #[tokio::test]
    async fn full_segments_are_sealed_handed_over_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let topic = Uuid::new_v4();
        let (wal, _) = Wal::open(dir.path(), 100).unwrap();
        let mut ends = Vec::new();
        for i in 0..10u8 {
            let end = wal.append(topic, i32::from(i % 2), &[i; 80]).unwrap().end;
            wait_durable(&wal, end).await;
            ends.push(end);
        }
        let mut segments = Vec::new();
        for _ in 0..10 {
            segments.push(next_sealed(&wal).await);
        }
        assert_eq!(segments[4].positions.end, ends[4]);
        let file = std::fs::read(&segments[4].path).unwrap();
        let written: Vec<u8> = segments[4].chunks.concat();
        assert_eq!(file, written, "the bytes handed over are the file's");
        assert_eq!(segment::read_index(&file).unwrap(), segments[4].index);
        assert_eq!(segments[4].index.lists.len(), 1, "one entry, one partition");
        assert_eq!(count_files(dir.path(), ".wal"), 11);
        // Entries up to the fifth are committed: their segments go.
        wal.trim(ends[4]).unwrap();
        assert_eq!(count_files(dir.path(), ".wal"), 6);
        drop(wal);
        let (wal, records) = Wal::open(dir.path(), 100).unwrap();
        assert_eq!(records.len(), 5);
        assert_eq!(records[0].batch[0], 5);
        // Found sealed at start: handed over again, under the same ids.
        assert_eq!(next_sealed(&wal).await.index, segments[5].index);
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
    async fn sealing_is_asked_for_and_a_segment_found_unsealed_is_sealed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let topic = Uuid::new_v4();
        let (wal, _) = Wal::open(dir.path(), 1 << 20).unwrap();
        assert!(!wal.seal_active(), "nothing to seal");
        let first = wal.append(topic, 0, b"first").unwrap();
        assert!(wal.seal_active());
        let sealed = next_sealed(&wal).await;
        assert_eq!(sealed.positions, first);
        let second = wal.append(topic, 1, b"second").unwrap();
        let third = wal.append(topic, 0, b"third").unwrap();
        wait_durable(&wal, third.end).await;
        drop(wal);
        // The crash left the active segment unsealed.
        let (wal, records) = Wal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(next_sealed(&wal).await.index, sealed.index);
        let found = next_sealed(&wal).await;
        assert_eq!(found.positions, second.start..third.end);
        let file = std::fs::read(&found.path).unwrap();
        let index = segment::read_index(&file).unwrap();
        assert_eq!(index, found.index);
        assert_eq!(index.lists.len(), 2);
        // Appends go on in a new segment.
        let fourth = wal.append(topic, 0, b"fourth").unwrap();
        assert_eq!(fourth.start, third.end);
        wait_durable(&wal, fourth.end).await;
        drop(wal);
        let (_, records) = Wal::open(dir.path(), 1 << 20).unwrap();
        let batches: Vec<&[u8]> = records.iter().map(|r| &r.batch[..]).collect();
        assert_eq!(batches, vec![&b"first"[..], b"second", b"third", b"fourth"]);
    }
}
