//! The Kafka wire format, with no I/O: frames, request decoding, response
//! encoding, the supported versions and the record batch header.
//!
//! Messages come from the `kafka-protocol` crate; this module only decides
//! what is accepted and how a response is framed.

pub mod batch;
pub mod frame;
pub mod versions;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};

/// A decoded request.
#[derive(Debug)]
pub struct Request {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub body: RequestKind,
}

impl Request {
    /// The request's API version.
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }
}

/// Why a frame cannot be served. Only `UnsupportedApiVersions` gets a
/// response; the others close the connection, as Kafka does.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("frame too short for a request header")]
    Truncated,
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("{0:?} is not served by this broker")]
    NotServed(ApiKey),
    #[error("{api:?} v{version} is not supported")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("ApiVersions v{version} is not supported")]
    UnsupportedApiVersions { version: i16, correlation_id: i32 },
    #[error("malformed {api:?} request: {reason}")]
    Malformed { api: ApiKey, reason: String },
}

/// Decodes one request frame (without its size prefix).
pub fn decode_request(mut frame: Bytes) -> Result<Request, DecodeError> {
    if frame.len() < 8 {
        return Err(DecodeError::Truncated);
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api_key = ApiKey::try_from(raw_key).map_err(|_| DecodeError::UnknownApiKey(raw_key))?;
    let (min, max) = versions::supported(api_key).ok_or(DecodeError::NotServed(api_key))?;
    if version < min || version > max {
        return Err(if api_key == ApiKey::ApiVersions {
            DecodeError::UnsupportedApiVersions {
                version,
                correlation_id,
            }
        } else {
            DecodeError::UnsupportedVersion {
                api: api_key,
                version,
            }
        });
    }
    let malformed = |e: anyhow::Error| DecodeError::Malformed {
        api: api_key,
        reason: e.to_string(),
    };
    let header = RequestHeader::decode(&mut frame, api_key.request_header_version(version))
        .map_err(malformed)?;
    let body = RequestKind::decode(api_key, &mut frame, version).map_err(malformed)?;
    Ok(Request {
        header,
        api_key,
        body,
    })
}

/// Encodes a response with its size prefix, ready for the socket.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> anyhow::Result<Bytes> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    // Fetch responses carry megabytes of records: size them once up front.
    let capacity = match body {
        ResponseKind::Fetch(fetch) => fetch.compute_size(version)? + 64,
        _ => 256,
    };
    let mut buf = BytesMut::with_capacity(capacity);
    buf.put_i32(0);
    header.encode(&mut buf, api_key.response_header_version(version))?;
    body.encode(&mut buf, version)?;
    let size = i32::try_from(buf.len() - 4)?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// Kafka's answer to an ApiVersions version it does not know: error 35 in a
/// v0 body listing the supported ranges, so the client can retry lower.
pub fn unsupported_api_versions(correlation_id: i32, body: ApiVersionsResponse) -> Bytes {
    encode_response(
        ApiKey::ApiVersions,
        0,
        correlation_id,
        &ResponseKind::ApiVersions(body),
    )
    .expect("a v0 ApiVersions response always encodes")
}
