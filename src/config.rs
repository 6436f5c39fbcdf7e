//! Broker settings: one serde tree, `Default` as the single source of
//! defaults, layered as file < `SILT_SECTION__KEY` environment < flags.
//!
//! `config/silt.toml` documents every setting; a test parses it and checks it
//! against `Config::default()`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where a produce request is acknowledged (DESIGN section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Acknowledged once fsynced in the broker's local WAL.
    Local,
    /// Acknowledged once the data object is in the bucket and its extents are committed.
    Object,
}

/// The disk cache stores entries in 16 MiB blocks and needs a few of them.
const MIN_DISK_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// The largest data object (`flush.bytes`). Objects are written in one
/// create-only PUT (S3 takes up to 5 GiB): `object_store` cannot complete a
/// multipart upload create-only, and larger objects would only delay
/// acknowledgements.
const MAX_OBJECT_BYTES: u64 = 1 << 30;

/// The largest export file (`export.file_bytes`): it is built in memory.
const MAX_EXPORT_FILE_BYTES: u64 = 1 << 30;

/// Every broker setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where a produce request is acknowledged.
    pub durability: Durability,
    pub broker: BrokerConfig,
    pub storage: StorageConfig,
    pub topics: TopicDefaults,
    pub flush: FlushConfig,
    pub cache: CacheConfig,
    pub limits: Limits,
    pub groups: GroupConfig,
    pub transactions: TransactionConfig,
    pub export: ExportConfig,
    /// Kafka listeners; when present they replace `broker.listen` and
    /// `broker.advertised_listener`, the first being the one other brokers
    /// and the console reach.
    pub listeners: Vec<ListenerConfig>,
    pub security: SecurityConfig,
    pub admin: AdminConfig,
}

/// Who may use the admin HTTP port (`broker.admin_listen`), and over what.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// A bearer token every request but `/health` must carry
    /// (`Authorization: Bearer TOKEN`); best set as `SILT_ADMIN__TOKEN`.
    pub token: Option<String>,
    /// Or `USER:PASSWORD` for HTTP basic authentication.
    pub basic_auth: Option<String>,
    /// PEM certificate chain and key: HTTPS instead of HTTP.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Whether `/metrics` has each led partition's log start and end
    /// offsets (two series per partition: opt-in for many partitions).
    pub partition_metrics: bool,
}

/// Authentication and authorization settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Whether requests are checked against ACLs.
    pub authorizer: AuthorizerKind,
    /// Principals (`User:admin`) allowed everything, whatever the ACLs.
    pub super_users: Vec<String>,
    /// Whether a resource no ACL names is open to everyone.
    pub allow_everyone_if_no_acl_found: bool,
    /// How a client certificate's subject becomes a user name
    /// (`ssl.principal.mapping.rules`): `RULE:pattern/replacement/[L|U]`
    /// rules and `DEFAULT`, tried in order.
    pub ssl_principal_mapping_rules: Vec<String>,
    /// How long an authentication lasts before the client must
    /// authenticate again on the same connection (KIP-368's
    /// `connections.max.reauth.ms`); 0: for the connection's life.
    pub connections_max_reauth_ms: u64,
    /// Largest request a client may send before it has authenticated
    /// (`sasl.server.max.receive.size`).
    pub sasl_max_receive_bytes: u32,
    /// How OAUTHBEARER tokens are checked (needed to offer OAUTHBEARER).
    pub oauthbearer: Option<OAuthConfig>,
}

/// How OAUTHBEARER tokens (JWTs) are validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
    /// A JWKS file with the keys tokens are signed with.
    pub jwks_file: Option<PathBuf>,
    /// Or a URL serving it (fetched again when a token names an unknown key).
    pub jwks_url: Option<String>,
    /// The `iss` claim tokens must carry, if set.
    pub issuer: Option<String>,
    /// A value the `aud` claim must hold, if set.
    pub audience: Option<String>,
    /// The claim naming the principal.
    pub principal_claim: String,
    /// Tolerated clock difference for `exp` and `nbf`.
    pub clock_skew_seconds: u64,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            jwks_file: None,
            jwks_url: None,
            issuer: None,
            audience: None,
            principal_claim: "sub".into(),
            clock_skew_seconds: 30,
        }
    }
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            authorizer: AuthorizerKind::None,
            super_users: Vec::new(),
            allow_everyone_if_no_acl_found: false,
            ssl_principal_mapping_rules: vec!["DEFAULT".into()],
            connections_max_reauth_ms: 0,
            sasl_max_receive_bytes: 512 * 1024,
            oauthbearer: None,
        }
    }
}

/// Which authorizer checks requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthorizerKind {
    /// Everyone may do everything.
    #[default]
    None,
    /// Kafka's ACLs (CreateAcls, `silt acl`).
    Acl,
}

/// A SASL mechanism a listener offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    /// JWTs checked as `security.oauthbearer` says.
    #[serde(rename = "OAUTHBEARER")]
    OAuthBearer,
}

impl SaslMechanism {
    /// The mechanisms checked against stored credentials (a SASL
    /// listener's default).
    pub const ALL: [SaslMechanism; 3] = [
        SaslMechanism::ScramSha512,
        SaslMechanism::ScramSha256,
        SaslMechanism::Plain,
    ];

    /// The mechanism's SASL name (`SCRAM-SHA-512`).
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

fn all_sasl_mechanisms() -> Vec<SaslMechanism> {
    SaslMechanism::ALL.to_vec()
}

/// How a listener's connections are secured (Kafka's
/// `security.protocol`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecurityProtocol {
    #[default]
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
    #[serde(rename = "SSL")]
    Ssl,
    #[serde(rename = "SASL_PLAINTEXT")]
    SaslPlaintext,
    #[serde(rename = "SASL_SSL")]
    SaslSsl,
}

/// Whether a TLS listener asks clients for certificates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    #[default]
    None,
    /// Asked for, checked if sent.
    Requested,
    /// Refused without one the CA signed.
    Required,
}

/// One Kafka listener (`[[listeners]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub name: String,
    /// Address it binds (HOST:PORT, numeric IP).
    pub listen: String,
    /// HOST:PORT clients of this listener are told; defaults to `listen`
    /// (its bound port, if 0).
    #[serde(default)]
    pub advertised: Option<String>,
    #[serde(default)]
    pub protocol: SecurityProtocol,
    /// The mechanisms a SASL listener offers (all served ones by default).
    #[serde(default = "all_sasl_mechanisms")]
    pub sasl_mechanisms: Vec<SaslMechanism>,
    /// PEM certificate chain and private key (SSL listeners).
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    #[serde(default)]
    pub tls_client_auth: ClientAuth,
    /// PEM CA certificates client certificates must chain to.
    #[serde(default)]
    pub tls_client_ca: Option<PathBuf>,
}

/// `broker.id`: a fixed node id, or `"auto"`: allocated once (from etcd's
/// counter in a cluster, from [`BrokerId::FIRST_AUTO`]) and kept in the
/// data dir, so the same machine keeps its id across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BrokerIdSetting", into = "BrokerIdSetting")]
pub enum BrokerId {
    Fixed(i32),
    Auto,
}

impl BrokerId {
    /// The first id `"auto"` gives out: lower ids are left to fixed
    /// settings, as Kafka's `reserved.broker.max.id` does.
    pub const FIRST_AUTO: i32 = 1000;
}

/// How `broker.id` is written: a number or `"auto"`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum BrokerIdSetting {
    Number(i32),
    Word(String),
}

impl TryFrom<BrokerIdSetting> for BrokerId {
    type Error = String;
    fn try_from(setting: BrokerIdSetting) -> Result<BrokerId, String> {
        match setting {
            BrokerIdSetting::Number(id) => Ok(BrokerId::Fixed(id)),
            BrokerIdSetting::Word(word) => word.parse(),
        }
    }
}

impl From<BrokerId> for BrokerIdSetting {
    fn from(id: BrokerId) -> BrokerIdSetting {
        match id {
            BrokerId::Fixed(id) => BrokerIdSetting::Number(id),
            BrokerId::Auto => BrokerIdSetting::Word("auto".into()),
        }
    }
}

impl std::str::FromStr for BrokerId {
    type Err = String;
    fn from_str(s: &str) -> Result<BrokerId, String> {
        match s {
            "auto" => Ok(BrokerId::Auto),
            _ => s
                .parse()
                .map(BrokerId::Fixed)
                .map_err(|_| format!("expected a broker id or \"auto\", got '{s}'")),
        }
    }
}

/// Identity and network addresses of this broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Kafka node id reported in Metadata, or `"auto"`.
    pub id: BrokerId,
    /// Address the Kafka listener binds.
    pub listen: String,
    /// `host:port` clients are told to connect to; defaults to `listen`.
    pub advertised_listener: Option<String>,
    /// Address of the admin HTTP port (`/metrics`, `/health`); unset: off.
    pub admin_listen: Option<String>,
    /// Directory holding the WAL, the embedded metadata, the disk cache and
    /// (by default) the local object store.
    pub data_dir: PathBuf,
    /// Cluster id reported to clients.
    pub cluster_id: String,
    /// The rack (e.g. availability zone) reported to clients with this
    /// broker, as Kafka's `broker.rack`.
    pub rack: Option<String>,
}

/// Where data objects and metadata live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Data objects: `file:///DIR` or `s3://BUCKET/PREFIX`; unset means
    /// `<data_dir>/objects`.
    pub object_store: Option<String>,
    /// Create the S3 bucket at start if it does not exist.
    pub create_bucket: bool,
    /// Metadata: `file:///DIR` for the embedded store, or
    /// `etcd://HOST:PORT[,HOST:PORT...][/ROOT]`; unset means
    /// `<data_dir>/meta`.
    pub meta: Option<String>,
    /// With metadata in etcd: the TTL (seconds) of the lease of this
    /// broker's registration; the controller moves its partitions to other
    /// brokers this long after it stopped answering.
    pub meta_lease_seconds: u64,
    /// In a cluster in `local` durability: how long (ms) the partitions of
    /// a leader that stopped wait for it to come back (its WAL holds writes
    /// not uploaded yet) before other brokers take them over from the last
    /// upload, losing those writes.
    pub failover_grace_ms: u64,
    /// How often each broker applies retention to the partitions it leads
    /// (Kafka's `log.retention.check.interval.ms`).
    pub lifecycle_interval_ms: u64,
    /// How often unreferenced data objects are looked for.
    pub gc_interval_ms: u64,
    /// An unreferenced data object is deleted once it has been
    /// unreferenced, and existed, this long (readers may still hold it;
    /// uploads may still be on their way to a commit).
    pub gc_grace_ms: i64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            object_store: None,
            create_bucket: false,
            meta: None,
            meta_lease_seconds: 6,
            failover_grace_ms: 60_000,
            lifecycle_interval_ms: 30_000,
            gc_interval_ms: 10 * 60 * 1000,
            gc_grace_ms: 10 * 60 * 1000,
        }
    }
}

/// Defaults for topics: auto-creation and the topic-level configs a topic
/// inherits unless it overrides them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicDefaults {
    /// Create a topic when a client asks Metadata for an unknown one.
    pub auto_create: bool,
    /// Partition count of auto-created topics and of CreateTopics with -1.
    pub default_partitions: i32,
    /// `retention.ms` of topics that do not set it (-1: forever).
    pub retention_ms: i64,
    /// `retention.bytes` of topics that do not set it (-1: unlimited).
    pub retention_bytes: i64,
    /// `max.message.bytes`: the largest record batch a topic accepts.
    pub max_message_bytes: i32,
    /// `cleanup.policy`: `delete`, `compact` or `delete,compact`.
    pub cleanup_policy: String,
    /// `segment.bytes`: the most data one merged unit holds (up to 12 MiB).
    pub segment_bytes: i32,
    /// `segment.ms`: accepted and reported.
    pub segment_ms: i64,
    /// Topic configs for the topics whose names match a pattern, ahead of
    /// the broker-wide defaults (a topic's own configs still win; the
    /// first entry that matches and sets a config decides it).
    pub by_name: Vec<TopicsByName>,
}

/// Topic configs for the topics whose names match `pattern`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsByName {
    pub pattern: NamePattern,
    /// Topic configs by their topic-level names (`retention.ms`,
    /// `silt.export.format`, ...).
    pub configs: std::collections::BTreeMap<String, String>,
}

/// A regular expression a whole topic name matches.
#[derive(Debug, Clone)]
pub struct NamePattern {
    text: String,
    regex: regex::Regex,
}

impl NamePattern {
    pub fn new(text: &str) -> Result<NamePattern, regex::Error> {
        Ok(NamePattern {
            text: text.to_string(),
            regex: regex::Regex::new(&format!("^(?:{text})$"))?,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, name: &str) -> bool {
        self.regex.is_match(name)
    }
}

impl PartialEq for NamePattern {
    fn eq(&self, other: &NamePattern) -> bool {
        self.text == other.text
    }
}

impl Serialize for NamePattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for NamePattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        NamePattern::new(&text).map_err(|e| {
            // The regex crate's message spans lines; its last names the
            // problem.
            let why = e.to_string();
            let why = why.lines().last().unwrap_or_default().trim().to_string();
            serde::de::Error::custom(format!("topic name pattern {text:?}: {why}"))
        })
    }
}

/// When the uploader seals buffered data into an object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlushConfig {
    /// Upload at least this often (milliseconds); unset means 50 in
    /// `object` durability (an acknowledgement waits for the next upload)
    /// and 1000 in `local`.
    pub interval_ms: Option<u64>,
    /// Upload as soon as this many bytes are buffered (the size of a full
    /// data object).
    pub bytes: u64,
    /// Uploads under way at once: the next object is sealed and PUT while
    /// earlier ones are still being written (they commit in order).
    pub uploads_in_flight: usize,
}

impl Default for FlushConfig {
    fn default() -> Self {
        FlushConfig {
            interval_ms: None,
            bytes: 16 * 1024 * 1024,
            uploads_in_flight: 4,
        }
    }
}

/// The read cache of object sections (foyer: memory + disk).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Memory tier capacity in bytes.
    pub memory_bytes: usize,
    /// Disk tier capacity in bytes (0 disables the disk tier; unused when
    /// the object store is a local directory).
    pub disk_bytes: usize,
}

/// Consumer group coordination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupConfig {
    /// Smallest session timeout a member may ask for (`group.min.session.timeout.ms`).
    pub min_session_timeout_ms: i32,
    /// Largest session timeout a member may ask for (`group.max.session.timeout.ms`).
    pub max_session_timeout_ms: i32,
    /// How long the first rebalance of an empty group waits for more
    /// members (`group.initial.rebalance.delay.ms`).
    pub initial_rebalance_delay_ms: i32,
    /// Committed offsets of a group without members are kept this long
    /// after the last commit (`offsets.retention.minutes`).
    pub offsets_retention_minutes: i64,
}

/// Transaction coordination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransactionConfig {
    /// Largest `transaction.timeout.ms` a producer may ask for
    /// (`transaction.max.timeout.ms`); a transaction open longer than its
    /// timeout is aborted by its coordinator.
    pub max_timeout_ms: i32,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        TransactionConfig {
            max_timeout_ms: 900_000,
        }
    }
}

/// Parquet export of the topics that ask for it (`silt.export.format`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportConfig {
    /// How often the leader of each exported partition looks for a file
    /// to write.
    pub interval_ms: u64,
    /// A file is written once this much data waits (tens to hundreds of
    /// MiB suit analytics engines; the file is built in memory) ...
    pub file_bytes: u64,
    /// ... or once the oldest data waiting is this old.
    pub max_delay_ms: u64,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            interval_ms: 1_000,
            file_bytes: 128 * 1024 * 1024,
            max_delay_ms: 15_000,
        }
    }
}

/// Bounds that keep memory finite under any load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request frame accepted (`socket.request.max.bytes`).
    pub socket_request_max_bytes: u32,
    /// Request bytes held in memory across all connections, from reading a
    /// frame until its response is written (`queued.max.request.bytes`);
    /// connections stop reading beyond it.
    pub queued_max_request_bytes: u64,
    /// Data accepted but not yet uploaded; producers wait beyond it.
    pub max_unflushed_bytes: u64,
    /// The most record bytes one fetch response carries (`fetch.max.bytes`),
    /// whatever the client asks for.
    pub fetch_max_bytes: u32,
    /// Requests read ahead on one connection while earlier ones complete.
    pub max_in_flight_per_connection: usize,
    /// The most bytes a compressed batch may inflate to when the broker
    /// reads its records (compaction, recompression, keys of compacted
    /// topics, timestamp lookups); a batch beyond it is refused, never
    /// allocated.
    pub max_inflated_batch_bytes: usize,
    /// Most client connections open at once (`max.connections`); more are
    /// closed as they arrive. No limit when absent.
    pub max_connections: Option<u32>,
    /// Most connections open at once from one IP (`max.connections.per.ip`).
    pub max_connections_per_ip: Option<u32>,
    /// Most new connections accepted per second
    /// (`max.connection.creation.rate`), with a burst of as many.
    pub max_connection_creation_rate: Option<u32>,
    /// A connection with no request for this long is closed
    /// (`connections.max.idle.ms`).
    pub connections_max_idle_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            durability: Durability::Local,
            broker: BrokerConfig::default(),
            storage: StorageConfig::default(),
            topics: TopicDefaults::default(),
            flush: FlushConfig::default(),
            cache: CacheConfig::default(),
            limits: Limits::default(),
            groups: GroupConfig::default(),
            transactions: TransactionConfig::default(),
            export: ExportConfig::default(),
            listeners: Vec::new(),
            security: SecurityConfig::default(),
            admin: AdminConfig::default(),
        }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            id: BrokerId::Fixed(1),
            listen: "127.0.0.1:9092".into(),
            advertised_listener: None,
            admin_listen: None,
            data_dir: PathBuf::from("./silt-data"),
            cluster_id: "silt-cluster".into(),
            rack: None,
        }
    }
}

impl Default for TopicDefaults {
    fn default() -> Self {
        TopicDefaults {
            auto_create: true,
            default_partitions: 1,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            cleanup_policy: "delete".into(),
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            by_name: Vec::new(),
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            memory_bytes: 256 * 1024 * 1024,
            disk_bytes: 1024 * 1024 * 1024,
        }
    }
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 300,
            offsets_retention_minutes: 7 * 24 * 60,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            socket_request_max_bytes: 100 * 1024 * 1024,
            queued_max_request_bytes: 512 * 1024 * 1024,
            max_unflushed_bytes: 256 * 1024 * 1024,
            fetch_max_bytes: 55 * 1024 * 1024,
            max_in_flight_per_connection: 256,
            max_inflated_batch_bytes: 64 * 1024 * 1024,
            max_connections: None,
            max_connections_per_ip: None,
            max_connection_creation_rate: None,
            connections_max_idle_ms: 600_000,
        }
    }
}

/// A setting that cannot be used, named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid environment variable {name}: {reason}")]
    Env { name: String, reason: String },
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
}

/// Overrides given on the command line; `None` leaves the layered value.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub broker_id: Option<BrokerId>,
    pub listen: Option<String>,
    pub advertised_listener: Option<String>,
    pub durability: Option<Durability>,
    pub object_store: Option<String>,
    pub create_bucket: bool,
    pub meta: Option<String>,
    pub admin_listen: Option<String>,
}

impl Config {
    /// Builds the configuration: defaults, then `file`, then `SILT_*`
    /// variables from `env`, then `overrides`; validates the result.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: Overrides,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|source| ConfigError::Parse {
                        path: path.to_owned(),
                        source: Box::new(source),
                    })?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            if let Some(key) = name.strip_prefix("SILT_") {
                // Checked alone first, so an error names the variable.
                let mut alone = toml::Table::new();
                apply_env(&mut alone, &name, key, &value)?;
                toml::Value::Table(alone)
                    .try_into::<Config>()
                    .map_err(|e| ConfigError::Env {
                        name: name.clone(),
                        reason: e.message().to_string(),
                    })?;
                apply_env(&mut table, &name, key, &value)?;
            }
        }
        let durability_chosen = table.contains_key("durability") || overrides.durability.is_some();
        let mut config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    setting: "(file and environment)",
                    reason: e.message().to_string(),
                })?;
        if let Some(dir) = overrides.data_dir {
            config.broker.data_dir = dir;
        }
        if let Some(id) = overrides.broker_id {
            config.broker.id = id;
        }
        if let Some(listen) = overrides.listen {
            config.broker.listen = listen;
        }
        if let Some(adv) = overrides.advertised_listener {
            config.broker.advertised_listener = Some(adv);
        }
        if let Some(d) = overrides.durability {
            config.durability = d;
        }
        if let Some(url) = overrides.object_store {
            config.storage.object_store = Some(url);
        }
        config.storage.create_bucket |= overrides.create_bucket;
        if let Some(url) = overrides.meta {
            config.storage.meta = Some(url);
        }
        if let Some(addr) = overrides.admin_listen {
            config.broker.admin_listen = Some(addr);
        }
        // In a cluster, losing a broker must lose nothing acknowledged.
        if !durability_chosen && config.in_cluster() {
            config.durability = Durability::Object;
        }
        config.validate()?;
        Ok(config)
    }

    /// Whether the metadata is in etcd: cluster mode.
    pub fn in_cluster(&self) -> bool {
        self.storage
            .meta
            .as_deref()
            .is_some_and(|m| m.starts_with("etcd://"))
    }

    /// Checks the settings that serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting, reason: &str| {
            Err(ConfigError::Invalid {
                setting,
                reason: reason.to_string(),
            })
        };
        if matches!(self.broker.id, BrokerId::Fixed(id) if id < 0) {
            return invalid("broker.id", "expected a number from 0, or \"auto\"");
        }
        if self.broker.listen.parse::<SocketAddr>().is_err() {
            return invalid("broker.listen", "expected HOST:PORT with a numeric IP");
        }
        if let Some(adv) = &self.broker.advertised_listener
            && split_host_port(adv).is_none()
        {
            return invalid("broker.advertised_listener", "expected HOST:PORT");
        }
        self.validate_listeners()?;
        if self.admin.tls_cert.is_some() != self.admin.tls_key.is_some() {
            return invalid("admin", "tls_cert and tls_key go together");
        }
        if self.admin.basic_auth.as_deref().is_some_and(|b| {
            b.split_once(':')
                .is_none_or(|(u, p)| u.is_empty() || p.is_empty())
        }) {
            return invalid("admin.basic_auth", "expected USER:PASSWORD");
        }
        if let Some(oauth) = &self.security.oauthbearer
            && oauth.jwks_file.is_none() == oauth.jwks_url.is_none()
        {
            return invalid("security.oauthbearer", "set one of jwks_file and jwks_url");
        }
        if let Some(admin) = &self.broker.admin_listen
            && admin.parse::<SocketAddr>().is_err()
        {
            return invalid(
                "broker.admin_listen",
                "expected HOST:PORT with a numeric IP",
            );
        }
        if self.topics.default_partitions < 1 {
            return invalid("topics.default_partitions", "must be at least 1");
        }
        if self.topics.max_message_bytes < 1 {
            return invalid("topics.max_message_bytes", "must be positive");
        }
        if self.flush.bytes == 0
            || self.flush.interval_ms == Some(0)
            || self.flush.uploads_in_flight == 0
        {
            return invalid(
                "flush",
                "interval_ms, bytes and uploads_in_flight must be positive",
            );
        }
        if self.flush.bytes > MAX_OBJECT_BYTES {
            return invalid(
                "flush.bytes",
                "must be at most 1 GiB: a data object is written in one create-only PUT",
            );
        }
        if self.limits.max_unflushed_bytes < self.flush.bytes {
            return invalid(
                "limits.max_unflushed_bytes",
                "must be at least flush.bytes, or producers would stall before a flush",
            );
        }
        if self.cache.disk_bytes != 0 && self.cache.disk_bytes < MIN_DISK_CACHE_BYTES {
            return invalid(
                "cache.disk_bytes",
                "must be 0 (no disk tier) or at least 64 MiB (four 16 MiB cache blocks)",
            );
        }
        if self.limits.queued_max_request_bytes < u64::from(self.limits.socket_request_max_bytes) {
            return invalid(
                "limits.queued_max_request_bytes",
                "must be at least socket_request_max_bytes, or a large request could never be read",
            );
        }
        if self.storage.lifecycle_interval_ms == 0 {
            return invalid("storage.lifecycle_interval_ms", "must be positive");
        }
        if self.export.interval_ms == 0
            || !(1..=MAX_EXPORT_FILE_BYTES).contains(&self.export.file_bytes)
        {
            return invalid(
                "export",
                "interval_ms must be positive and file_bytes 1 to 1073741824",
            );
        }
        if self.storage.gc_interval_ms == 0 || self.storage.gc_grace_ms < 60_000 {
            return invalid(
                "storage",
                "gc_interval_ms must be positive and gc_grace_ms at least 60000",
            );
        }
        if !(2..=60).contains(&self.storage.meta_lease_seconds) {
            return invalid("storage.meta_lease_seconds", "must be 2 to 60");
        }
        if let Some(meta) = &self.storage.meta
            && !meta.starts_with("file:///")
            && !meta.starts_with("etcd://")
        {
            return invalid(
                "storage.meta",
                "expected file:///DIR (the embedded store) or etcd://HOST:PORT[,HOST:PORT...][/ROOT]",
            );
        }
        let g = &self.groups;
        if g.min_session_timeout_ms < 1 || g.max_session_timeout_ms < g.min_session_timeout_ms {
            return invalid(
                "groups.min_session_timeout_ms",
                "must be positive and at most groups.max_session_timeout_ms",
            );
        }
        if g.initial_rebalance_delay_ms < 0 || g.offsets_retention_minutes < 1 {
            return invalid(
                "groups",
                "initial_rebalance_delay_ms must be >= 0 and offsets_retention_minutes >= 1",
            );
        }
        if self.limits.max_in_flight_per_connection == 0 {
            return invalid("limits.max_in_flight_per_connection", "must be at least 1");
        }
        Ok(())
    }

    /// How long a dead leader's partitions wait for it: `failover_grace_ms`
    /// in `local` durability, nothing in `object` (nothing is lost).
    pub fn failover_grace(&self) -> std::time::Duration {
        match self.durability {
            Durability::Local => std::time::Duration::from_millis(self.storage.failover_grace_ms),
            Durability::Object => std::time::Duration::ZERO,
        }
    }

    /// The upload cadence for the configured durability mode.
    pub fn flush_interval(&self) -> Duration {
        let default = match self.durability {
            Durability::Object => 50,
            Durability::Local => 1000,
        };
        Duration::from_millis(self.flush.interval_ms.unwrap_or(default))
    }

    /// The directory of the embedded metadata store.
    pub fn meta_dir(&self) -> PathBuf {
        match &self.storage.meta {
            Some(url) => PathBuf::from(url.trim_start_matches("file://")),
            None => self.broker.data_dir.join("meta"),
        }
    }

    /// The Kafka listeners: `[[listeners]]`, or else one PLAINTEXT
    /// listener on `broker.listen`.
    pub fn listeners(&self) -> Vec<ListenerConfig> {
        if !self.listeners.is_empty() {
            return self.listeners.clone();
        }
        vec![ListenerConfig {
            name: "PLAINTEXT".into(),
            listen: self.broker.listen.clone(),
            advertised: self.broker.advertised_listener.clone(),
            protocol: SecurityProtocol::Plaintext,
            sasl_mechanisms: all_sasl_mechanisms(),
            tls_cert: None,
            tls_key: None,
            tls_client_auth: ClientAuth::None,
            tls_client_ca: None,
        }]
    }

    fn validate_listeners(&self) -> Result<(), ConfigError> {
        let invalid = |reason: String| {
            Err(ConfigError::Invalid {
                setting: "listeners",
                reason,
            })
        };
        let mut names = std::collections::HashSet::new();
        for l in &self.listeners {
            let name = &l.name;
            if name.is_empty() || !names.insert(name) {
                return invalid(format!(
                    "listener names must be unique and not empty ('{name}')"
                ));
            }
            if l.listen.parse::<SocketAddr>().is_err() {
                return invalid(format!(
                    "{name}: listen expects HOST:PORT with a numeric IP"
                ));
            }
            if l.advertised
                .as_deref()
                .is_some_and(|a| split_host_port(a).is_none())
            {
                return invalid(format!("{name}: advertised expects HOST:PORT"));
            }
            match l.protocol {
                SecurityProtocol::Ssl | SecurityProtocol::SaslSsl
                    if l.tls_cert.is_none() || l.tls_key.is_none() =>
                {
                    return invalid(format!(
                        "{name}: an SSL or SASL_SSL listener needs tls_cert and tls_key"
                    ));
                }
                SecurityProtocol::Plaintext | SecurityProtocol::SaslPlaintext
                    if l.tls_cert.is_some() =>
                {
                    return invalid(format!("{name}: tls_cert on a listener without TLS"));
                }
                SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
                    if l.sasl_mechanisms.is_empty() =>
                {
                    return invalid(format!("{name}: sasl_mechanisms is empty"));
                }
                _ if l.sasl_mechanisms.contains(&SaslMechanism::OAuthBearer)
                    && self.security.oauthbearer.is_none() =>
                {
                    return invalid(format!(
                        "{name}: OAUTHBEARER needs [security.oauthbearer] (jwks_file or jwks_url)"
                    ));
                }
                _ => {}
            }
            if l.tls_client_auth != ClientAuth::None && l.tls_client_ca.is_none() {
                return invalid(format!("{name}: tls_client_auth needs tls_client_ca"));
            }
        }
        Ok(())
    }

    /// The address advertised on each named listener, when there are
    /// `[[listeners]]` (filled in from the bound ports at start).
    pub fn advertised_listeners(&self) -> std::collections::BTreeMap<String, String> {
        self.listeners
            .iter()
            .filter_map(|l| Some((l.name.clone(), l.advertised.clone()?)))
            .collect()
    }

    /// `(host, port)` clients should connect to.
    pub fn advertised(&self) -> (String, i32) {
        let addr = self
            .broker
            .advertised_listener
            .as_deref()
            .unwrap_or(&self.broker.listen);
        split_host_port(addr).expect("validated in Config::validate")
    }
}

/// Splits `host:port`, accepting `[v6]:port`.
pub fn split_host_port(addr: &str) -> Option<(String, i32)> {
    let (host, port) = addr.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_string(), i32::from(port)))
}

/// `SILT_BROKER__DATA_DIR=x` sets `[broker] data_dir = x`; the value is read
/// as a TOML value when it parses as one, else as a string.
fn apply_env(
    table: &mut toml::Table,
    name: &str,
    key: &str,
    value: &str,
) -> Result<(), ConfigError> {
    let path: Vec<String> = key.split("__").map(|p| p.to_ascii_lowercase()).collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::Env {
            name: name.into(),
            reason: "expected SILT_SECTION__KEY or SILT_KEY".into(),
        });
    }
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let (last, sections) = path.split_last().expect("split yields at least one part");
    let mut cursor = table;
    for section in sections {
        let entry = cursor
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cursor = entry.as_table_mut().ok_or_else(|| ConfigError::Env {
            name: name.into(),
            reason: format!("{section} is not a section"),
        })?;
    }
    cursor.insert(last.clone(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotated_example_matches_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/silt.toml");
        let config = Config::load(Some(&path), [], Overrides::default()).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn the_cluster_node_example_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/cluster.toml");
        let overrides = Overrides {
            broker_id: Some(BrokerId::Fixed(2)),
            ..Overrides::default()
        };
        let config = Config::load(Some(&path), [], overrides).unwrap();
        assert!(config.in_cluster());
        assert_eq!(
            (config.broker.id, config.durability),
            (BrokerId::Fixed(2), Durability::Object)
        );
    }

    #[test]
    fn broker_id_is_a_number_or_auto_in_the_file_and_the_environment() {
        let id = |env: &str| {
            Config::load(
                None,
                [("SILT_BROKER__ID".to_string(), env.to_string())],
                Overrides::default(),
            )
            .map(|c| c.broker.id)
            .map_err(|e| e.to_string())
        };
        assert_eq!(id("7"), Ok(BrokerId::Fixed(7)));
        assert_eq!(id("auto"), Ok(BrokerId::Auto));
        assert!(id("automatic").unwrap_err().contains("\"auto\""));
        assert!(id("-1").unwrap_err().contains("broker.id"));
        let table: toml::Table = "[broker]\nid = \"auto\"".parse().unwrap();
        let config: Config = toml::Value::Table(table).try_into().unwrap();
        assert_eq!(config.broker.id, BrokerId::Auto);
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let env = [
            ("SILT_BROKER__DATA_DIR".to_string(), "/tmp/a".to_string()),
            ("SILT_DURABILITY".to_string(), "object".to_string()),
            ("SILT_FLUSH__BYTES".to_string(), "1048576".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let overrides = Overrides {
            listen: Some("127.0.0.1:1234".into()),
            ..Overrides::default()
        };
        let config = Config::load(None, env, overrides).unwrap();
        assert_eq!(config.broker.data_dir, PathBuf::from("/tmp/a"));
        assert_eq!(config.durability, Durability::Object);
        assert_eq!(config.flush.bytes, 1 << 20);
        assert_eq!(config.broker.listen, "127.0.0.1:1234");
        assert_eq!(config.flush_interval(), Duration::from_millis(50));
    }

    #[test]
    fn unknown_settings_are_named() {
        let env = [("SILT_BROKER__NO_SUCH".to_string(), "1".to_string())];
        let err = Config::load(None, env, Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("SILT_BROKER__NO_SUCH"), "{err}");
        assert!(err.to_string().contains("no_such"), "{err}");
    }

    #[test]
    fn invalid_listen_is_rejected() {
        let overrides = Overrides {
            listen: Some("nonsense".into()),
            ..Overrides::default()
        };
        let err = Config::load(None, [], overrides).unwrap_err();
        assert!(err.to_string().contains("broker.listen"), "{err}");
    }

    #[test]
    fn a_cluster_defaults_to_object_durability() {
        let load = |meta: &str, durability: Option<Durability>| {
            let overrides = Overrides {
                meta: Some(meta.into()),
                durability,
                ..Overrides::default()
            };
            Config::load(None, [], overrides).unwrap().durability
        };
        assert_eq!(load("etcd://127.0.0.1:2379", None), Durability::Object);
        assert_eq!(load("file:///tmp/meta", None), Durability::Local);
        let chosen = load("etcd://127.0.0.1:2379", Some(Durability::Local));
        assert_eq!(chosen, Durability::Local);
    }

    #[test]
    fn objects_larger_than_one_put_are_refused() {
        let env = [
            ("SILT_FLUSH__BYTES".to_string(), (2u64 << 30).to_string()),
            (
                "SILT_LIMITS__MAX_UNFLUSHED_BYTES".to_string(),
                (4u64 << 30).to_string(),
            ),
        ];
        let err = Config::load(None, env, Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("flush.bytes"), "{err}");
    }
}
