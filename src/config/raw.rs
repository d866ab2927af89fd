//! Serde structs that mirror node.yaml one to one (step 1 of 2), filled by
//! `NodeConfig::load` from the file and `CRUX__...` variables, or by
//! `crux-node init` to be written out; `validate.rs` checks them into a
//! `NodeConfig`. Missing optional keys take their values from `defaults.rs`.
//! Unknown keys are refused so that a typo is noticed.

use serde::{Deserialize, Serialize};

use super::defaults;
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
    /// the operator's HTTP endpoints (/metrics, /healthz, /readyz); off when absent
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<RawMetrics>,
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

/// Every key is optional: a missing one takes its value from `defaults`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawTimeouts {
    pub connect_ms: u64,
    pub request_ms: u64,
    pub query_ms: u64,
    pub retries: u32,
    pub retry_backoff_ms: u64,
}

impl Default for RawTimeouts {
    fn default() -> Self {
        RawTimeouts {
            connect_ms: defaults::CONNECT_MS,
            request_ms: defaults::REQUEST_MS,
            query_ms: defaults::QUERY_MS,
            retries: defaults::RETRIES,
            retry_backoff_ms: defaults::RETRY_BACKOFF_MS,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLimits {
    pub max_frame_bytes: u64,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits { max_frame_bytes: u64::try_from(defaults::MAX_FRAME_BYTES).unwrap_or(u64::MAX) }
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
    defaults::MIN_RELAYS
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
    defaults::BUDGET_EPSILON
}
fn default_window() -> u64 {
    defaults::REPLAY_WINDOW_SECS
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelay {
    pub identity_key: String,
    pub sources: Vec<SourceSpec>,
}

/// The optional `metrics` section: where the node serves `/metrics`,
/// `/healthz` and `/readyz` over plain HTTP (TCP).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// host:port (TCP); `crux-node init` writes 127.0.0.1 and the node's own port number
    pub listen: String,
}

/// Every key is optional, and so is the whole section: a processor without
/// one uses `RawProcessor::default()`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawProcessor {
    /// folder of the discrete-log table (built on first start)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dlog_dir: Option<String>,
    pub dlog_table_bits: u32,
    pub dlog_range_bits: u32,
    pub rate_limit_per_minute: u32,
    /// exact queries and noisy searches take the committed-share path (docs/share_path.md)
    pub share_path: bool,
}

impl Default for RawProcessor {
    fn default() -> Self {
        RawProcessor {
            dlog_dir: None,
            dlog_table_bits: defaults::DLOG_TABLE_BITS,
            dlog_range_bits: defaults::DLOG_RANGE_BITS,
            rate_limit_per_minute: defaults::RATE_LIMIT_PER_MINUTE,
            share_path: defaults::SHARE_PATH,
        }
    }
}
