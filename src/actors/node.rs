//! Runs one node of any role: loads its keys and peers (`prepare`), binds
//! the QUIC endpoint (`bind`), starts the role's actor and serves requests
//! until a shutdown future completes (`start`; `run` uses SIGINT/SIGTERM),
//! then stops accepting, lets in-flight requests finish (bounded) and closes
//! the endpoint; LMDB environments are flushed on drop. Because the endpoint
//! and the shutdown come from the caller, whole clusters can run in one
//! process on port 0 (as mini-redis's `server::run`), e.g. in tests.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tracing::info;

use super::authority::AuthorityActor;
use super::column_source::FileColumnSource;
use super::error::NodeError;
use super::keys::{read_joint_key, resolve, transport_config};
use super::processor::{ProcessorActor, ProcessorShared};
use super::relay::RelayActor;
use super::transport::{bind_endpoint, serve, Client, TransportConfig};
use super::RequestBytes;
use crate::config::{NodeConfig, ProcessorConfig, RoleConfig};
use crate::crypto::{DlogSolver, DlogTable};
use crate::data::ledger::LmdbLedger;
use crate::data::{read_key_share, read_relay_identity, LmdbTable};
use crate::protocol::authority::{AuthorityPolicy, AuthorityState};
use crate::protocol::processor::ProcessorView;
use crate::protocol::relay::RelayState;

/// Everything CPU-heavy or file-based that a node needs before it serves:
/// done outside the actor system (e.g. building the discrete-log table).
pub struct Prepared {
    listen: SocketAddr,
    role: PreparedRole,
}

impl Prepared {
    /// The address the config asks the node to listen on (`node.listen`).
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }
}

enum PreparedRole {
    Authority(Box<AuthorityActor>),
    Relay(Box<RelayActor>),
    Processor { table: Arc<dyn DlogTable>, description: String, config: ProcessorConfig },
}

pub fn prepare(cfg: &NodeConfig) -> Result<Prepared, NodeError> {
    let joint = read_joint_key(cfg)?;
    let processor = cfg.cluster.processor.name.clone();
    match &cfg.role {
        RoleConfig::Authority(a) => {
            let share = read_key_share(&a.key_share)?;
            if share.authority() != cfg.name {
                return Err(NodeError::Setup {
                    what: format!("key share {}", a.key_share.display()),
                    reason: format!("it belongs to {}, not {}", share.authority(), cfg.name),
                });
            }
            if joint.share_of(&cfg.name).map(|s| s.point) != Some(share.public_point()) {
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
                relays: cfg
                    .cluster
                    .relays
                    .iter()
                    .map(|r| (r.peer.name.clone(), r.public_key))
                    .collect::<HashMap<_, _>>(),
            };
            let ledger = LmdbLedger::open(&cfg.data_dir.join("ledger"))?;
            let actor = AuthorityActor {
                state: AuthorityState::new(share, joint, policy),
                ledger,
                dataset: cfg.cluster.dataset.clone(),
                processor,
                max_frame: cfg.max_frame_bytes,
                rng: crate::stats::dp::noise_rng(),
            };
            Ok(Prepared { listen: a.listen, role: PreparedRole::Authority(Box::new(actor)) })
        }
        RoleConfig::Relay(r) => {
            let identity = read_relay_identity(&r.identity_key)?;
            let mine = cfg.cluster.relays.iter().find(|p| p.peer.name == cfg.name);
            if mine.map(|p| p.public_key) != Some(identity.public_key()) {
                return Err(NodeError::Setup {
                    what: format!("identity key {}", r.identity_key.display()),
                    reason: "it does not match this relay's public key in cluster.relays".into(),
                });
            }
            let actor = RelayActor {
                state: RelayState::new(&cfg.name, identity, &joint),
                source: FileColumnSource::new(&cfg.name, r.sources.clone()),
                processor,
                max_frame: cfg.max_frame_bytes,
            };
            Ok(Prepared { listen: r.listen, role: PreparedRole::Relay(Box::new(actor)) })
        }
        RoleConfig::Processor(p) => {
            let progress = std::io::stderr().is_terminal();
            info!(dir = %p.dlog_dir.display(), bits = p.dlog_table_bits, "opening the discrete-log table (built on first start)");
            let table = LmdbTable::open_or_build(&p.dlog_dir, p.dlog_table_bits, progress)?;
            let description = format!("2^{} baby steps, |m| < 2^{}", p.dlog_table_bits, p.dlog_range_bits);
            let role = PreparedRole::Processor { table: Arc::new(table), description, config: p.clone() };
            Ok(Prepared { listen: p.listen, role })
        }
        RoleConfig::User => Err(NodeError::Setup {
            what: "start".into(),
            reason: "a user config cannot be started; use it with `crux-node query`".into(),
        }),
    }
}

/// Binds the node's QUIC endpoint on `addr` (the config's `node.listen`, or
/// port 0 for an in-process cluster), with its TLS identity and pinned
/// peers. Call inside the actix System.
pub fn bind(cfg: &NodeConfig, addr: SocketAddr) -> Result<quinn::Endpoint, NodeError> {
    let tcfg = transport_config(cfg)?;
    bind_endpoint(addr, &tcfg).map_err(|e| NodeError::Bind { addr, reason: e.to_string() })
}

/// Serves the node's role on `endpoint` inside the current actix System
/// until `shutdown` completes, then stops accepting, lets replies being
/// computed finish (bounded) and closes the endpoint.
pub async fn start(
    cfg: &NodeConfig,
    prepared: Prepared,
    endpoint: quinn::Endpoint,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let addr = endpoint.local_addr().map_err(|e| NodeError::Bind { addr: prepared.listen, reason: e.to_string() })?;
    let tcfg = transport_config(cfg)?;
    match prepared.role {
        PreparedRole::Authority(actor) => serve_on_sync_worker(&endpoint, &tcfg, *actor),
        PreparedRole::Relay(actor) => serve_on_sync_worker(&endpoint, &tcfg, *actor),
        PreparedRole::Processor { table, description, config } => {
            let shared = processor_shared(cfg, &endpoint, &tcfg, table, description, &config)?;
            let users = cfg.cluster.users.iter().map(|u| u.name.clone()).collect();
            let actor = ProcessorActor::new(Rc::new(shared), users, config.rate_limit_per_minute).start();
            actix_rt::spawn(serve(endpoint.clone(), &tcfg, move |peer, bytes| {
                let a = actor.clone();
                async move { a.send(RequestBytes { peer, bytes }).await.unwrap_or_default() }
            }));
        }
    }
    info!(node = %cfg.name, role = %cfg.role, listen = %addr, "node started");
    shutdown.await;
    info!(node = %cfg.name, "shutting down: no new connections, finishing requests in flight");
    endpoint.set_server_config(None);
    // a short grace period for replies already being computed
    tokio::time::sleep(Duration::from_millis(500)).await;
    endpoint.close(0u32.into(), b"shutdown");
    let _ = tokio::time::timeout(Duration::from_secs(3), endpoint.wait_idle()).await;
    info!(node = %cfg.name, "stopped");
    Ok(())
}

/// What the processor's queries share: its view of the cluster, the QUIC
/// client on its own endpoint, peer addresses and the discrete-log solver.
fn processor_shared(
    cfg: &NodeConfig,
    endpoint: &quinn::Endpoint,
    tcfg: &TransportConfig,
    table: Arc<dyn DlogTable>,
    table_description: String,
    config: &ProcessorConfig,
) -> Result<ProcessorShared, NodeError> {
    let solver = Arc::new(DlogSolver::new(table, config.dlog_range_bits)?);
    let relays = cfg
        .cluster
        .relays
        .iter()
        .map(|r| Ok((r.peer.name.clone(), resolve(&r.peer)?)))
        .collect::<Result<Vec<_>, NodeError>>()?;
    let authorities = cfg
        .cluster
        .authorities
        .iter()
        .map(|a| Ok((a.name.clone(), resolve(a)?)))
        .collect::<Result<Vec<_>, NodeError>>()?;
    let view = Arc::new(ProcessorView {
        dataset: cfg.cluster.dataset.clone(),
        min_relays: cfg.cluster.min_relays,
        relays: cfg.cluster.relays.iter().map(|r| (r.peer.name.clone(), r.public_key)).collect(),
        authorities: cfg.cluster.authorities.iter().map(|a| a.name.clone()).collect(),
        joint: read_joint_key(cfg)?,
        dlog_max_abs: solver.max_abs(),
    });
    Ok(ProcessorShared {
        name: cfg.name.clone(),
        view,
        client: Client::new(endpoint.clone(), tcfg),
        relays,
        authorities,
        solver,
        max_frame: cfg.max_frame_bytes,
        query_timeout: cfg.timeouts.query,
        table_description,
        in_flight: Default::default(),
    })
}

/// Runs a role's actor on a one-thread `SyncArbiter` and serves the
/// endpoint's requests through it.
fn serve_on_sync_worker<A>(endpoint: &quinn::Endpoint, tcfg: &TransportConfig, actor: A)
where
    A: Actor<Context = SyncContext<A>> + Handler<RequestBytes> + Send,
    A: actix::Handler<RequestBytes, Result = Vec<u8>>,
{
    let cell = std::sync::Mutex::new(Some(actor));
    let worker = SyncArbiter::start(1, move || match cell.lock().ok().and_then(|mut c| c.take()) {
        Some(a) => a,
        None => exit_after_worker_panic(),
    });
    actix_rt::spawn(serve(endpoint.clone(), tcfg, move |peer, bytes| {
        let worker = worker.clone();
        async move { worker.send(RequestBytes { peer, bytes }).await.unwrap_or_default() }
    }));
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
        let endpoint = bind(&cfg, prepared.listen())?;
        start(&cfg, prepared, endpoint, wait_for_shutdown()).await
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
