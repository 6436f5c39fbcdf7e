//! Kafka's client quotas: who a quota is for (a user, a client id, both,
//! or the defaults of either), which quota applies to a connection (the
//! most specific, in Kafka's order), and the bucket that turns bytes
//! beyond the rate into a throttle time.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The quota keys served.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
pub const KEYS: [&str; 3] = [PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE, REQUEST_PERCENTAGE];

/// One side of a quota entity: a name, or the default for all names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum QuotaName {
    Named(String),
    Default,
}

/// Who a quota is for: a user and/or a client id (at least one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QuotaEntity {
    pub user: Option<QuotaName>,
    pub client_id: Option<QuotaName>,
}

impl fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = |name: &QuotaName| match name {
            QuotaName::Named(n) => format!("'{n}'"),
            QuotaName::Default => "<default>".into(),
        };
        let parts: Vec<String> = [("user", &self.user), ("client-id", &self.client_id)]
            .into_iter()
            .filter_map(|(kind, name)| Some(format!("{kind}={}", part(name.as_ref()?))))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// A quota entity's values (`producer_byte_rate` = bytes per second, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientQuota {
    pub entity: QuotaEntity,
    pub values: BTreeMap<String, f64>,
}

/// The quotas in force, and which applies to whom.
#[derive(Debug, Default)]
pub struct QuotaSet {
    by_entity: BTreeMap<QuotaEntity, BTreeMap<String, f64>>,
}

/// The quota that applies to a connection: its entity and rate. Clients
/// matched by a default share nothing: each user (client id) has its own
/// bucket, as in Kafka.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The bucket's key: the user and client id the quota counts.
    pub bucket: (Option<String>, Option<String>),
    pub rate: f64,
}

impl QuotaSet {
    /// The set of `quotas`.
    pub fn new(quotas: impl IntoIterator<Item = ClientQuota>) -> QuotaSet {
        QuotaSet {
            by_entity: quotas
                .into_iter()
                .filter(|q| !q.values.is_empty())
                .map(|q| (q.entity, q.values))
                .collect(),
        }
    }

    /// Whether there is no quota at all.
    pub fn is_empty(&self) -> bool {
        self.by_entity.is_empty()
    }

    /// The `key` quota of `user` connecting as `client_id`: the most
    /// specific entity that sets it, in Kafka's order (user and client id,
    /// user and default client, user, default user and client id, default
    /// user and default client, default user, client id, default client).
    pub fn applies(&self, key: &str, user: &str, client_id: &str) -> Option<Applied> {
        use QuotaName::{Default, Named};
        let (u, c) = (Named(user.to_string()), Named(client_id.to_string()));
        let order = [
            (Some(u.clone()), Some(c.clone())),
            (Some(u.clone()), Some(Default)),
            (Some(u.clone()), None),
            (Some(Default), Some(c.clone())),
            (Some(Default), Some(Default)),
            (Some(Default), None),
            (None, Some(c.clone())),
            (None, Some(Default)),
        ];
        order.into_iter().find_map(|(user_side, client_side)| {
            let entity = QuotaEntity {
                user: user_side,
                client_id: client_side,
            };
            let rate = *self.by_entity.get(&entity)?.get(key)?;
            let bucket = (
                entity.user.map(|_| user.to_string()),
                entity.client_id.map(|_| client_id.to_string()),
            );
            Some(Applied { bucket, rate })
        })
    }
}

/// The longest a client is throttled at once (Kafka caps it at its quota
/// window); a larger debt is paid back over several requests.
pub const MAX_THROTTLE: Duration = Duration::from_secs(10);

/// Usage against a rate: credit refills at the rate up to one second's
/// worth; what is used beyond the credit is a debt paid back by waiting.
#[derive(Debug, Clone)]
pub struct Bucket {
    credit: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket for `rate` at `now`.
    pub fn new(rate: f64, now: Instant) -> Bucket {
        Bucket {
            credit: rate,
            at: now,
        }
    }

    /// Whether the bucket was last used at least `idle` before `now`.
    pub fn idle_since(&self, now: Instant, idle: Duration) -> bool {
        now.saturating_duration_since(self.at) >= idle
    }

    /// Records `amount` used at `now` against `rate`; how long the client
    /// must wait for its usage to be back within the rate.
    pub fn record(&mut self, amount: f64, rate: f64, now: Instant) -> Duration {
        let rate = rate.max(f64::MIN_POSITIVE);
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.credit = (self.credit + elapsed * rate).min(rate) - amount;
        self.at = now;
        if self.credit >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.credit / rate).min(MAX_THROTTLE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(user: Option<QuotaName>, client_id: Option<QuotaName>, rate: f64) -> ClientQuota {
        ClientQuota {
            entity: QuotaEntity { user, client_id },
            values: [(PRODUCER_BYTE_RATE.to_string(), rate)].into(),
        }
    }

    #[test]
    fn the_most_specific_quota_applies() {
        use QuotaName::*;
        let set = QuotaSet::new([
            quota(Some(Named("alice".into())), None, 100.0),
            quota(
                Some(Named("alice".into())),
                Some(Named("batch".into())),
                10.0,
            ),
            quota(Some(Default), None, 1000.0),
            quota(None, Some(Named("batch".into())), 5.0),
        ]);
        let rate = |u: &str, c: &str| set.applies(PRODUCER_BYTE_RATE, u, c).map(|a| a.rate);
        assert_eq!(rate("alice", "batch"), Some(10.0));
        assert_eq!(rate("alice", "web"), Some(100.0));
        assert_eq!(
            rate("bob", "batch"),
            Some(1000.0),
            "the default user before client ids"
        );
        assert_eq!(set.applies(CONSUMER_BYTE_RATE, "alice", "web"), None);
        let bob = set.applies(PRODUCER_BYTE_RATE, "bob", "web").unwrap();
        assert_eq!(
            bob.bucket,
            (Some("bob".into()), None),
            "defaults are per user"
        );
    }

    #[test]
    fn usage_beyond_the_rate_is_paid_back_by_waiting() {
        let start = Instant::now();
        let mut bucket = Bucket::new(100.0, start);
        assert_eq!(
            bucket.record(100.0, 100.0, start),
            Duration::ZERO,
            "a second's burst"
        );
        assert_eq!(
            bucket.record(50.0, 100.0, start),
            Duration::from_millis(500)
        );
        let later = start + Duration::from_secs(1);
        assert_eq!(
            bucket.record(0.0, 100.0, later),
            Duration::ZERO,
            "paid back"
        );
    }
}
