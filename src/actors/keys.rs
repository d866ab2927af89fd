//! Loads what a node needs from its configuration's files: its TLS identity,
//! the certificates it pins, the joint public key (verifying every
//! authority's proof), and resolved peer addresses.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

use super::error::NodeError;
use super::tls::{Identity, PinnedPeer};
use super::transport::TransportConfig;
use crate::config::{NodeConfig, Peer, RoleConfig};
use crate::crypto::JointPublicKey;

fn read_text(path: &Path, what: &str) -> Result<String, NodeError> {
    std::fs::read_to_string(path)
        .map_err(|e| NodeError::Setup { what: format!("reading {what} {}", path.display()), reason: e.to_string() })
}

pub fn identity(cfg: &NodeConfig) -> Result<Identity, NodeError> {
    let cert = read_text(&cfg.cert, "certificate")?;
    let key = read_text(&cfg.key, "private key")?;
    Ok(Identity::from_pem(&cfg.name, &cert, &key)?)
}

pub fn pin(peer: &Peer) -> Result<PinnedPeer, NodeError> {
    Ok(PinnedPeer::from_pem(&peer.name, &read_text(&peer.cert, "certificate")?)?)
}

/// The peers this node talks to or accepts, by role.
pub fn pinned_peers(cfg: &NodeConfig) -> Result<Vec<PinnedPeer>, NodeError> {
    let c = &cfg.cluster;
    let peers: Vec<&Peer> = match cfg.role {
        RoleConfig::Authority(_) | RoleConfig::Relay(_) | RoleConfig::User => vec![&c.processor],
        RoleConfig::Processor(_) => {
            c.authorities.iter().chain(c.relays.iter().map(|r| &r.peer)).chain(c.users.iter()).collect()
        }
    };
    peers.into_iter().map(pin).collect()
}

pub fn transport_config(cfg: &NodeConfig) -> Result<TransportConfig, NodeError> {
    Ok(TransportConfig {
        identity: identity(cfg)?,
        peers: pinned_peers(cfg)?,
        max_frame_bytes: cfg.max_frame_bytes,
        request_timeout: cfg.timeouts.request,
        connect_timeout: cfg.timeouts.connect,
        retries: cfg.timeouts.retries,
        retry_backoff: cfg.timeouts.retry_backoff,
    })
}

pub fn resolve(peer: &Peer) -> Result<SocketAddr, NodeError> {
    let fail = |reason: String| NodeError::Address { peer: peer.name.clone(), address: peer.address.clone(), reason };
    peer.address
        .to_socket_addrs()
        .map_err(|e| fail(e.to_string()))?
        .next()
        .ok_or_else(|| fail("no address found".into()))
}

/// The joint public key named by the config (`cluster.joint_key`), checked
/// against the configured authorities (`data::keystore::read_joint_key`).
pub fn read_joint_key(cfg: &NodeConfig) -> Result<JointPublicKey, NodeError> {
    if !cfg.cluster.joint_key.exists() {
        return Err(NodeError::Setup {
            what: format!("committee file {}", cfg.cluster.joint_key.display()),
            reason: "it does not exist yet: run `crux-node keygen --config <authority.yaml>` on every authority at the same time, then copy the committee file it writes to every node (`crux-node init` does both for a local cluster)".into(),
        });
    }
    let configured: Vec<&str> = cfg.cluster.authorities.iter().map(|a| a.name.as_str()).collect();
    match crate::data::keystore::read_joint_key(&cfg.cluster.joint_key, &configured) {
        Ok(joint) => Ok(joint),
        // after a committee change the members differ from the config: the
        // transition this node switched to (kept beside the file) says so
        Err(e) => match switched_committee(cfg) {
            Some(joint) => Ok(joint),
            None => Err(e.into()),
        },
    }
}

/// The committee file's committee if the transition kept beside it (this
/// node's own, verified when it switched) names the same committee, with
/// an endpoint for every member outside the config.
fn switched_committee(cfg: &NodeConfig) -> Option<JointPublicKey> {
    let joint = crate::data::keystore::read_committee(&cfg.cluster.joint_key).ok()?;
    let transition = transition_endpoints(cfg)?;
    let known = |name: &str| {
        cfg.cluster.authorities.iter().any(|a| a.name == name) || transition.0.iter().any(|e| e.name == name)
    };
    (transition.1 == joint && joint.members().iter().all(|m| known(&m.authority))).then_some(joint)
}

/// The endpoints and committee of the transition kept beside the
/// committee file, if any.
pub fn transition_endpoints(cfg: &NodeConfig) -> Option<(Vec<crate::protocol::committee::Endpoint>, JointPublicKey)> {
    let path = crate::data::committee_files::transition_path(&cfg.cluster.joint_key);
    let signed = crate::data::committee_files::read_transition(&path).ok()?;
    Some((signed.transition.endpoints, signed.transition.committee))
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
