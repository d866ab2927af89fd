//! Errors of the web console: refusing to start (listen address, config,
//! socket) and what a request can get wrong. Produced by `console::security`
//! and `console::server`; `cli::console` prints them on one line. Messages
//! say what to do and never carry a token or a cookie.

use std::net::SocketAddr;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConsoleError {
    #[error(
        "refusing to listen on {addr}: it is not a loopback address, so other machines could reach the console; \
         pass --allow-remote to allow it (a login token is then required), or listen on 127.0.0.1"
    )]
    RemoteNotAllowed { addr: SocketAddr },
    #[error("{path} is a {role} config; the console uses a user config (DIR/user.yaml)")]
    NotAUser { path: String, role: String },
    #[error("could not listen on {addr}: {source}; pick another port with --listen")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("the console's web server stopped: {0}")]
    Server(#[from] std::io::Error),
}
