//! A live copy of the etcd keys under one prefix, values decoded from
//! JSON: read once, then kept up to date by a watch from the revision read
//! (read again whenever the watch breaks). Each change bumps a counter that
//! waiters can watch.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use etcd_client::{Client, EventType, GetOptions, KeyValue, WatchOptions};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Keys (without the prefix) and values under a prefix, as last seen;
/// values that do not decode are left out (and logged).
pub struct Mirror<T> {
    entries: RwLock<BTreeMap<String, T>>,
    changes: watch::Sender<u64>,
    /// False until the first complete read.
    ready: watch::Sender<bool>,
}

impl<T> Mirror<T> {
    /// `look` applied to the entries, keyed without the prefix.
    pub fn with<R>(&self, look: impl FnOnce(&BTreeMap<String, T>) -> R) -> R {
        look(&self.entries.read().expect("mirror poisoned"))
    }

    /// A receiver that changes whenever the entries do.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Waits until the first complete read.
    pub async fn wait_ready(&self) {
        let _ = self.ready.subscribe().wait_for(|ready| *ready).await;
    }
}

impl<T: DeserializeOwned + PartialEq + Send + Sync + 'static> Mirror<T> {
    /// Starts mirroring the keys under `prefix` until `stop`.
    pub fn start(client: &Client, prefix: String, stop: &CancellationToken) -> Arc<Mirror<T>> {
        let mirror = Arc::new(Mirror {
            entries: RwLock::new(BTreeMap::new()),
            changes: watch::Sender::new(0),
            ready: watch::Sender::new(false),
        });
        let (task, client, stop) = (mirror.clone(), client.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = task.follow(client, &prefix) => {}
                () = stop.cancelled() => {}
            }
        });
        mirror
    }

    /// Reads, then watches, forever; starts over after any failure.
    async fn follow(&self, client: Client, prefix: &str) {
        loop {
            if let Err(e) = self.read_and_watch(client.clone(), prefix).await {
                tracing::warn!(prefix, error = %e, "etcd watch broke; reading again");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn read_and_watch(&self, client: Client, prefix: &str) -> Result<(), etcd_client::Error> {
        let response = client
            .kv_client()
            .get(prefix, Some(GetOptions::new().with_prefix()))
            .await?;
        let revision = response.header().map_or(0, |h| h.revision());
        let entries: BTreeMap<String, T> = response
            .kvs()
            .iter()
            .filter_map(|kv| Some((strip(kv.key(), prefix), decode(kv)?)))
            .collect();
        // A read again after a broken watch usually finds nothing new.
        let changed = {
            let mut current = self.entries.write().expect("mirror poisoned");
            let changed = *current != entries;
            *current = entries;
            changed
        };
        if changed {
            self.changes.send_modify(|n| *n += 1);
        }
        self.ready.send_replace(true);
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision + 1);
        let mut stream = client.watch_client().watch(prefix, Some(options)).await?;
        while let Some(response) = stream.message().await? {
            if response.canceled() {
                return Err(etcd_client::Error::WatchError(format!(
                    "watch canceled: {}",
                    response.cancel_reason()
                )));
            }
            if response.events().is_empty() {
                continue;
            }
            {
                let mut entries = self.entries.write().expect("mirror poisoned");
                for event in response.events() {
                    let Some(kv) = event.kv() else { continue };
                    let key = strip(kv.key(), prefix);
                    let value = match event.event_type() {
                        EventType::Put => decode(kv),
                        EventType::Delete => None,
                    };
                    match value {
                        Some(value) => entries.insert(key, value),
                        None => entries.remove(&key),
                    };
                }
            }
            self.changes.send_modify(|n| *n += 1);
        }
        Err(etcd_client::Error::WatchError("watch stream ended".into()))
    }
}

fn decode<T: DeserializeOwned>(kv: &KeyValue) -> Option<T> {
    serde_json::from_slice(kv.value())
        .inspect_err(|e| {
            let key = String::from_utf8_lossy(kv.key());
            tracing::warn!(%key, error = %e, "etcd value does not decode; ignored");
        })
        .ok()
}

fn strip(key: &[u8], prefix: &str) -> String {
    let key = String::from_utf8_lossy(key);
    key.strip_prefix(prefix).unwrap_or(&key).to_string()
}
