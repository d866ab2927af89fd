//! Runs one node of any role: loads its keys and peers and builds its
//! metrics registry (`prepare`), binds the QUIC endpoint (`Prepared::bind`) and, when
//! the config has `metrics.listen`, the TCP listener of the operator's HTTP
//! endpoints (`bind_metrics`), starts the role's actor and serves requests
//! (and `/metrics`, `/healthz`, `/readyz`) until a shutdown future
//! completes (`start`; `run` uses SIGINT/SIGTERM), then stops accepting,
//! lets in-flight requests finish (bounded), stops the HTTP endpoints and
//! closes the endpoint; LMDB environments are flushed on drop. Because the
//! sockets and the shutdown come from the caller, whole clusters can run in
//! one process on port 0 (as mini-redis's `server::run`), e.g. in tests.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tracing::info;

use super::authority::AuthorityActor;
use super::column_source::FileColumnSource;
use super::committee_watch::{erase_leftover, switch_files, watch_authority, watch_processor, WatchedFiles};
use super::error::NodeError;
use super::http::{serve_http, Health};
use super::keys::{read_joint_key, resolve, transition_endpoints, transport_config};
use super::metrics::{NodeMetrics, ProcessorMetrics, TransportMetrics};
use super::processor::{watch_peers, ProcessorActor, ProcessorShared};
use super::relay::RelayActor;
use super::transport::{bind_endpoint, serve_measured, Client, TransportConfig};
use super::RequestBytes;
use crate::config::{AuthorityConfig, NodeConfig, ProcessorConfig, RelayConfig, RoleConfig};
use crate::crypto::{DlogSolver, DlogTable, JointPublicKey};
use crate::data::committee_files::{erase, next_transition_path};
use crate::data::ledger::LmdbLedger;
use crate::data::{read_key_share, read_relay_identity, LmdbTable};
use crate::protocol::authority::{AuthorityPolicy, AuthorityState};
use crate::protocol::ledger::Ledger;
use crate::protocol::processor::ProcessorView;
use crate::protocol::relay::RelayState;

/// Everything CPU-heavy or file-based that a node needs before it serves:
/// done outside the actor system (e.g. building the discrete-log table).
pub struct Prepared {
    listen: SocketAddr,
    /// identity and pinned peers, read once for the endpoint and the client
    transport: TransportConfig,
    role: PreparedRole,
    metrics: NodeMetrics,
}

impl Prepared {
    /// The address the config asks the node to listen on (`node.listen`).
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// Binds the node's QUIC endpoint on `addr` (`listen()`, or port 0 for
    /// an in-process cluster), with its TLS identity and pinned peers. Call
    /// inside the actix System.
    pub fn bind(&self, addr: SocketAddr) -> Result<quinn::Endpoint, NodeError> {
        bind_endpoint(addr, &self.transport).map_err(|e| NodeError::Bind { addr, reason: e.to_string() })
    }
}

enum PreparedRole {
    Authority(Box<AuthorityActor>),
    Relay(Box<RelayActor>),
    Processor(Box<PreparedProcessor>),
}

/// What the processor needs beyond its config: the opened discrete-log
/// table and the verified joint key.
struct PreparedProcessor {
    table: Arc<dyn DlogTable>,
    description: String,
    config: ProcessorConfig,
    joint: JointPublicKey,
}

/// The sockets a node serves on, bound before it starts: the QUIC
/// endpoint (`bind`) and, if metrics are on, the HTTP listener (`bind_metrics`).
pub struct Listeners {
    pub quic: quinn::Endpoint,
    pub metrics: Option<TcpListener>,
}

pub fn prepare(cfg: &NodeConfig) -> Result<Prepared, NodeError> {
    let joint = match &cfg.role {
        // a committee change taken over at start: the transition (checked
        // against the committee file) decides the members, not the config
        RoleConfig::Authority(a) if next_transition_path(&a.key_share).exists() => {
            crate::data::keystore::read_committee(&cfg.cluster.joint_key)?
        }
        _ => read_joint_key(cfg)?,
    };
    let transport = transport_config(cfg)?;
    let metrics = NodeMetrics::new(cfg.role.kind());
    let (listen, role) = match &cfg.role {
        RoleConfig::Authority(a) => (a.listen, prepare_authority(cfg, a, joint, &metrics)?),
        RoleConfig::Relay(r) => (r.listen, prepare_relay(cfg, r, &joint, &metrics)?),
        RoleConfig::Processor(p) => {
            let progress = std::io::stderr().is_terminal();
            info!(dir = %p.dlog_dir.display(), bits = p.dlog_table_bits, "opening the discrete-log table (built on first start)");
            let table = LmdbTable::open_or_build(&p.dlog_dir, p.dlog_table_bits, progress)?;
            metrics.processor.dlog_table_entries(table.baby_steps());
            let description = format!("2^{} baby steps, |m| < 2^{}", p.dlog_table_bits, p.dlog_range_bits);
            let prepared = PreparedProcessor { table: Arc::new(table), description, config: p.clone(), joint };
            (p.listen, PreparedRole::Processor(Box::new(prepared)))
        }
        RoleConfig::User => {
            return Err(NodeError::Setup {
                what: "start".into(),
                reason: "a user config cannot be started; use it with `crux-node query`".into(),
            })
        }
    };
    Ok(Prepared { listen, transport, role, metrics })
}

/// The authority's actor: its key share (checked against the joint key),
/// policy and ledger; its budget gauges set from the ledger.
fn prepare_authority(
    cfg: &NodeConfig,
    a: &AuthorityConfig,
    joint: JointPublicKey,
    metrics: &NodeMetrics,
) -> Result<PreparedRole, NodeError> {
    let files = WatchedFiles {
        name: cfg.name.clone(),
        key_share: a.key_share.clone(),
        joint_key: cfg.cluster.joint_key.clone(),
    };
    // a committee change made while the node was down, then the old share
    // of one made before it stopped (its queries are gone)
    let joint = match switch_files(&files, &joint).map_err(|e| setup_error("committee change", e))? {
        Some((_, signed)) => signed.transition.committee,
        None => joint,
    };
    erase_leftover(&a.key_share).map_err(|e| setup_error("previous key share", e))?;
    if joint.share_of(&cfg.name).is_none() {
        erase_outdated_share(&a.key_share, &joint)?;
        return Err(setup_error(
            "committee",
            format!(
                "{} is not a member of committee epoch {} ({}): it was removed, and its share is erased; remove its configuration",
                cfg.name,
                joint.epoch(),
                cfg.cluster.joint_key.display()
            ),
        ));
    }
    if !a.key_share.exists() {
        return Err(NodeError::Setup {
            what: format!("key share {}", a.key_share.display()),
            reason: "it does not exist: run `crux-node keygen --config` with this config on every authority at the same time".into(),
        });
    }
    let share = read_key_share(&a.key_share)?;
    if share.authority() != cfg.name {
        return Err(NodeError::Setup {
            what: format!("key share {}", a.key_share.display()),
            reason: format!("it belongs to {}, not {}", share.authority(), cfg.name),
        });
    }
    let member = joint.share_of(&cfg.name);
    if member.map(|m| (m.point, m.index)) != Some((share.public_point(), share.index()))
        || share.epoch() != joint.epoch()
    {
        return Err(NodeError::Setup {
            what: "key share".into(),
            reason: "it does not match this authority's share in the joint key".into(),
        });
    }
    let policy = AuthorityPolicy {
        dataset: cfg.cluster.dataset.clone(),
        min_relays: cfg.cluster.min_relays,
        allow_exact: a.allow_exact,
        budget: a.budget,
        replay_window_secs: a.replay_window_secs,
        relays: cfg.cluster.relays.iter().map(|r| (r.peer.name.clone(), r.public_key)).collect::<HashMap<_, _>>(),
    };
    let ledger = LmdbLedger::open(&cfg.data_dir.join("ledger"))?;
    let remaining = ledger.remaining(&cfg.cluster.dataset, a.budget)?;
    metrics.authority.budget(&cfg.cluster.dataset, Some(a.budget.as_f64()), remaining.as_f64());
    let actor = AuthorityActor {
        state: AuthorityState::new(share, joint, policy),
        ledger,
        dataset: cfg.cluster.dataset.clone(),
        processor: cfg.cluster.processor.name.clone(),
        max_frame: cfg.max_frame_bytes,
        rng: crate::stats::dp::noise_rng(),
        metrics: metrics.authority.clone(),
        files,
    };
    Ok(PreparedRole::Authority(Box::new(actor)))
}

/// A member removed while it was down finds the committee moved on without
/// it: its share, of an earlier epoch, is erased (with the other old
/// shares it could still open ciphertexts of a reshared key). A share of
/// this epoch or later is left alone: the committee file may be the wrong one.
fn erase_outdated_share(key_share: &Path, joint: &JointPublicKey) -> Result<(), NodeError> {
    if !key_share.exists() {
        return Ok(());
    }
    let share = read_key_share(key_share)?;
    if share.epoch() < joint.epoch() {
        erase(key_share).map_err(|e| setup_error("outdated key share", e))?;
        info!(file = %key_share.display(), epoch = share.epoch(), "erased this authority's share of an earlier epoch");
    }
    Ok(())
}

fn setup_error(what: &str, reason: String) -> NodeError {
    NodeError::Setup { what: what.to_string(), reason }
}

/// The relay's actor: its identity (checked against its public key in
/// `cluster.relays`) and its sources.
fn prepare_relay(
    cfg: &NodeConfig,
    r: &RelayConfig,
    joint: &JointPublicKey,
    metrics: &NodeMetrics,
) -> Result<PreparedRole, NodeError> {
    let identity = read_relay_identity(&r.identity_key)?;
    let mine = cfg.cluster.relays.iter().find(|p| p.peer.name == cfg.name);
    if mine.map(|p| p.public_key) != Some(identity.public_key()) {
        return Err(NodeError::Setup {
            what: format!("identity key {}", r.identity_key.display()),
            reason: "it does not match this relay's public key in cluster.relays".into(),
        });
    }
    let actor = RelayActor {
        state: RelayState::new(&cfg.name, identity, joint),
        source: FileColumnSource::new(&cfg.name, r.sources.clone()),
        processor: cfg.cluster.processor.name.clone(),
        max_frame: cfg.max_frame_bytes,
        metrics: metrics.relay.clone(),
        refilling: false,
    };
    Ok(PreparedRole::Relay(Box::new(actor)))
}

/// Binds the TCP listener of the metrics and health endpoints on `addr`
/// (the config's `metrics.listen`, or port 0 in tests).
pub fn bind_metrics(addr: SocketAddr) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr).map_err(|e| NodeError::MetricsBind { addr, reason: e.to_string() })
}

/// Serves the node's role on `listeners.quic` (and its metrics and health
/// on `listeners.metrics`, if any) inside the current actix System until
/// `shutdown` completes, then stops accepting, lets replies being computed
/// finish (bounded), stops the HTTP endpoints and closes the endpoint.
pub async fn start(
    cfg: &NodeConfig,
    prepared: Prepared,
    listeners: Listeners,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let endpoint = listeners.quic;
    let addr = endpoint.local_addr().map_err(|e| NodeError::Bind { addr: prepared.listen, reason: e.to_string() })?;
    let tcfg = prepared.transport;
    let health = Health::starting();
    let transport = prepared.metrics.transport.clone();
    let tasks = match prepared.role {
        PreparedRole::Authority(actor) => {
            let worker = serve_on_sync_worker(&endpoint, &tcfg, transport, *actor, &health);
            vec![actix_rt::spawn(watch_authority(worker))]
        }
        PreparedRole::Relay(actor) => {
            serve_on_sync_worker(&endpoint, &tcfg, transport, *actor, &health);
            Vec::new()
        }
        PreparedRole::Processor(processor) => {
            let rate_limit = processor.config.rate_limit_per_minute;
            let client = Client::measured(endpoint.clone(), &tcfg, transport.clone());
            let shared = Rc::new(processor_shared(cfg, client, *processor, prepared.metrics.processor.clone())?);
            let users = cfg.cluster.users.iter().map(|u| u.name.clone()).collect();
            let actor = ProcessorActor::new(shared.clone(), users, rate_limit).start();
            actix_rt::spawn(serve_measured(endpoint.clone(), &tcfg, transport, move |peer, bytes| {
                let a = actor.clone();
                async move { a.send(RequestBytes { peer, bytes }).await.unwrap_or_default() }
            }));
            vec![actix_rt::spawn(watch_peers(shared.clone(), health.clone())), actix_rt::spawn(watch_processor(shared))]
        }
    };
    let http = match listeners.metrics {
        Some(listener) => {
            let at = listener.local_addr().ok();
            let handle = serve_http(listener, prepared.metrics.registry, health.clone())?;
            info!(node = %cfg.name, metrics = ?at, "serving /metrics, /healthz and /readyz over HTTP");
            Some(handle)
        }
        None => None,
    };
    info!(node = %cfg.name, role = %cfg.role, listen = %addr, "node started");
    shutdown.await;
    info!(node = %cfg.name, "shutting down: no new connections, finishing requests in flight");
    health.set(Err("shutting down".into()));
    for task in tasks {
        task.abort();
    }
    endpoint.set_server_config(None);
    // a short grace period for replies already being computed
    tokio::time::sleep(Duration::from_millis(500)).await;
    endpoint.close(0u32.into(), b"shutdown");
    if let Some(http) = http {
        http.stop(true).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(3), endpoint.wait_idle()).await;
    info!(node = %cfg.name, "stopped");
    Ok(())
}

/// What the processor's queries share: its view of the cluster, the QUIC
/// client on its own endpoint, peer addresses and the discrete-log solver.
fn processor_shared(
    cfg: &NodeConfig,
    client: Client,
    prepared: PreparedProcessor,
    metrics: ProcessorMetrics,
) -> Result<ProcessorShared, NodeError> {
    let PreparedProcessor { table, description: table_description, config, joint } = prepared;
    let solver = Arc::new(DlogSolver::new(table, config.dlog_range_bits)?);
    let relays = cfg
        .cluster
        .relays
        .iter()
        .map(|r| Ok((r.peer.name.clone(), resolve(&r.peer)?)))
        .collect::<Result<Vec<_>, NodeError>>()?;
    // the committee's members: configured, or reached through the last transition
    let endpoints = transition_endpoints(cfg).map(|(e, _)| e).unwrap_or_default();
    let mut authorities = Vec::new();
    for member in joint.members() {
        let name = &member.authority;
        if let Some(peer) = cfg.cluster.authorities.iter().find(|a| &a.name == name) {
            authorities.push((name.clone(), resolve(peer)?));
        } else if let Some(e) = endpoints.iter().find(|e| &e.name == name) {
            client.pin(super::tls::PinnedPeer::from_pem(name, &e.certificate)?);
            let peer = crate::config::Peer { name: name.clone(), address: e.address.clone(), cert: Default::default() };
            authorities.push((name.clone(), resolve(&peer)?));
        }
    }
    let view = Arc::new(ProcessorView {
        dataset: cfg.cluster.dataset.clone(),
        min_relays: cfg.cluster.min_relays,
        relays: cfg.cluster.relays.iter().map(|r| (r.peer.name.clone(), r.public_key)).collect(),
        authorities: joint.members().iter().map(|m| m.authority.clone()).collect(),
        joint,
        dlog_max_abs: solver.max_abs(),
        dlog_table_bits: solver.table_bits(),
        share_path: config.share_path,
    });
    Ok(ProcessorShared {
        name: cfg.name.clone(),
        view: RefCell::new(view),
        client,
        relays,
        authorities: RefCell::new(authorities),
        solver,
        max_frame: cfg.max_frame_bytes,
        query_timeout: cfg.timeouts.query,
        table_description,
        in_flight: Default::default(),
        metrics,
        joint_key: Some(cfg.cluster.joint_key.clone()),
    })
}

/// Runs a role's actor on a one-thread `SyncArbiter` and serves the
/// endpoint's requests through it; the node is ready once the worker has
/// taken the actor. Returns the worker's address.
fn serve_on_sync_worker<A>(
    endpoint: &quinn::Endpoint,
    tcfg: &TransportConfig,
    metrics: TransportMetrics,
    actor: A,
    health: &Health,
) -> Addr<A>
where
    A: Actor<Context = SyncContext<A>> + Handler<RequestBytes> + Send,
    A: actix::Handler<RequestBytes, Result = Vec<u8>>,
{
    let cell = std::sync::Mutex::new(Some(actor));
    let ready = health.clone();
    let worker = SyncArbiter::start(1, move || match cell.lock().ok().and_then(|mut c| c.take()) {
        Some(a) => {
            ready.set(Ok(()));
            a
        }
        None => exit_after_worker_panic(),
    });
    let served = worker.clone();
    actix_rt::spawn(serve_measured(endpoint.clone(), tcfg, metrics, move |peer, bytes| {
        let worker = served.clone();
        async move { worker.send(RequestBytes { peer, bytes }).await.unwrap_or_default() }
    }));
    worker
}

// A SyncArbiter asks for a new worker only after the old one panicked. The
// role's state (keys, cache) went with it, so the node exits with status 3
// for its supervisor to restart it rather than serve without state.
fn exit_after_worker_panic<T>() -> T {
    tracing::error!("the role's worker thread panicked; exiting for a restart");
    std::process::exit(3)
}

/// Runs a node until SIGINT or SIGTERM (SIGHUP is logged and ignored).
pub fn run(cfg: NodeConfig) -> Result<(), NodeError> {
    let prepared = prepare(&cfg)?;
    let system = actix_rt::System::new();
    system.block_on(async move {
        let quic = prepared.bind(prepared.listen())?;
        let metrics = cfg.metrics.as_ref().map(|m| bind_metrics(m.listen)).transpose()?;
        start(&cfg, prepared, Listeners { quic, metrics }, wait_for_shutdown()).await
    })
}

async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        // SIGHUP (e.g. a closed terminal, or an operator's reload habit) must
        // not kill a node: nothing is reloaded in place yet, so it is logged
        // and ignored; restart the node to apply config changes
        if let Ok(mut hangup) = signal(SignalKind::hangup()) {
            actix_rt::spawn(async move {
                while hangup.recv().await.is_some() {
                    tracing::warn!("SIGHUP received and ignored; restart the node to apply config changes");
                }
            });
        }
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
