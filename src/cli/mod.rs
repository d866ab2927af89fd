//! The `crux-node` command line (clap derive). Parses arguments and calls
//! the library; prints results to stdout. Errors go back to `main`, which
//! prints them on one line and exits non-zero.

pub mod init;
pub mod query;
pub mod start;
pub mod status;
pub mod tables;

use clap::{Parser, Subcommand};

/// Confidential network-wide statistics with threshold exponential ElGamal.
#[derive(Debug, Parser)]
#[command(name = "crux-node", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a cluster's configs, keys and certificates (or add a user to one).
    Init(init::InitArgs),
    /// Run one node of the role its config names, until SIGINT or SIGTERM.
    Start(start::StartArgs),
    /// Ask the processor for one statistic of a column.
    Query(query::QueryArgs),
    /// Show every node's reachability and role, as seen by the processor.
    Status(status::StatusArgs),
    /// Build or check the discrete-log table (baby steps on LMDB) used to turn
    /// decrypted aggregates back into numbers.
    Tables(tables::TablesArgs),
}

/// Parses the command line and runs the chosen command.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Init(args) => init::run(args),
        Command::Start(args) => start::run(args),
        Command::Query(args) => query::run(args),
        Command::Status(args) => status::run(args),
        Command::Tables(args) => tables::run(args),
    }
}
