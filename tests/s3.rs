//! The broker on a real S3-compatible server (LocalStack, started by
//! `.ci/run`; `S3_TEST_ENDPOINT`, default http://127.0.0.1:4566): the client
//! suite in both durability modes, kill -9, a stateless restart on an empty
//! data dir (metadata in a directory or in etcd), a 10 s outage of the
//! store under load, create-only writes from two brokers, and one PUT per
//! flush with 1,000 partitions.

mod common;

use std::time::Duration;

use common::proxy::Proxy;
use common::s3::*;
use common::*;
use rdkafka::producer::Producer;

/// `silt serve` that is expected to stop at start: its stderr.
fn serve_fails(endpoint: &str, url: &str) -> String {
    serve_fails_with(endpoint, url, &[], &[])
}

/// The same with extra arguments and settings.
fn serve_fails_with(endpoint: &str, url: &str, args: &[&str], extra: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_silt"))
        .args(["serve", "--listen", "127.0.0.1:0", "--object-store", url])
        .args(args)
        .arg("--data-dir")
        .arg(dir.path())
        .envs(aws_env(endpoint))
        .envs(extra.iter().copied())
        .output()
        .expect("run silt");
    assert!(!out.status.success(), "the broker started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `count` messages through a new one-partition topic: all acknowledged,
/// then read back exactly once.
fn round_trip(broker: &Broker, topic: &str, count: u64) {
    create_topic(broker, topic, 1);
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(&broker.addr, &deliveries);
    produce_keyed(&producer, topic, 0..count, 100);
    producer.flush(Duration::from_secs(60)).expect("flush");
    assert_all_acked_and_read_once(&broker.addr, topic, 1, &deliveries, count);
}

/// A missing bucket or an unreachable server stops the broker with one line
/// naming the problem; `--create-bucket` creates a missing bucket, and
/// leaves an existing one alone.
#[test]
fn bucket_problems_are_named_and_create_bucket_fixes_a_missing_one() {
    let bucket = format!("silt-new-{}", uuid::Uuid::new_v4().simple());
    let url = format!("s3://{bucket}/prefix");
    let missing = serve_fails(&endpoint(), &url);
    assert!(
        missing.contains(&format!("bucket '{bucket}' does not exist"))
            && missing.contains("--create-bucket")
            && missing.trim().lines().count() == 1,
        "{missing}"
    );
    let unreachable = serve_fails("http://127.0.0.1:1", &url);
    assert!(unreachable.contains("cannot be reached"), "{unreachable}");

    let created = start(&endpoint(), &url, &["--durability", "object"], &[]);
    round_trip(&created, "in-new-bucket", 100);
    // The bucket exists now: a broker without --create-bucket passes the
    // start-up check on it.
    let env = aws_env(&endpoint());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Broker::start_with_env(&["--object-store", &url], &env);
}

/// Keys, region and endpoint from a named AWS profile alone (no `AWS_*`
/// settings in the environment) reach the server; a profile that does not
/// exist is named at start.
#[test]
fn an_aws_profile_alone_configures_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let credentials = dir.path().join("credentials");
    std::fs::write(
        &config,
        format!(
            "[profile silt]\nregion = us-east-1\nendpoint_url = {}\n",
            endpoint()
        ),
    )
    .unwrap();
    std::fs::write(
        &credentials,
        "[silt]\naws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    let files = [
        ("AWS_CONFIG_FILE", config.to_str().unwrap()),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap()),
    ];
    let url = bucket_url();

    let mut env = files.to_vec();
    env.push(("AWS_PROFILE", "silt"));
    let broker = Broker::start_with_env(&["--object-store", &url, "--create-bucket"], &env);
    round_trip(&broker, "by-profile", 50);

    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_silt"))
        .args(["serve", "--listen", "127.0.0.1:0", "--object-store", &url])
        .arg("--data-dir")
        .arg(data.path())
        .env_clear()
        .envs(files)
        .env("AWS_PROFILE", "missing")
        .output()
        .expect("run silt");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the broker started");
    assert!(stderr.contains("AWS profile 'missing'"), "{stderr}");
}

#[test]
fn s3_local_durability_clients() {
    let url = bucket_url();
    scenarios::produce_read_restart(start(&endpoint(), &url, &["--durability", "local"], &[]));
}

#[test]
fn s3_object_durability_clients() {
    let url = bucket_url();
    scenarios::produce_read_restart(start(&endpoint(), &url, &["--durability", "object"], &[]));
}

#[test]
fn s3_object_durability_kill9() {
    let url = bucket_url();
    let broker = start(
        &endpoint(),
        &url,
        &["--durability", "object"],
        &scenarios::SMALL_WAL,
    );
    scenarios::kill9_mid_produce(broker);
}

/// `object` durability keeps nothing acknowledged on the broker's disk: after
/// kill -9 and a wiped data dir, a broker on the same bucket and metadata
/// serves everything acknowledged.
#[test]
fn stateless_restart_on_an_empty_data_dir() {
    let meta = tempfile::tempdir().unwrap();
    stateless_restart(&format!("file://{}", meta.path().display()));
}

/// The same with the metadata in etcd (`ETCD_TEST_ENDPOINT`, started by
/// `.ci/run`): nothing of the broker's state is on its machine.
#[test]
fn stateless_restart_with_metadata_in_etcd() {
    stateless_restart(&etcd_root());
}

/// Acknowledged messages in `object` durability, then kill -9 and a start
/// on an empty data dir with the same bucket and metadata: every one is
/// there, exactly once.
fn stateless_restart(meta_url: &str) {
    let url = bucket_url();
    let mut broker = start(
        &endpoint(),
        &url,
        &["--durability", "object", "--meta", meta_url],
        &[("SILT_STORAGE__META_LEASE_SECONDS", LEASE_SECONDS)],
    );
    create_topic(&broker, "stateless", 4);
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(&broker.addr, &deliveries);
    produce_keyed(&producer, "stateless", 0..20_000, 200);
    producer.flush(Duration::from_secs(120)).expect("flush");
    let acked = deliveries.acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 20_000);
    drop(producer);
    broker.kill9();
    broker.wipe_data_dir();
    broker.restart();
    let reads = read_all_rdkafka(
        &broker.addr,
        "stateless",
        4,
        acked.len(),
        Duration::from_secs(120),
    );
    assert_exactly_once(&acked, &reads);
}

/// The store goes away for 10 s under a produce load: the broker buffers up
/// to its unflushed limit, then holds produce requests and answers them
/// REQUEST_TIMED_OUT (retriable) after their timeout; producers retry and
/// resume, memory stays bounded, nothing acknowledged is lost or
/// duplicated.
#[test]
fn a_ten_second_store_outage_loses_nothing() {
    let url = bucket_url();
    let proxy = Proxy::start(endpoint().trim_start_matches("http://"));
    let proxied = format!("http://{}", proxy.addr);
    let limits = [
        ("SILT_FLUSH__BYTES", "262144"),
        ("SILT_LIMITS__MAX_UNFLUSHED_BYTES", "1048576"),
    ];
    let broker = start(&proxied, &url, &["--durability", "object"], &limits);
    create_topic(&broker, "outage", 4);
    let deliveries = Deliveries::default();
    let producer = producer_with(&broker.addr, &deliveries, &[("request.timeout.ms", "2000")]);
    create_topic(&broker, "pressure", 4);
    let pressure = producer_with(
        &broker.addr,
        &Deliveries::default(),
        &[
            ("enable.idempotence", "false"),
            ("max.in.flight", "100"),
            ("request.timeout.ms", "2000"),
        ],
    );
    let total = 60_000u64;
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| produce_paced(&producer, "outage", 60, 1000, 500));
        wait_for_acks(&deliveries, 10_000);
        proxy.cut();
        // An idempotent producer holds at most 5 requests in flight; this
        // one, with many, pushes the broker over its unflushed limit.
        produce_keyed(&pressure, "pressure", 0..20_000, 500);
        let before = broker.metric(
            "silt_object_store_requests_total",
            "kind=\"put\",outcome=\"ok\"",
        );
        // The outage itself lasts 10 s; memory is checked while it lasts.
        let mut peak_rss = 0;
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(500));
            peak_rss = peak_rss.max(broker.rss_bytes());
        }
        let during = broker.metric(
            "silt_object_store_requests_total",
            "kind=\"put\",outcome=\"ok\"",
        );
        assert_eq!(before, during, "no upload got through the cut");
        assert!(
            peak_rss < (1 << 30) + (256 << 20),
            "RSS {peak_rss} stays bounded"
        );
        assert!(
            broker.metric("silt_produce_timed_out_waiting_total", "") >= 1.0,
            "a produce held over the unflushed limit was answered REQUEST_TIMED_OUT"
        );
        proxy.restore();
        sender.join().expect("producer thread");
    });
    producer
        .flush(Duration::from_secs(120))
        .expect("producers resume");
    pressure
        .flush(Duration::from_secs(120))
        .expect("producers resume");
    assert_all_acked_and_read_once(&broker.addr, "outage", 4, &deliveries, total);
}

/// Data objects are create-only on the real server (every broker proves it
/// at start: its probe's second create-only PUT must be refused), and two
/// brokers writing to one bucket prefix never overwrite each other.
#[test]
fn create_only_writes_keep_two_brokers_apart() {
    let url = bucket_url();
    let a = start(&endpoint(), &url, &["--durability", "object"], &[]);
    let b = start(&endpoint(), &url, &["--durability", "object"], &[]);
    let produce = |broker: &Broker| {
        create_topic(broker, "shared", 2);
        let deliveries = Deliveries::default();
        let producer = idempotent_producer(&broker.addr, &deliveries);
        produce_keyed(&producer, "shared", 0..5000, 100);
        producer.flush(Duration::from_secs(60)).expect("flush");

        deliveries.acked.lock().unwrap().clone()
    };
    let (acked_a, acked_b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| produce(&a));
        let b = scope.spawn(|| produce(&b));
        (a.join().unwrap(), b.join().unwrap())
    });
    for (broker, acked) in [(&a, &acked_a), (&b, &acked_b)] {
        let reads = read_all_rdkafka(
            &broker.addr,
            "shared",
            2,
            acked.len(),
            Duration::from_secs(60),
        );
        assert_exactly_once(acked, &reads);
        let refused = broker.metric(
            "silt_object_store_requests_total",
            "outcome=\"already_exists\"",
        );
        assert_eq!(
            refused, 1.0,
            "only the start-up probe's second write was refused"
        );
    }
}

/// With 1,000 partitions receiving data, each flush is still one PUT.
#[test]
fn one_put_per_flush_with_a_thousand_partitions() {
    use rdkafka::producer::{BaseRecord, ThreadedProducer};
    let url = bucket_url();
    let interval = [("SILT_FLUSH__INTERVAL_MS", "250")];
    let broker = start(&endpoint(), &url, &["--durability", "object"], &interval);
    create_topic(&broker, "wide", 1000);
    let puts = || {
        broker.metric(
            "silt_object_store_requests_total",
            "kind=\"put\",outcome=\"ok\"",
        )
    };
    let uploads = || broker.metric("silt_uploads_total", "");
    let (puts_before, uploads_before) = (puts(), uploads());
    let started = std::time::Instant::now();
    let deliveries = Deliveries::default();
    let producer: ThreadedProducer<Deliveries> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("linger.ms", "20")
        .create_with_context(deliveries.clone())
        .expect("producer");
    for round in 0..3 {
        for partition in 0..1000 {
            let key = format!("r{round}-p{partition}");
            producer
                .send(
                    BaseRecord::to("wide")
                        .key(&key)
                        .payload("x")
                        .partition(partition),
                )
                .map_err(|(e, _)| e)
                .expect("send");
        }
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    assert_eq!(deliveries.acked.lock().unwrap().len(), 3000);
    let (new_puts, new_uploads) = (puts() - puts_before, uploads() - uploads_before);
    assert!(new_uploads >= 1.0);
    assert_eq!(
        new_puts, new_uploads,
        "one PUT per flush, whatever the partition count"
    );
    // At most one flush per 250 ms interval (plus size-triggered ones, which
    // 3,000 tiny messages never reach): PUTs follow time, not partitions.
    let ticks = started.elapsed().as_secs_f64() / 0.25 + 2.0;
    assert!(
        new_puts <= ticks,
        "{new_puts} PUTs in {ticks:.0} flush intervals"
    );
}
