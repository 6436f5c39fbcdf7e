//! The console and admin commands against a real broker: topic create, list,
//! describe and delete; produce from stdin and consume; errors print one
//! line naming the problem and exit non-zero.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;

fn produce(addr: &str, topic: &str, extra: &[&str], input: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_silt"))
        .args(["produce", topic, "--bootstrap-server", addr])
        .args(extra)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run silt produce");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn topic_lifecycle_produce_and_consume() {
    let broker = Broker::start(&[]);
    let b = ["--bootstrap-server", broker.addr.as_str()];
    let run = |args: &[&str]| silt(&[args, &b[..]].concat());

    let (ok, out, err) = run(&[
        "topic",
        "create",
        "orders",
        "--partitions",
        "3",
        "--config",
        "retention.ms=60000",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("Created topic orders"), "{out}");
    let (ok, _, _) = run(&["topic", "create", "logs"]);
    assert!(ok);
    let (_, out, _) = run(&["topic", "list"]);
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["logs", "orders"]);
    let (ok, out, err) = run(&["cluster", "describe"]);
    assert!(ok, "{err}");
    assert!(out.contains("Controller: 1"), "{out}");
    assert!(
        out.contains(&format!("Broker: 1\t{}", broker.addr)),
        "{out}"
    );
    assert!(
        out.contains("Topic: orders\tPartition: 2\tLeader: 1\tLeaderEpoch: 0"),
        "{out}"
    );

    let input: String = (0..30)
        .map(|i| format!("user{}:event {i}\n", i % 5))
        .collect();
    let (ok, err) = produce(&broker.addr, "orders", &["--key-separator", ":"], &input);
    assert!(ok, "{err}");

    let (ok, out, err) = run(&["topic", "describe", "orders"]);
    assert!(ok, "{err}");
    assert!(out.contains("PartitionCount: 3"), "{out}");
    assert!(out.contains("retention.ms=60000"), "{out}");
    let ends: i64 = out
        .lines()
        .filter_map(|l| l.split("LogEndOffset: ").nth(1))
        .map(|n| n.trim().parse::<i64>().unwrap())
        .sum();
    assert_eq!(ends, 30);
    assert_eq!(out.matches("LogStartOffset: 0").count(), 3);

    // Same key, same partition, in order: each user's events read in order.
    let (ok, out, err) = run(&[
        "consume",
        "orders",
        "--from-beginning",
        "--max-messages",
        "30",
        "--print-key",
    ]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 30);
    for user in 0..5 {
        let events: Vec<i32> = lines
            .iter()
            .filter(|l| l.starts_with(&format!("user{user}\t")))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        let expected: Vec<i32> = (0..30).filter(|i| i % 5 == user).collect();
        assert_eq!(events, expected, "user{user}");
    }

    // One partition from an offset.
    let (ok, err) = produce(&broker.addr, "logs", &[], "a\nb\nc\nd\n");
    assert!(ok, "{err}");
    let (ok, out, err) = run(&[
        "consume",
        "logs",
        "--partition",
        "0",
        "--offset",
        "2",
        "--max-messages",
        "2",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out, "c\nd\n");
    let (ok, out, _) = run(&[
        "consume",
        "logs",
        "--from-beginning",
        "--timeout-ms",
        "1000",
    ]);
    assert!(ok);
    assert_eq!(out, "a\nb\nc\nd\n");

    let (ok, out, err) = run(&["topic", "delete", "logs"]);
    assert!(ok, "{err}");
    assert!(out.contains("Deleted topic logs"));
    let (_, out, _) = run(&["topic", "list"]);
    assert_eq!(out.trim(), "orders");
}

#[test]
fn errors_name_the_problem_on_one_line_and_exit_non_zero() {
    let broker = Broker::start(&[]);
    let b = ["--bootstrap-server", broker.addr.as_str()];
    let run = |args: &[&str]| silt(&[args, &b[..]].concat());
    let one_line_error = |(ok, _, err): (bool, String, String), needle: &str| {
        assert!(!ok, "expected failure");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "expected '{needle}' in: {err}");
    };
    one_line_error(run(&["topic", "describe", "missing"]), "does not exist");
    one_line_error(run(&["topic", "delete", "missing"]), "does not exist");
    one_line_error(run(&["topic", "create", "bad name!"]), "bad name!");
    assert!(run(&["topic", "create", "dup"]).0);
    one_line_error(run(&["topic", "create", "dup"]), "exists");
    one_line_error(
        run(&["topic", "create", "x", "--partitions", "0"]),
        "partition",
    );
    one_line_error(
        run(&["topic", "create", "y", "--config", "retention.ms=forever"]),
        "retention.ms",
    );
    one_line_error(
        run(&["topic", "create", "z", "--config", "no.such=1"]),
        "no.such",
    );
    one_line_error(
        run(&["consume", "missing", "--max-messages", "1"]),
        "missing",
    );
    one_line_error(
        silt(&["topic", "list", "--bootstrap-server", "127.0.0.1:1"]),
        "cannot connect to 127.0.0.1:1",
    );
    let (ok, err) = produce(&broker.addr, "missing", &[], "x\n");
    assert!(!ok);
    assert!(err.contains("missing"), "{err}");
    let (ok, err) = produce(
        &broker.addr,
        "dup",
        &["--key-separator", ":"],
        "no separator here\n",
    );
    assert!(!ok);
    assert!(err.contains("no key separator"), "{err}");
}

/// `silt serve --check-config FILE` accepts the shipped examples and a file
/// with `broker.id = "auto"`, and refuses a bad file on one line naming the
/// setting or file at fault, without opening the data dir or a port.
#[test]
fn check_config_validates_a_file_and_exits() {
    let root = env!("CARGO_MANIFEST_DIR");
    let check = |file: &str| silt(&["serve", "--check-config", file]);
    for example in ["config/silt.toml", "config/cluster.toml"] {
        let path = format!("{root}/{example}");
        let (ok, out, err) = check(&path);
        assert!(
            ok && out == format!("silt: {path} is valid\n"),
            "{out}{err}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let auto = write(
        "auto.toml",
        format!(
            "[broker]\nid = \"auto\"\ndata_dir = \"{}\"\n",
            data_dir.display()
        ),
    );
    assert!(check(&auto).0);
    assert!(!data_dir.exists(), "the data dir is not opened");
    let refused = [
        (
            "id.toml",
            "[broker]\nid = \"any\"\n".to_string(),
            "\"auto\"",
        ),
        ("key.toml", "[broker]\nno_such = 1\n".to_string(), "no_such"),
        (
            "tls.toml",
            "[[listeners]]\nname = \"TLS\"\nlisten = \"127.0.0.1:0\"\nprotocol = \"SSL\"\n\
             tls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n"
                .to_string(),
            "/nonexistent/cert.pem",
        ),
        (
            "pattern.toml",
            "[[topics.by_name]]\npattern = \"orders(\"\nconfigs = {}\n".to_string(),
            "topic name pattern \"orders(\": error: unclosed group",
        ),
        (
            "by_name.toml",
            "[[topics.by_name]]\npattern = \"orders.*\"\n\
             configs = { \"silt.export.format\" = \"csv\" }\n"
                .to_string(),
            "topics.by_name[0] (\"orders.*\"): silt.export.format=csv",
        ),
    ];
    for (name, text, needle) in refused {
        let (ok, _, err) = check(&write(name, text));
        assert!(
            !ok && err.trim().lines().count() == 1 && err.contains(needle),
            "{name}: {err}"
        );
    }
    let (ok, _, err) = check(&dir.path().join("missing.toml").display().to_string());
    assert!(!ok && err.contains("missing.toml"), "{err}");
}

/// `silt serve --log-format json`: every log line on stderr is one JSON
/// object (level, target, fields); what happens while a request is served
/// carries its span (API, version, correlation id, client id), and with
/// `silt::server=debug` each request adds a line as it completes.
#[test]
fn json_logs_are_one_object_per_line_with_request_spans() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Command::new(env!("CARGO_BIN_EXE_silt"))
        .args(["serve", "--log-format", "json", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "info,silt::server=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(broker.stdout.take().unwrap());
    let addr = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("silt: listening on ").map(str::to_string))
        .expect("the broker serves");
    let (ok, _, err) = silt(&["topic", "create", "logged", "--bootstrap-server", &addr]);
    assert!(ok, "{err}");
    broker.kill().unwrap();
    broker.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut broker.stderr.take().unwrap(), &mut stderr).unwrap();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["level"] == "INFO"
            && l["fields"]["message"] == "serving Kafka clients"
            && l["fields"]["addr"] == addr.as_str()),
        "{stderr}"
    );
    let in_request = |message: &str| {
        lines
            .iter()
            .find(|l| {
                l["span"]["name"] == "request"
                    && l["span"]["api"] == "CreateTopics"
                    && l["fields"]["message"] == message
            })
            .unwrap_or_else(|| panic!("{message:?} in the CreateTopics request: {stderr}"))
    };
    assert_eq!(in_request("created topic")["level"], "INFO");
    let created = in_request("close");
    assert_eq!(created["level"], "DEBUG");
    assert!(created["span"]["correlation_id"].is_i64(), "{created}");
    assert!(created["span"]["version"].is_i64(), "{created}");
    assert!(created["span"]["client_id"].is_string(), "{created}");
}
