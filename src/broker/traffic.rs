//! A topic's traffic on `/metrics`: the bytes and messages produced to it
//! and fetched from it (`silt_topic_{bytes,messages}_{in,out}_total`).

use metrics::Counter;

use crate::protocol::batch::{BatchHeader, iter_batches};

/// The counters of one topic, registered once when the topic is loaded.
#[derive(Clone)]
pub struct Traffic {
    bytes_in: Counter,
    messages_in: Counter,
    bytes_out: Counter,
    messages_out: Counter,
}

impl Traffic {
    pub fn of(topic: &str) -> Traffic {
        let counter = |name: &'static str| metrics::counter!(name, "topic" => topic.to_string());
        Traffic {
            bytes_in: counter("silt_topic_bytes_in_total"),
            messages_in: counter("silt_topic_messages_in_total"),
            bytes_out: counter("silt_topic_bytes_out_total"),
            messages_out: counter("silt_topic_messages_out_total"),
        }
    }

    /// Counts a batch appended to the topic.
    pub fn produced(&self, batch: &BatchHeader) {
        self.bytes_in.increment(batch.total_len() as u64);
        self.messages_in.increment(batch.record_count.max(0) as u64);
    }

    /// Counts the batches of a fetch response's partition (transaction
    /// markers are bytes, not messages).
    pub fn fetched(&self, records: &[u8]) {
        self.bytes_out.increment(records.len() as u64);
        let messages: i64 = iter_batches(records)
            .filter(|(header, _)| !header.is_control())
            .map(|(header, _)| i64::from(header.record_count.max(0)))
            .sum();
        self.messages_out.increment(messages as u64);
    }
}
