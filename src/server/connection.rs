//! One client connection: a reader task reads frames; this task dispatches
//! them in order and writes the responses in the same order as the requests
//! (Kafka's contract), while later requests are already being processed.
//!
//! Backpressure: the reader reserves a frame's size from the connection's
//! own budget (one maximal request) and from the broker-wide request memory
//! budget before reading it, and holds both until the response is written;
//! at most `limits.max_in_flight_per_connection` requests are pending per
//! connection; a produce request waits while the log is over its unflushed
//! limit. Producers feel it as slower acks. A frame body must arrive within
//! `FRAME_BODY_TIMEOUT`, so a stalled client cannot hold budget for long.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use kafka_protocol::messages::{ApiKey, RequestKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::throttle::{self, Timed};
use crate::broker::Broker;
use crate::broker::quotas::Usage;
use crate::handlers::{self, Reply, api_versions_response};
use crate::protocol::frame::{FrameError, frame_size};
use crate::protocol::{self, DecodeError, Request};
use crate::session::Session;

/// What to send for one request, once it completes.
enum Outcome {
    /// A response, and how long the client is throttled for (its quota).
    Respond(Bytes, Duration),
    /// No response (produce with acks=0), and how long the client is
    /// throttled for.
    Silent(Duration),
    /// The response cannot be encoded: close rather than leave the client waiting.
    Close,
    /// The last response (a failed authentication): send it, then close.
    RespondAndClose(Bytes),
}

type Pending = futures::future::BoxFuture<'static, Outcome>;

/// How long the body of a frame may take to arrive once its size is read.
const FRAME_BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// A request frame and its share of the request memory budgets.
struct Frame {
    bytes: Bytes,
    permit: Reserved,
}

/// Request bytes reserved from the connection's and the broker's budgets.
struct Reserved {
    _connection: OwnedSemaphorePermit,
    _broker: OwnedSemaphorePermit,
}

/// Serves one connection, read from `reader` and answered on `writer`
/// (a TCP stream's halves, or a TLS stream's).
pub async fn serve<R, W>(
    reader: R,
    mut writer: W,
    session: Session,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let peer = session.peer;
    let max_in_flight = broker.config.limits.max_in_flight_per_connection;
    let (frames_tx, mut frames) = mpsc::channel(1);
    let limits = FrameLimits {
        max: broker.config.limits.socket_request_max_bytes as usize,
        unauthenticated: broker.config.security.sasl_max_receive_bytes as usize,
        session: session.clone(),
    };
    let reader = tokio::spawn(read_frames(
        reader,
        limits,
        broker.request_memory(),
        frames_tx,
    ));
    let _stop_reader = AbortOnDrop(reader);
    let mut in_flight: FuturesOrdered<Pending> = FuturesOrdered::new();
    // A produce request read while the log is over its unflushed limit
    // waits here, until there is room or its timeout passes; responses
    // keep flowing and shutdown is still seen.
    let mut parked: Option<Admitted> = None;
    let mut parked_until = tokio::time::Instant::now();
    let mut reading = true;
    // A request holding the connection's order is in flight: the next one
    // starts once everything in flight is done.
    let mut holding = false;
    // Closed after this long without a request (nothing in flight).
    let idle = Duration::from_millis(broker.config.limits.connections_max_idle_ms);
    let mut idle_since = tokio::time::Instant::now();
    // Over its quota, the connection reads nothing until then.
    let mut muted_until = tokio::time::Instant::now();
    let mut muted = false;
    loop {
        tokio::select! {
            biased;
            Some(outcome) = in_flight.next(), if !in_flight.is_empty() => match outcome {
                Outcome::Respond(bytes, throttle) => {
                    idle_since = tokio::time::Instant::now();
                    if !throttle.is_zero() {
                        muted_until = muted_until.max(idle_since + throttle);
                        muted = true;
                    }
                    metrics::counter!("silt_network_bytes_total", "direction" => "out").increment(bytes.len() as u64);
                    // Flushed: a TLS stream may otherwise hold the end of a
                    // response until the next one is written.
                    if let Err(e) = write_out(&mut writer, &bytes).await {
                        tracing::debug!(%peer, error = %e, "client went away");
                        return;
                    }
                }
                Outcome::Silent(throttle) => {
                    if !throttle.is_zero() {
                        muted_until = muted_until.max(tokio::time::Instant::now() + throttle);
                        muted = true;
                    }
                }
                Outcome::Close => return,
                Outcome::RespondAndClose(bytes) => {
                    let _ = write_out(&mut writer, &bytes).await;
                    tracing::info!(%peer, "closing connection: authentication failed");
                    return;
                }
            },
            () = std::future::ready(()), if holding && in_flight.is_empty() => holding = false,
            () = tokio::time::sleep_until(muted_until), if muted => muted = false,
            () = tokio::time::sleep_until(idle_since + idle), if !muted && in_flight.is_empty() && parked.is_none() => {
                tracing::info!(%peer, "closing idle connection");
                metrics::counter!("silt_connections_idle_closed_total").increment(1);
                return;
            }
            () = broker.log.wait_for_capacity(), if parked.is_some() => {
                let mut admitted = parked.take().expect("guarded by the branch condition");
                // The time it waited counts against its timeout.
                set_produce_timeout(&mut admitted.request, parked_until - tokio::time::Instant::now());
                holding = handlers::holds_order(&broker, &admitted.request);
                match start(&broker, admitted, &session, handlers::dispatch) {
                    Ok(pending) => in_flight.push_back(pending),
                    Err(e) => {
                        tracing::info!(%peer, error = %e, "closing connection");
                        return;
                    }
                }
            }
            () = tokio::time::sleep_until(parked_until), if parked.is_some() => {
                let admitted = parked.take().expect("guarded by the branch condition");
                metrics::counter!("silt_produce_timed_out_waiting_total").increment(1);
                match start(&broker, admitted, &session, |b, r, _| handlers::produce_timed_out(b, r)) {
                    Ok(pending) => in_flight.push_back(pending),
                    Err(e) => {
                        tracing::info!(%peer, error = %e, "closing connection");
                        return;
                    }
                }
            }
            frame = frames.recv(), if reading && !muted && parked.is_none() && !holding && in_flight.len() < max_in_flight => {
                idle_since = tokio::time::Instant::now();
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
                        parked_until = tokio::time::Instant::now() + produce_timeout(&admitted.request);
                        parked = Some(admitted);
                        None
                    }
                    Some(Ok(Ok(Ok(admitted)))) => {
                        holding = handlers::holds_order(&broker, &admitted.request);
                        Some(start(&broker, admitted, &session, handlers::dispatch))
                    }
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

/// Writes `bytes` and flushes them to the socket.
async fn write_out<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    writer.write_all(bytes).await?;
    writer.flush().await
}

/// Aborts the reader task when the connection ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The largest frame a connection may send.
struct FrameLimits {
    max: usize,
    /// Before the client has authenticated (SASL listeners).
    unauthenticated: usize,
    session: Session,
}

/// Reads frames until the client closes, a frame is bad or too slow, or
/// the receiver is gone. Memory for a frame is reserved before it is read.
async fn read_frames<R: AsyncRead + Unpin>(
    mut reader: R,
    limits: FrameLimits,
    memory: Arc<Semaphore>,
    frames: mpsc::Sender<Result<Frame, FrameError>>,
) {
    let own_memory = Arc::new(Semaphore::new(limits.max.max(1)));
    loop {
        let mut prefix = [0u8; 4];
        if reader.read_exact(&mut prefix).await.is_err() {
            return;
        }
        let max_frame = limits
            .session
            .frame_limit(limits.max, limits.unauthenticated);
        let size = match frame_size(prefix, max_frame) {
            Ok(size) => size,
            Err(e) => {
                let _ = frames.send(Err(e)).await;
                return;
            }
        };
        let reserve = u32::try_from(size.max(1)).expect("frame sizes fit u32");
        let (Ok(connection), Ok(broker)) = (
            own_memory.clone().acquire_many_owned(reserve).await,
            memory.clone().acquire_many_owned(reserve).await,
        ) else {
            return;
        };
        let permit = Reserved {
            _connection: connection,
            _broker: broker,
        };
        let mut buf = BytesMut::with_capacity(size);
        let mut body = (&mut reader).take(size as u64);
        let read_body = async {
            while buf.len() < size {
                if body.read_buf(&mut buf).await? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
            Ok::<(), std::io::Error>(())
        };
        match tokio::time::timeout(FRAME_BODY_TIMEOUT, read_body).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                let timed_out = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("a {size}-byte request did not arrive within {FRAME_BODY_TIMEOUT:?}"),
                );
                let _ = frames.send(Err(FrameError::Io(timed_out))).await;
                return;
            }
        }
        metrics::counter!("silt_network_bytes_total", "direction" => "in")
            .increment(4 + size as u64);
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
    permit: Reserved,
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
            Ok(Err(futures::future::ready(Outcome::Respond(
                bytes,
                Duration::ZERO,
            ))
            .boxed()))
        }
        Err(e) => Err(e),
    }
}

/// A produce request's own timeout.
fn produce_timeout(request: &Request) -> Duration {
    match &request.body {
        RequestKind::Produce(r) => Duration::from_millis(r.timeout_ms.max(0) as u64),
        _ => Duration::ZERO,
    }
}

/// Sets a produce request's timeout (after it waited for room).
fn set_produce_timeout(request: &mut Request, timeout: Duration) {
    if let RequestKind::Produce(r) = &mut request.body {
        r.timeout_ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    }
}

/// Starts a request's handler (`handle`: [`handlers::dispatch`], or a
/// refusal); the returned future yields what to send.
fn start(
    broker: &Arc<Broker>,
    admitted: Admitted,
    session: &Session,
    handle: impl FnOnce(&Arc<Broker>, Request, &Session) -> Option<Reply>,
) -> Result<Pending, DecodeError> {
    let Admitted { request, permit } = admitted;
    let Request {
        header, api_key, ..
    } = &request;
    let (api_key, version, correlation_id) =
        (*api_key, header.request_api_version, header.correlation_id);
    session
        .admits(api_key)
        .map_err(|reason| DecodeError::NotAdmitted { api_key, reason })?;
    let client_id = header.client_id.clone();
    let span = tracing::debug_span!(
        "request",
        api = ?api_key,
        version,
        correlation_id,
        client_id = client_id.as_deref().unwrap_or_default()
    );
    let produced = throttle::produced(&request.body);
    let started = std::time::Instant::now();
    let reply = span
        .in_scope(|| handle(broker, request, session))
        .ok_or(DecodeError::NotServed(api_key))?;
    let dispatched = started.elapsed();
    let (session, broker) = (session.clone(), broker.clone());
    Ok(async move {
        let _reserved = permit;
        let (body, busy) = Timed::new(reply).await;
        let api = format!("{api_key:?}");
        metrics::histogram!("silt_request_seconds", "api" => api.clone())
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("silt_requests_total", "api" => api, "version" => version.to_string())
            .increment(1);
        let usage = Usage {
            produced,
            fetched: body.as_ref().map_or(0, throttle::fetched),
            busy: dispatched + busy,
        };
        let throttle = if broker.quotas.any() {
            let user = session.principal().map(|p| p.name).unwrap_or_default();
            let client_id = client_id.as_deref().unwrap_or_default();
            broker
                .quotas
                .record(&user, client_id, usage, std::time::Instant::now())
        } else {
            Duration::ZERO
        };
        // acks=0: no answer, but the connection is throttled all the same.
        let Some(mut body) = body else {
            return Outcome::Silent(throttle);
        };
        throttle::set_throttle(&mut body, throttle);
        match protocol::encode_response(api_key, version, correlation_id, &body) {
            Ok(bytes) if session.failed() => Outcome::RespondAndClose(bytes),
            Ok(bytes) => Outcome::Respond(bytes, throttle),
            Err(e) => {
                tracing::error!(?api_key, version, error = %e, "cannot encode response");
                Outcome::Close
            }
        }
    }
    .instrument(span)
    .boxed())
}
