//! `crux-node committee propose|approve|apply`: an authority committee
//! change, each step run by an authority's operator on its own node.
//!
//! 1. `propose` (any current member) writes a change file (`crux-change/v1`)
//!    naming the new committee, its threshold, the dealers and each
//!    participant's ceremony address, approved by the proposer.
//! 2. `approve` (each other member that agrees) checks the change against
//!    its own committee file and adds its signature (made with its own key
//!    share). A change needs t approvals.
//! 3. `apply` (every dealer and new member, at the same time) runs the
//!    ceremony (`actors::ceremony`); the running nodes switch to the new
//!    committee without a restart (`actors::committee_watch`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use rand::rngs::OsRng;

use crate::actors::ceremony;
use crate::cli::init::card::{read_card, CardRole};
use crate::config::{NodeConfig, RoleConfig};
use crate::crypto::JointPublicKey;
use crate::data::committee_files::{read_change, read_transition, transition_path, write_change, ApprovedChange};
use crate::data::keystore::read_committee;
use crate::data::read_key_share;
use crate::protocol::committee::{ChangeKind, CommitteeChange, Endpoint};

/// How far a ceremony port is from the node's port unless `--ceremony` says otherwise.
pub const CEREMONY_PORT_OFFSET: u16 = 1000;

#[derive(Debug, Args)]
pub struct ProposeCommon {
    /// This authority's configuration (a current member).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Where to write the change file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The ceremony address of a participant, NAME=HOST:PORT (repeatable); default: its node's
    /// host with the node's port + 1000. The running nodes keep their own ports.
    #[arg(long, value_name = "NAME=HOST:PORT")]
    pub ceremony: Vec<String>,
    /// Leave the current member NAME out of the dealers (repeatable), e.g. one that is down
    /// or has no share: at least t members must still deal. Not for `rotate`, which all run.
    #[arg(long, value_name = "NAME")]
    pub without: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ProposeKind {
    /// Add the authority of CARD (its `crux-node init authority` card); the joint key stays.
    Add {
        #[arg(long, value_name = "FILE")]
        card: PathBuf,
        /// The new threshold (default: the current one).
        #[arg(long, value_name = "T")]
        threshold: Option<u16>,
        #[command(flatten)]
        common: ProposeCommon,
    },
    /// Remove the member NAME; its share stops counting; the joint key stays.
    Remove {
        name: String,
        /// The new threshold (default: the current one, at most the members left).
        #[arg(long, value_name = "T")]
        threshold: Option<u16>,
        #[command(flatten)]
        common: ProposeCommon,
    },
    /// Set the threshold to T for the same members; the joint key stays.
    Threshold {
        threshold: u16,
        #[command(flatten)]
        common: ProposeCommon,
    },
    /// A fresh key generation among the same members: a new epoch with a new joint key.
    Rotate {
        #[command(flatten)]
        common: ProposeCommon,
    },
}

/// The current committee, this authority's config, and every member's
/// endpoint (configured peers, then the last transition's endpoints).
struct Current {
    cfg: NodeConfig,
    joint: JointPublicKey,
    known: Vec<Endpoint>,
}

fn current(config: &Path) -> anyhow::Result<Current> {
    let cfg = NodeConfig::load(config)?;
    if !matches!(cfg.role, RoleConfig::Authority(_)) {
        bail!("{} is not an authority's configuration: committee changes are run by authorities", config.display());
    }
    let joint = read_committee(&cfg.cluster.joint_key)?;
    let mut known = Vec::new();
    for peer in &cfg.cluster.authorities {
        let certificate = std::fs::read_to_string(&peer.cert)
            .with_context(|| format!("reading {}'s certificate {}", peer.name, peer.cert.display()))?;
        known.push(Endpoint {
            name: peer.name.clone(),
            index: 0,
            address: peer.address.clone(),
            ceremony: String::new(),
            certificate,
        });
    }
    let transition = transition_path(&cfg.cluster.joint_key);
    if transition.exists() {
        let signed = read_transition(&transition).map_err(anyhow::Error::msg)?;
        for e in signed.transition.endpoints {
            if !known.iter().any(|k| k.name == e.name) {
                known.push(e);
            }
        }
    }
    Ok(Current { cfg, joint, known })
}

fn default_ceremony(address: &str) -> anyhow::Result<String> {
    let (host, port) = address.rsplit_once(':').with_context(|| format!("address {address} has no port"))?;
    let port: u16 = port.parse().with_context(|| format!("address {address}: bad port"))?;
    let port = port
        .checked_add(CEREMONY_PORT_OFFSET)
        .with_context(|| format!("address {address}: port too high for the default ceremony port; pass --ceremony"))?;
    Ok(format!("{host}:{port}"))
}

fn endpoint(c: &Current, name: &str, index: u16, overrides: &[(String, String)]) -> anyhow::Result<Endpoint> {
    let known = c.known.iter().find(|e| e.name == name).with_context(|| {
        format!("no address or certificate known for {name}: it is neither in cluster.authorities nor in the last transition")
    })?;
    let ceremony = match overrides.iter().find(|(n, _)| n == name) {
        Some((_, addr)) => addr.clone(),
        None => default_ceremony(&known.address)?,
    };
    Ok(Endpoint {
        name: name.to_string(),
        index,
        address: known.address.clone(),
        ceremony,
        certificate: known.certificate.clone(),
    })
}

fn overrides(list: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    list.iter()
        .map(|item| {
            let (name, addr) =
                item.split_once('=').with_context(|| format!("--ceremony {item}: expected NAME=HOST:PORT"))?;
            addr.parse::<SocketAddr>().map(|_| ()).or_else(|_| default_ceremony(addr).map(|_| ()))?;
            Ok((name.to_string(), addr.to_string()))
        })
        .collect()
}

/// Builds the change for `kind` against the current committee.
fn build(kind: &ProposeKind, c: &mut Current) -> anyhow::Result<(CommitteeChange, Vec<(String, String)>)> {
    let members = c.joint.members().to_vec();
    let t = c.joint.threshold();
    let next_index = members.iter().map(|m| m.index).max().unwrap_or(0).saturating_add(1);
    let (kind_code, subject, threshold, common) = match kind {
        ProposeKind::Add { card, threshold, common } => {
            let checked = read_card(card)?;
            if checked.role != CardRole::Authority {
                bail!("{} is the card of a {}, not of an authority", card.display(), checked.card.role);
            }
            let address =
                checked.card.address.clone().with_context(|| format!("card {} has no address", card.display()))?;
            c.known.retain(|e| e.name != checked.card.name);
            c.known.push(Endpoint {
                name: checked.card.name.clone(),
                index: 0,
                address,
                ceremony: String::new(),
                certificate: checked.card.certificate.clone(),
            });
            (ChangeKind::Add, Some(checked.card.name.clone()), threshold.unwrap_or(t), common)
        }
        ProposeKind::Remove { name, threshold, common } => {
            let left = u16::try_from(members.len().saturating_sub(1)).unwrap_or(u16::MAX);
            (ChangeKind::Remove, Some(name.clone()), threshold.unwrap_or(t.min(left)), common)
        }
        ProposeKind::Threshold { threshold, common } => (ChangeKind::Threshold, None, *threshold, common),
        ProposeKind::Rotate { common } => (ChangeKind::Rotate, None, t, common),
    };
    let overrides = overrides(&common.ceremony)?;
    let mut new_members = Vec::new();
    for m in &members {
        if kind_code == ChangeKind::Remove && Some(&m.authority) == subject.as_ref() {
            continue;
        }
        new_members.push(endpoint(c, &m.authority, m.index, &overrides)?);
    }
    if let (ChangeKind::Add, Some(name)) = (kind_code, &subject) {
        new_members.push(endpoint(c, name, next_index, &overrides)?);
    }
    // every current member deals (a removed one too: it may be needed for
    // t), but those left out with --without
    for name in &common.without {
        if !members.iter().any(|m| m.authority == *name) {
            bail!("--without {name}: not a member of committee epoch {}", c.joint.epoch());
        }
    }
    let dealers = members
        .iter()
        .filter(|m| !common.without.contains(&m.authority))
        .map(|m| endpoint(c, &m.authority, m.index, &overrides))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let change = CommitteeChange {
        from_epoch: c.joint.epoch(),
        from_key: c.joint.fingerprint(),
        kind: kind_code,
        subject,
        threshold,
        dealers,
        members: new_members,
    };
    change.check(&c.joint)?;
    Ok((change, overrides))
}

pub fn propose(kind: &ProposeKind) -> anyhow::Result<()> {
    let common = match kind {
        ProposeKind::Add { common, .. }
        | ProposeKind::Remove { common, .. }
        | ProposeKind::Threshold { common, .. }
        | ProposeKind::Rotate { common } => common,
    };
    let mut c = current(&common.config)?;
    let (change, _) = build(kind, &mut c)?;
    let mut approved = ApprovedChange { change, approvals: Vec::new() };
    sign(&c, &mut approved)?;
    write_change(&common.out, &approved).map_err(anyhow::Error::msg)?;
    println!("{}", describe(&approved.change));
    println!(
        "change file: {} (approved by {}; {} approvals needed): each other operator runs `crux-node committee approve --config THEIR.yaml {}`",
        common.out.display(),
        c.cfg.name,
        c.joint.threshold(),
        common.out.display()
    );
    Ok(())
}

fn sign(c: &Current, approved: &mut ApprovedChange) -> anyhow::Result<()> {
    let RoleConfig::Authority(a) = &c.cfg.role else { bail!("not an authority") };
    let share = read_key_share(&a.key_share)?;
    if share.epoch() != c.joint.epoch() || c.joint.share_of(&c.cfg.name).map(|m| m.point) != Some(share.public_point())
    {
        bail!("{}'s key share is not that of the committee in {}", c.cfg.name, c.cfg.cluster.joint_key.display());
    }
    let signature = approved.change.approve(&share, &mut OsRng);
    approved.approvals.retain(|(name, _)| *name != c.cfg.name);
    approved.approvals.push((c.cfg.name.clone(), signature));
    Ok(())
}

/// One line on what a change does.
pub fn describe(change: &CommitteeChange) -> String {
    let names: Vec<&str> = change.members.iter().map(|m| m.name.as_str()).collect();
    format!(
        "change {:?}{} from epoch {} (joint key {}): new committee [{}], {} of {} decrypt, epoch {}",
        change.kind,
        change.subject.as_ref().map(|s| format!(" {s}")).unwrap_or_default(),
        change.from_epoch,
        change.from_key,
        names.join(", "),
        change.threshold,
        names.len(),
        change.to_epoch()
    )
}

pub fn approve(config: &Path, file: &Path) -> anyhow::Result<()> {
    let c = current(config)?;
    let mut approved = read_change(file).map_err(anyhow::Error::msg)?;
    approved.change.check(&c.joint)?;
    // every approval already there must be valid
    let signers: Vec<String> = approved.approvals.iter().map(|(n, _)| n.clone()).collect();
    c.joint
        .verify_signed_by(&approved.change.signed_bytes(), &approved.approvals, &signers)
        .with_context(|| format!("{} holds an invalid approval", file.display()))?;
    sign(&c, &mut approved)?;
    write_change(file, &approved).map_err(anyhow::Error::msg)?;
    println!("{}", describe(&approved.change));
    let have = approved.approvals.len();
    let need = usize::from(c.joint.threshold());
    if have >= need {
        println!("approved by {have} (t = {need}): every participant now runs `crux-node committee apply --config THEIR.yaml {}` at the same time", file.display());
    } else {
        println!("approved by {have}; {} more approvals needed", need - have);
    }
    Ok(())
}

pub fn apply(config: &Path, file: &Path, phase_timeout: u64) -> anyhow::Result<()> {
    let cfg = NodeConfig::load(config)?;
    let signed = ceremony::apply(&cfg, file, Duration::from_secs(phase_timeout.max(1)))?;
    let c = &signed.transition.committee;
    println!(
        "{}: committee epoch {} ready ({} of {} decrypt, joint key {}); the running node switches to it by itself",
        cfg.name,
        c.epoch(),
        c.threshold(),
        c.members().len(),
        c.fingerprint()
    );
    Ok(())
}
