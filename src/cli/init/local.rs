//! `crux-node init --out DIR ...`: a whole local cluster in one folder
//! (for trying Crux on one machine, tests and scripts), and `crux-node init
//! user NAME --out DIR` on such a folder. Real deployments make each node's
//! folder on its own host instead (`node.rs`, `assemble.rs`, `join.rs`).
//!
//! Layout: `authority-<i>.yaml`, `processor.yaml`, `relay-<j>.yaml`,
//! `user.yaml`, `certs/` (public certificates), `keys/` (private keys, key
//! shares and relay identities, mode 0600), `cluster-key.bin` (the
//! committee file: JSON with the threshold, every authority's verification
//! key and the joint key). Key shares are not made here: `init` runs
//! `crux-node keygen` once per authority, as separate processes at once
//! (the distributed key generation), so no process holds two shares. Every
//! serving node gets a `metrics` section on 127.0.0.1 at its own port
//! number (TCP).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use rand::rngs::OsRng;

use super::files::{certificate, check_name, write, yaml};
use crate::config::defaults;
use crate::config::raw::*;
use crate::crypto::RelayIdentity;
use crate::data::{write_relay_identity, Shard, SourceSpec};

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Folder to write the cluster into (created). A folder that already holds
    /// a cluster is refused: its keys would be replaced.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace the cluster (configs, keys, certificates) already in `--out`.
    #[arg(long)]
    pub force: bool,
    /// Let relays publish FILE's column labels (header rows only) to `crux-node columns`.
    #[arg(long)]
    pub publish_columns: bool,
    /// Number of authorities (the committee's n).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub authorities: u32,
    /// How many authorities decrypt together (t of n, at least 2; default: all n). Any t answer a
    /// query; fewer than t cannot decrypt anything.
    #[arg(long, value_name = "T")]
    pub threshold: Option<u32>,
    /// Number of relays; relay j serves slice j of FILE's data rows.
    #[arg(long, value_name = "M", default_value_t = 3)]
    pub relays: u32,
    /// The spreadsheet or CSV file the relays split among themselves.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Sheet of FILE (default: the first sheet).
    #[arg(long, value_name = "NAME")]
    pub sheet: Option<String>,
    /// Header rows of FILE before its data rows: 1 (a row of column names) to 3
    /// (e.g. group, sub-label, year/period, as in demo/areas.xlsx).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=3))]
    pub header_rows: u32,
    /// First port: the processor listens on P, authorities on P+1.., relays after them (QUIC over
    /// UDP); each node serves its metrics over TCP on 127.0.0.1 at the same port number.
    #[arg(long, value_name = "P", default_value_t = defaults::BASE_PORT)]
    pub base_port: u16,
    /// Host or IP the nodes listen on and are reached at.
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Let the authorities answer exact (noise-free) queries. Without it every answer carries DP noise.
    #[arg(long)]
    pub exact: bool,
    /// Total privacy budget (epsilon) per dataset on each authority.
    #[arg(long, value_name = "E", default_value_t = defaults::BUDGET_EPSILON)]
    pub budget: f64,
    /// Minimum number of relays a query must cover (default 2, or 1 with a single relay).
    #[arg(long, value_name = "K")]
    pub min_relays: Option<u32>,
    /// Discrete-log table size on the processor: 2^K baby steps, built on first start.
    #[arg(long, value_name = "K", default_value_t = defaults::DLOG_TABLE_BITS)]
    pub dlog_bits: u32,
    /// The processor solves sums up to |m| < 2^R (counts always solve).
    #[arg(long, value_name = "R", default_value_t = defaults::DLOG_RANGE_BITS)]
    pub dlog_range_bits: u32,
}

/// What `init_cluster` settles before generating anything: the checked
/// arguments, and the folders created.
struct ClusterPlan<'a> {
    args: &'a ClusterArgs,
    out: PathBuf,
    /// the data file, canonical
    data: PathBuf,
    dataset: String,
    min_relays: u32,
}

impl ClusterPlan<'_> {
    /// host:port of node `i` (0 is the processor, then authorities, then relays).
    fn address(&self, i: u32) -> String {
        format!("{}:{}", self.args.host, u32::from(self.args.base_port) + i)
    }

    /// Writes certs/NAME.crt and keys/NAME.key.
    fn node_files(&self, name: String) -> anyhow::Result<NodeFiles> {
        let (crt, key, _) = certificate(&self.out, &name, &self.args.host)?;
        Ok(NodeFiles { name, crt, key })
    }

    fn write_config(&self, file: &str, cfg: &RawConfig) -> anyhow::Result<()> {
        write(&self.out.join(file), &yaml(cfg)?)
    }
}

/// A node's (or the user's) name and TLS files, relative to the folder.
struct NodeFiles {
    name: String,
    crt: String,
    key: String,
}

impl NodeFiles {
    fn peer(&self, address: &str) -> RawPeer {
        RawPeer { name: self.name.clone(), address: address.to_string(), cert: self.crt.clone() }
    }

    /// The config every role starts from: this node, its TLS files and the cluster.
    fn config(&self, role: &str, listen: Option<&str>, cluster: &RawCluster) -> RawConfig {
        RawConfig {
            node: RawNode {
                name: self.name.clone(),
                role: role.to_string(),
                listen: listen.map(str::to_string),
                data_dir: Some(format!("data/{}", self.name)),
            },
            tls: RawTls { cert: self.crt.clone(), key: self.key.clone() },
            timeouts: RawTimeouts::default(),
            limits: RawLimits::default(),
            cluster: cluster.clone(),
            authority: None,
            relay: None,
            processor: None,
            metrics: listen.and_then(metrics_for),
        }
    }
}

/// The metrics endpoint of a node listening (QUIC, UDP) on `listen`:
/// 127.0.0.1 (the operator exposes it further if they wish) and the same
/// port number, over TCP (another transport: the numbers do not clash).
pub(super) fn metrics_for(listen: &str) -> Option<RawMetrics> {
    listen.rsplit_once(':').map(|(_, port)| RawMetrics { listen: format!("127.0.0.1:{port}") })
}

struct AuthorityFiles {
    node: NodeFiles,
    address: String,
    share_path: String,
}

struct RelayFiles {
    node: NodeFiles,
    address: String,
    identity_path: String,
    public_key: String,
}

pub(super) fn init_cluster(a: &ClusterArgs) -> anyhow::Result<()> {
    let plan = plan_cluster(a)?;
    let processor = plan.node_files("processor".to_string())?;
    let processor_address = plan.address(0);
    let authorities = authority_keys(&plan)?;
    let relays = relay_keys(&plan)?;
    let user = plan.node_files("user".to_string())?;
    let cluster = RawCluster {
        dataset: plan.dataset.clone(),
        joint_key: "cluster-key.bin".into(),
        min_relays: plan.min_relays,
        processor: processor.peer(&processor_address),
        authorities: authorities.iter().map(|f| f.node.peer(&f.address)).collect(),
        relays: relays
            .iter()
            .map(|f| RawRelayPeer {
                name: f.node.name.clone(),
                address: f.address.clone(),
                cert: f.node.crt.clone(),
                public_key: f.public_key.clone(),
            })
            .collect(),
        users: Vec::new(),
    };
    write_authority_configs(&plan, &authorities, &cluster)?;
    write_relay_configs(&plan, &relays, &cluster)?;
    let mut pcfg = processor.config("processor", Some(&processor_address), &cluster);
    pcfg.cluster.users = vec![RawUser { name: user.name.clone(), cert: user.crt.clone() }];
    pcfg.processor = Some(RawProcessor {
        dlog_dir: Some("data/processor/dlog".into()),
        dlog_table_bits: a.dlog_bits,
        dlog_range_bits: a.dlog_range_bits,
        ..RawProcessor::default()
    });
    plan.write_config("processor.yaml", &pcfg)?;
    plan.write_config("user.yaml", &user.config("user", None, &cluster))?;
    run_keygen(&plan, &authorities)?;
    print_summary(&plan);
    Ok(())
}

/// Checks the arguments, refuses to replace a cluster without `--force`, and
/// creates the folders.
fn plan_cluster(a: &ClusterArgs) -> anyhow::Result<ClusterPlan<'_>> {
    let out = a.out.clone().context("--out DIR is required")?;
    let existing = ["processor.yaml", "cluster-key.bin", "keys"].iter().find(|f| out.join(f).exists());
    if let (Some(found), false) = (existing, a.force) {
        bail!(
            "{} already holds a cluster ({found} exists); writing a new one would replace every key. Pick another --out, or pass --force to replace it",
            out.display()
        );
    }
    let data = a.data.clone().context("--data FILE is required: the spreadsheet or CSV the relays serve")?;
    if a.authorities == 0 || a.relays == 0 {
        bail!("--authorities and --relays must be at least 1");
    }
    if let Some(t) = a.threshold {
        if t > a.authorities || (t < 2 && a.authorities > 1) {
            bail!("--threshold {t} must be between 2 and --authorities ({})", a.authorities);
        }
    }
    let data = std::fs::canonicalize(&data).with_context(|| format!("data file {}", data.display()))?;
    if a.host.parse::<IpAddr>().is_err() && a.host.is_empty() {
        bail!("--host must be an IP address or host name");
    }
    let last_port = u32::from(a.base_port) + a.authorities + a.relays;
    if last_port > u32::from(u16::MAX) {
        bail!("ports {}..={last_port} do not fit below 65536; lower --base-port", a.base_port);
    }
    for dir in ["", "certs", "keys", "data"] {
        std::fs::create_dir_all(out.join(dir)).with_context(|| format!("creating {}", out.join(dir).display()))?;
    }
    let dataset = data.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "dataset".into());
    let min_relays = a.min_relays.unwrap_or(if a.relays == 1 { 1 } else { defaults::MIN_RELAYS });
    if min_relays > a.relays {
        bail!("--min-relays {min_relays} is more than the {} relays", a.relays);
    }
    Ok(ClusterPlan { args: a, out, data, dataset, min_relays })
}

/// Each authority's certificate and where its key share will be (made by
/// `keygen`, not here).
fn authority_keys(plan: &ClusterPlan<'_>) -> anyhow::Result<Vec<AuthorityFiles>> {
    let mut authorities = Vec::new();
    for i in 1..=plan.args.authorities {
        let node = plan.node_files(format!("authority-{i}"))?;
        let share_path = format!("keys/{}.share", node.name);
        authorities.push(AuthorityFiles { node, address: plan.address(i), share_path });
    }
    Ok(authorities)
}

/// The distributed key generation, one `crux-node keygen` process per
/// authority, all at once (so each makes its own share and no process
/// holds two); they write their shares and `cluster-key.bin`.
fn run_keygen(plan: &ClusterPlan<'_>, authorities: &[AuthorityFiles]) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the crux-node binary to run keygen")?;
    let threshold = plan.args.threshold.unwrap_or(plan.args.authorities).to_string();
    // `--force` replaces a cluster: its shares and committee file go first
    // (keygen never overwrites a share)
    for old in authorities.iter().map(|f| plan.out.join(&f.share_path)).chain([plan.out.join("cluster-key.bin")]) {
        if old.exists() {
            std::fs::remove_file(&old).with_context(|| format!("removing the replaced {}", old.display()))?;
        }
    }
    let mut children = Vec::new();
    for f in authorities {
        let config = plan.out.join(format!("{}.yaml", f.node.name));
        let child = std::process::Command::new(&exe)
            .args(["keygen", "--phase-timeout", "30", "--threshold", &threshold, "--config"])
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("starting keygen for {}", f.node.name))?;
        children.push((f.node.name.clone(), child));
    }
    let mut failed = Vec::new();
    for (name, child) in children {
        let out = child.wait_with_output().with_context(|| format!("waiting for {name}'s keygen"))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            failed.push(format!("{name}: {}", text.lines().last().unwrap_or("failed")));
        }
    }
    if !failed.is_empty() {
        bail!("the key generation failed ({}); run `crux-node init --force` again", failed.join("; "));
    }
    Ok(())
}

/// Each relay's certificate and signing identity.
fn relay_keys(plan: &ClusterPlan<'_>) -> anyhow::Result<Vec<RelayFiles>> {
    let mut relays = Vec::new();
    for j in 1..=plan.args.relays {
        let node = plan.node_files(format!("relay-{j}"))?;
        let identity = RelayIdentity::generate(&mut OsRng);
        let identity_path = format!("keys/{}.identity", node.name);
        write_relay_identity(&plan.out.join(&identity_path), &identity)?;
        let address = plan.address(plan.args.authorities + j);
        relays.push(RelayFiles { node, address, identity_path, public_key: identity.public_key().to_hex() });
    }
    Ok(relays)
}

fn write_authority_configs(
    plan: &ClusterPlan<'_>,
    authorities: &[AuthorityFiles],
    cluster: &RawCluster,
) -> anyhow::Result<()> {
    for f in authorities {
        let mut cfg = f.node.config("authority", Some(&f.address), cluster);
        cfg.authority = Some(RawAuthority {
            key_share: f.share_path.clone(),
            allow_exact: plan.args.exact,
            budget_epsilon: plan.args.budget,
            replay_window_secs: defaults::REPLAY_WINDOW_SECS,
            allow_single_relay: plan.min_relays < 2,
        });
        plan.write_config(&format!("{}.yaml", f.node.name), &cfg)?;
    }
    Ok(())
}

/// Relay j serves slice j of the data rows, at the scale declared for the
/// whole file.
fn write_relay_configs(plan: &ClusterPlan<'_>, relays: &[RelayFiles], cluster: &RawCluster) -> anyhow::Result<()> {
    let a = plan.args;
    // the declared scale: detected once here, from the whole file, per
    // column; an admin may change it
    let declared = {
        let mut whole = SourceSpec::new(plan.data.clone()).with_header_rows(a.header_rows);
        whole.sheet = a.sheet.clone();
        crate::data::source::declare_detected_decimals(&mut whole)
            .with_context(|| format!("detecting the decimals of {}", plan.data.display()))?;
        whole
    };
    for (j, f) in relays.iter().enumerate() {
        let mut cfg = f.node.config("relay", Some(&f.address), cluster);
        let mut source = SourceSpec::new(plan.data.clone()).with_header_rows(a.header_rows);
        source.sheet = a.sheet.clone();
        source.shard = Some(Shard { index: u32::try_from(j)?, count: a.relays });
        source.decimals = declared.decimals;
        source.publish_columns = a.publish_columns;
        source.column_decimals = declared.column_decimals.clone();
        cfg.relay = Some(RawRelay { identity_key: f.identity_path.clone(), sources: vec![source] });
        plan.write_config(&format!("{}.yaml", f.node.name), &cfg)?;
    }
    Ok(())
}

fn print_summary(plan: &ClusterPlan<'_>) {
    let a = plan.args;
    println!(
        "wrote a cluster of {} authorities, 1 processor and {} relays to {}",
        a.authorities,
        a.relays,
        plan.out.display()
    );
    println!("  dataset {:?} from {} (relay j serves slice j of its data rows)", plan.dataset, plan.data.display());
    println!("  exact queries {}", if a.exact { "allowed" } else { "refused (every answer carries DP noise)" });
    println!("start each node with: crux-node start --config {}/<node>.yaml", plan.out.display());
}

pub(super) fn add_user(out: &Path, name: &str) -> anyhow::Result<()> {
    check_name("user", name)?;
    let user = format!("user-{name}");
    let pfile = out.join("processor.yaml");
    let text = std::fs::read_to_string(&pfile)
        .with_context(|| format!("reading {} (run `crux-node init` first)", pfile.display()))?;
    let mut pcfg: RawConfig = serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", pfile.display()))?;
    if pcfg.cluster.users.iter().any(|u| u.name == user) {
        bail!("user {user} exists already in {}", pfile.display());
    }
    let host = pcfg
        .cluster
        .processor
        .address
        .rsplit_once(':')
        .map(|(h, _)| h.to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let (crt, key, _) = certificate(out, &user, &host)?;
    pcfg.cluster.users.push(RawUser { name: user.clone(), cert: crt.clone() });
    write(&pfile, &yaml(&pcfg)?)?;
    let mut ucfg = pcfg.clone();
    ucfg.node = RawNode { name: user.clone(), role: "user".into(), listen: None, data_dir: None };
    ucfg.tls = RawTls { cert: crt, key };
    ucfg.cluster.users.clear();
    ucfg.processor = None;
    ucfg.metrics = None;
    let ufile = out.join(format!("{user}.yaml"));
    write(&ufile, &yaml(&ucfg)?)?;
    println!("added user {user}: {} (restart the processor to accept it)", ufile.display());
    Ok(())
}

/// Adds authority NAME at HOST:PORT to the local cluster in `out`: its TLS
/// files, `NAME.yaml` (the first authority's config with this node's name,
/// address, files, and itself among `cluster.authorities`) and its public
/// card `NAME.card.yaml`. It holds no share yet: the committee's members
/// propose, approve and apply its addition (`crux-node committee`), then it
/// starts. The running nodes need no change.
pub(super) fn add_authority(out: &Path, name: &str, host: &str, port: u16) -> anyhow::Result<()> {
    check_name("authority", name)?;
    let file = out.join(format!("{name}.yaml"));
    if file.exists() {
        bail!("{} exists already: choose another name", file.display());
    }
    let pfile = out.join("processor.yaml");
    let text = std::fs::read_to_string(&pfile).with_context(|| format!("reading {}", pfile.display()))?;
    let pcfg: RawConfig = serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", pfile.display()))?;
    let first = pcfg.cluster.authorities.first().context("the cluster has no authority to copy the settings of")?;
    let tfile = out.join(format!("{}.yaml", first.name));
    let text = std::fs::read_to_string(&tfile).with_context(|| format!("reading {}", tfile.display()))?;
    let mut cfg: RawConfig = serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", tfile.display()))?;
    let (crt, key, pem) = certificate(out, name, host)?;
    let address = format!("{host}:{port}");
    cfg.node = RawNode {
        name: name.to_string(),
        role: "authority".into(),
        listen: Some(address.clone()),
        data_dir: Some(format!("data/{name}")),
    };
    cfg.tls = RawTls { cert: crt.clone(), key };
    cfg.metrics = metrics_for(&address);
    if let Some(a) = cfg.authority.as_mut() {
        a.key_share = format!("keys/{name}.share");
    }
    cfg.cluster.authorities.retain(|p| p.name != name);
    cfg.cluster.authorities.push(RawPeer { name: name.to_string(), address: address.clone(), cert: crt });
    write(&file, &yaml(&cfg)?)?;
    let card = super::card::Card {
        format: Some(super::card::CARD_FORMAT.to_string()),
        name: name.to_string(),
        role: "authority".into(),
        address: Some(address),
        certificate: pem,
        public_key: None,
    };
    let card_file = out.join(format!("{name}.card.yaml"));
    write(&card_file, &serde_yaml_ng::to_string(&card).context("encoding the card")?)?;
    println!("added authority {name}: {} and its card {}", file.display(), card_file.display());
    println!(
        "next: a member proposes it (`crux-node committee propose add --card {} --config MEMBER.yaml --out change.json`), t members approve, every member and {name} run `crux-node committee apply`, then start {name}",
        card_file.display()
    );
    Ok(())
}
