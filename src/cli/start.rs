//! `crux-node start --config FILE`: runs one node of the role its config
//! names (and, with `metrics.listen`, its HTTP metrics and health
//! endpoints) until SIGINT or SIGTERM.

use std::path::PathBuf;

use clap::Args;

use crate::actors::node;
use crate::config::NodeConfig;

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The node's YAML configuration (e.g. DIR/authority-1.yaml from `crux-node init`).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

pub fn run(args: StartArgs) -> anyhow::Result<()> {
    let cfg = NodeConfig::load(&args.config)?;
    node::run(cfg)?;
    Ok(())
}
