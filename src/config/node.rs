//! Validated node configuration (step 2 of 2): `NodeConfig::load` reads
//! node.yaml plus `CRUX__SECTION__KEY` environment overrides into the raw
//! structs, and `validate.rs` checks them into a `NodeConfig` whose
//! `RoleConfig` holds exactly the settings of the node's role. Read by
//! `actors` (to start a node) and `cli` (clients). No sockets: the actors
//! bind later.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};

use super::error::ConfigError;
use super::raw::RawConfig;
use crate::crypto::RelayPublicKey;
use crate::data::SourceSpec;
use crate::protocol::Role;
use crate::stats::Epsilon;

#[derive(Clone, Debug)]
pub struct Peer {
    pub name: String,
    /// host:port, resolved when connecting
    pub address: String,
    pub cert: PathBuf,
}

#[derive(Clone, Debug)]
pub struct RelayPeer {
    pub peer: Peer,
    pub public_key: RelayPublicKey,
}

#[derive(Clone, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
    pub query: Duration,
    pub retries: u32,
    pub retry_backoff: Duration,
}

#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub dataset: String,
    pub joint_key: PathBuf,
    pub min_relays: usize,
    pub processor: Peer,
    pub authorities: Vec<Peer>,
    pub relays: Vec<RelayPeer>,
    pub users: Vec<Peer>,
}

/// `node.listen` and the `authority` section.
#[derive(Clone, Debug)]
pub struct AuthorityConfig {
    pub listen: SocketAddr,
    pub key_share: PathBuf,
    pub allow_exact: bool,
    pub budget: Epsilon,
    pub replay_window_secs: u64,
}

/// `node.listen` and the `relay` section.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    pub listen: SocketAddr,
    pub identity_key: PathBuf,
    pub sources: Vec<SourceSpec>,
}

/// `node.listen` and the (optional) `processor` section.
#[derive(Clone, Debug)]
pub struct ProcessorConfig {
    pub listen: SocketAddr,
    pub dlog_dir: PathBuf,
    pub dlog_table_bits: u32,
    pub dlog_range_bits: u32,
    pub rate_limit_per_minute: u32,
    /// exact queries and noisy searches take the committed-share path (docs/share_path.md)
    pub share_path: bool,
}

/// What a node does and the settings only that role has. A user only
/// connects to the processor: it listens nowhere and has no section.
#[derive(Clone, Debug)]
pub enum RoleConfig {
    Authority(AuthorityConfig),
    Relay(RelayConfig),
    Processor(ProcessorConfig),
    User,
}

impl RoleConfig {
    pub fn kind(&self) -> Role {
        match self {
            RoleConfig::Authority(_) => Role::Authority,
            RoleConfig::Relay(_) => Role::Relay,
            RoleConfig::Processor(_) => Role::Processor,
            RoleConfig::User => Role::User,
        }
    }

    /// The address a node serves on; `None` for a user.
    pub fn listen(&self) -> Option<SocketAddr> {
        match self {
            RoleConfig::Authority(a) => Some(a.listen),
            RoleConfig::Relay(r) => Some(r.listen),
            RoleConfig::Processor(p) => Some(p.listen),
            RoleConfig::User => None,
        }
    }
}

impl std::fmt::Display for RoleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind().as_str())
    }
}

/// The optional `metrics` section: the operator's HTTP endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    /// TCP address of `/metrics`, `/healthz` and `/readyz`
    pub listen: SocketAddr,
}

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub file: PathBuf,
    pub name: String,
    pub role: RoleConfig,
    pub data_dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub timeouts: Timeouts,
    pub max_frame_bytes: usize,
    pub cluster: ClusterConfig,
    /// `None`: no HTTP listener (no `metrics` section, or a user)
    pub metrics: Option<MetricsConfig>,
}

impl NodeConfig {
    /// Reads the YAML file and the environment overrides.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let load_err = |reason: String| ConfigError::Load { path: path.to_path_buf(), reason };
        std::fs::metadata(path)
            .map_err(|e| load_err(format!("{e}; pass the path of a node.yaml written by `crux-node init`")))?;
        let raw: RawConfig = Config::builder()
            .add_source(File::from(path).format(FileFormat::Yaml))
            .add_source(Environment::with_prefix("CRUX").prefix_separator("__").separator("__").try_parsing(true))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| load_err(e.to_string()))?;
        Self::validate(path, raw)
    }

    /// Checks `raw` (read from `file`) section by section; relative paths
    /// are resolved against `file`'s folder.
    pub fn validate(file: &Path, raw: RawConfig) -> Result<Self, ConfigError> {
        super::validate::node_config(file, raw)
    }
}
