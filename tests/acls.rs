//! ACLs with real clients: a broker with `authorizer = "acl"`, users
//! authenticated with SASL, ACLs managed with `silt acl`, and what each
//! user may and may not do, as librdkafka and the protocol show it.

mod common;

use std::time::Duration;

use common::security::*;
use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// A broker checking ACLs: a PLAINTEXT listener for operators (its
/// User:ANONYMOUS is a super user, as an inter-broker principal is) and a
/// SASL_PLAINTEXT one for users alice, bob and admin (a super user).
struct AclBroker {
    broker: Broker,
    sasl: String,
    _dir: tempfile::TempDir,
}

fn start_acl_broker() -> AclBroker {
    let sasl = free_port();
    let (broker, dir) = start_with_config(&format!(
        r#"
[security]
authorizer = "acl"
super_users = ["User:admin", "User:ANONYMOUS"]

[[listeners]]
name = "INTERNAL"
listen = "127.0.0.1:{internal}"

[[listeners]]
name = "USERS"
listen = "127.0.0.1:{sasl}"
protocol = "SASL_PLAINTEXT"
"#,
        internal = free_port(),
    ));
    for user in ["alice", "bob", "admin"] {
        create_user(&broker.addr, user, &format!("{user}-pw"));
    }
    AclBroker {
        broker,
        sasl: format!("127.0.0.1:{sasl}"),
        _dir: dir,
    }
}

impl AclBroker {
    /// `silt acl ARGS` through the operators' listener.
    fn acl(&self, args: &[&str]) -> String {
        let mut all = vec!["acl"];
        all.extend(args);
        all.extend(["--bootstrap-server", &self.broker.addr]);
        let (ok, out, err) = silt(&all);
        assert!(ok, "silt {all:?}: {err}");
        out
    }

    /// librdkafka settings for `user`.
    fn as_user(&self, user: &str) -> Vec<(&'static str, String)> {
        vec![
            ("security.protocol", "sasl_plaintext".into()),
            ("sasl.mechanism", "SCRAM-SHA-512".into()),
            ("sasl.username", user.into()),
            ("sasl.password", format!("{user}-pw")),
        ]
    }
}

/// Produces `count` messages as `user`; how many were acknowledged.
fn produce_as(b: &AclBroker, user: &str, topic: &str, count: u64) -> usize {
    let deliveries = Deliveries::default();
    let mut settings = b.as_user(user);
    settings.push(("message.timeout.ms", "10000".into()));
    let producer = producer_over(&b.sasl, &deliveries, &settings);
    produce_keyed(&producer, topic, 0..count, 10);
    let _ = rdkafka::producer::Producer::flush(&producer, Duration::from_secs(30));
    deliveries.acked.lock().unwrap().len()
}

/// Consumes `topic` as `user` in `group` until a message or an error
/// arrives: the error's code, or `None` when a message arrived.
fn consume_as(b: &AclBroker, user: &str, topic: &str, group: &str) -> Option<RDKafkaErrorCode> {
    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", &b.sasl)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    for (k, v) in b.as_user(user) {
        config.set(k, v);
    }
    let consumer: BaseConsumer = config.create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(_)) => return None,
            Some(Err(KafkaError::MessageConsumption(code) | KafkaError::Global(code))) => {
                return Some(code);
            }
            Some(Err(e)) => return e.rdkafka_error_code(),
            None => {}
        }
    }
    panic!("{user} got neither a message nor an error from {topic}");
}

#[test]
fn write_without_read_and_read_without_the_group() {
    let b = start_acl_broker();
    create_topic(&b.broker, "orders", 1);
    b.acl(&[
        "create",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Write",
        "--topic",
        "orders",
    ]);
    assert_eq!(produce_as(&b, "alice", "orders", 20), 20, "alice may write");
    assert_eq!(produce_as(&b, "bob", "orders", 5), 0, "bob may not");
    b.acl(&[
        "create",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Read",
        "--group",
        "mine",
    ]);
    assert_eq!(
        consume_as(&b, "alice", "orders", "mine"),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed),
        "Write does not give Read"
    );
    b.acl(&[
        "create",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Read",
        "--topic",
        "orders",
    ]);
    assert_eq!(
        consume_as(&b, "alice", "orders", "g"),
        Some(RDKafkaErrorCode::GroupAuthorizationFailed),
        "no Read on the group"
    );
    b.acl(&[
        "create",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Read",
        "--group",
        "g",
    ]);
    assert_eq!(
        consume_as(&b, "alice", "orders", "g"),
        None,
        "now she reads"
    );
    // The super user needs no ACL.
    assert_eq!(consume_as(&b, "admin", "orders", "admins"), None);
}

#[test]
fn prefixed_acls_and_deny_over_allow() {
    let b = start_acl_broker();
    for topic in ["payments", "payroll", "orders"] {
        create_topic(&b.broker, topic, 1);
    }
    b.acl(&[
        "create",
        "--allow-principal",
        "User:*",
        "--operation",
        "Write",
        "--operation",
        "Read",
        "--topic",
        "pay",
        "--resource-pattern-type",
        "prefixed",
    ]);
    b.acl(&[
        "create",
        "--deny-principal",
        "User:bob",
        "--operation",
        "Write",
        "--topic",
        "payroll",
    ]);
    assert_eq!(produce_as(&b, "alice", "payments", 5), 5);
    assert_eq!(produce_as(&b, "alice", "payroll", 5), 5);
    assert_eq!(produce_as(&b, "bob", "payments", 5), 5);
    assert_eq!(
        produce_as(&b, "bob", "payroll", 5),
        0,
        "deny wins over the prefix"
    );
    assert_eq!(
        produce_as(&b, "alice", "orders", 5),
        0,
        "outside the prefix"
    );
    let listed = b.acl(&[
        "list",
        "--topic",
        "payroll",
        "--resource-pattern-type",
        "match",
    ]);
    assert!(
        listed.contains("Topic\tpay\tPrefixed\tUser:*\t*\tWrite\tAllow"),
        "{listed}"
    );
    assert!(
        listed.contains("Topic\tpayroll\tLiteral\tUser:bob\t*\tWrite\tDeny"),
        "{listed}"
    );
    let deleted = b.acl(&[
        "delete",
        "--topic",
        "payroll",
        "--deny-principal",
        "User:bob",
    ]);
    assert!(deleted.contains("Deleted: Deny Topic:payroll"), "{deleted}");
    assert_eq!(produce_as(&b, "bob", "payroll", 5), 5, "the deny is gone");
}

/// Metadata of every topic.
fn all_topics() -> MetadataRequest {
    MetadataRequest::default().with_topics(None)
}

/// A Produce of one record to `topic` on `client`; its error code.
async fn produce_error(client: &mut silt::client::Client, topic: &str) -> i16 {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let batch = silt::client::encode_batch(
        &[silt::client::Message {
            key: None,
            value: "v".into(),
        }],
        1_700_000_000_000,
    );
    let data = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.into())))
        .with_partition_data(vec![
            PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch)),
        ]);
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![data]);
    let response = client.call(request, 9).await.unwrap();
    response.responses[0].partition_responses[0].error_code
}

#[tokio::test(flavor = "multi_thread")]
async fn acl_changes_apply_to_open_connections_and_metadata_hides_topics() {
    let b = start_acl_broker();
    for topic in ["visible", "hidden"] {
        create_topic(&b.broker, topic, 1);
    }
    let mut alice = sasl_client(&b.sasl, "alice", "alice-pw").await;
    assert_eq!(
        produce_error(&mut alice, "visible").await,
        ResponseError::TopicAuthorizationFailed.code()
    );
    let metadata = alice.call(all_topics(), 12).await.unwrap();
    assert!(metadata.topics.is_empty(), "alice may describe nothing");
    b.acl(&[
        "create",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Write",
        "--topic",
        "visible",
    ]);
    // The same connection, at most a refresh later.
    let started = std::time::Instant::now();
    while produce_error(&mut alice, "visible").await != 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the ACL never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metadata = alice.call(all_topics(), 12).await.unwrap();
    let names: Vec<&str> = metadata
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.as_str()))
        .collect();
    assert_eq!(
        names,
        ["visible"],
        "Write implies Describe; hidden stays hidden"
    );
    let asked = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("hidden")))),
    ]));
    let metadata = alice.call(asked, 12).await.unwrap();
    assert_eq!(
        metadata.topics[0].error_code,
        ResponseError::TopicAuthorizationFailed.code()
    );
    // Only the cluster's Alter may change ACLs.
    let (ok, _, err) = silt(&[
        "acl",
        "create",
        "--allow-principal",
        "User:alice",
        "--operation",
        "All",
        "--cluster",
        "--bootstrap-server",
        &b.sasl,
    ]);
    assert!(!ok, "an unauthenticated CLI is refused: {err}");
}

#[test]
fn acl_commands_refuse_bad_input_and_need_an_authorizer() {
    let b = start_acl_broker();
    let (ok, _, err) = silt(&[
        "acl",
        "create",
        "--allow-principal",
        "alice",
        "--operation",
        "Read",
        "--topic",
        "t",
        "--bootstrap-server",
        &b.broker.addr,
    ]);
    assert!(!ok && err.contains("TYPE:NAME"), "{err}");
    let (ok, _, err) = silt(&[
        "acl",
        "create",
        "--allow-principal",
        "User:a",
        "--operation",
        "Fly",
        "--topic",
        "t",
        "--bootstrap-server",
        &b.broker.addr,
    ]);
    assert!(!ok && err.contains("not a Kafka ACL operation"), "{err}");
    // Without an authorizer, Kafka's answer: SECURITY_DISABLED.
    let plain = Broker::start(&[]);
    let (ok, _, err) = silt(&["acl", "list", "--bootstrap-server", &plain.addr]);
    assert!(!ok && err.contains("no authorizer"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn acl_apis_at_every_advertised_version() {
    use kafka_protocol::messages::create_acls_request::AclCreation;
    use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
    use kafka_protocol::messages::{
        ApiKey, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest,
    };
    use silt::protocol::versions::supported;
    let b = start_acl_broker();
    let mut client = silt::client::Client::connect(&b.broker.addr).await.unwrap();
    let (min, max) = supported(ApiKey::CreateAcls).unwrap();
    assert_eq!(supported(ApiKey::DescribeAcls), Some((min, max)));
    assert_eq!(supported(ApiKey::DeleteAcls), Some((min, max)));
    for v in min..=max {
        let topic = StrBytes::from_string(format!("topic-v{v}"));
        let creation = AclCreation::default()
            .with_resource_type(2)
            .with_resource_name(topic.clone())
            .with_resource_pattern_type(3)
            .with_principal(StrBytes::from_static_str("User:alice"))
            .with_host(StrBytes::from_static_str("*"))
            .with_operation(3)
            .with_permission_type(3);
        let created = client
            .call(
                CreateAclsRequest::default().with_creations(vec![creation]),
                v,
            )
            .await
            .unwrap();
        assert_eq!(created.results[0].error_code, 0, "CreateAcls v{v}");
        let described = client
            .call(
                DescribeAclsRequest::default()
                    .with_resource_type_filter(2)
                    .with_resource_name_filter(Some(topic.clone()))
                    .with_pattern_type_filter(3)
                    .with_principal_filter(None)
                    .with_host_filter(None)
                    .with_operation(1)
                    .with_permission_type(1),
                v,
            )
            .await
            .unwrap();
        assert_eq!(described.resources.len(), 1, "DescribeAcls v{v}");
        assert_eq!(
            described.resources[0].acls[0].principal.as_str(),
            "User:alice"
        );
        let filter = DeleteAclsFilter::default()
            .with_resource_type_filter(2)
            .with_resource_name_filter(Some(topic))
            .with_pattern_type_filter(3)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(1)
            .with_permission_type(1);
        let deleted = client
            .call(DeleteAclsRequest::default().with_filters(vec![filter]), v)
            .await
            .unwrap();
        assert_eq!(
            deleted.filter_results[0].matching_acls.len(),
            1,
            "DeleteAcls v{v}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn old_metadata_versions_neither_list_nor_create_topics_without_acls() {
    let b = start_acl_broker();
    create_topic(&b.broker, "secret", 1);
    let mut bob = sasl_client(&b.sasl, "bob", "bob-pw").await;
    // v0: an empty list means every topic, none of which bob may describe.
    let v0 = bob
        .call(MetadataRequest::default().with_topics(Some(vec![])), 0)
        .await
        .unwrap();
    assert!(v0.topics.is_empty(), "v0 lists {:?}", v0.topics);
    // v1-v3 create a topic they name: that needs Create, not Describe.
    // (An ACL made on this broker applies here at once.)
    b.acl(&[
        "create",
        "--allow-principal",
        "User:bob",
        "--operation",
        "Describe",
        "--topic",
        "evil",
    ]);
    let asked = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("evil")))),
    ]));
    let v3 = bob.call(asked, 3).await.unwrap();
    assert_eq!(
        v3.topics[0].error_code,
        ResponseError::TopicAuthorizationFailed.code()
    );
    let (ok, out, _) = silt(&["topic", "list", "--bootstrap-server", &b.broker.addr]);
    assert!(ok && !out.contains("evil"), "no topic was created: {out}");
}
