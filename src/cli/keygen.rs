//! `crux-node keygen --config AUTHORITY.yaml [--threshold T]`: this
//! authority's side of the distributed key generation (`actors::keygen`).
//! Run it on every authority at the same time; each ends with its own key
//! share and the same committee file, then starts with `crux-node start`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::actors::keygen;
use crate::config::NodeConfig;

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The authority's YAML configuration (e.g. DIR/authority-1.yaml from `crux-node init`).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// How many authorities decrypt together (t of the n in `cluster.authorities`; default: all n).
    /// Every authority must pass the same value.
    #[arg(long, value_name = "T")]
    pub threshold: Option<u16>,
    /// Longest wait for the other authorities in each of the four phases, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub phase_timeout: u64,
}

pub fn run(args: KeygenArgs) -> anyhow::Result<()> {
    let cfg = NodeConfig::load(&args.config)?;
    let joint = keygen::run(&cfg, args.threshold, Duration::from_secs(args.phase_timeout.max(1)))?;
    println!(
        "{}: key share written; committee epoch {}, {} of {} decrypt, joint key {}",
        cfg.name,
        joint.epoch(),
        joint.threshold(),
        joint.members().len(),
        joint.fingerprint()
    );
    println!("committee file: {} (copy it to every node as its `cluster.joint_key`)", cfg.cluster.joint_key.display());
    Ok(())
}
