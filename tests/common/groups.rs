//! Consumer group members for tests: librdkafka members in threads,
//! kafka-python members as processes, and a watcher that checks, through
//! DescribeGroups, that no partition is ever assigned to two members of the
//! same generation.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::{ConsumerProtocolAssignment, DescribeGroupsRequest, GroupId};
use kafka_protocol::protocol::{Decodable, StrBytes};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, ClientContext, TopicPartitionList};

use super::{Read, python};

/// What a member processed.
pub type Reads = Arc<Mutex<Vec<Read>>>;

/// Counts a member's rebalances and remembers its last assignment.
#[derive(Default, Clone)]
pub struct Rebalances {
    pub count: Arc<AtomicUsize>,
    pub assigned: Arc<Mutex<BTreeSet<i32>>>,
}

impl ClientContext for Rebalances {}

impl ConsumerContext for Rebalances {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.count.fetch_add(1, Ordering::SeqCst);
        let mut assigned = self.assigned.lock().unwrap();
        match rebalance {
            Rebalance::Assign(tpl) => assigned.extend(partitions(tpl)),
            Rebalance::Revoke(tpl) => {
                for p in partitions(tpl) {
                    assigned.remove(&p);
                }
            }
            Rebalance::Error(_) => {}
        }
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

/// A librdkafka group member polling in its own thread.
pub struct RdMember {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub reads: Reads,
    pub rebalances: Rebalances,
}

impl RdMember {
    /// Subscribes to `topic` in `group`; `extra` adds client settings.
    pub fn start(addr: &str, topic: &str, group: &str, extra: &[(&str, &str)]) -> RdMember {
        RdMember::spawn(addr, topic, group, extra, usize::MAX)
    }

    /// A member that stops polling after `limit` messages (staying in the
    /// group), so its committed positions are known.
    pub fn start_limited(addr: &str, topic: &str, group: &str, limit: usize) -> RdMember {
        RdMember::spawn(addr, topic, group, &[], limit)
    }

    fn spawn(
        addr: &str,
        topic: &str,
        group: &str,
        extra: &[(&str, &str)],
        limit: usize,
    ) -> RdMember {
        let rebalances = Rebalances::default();
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", addr)
            .set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500")
            .set("auto.commit.interval.ms", "200")
            // Offsets are stored only for messages the test processed:
            // closing drains librdkafka's queue, which would otherwise
            // count unprocessed messages as consumed.
            .set("enable.auto.offset.store", "false");
        for (k, v) in extra {
            config.set(*k, *v);
        }
        let consumer: BaseConsumer<Rebalances> = config
            .create_with_context(rebalances.clone())
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let reads: Reads = Arc::default();
        let thread = {
            let (stop, reads) = (stop.clone(), reads.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if reads.lock().unwrap().len() >= limit {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                        reads.lock().unwrap().push(Read {
                            partition: m.partition(),
                            offset: m.offset(),
                            key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                        });
                        consumer
                            .store_offset_from_message(&m)
                            .expect("store offset");
                    }
                }
                // Dropping the consumer closes it: commits and leaves the group
                // (a static member does not leave).
                drop(consumer);
            })
        };
        RdMember {
            stop,
            thread: Some(thread),
            reads,
            rebalances,
        }
    }

    /// Closes the consumer and waits for its thread.
    pub fn stop(mut self) -> Vec<Read> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("member thread");
        }
        self.reads.lock().unwrap().clone()
    }
}

/// A kafka-python group member process (tests/python/group_member.py).
pub struct PyMember {
    child: Child,
    pub reads: Reads,
}

impl PyMember {
    pub fn start(addr: &str, topic: &str, group: &str, instance: Option<&str>) -> PyMember {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/group_member.py");
        let mut child = Command::new(python())
            .arg(script)
            .args([addr, topic, group])
            .args(instance)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start group_member.py");
        let stdout = child.stdout.take().expect("piped");
        let reads: Reads = Arc::default();
        let sink = reads.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut parts = line.splitn(3, ' ');
                let (Some(p), Some(o)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let (Ok(partition), Ok(offset)) = (p.parse(), o.parse()) else {
                    continue;
                };
                let key = parts.next().unwrap_or_default().to_string();
                sink.lock().unwrap().push(Read {
                    partition,
                    offset,
                    key,
                });
            }
        });
        PyMember { child, reads }
    }

    /// SIGTERM: the member closes cleanly (LeaveGroup).
    pub fn leave(mut self) -> Vec<Read> {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "kafka-python member exited with {status}");
        self.reads.lock().unwrap().clone()
    }

    /// SIGKILL: a crash, no LeaveGroup.
    pub fn crash(mut self) -> Vec<Read> {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
        self.reads.lock().unwrap().clone()
    }
}

impl Drop for PyMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls DescribeGroups and records every (generation-less) snapshot in
/// which two members held the same partition, and each distinct set of
/// member ids seen.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<(Vec<String>, usize)>>,
}

impl Watcher {
    pub fn start(addr: &str, group: &str) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let (addr, group, flag) = (addr.to_string(), group.to_string(), stop.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut client = silt::client::Client::connect(&addr).await.expect("connect");
                let mut overlaps = Vec::new();
                let mut memberships = BTreeSet::new();
                while !flag.load(Ordering::SeqCst) {
                    let request = DescribeGroupsRequest::default()
                        .with_groups(vec![GroupId(StrBytes::from_string(group.clone()))]);
                    let response = client.call(request, 5).await.expect("describe");
                    let described = &response.groups[0];
                    if described.group_state.as_str() == "Stable" {
                        let mut owner = std::collections::BTreeMap::new();
                        for m in &described.members {
                            for (topic, p) in assigned(&m.member_assignment) {
                                if let Some(other) =
                                    owner.insert((topic.clone(), p), m.member_id.to_string())
                                {
                                    overlaps.push(format!(
                                        "{topic}-{p}: {other} and {}",
                                        m.member_id.as_str()
                                    ));
                                }
                            }
                        }
                        let ids: Vec<String> = described
                            .members
                            .iter()
                            .map(|m| m.member_id.to_string())
                            .collect();
                        memberships.insert(ids);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                (overlaps, memberships.len())
            })
        });
        Watcher {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops watching; returns the overlaps seen and how many distinct
    /// stable memberships were observed.
    pub fn finish(mut self) -> (Vec<String>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().expect("watcher")
    }
}

/// (topic, partition) pairs of a consumer protocol assignment.
pub fn assigned(assignment: &bytes::Bytes) -> Vec<(String, i32)> {
    if assignment.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([assignment[0], assignment[1]]);
    let mut body = assignment.slice(2..);
    let decoded = ConsumerProtocolAssignment::decode(&mut body, version.clamp(0, 3))
        .expect("assignment decodes");
    decoded
        .assigned_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.topic.to_string(), *p)))
        .collect()
}
