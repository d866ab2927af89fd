//! Adapters: the QUIC transport with pinned mutual-TLS identities (`tls`,
//! `transport`), the actix actors of each role, and glue from files and LMDB
//! to the pure protocol layer.

pub mod column_source;
pub mod error;
pub mod ledger;
pub mod tls;
pub mod transport;
