//! One client connection: read frames, dispatch them in order, and write the
//! responses in the same order as the requests (Kafka's contract), while
//! later requests are already being processed.
//!
//! Reading stops while `limits.max_in_flight_per_connection` responses are
//! pending, and before a produce request while the log is over its unflushed
//! limit: producers feel backpressure as slower acks.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use kafka_protocol::messages::ApiKey;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::handlers::{self, api_versions_response};
use crate::protocol::frame::FrameDecoder;
use crate::protocol::{self, DecodeError, Request};

/// What to send for one request, once it completes.
enum Outcome {
    Respond(Bytes),
    /// No response (produce with acks=0).
    Silent,
    /// The response cannot be encoded: close rather than leave the client waiting.
    Close,
}

type Pending = futures::future::BoxFuture<'static, Outcome>;

pub async fn serve(
    socket: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
) {
    let (reader, mut writer) = socket.into_split();
    let max_frame = broker.config.limits.socket_request_max_bytes as usize;
    let max_in_flight = broker.config.limits.max_in_flight_per_connection;
    let mut frames = FramedRead::new(reader, FrameDecoder::new(max_frame));
    let mut in_flight: FuturesOrdered<Pending> = FuturesOrdered::new();
    let mut reading = true;
    loop {
        tokio::select! {
            biased;
            Some(outcome) = in_flight.next(), if !in_flight.is_empty() => match outcome {
                Outcome::Respond(bytes) => {
                    if let Err(e) = writer.write_all(&bytes).await {
                        tracing::debug!(%peer, error = %e, "client went away");
                        return;
                    }
                }
                Outcome::Silent => {}
                Outcome::Close => return,
            },
            frame = frames.next(), if reading && in_flight.len() < max_in_flight => match frame {
                None => reading = false,
                Some(Err(e)) => {
                    tracing::info!(%peer, error = %e, "closing connection: bad frame");
                    return;
                }
                Some(Ok(frame)) => match admit(&broker, frame.freeze()).await {
                    Ok(pending) => in_flight.push_back(pending),
                    Err(e) => {
                        tracing::info!(%peer, error = %e, "closing connection");
                        return;
                    }
                },
            },
            () = shutdown.cancelled(), if reading => reading = false,
        }
        if !reading && in_flight.is_empty() {
            return;
        }
    }
}

/// Decodes a frame and starts its handler; errors close the connection.
async fn admit(broker: &Arc<Broker>, frame: Bytes) -> Result<Pending, DecodeError> {
    let request = match protocol::decode_request(frame) {
        Ok(request) => request,
        Err(DecodeError::UnsupportedApiVersions { correlation_id, .. }) => {
            let body = api_versions_response()
                .with_error_code(kafka_protocol::error::ResponseError::UnsupportedVersion.code());
            let bytes = protocol::unsupported_api_versions(correlation_id, body);
            return Ok(futures::future::ready(Outcome::Respond(bytes)).boxed());
        }
        Err(e) => return Err(e),
    };
    if request.api_key == ApiKey::Produce {
        broker.log.wait_for_capacity().await;
    }
    let Request {
        header, api_key, ..
    } = &request;
    let (api_key, version, correlation_id) =
        (*api_key, header.request_api_version, header.correlation_id);
    let reply = handlers::dispatch(broker, request).ok_or(DecodeError::NotServed(api_key))?;
    Ok(async move {
        let Some(body) = reply.await else {
            return Outcome::Silent;
        };
        match protocol::encode_response(api_key, version, correlation_id, &body) {
            Ok(bytes) => Outcome::Respond(bytes),
            Err(e) => {
                tracing::error!(?api_key, version, error = %e, "cannot encode response");
                Outcome::Close
            }
        }
    }
    .boxed())
}
