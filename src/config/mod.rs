//! Node configuration: `node.yaml` read with the `config` crate (every key
//! can be overridden by an environment variable `CRUX__SECTION__KEY`), first
//! into `raw` structs that mirror the YAML (missing keys from `defaults`),
//! then checked by `validate` into a `NodeConfig` (`node`) with resolved
//! paths (relative to the config file's folder), parsed addresses, checked
//! files and one `RoleConfig` for the node's role. No sockets; the actors
//! bind later.

pub mod defaults;
pub mod error;
#[cfg(test)]
mod message_keys;
pub mod node;
pub mod raw;
mod validate;

pub use error::ConfigError;
pub use node::*;
