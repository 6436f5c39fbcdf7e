//! Kafka Connect 4.1.1 on Silt: a distributed worker (its config, offset and
//! status topics compacted) runs the FileStream source and sink connectors
//! configured through Connect's REST API; the worker and then the broker
//! (kill -9) restart, and the sink file always ends equal to the source
//! file, with both connectors RUNNING.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use common::java::tool;
use common::security::free_port;
use common::*;

/// A Connect worker process, stopped when dropped.
struct Worker {
    child: Child,
    rest: String,
}

impl Worker {
    fn start(properties: &Path, rest: &str) -> Worker {
        let child = tool("org.apache.kafka.connect.cli.ConnectDistributed")
            .arg(properties)
            .spawn()
            .expect("java");
        let worker = Worker {
            child,
            rest: rest.to_string(),
        };
        wait_until(
            "Connect's REST API answers",
            Duration::from_secs(90),
            || {
                std::net::TcpStream::connect(&worker.rest).is_ok()
                    && http_get(&worker.rest, "/").contains("\"kafka_cluster_id\"")
            },
        );
        worker
    }

    /// Stops the worker as `kill` does (SIGTERM: it leaves its group),
    /// and with SIGKILL if it has not exited within 30 s: Connect 4.1's
    /// shutdown can hang in Jetty (`RestServer.stop` joining its thread
    /// pool), which has nothing to do with the broker. Callers wait first
    /// until every offset is committed, so either way it resumes there.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill").arg(&pid).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn running(&self, connector: &str) -> bool {
        let status = http_get(&self.rest, &format!("/connectors/{connector}/status"));
        status.matches("\"state\":\"RUNNING\"").count() == 2
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn append_lines(path: &Path, range: std::ops::Range<u32>) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in range {
        writeln!(file, "line {i}").unwrap();
    }
}

/// Waits until the connectors' offsets are committed: the sink group's
/// at the end of the topic, and the source's position at the end of
/// `source`.
fn wait_committed(broker: &Broker, source: &Path) {
    wait_until(
        "the connectors committed everything",
        Duration::from_secs(60),
        || {
            let (_, described, _) = silt(&[
                "group",
                "describe",
                "connect-file-sink",
                "--bootstrap-server",
                &broker.addr,
            ]);
            let lags: Vec<&str> = described
                .lines()
                .filter(|l| l.starts_with("connect-lines\t"))
                .collect();
            let (_, offsets, _) = silt(&[
                "consume",
                "connect-offsets",
                "--from-beginning",
                "--timeout-ms",
                "1000",
                "--bootstrap-server",
                &broker.addr,
            ]);
            let end = std::fs::metadata(source).unwrap().len();
            !lags.is_empty()
                && lags.iter().all(|l| l.ends_with("\t0"))
                && offsets.contains(&format!("\"position\":{end}"))
        },
    );
}

/// Waits until the sink file equals the source file.
fn wait_equal(source: &Path, sink: &Path, what: &str) {
    wait_until(what, Duration::from_secs(120), || {
        std::fs::read(sink).is_ok_and(|s| s == std::fs::read(source).unwrap())
    });
}

#[test]
fn connect_file_source_and_sink_survive_worker_and_broker_restarts() {
    let mut broker = Broker::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (source, sink) = (dir.path().join("source.txt"), dir.path().join("sink.txt"));
    append_lines(&source, 0..1000);
    let rest = format!("127.0.0.1:{}", free_port());
    let properties = dir.path().join("worker.properties");
    std::fs::write(
        &properties,
        format!(
            "bootstrap.servers={}\n\
             group.id=silt-connect\n\
             key.converter=org.apache.kafka.connect.storage.StringConverter\n\
             value.converter=org.apache.kafka.connect.storage.StringConverter\n\
             config.storage.topic=connect-configs\n\
             offset.storage.topic=connect-offsets\n\
             status.storage.topic=connect-status\n\
             config.storage.replication.factor=1\n\
             offset.storage.replication.factor=1\n\
             status.storage.replication.factor=1\n\
             offset.flush.interval.ms=500\n\
             listeners=http://{rest}\n",
            broker.addr
        ),
    )
    .unwrap();

    let worker = Worker::start(&properties, &rest);
    let connectors = [
        format!(
            r#"{{"name":"file-source","config":{{"connector.class":"org.apache.kafka.connect.file.FileStreamSourceConnector","file":"{}","topic":"connect-lines","tasks.max":"1"}}}}"#,
            source.display()
        ),
        format!(
            r#"{{"name":"file-sink","config":{{"connector.class":"org.apache.kafka.connect.file.FileStreamSinkConnector","file":"{}","topics":"connect-lines","tasks.max":"1"}}}}"#,
            sink.display()
        ),
    ];
    for connector in &connectors {
        let created = http_request(&rest, "POST", "/connectors", Some(connector));
        assert!(created.contains("\"name\":\"file-"), "{created}");
    }
    wait_equal(&source, &sink, "the sink has every line");
    for name in ["file-source", "file-sink"] {
        wait_until(
            "connector and task RUNNING",
            Duration::from_secs(30),
            || worker.running(name),
        );
    }
    let (_, configs, _) = silt(&[
        "topic",
        "describe",
        "connect-configs",
        "--bootstrap-server",
        &broker.addr,
    ]);
    assert!(configs.contains("cleanup.policy=compact"), "{configs}");

    // The worker restarts and resumes where the offset topic says.
    wait_committed(&broker, &source);
    worker.stop();
    append_lines(&source, 1000..1500);
    let worker = Worker::start(&properties, &rest);
    wait_equal(
        &source,
        &sink,
        "the sink caught up after the worker's restart",
    );

    // Once the offsets are committed, the broker is killed and restarted
    // on its disk; the connectors carry on.
    wait_committed(&broker, &source);
    broker.kill9();
    broker.restart();
    append_lines(&source, 1500..2000);
    wait_equal(
        &source,
        &sink,
        "the sink caught up after the broker's restart",
    );
    for name in ["file-source", "file-sink"] {
        wait_until(
            "connector and task RUNNING",
            Duration::from_secs(60),
            || worker.running(name),
        );
    }
}
