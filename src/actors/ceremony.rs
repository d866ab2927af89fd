//! `crux-node committee apply`: one authority's side of an approved
//! committee change, run by its operator on its own host while its node
//! keeps serving. Every participant (the dealers and the new members) runs
//! it at the same time, on the ceremony address the change names for it
//! (not the node's address, which the running node holds).
//!
//! - add, remove, threshold: a proactive reshare (`crypto::dkg::reshare`):
//!   each dealer deals λ_i·x_i to the new members, with its signed ledger
//!   (`LedgerHandover`); a new member checks every sub-share and commitment,
//!   adds them, and takes over the most spent budget and every replay
//!   record. The joint key stays.
//! - rotate: a fresh DKG among the members (`actors::keygen`): a new joint key.
//!
//! Then every old member signs the transition (the new committee, epoch + 1)
//! with its old share, and everyone fetches the signatures. Output: the
//! new share at `<key_share>.next` (members) and the signed transition at
//! `<key_share>.transition-next.json`; the running node switches to them
//! (`actors::committee_watch`). Transport as in keygen: mutual TLS pinned
//! to the participants' certificates from the change file, pull-based.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::OsRng;
use tracing::info;

use super::error::NodeError;
use super::keygen::{dkg_runs, fetch, serve_board, setup, to_joint, Member, Peer};
use super::keys::identity;
use super::tls::PinnedPeer;
use super::transport::{bind_endpoint, Client, TransportConfig};
use crate::config::{NodeConfig, RoleConfig};
use crate::crypto::dkg::{deal_reshare, CommitteeKey, DkgShare, ReshareBroadcast, ResharePlan, ReshareReceiver};
use crate::crypto::{JointPublicKey, KeyShare};
use crate::data::committee_files::{next_share_path, next_transition_path, read_change, transition_json, write_atomic};
use crate::data::keystore::read_committee;
use crate::data::ledger::LmdbLedger;
use crate::data::{read_key_share, write_key_share};
use crate::protocol::committee::{
    merge_handovers, ChangeKind, CommitteeChange, Endpoint, LedgerHandover, SignedHandover, SignedTransition,
    Transition,
};
use crate::protocol::keygen::{KeygenReply, Want};

/// What one participant brings to the ceremony.
struct Participant<'a> {
    cfg: &'a NodeConfig,
    current: JointPublicKey,
    change: &'a CommitteeChange,
    /// this authority's current share, if it deals
    old_share: Option<KeyShare>,
    /// this authority's index in the new committee, if it is a member
    new_index: Option<u16>,
    phase: Duration,
}

/// Runs the change in `change_file` for the authority of `cfg`. Returns the
/// signed transition; the files for the node are written.
pub fn apply(cfg: &NodeConfig, change_file: &Path, phase: Duration) -> Result<SignedTransition, NodeError> {
    let RoleConfig::Authority(a) = &cfg.role else {
        return Err(setup("committee apply", format!("{} is not an authority (node.role)", cfg.file.display())));
    };
    let current = read_committee(&cfg.cluster.joint_key)?;
    let approved = read_change(change_file).map_err(|e| setup("committee apply", e))?;
    let change = &approved.change;
    let approvers = change
        .check_approved(&current, &approved.approvals)
        .map_err(|e| setup(&format!("change {}", change_file.display()), e.to_string()))?;
    info!(approvers = ?approvers, kind = ?change.kind, "the change is approved by t members");
    let dealer = change.dealers.iter().find(|d| d.name == cfg.name);
    let new_index = change.members.iter().find(|m| m.name == cfg.name).map(|m| m.index);
    if dealer.is_none() && new_index.is_none() {
        return Err(setup("committee apply", format!("{} neither deals nor joins in this change", cfg.name)));
    }
    let next_share = next_share_path(&a.key_share);
    if next_share.exists() {
        return Err(setup(
            &format!("pending share {}", next_share.display()),
            "a previous change is not taken over by the node yet: start the node (or wait for it) first",
        ));
    }
    let old_share = match dealer {
        Some(_) => Some(read_key_share(&a.key_share)?),
        None => None,
    };
    if let Some(share) = &old_share {
        if share.epoch() != current.epoch()
            || current.share_of(&cfg.name).map(|m| m.point) != Some(share.public_point())
        {
            return Err(setup("committee apply", "this authority's share is not that of the current committee"));
        }
    }
    let me = Participant { cfg, current, change, old_share, new_index, phase };
    let system = actix_rt::System::new();
    let (share, signed) = system.block_on(ceremony(&me))?;
    if let (Some(share), Some(index)) = (share, new_index) {
        let key_share = KeyShare::new(&cfg.name, change.to_epoch(), index, share.secret)?;
        write_key_share(&next_share, &key_share)?;
    }
    let text = transition_json(&signed).map_err(|e| setup("committee apply", e))?;
    write_atomic(&next_transition_path(&a.key_share), &text).map_err(|e| setup("committee apply", e))?;
    info!(epoch = change.to_epoch(), joint_key = %signed.transition.committee.fingerprint(), "committee change done");
    Ok(signed)
}

/// Every other participant, once, with its DKG index (new index, 0 if none).
fn others<'a>(me: &Participant<'a>) -> Vec<&'a Endpoint> {
    let mut list: Vec<&Endpoint> = Vec::new();
    for e in me.change.members.iter().chain(&me.change.dealers) {
        if e.name != me.cfg.name && !list.iter().any(|o| o.name == e.name) {
            list.push(e);
        }
    }
    list
}

fn address(e: &Endpoint) -> Result<SocketAddr, NodeError> {
    let fail = |reason: String| NodeError::Address { peer: e.name.clone(), address: e.ceremony.clone(), reason };
    e.ceremony.to_socket_addrs().map_err(|err| fail(err.to_string()))?.next().ok_or_else(|| fail("no address".into()))
}

async fn ceremony(me: &Participant<'_>) -> Result<(Option<DkgShare>, SignedTransition), NodeError> {
    let cfg = me.cfg;
    let change = me.change;
    let others = others(me);
    let transport = TransportConfig {
        identity: identity(cfg)?,
        peers: others.iter().map(|e| PinnedPeer::from_pem(&e.name, &e.certificate)).collect::<Result<_, _>>()?,
        max_frame_bytes: cfg.max_frame_bytes,
        request_timeout: cfg.timeouts.request,
        connect_timeout: cfg.timeouts.connect,
        retries: 0,
        retry_backoff: cfg.timeouts.retry_backoff,
    };
    let mine = change.members.iter().chain(&change.dealers).find(|e| e.name == cfg.name);
    let listen = address(mine.ok_or_else(|| setup("committee apply", "no ceremony address for this authority"))?)?;
    let endpoint =
        bind_endpoint(listen, &transport).map_err(|e| NodeError::Bind { addr: listen, reason: e.to_string() })?;
    let new_index = |name: &str| change.members.iter().find(|m| m.name == name).map_or(0, |m| m.index);
    let board =
        serve_board(&endpoint, &transport, others.iter().map(|e| (e.name.clone(), new_index(&e.name))).collect());
    let client = Client::new(endpoint.clone(), &transport);
    let peers: Vec<Peer> = others
        .iter()
        .map(|e| Ok((new_index(&e.name), e.name.clone(), address(e)?)))
        .collect::<Result<_, NodeError>>()?;
    let dealers: Vec<Peer> = peers.iter().filter(|p| change.dealers.iter().any(|d| d.name == p.1)).cloned().collect();
    let member = Member {
        client: &client,
        board: &board,
        me: me.new_index.unwrap_or(0),
        threshold: change.threshold,
        phase: me.phase,
    };
    let (share, committee) = if change.kind == ChangeKind::Rotate {
        let mut members = peers.clone();
        let (share, committee) = dkg_runs(&member, &mut members).await?;
        (Some(share), committee)
    } else {
        reshare(me, &member, &dealers).await?
    };
    let names: Vec<String> = (1..=change.members.iter().map(|m| m.index).max().unwrap_or(0))
        .map(|i| change.members.iter().find(|m| m.index == i).map(|m| m.name.clone()).unwrap_or_default())
        .collect();
    let transition = Transition {
        from_epoch: me.current.epoch(),
        from_key: me.current.fingerprint(),
        committee: to_joint(&names, change.to_epoch(), &committee)?,
        endpoints: change.members.clone(),
    };
    let signed = collect_signatures(me, &member, &dealers, transition).await;
    // serve the signature until every participant has it (or one more phase)
    let everyone: Vec<String> = others.iter().map(|e| e.name.clone()).collect();
    let linger = Instant::now() + me.phase;
    while me.old_share.is_some() && !board.borrow().all_fetched_signature(&everyone) && Instant::now() < linger {
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    endpoint.close(0u32.into(), b"committee change done");
    Ok((share, signed?))
}

/// Signs the transition (old members) and fetches the other dealers'
/// signatures; checks t of them against the current committee.
async fn collect_signatures(
    me: &Participant<'_>,
    m: &Member<'_>,
    dealers: &[Peer],
    transition: Transition,
) -> Result<SignedTransition, NodeError> {
    let bytes = transition.signed_bytes();
    let mut signatures = Vec::new();
    if let Some(share) = &me.old_share {
        let signature = share.sign_statement(&bytes, &mut OsRng);
        m.board.borrow_mut().publish_signature(signature);
        signatures.push((me.cfg.name.clone(), signature));
    }
    for (peer, reply) in fetch_named(m, dealers, Want::Signature).await {
        if let KeygenReply::Signature(signature) = reply {
            if signature.verify_point(&me.current.share_of(&peer).map(|x| x.point).unwrap_or_default(), &bytes) {
                signatures.push((peer, signature));
            }
        }
    }
    let signed = SignedTransition { transition, signatures };
    signed.verify(&me.current).map_err(|e| setup("committee apply", e.to_string()))?;
    Ok(signed)
}

/// Fetches `want` from each of `peers`, with the peer's name.
async fn fetch_named(m: &Member<'_>, peers: &[Peer], want: Want) -> Vec<(String, KeygenReply)> {
    let mut out = Vec::new();
    for peer in peers {
        for reply in fetch(m.client, std::slice::from_ref(peer), 0, want, m.phase).await {
            out.push((peer.1.clone(), reply));
        }
    }
    out
}

/// The resharing: deal (dealers), then collect (everyone: the commitments
/// give the new committee key; members: their sub-shares and the ledgers).
async fn reshare(
    me: &Participant<'_>,
    m: &Member<'_>,
    dealers: &[Peer],
) -> Result<(Option<DkgShare>, CommitteeKey), NodeError> {
    let change = me.change;
    let dkg_err = |e: crate::crypto::dkg::DkgError| setup("resharing", e.to_string());
    let dealer_indices: Vec<u16> = change.dealers.iter().map(|d| d.index).collect();
    let member_indices: Vec<u16> = change.members.iter().map(|d| d.index).collect();
    let plan = ResharePlan::new(me.current.committee_key(), &dealer_indices, &member_indices, change.threshold)
        .map_err(dkg_err)?;
    let old_index = |name: &str| change.dealers.iter().find(|d| d.name == name).map(|d| d.index);
    let mut broadcasts: Vec<ReshareBroadcast> = Vec::new();
    let mut own_private = None;
    if let Some(share) = &me.old_share {
        let (broadcast, privates) = deal_reshare(&plan, &share.to_dkg_share(), &mut OsRng).map_err(dkg_err)?;
        let mut by_name = BTreeMap::new();
        for (index, private) in privates {
            match change.members.iter().find(|x| x.index == index) {
                Some(_) if Some(index) == me.new_index => own_private = Some(private),
                Some(x) => drop(by_name.insert(x.name.clone(), private)),
                None => {}
            }
        }
        let handover = own_handover(me, share)?;
        m.board.borrow_mut().publish_reshare(broadcast.clone(), by_name, handover);
        broadcasts.push(broadcast);
    }
    for (peer, reply) in fetch_named(m, dealers, Want::ReshareCommitment).await {
        if let KeygenReply::ReshareCommitment(b) = reply {
            if old_index(&peer) == Some(b.dealer) {
                broadcasts.push(b);
            }
        }
    }
    let Some(index) = me.new_index else {
        return Ok((None, plan.committee(&broadcasts).map_err(dkg_err)?));
    };
    let mut receiver = ReshareReceiver::new(plan, index).map_err(dkg_err)?;
    for b in broadcasts {
        receiver.receive_broadcast(b).map_err(dkg_err)?;
    }
    if let Some(private) = own_private {
        receiver.receive_private(private).map_err(dkg_err)?;
    }
    for (peer, reply) in fetch_named(m, dealers, Want::ReshareShare).await {
        if let KeygenReply::ReshareShare(p) = reply {
            if old_index(&peer) == Some(p.dealer) {
                receiver.receive_private(p).map_err(dkg_err)?;
            }
        }
    }
    let (share, committee) = receiver.finish().map_err(dkg_err)?;
    if me.old_share.is_none() {
        take_over_ledger(me, m, dealers).await?;
    }
    Ok((Some(share), committee))
}

/// This dealer's ledger, signed with its current share.
fn own_handover(me: &Participant<'_>, share: &KeyShare) -> Result<SignedHandover, NodeError> {
    let ledger = LmdbLedger::open(&me.cfg.data_dir.join("ledger"))?;
    let (spent, seen) = ledger.snapshot()?;
    Ok(LedgerHandover::new(me.change.to_epoch(), &me.cfg.name, &spent, &seen).sign(share, &mut OsRng))
}

/// A new member takes over the dealers' ledgers (the most spent budget,
/// every replay record), each checked against its dealer's Y_i.
async fn take_over_ledger(me: &Participant<'_>, m: &Member<'_>, dealers: &[Peer]) -> Result<(), NodeError> {
    let mut handovers = Vec::new();
    for (_, reply) in fetch_named(m, dealers, Want::Handover).await {
        if let KeygenReply::Handover(h) = reply {
            handovers.push(*h);
        }
    }
    let names: Vec<String> = me.change.dealers.iter().map(|d| d.name.clone()).collect();
    let (spent, seen) = merge_handovers(&me.current, &names, me.change.to_epoch(), &handovers)
        .map_err(|e| setup("ledger handover", e.to_string()))?;
    let mut ledger = LmdbLedger::open(&me.cfg.data_dir.join("ledger"))?;
    ledger.absorb(&spent, &seen)?;
    info!(datasets = spent.len(), records = seen.len(), "took over the outgoing committee's ledger");
    Ok(())
}
