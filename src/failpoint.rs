//! Fail points for crash-consistency tests: a broker started with
//! `FAILPOINTS=NAME` aborts at once, as if killed, when it reaches the
//! point `NAME` (named in the code that calls [`hit`]; the variable is
//! outside `SILT_*`, which holds settings only). Without it a fail point
//! costs one comparison.

use std::sync::OnceLock;

/// Aborts the process if `FAILPOINTS` names this point.
pub fn hit(name: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("FAILPOINTS").ok());
    if armed.as_deref() == Some(name) {
        eprintln!("silt: fail point {name} reached; aborting");
        std::process::abort();
    }
}
