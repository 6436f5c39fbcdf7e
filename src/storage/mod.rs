//! The object store and the only place that names object keys.
//!
//! `Bucket` wraps an `Arc<dyn ObjectStore>` (local file system by default,
//! in-memory for unit tests) with a key prefix and the layout of DESIGN
//! section 6. Data objects are written create-only: a PUT never replaces an
//! object, so two writers can never overwrite each other's data.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use uuid::Uuid;

use crate::error::Result;

/// An object store plus the key layout Silt uses inside it.
#[derive(Clone, Debug)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    local: bool,
}

impl Bucket {
    /// A bucket in a local directory; writes are fsynced before they return.
    pub fn local(dir: &Path) -> Result<Bucket> {
        std::fs::create_dir_all(dir)?;
        let store = LocalFileSystem::new_with_prefix(dir)?.with_fsync(true);
        Ok(Bucket {
            store: Arc::new(store),
            prefix: ObjectPath::default(),
            local: true,
        })
    }

    /// A bucket held in memory, for unit tests.
    pub fn in_memory() -> Bucket {
        Bucket {
            store: Arc::new(InMemory::new()),
            prefix: ObjectPath::default(),
            local: false,
        }
    }

    /// Whether the objects live on this machine's disk.
    pub fn is_local(&self) -> bool {
        self.local
    }

    /// `<prefix>/data/<id>.silt`
    fn data_path(&self, id: Uuid) -> ObjectPath {
        self.prefix
            .clone()
            .join("data")
            .join(format!("{}.silt", id.simple()))
    }

    /// Writes a new data object; fails if the key already exists.
    pub async fn put_data_object(&self, id: Uuid, bytes: Bytes) -> Result<()> {
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        self.store
            .put_opts(&self.data_path(id), PutPayload::from_bytes(bytes), options)
            .await?;
        Ok(())
    }

    /// Reads a byte range of a data object.
    pub async fn read_data_range(&self, id: Uuid, range: Range<u64>) -> Result<Bytes> {
        Ok(self.store.get_range(&self.data_path(id), range).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn data_objects_are_create_only() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = Bucket::local(dir.path()).unwrap();
        let id = Uuid::now_v7();
        bucket
            .put_data_object(id, Bytes::from_static(b"hello world"))
            .await
            .unwrap();
        let again = bucket.put_data_object(id, Bytes::from_static(b"x")).await;
        assert!(again.is_err());
        let range = bucket.read_data_range(id, 6..11).await.unwrap();
        assert_eq!(&range[..], b"world");
    }
}
