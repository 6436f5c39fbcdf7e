//! Load generator for benchmarks: drives any Kafka-compatible broker through
//! librdkafka and reports throughput and latency percentiles.
//!
//! ```text
//! cargo run --release --example loadgen -- produce --bootstrap 127.0.0.1:9092 --topic bench \
//!     --messages 1000000 --size 1024 [--rate-mb 50]
//! cargo run --release --example loadgen -- consume --bootstrap 127.0.0.1:9092 --topic bench \
//!     --messages 1000000 --partitions 8
//! ```
//! With `--rate-mb` the load is open-loop: message i is due at start + i/rate
//! and its latency counts from that due time, so a slow broker cannot hide
//! queueing. Output: a summary line, then one JSON line.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Produce messages and report acks/s and ack latency.
    Produce(ProduceArgs),
    /// Read a topic from the beginning and report MB/s.
    Consume(ConsumeArgs),
}

/// The broker, topic and message count of a run.
#[derive(clap::Args)]
struct Target {
    #[arg(long)]
    bootstrap: String,
    #[arg(long)]
    topic: String,
    #[arg(long)]
    messages: u64,
}

#[derive(clap::Args)]
struct ProduceArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Target rate in MB/s (open loop); as fast as possible when absent.
    #[arg(long)]
    rate_mb: Option<f64>,
    #[arg(long, default_value = "all")]
    acks: String,
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    idempotence: bool,
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
}

#[derive(clap::Args)]
struct ConsumeArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long)]
    partitions: i32,
}

#[derive(Clone)]
struct Latencies {
    histogram: Arc<Mutex<Histogram<u64>>>,
    errors: Arc<Mutex<u64>>,
}

impl ClientContext for Latencies {}

impl ProducerContext for Latencies {
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, due: Box<Instant>) {
        match result {
            Ok(_) => {
                let micros = due.elapsed().as_micros() as u64;
                let _ = self.histogram.lock().unwrap().record(micros.max(1));
            }
            Err(_) => *self.errors.lock().unwrap() += 1,
        }
    }
}

fn main() {
    match Args::parse().command {
        Command::Produce(args) => produce(&args),
        Command::Consume(args) => consume(&args),
    }
}

fn produce(args: &ProduceArgs) {
    let ProduceArgs {
        target: Target {
            bootstrap,
            topic,
            messages,
        },
        size,
        rate_mb,
        acks,
        idempotence,
        linger_ms,
    } = args;
    let (topic, messages, size) = (topic.as_str(), *messages, *size);
    let latencies = Latencies {
        histogram: Arc::new(Mutex::new(
            Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
        )),
        errors: Arc::new(Mutex::new(0)),
    };
    let producer: ThreadedProducer<Latencies> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", acks.as_str())
        .set("enable.idempotence", idempotence.to_string())
        .set("linger.ms", linger_ms.to_string())
        .set("batch.size", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("queue.buffering.max.messages", "1000000")
        .set("message.timeout.ms", "120000")
        .create_with_context(latencies.clone())
        .expect("create producer");
    // Incompressible payloads from a xorshift stream, a few distinct ones.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let payloads: Vec<Vec<u8>> = (0..64)
        .map(|_| {
            (0..size)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect()
        })
        .collect();
    // Warm up: metadata, connections and the producer id, before the clock starts.
    let warm_up = BaseRecord::<(), [u8], _>::with_opaque_to(topic, Box::new(Instant::now()))
        .payload(&payloads[0][..]);
    producer
        .send(warm_up)
        .map_err(|(e, _)| e)
        .expect("warm-up send");
    producer
        .flush(Duration::from_secs(30))
        .expect("warm-up flush");
    latencies.histogram.lock().unwrap().reset();
    let interval = rate_mb.map(|mb| Duration::from_secs_f64(size as f64 / (mb * 1_000_000.0)));
    let start = Instant::now();
    let mut last_report = start;
    for i in 0..messages {
        let due = match interval {
            Some(interval) => {
                let due = start + interval.mul_f64(i as f64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                due
            }
            None => Instant::now(),
        };
        let payload = &payloads[(i % 64) as usize];
        let mut record = BaseRecord::<(), [u8], _>::with_opaque_to(topic, Box::new(due))
            .payload(payload.as_slice());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "  sent {i} messages, {:.1} MB/s",
                i as f64 * size as f64 / secs / 1e6
            );
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    let elapsed = start.elapsed().as_secs_f64();
    let h = latencies.histogram.lock().unwrap();
    let errors = *latencies.errors.lock().unwrap();
    let mb_s = messages as f64 * size as f64 / elapsed / 1e6;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "produce: {messages} x {size} B in {elapsed:.2} s: {:.0} msg/s, {mb_s:.1} MB/s; latency ms p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}; errors {errors}",
        messages as f64 / elapsed,
        ms(0.5),
        ms(0.99),
        ms(0.999),
        h.max() as f64 / 1000.0
    );
    println!(
        "{{\"kind\":\"produce\",\"messages\":{messages},\"size\":{size},\"seconds\":{elapsed:.3},\"mb_per_s\":{mb_s:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3},\"max_ms\":{:.3},\"errors\":{errors}}}",
        ms(0.5),
        ms(0.99),
        ms(0.999),
        h.max() as f64 / 1000.0
    );
}

fn consume(args: &ConsumeArgs) {
    let Target {
        bootstrap,
        topic,
        messages,
    } = &args.target;
    let (topic, messages, partitions) = (topic.as_str(), *messages, args.partitions);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "silt-loadgen")
        .set("enable.auto.commit", "false")
        .set("fetch.message.max.bytes", "4194304")
        .set("fetch.max.bytes", "67108864")
        .create()
        .expect("create consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let start = Instant::now();
    let (mut count, mut bytes) = (0u64, 0u64);
    while count < messages {
        if let Some(message) = consumer.poll(Duration::from_secs(10)) {
            let message = message.expect("consume");
            count += 1;
            bytes += message.payload().map_or(0, |p| p.len() as u64);
        } else {
            panic!("no message for 10 s after {count}");
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mb_s = bytes as f64 / elapsed / 1e6;
    println!(
        "consume: {count} messages, {bytes} B in {elapsed:.2} s: {:.0} msg/s, {mb_s:.1} MB/s",
        count as f64 / elapsed
    );
    println!(
        "{{\"kind\":\"consume\",\"messages\":{count},\"bytes\":{bytes},\"seconds\":{elapsed:.3},\"mb_per_s\":{mb_s:.1}}}"
    );
}
