//! `crux-node init`: the argument tree of every way to make nodes.
//!
//! - `init --out DIR ...`: a whole local cluster in one folder (`local.rs`).
//! - `init authority|processor|relay|user NAME --out DIR ...`: one node's
//!   folder on its own host, secrets included, plus its public card
//!   (`node.rs`); `init user NAME --out DIR` on a local cluster folder adds
//!   a user to it instead (`local.rs`).
//! - `init assemble CARD...`: the admin's cluster file from the cards
//!   (`assemble.rs`, formats in `card.rs`).
//! - `init join --config DIR/node.yaml --cluster cluster.yaml`: a node
//!   takes its `cluster` section and pinned certificates (`join.rs`).
//!
//! Only cards and the cluster file are meant to travel between hosts.

mod assemble;
pub(crate) mod card;
mod files;
mod join;
mod local;
mod node;

use std::path::PathBuf;

use clap::{Args, Subcommand};

pub use assemble::AssembleArgs;
pub use join::JoinArgs;
pub use local::ClusterArgs;
pub use node::{AuthorityArgs, NodeArgs, ProcessorArgs, RelayArgs};

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
    /// Make one authority's folder on its own host: config, TLS certificate and key, public card;
    /// or, when DIR holds a local cluster (processor.yaml), add `NAME.yaml` and its card to it
    /// (then `crux-node committee propose add`).
    Authority(AuthorityArgs),
    /// Make the processor's folder on its own host: config, TLS certificate and key, public card.
    Processor(ProcessorArgs),
    /// Make one relay's folder on its own host: config over its data file, TLS certificate and
    /// key, signing identity, public card.
    Relay(RelayArgs),
    /// Make a user's folder on the user's own host (certificate, key, card); or, when DIR holds a
    /// local cluster (processor.yaml), add `user-NAME.yaml` to it and pin its certificate in
    /// `processor.yaml` (restart the processor to apply).
    User {
        /// user name (letters, digits, '-', '_')
        name: String,
        /// the user's new folder, or a local cluster folder written by `crux-node init --out`
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Check the nodes' public cards together and write the cluster file every node joins.
    Assemble(AssembleArgs),
    /// Write the cluster file's peers, pinned certificates and relay keys into this node's config.
    Join(JoinArgs),
}

pub fn run(args: InitArgs) -> anyhow::Result<()> {
    match args.command {
        Some(InitCommand::Authority(a)) if a.node.out.join("processor.yaml").exists() => {
            local::add_authority(&a.node.out, &a.node.name, &a.node.host, a.node.port)
        }
        Some(InitCommand::Authority(a)) => node::init_authority(&a),
        Some(InitCommand::Processor(p)) => node::init_processor(&p),
        Some(InitCommand::Relay(r)) => node::init_relay(&r),
        Some(InitCommand::User { name, out }) if out.join("processor.yaml").exists() => local::add_user(&out, &name),
        Some(InitCommand::User { name, out }) => node::init_user(&out, &name),
        Some(InitCommand::Assemble(a)) => assemble::run(&a),
        Some(InitCommand::Join(j)) => join::run(&j),
        None => local::init_cluster(&args.cluster),
    }
}
