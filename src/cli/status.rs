//! `crux-node status --config FILE`: asks the processor for its own status
//! and every node's reachability and role; prints one line per node. Exits
//! non-zero when a node is down.

use std::path::PathBuf;

use std::io::Write;

use anyhow::{anyhow, bail};
use clap::Args;

use crate::actors::client::ask_processor;
use crate::config::{NodeConfig, RoleConfig};
use crate::protocol::{ProcessorRequest, ProcessorResponse};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A user configuration (DIR/user.yaml from `crux-node init`).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let cfg = NodeConfig::load(&args.config)?;
    if !matches!(cfg.role, RoleConfig::User) {
        bail!("{} is a {} config; status uses a user config (DIR/user.yaml)", args.config.display(), cfg.role);
    }
    let processor = match ask_processor(&cfg, &ProcessorRequest::Status) {
        Ok(ProcessorResponse::Status(s)) => s,
        Ok(ProcessorResponse::Error { message }) => bail!("processor: {message}"),
        Ok(_) => bail!("processor: unexpected answer"),
        Err(e) => {
            return Err(anyhow!(e).context(format!(
                "processor {} at {} is down",
                cfg.cluster.processor.name, cfg.cluster.processor.address
            )))
        }
    };
    let peers = match ask_processor(&cfg, &ProcessorRequest::ClusterStatus)? {
        ProcessorResponse::ClusterStatus(p) => p,
        ProcessorResponse::Error { message } => bail!("processor: {message}"),
        _ => bail!("processor: unexpected answer"),
    };
    let down = peers.iter().filter(|p| p.status.is_err()).count();
    // written, not printed: a closed pipe (`status | head`) is an error, not a panic
    let mut out = std::io::stdout().lock();
    if args.json {
        let nodes: Vec<serde_json::Value> = std::iter::once(serde_json::json!({
            "name": processor.name, "role": "processor", "address": cfg.cluster.processor.address, "up": true,
            "details": processor.details.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        }))
        .chain(peers.iter().map(|p| match &p.status {
            Ok(s) => serde_json::json!({"name": p.name, "role": p.role.to_string(), "address": p.address, "up": true,
                "details": s.details.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()}),
            Err(e) => serde_json::json!({"name": p.name, "role": p.role.to_string(), "address": p.address, "up": false, "error": e}),
        }))
        .collect();
        writeln!(out, "{}", serde_json::json!({ "nodes": nodes, "down": down }))?;
    } else {
        let details = |d: &[(String, String)]| d.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
        writeln!(out, "{:<14} {:<10} {:<22} {:<5} details", "node", "role", "address", "state")?;
        writeln!(
            out,
            "{:<14} {:<10} {:<22} {:<5} {}",
            processor.name,
            "processor",
            cfg.cluster.processor.address,
            "up",
            details(&processor.details)
        )?;
        for p in &peers {
            match &p.status {
                Ok(s) => writeln!(
                    out,
                    "{:<14} {:<10} {:<22} {:<5} {}",
                    p.name,
                    p.role.to_string(),
                    p.address,
                    "up",
                    details(&s.details)
                )?,
                Err(e) => {
                    writeln!(out, "{:<14} {:<10} {:<22} {:<5} {}", p.name, p.role.to_string(), p.address, "DOWN", e)?
                }
            }
        }
    }
    out.flush()?;
    if down > 0 {
        bail!("{down} of {} nodes are down", peers.len() + 1);
    }
    Ok(())
}
