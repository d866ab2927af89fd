//! Configuration errors: each names the file or key and says what to change.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{}: cannot read the configuration: {reason}", path.display())]
    Load { path: PathBuf, reason: String },
    #[error("{}: unknown role {role:?}; `node.role` must be authority, processor, relay or user", path.display())]
    UnknownRole { path: PathBuf, role: String },
    #[error("{}: `{key}` is required for a {role} node", path.display())]
    Missing { path: PathBuf, key: &'static str, role: String },
    #[error("{}: `{key}`: {reason}", path.display())]
    Invalid { path: PathBuf, key: String, reason: String },
    #[error("{}: {what} {} does not exist or is unreadable ({reason}); run `crux-node init` or fix the path", path.display(), file.display())]
    MissingFile { path: PathBuf, what: String, file: PathBuf, reason: String },
}
