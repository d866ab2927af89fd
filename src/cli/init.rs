//! `crux-node init`: writes a whole cluster's configs, keys and certificates
//! into one folder (for a local cluster, or as a starting point to copy to
//! real hosts), and `crux-node init user NAME` adds a user to it.
//!
//! Layout: `authority-<i>.yaml`, `processor.yaml`, `relay-<j>.yaml`,
//! `user.yaml`, `certs/` (public certificates), `keys/` (private keys, key
//! shares and relay identities, mode 0600), `cluster-key.bin` (the
//! authorities' public shares with proofs).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use rand::rngs::OsRng;

use crate::actors::tls::generate_certificate;
use crate::config::defaults;
use crate::config::raw::*;
use crate::crypto::{KeyShare, PublicShare, RelayIdentity};
use crate::data::keystore::write_joint_key;
use crate::data::{write_key_share, write_relay_identity, Shard, SourceSpec};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct InitArgs {
    #[command(subcommand)]
    pub command: Option<InitCommand>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Subcommand)]
pub enum InitCommand {
    /// Add a user (client certificate) to an existing cluster folder: writes
    /// `user-NAME.yaml` and pins the certificate in `processor.yaml`
    /// (restart the processor to apply).
    User {
        /// user name (letters, digits, '-', '_')
        name: String,
        /// the cluster folder written by `crux-node init`
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

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
    /// Number of authorities (the key is split n-of-n among them).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub authorities: u32,
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
    /// First port: the processor listens on P, authorities on P+1.., relays after them.
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
    /// The processor solves |m| < 2^R.
    #[arg(long, value_name = "R", default_value_t = defaults::DLOG_RANGE_BITS)]
    pub dlog_range_bits: u32,
}

pub fn run(args: InitArgs) -> anyhow::Result<()> {
    match args.command {
        Some(InitCommand::User { name, out }) => add_user(&out, &name),
        None => init_cluster(&args.cluster),
    }
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

fn hosts_for(host: &str) -> Vec<String> {
    let mut hosts = vec![host.to_string()];
    if host != "127.0.0.1" {
        hosts.push("127.0.0.1".into());
    }
    hosts
}

/// Writes certs/NAME.crt and keys/NAME.key; returns their paths relative to the folder.
fn certificate(out: &Path, name: &str, host: &str) -> anyhow::Result<(String, String)> {
    let cert = generate_certificate(name, &hosts_for(host))?;
    let crt = format!("certs/{name}.crt");
    let key = format!("keys/{name}.key");
    write(&out.join(&crt), &cert.cert_pem)?;
    write_private(&out.join(&key), &cert.key_pem)?;
    Ok((crt, key))
}

fn yaml(raw: &RawConfig) -> anyhow::Result<String> {
    Ok(format!(
        "# Crux node configuration, written by `crux-node init`.\n# Every key can be overridden by an environment variable CRUX__SECTION__KEY,\n# e.g. CRUX__NODE__LISTEN=127.0.0.1:9000. Relative paths are relative to this file.\n{}",
        serde_yaml_ng::to_string(raw).context("encoding YAML")?
    ))
}

/// A node or user name: it becomes a file name and a certificate name.
fn check_name(what: &str, name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !ok {
        bail!("{what} name {name:?} is not valid: use 1 to 48 letters, digits, '-' or '_', starting with a letter or digit (e.g. bob-smith)");
    }
    Ok(())
}

fn init_cluster(a: &ClusterArgs) -> anyhow::Result<()> {
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
    let port = |i: u32| -> String { format!("{}:{}", a.host, u32::from(a.base_port) + i) };

    let processor_name = "processor".to_string();
    let (p_crt, p_key) = certificate(&out, &processor_name, &a.host)?;
    let mut shares: Vec<PublicShare> = Vec::new();
    let mut authorities = Vec::new();
    for i in 1..=a.authorities {
        let name = format!("authority-{i}");
        let (crt, key) = certificate(&out, &name, &a.host)?;
        let share = KeyShare::generate(&name, &mut OsRng);
        let share_path = format!("keys/{name}.share");
        write_key_share(&out.join(&share_path), &share)?;
        shares.push(share.public_share(&mut OsRng));
        authorities.push((name, port(i), crt, key, share_path));
    }
    write_joint_key(&out.join("cluster-key.bin"), &shares)?;
    let mut relays = Vec::new();
    for j in 1..=a.relays {
        let name = format!("relay-{j}");
        let (crt, key) = certificate(&out, &name, &a.host)?;
        let identity = RelayIdentity::generate(&mut OsRng);
        let id_path = format!("keys/{name}.identity");
        write_relay_identity(&out.join(&id_path), &identity)?;
        relays.push((name, port(a.authorities + j), crt, key, id_path, identity.public_key().to_hex()));
    }
    let user_name = "user".to_string();
    let (u_crt, u_key) = certificate(&out, &user_name, &a.host)?;

    let cluster = RawCluster {
        dataset: dataset.clone(),
        joint_key: "cluster-key.bin".into(),
        min_relays,
        processor: RawPeer { name: processor_name.clone(), address: port(0), cert: p_crt.clone() },
        authorities: authorities
            .iter()
            .map(|(n, addr, crt, _, _)| RawPeer { name: n.clone(), address: addr.clone(), cert: crt.clone() })
            .collect(),
        relays: relays
            .iter()
            .map(|(n, addr, crt, _, _, pk)| RawRelayPeer {
                name: n.clone(),
                address: addr.clone(),
                cert: crt.clone(),
                public_key: pk.clone(),
            })
            .collect(),
        users: Vec::new(),
    };
    let node = |name: &str, role: &str, listen: Option<String>| RawNode {
        name: name.to_string(),
        role: role.to_string(),
        listen,
        data_dir: Some(format!("data/{name}")),
    };
    let base = |name: &str, role: &str, listen: Option<String>, crt: &str, key: &str| RawConfig {
        node: node(name, role, listen),
        tls: RawTls { cert: crt.to_string(), key: key.to_string() },
        timeouts: RawTimeouts::default(),
        limits: RawLimits::default(),
        cluster: cluster.clone(),
        authority: None,
        relay: None,
        processor: None,
    };
    for (name, addr, crt, key, share) in &authorities {
        let mut cfg = base(name, "authority", Some(addr.clone()), crt, key);
        cfg.authority = Some(RawAuthority {
            key_share: share.clone(),
            allow_exact: a.exact,
            budget_epsilon: a.budget,
            replay_window_secs: defaults::REPLAY_WINDOW_SECS,
            allow_single_relay: min_relays < 2,
        });
        write(&out.join(format!("{name}.yaml")), &yaml(&cfg)?)?;
    }
    // the declared scale: detected once here, from the whole file, per
    // column; an admin may change it
    let declared = {
        let mut whole = SourceSpec::new(data.clone()).with_header_rows(a.header_rows);
        whole.sheet = a.sheet.clone();
        crate::data::source::declare_detected_decimals(&mut whole)
            .with_context(|| format!("detecting the decimals of {}", data.display()))?;
        whole
    };
    for (j, (name, addr, crt, key, id, _)) in relays.iter().enumerate() {
        let mut cfg = base(name, "relay", Some(addr.clone()), crt, key);
        let mut source = SourceSpec::new(data.clone()).with_header_rows(a.header_rows);
        source.sheet = a.sheet.clone();
        source.shard = Some(Shard { index: u32::try_from(j)?, count: a.relays });
        source.decimals = declared.decimals;
        source.publish_columns = a.publish_columns;
        source.column_decimals = declared.column_decimals.clone();
        cfg.relay = Some(RawRelay { identity_key: id.clone(), sources: vec![source] });
        write(&out.join(format!("{name}.yaml")), &yaml(&cfg)?)?;
    }
    let mut pcfg = base(&processor_name, "processor", Some(port(0)), &p_crt, &p_key);
    pcfg.cluster.users = vec![RawUser { name: user_name.clone(), cert: u_crt.clone() }];
    pcfg.processor = Some(RawProcessor {
        dlog_dir: Some("data/processor/dlog".into()),
        dlog_table_bits: a.dlog_bits,
        dlog_range_bits: a.dlog_range_bits,
        ..RawProcessor::default()
    });
    write(&out.join("processor.yaml"), &yaml(&pcfg)?)?;
    let ucfg = base(&user_name, "user", None, &u_crt, &u_key);
    write(&out.join("user.yaml"), &yaml(&ucfg)?)?;

    println!(
        "wrote a cluster of {} authorities, 1 processor and {} relays to {}",
        a.authorities,
        a.relays,
        out.display()
    );
    println!("  dataset {dataset:?} from {} (relay j serves slice j of its data rows)", data.display());
    println!("  exact queries {}", if a.exact { "allowed" } else { "refused (every answer carries DP noise)" });
    println!("start each node with: crux-node start --config {}/<node>.yaml", out.display());
    Ok(())
}

fn add_user(out: &Path, name: &str) -> anyhow::Result<()> {
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
    let (crt, key) = certificate(out, &user, &host)?;
    pcfg.cluster.users.push(RawUser { name: user.clone(), cert: crt.clone() });
    write(&pfile, &yaml(&pcfg)?)?;
    let mut ucfg = pcfg.clone();
    ucfg.node = RawNode { name: user.clone(), role: "user".into(), listen: None, data_dir: None };
    ucfg.tls = RawTls { cert: crt, key };
    ucfg.cluster.users.clear();
    ucfg.processor = None;
    let ufile = out.join(format!("{user}.yaml"));
    write(&ufile, &yaml(&ucfg)?)?;
    println!("added user {user}: {} (restart the processor to accept it)", ufile.display());
    Ok(())
}
