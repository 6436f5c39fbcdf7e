//! A small Kafka client for the console and admin commands: one connection,
//! one request at a time, versions negotiated with ApiVersions, over TLS
//! and with a SASL login where the listener asks for them
//! ([`security`]). It speaks to any Kafka-compatible broker, not only
//! Silt.

pub mod security;

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::SaslMechanism;
use crate::meta::ScramMechanism;
use crate::security::scram::ScramClient;
use security::{ClientSecurity, Login};

/// Responses larger than this are refused (a broker sending more is broken).
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong talking to a broker.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("connection to the broker failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the broker does not support {api:?} at a version this tool speaks")]
    Unsupported { api: ApiKey },
    #[error("unexpected response from the broker: {0}")]
    Protocol(String),
    #[error("authentication failed: {0}")]
    Authentication(String),
}

/// A connection's byte stream: TCP, or TLS over TCP.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

/// One connection to a broker.
pub struct Client {
    stream: Box<dyn Stream>,
    correlation_id: i32,
    versions: HashMap<i16, (i16, i16)>,
}

impl Client {
    /// Connects to `addr` (HOST:PORT) and negotiates API versions.
    pub async fn connect(addr: &str) -> Result<Client, ClientError> {
        Client::connect_with(addr, &ClientSecurity::default()).await
    }

    /// Connects to `addr` as `security` says (TLS, a SASL login) and
    /// negotiates API versions.
    pub async fn connect_with(
        addr: &str,
        security: &ClientSecurity,
    ) -> Result<Client, ClientError> {
        let connect_error = |reason: String| ClientError::Connect {
            addr: addr.to_string(),
            reason,
        };
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_error("timed out".into()))?
            .map_err(|e| connect_error(e.to_string()))?;
        tcp.set_nodelay(true)?;
        let stream: Box<dyn Stream> = if security.tls() {
            let connector = security
                .connector()
                .map_err(|e| connect_error(e.to_string()))?;
            let name = security::server_name(addr).map_err(|e| connect_error(e.to_string()))?;
            let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
                .await
                .map_err(|_| connect_error("TLS handshake timed out".into()))?
                .map_err(|e| connect_error(format!("TLS handshake failed: {e}")))?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let mut client = Client {
            stream,
            correlation_id: 0,
            versions: HashMap::new(),
        };
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("silt-cli"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut response: ApiVersionsResponse = client.send(request, 3).await?;
        if response.error_code != 0 {
            response = client.send(ApiVersionsRequest::default(), 0).await?;
        }
        if response.error_code != 0 {
            return Err(ClientError::Protocol(format!(
                "ApiVersions failed with error {}",
                response.error_code
            )));
        }
        client.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        if let Some(login) = &security.login {
            client.authenticate(login).await?;
        }
        Ok(client)
    }

    /// Logs in with SaslHandshake and SaslAuthenticate.
    async fn authenticate(&mut self, login: &Login) -> Result<(), ClientError> {
        use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
        let name = login.mechanism.name();
        let handshake =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(name));
        let response = self.call(handshake, 1).await?;
        if response.error_code != 0 {
            let offered: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(ClientError::Authentication(format!(
                "the listener does not offer {name} (it offers {})",
                offered.join(", ")
            )));
        }
        let scram = match login.mechanism {
            SaslMechanism::Plain => None,
            SaslMechanism::ScramSha256 => Some(ScramMechanism::Sha256),
            SaslMechanism::ScramSha512 => Some(ScramMechanism::Sha512),
            SaslMechanism::OAuthBearer => {
                return Err(ClientError::Authentication(
                    "the silt commands log in with PLAIN or SCRAM, not OAUTHBEARER".into(),
                ));
            }
        };
        let mut step = async |token: Vec<u8>| -> Result<Bytes, ClientError> {
            let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
            let response = self.call(request, 2).await?;
            if response.error_code != 0 {
                let message = response.error_message.as_deref().unwrap_or_default();
                return Err(ClientError::Authentication(message.to_string()));
            }
            Ok(response.auth_bytes)
        };
        match scram {
            None => {
                let token = format!("\0{}\0{}", login.username, login.password);
                step(token.into_bytes()).await?;
            }
            Some(mechanism) => {
                let client = ScramClient::new(mechanism, &login.username, &login.password);
                let server_first = step(client.first()).await?;
                let (client_final, expected) = client
                    .answer(&server_first)
                    .map_err(|e| ClientError::Authentication(e.to_string()))?;
                let server_final = step(client_final).await?;
                if server_final.as_ref() != expected.as_slice() {
                    return Err(ClientError::Authentication(
                        "the broker did not prove it knows the credential".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Sends `request` at the highest version both sides support, up to
    /// `max_version`, and returns the decoded response.
    pub async fn call<R: Request>(
        &mut self,
        request: R,
        max_version: i16,
    ) -> Result<R::Response, ClientError> {
        let api = ApiKey::try_from(R::KEY)
            .map_err(|_| ClientError::Protocol("unknown API key".into()))?;
        let (min, max) = self
            .versions
            .get(&R::KEY)
            .copied()
            .ok_or(ClientError::Unsupported { api })?;
        let version = max.min(max_version);
        if version < min.max(R::VERSIONS.min) {
            return Err(ClientError::Unsupported { api });
        }
        self.send(request, version).await
    }

    async fn send<R: Request>(
        &mut self,
        request: R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("silt-cli")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        let encode = |buf: &mut BytesMut| -> anyhow::Result<()> {
            header.encode(buf, R::header_version(version))?;
            request.encode(buf, version)
        };
        encode(&mut buf)
            .map_err(|e| ClientError::Protocol(format!("cannot encode request: {e}")))?;
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&buf).await?;

        let size = self.stream.read_i32().await?;
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= MAX_RESPONSE_BYTES)
            .ok_or_else(|| ClientError::Protocol(format!("response size {size}")))?;
        let mut frame = vec![0; size];
        self.stream.read_exact(&mut frame).await?;
        let mut frame = Bytes::from(frame);
        let decode_error = |e: anyhow::Error| ClientError::Protocol(e.to_string());
        let response_header =
            ResponseHeader::decode(&mut frame, R::Response::header_version(version))
                .map_err(decode_error)?;
        if response_header.correlation_id != self.correlation_id {
            return Err(ClientError::Protocol("correlation id mismatch".into()));
        }
        R::Response::decode(&mut frame, version).map_err(decode_error)
    }
}

/// A record to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub key: Option<Bytes>,
    pub value: Bytes,
}

/// An idempotent producer's stamp on a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStamp {
    pub id: i64,
    pub epoch: i16,
    /// Sequence number of the batch's first record.
    pub base_sequence: i32,
}

/// Encodes messages as one uncompressed v2 record batch without a
/// producer id (offsets are assigned by the broker).
pub fn encode_batch(messages: &[Message], timestamp_ms: i64) -> Bytes {
    encode(messages, timestamp_ms, None)
}

/// Encodes messages as one uncompressed v2 record batch of an idempotent
/// producer.
pub fn encode_idempotent_batch(
    messages: &[Message],
    timestamp_ms: i64,
    producer: ProducerStamp,
) -> Bytes {
    encode(messages, timestamp_ms, Some(producer))
}

fn encode(messages: &[Message], timestamp_ms: i64, producer: Option<ProducerStamp>) -> Bytes {
    // The encoder starts a new batch whenever `offset - sequence` changes,
    // so sequences always follow offsets; without a producer the header's
    // base sequence is reset to -1 afterwards, with the CRC recomputed.
    let stamp = producer.unwrap_or(ProducerStamp {
        id: -1,
        epoch: -1,
        base_sequence: 0,
    });
    let records: Vec<Record> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: stamp.id,
            producer_epoch: stamp.epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: stamp.base_sequence + i as i32,
            timestamp: timestamp_ms,
            key: m.key.clone(),
            value: Some(m.value.clone()),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options)
        .expect("encoding to memory cannot fail");
    if producer.is_none() {
        const BASE_SEQUENCE_AT: usize = 53;
        const CRC_AT: usize = 17;
        const ATTRIBUTES_AT: usize = 21;
        buf[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&(-1i32).to_be_bytes());
        let crc = crc32c::crc32c(&buf[ATTRIBUTES_AT..]);
        buf[CRC_AT..ATTRIBUTES_AT].copy_from_slice(&crc.to_be_bytes());
    }
    buf.freeze()
}

/// The partition Kafka's default partitioner picks for `key`
/// (murmur2, as the Java client and librdkafka's `murmur2_random` do).
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) % partitions as u32) as i32
}

/// Kafka's murmur2 hash (seed 0x9747b28c).
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = (&chunk[..]).get_u32_le();
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::split_and_validate;

    #[test]
    fn batches_are_single_valid_and_without_producer() {
        let messages: Vec<Message> = (0..5)
            .map(|i| Message {
                key: (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
                value: Bytes::from(format!("v{i}")),
            })
            .collect();
        let batch = encode_batch(&messages, 1234);
        let batches = split_and_validate(&batch).unwrap();
        assert_eq!(batches.len(), 1);
        let header = batches[0].0;
        assert_eq!(
            (
                header.record_count,
                header.base_sequence,
                header.producer_id
            ),
            (5, -1, -1)
        );
        let decoded =
            kafka_protocol::records::RecordBatchDecoder::decode(&mut batch.clone()).unwrap();
        assert_eq!(decoded.records[3].value.as_deref(), Some(&b"v3"[..]));
        assert_eq!(decoded.records[2].key.as_deref(), Some(&b"k2"[..]));
    }

    #[test]
    fn murmur2_matches_kafka() {
        // Reference values of Kafka's Utils.murmur2, as other ports test them.
        let cases: [(&[u8], i32); 5] = [
            (b"1", -1993445489),
            (b"12", 126087238),
            (b"123", -267702483),
            (b"1234", -1614185708),
            (b"12345", -1188365604),
        ];
        for (key, expected) in cases {
            assert_eq!(
                murmur2(key) as i32,
                expected,
                "{}",
                String::from_utf8_lossy(key)
            );
        }
    }
}
