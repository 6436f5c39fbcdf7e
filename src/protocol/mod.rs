//! The Kafka wire format, with no I/O: frames, request decoding, response
//! encoding, the supported versions and the record batch header.
//!
//! Messages come from the `kafka-protocol` crate; this module only decides
//! what is accepted and how a response is framed.

pub mod batch;
pub mod control;
pub mod frame;
pub mod records;
pub mod versions;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, ProduceRequest, RequestHeader, RequestKind, ResponseHeader,
    ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

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
    #[error("{api_key:?} refused: {reason}")]
    NotAdmitted {
        api_key: ApiKey,
        reason: &'static str,
    },
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
    let mut header = RequestHeader::decode(&mut frame, api_key.request_header_version(version))
        .map_err(malformed)?;
    let mut body = RequestKind::decode(api_key, &mut frame, version).map_err(malformed)?;
    if let RequestKind::Produce(produce) = &mut body {
        detach_from_frame(&mut header, produce);
    }
    Ok(Request {
        header,
        api_key,
        body,
    })
}

/// Gives a produce request's strings buffers of their own (the decoder
/// slices them out of the frame, as it does the records), so that once the
/// frame is dropped a partition's records are the only reference to it and
/// the log can write offsets into them in place instead of copying.
/// Unknown tagged fields, which a produce request has no use for, go.
fn detach_from_frame(header: &mut RequestHeader, produce: &mut ProduceRequest) {
    let own = |s: &mut StrBytes| *s = StrBytes::from_string(s.to_string());
    if let Some(client_id) = &mut header.client_id {
        own(client_id);
    }
    header.unknown_tagged_fields.clear();
    if let Some(transactional_id) = &mut produce.transactional_id {
        own(&mut transactional_id.0);
    }
    produce.unknown_tagged_fields.clear();
    for topic in &mut produce.topic_data {
        own(&mut topic.name.0);
        topic.unknown_tagged_fields.clear();
        for partition in &mut topic.partition_data {
            partition.unknown_tagged_fields.clear();
        }
    }
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

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};

    use super::*;

    #[test]
    fn a_produce_requests_records_own_their_frame_once_decoded() {
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Produce as i16)
            .with_request_api_version(9)
            .with_client_id(Some(StrBytes::from_static_str("client")));
        let records = Bytes::from_static(b"one record batch, as far as decoding goes");
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_static_str("orders")))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(3)
                            .with_records(Some(records.clone())),
                    ]),
            ]);
        let mut frame = BytesMut::new();
        header
            .encode(&mut frame, ApiKey::Produce.request_header_version(9))
            .unwrap();
        request.encode(&mut frame, 9).unwrap();
        let Request { header, body, .. } = decode_request(frame.freeze()).unwrap();
        let RequestKind::Produce(mut decoded) = body else {
            panic!("a produce request");
        };
        assert_eq!(header.client_id.as_deref(), Some("client"));
        assert_eq!(&*decoded.topic_data[0].name.0, "orders");
        let decoded_records = decoded.topic_data[0].partition_data[0]
            .records
            .take()
            .unwrap();
        assert_eq!(decoded_records, records);
        assert!(
            decoded_records.is_unique(),
            "the frame is the records' alone"
        );
    }
}
