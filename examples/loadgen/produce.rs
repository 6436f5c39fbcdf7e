//! Producing: K librdkafka producers share the messages, closed-loop (as
//! fast as acknowledgements allow) or open-loop at a fixed rate.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};

use crate::report::{Counters, Latency};

/// How messages are made and sent.
#[derive(clap::Args)]
pub struct Options {
    /// Message size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Producer instances (each with its own connections).
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    idempotence: bool,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    /// Text-like payloads that compress about 3:1, instead of random bytes.
    #[arg(long)]
    compressible: bool,
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    #[arg(long, default_value_t = 1_000_000)]
    batch_size: usize,
    /// Target rate in MB/s over all producers (open loop); as fast as
    /// possible when absent.
    #[arg(long)]
    rate_mb: Option<f64>,
    /// Any other librdkafka producer setting (repeatable).
    #[arg(long = "client", value_name = "KEY=VALUE")]
    client: Vec<String>,
    /// Transactional producers, each committing a transaction every this
    /// many milliseconds (the commit's round trip is reported).
    #[arg(long)]
    pub transaction_ms: Option<u64>,
}

/// What a produce run measured.
pub struct Run {
    pub seconds: f64,
    pub latency: Latency,
    /// How long each transaction's commit took (transactional runs).
    pub commits: Option<Latency>,
}

/// Counts each acknowledgement and its latency from the message's due time.
struct Deliveries {
    counters: Arc<Counters>,
    latency: Latency,
    size: u64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, due: Box<Instant>) {
        match result {
            Ok(_) => {
                self.latency.record(due.elapsed());
                self.counters.messages.fetch_add(1, Ordering::Relaxed);
                self.counters.bytes.fetch_add(self.size, Ordering::Relaxed);
            }
            Err(_) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Connected, warmed-up producers and the payloads they send.
pub struct Producers<'a> {
    topic: &'a str,
    options: &'a Options,
    producers: Vec<ThreadedProducer<Deliveries>>,
    latency: Latency,
    payloads: Vec<Vec<u8>>,
}

impl<'a> Producers<'a> {
    /// Creates the producers and sends one message through each, so that
    /// metadata, connections and producer ids are settled before the clock
    /// starts; acknowledgements are counted into `counters` from then on.
    pub fn connect(
        bootstrap: &str,
        topic: &'a str,
        options: &'a Options,
        counters: &Arc<Counters>,
    ) -> Producers<'a> {
        let latency = Latency::default();
        let payloads = payloads(options.size, options.compressible);
        let producers = (0..options.producers.max(1))
            .map(|k| {
                let deliveries = Deliveries {
                    counters: counters.clone(),
                    latency: latency.clone(),
                    size: options.size as u64,
                };
                let mut config = ClientConfig::new();
                config
                    .set("bootstrap.servers", bootstrap)
                    .set("acks", &options.acks)
                    .set("enable.idempotence", options.idempotence.to_string())
                    .set("compression.codec", &options.compression)
                    .set("linger.ms", options.linger_ms.to_string())
                    .set("batch.size", options.batch_size.to_string())
                    .set("queue.buffering.max.kbytes", "1048576")
                    .set("queue.buffering.max.messages", "1000000")
                    .set("message.timeout.ms", "120000");
                for setting in &options.client {
                    let Some((key, value)) = setting.split_once('=') else {
                        eprintln!("loadgen: --client takes KEY=VALUE, not '{setting}'");
                        std::process::exit(2);
                    };
                    config.set(key, value);
                }
                if options.transaction_ms.is_some() {
                    let id = format!("loadgen-{}-{k}", std::process::id());
                    // At least message.timeout.ms, as librdkafka requires.
                    config
                        .set("transactional.id", id)
                        .set("transaction.timeout.ms", "120000");
                }
                let producer: ThreadedProducer<Deliveries> = config
                    .create_with_context(deliveries)
                    .expect("create producer");
                if options.transaction_ms.is_some() {
                    producer
                        .init_transactions(Duration::from_secs(30))
                        .expect("init transactions");
                    producer.begin_transaction().expect("begin");
                }
                send(&producer, topic, &payloads[0], Instant::now());
                if options.transaction_ms.is_some() {
                    producer
                        .commit_transaction(Duration::from_secs(30))
                        .expect("warm-up commit");
                }
                producer
                    .flush(Duration::from_secs(30))
                    .expect("warm-up flush");
                producer
            })
            .collect();
        // The warm-up messages are not part of the run.
        counters.reset();
        latency.reset();
        Producers {
            topic,
            options,
            producers,
            latency,
            payloads,
        }
    }

    /// Sends `messages`, message i from producer i mod K, and waits for
    /// every acknowledgement. With `stamp`, each payload starts with its due
    /// time in nanoseconds since `stamp` (little-endian), for end-to-end
    /// latency.
    pub fn send(self, messages: u64, stamp: Option<Instant>) -> Run {
        let interval = self
            .options
            .rate_mb
            .map(|mb| Duration::from_secs_f64(self.options.size as f64 / (mb * 1e6)));
        let count = self.producers.len() as u64;
        let every = self.options.transaction_ms.map(Duration::from_millis);
        let commits = Latency::default();
        let start = Instant::now();
        std::thread::scope(|scope| {
            for (k, producer) in self.producers.iter().enumerate() {
                let payloads = &self.payloads;
                let topic = self.topic;
                let commits = &commits;
                scope.spawn(move || {
                    let mut stamped = payloads[0].clone();
                    let mut transaction = every.map(|_| begin(producer));
                    for i in (k as u64..messages).step_by(count as usize) {
                        if let (Some(every), Some(began)) = (every, transaction)
                            && began.elapsed() >= every
                        {
                            commit(producer, commits);
                            transaction = Some(begin(producer));
                        }
                        let due = match interval {
                            Some(interval) => {
                                let due = start + interval.mul_f64(i as f64);
                                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                    std::thread::sleep(wait);
                                }
                                due
                            }
                            None => Instant::now(),
                        };
                        let payload = &payloads[(i % payloads.len() as u64) as usize];
                        match stamp {
                            Some(epoch) => {
                                stamped.copy_from_slice(payload);
                                let nanos = due.duration_since(epoch).as_nanos() as u64;
                                stamped[..8].copy_from_slice(&nanos.to_le_bytes());
                                send(producer, topic, &stamped, due);
                            }
                            None => send(producer, topic, payload, due),
                        }
                    }
                    if transaction.is_some() {
                        commit(producer, commits);
                    }
                    producer
                        .flush(Duration::from_secs(300))
                        .expect("every message acknowledged or failed within 300 s");
                });
            }
        });
        Run {
            seconds: start.elapsed().as_secs_f64(),
            latency: self.latency,
            commits: every.map(|_| commits),
        }
    }
}

/// Begins a transaction; returns when.
fn begin(producer: &ThreadedProducer<Deliveries>) -> Instant {
    producer.begin_transaction().expect("begin a transaction");
    Instant::now()
}

/// Commits the producer's transaction, recording how long it took.
fn commit(producer: &ThreadedProducer<Deliveries>, commits: &Latency) {
    let started = Instant::now();
    producer
        .commit_transaction(Duration::from_secs(120))
        .expect("commit the transaction");
    commits.record(started.elapsed());
}

/// Sends `payload` as due at `due`, waiting while the local queue is full.
fn send(producer: &ThreadedProducer<Deliveries>, topic: &str, payload: &[u8], due: Instant) {
    let mut record =
        BaseRecord::<(), [u8], _>::with_opaque_to(topic, Box::new(due)).payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, r)) => {
                record = r;
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
}

/// A few distinct payloads of `size` bytes: random, or words that
/// compress like text.
fn payloads(size: usize, compressible: bool) -> Vec<Vec<u8>> {
    const WORDS: [&[u8]; 16] = [
        b"user", b"order", b"click", b"page", b"session", b"amount", b"status", b"ok", b"region",
        b"eu", b"us", b"device", b"mobile", b"web", b"ts", b"id",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..64)
        .map(|_| {
            let mut payload = Vec::with_capacity(size + 16);
            while payload.len() < size {
                if compressible {
                    let r = next();
                    payload.extend_from_slice(WORDS[(r % 16) as usize]);
                    payload.push(b'=');
                    payload.extend_from_slice(format!("{}", (r >> 8) % 1000).as_bytes());
                    payload.push(b' ');
                } else {
                    payload.extend_from_slice(&next().to_le_bytes());
                }
            }
            payload.truncate(size);
            payload
        })
        .collect()
}
