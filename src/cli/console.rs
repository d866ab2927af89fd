//! `crux-node console --config DIR/user.yaml [--listen ADDR] [--allow-remote]`:
//! serves the user's web console (`crate::console`) until SIGINT or SIGTERM.
//! Prints the console's URL (and, for a remote console, its login token) on
//! stdout once it listens; refuses a non-loopback address without
//! `--allow-remote`. Errors go back to `main` (one line, exit status 1).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use crate::config::{NodeConfig, RoleConfig};
use crate::console::{access_for, serve, Access, Console};

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// A user configuration (DIR/user.yaml from `crux-node init`): the console acts as this user.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Address to serve on (port 0: any free port). Loopback unless --allow-remote.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Allow a non-loopback --listen address; browsers must then log in with the
    /// token printed at start. The console speaks plain HTTP: reach it over an SSH
    /// tunnel or a TLS proxy.
    #[arg(long)]
    pub allow_remote: bool,
}

pub fn run(args: ConsoleArgs) -> anyhow::Result<()> {
    // the listen rule first: a refused address needs no config
    let access = access_for(args.listen, args.allow_remote)?;
    let cfg = NodeConfig::load(&args.config)?;
    if !matches!(cfg.role, RoleConfig::User) {
        bail!("{} is a {} config; the console uses a user config (DIR/user.yaml)", args.config.display(), cfg.role);
    }
    let token = match &access {
        Access::Remote { token } => Some(token.to_string()),
        Access::Local => None,
    };
    let console = Console::new(cfg, access);
    let heading = format!("Crux console for user {} (processor {})", console.user, console.processor_address);
    serve(console, args.listen, |addrs| {
        // written, not printed: a closed stdout must not stop the console
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{heading}");
        for addr in addrs {
            let _ = writeln!(out, "console: http://{addr}/");
        }
        if let Some(token) = &token {
            let _ = writeln!(out, "login token: {token} (browsers log in with it once; it changes at each start)");
        }
        let _ = writeln!(out, "stop it with Ctrl-C");
        let _ = out.flush();
    })?;
    Ok(())
}
