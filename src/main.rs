//! `crux-node`: installs the TLS crypto provider and the tracing subscriber,
//! then hands over to `crux::cli::run`. Errors are printed as one line,
//! `error: ` followed by the whole cause chain, and the exit code is 1.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // Another provider may already be installed; either way one is in place.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match crux::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
