//! Every API at every advertised version: a typical request gets a response
//! that decodes at that version and reports success, on one connection that
//! stays open throughout. This is what "never advertise a version you do
//! not fully serve" is checked against, alongside the real-client tests.

mod common;

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
use silt::client::{Client, Message, encode_batch};
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

    for v in versions(ApiKey::Fetch) {
        let partition = FetchPartition::default()
            .with_partition(0)
            .with_fetch_offset(0)
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
        let count: usize = records.iter().map(|b| b.records.len()).sum();
        assert_eq!(count as i64, produced, "Fetch v{v} records");
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
