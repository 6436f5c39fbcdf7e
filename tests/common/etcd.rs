//! A three-member etcd cluster of its own for a test (the `etcd` binary
//! from the Debian package etcd-server, which `.ci/run` installs), on free
//! loopback ports, so that a test can kill its leader.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::wait_until;

/// One etcd member: its process, client address and command line.
struct Member {
    child: Option<Child>,
    client: String,
    args: Vec<String>,
    log: std::path::PathBuf,
}

impl Member {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("etcd log");
        let child = Command::new("etcd")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("run etcd (apt install etcd-server)");
        self.child = Some(child);
    }
}

/// A running etcd cluster; its members are killed when dropped.
pub struct EtcdCluster {
    members: Vec<Member>,
    _dir: tempfile::TempDir,
}

/// `count` distinct free loopback ports (all held until every one is
/// picked, so none is handed out twice).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("address").port())
        .collect()
}

impl EtcdCluster {
    /// Starts `size` members and waits until the cluster is healthy.
    pub fn start(size: usize) -> EtcdCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<(u16, u16)> = free_ports(2 * size)
            .chunks(2)
            .map(|pair| (pair[0], pair[1]))
            .collect();
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect();
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| {
                let client = format!("127.0.0.1:{client}");
                let peer = format!("http://127.0.0.1:{peer}");
                let data = dir.path().join(format!("m{i}"));
                let args = [
                    "--name".to_string(),
                    format!("m{i}"),
                    "--data-dir".into(),
                    data.display().to_string(),
                    "--listen-client-urls".into(),
                    format!("http://{client}"),
                    "--advertise-client-urls".into(),
                    format!("http://{client}"),
                    "--listen-peer-urls".into(),
                    peer.clone(),
                    "--initial-advertise-peer-urls".into(),
                    peer,
                    "--initial-cluster".into(),
                    initial.join(","),
                    "--initial-cluster-state".into(),
                    "new".into(),
                    "--logger=zap".into(),
                    "--log-level=warn".into(),
                ];
                let mut member = Member {
                    child: None,
                    client,
                    args: args.to_vec(),
                    log: dir.path().join(format!("m{i}.log")),
                };
                member.spawn();
                member
            })
            .collect();
        let cluster = EtcdCluster { members, _dir: dir };
        wait_until("etcd is healthy", Duration::from_secs(30), || {
            cluster.leader().is_some()
        });
        cluster
    }

    /// The client endpoints, comma-separated (for `etcd://...`).
    pub fn endpoints(&self) -> String {
        let live: Vec<&str> = self.members.iter().map(|m| m.client.as_str()).collect();
        live.join(",")
    }

    /// The index of the current leader among the live members, if one is
    /// elected.
    pub fn leader(&self) -> Option<usize> {
        self.members.iter().position(|member| {
            member.child.is_some()
                && Command::new("etcdctl")
                    .env("ETCDCTL_API", "3")
                    .args(["--endpoints", &member.client, "endpoint", "status"])
                    .args(["--write-out", "fields"])
                    .output()
                    .is_ok_and(|out| {
                        let text = String::from_utf8_lossy(&out.stdout);
                        let field = |name: &str| {
                            text.lines()
                                .find_map(|l| l.strip_prefix(&format!("\"{name}\" : ")))
                                .map(str::to_string)
                        };
                        out.status.success()
                            && field("MemberID").is_some()
                            && field("MemberID") == field("Leader")
                    })
        })
    }

    /// Starts member `index` again on its data (after [`EtcdCluster::kill`])
    /// and waits until the cluster has a leader.
    pub fn restart(&mut self, index: usize) {
        assert!(self.members[index].child.is_none(), "kill the member first");
        self.members[index].spawn();
        wait_until("etcd is healthy again", Duration::from_secs(30), || {
            self.leader().is_some()
        });
    }

    /// SIGKILL member `index`.
    pub fn kill(&mut self, index: usize) {
        let mut child = self.members[index].child.take().expect("member running");
        child.kill().expect("kill -9");
        child.wait().expect("reap");
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            if let Some(mut child) = member.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
