//! Cluster mode on a real etcd and a real S3-compatible server (both
//! started by `.ci/run`), with real clients: several brokers share the
//! partitions; a broker killed, paused, added or removed moves leaderships
//! (and group coordinators) without losing or duplicating anything
//! acknowledged.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::etcd::EtcdCluster;
use common::groups::RdMember;
use common::s3::*;
use common::*;
use rdkafka::producer::Producer;

/// Brokers `ids` of one cluster (fresh etcd root and bucket prefix), in
/// `object` durability (the cluster default).
struct Cluster {
    meta: String,
    url: String,
    lease_seconds: &'static str,
    /// More `serve` arguments and settings for every broker.
    args: Vec<&'static str>,
    env: Vec<(&'static str, &'static str)>,
    brokers: BTreeMap<i32, Broker>,
}

impl Cluster {
    /// Brokers on a fresh root of the test etcd, with short leases.
    fn start(ids: &[i32]) -> Cluster {
        Cluster::start_on(etcd_root(), LEASE_SECONDS, ids)
    }

    /// Brokers on the etcd root `meta`, with leases of `lease_seconds`.
    fn start_on(meta: String, lease_seconds: &'static str, ids: &[i32]) -> Cluster {
        Cluster::start_with(meta, lease_seconds, &[], &[], ids)
    }

    /// The same, with more `serve` arguments and settings.
    fn start_with(
        meta: String,
        lease_seconds: &'static str,
        args: &[&'static str],
        env: &[(&'static str, &'static str)],
        ids: &[i32],
    ) -> Cluster {
        let mut cluster = Cluster {
            meta,
            url: bucket_url(),
            lease_seconds,
            args: args.to_vec(),
            env: env.to_vec(),
            brokers: BTreeMap::new(),
        };
        for id in ids {
            cluster.add(*id);
        }
        cluster
    }

    /// Starts broker `id` and waits until it serves.
    fn add(&mut self, id: i32) -> &Broker {
        self.add_with(id, &[])
    }

    /// Starts broker `id` with settings of its own too, and waits until
    /// it serves.
    fn add_with(&mut self, id: i32, own: &[(&'static str, &'static str)]) -> &Broker {
        let id_text = id.to_string();
        let mut args = vec!["--broker-id", &id_text, "--meta", &self.meta];
        args.extend(&self.args);
        let mut env = vec![("SILT_STORAGE__META_LEASE_SECONDS", self.lease_seconds)];
        env.extend(&self.env);
        env.extend(own);
        let broker = start(&endpoint(), &self.url, &args, &env);
        self.brokers.insert(id, broker);
        &self.brokers[&id]
    }

    /// Creates `topic` through broker 1 and waits until its partitions
    /// are led evenly by all the brokers; returns the leaders.
    fn create_led_topic(&self, topic: &str, partitions: i32) -> BTreeMap<i32, (i32, i32)> {
        create_topic(&self.brokers[&1], topic, partitions as u32);
        let ids: Vec<i32> = self.brokers.keys().copied().collect();
        wait_for_leaders(
            self.addr(1),
            topic,
            partitions,
            &ids,
            Duration::from_secs(30),
        )
    }

    fn addr(&self, id: i32) -> &str {
        &self.brokers[&id].addr
    }

    /// Every broker's address, for a client that knows them all.
    fn bootstrap(&self) -> String {
        let addrs: Vec<&str> = self.brokers.values().map(|b| b.addr.as_str()).collect();
        addrs.join(",")
    }
}

/// `silt cluster describe` through `addr`: the live brokers, and each
/// partition of `topic` with its (leader, leader epoch).
fn describe(addr: &str, topic: &str) -> (Vec<i32>, BTreeMap<i32, (i32, i32)>) {
    let (ok, out, err) = silt(&["cluster", "describe", "--bootstrap-server", addr]);
    assert!(ok, "{err}");
    let mut brokers = Vec::new();
    let mut leaders = BTreeMap::new();
    for line in out.lines() {
        let fields: BTreeMap<&str, &str> = line
            .split('\t')
            .filter_map(|f| f.split_once(": "))
            .collect();
        if let Some(id) = fields.get("Broker") {
            brokers.push(id.parse().unwrap());
        }
        if fields.get("Topic") == Some(&topic) {
            let partition = fields["Partition"].parse().unwrap();
            let leader = fields["Leader"].parse().unwrap();
            let epoch = fields["LeaderEpoch"].parse().unwrap();
            leaders.insert(partition, (leader, epoch));
        }
    }
    (brokers, leaders)
}

/// Waits until every one of the `partitions` partitions of `topic` is led
/// by one of `brokers`, evenly (their counts differ by one at most);
/// returns the leaders.
fn wait_for_leaders(
    addr: &str,
    topic: &str,
    partitions: i32,
    brokers: &[i32],
    deadline: Duration,
) -> BTreeMap<i32, (i32, i32)> {
    let mut found = BTreeMap::new();
    wait_until("partitions led by the live brokers", deadline, || {
        let (live, leaders) = describe(addr, topic);
        found = leaders;
        let counts: Vec<usize> = brokers
            .iter()
            .map(|b| found.values().filter(|(l, _)| l == b).count())
            .collect();
        let even = counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1;
        live == brokers
            && found.len() == partitions as usize
            && found.values().all(|(l, _)| brokers.contains(l))
            && even
    });
    found
}

/// Three brokers lead a topic's partitions between them; a producer and
/// consumers bootstrapped at one broker each (librdkafka and kafka-python)
/// reach all three: every acknowledged message is read exactly once.
#[test]
fn three_brokers_share_the_partitions() {
    let cluster = Cluster::start(&[1, 2, 3]);
    let leaders = cluster.create_led_topic("shared", 6);
    assert!(
        leaders.values().all(|(_, epoch)| *epoch >= 1),
        "{leaders:?}"
    );

    let deliveries = Deliveries::default();
    let producer = idempotent_producer(cluster.addr(1), &deliveries);
    produce_keyed(&producer, "shared", 0..6000, 100);
    producer.flush(Duration::from_secs(60)).expect("flush");
    assert_all_acked_and_read_once(cluster.addr(3), "shared", 6, &deliveries, 6000);
    let acked = deliveries.acked.lock().unwrap().clone();
    assert!(
        (0..6).all(|p| acked.values().any(|ack| ack.partition == p)),
        "every partition took messages"
    );
    let reads = read_all_kafka_python(
        cluster.addr(2),
        "shared",
        acked.len(),
        Duration::from_secs(60),
    );
    assert_exactly_once(&acked, &reads);

    // A group coordinated by broker 3, seen through broker 1 by the console.
    let group = (0..)
        .map(|i| format!("shared-{i}"))
        .find(|g| silt::cluster::coordinator_index(g, 3) == 2)
        .unwrap();
    let member = RdMember::start(cluster.addr(1), "shared", &group, &[]);
    wait_until(
        "the member read everything",
        Duration::from_secs(60),
        || member.reads.lock().unwrap().len() >= acked.len(),
    );
    member.stop();
    let bootstrap = ["--bootstrap-server", cluster.addr(1)];
    let (ok, listed, err) = silt(&[&["group", "list"][..], &bootstrap].concat());
    assert!(
        ok && listed.contains(&format!("{group}\tEmpty")),
        "{listed}{err}"
    );
    let (ok, described, err) = silt(&[&["group", "describe", &group][..], &bootstrap].concat());
    assert!(ok, "{err}");
    let lags: Vec<&str> = described
        .lines()
        .filter(|l| l.starts_with("shared\t"))
        .map(|l| l.rsplit('\t').next().unwrap())
        .collect();
    assert_eq!(lags, vec!["0"; 6], "{described}");
}

/// Brokers with `broker.id = "auto"` get distinct ids from etcd's counter
/// and keep them across restarts on their data dirs; a broker killed
/// between taking an id and recording it takes a new one when it starts
/// again. `silt cluster health` sees every broker and every partition led,
/// and fails while a broker is missing.
#[test]
fn auto_broker_ids_are_distinct_and_kept_across_restarts() {
    let meta = etcd_root();
    let url = bucket_url();
    let env = [("SILT_STORAGE__META_LEASE_SECONDS", LEASE_SECONDS)];
    let crashed = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_silt"))
        .args([
            "serve",
            "--broker-id",
            "auto",
            "--meta",
            &meta,
            "--object-store",
            &url,
        ])
        .args(["--create-bucket", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(crashed.path())
        .envs(aws_env(&endpoint()))
        .envs(env)
        .env("FAILPOINTS", "broker_id.after_allocate")
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the broker aborted at the fail point");
    assert!(!crashed.path().join("broker.id").exists());

    let auto = ["--broker-id", "auto", "--meta", meta.as_str()];
    // Each in a rack (zone) of its own, as the Terraform user data sets it.
    let mut brokers: Vec<Broker> = ["zone-a", "zone-b", "zone-c"]
        .into_iter()
        .map(|rack| {
            start(
                &endpoint(),
                &url,
                &auto,
                &[env[0], ("SILT_BROKER__RACK", rack)],
            )
        })
        .collect();
    let id_of = |b: &Broker| std::fs::read_to_string(b.data_dir.join("broker.id")).unwrap();
    let ids: Vec<String> = brokers.iter().map(id_of).collect();
    assert_eq!(
        ids,
        ["1001\n", "1002\n", "1003\n"],
        "1000 went to the crashed start"
    );
    create_topic(&brokers[0], "auto", 6);
    // Through broker 1002, which stays up.
    let via = brokers[1].addr.clone();
    let health = || {
        silt(&[
            "cluster",
            "health",
            "--min-brokers",
            "3",
            "--bootstrap-server",
            &via,
        ])
    };
    wait_until("the cluster is healthy", Duration::from_secs(30), || {
        health().0
    });
    let (_, out, _) = health();
    assert!(
        out.contains("Brokers: 3 live (1001, 1002, 1003)")
            && out.contains("Partitions: 6 of 6 led"),
        "{out}"
    );
    let (_, described, _) = silt(&["cluster", "describe", "--bootstrap-server", &via]);
    for (id, rack) in [(1001, "zone-a"), (1002, "zone-b"), (1003, "zone-c")] {
        let line = format!("Broker: {id}\t");
        let listed = described.lines().find(|l| l.starts_with(&line));
        assert!(
            listed.is_some_and(|l| l.ends_with(&format!("\tRack: {rack}"))),
            "{described}"
        );
    }

    brokers[2].kill9();
    wait_until("broker 1003 is gone", Duration::from_secs(30), || {
        health().1.contains("Brokers: 2 live (1001, 1002)")
    });
    let (ok, _, err) = health();
    assert!(!ok && err.contains("2 live brokers, fewer than 3"), "{err}");
    brokers[2].restart();
    assert_eq!(id_of(&brokers[2]), "1003\n");
    wait_until(
        "the cluster is healthy again",
        Duration::from_secs(30),
        || health().0,
    );
}

/// A manual replica assignment (CreateTopics, CreatePartitions) places
/// each partition's leadership on its first broker, and keeps it there.
#[tokio::test(flavor = "multi_thread")]
async fn replica_assignments_place_leaders() {
    use kafka_protocol::messages::create_partitions_request::{
        CreatePartitionsAssignment, CreatePartitionsTopic,
    };
    use kafka_protocol::messages::create_topics_request::{
        CreatableReplicaAssignment, CreatableTopic,
    };
    use kafka_protocol::messages::{
        BrokerId, CreatePartitionsRequest, CreateTopicsRequest, TopicName,
    };
    let cluster = tokio::task::block_in_place(|| Cluster::start(&[1, 2, 3]));
    let mut client = silt::client::Client::connect(cluster.addr(1))
        .await
        .unwrap();
    let name = || {
        TopicName(kafka_protocol::protocol::StrBytes::from_static_str(
            "placed",
        ))
    };
    let assignments = [(0, 3), (1, 3), (2, 2)]
        .map(|(p, b)| {
            CreatableReplicaAssignment::default()
                .with_partition_index(p)
                .with_broker_ids(vec![BrokerId(b), BrokerId(1)])
        })
        .to_vec();
    let request = CreateTopicsRequest::default()
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(name())
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_assignments(assignments),
        ])
        .with_timeout_ms(5000);
    assert_eq!(
        client.call(request, 7).await.unwrap().topics[0].error_code,
        0
    );
    let request = CreatePartitionsRequest::default()
        .with_topics(vec![
            CreatePartitionsTopic::default()
                .with_name(name())
                .with_count(4)
                .with_assignments(Some(vec![
                    CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(2)]),
                ])),
        ])
        .with_timeout_ms(5000);
    assert_eq!(
        client.call(request, 3).await.unwrap().results[0].error_code,
        0
    );
    let led_as = |placed: BTreeMap<i32, i32>| {
        tokio::task::block_in_place(|| {
            wait_until(
                "the partitions are led where assigned",
                Duration::from_secs(30),
                || {
                    let (_, leaders) = describe(cluster.addr(1), "placed");
                    leaders
                        .iter()
                        .map(|(p, (l, _))| (*p, *l))
                        .collect::<BTreeMap<_, _>>()
                        == placed
                },
            )
        })
    };
    led_as([(0, 3), (1, 3), (2, 2), (3, 2)].into());

    // A reassignment (kafka-reassign-partitions) moves the leadership.
    use kafka_protocol::messages::AlterPartitionReassignmentsRequest;
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            ReassignableTopic::default()
                .with_name(name())
                .with_partitions(vec![
                    ReassignablePartition::default()
                        .with_partition_index(0)
                        .with_replicas(Some(vec![BrokerId(1), BrokerId(2)])),
                ]),
        ]);
    let response = client.call(request, 1).await.unwrap();
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    led_as([(0, 1), (1, 3), (2, 2), (3, 2)].into());
}

/// kill -9 the broker leading some busy partitions and coordinating the
/// consumer group, under an idempotent acks=all load: its partitions get
/// new leaders within the lease TTL + 6 s, the producer (bootstrapped at a
/// surviving broker) carries on, the group member goes on consuming through
/// the new coordinator, and every acknowledged message is read exactly
/// once.
#[test]
fn a_killed_leader_fails_over_within_the_lease() {
    let mut cluster = Cluster::start(&[1, 2, 3]);
    cluster.create_led_topic("busy", 6);
    // A group broker 2 coordinates (the second of three live brokers).
    let group = (0..)
        .map(|i| format!("failover-{i}"))
        .find(|g| silt::cluster::coordinator_index(g, 3) == 1)
        .unwrap();
    let member = RdMember::start(&cluster.bootstrap(), "busy", &group, &[]);

    let deliveries = Deliveries::default();
    let producer = idempotent_producer(cluster.addr(1), &deliveries);
    let total = 20_000u64;
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| produce_paced(&producer, "busy", 40, 500, 200));
        wait_for_acks(&deliveries, 2_000);
        wait_until("the member reads", Duration::from_secs(60), || {
            !member.reads.lock().unwrap().is_empty()
        });
        let killed = Instant::now();
        cluster.brokers.get_mut(&2).unwrap().kill9();
        wait_for_leaders(cluster.addr(1), "busy", 6, &[1, 3], Duration::from_secs(30));
        let failover = killed.elapsed();
        // The lease decides; the rest of the bound is slack for a loaded
        // machine (etcd's expiry check, a controller election, our polls).
        let limit = Duration::from_secs(LEASE_SECONDS.parse::<u64>().unwrap() + 6);
        assert!(
            failover <= limit,
            "failover took {failover:?}, over {limit:?}"
        );
        sender.join().expect("producer thread");
    });
    producer
        .flush(Duration::from_secs(120))
        .expect("the producer carries on");
    assert_all_acked_and_read_once(cluster.addr(3), "busy", 6, &deliveries, total);

    // The member read everything (at least once) through the coordinator
    // that took the group over.
    let acked = deliveries.acked.lock().unwrap().clone();
    wait_until(
        "the group member read every message",
        Duration::from_secs(120),
        || {
            let reads = member.reads.lock().unwrap();
            let keys: std::collections::BTreeSet<&str> =
                reads.iter().map(|r| r.key.as_str()).collect();
            acked.keys().all(|k| keys.contains(k.as_str()))
        },
    );
    member.stop();
}

/// A leader paused (SIGSTOP) past its lease loses its partitions to the
/// other broker, which accepts writes; resumed, the paused broker commits
/// nothing, stops, and every acknowledged message of both is read exactly
/// once.
#[test]
fn a_paused_leader_is_fenced_and_stops() {
    let mut cluster = Cluster::start(&[1, 2]);
    let before = cluster.create_led_topic("paused", 2);
    let before_pause = Deliveries::default();
    let producer = idempotent_producer(cluster.addr(2), &before_pause);
    produce_keyed(&producer, "paused", 0..1000, 100);
    producer.flush(Duration::from_secs(60)).expect("flush");
    // A producer connected to the paused broker would wait for its
    // requests to time out; a new one finds the new leaders at once.
    drop(producer);

    let pid = cluster.brokers[&1].pid().to_string();
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .args([name, pid.as_str()])
            .status()
            .expect("kill");
        assert!(status.success());
    };
    signal("-STOP");
    let after = wait_for_leaders(cluster.addr(2), "paused", 2, &[2], Duration::from_secs(30));
    for (partition, (leader, epoch)) in &before {
        if *leader == 1 {
            assert!(after[partition].1 > *epoch, "the epoch rose: {after:?}");
        }
    }
    let after_pause = Deliveries::default();
    let producer = idempotent_producer(cluster.addr(2), &after_pause);
    produce_keyed(&producer, "paused", 1000..2000, 100);
    producer.flush(Duration::from_secs(60)).expect("flush");

    signal("-CONT");
    let first = cluster.brokers.get_mut(&1).unwrap();
    wait_until("the resumed broker stops", Duration::from_secs(30), || {
        !first.is_running()
    });
    let mut acked = before_pause.acked.lock().unwrap().clone();
    acked.extend(after_pause.acked.lock().unwrap().clone());
    assert_eq!(acked.len(), 2000);
    let reads = read_all_rdkafka(
        cluster.addr(2),
        "paused",
        2,
        acked.len(),
        Duration::from_secs(60),
    );
    assert_exactly_once(&acked, &reads);
}

/// The extent keys a partition has in the metadata store (`meta`, an
/// `etcd://HOST:PORT/ROOT` URL), read with etcdctl.
fn stored_extents(meta: &str, partition: i32) -> std::collections::BTreeSet<String> {
    etcd_get(meta, "partitions/", true)
        .lines()
        .filter(|key| key.contains(&format!("/{partition}/extents/")))
        .map(str::to_string)
        .collect()
}

/// Whether process `pid` is stopped (SIGSTOP).
fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('T'))
    })
}

/// A leader paused (SIGSTOP) after writing a merged object and before
/// committing it loses its partition to the other broker; resumed, its
/// late commit is fenced (the partition keeps every extent it had), it
/// stops, and every acknowledged message is read exactly once.
#[test]
fn a_paused_leaders_late_merge_is_fenced() {
    let quick = [("SILT_FLUSH__INTERVAL_MS", "100")];
    let mut cluster = Cluster::start_with(etcd_root(), LEASE_SECONDS, &[], &quick, &[]);
    // Broker 1 merges every 200 ms and stops itself once it wrote a
    // merged object; broker 2 never merges, so only a late commit could
    // change the stored extents.
    cluster.add_with(
        1,
        &[
            ("SILT_STORAGE__LIFECYCLE_INTERVAL_MS", "200"),
            ("FAILPOINTS", "merge.after_put=stop"),
        ],
    );
    cluster.add_with(2, &[("SILT_STORAGE__LIFECYCLE_INTERVAL_MS", "86400000")]);
    let before = cluster.create_led_topic("late", 2);
    let (partition, (_, epoch)) = before
        .iter()
        .find(|(_, (leader, _))| *leader == 1)
        .map(|(p, l)| (*p, *l))
        .expect("broker 1 leads a partition");
    let deliveries = Deliveries::default();
    let producer = producer_with(
        &cluster.bootstrap(),
        &deliveries,
        // Requests stuck at the paused broker are sent again to the new
        // leader seconds on, not a minute.
        &[
            ("message.timeout.ms", "120000"),
            ("request.timeout.ms", "5000"),
            ("socket.timeout.ms", "5000"),
        ],
    );
    let pid = cluster.brokers[&1].pid();
    // Rounds of 100 messages, each acknowledged (so uploaded) before the
    // next, until eight uploads make a merge that stops broker 1.
    for round in 0u64.. {
        assert!(round < 40, "broker 1 never merged");
        for i in round * 100..(round + 1) * 100 {
            let key = format!("key-{i}");
            let record = rdkafka::producer::BaseRecord::to("late")
                .key(&key)
                .payload("value")
                .partition(partition);
            producer.send(record).map_err(|(e, _)| e).expect("send");
        }
        let _ = producer.flush(Duration::from_secs(5));
        if is_stopped(pid) {
            break;
        }
    }
    let after = wait_for_leaders(cluster.addr(2), "late", 2, &[2], Duration::from_secs(30));
    assert!(after[&partition].1 > epoch, "the epoch rose: {after:?}");
    producer.flush(Duration::from_secs(120)).expect("flush");
    let stored = stored_extents(&cluster.meta, partition);
    assert!(stored.len() >= 8, "{stored:?}");

    let status = std::process::Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let first = cluster.brokers.get_mut(&1).unwrap();
    wait_until("the resumed broker stops", Duration::from_secs(30), || {
        !first.is_running()
    });
    let now = stored_extents(&cluster.meta, partition);
    assert!(
        stored.is_subset(&now),
        "a late commit replaced extents: {stored:?} -> {now:?}"
    );
    let acked = deliveries.acked.lock().unwrap().clone();
    assert!(deliveries.failed.lock().unwrap().is_empty());
    let reads = read_all_rdkafka(
        cluster.addr(2),
        "late",
        2,
        acked.len(),
        Duration::from_secs(60),
    );
    assert_exactly_once(&acked, &reads);
}

/// A fourth broker joining takes over some partitions (no data moves), and
/// gives them back when it stops; a producer running throughout sees no
/// failure and every acknowledged message is read exactly once.
#[test]
fn a_joining_broker_takes_partitions_and_a_leaving_one_gives_them_back() {
    let mut cluster = Cluster::start(&[1, 2, 3]);
    cluster.create_led_topic("growing", 12);
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(cluster.addr(1), &deliveries);
    let total = 16_000u64;
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| produce_paced(&producer, "growing", 80, 200, 200));
        wait_for_acks(&deliveries, 1_000);
        cluster.add(4);
        let joined = wait_for_leaders(
            cluster.addr(1),
            "growing",
            12,
            &[1, 2, 3, 4],
            Duration::from_secs(30),
        );
        let on_four = joined.values().filter(|(l, _)| *l == 4).count();
        assert_eq!(on_four, 3, "{joined:?}");
        cluster
            .brokers
            .get_mut(&4)
            .unwrap()
            .terminate(Duration::from_secs(30));
        wait_for_leaders(
            cluster.addr(1),
            "growing",
            12,
            &[1, 2, 3],
            Duration::from_secs(30),
        );
        sender.join().expect("producer thread");
    });
    producer.flush(Duration::from_secs(120)).expect("flush");
    assert_all_acked_and_read_once(cluster.addr(2), "growing", 12, &deliveries, total);
}

/// `silt cluster move` moves a partition holding data to a named broker
/// (no data moves) and the controller keeps it there; producers and
/// consumers carry on; unknown topics and brokers that are not live are
/// named.
#[test]
fn a_partition_moves_to_the_broker_named() {
    let cluster = Cluster::start(&[1, 2]);
    let before = cluster.create_led_topic("moving", 2);
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(cluster.addr(1), &deliveries);
    produce_keyed(&producer, "moving", 0..5000, 200);
    producer.flush(Duration::from_secs(60)).expect("flush");

    let (from, epoch) = before[&0];
    let to = if from == 1 { 2 } else { 1 };
    let to_text = to.to_string();
    let meta = cluster.meta.as_str();
    let (ok, out, err) = silt(&[
        "cluster", "move", "--meta", meta, "moving", "0", "--to", &to_text,
    ]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with(&format!("Moved moving partition 0 to broker {to}")),
        "{out}"
    );
    // Broker `to` learns of the move through its etcd watch.
    wait_until(
        "the new leader to report itself at a newer epoch",
        Duration::from_secs(30),
        || {
            let (_, after) = describe(cluster.addr(to), "moving");
            after[&0].0 == to && after[&0].1 > epoch
        },
    );

    produce_keyed(&producer, "moving", 5000..10_000, 200);
    producer.flush(Duration::from_secs(60)).expect("flush");
    assert_all_acked_and_read_once(cluster.addr(2), "moving", 2, &deliveries, 10_000);
    // Balancing moved the other partition, never the one moved by hand.
    let (_, settled) = describe(cluster.addr(1), "moving");
    assert_eq!(settled[&0].0, to, "{settled:?}");

    for (args, expected) in [
        (["nothing", "0", "--to", "1"], "no topic 'nothing'"),
        (["moving", "5", "--to", "1"], "has partitions 0 to 1"),
        (["moving", "0", "--to", "9"], "broker 9 is not live"),
    ] {
        let mut all = vec!["cluster", "move", "--meta", meta];
        all.extend(args);
        let (ok, _, err) = silt(&all);
        assert!(!ok && err.contains(expected), "{err}");
    }
}

/// The Java client (4.x) follows a partition moved to the other broker by
/// its AdminClient: the idempotent producer and the consumer go on through
/// NOT_LEADER_OR_FOLLOWER and the new leader epoch, every record read once.
#[test]
fn java_clients_follow_a_moved_leader() {
    let cluster = Cluster::start(&[1, 2]);
    let out = common::java::java(common::java::CURRENT, "silt.Clients")
        .args(["follow-leader", &cluster.bootstrap()])
        .output()
        .expect("java");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["moved", "followed the leader"]
    );
}

/// kill -9 the leader of a three-member etcd cluster under a produce load:
/// etcd elects another, the brokers (which know every member) carry on
/// without stopping, the producer's writes resume, and every acknowledged
/// message is read exactly once.
#[test]
fn the_etcd_leader_dying_pauses_writes_only() {
    let mut etcd = EtcdCluster::start(3);
    let meta = format!("etcd://{}/silt-test", etcd.endpoints());
    // The default lease outlasts an etcd election.
    let mut cluster = Cluster::start_on(meta, "6", &[1, 2, 3]);
    cluster.create_led_topic("steady", 6);
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(cluster.addr(1), &deliveries);
    let total = 20_000u64;
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| produce_paced(&producer, "steady", 40, 500, 200));
        wait_for_acks(&deliveries, 2_000);
        let mut leader = None;
        wait_until("an etcd leader", Duration::from_secs(30), || {
            leader = etcd.leader();
            leader.is_some()
        });
        etcd.kill(leader.expect("an etcd leader"));
        wait_until("etcd elects a new leader", Duration::from_secs(30), || {
            etcd.leader().is_some()
        });
        sender.join().expect("producer thread");
    });
    producer
        .flush(Duration::from_secs(120))
        .expect("writes resume");
    for (id, broker) in &mut cluster.brokers {
        assert!(broker.is_running(), "broker {id} stopped");
    }
    assert_all_acked_and_read_once(cluster.addr(2), "steady", 6, &deliveries, total);
}

/// etcd down for longer than the brokers' lease: they stop taking writes
/// (a retriable error) but keep serving committed data, and stay up; once
/// etcd is back (leases restored) writes resume, and every acknowledged
/// message is read exactly once.
#[test]
fn brokers_ride_out_an_etcd_outage() {
    let mut etcd = EtcdCluster::start(1);
    let meta = format!("etcd://{}/silt-test", etcd.endpoints());
    let mut cluster = Cluster::start_on(meta, "6", &[1, 2]);
    create_topic(&cluster.brokers[&1], "probe", 2);
    cluster.create_led_topic("outage", 4);
    let before = Deliveries::default();
    let producer = idempotent_producer(&cluster.bootstrap(), &before);
    produce_keyed(&producer, "outage", 0..5000, 100);
    producer.flush(Duration::from_secs(60)).expect("flush");
    drop(producer);

    etcd.kill(0);
    // Writes are refused once the lease can no longer be confirmed (probes
    // go to a topic of their own: one refused may still be in the log).
    let probe = Deliveries::default();
    let settings = [
        ("message.timeout.ms", "1500"),
        ("enable.idempotence", "false"),
    ];
    let producer = producer_with(&cluster.bootstrap(), &probe, &settings);
    let mut next = 100_000;
    wait_until("writes are refused", Duration::from_secs(30), || {
        produce_keyed(&producer, "probe", next..next + 1, 100);
        next += 1;
        let _ = producer.flush(Duration::from_secs(5));
        !probe.failed.lock().unwrap().is_empty()
    });
    drop(producer);
    let health = |b: &Broker| http_get(b.admin.as_ref().unwrap(), "/health");
    for broker in cluster.brokers.values() {
        wait_until("the health check fails", Duration::from_secs(30), || {
            health(broker).starts_with("not serving")
        });
    }
    // Reads of what was committed go on, from both brokers.
    let acked = before.acked.lock().unwrap().clone();
    let reads = read_all_rdkafka(
        &cluster.bootstrap(),
        "outage",
        4,
        acked.len(),
        Duration::from_secs(60),
    );
    assert_exactly_once(&acked, &reads);

    etcd.restart(0);
    let after = Deliveries::default();
    let producer = idempotent_producer(&cluster.bootstrap(), &after);
    produce_keyed(&producer, "outage", 5000..10_000, 100);
    producer
        .flush(Duration::from_secs(120))
        .expect("writes resume");
    for (id, broker) in &mut cluster.brokers {
        assert!(broker.is_running(), "broker {id} stopped");
        wait_until("the health check passes", Duration::from_secs(30), || {
            health(broker) == "ok\n"
        });
    }
    let mut acked = before.acked.lock().unwrap().clone();
    acked.extend(after.acked.lock().unwrap().clone());
    let reads = read_all_rdkafka(
        cluster.addr(2),
        "outage",
        4,
        acked.len(),
        Duration::from_secs(60),
    );
    assert_exactly_once(&acked, &reads);
}

/// In `local` durability a leader killed with acknowledged writes it had
/// not uploaded keeps its partitions for `storage.failover_grace_ms`:
/// restarted on its disk, it leads them again at the same epoch and
/// replays its WAL, and every acknowledged message is read exactly once.
#[test]
fn a_local_leader_restarted_on_its_disk_within_the_grace_loses_nothing() {
    let (mut cluster, before, deliveries) = local_cluster_with_writes_only_in_the_wal("local");

    cluster.brokers.get_mut(&1).unwrap().kill9();
    wait_until("broker 1 is gone", Duration::from_secs(30), || {
        describe(cluster.addr(2), "local").0 == [2]
    });
    let (_, waiting) = describe(cluster.addr(2), "local");
    assert_eq!(waiting, before, "its partition waits for it");

    cluster.brokers.get_mut(&1).unwrap().restart();
    let after = wait_for_leaders(
        cluster.addr(2),
        "local",
        2,
        &[1, 2],
        Duration::from_secs(60),
    );
    assert_eq!(after, before, "led again by broker 1 at the same epoch");
    assert_all_acked_and_read_once(cluster.addr(2), "local", 2, &deliveries, 2000);
}

/// In `local` durability a leader stopped cleanly uploads what its WAL
/// holds and gives its partitions up: another broker leads them at once,
/// not after `storage.failover_grace_ms`, and every acknowledged message
/// is read exactly once.
#[test]
fn a_local_leader_stopped_cleanly_hands_its_partitions_over_at_once() {
    let (mut cluster, before, deliveries) = local_cluster_with_writes_only_in_the_wal("handover");

    cluster
        .brokers
        .get_mut(&1)
        .unwrap()
        .terminate(Duration::from_secs(30));
    let after = wait_for_leaders(
        cluster.addr(2),
        "handover",
        2,
        &[2],
        Duration::from_secs(30),
    );
    let (moved, _) = before.iter().find(|(_, (leader, _))| *leader == 1).unwrap();
    assert!(
        after[moved].1 > before[moved].1,
        "a new leadership: {after:?}"
    );
    assert_all_acked_and_read_once(cluster.addr(2), "handover", 2, &deliveries, 2000);
}

/// Brokers 1 and 2 in `local` durability that upload nothing (what they
/// take stays in their WAL), a dead leader's partitions waiting 10 minutes
/// for it; `topic` has 2 partitions, one led by each, holding 2000
/// acknowledged messages. Returns the cluster, the leaders (and epochs)
/// and the acknowledgements.
fn local_cluster_with_writes_only_in_the_wal(
    topic: &str,
) -> (Cluster, BTreeMap<i32, (i32, i32)>, Deliveries) {
    let cluster = Cluster::start_with(
        etcd_root(),
        LEASE_SECONDS,
        &["--durability", "local"],
        &[
            ("SILT_FLUSH__INTERVAL_MS", "600000"),
            ("SILT_STORAGE__FAILOVER_GRACE_MS", "600000"),
        ],
        &[1, 2],
    );
    let leaders = cluster.create_led_topic(topic, 2);
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(cluster.addr(2), &deliveries);
    produce_keyed(&producer, topic, 0..2000, 100);
    producer.flush(Duration::from_secs(60)).expect("flush");
    (cluster, leaders, deliveries)
}

/// Transactions across three brokers, in a consume-transform-produce
/// service: markers go to partition leaders on other brokers, and the
/// broker coordinating the transactional id (and leading some partitions)
/// is killed in the middle of a transaction; the service goes on through
/// the new coordinator and leaders: the output, read with read_committed,
/// holds every input record exactly once.
#[test]
fn transactions_span_brokers_and_survive_their_coordinators_death() {
    use common::transactions::{Copier, copy_exactly_once};
    let mut cluster = Cluster::start(&[1, 2, 3]);
    cluster.create_led_topic("txin", 3);
    cluster.create_led_topic("txout", 3);
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(cluster.addr(1), &deliveries);
    produce_keyed(&producer, "txin", 0..3000, 100);
    producer.flush(Duration::from_secs(60)).expect("flush");
    let acked = deliveries.acked.lock().unwrap().clone();
    let mut ends = vec![0i64; 3];
    for ack in acked.values() {
        let end = &mut ends[ack.partition as usize];
        *end = (*end).max(ack.offset + 1);
    }
    // The transactional id is coordinated by broker 2, the group by 3.
    let transactional_id = (0..)
        .map(|i| format!("copier-{i}"))
        .find(|t| silt::cluster::coordinator_index(t, 3) == 1)
        .unwrap();
    let group = (0..)
        .map(|i| format!("copying-{i}"))
        .find(|g| silt::cluster::coordinator_index(g, 3) == 2)
        .unwrap();
    let (paused, wait_paused) = std::sync::mpsc::channel();
    let (resume, wait_resume) = std::sync::mpsc::channel();
    let copier = Copier {
        bootstrap: cluster.bootstrap(),
        input: "txin",
        output: "txout",
        transactional_id,
        group,
        ends,
        stop: Instant::now() + Duration::from_secs(240),
        paused,
        resume: wait_resume,
    };
    let copying = std::thread::spawn(move || copy_exactly_once(copier));
    wait_paused
        .recv_timeout(Duration::from_secs(60))
        .expect("the copier paused");
    cluster.brokers.get_mut(&2).unwrap().kill9();
    resume.send(()).unwrap();
    copying.join().expect("copying finished");
    let copied = read_rdkafka_with(
        cluster.addr(1),
        "txout",
        3,
        3000,
        Duration::from_secs(60),
        &[("isolation.level", "read_committed")],
    );
    let copied_keys: std::collections::BTreeSet<&str> =
        copied.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(copied_keys.len(), 3000, "every input record copied");
    assert!(acked.keys().all(|k| copied_keys.contains(k.as_str())));
    assert_eq!(copied.len(), 3000, "and only once");
}

/// Brokers `ids` on a fresh etcd root and bucket, each started with the
/// config file `config(id)` returns (and the directory holding the files).
fn start_configured(
    ids: &[i32],
    config: impl Fn(i32) -> String,
) -> (Vec<Broker>, tempfile::TempDir) {
    let meta = etcd_root();
    let url = bucket_url();
    let dir = tempfile::tempdir().unwrap();
    let brokers = ids
        .iter()
        .map(|&id| {
            let path = dir.path().join(format!("broker-{id}.toml"));
            std::fs::write(&path, config(id)).unwrap();
            let id_text = id.to_string();
            let args = [
                "--broker-id",
                id_text.as_str(),
                "--meta",
                meta.as_str(),
                "--config",
                path.to_str().unwrap(),
            ];
            let env = [("SILT_STORAGE__META_LEASE_SECONDS", LEASE_SECONDS)];
            start(&endpoint(), &url, &args, &env)
        })
        .collect();
    (brokers, dir)
}

/// Brokers with two listeners each: a client of either listener is told
/// every broker's address on that listener.
#[tokio::test(flavor = "multi_thread")]
async fn each_listener_lists_every_brokers_address_on_it() {
    use common::security::free_port;
    use kafka_protocol::messages::MetadataRequest;
    let ports: BTreeMap<i32, (u16, u16)> = [1, 2].map(|id| (id, (free_port(), free_port()))).into();
    let (brokers, _dir) = start_configured(&[1, 2], |id| {
        let (internal, external) = ports[&id];
        format!(
            "[[listeners]]\nname = \"INTERNAL\"\nlisten = \"127.0.0.1:{internal}\"\n\n\
             [[listeners]]\nname = \"EXTERNAL\"\nlisten = \"127.0.0.1:{external}\"\n\
             advertised = \"localhost:{external}\"\n"
        )
    });
    let (internal, external) = ports[&1];
    for (port, host, pick) in [
        (internal, "127.0.0.1", 0usize),
        (external, "localhost", 1usize),
    ] {
        let mut client = silt::client::Client::connect(&format!("127.0.0.1:{port}"))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let listed: BTreeMap<i32, (String, i32)> = loop {
            let response = client.call(MetadataRequest::default(), 12).await.unwrap();
            let listed: BTreeMap<i32, (String, i32)> = response
                .brokers
                .iter()
                .map(|b| (b.node_id.0, (b.host.to_string(), b.port)))
                .collect();
            if listed.len() == 2 {
                break listed;
            }
            assert!(Instant::now() < deadline, "both brokers listed: {listed:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        for (id, (h, p)) in &listed {
            let (int_port, ext_port) = ports[id];
            let expected = if pick == 0 { int_port } else { ext_port };
            assert_eq!((h.as_str(), *p), (host, i32::from(expected)), "broker {id}");
        }
    }
    drop(brokers);
}

#[tokio::test(flavor = "multi_thread")]
async fn users_and_acls_made_on_one_broker_apply_on_the_others() {
    use common::security::{create_user, free_port, sasl_client};
    use kafka_protocol::messages::MetadataRequest;
    let sasl_ports: BTreeMap<i32, u16> = [1, 2].map(|id| (id, free_port())).into();
    let (brokers, _dir) = start_configured(&[1, 2], |id| {
        format!(
            "[security]\nauthorizer = \"acl\"\nsuper_users = [\"User:ANONYMOUS\"]\n\n\
             [[listeners]]\nname = \"INTERNAL\"\nlisten = \"127.0.0.1:{}\"\n\n\
             [[listeners]]\nname = \"USERS\"\nlisten = \"127.0.0.1:{}\"\n\
             protocol = \"SASL_PLAINTEXT\"\n",
            free_port(),
            sasl_ports[&id]
        )
    });
    let first = brokers[0].addr.clone();
    create_user(&first, "alice", "alice-pw");
    let (ok, _, err) = silt(&[
        "topic",
        "create",
        "shared",
        "--partitions",
        "1",
        "--bootstrap-server",
        &first,
    ]);
    assert!(ok, "{err}");
    // alice, created on broker 1, logs in on broker 2 and sees nothing yet.
    let mut alice = sasl_client(
        &format!("127.0.0.1:{}", sasl_ports[&2]),
        "alice",
        "alice-pw",
    )
    .await;
    let all = || MetadataRequest::default().with_topics(None);
    assert!(alice.call(all(), 12).await.unwrap().topics.is_empty());
    let (ok, _, err) = silt(&[
        "acl",
        "create",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Describe",
        "--topic",
        "shared",
        "--bootstrap-server",
        &first,
    ]);
    assert!(ok, "{err}");
    let created = Instant::now();
    while alice.call(all(), 12).await.unwrap().topics.is_empty() {
        assert!(
            created.elapsed() < Duration::from_secs(3),
            "the ACL made on broker 1 never applied on broker 2"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "ACL applied on the other broker after {:?}",
        created.elapsed()
    );
    drop(brokers);
}

#[test]
fn brokers_reach_etcd_over_tls_with_a_client_certificate() {
    use common::security::{Pki, free_port};
    let pki = Pki::new();
    pki.issue("etcd", "localhost");
    pki.issue("broker", "silt-broker");
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = (free_port(), free_port());
    let log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
    /// Kills the etcd started here, however the test ends.
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _etcd = Stop(
        std::process::Command::new("etcd")
            .args(["--name", "tls", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &format!("https://127.0.0.1:{client}"),
                "--advertise-client-urls",
                &format!("https://127.0.0.1:{client}"),
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--initial-cluster",
                &format!("tls=http://127.0.0.1:{peer}"),
                "--cert-file",
                &pki.path("etcd.pem"),
                "--key-file",
                &pki.path("etcd.key"),
                "--trusted-ca-file",
                &pki.path("ca.pem"),
                "--client-cert-auth",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("run etcd"),
    );
    wait_until("etcd over TLS", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", client)).is_ok()
    });
    let tls = format!(
        "?tls_ca={}&tls_cert={}&tls_key={}",
        pki.path("ca.pem"),
        pki.path("broker.pem"),
        pki.path("broker.key")
    );
    let meta = format!("etcd://127.0.0.1:{client}/silt-tls{tls}");
    let url = bucket_url();
    let env = [("SILT_STORAGE__META_LEASE_SECONDS", LEASE_SECONDS)];
    let broker = start(
        &endpoint(),
        &url,
        &["--broker-id", "1", "--meta", &meta],
        &env,
    );
    create_topic(&broker, "over-tls", 1);
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(&broker.addr, &deliveries);
    produce_keyed(&producer, "over-tls", 0..100, 10);
    producer.flush(Duration::from_secs(30)).unwrap();
    let reads = read_all_rdkafka(&broker.addr, "over-tls", 1, 100, Duration::from_secs(30));
    assert_exactly_once(&deliveries.acked.lock().unwrap(), &reads);
    drop(broker);
    // Without a client certificate etcd refuses the broker, which says so.
    let no_cert = format!(
        "etcd://127.0.0.1:{client}/silt-tls?tls_ca={}",
        pki.path("ca.pem")
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_silt"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--broker-id",
            "2",
            "--meta",
            &no_cert,
        ])
        .arg("--data-dir")
        .arg(dir.path().join("second"))
        .args(["--object-store", &url])
        .envs(aws_env(&endpoint()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("etcd"), "{err}");
}
