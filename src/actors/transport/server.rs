//! The server side of the QUIC transport: accepts connections from pinned
//! peers, names the peer from its certificate, enforces the per-peer limits
//! (connections, streams, request bytes in flight) and hands each request's
//! bytes to the role's handler, writing its reply back on the same stream.
//! Input: an endpoint bound by `bind_endpoint`; output: request bytes to the
//! handler, and open connections and byte counts to the node's
//! `TransportMetrics`. Never logs payloads.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;

use quinn::ConnectionError;
use tracing::{debug, info_span, warn, Instrument};

use super::*;
use crate::actors::metrics::{Side, TransportMetrics};

/// Name of the pinned peer that authenticated `connection`.
pub(super) fn peer_name(connection: &quinn::Connection, peers: &[PinnedPeer]) -> Option<String> {
    let identity = connection.peer_identity()?;
    let certs = identity.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>().ok()?;
    let end_entity = certs.first()?;
    tls::pinned_name(peers, end_entity.as_ref()).map(str::to_string)
}

/// What each pinned peer holds on this server: open connections and request
/// bytes read but not yet answered; and the node's counters of both.
/// Single-threaded (the actix System).
#[derive(Default)]
struct PeerUsage {
    connections: HashMap<String, Vec<OpenConnection>>,
    next_connection: u64,
    bytes: HashMap<String, usize>,
    metrics: TransportMetrics,
}

type SharedUsage = Rc<RefCell<PeerUsage>>;

/// One open connection of a peer, and its requests being served: accepted
/// and not yet answered (the reply acknowledged by the peer).
struct OpenConnection {
    id: u64,
    connection: quinn::Connection,
    serving: usize,
}

/// Releases what a connection or a request holds when dropped.
struct UsageGuard {
    usage: SharedUsage,
    peer: String,
    /// a connection's guard: its id
    connection: Option<u64>,
    /// a request's guard: the id of the connection it came on
    serving_on: Option<u64>,
    bytes: usize,
}

/// Why a new connection was refused.
const BUSY_CONNECTIONS: &[u8] = b"too many connections with requests in flight";

impl UsageGuard {
    /// Registers a new connection of `peer`. Beyond the limit it closes the
    /// peer's oldest connection that serves no request (a short-lived CLI
    /// leaves its connection behind until the idle timeout would end it);
    /// if every one serves a request, it refuses the new connection
    /// instead: None. Either way the closed connection gets `CODE_BUSY_UNSERVED`,
    /// and no request on it was handled, so its peer may send them again.
    fn connection(usage: &SharedUsage, peer: &str, connection: &quinn::Connection) -> Option<UsageGuard> {
        let mut u = usage.borrow_mut();
        let id = u.next_connection;
        u.next_connection = id.wrapping_add(1);
        let open = u.connections.entry(peer.to_string()).or_default();
        while open.len() >= MAX_CONNECTIONS_PER_PEER {
            let Some(idle) = open.iter().position(|c| c.serving == 0) else {
                warn!(
                    limit = MAX_CONNECTIONS_PER_PEER,
                    "peer has too many connections, each serving a request: refusing its new one"
                );
                connection.close(VarInt::from_u32(CODE_BUSY_UNSERVED), BUSY_CONNECTIONS);
                return None;
            };
            let oldest = open.remove(idle);
            warn!(limit = MAX_CONNECTIONS_PER_PEER, "peer opened too many connections, closing its oldest idle one");
            oldest.connection.close(VarInt::from_u32(CODE_BUSY_UNSERVED), b"too many connections");
        }
        open.push(OpenConnection { id, connection: connection.clone(), serving: 0 });
        u.metrics.connection_opened(Side::Server);
        Some(UsageGuard {
            usage: Rc::clone(usage),
            peer: peer.to_string(),
            connection: Some(id),
            serving_on: None,
            bytes: 0,
        })
    }

    fn metrics(&self) -> TransportMetrics {
        self.usage.borrow().metrics.clone()
    }

    /// A request accepted on connection `on`: that connection serves it
    /// until the guard is dropped.
    fn request(usage: &SharedUsage, peer: &str, on: u64) -> UsageGuard {
        if let Some(c) = usage.borrow_mut().open_connection(peer, on) {
            c.serving = c.serving.saturating_add(1);
        }
        UsageGuard { usage: Rc::clone(usage), peer: peer.to_string(), connection: None, serving_on: Some(on), bytes: 0 }
    }

    /// Gives back the request bytes held so far (the request was read, or
    /// the guard is dropped).
    fn release_bytes(&mut self) {
        let mut u = self.usage.borrow_mut();
        if let Some(held) = u.bytes.get_mut(&self.peer) {
            *held = held.saturating_sub(self.bytes);
        }
        self.bytes = 0;
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

impl PeerUsage {
    fn open_connection(&mut self, peer: &str, id: u64) -> Option<&mut OpenConnection> {
        self.connections.get_mut(peer)?.iter_mut().find(|c| c.id == id)
    }
}

impl Drop for UsageGuard {
    fn drop(&mut self) {
        self.release_bytes();
        let mut u = self.usage.borrow_mut();
        if let Some(id) = self.connection {
            if let Some(open) = u.connections.get_mut(&self.peer) {
                open.retain(|c| c.id != id);
            }
            u.metrics.connection_closed(Side::Server);
        }
        if let Some(c) = self.serving_on.and_then(|on| u.open_connection(&self.peer, on)) {
            c.serving = c.serving.saturating_sub(1);
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
    serve_measured(endpoint, cfg, TransportMetrics::default(), handler)
}

/// `serve`, counting open connections and request and reply bytes into `metrics`.
pub fn serve_measured<H, Fut>(
    endpoint: quinn::Endpoint,
    cfg: &TransportConfig,
    metrics: TransportMetrics,
    handler: H,
) -> impl Future<Output = ()> + 'static
where
    H: Fn(String, Vec<u8>) -> Fut + 'static,
    Fut: Future<Output = Vec<u8>> + 'static,
{
    let handler = Rc::new(handler);
    let peers: Rc<[PinnedPeer]> = cfg.peers.clone().into();
    let max_frame_bytes = cfg.max_frame_bytes;
    let usage: SharedUsage = Rc::new(RefCell::new(PeerUsage { metrics, ..PeerUsage::default() }));
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
    let Some(held) = UsageGuard::connection(&usage, &peer, &connection) else {
        return;
    };
    let on = held.connection.unwrap_or_default();
    debug!("connection established");
    loop {
        match connection.accept_bi().await {
            Ok((send, recv)) => {
                let handler = Rc::clone(&handler);
                let request = UsageGuard::request(&usage, &peer, on);
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
    let metrics = held.metrics();
    metrics.request_bytes(Side::Server, request_bytes);
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
    metrics.reply_bytes(Side::Server, reply_bytes);
    if let Err(err) = send.finish() {
        warn!(cause = %err, "could not finish the reply");
        return;
    }
    debug!(request_bytes, reply_bytes, "request served");
    // the connection serves this request until the peer has the whole reply
    // (closing it earlier for the connection limit could lose the reply of
    // a request that was handled); the request's bytes are free already
    held.release_bytes();
    let _ = send.stopped().await;
}
