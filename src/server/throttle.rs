//! Client quotas on the request path: what a request used (record bytes
//! produced or fetched, and the time its handler ran, measured as time
//! spent polling it, not waiting), and the throttle a response carries
//! (`throttle_time_ms` in Produce and Fetch responses; the connection
//! reads nothing more until it has passed, whatever the API).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use kafka_protocol::messages::{RequestKind, ResponseKind};

/// Record bytes a produce request carries.
pub fn produced(request: &RequestKind) -> u64 {
    match request {
        RequestKind::Produce(r) => r
            .topic_data
            .iter()
            .flat_map(|t| &t.partition_data)
            .filter_map(|p| p.records.as_ref())
            .map(|records| records.len() as u64)
            .sum(),
        _ => 0,
    }
}

/// Record bytes a fetch response carries.
pub fn fetched(response: &ResponseKind) -> u64 {
    match response {
        ResponseKind::Fetch(r) => r
            .responses
            .iter()
            .flat_map(|t| &t.partitions)
            .filter_map(|p| p.records.as_ref())
            .map(|records| records.len() as u64)
            .sum(),
        _ => 0,
    }
}

/// Tells the client of a throttle in the responses that carry one.
pub fn set_throttle(response: &mut ResponseKind, throttle: Duration) {
    let ms = throttle.as_millis().min(i32::MAX as u128) as i32;
    match response {
        ResponseKind::Produce(r) => r.throttle_time_ms = ms,
        ResponseKind::Fetch(r) => r.throttle_time_ms = ms,
        _ => {}
    }
}

/// A future that counts the time spent polling it.
pub struct Timed<F> {
    inner: F,
    busy: Duration,
}

impl<F> Timed<F> {
    pub fn new(inner: F) -> Timed<F> {
        Timed {
            inner,
            busy: Duration::ZERO,
        }
    }
}

impl<F: Future + Unpin> Future for Timed<F> {
    type Output = (F::Output, Duration);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let started = Instant::now();
        let polled = Pin::new(&mut self.inner).poll(cx);
        self.busy += started.elapsed();
        polled.map(|output| (output, self.busy))
    }
}
