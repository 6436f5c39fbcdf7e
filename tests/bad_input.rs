//! Bad input from the network: each class gets a Kafka error code or a
//! closed connection; the broker keeps serving other clients, allocates
//! nothing proportional to bogus sizes, and loses nothing acknowledged.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::*;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ProduceRequest, TopicName};
use kafka_protocol::protocol::{Decodable, StrBytes};
use rdkafka::producer::Producer;
use silt::client::{Client, Message, encode_batch};

/// A request frame: size, api key, version, correlation id 7, client id,
/// then `body`.
fn frame(api_key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i16(api_key);
    buf.put_i16(version);
    buf.put_i32(7);
    buf.put_i16(4);
    buf.put_slice(b"test");
    buf.put_slice(body);
    let mut framed = (buf.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&buf);
    framed
}

/// Sends raw bytes and returns what the broker answers before closing
/// (or times out, which fails the test).
fn exchange(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(bytes).expect("write");
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => answer,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => answer,
        Err(e) => panic!("the broker neither answered nor closed: {e}"),
    }
}

fn assert_closed_without_answer(addr: &str, what: &str, bytes: &[u8]) {
    let answer = exchange(addr, bytes);
    assert!(
        answer.is_empty(),
        "{what}: expected the connection closed, got {} bytes",
        answer.len()
    );
}

fn produce_request(topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records)),
                ]),
        ])
}

async fn produce_error(client: &mut Client, topic: &str, partition: i32, records: Bytes) -> i16 {
    let response = client
        .call(produce_request(topic, partition, records), 9)
        .await
        .expect("produce");
    response.responses[0].partition_responses[0].error_code
}

fn batch(values: &[&str]) -> Bytes {
    let messages: Vec<Message> = values
        .iter()
        .map(|v| Message {
            key: None,
            value: Bytes::from(v.to_string()),
        })
        .collect();
    encode_batch(&messages, 1_700_000_000_000)
}

#[test]
fn bad_frames_close_the_connection_and_the_broker_keeps_serving() {
    let mut broker = Broker::start(&[]);
    create_topic(&broker, "safe", 2);
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(&broker.addr, &deliveries);
    produce_keyed(&producer, "safe", 0..1000, 50);
    producer.flush(Duration::from_secs(30)).expect("flush");
    let acked = deliveries.acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 1000);

    let addr = broker.addr.clone();
    // Size prefixes: far beyond socket.request.max.bytes, and negative.
    assert_closed_without_answer(&addr, "huge size", &0x7fff_ffffi32.to_be_bytes());
    assert_closed_without_answer(&addr, "101 MiB size", &(101 * 1024 * 1024i32).to_be_bytes());
    assert_closed_without_answer(&addr, "negative size", &(-1i32).to_be_bytes());
    // Frames too short for a header, and with a truncated body.
    assert_closed_without_answer(&addr, "3-byte frame", &[0, 0, 0, 3, 0, 3, 0]);
    assert_closed_without_answer(
        &addr,
        "truncated metadata body",
        &frame(3, 1, &[0, 0, 0, 2, 0, 5, b'a']),
    );
    // A tiny frame declaring a 2^31-element array must not allocate it
    // (v9 is flexible: an empty tagged-field section precedes the body).
    assert_closed_without_answer(
        &addr,
        "huge array count",
        &frame(3, 1, &0x7fff_ffffi32.to_be_bytes()),
    );
    assert_closed_without_answer(
        &addr,
        "huge compact array",
        &frame(3, 9, &[0, 0xff, 0xff, 0xff, 0xff, 0x0f]),
    );
    // Unknown API keys and unsupported versions.
    assert_closed_without_answer(&addr, "unknown api key", &frame(999, 0, &[]));
    assert_closed_without_answer(
        &addr,
        "api key not served",
        &frame(ApiKey::SaslHandshake as i16, 0, &[]),
    );
    assert_closed_without_answer(&addr, "produce v2", &frame(0, 2, &[]));
    assert_closed_without_answer(&addr, "fetch v99", &frame(1, 99, &[]));
    // Random garbage after a plausible size.
    let mut garbage = vec![0, 0, 0, 64];
    garbage.extend((0..64u8).map(|i| i.wrapping_mul(37).wrapping_add(11)));
    assert_closed_without_answer(&addr, "garbage", &garbage);

    assert!(broker.is_running());
    let reads = read_all_rdkafka(
        &broker.addr,
        "safe",
        2,
        acked.len(),
        Duration::from_secs(30),
    );
    assert_exactly_once(&acked, &reads);
}

#[test]
fn unsupported_api_versions_version_gets_kafkas_v0_answer() {
    let broker = Broker::start(&[]);
    let answer = exchange_one_response(&broker.addr, &frame(ApiKey::ApiVersions as i16, 99, &[]));
    let mut body = Bytes::from(answer);
    let correlation_id = i32::from_be_bytes(body[..4].try_into().unwrap());
    assert_eq!(correlation_id, 7);
    let _ = body.split_to(4);
    let response = ApiVersionsResponse::decode(&mut body, 0).expect("a v0 ApiVersions body");
    assert_eq!(response.error_code, 35);
    let produce = response
        .api_keys
        .iter()
        .find(|k| k.api_key == 0)
        .expect("produce listed");
    assert!(produce.max_version >= 9);
}

/// Sends one request and reads exactly one response (without its size).
fn exchange_one_response(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(bytes).expect("write");
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("a response");
    let mut body = vec![0; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).expect("the whole response");
    body
}

#[tokio::test]
async fn bad_batches_and_unknown_partitions_get_kafka_error_codes() {
    let broker = Broker::start(&[]);
    create_topic(&broker, "strict", 1);
    let (ok, _, err) = silt(&[
        "topic",
        "create",
        "small",
        "--partitions",
        "1",
        "--config",
        "max.message.bytes=200",
        "--bootstrap-server",
        &broker.addr,
    ]);
    assert!(ok, "{err}");
    let mut client = Client::connect(&broker.addr).await.expect("connect");

    let good = batch(&["a", "b"]);
    assert_eq!(
        produce_error(&mut client, "strict", 0, good.clone()).await,
        0
    );

    let mut bad_crc = BytesMut::from(&good[..]);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    assert_eq!(
        produce_error(&mut client, "strict", 0, bad_crc.freeze()).await,
        2,
        "CORRUPT_MESSAGE"
    );

    let mut bad_magic = BytesMut::from(&good[..]);
    bad_magic[16] = 1;
    assert_eq!(
        produce_error(&mut client, "strict", 0, bad_magic.freeze()).await,
        2,
        "CORRUPT_MESSAGE"
    );

    let truncated = good.slice(..good.len() - 5);
    assert_eq!(
        produce_error(&mut client, "strict", 0, truncated).await,
        2,
        "CORRUPT_MESSAGE"
    );

    let mut two = BytesMut::from(&good[..]);
    two.extend_from_slice(&good);
    assert_eq!(
        produce_error(&mut client, "strict", 0, two.freeze()).await,
        87,
        "INVALID_RECORD"
    );

    assert_eq!(
        produce_error(&mut client, "nope", 0, good.clone()).await,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(
        produce_error(&mut client, "strict", 5, good.clone()).await,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(
        produce_error(&mut client, "strict", -1, good.clone()).await,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );

    let big = batch(&[&"x".repeat(300)]);
    assert_eq!(
        produce_error(&mut client, "small", 0, big).await,
        10,
        "MESSAGE_TOO_LARGE"
    );

    // Only the good batch was appended: the log end is 2.
    let (ok, out, err) = silt(&[
        "topic",
        "describe",
        "strict",
        "--bootstrap-server",
        &broker.addr,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("LogEndOffset: 2"), "{out}");

    // The same connection still works after every refusal.
    assert_eq!(produce_error(&mut client, "strict", 0, good).await, 0);
}

#[tokio::test]
async fn fetch_out_of_range_and_unknown_topics_get_error_codes() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest};
    let broker = Broker::start(&[]);
    create_topic(&broker, "reads", 1);
    let mut client = Client::connect(&broker.addr).await.expect("connect");
    assert_eq!(
        produce_error(&mut client, "reads", 0, batch(&["one"])).await,
        0
    );
    let fetch = |topic: &str, partition: i32, offset: i64| {
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(10)
            .with_max_bytes(1 << 20)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.into())))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ])
    };
    let code = |r: kafka_protocol::messages::FetchResponse| r.responses[0].partitions[0].error_code;
    assert_eq!(
        code(client.call(fetch("reads", 0, 0), 12).await.unwrap()),
        0
    );
    assert_eq!(
        code(client.call(fetch("reads", 0, 5), 12).await.unwrap()),
        1,
        "OFFSET_OUT_OF_RANGE"
    );
    assert_eq!(
        code(client.call(fetch("reads", 0, -3), 12).await.unwrap()),
        1,
        "OFFSET_OUT_OF_RANGE"
    );
    assert_eq!(
        code(client.call(fetch("reads", 9, 0), 12).await.unwrap()),
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(
        code(client.call(fetch("gone", 0, 0), 12).await.unwrap()),
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
}
