//! Kafka Streams (4.1.1) on Silt: the word count of
//! tests/java/src/silt/WordCount.java (a repartition topic, a state store
//! with its changelog topic) under at-least-once and exactly-once-v2, with
//! the broker killed (-9) and restarted mid-stream. The counts it writes
//! must end equal to the words produced (exactly once) or at least them
//! (at least once).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::java::{CURRENT, java};
use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

const WORDS: [&str; 8] = [
    "silt", "kafka", "bucket", "stream", "count", "word", "log", "batch",
];
const PARTITIONS: i32 = 4;

/// The Streams application, killed when dropped.
struct App {
    child: Child,
    running: mpsc::Receiver<()>,
}

impl App {
    fn start(bootstrap: &str, guarantee: &str, state: &std::path::Path) -> App {
        let mut child = java(CURRENT, "silt.WordCount")
            .args([bootstrap, guarantee, &format!("wordcount-{guarantee}")])
            .arg(state)
            .stdout(Stdio::piped())
            .spawn()
            .expect("java");
        let stdout = child.stdout.take().unwrap();
        let (tx, running) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == "RUNNING" {
                    let _ = tx.send(());
                }
            }
        });
        App { child, running }
    }

    fn wait_running(&self) {
        self.running
            .recv_timeout(Duration::from_secs(90))
            .expect("the application reaches RUNNING");
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Produces lines `range` (each of three words) to `words-in`, idempotently
/// and acknowledged; adds the words to `expected`.
fn produce_lines(addr: &str, range: std::ops::Range<usize>, expected: &mut BTreeMap<String, i64>) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "120000")
        .create()
        .expect("producer");
    for i in range {
        let words: Vec<&str> = (0..3)
            .map(|j| WORDS[(i * 7 + j * 3) % WORDS.len()])
            .collect();
        let line = words.join(" ");
        for word in &words {
            *expected.entry(word.to_string()).or_default() += 1;
        }
        let key = i.to_string();
        producer
            .send(BaseRecord::to("words-in").key(&key).payload(&line))
            .expect("enqueue");
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("every line acknowledged");
}

/// Reads `counts-out` (read_committed) until the newest count of each word
/// `holds` against the expected one, or panics after `deadline`.
fn wait_for_counts(
    addr: &str,
    expected: &BTreeMap<String, i64>,
    holds: impl Fn(i64, i64) -> bool,
    deadline: Duration,
) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "counts-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment
            .add_partition_offset("counts-out", p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut counts = BTreeMap::new();
    let start = Instant::now();
    loop {
        let matches = counts.len() == expected.len()
            && expected
                .iter()
                .all(|(word, want)| counts.get(word).is_some_and(|got| holds(*got, *want)));
        if matches {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "counts {counts:?}, expected {expected:?}"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("consume");
            let word = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
            let value: [u8; 8] = message
                .payload()
                .unwrap_or_default()
                .try_into()
                .expect("a long");
            counts.insert(word, i64::from_be_bytes(value));
        }
    }
}

/// Word count under `guarantee`: 2,000 lines counted, the broker killed
/// while 2,000 more are produced and restarted on its disk; the final
/// counts `hold` against the words produced.
fn word_count(guarantee: &str, holds: impl Fn(i64, i64) -> bool + Copy) {
    let mut broker = Broker::start(&[]);
    create_topic(&broker, "words-in", PARTITIONS as u32);
    create_topic(&broker, "counts-out", PARTITIONS as u32);
    let state = tempfile::tempdir().unwrap();
    let app = App::start(&broker.addr, guarantee, state.path());
    app.wait_running();

    let mut expected = BTreeMap::new();
    produce_lines(&broker.addr, 0..2000, &mut expected);
    wait_for_counts(&broker.addr, &expected, holds, Duration::from_secs(120));

    produce_lines(&broker.addr, 2000..3000, &mut expected);
    broker.kill9();
    broker.restart();
    produce_lines(&broker.addr, 3000..4000, &mut expected);
    wait_for_counts(&broker.addr, &expected, holds, Duration::from_secs(180));
    let mut app = app;
    assert!(
        app.child.try_wait().unwrap().is_none(),
        "the application rode the restart out"
    );
}

#[test]
fn streams_word_count_exactly_once_survives_a_broker_kill() {
    word_count("exactly_once_v2", |got, want| got == want);
}

#[test]
fn streams_word_count_at_least_once_survives_a_broker_kill() {
    word_count("at_least_once", |got, want| got >= want);
}
