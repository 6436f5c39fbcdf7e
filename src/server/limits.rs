//! Connection limits: how many connections may be open at once, overall
//! and from one IP, and how many may be opened per second. A connection
//! over a limit is refused as it arrives (and closed), so the others are
//! not affected.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::Limits;

/// Why a new connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("too many connections (limits.max_connections)")]
    TooMany,
    #[error("too many connections from this IP (limits.max_connections_per_ip)")]
    TooManyFromIp,
    #[error("connections opened too fast (limits.max_connection_creation_rate)")]
    TooFast,
}

impl Refusal {
    /// A short name for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::TooMany => "max_connections",
            Refusal::TooManyFromIp => "max_connections_per_ip",
            Refusal::TooFast => "creation_rate",
        }
    }
}

/// The limits and the connections they count.
pub struct ConnectionLimits {
    max_total: Option<u32>,
    max_per_ip: Option<u32>,
    rate: Option<u32>,
    state: Mutex<State>,
}

struct State {
    total: u32,
    per_ip: HashMap<IpAddr, u32>,
    /// Connections that may still be opened now (the rate's bucket).
    tokens: f64,
    refilled: Instant,
}

/// An admitted connection: counted until dropped.
pub struct Admitted {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl ConnectionLimits {
    /// The limits of `limits`.
    pub fn new(limits: &Limits) -> Arc<ConnectionLimits> {
        let rate = limits.max_connection_creation_rate;
        Arc::new(ConnectionLimits {
            max_total: limits.max_connections,
            max_per_ip: limits.max_connections_per_ip,
            rate,
            state: Mutex::new(State {
                total: 0,
                per_ip: HashMap::new(),
                tokens: f64::from(rate.unwrap_or(0)),
                refilled: Instant::now(),
            }),
        })
    }

    /// Counts a new connection from `ip` at `now`, unless it is over a
    /// limit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<Admitted, Refusal> {
        let mut state = self.state.lock().expect("connection limits poisoned");
        if self.max_total.is_some_and(|max| state.total >= max) {
            return Err(Refusal::TooMany);
        }
        let from_ip = state.per_ip.get(&ip).copied().unwrap_or(0);
        if self.max_per_ip.is_some_and(|max| from_ip >= max) {
            return Err(Refusal::TooManyFromIp);
        }
        if let Some(rate) = self.rate {
            let rate = f64::from(rate);
            let elapsed = now.saturating_duration_since(state.refilled).as_secs_f64();
            state.tokens = (state.tokens + elapsed * rate).min(rate);
            state.refilled = now;
            if state.tokens < 1.0 {
                return Err(Refusal::TooFast);
            }
            state.tokens -= 1.0;
        }
        state.total += 1;
        *state.per_ip.entry(ip).or_default() += 1;
        metrics::gauge!("silt_connections").increment(1.0);
        Ok(Admitted {
            limits: self.clone(),
            ip,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut state = self
            .limits
            .state
            .lock()
            .expect("connection limits poisoned");
        state.total -= 1;
        metrics::gauge!("silt_connections").decrement(1.0);
        if let Some(n) = state.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                state.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(total: Option<u32>, per_ip: Option<u32>, rate: Option<u32>) -> Arc<ConnectionLimits> {
        ConnectionLimits::new(&Limits {
            max_connections: total,
            max_connections_per_ip: per_ip,
            max_connection_creation_rate: rate,
            ..Limits::default()
        })
    }

    #[test]
    fn counts_overall_and_per_ip_until_connections_close() {
        let l = limits(Some(3), Some(2), None);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let now = Instant::now();
        let first = l.admit(a, now).unwrap();
        let _second = l.admit(a, now).unwrap();
        assert_eq!(l.admit(a, now).err(), Some(Refusal::TooManyFromIp));
        let _third = l.admit(b, now).unwrap();
        assert_eq!(l.admit(b, now).err(), Some(Refusal::TooMany));
        drop(first);
        assert!(
            l.admit(a, now).is_ok(),
            "a closed connection frees its place"
        );
    }

    #[test]
    fn the_creation_rate_refills_over_time() {
        let l = limits(None, None, Some(2));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let start = Instant::now();
        let _a = l.admit(ip, start).unwrap();
        let _b = l.admit(ip, start).unwrap();
        assert_eq!(l.admit(ip, start).err(), Some(Refusal::TooFast));
        let later = start + Duration::from_millis(500);
        assert!(l.admit(ip, later).is_ok(), "one more after half a second");
        assert_eq!(l.admit(ip, later).err(), Some(Refusal::TooFast));
    }
}
