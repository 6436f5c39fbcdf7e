//! Consumer groups with real clients: librdkafka and kafka-python members in
//! the same group share a topic while members join, leave and crash; offsets
//! resume across broker restarts and kill -9; static membership; the
//! cooperative-sticky protocol; the `silt group` commands.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::groups::{PyMember, RdMember, Watcher};
use common::*;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::Producer;

const DEADLINE: Duration = Duration::from_secs(120);

fn processed(reads: &[Vec<Read>]) -> BTreeSet<String> {
    reads.iter().flatten().map(|r| r.key.clone()).collect()
}

/// Produces `range` keyed messages, acked, and returns their keys.
fn produce(addr: &str, topic: &str, range: std::ops::Range<u64>) -> BTreeSet<String> {
    produce_acked(addr, topic, range).into_keys().collect()
}

/// Produces keyed messages to "work" in rounds, numbered from `*next` on,
/// until every one of `members` has read a message (a member that joined
/// late may find the earlier ones consumed); returns their keys.
fn produce_until_all_read(
    addr: &str,
    members: &[&common::groups::Reads],
    next: &mut u64,
) -> BTreeSet<String> {
    let all_read = || members.iter().all(|r| !r.lock().unwrap().is_empty());
    let start = std::time::Instant::now();
    let mut produced = BTreeSet::new();
    while !all_read() {
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting until every member has read"
        );
        produced.extend(produce(addr, "work", *next..*next + 240));
        *next += 240;
        // A round's messages reach the members within a second unless a
        // rebalance is under way; then the next round follows.
        let round = std::time::Instant::now();
        while !all_read() && round.elapsed() < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    produced
}

/// Produces `range` keyed messages and returns where each was acked.
fn produce_acked(addr: &str, topic: &str, range: std::ops::Range<u64>) -> BTreeMap<String, Ack> {
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(addr, &deliveries);
    produce_keyed(&producer, topic, range, 64);
    producer.flush(Duration::from_secs(60)).expect("flush");
    assert!(deliveries.failed.lock().unwrap().is_empty());
    deliveries.acked.lock().unwrap().clone()
}

#[test]
fn members_join_leave_and_crash_and_every_message_is_processed() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "work", 12);
    let addr = broker.addr.clone();
    let watcher = Watcher::start(&addr, "workers");
    let mut produced = produce(&addr, "work", 0..5000);

    let a = RdMember::start(&addr, "work", "workers", &[]);
    let b = RdMember::start(&addr, "work", "workers", &[]);
    let crasher = PyMember::start(&addr, "work", "workers", None);
    let leaver = PyMember::start(&addr, "work", "workers", None);
    let total = |members: &[&common::groups::Reads]| {
        members
            .iter()
            .map(|r| r.lock().unwrap().len())
            .sum::<usize>()
    };
    let all = [&a.reads, &b.reads, &crasher.reads, &leaver.reads];
    wait_until("the first messages are consumed", DEADLINE, || {
        total(&all) >= 1000
    });
    // Every member reads before two of them go (the kafka-python ones may
    // join after the first messages are gone).
    let mut next = 5000;
    produced.extend(produce_until_all_read(&addr, &all, &mut next));
    let crashed = crasher.crash();
    let left = leaver.leave();
    produced.extend(produce(&addr, "work", next..next + 5000));
    next += 5000;
    let c = RdMember::start(&addr, "work", "workers", &[]);
    let latecomer = PyMember::start(&addr, "work", "workers", None);
    let live = [&a.reads, &b.reads, &c.reads, &latecomer.reads];
    produced.extend(produce_until_all_read(&addr, &live, &mut next));
    produced.extend(produce(&addr, "work", next..next + 5000));
    wait_until("every produced message is processed", DEADLINE, || {
        let mut seen: Vec<Vec<Read>> = live.iter().map(|r| r.lock().unwrap().clone()).collect();
        seen.push(crashed.clone());
        seen.push(left.clone());
        processed(&seen).is_superset(&produced)
    });
    let reads = [
        a.stop(),
        b.stop(),
        c.stop(),
        latecomer.leave(),
        crashed,
        left,
    ];
    assert!(
        reads.iter().all(|r| !r.is_empty()),
        "every member got partitions at some point"
    );
    let (overlaps, memberships) = watcher.finish();
    assert!(
        overlaps.is_empty(),
        "partitions owned twice in one generation: {overlaps:?}"
    );
    assert!(
        memberships >= 2,
        "the group went through several memberships ({memberships})"
    );
}

/// Committed offsets of `group` for partitions 0..n of `topic`.
async fn committed(addr: &str, group: &str, topic: &str, n: i32) -> BTreeMap<i32, i64> {
    let mut client = silt::client::Client::connect(addr).await.unwrap();
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partition_indexes((0..n).collect()),
        ]));
    let response = client.call(request, 7).await.unwrap();
    response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.committed_offset))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_restart_and_kill9_and_members_resume_there() {
    let mut broker = Broker::start(&[]);
    create_topic(&broker, "resume", 4);
    let addr = broker.addr.clone();
    let acked = produce_acked(&addr, "resume", 0..4000);
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for ack in acked.values() {
        let end = ends.entry(ack.partition).or_insert(0);
        *end = (*end).max(ack.offset + 1);
    }
    // A member reads part of the topic, commits (auto-commit on close) and leaves.
    let first = RdMember::start_limited(&addr, "resume", "resumers", 1500);
    wait_until("some messages read", DEADLINE, || {
        first.reads.lock().unwrap().len() >= 1500
    });
    let read = first.stop();
    let mut expected: BTreeMap<i32, i64> = (0..4).map(|p| (p, -1)).collect();
    for r in &read {
        let e = expected.get_mut(&r.partition).unwrap();
        *e = (*e).max(r.offset + 1);
    }
    let stored = committed(&addr, "resumers", "resume", 4).await;
    assert_eq!(stored, expected, "the member's positions were committed");

    broker.terminate(Duration::from_secs(10));
    broker.restart();
    assert_eq!(
        committed(&broker.addr, "resumers", "resume", 4).await,
        expected,
        "after a restart"
    );
    broker.kill9();
    broker.restart();
    assert_eq!(
        committed(&broker.addr, "resumers", "resume", 4).await,
        expected,
        "after kill -9"
    );

    // A kafka-python member resumes exactly at the committed positions.
    let next = PyMember::start(&broker.addr, "resume", "resumers", None);
    let remaining: i64 = expected.iter().map(|(p, c)| ends[p] - c.max(&0)).sum();
    assert!(remaining > 0, "the first member left work for the next one");
    let remaining = remaining as usize;
    wait_until("the rest is read", DEADLINE, || {
        next.reads.lock().unwrap().len() >= remaining
    });
    let reads = next.leave();
    for (partition, start) in &expected {
        let first_offset = reads
            .iter()
            .filter(|r| r.partition == *partition)
            .map(|r| r.offset)
            .min();
        if *start < ends[partition] {
            assert_eq!(
                first_offset,
                Some((*start).max(0)),
                "partition {partition} resumed at its commit"
            );
        }
    }
}

#[test]
fn static_member_restart_keeps_its_partitions_without_rebalancing_others() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "static", 6);
    let addr = broker.addr.clone();
    let stat = |instance: &str| {
        RdMember::start(
            &addr,
            "static",
            "statics",
            &[
                ("group.instance.id", instance),
                ("session.timeout.ms", "10000"),
            ],
        )
    };
    let a = stat("member-a");
    let b = stat("member-b");
    wait_until("both members hold partitions", DEADLINE, || {
        let (pa, pb) = (
            a.rebalances.assigned.lock().unwrap().len(),
            b.rebalances.assigned.lock().unwrap().len(),
        );
        pa > 0 && pb > 0 && pa + pb == 6
    });
    let a_partitions = a.rebalances.assigned.lock().unwrap().clone();
    let b_rebalances = b.rebalances.count.load(Ordering::SeqCst);

    a.stop();
    let a_again = stat("member-a");
    wait_until("the restarted member is assigned", DEADLINE, || {
        a_again.rebalances.assigned.lock().unwrap().len() == a_partitions.len()
    });
    assert_eq!(
        *a_again.rebalances.assigned.lock().unwrap(),
        a_partitions,
        "same partitions back"
    );
    assert_eq!(
        b.rebalances.count.load(Ordering::SeqCst),
        b_rebalances,
        "the other member never rebalanced"
    );
    a_again.stop();
    b.stop();
}

#[test]
fn cooperative_sticky_rebalances_incrementally() {
    let broker = Broker::start(&["--admin-listen", "127.0.0.1:0"]);
    create_topic(&broker, "sticky", 8);
    let setup = common::ledger::Answered::by(&broker);
    let addr = broker.addr.clone();
    let cooperative = [("partition.assignment.strategy", "cooperative-sticky")];
    let mut produced = produce(&addr, "sticky", 0..3000);
    let a = RdMember::start(&addr, "sticky", "cooperators", &cooperative);
    wait_until("a holds every partition", DEADLINE, || {
        a.rebalances.assigned.lock().unwrap().len() == 8
    });
    let b = RdMember::start(&addr, "sticky", "cooperators", &cooperative);
    wait_until("b gets its share", DEADLINE, || {
        b.rebalances.assigned.lock().unwrap().len() == 4
    });
    wait_until("a keeps the other half", DEADLINE, || {
        a.rebalances.assigned.lock().unwrap().len() == 4
    });
    produced.extend(produce(&addr, "sticky", 3000..6000));
    let c = RdMember::start(&addr, "sticky", "cooperators", &cooperative);
    wait_until("three members share the partitions", DEADLINE, || {
        [&a, &b, &c]
            .iter()
            .map(|m| m.rebalances.assigned.lock().unwrap().len())
            .sum::<usize>()
            == 8
            && !c.rebalances.assigned.lock().unwrap().is_empty()
    });
    let b_reads = b.stop();
    produced.extend(produce(&addr, "sticky", 6000..9000));
    wait_until("every message is processed", DEADLINE, || {
        let seen = vec![
            a.reads.lock().unwrap().clone(),
            c.reads.lock().unwrap().clone(),
            b_reads.clone(),
        ];
        processed(&seen).is_superset(&produced)
    });
    a.stop();
    c.stop();
    common::ledger::verify_since(&common::ledger::librdkafka(), &broker, &setup);
}

#[test]
fn group_commands_list_describe_reset_and_delete() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "cli", 2);
    let addr = broker.addr.clone();
    produce(&addr, "cli", 0..100);
    let b = ["--bootstrap-server", addr.as_str()];
    let run = |args: &[&str]| silt(&[args, &b[..]].concat());

    let member = RdMember::start(&addr, "cli", "readers", &[]);
    wait_until("the member read everything", DEADLINE, || {
        member.reads.lock().unwrap().len() == 100
    });
    let (ok, out, err) = run(&["group", "list"]);
    assert!(ok, "{err}");
    assert!(out.contains("readers"), "{out}");
    wait_until(
        "describe shows the live member and zero lag",
        DEADLINE,
        || {
            let (_, out, _) = run(&["group", "describe", "readers"]);
            out.contains("Stable")
                && out.contains("rdkafka")
                && out
                    .lines()
                    .filter(|l| l.starts_with("cli") && l.split_whitespace().last() == Some("0"))
                    .count()
                    == 2
        },
    );
    let (ok, _, err) = run(&[
        "group",
        "reset-offsets",
        "readers",
        "--topic",
        "cli",
        "--to-earliest",
    ]);
    assert!(!ok, "reset-offsets must refuse an active group");
    assert!(
        err.contains("active") && err.trim().lines().count() == 1,
        "{err}"
    );
    let (ok, _, err) = run(&["group", "delete", "readers"]);
    assert!(!ok && err.contains("members"), "{err}");
    member.stop();

    wait_until("the group is empty", DEADLINE, || {
        run(&["group", "describe", "readers"]).1.contains("Empty")
    });
    let (ok, out, err) = run(&[
        "group",
        "reset-offsets",
        "readers",
        "--topic",
        "cli",
        "--to-offset",
        "10",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("10"), "{out}");
    let (_, out, _) = run(&["group", "describe", "readers"]);
    let lags: Vec<&str> = out.lines().filter(|l| l.starts_with("cli")).collect();
    assert_eq!(lags.len(), 2, "{out}");
    for line in lags {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (committed, end, lag): (i64, i64, i64) = (
            fields[2].parse().unwrap(),
            fields[3].parse().unwrap(),
            fields[4].parse().unwrap(),
        );
        assert_eq!((committed, end - committed), (10, lag), "{line}");
    }
    let (ok, _, err) = run(&[
        "group",
        "reset-offsets",
        "readers",
        "--topic",
        "cli",
        "--to-latest",
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&[
        "group",
        "reset-offsets",
        "readers",
        "--topic",
        "cli",
        "--to-datetime",
        "2000-01-01T00:00:00Z",
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&["group", "delete", "readers"]);
    assert!(ok, "{err}");
    assert!(out.contains("Deleted group readers"), "{out}");
    let (_, out, _) = run(&["group", "list"]);
    assert!(!out.contains("readers"), "{out}");
}
