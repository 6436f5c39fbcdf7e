//! Deployment as an operator runs it: the README's local cluster flow
//! (scripts/local-cluster.sh: LocalStack, etcd, three brokers with
//! `broker.id = "auto"`) with a real client; and the offline checks of the
//! Terraform module, the Dockerfile (hadolint) and the systemd unit
//! (systemd-analyze). `scripts/test` installs the tools into venvs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::security::free_port;
use common::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A tool of the venv `DEPLOY_VENV` (default `/var/tmp/venv-deploy`),
/// which `scripts/test` creates.
fn tool(name: &str) -> PathBuf {
    let venv = std::env::var("DEPLOY_VENV").unwrap_or_else(|_| "/var/tmp/venv-deploy".into());
    let path = Path::new(&venv).join("bin").join(name);
    assert!(
        path.exists(),
        "{} not found: run scripts/test, which installs the deployment checks",
        path.display()
    );
    path
}

/// Runs `command`; panics with its output unless it succeeds.
fn succeeds(command: &mut Command) -> Output {
    let out = command.output().expect("run");
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Stops the local cluster when the test ends, even on a failure.
struct Stop<'a>(&'a Path);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = Command::new(root().join("scripts/local-cluster.sh"))
            .arg("stop")
            .arg(self.0)
            .status();
    }
}

/// A free port for etcd's clients whose peer port (10 higher, as
/// scripts/etcd-start.sh takes it) is free too, and is not `taken`.
fn etcd_port(taken: u16) -> u16 {
    loop {
        let port = free_port();
        let Some(peer) = port.checked_add(10) else {
            continue;
        };
        if peer != taken && std::net::TcpListener::bind(("127.0.0.1", peer)).is_ok() {
            return port;
        }
    }
}

/// The README's local flow: three brokers come up with ids 1000-1002 and
/// `silt cluster health` green; librdkafka produces through one broker and
/// reads every acknowledged message exactly once through another; `stop`
/// stops every process it started.
#[test]
fn the_local_cluster_flow_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let script = root().join("scripts/local-cluster.sh");
    let _stop = Stop(dir.path());
    let localstack = free_port();
    let out = succeeds(
        Command::new(&script)
            .arg("start")
            .arg(dir.path())
            .env("SILT", env!("CARGO_BIN_EXE_silt"))
            .env("BROKER_PORT", "0")
            .env("LOCALSTACK_PORT", localstack.to_string())
            .env("ETCD_PORT", etcd_port(localstack).to_string()),
    );
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.contains("Brokers: 3 live (1000, 1001, 1002)") && out.contains("Healthy"),
        "{out}"
    );
    let bootstrap = out
        .lines()
        .find_map(|l| l.strip_prefix("bootstrap: "))
        .expect("the bootstrap servers");
    let servers: Vec<&str> = bootstrap.split(',').collect();
    let (ok, _, err) = silt(&[
        "topic",
        "create",
        "flow",
        "--partitions",
        "3",
        "--bootstrap-server",
        bootstrap,
    ]);
    assert!(ok, "{err}");
    let deliveries = Deliveries::default();
    let producer = idempotent_producer(servers[0], &deliveries);
    produce_keyed(&producer, "flow", 0..3000, 100);
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(60)).expect("flush");
    let acked = deliveries.acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 3000);
    let reads = read_all_rdkafka(servers[2], "flow", 3, acked.len(), Duration::from_secs(60));
    assert_exactly_once(&acked, &reads);

    let pids = std::fs::read_to_string(dir.path().join("pids")).unwrap();
    succeeds(Command::new(&script).arg("stop").arg(dir.path()));
    for pid in pids.split_whitespace() {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} still runs"
        );
    }
}

/// scripts/check-terraform.py: `terraform fmt -check`, init, validate and
/// `terraform test` of the provider-free module, the rendered silt.toml
/// accepted by `silt serve --check-config`, the project's assertions on
/// every .tf file, and checkov with no failed check.
#[test]
fn the_terraform_module_passes_its_offline_checks() {
    let checkov =
        std::env::var("CHECKOV").unwrap_or_else(|_| "/var/tmp/venv-checkov/bin/checkov".into());
    let out = succeeds(
        Command::new(tool("python"))
            .arg(root().join("scripts/check-terraform.py"))
            .current_dir(root())
            .env("SILT_BIN", env!("CARGO_BIN_EXE_silt"))
            .env("CHECKOV", checkov),
    );
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.contains("silt.toml is valid") && out.contains("all 5 steps passed"),
        "the rendered silt.toml was checked:\n{out}"
    );
}

#[test]
fn the_dockerfile_passes_hadolint() {
    succeeds(Command::new(tool("hadolint")).arg(root().join("Dockerfile")));
}

/// `systemd-analyze verify` on the unit, with ExecStart pointing at the
/// binary under test (verify requires it to exist).
#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(root().join("deploy/systemd/silt.service")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silt.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/silt", env!("CARGO_BIN_EXE_silt")),
    )
    .unwrap();
    let out = succeeds(Command::new("systemd-analyze").arg("verify").arg(&path));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
