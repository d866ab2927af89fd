//! Adapters: the actix actors of each role, the QUIC transport, and glue
//! from files and LMDB to the pure protocol layer.

pub mod column_source;
pub mod ledger;
