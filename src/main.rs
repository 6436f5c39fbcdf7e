//! The `silt` binary: `silt serve` runs a broker; the other sub-commands are
//! the console and admin tools.

mod cli;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use silt::broker::Broker;
use silt::config::{Config, Durability, Overrides};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "silt",
    version,
    about = "A Kafka-protocol broker on object storage"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written to stderr: text, or json (one JSON object
    /// per line: timestamp, level, target, fields, spans).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SILT_LOG_FORMAT")]
    log_format: LogFormat,
}

/// How log lines are written (`--log-format`).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker.
    Serve(ServeArgs),
    /// Create, list, describe and delete topics.
    Topic {
        #[command(flatten)]
        server: Bootstrap,
        #[command(subcommand)]
        command: TopicCommand,
    },
    /// List, describe, reset and delete consumer groups.
    Group {
        #[command(flatten)]
        server: Bootstrap,
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// List and describe transactions, the producers of a partition, and
    /// abort a hanging transaction.
    Txn {
        #[command(flatten)]
        server: Bootstrap,
        #[command(subcommand)]
        command: TxnCommand,
    },
    /// Create, list and delete users' SCRAM credentials (for SASL
    /// SCRAM-SHA-256/512 and PLAIN logins).
    User {
        #[command(flatten)]
        server: Bootstrap,
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Create, list and delete ACLs (checked with security.authorizer =
    /// "acl"), in kafka-acls.sh's vocabulary.
    Acl {
        #[command(flatten)]
        server: Bootstrap,
        #[command(subcommand)]
        command: AclCommand,
    },
    /// Set and describe client quotas (produce/fetch byte rates, request
    /// percentage) per user and/or client id, with defaults.
    Quota {
        #[command(flatten)]
        server: Bootstrap,
        #[command(subcommand)]
        command: QuotaCommand,
    },
    /// Describe the cluster: brokers, controller, partition leaders and
    /// their epochs.
    Cluster {
        #[command(flatten)]
        server: Bootstrap,
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Parquet export status, from a broker's admin port.
    Export {
        /// The broker's admin address (its --admin-listen): HOST:PORT, or
        /// an https:// URL when the admin port has TLS.
        #[arg(long, global = true, env = "SILT_ADMIN_ADDRESS")]
        admin: Option<String>,
        /// The admin port's bearer token, when it asks for one.
        #[arg(long, global = true, env = "SILT_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Send stdin lines as messages to a topic.
    Produce {
        #[command(flatten)]
        server: Bootstrap,
        topic: String,
        /// Split each line into KEY<SEP>VALUE at the first SEP.
        #[arg(long)]
        key_separator: Option<String>,
        /// Send every message to this partition.
        #[arg(long)]
        partition: Option<i32>,
    },
    /// Print a topic's messages.
    Consume {
        #[command(flatten)]
        server: Bootstrap,
        topic: String,
        /// Start at the earliest offset (default: only new messages).
        #[arg(long)]
        from_beginning: bool,
        /// Read only this partition.
        #[arg(long)]
        partition: Option<i32>,
        /// Start at this offset (needs --partition).
        #[arg(long, conflicts_with = "from_beginning")]
        offset: Option<i64>,
        /// Exit after this many messages.
        #[arg(long)]
        max_messages: Option<u64>,
        /// Exit when no message arrives for this long (milliseconds).
        #[arg(long)]
        timeout_ms: Option<u64>,
        /// Print KEY<TAB>VALUE.
        #[arg(long)]
        print_key: bool,
    },
}

#[derive(clap::Args)]
struct Bootstrap {
    /// Brokers to start from, HOST:PORT[,HOST:PORT...] (the first that
    /// answers is used).
    #[arg(long, global = true, default_value = "127.0.0.1:9092")]
    bootstrap_server: String,
    /// Kafka client properties (security.protocol, sasl.mechanism,
    /// sasl.username/sasl.password or sasl.jaas.config, ssl.ca.location,
    /// ...): the file Kafka's tools and kcat -F read.
    #[arg(long, global = true)]
    command_config: Option<PathBuf>,
}

impl Bootstrap {
    /// Connects to the cluster as the options say.
    async fn connect(&self) -> anyhow::Result<cli::Cluster> {
        let security = match &self.command_config {
            Some(path) => silt::client::security::ClientSecurity::load(path)?,
            None => Default::default(),
        };
        cli::Cluster::connect(&self.bootstrap_server, security).await
    }
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Brokers, the controller, and every partition's leader and epoch.
    Describe,
    /// Check the cluster as clients see it: enough live brokers, a
    /// controller, every partition led by a live broker. Exits 1 if not.
    Health {
        /// The fewest live brokers that count as healthy.
        #[arg(long, default_value_t = 1)]
        min_brokers: usize,
    },
    /// Move a partition's leadership to a broker, and keep it there while
    /// that broker is live (no data moves).
    Move {
        /// The cluster's metadata: etcd://HOST:PORT[,HOST:PORT...][/ROOT].
        #[arg(long)]
        meta: String,
        topic: String,
        partition: i32,
        /// The broker id to lead the partition.
        #[arg(long)]
        to: i32,
    },
}

#[derive(Subcommand)]
enum GroupCommand {
    /// List groups with their state.
    List,
    /// Show a group's members, assignments, committed offsets and lag.
    Describe { group: String },
    /// Move an empty group's committed offsets of a topic.
    ResetOffsets {
        group: String,
        #[arg(long)]
        topic: String,
        #[command(flatten)]
        to: ResetTarget,
    },
    /// Delete a group without members, with its offsets.
    Delete { group: String },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Per partition of the exported topics (or of TOPIC): the offset
    /// exported to, the lag in records and seconds, files, rows, bytes and
    /// the last error.
    Status { topic: Option<String> },
}

#[derive(Subcommand)]
enum TxnCommand {
    /// List transactional ids with their producer id and state.
    List,
    /// Show a transactional id's state and its transaction's partitions.
    Describe { transactional_id: String },
    /// Show the producers of a partition, with their open transactions.
    Producers {
        topic: String,
        #[arg(long)]
        partition: i32,
    },
    /// Abort the transaction open in a partition from an offset (one its
    /// coordinator does not end).
    Abort {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
        /// The first offset of the transaction (see `silt txn producers`).
        #[arg(long)]
        start_offset: i64,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user, or set a new password (read from standard input).
    Create {
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512; repeatable (default: both).
        #[arg(long = "mechanism", value_parser = parse_mechanism)]
        mechanisms: Vec<silt::meta::ScramMechanism>,
        /// Read the password from standard input (required: a password on
        /// the command line would be visible to every user of the machine).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// PBKDF2 iterations (4096 to 16384).
        #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u32).range(4096..=16384))]
        iterations: u32,
    },
    /// List users with their mechanisms and iteration counts.
    List,
    /// Delete a user's credentials.
    Delete {
        name: String,
        /// The mechanism to delete; repeatable (default: both).
        #[arg(long = "mechanism", value_parser = parse_mechanism)]
        mechanisms: Vec<silt::meta::ScramMechanism>,
    },
}

#[derive(Subcommand)]
enum AclCommand {
    /// Create an ACL for each principal, operation and host given.
    Create {
        #[command(flatten)]
        resource: AclResource,
        #[command(flatten)]
        who: AclPrincipals,
        /// Read, Write, Create, Delete, Alter, Describe, ClusterAction,
        /// DescribeConfigs, AlterConfigs, IdempotentWrite or All; repeatable.
        #[arg(long = "operation", required = true, value_parser = parse_operation)]
        operations: Vec<silt::acl::Operation>,
        /// literal or prefixed.
        #[arg(long, default_value = "literal", value_parser = parse_pattern)]
        resource_pattern_type: silt::acl::PatternType,
    },
    /// List ACLs (all, or those of a resource or principal).
    List {
        #[command(flatten)]
        resource: AclResource,
        /// Only the ACLs of this principal (User:alice).
        #[arg(long)]
        principal: Option<String>,
        /// any (default), match (every pattern applying to the resource
        /// name), literal or prefixed.
        #[arg(long, default_value = "any")]
        resource_pattern_type: String,
    },
    /// Delete the ACLs of a resource, narrowed by principal and operation.
    Delete {
        #[command(flatten)]
        resource: AclResource,
        #[command(flatten)]
        who: AclPrincipals,
        /// Only ACLs of this operation.
        #[arg(long, value_parser = parse_operation)]
        operation: Option<silt::acl::Operation>,
        #[arg(long, default_value = "literal", value_parser = parse_pattern)]
        resource_pattern_type: silt::acl::PatternType,
    },
}

/// The resource of an ACL: at most one of these (create and delete
/// need one).
#[derive(clap::Args)]
#[group(required = false, multiple = false)]
struct AclResource {
    #[arg(long)]
    topic: Option<String>,
    #[arg(long)]
    group: Option<String>,
    #[arg(long)]
    transactional_id: Option<String>,
    /// The cluster (kafka-cluster).
    #[arg(long)]
    cluster: bool,
}

/// Who an ACL allows or denies, and from where.
#[derive(clap::Args)]
struct AclPrincipals {
    /// A principal to allow (User:alice, User:* for everyone); repeatable.
    #[arg(long)]
    allow_principal: Vec<String>,
    /// A principal to deny; repeatable.
    #[arg(long)]
    deny_principal: Vec<String>,
    /// The client IP allowed from (default: any).
    #[arg(long, default_value = "*")]
    allow_host: String,
    /// The client IP denied from (default: any).
    #[arg(long, default_value = "*")]
    deny_host: String,
}

impl AclResource {
    /// The resource given, if any.
    fn given(&self) -> Option<(silt::acl::ResourceType, String)> {
        use silt::acl::ResourceType;
        match (&self.topic, &self.group, &self.transactional_id) {
            (Some(t), _, _) => Some((ResourceType::Topic, t.clone())),
            (_, Some(g), _) => Some((ResourceType::Group, g.clone())),
            (_, _, Some(t)) => Some((ResourceType::TransactionalId, t.clone())),
            _ if self.cluster => Some((ResourceType::Cluster, silt::acl::CLUSTER_NAME.into())),
            _ => None,
        }
    }

    /// The resource, which must be given.
    fn required(&self) -> anyhow::Result<(silt::acl::ResourceType, String)> {
        self.given().ok_or_else(|| {
            anyhow::anyhow!("give --topic, --group, --transactional-id or --cluster")
        })
    }
}

impl AclPrincipals {
    /// `(principal, permission, host)` for each principal given.
    fn each(&self) -> Vec<(String, silt::acl::Permission, String)> {
        use silt::acl::Permission;
        let allow = self
            .allow_principal
            .iter()
            .map(|p| (p.clone(), Permission::Allow, self.allow_host.clone()));
        let deny = self
            .deny_principal
            .iter()
            .map(|p| (p.clone(), Permission::Deny, self.deny_host.clone()));
        allow.chain(deny).collect()
    }
}

fn parse_operation(name: &str) -> Result<silt::acl::Operation, String> {
    silt::acl::Operation::from_name(name)
        .ok_or_else(|| format!("'{name}' is not a Kafka ACL operation"))
}

fn parse_pattern(name: &str) -> Result<silt::acl::PatternType, String> {
    silt::acl::PatternType::from_name(name)
        .ok_or_else(|| format!("'{name}' is not literal or prefixed"))
}

/// An ACL from the command line, checked as the broker checks it.
fn acl_of(
    (resource_type, name): &(silt::acl::ResourceType, String),
    pattern_type: silt::acl::PatternType,
    (principal, permission, host): &(String, silt::acl::Permission, String),
    operation: silt::acl::Operation,
) -> anyhow::Result<silt::acl::Acl> {
    Ok(silt::acl::Acl::from_request(
        resource_type.code(),
        name,
        pattern_type.code(),
        principal,
        host,
        operation.code(),
        permission.code(),
    )?)
}

#[derive(Subcommand)]
enum QuotaCommand {
    /// Set (or remove) quotas of a user, a client id, both, or defaults.
    Set {
        #[command(flatten)]
        entity: QuotaEntityArgs,
        /// Bytes per second the entity may produce.
        #[arg(long)]
        producer_byte_rate: Option<f64>,
        /// Bytes per second the entity may fetch.
        #[arg(long)]
        consumer_byte_rate: Option<f64>,
        /// Percent of one broker thread its requests may use.
        #[arg(long)]
        request_percentage: Option<f64>,
        /// Remove this quota key; repeatable.
        #[arg(long)]
        delete: Vec<String>,
    },
    /// Show quotas (all, or those of an entity).
    Describe {
        #[command(flatten)]
        entity: QuotaEntityArgs,
    },
}

/// Who quotas are for.
#[derive(clap::Args)]
struct QuotaEntityArgs {
    #[arg(long, conflicts_with = "user_default")]
    user: Option<String>,
    /// The default for every user without a quota of its own.
    #[arg(long)]
    user_default: bool,
    #[arg(long, conflicts_with = "client_id_default")]
    client_id: Option<String>,
    /// The default for every client id without a quota of its own.
    #[arg(long)]
    client_id_default: bool,
}

impl QuotaEntityArgs {
    fn entity(&self) -> cli::quota::Entity {
        use silt::quota::QuotaName;
        let side = |name: &Option<String>, default: bool| match (name, default) {
            (Some(n), _) => Some(QuotaName::Named(n.clone())),
            (None, true) => Some(QuotaName::Default),
            (None, false) => None,
        };
        [
            ("user", side(&self.user, self.user_default)),
            ("client-id", side(&self.client_id, self.client_id_default)),
        ]
        .into_iter()
        .filter_map(|(kind, n)| Some((kind, n?)))
        .collect()
    }
}

fn parse_mechanism(name: &str) -> Result<silt::meta::ScramMechanism, String> {
    silt::meta::ScramMechanism::from_name(name)
        .ok_or_else(|| format!("'{name}' is not SCRAM-SHA-256 or SCRAM-SHA-512"))
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct ResetTarget {
    /// To each partition's log start.
    #[arg(long)]
    to_earliest: bool,
    /// To each partition's log end.
    #[arg(long)]
    to_latest: bool,
    /// To this offset (clamped to each partition's range).
    #[arg(long)]
    to_offset: Option<i64>,
    /// To the first offset at or after this time (RFC 3339 or epoch ms).
    #[arg(long)]
    to_datetime: Option<String>,
}

#[derive(Subcommand)]
enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// A topic config, KEY=VALUE (repeatable).
        #[arg(long = "config")]
        configs: Vec<String>,
    },
    /// Set or remove a topic's configs (IncrementalAlterConfigs).
    Alter {
        name: String,
        /// A config to set, KEY=VALUE (repeatable).
        #[arg(long = "config")]
        configs: Vec<String>,
        /// A config to remove, back to its default (repeatable).
        #[arg(long = "delete-config")]
        deleted: Vec<String>,
    },
    /// List topic names.
    List,
    /// Show a topic's partitions, leaders and offsets.
    Describe { name: String },
    /// Delete a topic.
    Delete { name: String },
    /// Delete a partition's records before an offset or a time (moves its
    /// log start offset; DeleteRecords).
    Trim {
        name: String,
        #[arg(long)]
        partition: i32,
        /// The new log start offset (-1: the end, deleting everything).
        #[arg(
            long,
            allow_negative_numbers = true,
            conflicts_with = "before_timestamp",
            required_unless_present = "before_timestamp"
        )]
        offset: Option<i64>,
        /// Delete the records before the first one with a timestamp at or
        /// after this (ms since the Unix epoch).
        #[arg(long)]
        before_timestamp: Option<i64>,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML config file (see config/silt.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Check this config file (with the SILT_* variables and flags given)
    /// and exit: 0 when a broker can start with it, else 1 naming the
    /// problem. Opens no port and no data dir.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    check_config: Option<PathBuf>,
    /// Data directory (WAL, metadata, cache, local objects).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// This broker's id, unique in a cluster, or "auto" (allocated once and
    /// kept in the data dir).
    #[arg(long)]
    broker_id: Option<silt::config::BrokerId>,
    /// Kafka listener address, HOST:PORT (port 0 picks a free port).
    #[arg(long)]
    listen: Option<String>,
    /// HOST:PORT advertised to clients.
    #[arg(long)]
    advertised_listener: Option<String>,
    /// Where produce requests are acknowledged.
    #[arg(long, value_enum)]
    durability: Option<Durability>,
    /// Data objects: file:///DIR or s3://BUCKET/PREFIX.
    #[arg(long)]
    object_store: Option<String>,
    /// Create the S3 bucket if it does not exist (LocalStack, MinIO).
    #[arg(long)]
    create_bucket: bool,
    /// Metadata: file:///DIR (the embedded store) or
    /// etcd://HOST:PORT[,HOST:PORT...][/ROOT] (default root: silt).
    #[arg(long)]
    meta: Option<String>,
    /// Admin HTTP address (Prometheus /metrics, /health), HOST:PORT.
    #[arg(long)]
    admin_listen: Option<String>,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("silt: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,foyer=warn".into());
    // A line as each span closes: at debug level, one per request (its
    // API, version, correlation id and client id, and how long it took).
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Topic { server, command } => {
                let mut cluster = server.connect().await?;
                match command {
                    TopicCommand::Create {
                        name,
                        partitions,
                        configs,
                    } => cli::topic::create(&mut cluster, &name, partitions, &configs).await,
                    TopicCommand::Alter {
                        name,
                        configs,
                        deleted,
                    } => cli::topic::alter(&mut cluster, &name, &configs, &deleted).await,
                    TopicCommand::List => cli::topic::list(&mut cluster).await,
                    TopicCommand::Describe { name } => {
                        cli::topic::describe(&mut cluster, &name).await
                    }
                    TopicCommand::Delete { name } => cli::topic::delete(&mut cluster, &name).await,
                    TopicCommand::Trim {
                        name,
                        partition,
                        offset,
                        before_timestamp,
                    } => {
                        let before = match (offset, before_timestamp) {
                            (Some(offset), _) => cli::topic::TrimBefore::Offset(offset),
                            (None, Some(ts)) => cli::topic::TrimBefore::Timestamp(ts),
                            (None, None) => unreachable!("clap requires one of them"),
                        };
                        cli::topic::trim(&mut cluster, &name, partition, before).await
                    }
                }
            }
            Command::Cluster { server, command } => match command {
                ClusterCommand::Describe => {
                    let mut cluster = server.connect().await?;
                    cli::cluster::describe(&mut cluster).await
                }
                ClusterCommand::Health { min_brokers } => {
                    let mut cluster = server.connect().await?;
                    cli::cluster::health(&mut cluster, min_brokers).await
                }
                ClusterCommand::Move {
                    meta,
                    topic,
                    partition,
                    to,
                } => cli::cluster::move_leader(&meta, &topic, partition, to).await,
            },
            Command::Group { server, command } => {
                let mut cluster = server.connect().await?;
                match command {
                    GroupCommand::List => cli::group::list(&mut cluster).await,
                    GroupCommand::Describe { group } => {
                        cli::group::describe(&mut cluster, &group).await
                    }
                    GroupCommand::ResetOffsets { group, topic, to } => {
                        let to = match (to.to_earliest, to.to_latest, to.to_offset, to.to_datetime)
                        {
                            (true, ..) => cli::group::ResetTo::Earliest,
                            (_, true, ..) => cli::group::ResetTo::Latest,
                            (_, _, Some(offset), _) => cli::group::ResetTo::Offset(offset),
                            (_, _, _, Some(time)) => {
                                cli::group::ResetTo::Time(cli::group::parse_datetime(&time)?)
                            }
                            _ => unreachable!("clap requires one reset target"),
                        };
                        cli::group::reset_offsets(&mut cluster, &group, &topic, to).await
                    }
                    GroupCommand::Delete { group } => {
                        cli::group::delete(&mut cluster, &group).await
                    }
                }
            }
            Command::Export {
                admin,
                admin_token,
                command: ExportCommand::Status { topic },
            } => {
                let admin = admin.context(
                    "give the broker's admin address: --admin HOST:PORT (its --admin-listen) or SILT_ADMIN_ADDRESS",
                )?;
                cli::export::status(&admin, admin_token.as_deref(), topic.as_deref()).await
            }
            Command::Txn { server, command } => {
                let mut cluster = server.connect().await?;
                match command {
                    TxnCommand::List => cli::txn::list(&mut cluster).await,
                    TxnCommand::Describe { transactional_id } => {
                        cli::txn::describe(&mut cluster, &transactional_id).await
                    }
                    TxnCommand::Producers { topic, partition } => {
                        cli::txn::producers(&mut cluster, &topic, partition).await
                    }
                    TxnCommand::Abort {
                        topic,
                        partition,
                        start_offset,
                    } => cli::txn::abort(&mut cluster, &topic, partition, start_offset).await,
                }
            }
            Command::Acl { server, command } => {
                let mut cluster = server.connect().await?;
                match command {
                    AclCommand::Create {
                        resource,
                        who,
                        operations,
                        resource_pattern_type,
                    } => {
                        let principals = who.each();
                        if principals.is_empty() {
                            anyhow::bail!("give --allow-principal or --deny-principal");
                        }
                        let resource = resource.required()?;
                        let mut acls = Vec::new();
                        for p in &principals {
                            for &op in &operations {
                                acls.push(acl_of(&resource, resource_pattern_type, p, op)?);
                            }
                        }
                        cli::acl::create(&mut cluster, &acls).await
                    }
                    AclCommand::List {
                        resource,
                        principal,
                        resource_pattern_type,
                    } => {
                        let pattern = match resource_pattern_type.as_str() {
                            "any" => None,
                            "match" => Some(None),
                            other => Some(Some(parse_pattern(other).map_err(anyhow::Error::msg)?)),
                        };
                        let selection = cli::acl::Selection {
                            resource: resource.given(),
                            pattern,
                            principal,
                            host: None,
                            operation: None,
                            permission: None,
                        };
                        cli::acl::list(&mut cluster, &selection).await
                    }
                    AclCommand::Delete {
                        resource,
                        who,
                        operation,
                        resource_pattern_type,
                    } => {
                        let principals = who.each();
                        let resource = resource.required()?;
                        let mut selections = Vec::new();
                        let narrowed: Vec<_> = if principals.is_empty() {
                            vec![None]
                        } else {
                            principals.into_iter().map(Some).collect()
                        };
                        for who in narrowed {
                            let (principal, permission, host) = match who {
                                Some((p, perm, host)) => {
                                    (Some(p), Some(perm), Some(host).filter(|h| h != "*"))
                                }
                                None => (None, None, None),
                            };
                            selections.push(cli::acl::Selection {
                                resource: Some(resource.clone()),
                                pattern: Some(Some(resource_pattern_type)),
                                principal,
                                host,
                                operation,
                                permission,
                            });
                        }
                        for selection in &selections {
                            cli::acl::delete(&mut cluster, selection).await?;
                        }
                        Ok(())
                    }
                }
            }
            Command::Quota { server, command } => {
                let mut cluster = server.connect().await?;
                match command {
                    QuotaCommand::Set {
                        entity,
                        producer_byte_rate,
                        consumer_byte_rate,
                        request_percentage,
                        delete,
                    } => {
                        let entity = entity.entity();
                        if entity.is_empty() {
                            anyhow::bail!(
                                "give --user, --user-default, --client-id or --client-id-default"
                            );
                        }
                        let values: Vec<(&str, f64)> = [
                            (silt::quota::PRODUCER_BYTE_RATE, producer_byte_rate),
                            (silt::quota::CONSUMER_BYTE_RATE, consumer_byte_rate),
                            (silt::quota::REQUEST_PERCENTAGE, request_percentage),
                        ]
                        .into_iter()
                        .filter_map(|(k, v)| Some((k, v?)))
                        .collect();
                        cli::quota::set(&mut cluster, &entity, &values, &delete).await
                    }
                    QuotaCommand::Describe { entity } => {
                        cli::quota::describe(&mut cluster, &entity.entity()).await
                    }
                }
            }
            Command::User { server, command } => {
                let mut cluster = server.connect().await?;
                let all = |m: Vec<_>| {
                    if m.is_empty() {
                        silt::meta::ScramMechanism::ALL.to_vec()
                    } else {
                        m
                    }
                };
                match command {
                    UserCommand::Create {
                        name,
                        mechanisms,
                        password_stdin: _,
                        iterations,
                    } => cli::user::create(&mut cluster, &name, &all(mechanisms), iterations).await,
                    UserCommand::List => cli::user::list(&mut cluster).await,
                    UserCommand::Delete { name, mechanisms } => {
                        cli::user::delete(&mut cluster, &name, &all(mechanisms)).await
                    }
                }
            }
            Command::Produce {
                server,
                topic,
                key_separator,
                partition,
            } => {
                let mut cluster = server.connect().await?;
                cli::produce::run(&mut cluster, &topic, key_separator.as_deref(), partition).await
            }
            Command::Consume {
                server,
                topic,
                from_beginning,
                partition,
                offset,
                max_messages,
                timeout_ms,
                print_key,
            } => {
                let start = match (offset, from_beginning) {
                    (Some(offset), _) => cli::consume::Start::Offset(offset),
                    (None, true) => cli::consume::Start::Earliest,
                    (None, false) => cli::consume::Start::Latest,
                };
                let options = cli::consume::Options {
                    partition,
                    start,
                    max_messages,
                    idle_timeout: timeout_ms.map(Duration::from_millis),
                    print_key,
                };
                let mut cluster = server.connect().await?;
                cli::consume::run(&mut cluster, &topic, options).await
            }
        }
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        data_dir: args.data_dir,
        broker_id: args.broker_id,
        listen: args.listen,
        advertised_listener: args.advertised_listener,
        durability: args.durability,
        object_store: args.object_store,
        create_bucket: args.create_bucket,
        meta: args.meta,
        admin_listen: args.admin_listen,
    };
    let file = args.check_config.as_deref().or(args.config.as_deref());
    let mut config = Config::load(file, std::env::vars(), overrides)?;
    silt::broker::configs::validate_topics_by_name(&mut config)?;
    if let Some(file) = &args.check_config {
        for listener in config.listeners() {
            tls_of(&listener)?;
        }
        silt::admin::tls(&config)?;
        println!("silt: {} is valid", file.display());
        return Ok(());
    }
    let mut listeners = Vec::new();
    let mut bound = Vec::new();
    for mut listener in config.listeners() {
        use silt::config::SecurityProtocol;
        let tls = tls_of(&listener)?;
        let sasl = match listener.protocol {
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => {
                Some(listener.sasl_mechanisms.as_slice().into())
            }
            SecurityProtocol::Plaintext | SecurityProtocol::Ssl => None,
        };
        let listen = &listener.listen;
        let socket = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen} (listener {})", listener.name))?;
        let local = socket.local_addr()?;
        listener.advertised.get_or_insert_with(|| local.to_string());
        bound.push((local, listener.name.clone()));
        listeners.push(silt::server::Bound {
            socket,
            name: listener.name.as_str().into(),
            tls,
            sasl,
        });
        if config.listeners.is_empty() {
            config.broker.advertised_listener = listener.advertised;
        } else if let Some(configured) = config
            .listeners
            .iter_mut()
            .find(|l| l.name == listener.name)
        {
            *configured = listener;
        }
    }
    // The first listener is the one the console and other brokers reach.
    if let Some(first) = config.listeners.first() {
        config.broker.listen = first.listen.clone();
        config.broker.advertised_listener = first.advertised.clone();
    }
    silt::admin::recorder();
    let admin_tls = silt::admin::tls(&config)?;
    let admin = match &config.broker.admin_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (admin)"))?,
        ),
        None => None,
    };
    let broker = Broker::open(config)
        .await
        .context("cannot open the broker")?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    // In a cluster: stop once the registration may have ended.
    let hold_lost = broker.hold_lost();
    tokio::spawn({
        let (lost, shutdown) = (hold_lost.clone(), shutdown.clone());
        async move {
            lost.cancelled().await;
            shutdown.cancel();
        }
    });
    let admin = admin.map(|listener| {
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        println!("silt: admin listening on {addr}");
        tokio::spawn(silt::admin::serve(
            listener,
            admin_tls,
            broker.clone(),
            shutdown.clone(),
        ))
    });
    for (i, (local, name)) in bound.iter().enumerate() {
        tracing::info!(addr = %local, listener = %name, "serving Kafka clients");
        println!("silt: listener {name} listening on {local}");
        if i == bound.len() - 1 {
            // Last: scripts wait for this line, then every listener serves.
            println!("silt: listening on {}", bound[0].0);
        }
    }
    silt::server::run(listeners, broker.clone(), shutdown).await;
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    broker.shutdown().await;
    tracing::info!("stopped");
    if hold_lost.is_cancelled() {
        anyhow::bail!("stopped serving: the registration in the etcd cluster may have ended");
    }
    Ok(())
}

/// The TLS of an SSL or SASL_SSL listener, its files loaded.
fn tls_of(
    listener: &silt::config::ListenerConfig,
) -> anyhow::Result<Option<std::sync::Arc<silt::server::tls::Tls>>> {
    use silt::config::SecurityProtocol;
    Ok(match listener.protocol {
        SecurityProtocol::Ssl | SecurityProtocol::SaslSsl => {
            Some(std::sync::Arc::new(silt::server::tls::Tls::load(listener)?))
        }
        SecurityProtocol::Plaintext | SecurityProtocol::SaslPlaintext => None,
    })
}

/// Cancels `shutdown` on SIGTERM or SIGINT.
async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
