//! Proactive resharing (Desmedt–Jajodia / Herzberg et al.): the joint key
//! stays, the members and the threshold change. Each member i of a dealing
//! set D (at least t old members) deals a fresh degree-(t′−1) sharing of
//! λ_i·x_i (λ_i its Lagrange coefficient within D) to the new members with
//! frost's `keys::split`; the Feldman commitment is broadcast, the sub-shares
//! go privately. A new member checks every sub-share with frost's
//! `SecretShare::verify` and every commitment's constant term against
//! λ_i·Y_i from the old `CommitteeKey`, then adds its sub-shares. Input comes
//! from the caller's key store and network; output is the new `DkgShare` and
//! `CommitteeKey`. No I/O; randomness is passed in.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use frost_ristretto255::keys::{
    split, IdentifierList, PublicKeyPackage, SecretShare, SigningShare, VerifiableSecretSharingCommitment,
};
use frost_ristretto255::SigningKey;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::committee::{lagrange_at_zero, validate_indices, CommitteeKey, DkgShare};
use super::convert::{
    commitment_from_points, commitment_points, identifier, share_scalar, verifying_key_point, verifying_share_point,
};
use super::error::{same_or_conflict, DealerFault, DealerFaultKind, DkgError};

/// Who deals to whom in one resharing; every participant (dealer or new
/// member) must hold the same plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResharePlan {
    pub old: CommitteeKey,
    /// At least `old.threshold` old members, sorted.
    pub dealers: Vec<u16>,
    /// The new members' indices, sorted (they may overlap the old ones).
    pub new_members: Vec<u16>,
    pub new_threshold: u16,
}

/// A dealer's Feldman commitment to its sub-sharing polynomial (broadcast).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReshareBroadcast {
    pub dealer: u16,
    pub commitment: VerifiableSecretSharingCommitment,
}

/// A dealer's sub-share for one new member (private; wiped on drop, never printed).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct ResharePrivate {
    pub dealer: u16,
    pub recipient: u16,
    pub sub_share: SigningShare,
}

impl fmt::Debug for ResharePrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResharePrivate")
            .field("dealer", &self.dealer)
            .field("recipient", &self.recipient)
            .field("sub_share", &"<redacted>")
            .finish()
    }
}

impl ResharePlan {
    /// Checks the old committee key and the parameters: dealers are distinct
    /// old members, at least the old threshold of them; new members distinct
    /// and non-zero, at least 2; 2 ≤ new_threshold ≤ new members (frost).
    pub fn new(old: CommitteeKey, dealers: &[u16], new_members: &[u16], new_threshold: u16) -> Result<Self, DkgError> {
        old.check()?;
        validate_indices(dealers, "the dealing set")?;
        let old_indices = old.indices();
        if let Some(dealer) = dealers.iter().find(|d| !old_indices.contains(d)) {
            return Err(DkgError::NotInSet { index: *dealer, what: "the old committee", set: old_indices });
        }
        if dealers.len() < usize::from(old.threshold) {
            let needed = usize::from(old.threshold);
            return Err(DkgError::TooFewMembers { what: "a dealing set", needed, found: dealers.len() });
        }
        validate_indices(new_members, "the new members")?;
        if new_members.len() < 2 {
            return Err(DkgError::TooFewMembers { what: "a new committee", needed: 2, found: new_members.len() });
        }
        if new_threshold < 2 || usize::from(new_threshold) > new_members.len() {
            return Err(DkgError::ThresholdOutOfRange { threshold: new_threshold, members: new_members.len() });
        }
        let mut dealers = dealers.to_vec();
        dealers.sort_unstable();
        let mut new_members = new_members.to_vec();
        new_members.sort_unstable();
        Ok(ResharePlan { old, dealers, new_members, new_threshold })
    }

    /// Checks every dealer's commitment publicly (number of coefficients,
    /// constant term λ_i·Y_i) and returns the new committee key: Y′_j =
    /// Σ_i Σ_k C_ik·j^k (frost `PublicKeyPackage::from_commitment` on the
    /// summed commitment), whose group key must equal the old one. Anyone
    /// holding the broadcasts can run it, old members included.
    pub fn committee(&self, broadcasts: &[ReshareBroadcast]) -> Result<CommitteeKey, DkgError> {
        let by_dealer = self.broadcasts_by_dealer(broadcasts)?;
        let mut faults = Vec::new();
        let mut summed = vec![RistrettoPoint::identity(); usize::from(self.new_threshold)];
        for (dealer, broadcast) in &by_dealer {
            match self.check_commitment(*dealer, &broadcast.commitment) {
                Ok(points) => summed.iter_mut().zip(points).for_each(|(sum, point)| *sum += point),
                Err(fault) => faults.push(DealerFault { dealer: *dealer, fault }),
            }
        }
        if !faults.is_empty() {
            return Err(DkgError::BadDealers { faults });
        }
        let ids = self.new_members.iter().map(|m| identifier(*m)).collect::<Result<BTreeSet<_>, _>>()?;
        let public = PublicKeyPackage::from_commitment(&ids, &commitment_from_points(&summed)?)
            .map_err(|e| DkgError::frost("the new committee key", e))?;
        let mut members = Vec::with_capacity(self.new_members.len());
        for member in &self.new_members {
            let share = public.verifying_shares().get(&identifier(*member)?).ok_or(DkgError::Frost {
                during: "the new committee key",
                reason: format!("no verifying share for member {member}"),
            })?;
            members.push((*member, verifying_share_point(share)?));
        }
        let group_key = verifying_key_point(public.verifying_key())?;
        if group_key != self.old.group_key {
            return Err(DkgError::InconsistentCommittee {
                reason: "the reshared group key differs from the old one".to_string(),
            });
        }
        let committee = CommitteeKey { threshold: self.new_threshold, members, group_key };
        committee.check()?;
        Ok(committee)
    }

    /// The coefficient commitments of `dealer`, if it has t′ of them and its
    /// constant term is λ_dealer·Y_dealer.
    fn check_commitment(
        &self,
        dealer: u16,
        commitment: &VerifiableSecretSharingCommitment,
    ) -> Result<Vec<RistrettoPoint>, DealerFaultKind> {
        let points = commitment_points(commitment).map_err(|e| DealerFaultKind::Malformed(e.to_string()))?;
        if points.len() != usize::from(self.new_threshold) {
            return Err(DealerFaultKind::CommitmentDegree { found: points.len(), expected: self.new_threshold });
        }
        let lambda = lagrange_at_zero(dealer, &self.dealers).map_err(|e| DealerFaultKind::Malformed(e.to_string()))?;
        let old_key = self.old.verification_key(dealer).ok_or(DealerFaultKind::WrongConstantTerm)?;
        if points.first() == Some(&(old_key * lambda)) {
            Ok(points)
        } else {
            Err(DealerFaultKind::WrongConstantTerm)
        }
    }

    /// One broadcast per dealer of the plan, no unknown or conflicting ones.
    fn broadcasts_by_dealer<'a>(
        &self,
        broadcasts: &'a [ReshareBroadcast],
    ) -> Result<BTreeMap<u16, &'a ReshareBroadcast>, DkgError> {
        let mut by_dealer = BTreeMap::new();
        for broadcast in broadcasts {
            if !self.dealers.contains(&broadcast.dealer) {
                return Err(DkgError::UnknownSender { sender: broadcast.dealer, what: "resharing commitment" });
            }
            if let Some(known) = by_dealer.insert(broadcast.dealer, broadcast) {
                if known != broadcast {
                    return Err(DkgError::ConflictingMessage {
                        sender: broadcast.dealer,
                        what: "resharing commitments",
                    });
                }
            }
        }
        let missing: Vec<u16> = self.dealers.iter().copied().filter(|d| !by_dealer.contains_key(d)).collect();
        if missing.is_empty() {
            Ok(by_dealer)
        } else {
            Err(DkgError::NotReady { what: "resharing commitments", waiting_for: missing })
        }
    }
}

/// Deals old member `share.index`'s part of a resharing: a fresh sharing of
/// λ_i·x_i among the new members (frost `keys::split` with their
/// identifiers). Returns the commitment to broadcast and one sub-share per
/// new member, to send privately.
pub fn deal_reshare(
    plan: &ResharePlan,
    share: &DkgShare,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(ReshareBroadcast, Vec<(u16, ResharePrivate)>), DkgError> {
    if !plan.dealers.contains(&share.index) {
        return Err(DkgError::NotInSet { index: share.index, what: "the dealing set", set: plan.dealers.clone() });
    }
    plan.old.check_share(share)?;
    let lambda = lagrange_at_zero(share.index, &plan.dealers)?;
    let weighted = Zeroizing::new(lambda * share.secret);
    let key = SigningKey::from_scalar(*weighted).map_err(|e| DkgError::frost("a zero resharing secret", e))?;
    let ids = plan.new_members.iter().map(|m| identifier(*m)).collect::<Result<Vec<_>, _>>()?;
    let n = u16::try_from(ids.len()).map_err(|_| DkgError::TooFewMembers {
        what: "a new committee (at most 65535)",
        needed: 2,
        found: ids.len(),
    })?;
    let (sub_shares, _) = split(&key, n, plan.new_threshold, IdentifierList::Custom(&ids), rng)
        .map_err(|e| DkgError::frost("to split the resharing secret", e))?;
    let mut privates = Vec::with_capacity(plan.new_members.len());
    let mut commitment = None;
    for member in &plan.new_members {
        let sub_share = sub_shares.get(&identifier(*member)?).ok_or(DkgError::Frost {
            during: "to split the resharing secret",
            reason: format!("no sub-share for member {member}"),
        })?;
        commitment = Some(sub_share.commitment().clone());
        let message = ResharePrivate { dealer: share.index, recipient: *member, sub_share: *sub_share.signing_share() };
        privates.push((*member, message));
    }
    let commitment = commitment.ok_or(DkgError::TooFewMembers { what: "a new committee", needed: 2, found: 0 })?;
    Ok((ReshareBroadcast { dealer: share.index, commitment }, privates))
}

/// A new member collecting one commitment and one sub-share from every
/// dealer of the plan.
pub struct ReshareReceiver {
    plan: ResharePlan,
    me: u16,
    broadcasts: BTreeMap<u16, ReshareBroadcast>,
    privates: BTreeMap<u16, ResharePrivate>,
}

impl ReshareReceiver {
    pub fn new(plan: ResharePlan, me: u16) -> Result<Self, DkgError> {
        if !plan.new_members.contains(&me) {
            return Err(DkgError::NotInSet { index: me, what: "the new members", set: plan.new_members.clone() });
        }
        Ok(ReshareReceiver { plan, me, broadcasts: BTreeMap::new(), privates: BTreeMap::new() })
    }

    pub fn receive_broadcast(&mut self, message: ReshareBroadcast) -> Result<(), DkgError> {
        self.check_dealer(message.dealer, "resharing commitment")?;
        if let Some(known) = self.broadcasts.get(&message.dealer) {
            return same_or_conflict(known == &message, message.dealer, "resharing commitments");
        }
        self.broadcasts.insert(message.dealer, message);
        Ok(())
    }

    pub fn receive_private(&mut self, message: ResharePrivate) -> Result<(), DkgError> {
        self.check_dealer(message.dealer, "resharing sub-share")?;
        if message.recipient != self.me {
            let (sender, recipient) = (message.dealer, message.recipient);
            return Err(DkgError::Misaddressed { sender, recipient, me: self.me, what: "resharing sub-share" });
        }
        if let Some(known) = self.privates.get(&message.dealer) {
            return same_or_conflict(known == &message, message.dealer, "resharing sub-shares");
        }
        self.privates.insert(message.dealer, message);
        Ok(())
    }

    /// Dealers whose commitment or sub-share has not arrived. If a deadline
    /// passes with some missing, rerun the resharing with another dealing set.
    pub fn waiting(&self) -> Vec<u16> {
        let plan = &self.plan;
        plan.dealers
            .iter()
            .copied()
            .filter(|d| !self.broadcasts.contains_key(d) || !self.privates.contains_key(d))
            .collect()
    }

    /// Verifies everything and returns this member's new share and the new
    /// committee key. Every dealer that fails a check is named in `BadDealers`.
    pub fn finish(&self) -> Result<(DkgShare, CommitteeKey), DkgError> {
        let waiting = self.waiting();
        if !waiting.is_empty() {
            return Err(DkgError::NotReady { what: "resharing commitments and sub-shares", waiting_for: waiting });
        }
        let mut faults = Vec::new();
        let mut share = DkgShare { index: self.me, secret: Scalar::ZERO };
        for (dealer, broadcast) in &self.broadcasts {
            let fault = match (self.plan.check_commitment(*dealer, &broadcast.commitment), self.privates.get(dealer)) {
                (Err(fault), _) => Some(fault),
                (Ok(_), None) => Some(DealerFaultKind::InvalidSubShare),
                (Ok(_), Some(private)) => match self.sub_share(private, &broadcast.commitment) {
                    Ok(sub_share) => {
                        share.secret += sub_share;
                        None
                    }
                    Err(fault) => Some(fault),
                },
            };
            faults.extend(fault.map(|fault| DealerFault { dealer: *dealer, fault }));
        }
        if !faults.is_empty() {
            return Err(DkgError::BadDealers { faults });
        }
        let broadcasts: Vec<ReshareBroadcast> = self.broadcasts.values().cloned().collect();
        let committee = self.plan.committee(&broadcasts)?;
        committee.check_share(&share)?;
        Ok((share, committee))
    }

    /// The sub-share as a scalar, if it lies on the dealer's committed
    /// polynomial (frost `SecretShare::verify`).
    fn sub_share(
        &self,
        private: &ResharePrivate,
        commitment: &VerifiableSecretSharingCommitment,
    ) -> Result<Scalar, DealerFaultKind> {
        let id = identifier(self.me).map_err(|e| DealerFaultKind::Malformed(e.to_string()))?;
        SecretShare::new(id, private.sub_share, commitment.clone())
            .verify()
            .map_err(|_| DealerFaultKind::InvalidSubShare)?;
        share_scalar(&private.sub_share).map_err(|e| DealerFaultKind::Malformed(e.to_string()))
    }

    fn check_dealer(&self, dealer: u16, what: &'static str) -> Result<(), DkgError> {
        if self.plan.dealers.contains(&dealer) {
            Ok(())
        } else {
            Err(DkgError::UnknownSender { sender: dealer, what })
        }
    }
}
