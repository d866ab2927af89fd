//! ProcessorActor: takes queries from pinned users, drives each query's
//! state machine (`protocol::processor`, through `protocol::drive`) by
//! fanning requests out to relays and authorities in parallel over QUIC,
//! solves discrete logs on a blocking thread with the LMDB table, and
//! answers the user. Who may ask and how often is decided by
//! `protocol::access`; the actor applies it with the current time. Logs
//! query ids and outcomes, never values or ciphertexts; counts queries by
//! statistic and outcome, rounds, releases and each peer's replies
//! (`protocol::outcome` labels) into its `ProcessorMetrics`, and probes its
//! peers for the node's readiness (`watch_peers`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use curve25519_dalek::ristretto::RistrettoPoint;
use futures_util::future::join_all;
use rand::rngs::OsRng;
use tracing::{info, info_span, warn, Instrument};

use super::http::Health;
use super::keys::unix_now;
use super::metrics::ProcessorMetrics;
use super::transport::Client;
use super::RequestBytes;
use crate::crypto::{DlogRange, DlogSolver, DlogTable};
use crate::protocol::access::{only_users, RateClass, RateLimiter};
use crate::protocol::drive::{run_query, QueryPeers};
use crate::protocol::outcome::{
    authority_request, processor_readiness, relay_request, reply_outcome, AccessRefusal, QueryOutcome, RefusalReply,
};
use crate::protocol::processor::{ProcessorView, QueryDriver};
use crate::protocol::wire::{decode, encode};
use crate::protocol::*;
use crate::stats::{QueryParams, Release, Statistic};

/// Everything a query needs, shared by the queries in flight.
pub struct ProcessorShared {
    pub name: String,
    /// the current committee's view; replaced when the committee changes
    /// (queries in flight keep the one they started with)
    pub view: RefCell<Arc<ProcessorView>>,
    pub client: Client,
    pub relays: Vec<(String, SocketAddr)>,
    /// the current committee's members and addresses
    pub authorities: RefCell<Vec<(String, SocketAddr)>>,
    pub solver: Arc<DlogSolver<Arc<dyn DlogTable>>>,
    pub max_frame: usize,
    pub query_timeout: Duration,
    pub table_description: String,
    /// queries in flight, for `Progress` (single-threaded: never borrowed across an await)
    pub in_flight: RefCell<HashMap<QueryId, InFlight>>,
    pub metrics: ProcessorMetrics,
    /// where the processor keeps the committee file (rewritten on a switch)
    pub joint_key: Option<std::path::PathBuf>,
}

impl ProcessorShared {
    /// The current view (never borrowed across an await).
    pub fn view(&self) -> Arc<ProcessorView> {
        self.view.borrow().clone()
    }

    /// The current committee's members with their addresses.
    pub fn authorities(&self) -> Vec<(String, SocketAddr)> {
        self.authorities.borrow().clone()
    }
}

/// One query in flight: whose, and how far it has got.
pub struct InFlight {
    user: String,
    statistic: Statistic,
    started: Instant,
    rounds: u32,
    max_rounds: u32,
}

/// Removes a query from `in_flight` when it ends, however it ends.
struct InFlightGuard<'a> {
    shared: &'a ProcessorShared,
    id: QueryId,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.shared.in_flight.try_borrow_mut() {
            map.remove(&self.id);
        }
    }
}

/// The asking user's queries in flight.
fn progress_of(shared: &ProcessorShared, user: &str) -> Vec<QueryProgress> {
    let Ok(map) = shared.in_flight.try_borrow() else { return Vec::new() };
    map.iter()
        .filter(|(_, q)| q.user == user)
        .map(|(id, q)| QueryProgress {
            query_id: *id,
            statistic: q.statistic,
            rounds: q.rounds,
            max_rounds: q.max_rounds,
            elapsed_ms: u64::try_from(q.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
        .collect()
}

pub struct ProcessorActor {
    shared: Rc<ProcessorShared>,
    users: Vec<String>,
    limiter: RateLimiter,
}

impl ProcessorActor {
    /// `rate_per_minute`: queries, and separately status requests, per user.
    pub fn new(shared: Rc<ProcessorShared>, users: Vec<String>, rate_per_minute: u32) -> Self {
        ProcessorActor { shared, users, limiter: RateLimiter::new(rate_per_minute) }
    }
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

impl Handler<RequestBytes> for ProcessorActor {
    type Result = ResponseFuture<Vec<u8>>;

    fn handle(&mut self, msg: RequestBytes, _ctx: &mut Self::Context) -> Self::Result {
        let shared = self.shared.clone();
        if let Err(refusal) = only_users(&self.users, &msg.peer) {
            warn!(peer = %msg.peer, "refusing a request from a node that is not a configured user");
            shared.metrics.access.refused(AccessRefusal::NotUser);
            return Box::pin(async move { error_reply(refusal) });
        }
        let request: ProcessorRequest = match decode(&msg.bytes, shared.max_frame) {
            Ok(r) => r,
            Err(e) => {
                warn!(peer = %msg.peer, cause = %e, "dropping a malformed request");
                shared.metrics.access.refused(AccessRefusal::Malformed);
                return Box::pin(async move { error_reply(e.to_string()) });
            }
        };
        let class =
            if matches!(request, ProcessorRequest::Query { .. }) { RateClass::Query } else { RateClass::Status };
        if let Err(refusal) = self.limiter.admit(&msg.peer, class, Instant::now()) {
            match &request {
                ProcessorRequest::Query { params, .. } => {
                    shared.metrics.query(params.statistic, QueryOutcome::RefusedRateLimit)
                }
                _ => shared.metrics.access.refused(AccessRefusal::RateLimit),
            }
            return Box::pin(async move { error_reply(refusal) });
        }
        match request {
            ProcessorRequest::Status => Box::pin(async move { reply(&ProcessorResponse::Status(own_status(&shared))) }),
            ProcessorRequest::ClusterStatus => {
                Box::pin(async move { reply(&ProcessorResponse::ClusterStatus(cluster_status(&shared).await)) })
            }
            ProcessorRequest::Columns => {
                Box::pin(async move { reply(&ProcessorResponse::Columns(published_columns(&shared).await)) })
            }
            ProcessorRequest::Progress => {
                Box::pin(async move { reply(&ProcessorResponse::Progress(progress_of(&shared, &msg.peer))) })
            }
            ProcessorRequest::Query { labels, params } => {
                Box::pin(async move { answer_query(&shared, msg.peer, labels, params).await })
            }
        }
    }
}

/// Longest wait for this processor to follow a committee change that the
/// authorities made before it (it looks every `WATCH_INTERVAL`).
const FOLLOW_CHANGE: Duration = Duration::from_secs(3);

/// Runs one query under the timeout and encodes its answer or failure. A
/// query that the authorities refused only because they already run the
/// next committee epoch (the window between their switch and this
/// processor's next look, at most `WATCH_INTERVAL`), and that nothing was
/// charged for, is asked again once, under a new id, when the processor has
/// switched too.
async fn answer_query(shared: &ProcessorShared, user: String, labels: Vec<String>, params: QueryParams) -> Vec<u8> {
    let epoch = shared.view().joint.epoch();
    match answer_once(shared, user.clone(), labels.clone(), params.clone(), true).await {
        Attempt::Done(reply) => reply,
        Attempt::CommitteeMoved => {
            let deadline = Instant::now() + FOLLOW_CHANGE;
            while shared.view().joint.epoch() == epoch && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            info!(epoch = shared.view().joint.epoch(), "the committee moved on during an admission: asking again");
            match answer_once(shared, user, labels, params, false).await {
                Attempt::Done(reply) => reply,
                // (not returned when it may not ask again)
                Attempt::CommitteeMoved => error_reply("the committee changed during the query; ask again".into()),
            }
        }
    }
}

enum Attempt {
    Done(Vec<u8>),
    /// refused by authorities running a later epoch, nothing charged
    CommitteeMoved,
}

async fn answer_once(
    shared: &ProcessorShared,
    user: String,
    labels: Vec<String>,
    params: QueryParams,
    may_retry: bool,
) -> Attempt {
    let id = QueryId::random(&mut OsRng);
    let span = info_span!("query", query_id = %id, role = "processor", user = %user);
    let started = Instant::now();
    let statistic = params.statistic;
    let (mut driver, step) = match QueryDriver::new(shared.view(), id, unix_now(), user.clone(), labels, params) {
        Ok(started) => started,
        Err(e) => {
            shared.metrics.query(statistic, QueryOutcome::of_error(&e));
            return Attempt::Done(error_reply(format!("query {id} failed: {e}")));
        }
    };
    if let Ok(mut map) = shared.in_flight.try_borrow_mut() {
        map.insert(id, InFlight { user, statistic, started, rounds: 0, max_rounds: 0 });
    }
    let _in_flight = InFlightGuard { shared, id };
    let mut peers = QuicPeers { shared, statistic };
    let outcome = tokio::time::timeout(
        shared.query_timeout,
        run_query(&mut driver, step, &mut peers, &mut OsRng).instrument(span.clone()),
    )
    .await;
    // a query that fails after its admission has still spent its epsilon: say so
    let spent = match driver.charged() {
        Some(e) if e.0 > 0 => format!(
            "; the authorities had admitted it, so epsilon {e} of dataset {:?}'s budget is spent",
            shared.view().dataset
        ),
        _ => String::new(),
    };
    let _guard = span.enter();
    let moved = matches!(&outcome, Ok(Err(ProtocolError::NotEnoughAuthorities { .. }))) && driver.saw_later_epoch();
    if may_retry && moved && spent.is_empty() {
        return Attempt::CommitteeMoved;
    }
    let label = match &outcome {
        Ok(result) => QueryOutcome::of(result),
        Err(_) => QueryOutcome::TimedOut,
    };
    shared.metrics.query(statistic, label);
    Attempt::Done(match outcome {
        Ok(Ok(answer)) => {
            shared.metrics.answered_in(statistic, started.elapsed());
            let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            info!(statistic = %answer.result.statistic, relays = answer.relays.len(), elapsed_ms, "answered");
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
    })
}

fn own_status(shared: &ProcessorShared) -> NodeStatus {
    NodeStatus {
        name: shared.name.clone(),
        role: Role::Processor,
        version: env!("CARGO_PKG_VERSION").to_string(),
        details: vec![
            ("dataset".into(), shared.view().dataset.clone()),
            ("relays".into(), shared.relays.len().to_string()),
            ("authorities".into(), shared.authorities.borrow().len().to_string()),
            ("min_relays".into(), shared.view().min_relays.to_string()),
            ("epoch".into(), shared.view().joint.epoch().to_string()),
            ("dlog_table".into(), shared.table_description.clone()),
            ("exact_queries".into(), if shared.view().share_path { "committed shares" } else { "ElGamal" }.to_string()),
            // noisy min, max, median, quantiles (`protocol::shares::serves`)
            (
                "noisy_searches".into(),
                if shared.view().share_path { "committed shares" } else { "ElGamal" }.to_string(),
            ),
        ],
    }
}

/// One request to one peer. `may_resend`: whether the transport may send it
/// again after a lost connection (`AuthorityRequest::may_resend`).
async fn ask<T: serde::de::DeserializeOwned>(
    shared: &ProcessorShared,
    name: &str,
    addr: SocketAddr,
    bytes: &[u8],
    may_resend: bool,
) -> Result<T, PeerFailure> {
    let reply = if may_resend {
        shared.client.request(name, addr, bytes).await
    } else {
        shared.client.request_at_most_once(name, addr, bytes).await
    }
    .map_err(|e| PeerFailure::Unreachable(e.to_string()))?;
    decode::<T>(&reply, shared.max_frame).map_err(|e| PeerFailure::InvalidReply(format!("{name}: {e}")))
}

/// One request's bytes, whether they may be resent, and its kind's label.
struct Outbound<'a> {
    bytes: &'a [u8],
    may_resend: bool,
    kind: &'static str,
}

/// Sends the same request to each of `peers` in parallel; each reply as
/// `pick` reads it, in the order of `peers`. Counts each peer's reply.
async fn fan_out<'a, R: serde::de::DeserializeOwned + RefusalReply, T>(
    shared: &ProcessorShared,
    peers: impl Iterator<Item = &'a (String, SocketAddr)>,
    request: &Outbound<'_>,
    pick: impl Fn(R) -> Result<T, PeerFailure>,
) -> Vec<PeerReply<T>> {
    let pick = &pick;
    join_all(peers.map(|(name, addr)| async move {
        let reply = ask::<R>(shared, name, *addr, request.bytes, request.may_resend).await;
        shared.metrics.peer_reply(name, request.kind, reply_outcome(&reply));
        PeerReply::new(name.clone(), reply.and_then(pick))
    }))
    .await
}

/// `fan_out` of a request encoded for each peer (`bytes[k]` to
/// `peers[k]`), in parallel; `template` gives its kind and resending.
async fn fan_out_each(
    shared: &ProcessorShared,
    peers: &[&(String, SocketAddr)],
    bytes: &[Vec<u8>],
    template: &Outbound<'_>,
) -> Vec<PeerReply<AuthorityResponse>> {
    join_all(peers.iter().zip(bytes).map(|((name, addr), bytes)| async move {
        let reply = ask::<AuthorityResponse>(shared, name, *addr, bytes, template.may_resend).await;
        shared.metrics.peer_reply(name, template.kind, reply_outcome(&reply));
        PeerReply::new(name.clone(), reply)
    }))
    .await
}

/// Every relay's published column labels, asked in parallel.
async fn published_columns(shared: &ProcessorShared) -> Vec<RelayColumns> {
    let Ok(bytes) = encode(&RelayRequest::Columns) else { return Vec::new() };
    let request = Outbound { bytes: &bytes, may_resend: true, kind: relay_request(&RelayRequest::Columns) };
    let replies = fan_out(shared, shared.relays.iter(), &request, |resp| match resp {
        RelayResponse::Columns(columns) => Ok(columns),
        other => Err(other.failure("Columns")),
    })
    .await;
    replies.into_iter().map(|r| (r.peer, r.reply.map_err(|e| e.to_string()))).collect()
}

/// Every node's status as this processor reaches it: authorities, then relays.
async fn cluster_status(shared: &ProcessorShared) -> Vec<PeerStatus> {
    let Ok(relay_req) = encode(&RelayRequest::Status) else { return Vec::new() };
    let Ok(auth_req) = encode(&AuthorityRequest::Status) else { return Vec::new() };
    let auth_req = Outbound { bytes: &auth_req, may_resend: true, kind: "status" };
    let relay_req = Outbound { bytes: &relay_req, may_resend: true, kind: "status" };
    let members = shared.authorities();
    let authorities = fan_out(shared, members.iter(), &auth_req, |resp| match resp {
        AuthorityResponse::Status(s) => Ok(s),
        other => Err(other.failure("Status")),
    });
    let relays = fan_out(shared, shared.relays.iter(), &relay_req, |resp| match resp {
        RelayResponse::Status(s) => Ok(s),
        other => Err(other.failure("Status")),
    });
    let (authorities, relays) = futures_util::future::join(authorities, relays).await;
    let tagged = |role: Role, peers: &[(String, SocketAddr)], replies: Vec<PeerReply<NodeStatus>>| {
        peers
            .iter()
            .zip(replies)
            .map(|((name, addr), r)| PeerStatus {
                name: name.clone(),
                role,
                address: addr.to_string(),
                status: r.reply.map_err(|e| e.to_string()),
            })
            .collect::<Vec<_>>()
    };
    let mut all = tagged(Role::Authority, &members, authorities);
    all.extend(tagged(Role::Relay, &shared.relays, relays));
    all
}

/// The query's peers over QUIC: each request to all its peers in parallel.
struct QuicPeers<'a> {
    shared: &'a ProcessorShared,
    statistic: Statistic,
}

impl QueryPeers for QuicPeers<'_> {
    async fn ask_relays(
        &mut self,
        request: &RelayRequest,
        relays: &[String],
    ) -> Result<Vec<PeerReply<RelayResponse>>, ProtocolError> {
        let bytes = encode(request)?;
        if matches!(request, RelayRequest::Contribute { .. }) {
            self.shared.metrics.round(self.statistic);
        }
        let active = self.shared.relays.iter().filter(|(n, _)| relays.contains(n));
        let request = Outbound { bytes: &bytes, may_resend: true, kind: relay_request(request) };
        Ok(fan_out(self.shared, active, &request, Ok).await)
    }

    async fn ask_authorities(
        &mut self,
        requests: &[AuthorityRequest],
        authorities: &[String],
    ) -> Result<Vec<Vec<PeerReply<AuthorityResponse>>>, ProtocolError> {
        let shared = self.shared;
        let releases = requests.iter().map(|r| r.releases().len()).sum();
        if releases > 0 {
            shared.metrics.releases(self.statistic, releases);
        }
        let encoded = requests
            .iter()
            .map(|r| Ok((encode(r)?, r.may_resend(), authority_request(r))))
            .collect::<Result<Vec<_>, ProtocolError>>()?;
        let outbound: Vec<Outbound<'_>> =
            encoded.iter().map(|(bytes, may_resend, kind)| Outbound { bytes, may_resend: *may_resend, kind }).collect();
        let members = shared.authorities();
        let asked: Vec<&(String, SocketAddr)> = members.iter().filter(|(name, _)| authorities.contains(name)).collect();
        // a registration of shares carries each decryptor's own boxes only:
        // one encoding per authority for it, one for all otherwise
        let mut tailored: Vec<Vec<Vec<u8>>> = Vec::with_capacity(requests.len());
        for request in requests {
            let each = asked.iter().filter_map(|(name, _)| request.for_authority(name)).map(|r| encode(&r));
            tailored.push(each.collect::<Result<Vec<_>, ProtocolError>>()?);
        }
        let per_request = outbound.iter().zip(&tailored).map(|(request, each)| {
            let asked = &asked;
            async move {
                if each.len() == asked.len() {
                    fan_out_each(shared, asked, each, request).await
                } else {
                    fan_out(shared, asked.iter().copied(), request, Ok).await
                }
            }
        });
        Ok(join_all(per_request).await)
    }

    fn processed(&mut self, _took: Duration, driver: &QueryDriver) {
        if let Some(q) = self.shared.in_flight.try_borrow_mut().ok().as_mut().and_then(|m| m.get_mut(&driver.id())) {
            (q.rounds, q.max_rounds) = driver.progress();
        }
    }

    async fn solve(
        &mut self,
        points: Vec<(Release, RistrettoPoint, DlogRange)>,
    ) -> Result<Vec<(Release, i64)>, ProtocolError> {
        let solver = self.shared.solver.clone();
        let solved = actix_rt::task::spawn_blocking(move || {
            points
                .into_iter()
                .map(|(r, p, range)| solver.solve_vartime_in(&p, range).map(|v| (r, v)))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| ProtocolError::Internal(format!("the discrete-log worker failed: {e}")))?;
        Ok(solved?)
    }
}

/// Time between two probes of the processor's peers for `/readyz`.
pub const PEER_PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// Probes every authority and relay now and then every
/// `PEER_PROBE_INTERVAL` (a QUIC connection, no request: `Client::probe`)
/// and sets `health` to what `outcome::processor_readiness` makes of it.
/// Runs until the task is aborted.
pub async fn watch_peers(shared: Rc<ProcessorShared>, health: Health) {
    loop {
        let members = shared.authorities();
        let (authorities, relays) =
            futures_util::future::join(reachable(&shared.client, &members), reachable(&shared.client, &shared.relays))
                .await;
        let table_loaded = shared.solver.table().baby_steps() > 0;
        let view = shared.view();
        health.set(processor_readiness(
            table_loaded,
            &authorities,
            usize::from(view.joint.threshold()),
            &relays,
            view.min_relays,
        ));
        tokio::time::sleep(PEER_PROBE_INTERVAL).await;
    }
}

/// Each peer's name and whether `Client::probe` reached it, in parallel.
async fn reachable(client: &Client, peers: &[(String, SocketAddr)]) -> Vec<(String, bool)> {
    join_all(peers.iter().map(|(name, addr)| async move { (name.clone(), client.probe(name, *addr).await.is_ok()) }))
        .await
}
