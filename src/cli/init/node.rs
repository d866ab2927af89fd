//! `crux-node init authority|processor|relay|user NAME --out DIR`: one
//! node's folder, made on that node's own host so that its secrets never
//! leave it. Writes `DIR/node.yaml` (the config without its `cluster`
//! section, which `crux-node init join` adds), `DIR/certs/NAME.crt`,
//! `DIR/keys/NAME.key` (0600, in a 0700 folder), for a relay
//! `DIR/keys/NAME.identity` (0600), and `DIR/NAME.card.yaml`, the public
//! card the admin collects (`card.rs`). Refuses a folder that already
//! holds a node. Makes no key share: `crux-node keygen` does, later.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use rand::rngs::OsRng;

use super::card::{Card, CardRole, CARD_FORMAT};
use super::files::{certificate, check_name, write, yaml};
use super::local::metrics_for;
use crate::actors::tls::PinnedPeer;
use crate::config::defaults;
use crate::config::raw::*;
use crate::crypto::RelayIdentity;
use crate::data::{write_relay_identity, Shard, SourceSpec};

/// The config file of a node folder.
pub(super) const NODE_CONFIG: &str = "node.yaml";
/// The committee file's name in a node folder (`cluster.joint_key`).
pub(super) const COMMITTEE_FILE: &str = "cluster-key.bin";

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node's name, unique in the cluster (letters, digits, '-', '_'), e.g. authority-1.
    pub name: String,
    /// Folder to write the node into (created; refused if it already holds a node).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Host name or IP address at which the other nodes reach this one (it goes on the card).
    #[arg(long, value_name = "HOST")]
    pub host: String,
    /// Port of the node's QUIC endpoint (UDP); its metrics use the same number over TCP on 127.0.0.1.
    #[arg(long, value_name = "PORT")]
    pub port: u16,
    /// Address to bind, IP:PORT (default: HOST:PORT when HOST is an IP address, else 0.0.0.0:PORT).
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuthorityArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Let this authority answer exact (noise-free) queries; every authority must allow it.
    #[arg(long)]
    pub exact: bool,
    /// Total privacy budget (epsilon) per dataset on this authority.
    #[arg(long, value_name = "E", default_value_t = defaults::BUDGET_EPSILON)]
    pub budget: f64,
}

#[derive(Debug, Args)]
pub struct ProcessorArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Discrete-log table size: 2^K baby steps, built on first start.
    #[arg(long, value_name = "K", default_value_t = defaults::DLOG_TABLE_BITS)]
    pub dlog_bits: u32,
    /// The processor solves sums up to |m| < 2^R (counts always solve).
    #[arg(long, value_name = "R", default_value_t = defaults::DLOG_RANGE_BITS)]
    pub dlog_range_bits: u32,
}

#[derive(Debug, Args)]
pub struct RelayArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// The spreadsheet or CSV file this relay serves (its path on this host).
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Sheet of FILE (default: the first sheet).
    #[arg(long, value_name = "NAME")]
    pub sheet: Option<String>,
    /// Header rows of FILE before its data rows: 1 to 3.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=3))]
    pub header_rows: u32,
    /// Let this relay publish FILE's column labels (header rows only) to `crux-node columns`.
    #[arg(long)]
    pub publish_columns: bool,
    /// Serve only slice I of N contiguous slices of FILE's data rows (I from 1), e.g. 2/3; for
    /// demos and tests that split one file between relays.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
}

/// A node being written: its folder, certificate and addresses.
struct NewNode {
    dir: PathBuf,
    name: String,
    role: CardRole,
    /// host:port on the card; None for users
    address: Option<String>,
    listen: Option<String>,
    crt: String,
    key: String,
    cert_pem: String,
}

impl NewNode {
    /// Checks the name and addresses, creates the folder, writes the certificate.
    fn create(args: &NodeArgs, role: CardRole) -> anyhow::Result<NewNode> {
        check_name(role.as_str(), &args.name)?;
        let (address, listen) = addresses(args)?;
        let mut node = NewNode::folder(&args.out, &args.name, role, &args.host)?;
        node.address = Some(address);
        node.listen = Some(listen);
        Ok(node)
    }

    /// The folder and certificate only (a user has no address).
    fn folder(out: &Path, name: &str, role: CardRole, host: &str) -> anyhow::Result<NewNode> {
        prepare_folder(out)?;
        let (crt, key, cert_pem) = certificate(out, name, host)?;
        Ok(NewNode {
            dir: out.to_path_buf(),
            name: name.to_string(),
            role,
            address: None,
            listen: None,
            crt,
            key,
            cert_pem,
        })
    }

    /// The config every role starts from (its `cluster` section is dropped when written).
    fn config(&self) -> RawConfig {
        RawConfig {
            node: RawNode {
                name: self.name.clone(),
                role: self.role.as_str().to_string(),
                listen: self.listen.clone(),
                data_dir: self.listen.as_ref().map(|_| "data".to_string()),
            },
            tls: RawTls { cert: self.crt.clone(), key: self.key.clone() },
            metrics: self.listen.as_deref().and_then(metrics_for),
            ..RawConfig::default()
        }
    }

    /// Writes node.yaml (without `cluster`) and the card; prints what to do next.
    fn finish(self, config: &RawConfig, public_key: Option<String>) -> anyhow::Result<()> {
        let mut value = serde_yaml_ng::to_value(config).context("encoding the config")?;
        if let Some(map) = value.as_mapping_mut() {
            map.remove("cluster");
        }
        let text = format!(
            "{}# cluster: written by `crux-node init join --config {NODE_CONFIG} --cluster cluster.yaml`\n",
            yaml(&value)?
        );
        write(&self.dir.join(NODE_CONFIG), &text)?;
        let card = Card {
            format: Some(CARD_FORMAT.to_string()),
            name: self.name.clone(),
            role: self.role.as_str().to_string(),
            address: self.address.clone(),
            certificate: self.cert_pem.clone(),
            public_key,
        };
        let card_file = self.dir.join(format!("{}.card.yaml", self.name));
        let header = "# Crux node card: public. Send it to the cluster admin (`crux-node init assemble`);\n# never send anything from keys/.\n";
        write(&card_file, &format!("{header}{}", serde_yaml_ng::to_string(&card).context("encoding the card")?))?;
        let fingerprint = PinnedPeer::from_pem(&self.name, &self.cert_pem)?.fingerprint_hex();
        println!("wrote {} {} to {}", self.role.as_str(), self.name, self.dir.display());
        println!("  card (public): {}", card_file.display());
        println!("  certificate fingerprint (SHA-256): {fingerprint}");
        println!("  private keys stay here: {}", self.dir.join("keys").display());
        println!(
            "next: send the card to the admin, then run `crux-node init join --config {} --cluster cluster.yaml`",
            self.dir.join(NODE_CONFIG).display()
        );
        Ok(())
    }
}

/// (the card's host:port, the IP:port to bind).
fn addresses(args: &NodeArgs) -> anyhow::Result<(String, String)> {
    if args.port == 0 {
        bail!("--port must be between 1 and 65535");
    }
    let host = args.host.trim();
    let ip = host.parse::<IpAddr>().ok();
    if ip.is_none() && rustls::pki_types::ServerName::try_from(host).is_err() {
        bail!("--host {host:?} is neither an IP address nor a host name (e.g. 10.0.0.5 or crux-a.example.org)");
    }
    let address = match ip {
        Some(ip) => SocketAddr::new(ip, args.port).to_string(),
        None => format!("{host}:{}", args.port),
    };
    let listen = match (&args.listen, ip) {
        (Some(text), _) => text
            .trim()
            .parse::<SocketAddr>()
            .with_context(|| format!("--listen {text:?} is not IP:PORT (e.g. 0.0.0.0:{})", args.port))?,
        (None, Some(ip)) => SocketAddr::new(ip, args.port),
        (None, None) => SocketAddr::from(([0, 0, 0, 0], args.port)),
    };
    Ok((address, listen.to_string()))
}

/// Creates DIR, DIR/certs, DIR/keys (0700) and DIR/data; refuses a folder
/// that already holds a node (its keys would be replaced).
fn prepare_folder(out: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(found) = [NODE_CONFIG, "keys"].iter().find(|f| out.join(f).exists()) {
        bail!(
            "{} already holds a node ({found} exists); making a new one would replace its keys. Pick another --out, or remove that folder first",
            out.display()
        );
    }
    for dir in ["", "certs", "keys", "data"] {
        std::fs::create_dir_all(out.join(dir)).with_context(|| format!("creating {}", out.join(dir).display()))?;
    }
    let keys = out.join("keys");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private (mode 0700)", keys.display()))
}

pub(super) fn init_authority(a: &AuthorityArgs) -> anyhow::Result<()> {
    let node = NewNode::create(&a.node, CardRole::Authority)?;
    let mut config = node.config();
    config.authority = Some(RawAuthority {
        key_share: format!("keys/{}.share", node.name),
        allow_exact: a.exact,
        budget_epsilon: a.budget,
        replay_window_secs: defaults::REPLAY_WINDOW_SECS,
        allow_single_relay: false,
    });
    node.finish(&config, None)
}

pub(super) fn init_processor(p: &ProcessorArgs) -> anyhow::Result<()> {
    let node = NewNode::create(&p.node, CardRole::Processor)?;
    let mut config = node.config();
    config.processor = Some(RawProcessor {
        dlog_dir: Some("data/dlog".into()),
        dlog_table_bits: p.dlog_bits,
        dlog_range_bits: p.dlog_range_bits,
        ..RawProcessor::default()
    });
    node.finish(&config, None)
}

pub(super) fn init_relay(r: &RelayArgs) -> anyhow::Result<()> {
    let shard = r.shard.as_deref().map(parse_shard).transpose()?;
    let data = std::fs::canonicalize(&r.data)
        .with_context(|| format!("data file {} (the file this relay serves, on this host)", r.data.display()))?;
    let mut source = SourceSpec::new(data.clone()).with_header_rows(r.header_rows);
    source.sheet = r.sheet.clone();
    // the declared scale, detected once here per column; an admin may change it
    crate::data::source::declare_detected_decimals(&mut source)
        .with_context(|| format!("detecting the decimals of {}", data.display()))?;
    source.shard = shard;
    source.publish_columns = r.publish_columns;
    let node = NewNode::create(&r.node, CardRole::Relay)?;
    let identity = RelayIdentity::generate(&mut OsRng);
    let identity_path = format!("keys/{}.identity", node.name);
    write_relay_identity(&node.dir.join(&identity_path), &identity)?;
    let mut config = node.config();
    config.relay = Some(RawRelay { identity_key: identity_path, sources: vec![source] });
    node.finish(&config, Some(identity.public_key().to_hex()))
}

/// `I/N` with 1 <= I <= N into the config's 0-based `Shard`.
fn parse_shard(text: &str) -> anyhow::Result<Shard> {
    let parsed =
        text.split_once('/').and_then(|(i, n)| Some((i.trim().parse::<u32>().ok()?, n.trim().parse::<u32>().ok()?)));
    match parsed {
        Some((i, n)) if i >= 1 && i <= n => Ok(Shard { index: i - 1, count: n }),
        _ => bail!("--shard {text:?} is not I/N with 1 <= I <= N, e.g. 1/2 for the first half of the data rows"),
    }
}

/// A user's folder on the user's own host: certificate, key, node.yaml and card.
pub(super) fn init_user(out: &Path, name: &str) -> anyhow::Result<()> {
    check_name("user", name)?;
    let node = NewNode::folder(out, name, CardRole::User, "127.0.0.1")?;
    let config = node.config();
    node.finish(&config, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(host: &str, port: u16, listen: Option<&str>) -> NodeArgs {
        NodeArgs { name: "a".into(), out: PathBuf::new(), host: host.into(), port, listen: listen.map(str::to_string) }
    }

    #[test]
    fn shards_are_one_based_on_the_command_line() {
        assert_eq!(parse_shard("1/2").unwrap(), Shard { index: 0, count: 2 });
        assert_eq!(parse_shard(" 3 / 3 ").unwrap(), Shard { index: 2, count: 3 });
        for bad in ["0/2", "3/2", "1", "a/b", "1/0", "/", ""] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_bind_the_host_or_every_interface() {
        assert_eq!(addresses(&args("10.0.0.5", 7101, None)).unwrap(), ("10.0.0.5:7101".into(), "10.0.0.5:7101".into()));
        assert_eq!(addresses(&args("::1", 7101, None)).unwrap(), ("[::1]:7101".into(), "[::1]:7101".into()));
        assert_eq!(addresses(&args("crux-a", 7101, None)).unwrap(), ("crux-a:7101".into(), "0.0.0.0:7101".into()));
        assert_eq!(addresses(&args("crux-a", 7101, Some("10.1.1.1:9"))).unwrap().1, "10.1.1.1:9");
        for (host, port, listen) in [("a b", 7101, None), ("x", 0, None), ("", 1, None), ("x", 1, Some("x:1"))] {
            assert!(addresses(&args(host, port, listen)).is_err(), "{host} {port} {listen:?}");
        }
    }
}
