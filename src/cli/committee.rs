//! `crux-node committee status --config USER.yaml [--json]`: the committee
//! as this node's committee file (`cluster.joint_key`) gives it (epoch,
//! threshold t, members, the joint key's fingerprint) and each member's
//! state as the processor sees it: `up` (answers, with the same epoch and
//! joint key), `mismatch` (answers with another committee: copy the
//! committee file again) or `unreachable`. Exits non-zero when fewer than t
//! members are up, since no query can then be decrypted.

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::actors::client::ask_processor;
use crate::actors::keys::read_joint_key;
use crate::config::{NodeConfig, RoleConfig};
use crate::protocol::{PeerStatus, ProcessorRequest, ProcessorResponse};

#[derive(Debug, Args)]
pub struct CommitteeArgs {
    #[command(subcommand)]
    pub command: CommitteeCommand,
}

#[derive(Debug, Subcommand)]
pub enum CommitteeCommand {
    /// Epoch, threshold, members and their state, and the joint key's fingerprint.
    Status {
        /// A user configuration (DIR/user.yaml from `crux-node init`).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Print `{"epoch", "threshold", "members": [{"name", "state"}], "joint_key"}`.
        #[arg(long)]
        json: bool,
    },
    /// Propose a change (add, remove, threshold, rotate) as a current member; writes a change file
    /// approved by this authority.
    Propose {
        #[command(subcommand)]
        kind: super::change::ProposeKind,
    },
    /// Check a change file against this authority's committee and add this authority's approval.
    Approve {
        /// This authority's configuration.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The change file from `committee propose`.
        file: PathBuf,
    },
    /// Run an approved change (t approvals) with the other participants; run it on every dealer and
    /// new member at the same time. The running nodes switch without a restart.
    Apply {
        /// This authority's configuration.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The approved change file.
        file: PathBuf,
        /// Longest wait for the other participants in each phase, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        phase_timeout: u64,
    },
}

pub fn run(args: CommitteeArgs) -> anyhow::Result<()> {
    match args.command {
        CommitteeCommand::Status { config, json } => status(&config, json),
        CommitteeCommand::Propose { kind } => super::change::propose(&kind),
        CommitteeCommand::Approve { config, file } => super::change::approve(&config, &file),
        CommitteeCommand::Apply { config, file, phase_timeout } => super::change::apply(&config, &file, phase_timeout),
    }
}

/// A member's state from the processor's view of it.
fn state(peer: Option<&PeerStatus>, epoch: &str, fingerprint: &str) -> String {
    match peer.map(|p| &p.status) {
        None => "unknown to the processor".into(),
        Some(Err(_)) => "unreachable".into(),
        Some(Ok(s)) => {
            let get = |key: &str| s.details.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("");
            if get("epoch") == epoch && get("joint_key") == fingerprint {
                "up".into()
            } else {
                format!("mismatch: it runs epoch {} with joint key {}", get("epoch"), get("joint_key"))
            }
        }
    }
}

fn status(config: &std::path::Path, as_json: bool) -> anyhow::Result<()> {
    let cfg = NodeConfig::load(config)?;
    if !matches!(cfg.role, RoleConfig::User) {
        bail!("{} is a {} config; committee status uses a user config (DIR/user.yaml)", config.display(), cfg.role);
    }
    let joint = read_joint_key(&cfg)?;
    let peers = match ask_processor(&cfg, &ProcessorRequest::ClusterStatus)? {
        ProcessorResponse::ClusterStatus(p) => p,
        ProcessorResponse::Error { message } => bail!("processor: {message}"),
        _ => bail!("processor: unexpected answer"),
    };
    let epoch = joint.epoch().to_string();
    let fingerprint = joint.fingerprint();
    let members: Vec<(String, String)> = joint
        .members()
        .iter()
        .map(|m| (m.authority.clone(), state(peers.iter().find(|p| p.name == m.authority), &epoch, &fingerprint)))
        .collect();
    let up = members.iter().filter(|(_, s)| s == "up").count();
    let mut out = std::io::stdout().lock();
    if as_json {
        let list: Vec<_> = members.iter().map(|(name, state)| json!({"name": name, "state": state})).collect();
        let doc =
            json!({"epoch": joint.epoch(), "threshold": joint.threshold(), "members": list, "joint_key": fingerprint});
        writeln!(out, "{doc}")?;
    } else {
        writeln!(
            out,
            "committee epoch {epoch}: {} of {} decrypt; joint key {fingerprint}",
            joint.threshold(),
            members.len()
        )?;
        for (name, state) in &members {
            writeln!(out, "  {name:<14} {state}")?;
        }
    }
    if up < usize::from(joint.threshold()) {
        bail!("only {up} members are up; queries need {}", joint.threshold());
    }
    Ok(())
}
