//! The `crux-node` command line (clap derive). Parses arguments and calls
//! the library; prints results to stdout. Errors go back to `main`, which
//! prints them on one line and exits non-zero. Other subcommands (init,
//! start, query, status) join `Command` later.

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
    /// Build or check the discrete-log table (baby steps on LMDB) used to turn
    /// decrypted aggregates back into numbers.
    Tables(tables::TablesArgs),
}

/// Parses the command line and runs the chosen command.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Tables(args) => tables::run(args),
    }
}
