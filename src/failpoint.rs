//! Fail points for crash-consistency tests: a broker started with
//! `FAILPOINTS=NAME` aborts at once, as if killed, when it reaches the
//! point `NAME` (named in the code that calls [`hit`]); with
//! `FAILPOINTS=NAME=stop` it stops itself there the first time (SIGSTOP,
//! as a process paused by its host), to go on when sent SIGCONT. The variable is
//! outside `SILT_*`, which holds settings only. Without it a fail point
//! costs one comparison.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Aborts, or stops, the process if `FAILPOINTS` names this point.
pub fn hit(name: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("FAILPOINTS").ok());
    let Some(armed) = armed.as_deref() else {
        return;
    };
    let (point, action) = armed.split_once('=').unwrap_or((armed, "abort"));
    if point != name {
        return;
    }
    if action == "stop" {
        static STOPPED: AtomicBool = AtomicBool::new(false);
        if STOPPED.swap(true, Ordering::SeqCst) {
            return;
        }
        eprintln!("silt: fail point {name} reached; stopping (SIGSTOP) until continued");
        let pid = std::process::id().to_string();
        let stopped = std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status();
        if stopped.is_ok_and(|s| s.success()) {
            return;
        }
    }
    eprintln!("silt: fail point {name} reached; aborting");
    std::process::abort();
}
