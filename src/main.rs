//! `crux-node`: installs the TLS crypto provider and the tracing subscriber,
//! then hands over to `crux::cli::run`. Errors are printed as one line,
//! `error: ` followed by the whole cause chain, and the exit code is 1.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // Another provider may already be installed; either way one is in place.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // `query` and `status` print one result or one `error: ` line: their
    // transport warnings (e.g. a retried connection) stay out of stderr
    // unless RUST_LOG asks for them. Nodes and the other commands log at info.
    let client_command = matches!(std::env::args().nth(1).as_deref(), Some("query" | "status"));
    let default_level = if client_command { "error" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match crux::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
