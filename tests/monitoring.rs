//! The monitoring kit in `deploy/`: the Grafana dashboard queries only
//! metrics a real broker serves (every PromQL expression valid, checked by
//! `promtool`), and the Prometheus alert rules pass `promtool check rules`.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use rdkafka::producer::Producer;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `promtool check rules FILE`: its output, and whether it passed.
fn promtool_check(file: &Path) -> (bool, String) {
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(file)
        .output()
        .expect("promtool (Debian package prometheus; .ci/run installs it)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// The metric names an expression reads (histogram series by their
/// family's name).
fn metrics_of(expr: &str) -> BTreeSet<String> {
    let names = regex::Regex::new(r"\b(?:silt|process)_[a-z0-9_]+").unwrap();
    names
        .find_iter(expr)
        .map(|m| {
            let name = m.as_str();
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name)
                .to_string()
        })
        .collect()
}

#[test]
fn the_alert_rules_pass_promtool() {
    let (ok, out) = promtool_check(&root().join("deploy/prometheus/alerts.yml"));
    assert!(ok && out.contains("SUCCESS: 6 rules found"), "{out}");
}

/// A broker with traffic of every kind the dashboard shows (produce,
/// fetch, a group's commits, uploads, an exported topic) serves every
/// metric its panels query; the queries are valid PromQL.
#[test]
fn the_dashboard_queries_metrics_a_broker_serves() {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana/silt.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables
            .iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "a Prometheus datasource variable"
    );
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(exprs.len() >= 20, "{} queries", exprs.len());

    // Each query as a recording rule: promtool parses it.
    let dir = tempfile::tempdir().unwrap();
    let rules: Vec<String> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            // Grafana's variables, as Grafana substitutes them.
            let e = e
                .replace("$__rate_interval", "1m")
                .replace("$instance", ".*");
            format!("      - record: dashboard:query_{i}\n        expr: {e:?}\n")
        })
        .collect();
    let file = dir.path().join("dashboard.yml");
    std::fs::write(
        &file,
        format!(
            "groups:\n  - name: dashboard\n    rules:\n{}",
            rules.concat()
        ),
    )
    .unwrap();
    let (ok, out) = promtool_check(&file);
    assert!(ok, "{out}");

    let broker = Broker::start_with_env(
        &["--admin-listen", "127.0.0.1:0"],
        &[
            ("SILT_EXPORT__INTERVAL_MS", "100"),
            ("SILT_EXPORT__MAX_DELAY_MS", "200"),
        ],
    );
    let (ok, _, err) = silt(&[
        "topic",
        "create",
        "watched",
        "--partitions",
        "2",
        "--config",
        "silt.export.format=parquet",
        "--bootstrap-server",
        &broker.addr,
    ]);
    assert!(ok, "{err}");
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(&broker.addr, &deliveries);
    produce_keyed(&producer, "watched", 0..200, 20);
    producer.flush(Duration::from_secs(30)).expect("flush");
    let (ok, _, err) = silt(&[
        "consume",
        "watched",
        "--from-beginning",
        "--max-messages",
        "200",
        "--bootstrap-server",
        &broker.addr,
    ]);
    assert!(ok, "{err}");
    // A group with a committed offset, for the lag panel.
    commit_group_offset(&broker.addr, "dashboard", "watched", 0, 10);
    wait_until(
        "an upload and an export file",
        Duration::from_secs(60),
        || {
            broker.metric("silt_uploads_total", "") > 0.0
                && broker.metric("silt_export_files_total", "") > 0.0
        },
    );
    let body = http_get(broker.admin.as_ref().unwrap(), "/metrics");
    let served: BTreeSet<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let queried: BTreeSet<String> = exprs.iter().flat_map(|e| metrics_of(e)).collect();
    assert!(queried.len() >= 20, "{queried:?}");
    let missing: Vec<&String> = queried
        .iter()
        .filter(|m| !served.contains(m.as_str()))
        .collect();
    assert!(missing.is_empty(), "not served: {missing:?}\n{body}");
}
