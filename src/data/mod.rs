//! Adapters to files and LMDB: the discrete-log table on LMDB (heed) and the
//! key files with 0600 permissions. Input comes from disk; output goes to
//! `crypto` types. No protocol decisions here.

pub mod error;
pub mod keystore;
pub mod lmdb_table;

pub use error::DataError;
pub use keystore::{read_key_share, read_relay_identity, write_key_share, write_relay_identity};
pub use lmdb_table::{LmdbTable, TableInfo};
