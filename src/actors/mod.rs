//! Adapters: the QUIC transport with pinned mutual-TLS identities (`tls`,
//! `transport`), one actix actor per role (`AuthorityActor`, `RelayActor`,
//! `ProcessorActor`), the node runner, the user client, the operator's
//! metrics and HTTP endpoints, and glue from files and LMDB to the pure
//! protocol layer.

pub mod authority;
pub mod ceremony;
pub mod client;
pub mod column_source;
pub mod committee_watch;
pub mod error;
pub mod http;
pub mod keygen;
pub mod keys;
pub mod metrics;
pub mod node;
pub mod processor;
pub mod relay;
pub mod tls;
pub mod transport;

/// Request bytes from an authenticated peer, as the transport hands them to
/// a role's actor; the reply is the encoded response.
#[derive(actix::Message)]
#[rtype(result = "Vec<u8>")]
pub struct RequestBytes {
    /// the peer's name, from its pinned certificate
    pub peer: String,
    pub bytes: Vec<u8>,
}

pub use authority::AuthorityActor;
pub use error::NodeError;
pub use processor::ProcessorActor;
pub use relay::RelayActor;
