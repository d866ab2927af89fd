//! Checks the raw config (`raw.rs`, as `NodeConfig::load` read it from
//! node.yaml and the environment) into a `NodeConfig` (`node.rs`), one
//! function per section; the role's section becomes its `RoleConfig`.
//! Resolves relative paths against the config file's folder and checks that
//! the files named exist (metadata only: nothing is opened). An error names
//! the key and says what to change; a section the role does not use is
//! logged and ignored.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::defaults::BASE_PORT;
use super::error::ConfigError;
use super::node::*;
use super::raw::*;
use crate::crypto::dlog::MAX_TABLE_BITS;
use crate::crypto::RelayPublicKey;
use crate::data::lmdb_table::MIN_TABLE_BITS;
use crate::data::SourceSpec;
use crate::protocol::Role;
use crate::stats::limits::MAX_QUERY_DECIMALS;
use crate::stats::Epsilon;

/// Longest node name in `node.name` and the `cluster` lists.
const MAX_NAME_LEN: usize = 64;
/// `timeouts.retries` above this is cut to it.
const MAX_RETRIES: u32 = 10;
/// `limits.max_frame_bytes`: 1 KiB to 1 GiB.
const FRAME_BYTES: RangeInclusive<usize> = 1024..=1 << 30;
/// Fewer relays than this per aggregate needs `authority.allow_single_relay`.
const SAFE_MIN_RELAYS: usize = 2;
/// `authority.replay_window_secs` below this is raised to it.
const MIN_REPLAY_WINDOW_SECS: u64 = 60;
/// Largest `processor.dlog_range_bits`.
const MAX_DLOG_RANGE_BITS: u32 = 48;

/// `raw`, read from `file`, checked section by section.
pub(super) fn node_config(file: &Path, raw: RawConfig) -> Result<NodeConfig, ConfigError> {
    let check = Check { file, base: file.parent().map(Path::to_path_buf).unwrap_or_default() };
    let kind = check.role(&raw.node.role)?;
    check.name("node.name", &raw.node.name)?;
    let listen = check.listen(&raw.node, kind)?;
    let data_dir = check.path(raw.node.data_dir.as_deref().unwrap_or(&format!("data/{}", raw.node.name)));
    let (cert, key) = check.tls(&raw.tls)?;
    let timeouts = check.timeouts(&raw.timeouts)?;
    let max_frame_bytes = check.limits(&raw.limits)?;
    let cluster = check.cluster(&raw.cluster)?;
    let role = check.role_config(&raw, kind, listen, &data_dir, &cluster)?;
    let metrics = check.metrics(raw.metrics.as_ref(), kind)?;
    Ok(NodeConfig {
        file: file.to_path_buf(),
        name: raw.node.name,
        role,
        data_dir,
        cert,
        key,
        timeouts,
        max_frame_bytes,
        cluster,
        metrics,
    })
}

/// The config file being checked and the folder its relative paths start from.
struct Check<'a> {
    file: &'a Path,
    base: PathBuf,
}

impl Check<'_> {
    fn invalid(&self, key: &str, reason: String) -> ConfigError {
        ConfigError::Invalid { path: self.file.to_path_buf(), key: key.to_string(), reason }
    }

    fn missing(&self, key: &'static str, role: Role) -> ConfigError {
        ConfigError::Missing { path: self.file.to_path_buf(), key, role: role.to_string() }
    }

    /// `p` resolved against the config file's folder.
    fn path(&self, p: &str) -> PathBuf {
        let path = PathBuf::from(p);
        if path.is_absolute() {
            path
        } else {
            self.base.join(path)
        }
    }

    fn must_exist(&self, what: &str, path: &Path) -> Result<(), ConfigError> {
        std::fs::metadata(path).map(|_| ()).map_err(|e| ConfigError::MissingFile {
            path: self.file.to_path_buf(),
            what: what.to_string(),
            file: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// `p` resolved, if that file exists.
    fn existing(&self, what: &str, p: &str) -> Result<PathBuf, ConfigError> {
        let path = self.path(p);
        self.must_exist(what, &path)?;
        Ok(path)
    }

    fn name(&self, key: &str, name: &str) -> Result<(), ConfigError> {
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if ok {
            Ok(())
        } else {
            Err(self.invalid(
                key,
                format!("{name:?} is not a valid node name (1-{MAX_NAME_LEN} letters, digits, '-', '_' or '.')"),
            ))
        }
    }

    /// `node.role`
    fn role(&self, text: &str) -> Result<Role, ConfigError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "authority" => Ok(Role::Authority),
            "processor" => Ok(Role::Processor),
            "relay" => Ok(Role::Relay),
            "user" => Ok(Role::User),
            other => Err(ConfigError::UnknownRole { path: self.file.to_path_buf(), role: other.to_string() }),
        }
    }

    /// `node.listen`: required, and only used, by the roles that serve.
    fn listen(&self, node: &RawNode, kind: Role) -> Result<Option<SocketAddr>, ConfigError> {
        match (&node.listen, kind) {
            (_, Role::User) => Ok(None),
            (None, _) => Err(self.missing("node.listen", kind)),
            (Some(text), _) => text.trim().parse::<SocketAddr>().map(Some).map_err(|e| {
                self.invalid(
                    "node.listen",
                    format!("{text:?} is not an IP:port address ({e}), e.g. 127.0.0.1:{BASE_PORT}"),
                )
            }),
        }
    }

    /// The optional `metrics` section: `metrics.listen`, for the roles that
    /// serve (a user's is ignored with a warning).
    fn metrics(&self, metrics: Option<&RawMetrics>, kind: Role) -> Result<Option<MetricsConfig>, ConfigError> {
        let Some(m) = metrics else { return Ok(None) };
        if kind == Role::User {
            tracing::warn!(file = %self.file.display(), "ignoring `metrics.listen`: a user serves nothing");
            return Ok(None);
        }
        let listen = m.listen.trim().parse::<SocketAddr>().map_err(|e| {
            self.invalid(
                "metrics.listen",
                format!(
                    "{:?} is not an IP:port address ({e}), e.g. 127.0.0.1:{BASE_PORT}; remove the `metrics` section to serve no HTTP",
                    m.listen
                ),
            )
        })?;
        Ok(Some(MetricsConfig { listen }))
    }

    /// The `tls` section: this node's certificate and private key.
    fn tls(&self, tls: &RawTls) -> Result<(PathBuf, PathBuf), ConfigError> {
        let cert = self.path(&tls.cert);
        let key = self.path(&tls.key);
        self.must_exist("certificate `tls.cert`", &cert)?;
        self.must_exist("private key `tls.key`", &key)?;
        Ok((cert, key))
    }

    fn timeouts(&self, t: &RawTimeouts) -> Result<Timeouts, ConfigError> {
        if t.connect_ms == 0 || t.request_ms == 0 || t.query_ms == 0 {
            return Err(self.invalid("timeouts", "timeouts must be positive".into()));
        }
        Ok(Timeouts {
            connect: Duration::from_millis(t.connect_ms),
            request: Duration::from_millis(t.request_ms),
            query: Duration::from_millis(t.query_ms),
            retries: t.retries.min(MAX_RETRIES),
            retry_backoff: Duration::from_millis(t.retry_backoff_ms),
        })
    }

    /// The `limits` section: the largest frame, in bytes.
    fn limits(&self, limits: &RawLimits) -> Result<usize, ConfigError> {
        usize::try_from(limits.max_frame_bytes)
            .ok()
            .filter(|n| FRAME_BYTES.contains(n))
            .ok_or_else(|| self.invalid("limits.max_frame_bytes", "must be between 1 KiB and 1 GiB".into()))
    }

    fn cluster(&self, c: &RawCluster) -> Result<ClusterConfig, ConfigError> {
        let processor =
            self.peer("cluster.processor", &c.processor.name, Some(&c.processor.address), &c.processor.cert)?;
        let authorities = c
            .authorities
            .iter()
            .map(|p| self.peer("cluster.authorities", &p.name, Some(&p.address), &p.cert))
            .collect::<Result<Vec<_>, _>>()?;
        if authorities.is_empty() {
            return Err(self.invalid("cluster.authorities", "at least one authority is needed".into()));
        }
        let relays = c.relays.iter().map(|r| self.relay_peer(r)).collect::<Result<Vec<_>, _>>()?;
        let users = c
            .users
            .iter()
            .map(|u| self.peer("cluster.users", &u.name, None, &u.cert))
            .collect::<Result<Vec<_>, _>>()?;
        let names = std::iter::once(&processor)
            .chain(&authorities)
            .chain(relays.iter().map(|r| &r.peer))
            .chain(&users)
            .map(|p| p.name.as_str());
        self.unique(names.collect())?;
        if c.min_relays == 0 {
            return Err(self.invalid("cluster.min_relays", "must be at least 1".into()));
        }
        // may not exist yet: `crux-node keygen` writes it; reading it says what to do
        let joint_key = self.path(&c.joint_key);
        if c.dataset.trim().is_empty() {
            return Err(self.invalid("cluster.dataset", "name the dataset (the privacy-budget key)".into()));
        }
        Ok(ClusterConfig {
            dataset: c.dataset.trim().to_string(),
            joint_key,
            min_relays: usize::try_from(c.min_relays).unwrap_or(usize::MAX),
            processor,
            authorities,
            relays,
            users,
        })
    }

    /// One entry of a `cluster` list; users have no `address`.
    fn peer(&self, key: &str, name: &str, address: Option<&str>, cert: &str) -> Result<Peer, ConfigError> {
        self.name(key, name)?;
        let cert = self.existing(&format!("certificate of {name}"), cert)?;
        let address = address.unwrap_or_default().trim();
        if address.is_empty() && key != "cluster.users" {
            return Err(self.invalid(key, format!("peer {name} has no address")));
        }
        Ok(Peer { name: name.to_string(), address: address.to_string(), cert })
    }

    fn relay_peer(&self, r: &RawRelayPeer) -> Result<RelayPeer, ConfigError> {
        let peer = self.peer("cluster.relays", &r.name, Some(&r.address), &r.cert)?;
        let public_key = RelayPublicKey::from_hex(&r.public_key)
            .map_err(|e| self.invalid("cluster.relays.public_key", format!("relay {}: {e}", r.name)))?;
        Ok(RelayPeer { peer, public_key })
    }

    /// Every node name in `cluster` is used once.
    fn unique(&self, mut names: Vec<&str>) -> Result<(), ConfigError> {
        names.sort_unstable();
        match names.windows(2).find(|w| w.first() == w.get(1)).and_then(|w| w.first()) {
            Some(twice) => Err(self.invalid("cluster", format!("node name {twice:?} is used twice"))),
            None => Ok(()),
        }
    }

    /// The role's own section, checked into its `RoleConfig`.
    fn role_config(
        &self,
        raw: &RawConfig,
        kind: Role,
        listen: Option<SocketAddr>,
        data_dir: &Path,
        cluster: &ClusterConfig,
    ) -> Result<RoleConfig, ConfigError> {
        self.warn_unused_sections(raw, kind);
        let listen = || listen.ok_or_else(|| self.missing("node.listen", kind));
        match kind {
            Role::Authority => {
                let a = raw.authority.as_ref().ok_or_else(|| self.missing("authority", kind))?;
                Ok(RoleConfig::Authority(self.authority(a, listen()?, cluster)?))
            }
            Role::Relay => {
                let r = raw.relay.as_ref().ok_or_else(|| self.missing("relay", kind))?;
                Ok(RoleConfig::Relay(self.relay(r, listen()?)?))
            }
            // the whole section is optional: its defaults otherwise
            Role::Processor => {
                let p = raw.processor.clone().unwrap_or_default();
                Ok(RoleConfig::Processor(self.processor(&p, listen()?, data_dir)?))
            }
            Role::User => Ok(RoleConfig::User),
        }
    }

    /// A section of another role is not an error: e.g. scripts set
    /// `CRUX__PROCESSOR__...` for every node they start, which creates a
    /// `processor` section in each.
    fn warn_unused_sections(&self, raw: &RawConfig, kind: Role) {
        let present = [
            (Role::Authority, raw.authority.is_some()),
            (Role::Relay, raw.relay.is_some()),
            (Role::Processor, raw.processor.is_some()),
        ];
        for (section, _) in present.iter().filter(|(role, there)| *there && *role != kind) {
            tracing::warn!(
                file = %self.file.display(),
                section = section.as_str(),
                role = %kind,
                "ignoring a section this role does not use; remove it, or check `node.role`"
            );
        }
    }

    fn authority(
        &self,
        a: &RawAuthority,
        listen: SocketAddr,
        cluster: &ClusterConfig,
    ) -> Result<AuthorityConfig, ConfigError> {
        // may not exist yet: `crux-node keygen` writes it
        let key_share = self.path(&a.key_share);
        if cluster.min_relays < SAFE_MIN_RELAYS && !a.allow_single_relay {
            return Err(self.invalid(
                "cluster.min_relays",
                format!("1 would let one relay's data be decrypted alone; set at least {SAFE_MIN_RELAYS}, or `authority.allow_single_relay: true` for a test setup"),
            ));
        }
        let budget =
            Epsilon::from_f64(a.budget_epsilon).map_err(|e| self.invalid("authority.budget_epsilon", e.to_string()))?;
        Ok(AuthorityConfig {
            listen,
            key_share,
            allow_exact: a.allow_exact,
            budget,
            replay_window_secs: a.replay_window_secs.max(MIN_REPLAY_WINDOW_SECS),
        })
    }

    fn relay(&self, r: &RawRelay, listen: SocketAddr) -> Result<RelayConfig, ConfigError> {
        let identity_key = self.existing("identity key `relay.identity_key`", &r.identity_key)?;
        if r.sources.is_empty() {
            return Err(self.invalid("relay.sources", "list at least one data file".into()));
        }
        let sources = r.sources.iter().map(|s| self.source(s)).collect::<Result<Vec<_>, _>>()?;
        Ok(RelayConfig { listen, identity_key, sources })
    }

    /// One entry of `relay.sources`, its path resolved.
    fn source(&self, raw: &SourceSpec) -> Result<SourceSpec, ConfigError> {
        let mut s = raw.clone();
        s.path = self.path(&s.path.to_string_lossy());
        self.must_exist("data file in `relay.sources`", &s.path)?;
        match s.decimals {
            None => {
                return Err(self.invalid(
                    "relay.sources.decimals",
                    format!(
                        "source {} declares no decimals; set `decimals: N` (the most decimal places its cells have; `crux-node init` writes the detected value): relays answer with the declared scale, never with one detected from the data",
                        s.path.display()
                    ),
                ))
            }
            Some(d) if d > MAX_QUERY_DECIMALS => {
                return Err(self.invalid(
                    "relay.sources.decimals",
                    format!("source {} declares {d} decimals; at most {MAX_QUERY_DECIMALS} are supported", s.path.display()),
                ))
            }
            Some(_) => {}
        }
        if let Some(shard) = s.shard {
            if shard.count == 0 || shard.index >= shard.count {
                return Err(self.invalid(
                    "relay.sources.shard",
                    format!("index {} of {} is invalid (0-based index below count)", shard.index, shard.count),
                ));
            }
        }
        Ok(s)
    }

    fn processor(&self, p: &RawProcessor, listen: SocketAddr, data_dir: &Path) -> Result<ProcessorConfig, ConfigError> {
        if !(MIN_TABLE_BITS..=MAX_TABLE_BITS).contains(&p.dlog_table_bits) {
            return Err(self.invalid(
                "processor.dlog_table_bits",
                format!("{} is outside {MIN_TABLE_BITS}..={MAX_TABLE_BITS}", p.dlog_table_bits),
            ));
        }
        if p.dlog_range_bits < p.dlog_table_bits || p.dlog_range_bits > MAX_DLOG_RANGE_BITS {
            return Err(self.invalid(
                "processor.dlog_range_bits",
                format!("must be between dlog_table_bits and {MAX_DLOG_RANGE_BITS}"),
            ));
        }
        let dlog_dir = p.dlog_dir.as_deref().map(|d| self.path(d)).unwrap_or_else(|| data_dir.join("dlog"));
        Ok(ProcessorConfig {
            listen,
            dlog_dir,
            dlog_table_bits: p.dlog_table_bits,
            dlog_range_bits: p.dlog_range_bits,
            rate_limit_per_minute: p.rate_limit_per_minute.max(1),
            share_path: p.share_path,
        })
    }
}
