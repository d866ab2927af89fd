//! Queries run in the background: a POST from the query page becomes a job
//! (an id the job page polls), run on its own thread so the web server stays
//! responsive. A job is one query, or for a CDF one quantile query per
//! level. Each query sent goes to the history; afterwards the budget is
//! sampled, and a failed query gets "did you mean" suggestions from the
//! labels relays publish. Input: a checked `JobRequest`; output: the job's
//! outcome in `Console::jobs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::history::HistoryEntry;
use super::state::{lock, published_columns, unix_now, Console};
use crate::data::suggest::close_label_sets;
use crate::protocol::{ProcessorRequest, ProcessorResponse, QueryAnswer};
use crate::stats::QueryParams;

/// Jobs kept at most (the oldest finished ones are dropped beyond).
pub const MAX_JOBS: usize = 200;

/// Quantile levels of a CDF: 0.1, 0.2, ..., 0.9.
pub const CDF_LEVELS: [&str; 9] = ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"];

/// What a job runs: one query, or a CDF's quantile queries (one per level).
#[derive(Clone, Debug)]
pub struct JobRequest {
    pub labels: Vec<String>,
    /// the queries, in order; for a CDF one per level of `levels`
    pub runs: Vec<QueryParams>,
    /// the quantile levels of a CDF (empty for a single query)
    pub levels: Vec<String>,
}

impl JobRequest {
    pub fn is_cdf(&self) -> bool {
        !self.levels.is_empty()
    }
}

/// One answered query of a job.
#[derive(Clone, Debug)]
pub struct TimedAnswer {
    /// the quantile level, for a CDF's queries
    pub level: Option<String>,
    pub answer: QueryAnswer,
    pub elapsed: Duration,
}

#[derive(Clone, Debug)]
pub enum JobOutcome {
    Answered(Vec<TimedAnswer>),
    Failed {
        message: String,
        /// the queries of the job answered before the failure
        done: Vec<TimedAnswer>,
        /// published columns close to the labels asked for
        suggestions: Vec<Vec<String>>,
    },
}

#[derive(Clone, Debug)]
pub struct Job {
    pub id: u64,
    pub request: JobRequest,
    pub started: Instant,
    /// index of the query running now
    pub step: usize,
    pub outcome: Option<JobOutcome>,
    pub elapsed: Option<Duration>,
}

#[derive(Default)]
pub struct Jobs {
    next: u64,
    by_id: BTreeMap<u64, Job>,
}

impl Jobs {
    /// Registers a new job; returns its id.
    pub fn add(&mut self, request: JobRequest) -> u64 {
        self.next += 1;
        let id = self.next;
        if self.by_id.len() >= MAX_JOBS {
            let oldest = self.by_id.iter().find(|(_, job)| job.outcome.is_some()).map(|(id, _)| *id);
            if let Some(old) = oldest {
                self.by_id.remove(&old);
            }
        }
        self.by_id.insert(id, Job { id, request, started: Instant::now(), step: 0, outcome: None, elapsed: None });
        id
    }

    pub fn get(&self, id: u64) -> Option<&Job> {
        self.by_id.get(&id)
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Job> {
        self.by_id.get_mut(&id)
    }
}

/// Starts `request` on its own thread; returns the job id at once.
pub fn start(console: Arc<Console>, request: JobRequest) -> std::io::Result<u64> {
    let id = lock(&console.jobs).add(request.clone());
    let worker = console.clone();
    let spawned =
        std::thread::Builder::new().name(format!("console-job-{id}")).spawn(move || run(&worker, id, &request));
    if let Err(e) = spawned {
        finish(&console, id, JobOutcome::Failed { message: e.to_string(), done: Vec::new(), suggestions: Vec::new() });
        return Err(e);
    }
    Ok(id)
}

/// One query: its answer, or a readable reason.
fn ask_query(console: &Console, labels: &[String], params: &QueryParams) -> Result<QueryAnswer, String> {
    let request = ProcessorRequest::Query { labels: labels.to_vec(), params: params.clone() };
    match console.link.ask(&request)? {
        ProcessorResponse::Answer(answer) => Ok(*answer),
        ProcessorResponse::Error { message } => Err(format!("the processor refused the query: {message}")),
        _ => Err("the processor sent an unexpected answer".to_string()),
    }
}

/// Runs a job's queries in order; stops at the first failure.
fn run(console: &Console, id: u64, request: &JobRequest) {
    let mut done = Vec::new();
    for (step, params) in request.runs.iter().enumerate() {
        if let Some(job) = lock(&console.jobs).get_mut(id) {
            job.step = step;
        }
        let (at_unix, started) = (unix_now(), Instant::now());
        let outcome = ask_query(console, &request.labels, params);
        let elapsed = started.elapsed();
        lock(&console.history).push(HistoryEntry {
            job: id,
            at_unix,
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            labels: request.labels.clone(),
            params: params.clone(),
            outcome: outcome.clone(),
        });
        match outcome {
            Ok(answer) => done.push(TimedAnswer { level: request.levels.get(step).cloned(), answer, elapsed }),
            Err(message) => {
                let message = match request.levels.get(step) {
                    Some(level) => {
                        format!("quantile {level} (query {} of {}): {message}", step + 1, request.runs.len())
                    }
                    None => message,
                };
                // a failure about the column (e.g. a mistyped label): close published columns
                let about_column = message.to_lowercase().contains("column");
                let suggestions = if about_column { suggestions(console, &request.labels) } else { Vec::new() };
                let _ = console.cluster_status();
                return finish(console, id, JobOutcome::Failed { message, done, suggestions });
            }
        }
    }
    // a sample of every authority's budget after the query
    let _ = console.cluster_status();
    finish(console, id, JobOutcome::Answered(done));
}

/// Published columns close to `labels` (none when `labels` is one of them:
/// the column was not mistyped).
fn suggestions(console: &Console, labels: &[String]) -> Vec<Vec<String>> {
    let Ok(relays) = console.columns() else { return Vec::new() };
    let published = published_columns(&relays);
    if published.iter().any(|column| column == labels) {
        return Vec::new();
    }
    close_label_sets(labels, &published)
}

fn finish(console: &Console, id: u64, outcome: JobOutcome) {
    if let Some(job) = lock(&console.jobs).get_mut(id) {
        job.elapsed = Some(job.started.elapsed());
        job.outcome = Some(outcome);
    }
}
