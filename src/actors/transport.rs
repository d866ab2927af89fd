//! Request/response over QUIC between pinned nodes.
//!
//! Input: a `TransportConfig` (identity, pinned peers, limits, timeouts)
//! built by the config layer, sockets bound here, request bytes from the
//! actors. Output: reply bytes to the caller (`Client::request`) and request
//! bytes to a handler (`serve`). One bidirectional stream carries one
//! request and its reply; the stream end marks the frame end.
//!
//! This module moves opaque bytes: it does not decode messages or make
//! protocol decisions, and it never logs payloads. It needs a tokio runtime
//! with a `LocalSet` (an actix System): `serve` spawns local tasks.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{ConnectionError, ReadError, ReadToEndError, VarInt, WriteError};
use tracing::{debug, info_span, warn, Instrument};

use super::error::{TransportError, WHAT_CONNECT};
use super::tls::{self, Identity, PinnedPeer};

/// Application error code on a stream whose request exceeded the limit.
pub const CODE_FRAME_TOO_LARGE: u32 = 1;
/// Application error code on a stream that failed before a reply was sent.
pub const CODE_BAD_STREAM: u32 = 2;
/// Application error code when an endpoint or connection shuts down.
pub const CODE_SHUTDOWN: u32 = 0;
/// Stream reset code: the peer has too many request bytes in flight, or too
/// many connections open; retry later.
pub const CODE_BUSY: u32 = 3;
/// Request streams one peer may have open at once on one connection.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 16;
/// Connections one pinned peer may hold open to this node at once; a new
/// one beyond this closes the peer's oldest (a short-lived CLI leaves its
/// connection behind until the idle timeout would end it).
pub const MAX_CONNECTIONS_PER_PEER: usize = 8;
/// Request bytes one peer may have in flight (read, not yet answered),
/// over all its connections, as a multiple of the frame limit.
pub const IN_FLIGHT_FRAMES_PER_PEER: usize = 4;

/// Idle time after which a silent connection is considered dead.
/// Peers restarting on the same address are noticed at once (stateless
/// reset); this bounds how long a vanished host goes unnoticed.
const MAX_IDLE: Duration = Duration::from_secs(15);
/// Longest pause between retries, however many there are.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Keep-alive interval on client connections, well below `MAX_IDLE`.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Everything the transport needs; built by the config layer.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    pub identity: Identity,
    pub peers: Vec<PinnedPeer>,
    /// Largest request or reply accepted, in bytes (e.g. 16 MiB).
    pub max_frame_bytes: usize,
    /// Bound on one request: sending it and waiting for the whole reply.
    pub request_timeout: Duration,
    /// Bound on one connection attempt (handshake included).
    pub connect_timeout: Duration,
    /// How many times a transient failure is retried.
    pub retries: u32,
    /// Delay before the first retry; doubled for each further retry.
    pub retry_backoff: Duration,
}

impl TransportConfig {
    fn validate(&self) -> Result<(), TransportError> {
        let zero = |what: &str| TransportError::Config { reason: format!("{what} must be greater than zero") };
        if self.max_frame_bytes == 0 {
            return Err(zero("max_frame_bytes"));
        }
        if self.request_timeout.is_zero() {
            return Err(zero("request_timeout"));
        }
        if self.connect_timeout.is_zero() {
            return Err(zero("connect_timeout"));
        }
        for (index, peer) in self.peers.iter().enumerate() {
            for other in self.peers.iter().skip(index.saturating_add(1)) {
                if other.name == peer.name {
                    return Err(TransportError::Config {
                        reason: format!("peer `{}` is pinned twice; keep one entry", peer.name),
                    });
                }
                if other.cert_der == peer.cert_der {
                    return Err(TransportError::Config {
                        reason: format!(
                            "peers `{}` and `{}` pin the same certificate; each node needs its own",
                            peer.name, other.name
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// QUIC transport parameters. `initiator` is true for connections we open:
/// those keep themselves alive and accept no streams from the peer. On
/// accepted connections the peer may open request streams (bidirectional)
/// only.
fn quinn_transport(initiator: bool) -> Result<Arc<quinn::TransportConfig>, TransportError> {
    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_uni_streams(VarInt::from_u32(0));
    transport.max_concurrent_bidi_streams(VarInt::from_u32(if initiator { 0 } else { MAX_STREAMS_PER_CONNECTION }));
    let idle = quinn::IdleTimeout::try_from(MAX_IDLE)
        .map_err(|err| TransportError::Config { reason: format!("idle timeout: {err}") })?;
    transport.max_idle_timeout(Some(idle));
    if initiator {
        transport.keep_alive_interval(Some(KEEP_ALIVE));
    }
    Ok(Arc::new(transport))
}

fn server_config(cfg: &TransportConfig) -> Result<quinn::ServerConfig, TransportError> {
    let tls = tls::server_config(&cfg.identity, &cfg.peers)?;
    let quic = QuicServerConfig::try_from(tls)
        .map_err(|err| TransportError::Config { reason: format!("TLS server config unusable for QUIC: {err}") })?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(quic));
    server.transport_config(quinn_transport(false)?);
    Ok(server)
}

fn client_config(identity: &Identity, peer: &PinnedPeer) -> Result<quinn::ClientConfig, TransportError> {
    let tls = tls::client_config(identity, peer)?;
    let quic = QuicClientConfig::try_from(tls)
        .map_err(|err| TransportError::Config { reason: format!("TLS client config unusable for QUIC: {err}") })?;
    let mut client = quinn::ClientConfig::new(Arc::new(quic));
    client.transport_config(quinn_transport(true)?);
    Ok(client)
}

/// Binds a server+client endpoint on `addr` (port 0 allowed: read the bound
/// address from `endpoint.local_addr()`). Must run inside the runtime. Its
/// stateless-reset key derives from the identity, so after a restart on the
/// same address peers learn at once that their old connections are gone.
pub fn bind_endpoint(addr: SocketAddr, cfg: &TransportConfig) -> Result<quinn::Endpoint, TransportError> {
    cfg.validate()?;
    let server = server_config(cfg)?;
    let reset_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &cfg.identity.stateless_reset_secret());
    let mut endpoint_config = quinn::EndpointConfig::new(Arc::new(reset_key));
    let cid_key = cfg.identity.connection_id_key();
    endpoint_config.cid_generator(move || Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key)));
    let socket = std::net::UdpSocket::bind(addr)?;
    let runtime = quinn::default_runtime().ok_or_else(|| TransportError::Config {
        reason: "no async runtime: bind endpoints inside the actix System".to_string(),
    })?;
    Ok(quinn::Endpoint::new(endpoint_config, Some(server), socket, runtime)?)
}

/// Client-only endpoint on an ephemeral port: `[::]:0` (dual stack, reaches
/// IPv4 and IPv6 peers) or, where IPv6 is unavailable, `0.0.0.0:0`.
pub fn client_endpoint(cfg: &TransportConfig) -> Result<quinn::Endpoint, TransportError> {
    cfg.validate()?;
    match quinn::Endpoint::client(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))) {
        Ok(endpoint) => Ok(endpoint),
        Err(err) => {
            debug!(cause = %err, "no IPv6 socket, binding the client endpoint on IPv4");
            Ok(quinn::Endpoint::client(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))?)
        }
    }
}

/// Client-only endpoint on an ephemeral port of `target`'s address family.
pub fn client_endpoint_for(target: SocketAddr, cfg: &TransportConfig) -> Result<quinn::Endpoint, TransportError> {
    cfg.validate()?;
    let local = match target {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    Ok(quinn::Endpoint::client(local)?)
}

/// Name of the pinned peer that authenticated `connection`.
fn peer_name(connection: &quinn::Connection, peers: &[PinnedPeer]) -> Option<String> {
    let identity = connection.peer_identity()?;
    let certs = identity.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>().ok()?;
    let end_entity = certs.first()?;
    tls::pinned_name(peers, end_entity.as_ref()).map(str::to_string)
}

/// What each pinned peer holds on this server: open connections and request
/// bytes read but not yet answered. Single-threaded (the actix System).
#[derive(Default)]
struct PeerUsage {
    connections: HashMap<String, Vec<(u64, quinn::Connection)>>,
    next_connection: u64,
    bytes: HashMap<String, usize>,
}

type SharedUsage = Rc<RefCell<PeerUsage>>;

/// Releases what a connection or a request holds when dropped.
struct UsageGuard {
    usage: SharedUsage,
    peer: String,
    connection: Option<u64>,
    bytes: usize,
}

impl UsageGuard {
    /// Registers a new connection of `peer`, closing its oldest beyond the limit.
    fn connection(usage: &SharedUsage, peer: &str, connection: &quinn::Connection) -> UsageGuard {
        let mut u = usage.borrow_mut();
        let id = u.next_connection;
        u.next_connection = id.wrapping_add(1);
        let open = u.connections.entry(peer.to_string()).or_default();
        while open.len() >= MAX_CONNECTIONS_PER_PEER {
            let (_, oldest) = open.remove(0);
            warn!(limit = MAX_CONNECTIONS_PER_PEER, "peer opened too many connections, closing its oldest");
            oldest.close(VarInt::from_u32(CODE_BUSY), b"too many connections");
        }
        open.push((id, connection.clone()));
        UsageGuard { usage: Rc::clone(usage), peer: peer.to_string(), connection: Some(id), bytes: 0 }
    }

    fn request(usage: &SharedUsage, peer: &str) -> UsageGuard {
        UsageGuard { usage: Rc::clone(usage), peer: peer.to_string(), connection: None, bytes: 0 }
    }

    /// Accounts `n` more bytes unless the peer would exceed `limit`.
    fn add_bytes(&mut self, n: usize, limit: usize) -> bool {
        let mut u = self.usage.borrow_mut();
        let held = u.bytes.entry(self.peer.clone()).or_default();
        match held.checked_add(n) {
            Some(total) if total <= limit => {
                *held = total;
                self.bytes += n;
                true
            }
            _ => false,
        }
    }
}

impl Drop for UsageGuard {
    fn drop(&mut self) {
        let mut u = self.usage.borrow_mut();
        if let Some(id) = self.connection {
            if let Some(open) = u.connections.get_mut(&self.peer) {
                open.retain(|(other, _)| *other != id);
            }
        }
        if let Some(held) = u.bytes.get_mut(&self.peer) {
            *held = held.saturating_sub(self.bytes);
        }
    }
}

/// Serves requests until the endpoint is closed. Every accepted connection
/// is checked against the pins, gets one tracing span (peer name, remote
/// address) and its own task; every bidirectional stream is one request:
/// `read_to_end(max_frame_bytes)` -> `handler(peer_name, bytes)` ->
/// `write_all(reply)` -> `finish()`. A failing, oversized or aborted stream
/// is dropped with a logged reason and never stops the server.
///
/// `cfg` must be the config the endpoint was bound with: its pins map a
/// presented certificate to a peer name, its `max_frame_bytes` bounds requests.
pub fn serve<H, Fut>(endpoint: quinn::Endpoint, cfg: &TransportConfig, handler: H) -> impl Future<Output = ()> + 'static
where
    H: Fn(String, Vec<u8>) -> Fut + 'static,
    Fut: Future<Output = Vec<u8>> + 'static,
{
    let handler = Rc::new(handler);
    let peers: Rc<[PinnedPeer]> = cfg.peers.clone().into();
    let max_frame_bytes = cfg.max_frame_bytes;
    let usage: SharedUsage = Rc::default();
    async move {
        while let Some(incoming) = endpoint.accept().await {
            let handler = Rc::clone(&handler);
            let peers = Rc::clone(&peers);
            let usage = Rc::clone(&usage);
            let remote = incoming.remote_address();
            // One span per connection; `peer` is filled in after the handshake.
            let span = info_span!("connection", peer = tracing::field::Empty, remote = %remote);
            actix_rt::spawn(serve_connection(incoming, peers, max_frame_bytes, usage, handler).instrument(span));
        }
        debug!("endpoint closed, no longer accepting connections");
    }
}

async fn serve_connection<H, Fut>(
    incoming: quinn::Incoming,
    peers: Rc<[PinnedPeer]>,
    max_frame_bytes: usize,
    usage: SharedUsage,
    handler: Rc<H>,
) where
    H: Fn(String, Vec<u8>) -> Fut + 'static,
    Fut: Future<Output = Vec<u8>> + 'static,
{
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(err) => {
            warn!(cause = %err, "handshake failed, connection refused");
            return;
        }
    };
    let Some(peer) = peer_name(&connection, &peers) else {
        // The verifier already refused unpinned certificates; this is a guard.
        warn!("peer certificate is not pinned, closing connection");
        connection.close(VarInt::from_u32(CODE_BAD_STREAM), b"unknown peer");
        return;
    };
    tracing::Span::current().record("peer", peer.as_str());
    let _held = UsageGuard::connection(&usage, &peer, &connection);
    debug!("connection established");
    loop {
        match connection.accept_bi().await {
            Ok((send, recv)) => {
                let handler = Rc::clone(&handler);
                let request = UsageGuard::request(&usage, &peer);
                let peer = peer.clone();
                actix_rt::spawn(serve_stream(send, recv, peer, max_frame_bytes, request, handler).in_current_span());
            }
            Err(ConnectionError::ApplicationClosed(_) | ConnectionError::LocallyClosed | ConnectionError::TimedOut) => {
                debug!("connection closed");
                return;
            }
            Err(err) => {
                warn!(cause = %err, "connection lost");
                return;
            }
        }
    }
}

/// Why a request could not be read.
enum ReadFailure {
    TooLong,
    Busy,
    Stream(String),
}

/// Reads one request up to the frame limit, charging every chunk to the
/// peer's in-flight byte budget (released when `held` is dropped).
async fn read_request(
    recv: &mut quinn::RecvStream,
    max_frame_bytes: usize,
    held: &mut UsageGuard,
) -> Result<Vec<u8>, ReadFailure> {
    let in_flight_limit = max_frame_bytes.saturating_mul(IN_FLIGHT_FRAMES_PER_PEER);
    let mut request = Vec::new();
    loop {
        match recv.read_chunk(64 * 1024, true).await {
            Ok(Some(chunk)) => {
                let n = chunk.bytes.len();
                if request.len().saturating_add(n) > max_frame_bytes {
                    return Err(ReadFailure::TooLong);
                }
                if !held.add_bytes(n, in_flight_limit) {
                    return Err(ReadFailure::Busy);
                }
                request.extend_from_slice(&chunk.bytes);
            }
            Ok(None) => return Ok(request),
            Err(err) => return Err(ReadFailure::Stream(err.to_string())),
        }
    }
}

async fn serve_stream<H, Fut>(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    peer: String,
    max_frame_bytes: usize,
    mut held: UsageGuard,
    handler: Rc<H>,
) where
    H: Fn(String, Vec<u8>) -> Fut + 'static,
    Fut: Future<Output = Vec<u8>> + 'static,
{
    let request = match read_request(&mut recv, max_frame_bytes, &mut held).await {
        Ok(request) => request,
        Err(ReadFailure::TooLong) => {
            warn!(limit = max_frame_bytes, "request larger than the frame limit, dropping it");
            let _ = recv.stop(VarInt::from_u32(CODE_FRAME_TOO_LARGE));
            let _ = send.reset(VarInt::from_u32(CODE_FRAME_TOO_LARGE));
            return;
        }
        Err(ReadFailure::Busy) => {
            warn!(
                limit = max_frame_bytes.saturating_mul(IN_FLIGHT_FRAMES_PER_PEER),
                "peer has too many request bytes in flight, dropping this request"
            );
            let _ = recv.stop(VarInt::from_u32(CODE_BUSY));
            let _ = send.reset(VarInt::from_u32(CODE_BUSY));
            return;
        }
        Err(ReadFailure::Stream(cause)) => {
            warn!(cause = %cause, "request stream failed, dropping it");
            let _ = send.reset(VarInt::from_u32(CODE_BAD_STREAM));
            return;
        }
    };
    let request_bytes = request.len();
    // Race the handler against the peer giving up (its request timed out or
    // the connection died): an abandoned request is not worth finishing.
    let abandoned = send.stopped();
    let reply = tokio::select! {
        reply = handler(peer, request) => reply,
        stopped = abandoned => {
            match stopped {
                Ok(code) => debug!(code = ?code, "peer abandoned the request, dropping it"),
                Err(err) => debug!(cause = %err, "peer went away before the reply, dropping it"),
            }
            return;
        }
    };
    let reply_bytes = reply.len();
    if let Err(err) = send.write_all(&reply).await {
        warn!(cause = %err, "could not send the reply");
        return;
    }
    if let Err(err) = send.finish() {
        warn!(cause = %err, "could not finish the reply");
        return;
    }
    debug!(request_bytes, reply_bytes, "request served");
}

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
    peers: Vec<PinnedPeer>,
    max_frame_bytes: usize,
    request_timeout: Duration,
    connect_timeout: Duration,
    retries: u32,
    retry_backoff: Duration,
    slots: Mutex<HashMap<(String, SocketAddr), Arc<PeerSlot>>>,
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
        Client {
            inner: Arc::new(ClientInner {
                endpoint,
                identity: cfg.identity.clone(),
                peers: cfg.peers.clone(),
                max_frame_bytes: cfg.max_frame_bytes,
                request_timeout: cfg.request_timeout,
                connect_timeout: cfg.connect_timeout,
                retries: cfg.retries,
                retry_backoff: cfg.retry_backoff,
                slots: Mutex::new(HashMap::new()),
            }),
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
    /// A timed-out reply is not retried.
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
        loop {
            let result = self.attempt(&slot, peer_name, addr, payload).await;
            match result {
                Ok(reply) => return Ok(reply),
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

    fn slot(&self, peer_name: &str, addr: SocketAddr) -> Result<Arc<PeerSlot>, TransportError> {
        let inner = &self.inner;
        let key = (peer_name.to_string(), addr);
        let mut slots = inner.slots.lock().map_err(|_| TransportError::Closed)?;
        if let Some(slot) = slots.get(&key) {
            return Ok(Arc::clone(slot));
        }
        let peer = inner
            .peers
            .iter()
            .find(|p| p.name == peer_name)
            .ok_or_else(|| TransportError::UnknownPeer { name: peer_name.to_string() })?;
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
            Ok(Ok(reply)) => Ok(reply),
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
