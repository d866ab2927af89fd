//! Serde structs that mirror node.yaml one to one (step 1 of 2); `node.rs`
//! validates them. Unknown keys are refused so that a typo is noticed.

use serde::{Deserialize, Serialize};

use crate::data::SourceSpec;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub node: RawNode,
    pub tls: RawTls,
    #[serde(default)]
    pub timeouts: RawTimeouts,
    #[serde(default)]
    pub limits: RawLimits,
    pub cluster: RawCluster,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<RawAuthority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<RawRelay>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processor: Option<RawProcessor>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    pub name: String,
    /// authority | processor | relay | user
    pub role: String,
    /// host:port to listen on (not for users)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// where the node keeps its LMDB files
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert: String,
    pub key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    #[serde(default = "default_connect_ms")]
    pub connect_ms: u64,
    #[serde(default = "default_request_ms")]
    pub request_ms: u64,
    #[serde(default = "default_query_ms")]
    pub query_ms: u64,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_backoff_ms")]
    pub retry_backoff_ms: u64,
}

/// Connect timeout: a node that is down is reported after (1 + retries)
/// attempts, about 1.3 s with the defaults (issue 10: "within 2 s").
fn default_connect_ms() -> u64 {
    600
}
fn default_request_ms() -> u64 {
    30_000
}
fn default_query_ms() -> u64 {
    300_000
}
fn default_retries() -> u32 {
    1
}
fn default_backoff_ms() -> u64 {
    100
}

impl Default for RawTimeouts {
    fn default() -> Self {
        RawTimeouts {
            connect_ms: default_connect_ms(),
            request_ms: default_request_ms(),
            query_ms: default_query_ms(),
            retries: default_retries(),
            retry_backoff_ms: default_backoff_ms(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    #[serde(default = "default_frame")]
    pub max_frame_bytes: u64,
}

fn default_frame() -> u64 {
    16 * 1024 * 1024
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits { max_frame_bytes: default_frame() }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPeer {
    pub name: String,
    pub address: String,
    pub cert: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelayPeer {
    pub name: String,
    pub address: String,
    pub cert: String,
    /// ed25519 public key, hex
    pub public_key: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub name: String,
    pub cert: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// the privacy-budget key of this deployment's data
    pub dataset: String,
    /// file with the authorities' public key shares and their proofs
    pub joint_key: String,
    #[serde(default = "default_min_relays")]
    pub min_relays: u32,
    pub processor: RawPeer,
    pub authorities: Vec<RawPeer>,
    pub relays: Vec<RawRelayPeer>,
    /// users allowed to query (processor only)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<RawUser>,
}

fn default_min_relays() -> u32 {
    2
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthority {
    pub key_share: String,
    /// answer exact (noise-free) queries; for testing only
    #[serde(default)]
    pub allow_exact: bool,
    /// total epsilon per dataset
    #[serde(default = "default_budget")]
    pub budget_epsilon: f64,
    #[serde(default = "default_window")]
    pub replay_window_secs: u64,
    /// allow `cluster.min_relays: 1` (a single relay's data would be decrypted alone)
    #[serde(default)]
    pub allow_single_relay: bool,
}

fn default_budget() -> f64 {
    10.0
}
fn default_window() -> u64 {
    86_400
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelay {
    pub identity_key: String,
    pub sources: Vec<SourceSpec>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProcessor {
    /// folder of the discrete-log table (built on first start)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dlog_dir: Option<String>,
    #[serde(default = "default_table_bits")]
    pub dlog_table_bits: u32,
    #[serde(default = "default_range_bits")]
    pub dlog_range_bits: u32,
    #[serde(default = "default_rate")]
    pub rate_limit_per_minute: u32,
}

fn default_table_bits() -> u32 {
    22
}
fn default_range_bits() -> u32 {
    36
}
fn default_rate() -> u32 {
    120
}
