//! The load generator: drives any Kafka-compatible broker through
//! librdkafka (the `rdkafka` crate), so the same command measures Silt and
//! any other broker side by side.
//!
//! ```text
//! loadgen produce    --bootstrap HOST:PORT --topic T --messages N [--size 1024]
//!                    [--producers 1] [--acks all] [--idempotence true]
//!                    [--compression none] [--compressible] [--linger-ms 5]
//!                    [--batch-size 1000000] [--rate-mb R] [--transaction-ms T]
//! loadgen consume    --bootstrap HOST:PORT --topic T (--messages N | --seconds S)
//!                    [--from beginning|tail] [--group G] [--consumers N]
//!                    [--isolation read_uncommitted|read_committed]
//! loadgen end-to-end --bootstrap HOST:PORT --topic T --messages N --rate-mb R
//!                    [producer options]
//! loadgen tcp-baseline [--gib 2]
//! ```
//!
//! With `--rate-mb` the load is open-loop: message i is due at
//! start + i/rate and its latency counts from that due time, so a slow
//! broker cannot hide queueing. `end-to-end` tails the topic while it
//! produces and measures send-to-receive latency. `--admin HOST:PORT` (the
//! broker's admin port) adds the broker's own figures over the run, scraped
//! from its `/metrics`. Output: a progress line a second on stderr, then a
//! table and, last, one JSON line on stdout.

mod consume;
mod metrics;
mod produce;
mod report;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use report::{Counters, Latency, Progress, Report};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Produce messages; report acknowledged msgs/s and ack latency.
    Produce {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        options: produce::Options,
    },
    /// Consume a topic; report msgs/s and MB/s.
    Consume {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        options: consume::Options,
    },
    /// Produce at a fixed rate while tailing the topic; report produce and
    /// send-to-receive latency.
    EndToEnd {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        options: produce::Options,
    },
    /// The machine's loopback TCP throughput, the limit a broker on this
    /// machine is measured against.
    TcpBaseline {
        #[arg(long, default_value_t = 2)]
        gib: u64,
    },
}

/// The broker and topic of a run, and how much to send or read.
#[derive(clap::Args)]
struct Target {
    #[arg(long)]
    bootstrap: String,
    #[arg(long)]
    topic: String,
    /// Messages to send, or to read before stopping.
    #[arg(long)]
    messages: Option<u64>,
    /// The broker's admin address (HOST:PORT), to report its own figures.
    #[arg(long)]
    admin: Option<String>,
}

fn main() {
    let report = match Args::parse().command {
        Command::Produce { target, options } => produce(&target, &options),
        Command::Consume { target, options } => consume(&target, &options),
        Command::EndToEnd { target, options } => end_to_end(&target, &options),
        Command::TcpBaseline { gib } => report::tcp_baseline(gib),
    };
    report.print();
}

fn required_messages(target: &Target) -> u64 {
    target.messages.unwrap_or_else(|| {
        eprintln!("loadgen: --messages is required");
        std::process::exit(2)
    })
}

fn produce(target: &Target, options: &produce::Options) -> Report {
    let messages = required_messages(target);
    let counters = Arc::new(Counters::default());
    let producers =
        produce::Producers::connect(&target.bootstrap, &target.topic, options, &counters);
    // After the warm-up, which is not part of the run.
    let before = target.admin.as_deref().map(metrics::scrape);
    let cpu_before = silt::admin::cpu_seconds();
    let progress = Progress::start("acknowledged", counters.clone());
    let run = producers.send(messages, None);
    drop(progress);
    let mut report = Report::new("produce", &counters, run.seconds);
    report.latency("", "ack latency", &run.latency);
    if let Some(commits) = &run.commits {
        report.latency("commit_", "transaction commit latency", commits);
    }
    report.client_cpu(cpu_before);
    report.broker(target.admin.as_deref(), before);
    report
}

fn consume(target: &Target, options: &consume::Options) -> Report {
    if target.messages.is_none() && options.seconds.is_none() {
        eprintln!("loadgen: consume needs --messages or --seconds");
        std::process::exit(2);
    }
    let before = target.admin.as_deref().map(metrics::scrape);
    let cpu_before = silt::admin::cpu_seconds();
    let counters = Arc::new(Counters::default());
    let consumers: Vec<consume::Consumer> = (0..options.consumers)
        .map(|member| consume::Consumer::new(&target.bootstrap, &target.topic, options, member))
        .collect();
    let progress = Progress::start("consumed", counters.clone());
    let deadline = options
        .seconds
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let start = Instant::now();
    std::thread::scope(|scope| {
        for consumer in &consumers {
            scope.spawn(|| consumer.read(target.messages, deadline, &counters, |_| {}));
        }
    });
    drop(progress);
    let mut report = Report::new("consume", &counters, start.elapsed().as_secs_f64());
    report.client_cpu(cpu_before);
    report.broker(target.admin.as_deref(), before);
    report
}

fn end_to_end(target: &Target, options: &produce::Options) -> Report {
    let messages = required_messages(target);
    if options.size < 8 {
        eprintln!("loadgen: end-to-end needs --size of at least 8 (the send time)");
        std::process::exit(2);
    }
    let produced = Arc::new(Counters::default());
    let producers =
        produce::Producers::connect(&target.bootstrap, &target.topic, options, &produced);
    let before = target.admin.as_deref().map(metrics::scrape);
    let cpu_before = silt::admin::cpu_seconds();
    // Positioned after the producers' warm-up messages.
    let tail = consume::Options::tail();
    let consumer = consume::Consumer::new(&target.bootstrap, &target.topic, &tail, 0);
    let epoch = Instant::now();
    let received = Latency::default();
    let consumed = Arc::new(Counters::default());
    let progress = Progress::start("acknowledged", produced.clone());
    let run = std::thread::scope(|scope| {
        scope.spawn(|| {
            consumer.read(Some(messages), None, &consumed, |payload| {
                let sent = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
                received.record(epoch.elapsed().saturating_sub(Duration::from_nanos(sent)));
            })
        });
        producers.send(messages, Some(epoch))
    });
    drop(progress);
    let mut report = Report::new("end-to-end", &produced, run.seconds);
    report.latency("", "ack latency", &run.latency);
    if let Some(commits) = &run.commits {
        report.latency("commit_", "transaction commit latency", commits);
    }
    report.latency("e2e_", "send-to-receive latency", &received);
    report.client_cpu(cpu_before);
    report.broker(target.admin.as_deref(), before);
    report
}
