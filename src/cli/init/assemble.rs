//! `crux-node init assemble --dataset NAME CARD... [--out cluster.yaml]`:
//! the admin's step. Reads the cards every node's operator sent (public
//! files only, `card.rs`), checks them together and writes `cluster.yaml`
//! (to stdout by default), which every node then joins (`join.rs`).
//! `--from` extends an earlier cluster file (a relay or user added later).
//! Prints each node's certificate fingerprint on stderr so that the admin
//! can compare it with what the node's operator saw.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

use super::card::{
    check_cluster, default_min_relays, plural, read_card, read_cluster, CardRole, CheckedCard, ClusterFile,
    CLUSTER_FORMAT,
};
use super::files::write;

#[derive(Debug, Args)]
pub struct AssembleArgs {
    /// The card files (NAME.card.yaml) of the processor, every authority, relay and user.
    /// Authorities keep the order given: it is the committee's order.
    #[arg(value_name = "CARD")]
    pub cards: Vec<PathBuf>,
    /// Name of the dataset the relays serve: the authorities' privacy-budget key (e.g. areas).
    #[arg(long, value_name = "NAME")]
    pub dataset: Option<String>,
    /// Relays a query must cover (default 2, or 1 with a single relay).
    #[arg(long, value_name = "K")]
    pub min_relays: Option<u32>,
    /// Start from this cluster file and add the cards to it (to add a relay or a user later).
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Write the cluster file here (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub(super) fn run(a: &AssembleArgs) -> anyhow::Result<()> {
    let earlier = a.from.as_deref().map(read_cluster).transpose()?;
    if a.cards.is_empty() && earlier.is_none() {
        bail!("name the card files to assemble, e.g. `crux-node init assemble --dataset areas *.card.yaml`");
    }
    let mut cards: Vec<CheckedCard> = earlier.as_ref().map(|(_, cards)| cards.clone()).unwrap_or_default();
    for path in &a.cards {
        cards.push(read_card(path)?);
    }
    let dataset = match (&a.dataset, &earlier) {
        (Some(d), _) => d.trim().to_string(),
        (None, Some((file, _))) => file.dataset.clone(),
        (None, None) => bail!("--dataset NAME is required: the name of the data the relays serve (e.g. areas)"),
    };
    if dataset.is_empty() || dataset.chars().any(char::is_control) {
        bail!("--dataset {dataset:?} must be a non-empty name without control characters");
    }
    let min_relays = match (a.min_relays, &earlier) {
        (Some(k), _) => k,
        (None, Some((file, _))) => file.min_relays,
        (None, None) => default_min_relays(&cards),
    };
    check_cluster(&cards, min_relays)?;
    let file = ClusterFile { format: CLUSTER_FORMAT.to_string(), dataset, min_relays, nodes: ordered(&cards) };
    let text = format!(
        "# Crux cluster file (public), written by `crux-node init assemble`. On every node:\n#   crux-node init join --config DIR/node.yaml --cluster cluster.yaml\n{}",
        serde_yaml_ng::to_string(&file).context("encoding the cluster file")?
    );
    match &a.out {
        Some(path) => write_atomic(path, &text)?,
        None => print!("{text}"),
    }
    summary(&file, &cards, a.out.as_deref());
    Ok(())
}

/// Processor, authorities, relays, users; each role in the order given.
fn ordered(cards: &[CheckedCard]) -> Vec<super::card::Card> {
    let roles = [CardRole::Processor, CardRole::Authority, CardRole::Relay, CardRole::User];
    let mut nodes = Vec::new();
    for role in roles {
        for c in cards.iter().filter(|c| c.role == role) {
            let mut card = c.card.clone();
            card.format = None;
            nodes.push(card);
        }
    }
    nodes
}

fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    write(&tmp, text)?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// What was assembled, with fingerprints, on stderr (stdout may be the file).
fn summary(file: &ClusterFile, cards: &[CheckedCard], out: Option<&Path>) {
    let count = |role: CardRole| cards.iter().filter(|c| c.role == role).count();
    eprintln!(
        "cluster {:?}: 1 processor, {}, {} (a query needs {}), {}{}",
        file.dataset,
        plural(count(CardRole::Authority), "authority", "authorities"),
        plural(count(CardRole::Relay), "relay", "relays"),
        file.min_relays,
        plural(count(CardRole::User), "user", "users"),
        out.map(|p| format!(", written to {}", p.display())).unwrap_or_default()
    );
    eprintln!("certificate fingerprints (compare each with what `crux-node init` printed on its host):");
    for node in &file.nodes {
        let fingerprint = cards.iter().find(|c| c.card.name == node.name).map(|c| c.fingerprint.as_str());
        eprintln!("  {:<10} {:<20} {}", node.role, node.name, fingerprint.unwrap_or_default());
    }
}
