//! Errors of the QUIC transport and its TLS identities.
//!
//! Produced by `actors::tls` (certificates, pins, rustls configs) and
//! `actors::transport` (endpoints, connections, request streams); the actors
//! layer wraps them into its own error. Every message names the peer and the
//! address where one is involved, says what failed and what an operator can
//! do. Messages never carry key material or payload bytes.

use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TransportError {
    #[error("{what} with peer {peer} at {addr} timed out after {after:?}; {hint}", hint = timeout_hint(.what))]
    Timeout { peer: String, addr: SocketAddr, what: &'static str, after: Duration },
    #[error("could not connect to peer {peer} at {addr}: {reason}; check the address and that the node is running")]
    Connect { peer: String, addr: SocketAddr, reason: String },
    #[error("TLS handshake with peer {peer} at {addr} failed: {reason}; check that both nodes pin each other's current certificate")]
    Handshake { peer: String, addr: SocketAddr, reason: String },
    #[error("connection to peer {peer} at {addr} was lost during {what}: {reason}")]
    ConnectionLost { peer: String, addr: SocketAddr, what: &'static str, reason: String },
    #[error("peer {peer} at {addr} refused the request: {reason}")]
    Refused { peer: String, addr: SocketAddr, reason: String },
    #[error("peer {peer} at {addr} closed a new connection before reading any request on it: this node has as many connections to it as it allows ({limit}), each serving a request, and none ended within the request timeout; the request was not handled, send it again later or raise `timeouts.request_ms`")]
    Busy { peer: String, addr: SocketAddr, limit: usize },
    #[error("peer {peer} at {addr} is unreachable after {attempts} attempts; last error: {last}")]
    Unreachable { peer: String, addr: SocketAddr, attempts: u32, last: Box<TransportError> },
    #[error("no pinned certificate for peer `{name}`; add it to the node's peer list")]
    UnknownPeer { name: String },
    #[error("{what} for peer {peer} at {addr} exceeds the frame limit of {limit} bytes; raise `max_frame_bytes` on both nodes or send less")]
    FrameTooLarge { peer: String, addr: SocketAddr, what: &'static str, limit: usize },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("certificate: {reason}")]
    Certificate { reason: String },
    #[error("invalid transport configuration: {reason}")]
    Config { reason: String },
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the local endpoint is closed")]
    Closed,
}

impl TransportError {
    /// True when an established connection went away during a request: the
    /// request may or may not have reached the peer.
    pub fn is_lost(&self) -> bool {
        matches!(self, TransportError::ConnectionLost { .. })
    }

    /// True for failures worth retrying on a fresh connection: the peer was
    /// not reachable yet, refused the connection as busy (nothing on it was
    /// read), or an established connection went away.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TransportError::Connect { .. }
                | TransportError::ConnectionLost { .. }
                | TransportError::Busy { .. }
                | TransportError::Timeout { what: WHAT_CONNECT, .. }
        )
    }
}

fn timeout_hint(what: &str) -> &'static str {
    if what == WHAT_CONNECT {
        "check that the node is running and reachable, or raise `timeouts.connect_ms`"
    } else {
        "the peer is slow, stuck or down; check that it runs, or raise `timeouts.request_ms` if it needs longer"
    }
}

/// `what` of a timed-out connection attempt (retried, unlike a timed-out reply).
pub(crate) const WHAT_CONNECT: &str = "connecting";

/// Errors of running a node or a client: wraps every inner layer and adds
/// what the node was doing.
#[derive(Debug, Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Protocol(#[from] crate::protocol::ProtocolError),
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    #[error("cannot listen on {addr}: {reason}; another process may use the port: stop it or change `node.listen` (or CRUX__NODE__LISTEN)")]
    Bind { addr: SocketAddr, reason: String },
    #[error("cannot serve metrics on {addr} (TCP): {reason}; another process may use the port: stop it, change `metrics.listen` (or CRUX__METRICS__LISTEN), or remove the `metrics` section")]
    MetricsBind { addr: SocketAddr, reason: String },
    #[error("{what}: {reason}")]
    Setup { what: String, reason: String },
    #[error("cannot resolve the address {address:?} of {peer}: {reason}")]
    Address { peer: String, address: String, reason: String },
}
