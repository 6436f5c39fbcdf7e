//! The read cache of object sections: foyer's hybrid cache (memory, then
//! disk), keyed by (object, section position), filled write-through when the
//! uploader seals an object and read-through on a miss.
//!
//! When the bucket is a local directory the disk tier is left out: the
//! objects are on local disk already, and a second copy would only double
//! the writes.

use std::path::Path;

use bytes::Bytes;
use foyer::{
    BlockEngineConfig, Code, DeviceBuilder, FsDeviceBuilder, HybridCache, HybridCacheBuilder,
    HybridCachePolicy,
};
use uuid::Uuid;

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
}

impl SectionCache {
    /// Opens the cache; the disk tier lives in `dir` (unless disabled).
    pub async fn open(config: &CacheConfig, dir: &Path, bucket: Bucket) -> Result<Self> {
        let storage = HybridCacheBuilder::new()
            .with_name("silt-sections")
            .with_policy(HybridCachePolicy::WriteOnEviction)
            .memory(config.memory_bytes)
            .with_weighter(|_key: &SectionKey, value: &Bytes| value.len())
            .storage();
        let storage = if config.disk_bytes > 0 && !bucket.is_local() {
            std::fs::create_dir_all(dir)?;
            let device = FsDeviceBuilder::new(dir)
                .with_capacity(config.disk_bytes)
                .build()
                .map_err(cache_error)?;
            storage.with_engine_config(BlockEngineConfig::new(device))
        } else {
            storage
        };
        let cache = storage.build().await.map_err(cache_error)?;
        Ok(SectionCache { cache, bucket })
    }

    /// Caches a section just written (write-through on upload).
    pub fn insert(&self, extent: &Extent, bytes: Bytes) {
        self.cache.insert(SectionKey::of(extent), bytes);
    }

    /// The section's bytes: from memory, disk, or a range read of its object.
    pub async fn get(&self, extent: &Extent) -> Result<Bytes> {
        let bucket = self.bucket.clone();
        let (object, range) = (
            extent.object,
            extent.position..extent.position + extent.length,
        );
        let entry = self
            .cache
            .get_or_fetch(&SectionKey::of(extent), move || async move {
                bucket.read_data_range(object, range).await
            })
            .await
            .map_err(cache_error)?;
        Ok(entry.value().clone())
    }

    /// Flushes and closes the cache.
    pub async fn close(&self) -> Result<()> {
        self.cache.close().await.map_err(cache_error)
    }
}

fn cache_error(e: impl std::fmt::Display) -> Error {
    Error::Io(std::io::Error::other(format!("section cache: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extent(object: Uuid, position: u64, length: u64) -> Extent {
        Extent {
            object,
            position,
            length,
            base_offset: 0,
            last_offset: 0,
            max_timestamp: 0,
        }
    }

    #[tokio::test]
    async fn misses_read_the_object_store_and_hits_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = Bucket::in_memory();
        let config = CacheConfig {
            memory_bytes: 1 << 20,
            disk_bytes: 64 << 20,
        };
        let cache = SectionCache::open(&config, dir.path(), bucket.clone())
            .await
            .unwrap();
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
}
