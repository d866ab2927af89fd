//! `crux-node keygen`: one authority's side of the distributed key
//! generation, run on every authority's host at the same time. No dealer:
//! each authority makes its own secret polynomial (`crypto::dkg`, frost's
//! Pedersen DKG with complaints) and ends with its own Shamir share; no
//! file or process ever holds two authorities' shares.
//!
//! Network: the authority's own QUIC address (`authority.listen`), mutual
//! TLS pinned to the other authorities only; each publishes its messages on
//! a `protocol::keygen::Board` and fetches the others' (pull, retried until
//! a phase's deadline). Members that stay silent past a deadline, or are
//! disqualified by complaints, are left out and the run restarts without
//! them (as long as at least t remain). Output: the key share (mode 0600,
//! `authority.key_share`) and the committee file (`cluster.joint_key`),
//! which the operator copies to every other node. Nothing secret is logged.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use rand::rngs::OsRng;
use tracing::{info, warn};

use super::error::NodeError;
use super::keys::{identity, pin, resolve};
use super::transport::{bind_endpoint, serve, Client, TransportConfig};
use crate::config::{NodeConfig, RoleConfig};
use crate::crypto::dkg::{CommitteeKey, Dkg, DkgShare, Outcome, WaitingFor};
use crate::crypto::{JointPublicKey, KeyShare};
use crate::data::keystore::write_joint_key;
use crate::data::write_key_share;
use crate::protocol::keygen::{Board, KeygenReply, KeygenRequest, Want};
use crate::protocol::wire::{decode, encode};

/// Largest key generation reply read (a round's messages are a few KB).
pub(super) const MAX_REPLY: usize = 1 << 20;

/// A peer authority: (index, name, address).
pub(super) type Peer = (u16, String, SocketAddr);

pub(super) fn setup(what: &str, reason: impl Into<String>) -> NodeError {
    NodeError::Setup { what: what.to_string(), reason: reason.into() }
}

/// Runs the key generation for the authority of `cfg` with threshold
/// `threshold` (default: every authority) and `phase` as each phase's
/// deadline; writes the share and the committee file and returns the key.
pub fn run(cfg: &NodeConfig, threshold: Option<u16>, phase: Duration) -> Result<JointPublicKey, NodeError> {
    let RoleConfig::Authority(a) = &cfg.role else {
        return Err(setup("keygen", format!("{} is not an authority (node.role)", cfg.file.display())));
    };
    if a.key_share.exists() {
        return Err(setup(
            &format!("key share {}", a.key_share.display()),
            "it exists already; keygen never replaces a share: move it away first to make a new committee",
        ));
    }
    let names: Vec<String> = cfg.cluster.authorities.iter().map(|p| p.name.clone()).collect();
    let n = u16::try_from(names.len()).map_err(|_| setup("keygen", "too many authorities"))?;
    let me = names
        .iter()
        .position(|m| *m == cfg.name)
        .and_then(|p| u16::try_from(p + 1).ok())
        .ok_or_else(|| setup("keygen", format!("{} is not in cluster.authorities", cfg.name)))?;
    let t = threshold.unwrap_or(n);
    if t == 0 || t > n || (t == 1 && n > 1) {
        return Err(setup(
            "keygen",
            format!("--threshold {t} must be between 2 and {n} (1 only for a single authority)"),
        ));
    }
    let (share, committee) = if n == 1 {
        let secret = curve25519_dalek::Scalar::random(&mut OsRng);
        let share = DkgShare { index: 1, secret };
        let key = share.verification_key();
        (share, CommitteeKey { threshold: 1, members: vec![(1, key)], group_key: key })
    } else {
        let peers = cfg
            .cluster
            .authorities
            .iter()
            .zip(1u16..)
            .filter(|(p, _)| p.name != cfg.name)
            .map(|(p, i)| Ok((i, p.name.clone(), resolve(p)?)))
            .collect::<Result<Vec<Peer>, NodeError>>()?;
        let transport = TransportConfig {
            identity: identity(cfg)?,
            peers: cfg.cluster.authorities.iter().filter(|p| p.name != cfg.name).map(pin).collect::<Result<_, _>>()?,
            max_frame_bytes: cfg.max_frame_bytes,
            request_timeout: cfg.timeouts.request,
            connect_timeout: cfg.timeouts.connect,
            retries: 0,
            retry_backoff: cfg.timeouts.retry_backoff,
        };
        let system = actix_rt::System::new();
        system.block_on(network_dkg(a.listen, transport, me, t, peers, phase))?
    };
    let joint = to_joint(&names, 0, &committee)?;
    let key_share = KeyShare::new(&cfg.name, 0, share.index, share.secret)?;
    write_key_share(&a.key_share, &key_share)?;
    write_joint_key(&cfg.cluster.joint_key, &joint)?;
    info!(epoch = 0, threshold = t, members = joint.members().len(), joint_key = %joint.fingerprint(), "key generation done");
    Ok(joint)
}

/// The committee key with names for indices.
pub(super) fn to_joint(names: &[String], epoch: u64, committee: &CommitteeKey) -> Result<JointPublicKey, NodeError> {
    let members = committee
        .members
        .iter()
        .map(|(index, point)| {
            let name = names.get(usize::from(*index).wrapping_sub(1)).cloned();
            let name = name.ok_or_else(|| setup("keygen", format!("member index {index} is not configured")))?;
            Ok(crate::crypto::Member { authority: name, index: *index, point: *point })
        })
        .collect::<Result<Vec<_>, NodeError>>()?;
    Ok(JointPublicKey::new(epoch, committee.threshold, members, committee.group_key)?)
}

async fn network_dkg(
    listen: SocketAddr,
    transport: TransportConfig,
    me: u16,
    threshold: u16,
    mut peers: Vec<Peer>,
    phase: Duration,
) -> Result<(DkgShare, CommitteeKey), NodeError> {
    let endpoint =
        bind_endpoint(listen, &transport).map_err(|e| NodeError::Bind { addr: listen, reason: e.to_string() })?;
    let index_of: Vec<(String, u16)> = peers.iter().map(|(i, n, _)| (n.clone(), *i)).collect();
    let board = serve_board(&endpoint, &transport, index_of);
    let client = Client::new(endpoint.clone(), &transport);
    let member = Member { client: &client, board: &board, me, threshold, phase };
    let result = dkg_runs(&member, &mut peers).await;
    // serve the last messages until every peer has them (or one more phase)
    let others: Vec<u16> = peers.iter().map(|(i, _, _)| *i).collect();
    let linger = Instant::now() + phase;
    while !board.borrow().all_fetched(&others) && Instant::now() < linger {
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    endpoint.close(0u32.into(), b"keygen done");
    result
}

/// Serves a board on `endpoint` to the pinned peers named in `index_of`
/// (name, DKG index); anyone else is refused.
pub(super) fn serve_board(
    endpoint: &quinn::Endpoint,
    transport: &TransportConfig,
    index_of: Vec<(String, u16)>,
) -> Rc<RefCell<Board>> {
    let board = Rc::new(RefCell::new(Board::default()));
    let index_of = Rc::new(index_of);
    let served = board.clone();
    let max_frame = transport.max_frame_bytes;
    actix_rt::spawn(serve(endpoint.clone(), transport, move |peer: String, bytes: Vec<u8>| {
        let board = served.clone();
        let index_of = index_of.clone();
        async move {
            let reply = match (index_of.iter().find(|(n, _)| *n == peer), decode::<KeygenRequest>(&bytes, max_frame)) {
                (Some((_, index)), Ok(request)) => board.borrow_mut().answer((*index, &peer), &request),
                (None, _) => KeygenReply::Refused { reason: format!("{peer} does not take part") },
                (_, Err(e)) => KeygenReply::Refused { reason: e.to_string() },
            };
            encode(&reply).unwrap_or_default()
        }
    }));
    board
}

/// DKG runs among this member and `peers` until one succeeds, each
/// restarting without the members the previous one disqualified; `peers`
/// keeps those that remain.
pub(super) async fn dkg_runs(m: &Member<'_>, peers: &mut Vec<Peer>) -> Result<(DkgShare, CommitteeKey), NodeError> {
    let mut run = 0u32;
    loop {
        let mut members: Vec<u16> = peers.iter().map(|(i, _, _)| *i).collect();
        members.push(m.me);
        members.sort_unstable();
        if members.len() < usize::from(m.threshold) {
            return Err(setup("keygen", format!("fewer than {} authorities remain qualified", m.threshold)));
        }
        info!(run, members = ?members, "key generation run");
        match one_run(m, &members, peers, run).await? {
            Outcome::Done(share, committee) => return Ok((share, committee)),
            Outcome::Restart { excluded } => {
                warn!(run, excluded = ?excluded, "members disqualified or silent; restarting without them");
                peers.retain(|(i, _, _)| !excluded.contains(i));
                run += 1;
            }
        }
    }
}

/// What every run of one member's key generation shares.
pub(super) struct Member<'a> {
    pub client: &'a Client,
    pub board: &'a Rc<RefCell<Board>>,
    pub me: u16,
    pub threshold: u16,
    pub phase: Duration,
}

/// One DKG run among `members` (this one and `peers`).
pub(super) async fn one_run(m: &Member<'_>, members: &[u16], peers: &[Peer], run: u32) -> Result<Outcome, NodeError> {
    let Member { client, board, me, threshold, phase } = *m;
    let dkg_err = |e: crate::crypto::dkg::DkgError| setup("key generation", e.to_string());
    let (mut dkg, round1) = Dkg::start(me, members, threshold, &mut OsRng).map_err(dkg_err)?;
    board.borrow_mut().start_run(run, round1);
    for reply in fetch(client, peers, run, Want::Round1, phase).await {
        if let KeygenReply::Round1(message) = reply {
            note(dkg.receive_round1(message));
        }
    }
    expire(&mut dkg, WaitingFor::Round1);
    board.borrow_mut().publish_round2(dkg.round2().map_err(dkg_err)?);
    for reply in fetch(client, peers, run, Want::Round2, phase).await {
        if let KeygenReply::Round2(message) = reply {
            if message.recipient == me {
                note(dkg.receive_round2(message));
            }
        }
    }
    expire(&mut dkg, WaitingFor::Round2);
    board.borrow_mut().publish_complaints(dkg.complaints().map_err(dkg_err)?);
    let mut answers = Vec::new();
    for reply in fetch(client, peers, run, Want::Complaints, phase).await {
        if let KeygenReply::Complaints(list) = reply {
            match dkg.receive_complaints(list) {
                Ok(answer) => answers.extend(answer),
                Err(e) => warn!(cause = %e, "a complaint list was refused"),
            }
        }
    }
    expire(&mut dkg, WaitingFor::Complaints);
    board.borrow_mut().publish_justifications(answers);
    for reply in fetch(client, peers, run, Want::Justifications, phase).await {
        if let KeygenReply::Justifications(list) = reply {
            for justification in list.into_iter().filter(|j| j.dealer != me) {
                note(dkg.receive_justification(justification));
            }
        }
    }
    expire(&mut dkg, WaitingFor::Justifications);
    dkg.finish().map_err(dkg_err)
}

/// Past a phase's deadline: those still missing for `what` are silent.
fn expire(dkg: &mut Dkg, what: WaitingFor) {
    if dkg.waiting().what == what {
        let silent = dkg.timeout();
        warn!(?what, ?silent, "members silent past the deadline");
    }
}

fn note(result: Result<(), crate::crypto::dkg::DkgError>) {
    if let Err(e) = result {
        warn!(cause = %e, "a key generation message was refused");
    }
}

/// Each peer's reply of kind `want` in `run`, asked again every 200 ms
/// until every peer has answered or `phase` has passed.
pub(super) async fn fetch(client: &Client, peers: &[Peer], run: u32, want: Want, phase: Duration) -> Vec<KeygenReply> {
    let deadline = Instant::now() + phase;
    let Ok(bytes) = encode(&KeygenRequest { run, want }) else { return Vec::new() };
    let mut pending: Vec<&Peer> = peers.iter().collect();
    let mut got = Vec::new();
    while !pending.is_empty() && Instant::now() < deadline {
        let asked = pending.iter().map(|(_, name, addr)| client.request(name, *addr, &bytes));
        let replies = join_all(asked).await;
        let mut still = Vec::new();
        for (peer, reply) in pending.into_iter().zip(replies) {
            let decoded = reply
                .map_err(|e| e.to_string())
                .and_then(|b: Vec<u8>| decode::<KeygenReply>(&b, MAX_REPLY).map_err(|e| e.to_string()));
            match decoded {
                Ok(KeygenReply::NotReady { .. }) => still.push(peer),
                Ok(KeygenReply::Refused { reason }) => {
                    warn!(peer = %peer.1, reason = %reason, "refused a key generation request");
                    still.push(peer);
                }
                Ok(reply) => got.push(reply),
                Err(_) => still.push(peer),
            }
        }
        pending = still;
        if !pending.is_empty() {
            actix_rt::time::sleep(Duration::from_millis(200)).await;
        }
    }
    if !pending.is_empty() {
        let names: Vec<&str> = pending.iter().map(|(_, n, _)| n.as_str()).collect();
        warn!(?want, missing = ?names, "no answer before the phase deadline");
    }
    got
}
