//! Request/response over QUIC between pinned nodes: the shared part
//! (limits, `TransportConfig`, quinn and rustls configs, endpoints); the
//! server side (`server::serve`) and the client side (`client::Client`) are
//! in their own files.
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

mod client;
mod server;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::VarInt;
use tracing::debug;

use super::error::TransportError;
use super::tls::{self, Identity, PinnedPeer};

pub use client::Client;
pub use server::{serve, serve_measured};

/// Application error code on a stream whose request exceeded the limit.
pub const CODE_FRAME_TOO_LARGE: u32 = 1;
/// Application error code on a stream that failed before a reply was sent.
pub const CODE_BAD_STREAM: u32 = 2;
/// Application error code when an endpoint or connection shuts down.
pub const CODE_SHUTDOWN: u32 = 0;
/// Stream reset code: the peer has too many request bytes in flight; retry
/// later. (Until stop 27 also the close code of a peer's oldest connection
/// beyond `MAX_CONNECTIONS_PER_PEER`, requests in flight or not.)
pub const CODE_BUSY: u32 = 3;
/// Connection close code: too many connections open (see
/// `MAX_CONNECTIONS_PER_PEER`), and nothing on this one is being served, so
/// no request sent on it was handled and any may be sent again. A code of
/// its own, so that a client never takes an older node's `CODE_BUSY` close
/// (which could cut a request being handled) for this promise.
pub const CODE_BUSY_UNSERVED: u32 = 4;
/// Request streams one peer may have open at once on one connection.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 16;
/// Connections one pinned peer may hold open to this node at once. A new
/// one beyond this closes the peer's oldest connection that serves no
/// request (a short-lived CLI leaves its connection behind until the idle
/// timeout would end it), or, when each serves one, is itself closed before
/// any request on it is read. Both get `CODE_BUSY_UNSERVED`
/// (`TransportError::Busy` at the peer, which sends again). A request is served from its stream's acceptance until its
/// reply is acknowledged, so no handled request loses its reply this way.
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
