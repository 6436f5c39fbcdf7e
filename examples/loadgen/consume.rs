//! Consuming: from the beginning (catch-up) or the tail, by assignment of
//! every partition or in a consumer group.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::report::Counters;

/// Where reading starts, and how partitions are handed out.
#[derive(clap::Args)]
pub struct Options {
    #[arg(long, value_enum, default_value_t = From::Beginning)]
    from: From,
    /// Join this consumer group (subscribe) instead of assigning every
    /// partition.
    #[arg(long)]
    group: Option<String>,
    /// Stop after this many seconds (or after --messages).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Consumers reading at once, each on its own thread: members of the
    /// --group, or each assigned every Nth partition.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub consumers: u32,
    /// read_uncommitted or read_committed.
    #[arg(long, default_value = "read_uncommitted")]
    isolation: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum From {
    /// The oldest retained message (catch-up).
    Beginning,
    /// The end of each partition when reading starts.
    Tail,
}

impl Options {
    /// Every partition from its current end.
    pub fn tail() -> Options {
        Options {
            from: From::Tail,
            group: None,
            seconds: None,
            isolation: "read_uncommitted".into(),
            consumers: 1,
        }
    }
}

/// A consumer positioned where `Options` says.
pub struct Consumer(BaseConsumer);

/// A partition that stays silent this long ends a run with an error.
const IDLE_LIMIT: Duration = Duration::from_secs(30);

impl Consumer {
    /// Consumer `member` of `options.consumers`.
    pub fn new(bootstrap: &str, topic: &str, options: &Options, member: u32) -> Consumer {
        let reset = match options.from {
            From::Beginning => "earliest",
            From::Tail => "latest",
        };
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set(
                "group.id",
                options.group.as_deref().unwrap_or("silt-loadgen"),
            )
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", reset)
            .set("fetch.message.max.bytes", "4194304")
            .set("fetch.max.bytes", "67108864")
            .set("isolation.level", &options.isolation)
            .create()
            .expect("create consumer");
        if options.group.is_some() {
            consumer.subscribe(&[topic]).expect("subscribe");
            return Consumer(consumer);
        }
        let timeout = Duration::from_secs(30);
        let metadata = consumer
            .fetch_metadata(Some(topic), timeout)
            .expect("topic metadata");
        let partitions = metadata
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len());
        if partitions == 0 {
            eprintln!("loadgen: topic '{topic}' has no partitions (does it exist?)");
            std::process::exit(1);
        }
        let mut assignment = TopicPartitionList::new();
        let mine = (0..partitions as i32).filter(|p| *p as u32 % options.consumers == member);
        for p in mine {
            let offset = match options.from {
                From::Beginning => Offset::Beginning,
                From::Tail => {
                    let (_, high) = consumer
                        .fetch_watermarks(topic, p, timeout)
                        .expect("partition end");
                    Offset::Offset(high)
                }
            };
            assignment
                .add_partition_offset(topic, p, offset)
                .expect("valid offset");
        }
        consumer.assign(&assignment).expect("assign");
        Consumer(consumer)
    }

    /// Reads until `counters` counted `messages` (this consumer's and any
    /// other's sharing them) or `deadline` passed, handing each payload to
    /// `each`. Exits with an error when none of them got anything for 30 s.
    pub fn read(
        &self,
        messages: Option<u64>,
        deadline: Option<Instant>,
        counters: &Counters,
        mut each: impl FnMut(&[u8]),
    ) {
        let mut last = Instant::now();
        let mut seen = 0;
        let count = || counters.messages.load(Ordering::Relaxed);
        while messages.is_none_or(|m| count() < m) && deadline.is_none_or(|d| Instant::now() < d) {
            match self.0.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    let payload = message.payload().unwrap_or_default();
                    let key = message.key().map_or(0, <[u8]>::len);
                    each(payload);
                    counters.messages.fetch_add(1, Ordering::Relaxed);
                    counters
                        .bytes
                        .fetch_add((payload.len() + key) as u64, Ordering::Relaxed);
                    last = Instant::now();
                }
                Some(Err(e)) => {
                    eprintln!("loadgen: consume error: {e}");
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                }
                None if count() != seen => {
                    seen = count();
                    last = Instant::now();
                }
                None if last.elapsed() > IDLE_LIMIT => {
                    eprintln!("loadgen: no message for {IDLE_LIMIT:?} after {seen}");
                    std::process::exit(1);
                }
                None => {}
            }
        }
    }
}
