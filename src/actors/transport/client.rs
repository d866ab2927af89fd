//! The client side of the QUIC transport: one cached connection per
//! (peer, address), retries with backoff for requests that may be resent,
//! and errors that name the peer, the address and what to do; `probe`
//! checks that a peer can be reached without sending a request. Input:
//! request bytes from the actors and the CLI; output: the peer's reply
//! bytes, and open connections and byte counts to the node's
//! `TransportMetrics`. Never logs payloads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use quinn::{ConnectionError, ReadError, ReadToEndError, WriteError};
use tracing::{debug, warn};

use super::server::peer_name;
use super::*;
use crate::actors::error::WHAT_CONNECT;
use crate::actors::metrics::{Side, TransportMetrics};

/// A pinned peer's client config and the cached connection to it.
struct PeerSlot {
    pin: PinnedPeer,
    config: quinn::ClientConfig,
    server_name: String,
    state: tokio::sync::Mutex<SlotState>,
    /// Failed connection attempts so far; lets waiters notice a failure
    /// that happened while they waited for `state`.
    failures: AtomicU64,
}

#[derive(Default)]
struct SlotState {
    connection: Option<quinn::Connection>,
    last_failure: Option<String>,
}

struct ClientInner {
    endpoint: quinn::Endpoint,
    identity: Identity,
    peers: Mutex<Vec<PinnedPeer>>,
    max_frame_bytes: usize,
    request_timeout: Duration,
    connect_timeout: Duration,
    retries: u32,
    retry_backoff: Duration,
    slots: Mutex<HashMap<(String, SocketAddr), Arc<PeerSlot>>>,
    metrics: TransportMetrics,
}

/// Request client with one cached connection per (peer, address); a closed
/// connection is replaced on the next request. Cheap to clone; clones share
/// the cache, so requests can run concurrently (e.g. `join_all` over relays).
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

/// Where in an attempt a connection error happened.
enum Phase {
    Connecting,
    Request,
}

impl Client {
    pub fn new(endpoint: quinn::Endpoint, cfg: &TransportConfig) -> Self {
        Client::measured(endpoint, cfg, TransportMetrics::default())
    }

    /// A client that counts its connections and bytes into `metrics`.
    pub fn measured(endpoint: quinn::Endpoint, cfg: &TransportConfig, metrics: TransportMetrics) -> Self {
        Client {
            inner: Arc::new(ClientInner {
                endpoint,
                identity: cfg.identity.clone(),
                peers: Mutex::new(cfg.peers.clone()),
                max_frame_bytes: cfg.max_frame_bytes,
                request_timeout: cfg.request_timeout,
                connect_timeout: cfg.connect_timeout,
                retries: cfg.retries,
                retry_backoff: cfg.retry_backoff,
                slots: Mutex::new(HashMap::new()),
                metrics,
            }),
        }
    }

    /// Pins another peer's certificate (a committee member that joined
    /// while the node runs); replaces an earlier pin under the same name.
    pub fn pin(&self, peer: PinnedPeer) {
        if let Ok(mut peers) = self.inner.peers.lock() {
            peers.retain(|p| p.name != peer.name);
            peers.push(peer);
        }
    }

    /// The local endpoint's address.
    pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
        Ok(self.inner.endpoint.local_addr()?)
    }

    /// Sends one request to the pinned peer `peer_name` at `addr` and returns
    /// the reply bytes. Connecting and the request are each bounded by the
    /// configured timeouts. Transient failures (peer unreachable, connect
    /// timed out, connection lost) are retried up to `retries` times with
    /// exponential backoff on a fresh connection. A lost connection may have
    /// delivered the request already, so handlers must tolerate repeats.
    /// A connection the peer refused as busy (`TransportError::Busy`:
    /// nothing on it was read) is tried again for as long as the request
    /// timeout, not counted as a retry. A timed-out reply is not retried.
    pub async fn request(&self, peer_name: &str, addr: SocketAddr, payload: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.request_with(peer_name, addr, payload, true).await
    }

    /// Like `request`, for requests that must not run twice (a query, a
    /// registration that charges a budget): only failures before the request
    /// could be sent are retried; a connection lost afterwards is an error.
    pub async fn request_at_most_once(
        &self,
        peer_name: &str,
        addr: SocketAddr,
        payload: &[u8],
    ) -> Result<Vec<u8>, TransportError> {
        self.request_with(peer_name, addr, payload, false).await
    }

    async fn request_with(
        &self,
        peer_name: &str,
        addr: SocketAddr,
        payload: &[u8],
        retry_lost: bool,
    ) -> Result<Vec<u8>, TransportError> {
        let inner = &self.inner;
        if payload.len() > inner.max_frame_bytes {
            return Err(TransportError::FrameTooLarge {
                peer: peer_name.to_string(),
                addr,
                what: "request",
                limit: inner.max_frame_bytes,
            });
        }
        let slot = self.slot(peer_name, addr)?;
        let mut attempt: u32 = 0;
        let (started, mut busy_waits) = (tokio::time::Instant::now(), 0u32);
        loop {
            let result = self.attempt(&slot, peer_name, addr, payload).await;
            match result {
                Ok(reply) => return Ok(reply),
                // the peer refused the connection before reading anything:
                // wait for one of this node's other requests to end, as long
                // as a request may take, not counted against `retries`
                Err(err @ TransportError::Busy { .. }) => {
                    let left = inner.request_timeout.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        return Err(err);
                    }
                    busy_waits = busy_waits.saturating_add(1);
                    let delay = busy_delay(inner.retry_backoff, busy_waits).min(left);
                    debug!(peer = peer_name, %addr, busy_waits, delay = ?delay, "peer busy, waiting to send again");
                    tokio::time::sleep(delay).await;
                }
                Err(err) if err.is_lost() && !retry_lost => return Err(err),
                Err(err) if err.is_transient() && attempt < inner.retries => {
                    let delay = inner
                        .retry_backoff
                        .checked_mul(2u32.saturating_pow(attempt))
                        .unwrap_or(MAX_BACKOFF)
                        .min(MAX_BACKOFF.max(inner.retry_backoff));
                    attempt += 1;
                    warn!(peer = peer_name, %addr, attempt, delay = ?delay, cause = %err, "retrying request");
                    tokio::time::sleep(delay).await;
                }
                Err(err) if attempt > 0 && err.is_transient() => {
                    return Err(TransportError::Unreachable {
                        peer: peer_name.to_string(),
                        addr,
                        attempts: attempt.saturating_add(1),
                        last: Box::new(err),
                    })
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Whether the pinned peer `peer_name` at `addr` can be reached: the
    /// cached connection while it is open, else one connection attempt
    /// (handshake included, bounded by the connect timeout, not retried).
    /// Sends no request, so the peer's handler never runs.
    pub async fn probe(&self, peer_name: &str, addr: SocketAddr) -> Result<(), TransportError> {
        let slot = self.slot(peer_name, addr)?;
        self.connection(&slot, peer_name, addr).await.map(|_| ())
    }

    fn slot(&self, peer_name: &str, addr: SocketAddr) -> Result<Arc<PeerSlot>, TransportError> {
        let inner = &self.inner;
        let key = (peer_name.to_string(), addr);
        let mut slots = inner.slots.lock().map_err(|_| TransportError::Closed)?;
        if let Some(slot) = slots.get(&key) {
            return Ok(Arc::clone(slot));
        }
        let peers = inner.peers.lock().map_err(|_| TransportError::Closed)?;
        let peer = peers
            .iter()
            .find(|p| p.name == peer_name)
            .cloned()
            .ok_or_else(|| TransportError::UnknownPeer { name: peer_name.to_string() })?;
        drop(peers);
        let peer = &peer;
        let slot = Arc::new(PeerSlot {
            config: client_config(&inner.identity, peer)?,
            pin: peer.clone(),
            server_name: tls::server_name_for(peer_name),
            state: tokio::sync::Mutex::new(SlotState::default()),
            failures: AtomicU64::new(0),
        });
        slots.insert(key, Arc::clone(&slot));
        Ok(slot)
    }

    async fn attempt(
        &self,
        slot: &PeerSlot,
        peer: &str,
        addr: SocketAddr,
        payload: &[u8],
    ) -> Result<Vec<u8>, TransportError> {
        let inner = &self.inner;
        let connection = self.connection(slot, peer, addr).await?;
        let exchange = exchange(&connection, payload, inner.max_frame_bytes);
        match tokio::time::timeout(inner.request_timeout, exchange).await {
            Ok(Ok(reply)) => {
                inner.metrics.request_bytes(Side::Client, payload.len());
                inner.metrics.reply_bytes(Side::Client, reply.len());
                Ok(reply)
            }
            Ok(Err(failure)) => {
                let err = failure.into_error(peer, addr, inner.max_frame_bytes);
                if err.is_transient() {
                    // Mark the connection dead so the retry reconnects.
                    connection.close(VarInt::from_u32(CODE_SHUTDOWN), b"connection lost");
                }
                Err(err)
            }
            Err(_) => Err(TransportError::Timeout {
                peer: peer.to_string(),
                addr,
                what: "request",
                after: inner.request_timeout,
            }),
        }
    }

    /// The cached live connection, or a new one. Concurrent callers for the
    /// same peer wait for one connection attempt instead of racing; if that
    /// attempt fails, the waiters fail at once with its reason instead of
    /// each waiting out their own connect timeout in turn.
    async fn connection(
        &self,
        slot: &PeerSlot,
        peer: &str,
        addr: SocketAddr,
    ) -> Result<quinn::Connection, TransportError> {
        let failures_seen = slot.failures.load(Ordering::Acquire);
        let mut state = slot.state.lock().await;
        if let Some(connection) = state.connection.as_ref() {
            if connection.close_reason().is_none() {
                return Ok(connection.clone());
            }
            debug!(peer, %addr, "cached connection closed, reconnecting");
        }
        state.connection = None;
        if slot.failures.load(Ordering::Acquire) != failures_seen {
            if let Some(reason) = state.last_failure.as_ref() {
                return Err(TransportError::Connect {
                    peer: peer.to_string(),
                    addr,
                    reason: format!("a concurrent connection attempt just failed: {reason}"),
                });
            }
        }
        match self.connect(slot, peer, addr).await {
            Ok(connection) => {
                debug!(peer, %addr, "connected");
                state.connection = Some(connection.clone());
                state.last_failure = None;
                Ok(connection)
            }
            Err(err) => {
                state.last_failure = Some(err.to_string());
                slot.failures.fetch_add(1, Ordering::AcqRel);
                Err(err)
            }
        }
    }

    /// One connection attempt (handshake included), bounded by the connect
    /// timeout.
    async fn connect(
        &self,
        slot: &PeerSlot,
        peer: &str,
        addr: SocketAddr,
    ) -> Result<quinn::Connection, TransportError> {
        let inner = &self.inner;
        let connecting =
            inner.endpoint.connect_with(slot.config.clone(), addr, &slot.server_name).map_err(|err| match err {
                quinn::ConnectError::EndpointStopping => TransportError::Closed,
                other => TransportError::Connect { peer: peer.to_string(), addr, reason: other.to_string() },
            })?;
        let connection = match tokio::time::timeout(inner.connect_timeout, connecting).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(err)) => {
                return Err(connection_error(err, Phase::Connecting, peer, addr));
            }
            Err(_) => {
                return Err(TransportError::Timeout {
                    peer: peer.to_string(),
                    addr,
                    what: WHAT_CONNECT,
                    after: inner.connect_timeout,
                })
            }
        };
        // The verifier accepts only this peer's pin; check the mapping anyway.
        if peer_name(&connection, std::slice::from_ref(&slot.pin)).as_deref() != Some(peer) {
            connection.close(VarInt::from_u32(CODE_BAD_STREAM), b"unexpected certificate");
            return Err(TransportError::Handshake {
                peer: peer.to_string(),
                addr,
                reason: "the peer presented a certificate other than its pin".to_string(),
            });
        }
        // counted while open: a task waits for the connection to close
        let (metrics, open) = (inner.metrics.clone(), connection.clone());
        metrics.connection_opened(Side::Client);
        tokio::spawn(async move {
            open.closed().await;
            metrics.connection_closed(Side::Client);
        });
        Ok(connection)
    }
}

/// A failed stream exchange, classified later with the peer's name.
enum Failure {
    Connection(ConnectionError, Phase),
    Write(WriteError),
    Read(ReadToEndError),
}

impl Failure {
    fn into_error(self, peer: &str, addr: SocketAddr, limit: usize) -> TransportError {
        let peer = peer.to_string();
        let refused = |reason: String| TransportError::Refused { peer: peer.clone(), addr, reason };
        match self {
            Failure::Connection(err, phase) => connection_error(err, phase, &peer, addr),
            Failure::Write(WriteError::Stopped(code)) | Failure::Read(ReadToEndError::Read(ReadError::Reset(code))) => {
                refused(stream_code_reason(code))
            }
            Failure::Write(WriteError::ConnectionLost(err))
            | Failure::Read(ReadToEndError::Read(ReadError::ConnectionLost(err))) => {
                connection_error(err, Phase::Request, &peer, addr)
            }
            Failure::Write(err) => refused(format!("sending failed: {err}")),
            Failure::Read(ReadToEndError::TooLong) => {
                TransportError::FrameTooLarge { peer, addr, what: "reply", limit }
            }
            Failure::Read(ReadToEndError::Read(err)) => refused(format!("reading the reply failed: {err}")),
        }
    }
}

/// The wait before the n-th new connection to a busy peer: the backoff,
/// doubled each time up to 1 s, plus up to half of it at random (so that
/// many waiting clients do not come back at once).
fn busy_delay(backoff: Duration, n: u32) -> Duration {
    let base = backoff.saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(10))).min(BUSY_MAX_WAIT);
    let jitter_ms = u64::try_from(base.as_millis() / 2).unwrap_or(0);
    base + Duration::from_millis(rand::random::<u64>() % jitter_ms.saturating_add(1))
}

/// Longest single wait for a busy peer (before jitter).
const BUSY_MAX_WAIT: Duration = Duration::from_secs(1);

fn stream_code_reason(code: VarInt) -> String {
    match u32::try_from(code.into_inner()) {
        Ok(CODE_FRAME_TOO_LARGE) => "the request is larger than the peer's frame limit".to_string(),
        Ok(CODE_BAD_STREAM) => "the peer could not read the request".to_string(),
        Ok(CODE_BUSY) => {
            "the peer is busy with this node's other requests (too many bytes in flight); retry later".to_string()
        }
        _ => format!("the peer aborted the stream with code {code}"),
    }
}

fn is_tls_alert(code: quinn::TransportErrorCode) -> bool {
    (0x100..=0x1ff).contains(&u64::from(code))
}

fn connection_error(err: ConnectionError, phase: Phase, peer: &str, addr: SocketAddr) -> TransportError {
    let peer = peer.to_string();
    let what = match phase {
        Phase::Connecting => WHAT_CONNECT,
        Phase::Request => "request",
    };
    match err {
        ConnectionError::TransportError(ref e) if is_tls_alert(e.code) => {
            TransportError::Handshake { peer, addr, reason: format!("we rejected the handshake: {err}") }
        }
        ConnectionError::ConnectionClosed(ref close) if is_tls_alert(close.error_code) => TransportError::Handshake {
            peer,
            addr,
            reason: format!("the peer rejected the handshake (does it pin our certificate?): {err}"),
        },
        // the server closes a connection with CODE_BUSY_UNSERVED only while
        // it serves no request on it (`server::UsageGuard::connection`):
        // nothing sent on it was handled, so even a query may be sent again
        ConnectionError::ApplicationClosed(ref close) if close.error_code == VarInt::from_u32(CODE_BUSY_UNSERVED) => {
            TransportError::Busy { peer, addr, limit: MAX_CONNECTIONS_PER_PEER }
        }
        ConnectionError::LocallyClosed => TransportError::Closed,
        ConnectionError::VersionMismatch | ConnectionError::TransportError(_) => {
            TransportError::Handshake { peer, addr, reason: err.to_string() }
        }
        ConnectionError::TimedOut
        | ConnectionError::Reset
        | ConnectionError::ApplicationClosed(_)
        | ConnectionError::ConnectionClosed(_)
        | ConnectionError::CidsExhausted => match phase {
            Phase::Connecting => TransportError::Connect { peer, addr, reason: err.to_string() },
            Phase::Request => TransportError::ConnectionLost { peer, addr, what, reason: err.to_string() },
        },
    }
}

/// One request on a fresh stream of `connection`.
async fn exchange(connection: &quinn::Connection, payload: &[u8], max_frame_bytes: usize) -> Result<Vec<u8>, Failure> {
    let (mut send, mut recv) = connection.open_bi().await.map_err(|err| Failure::Connection(err, Phase::Request))?;
    send.write_all(payload).await.map_err(Failure::Write)?;
    // Only fails if the stream was already finished or reset.
    send.finish().map_err(|_| Failure::Write(WriteError::ClosedStream))?;
    recv.read_to_end(max_frame_bytes).await.map_err(Failure::Read)
}
