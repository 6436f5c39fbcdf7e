//! A broker's registration in an etcd cluster: the key
//! `ROOT/live/brokers/ID` (its advertised address), held through a lease the
//! broker keeps alive. While the key lives the broker is a cluster member;
//! it goes when the broker stops, crashes, or loses etcd for a lease TTL,
//! and the controller then moves its partitions to other brokers, raising
//! their leader epochs so that it can commit nothing more.
//!
//! Every metadata write of the broker requires its lease still to hold the
//! key (an etcd comparison, [`crate::meta::etcd`]), and work outside etcd
//! that must not outlive the registration (serving as leader, garbage
//! collection) checks [`HoldCheck`]: when no keep-alive has been confirmed
//! for two thirds of the TTL, before the controller could give its
//! partitions away, the broker stops appending (it may be cut off from a
//! working etcd) until etcd confirms the lease again (etcd was only
//! unreachable). Once etcd says the lease is gone, the broker stops (the
//! `lost` token).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::meta::etcd::{Keys, connect};

/// A live broker as registered: its id and advertised address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
    /// False while the broker starts: it gets no partitions or groups yet
    /// (absent, as from brokers before this field: true).
    #[serde(default = "absent_means_ready")]
    pub ready: bool,
    /// The address advertised on each named listener (HOST:PORT), when
    /// the broker has several.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub listeners: std::collections::BTreeMap<String, String>,
    /// The broker's rack (`broker.rack`), if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// Broker `id` as `config` describes it to clients.
    pub fn of(id: i32, config: &crate::config::Config, ready: bool) -> BrokerInfo {
        let (host, port) = config.advertised();
        BrokerInfo {
            id,
            host,
            port,
            ready,
            listeners: config.advertised_listeners(),
            rack: config.broker.rack.clone(),
        }
    }

    /// The address clients of `listener` are told: the one advertised on
    /// it, or else the broker's address.
    pub fn on(&self, listener: &str) -> (String, i32) {
        self.listeners
            .get(listener)
            .and_then(|a| crate::config::split_host_port(a))
            .unwrap_or_else(|| (self.host.clone(), self.port))
    }
}

fn absent_means_ready() -> bool {
    true
}

/// This broker's registration, kept alive in the background.
pub struct Registration {
    check: HoldCheck,
    lost: CancellationToken,
    keep_alive: tokio::task::JoinHandle<()>,
    client: Client,
    keys: Keys,
    lease: i64,
}

impl Registration {
    /// Registers `broker` in the cluster of `url` with a lease of `ttl`.
    /// While its id is registered by another process (a previous run
    /// whose lease has not ended yet), waits, trying every third of the TTL.
    pub async fn register(url: &str, broker: &BrokerInfo, ttl: Duration) -> Result<Registration> {
        let (client, root) = connect(url).await?;
        let keys = Keys::new(&root);
        let mut announced = false;
        loop {
            if let Some(registration) =
                Registration::try_register(client.clone(), &keys, broker, ttl).await?
            {
                return Ok(registration);
            }
            if !announced {
                tracing::info!(id = broker.id, "waiting: this broker id is registered");
                println!(
                    "silt: broker id {} is registered by another process; waiting for its \
                     lease to end (a previous run of this broker frees it within {} s)",
                    broker.id,
                    ttl.as_secs()
                );
                announced = true;
            }
            tokio::time::sleep(ttl / 3).await;
        }
    }

    /// One attempt: the registration, or `None` while the id is taken.
    async fn try_register(
        mut client: Client,
        keys: &Keys,
        broker: &BrokerInfo,
        ttl: Duration,
    ) -> Result<Option<Registration>> {
        let etcd = |e: etcd_client::Error| Error::Meta(format!("etcd: {e}"));
        // The lease runs from when it was asked for.
        let granted = Instant::now();
        let lease = client
            .lease_grant(ttl.as_secs() as i64, None)
            .await
            .map_err(etcd)?
            .id();
        let key = keys.broker(broker.id);
        let value = serde_json::to_vec(broker).expect("broker info encodes");
        let txn = Txn::new()
            .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key.as_str(),
                value,
                Some(PutOptions::new().with_lease(lease)),
            )]);
        if !client.txn(txn).await.map_err(etcd)?.succeeded() {
            let _ = client.lease_revoke(lease).await;
            return Ok(None);
        }
        let lost = CancellationToken::new();
        let check = HoldCheck(Arc::new(Mutex::new(granted + ttl * 2 / 3)));
        let keep_alive = tokio::spawn(keep_alive(
            client.clone(),
            lease,
            ttl,
            check.clone(),
            lost.clone(),
        ));
        Ok(Some(Registration {
            check,
            lost,
            keep_alive,
            client,
            keys: keys.clone(),
            lease,
        }))
    }

    /// Leaves the cluster (revokes the lease), so that the controller moves
    /// this broker's partitions at once rather than after the TTL.
    pub async fn release(self) {
        self.keep_alive.abort();
        self.check.hold_until(Instant::now());
        let mut client = self.client.clone();
        if let Err(e) = client.lease_revoke(self.lease).await {
            tracing::warn!(error = %e, "cannot revoke the etcd lease; it ends with its TTL");
        }
    }

    /// The lease the registration (and the controller key, when this
    /// broker is the controller) is held by.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// The etcd client and key layout of the cluster.
    pub fn client(&self) -> (Client, &Keys) {
        (self.client.clone(), &self.keys)
    }

    /// A check of the registration for work that must not outlive it.
    pub fn check(&self) -> HoldCheck {
        self.check.clone()
    }

    /// Cancelled once the registration could have ended: stop serving.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }
}

/// Whether a registration is still certain, answered from the clock at once (the
/// keep-alive task may not have run yet after the process was paused).
#[derive(Debug, Clone)]
pub struct HoldCheck(Arc<Mutex<Instant>>);

impl HoldCheck {
    pub fn is_held(&self) -> bool {
        Instant::now() < *self.0.lock().expect("hold check lock poisoned")
    }

    fn hold_until(&self, until: Instant) {
        *self.0.lock().expect("hold check lock poisoned") = until;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.keep_alive.abort();
    }
}

/// Refreshes `lease` every third of `ttl`, moving `check` on. While no
/// refresh has been confirmed for two thirds of the TTL, `check` says the
/// registration may have ended (the broker stops appending) and refreshes
/// go on: etcd may only be unreachable, and a lease it still knows means no
/// other broker took anything over. Cancels `lost` once etcd says the lease
/// is gone.
async fn keep_alive(
    mut client: Client,
    lease: i64,
    ttl: Duration,
    check: HoldCheck,
    lost: CancellationToken,
) {
    let margin = ttl * 2 / 3;
    let mut confirmed = *check.0.lock().expect("hold check lock poisoned") - margin;
    let mut stream = None;
    let mut suspended = false;
    loop {
        let attempt = Instant::now();
        let refreshed = async {
            if stream.is_none() {
                stream = Some(client.lease_keep_alive(lease).await?);
            }
            let (keeper, responses) = stream.as_mut().expect("set above");
            keeper.keep_alive().await?;
            responses.message().await
        };
        match tokio::time::timeout(ttl / 3, refreshed).await {
            Ok(Ok(Some(response))) if response.ttl() > 0 => {
                confirmed = attempt;
                check.hold_until(confirmed + margin);
                if suspended {
                    tracing::info!("etcd confirms the lease again: serving writes");
                    suspended = false;
                }
            }
            // The lease is gone: the controller may move the partitions.
            Ok(Ok(Some(_))) => break,
            _ => stream = None,
        }
        if !suspended && confirmed.elapsed() >= margin {
            tracing::warn!(
                "cannot confirm the etcd lease: refusing writes until etcd answers (reads of \
                 committed data go on)"
            );
            suspended = true;
        }
        let next = attempt + ttl / 3;
        tokio::time::sleep_until(if suspended {
            next
        } else {
            next.min(confirmed + margin)
        })
        .await;
    }
    tracing::error!("the etcd lease ended: stopping so that no two brokers lead a partition");
    check.hold_until(Instant::now());
    lost.cancel();
}
