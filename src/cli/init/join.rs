//! `crux-node init join --config DIR/node.yaml --cluster cluster.yaml`: one
//! node's side of the exchange. Checks the cluster file as `assemble` did,
//! finds this node in it (same name, role and certificate, and for a relay
//! the same public key as its own identity), writes every peer's
//! certificate to `DIR/certs/` (the pins) and the `cluster` section into
//! node.yaml, keeping the rest of the file's settings. The new config must
//! load (`NodeConfig::load`), or the old file is put back. Run it again
//! after the admin re-assembles (a relay or user added): it replaces the
//! section. Reads this node's own identity only to compare public keys.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use serde_yaml_ng::{Mapping, Value};

use super::card::{plural, read_cluster, CardRole, CheckedCard, ClusterFile};
use super::files::{write, yaml};
use super::node::COMMITTEE_FILE;
use crate::actors::tls::PinnedPeer;
use crate::config::raw::{RawCluster, RawPeer, RawRelayPeer, RawUser};
use crate::config::NodeConfig;

#[derive(Debug, Args)]
pub struct JoinArgs {
    /// This node's config (DIR/node.yaml, written by `crux-node init ROLE NAME`).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The cluster file the admin assembled (`crux-node init assemble`).
    #[arg(long, value_name = "FILE")]
    pub cluster: PathBuf,
}

/// What join needs from node.yaml before it changes it.
struct ThisNode {
    name: String,
    role: String,
    dir: PathBuf,
    config: Mapping,
    text: String,
}

pub(super) fn run(a: &JoinArgs) -> anyhow::Result<()> {
    let (file, cards) = read_cluster(&a.cluster)?;
    let node = read_node(&a.config)?;
    let me = cards.iter().find(|c| c.card.name == node.name).with_context(|| {
        let names: Vec<&str> = cards.iter().map(|c| c.card.name.as_str()).collect();
        format!(
            "{} does not name this node {:?} (it names {}): send {}.card.yaml to the admin, who adds it with `crux-node init assemble`, then join the new cluster file",
            a.cluster.display(),
            node.name,
            names.join(", "),
            node.name
        )
    })?;
    if me.role.as_str() != node.role {
        bail!(
            "{} names {:?} as a {}, but {} is a {}: the admin has another node's card under this name",
            a.cluster.display(),
            node.name,
            me.role.as_str(),
            a.config.display(),
            node.role
        );
    }
    check_own_certificate(&node, me)?;
    check_own_relay_key(&node, me)?;
    let cluster = cluster_section(&node, &file, &cards)?;
    write_config(&a.config, &node, &cluster)?;
    println!(
        "{} joined cluster {:?}: processor, {}, {}; peers' certificates in {}",
        node.name,
        file.dataset,
        plural(cluster.authorities.len(), "authority", "authorities"),
        plural(cluster.relays.len(), "relay", "relays"),
        node.dir.join("certs").display()
    );
    if node.role == "authority" {
        println!(
            "next: `crux-node keygen --config {} --threshold T` on every authority at the same time",
            a.config.display()
        );
    } else if node.role != "user" {
        println!("next: copy {COMMITTEE_FILE} from an authority (after keygen) to {}", node.dir.display());
    }
    Ok(())
}

fn read_node(path: &Path) -> anyhow::Result<ThisNode> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} (the node.yaml `crux-node init ROLE NAME` wrote)", path.display()))?;
    let value: Value = serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let config = value.as_mapping().cloned().with_context(|| format!("{} is not a node config", path.display()))?;
    let field = |key: &str| {
        config
            .get("node")
            .and_then(|n| n.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
            .with_context(|| format!("{} has no `node.{key}`: is it a node config?", path.display()))
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(ThisNode { name: field("name")?, role: field("role")?, dir, config, text })
}

/// A path from node.yaml, relative to its folder.
fn config_path(node: &ThisNode, section: &str, key: &str) -> anyhow::Result<PathBuf> {
    let text = node
        .config
        .get(section)
        .and_then(|s| s.get(key))
        .and_then(Value::as_str)
        .with_context(|| format!("node.yaml of {} has no `{section}.{key}`", node.name))?;
    Ok(node.dir.join(text))
}

/// The cluster file carries this node's own certificate.
fn check_own_certificate(node: &ThisNode, me: &CheckedCard) -> anyhow::Result<()> {
    let path = config_path(node, "tls", "cert")?;
    let pem = std::fs::read_to_string(&path)
        .with_context(|| format!("reading this node's certificate {}", path.display()))?;
    let mine = PinnedPeer::from_pem(&node.name, &pem)?.fingerprint_hex();
    if mine != me.fingerprint {
        bail!(
            "the cluster file's certificate for {} (fingerprint {}) is not this node's ({}, fingerprint {mine}): the admin has an old or foreign card; send {}.card.yaml again",
            node.name,
            me.fingerprint,
            path.display(),
            node.name
        );
    }
    Ok(())
}

/// For a relay: the cluster file carries the public key of its own identity.
fn check_own_relay_key(node: &ThisNode, me: &CheckedCard) -> anyhow::Result<()> {
    if me.role != CardRole::Relay {
        return Ok(());
    }
    let path = config_path(node, "relay", "identity_key")?;
    let mine = crate::data::read_relay_identity(&path)?.public_key().to_hex();
    if me.card.public_key.as_deref() != Some(mine.as_str()) {
        bail!(
            "the cluster file's public key for relay {} is not this relay's ({}): the admin has an old card; send {}.card.yaml again",
            node.name,
            path.display(),
            node.name
        );
    }
    Ok(())
}

/// Writes every peer's certificate to certs/ and returns the `cluster` section.
fn cluster_section(node: &ThisNode, file: &ClusterFile, cards: &[CheckedCard]) -> anyhow::Result<RawCluster> {
    let joint_key = node
        .config
        .get("cluster")
        .and_then(|c| c.get("joint_key"))
        .and_then(Value::as_str)
        .unwrap_or(COMMITTEE_FILE)
        .to_string();
    let mut cluster =
        RawCluster { dataset: file.dataset.clone(), joint_key, min_relays: file.min_relays, ..RawCluster::default() };
    for c in cards {
        // users are pinned by the processor only
        if c.role == CardRole::User && node.role != "processor" {
            continue;
        }
        let cert = format!("certs/{}.crt", c.card.name);
        if c.card.name != node.name {
            write(&node.dir.join(&cert), &c.card.certificate)?;
        }
        let (name, address) = (c.card.name.clone(), c.card.address.clone().unwrap_or_default());
        match c.role {
            CardRole::Processor => cluster.processor = RawPeer { name, address, cert },
            CardRole::Authority => cluster.authorities.push(RawPeer { name, address, cert }),
            CardRole::Relay => {
                let public_key = c.card.public_key.clone().unwrap_or_default();
                cluster.relays.push(RawRelayPeer { name, address, cert, public_key });
            }
            CardRole::User => cluster.users.push(RawUser { name, cert }),
        }
    }
    Ok(cluster)
}

/// node.yaml with `cluster` replaced (sections in the usual order); the
/// old text is put back when the new config does not load.
fn write_config(path: &Path, node: &ThisNode, cluster: &RawCluster) -> anyhow::Result<()> {
    let section = serde_yaml_ng::to_value(cluster).context("encoding the cluster section")?;
    let mut config = Mapping::new();
    for key in ["node", "tls", "timeouts", "limits"] {
        if let Some(v) = node.config.get(key) {
            config.insert(Value::from(key), v.clone());
        }
    }
    config.insert(Value::from("cluster"), section);
    for (k, v) in &node.config {
        if !config.contains_key(k) {
            config.insert(k.clone(), v.clone());
        }
    }
    write(path, &yaml(&config)?)?;
    if let Err(e) = NodeConfig::load(path) {
        write(path, &node.text)?;
        return Err(anyhow::Error::new(e).context(format!(
            "the joined config does not load, so {} was left as it was; fix what the message says and join again",
            path.display()
        )));
    }
    Ok(())
}
