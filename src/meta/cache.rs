//! A broker's copy of a versioned part of the metadata (ACLs, client
//! quotas): read on every request from memory, loaded again only when
//! the version the store reports has moved.

use std::sync::{Arc, RwLock};

use crate::error::Result;

/// The copy and the version it was read at.
pub struct Cached<T> {
    current: RwLock<(Option<u64>, Arc<T>)>,
}

impl<T: Default> Default for Cached<T> {
    fn default() -> Self {
        Cached {
            current: RwLock::new((None, Arc::new(T::default()))),
        }
    }
}

impl<T> Cached<T> {
    /// The copy as last loaded.
    pub fn get(&self) -> Arc<T> {
        self.current
            .read()
            .expect("metadata cache poisoned")
            .1
            .clone()
    }

    /// Loads the copy again with `load` (the version and the value) if
    /// `version` is not the one held; whether it did.
    pub async fn refresh(
        &self,
        version: u64,
        load: impl Future<Output = Result<(u64, T)>>,
    ) -> Result<bool> {
        if self.current.read().expect("metadata cache poisoned").0 == Some(version) {
            return Ok(false);
        }
        let (version, value) = load.await?;
        *self.current.write().expect("metadata cache poisoned") = (Some(version), Arc::new(value));
        Ok(true)
    }
}
