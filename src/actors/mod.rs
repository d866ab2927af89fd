//! Network adapters: the QUIC transport with pinned mutual-TLS identities
//! (`tls`, `transport`) and their errors (`error`). The role actors build on
//! these; nothing here knows the protocol's messages.

pub mod error;
pub mod tls;
pub mod transport;
