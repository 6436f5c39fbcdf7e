//! Client quotas enforced: the quotas of the metadata store, cached and
//! reloaded when their version moves, and each connection's usage (bytes
//! produced, bytes fetched, time its requests kept the broker busy)
//! counted against the quota that applies to its user and client id.
//! Usage beyond a quota becomes a throttle time: the response says it
//! (`throttle_time_ms`) and the connection reads nothing more until it
//! has passed, as Kafka does (KIP-219).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::meta::QuotaStore;
use crate::meta::cache::Cached;
use crate::quota::{
    Bucket, CONSUMER_BYTE_RATE, ClientQuota, PRODUCER_BYTE_RATE, QuotaSet, REQUEST_PERCENTAGE,
};

/// What one request used.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// Record bytes produced.
    pub produced: u64,
    /// Record bytes fetched.
    pub fetched: u64,
    /// How long the broker worked on it.
    pub busy: Duration,
}

/// Past this many buckets, those idle for [`IDLE`] are forgotten.
const FORGET_IDLE_ABOVE: usize = 10_000;
const IDLE: Duration = Duration::from_secs(60);

/// Whose usage a bucket counts: the quota key, and the user and client
/// id counted together.
type BucketKey = (&'static str, Option<String>, Option<String>);

/// The quotas in force and the usage counted against them.
#[derive(Default)]
pub struct Quotas {
    set: Cached<QuotaSet>,
    buckets: Mutex<HashMap<BucketKey, Bucket>>,
}

impl Quotas {
    /// Reloads the quotas from `store` if their version moved.
    pub async fn refresh(&self, store: &dyn QuotaStore) -> Result<()> {
        let version = store.quota_version().await?;
        self.set
            .refresh(version, async {
                let (version, quotas): (u64, Vec<ClientQuota>) = store.quotas().await?;
                Ok((version, QuotaSet::new(quotas)))
            })
            .await?;
        Ok(())
    }

    /// Whether any quota is set (without one, usage is not counted).
    pub fn any(&self) -> bool {
        !self.set.get().is_empty()
    }

    /// Counts `usage` of `user` connected as `client_id` at `now`; how
    /// long the connection must wait before its next request.
    pub fn record(&self, user: &str, client_id: &str, usage: Usage, now: Instant) -> Duration {
        let set = self.set.get();
        if set.is_empty() {
            return Duration::ZERO;
        }
        let mut buckets = self.buckets.lock().expect("quota buckets poisoned");
        if buckets.len() >= FORGET_IDLE_ABOVE {
            // Clients come and go (and may pick new client ids): a bucket
            // unused for a while is full again anyway.
            buckets.retain(|_, bucket| !bucket.idle_since(now, IDLE));
        }
        let mut throttle = Duration::ZERO;
        for (key, amount) in [
            (PRODUCER_BYTE_RATE, usage.produced as f64),
            (CONSUMER_BYTE_RATE, usage.fetched as f64),
            // Percent of one thread: a second's work at 100%.
            (REQUEST_PERCENTAGE, usage.busy.as_secs_f64() * 100.0),
        ] {
            if amount == 0.0 {
                continue;
            }
            let Some(applied) = set.applies(key, user, client_id) else {
                continue;
            };
            let (u, c) = applied.bucket;
            let bucket = buckets
                .entry((key, u, c))
                .or_insert_with(|| Bucket::new(applied.rate, now));
            throttle = throttle.max(bucket.record(amount, applied.rate, now));
        }
        if !throttle.is_zero() {
            metrics::counter!("silt_quota_throttled_total").increment(1);
        }
        throttle
    }
}
