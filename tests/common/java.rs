//! Kafka's Java client, Kafka Streams, Kafka's tools and Kafka Connect for
//! the tests: the jars of tests/java/pom.xml per version and of
//! tests/java/tools.pom.xml (fetched by `scripts/test` into
//! `JAVA_CLIENTS_HOME`, default `/var/tmp/silt-java`), and the programs of
//! tests/java/src compiled against them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// kafka-clients 4.x, what most applications run.
pub const CURRENT: &str = "4.1.1";
/// kafka-clients 3.9, for the older protocol paths.
pub const OLDER: &str = "3.9.1";

/// The jars of `version`.
pub fn lib(version: &str) -> PathBuf {
    let home = std::env::var("JAVA_CLIENTS_HOME").unwrap_or_else(|_| "/var/tmp/silt-java".into());
    let lib = Path::new(&home).join(version);
    assert!(
        lib.join(format!("kafka-streams-{version}.jar")).exists(),
        "{} lacks kafka-clients and kafka-streams {version}: run scripts/test, which fetches them",
        lib.display()
    );
    lib
}

/// The jars of Kafka's command-line tools and Kafka Connect 4.1.1
/// (tests/java/tools.pom.xml).
pub fn tools_lib() -> PathBuf {
    let home = std::env::var("JAVA_CLIENTS_HOME").unwrap_or_else(|_| "/var/tmp/silt-java".into());
    let lib = Path::new(&home).join("tools-4.1.1");
    assert!(
        lib.join("connect-file-4.1.1.jar").exists(),
        "{} lacks Kafka's tools and Connect: run scripts/test, which fetches them",
        lib.display()
    );
    lib
}

/// `java` ready to run class `main` of Kafka's tools or Connect.
pub fn tool(main: &str) -> Command {
    let mut command = Command::new("java");
    command
        .args([
            "-Xmx384m",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp",
        ])
        .arg(tools_lib().join("*"))
        .arg(main);
    command
}

/// tests/java/src compiled against `version`, once per test process.
fn classes(version: &str) -> PathBuf {
    static COMPILED: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut compiled = COMPILED.lock().unwrap();
    let compiled = compiled.get_or_insert_with(HashMap::new);
    if let Some(dir) = compiled.get(version) {
        return dir.clone();
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("java-clients-{version}"));
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java/src/silt");
    let files: Vec<PathBuf> = std::fs::read_dir(&sources)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "java"))
        .collect();
    let out = Command::new("javac")
        .arg("-d")
        .arg(&dir)
        .arg("-cp")
        .arg(lib(version).join("*"))
        .args(&files)
        .output()
        .expect("javac");
    assert!(
        out.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    compiled.insert(version.to_string(), dir.clone());
    dir
}

/// `java` ready to run class `main` of tests/java/src with `version`'s
/// jars (warnings only in its log).
pub fn java(version: &str, main: &str) -> Command {
    let classpath = format!(
        "{}:{}/*",
        classes(version).display(),
        lib(version).display()
    );
    let mut command = Command::new("java");
    command
        .args([
            "-Xmx256m",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp",
            &classpath,
        ])
        .arg(main);
    command
}
