//! The library's error type and its one mapping to Kafka error codes.
//!
//! Every layer below the handlers returns [`Error`]; handlers turn it into a
//! per-partition or per-topic error code with [`Error::code`]. The mapping is
//! one exhaustive `match` so a new variant forces a decision.

use kafka_protocol::error::ResponseError;

/// Shorthand for results carrying [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong serving a request, phrased for the operator or client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("topic '{0}' already exists")]
    TopicAlreadyExists(String),
    #[error("invalid topic name: {0}")]
    InvalidTopic(String),
    #[error("invalid partition count: {0}")]
    InvalidPartitions(String),
    #[error("invalid replication factor: {0}")]
    InvalidReplicationFactor(String),
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("corrupt record batch: {0}")]
    CorruptMessage(String),
    #[error("invalid record batch: {0}")]
    InvalidRecord(String),
    #[error("record batch of {size} bytes exceeds max.message.bytes ({max})")]
    MessageTooLarge { size: usize, max: usize },
    #[error("offset {offset} is outside the log range [{start}, {end}]")]
    OffsetOutOfRange { offset: i64, start: i64, end: i64 },
    #[error("the request's leader epoch is older than the partition's")]
    FencedLeaderEpoch,
    #[error("the request's leader epoch is newer than the partition's")]
    UnknownLeaderEpoch,
    #[error("producer {producer_id}: expected sequence {expected}, got {got}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    #[error("producer {producer_id}: epoch {got} is older than the current {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        got: i16,
        current: i16,
    },
    #[error("producer {0}: {1}")]
    InvalidTxnState(i64, &'static str),
    #[error("not acknowledged within the request timeout")]
    RequestTimedOut,
    #[error("the broker is shutting down")]
    ShuttingDown,
    #[error("this broker does not lead the partition")]
    NotLeaderOrFollower,
    #[error("the write-ahead log failed: {0}")]
    WalFailed(String),
    #[error("metadata store: {0}")]
    Meta(String),
    #[error("this broker is not the controller")]
    NotController,
    #[error("this broker is no longer registered in the cluster: its lease ended")]
    LeaseLost,
    #[error("this broker no longer coordinates group '{0}'")]
    NotCoordinator(String),
    #[error("metadata at {key} does not decode: {reason}")]
    CorruptMetadata { key: String, reason: String },
    #[error("I/O on {path}: {source}")]
    IoAt {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The Kafka error a client receives for this error.
    pub fn response_error(&self) -> ResponseError {
        match self {
            Error::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
            Error::TopicAlreadyExists(_) => ResponseError::TopicAlreadyExists,
            Error::InvalidTopic(_) => ResponseError::InvalidTopicException,
            Error::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            Error::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            Error::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            Error::InvalidConfig(_) => ResponseError::InvalidConfig,
            Error::InvalidRequest(_) => ResponseError::InvalidRequest,
            Error::CorruptMessage(_) => ResponseError::CorruptMessage,
            Error::InvalidRecord(_) => ResponseError::InvalidRecord,
            Error::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
            Error::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            Error::FencedLeaderEpoch => ResponseError::FencedLeaderEpoch,
            Error::UnknownLeaderEpoch => ResponseError::UnknownLeaderEpoch,
            Error::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
            Error::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
            Error::InvalidTxnState(..) => ResponseError::InvalidTxnState,
            Error::RequestTimedOut => ResponseError::RequestTimedOut,
            Error::ShuttingDown | Error::NotLeaderOrFollower | Error::LeaseLost => {
                ResponseError::NotLeaderOrFollower
            }
            Error::NotController => ResponseError::NotController,
            Error::NotCoordinator(_) => ResponseError::NotCoordinator,
            Error::WalFailed(_)
            | Error::Meta(_)
            | Error::CorruptMetadata { .. }
            | Error::ObjectStore(_)
            | Error::Io(_)
            | Error::IoAt { .. } => ResponseError::KafkaStorageError,
        }
    }

    /// The numeric Kafka error code.
    pub fn code(&self) -> i16 {
        self.response_error().code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_errors_tell_clients_where_to_go() {
        // A client told NOT_COORDINATOR or NOT_LEADER_OR_FOLLOWER looks up
        // the coordinator or leader again; a lost lease means this broker
        // stops serving its partitions.
        assert_eq!(Error::NotCoordinator("g".into()).code(), 16);
        assert_eq!(Error::LeaseLost.code(), 6);
        assert_eq!(Error::NotController.code(), 41);
        let corrupt = Error::CorruptMetadata {
            key: "silt/topics/t".into(),
            reason: "expected value".into(),
        };
        assert_eq!(corrupt.code(), 56);
        assert!(corrupt.to_string().contains("silt/topics/t"), "{corrupt}");
        let io = Error::IoAt {
            path: "/var/lib/silt/meta/journal".into(),
            source: std::io::Error::other("disk gone"),
        };
        assert!(
            io.to_string().contains("/var/lib/silt/meta/journal"),
            "{io}"
        );
    }
}
