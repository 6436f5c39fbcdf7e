//! Kafka's own command-line tools (the classes behind bin/kafka-*.sh, from
//! the kafka-tools and kafka_2.13 jars 4.1.1; see tests/common/java.rs)
//! against Silt, each checked by its output as an operator would read it.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::ledger;
use common::*;

/// The ledger column of these tools.
const TOOLS: &str = "Kafka tools 4.1.1";

/// Runs the tool `class` with `args` (and `stdin`); its success, stdout
/// and stderr.
fn tool(class: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = common::java::tool(class)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("java");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a tool that must succeed; its stdout.
fn ok(class: &str, args: &[&str], stdin: &str) -> String {
    let (ok, out, err) = tool(class, args, stdin);
    assert!(ok, "{class} {args:?} failed:\n{out}\n{err}");
    out
}

const TOPICS: &str = "org.apache.kafka.tools.TopicCommand";
const PRODUCER: &str = "org.apache.kafka.tools.ConsoleProducer";
const CONSUMER: &str = "org.apache.kafka.tools.consumer.ConsoleConsumer";
const GROUPS: &str = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
const CONFIGS: &str = "kafka.admin.ConfigCommand";
const DELETE_RECORDS: &str = "org.apache.kafka.tools.DeleteRecordsCommand";
const GET_OFFSETS: &str = "org.apache.kafka.tools.GetOffsetShell";
const TRANSACTIONS: &str = "org.apache.kafka.tools.TransactionsCommand";
const ACLS: &str = "org.apache.kafka.tools.AclCommand";
const LEADER_ELECTION: &str = "org.apache.kafka.tools.LeaderElectionCommand";
const PRODUCER_PERF: &str = "org.apache.kafka.tools.ProducerPerformance";
const CONSUMER_PERF: &str = "org.apache.kafka.tools.ConsumerPerformance";
const REASSIGN: &str = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand";

/// kafka-topics creates, lists, describes, alters and deletes a topic;
/// kafka-configs sets and shows a topic config; kafka-leader-election and
/// kafka-reassign-partitions find nothing to move on one broker.
#[test]
fn kafka_topics_and_kafka_configs() {
    let broker = Broker::start(&["--admin-listen", "127.0.0.1:0"]);
    let b = ["--bootstrap-server", broker.addr.as_str()];
    let run = |args: &[&str]| ok(TOPICS, &[&b[..], args].concat(), "");
    assert!(
        run(&["--create", "--topic", "tools", "--partitions", "3"])
            .contains("Created topic tools.")
    );
    assert!(run(&["--list"]).lines().any(|l| l == "tools"));
    let described = run(&["--describe", "--topic", "tools"]);
    assert!(described.contains("PartitionCount: 3"), "{described}");
    assert!(
        !described.contains("retention.ms="),
        "defaults are not listed:\n{described}"
    );
    assert_eq!(described.matches("\tPartition: ").count(), 3, "{described}");
    run(&["--alter", "--topic", "tools", "--partitions", "4"]);
    wait_until("four partitions", Duration::from_secs(30), || {
        run(&["--describe", "--topic", "tools"]).contains("PartitionCount: 4")
    });

    let configs = |args: &[&str]| {
        ok(
            CONFIGS,
            &[
                &b[..],
                &["--entity-type", "topics", "--entity-name", "tools"],
                args,
            ]
            .concat(),
            "",
        )
    };
    configs(&[
        "--alter",
        "--add-config",
        "retention.ms=3600000,cleanup.policy=compact",
    ]);
    let shown = configs(&["--describe"]);
    assert!(
        shown.contains("retention.ms=3600000") && shown.contains("cleanup.policy=compact"),
        "{shown}"
    );
    let described = run(&["--describe", "--topic", "tools"]);
    assert!(described.contains("retention.ms=3600000"), "{described}");
    configs(&["--alter", "--delete-config", "retention.ms"]);
    assert!(!configs(&["--describe"]).contains("retention.ms=3600000"));

    let election = ok(
        LEADER_ELECTION,
        &[
            &b[..],
            &[
                "--election-type",
                "preferred",
                "--topic",
                "tools",
                "--partition",
                "0",
            ],
        ]
        .concat(),
        "",
    );
    assert!(
        election.contains("Valid replica already elected for partitions tools-0"),
        "{election}"
    );
    // kafka-reassign-partitions: a plan for the broker, carried out and
    // verified.
    let leader = described
        .split("Leader: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a leader");
    let dir = tempfile::tempdir().unwrap();
    let (topics, plan) = (dir.path().join("topics.json"), dir.path().join("plan.json"));
    std::fs::write(&topics, r#"{"version":1,"topics":[{"topic":"tools"}]}"#).unwrap();
    let reassign = |args: &[&str]| ok(REASSIGN, &[&b[..], args].concat(), "");
    let generated = reassign(&[
        "--generate",
        "--topics-to-move-json-file",
        topics.to_str().unwrap(),
        "--broker-list",
        leader,
    ]);
    let proposed = generated
        .split("Proposed partition reassignment configuration")
        .nth(1)
        .and_then(|rest| rest.lines().find(|l| l.starts_with('{')))
        .unwrap_or_else(|| panic!("a proposed plan:\n{generated}"));
    assert_eq!(proposed.matches("\"partition\"").count(), 4, "{proposed}");
    std::fs::write(&plan, proposed).unwrap();
    let plan = plan.to_str().unwrap();
    let executed = reassign(&["--execute", "--reassignment-json-file", plan]);
    assert!(
        executed.contains("Successfully started partition reassignment"),
        "{executed}"
    );
    let verified = reassign(&["--verify", "--reassignment-json-file", plan]);
    for p in 0..4 {
        assert!(
            verified.contains(&format!("Reassignment of partition tools-{p} is completed")),
            "{verified}"
        );
    }

    run(&["--delete", "--topic", "tools"]);
    wait_until("the topic is gone", Duration::from_secs(30), || {
        !run(&["--list"]).lines().any(|l| l == "tools")
    });
    ledger::verify(TOOLS, &broker);
}

/// The console producer and consumer with keys; kafka-consumer-groups
/// lists the group, shows its lag, resets it and deletes it;
/// kafka-get-offsets and kafka-delete-records.
#[test]
fn console_tools_consumer_groups_offsets_and_delete_records() {
    let broker = Broker::start(&["--admin-listen", "127.0.0.1:0"]);
    let addr = broker.addr.as_str();
    let b = ["--bootstrap-server", addr];
    ok(
        TOPICS,
        &[
            &b[..],
            &["--create", "--topic", "lines", "--partitions", "1"],
        ]
        .concat(),
        "",
    );
    let keyed = [
        "--property",
        "parse.key=true",
        "--property",
        "key.separator=:",
    ];
    ok(
        PRODUCER,
        &[&b[..], &["--topic", "lines"], &keyed[..]].concat(),
        "k1:one\nk2:two\nk3:three\n",
    );
    let consumed = ok(
        CONSUMER,
        &[
            &b[..],
            &[
                "--topic",
                "lines",
                "--from-beginning",
                "--max-messages",
                "3",
            ],
            &["--group", "console", "--property", "print.key=true"],
        ]
        .concat(),
        "",
    );
    assert_eq!(consumed, "k1\tone\nk2\ttwo\nk3\tthree\n");

    let groups = |args: &[&str]| ok(GROUPS, &[&b[..], args].concat(), "");
    assert!(groups(&["--list"]).lines().any(|l| l == "console"));
    let lag = |described: &str| -> Vec<String> {
        described
            .lines()
            .filter(|l| l.starts_with("console "))
            .map(|l| l.split_whitespace().nth(5).unwrap_or("").to_string())
            .collect()
    };
    let described = groups(&["--describe", "--group", "console"]);
    assert_eq!(lag(&described), ["0"], "{described}");
    let preview = groups(&[
        "--reset-offsets",
        "--group",
        "console",
        "--topic",
        "lines",
        "--to-earliest",
        "--dry-run",
    ]);
    assert!(
        preview
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["console", "lines", "0", "0"]),
        "{preview}"
    );
    groups(&[
        "--reset-offsets",
        "--group",
        "console",
        "--topic",
        "lines",
        "--to-offset",
        "1",
        "--execute",
    ]);
    let described = groups(&["--describe", "--group", "console"]);
    assert_eq!(lag(&described), ["2"], "{described}");

    assert_eq!(
        ok(GET_OFFSETS, &[&b[..], &["--topic", "lines"]].concat(), ""),
        "lines:0:3\n"
    );
    let json = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        json.path(),
        r#"{"partitions":[{"topic":"lines","partition":0,"offset":2}],"version":1}"#,
    )
    .unwrap();
    let deleted = ok(
        DELETE_RECORDS,
        &[
            &b[..],
            &["--offset-json-file", json.path().to_str().unwrap()],
        ]
        .concat(),
        "",
    );
    assert!(
        deleted.contains("partition: lines-0\tlow_watermark: 2"),
        "{deleted}"
    );
    let earliest = ok(
        GET_OFFSETS,
        &[&b[..], &["--topic", "lines", "--time", "-2"]].concat(),
        "",
    );
    assert_eq!(earliest, "lines:0:2\n");

    groups(&["--delete", "--group", "console"]);
    assert!(!groups(&["--list"]).lines().any(|l| l == "console"));
    ledger::verify(TOOLS, &broker);
}

/// kafka-transactions lists transactions and describes a partition's
/// producers; kafka-acls adds, lists and removes an ACL (on a broker with
/// the ACL authorizer, the tools' anonymous principal a super user).
#[test]
fn kafka_transactions_and_kafka_acls() {
    let broker = Broker::start_with_env(
        &["--admin-listen", "127.0.0.1:0"],
        &[
            ("SILT_SECURITY__AUTHORIZER", "acl"),
            ("SILT_SECURITY__SUPER_USERS", r#"["User:ANONYMOUS"]"#),
        ],
    );
    let b = ["--bootstrap-server", broker.addr.as_str()];
    ok(
        TOPICS,
        &[&b[..], &["--create", "--topic", "txn", "--partitions", "1"]].concat(),
        "",
    );
    ok(PRODUCER, &[&b[..], &["--topic", "txn"]].concat(), "a\nb\n");
    let listed = ok(TRANSACTIONS, &[&b[..], &["list"]].concat(), "");
    assert!(listed.starts_with("TransactionalId"), "{listed}");
    let producers = ok(
        TRANSACTIONS,
        &[
            &b[..],
            &["describe-producers", "--topic", "txn", "--partition", "0"],
        ]
        .concat(),
        "",
    );
    assert_eq!(
        producers.lines().count(),
        2,
        "a header and the console producer:\n{producers}"
    );

    let acls = |args: &[&str]| ok(ACLS, &[&b[..], args].concat(), "");
    acls(&[
        "--add",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Read",
        "--topic",
        "txn",
    ]);
    let listed = acls(&["--list", "--topic", "txn"]);
    assert!(
        listed.contains("principal=User:alice")
            && listed.contains("operation=READ")
            && listed.contains("permissionType=ALLOW"),
        "{listed}"
    );
    acls(&[
        "--remove",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Read",
        "--topic",
        "txn",
        "--force",
    ]);
    assert!(!acls(&["--list", "--topic", "txn"]).contains("User:alice"));
    ledger::verify(TOOLS, &broker);
}

/// kafka-producer-perf-test and kafka-consumer-perf-test run to the end.
#[test]
fn the_perf_tests_run() {
    let broker = Broker::start(&["--admin-listen", "127.0.0.1:0"]);
    let addr = broker.addr.as_str();
    ok(
        TOPICS,
        &[
            "--bootstrap-server",
            addr,
            "--create",
            "--topic",
            "perf",
            "--partitions",
            "2",
        ],
        "",
    );
    let props = format!("bootstrap.servers={addr}");
    let produced = ok(
        PRODUCER_PERF,
        &[
            "--topic",
            "perf",
            "--num-records",
            "20000",
            "--record-size",
            "100",
            "--throughput",
            "-1",
            "--producer-props",
            &props,
        ],
        "",
    );
    assert!(produced.contains("20000 records sent"), "{produced}");
    let consumed = ok(
        CONSUMER_PERF,
        &[
            "--bootstrap-server",
            addr,
            "--topic",
            "perf",
            "--messages",
            "20000",
        ],
        "",
    );
    let data = consumed.lines().last().unwrap_or("");
    let fields: Vec<&str> = data.split(", ").collect();
    assert_eq!(
        fields.get(4),
        Some(&"20000"),
        "data.consumed.in.nMsg:\n{consumed}"
    );
    ledger::verify(TOOLS, &broker);
}
