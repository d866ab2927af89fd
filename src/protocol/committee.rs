//! Committee changes while the cluster runs: what the authorities' operators
//! propose and approve (`CommitteeChange`, approved by at least t current
//! members, each signing with its own key share), what the old committee
//! signs when a change is done (`Transition`: the new committee, signed by
//! at least t old members, which relays and the processor accept without a
//! restart), and the ledger a dealer hands to the new committee
//! (`LedgerHandover`: spent budget and replay records, signed by the
//! dealer, so a new member never starts with a fresh budget).
//!
//! Signed bytes (same layout rules as `codec`, all integers big-endian):
//! - `crux/committee-change/v1`: from_epoch u64, from_key str (hex of the
//!   joint key), kind u8 (add 0, remove 1, threshold 2, rotate 3), subject
//!   opt<str>, threshold u32, dealers endpoints, members endpoints;
//!   endpoints = u32 count, each: name str, index u32, address str,
//!   ceremony str, certificate str (PEM text);
//! - `crux/committee-transition/v1`: from_epoch u64, from_key str, epoch
//!   u64, threshold u32, members (u32 count, each: name str, index u32,
//!   Y_i 32 bytes compressed), joint key 32 bytes, endpoints;
//! - `crux/ledger-handover/v1`: to_epoch u64, dealer str, spent (u32
//!   count, each: dataset str, epsilon u64 millionths; sorted by dataset),
//!   seen (u32 count, each: query id 16 bytes, issued_at u64; sorted by id).
//!
//! Golden vectors: `tests/vectors/committee.json`, produced by the
//! independent Python encoder `scripts/codec_vectors.py`. No I/O.

use std::collections::{BTreeMap, HashMap};

use curve25519_dalek::ristretto::RistrettoPoint;
use serde::{Deserialize, Serialize};

use super::codec::Writer;
use super::ids::QueryId;
use crate::crypto::{AuthoritySignature, CryptoError, JointPublicKey, KeyShare};
use crate::stats::Epsilon;

pub const DOMAIN_CHANGE: &str = "crux/committee-change/v1";
pub const DOMAIN_TRANSITION: &str = "crux/committee-transition/v1";
pub const DOMAIN_HANDOVER: &str = "crux/ledger-handover/v1";

/// What a change does to the committee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// reshare to the members plus one (the subject); joint key unchanged
    Add,
    /// reshare to the members minus one (the subject); joint key unchanged
    Remove,
    /// reshare to the same members with another threshold
    Threshold,
    /// a fresh key generation among the members: a new joint key
    Rotate,
}

impl ChangeKind {
    fn code(self) -> u8 {
        match self {
            ChangeKind::Add => 0,
            ChangeKind::Remove => 1,
            ChangeKind::Threshold => 2,
            ChangeKind::Rotate => 3,
        }
    }
}

/// A participant of a change: its name, its index (in the old committee for
/// a dealer, in the new one for a member), its node's QUIC address, the
/// address of its ceremony (`authority.ceremony_listen`) and its TLS
/// certificate (PEM).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub name: String,
    pub index: u16,
    pub address: String,
    pub ceremony: String,
    pub certificate: String,
}

/// A proposed committee change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitteeChange {
    pub from_epoch: u64,
    /// hex of the current joint key (`JointPublicKey::fingerprint`)
    pub from_key: String,
    pub kind: ChangeKind,
    /// the authority added or removed
    pub subject: Option<String>,
    /// the new committee's threshold
    pub threshold: u16,
    /// current members that deal their shares (at least t; for a rotation: the members)
    pub dealers: Vec<Endpoint>,
    /// the new committee, with its new indices
    pub members: Vec<Endpoint>,
}

/// An error in a change, a transition or a handover.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CommitteeError {
    #[error("the change is for committee epoch {found} with joint key {found_key}, but the current committee is epoch {current} with joint key {current_key}; propose it again against the current committee")]
    WrongCommittee { found: u64, found_key: String, current: u64, current_key: String },
    #[error("invalid change: {0}")]
    Invalid(String),
    #[error("not approved: {0}")]
    NotApproved(String),
    #[error("invalid committee transition: {0}")]
    Transition(String),
    #[error("invalid ledger handover from {dealer}: {reason}")]
    Handover { dealer: String, reason: String },
}

fn endpoints(w: &mut Writer, list: &[Endpoint]) {
    w.u32(u32::try_from(list.len()).unwrap_or(u32::MAX));
    for e in list {
        w.str(&e.name);
        w.u32(u32::from(e.index));
        w.str(&e.address);
        w.str(&e.ceremony);
        w.str(&e.certificate);
    }
}

fn distinct(list: &[Endpoint], what: &str) -> Result<(), CommitteeError> {
    for (pos, e) in list.iter().enumerate() {
        if e.index == 0 {
            return Err(CommitteeError::Invalid(format!("{what}: {} has index 0", e.name)));
        }
        if list.iter().skip(pos + 1).any(|o| o.name == e.name || o.index == e.index) {
            return Err(CommitteeError::Invalid(format!(
                "{what}: {} or its index {} is listed twice",
                e.name, e.index
            )));
        }
    }
    Ok(())
}

impl CommitteeChange {
    /// The signed bytes (`crux/committee-change/v1`).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(DOMAIN_CHANGE);
        w.u64(self.from_epoch);
        w.str(&self.from_key);
        w.u8(self.kind.code());
        w.opt_str(self.subject.as_deref());
        w.u32(u32::from(self.threshold));
        endpoints(&mut w, &self.dealers);
        endpoints(&mut w, &self.members);
        w.finish()
    }

    /// The epoch the change makes.
    pub fn to_epoch(&self) -> u64 {
        self.from_epoch.saturating_add(1)
    }

    /// Checks the change against the current committee: same epoch and
    /// key, dealers are t or more current members with their indices,
    /// members distinct with non-zero indices, 2 ≤ threshold ≤ members,
    /// and the kind matches what changes.
    pub fn check(&self, current: &JointPublicKey) -> Result<(), CommitteeError> {
        if self.from_epoch != current.epoch() || self.from_key != current.fingerprint() {
            return Err(CommitteeError::WrongCommittee {
                found: self.from_epoch,
                found_key: self.from_key.clone(),
                current: current.epoch(),
                current_key: current.fingerprint(),
            });
        }
        distinct(&self.dealers, "dealers")?;
        distinct(&self.members, "members")?;
        for d in &self.dealers {
            if current.share_of(&d.name).map(|m| m.index) != Some(d.index) {
                return Err(CommitteeError::Invalid(format!(
                    "dealer {} (index {}) is not that member of the current committee",
                    d.name, d.index
                )));
            }
        }
        if self.dealers.len() < usize::from(current.threshold()) {
            return Err(CommitteeError::Invalid(format!(
                "{} dealers, the current threshold is {}",
                self.dealers.len(),
                current.threshold()
            )));
        }
        if self.members.len() < 2 || self.threshold < 2 || usize::from(self.threshold) > self.members.len() {
            return Err(CommitteeError::Invalid(format!(
                "threshold {} for {} members: it must be between 2 and the number of members (at least 2)",
                self.threshold,
                self.members.len()
            )));
        }
        self.check_kind(current)
    }

    fn check_kind(&self, current: &JointPublicKey) -> Result<(), CommitteeError> {
        let old: Vec<&str> = current.members().iter().map(|m| m.authority.as_str()).collect();
        let new: Vec<&str> = self.members.iter().map(|m| m.name.as_str()).collect();
        let subject = self.subject.as_deref().unwrap_or_default();
        let same = |a: &[&str], b: &[&str]| a.len() == b.len() && a.iter().all(|x| b.contains(x));
        let expected: Vec<&str> = match self.kind {
            ChangeKind::Add => old.iter().copied().chain([subject]).collect(),
            ChangeKind::Remove => old.iter().copied().filter(|n| *n != subject).collect(),
            ChangeKind::Threshold | ChangeKind::Rotate => old.clone(),
        };
        let subject_ok = match self.kind {
            ChangeKind::Add => !subject.is_empty() && !old.contains(&subject),
            ChangeKind::Remove => old.contains(&subject),
            ChangeKind::Threshold | ChangeKind::Rotate => self.subject.is_none(),
        };
        if !subject_ok || !same(&expected, &new) {
            return Err(CommitteeError::Invalid(format!(
                "a {:?} change from [{}] cannot give the members [{}]",
                self.kind,
                old.join(", "),
                new.join(", ")
            )));
        }
        if self.kind == ChangeKind::Rotate {
            let dealers: Vec<&str> = self.dealers.iter().map(|d| d.name.as_str()).collect();
            if !same(&dealers, &new) {
                return Err(CommitteeError::Invalid(
                    "a rotation is run by all members: dealers and members differ".into(),
                ));
            }
        }
        Ok(())
    }

    /// Checks the change and that at least t current members approved it,
    /// each once, each signature valid under its Y_i. Returns the approvers.
    pub fn check_approved(
        &self,
        current: &JointPublicKey,
        approvals: &[(String, AuthoritySignature)],
    ) -> Result<Vec<String>, CommitteeError> {
        self.check(current)?;
        let signers: Vec<String> = approvals.iter().map(|(n, _)| n.clone()).collect();
        current
            .verify_signed_by(&self.signed_bytes(), approvals, &signers)
            .map_err(|e| CommitteeError::NotApproved(e.to_string()))?;
        if signers.len() < usize::from(current.threshold()) {
            return Err(CommitteeError::NotApproved(format!(
                "approved by {} ({}); the current threshold is {}: more operators must run `crux-node committee approve`",
                signers.len(),
                signers.join(", "),
                current.threshold()
            )));
        }
        Ok(signers)
    }

    /// This authority's approval.
    pub fn approve(
        &self,
        share: &KeyShare,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> AuthoritySignature {
        share.sign_statement(&self.signed_bytes(), rng)
    }
}

/// The new committee, as the old one states it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub from_epoch: u64,
    pub from_key: String,
    pub committee: JointPublicKey,
    /// how to reach each new member (address, certificate)
    pub endpoints: Vec<Endpoint>,
}

fn point(w: &mut Writer, p: &RistrettoPoint) {
    w.raw(p.compress().as_bytes());
}

impl Transition {
    /// The signed bytes (`crux/committee-transition/v1`).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(DOMAIN_TRANSITION);
        w.u64(self.from_epoch);
        w.str(&self.from_key);
        w.u64(self.committee.epoch());
        w.u32(u32::from(self.committee.threshold()));
        w.u32(u32::try_from(self.committee.members().len()).unwrap_or(u32::MAX));
        for m in self.committee.members() {
            w.str(&m.authority);
            w.u32(u32::from(m.index));
            point(&mut w, &m.point);
        }
        point(&mut w, &self.committee.point());
        endpoints(&mut w, &self.endpoints);
        w.finish()
    }
}

/// A transition with the old members' signatures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTransition {
    pub transition: Transition,
    pub signatures: Vec<(String, AuthoritySignature)>,
}

impl SignedTransition {
    /// Checks that it follows `current` (the next epoch, from its key), that
    /// at least t members of `current` signed it, and that every new member
    /// has an endpoint. Returns the new committee.
    pub fn verify(&self, current: &JointPublicKey) -> Result<&JointPublicKey, CommitteeError> {
        let t = &self.transition;
        let bad = |reason: String| CommitteeError::Transition(reason);
        if t.from_epoch != current.epoch() || t.from_key != current.fingerprint() {
            return Err(bad(format!(
                "it follows epoch {} (joint key {}), this node has epoch {} (joint key {})",
                t.from_epoch,
                t.from_key,
                current.epoch(),
                current.fingerprint()
            )));
        }
        if t.committee.epoch() != current.epoch().saturating_add(1) {
            return Err(bad(format!("it makes epoch {} after epoch {}", t.committee.epoch(), current.epoch())));
        }
        if let Some(m) = t.committee.members().iter().find(|m| !t.endpoints.iter().any(|e| e.name == m.authority)) {
            return Err(bad(format!("member {} has no address", m.authority)));
        }
        current
            .verify_threshold_signed(&t.signed_bytes(), &self.signatures)
            .map_err(|e| bad(format!("{e} (it must be signed by t members of epoch {})", current.epoch())))?;
        Ok(&t.committee)
    }
}

/// A dealer's ledger, handed to the new committee.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerHandover {
    pub to_epoch: u64,
    pub dealer: String,
    /// spent epsilon (millionths) per dataset, sorted by dataset
    pub spent: Vec<(String, u64)>,
    /// admitted query ids with their issue time, sorted by id
    pub seen: Vec<(QueryId, u64)>,
}

impl LedgerHandover {
    /// Sorted, from a ledger's maps.
    pub fn new(to_epoch: u64, dealer: &str, spent: &HashMap<String, Epsilon>, seen: &HashMap<QueryId, u64>) -> Self {
        let spent: BTreeMap<&String, u64> = spent.iter().map(|(d, e)| (d, e.0)).collect();
        let mut seen: Vec<(QueryId, u64)> = seen.iter().map(|(id, at)| (*id, *at)).collect();
        seen.sort_unstable_by_key(|(id, _)| id.0);
        LedgerHandover {
            to_epoch,
            dealer: dealer.to_string(),
            spent: spent.into_iter().map(|(d, e)| (d.clone(), e)).collect(),
            seen,
        }
    }

    /// The signed bytes (`crux/ledger-handover/v1`).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(DOMAIN_HANDOVER);
        w.u64(self.to_epoch);
        w.str(&self.dealer);
        w.u32(u32::try_from(self.spent.len()).unwrap_or(u32::MAX));
        for (dataset, micros) in &self.spent {
            w.str(dataset);
            w.u64(*micros);
        }
        w.u32(u32::try_from(self.seen.len()).unwrap_or(u32::MAX));
        for (id, at) in &self.seen {
            w.query_id(id);
            w.u64(*at);
        }
        w.finish()
    }

    pub fn sign(self, share: &KeyShare, rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> SignedHandover {
        let signature = share.sign_statement(&self.signed_bytes(), rng);
        SignedHandover { handover: self, signature }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHandover {
    pub handover: LedgerHandover,
    pub signature: AuthoritySignature,
}

/// What a new member takes over: spent epsilon per dataset, and admitted
/// query ids with their issue time.
pub type HandedLedger = (HashMap<String, Epsilon>, HashMap<QueryId, u64>);

/// Merges the dealers' handovers for epoch `to_epoch`: each signed by its
/// dealer (a member of `old`), every dealer of `dealers` once; the most
/// spent per dataset and every replay record. One honest dealer among them
/// suffices for the budget: a dishonest one can only raise it.
pub fn merge_handovers(
    old: &JointPublicKey,
    dealers: &[String],
    to_epoch: u64,
    handovers: &[SignedHandover],
) -> Result<HandedLedger, CommitteeError> {
    let mut spent: HashMap<String, Epsilon> = HashMap::new();
    let mut seen: HashMap<QueryId, u64> = HashMap::new();
    for dealer in dealers {
        let fail = |reason: &str| CommitteeError::Handover { dealer: dealer.clone(), reason: reason.to_string() };
        let mut found = handovers.iter().filter(|h| &h.handover.dealer == dealer);
        let h = found.next().ok_or_else(|| fail("missing"))?;
        if found.next().is_some() {
            return Err(fail("sent twice"));
        }
        let member = old.share_of(dealer).ok_or_else(|| fail("not a member of the old committee"))?;
        if h.handover.to_epoch != to_epoch {
            return Err(fail("for another epoch"));
        }
        if !h.signature.verify_point(&member.point, &h.handover.signed_bytes()) {
            return Err(fail("the signature does not match"));
        }
        for (dataset, micros) in &h.handover.spent {
            let entry = spent.entry(dataset.clone()).or_default();
            entry.0 = entry.0.max(*micros);
        }
        for (id, at) in &h.handover.seen {
            let entry = seen.entry(*id).or_default();
            *entry = (*entry).max(*at);
        }
    }
    Ok((spent, seen))
}

impl From<CryptoError> for CommitteeError {
    fn from(e: CryptoError) -> Self {
        CommitteeError::Invalid(e.to_string())
    }
}

/// An endpoint with made-up addresses and certificate, for tests.
#[cfg(test)]
pub(crate) fn test_endpoint(name: &str, index: u16) -> Endpoint {
    Endpoint {
        name: name.into(),
        index,
        address: format!("127.0.0.1:{}", 7000 + index),
        ceremony: format!("127.0.0.1:{}", 8000 + index),
        certificate: format!("-----BEGIN CERTIFICATE-----\n{name}\n-----END CERTIFICATE-----\n"),
    }
}

#[cfg(test)]
#[path = "committee_tests.rs"]
mod tests;
