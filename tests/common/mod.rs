//! Test harness: the real `silt` binary on a free port and a temp data dir,
//! real Kafka clients (librdkafka through the `rdkafka` crate, kafka-python
//! through scripts in tests/python), and waits with deadlines, never sleeps.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

/// Where a broker serves: its Kafka and admin addresses.
type Serving = (String, Option<String>);

/// A broker process started from the `silt` binary.
pub struct Broker {
    child: Option<Child>,
    pub addr: String,
    /// The admin HTTP address, when started with `--admin-listen`.
    pub admin: Option<String>,
    pub data_dir: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The address and admin address, once a starting broker serves.
    pending: Option<Mutex<std::sync::mpsc::Receiver<Serving>>>,
    _tmp: Option<tempfile::TempDir>,
}

impl Broker {
    /// Starts a broker on a fresh data dir with extra `serve` arguments.
    pub fn start(args: &[&str]) -> Broker {
        Broker::start_with_env(args, &[])
    }

    /// Starts a broker with extra `serve` arguments and `SILT_*` settings.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Broker {
        let mut broker = Broker::start_pending(args, env, "127.0.0.1:0");
        broker.wait_serving(Duration::from_secs(60));
        broker
    }

    /// Starts a broker listening on `listen`; [`Broker::wait_serving`]
    /// waits until it serves.
    fn start_pending(args: &[&str], env: &[(&str, &str)], listen: &str) -> Broker {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut broker = Broker {
            child: None,
            addr: listen.to_string(),
            admin: None,
            data_dir: tmp.path().join("data"),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            pending: None,
            _tmp: Some(tmp),
        };
        broker.spawn_pending(listen);
        broker
    }

    /// Waits until the broker serves, for at most `deadline`.
    fn wait_serving(&mut self, deadline: Duration) {
        let pending = self.pending.take().expect("a pending broker");
        let pending = pending.into_inner().expect("not poisoned");
        let (addr, admin) = pending
            .recv_timeout(deadline)
            .unwrap_or_else(|_| panic!("the broker serves within {deadline:?}"));
        self.addr = addr;
        self.admin = admin;
    }

    fn spawn(&mut self, listen: &str) {
        self.spawn_pending(listen);
        self.wait_serving(Duration::from_secs(60));
    }

    fn spawn_pending(&mut self, listen: &str) {
        // Settings from the test's own environment must not leak in.
        let inherited: Vec<String> = std::env::vars()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with("SILT_") || k.starts_with("AWS_"))
            .collect();
        let mut command = Command::new(env!("CARGO_BIN_EXE_silt"));
        for name in inherited {
            command.env_remove(name);
        }
        let mut child = command
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(listen)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info,foyer=warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the silt binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut admin = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("silt: admin listening on ") {
                    admin = Some(addr.to_string());
                }
                if let Some(addr) = line.strip_prefix("silt: listening on ") {
                    let _ = tx.send((addr.to_string(), admin.clone()));
                }
            }
        });
        self.pending = Some(Mutex::new(rx));
        self.child = Some(child);
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("broker running");
        child.kill().expect("kill -9");
        child.wait().expect("reap");
    }

    /// SIGTERM; returns once the broker exited, asserting it exited cleanly
    /// within `deadline`.
    pub fn terminate(&mut self, deadline: Duration) {
        let mut child = self.child.take().expect("broker running");
        let pid = child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(status.success(), "broker exited with {status}");
                return;
            }
            assert!(
                start.elapsed() < deadline,
                "broker did not stop within {deadline:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the broker again on the same data dir and port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the broker first");
        let addr = self.addr.clone();
        // The port was free a moment ago; a restart reuses it so clients
        // configured with it reconnect.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpListener::bind(&addr).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "port {addr} stays busy");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.spawn(&addr);
    }

    /// Deletes the data directory (the broker must be stopped).
    pub fn wipe_data_dir(&mut self) {
        assert!(self.child.is_none(), "stop the broker first");
        std::fs::remove_dir_all(&self.data_dir).expect("remove the data dir");
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker running").id()
    }

    /// The broker's resident memory in bytes (VmRSS).
    pub fn rss_bytes(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("status");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS");
        kb * 1024
    }

    /// The value of a counter or gauge on `/metrics` (summed over labels
    /// matching `labels`, e.g. `kind="put"`).
    pub fn metric(&self, name: &str, labels: &str) -> f64 {
        let admin = self.admin.as_ref().expect("started with --admin-listen");
        let body = http_get(admin, "/metrics");
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .filter(|l| l.contains(labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Waits until the broker exits by itself (at a fail point) within
    /// `deadline`, and reaps it.
    pub fn wait_exit(&mut self, deadline: Duration) {
        wait_until("the broker exits", deadline, || !self.is_running());
        self.child
            .take()
            .expect("broker started")
            .wait()
            .expect("reap");
    }

    /// Leaves the setting `key` out of the next restart.
    pub fn unset_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("wait").is_none())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A plain HTTP/1.1 GET; returns the body.
pub fn http_get(addr: &str, path: &str) -> String {
    http_request(addr, "GET", path, None)
}

/// An HTTP/1.1 request to `addr` (with a JSON `body`, if given); the
/// response body.
pub fn http_request(addr: &str, method: &str, path: &str, body: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

/// Runs the `silt` CLI; returns (success, stdout, stderr).
pub fn silt(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_silt"))
        .args(args)
        .output()
        .expect("run silt");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Creates a topic with the CLI, asserting success.
pub fn create_topic(broker: &Broker, topic: &str, partitions: u32) {
    let p = partitions.to_string();
    let (ok, _, err) = silt(&[
        "topic",
        "create",
        topic,
        "--partitions",
        &p,
        "--bootstrap-server",
        &broker.addr,
    ]);
    assert!(ok, "topic create failed: {err}");
}

/// The Python with kafka-python installed (`KAFKA_PYTHON`, default
/// `/var/tmp/venv-kafka/bin/python`, which `.ci/run` creates).
pub fn python() -> PathBuf {
    let path =
        std::env::var("KAFKA_PYTHON").unwrap_or_else(|_| "/var/tmp/venv-kafka/bin/python".into());
    let path = PathBuf::from(path);
    assert!(
        path.exists(),
        "{} not found: run .ci/run or set KAFKA_PYTHON to a Python with kafka-python",
        path.display()
    );
    path
}

/// Runs `tests/python/<script>` with `args`; returns its stdout lines.
pub fn run_python(script: &str, args: &[&str]) -> Vec<String> {
    try_python(script, args).unwrap_or_else(|e| panic!("{script} failed: {e}"))
}

/// Runs a script of `tests/python`: its stdout lines, or its stderr if it
/// fails.
pub fn try_python(script: &str, args: &[&str]) -> Result<Vec<String>, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let out = Command::new(python())
        .arg(path)
        .args(args)
        .output()
        .expect("run python");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// Where the broker acknowledged one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ack {
    pub partition: i32,
    pub offset: i64,
}

/// Collects delivery reports: acknowledged keys with their position, and failures.
#[derive(Default, Clone)]
pub struct Deliveries {
    pub acked: Arc<Mutex<BTreeMap<String, Ack>>>,
    pub failed: Arc<Mutex<Vec<String>>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
                let ack = Ack {
                    partition: message.partition(),
                    offset: message.offset(),
                };
                let previous = self.acked.lock().unwrap().insert(key.clone(), ack);
                assert!(previous.is_none(), "key {key} acknowledged twice");
            }
            Err((_, message)) => {
                let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
                self.failed.lock().unwrap().push(key);
            }
        }
    }
}

/// An idempotent librdkafka producer with acks=all.
pub fn idempotent_producer(addr: &str, deliveries: &Deliveries) -> ThreadedProducer<Deliveries> {
    producer_with(addr, deliveries, &[])
}

/// A librdkafka producer configured as [`idempotent_producer`], then with
/// `settings` (which may turn idempotence off).
pub fn producer_with(
    addr: &str,
    deliveries: &Deliveries,
    settings: &[(&str, &str)],
) -> ThreadedProducer<Deliveries> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .set("retry.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "500");
    for (key, value) in settings {
        config.set(*key, *value);
    }
    config
        .create_with_context(deliveries.clone())
        .expect("create producer")
}

/// Sends `count` keyed messages `key-<start+i>`; blocks while the queue is
/// full. Values are `value-<i>` padded to `value_size` bytes.
pub fn produce_keyed(
    producer: &ThreadedProducer<Deliveries>,
    topic: &str,
    range: std::ops::Range<u64>,
    value_size: usize,
) {
    for i in range {
        let key = format!("key-{i}");
        let mut value = format!("value-{i}-");
        value.extend(std::iter::repeat_n(
            'x',
            value_size.saturating_sub(value.len()),
        ));
        let mut record = BaseRecord::to(topic).key(&key).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, r))
                    if e.rdkafka_error_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => panic!("produce failed: {e}"),
            }
        }
    }
}

/// A message read back: key, partition and offset.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
}

/// Reads partitions `0..partitions` of `topic` from the beginning with
/// librdkafka until `count` messages arrived (or `deadline` passed).
pub fn read_all_rdkafka(
    addr: &str,
    topic: &str,
    partitions: i32,
    count: usize,
    deadline: Duration,
) -> Vec<Read> {
    read_rdkafka_with(addr, topic, partitions, count, deadline, &[])
}

/// [`read_all_rdkafka`] with consumer `settings` (e.g. `isolation.level`).
pub fn read_rdkafka_with(
    addr: &str,
    topic: &str,
    partitions: i32,
    count: usize,
    deadline: Duration,
    settings: &[(&str, &str)],
) -> Vec<Read> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("group.id", "silt-test-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    for (key, value) in settings {
        config.set(*key, *value);
    }
    let consumer: BaseConsumer = config.create().expect("create consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("assign");
    }
    consumer.assign(&assignment).expect("assign");
    let start = Instant::now();
    let mut out = Vec::with_capacity(count);
    while out.len() < count && start.elapsed() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("consume");
            out.push(Read {
                partition: message.partition(),
                offset: message.offset(),
                key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
            });
        }
    }
    out
}

/// Reads with kafka-python (tests/python/consume_all.py).
pub fn read_all_kafka_python(
    addr: &str,
    topic: &str,
    count: usize,
    deadline: Duration,
) -> Vec<Read> {
    let lines = run_python(
        "consume_all.py",
        &[
            addr,
            topic,
            &count.to_string(),
            &deadline.as_secs().to_string(),
        ],
    );
    lines
        .iter()
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let partition = parts
                .next()
                .and_then(|p| p.parse().ok())
                .expect("partition");
            let offset = parts.next().and_then(|p| p.parse().ok()).expect("offset");
            let key = parts.next().unwrap_or_default().to_string();
            Read {
                partition,
                offset,
                key,
            }
        })
        .collect()
}

/// Asserts that every acknowledged key was read exactly once, at its
/// acknowledged position, that no key was read twice, and that each
/// partition's offsets increase.
pub fn assert_exactly_once(acked: &BTreeMap<String, Ack>, reads: &[Read]) {
    let mut seen: BTreeMap<&str, Ack> = BTreeMap::new();
    let mut last_offset: BTreeMap<i32, i64> = BTreeMap::new();
    for read in reads {
        let ack = Ack {
            partition: read.partition,
            offset: read.offset,
        };
        assert!(
            seen.insert(&read.key, ack).is_none(),
            "key {} read twice",
            read.key
        );
        let last = last_offset.entry(read.partition).or_insert(-1);
        assert!(
            read.offset > *last,
            "partition {} went back from {} to {}",
            read.partition,
            last,
            read.offset
        );
        *last = read.offset;
    }
    for (key, ack) in acked {
        match seen.get(key.as_str()) {
            Some(found) => assert_eq!(
                found, ack,
                "key {key} read at another position than acknowledged"
            ),
            None => panic!("acknowledged key {key} was never read (acked at {ack:?})"),
        }
    }
}

/// Waits until `condition` holds, polling, or panics after `deadline`.
pub fn wait_until(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
pub mod etcd;
pub mod groups;
pub mod java;
pub mod ledger;
pub mod proxy;
pub mod s3;
pub mod scenarios;
pub mod security;
pub mod transactions;

/// Commits `offset` for `group` on `topic`'s `partition` (librdkafka), as a
/// consumer that read that far would.
pub fn commit_group_offset(addr: &str, group: &str, topic: &str, partition: i32, offset: i64) {
    use rdkafka::consumer::CommitMode;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut committed = TopicPartitionList::new();
    committed
        .add_partition_offset(topic, partition, Offset::Offset(offset))
        .unwrap();
    consumer
        .commit(&committed, CommitMode::Sync)
        .expect("commit");
}
