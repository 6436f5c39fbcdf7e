//! Protocol behaviour checked request by request: every API at every
//! advertised version (a typical request gets a response that decodes at
//! that version and reports success, on one connection that stays open:
//! what "never advertise a version you do not fully serve" is checked
//! against), long polling, byte limits, timestamp lookups, idempotent
//! producer state across a restart, and admin edge cases.

mod common;

use common::transactions::transactional_batch;
use common::*;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use silt::client::{Client, Message, ProducerStamp, encode_batch, encode_idempotent_batch};
use silt::protocol::versions::supported;
use uuid::Uuid;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn name(v: &str) -> TopicName {
    TopicName(s(v))
}

fn versions(api: ApiKey) -> std::ops::RangeInclusive<i16> {
    let (min, max) = supported(api).expect("advertised");
    min..=max
}

async fn topic_id(client: &mut Client, topic: &str) -> Uuid {
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(name(topic))),
    ]));
    client.call(request, 12).await.unwrap().topics[0].topic_id
}

/// docs/api-versions.md lists exactly what the broker advertises in
/// ApiVersions, in the order it does; `SILT_BLESS_LEDGER=1` rewrites those
/// columns and keeps the clients'.
#[tokio::test]
async fn the_ledger_lists_every_served_version() {
    use common::ledger::{self, Ledger};
    let broker = Broker::start(&[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    let advertised = client
        .call(ApiVersionsRequest::default(), 3)
        .await
        .unwrap()
        .api_keys;
    let mut ledger = Ledger::read();
    let clients = ledger.header.len() - ledger::FIXED.len();
    let rows: Vec<Vec<String>> = advertised
        .iter()
        .map(|a| {
            let api = ApiKey::try_from(a.api_key).expect("a known key");
            let name = format!("{api:?}");
            let served = (a.min_version..=a.max_version).collect();
            let known = ledger.rows.iter().find(|r| r[0] == name);
            let tested = known.map_or(vec!["-".to_string(); clients], |r| {
                r[ledger::FIXED.len()..].to_vec()
            });
            [name, a.api_key.to_string(), ledger::render(&served)]
                .into_iter()
                .chain(tested)
                .collect()
        })
        .collect();
    if ledger::blessing() {
        ledger.rows = rows;
        ledger.write();
    } else {
        let fixed = |rows: &[Vec<String>]| -> Vec<Vec<String>> {
            rows.iter()
                .map(|r| r[..ledger::FIXED.len()].to_vec())
                .collect()
        };
        assert_eq!(
            fixed(&ledger.rows),
            fixed(&rows),
            "docs/api-versions.md is stale: run this test with SILT_BLESS_LEDGER=1 and commit it"
        );
    }
}

#[tokio::test]
async fn every_advertised_version_is_served() {
    let broker = Broker::start(&[]);
    let mut client = Client::connect(&broker.addr).await.expect("connect");

    for v in versions(ApiKey::ApiVersions) {
        let response = client.call(ApiVersionsRequest::default(), v).await.unwrap();
        assert_eq!(response.error_code, 0, "ApiVersions v{v}");
        assert!(response.api_keys.len() >= 10);
    }

    for v in versions(ApiKey::CreateTopics) {
        let topic = CreatableTopic::default()
            .with_name(name(&format!("topic-v{v}")))
            .with_num_partitions(2)
            .with_replication_factor(1);
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(5000);
        let response = client.call(request, v).await.unwrap();
        assert_eq!(response.topics[0].error_code, 0, "CreateTopics v{v}");
    }
    let id = topic_id(&mut client, "topic-v2").await;

    for v in versions(ApiKey::Metadata) {
        let topics = if v == 0 {
            Some(vec![
                MetadataRequestTopic::default().with_name(Some(name("topic-v2"))),
            ])
        } else {
            None
        };
        let response = client
            .call(MetadataRequest::default().with_topics(topics), v)
            .await
            .unwrap();
        let topic = response
            .topics
            .iter()
            .find(|t| t.name == Some(name("topic-v2")))
            .expect("listed");
        assert_eq!(
            (topic.error_code, topic.partitions.len()),
            (0, 2),
            "Metadata v{v}"
        );
        if v >= 10 {
            assert_eq!(topic.topic_id, id, "Metadata v{v} topic id");
        }
    }

    let mut produced = 0;
    for v in versions(ApiKey::Produce) {
        let batch = encode_batch(
            &[Message {
                key: None,
                value: format!("v{v}").into(),
            }],
            1_700_000_000_000,
        );
        let data = TopicProduceData::default().with_partition_data(vec![
            PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch)),
        ]);
        let data = if v >= 13 {
            data.with_topic_id(id)
        } else {
            data.with_name(name("topic-v2"))
        };
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![data]);
        let response = client.call(request, v).await.unwrap();
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(
            (partition.error_code, partition.base_offset),
            (0, produced),
            "Produce v{v}"
        );
        produced += 1;
    }

    // A fetch may stop at a section boundary (data just moved from the tail
    // to an object), so each version reads on from where the last answer
    // ended, as clients do, until it has every record.
    for v in versions(ApiKey::Fetch) {
        let mut read = 0;
        for _ in 0..10 {
            let partition = FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(read)
                .with_partition_max_bytes(1 << 20);
            let topic = FetchTopic::default().with_partitions(vec![partition]);
            let topic = if v >= 13 {
                topic.with_topic_id(id)
            } else {
                topic.with_topic(name("topic-v2"))
            };
            let mut request = FetchRequest::default()
                .with_max_wait_ms(100)
                .with_max_bytes(1 << 20)
                .with_topics(vec![topic]);
            if v < 15 {
                request.replica_id = BrokerId(-1);
            }
            let response = client.call(request, v).await.unwrap();
            let data = &response.responses[0].partitions[0];
            assert_eq!(
                (data.error_code, data.high_watermark),
                (0, produced),
                "Fetch v{v}"
            );
            let records = kafka_protocol::records::RecordBatchDecoder::decode_all(
                &mut data.records.clone().unwrap(),
            )
            .unwrap();
            let offsets: Vec<i64> = records
                .iter()
                .flat_map(|b| b.records.iter().map(|r| r.offset))
                .collect();
            assert_eq!(offsets.first(), Some(&read), "Fetch v{v} starts at {read}");
            read = offsets.last().unwrap() + 1;
            if read == produced {
                break;
            }
        }
        assert_eq!(read, produced, "Fetch v{v} reads every record");
    }

    for v in versions(ApiKey::ListOffsets) {
        let partition = ListOffsetsPartition::default()
            .with_partition_index(0)
            .with_timestamp(-1);
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(name("topic-v2"))
                    .with_partitions(vec![partition]),
            ]);
        let response = client.call(request, v).await.unwrap();
        let p = &response.topics[0].partitions[0];
        assert_eq!((p.error_code, p.offset), (0, produced), "ListOffsets v{v}");
    }

    for v in versions(ApiKey::OffsetForLeaderEpoch) {
        let partition = OffsetForLeaderPartition::default()
            .with_partition(0)
            .with_leader_epoch(0)
            .with_current_leader_epoch(-1);
        let request = OffsetForLeaderEpochRequest::default().with_topics(vec![
            OffsetForLeaderTopic::default()
                .with_topic(name("topic-v2"))
                .with_partitions(vec![partition]),
        ]);
        let response = client.call(request, v).await.unwrap();
        let p = &response.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.end_offset),
            (0, produced),
            "OffsetForLeaderEpoch v{v}"
        );
    }

    for v in versions(ApiKey::InitProducerId) {
        let response = client
            .call(
                InitProducerIdRequest::default()
                    .with_transactional_id(None)
                    .with_transaction_timeout_ms(1000),
                v,
            )
            .await
            .unwrap();
        assert_eq!(response.error_code, 0, "InitProducerId v{v}");
        assert!(response.producer_id.0 >= 0);
    }

    for v in versions(ApiKey::IncrementalAlterConfigs) {
        let config = AlterableConfig::default()
            .with_name(s("retention.ms"))
            .with_config_operation(0)
            .with_value(Some(s(&format!("{}", 1000 + v))));
        let resource = AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("topic-v2"))
            .with_configs(vec![config]);
        let response = client
            .call(
                IncrementalAlterConfigsRequest::default().with_resources(vec![resource]),
                v,
            )
            .await
            .unwrap();
        assert_eq!(
            response.responses[0].error_code, 0,
            "IncrementalAlterConfigs v{v}"
        );
    }

    for v in versions(ApiKey::DescribeConfigs) {
        let resource = DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("topic-v2"))
            .with_configuration_keys(None);
        let response = client
            .call(
                DescribeConfigsRequest::default().with_resources(vec![resource]),
                v,
            )
            .await
            .unwrap();
        let result = &response.results[0];
        assert_eq!(result.error_code, 0, "DescribeConfigs v{v}");
        let retention = result
            .configs
            .iter()
            .find(|c| c.name.as_str() == "retention.ms")
            .expect("listed");
        assert_eq!(
            retention.value.as_deref(),
            Some("1001"),
            "DescribeConfigs v{v}"
        );
    }

    for v in versions(ApiKey::CreatePartitions) {
        let topic = CreatePartitionsTopic::default()
            .with_name(name("topic-v3"))
            .with_count(3 + i32::from(v));
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(5000);
        let response = client.call(request, v).await.unwrap();
        assert_eq!(response.results[0].error_code, 0, "CreatePartitions v{v}");
    }

    for v in versions(ApiKey::DescribeCluster) {
        let response = client
            .call(DescribeClusterRequest::default(), v)
            .await
            .unwrap();
        assert_eq!(
            (response.error_code, response.brokers.len()),
            (0, 1),
            "DescribeCluster v{v}"
        );
    }

    for v in versions(ApiKey::DeleteTopics) {
        let topic = format!("topic-v{}", v + 1);
        let request = if v >= 6 {
            DeleteTopicsRequest::default().with_topics(vec![
                DeleteTopicState::default().with_name(Some(name(&topic))),
            ])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![name(&topic)])
        };
        let response = client.call(request.with_timeout_ms(5000), v).await.unwrap();
        assert_eq!(
            response.responses[0].error_code, 0,
            "DeleteTopics v{v} ({topic})"
        );
    }
}

fn fetch_request(
    topic: &str,
    partitions: &[(i32, i64, i32)],
    max_bytes: i32,
    min_bytes: i32,
    max_wait_ms: i32,
) -> FetchRequest {
    let partitions = partitions
        .iter()
        .map(|&(p, offset, partition_max)| {
            FetchPartition::default()
                .with_partition(p)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(partition_max)
        })
        .collect();
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(max_bytes)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(partitions),
        ])
}

fn produce_request(topic: &str, partition: i32, records: bytes::Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records)),
                ]),
        ])
}

/// Produces one batch; returns (error code, base offset).
async fn produce(
    client: &mut Client,
    topic: &str,
    partition: i32,
    records: bytes::Bytes,
) -> (i16, i64) {
    let response = client
        .call(produce_request(topic, partition, records), 9)
        .await
        .unwrap();
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn batch_of(values: &[&str], timestamp: i64) -> bytes::Bytes {
    let messages: Vec<Message> = values
        .iter()
        .map(|v| Message {
            key: None,
            value: v.to_string().into(),
        })
        .collect();
    encode_batch(&messages, timestamp)
}

fn record_bytes(response: &FetchResponse, partition: usize) -> usize {
    response.responses[0].partitions[partition]
        .records
        .as_ref()
        .map_or(0, |r| r.len())
}

#[tokio::test]
async fn fetch_long_polls_until_min_bytes_arrive() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "poll", 1);
    let addr = broker.addr.clone();
    let waiter = tokio::spawn(async move {
        let mut client = Client::connect(&addr).await.unwrap();
        let started = std::time::Instant::now();
        let response = client
            .call(
                fetch_request("poll", &[(0, 0, 1 << 20)], 1 << 20, 1000, 20_000),
                12,
            )
            .await
            .unwrap();
        (response, started.elapsed())
    });
    let mut producer = Client::connect(&broker.addr).await.unwrap();
    let value = "x".repeat(100);
    let mut sent = 0;
    while !waiter.is_finished() {
        assert!(sent < 200, "the fetch never completed");
        assert_eq!(
            produce(&mut producer, "poll", 0, batch_of(&[&value], 1))
                .await
                .0,
            0
        );
        sent += 1;
    }
    let (response, elapsed) = waiter.await.unwrap();
    assert!(
        elapsed < std::time::Duration::from_secs(15),
        "woken by data, not by max_wait ({elapsed:?})"
    );
    assert!(
        record_bytes(&response, 0) >= 1000,
        "returned only once min_bytes were there"
    );
    assert!(
        sent >= 6,
        "one batch is ~170 bytes: several were needed to reach min_bytes"
    );

    // With no data at all, the fetch waits for max_wait and returns empty.
    let mut client = Client::connect(&broker.addr).await.unwrap();
    let started = std::time::Instant::now();
    let end = sent as i64;
    let response = client
        .call(
            fetch_request("poll", &[(0, end, 1 << 20)], 1 << 20, 1, 300),
            12,
        )
        .await
        .unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(290));
    assert_eq!(
        (
            response.responses[0].partitions[0].error_code,
            record_bytes(&response, 0)
        ),
        (0, 0)
    );
}

#[tokio::test]
async fn fetch_returns_whole_batches_within_byte_limits() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "limits", 2);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    let value = "y".repeat(1000);
    for p in 0..2 {
        for _ in 0..10 {
            assert_eq!(
                produce(&mut client, "limits", p, batch_of(&[&value], 1))
                    .await
                    .0,
                0
            );
        }
    }
    let count_batches = |response: &FetchResponse, p: usize| {
        let mut records = response.responses[0].partitions[p]
            .records
            .clone()
            .unwrap_or_default();
        kafka_protocol::records::RecordBatchDecoder::decode_all(&mut records)
            .unwrap()
            .len()
    };
    // Partition limit 2500 bytes: two ~1.07 KB batches, never a partial one.
    let response = client
        .call(
            fetch_request("limits", &[(0, 0, 2500)], 1 << 20, 1, 100),
            12,
        )
        .await
        .unwrap();
    assert_eq!(count_batches(&response, 0), 2);
    // A limit below one batch still returns that batch, so consumers progress.
    let response = client
        .call(fetch_request("limits", &[(0, 3, 1)], 1 << 20, 1, 100), 12)
        .await
        .unwrap();
    assert_eq!(count_batches(&response, 0), 1);
    // The request limit: the first partition gets one batch, the next none.
    let response = client
        .call(
            fetch_request("limits", &[(0, 0, 1 << 20), (1, 0, 1 << 20)], 1, 1, 100),
            12,
        )
        .await
        .unwrap();
    assert_eq!(
        (count_batches(&response, 0), count_batches(&response, 1)),
        (1, 0)
    );
    // A request limit of 5000 is shared: about 4 batches in all.
    let response = client
        .call(
            fetch_request("limits", &[(0, 0, 1 << 20), (1, 0, 1 << 20)], 5000, 1, 100),
            12,
        )
        .await
        .unwrap();
    assert_eq!(count_batches(&response, 0) + count_batches(&response, 1), 4);
}

#[tokio::test]
async fn list_offsets_finds_timestamps() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "times", 1);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    for (i, ts) in [1000, 2000, 3000].into_iter().enumerate() {
        assert_eq!(
            produce(&mut client, "times", 0, batch_of(&["a", "b"], ts)).await,
            (0, 2 * i as i64)
        );
    }
    let mut lookup = async |timestamp: i64| {
        let partition = ListOffsetsPartition::default()
            .with_partition_index(0)
            .with_timestamp(timestamp);
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(name("times"))
                    .with_partitions(vec![partition]),
            ]);
        let response = client.call(request, 8).await.unwrap();
        let p = &response.topics[0].partitions[0];
        assert_eq!(p.error_code, 0);
        (p.offset, p.timestamp)
    };
    assert_eq!(lookup(-2).await.0, 0, "earliest");
    assert_eq!(lookup(-1).await.0, 6, "latest");
    assert_eq!(lookup(500).await, (0, 1000));
    assert_eq!(lookup(1500).await, (2, 2000));
    assert_eq!(lookup(3000).await, (4, 3000));
    assert_eq!(lookup(3001).await, (-1, -1), "after the last record");
    assert_eq!(lookup(-3).await, (4, 3000), "max timestamp");
}

/// An idempotent batch of `count` records from `producer_id` at `sequence`.
fn idempotent_batch(producer_id: i64, epoch: i16, sequence: i32, count: i32) -> bytes::Bytes {
    let messages: Vec<Message> = (0..count)
        .map(|i| Message {
            key: None,
            value: format!("seq {}", sequence + i).into(),
        })
        .collect();
    let stamp = ProducerStamp {
        id: producer_id,
        epoch,
        base_sequence: sequence,
    };
    encode_idempotent_batch(&messages, 1, stamp)
}

#[tokio::test]
async fn idempotent_producer_state_survives_a_restart() {
    let mut broker = Broker::start(&[]);
    create_topic(&broker, "once", 1);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    let init = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(1000);
    let pid = client.call(init.clone(), 4).await.unwrap().producer_id.0;
    assert_eq!(
        produce(&mut client, "once", 0, idempotent_batch(pid, 0, 0, 3)).await,
        (0, 0)
    );
    assert_eq!(
        produce(&mut client, "once", 0, idempotent_batch(pid, 0, 3, 2)).await,
        (0, 3)
    );
    drop(client);
    broker.terminate(std::time::Duration::from_secs(10));
    broker.restart();

    let mut client = Client::connect(&broker.addr).await.unwrap();
    // (epoch, first sequence, records) -> (error code, base offset)
    let cases = [
        // Retries of both batches are answered with their original offsets.
        ((0, 0, 3), (0, 0)),
        ((0, 3, 2), (0, 3)),
        // A gap is refused (OUT_OF_ORDER_SEQUENCE_NUMBER), the next sequence is accepted.
        ((0, 9, 1), (45, -1)),
        ((0, 5, 1), (0, 5)),
        // A new epoch starts at sequence 0, and then the old epoch is fenced
        // (INVALID_PRODUCER_EPOCH).
        ((1, 0, 1), (0, 6)),
        ((0, 6, 1), (47, -1)),
    ];
    for ((epoch, sequence, count), expected) in cases {
        let batch = idempotent_batch(pid, epoch, sequence, count);
        let got = produce(&mut client, "once", 0, batch).await;
        assert_eq!(got, expected, "epoch {epoch}, sequence {sequence}");
    }
    // A new producer id is distinct from the first, even after the restart.
    assert_ne!(client.call(init, 4).await.unwrap().producer_id.0, pid);
    let (ok, out, err) = silt(&[
        "topic",
        "describe",
        "once",
        "--bootstrap-server",
        &broker.addr,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("LogEndOffset: 7"), "{out}");
}

#[tokio::test]
async fn admin_validate_only_and_broker_configs() {
    let broker = Broker::start(&[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    let topic = CreatableTopic::default()
        .with_name(name("dry"))
        .with_num_partitions(3)
        .with_replication_factor(-1);
    let request = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_validate_only(true);
    let response = client.call(request, 7).await.unwrap();
    assert_eq!(
        (
            response.topics[0].error_code,
            response.topics[0].num_partitions
        ),
        (0, 3)
    );
    let (_, out, _) = silt(&["topic", "list", "--bootstrap-server", &broker.addr]);
    assert!(
        out.trim().is_empty(),
        "validate_only created nothing: {out}"
    );

    // A dynamic broker default changes what topics without an override report.
    let set = AlterableConfig::default()
        .with_name(s("log.retention.ms"))
        .with_config_operation(0)
        .with_value(Some(s("5000")));
    let resource = AlterConfigsResource::default()
        .with_resource_type(4)
        .with_resource_name(s(""))
        .with_configs(vec![set]);
    let response = client
        .call(
            IncrementalAlterConfigsRequest::default().with_resources(vec![resource]),
            1,
        )
        .await
        .unwrap();
    assert_eq!(response.responses[0].error_code, 0);
    create_topic(&broker, "inherits", 1);
    let describe = |resource_type: i8, resource: &str| {
        DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(s(resource))
                .with_configuration_keys(None),
        ])
    };
    let response = client.call(describe(2, "inherits"), 4).await.unwrap();
    let retention = response.results[0]
        .configs
        .iter()
        .find(|c| c.name.as_str() == "retention.ms")
        .unwrap();
    assert_eq!(
        (retention.value.as_deref(), retention.config_source),
        (Some("5000"), 3)
    );
    let response = client.call(describe(4, "1"), 4).await.unwrap();
    assert!(
        response.results[0]
            .configs
            .iter()
            .any(|c| c.name.as_str() == "log.retention.ms" && c.value.as_deref() == Some("5000"))
    );
    // Read-only and unknown broker configs are refused.
    let bad = AlterableConfig::default()
        .with_name(s("broker.id"))
        .with_config_operation(0)
        .with_value(Some(s("7")));
    let resource = AlterConfigsResource::default()
        .with_resource_type(4)
        .with_resource_name(s("1"))
        .with_configs(vec![bad]);
    let response = client
        .call(
            IncrementalAlterConfigsRequest::default().with_resources(vec![resource]),
            1,
        )
        .await
        .unwrap();
    assert_eq!(response.responses[0].error_code, 40, "INVALID_CONFIG");
}

/// The version of `api` to use in round `i`: every version appears once
/// `i` has run through the longest range.
fn version_at(api: ApiKey, i: i16) -> i16 {
    let (min, max) = supported(api).expect("advertised");
    (min + i).min(max)
}

#[tokio::test]
async fn group_apis_at_every_advertised_version() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;

    let broker = Broker::start(&[]);
    create_topic(&broker, "grouped", 2);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    for i in 0..10 {
        let group = format!("g{i}");
        let gid = GroupId(s(&group));

        let v = version_at(ApiKey::FindCoordinator, i);
        let request = if v >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![s(&group)])
        } else {
            FindCoordinatorRequest::default().with_key(s(&group))
        };
        let response = client.call(request, v).await.unwrap();
        let (code, port) = if v >= 4 {
            (
                response.coordinators[0].error_code,
                response.coordinators[0].port,
            )
        } else {
            (response.error_code, response.port)
        };
        assert_eq!(code, 0, "FindCoordinator v{v}");
        assert_eq!(port.to_string(), broker.addr.rsplit(':').next().unwrap());

        // JoinGroup, with the member-id handshake from v4.
        let v = version_at(ApiKey::JoinGroup, i);
        let join = |member: &str| {
            JoinGroupRequest::default()
                .with_group_id(gid.clone())
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_member_id(s(member))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![
                    JoinGroupRequestProtocol::default()
                        .with_name(s("range"))
                        .with_metadata(bytes::Bytes::from_static(b"subscription")),
                ])
        };
        let mut joined = client.call(join(""), v).await.unwrap();
        if v >= 4 {
            assert_eq!(
                joined.error_code, 79,
                "MEMBER_ID_REQUIRED at JoinGroup v{v}"
            );
            let member = joined.member_id.to_string();
            joined = client.call(join(&member), v).await.unwrap();
        }
        assert_eq!(joined.error_code, 0, "JoinGroup v{v}");
        assert_eq!(
            (joined.generation_id, joined.leader.as_str()),
            (1, joined.member_id.as_str())
        );
        assert_eq!(
            joined.members.len(),
            1,
            "JoinGroup v{v}: the leader sees itself"
        );
        let member = joined.member_id.clone();

        let v = version_at(ApiKey::SyncGroup, i);
        let assignment = bytes::Bytes::from_static(b"assigned");
        let request = SyncGroupRequest::default()
            .with_group_id(gid.clone())
            .with_generation_id(1)
            .with_member_id(member.clone())
            .with_assignments(vec![
                SyncGroupRequestAssignment::default()
                    .with_member_id(member.clone())
                    .with_assignment(assignment.clone()),
            ]);
        let synced = client.call(request, v).await.unwrap();
        assert_eq!(
            (synced.error_code, synced.assignment.clone()),
            (0, assignment),
            "SyncGroup v{v}"
        );

        let v = version_at(ApiKey::Heartbeat, i);
        let beat = HeartbeatRequest::default()
            .with_group_id(gid.clone())
            .with_generation_id(1)
            .with_member_id(member.clone());
        assert_eq!(
            client.call(beat.clone(), v).await.unwrap().error_code,
            0,
            "Heartbeat v{v}"
        );
        let stale = beat.with_generation_id(0);
        assert_eq!(
            client.call(stale, v).await.unwrap().error_code,
            22,
            "ILLEGAL_GENERATION v{v}"
        );

        let v = version_at(ApiKey::OffsetCommit, i);
        let request = OffsetCommitRequest::default()
            .with_group_id(gid.clone())
            .with_generation_id_or_member_epoch(1)
            .with_member_id(member.clone())
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(name("grouped"))
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(1)
                            .with_committed_offset(40 + i64::from(i))
                            .with_committed_metadata(Some(s("meta"))),
                    ]),
            ]);
        let response = client.call(request, v).await.unwrap();
        assert_eq!(
            response.topics[0].partitions[0].error_code, 0,
            "OffsetCommit v{v}"
        );

        let v = version_at(ApiKey::OffsetFetch, i);
        let committed = if v >= 8 {
            let request = OffsetFetchRequest::default().with_groups(vec![
                OffsetFetchRequestGroup::default()
                    .with_group_id(gid.clone())
                    .with_topics(Some(vec![
                        OffsetFetchRequestTopics::default()
                            .with_name(name("grouped"))
                            .with_partition_indexes(vec![0, 1]),
                    ])),
            ]);
            let response = client.call(request, v).await.unwrap();
            let p = &response.groups[0].topics[0].partitions;
            (p[0].committed_offset, p[1].committed_offset)
        } else {
            let request = OffsetFetchRequest::default()
                .with_group_id(gid.clone())
                .with_topics(Some(vec![
                    OffsetFetchRequestTopic::default()
                        .with_name(name("grouped"))
                        .with_partition_indexes(vec![0, 1]),
                ]));
            let response = client.call(request, v).await.unwrap();
            let p = &response.topics[0].partitions;
            (p[0].committed_offset, p[1].committed_offset)
        };
        assert_eq!(committed, (-1, 40 + i64::from(i)), "OffsetFetch v{v}");

        let v = version_at(ApiKey::ListGroups, i);
        let response = client.call(ListGroupsRequest::default(), v).await.unwrap();
        assert!(
            response.groups.iter().any(|g| g.group_id == gid),
            "ListGroups v{v}"
        );

        let v = version_at(ApiKey::DescribeGroups, i);
        let response = client
            .call(
                DescribeGroupsRequest::default().with_groups(vec![gid.clone()]),
                v,
            )
            .await
            .unwrap();
        let described = &response.groups[0];
        assert_eq!(
            (described.group_state.as_str(), described.members.len()),
            ("Stable", 1),
            "DescribeGroups v{v}"
        );

        let v = version_at(ApiKey::LeaveGroup, i);
        let request = if v >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(gid.clone())
                .with_members(vec![
                    MemberIdentity::default().with_member_id(member.clone()),
                ])
        } else {
            LeaveGroupRequest::default()
                .with_group_id(gid.clone())
                .with_member_id(member.clone())
        };
        let response = client.call(request, v).await.unwrap();
        let code = if v >= 3 {
            response.members[0].error_code
        } else {
            response.error_code
        };
        assert_eq!(code, 0, "LeaveGroup v{v}");

        let v = version_at(ApiKey::OffsetDelete, i);
        let request = OffsetDeleteRequest::default()
            .with_group_id(gid.clone())
            .with_topics(vec![
                kafka_protocol::messages::offset_delete_request::OffsetDeleteRequestTopic::default()
                    .with_name(name("grouped"))
                    .with_partitions(vec![
                        kafka_protocol::messages::offset_delete_request::OffsetDeleteRequestPartition::default()
                            .with_partition_index(1),
                    ]),
            ]);
        let response = client.call(request, v).await.unwrap();
        assert_eq!(
            response.topics[0].partitions[0].error_code, 0,
            "OffsetDelete v{v}"
        );

        let v = version_at(ApiKey::DeleteGroups, i);
        let response = client
            .call(
                DeleteGroupsRequest::default().with_groups_names(vec![gid.clone()]),
                v,
            )
            .await
            .unwrap();
        assert_eq!(response.results[0].error_code, 0, "DeleteGroups v{v}");
    }
}

/// A batch of `count` keyed records of 1 KiB of zeros in `compression`.
fn compressed_batch(count: i64, compression: kafka_protocol::records::Compression) -> bytes::Bytes {
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            // The encoder cuts batches where offset - sequence changes.
            sequence: i as i32 - 1,
            timestamp: 1_700_000_000_000,
            key: Some(format!("k{i}").into()),
            value: Some(vec![0u8; 1024].into()),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.freeze()
}

/// A compacted topic refuses records without a key (INVALID_RECORD, as
/// Kafka); `compression.type=zstd` stores batches in zstd whatever the
/// producer sent; a batch that would inflate past
/// `limits.max_inflated_batch_bytes` is refused (CORRUPT_MESSAGE), not
/// allocated.
#[tokio::test]
async fn compacted_topics_need_keys_and_compression_type_recompresses() {
    use kafka_protocol::records::{Compression, RecordBatchDecoder};
    let broker =
        Broker::start_with_env(&[], &[("SILT_LIMITS__MAX_INFLATED_BATCH_BYTES", "100000")]);
    let (ok, _, err) = silt(&[
        "topic",
        "create",
        "keyed",
        "--config",
        "cleanup.policy=compact",
        "--config",
        "compression.type=zstd",
        "--bootstrap-server",
        &broker.addr,
    ]);
    assert!(ok, "{err}");
    let mut client = Client::connect(&broker.addr).await.unwrap();
    let unkeyed = batch_of(&["no key"], 1000);
    assert_eq!(produce(&mut client, "keyed", 0, unkeyed).await, (87, -1));
    let keyed = compressed_batch(20, Compression::None);
    assert_eq!(produce(&mut client, "keyed", 0, keyed).await, (0, 0));
    let gzipped = compressed_batch(10, Compression::Gzip);
    assert_eq!(produce(&mut client, "keyed", 0, gzipped).await, (0, 20));
    // 200 KiB of zeros gzip to about 1 KiB: over the limit once inflated.
    let bomb = compressed_batch(200, Compression::Gzip);
    assert!(bomb.len() < 10_000);
    assert_eq!(produce(&mut client, "keyed", 0, bomb).await, (2, -1));

    let response = client
        .call(
            fetch_request("keyed", &[(0, 0, 1 << 20)], 1 << 20, 1, 1000),
            12,
        )
        .await
        .unwrap();
    let mut records = response.responses[0].partitions[0].records.clone().unwrap();
    let batches = RecordBatchDecoder::decode_all(&mut records).unwrap();
    assert_eq!(batches.len(), 2);
    assert!(batches.iter().all(|b| b.compression == Compression::Zstd));
    let keys: Vec<(i64, String)> = batches
        .iter()
        .flat_map(|b| &b.records)
        .map(|r| {
            (
                r.offset,
                String::from_utf8_lossy(r.key.as_deref().unwrap()).into_owned(),
            )
        })
        .collect();
    assert_eq!(keys.len(), 30);
    assert_eq!(keys[25], (25, "k5".to_string()));
    assert!(
        batches[0]
            .records
            .iter()
            .all(|r| r.value.as_deref() == Some(&[0u8; 1024][..]))
    );
}

/// One transaction per round, each API at the version of the round (every
/// advertised version appears): FindCoordinator for a transactional id,
/// InitProducerId, AddPartitionsToTxn (the clients' form, and the batched
/// form with verify-only), a transactional produce, AddOffsetsToTxn,
/// TxnOffsetCommit, EndTxn; then ListTransactions, DescribeTransactions,
/// DescribeProducers, OffsetFetch of the committed offsets, and
/// WriteTxnMarkers aborting an open transaction.
#[tokio::test]
async fn transaction_apis_at_every_advertised_version() {
    use kafka_protocol::error::ResponseError;
    use kafka_protocol::messages::add_partitions_to_txn_request::{
        AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
    };
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::write_txn_markers_request::{
        WritableTxnMarker, WritableTxnMarkerTopic,
    };

    let broker = Broker::start(&[]);
    create_topic(&broker, "txv", 2);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    let added = |request: AddPartitionsToTxnResponse, v: i16| -> Vec<i16> {
        let topics = if v >= 4 {
            request.results_by_transaction[0].topic_results.clone()
        } else {
            request.results_by_topic_v3_and_below
        };
        topics
            .iter()
            .flat_map(|t| {
                t.results_by_partition
                    .iter()
                    .map(|p| p.partition_error_code)
            })
            .collect()
    };
    let add = |id: &str, producer_id, epoch, partition: i32, v: i16, verify: bool| {
        let topics = vec![
            AddPartitionsToTxnTopic::default()
                .with_name(name("txv"))
                .with_partitions(vec![partition]),
        ];
        if v >= 4 {
            AddPartitionsToTxnRequest::default().with_transactions(vec![
                AddPartitionsToTxnTransaction::default()
                    .with_transactional_id(TransactionalId(s(id)))
                    .with_producer_id(producer_id)
                    .with_producer_epoch(epoch)
                    .with_verify_only(verify)
                    .with_topics(topics),
            ])
        } else {
            AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(s(id)))
                .with_v3_and_below_producer_id(producer_id)
                .with_v3_and_below_producer_epoch(epoch)
                .with_v3_and_below_topics(topics)
        }
    };
    for i in 0..6 {
        let id = format!("tx{i}");
        let group = format!("gtx{i}");
        let v = version_at(ApiKey::FindCoordinator, i).max(1);
        let request = if v >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![s(&id)])
        } else {
            FindCoordinatorRequest::default().with_key(s(&id))
        };
        let response = client.call(request.with_key_type(1), v).await.unwrap();
        let code = if v >= 4 {
            response.coordinators[0].error_code
        } else {
            response.error_code
        };
        assert_eq!(code, 0, "FindCoordinator(TRANSACTION) v{v}");

        let v = version_at(ApiKey::InitProducerId, i);
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s(&id))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let response = client.call(request, v).await.unwrap();
        assert_eq!(response.error_code, 0, "InitProducerId v{v}");
        let (producer_id, epoch) = (response.producer_id, response.producer_epoch);

        let v = version_at(ApiKey::AddPartitionsToTxn, i);
        let partition = i32::from(i % 2);
        let response = client
            .call(add(&id, producer_id, epoch, partition, v, false), v)
            .await
            .unwrap();
        assert_eq!(added(response, v), vec![0], "AddPartitionsToTxn v{v}");
        if v >= 4 {
            let verified = client
                .call(add(&id, producer_id, epoch, partition, v, true), v)
                .await
                .unwrap();
            assert_eq!(added(verified, v), vec![0], "verified, v{v}");
            let other = client
                .call(add(&id, producer_id, epoch, 1 - partition, v, true), v)
                .await
                .unwrap();
            assert_eq!(
                added(other, v),
                vec![ResponseError::InvalidTxnState.code()],
                "not in the transaction, v{v}"
            );
        }
        let request = produce_request(
            "txv",
            partition,
            transactional_batch(producer_id.0, epoch, 0),
        )
        .with_transactional_id(Some(TransactionalId(s(&id))));
        let response = client.call(request, 9).await.unwrap();
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);

        let v = version_at(ApiKey::AddOffsetsToTxn, i);
        let request = AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(s(&id)))
            .with_producer_id(producer_id)
            .with_producer_epoch(epoch)
            .with_group_id(GroupId(s(&group)));
        let response = client.call(request, v).await.unwrap();
        assert_eq!(response.error_code, 0, "AddOffsetsToTxn v{v}");

        let v = version_at(ApiKey::TxnOffsetCommit, i);
        let request = TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(s(&id)))
            .with_group_id(GroupId(s(&group)))
            .with_producer_id(producer_id)
            .with_producer_epoch(epoch)
            .with_generation_id(-1)
            .with_topics(vec![
                TxnOffsetCommitRequestTopic::default()
                    .with_name(name("txv"))
                    .with_partitions(vec![
                        TxnOffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(100 + i64::from(i)),
                    ]),
            ]);
        let response = client.call(request, v).await.unwrap();
        assert_eq!(
            response.topics[0].partitions[0].error_code, 0,
            "TxnOffsetCommit v{v}"
        );

        let v = version_at(ApiKey::EndTxn, i);
        let request = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(s(&id)))
            .with_producer_id(producer_id)
            .with_producer_epoch(epoch)
            .with_committed(true);
        let response = client.call(request, v).await.unwrap();
        assert_eq!(response.error_code, 0, "EndTxn v{v}");

        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_topics(Some(vec![
                OffsetFetchRequestTopic::default()
                    .with_name(name("txv"))
                    .with_partition_indexes(vec![0]),
            ]));
        let response = client.call(request, 7).await.unwrap();
        assert_eq!(
            response.topics[0].partitions[0].committed_offset,
            100 + i64::from(i),
            "the transaction's offsets are the group's"
        );

        let v = version_at(ApiKey::ListTransactions, i);
        let response = client
            .call(ListTransactionsRequest::default(), v)
            .await
            .unwrap();
        let listed = response
            .transaction_states
            .iter()
            .find(|t| t.transactional_id.as_str() == id)
            .unwrap_or_else(|| panic!("ListTransactions v{v} lists {id}"));
        assert_eq!(listed.transaction_state.as_str(), "CompleteCommit");
    }
    let request = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(s("tx0")), TransactionalId(s("none"))]);
    let response = client.call(request, 0).await.unwrap();
    let states = &response.transaction_states;
    assert_eq!(
        (states[0].error_code, states[0].transaction_state.as_str()),
        (0, "CompleteCommit")
    );
    assert_eq!(
        states[1].error_code,
        ResponseError::TransactionalIdNotFound.code()
    );

    // An open transaction, ended with a marker written directly.
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s("open"))))
        .with_transaction_timeout_ms(60_000);
    let response = client.call(request, 4).await.unwrap();
    let (producer_id, epoch) = (response.producer_id, response.producer_epoch);
    let response = client
        .call(add("open", producer_id, epoch, 1, 3, false), 3)
        .await
        .unwrap();
    assert_eq!(added(response, 3), vec![0]);
    let request = produce_request("txv", 1, transactional_batch(producer_id.0, epoch, 0))
        .with_transactional_id(Some(TransactionalId(s("open"))));
    client.call(request, 9).await.unwrap();
    let request = DescribeProducersRequest::default().with_topics(vec![
        TopicRequest::default()
            .with_name(name("txv"))
            .with_partition_indexes(vec![1]),
    ]);
    let response = client.call(request, 0).await.unwrap();
    let partition = &response.topics[0].partitions[0];
    let open = partition
        .active_producers
        .iter()
        .find(|p| p.producer_id == producer_id)
        .expect("DescribeProducers lists the producer");
    assert!(
        open.current_txn_start_offset >= 0,
        "its transaction is open"
    );
    let marker = WritableTxnMarker::default()
        .with_producer_id(producer_id)
        .with_producer_epoch(epoch)
        .with_transaction_result(false)
        .with_topics(vec![
            WritableTxnMarkerTopic::default()
                .with_name(name("txv"))
                .with_partition_indexes(vec![1]),
        ]);
    let request = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
    let response = client.call(request, 1).await.unwrap();
    assert_eq!(response.markers[0].topics[0].partitions[0].error_code, 0);
    let response = client.call(
        DescribeProducersRequest::default().with_topics(vec![
            TopicRequest::default()
                .with_name(name("txv"))
                .with_partition_indexes(vec![1]),
        ]),
        0,
    );
    let response = response.await.unwrap();
    let ended = response.topics[0].partitions[0]
        .active_producers
        .iter()
        .find(|p| p.producer_id == producer_id)
        .unwrap();
    assert_eq!(ended.current_txn_start_offset, -1, "the marker ended it");
}

/// The cluster admin APIs Kafka's tools and the Java AdminClient call, at
/// every advertised version: DescribeLogDirs (sizes), DescribeTopicPartitions
/// (paged with a cursor), the legacy AlterConfigs (the set given replaces
/// the topic's), ElectLeaders (never needed: a partition's only replica
/// leads it), AlterPartitionReassignments (a new leader; nothing to
/// cancel), ListPartitionReassignments (none ongoing) and
/// GetTelemetrySubscriptions (none).
#[tokio::test]
async fn cluster_admin_apis_at_every_advertised_version() {
    let broker = Broker::start(&[]);
    let mut client = Client::connect(&broker.addr).await.expect("connect");
    create_topic(&broker, "dirs", 2);
    assert_eq!(
        produce(&mut client, "dirs", 0, batch_of(&["a", "b"], 1))
            .await
            .0,
        0
    );

    for v in versions(ApiKey::DescribeLogDirs) {
        let response = client
            .call(DescribeLogDirsRequest::default().with_topics(None), v)
            .await
            .unwrap();
        assert_eq!(response.error_code, 0, "DescribeLogDirs v{v}");
        let dir = &response.results[0];
        let topic = dir
            .topics
            .iter()
            .find(|t| t.name.as_str() == "dirs")
            .expect("listed");
        let sizes: Vec<(i32, bool)> = topic
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.partition_size > 0))
            .collect();
        assert_eq!(sizes, [(0, true), (1, false)], "DescribeLogDirs v{v}");
    }

    for v in versions(ApiKey::DescribeTopicPartitions) {
        use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
        let request = |cursor: Option<Cursor>| {
            DescribeTopicPartitionsRequest::default()
                .with_topics(vec![
                    TopicRequest::default().with_name(name("missing")),
                    TopicRequest::default().with_name(name("dirs")),
                ])
                .with_response_partition_limit(1)
                .with_cursor(cursor)
        };
        let first = client.call(request(None), v).await.unwrap();
        assert_eq!(first.topics.len(), 1, "DescribeTopicPartitions v{v}");
        assert_eq!(first.topics[0].partitions.len(), 1);
        assert_eq!(first.topics[0].partitions[0].leader_id.0, 1);
        let cursor = first.next_cursor.expect("more to come");
        assert_eq!(
            (cursor.topic_name.as_str(), cursor.partition_index),
            ("dirs", 1)
        );
        let cursor = Cursor::default()
            .with_topic_name(cursor.topic_name)
            .with_partition_index(1);
        let second = client.call(request(Some(cursor)), v).await.unwrap();
        let answered: Vec<(&str, i16, usize)> = second
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.as_ref().unwrap().as_str(),
                    t.error_code,
                    t.partitions.len(),
                )
            })
            .collect();
        assert_eq!(
            answered,
            [("dirs", 0, 1), ("missing", 3, 0)],
            "DescribeTopicPartitions v{v}"
        );
        assert!(second.next_cursor.is_none());
    }

    for v in versions(ApiKey::AlterConfigs) {
        use kafka_protocol::messages::alter_configs_request::{
            AlterConfigsResource, AlterableConfig,
        };
        let alter = |configs: &[(&str, String)]| {
            AlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("dirs"))
                    .with_configs(
                        configs
                            .iter()
                            .map(|(k, v)| {
                                AlterableConfig::default()
                                    .with_name(s(k))
                                    .with_value(Some(s(v)))
                            })
                            .collect(),
                    ),
            ])
        };
        let retention = (10_000 + i64::from(v)).to_string();
        let response = client
            .call(
                alter(&[
                    ("retention.ms", retention.clone()),
                    ("segment.bytes", "1048576".into()),
                ]),
                v,
            )
            .await
            .unwrap();
        assert_eq!(response.responses[0].error_code, 0, "AlterConfigs v{v}");
        let response = client
            .call(alter(&[("retention.ms", retention.clone())]), v)
            .await
            .unwrap();
        assert_eq!(response.responses[0].error_code, 0, "AlterConfigs v{v}");
        let response = client
            .call(alter(&[("retention.ms", "forever".into())]), v)
            .await
            .unwrap();
        assert_eq!(
            response.responses[0].error_code, 40,
            "AlterConfigs v{v}: INVALID_CONFIG"
        );
        let described = client
            .call(
                DescribeConfigsRequest::default().with_resources(vec![
                    DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s("dirs"))
                        .with_configuration_keys(None),
                ]),
                4,
            )
            .await
            .unwrap();
        let overrides: Vec<(&str, &str)> = described.results[0]
            .configs
            .iter()
            .filter(|c| c.config_source == 1)
            .map(|c| (c.name.as_str(), c.value.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            overrides,
            [("retention.ms", retention.as_str())],
            "AlterConfigs v{v} replaced the set"
        );
    }

    for v in versions(ApiKey::ElectLeaders) {
        use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
        let request = ElectLeadersRequest::default()
            .with_topic_partitions(Some(vec![
                TopicPartitions::default()
                    .with_topic(name("dirs"))
                    .with_partitions(vec![0, 1]),
                TopicPartitions::default()
                    .with_topic(name("missing"))
                    .with_partitions(vec![0]),
            ]))
            .with_timeout_ms(5000);
        let response = client.call(request, v).await.unwrap();
        assert_eq!(response.error_code, 0, "ElectLeaders v{v}");
        let codes: Vec<(&str, Vec<i16>)> = response
            .replica_election_results
            .iter()
            .map(|r| {
                (
                    r.topic.as_str(),
                    r.partition_result.iter().map(|p| p.error_code).collect(),
                )
            })
            .collect();
        assert_eq!(
            codes,
            [("dirs", vec![84, 84]), ("missing", vec![3])],
            "ElectLeaders v{v}"
        );
        let all = client
            .call(
                ElectLeadersRequest::default().with_topic_partitions(None),
                v,
            )
            .await
            .unwrap();
        assert!(
            all.replica_election_results.is_empty(),
            "ElectLeaders v{v}: nothing needed"
        );
    }

    for v in versions(ApiKey::AlterPartitionReassignments) {
        use kafka_protocol::messages::alter_partition_reassignments_request::{
            ReassignablePartition, ReassignableTopic,
        };
        let partition = |index: i32, replicas: Option<Vec<i32>>| {
            ReassignablePartition::default()
                .with_partition_index(index)
                .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect()))
        };
        let request = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![
                ReassignableTopic::default()
                    .with_name(name("dirs"))
                    .with_partitions(vec![
                        partition(0, Some(vec![1])),
                        partition(1, None),
                        partition(2, Some(vec![1])),
                        partition(0, Some(vec![9])),
                    ]),
            ]);
        let response = client.call(request, v).await.unwrap();
        assert_eq!(response.error_code, 0, "AlterPartitionReassignments v{v}");
        let codes: Vec<i16> = response.responses[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        assert_eq!(codes, [0, 85, 3, 39], "AlterPartitionReassignments v{v}");
    }

    for v in versions(ApiKey::ListPartitionReassignments) {
        let response = client
            .call(
                ListPartitionReassignmentsRequest::default().with_topics(None),
                v,
            )
            .await
            .unwrap();
        assert_eq!(
            (response.error_code, response.topics.len()),
            (0, 0),
            "ListPartitionReassignments v{v}"
        );
    }

    for v in versions(ApiKey::GetTelemetrySubscriptions) {
        let response = client
            .call(GetTelemetrySubscriptionsRequest::default(), v)
            .await
            .unwrap();
        assert_eq!(response.error_code, 0, "GetTelemetrySubscriptions v{v}");
        assert!(!response.client_instance_id.is_nil() && response.requested_metrics.is_empty());
        assert!(response.push_interval_ms > 0);
    }
}

/// A manual replica assignment in CreateTopics or CreatePartitions is a
/// placement hint: it gives the partition count and each partition's
/// leader (its first broker); an unknown broker, partitions not numbered
/// 0 to n-1, or an assignment with a partition count are refused with
/// Kafka's errors.
#[tokio::test]
async fn manual_replica_assignments_are_placement_hints() {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsAssignment;
    use kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment;
    let broker = Broker::start(&[]);
    let mut client = Client::connect(&broker.addr).await.expect("connect");
    let create = |topic: &str, partitions: i32, assignments: &[(i32, i32)]| {
        let assignments = assignments
            .iter()
            .map(|&(p, b)| {
                CreatableReplicaAssignment::default()
                    .with_partition_index(p)
                    .with_broker_ids(vec![BrokerId(b)])
            })
            .collect();
        CreateTopicsRequest::default()
            .with_topics(vec![
                CreatableTopic::default()
                    .with_name(name(topic))
                    .with_num_partitions(partitions)
                    .with_replication_factor(-1)
                    .with_assignments(assignments),
            ])
            .with_timeout_ms(5000)
    };
    let result = |r: CreateTopicsResponse| (r.topics[0].error_code, r.topics[0].num_partitions);
    let placed = client
        .call(create("placed", -1, &[(1, 1), (0, 1)]), 7)
        .await
        .unwrap();
    assert_eq!(result(placed), (0, 2));
    let refused = [
        ("unknown", -1, vec![(0, 7)], 39),
        ("gap", -1, vec![(1, 1)], 39),
        ("both", 2, vec![(0, 1)], 42),
    ];
    for (topic, partitions, assignments, code) in refused {
        let response = client
            .call(create(topic, partitions, &assignments), 7)
            .await
            .unwrap();
        assert_eq!(response.topics[0].error_code, code, "{topic}");
    }

    let grow = |count: i32, brokers: &[i32]| {
        let assignments = brokers
            .iter()
            .map(|&b| CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(b)]))
            .collect();
        CreatePartitionsRequest::default()
            .with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(name("placed"))
                    .with_count(count)
                    .with_assignments(Some(assignments)),
            ])
            .with_timeout_ms(5000)
    };
    for (count, brokers, code) in [(4, vec![1], 39), (3, vec![9], 39), (3, vec![1], 0)] {
        let response = client.call(grow(count, &brokers), 3).await.unwrap();
        assert_eq!(
            response.results[0].error_code, code,
            "to {count} with {brokers:?}"
        );
    }
    let (ok, described, _) = silt(&[
        "topic",
        "describe",
        "placed",
        "--bootstrap-server",
        &broker.addr,
    ]);
    assert!(ok && described.contains("PartitionCount: 3"), "{described}");
}
