//! Consumer group benchmark through the Kafka protocol (silt::client):
//! how long a rebalance of N members over P partitions takes after the
//! last JoinGroup is sent, and OffsetCommit round-trip latency.
//!
//! ```text
//! cargo run --release --example group_bench -- --bootstrap 127.0.0.1:9092
//! ```

use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use clap::Parser;
use hdrhistogram::Histogram;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, CreateTopicsRequest, GroupId, JoinGroupRequest,
    OffsetCommitRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use silt::client::Client;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    bootstrap: String,
    #[arg(long, default_value_t = 10)]
    members: usize,
    #[arg(long, default_value_t = 100)]
    partitions: i32,
    #[arg(long, default_value_t = 2000)]
    commits: usize,
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let topic = format!("group-bench-{}", uuid::Uuid::new_v4().simple());
    let group = format!("group-bench-{}", uuid::Uuid::new_v4().simple());
    let mut admin = Client::connect(&args.bootstrap).await.expect("connect");
    let create = CreateTopicsRequest::default().with_topics(vec![
        CreatableTopic::default()
            .with_name(TopicName(s(&topic)))
            .with_num_partitions(args.partitions)
            .with_replication_factor(-1),
    ]);
    let created = admin.call(create, 7).await.expect("create topic");
    assert_eq!(created.topics[0].error_code, 0, "topic creation failed");

    // Every member gets its id (JoinGroup v5 handshake) before the round.
    let mut members = Vec::new();
    for _ in 0..args.members {
        let mut client = Client::connect(&args.bootstrap).await.expect("connect");
        let response = client.call(join(&group, ""), 5).await.expect("join");
        assert_eq!(response.error_code, 79, "expected MEMBER_ID_REQUIRED");
        members.push((client, response.member_id.to_string()));
    }
    let mut last_join = Instant::now();
    let mut tasks = Vec::new();
    for (mut client, member_id) in members {
        last_join = Instant::now();
        let (group, topic, partitions) = (group.clone(), topic.clone(), args.partitions);
        tasks.push(tokio::spawn(async move {
            let joined = client
                .call(join(&group, &member_id), 5)
                .await
                .expect("join");
            assert_eq!(joined.error_code, 0, "join failed");
            let assignments = if joined.leader == joined.member_id {
                let ids: Vec<String> = joined
                    .members
                    .iter()
                    .map(|m| m.member_id.to_string())
                    .collect();
                round_robin(&ids, &topic, partitions)
            } else {
                Vec::new()
            };
            let sync = SyncGroupRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_generation_id(joined.generation_id)
                .with_member_id(joined.member_id.clone())
                .with_assignments(assignments);
            let synced = client.call(sync, 3).await.expect("sync");
            assert_eq!(synced.error_code, 0, "sync failed");
            (
                Instant::now(),
                client,
                joined.member_id.to_string(),
                joined.generation_id,
            )
        }));
    }
    let mut done = Vec::new();
    for task in tasks {
        done.push(task.await.expect("member"));
    }
    let stable = done.iter().map(|(t, ..)| *t).max().expect("members");
    let rebalance_ms = stable.duration_since(last_join).as_secs_f64() * 1000.0;

    let (_, mut client, member_id, generation) = done.remove(0);
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for i in 0..args.commits {
        let partitions = (0..10.min(args.partitions))
            .map(|p| {
                OffsetCommitRequestPartition::default()
                    .with_partition_index(p)
                    .with_committed_offset(i as i64)
            })
            .collect();
        let commit = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(s(&member_id))
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(&topic)))
                    .with_partitions(partitions),
            ]);
        let started = Instant::now();
        let response = client.call(commit, 8).await.expect("commit");
        histogram
            .record(started.elapsed().as_micros().max(1) as u64)
            .unwrap();
        assert_eq!(
            response.topics[0].partitions[0].error_code, 0,
            "commit failed"
        );
    }
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "rebalance of {} members over {} partitions: {rebalance_ms:.1} ms after the last JoinGroup; OffsetCommit (10 partitions) p50 {:.2} ms p99 {:.2} ms max {:.2} ms over {}",
        args.members,
        args.partitions,
        ms(0.5),
        ms(0.99),
        histogram.max() as f64 / 1000.0,
        args.commits
    );
    println!(
        "{{\"kind\":\"groups\",\"members\":{},\"partitions\":{},\"rebalance_ms\":{rebalance_ms:.1},\"commit_p50_ms\":{:.3},\"commit_p99_ms\":{:.3}}}",
        args.members,
        args.partitions,
        ms(0.5),
        ms(0.99)
    );
    std::process::exit(0);
}

fn join(group: &str, member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(s("roundrobin"))
                .with_metadata(Bytes::new()),
        ])
}

/// Partitions dealt round robin to the members, consumer-protocol encoded.
fn round_robin(
    members: &[String],
    topic: &str,
    partitions: i32,
) -> Vec<SyncGroupRequestAssignment> {
    members
        .iter()
        .enumerate()
        .map(|(i, member)| {
            let mine: Vec<i32> = (0..partitions)
                .filter(|p| *p as usize % members.len() == i)
                .collect();
            let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
                TopicPartition::default()
                    .with_topic(TopicName(s(topic)))
                    .with_partitions(mine),
            ]);
            let mut buf = BytesMut::new();
            buf.put_i16(0);
            assignment.encode(&mut buf, 0).expect("encode assignment");
            SyncGroupRequestAssignment::default()
                .with_member_id(s(member))
                .with_assignment(buf.freeze())
        })
        .collect()
}
