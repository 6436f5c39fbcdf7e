//! franz-go, the Go client of Go services, against a real broker:
//! tests/go/main.go (built here with `go build`; modules from the Go
//! module proxy into the module cache) runs each scenario and checks what
//! a user would.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::ledger;
use common::*;

/// The franz program, built once per test process.
fn franz() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let binary = Path::new(env!("CARGO_TARGET_TMPDIR")).join("franz");
        let out = Command::new("go")
            .args(["build", "-o"])
            .arg(&binary)
            .arg(".")
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go"))
            .env("GOFLAGS", "-mod=mod")
            .output()
            .expect("go");
        assert!(
            out.status.success(),
            "go build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        binary
    })
}

/// Runs `scenario` against `bootstrap`; its output lines.
fn run(scenario: &str, bootstrap: &str) -> Vec<String> {
    let out = Command::new(franz())
        .args([scenario, bootstrap])
        .output()
        .expect("franz");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{scenario}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_string).collect()
}

/// The idempotent producer in every codec with headers; a group consumer
/// reads each record once and commits what it read.
#[test]
fn franz_go_produces_and_consumes_in_every_codec() {
    let broker = Broker::start(&["--admin-listen", "127.0.0.1:0"]);
    let lines = run("produce-consume", &broker.addr);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        assert!(
            lines.contains(&format!("produced 200 {codec}")),
            "{lines:?}"
        );
    }
    assert!(
        lines.ends_with(&["consumed 1000".to_string(), "committed 1000".to_string()]),
        "{lines:?}"
    );
    ledger::verify(&ledger::franz_go(), &broker);
}

/// kadm: brokers, topics, configs, partitions, offsets, deleted records,
/// committed offsets and lag, deleted groups and topics.
#[test]
fn franz_go_admin_client() {
    let broker = Broker::start(&["--admin-listen", "127.0.0.1:0"]);
    assert_eq!(
        run("admin", &broker.addr),
        [
            "topics ok",
            "configs and partitions ok",
            "offsets and records ok",
            "groups ok",
            "delete ok"
        ]
    );
    ledger::verify(&ledger::franz_go(), &broker);
}

/// franz-go's own integration tests (package kgo, as its CI runs them
/// against a broker at `KGO_SEEDS`, 10,000 records per ETL test) pass:
/// among them the group and transactional ETL chains with the range and
/// cooperative-sticky balancers and static members. Skipped, as Silt does
/// not serve what they need: TestConsumeRegex (it wants the internal topic
/// `__consumer_offsets` in Metadata; Silt keeps group offsets in its
/// metadata store); franz-go skips by itself those needing KIP-848 groups,
/// share groups or SASL on the seed broker.
#[test]
fn franz_go_own_integration_tests_pass() {
    let go = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go");
    let binary = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kgo.test");
    let build = Command::new("go")
        .args(["test", "-c", "-o"])
        .arg(&binary)
        .arg("github.com/twmb/franz-go/pkg/kgo")
        .current_dir(&go)
        .env("GOFLAGS", "-mod=mod")
        .output()
        .expect("go test -c");
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let module = Command::new("go")
        .args(["list", "-m", "-f", "{{.Dir}}", "github.com/twmb/franz-go"])
        .current_dir(&go)
        .env("GOFLAGS", "-mod=mod")
        .output()
        .expect("go list");
    let source = String::from_utf8_lossy(&module.stdout).trim().to_string();

    let broker = Broker::start(&["--admin-listen", "127.0.0.1:0"]);
    // In the package's source directory: some tests read its files.
    let out = Command::new(&binary)
        .args([
            "-test.v",
            "-test.timeout",
            "10m",
            "-test.skip",
            "^TestConsumeRegex$",
        ])
        .current_dir(Path::new(&source).join("pkg/kgo"))
        .env("KGO_SEEDS", &broker.addr)
        .env("KGO_TEST_RECORDS", "10000")
        .env("KGO_LOG_LEVEL", "none")
        .output()
        .expect("kgo.test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("--- FAIL"))
        .collect();
    let tail: Vec<&str> = stdout.lines().rev().take(40).collect();
    assert!(
        out.status.success() && failed.is_empty(),
        "{failed:?}\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    for etl in ["TestGroupETL", "TestTxnEtl"] {
        assert!(
            stdout.contains(&format!("--- PASS: {etl} ")),
            "{etl} ran and passed"
        );
    }
    let passed = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("--- PASS"))
        .count();
    assert!(passed >= 500, "only {passed} tests passed");
    ledger::verify(&ledger::franz_go(), &broker);
}
