//! Running nodes switching to a new committee without a restart.
//!
//! - Authority: every `WATCH_INTERVAL` its actor looks for what `committee
//!   apply` left (`<key_share>.transition-next.json`, `<key_share>.next`),
//!   checks the transition against its current committee (t old
//!   signatures) and its new share against the new Y_i, moves the files
//!   (old share to `<key_share>.previous`, new committee file, the
//!   transition beside it) and installs the new epoch. The old share serves
//!   queries admitted under it for `GRACE`, then is wiped from memory and
//!   its file overwritten and removed.
//! - Processor: asks the committee's members for the transition to the next
//!   epoch (`AuthorityRequest::Transition`); when one answers with a
//!   statement signed by t current members, it passes it to every relay
//!   (`RelayRequest::Transition`, each relay checks it itself), pins the
//!   new members' certificates and switches its view. Queries in flight
//!   keep the view they started with.
//!
//! Relays never read these files: they learn a new committee only from a
//! statement signed by t members of the one they trust.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::join_all;
use tracing::{error, info, warn};

use super::authority::AuthorityActor;
use super::keys::unix_now;
use super::processor::ProcessorShared;
use super::tls::PinnedPeer;
use crate::crypto::{JointPublicKey, KeyShare};
use crate::data::committee_files::{
    erase, next_share_path, next_transition_path, read_transition, transition_json, transition_path, write_atomic,
};
use crate::data::keystore::write_joint_key;
use crate::data::read_key_share;
use crate::protocol::committee::SignedTransition;
use crate::protocol::processor::ProcessorView;
use crate::protocol::wire::{decode, encode};
use crate::protocol::{AuthorityRequest, AuthorityResponse, RelayRequest, RelayResponse};

/// How often nodes look for a committee change.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// How long an old epoch's share keeps serving the queries admitted under
/// it (a query's rounds last seconds), unless `CRUX_COMMITTEE_GRACE_SECS`
/// says otherwise.
pub const GRACE: Duration = Duration::from_secs(20);

/// The grace period: `CRUX_COMMITTEE_GRACE_SECS` or `GRACE`.
pub fn grace() -> Duration {
    std::env::var("CRUX_COMMITTEE_GRACE_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(GRACE, Duration::from_secs)
}

/// Where an authority keeps its previous share during the grace period.
pub fn previous_share_path(key_share: &Path) -> PathBuf {
    let name = key_share.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    key_share.with_file_name(format!("{name}.previous"))
}

/// The files an authority's node watches.
#[derive(Clone, Debug)]
pub struct WatchedFiles {
    pub name: String,
    pub key_share: PathBuf,
    pub joint_key: PathBuf,
}

/// Moves a pending committee change's files into place if it follows
/// `current`: returns this authority's new share (None: no longer a
/// member) and the transition. Nothing pending: Ok(None).
pub fn switch_files(
    files: &WatchedFiles,
    current: &JointPublicKey,
) -> Result<Option<(Option<KeyShare>, SignedTransition)>, String> {
    let pending = next_transition_path(&files.key_share);
    if !pending.exists() {
        return Ok(None);
    }
    let signed = read_transition(&pending)?;
    let next = signed.transition.committee.clone();
    let next_share = next_share_path(&files.key_share);
    // the committee file may already name the new committee (another node
    // sharing the file switched first, or the operator copied it): then
    // this node's share is still to be taken over
    let already = next == *current && next_share.exists();
    if next.epoch() <= current.epoch() && !already {
        // left over from a change this node already made
        let _ = std::fs::remove_file(&pending);
        if next_share.exists() {
            erase(&next_share)?;
        }
        return Ok(None);
    }
    if !already {
        signed.verify(current).map_err(|e| format!("{}: {e}", pending.display()))?;
    }
    let share = match next.share_of(&files.name) {
        Some(member) => {
            let share = read_key_share(&next_share).map_err(|e| e.to_string())?;
            if share.epoch() != next.epoch() || share.public_point() != member.point || share.index() != member.index {
                return Err(format!(
                    "{} is not this authority's share of epoch {}",
                    next_share.display(),
                    next.epoch()
                ));
            }
            Some(share)
        }
        None => None,
    };
    let previous = previous_share_path(&files.key_share);
    if files.key_share.exists() {
        std::fs::rename(&files.key_share, &previous).map_err(|e| format!("cannot keep the old share: {e}"))?;
    }
    if share.is_some() {
        std::fs::rename(&next_share, &files.key_share).map_err(|e| format!("cannot install the new share: {e}"))?;
    }
    write_joint_key(&files.joint_key, &next).map_err(|e| e.to_string())?;
    write_atomic(&transition_path(&files.joint_key), &transition_json(&signed)?)?;
    std::fs::remove_file(&pending).map_err(|e| format!("cannot remove {}: {e}", pending.display()))?;
    Ok(Some((share, signed)))
}

/// Erases an old share left from before a restart (its queries are gone).
pub fn erase_leftover(key_share: &Path) -> Result<(), String> {
    let previous = previous_share_path(key_share);
    if previous.exists() {
        erase(&previous)?;
        info!(file = %previous.display(), "erased the previous epoch's key share");
    }
    Ok(())
}

/// Tells the authority's actor to look for a committee change.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CheckCommittee;

impl Handler<CheckCommittee> for AuthorityActor {
    type Result = ();

    fn handle(&mut self, _: CheckCommittee, _ctx: &mut Self::Context) {
        let now = unix_now();
        if self.state.expire(now) {
            match erase(&previous_share_path(&self.files.key_share)) {
                Ok(()) => info!("grace period over: the previous epoch's key share is erased"),
                Err(e) => warn!(cause = %e, "the previous epoch's key share could not be erased"),
            }
        }
        match switch_files(&self.files, self.state.joint_key()) {
            Ok(None) => {}
            Ok(Some((share, transition))) => {
                let next = transition.transition.committee.clone();
                let member = share.is_some();
                self.state.install(share, transition, now.saturating_add(grace().as_secs()));
                info!(
                    epoch = next.epoch(),
                    threshold = next.threshold(),
                    members = next.members().len(),
                    joint_key = %next.fingerprint(),
                    member,
                    "switched to the new committee"
                );
            }
            Err(e) => error!(cause = %e, "a pending committee change was not taken over"),
        }
    }
}

/// Asks the authority's actor to check every `WATCH_INTERVAL`.
pub async fn watch_authority(actor: Addr<AuthorityActor>) {
    loop {
        if actor.send(CheckCommittee).await.is_err() {
            return;
        }
        tokio::time::sleep(WATCH_INTERVAL).await;
    }
}

fn resolve(address: &str) -> Option<SocketAddr> {
    address.to_socket_addrs().ok().and_then(|mut a| a.next())
}

/// The processor's side: finds a transition to the next epoch at the
/// members, passes it to the relays and switches. Runs until aborted.
pub async fn watch_processor(shared: Rc<ProcessorShared>) {
    // relays that did not take the last transition yet, told again each time
    let mut lagging: Vec<String> = Vec::new();
    let mut last: Option<SignedTransition> = None;
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        if let (false, Some(signed)) = (lagging.is_empty(), &last) {
            lagging = tell_relays(&shared, signed, &lagging).await;
        }
        let view = shared.view();
        let Some(signed) = find_transition(&shared, &view.joint).await else { continue };
        let next = match signed.verify(&view.joint) {
            Ok(next) => next.clone(),
            Err(e) => {
                warn!(cause = %e, "an authority offered a committee transition that does not verify");
                continue;
            }
        };
        let everyone: Vec<String> = shared.relays.iter().map(|(n, _)| n.clone()).collect();
        lagging = tell_relays(&shared, &signed, &everyone).await;
        let mut members = Vec::new();
        for m in next.members() {
            let endpoint = signed.transition.endpoints.iter().find(|e| e.name == m.authority);
            let known = shared.authorities().into_iter().find(|(n, _)| *n == m.authority);
            let addr = known.map(|(_, a)| a).or_else(|| endpoint.and_then(|e| resolve(&e.address)));
            if let Some(e) = endpoint {
                match PinnedPeer::from_pem(&e.name, &e.certificate) {
                    Ok(pin) => shared.client.pin(pin),
                    Err(err) => warn!(member = %e.name, cause = %err, "a new member's certificate is unusable"),
                }
            }
            match addr {
                Some(addr) => members.push((m.authority.clone(), addr)),
                None => warn!(member = %m.authority, "no address for a new member"),
            }
        }
        let new_view = ProcessorView {
            authorities: next.members().iter().map(|m| m.authority.clone()).collect(),
            joint: next.clone(),
            ..(*view).clone()
        };
        *shared.view.borrow_mut() = Arc::new(new_view);
        *shared.authorities.borrow_mut() = members;
        if let Some(path) = &shared.joint_key {
            if let Err(e) = write_joint_key(path, &next) {
                warn!(cause = %e, "the new committee file could not be written");
            }
            if let Err(e) = transition_json(&signed).and_then(|t| write_atomic(&transition_path(path), &t)) {
                warn!(cause = %e, "the transition file could not be written");
            }
        }
        info!(epoch = next.epoch(), members = next.members().len(), joint_key = %next.fingerprint(), "switched to the new committee");
        last = Some(signed);
    }
}

/// The first member that has the transition to the next epoch.
async fn find_transition(shared: &ProcessorShared, current: &JointPublicKey) -> Option<SignedTransition> {
    let request = encode(&AuthorityRequest::Transition { epoch: current.epoch().saturating_add(1) }).ok()?;
    let members = shared.authorities();
    let asked = members.iter().map(|(name, addr)| shared.client.request(name, *addr, &request));
    for reply in join_all(asked).await.into_iter().flatten() {
        if let Ok(AuthorityResponse::Transition(t)) = decode::<AuthorityResponse>(&reply, shared.max_frame) {
            return Some(*t);
        }
    }
    None
}

/// Passes the transition to the relays named in `relays` (each checks it
/// itself); returns those that did not take it.
async fn tell_relays(shared: &ProcessorShared, signed: &SignedTransition, relays: &[String]) -> Vec<String> {
    let Ok(request) = encode(&RelayRequest::Transition(Box::new(signed.clone()))) else { return relays.to_vec() };
    let chosen = shared.relays.iter().filter(|(name, _)| relays.contains(name));
    let request = &request;
    let asked = chosen.map(|(name, addr)| async move {
        let reply = shared.client.request(name, *addr, request).await;
        (
            name,
            reply
                .map_err(|e| e.to_string())
                .and_then(|b| decode::<RelayResponse>(&b, shared.max_frame).map_err(|e| e.to_string())),
        )
    });
    let mut lagging = Vec::new();
    for (relay, reply) in join_all(asked).await {
        match reply {
            Ok(RelayResponse::Switched { epoch }) => info!(relay = %relay, epoch, "relay switched"),
            Ok(RelayResponse::Error { message }) => {
                warn!(relay = %relay, reason = %message, "relay refused the transition");
                lagging.push(relay.clone());
            }
            Ok(_) => warn!(relay = %relay, "unexpected answer to a transition"),
            Err(e) => {
                warn!(relay = %relay, cause = %e, "relay not reached with the transition; told again later");
                lagging.push(relay.clone());
            }
        }
    }
    lagging
}

#[cfg(test)]
#[path = "committee_watch_tests.rs"]
mod tests;
