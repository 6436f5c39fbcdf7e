//! franz-go, the Go client of Go services, against a real broker:
//! tests/go/main.go (built here with `go build`; modules from the Go
//! module proxy into the module cache) runs each scenario and checks what
//! a user would.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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
    let broker = Broker::start(&[]);
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
}

/// kadm: brokers, topics, configs, partitions, offsets, deleted records,
/// committed offsets and lag, deleted groups and topics.
#[test]
fn franz_go_admin_client() {
    let broker = Broker::start(&[]);
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
}
