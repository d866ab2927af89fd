//! What one console process holds for its user: the link to the processor
//! (the user's identity from user.yaml), the browser sessions, the query
//! jobs, the history of this session's queries and the budget samples.
//! Shared by the web handlers (`console::server`) and the job threads
//! (`console::jobs`); every processor call here blocks, so callers run it
//! off the web server's threads. No secret goes into a page or a log.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::budget::BudgetSeries;
use super::history::History;
use super::jobs::Jobs;
use super::security::{Access, Session, Sessions};
use crate::actors::client::ask_processor;
use crate::config::NodeConfig;
use crate::protocol::{NodeStatus, PeerStatus, ProcessorRequest, ProcessorResponse, QueryProgress, RelayColumns};

/// One request to the processor and its answer, or why there is none (a
/// readable message: unreachable, refused, ...).
pub trait ProcessorLink: Send + Sync {
    fn ask(&self, request: &ProcessorRequest) -> Result<ProcessorResponse, String>;
}

/// The real processor over QUIC, with the user config's identity and pins
/// (`crux::actors::client::ask_processor`, as `crux-node query` uses).
pub struct QuicProcessor {
    pub cfg: NodeConfig,
}

impl ProcessorLink for QuicProcessor {
    fn ask(&self, request: &ProcessorRequest) -> Result<ProcessorResponse, String> {
        ask_processor(&self.cfg, request).map_err(|e| {
            let processor = &self.cfg.cluster.processor;
            format!("could not reach the processor {} at {}: {}", processor.name, processor.address, error_chain(&e))
        })
    }
}

/// An error and its causes on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// The whole cluster as the processor sees it.
pub struct ClusterView {
    pub processor: NodeStatus,
    pub processor_address: String,
    pub peers: Vec<PeerStatus>,
}

pub struct Console {
    /// the user's name (`node.name` of user.yaml)
    pub user: String,
    /// the processor's name and address (host:port), for pages
    pub processor_name: String,
    pub processor_address: String,
    pub link: Arc<dyn ProcessorLink>,
    pub access: Access,
    pub started: Instant,
    pub started_unix: u64,
    pub sessions: Mutex<Sessions>,
    pub jobs: Mutex<Jobs>,
    pub history: Mutex<History>,
    pub budget: Mutex<BudgetSeries>,
}

/// A lock that a panicked holder did not poison for good (the data are
/// plain records, valid after any partial update).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn unexpected(response: &ProcessorResponse) -> String {
    match response {
        ProcessorResponse::Error { message } => format!("the processor refused: {message}"),
        _ => "the processor sent an unexpected answer".to_string(),
    }
}

impl Console {
    pub fn new(cfg: NodeConfig, access: Access) -> Console {
        let processor = (cfg.cluster.processor.name.clone(), cfg.cluster.processor.address.clone());
        let user = cfg.name.clone();
        Console::with_link(user, processor, Arc::new(QuicProcessor { cfg }), access)
    }

    /// `processor`: its name and address, for pages.
    pub fn with_link(
        user: String,
        processor: (String, String),
        link: Arc<dyn ProcessorLink>,
        access: Access,
    ) -> Console {
        Console {
            user,
            processor_name: processor.0,
            processor_address: processor.1,
            link,
            access,
            started: Instant::now(),
            started_unix: unix_now(),
            sessions: Mutex::new(Sessions::default()),
            jobs: Mutex::new(Jobs::default()),
            history: Mutex::new(History::default()),
            budget: Mutex::new(BudgetSeries::default()),
        }
    }

    /// The session a request's cookie names (or a new one).
    pub fn session(&self, cookie: Option<&str>) -> Session {
        lock(&self.sessions).resolve(cookie, matches!(self.access, Access::Local))
    }

    /// The processor's status and every node's; samples each authority's
    /// remaining budget on the way. Blocks.
    pub fn cluster(&self) -> Result<ClusterView, String> {
        let processor = match self.link.ask(&ProcessorRequest::Status)? {
            ProcessorResponse::Status(status) => status,
            other => return Err(unexpected(&other)),
        };
        let peers = self.cluster_status()?;
        Ok(ClusterView { processor, processor_address: self.processor_address.clone(), peers })
    }

    /// Every node's status (and a budget sample). Blocks.
    pub fn cluster_status(&self) -> Result<Vec<PeerStatus>, String> {
        match self.link.ask(&ProcessorRequest::ClusterStatus)? {
            ProcessorResponse::ClusterStatus(peers) => {
                lock(&self.budget).record(self.started.elapsed().as_secs_f64(), &peers);
                Ok(peers)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// The column labels relays publish. Blocks.
    pub fn columns(&self) -> Result<Vec<RelayColumns>, String> {
        match self.link.ask(&ProcessorRequest::Columns)? {
            ProcessorResponse::Columns(columns) => Ok(columns),
            other => Err(unexpected(&other)),
        }
    }

    /// This user's queries in flight at the processor. Blocks.
    pub fn progress(&self) -> Result<Vec<QueryProgress>, String> {
        match self.link.ask(&ProcessorRequest::Progress)? {
            ProcessorResponse::Progress(progress) => Ok(progress),
            other => Err(unexpected(&other)),
        }
    }
}

/// Distinct published columns (labels), in the order relays list them.
pub fn published_columns(relays: &[RelayColumns]) -> Vec<Vec<String>> {
    let mut seen = Vec::new();
    for (_, answer) in relays {
        for labels in answer.iter().flatten() {
            if !seen.contains(labels) {
                seen.push(labels.clone());
            }
        }
    }
    seen
}
