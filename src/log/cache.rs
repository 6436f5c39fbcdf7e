//! The read cache of object sections: foyer's hybrid cache (memory, then
//! disk), keyed by (object, section position), filled write-through when the
//! uploader seals an object and read-through on a miss.
//!
//! Only sections written through move to disk when memory evicts them: they
//! are what readers near the head come back for. Sections read from the
//! bucket (catch-up readers, merging, compaction) are read once, and
//! writing them to disk too cost a catch-up reader a third of the broker's
//! CPU and the disk the WAL syncs on; they stay in memory only.
//!
//! When the bucket is a local directory the disk tier is left out: the
//! objects are on local disk already, and a second copy would only double
//! the writes.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use foyer::{
    BlockEngineConfig, Code, DeviceBuilder, FsDeviceBuilder, HybridCache, HybridCacheBuilder,
    HybridCachePolicy, HybridCacheProperties, Location,
};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use uuid::Uuid;

use super::merge::MAX_MERGED_SECTION_BYTES;
use crate::config::CacheConfig;
use crate::error::{Error, Result};
use crate::meta::Extent;
use crate::storage::Bucket;

/// Identifies a section: its object and byte position there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SectionKey {
    object: Uuid,
    position: u64,
}

impl SectionKey {
    fn of(extent: &Extent) -> Self {
        SectionKey {
            object: extent.object,
            position: extent.position,
        }
    }
}

impl Code for SectionKey {
    fn encode(&self, writer: &mut impl std::io::Write) -> foyer::Result<()> {
        writer
            .write_all(self.object.as_bytes())
            .and_then(|()| writer.write_all(&self.position.to_le_bytes()))
            .map_err(foyer::Error::io_error)
    }

    fn decode(reader: &mut impl std::io::Read) -> foyer::Result<Self> {
        let mut object = [0u8; 16];
        let mut position = [0u8; 8];
        reader
            .read_exact(&mut object)
            .and_then(|()| reader.read_exact(&mut position))
            .map_err(foyer::Error::io_error)?;
        Ok(SectionKey {
            object: Uuid::from_bytes(object),
            position: u64::from_le_bytes(position),
        })
    }

    fn estimated_size(&self) -> usize {
        24
    }
}

/// Sections of data objects, cached in memory and on local disk.
#[derive(Clone)]
pub struct SectionCache {
    cache: HybridCache<SectionKey, Bytes>,
    bucket: Bucket,
    memory_bytes: u64,
    /// Section loads under way, so concurrent readers share one GET.
    loading: Arc<Mutex<HashMap<SectionKey, Load>>>,
}

/// A section load under way; every reader waiting for it can poll it.
type Load = Shared<BoxFuture<'static, ()>>;

impl SectionCache {
    /// Opens the cache; the disk tier lives in `dir` (unless disabled).
    pub async fn open(config: &CacheConfig, dir: &Path, bucket: Bucket) -> Result<Self> {
        // Both series from the start, for dashboards' hit ratio.
        metrics::counter!("silt_cache_hits_total").increment(0);
        metrics::counter!("silt_cache_misses_total").increment(0);
        let storage = HybridCacheBuilder::new()
            .with_name("silt-sections")
            .with_policy(HybridCachePolicy::WriteOnEviction)
            .memory(config.memory_bytes)
            .with_shards(memory_shards(config.memory_bytes))
            .with_weighter(|_key: &SectionKey, value: &Bytes| value.len())
            .storage();
        let storage = if config.disk_bytes > 0 && !bucket.is_local() {
            std::fs::create_dir_all(dir)?;
            let device = FsDeviceBuilder::new(dir)
                .with_capacity(config.disk_bytes)
                .with_direct(direct_io_supported(dir))
                .build()
                .map_err(cache_error)?;
            storage.with_engine_config(BlockEngineConfig::new(device))
        } else {
            storage
        };
        let cache = storage.build().await.map_err(cache_error)?;
        Ok(SectionCache {
            cache,
            bucket,
            memory_bytes: config.memory_bytes as u64,
            loading: Arc::default(),
        })
    }

    /// The capacity of the memory tier.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }

    /// Caches a section just written (write-through on upload).
    pub fn insert(&self, extent: &Extent, bytes: Bytes) {
        self.cache.insert(SectionKey::of(extent), bytes);
    }

    /// Whether the section is cached or being loaded.
    pub fn holds(&self, extent: &Extent) -> bool {
        let key = SectionKey::of(extent);
        self.cache.contains(&key)
            || self
                .loading
                .lock()
                .expect("load map poisoned")
                .contains_key(&key)
    }

    /// The section's bytes if they are in memory.
    pub fn get_in_memory(&self, extent: &Extent) -> Option<Bytes> {
        let entry = self.cache.memory().get(&SectionKey::of(extent))?;
        metrics::counter!("silt_cache_hits_total").increment(1);
        Some(entry.value().clone())
    }

    /// The section's bytes: from memory, disk, or a range read of its
    /// object (checked against the extent's CRC first).
    pub async fn get(&self, extent: &Extent) -> Result<Bytes> {
        let bucket = self.bucket.clone();
        let owned = extent.clone();
        let fetched = Arc::new(AtomicBool::new(false));
        let fetching = fetched.clone();
        let entry = self
            .cache
            .get_or_fetch(&SectionKey::of(extent), move || async move {
                fetching.store(true, Ordering::Relaxed);
                Ok::<_, Error>((read_section(&bucket, &owned).await?, read_through()))
            })
            .await
            .map_err(cache_error)?;
        if fetched.load(Ordering::Relaxed) {
            metrics::counter!("silt_cache_misses_total").increment(1);
        } else {
            metrics::counter!("silt_cache_hits_total").increment(1);
        }
        Ok(entry.value().clone())
    }

    /// Loads the sections not cached yet, with one coalesced read per
    /// object (the sections of an object are adjacent, so reading many
    /// partitions from the bucket costs a GET per object, not per section),
    /// and waits for them, and for loads of these sections already under way.
    /// Errors are left for [`SectionCache::get`] to report.
    pub async fn load(&self, extents: &[Extent]) {
        futures::future::join_all(self.start_loads(extents)).await;
    }

    /// Starts loading these sections in the background, as [`load`] does,
    /// for a sequential reader to find them cached later.
    ///
    /// [`load`]: SectionCache::load
    pub fn read_ahead(&self, extents: &[Extent]) {
        self.start_loads(extents);
    }

    /// Spawns one read per object for the sections neither cached nor
    /// being loaded; returns the loads (new or under way) covering them.
    fn start_loads(&self, extents: &[Extent]) -> Vec<Load> {
        let mut loading = self.loading.lock().expect("load map poisoned");
        let mut waits = Vec::new();
        let mut by_object: BTreeMap<Uuid, BTreeMap<u64, Extent>> = BTreeMap::new();
        for extent in extents {
            let key = SectionKey::of(extent);
            if let Some(load) = loading.get(&key) {
                waits.push(load.clone());
            } else if self.cache.contains(&key) {
                continue;
            } else if extent.entry_list.is_some() {
                // Its entries lie among other partitions': read alone.
                let (this, owned) = (self.clone(), extent.clone());
                let read = async move {
                    if let Ok(bytes) = read_section(&this.bucket, &owned).await {
                        metrics::counter!("silt_cache_misses_total").increment(1);
                        this.cache.insert_with_properties(
                            SectionKey::of(&owned),
                            bytes,
                            read_through(),
                        );
                    }
                    let mut loading = this.loading.lock().expect("load map poisoned");
                    loading.remove(&SectionKey::of(&owned));
                };
                let load = tokio::spawn(read).map(|_| ()).boxed().shared();
                loading.insert(key, load.clone());
                waits.push(load);
            } else {
                let sections = by_object.entry(extent.object).or_default();
                sections.insert(extent.position, extent.clone());
            }
        }
        for (object, sections) in by_object {
            let sections: Vec<Extent> = sections.into_values().collect();
            let keys: Vec<SectionKey> = sections.iter().map(SectionKey::of).collect();
            let this = self.clone();
            let read = async move {
                let ranges: Vec<Range<u64>> = sections
                    .iter()
                    .map(|e| e.position..e.position + e.length)
                    .collect();
                let wanted: u64 = sections.iter().map(|e| e.length).sum();
                let span =
                    ranges.last().map_or(0, |r| r.end) - ranges.first().map_or(0, |r| r.start);
                // Sections of a sparse read are copied, so a cached one
                // does not pin the whole coalesced read in memory; those
                // of a dense one (most of an object) share it.
                let sparse = wanted * 2 < span;
                if let Ok(bytes) = this.bucket.read_data_ranges(object, &ranges).await {
                    metrics::counter!("silt_cache_misses_total").increment(sections.len() as u64);
                    // A damaged section stays out, for `get` to report.
                    let intact = sections
                        .iter()
                        .zip(bytes)
                        .filter(|(e, b)| check_crc(e, b).is_ok());
                    for (extent, bytes) in intact {
                        let bytes = if sparse {
                            Bytes::copy_from_slice(&bytes)
                        } else {
                            bytes
                        };
                        this.cache.insert_with_properties(
                            SectionKey::of(extent),
                            bytes,
                            read_through(),
                        );
                    }
                }
                let mut loading = this.loading.lock().expect("load map poisoned");
                for extent in &sections {
                    loading.remove(&SectionKey::of(extent));
                }
            };
            // Spawned, so a load finishes (and leaves the map) even when
            // every reader waiting for it is cancelled.
            let load = tokio::spawn(read).map(|_| ()).boxed().shared();
            for key in keys {
                loading.insert(key, load.clone());
            }
            waits.push(load);
        }
        waits
    }

    /// Flushes and closes the cache.
    pub async fn close(&self) -> Result<()> {
        self.cache.close().await.map_err(cache_error)
    }
}

/// Whether files in `dir` can be written with `O_DIRECT` (not on tmpfs,
/// for one). The disk tier writes with it where it can: through the page
/// cache, the kernel's copies into it took a third of an `object`
/// durability broker's CPU at full load (perf, 2026-12-05).
fn direct_io_supported(dir: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let probe = dir.join(".direct-io-probe");
    let opened = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(&probe);
    let _ = std::fs::remove_file(&probe);
    opened.is_ok()
}

/// How many shards the memory tier has: foyer evicts within a shard, and
/// each must hold enough of the largest sections (merged ones) for the
/// readers using it at once, each with its next section read ahead.
fn memory_shards(memory_bytes: usize) -> usize {
    const LARGEST_PER_SHARD: usize = 32;
    (memory_bytes / (LARGEST_PER_SHARD * MAX_MERGED_SECTION_BYTES as usize)).clamp(1, 8)
}

/// How sections read from the bucket are cached: in memory only.
fn read_through() -> HybridCacheProperties {
    HybridCacheProperties::default().with_location(Location::InMem)
}

/// Reads an extent's batches from the bucket, checked: a section's bytes
/// against its CRC, a sealed WAL segment's entries against theirs.
async fn read_section(bucket: &Bucket, extent: &Extent) -> Result<Bytes> {
    if let Some(list) = &extent.entry_list {
        let read = super::segment::read_batches(bucket, extent, list).await;
        if let Err(Error::CorruptMessage(message)) = &read {
            metrics::counter!("silt_corrupt_sections_total").increment(1);
            tracing::error!("{message}");
        }
        return read;
    }
    let range = extent.position..extent.position + extent.length;
    let bytes = bucket.read_data_range(extent.object, range).await?;
    check_crc(extent, &bytes)?;
    Ok(bytes)
}

/// Fails (logged and counted) unless `bytes` match the extent's CRC.
fn check_crc(extent: &Extent, bytes: &[u8]) -> Result<()> {
    let Some(expected) = extent.crc else {
        return Ok(());
    };
    let found = crc32c::crc32c(bytes);
    if found == expected {
        return Ok(());
    }
    metrics::counter!("silt_corrupt_sections_total").increment(1);
    let message = format!(
        "data object {} holds damaged data at bytes {}..{} (offsets {}..={}): CRC-32C {found:08x}, expected {expected:08x}",
        extent.object,
        extent.position,
        extent.position + extent.length,
        extent.base_offset,
        extent.last_offset
    );
    tracing::error!("{message}");
    Err(Error::CorruptMessage(message))
}

fn cache_error(e: impl std::fmt::Display) -> Error {
    Error::Io(std::io::Error::other(format!("section cache: {e}")))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn extent(object: Uuid, position: u64, length: u64) -> Extent {
        Extent {
            object,
            position,
            length,
            base_offset: 0,
            last_offset: 0,
            max_timestamp: 0,
            crc: None,
            compacted: false,
            tombstones_due_ms: None,
            entry_list: None,
        }
    }

    /// A cache of 1 MiB in memory (and `disk_bytes` on disk) over `bucket`;
    /// the directory must outlive it.
    async fn cache_over(bucket: &Bucket, disk_bytes: usize) -> (tempfile::TempDir, SectionCache) {
        let dir = tempfile::tempdir().unwrap();
        let config = CacheConfig {
            memory_bytes: 1 << 20,
            disk_bytes,
        };
        let cache = SectionCache::open(&config, dir.path(), bucket.clone())
            .await
            .unwrap();
        (dir, cache)
    }

    #[tokio::test]
    async fn misses_read_the_object_store_and_hits_do_not() {
        let bucket = Bucket::in_memory();
        let (_dir, cache) = cache_over(&bucket, 64 << 20).await;
        let object = Uuid::now_v7();
        bucket
            .put_data_object(object, Bytes::from_static(b"0123456789"))
            .await
            .unwrap();
        assert_eq!(&cache.get(&extent(object, 2, 3)).await.unwrap()[..], b"234");
        let written = extent(Uuid::now_v7(), 0, 4);
        cache.insert(&written, Bytes::from_static(b"tail"));
        // Not in the bucket at all: only the cache can answer.
        assert_eq!(&cache.get(&written).await.unwrap()[..], b"tail");
        cache.close().await.unwrap();
    }

    #[tokio::test]
    async fn only_sections_written_through_move_to_disk() {
        let bucket = Bucket::in_memory();
        let (_dir, cache) = cache_over(&bucket, 64 << 20).await;
        let size = 600 << 10;
        let written = extent(Uuid::now_v7(), 0, size);
        cache.insert(&written, Bytes::from(vec![1; size as usize]));
        // Memory holds one of these: reading the next one evicts the first.
        let read = extent(Uuid::now_v7(), 0, size);
        bucket
            .put_data_object(read.object, Bytes::from(vec![2; size as usize]))
            .await
            .unwrap();
        cache.get(&read).await.unwrap();
        let other = extent(Uuid::now_v7(), 0, size);
        cache.insert(&other, Bytes::from(vec![3; size as usize]));
        bucket.delete_data_objects(&[read.object]).await.unwrap();
        assert_eq!(cache.get(&written).await.unwrap()[0], 1, "from disk");
        assert!(cache.get(&read).await.is_err(), "read once, not kept");
        cache.close().await.unwrap();
    }

    #[tokio::test]
    async fn damaged_sections_are_refused_not_served() {
        let bucket = Bucket::in_memory();
        let (_dir, cache) = cache_over(&bucket, 0).await;
        let object = Uuid::now_v7();
        bucket
            .put_data_object(object, Bytes::from_static(b"0123456789"))
            .await
            .unwrap();
        let intact = Extent {
            crc: Some(crc32c::crc32c(b"234")),
            compacted: false,
            tombstones_due_ms: None,
            ..extent(object, 2, 3)
        };
        assert_eq!(&cache.get(&intact).await.unwrap()[..], b"234");
        let damaged = Extent {
            crc: Some(crc32c::crc32c(b"xyz")),
            compacted: false,
            tombstones_due_ms: None,
            ..extent(object, 5, 3)
        };
        cache.load(std::slice::from_ref(&damaged)).await;
        let error = cache.get(&damaged).await.unwrap_err().to_string();
        assert!(
            error.contains(&object.to_string()) && error.contains("CRC"),
            "{error}"
        );
        cache.close().await.unwrap();
    }

    #[tokio::test]
    async fn load_fills_the_cache_for_many_sections_at_once() {
        let bucket = Bucket::in_memory();
        let (_dir, cache) = cache_over(&bucket, 0).await;
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        bucket
            .put_data_object(a, Bytes::from_static(b"aaabbbccc"))
            .await
            .unwrap();
        bucket
            .put_data_object(b, Bytes::from_static(b"dddeee"))
            .await
            .unwrap();
        let sections = [extent(a, 0, 3), extent(a, 6, 3), extent(b, 3, 3)];
        cache.load(&sections).await;
        bucket.delete_data_objects(&[a, b]).await.unwrap();
        // The objects are gone: only the cache can answer now.
        let got: Vec<Bytes> = futures::future::try_join_all(sections.iter().map(|e| cache.get(e)))
            .await
            .unwrap();
        assert_eq!(got, [&b"aaa"[..], b"ccc", b"eee"]);
        assert!(cache.get(&extent(a, 3, 3)).await.is_err(), "not loaded");
    }

    #[tokio::test]
    async fn read_ahead_loads_in_the_background() {
        let bucket = Bucket::in_memory();
        let (_dir, cache) = cache_over(&bucket, 0).await;
        let object = Uuid::now_v7();
        bucket
            .put_data_object(object, Bytes::from_static(b"aaabbb"))
            .await
            .unwrap();
        let section = extent(object, 3, 3);
        cache.read_ahead(std::slice::from_ref(&section));
        tokio::time::timeout(Duration::from_secs(10), async {
            while !cache.loading.lock().unwrap().is_empty() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("read-ahead finished");
        bucket.delete_data_objects(&[object]).await.unwrap();
        assert_eq!(&cache.get(&section).await.unwrap()[..], b"bbb");
    }
}
