//! The `crux-node` command line (clap derive). Parses arguments and calls
//! the library; prints results to stdout. Errors go back to `main`, which
//! prints them on one line and exits non-zero.

pub mod change;
pub mod columns;
pub mod committee;
pub mod console;
pub mod init;
pub mod keygen;
pub mod query;
pub mod start;
pub mod status;
pub mod tables;

use clap::{Parser, Subcommand, ValueEnum};

/// Confidential network-wide statistics with threshold exponential ElGamal.
#[derive(Debug, Parser)]
#[command(name = "crux-node", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr: text (coloured only on a terminal without NO_COLOR) or json (one object a line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "CRUX_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a cluster's configs, keys and certificates (or add a user to one).
    Init(init::InitArgs),
    /// The authority committee: epoch, threshold, members and their state.
    Committee(committee::CommitteeArgs),
    /// Generate this authority's key share with the other authorities (distributed key generation,
    /// no dealer); run it on every authority at the same time, before `start`.
    Keygen(keygen::KeygenArgs),
    /// Run one node of the role its config names, until SIGINT or SIGTERM; with `metrics.listen` it
    /// also serves /metrics, /healthz and /readyz over HTTP.
    Start(start::StartArgs),
    /// Ask the processor for one statistic of a column.
    Query(query::QueryArgs),
    /// Show every node's reachability and role, as seen by the processor.
    Status(status::StatusArgs),
    /// List the column labels relays publish (`publish_columns` in their configs).
    Columns(columns::ColumnsArgs),
    /// Serve a local web console for one user: cluster, queries with charts, history.
    Console(console::ConsoleArgs),
    /// Build or check the discrete-log table (baby steps on LMDB) used to turn
    /// decrypted aggregates back into numbers.
    Tables(tables::TablesArgs),
}

impl Command {
    /// Commands that print one answer for a user (quiet logs by default).
    pub fn is_client(&self) -> bool {
        matches!(self, Command::Query(_) | Command::Status(_) | Command::Columns(_))
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init(args) => init::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Committee(args) => committee::run(args),
        Command::Start(args) => start::run(args),
        Command::Query(args) => query::run(args),
        Command::Status(args) => status::run(args),
        Command::Columns(args) => columns::run(args),
        Command::Tables(args) => tables::run(args),
        Command::Console(args) => console::run(args),
    }
}
