//! `crux-node console`: a local web application for one user. It holds the
//! user's identity (a user config, DIR/user.yaml) and talks to the processor
//! over the same QUIC client as `crux-node query`
//! (`actors::client::ask_processor`, on blocking threads). Input: HTTP
//! requests from the user's browser (loopback unless `--allow-remote`, then
//! with a login token); output: server-rendered HTML pages with SVG charts
//! (cluster, query, job progress and answer, history) and CSV/JSON exports.
//! Answers are formatted by `cli::query` (`answer_json`, `answer_text`) and
//! parameters checked by `cli::query::build_params`, so the console and the
//! CLI give identical answers and refusals. Everything it keeps (history,
//! budget samples, sessions) lives in memory for this console session only.
//! No script on any page, no secret in a page or a log.
//!
//! Files: `server` (routes, session gate, handlers), `security` (listen
//! rule, tokens, sessions, CSRF, headers), `state` (what the console holds),
//! `form` (the query form into a job), `jobs` (background queries),
//! `history`, `budget`, `charts` (SVG), `pages` (HTML).

pub mod budget;
pub mod charts;
pub mod error;
pub mod form;
pub mod history;
pub mod jobs;
pub mod pages;
pub mod security;
pub mod server;
pub mod state;

pub use error::ConsoleError;
pub use security::{access_for, Access};
pub use server::{app, serve};
pub use state::Console;
