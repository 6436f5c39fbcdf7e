//! Helpers for tests on the real S3-compatible server (LocalStack, started
//! by `.ci/run`; `S3_TEST_ENDPOINT`, default http://127.0.0.1:4566) and the
//! real etcd (`ETCD_TEST_ENDPOINT`, default 127.0.0.1:23790).

use std::time::Duration;

use super::*;

pub const BUCKET: &str = "silt-test";

pub fn endpoint() -> String {
    std::env::var("S3_TEST_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

/// AWS settings pointing at `endpoint`.
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL", endpoint.into()),
    ]
}

/// A fresh prefix in the test bucket.
pub fn bucket_url() -> String {
    format!("s3://{BUCKET}/{}", uuid::Uuid::new_v4().simple())
}

/// A broker on the S3 server (or `endpoint`) with extra settings; it
/// creates the bucket if it is missing.
pub fn start(endpoint: &str, url: &str, args: &[&str], extra: &[(&str, &str)]) -> Broker {
    let env = aws_env(endpoint);
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    let mut full = vec![
        "--object-store",
        url,
        "--create-bucket",
        "--admin-listen",
        "127.0.0.1:0",
    ];
    full.extend_from_slice(args);
    Broker::start_with_env(&full, &all)
}

/// A fresh root in the test etcd.
pub fn etcd_root() -> String {
    let etcd = std::env::var("ETCD_TEST_ENDPOINT").unwrap_or_else(|_| "127.0.0.1:23790".into());
    format!("etcd://{etcd}/silt-test-{}", uuid::Uuid::new_v4().simple())
}

/// What etcdctl prints for the keys under `prefix` (after the root) of
/// the etcd root `meta` (`etcd://HOST:PORT/ROOT`, as [`etcd_root`] makes):
/// each key on a line, and each value after it unless `keys_only`.
pub fn etcd_get(meta: &str, prefix: &str, keys_only: bool) -> String {
    let (endpoint, root) = meta
        .trim_start_matches("etcd://")
        .split_once('/')
        .expect("an etcd URL with a root");
    let mut command = std::process::Command::new("etcdctl");
    command
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", endpoint, "get", "--prefix"]);
    if keys_only {
        command.arg("--keys-only");
    }
    let out = command
        .arg(format!("{root}/{prefix}"))
        .output()
        .expect("etcdctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Brokers in a test cluster register with a lease of this many seconds.
pub const LEASE_SECONDS: &str = "4";

/// Sends `chunks` chunks of `per_chunk` keyed messages of `size` bytes,
/// 50 ms apart: a load that lasts through a failure.
pub fn produce_paced(
    producer: &rdkafka::producer::ThreadedProducer<Deliveries>,
    topic: &str,
    chunks: u64,
    per_chunk: u64,
    size: usize,
) {
    for chunk in 0..chunks {
        produce_keyed(
            producer,
            topic,
            chunk * per_chunk..(chunk + 1) * per_chunk,
            size,
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `count` messages are acknowledged.
pub fn wait_for_acks(deliveries: &Deliveries, count: usize) {
    wait_until(
        "some messages acknowledged",
        Duration::from_secs(60),
        || deliveries.acked.lock().unwrap().len() >= count,
    );
}

/// All `total` messages were acknowledged, none failed, and the broker at
/// `addr` serves each exactly once at its acknowledged offset.
pub fn assert_all_acked_and_read_once(
    addr: &str,
    topic: &str,
    partitions: i32,
    deliveries: &Deliveries,
    total: u64,
) {
    assert!(
        deliveries.failed.lock().unwrap().is_empty(),
        "no delivery failed"
    );
    let acked = deliveries.acked.lock().unwrap().clone();
    assert_eq!(acked.len() as u64, total);
    let reads = read_all_rdkafka(
        addr,
        topic,
        partitions,
        acked.len(),
        Duration::from_secs(120),
    );
    assert_exactly_once(&acked, &reads);
}
