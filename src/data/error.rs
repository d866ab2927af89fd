//! Errors of the data layer (LMDB discrete-log tables and key files). Every
//! message names the file or directory and says what the operator can do.

use std::path::PathBuf;

use thiserror::Error;

use crate::crypto::CryptoError;

#[derive(Debug, Error)]
pub enum DataError {
    /// No table at the given directory.
    #[error(
        "no discrete-log table in {dir}: {reason}; build it with `crux-node tables build --dir {dir} --bits {bits}`"
    )]
    TableMissing { dir: PathBuf, bits: u32, reason: String },
    /// The table was built with other parameters than the ones asked for.
    #[error("discrete-log table in {dir} has {found}, expected {expected}; rebuild it with `crux-node tables build --dir {dir} --bits {bits}`")]
    TableMismatch { dir: PathBuf, found: String, expected: String, bits: u32 },
    /// The table is damaged (truncated, flipped bytes, missing metadata).
    #[error("discrete-log table in {dir} is damaged: {reason}; rebuild it with `crux-node tables build --dir {dir} --bits {bits}`")]
    TableCorrupt { dir: PathBuf, reason: String, bits: u32 },
    /// Unsupported build parameters.
    #[error("cannot build a table of 2^{bits} baby steps: {reason}")]
    TableParameters { bits: u32, reason: String },
    /// LMDB reported an error while working on the table directory.
    #[error("LMDB error on {dir} while {action}: {source}")]
    Lmdb {
        dir: PathBuf,
        action: &'static str,
        #[source]
        source: heed::Error,
    },
    /// Reading or writing a file of the table directory failed.
    #[error("I/O error on {path} while {action}: {source}")]
    TableIo {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing a key file failed.
    #[error("key file {path}: {action} failed: {source}")]
    KeyFile {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A key file exists but does not decode.
    #[error("key file {path} is corrupt or truncated: {source}")]
    KeyFileCorrupt {
        path: PathBuf,
        #[source]
        source: CryptoError,
    },
    /// A key file is readable by others than its owner.
    #[error("key file {path} has permissions {mode:04o}, readable or writable by others; run `chmod 600 {path}`")]
    KeyFilePermissions { path: PathBuf, mode: u32 },
}
