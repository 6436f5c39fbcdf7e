//! A smoke run of the load generator (examples/loadgen) against the
//! broker: every mode runs, counts what it did and reports the broker's
//! figures. The numbers themselves are for bench/run.sh, not for a test.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

/// Runs the load generator; its closing JSON line.
fn loadgen(args: &[&str]) -> Value {
    // `cargo test` builds examples, but not when only this test is asked
    // for: make sure the binary is current (a no-op when it is).
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-j2", "--example", "loadgen"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo");
        assert!(status.success(), "cargo build --example loadgen");
    });
    let deps = std::env::current_exe().expect("test binary path");
    let bin = deps
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("examples/loadgen");
    let out = Command::new(&bin).args(args).output().expect("run loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "loadgen {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("| throughput |"), "a table: {stdout}");
    serde_json::from_str(stdout.lines().last().expect("output")).expect("a JSON line last")
}

#[test]
fn every_mode_runs_and_counts() {
    let broker = Broker::start(&["--admin-listen", "127.0.0.1:0"]);
    let admin = broker.admin.clone().expect("admin port");
    create_topic(&broker, "smoke", 4);
    let base = [
        "--bootstrap",
        broker.addr.as_str(),
        "--topic",
        "smoke",
        "--admin",
        &admin,
    ];
    let with = |mode: &str, extra: &[&str]| {
        let mut args = vec![mode];
        args.extend_from_slice(&base);
        args.extend_from_slice(extra);
        loadgen(&args)
    };

    let produced = with(
        "produce",
        &[
            "--messages",
            "2000",
            "--producers",
            "2",
            "--compression",
            "zstd",
            "--compressible",
        ],
    );
    assert_eq!(produced["messages"], 2000);
    assert_eq!(produced["errors"], 0);
    assert_eq!(produced["bytes"], 2000 * 1024);
    assert!(produced["p99_ms"].as_f64().unwrap() > 0.0);
    assert!(produced["broker_peak_rss_mb"].as_f64().unwrap() > 0.0);
    // A short run may take less CPU than the 10 ms the kernel counts in.
    for field in ["client_cpu_s", "broker_cpu_s"] {
        assert!(
            produced[field].as_f64().is_some_and(|s| s >= 0.0),
            "{produced}"
        );
    }

    let consumed = with("consume", &["--messages", "2000"]);
    assert_eq!(consumed["messages"], 2000);
    assert_eq!(consumed["bytes"], 2000 * 1024);

    let end_to_end = with("end-to-end", &["--messages", "500", "--rate-mb", "1"]);
    assert_eq!(end_to_end["messages"], 500);
    let e2e_p50 = end_to_end["e2e_p50_ms"].as_f64().unwrap();
    assert!(e2e_p50 > 0.0 && e2e_p50 < 10_000.0, "{end_to_end}");

    let tcp = loadgen(&["tcp-baseline", "--gib", "1"]);
    assert_eq!(tcp["bytes"], 1u64 << 30);
}
