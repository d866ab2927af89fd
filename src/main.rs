//! `crux-node`: installs the TLS crypto provider and the tracing subscriber,
//! then hands over to `crux::cli::run`. Errors are printed as one line,
//! `error: ` followed by the whole cause chain, and the exit code is 1
//! (invalid arguments too). Logs go to stderr: coloured only on a terminal
//! and without `NO_COLOR`; `--log-format json` writes one JSON object a line.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use crux::cli::{Cli, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // Another provider may already be installed; either way one is in place.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // help and --version go to stdout with status 0; a bad argument
            // prints clap's `error: ...` (with the valid values) and exits 1
            let _ = err.print();
            return if err.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
    // `query` and `status` print one result or one `error: ` line: their
    // transport warnings (e.g. a retried connection) stay out of stderr
    // unless RUST_LOG asks for them. Nodes and the other commands log at info.
    let client_command = cli.command.is_client();
    let default_level = if client_command { "error" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    match crux::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `crux-node status | head`: the reader went away; end quietly.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}
