//! One client connection: a reader task reads frames; this task dispatches
//! them in order and writes the responses in the same order as the requests
//! (Kafka's contract), while later requests are already being processed.
//!
//! Backpressure: the reader reserves a frame's size from the broker-wide
//! request memory budget before reading it, and holds that until the
//! response is written; at most `limits.max_in_flight_per_connection`
//! requests are pending per connection; a produce request waits while the
//! log is over its unflushed limit. Producers feel it as slower acks.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::handlers::{self, api_versions_response};
use crate::protocol::frame::{FrameError, frame_size};
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

/// A request frame and its share of the request memory budget.
struct Frame {
    bytes: Bytes,
    permit: OwnedSemaphorePermit,
}

pub async fn serve(
    socket: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
) {
    let (reader, mut writer) = socket.into_split();
    let max_in_flight = broker.config.limits.max_in_flight_per_connection;
    let (frames_tx, mut frames) = mpsc::channel(1);
    let max_frame = broker.config.limits.socket_request_max_bytes as usize;
    let reader = tokio::spawn(read_frames(
        reader,
        max_frame,
        broker.request_memory(),
        frames_tx,
    ));
    let _stop_reader = AbortOnDrop(reader);
    let mut in_flight: FuturesOrdered<Pending> = FuturesOrdered::new();
    // A produce request read while the log is over its unflushed limit
    // waits here; responses keep flowing and shutdown is still seen.
    let mut parked: Option<Admitted> = None;
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
            () = broker.log.wait_for_capacity(), if parked.is_some() => {
                let admitted = parked.take().expect("guarded by the branch condition");
                match start(&broker, admitted) {
                    Ok(pending) => in_flight.push_back(pending),
                    Err(e) => {
                        tracing::info!(%peer, error = %e, "closing connection");
                        return;
                    }
                }
            }
            frame = frames.recv(), if reading && parked.is_none() && in_flight.len() < max_in_flight => {
                let started = match frame.map(|f| f.map(decode)) {
                    None => {
                        reading = false;
                        None
                    }
                    Some(Err(e)) => {
                        tracing::info!(%peer, error = %e, "closing connection: bad frame");
                        return;
                    }
                    Some(Ok(Ok(Ok(admitted))))
                        if admitted.request.api_key == ApiKey::Produce && !broker.log.has_capacity() =>
                    {
                        parked = Some(admitted);
                        None
                    }
                    Some(Ok(Ok(Ok(admitted)))) => Some(start(&broker, admitted)),
                    Some(Ok(Ok(Err(answer)))) => Some(Ok(answer)),
                    Some(Ok(Err(e))) => Some(Err(e)),
                };
                match started {
                    Some(Ok(pending)) => in_flight.push_back(pending),
                    Some(Err(e)) => {
                        tracing::info!(%peer, error = %e, "closing connection");
                        return;
                    }
                    None => {}
                }
            }
            () = shutdown.cancelled(), if reading => reading = false,
        }
        if !reading && in_flight.is_empty() {
            // A produce still parked here was never answered: the client
            // retries it after reconnecting.
            return;
        }
    }
}

/// Aborts the reader task when the connection ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads frames until the client closes, a frame is bad, or the receiver
/// is gone. Memory for a frame is reserved before it is allocated.
async fn read_frames(
    mut reader: OwnedReadHalf,
    max_frame: usize,
    memory: Arc<Semaphore>,
    frames: mpsc::Sender<Result<Frame, FrameError>>,
) {
    loop {
        let mut prefix = [0u8; 4];
        if reader.read_exact(&mut prefix).await.is_err() {
            return;
        }
        let size = match frame_size(prefix, max_frame) {
            Ok(size) => size,
            Err(e) => {
                let _ = frames.send(Err(e)).await;
                return;
            }
        };
        let reserve = u32::try_from(size.max(1)).expect("frame sizes fit u32");
        let Ok(permit) = memory.clone().acquire_many_owned(reserve).await else {
            return;
        };
        let mut buf = BytesMut::with_capacity(size);
        let mut body = (&mut reader).take(size as u64);
        while buf.len() < size {
            match body.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let frame = Frame {
            bytes: buf.freeze(),
            permit,
        };
        if frames.send(Ok(frame)).await.is_err() {
            return;
        }
    }
}

/// A decoded request, waiting to be started.
struct Admitted {
    request: Request,
    permit: OwnedSemaphorePermit,
}

/// Decodes a frame: a request to start, or an immediate answer (an
/// unsupported ApiVersions version); errors close the connection.
fn decode(frame: Frame) -> Result<Result<Admitted, Pending>, DecodeError> {
    let Frame { bytes, permit } = frame;
    match protocol::decode_request(bytes) {
        Ok(request) => Ok(Ok(Admitted { request, permit })),
        Err(DecodeError::UnsupportedApiVersions { correlation_id, .. }) => {
            let body = api_versions_response()
                .with_error_code(kafka_protocol::error::ResponseError::UnsupportedVersion.code());
            let bytes = protocol::unsupported_api_versions(correlation_id, body);
            Ok(Err(futures::future::ready(Outcome::Respond(bytes)).boxed()))
        }
        Err(e) => Err(e),
    }
}

/// Starts a request's handler; the returned future yields what to send.
fn start(broker: &Arc<Broker>, admitted: Admitted) -> Result<Pending, DecodeError> {
    let Admitted { request, permit } = admitted;
    let Request {
        header, api_key, ..
    } = &request;
    let (api_key, version, correlation_id) =
        (*api_key, header.request_api_version, header.correlation_id);
    let reply = handlers::dispatch(broker, request).ok_or(DecodeError::NotServed(api_key))?;
    Ok(async move {
        let _reserved = permit;
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
