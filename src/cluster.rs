//! A broker's hold on an etcd root. Until partition leadership is spread
//! over several brokers, one broker at a time serves a root: it holds the
//! key `ROOT/active` through a lease it keeps alive. Another broker on the
//! same root is refused while the lease lives, and may take over once it
//! ended (the holder stopped, crashed, or lost etcd for a lease TTL);
//! taking over raises every partition's leader epoch, so the previous
//! holder, if it still runs, can commit nothing more.
//!
//! Every metadata write of the holder requires the lease still to hold the
//! root (an etcd comparison, [`crate::meta::etcd`]), and work outside etcd
//! that must not outlive the hold (garbage collection) checks
//! [`HoldCheck`]. The holder gives up (the `lost` token) as soon as its
//! lease could have ended: when no keep-alive has been confirmed for two
//! thirds of the TTL, it stops serving before another broker can take over.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::meta::etcd::connect;

/// This broker's hold on an etcd root, kept alive in the background.
pub struct Hold {
    check: HoldCheck,
    lost: CancellationToken,
    keep_alive: tokio::task::JoinHandle<()>,
    client: Client,
    lease: i64,
}

impl Hold {
    /// Takes the root of `url` for broker `broker_id` with a lease of
    /// `ttl`. While another broker holds it: refused, naming the holder,
    /// or with `wait`, tried again every third of the TTL.
    pub async fn take(url: &str, broker_id: i32, ttl: Duration, wait: bool) -> Result<Hold> {
        let (client, root) = connect(url).await?;
        let mut announced = false;
        loop {
            match Hold::try_take(client.clone(), &root, broker_id, ttl).await? {
                Ok(hold) => return Ok(hold),
                Err(holder) if wait => {
                    if !announced {
                        tracing::info!(%holder, "standing by: another broker holds the etcd root");
                        println!("silt: standing by while broker {holder} holds the etcd root");
                        announced = true;
                    }
                    tokio::time::sleep(ttl / 3).await;
                }
                Err(holder) => {
                    return Err(Error::InvalidConfig(format!(
                        "etcd root '{root}' is held by broker {holder}: one broker per root \
                         until cluster mode (or start this one with --standby); it frees \
                         when that broker stops or a lease TTL after it stops answering"
                    )));
                }
            }
        }
    }

    /// One attempt: the hold, or who holds the root.
    async fn try_take(
        mut client: Client,
        root: &str,
        broker_id: i32,
        ttl: Duration,
    ) -> Result<std::result::Result<Hold, String>> {
        let etcd = |e: etcd_client::Error| Error::Meta(format!("etcd: {e}"));
        // The lease runs from when it was asked for.
        let granted = Instant::now();
        let lease = client
            .lease_grant(ttl.as_secs() as i64, None)
            .await
            .map_err(etcd)?
            .id();
        let key = format!("{root}/active");
        let txn = Txn::new()
            .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key.as_str(),
                broker_id.to_string(),
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(key.as_str(), None)]);
        let response = client.txn(txn).await.map_err(etcd)?;
        if !response.succeeded() {
            let _ = client.lease_revoke(lease).await;
            let holder = response
                .op_responses()
                .into_iter()
                .find_map(|op| match op {
                    etcd_client::TxnOpResponse::Get(get) => get
                        .kvs()
                        .first()
                        .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()),
                    _ => None,
                })
                .unwrap_or_else(|| "?".into());
            return Ok(Err(holder));
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
        Ok(Ok(Hold {
            check,
            lost,
            keep_alive,
            client,
            lease,
        }))
    }

    /// Gives the root up (revokes the lease), so that another broker can
    /// take it at once rather than after the TTL.
    pub async fn release(self) {
        self.keep_alive.abort();
        self.check.hold_until(Instant::now());
        let mut client = self.client.clone();
        if let Err(e) = client.lease_revoke(self.lease).await {
            tracing::warn!(error = %e, "cannot revoke the etcd lease; it ends with its TTL");
        }
    }

    /// The lease by which the root is held.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// A check of the hold for work that must not outlive it.
    pub fn check(&self) -> HoldCheck {
        self.check.clone()
    }

    /// Cancelled once the hold could have ended: stop serving.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }
}

/// Whether a hold is still certain, answered from the clock at once (the
/// keep-alive task may not have run yet after the process was paused).
#[derive(Clone)]
pub struct HoldCheck(Arc<Mutex<Instant>>);

impl HoldCheck {
    pub fn is_held(&self) -> bool {
        Instant::now() < *self.0.lock().expect("hold check lock poisoned")
    }

    fn hold_until(&self, until: Instant) {
        *self.0.lock().expect("hold check lock poisoned") = until;
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.keep_alive.abort();
    }
}

/// Refreshes `lease` every third of `ttl`, moving `check` on; cancels
/// `lost` when no refresh has been confirmed for two thirds of it, or the
/// lease is gone.
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
    while confirmed.elapsed() < margin {
        let attempt = Instant::now();
        let refreshed = async {
            if stream.is_none() {
                stream = Some(client.lease_keep_alive(lease).await?);
            }
            let (keeper, responses) = stream.as_mut().expect("set above");
            keeper.keep_alive().await?;
            responses.message().await
        };
        let result = tokio::time::timeout_at(confirmed + margin, refreshed).await;
        match result {
            Ok(Ok(Some(response))) if response.ttl() > 0 => {
                confirmed = attempt;
                check.hold_until(confirmed + margin);
            }
            // The lease is gone: another broker may hold the root now.
            Ok(Ok(Some(_))) => break,
            _ => stream = None,
        }
        tokio::time::sleep_until((attempt + ttl / 3).min(confirmed + margin)).await;
    }
    tracing::error!("the etcd lease may have ended: stopping so that no two brokers serve");
    check.hold_until(Instant::now());
    lost.cancel();
}
