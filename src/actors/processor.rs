//! ProcessorActor: takes queries from pinned users, drives each query's
//! state machine (`protocol::processor`) by fanning requests out to relays
//! and authorities in parallel over QUIC, solves discrete logs on a blocking
//! thread with the LMDB table, and answers the user. Enforces a per-user rate
//! limit and an overall query timeout. Logs query ids and outcomes, never
//! values or ciphertexts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::join_all;
use rand::rngs::OsRng;
use tracing::{info, info_span, warn, Instrument};

use super::authority::RequestBytes;
use super::keys::unix_now;
use super::transport::Client;
use crate::crypto::{DlogSolver, DlogTable};
use crate::protocol::processor::{ProcessorView, QueryDriver, Reply, Step};
use crate::protocol::wire::{decode, encode};
use crate::protocol::*;
use crate::stats::QueryParams;

/// Everything a query needs, shared by the queries in flight.
pub struct ProcessorShared {
    pub name: String,
    pub view: Arc<ProcessorView>,
    pub client: Client,
    pub relays: Vec<(String, SocketAddr)>,
    pub authorities: Vec<(String, SocketAddr)>,
    pub solver: Arc<DlogSolver<Arc<dyn DlogTable>>>,
    pub max_frame: usize,
    pub query_timeout: Duration,
    pub table_description: String,
}

pub struct ProcessorActor {
    pub shared: Rc<ProcessorShared>,
    pub users: Vec<String>,
    pub rate_per_minute: u32,
    pub recent: HashMap<String, Vec<Instant>>,
}

impl Actor for ProcessorActor {
    type Context = Context<Self>;
}

fn reply(response: &ProcessorResponse) -> Vec<u8> {
    encode(response).unwrap_or_default()
}

fn error_reply(message: String) -> Vec<u8> {
    reply(&ProcessorResponse::Error { message })
}

impl ProcessorActor {
    /// Sliding one-minute window per user (queries and status requests are
    /// counted separately, each up to `rate_per_minute`).
    fn admit(&mut self, user: &str) -> bool {
        let now = Instant::now();
        let list = self.recent.entry(user.to_string()).or_default();
        list.retain(|t| now.duration_since(*t) < Duration::from_secs(60));
        if list.len() >= usize::try_from(self.rate_per_minute).unwrap_or(usize::MAX) {
            return false;
        }
        list.push(now);
        true
    }
}

impl Handler<RequestBytes> for ProcessorActor {
    type Result = ResponseFuture<Vec<u8>>;

    fn handle(&mut self, msg: RequestBytes, _ctx: &mut Self::Context) -> Self::Result {
        let shared = self.shared.clone();
        if !self.users.contains(&msg.peer) {
            warn!(peer = %msg.peer, "refusing a request from a node that is not a configured user");
            return Box::pin(async move { error_reply(format!("{} is not a user of this processor", msg.peer)) });
        }
        let request: ProcessorRequest = match decode(&msg.bytes, shared.max_frame) {
            Ok(r) => r,
            Err(e) => {
                warn!(peer = %msg.peer, cause = %e, "dropping a malformed request");
                return Box::pin(async move { error_reply(e.to_string()) });
            }
        };
        if matches!(request, ProcessorRequest::Status | ProcessorRequest::ClusterStatus | ProcessorRequest::Columns)
            && !self.admit(&format!("status\u{0}{}", msg.peer))
        {
            let limit = self.rate_per_minute;
            return Box::pin(async move {
                error_reply(format!("rate limit: at most {limit} status requests per minute per user; wait and retry"))
            });
        }
        match request {
            ProcessorRequest::Status => Box::pin(async move { reply(&ProcessorResponse::Status(own_status(&shared))) }),
            ProcessorRequest::ClusterStatus => {
                Box::pin(async move { reply(&ProcessorResponse::ClusterStatus(cluster_status(&shared).await)) })
            }
            ProcessorRequest::Columns => {
                Box::pin(async move { reply(&ProcessorResponse::Columns(published_columns(&shared).await)) })
            }
            ProcessorRequest::Query { labels, params } => {
                if !self.admit(&msg.peer) {
                    let limit = self.rate_per_minute;
                    return Box::pin(async move {
                        error_reply(format!("rate limit: at most {limit} queries per minute per user; wait and retry"))
                    });
                }
                let user = msg.peer.clone();
                Box::pin(async move {
                    let id = QueryId::random(&mut OsRng);
                    let span = info_span!("query", query_id = %id, role = "processor", user = %user);
                    let started = Instant::now();
                    let charged = std::cell::Cell::new(None);
                    let outcome = tokio::time::timeout(
                        shared.query_timeout,
                        run_query(&shared, id, user.clone(), labels, params, &charged).instrument(span.clone()),
                    )
                    .await;
                    // a query that fails after its admission has still spent its epsilon: say so
                    let spent = match charged.get() {
                        Some(e) if e.0 > 0 => format!(
                            "; the authorities had admitted it, so epsilon {e} of dataset {:?}'s budget is spent",
                            shared.view.dataset
                        ),
                        _ => String::new(),
                    };
                    let _guard = span.enter();
                    match outcome {
                        Ok(Ok(answer)) => {
                            info!(statistic = %answer.result.statistic, relays = answer.relays.len(), elapsed_ms = started.elapsed().as_millis() as u64, "answered");
                            reply(&ProcessorResponse::Answer(Box::new(answer)))
                        }
                        Ok(Err(e)) => {
                            warn!(cause = %e, "query failed");
                            error_reply(format!("query {id} failed: {e}{spent}"))
                        }
                        Err(_) => {
                            warn!("query timed out");
                            error_reply(format!(
                                "query {id} timed out after {:?}; raise `timeouts.query_ms` or check slow nodes{spent}",
                                shared.query_timeout
                            ))
                        }
                    }
                })
            }
        }
    }
}

fn own_status(shared: &ProcessorShared) -> NodeStatus {
    NodeStatus {
        name: shared.name.clone(),
        role: Role::Processor,
        version: env!("CARGO_PKG_VERSION").to_string(),
        details: vec![
            ("dataset".into(), shared.view.dataset.clone()),
            ("relays".into(), shared.relays.len().to_string()),
            ("authorities".into(), shared.authorities.len().to_string()),
            ("min_relays".into(), shared.view.min_relays.to_string()),
            ("dlog_table".into(), shared.table_description.clone()),
        ],
    }
}

async fn ask<T: serde::de::DeserializeOwned>(
    shared: &ProcessorShared,
    name: &str,
    addr: SocketAddr,
    bytes: &[u8],
) -> Result<T, String> {
    ask_with(shared, name, addr, bytes, false).await
}

/// `at_most_once`: a request with a side effect (an admission charges the
/// budget and records the query id; a registration records the round) is not
/// resent after a lost connection.
async fn ask_with<T: serde::de::DeserializeOwned>(
    shared: &ProcessorShared,
    name: &str,
    addr: SocketAddr,
    bytes: &[u8],
    at_most_once: bool,
) -> Result<T, String> {
    let reply = if at_most_once {
        shared.client.request_at_most_once(name, addr, bytes).await
    } else {
        shared.client.request(name, addr, bytes).await
    }
    .map_err(|e| e.to_string())?;
    decode::<T>(&reply, shared.max_frame).map_err(|e| format!("{name} sent an invalid reply: {e}"))
}

/// Every relay's published column labels, asked in parallel.
async fn published_columns(shared: &ProcessorShared) -> Vec<(String, Result<Vec<Vec<String>>, String>)> {
    let Ok(request) = encode(&RelayRequest::Columns) else { return Vec::new() };
    let calls = shared.relays.iter().map(|(name, addr)| {
        let request = request.clone();
        async move {
            let answer = match ask::<RelayResponse>(shared, name, *addr, &request).await {
                Ok(RelayResponse::Columns(columns)) => Ok(columns),
                Ok(RelayResponse::Error { message }) => Err(message),
                Ok(_) => Err("unexpected answer".to_string()),
                Err(e) => Err(e),
            };
            (name.clone(), answer)
        }
    });
    join_all(calls).await
}

async fn cluster_status(shared: &ProcessorShared) -> Vec<PeerStatus> {
    let Ok(relay_req) = encode(&RelayRequest::Status) else { return Vec::new() };
    let Ok(auth_req) = encode(&AuthorityRequest::Status) else { return Vec::new() };
    let relays = shared.relays.iter().map(|(name, addr)| {
        let req = relay_req.clone();
        async move {
            let status = match ask::<RelayResponse>(shared, name, *addr, &req).await {
                Ok(RelayResponse::Status(s)) => Ok(s),
                Ok(other) => Err(format!("unexpected answer {other:?}")),
                Err(e) => Err(e),
            };
            PeerStatus { name: name.clone(), role: Role::Relay, address: addr.to_string(), status }
        }
    });
    let authorities = shared.authorities.iter().map(|(name, addr)| {
        let req = auth_req.clone();
        async move {
            let status = match ask::<AuthorityResponse>(shared, name, *addr, &req).await {
                Ok(AuthorityResponse::Status(s)) => Ok(s),
                Ok(AuthorityResponse::Refused { reason }) => Err(reason),
                Ok(_) => Err("unexpected answer".to_string()),
                Err(e) => Err(e),
            };
            PeerStatus { name: name.clone(), role: Role::Authority, address: addr.to_string(), status }
        }
    });
    let (mut a, r) = futures_util::future::join(join_all(authorities), join_all(relays)).await;
    a.extend(r);
    a
}

async fn run_query(
    shared: &ProcessorShared,
    id: QueryId,
    user: String,
    labels: Vec<String>,
    params: QueryParams,
    charged: &std::cell::Cell<Option<crate::stats::Epsilon>>,
) -> Result<QueryAnswer, ProtocolError> {
    let (mut driver, mut step) = QueryDriver::new(shared.view.clone(), id, unix_now(), user, labels, params)?;
    loop {
        charged.set(driver.charged());
        step = match step {
            Step::AskRelays(request) => {
                let bytes = encode(&request)?;
                let active = driver.active_relays().to_vec();
                let calls = shared.relays.iter().filter(|(n, _)| active.contains(n)).map(|(name, addr)| {
                    let bytes = &bytes;
                    async move { (name.clone(), ask::<RelayResponse>(shared, name, *addr, bytes).await) }
                });
                let replies: Vec<Reply<RelayResponse>> = join_all(calls).await;
                driver.on_relays(replies, &mut OsRng)?
            }
            Step::AskAuthorities(requests) => {
                let encoded = requests
                    .iter()
                    .map(|r| {
                        let once = matches!(r, AuthorityRequest::AdmitQuery { .. } | AuthorityRequest::Register { .. });
                        Ok((encode(r)?, once))
                    })
                    .collect::<Result<Vec<_>, ProtocolError>>()?;
                let per_request = encoded.iter().map(|(bytes, once)| {
                    join_all(shared.authorities.iter().map(move |(name, addr)| async move {
                        (name.clone(), ask_with::<AuthorityResponse>(shared, name, *addr, bytes, *once).await)
                    }))
                });
                let replies: Vec<Vec<Reply<AuthorityResponse>>> = join_all(per_request).await;
                driver.on_authorities(replies)?
            }
            Step::Solve(points) => {
                let solver = shared.solver.clone();
                let solved = actix_rt::task::spawn_blocking(move || {
                    points
                        .into_iter()
                        .map(|(r, p)| solver.solve_vartime(&p).map(|v| (r, v)))
                        .collect::<Result<Vec<_>, _>>()
                })
                .await
                .map_err(|e| ProtocolError::Malformed(format!("discrete-log worker failed: {e}")))?;
                let values = solved.map_err(|e| match e {
                    crate::crypto::CryptoError::DlogOutOfRange { .. } => ProtocolError::Crypto(e),
                    other => ProtocolError::Crypto(other),
                })?;
                driver.on_solved(values)?
            }
            Step::Done(answer) => return Ok(*answer),
        };
    }
}
