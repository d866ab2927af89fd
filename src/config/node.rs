//! Validated node configuration (step 2 of 2): `NodeConfig::load` reads
//! node.yaml plus `CRUX__SECTION__KEY` environment overrides, checks every
//! value for the node's role, resolves relative paths against the config
//! file's folder and checks that the files it names exist.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};

use super::error::ConfigError;
use super::raw::*;
use crate::crypto::RelayPublicKey;
use crate::data::SourceSpec;
use crate::stats::Epsilon;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeRole {
    Authority,
    Processor,
    Relay,
    User,
}

impl std::fmt::Display for NodeRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeRole::Authority => "authority",
            NodeRole::Processor => "processor",
            NodeRole::Relay => "relay",
            NodeRole::User => "user",
        })
    }
}

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

#[derive(Clone, Debug)]
pub struct AuthorityConfig {
    pub key_share: PathBuf,
    pub allow_exact: bool,
    pub budget: Epsilon,
    pub replay_window_secs: u64,
}

#[derive(Clone, Debug)]
pub struct RelayConfig {
    pub identity_key: PathBuf,
    pub sources: Vec<SourceSpec>,
}

#[derive(Clone, Debug)]
pub struct ProcessorConfig {
    pub dlog_dir: PathBuf,
    pub dlog_table_bits: u32,
    pub dlog_range_bits: u32,
    pub rate_limit_per_minute: u32,
}

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub file: PathBuf,
    pub name: String,
    pub role: NodeRole,
    pub listen: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub timeouts: Timeouts,
    pub max_frame_bytes: usize,
    pub cluster: ClusterConfig,
    pub authority: Option<AuthorityConfig>,
    pub relay: Option<RelayConfig>,
    pub processor: Option<ProcessorConfig>,
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let path = PathBuf::from(p);
    if path.is_absolute() {
        path
    } else {
        base.join(path)
    }
}

fn must_exist(file: &Path, what: &str, path: &Path) -> Result<(), ConfigError> {
    std::fs::metadata(path).map(|_| ()).map_err(|e| ConfigError::MissingFile {
        path: file.to_path_buf(),
        what: what.to_string(),
        file: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn check_name(file: &Path, key: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            path: file.to_path_buf(),
            key: key.to_string(),
            reason: format!("{name:?} is not a valid node name (1-64 letters, digits, '-', '_' or '.')"),
        })
    }
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

    pub fn validate(file: &Path, raw: RawConfig) -> Result<Self, ConfigError> {
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let invalid =
            |key: &str, reason: String| ConfigError::Invalid { path: file.to_path_buf(), key: key.to_string(), reason };
        let role = match raw.node.role.trim().to_ascii_lowercase().as_str() {
            "authority" => NodeRole::Authority,
            "processor" => NodeRole::Processor,
            "relay" => NodeRole::Relay,
            "user" => NodeRole::User,
            other => return Err(ConfigError::UnknownRole { path: file.to_path_buf(), role: other.to_string() }),
        };
        let missing =
            |key: &'static str| ConfigError::Missing { path: file.to_path_buf(), key, role: role.to_string() };
        check_name(file, "node.name", &raw.node.name)?;
        let listen = match (&raw.node.listen, role) {
            (_, NodeRole::User) => None,
            (None, _) => return Err(missing("node.listen")),
            (Some(text), _) => Some(text.trim().parse::<SocketAddr>().map_err(|e| {
                invalid("node.listen", format!("{text:?} is not an IP:port address ({e}), e.g. 127.0.0.1:7100"))
            })?),
        };
        let data_dir = resolve(&base, raw.node.data_dir.as_deref().unwrap_or(&format!("data/{}", raw.node.name)));
        let cert = resolve(&base, &raw.tls.cert);
        let key = resolve(&base, &raw.tls.key);
        must_exist(file, "certificate `tls.cert`", &cert)?;
        must_exist(file, "private key `tls.key`", &key)?;
        let t = &raw.timeouts;
        if t.connect_ms == 0 || t.request_ms == 0 || t.query_ms == 0 {
            return Err(invalid("timeouts", "timeouts must be positive".into()));
        }
        let timeouts = Timeouts {
            connect: Duration::from_millis(t.connect_ms),
            request: Duration::from_millis(t.request_ms),
            query: Duration::from_millis(t.query_ms),
            retries: t.retries.min(10),
            retry_backoff: Duration::from_millis(t.retry_backoff_ms),
        };
        let max_frame_bytes = usize::try_from(raw.limits.max_frame_bytes)
            .ok()
            .filter(|n| (1024..=1 << 30).contains(n))
            .ok_or_else(|| invalid("limits.max_frame_bytes", "must be between 1 KiB and 1 GiB".into()))?;

        let c = &raw.cluster;
        let peer = |key: &str, p: &RawPeer| -> Result<Peer, ConfigError> {
            check_name(file, key, &p.name)?;
            let cert = resolve(&base, &p.cert);
            must_exist(file, &format!("certificate of {}", p.name), &cert)?;
            if p.address.trim().is_empty() && !key.contains("users") {
                return Err(invalid(key, format!("peer {} has no address", p.name)));
            }
            Ok(Peer { name: p.name.clone(), address: p.address.trim().to_string(), cert })
        };
        let processor = peer("cluster.processor", &c.processor)?;
        let authorities =
            c.authorities.iter().map(|p| peer("cluster.authorities", p)).collect::<Result<Vec<_>, _>>()?;
        if authorities.is_empty() {
            return Err(invalid("cluster.authorities", "at least one authority is needed".into()));
        }
        let relays = c
            .relays
            .iter()
            .map(|r| {
                let p = peer(
                    "cluster.relays",
                    &RawPeer { name: r.name.clone(), address: r.address.clone(), cert: r.cert.clone() },
                )?;
                let public_key = RelayPublicKey::from_hex(&r.public_key)
                    .map_err(|e| invalid("cluster.relays.public_key", format!("relay {}: {e}", r.name)))?;
                Ok(RelayPeer { peer: p, public_key })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let users = c
            .users
            .iter()
            .map(|u| {
                peer("cluster.users", &RawPeer { name: u.name.clone(), address: String::new(), cert: u.cert.clone() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut names: Vec<&str> = std::iter::once(processor.name.as_str())
            .chain(authorities.iter().map(|p| p.name.as_str()))
            .chain(relays.iter().map(|r| r.peer.name.as_str()))
            .chain(users.iter().map(|u| u.name.as_str()))
            .collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w.first() == w.get(1)) {
            return Err(invalid("cluster", format!("node name {:?} is used twice", w.first().copied().unwrap_or(""))));
        }
        if c.min_relays == 0 {
            return Err(invalid("cluster.min_relays", "must be at least 1".into()));
        }
        let joint_key = resolve(&base, &c.joint_key);
        must_exist(file, "joint key file `cluster.joint_key`", &joint_key)?;
        if c.dataset.trim().is_empty() {
            return Err(invalid("cluster.dataset", "name the dataset (the privacy-budget key)".into()));
        }
        let cluster = ClusterConfig {
            dataset: c.dataset.trim().to_string(),
            joint_key,
            min_relays: usize::try_from(c.min_relays).unwrap_or(usize::MAX),
            processor,
            authorities,
            relays,
            users,
        };

        let authority = match (&raw.authority, role) {
            (Some(a), NodeRole::Authority) => {
                let key_share = resolve(&base, &a.key_share);
                must_exist(file, "key share `authority.key_share`", &key_share)?;
                if cluster.min_relays < 2 && !a.allow_single_relay {
                    return Err(invalid(
                        "cluster.min_relays",
                        "1 would let one relay's data be decrypted alone; set at least 2, or `authority.allow_single_relay: true` for a test setup".into(),
                    ));
                }
                let budget = Epsilon::from_f64(a.budget_epsilon)
                    .map_err(|e| invalid("authority.budget_epsilon", e.to_string()))?;
                Some(AuthorityConfig {
                    key_share,
                    allow_exact: a.allow_exact,
                    budget,
                    replay_window_secs: a.replay_window_secs.max(60),
                })
            }
            (None, NodeRole::Authority) => return Err(missing("authority")),
            _ => None,
        };
        let relay = match (&raw.relay, role) {
            (Some(r), NodeRole::Relay) => {
                let identity_key = resolve(&base, &r.identity_key);
                must_exist(file, "identity key `relay.identity_key`", &identity_key)?;
                if r.sources.is_empty() {
                    return Err(invalid("relay.sources", "list at least one data file".into()));
                }
                let mut sources = Vec::new();
                for s in &r.sources {
                    let mut s = s.clone();
                    s.path = resolve(&base, &s.path.to_string_lossy());
                    must_exist(file, "data file in `relay.sources`", &s.path)?;
                    match s.decimals {
                        None => {
                            return Err(invalid(
                                "relay.sources.decimals",
                                format!(
                                    "source {} declares no decimals; set `decimals: N` (the most decimal places its cells have; `crux-node init` writes the detected value): relays answer with the declared scale, never with one detected from the data",
                                    s.path.display()
                                ),
                            ))
                        }
                        Some(d) if d > crate::stats::limits::MAX_QUERY_DECIMALS => {
                            return Err(invalid(
                                "relay.sources.decimals",
                                format!(
                                    "source {} declares {d} decimals; at most {} are supported",
                                    s.path.display(),
                                    crate::stats::limits::MAX_QUERY_DECIMALS
                                ),
                            ))
                        }
                        Some(_) => {}
                    }
                    if let Some(shard) = s.shard {
                        if shard.count == 0 || shard.index >= shard.count {
                            return Err(invalid(
                                "relay.sources.shard",
                                format!(
                                    "index {} of {} is invalid (0-based index below count)",
                                    shard.index, shard.count
                                ),
                            ));
                        }
                    }
                    sources.push(s);
                }
                Some(RelayConfig { identity_key, sources })
            }
            (None, NodeRole::Relay) => return Err(missing("relay")),
            _ => None,
        };
        let processor_cfg = match role {
            NodeRole::Processor => {
                let p = raw.processor.clone().unwrap_or_default();
                if !(8..=32).contains(&p.dlog_table_bits) {
                    return Err(invalid(
                        "processor.dlog_table_bits",
                        format!("{} is outside 8..=32", p.dlog_table_bits),
                    ));
                }
                if p.dlog_range_bits < p.dlog_table_bits || p.dlog_range_bits > 48 {
                    return Err(invalid("processor.dlog_range_bits", "must be between dlog_table_bits and 48".into()));
                }
                let dlog_dir =
                    p.dlog_dir.as_deref().map(|d| resolve(&base, d)).unwrap_or_else(|| data_dir.join("dlog"));
                Some(ProcessorConfig {
                    dlog_dir,
                    dlog_table_bits: p.dlog_table_bits,
                    dlog_range_bits: p.dlog_range_bits,
                    rate_limit_per_minute: p.rate_limit_per_minute.max(1),
                })
            }
            _ => None,
        };
        Ok(NodeConfig {
            file: file.to_path_buf(),
            name: raw.node.name.clone(),
            role,
            listen,
            data_dir,
            cert,
            key,
            timeouts,
            max_frame_bytes,
            cluster,
            authority,
            relay,
            processor: processor_cfg,
        })
    }
}
