//! The API-version ledger, `docs/api-versions.md`: every API Silt serves,
//! the versions it advertises, and the versions each client sent in its
//! tests. A client test ends with [`verify`] on the broker it ran against
//! (started with `--admin-listen`): a version the client sent that its
//! column does not list fails the test; `SILT_BLESS_LEDGER=1` adds it.

use super::{Broker, http_get};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// Where the ledger lives.
pub const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api-versions.md");

/// The leading columns of each row, before the clients'.
pub const FIXED: [&str; 3] = ["API", "Key", "Served"];

/// Serializes blessing within one test binary.
static FILE: Mutex<()> = Mutex::new(());

/// The ledger's table: its header and its rows of cells.
pub struct Ledger {
    /// What comes before the table, kept as it is.
    pub preamble: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// What comes after the table, kept as it is.
    pub epilogue: String,
}

impl Ledger {
    pub fn read() -> Ledger {
        let text = std::fs::read_to_string(PATH).expect("docs/api-versions.md");
        Ledger::parse(&text)
    }

    fn parse(text: &str) -> Ledger {
        let cells = |line: &str| -> Vec<String> {
            line.trim()
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        };
        let lines: Vec<&str> = text.lines().collect();
        let start = lines
            .iter()
            .position(|l| l.starts_with("| API "))
            .expect("the ledger's table");
        let end = lines[start..]
            .iter()
            .position(|l| !l.starts_with('|'))
            .map_or(lines.len(), |n| start + n);
        let join = |part: &[&str]| part.iter().map(|l| format!("{l}\n")).collect::<String>();
        Ledger {
            preamble: join(&lines[..start]),
            header: cells(lines[start]),
            rows: lines[start + 2..end].iter().map(|l| cells(l)).collect(),
            epilogue: join(&lines[end..]),
        }
    }

    pub fn write(&self) {
        let row = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let rule = vec!["---".to_string(); self.header.len()];
        let mut text = self.preamble.clone();
        text += &row(&self.header);
        text += &row(&rule);
        for cells in &self.rows {
            text += &row(cells);
        }
        text += &self.epilogue;
        std::fs::write(PATH, text).expect("write docs/api-versions.md");
    }

    /// The index of `client`'s column.
    fn column(&self, client: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == client)
            .unwrap_or_else(|| {
                panic!("docs/api-versions.md has no column {client:?}: add it (with the client's version)")
            })
    }
}

/// Whether this run rewrites the ledger instead of checking it.
pub fn blessing() -> bool {
    std::env::var_os("SILT_BLESS_LEDGER").is_some()
}

/// A version set as the ledger writes it: `3-13`, `0, 2-4`, or `-`.
pub fn render(versions: &BTreeSet<i16>) -> String {
    let mut runs: Vec<(i16, i16)> = Vec::new();
    for &v in versions {
        match runs.last_mut() {
            Some((_, hi)) if *hi + 1 == v => *hi = v,
            _ => runs.push((v, v)),
        }
    }
    if runs.is_empty() {
        return "-".to_string();
    }
    let run = |&(lo, hi): &(i16, i16)| {
        if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        }
    };
    runs.iter().map(run).collect::<Vec<_>>().join(", ")
}

/// Reads a version set written by [`render`].
pub fn parse(cell: &str) -> BTreeSet<i16> {
    if cell == "-" {
        return BTreeSet::new();
    }
    let mut versions = BTreeSet::new();
    for run in cell.split(',').map(str::trim) {
        let (lo, hi) = run.split_once('-').unwrap_or((run, run));
        let bound = |v: &str| {
            v.parse::<i16>()
                .unwrap_or_else(|_| panic!("bad cell {cell:?}"))
        };
        versions.extend(bound(lo)..=bound(hi));
    }
    versions
}

/// How many requests of each API and version a broker has answered (its
/// `silt_requests_total{api,version}`): taken before a client runs, it
/// tells the client's requests from those of the test's setup.
#[derive(Default)]
pub struct Answered(BTreeMap<(String, i16), f64>);

impl Answered {
    pub fn by(broker: &Broker) -> Answered {
        let admin = broker.admin.as_ref().expect("started with --admin-listen");
        let label = |line: &str, name: &str| -> Option<String> {
            let rest = &line[line.find(&format!("{name}=\""))? + name.len() + 2..];
            Some(rest[..rest.find('"')?].to_string())
        };
        let mut counts = BTreeMap::new();
        for line in http_get(admin, "/metrics").lines() {
            if !line.starts_with("silt_requests_total{") {
                continue;
            }
            let api = label(line, "api").expect("an api label");
            let version = label(line, "version").expect("a version label");
            let count: f64 = line.rsplit(' ').next().unwrap().parse().expect("a count");
            counts.insert((api, version.parse().expect("a version")), count);
        }
        Answered(counts)
    }

    /// The versions of each API answered since `before`.
    fn since(&self, before: &Answered) -> BTreeMap<String, BTreeSet<i16>> {
        let mut seen: BTreeMap<String, BTreeSet<i16>> = BTreeMap::new();
        for (key, count) in &self.0 {
            if *count > before.0.get(key).copied().unwrap_or(0.0) {
                seen.entry(key.0.clone()).or_default().insert(key.1);
            }
        }
        seen
    }
}

/// Checks that every version `client` sent to `broker` (the only client
/// there) is in its column of the ledger, or, when blessing, adds it.
pub fn verify(client: &str, broker: &Broker) {
    verify_since(client, broker, &Answered::default());
}

/// As [`verify`], for the requests since `before` (the test's setup used
/// other clients).
pub fn verify_since(client: &str, broker: &Broker, before: &Answered) {
    let seen = Answered::by(broker).since(before);
    assert!(!seen.is_empty(), "{client} sent no request");
    let _file = FILE.lock().unwrap_or_else(|e| e.into_inner());
    let mut ledger = Ledger::read();
    let column = ledger.column(client);
    let mut missing = Vec::new();
    for (api, versions) in seen {
        let row = ledger
            .rows
            .iter_mut()
            .find(|r| r[0] == api)
            .unwrap_or_else(|| panic!("{api} is answered but not in the ledger"));
        let listed = parse(&row[column]);
        if !versions.is_subset(&listed) {
            missing.push(format!("{api} {}", render(&versions)));
            row[column] = render(&listed.union(&versions).copied().collect());
        }
    }
    if blessing() {
        ledger.write();
    } else {
        assert!(
            missing.is_empty(),
            "{client} sent versions docs/api-versions.md does not list: {missing:?}; \
             run the test with SILT_BLESS_LEDGER=1 and commit the ledger"
        );
    }
}

/// The ledger's column for the librdkafka linked into the tests.
pub fn librdkafka() -> String {
    format!("librdkafka {}", rdkafka::util::get_rdkafka_version().1)
}

/// The ledger's column for the kafka-python `scripts/test` installed.
pub fn kafka_python() -> String {
    let out = std::process::Command::new(super::python())
        .args(["-c", "import kafka; print(kafka.__version__)"])
        .output()
        .expect("python");
    format!(
        "kafka-python {}",
        String::from_utf8_lossy(&out.stdout).trim()
    )
}

/// The ledger's column for the franz-go of tests/go/go.mod.
pub fn franz_go() -> String {
    let go_mod = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/go/go.mod");
    let text = std::fs::read_to_string(go_mod).expect("tests/go/go.mod");
    let version = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("github.com/twmb/franz-go v"))
        .expect("franz-go in go.mod");
    format!("franz-go {version}")
}
